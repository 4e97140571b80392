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
    if name == "SWALR":
        return lib.optim.swa_utils.SWALR(o, 0.05, anneal_epochs=3, anneal_strategy="linear")
    if name == "StepLR":
        return L.StepLR(o, 2)
    if name == "CosineAnnealingLR":
        return L.CosineAnnealingLR(o, 5)
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
              "PolynomialLR", "SWALR", "StepLR", "CosineAnnealingLR"]  # fmt: skip


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


# -- torch.utils.swap_tensors, Tensor.module_load, torch.__future__ -----------------------------


def _swap_case(lib):
    a = lib.arange(3.0)
    b = lib.ones(2, 2, dtype=lib.float64, requires_grad=True)
    b.grad = lib.full((2, 2), 5.0, dtype=lib.float64)
    a.foo = 1
    a.add_(1)  # version 1
    lib.utils.swap_tensors(a, b)
    return [(tuple(t.shape), str(t.dtype).split(".")[1], t.requires_grad, t.tolist(),
             None if t.grad is None else t.grad.tolist(), t.__dict__, t._version)
            for t in (a, b)]  # fmt: skip


def test_swap_tensors_matches_torch():
    assert _swap_case(descent) == _swap_case(torch)


def test_swap_tensors_parameter_class_and_views():
    for lib in (descent, torch):
        p, t = lib.nn.Parameter(lib.zeros(2)), lib.ones(3)
        lib.utils.swap_tensors(p, t)
        assert type(p) is lib.Tensor and type(t) is lib.nn.Parameter
        assert (p.requires_grad, t.requires_grad, p.tolist()) == (False, True, [1.0, 1.0, 1.0])
        base = lib.arange(4.0)
        view, other = base[:2], lib.zeros(2)
        lib.utils.swap_tensors(view, other)  # a view may be swapped (as in PyTorch)
        assert view.tolist() == [0.0, 0.0] and other.tolist() == [0.0, 1.0]
        base2 = lib.arange(4.0)
        keep = base2[:2]  # noqa: F841 - a live view of base2
        with pytest.raises(RuntimeError):
            lib.utils.swap_tensors(base2, lib.zeros(4))


def test_swap_tensors_refuses_weakrefs():
    import weakref

    for lib in (descent, torch):
        a, b = lib.zeros(2), lib.ones(2)
        ref = weakref.ref(a)
        with pytest.raises(RuntimeError, match="Cannot swap t1 because it has weakref"):
            lib.utils.swap_tensors(a, b)
        with pytest.raises(RuntimeError, match="Cannot swap t2 because it has weakref"):
            lib.utils.swap_tensors(b, a)
        del ref
        d = a.detach()  # descent's ViewTag is a weak reference of its own: not the user's
        lib.utils.swap_tensors(a, b)
        assert a.tolist() == [1.0, 1.0] and d.tolist() == [0.0, 0.0]


def test_module_load_matches_torch():
    for lib in (descent, torch):
        p = lib.nn.Parameter(lib.zeros(2, dtype=lib.float64), requires_grad=False)
        other = lib.ones(2, requires_grad=True)
        with lib.no_grad():
            r = p.module_load(other)
        assert type(r) is lib.Tensor and not r.requires_grad and r is not p
        assert r.dtype == lib.float64 and p.tolist() == [1.0, 1.0]
        r = p.module_load(other * 3, assign=True)
        assert r.dtype == lib.float32 and not r.requires_grad and r.tolist() == [3.0, 3.0]
        assert p.tolist() == [1.0, 1.0]


def test_future_switches():
    f = descent.__future__
    for name in ("overwrite_module_params_on_conversion", "swap_module_params_on_conversion"):
        get, put = getattr(f, "get_" + name), getattr(f, "set_" + name)
        assert get() is getattr(torch.__future__, "get_" + name)() is False
        put(True)
        assert get() is True
        put(False)
        assert get() is False


