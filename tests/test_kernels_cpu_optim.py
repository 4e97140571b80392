"""The optimizers' one-pass numba steps (kernels/_cpu_optim.py) against their NumPy sequences.

Each eager `_update` asks `backend.fused` for its kernel; with the kernels off
(`cpu.set_enabled(False)`, i.e. DESCENT_KERNELS=numpy) the NumPy sequence runs. The two must
give the same bits for parameters and state, over several steps (the first step differs for
SGD's momentum buffer), in float32 and float64, with edge values in the gradients and
parameters (signed zeros, subnormals, huge values, inf, nan). Agreement with torch is
tests/test_optim*.py's job (they run with the kernels on).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import descent
from descent.kernels import cpu

needs_numba = pytest.mark.skipif(not cpu.available(), reason="numba missing")


@contextlib.contextmanager
def kernels(flag: bool):
    previous = cpu.set_enabled(flag)
    try:
        yield
    finally:
        cpu.set_enabled(previous)


def _values(rng, shape, dtype, edges):
    x = rng.standard_normal(shape).astype(dtype)
    if edges and x.size >= 40:
        flat = x.reshape(-1)
        tiny = np.finfo(dtype).tiny
        special = [0.0, -0.0, tiny / 4, -tiny / 3, 1e30, -3e35, np.inf, -np.inf, np.nan, 1.0]
        special = np.array(special, dtype=dtype)
        flat[: special.size] = special
        flat[-20:] *= dtype(1e-20)  # tiny steps next to normal ones
    return x


def _run(cls, opts, dtype, edges, steps=4):
    """The parameters and optimizer state after `steps` steps on fixed random gradients."""
    rng = np.random.default_rng(11)
    shapes = [(300,), (7, 5), (1,)]
    params = [
        descent.nn.Parameter(descent.tensor(_values(rng, s, dtype, edges), dtype=dtype))
        for s in shapes
    ]
    opt = cls(params, **opts)
    for _ in range(steps):
        for p in params:
            p.grad = descent.tensor(_values(rng, p.shape, dtype, edges), dtype=dtype)
        opt.step()
    out = [p.numpy().copy() for p in params]
    for p in params:
        for value in opt.state[p].values():
            out.append(np.atleast_1d(value.numpy() if hasattr(value, "numpy") else value).copy())
    return out


CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=5e-4)),
    ("SGD", dict(lr=0.03, momentum=0.9, dampening=0.1, weight_decay=1.0, maximize=True)),
    ("SGD", dict(lr=0.07, momentum=0.8, nesterov=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.05, momentum=1.0, nesterov=True)),  # the *_one flags
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=1.0)),
    ("RMSprop", dict(lr=1e-3)),
    ("RMSprop", dict(lr=1e-2, alpha=0.9, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=1e-2, centered=True, momentum=0.9, weight_decay=1.0)),
    ("RMSprop", dict(lr=1e-2, alpha=0.3, centered=True)),  # lerp's second form
    ("RMSprop", dict(lr=1e-2, momentum=0.5, eps=1e-3)),
    ("Adagrad", dict(lr=1e-2)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, weight_decay=1.0, maximize=True, eps=1e-3)),
    ("Adamax", dict(lr=2e-3)),
    ("Adamax", dict(lr=1e-2, betas=(0.3, 0.9), weight_decay=0.1, maximize=True)),
    ("Adamax", dict(lr=1e-2, weight_decay=1.0, eps=0.0)),
    ("NAdam", dict(lr=2e-3)),
    ("NAdam", dict(lr=1e-2, betas=(0.3, 0.9), weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True)),
    # rho_t <= 5 for the first 5 steps (the unrectified step), then > 5 (8 steps run)
    ("RAdam", dict(lr=1e-3)),
    ("RAdam", dict(lr=1e-2, betas=(0.3, 0.9), weight_decay=1.0, maximize=True)),
    ("RAdam", dict(lr=1e-2, betas=(0.9, 0.5), weight_decay=0.1, decoupled_weight_decay=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.3, weight_decay=0.1, maximize=True)),
    ("Adadelta", dict(lr=-1.0 + 2.0, rho=0.95, weight_decay=1.0, eps=1e-3)),
    ("ASGD", dict(lr=1e-2)),
    ("ASGD", dict(lr=0.05, lambd=1e-3, alpha=0.5, t0=2, weight_decay=0.1, maximize=True)),
    ("ASGD", dict(lr=0.05, t0=0, weight_decay=1.0)),
    ("Adam", dict(lr=1e-3, amsgrad=True)),
    ("Adam", dict(lr=1e-2, betas=(0.3, 0.9), weight_decay=1.0, maximize=True, amsgrad=True)),
    ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True)),
    ("Lion", dict(lr=1e-3)),
    ("Lion", dict(lr=1e-2, betas=(0.3, 0.99), weight_decay=0.1, maximize=True)),
    ("Lion", dict(lr=1e-2, betas=(0.95, 0.2), weight_decay=1.0)),  # lerp's second form
]


@needs_numba
@pytest.mark.parametrize("edges", [False, True], ids=["random", "edges"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, opts", CASES)
def test_fused_step_is_bitwise_the_numpy_path(name, opts, dtype, edges, monkeypatch):
    cls = getattr(descent.optim, name)
    steps = 8 if name == "RAdam" else 4
    kernel_name = "adam_amsgrad_update" if opts.get("amsgrad") else f"{name.lower()}_update"
    calls = []
    original = cpu.KERNELS[kernel_name]

    def spy(*args, **kwargs):
        calls.append(args[0].dtype)
        return original(*args, **kwargs)

    monkeypatch.setitem(cpu.KERNELS, kernel_name, spy)
    with kernels(True), np.errstate(all="ignore"):
        got = _run(cls, opts, dtype, edges, steps)
    assert calls and all(dt == dtype for dt in calls)  # the fused path ran
    calls.clear()
    with kernels(False), np.errstate(all="ignore"):
        want = _run(cls, opts, dtype, edges, steps)
    assert not calls
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        # Same bits (signed zeros too), NaN where NaN: a NaN's sign is not part of the
        # contract (x86 keeps one operand's NaN, and LLVM may swap a commutative op's operands)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        keep = ~np.isnan(a)
        np.testing.assert_array_equal(a[keep].view(np.uint8), b[keep].view(np.uint8))


@needs_numba
def test_sgd_bfloat16_params_take_the_numpy_path(monkeypatch):
    """bfloat16 parameters round where PyTorch's ops end: the kernel is not asked for them."""
    asked = []
    monkeypatch.setitem(cpu.KERNELS, "sgd_update", lambda *a, **k: asked.append(1))
    p = descent.nn.Parameter(descent.ones(4, dtype=descent.bfloat16))
    p.grad = descent.ones(4, dtype=descent.bfloat16)
    descent.optim.SGD([p], lr=0.1, momentum=0.9).step()
    assert not asked and p.float().numpy().tolist() == [0.8984375] * 4
