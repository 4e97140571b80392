"""Gaps found in session 13, each checked against PyTorch 2.13: scheduler state_dict keys and
values, torch.utils.swap_tensors / Tensor.module_load / torch.__future__, and
nn.attention's bias submodule."""

import math

import pytest
import torch

import descent

# -- lr_scheduler state_dict: PyTorch's keys and values -----------------------------------------


def _make(lib, name):
    L = lib.optim.lr_scheduler
    p = lib.nn.Parameter(lib.zeros(2))
    o = lib.optim.SGD([p], lr=0.1, momentum=0.9)
    if name == "OneCycleLR":
        return L.OneCycleLR(o, max_lr=1.0, total_steps=10)
    if name == "OneCycleLR3":
        return L.OneCycleLR(o, max_lr=1.0, total_steps=12, three_phase=True,
                            anneal_strategy="linear")  # fmt: skip
    if name == "CyclicLR":
        return L.CyclicLR(o, 0.01, 0.1, step_size_up=3)
    if name == "CosineAnnealingWarmRestarts":
        return L.CosineAnnealingWarmRestarts(o, 3)
    if name == "ReduceLROnPlateau":
        return L.ReduceLROnPlateau(o)
    if name == "SequentialLR":
        return L.SequentialLR(o, [L.ConstantLR(o, 0.5, 2), L.ExponentialLR(o, 0.9)], [2])
    if name == "ChainedScheduler":
        return L.ChainedScheduler([L.ConstantLR(o, 0.5, 2), L.ExponentialLR(o, 0.9)])
    if name == "LambdaLR":
        return L.LambdaLR(o, lambda e: 0.9**e)
    if name == "PolynomialLR":
        return L.PolynomialLR(o, 5, 2.0)
    raise AssertionError(name)


def _step(s, name):
    s.optimizer.step()
    if name == "ReduceLROnPlateau":
        s.step(1.0)
    else:
        s.step()


def _close(a, b):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            _close(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=1e-12) or a == b
    else:
        assert a == b, (a, b)


SCHEDULERS = ["OneCycleLR", "OneCycleLR3", "CyclicLR", "CosineAnnealingWarmRestarts",
              "ReduceLROnPlateau", "SequentialLR", "ChainedScheduler", "LambdaLR",
              "PolynomialLR"]  # fmt: skip


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_state_dict_matches_torch(name):
    ours, theirs = _make(descent, name), _make(torch, name)
    for _ in range(4):
        _close(ours.state_dict(), theirs.state_dict())
        _step(ours, name)
        _step(theirs, name)
    _close(ours.state_dict(), theirs.state_dict())


def _load(dst, src):
    """dst.load_state_dict(src's), with the optimizer's group lrs and momenta (a checkpoint
    holds the optimizer's state too; PyTorch's chainable forms read the groups' lrs)."""
    dst.load_state_dict(src.state_dict())
    for gd, gs in zip(dst.optimizer.param_groups, src.optimizer.param_groups, strict=True):
        for k in ("lr", "momentum", "initial_lr", "max_lr", "min_lr", "max_momentum",
                  "base_momentum"):  # fmt: skip
            if k in gs:
                gd[k] = gs[k]


@pytest.mark.parametrize("name", SCHEDULERS)
def test_scheduler_checkpoint_crosses_libraries(name):
    """A state_dict saved by one library loads in the other and the schedules go on alike."""
    ours, theirs = _make(descent, name), _make(torch, name)
    for _ in range(3):
        _step(theirs, name)
    _load(ours, theirs)
    for _ in range(3):
        _step(ours, name)
        _step(theirs, name)
        _close(ours.get_last_lr(), theirs.get_last_lr())
    back = _make(torch, name)
    _load(back, ours)
    _step(back, name)
    _step(ours, name)
    _close(ours.get_last_lr(), back.get_last_lr())
