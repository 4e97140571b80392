"""descent.optim.lr_scheduler against torch.optim.lr_scheduler: the same lrs for 60 steps.

descent computes each lr in closed form from the step count; PyTorch mostly multiplies the
previous lr. The two agree to rounding: rtol 1e-12 (atol 1e-15 for lrs that reach 0).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

import descent.optim as optim
from descent.nn import Parameter
from descent.optim import lr_scheduler as ls

STEPS = 60
LRS = (0.1, 0.05)  # two parameter groups with different lrs


def _pair(opt_name="SGD", **kwargs):
    ours = getattr(optim, opt_name)(
        [{"params": [Parameter(np.zeros(2))], "lr": lr} for lr in LRS], **kwargs
    )
    theirs = getattr(torch.optim, opt_name)(
        [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in LRS], **kwargs
    )
    return ours, theirs


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-12, atol=1e-15)


def _run_both(ours_opt, theirs_opt, ours_sched, theirs_sched, steps=STEPS, extra=()):
    """Step both, comparing get_last_lr(), the groups' lr and any `extra` group keys."""
    for t in range(steps + 1):
        _close(ours_sched.get_last_lr(), theirs_sched.get_last_lr())
        _close([g["lr"] for g in ours_opt.param_groups], [g["lr"] for g in theirs_opt.param_groups])
        for key in extra:
            a = [g[key] for g in ours_opt.param_groups]
            b = [g[key] for g in theirs_opt.param_groups]
            _close(np.array(a, float), np.array(b, float))
        assert ours_sched.last_epoch == theirs_sched.last_epoch == t
        if t == steps:
            break
        ours_opt.step()
        theirs_opt.step()
        ours_sched.step()
        theirs_sched.step()


def _lambda1(e):
    return 0.95**e


def _lambda2(e):
    return 1.0 / (1 + e)


CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=40, eta_min=0.001),
    "CosineAnnealingLR-periodic": lambda m, o: m.CosineAnnealingLR(o, T_max=15),
    "LinearLR-warmup": lambda m, o: m.LinearLR(o, start_factor=0.25, total_iters=10),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=30),
    "LambdaLR": lambda m, o: m.LambdaLR(o, _lambda1),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [_lambda1, _lambda2]),
    "OneCycleLR-no-momentum": lambda m, o: m.OneCycleLR(
        o, max_lr=[0.5, 0.2], total_steps=STEPS, cycle_momentum=False
    ),
    "SequentialLR": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=40)], [5]
    ),
    "SequentialLR-3": lambda m, o: m.SequentialLR(
        o,
        [
            m.ConstantLR(o, factor=0.5, total_iters=100)
            if m is torch.optim.lr_scheduler
            else m.LambdaLR(o, lambda e: 0.5),
            m.ExponentialLR(o, gamma=0.9),
            m.StepLR(o, step_size=4, gamma=0.7),
        ],
        [10, 25],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch_for_60_steps(case):
    ours_opt, theirs_opt = _pair()
    ours = CASES[case](ls, ours_opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's notes about step order / deprecated args
        theirs = CASES[case](torch.optim.lr_scheduler, theirs_opt)
        _run_both(ours_opt, theirs_opt, ours, theirs)
    expected_initial = 0.5 / 25 if "OneCycle" in case else LRS[0]  # max_lr / div_factor
    assert ours_opt.param_groups[0]["initial_lr"] == expected_initial


@pytest.mark.parametrize(
    ("opt_name", "kwargs", "sched_kwargs", "key"),
    [
        ("SGD", dict(momentum=0.9), dict(), "momentum"),
        ("SGD", dict(momentum=0.9), dict(three_phase=True, anneal_strategy="linear"), "momentum"),
        ("Adam", dict(), dict(pct_start=0.25, div_factor=10.0), "betas"),
        ("AdamW", dict(), dict(three_phase=True, base_momentum=0.8), "betas"),
    ],
)
def test_one_cycle_matches_torch_including_momentum(opt_name, kwargs, sched_kwargs, key):
    ours_opt, theirs_opt = _pair(opt_name, **kwargs)
    ours = ls.OneCycleLR(ours_opt, max_lr=[0.5, 0.2], total_steps=STEPS, **sched_kwargs)
    theirs = torch.optim.lr_scheduler.OneCycleLR(
        theirs_opt, max_lr=[0.5, 0.2], total_steps=STEPS, **sched_kwargs
    )
    _run_both(ours_opt, theirs_opt, ours, theirs, steps=STEPS, extra=(key,))
    with pytest.raises(ValueError, match="total_steps"):
        ours.step()


def _nanogpt_get_lr(it, learning_rate=1e-3, warmup_iters=100, lr_decay_iters=2000, min_lr=1e-4):
    # nanoGPT's train.py, transcribed
    if it < warmup_iters:
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    assert 0 <= decay_ratio <= 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def test_warmup_cosine_function_is_nanogpts():
    for it in [0, 1, 50, 99, 100, 101, 500, 1999, 2000, 2001, 5000]:
        assert ls.warmup_cosine_lr(it, 100, 2000, 1e-3, 1e-4) == _nanogpt_get_lr(it)
    assert ls.warmup_cosine_lr(0, 100, 2000, 1e-3, 1e-4) == pytest.approx(1e-3 / 101)
    assert ls.warmup_cosine_lr(100, 100, 2000, 1e-3, 1e-4) == 1e-3  # the peak
    assert ls.warmup_cosine_lr(2000, 100, 2000, 1e-3, 1e-4) == pytest.approx(1e-4)
    assert ls.warmup_cosine_lr(5, 0, 0, 1e-3, 1e-4) == 1e-4  # no warmup, no decay


def test_warmup_cosine_scheduler_matches_torch_lambda():
    warmup, decay, min_lr = 10, 45, 1e-3
    ours_opt, theirs_opt = _pair()
    # One absolute min_lr for every group, as nanoGPT uses; the torch side expresses it as a
    # factor of each group's base lr.
    ours = ls.WarmupCosineLR(ours_opt, warmup_iters=warmup, lr_decay_iters=decay, min_lr=min_lr)
    theirs = torch.optim.lr_scheduler.LambdaLR(
        theirs_opt,
        [lambda it, b=b: ls.warmup_cosine_lr(it, warmup, decay, 1.0, min_lr / b) for b in LRS],
    )
    _run_both(ours_opt, theirs_opt, ours, theirs, steps=STEPS)
    assert ours_opt.param_groups[0]["lr"] == min_lr  # past lr_decay_iters: exactly min_lr
    sd = ours.state_dict()
    assert sd["warmup_iters"] == warmup and sd["min_lrs"] == [min_lr, min_lr]


@pytest.mark.parametrize("case", ["StepLR", "CosineAnnealingLR", "SequentialLR", "MultiStepLR"])
def test_state_dict_resume_continues_the_schedule(case):
    opt, _ = _pair()
    sched = CASES[case](ls, opt)
    for _ in range(20):
        opt.step()
        sched.step()
    opt_sd = json.loads(json.dumps(opt.state_dict()["param_groups"]))
    sched_sd = json.loads(json.dumps(sched.state_dict()))  # plain values only
    expected = []
    for _ in range(20):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr())
    # A fresh run: the optimizer's groups (with "initial_lr") restored first, as a resume does.
    opt2, _ = _pair()
    opt2.load_state_dict({"state": {}, "param_groups": opt_sd})
    sched2 = CASES[case](ls, opt2)
    sched2.load_state_dict(sched_sd)
    assert sched2.last_epoch == 20
    got = []
    for _ in range(20):
        opt2.step()
        sched2.step()
        got.append(sched2.get_last_lr())
    _close(got, expected)


def test_lr_at_is_the_closed_form_and_step_epoch_jumps_with_it():
    # step() is PyTorch's recursive form (a hand-made change carries forward, as there:
    # tests/test_lr_scheduler_s18.py); lr_at and step(epoch) are its closed form from base_lrs
    opt, _ = _pair()
    sched = ls.CosineAnnealingLR(opt, T_max=10)
    _close(sched.lr_at(5), [b * 0.5 for b in LRS])
    opt.param_groups[0]["lr"] = 123.0
    sched.step(epoch=10)
    _close(opt.param_groups[0]["lr"], 0.0)


def test_resume_with_last_epoch_needs_initial_lr():
    opt, _ = _pair()
    with pytest.raises(KeyError, match="initial_lr"):
        ls.StepLR(opt, step_size=3, last_epoch=5)
    for g in opt.param_groups:
        g["initial_lr"] = g["lr"]
    sched = ls.StepLR(opt, step_size=3, gamma=0.5, last_epoch=5)
    assert sched.last_epoch == 6
    # PyTorch's construction step is recursive: epoch 6 is a boundary, so the current lr x gamma
    _close(sched.get_last_lr(), [b * 0.5 for b in LRS])


def test_invalid_arguments():
    opt, _ = _pair()
    with pytest.raises(TypeError):
        ls.StepLR(object(), step_size=2)
    with pytest.raises(ValueError, match="step_size"):
        ls.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="start_factor"):
        ls.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="T_max"):
        ls.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="lr_lambda"):
        ls.LambdaLR(opt, [_lambda1])
    with pytest.raises(ValueError, match="milestones"):
        ls.SequentialLR(opt, [ls.ExponentialLR(opt, 0.9), ls.ExponentialLR(opt, 0.8)], [])
    with pytest.raises(ValueError, match="total_steps"):
        ls.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="momentum"):
        ls.OneCycleLR(optim.Adagrad([Parameter(np.zeros(1))]), max_lr=0.1, total_steps=10)
    with pytest.raises(ValueError, match="lr_decay_iters"):
        ls.WarmupCosineLR(opt, warmup_iters=10, lr_decay_iters=5)