def _load_case(lib, swap, assign, param_in_sd):
    lib.__future__.set_swap_module_params_on_conversion(swap)
    try:
        m = lib.nn.BatchNorm1d(2)
        if param_in_sd:
            m.weight.requires_grad_(False)
        w = m.weight
        weight = (lib.nn.Parameter(lib.full((2,), 3.0)) if param_in_sd
                  else lib.full((2,), 3.0, dtype=lib.float64))  # fmt: skip
        sd = {"weight": weight, "bias": lib.zeros(2), "running_mean": lib.ones(2),
              "running_var": lib.ones(2), "num_batches_tracked": lib.tensor(4)}  # fmt: skip
        m.load_state_dict(sd, assign=assign)
        out = [type(m.weight).__name__, str(m.weight.dtype).split(".")[1],
               m.weight.requires_grad, m.weight is w, m.weight is sd["weight"],
               m.weight.tolist(), m.bias.tolist(), m.num_batches_tracked.item()]  # fmt: skip
        if not swap:  # PyTorch's swap path copies where descent's may share: not compared
            out += [m.weight.data_ptr() == sd["weight"].data_ptr(),
                    m.running_mean is sd["running_mean"]]  # fmt: skip
        return out
    finally:
        lib.__future__.set_swap_module_params_on_conversion(False)


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("assign,param_in_sd", [(False, False), (True, False), (True, True)])
def test_load_state_dict_assign_and_swap_match_torch(swap, assign, param_in_sd):
    assert _load_case(descent, swap, assign, param_in_sd) == _load_case(torch, swap, assign,
                                                                        param_in_sd)  # fmt: skip


def _module_load_case(lib):
    class Doubling(lib.nn.Parameter):
        def module_load(self, other, assign=False):
            return (other * 2).detach()

    m = lib.nn.Linear(2, 1)
    m.weight = Doubling(lib.zeros(1, 2))
    w = m.weight
    lib.__future__.set_swap_module_params_on_conversion(True)
    try:
        m.load_state_dict({"weight": lib.ones(1, 2), "bias": lib.zeros(1)})
    finally:
        lib.__future__.set_swap_module_params_on_conversion(False)
    return [m.weight is w, type(m.weight).__name__, m.weight.tolist(), m.weight.requires_grad]


def test_load_state_dict_swap_uses_module_load():
    """Under the swap switch, a Parameter subclass's module_load decides what is loaded."""
    assert _module_load_case(descent) == _module_load_case(torch)


# -- nn.attention.bias: a submodule torch does not import with nn.attention ---------------------


def test_attention_bias_submodule_as_torch():
    import subprocess
    import sys

    code = ("import {0}.nn.attention, sys; a = hasattr({0}.nn.attention, 'bias'); "
            "import {0}.nn.attention.bias; print(a, hasattr({0}.nn.attention, 'bias'), "
            "hasattr({0}.nn.attention.bias, 'causal_lower_right'))")  # fmt: skip
    run = [subprocess.run([sys.executable, "-c", code.format(lib)], capture_output=True,
                          text=True, check=True) for lib in ("descent", "torch")]  # fmt: skip
    outs = [r.stdout for r in run]
    assert outs[0] == outs[1] == "False True True\n"


def _conversion_case(lib, flag):
    getattr(lib.__future__, f"set_{flag}_module_params_on_conversion")(True)
    try:
        m = lib.nn.Linear(2, 2)
        m(lib.ones(3, 2)).sum().backward()
        w = m.weight
        m.double()
        return [m.weight is w, type(m.weight).__name__, str(m.weight.dtype).split(".")[1],
                str(w.dtype).split(".")[1], str(m.weight.grad.dtype).split(".")[1],
                m.weight.requires_grad]  # fmt: skip
    finally:
        getattr(lib.__future__, f"set_{flag}_module_params_on_conversion")(False)


@pytest.mark.parametrize("flag", ["swap", "overwrite"])
def test_module_conversion_switches_match_torch(flag):
    assert _conversion_case(descent, flag) == _conversion_case(torch, flag)