def test_multistep_milestones_are_a_counter_as_torch():
    # PyTorch keeps MultiStepLR.milestones as a Counter (repeats counted) and puts it in
    # state_dict(); descent kept a sorted list, so `sched.milestones[12]`, `.elements()` and a
    # torch-made state dict differed. Order given, repeats and a torch state dict round trip.
    ours_opt, theirs_opt = _pair()
    ours = ls.MultiStepLR(ours_opt, milestones=[12, 5, 30, 12], gamma=0.3)
    theirs = torch.optim.lr_scheduler.MultiStepLR(theirs_opt, milestones=[12, 5, 30, 12], gamma=0.3)
    assert ours.milestones == theirs.milestones and type(ours.milestones) is type(theirs.milestones)
    assert ours.milestones[12] == 2 and sorted(ours.milestones.elements()) == [5, 12, 12, 30]
    assert ours.state_dict()["milestones"] == theirs.state_dict()["milestones"]
    _run_both(ours_opt, theirs_opt, ours, theirs, steps=20)
    # a state dict saved by torch after 20 steps resumes descent's schedule
    opt2, _ = _pair()
    for g, lr in zip(opt2.param_groups, LRS, strict=True):
        g["initial_lr"] = lr
    resumed = ls.MultiStepLR(opt2, milestones=[1], gamma=0.3, last_epoch=0)
    for g, tg in zip(opt2.param_groups, theirs_opt.param_groups, strict=True):
        g["lr"] = tg["lr"]  # the optimizer's state, which a resume loads too (steps recurse)
    resumed.load_state_dict(theirs.state_dict())
    assert resumed.milestones == theirs.milestones
    for _ in range(20):
        opt2.step()
        resumed.step()
        theirs_opt.step()
        theirs.step()
        _close(resumed.get_last_lr(), theirs.get_last_lr())


class _Warmup:
    """A stateful schedule object, as training scripts write one (state in its __dict__)."""

    def __init__(self, warmup):
        self.warmup = warmup
        self.calls = 0

    def __call__(self, step):
        self.calls += 1
        return min(1.0, (step + 1) / self.warmup)


@pytest.mark.parametrize("name", ["LambdaLR", "MultiplicativeLR"])
def test_lambda_schedulers_save_callable_objects_state_as_torch(name):
    """state_dict()['lr_lambdas']: None for a function, a callable object's __dict__; loading
    it restores the object's attributes (descent dropped `lr_lambdas` entirely, so a resumed
    stateful schedule object started over)."""
    import descent  # noqa: PLC0415

    results = []
    for lib in (descent, torch):
        make = getattr(lib.optim.lr_scheduler, name)
        p = lib.nn.Parameter(lib.ones(1))
        opt = lib.optim.SGD([{"params": [p]}, {"params": [lib.nn.Parameter(lib.ones(1))]}], lr=1.0)
        sched = make(opt, [_Warmup(4), lambda s: 0.9])
        for _ in range(3):
            opt.step()
            sched.step()
        sd = sched.state_dict()
        saved = sd["lr_lambdas"]
        opt2 = lib.optim.SGD([{"params": [p]}, {"params": [lib.nn.Parameter(lib.ones(1))]}], lr=1.0)
        fresh = _Warmup(99)
        sched2 = make(opt2, [fresh, lambda s: 0.9])
        sched2.load_state_dict(sd)
        results.append((saved, fresh.warmup, fresh.calls, sched2.last_epoch, sched2.get_last_lr()))
    assert results[0] == results[1]
    assert results[0][0][0]["warmup"] == 4 and results[0][0][1] is None
