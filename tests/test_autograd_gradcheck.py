"""descent.autograd.gradcheck / gradgradcheck: PyTorch's signatures, verdicts and errors, on the
same functions as torch.autograd's (torch is the oracle; descent never imports it)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds
from descent.autograd_gradcheck import GradcheckError


def _pair(lib, data, dtype="float64", rg=True):
    t = lib.tensor(np.asarray(data), dtype=getattr(lib, dtype))
    return t.requires_grad_(rg)


def _square_fn(lib, wrong_first=False, wrong_second=False):
    """x**2 as a custom Function whose backward is wrong (3x) or not differentiable twice."""

    class Square(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x**2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            if wrong_first:
                return g * 3 * x
            return g * 2 * (x.detach() if wrong_second else x)

    return Square.apply


X = [0.3, -1.2, 2.0]
Y = [0.5, 1.5]


def _verdict(lib, func, inputs, check="gradcheck", **kw):
    try:
        return getattr(lib.autograd, check)(func, inputs, **kw)
    except RuntimeError as e:
        return type(e).__name__ + ": " + str(e).split(",")[0]


CASES = [
    ("sin", lambda lib: lambda a: a.sin()),
    ("two_outputs", lambda lib: lambda a, b: (a * b[0], (a + b.sum()).exp())),
    ("matrix_output", lambda lib: lambda a, b: a[:, None] * b.exp()),
    ("custom_right", lambda lib: _square_fn(lib)),
    ("custom_wrong", lambda lib: _square_fn(lib, wrong_first=True)),
    ("custom_second_wrong", lambda lib: _square_fn(lib, wrong_second=True)),
]


def _inputs(lib, name):
    if name in ("two_outputs", "matrix_output"):
        return (_pair(lib, X), _pair(lib, Y))
    return (_pair(lib, X),)


@pytest.mark.parametrize("check", ["gradcheck", "gradgradcheck"])
@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_verdicts_match_torch(name, make, check):
    want = _verdict(torch, make(torch), _inputs(torch, name), check)
    got = _verdict(ds, make(ds), _inputs(ds, name), check)
    assert got == want
    want = _verdict(torch, make(torch), _inputs(torch, name), check, raise_exception=False)
    assert _verdict(ds, make(ds), _inputs(ds, name), check, raise_exception=False) == want


def test_error_type_and_message():
    x = _pair(ds, X)
    with pytest.raises(GradcheckError) as info:
        ds.autograd.gradcheck(_square_fn(ds, wrong_first=True), (x,))
    assert isinstance(info.value, RuntimeError)
    assert str(info.value).startswith("Jacobian mismatch for output 0 with respect to input 0,")
    assert "analytic" in str(info.value) and info.value.result.worst_index is not None
    assert ds.autograd.GradcheckError is GradcheckError


def test_no_input_requires_grad_and_float32_warning():
    for lib in (torch, ds):
        with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
            lib.autograd.gradcheck(lambda a: a.sin(), (_pair(lib, X, rg=False),))
    msgs = []
    for lib in (torch, ds):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            lib.autograd.gradcheck(lambda a: a * 2, (_pair(lib, X, "float32"),), atol=1e-2,
                                   eps=1e-3)  # fmt: skip
        msgs.append([str(m.message) for m in w if "double precision" in str(m.message)])
    assert msgs[0] == msgs[1] and len(msgs[1]) == 1


def test_non_tensor_and_non_grad_inputs_pass_through():
    for lib in (torch, ds):
        w = _pair(lib, Y, rg=False)
        assert lib.autograd.gradcheck(lambda a, k, b: (a[:2] * b) ** k, (_pair(lib, X), 3, w))
        assert lib.autograd.gradgradcheck(lambda a, k, b: (a[:2] * b) ** k,
                                          (_pair(lib, X), 3, w))  # fmt: skip


def test_fast_mode_grad_outputs_and_unsupported_flags():
    x = _pair(ds, X)
    assert ds.autograd.gradcheck(lambda a: a.exp() * a, (x,), fast_mode=True)
    assert not ds.autograd.gradcheck(_square_fn(ds, wrong_first=True), (x,), fast_mode=True,
                                     raise_exception=False)  # fmt: skip
    go = ds.tensor([1.0, -2.0, 0.5], dtype=ds.float64)
    assert ds.autograd.gradgradcheck(lambda a: a**3, (x,), go)
    assert ds.autograd.gradcheck(lambda a: a * 2, (x,), check_grad_dtypes=True)
    with pytest.raises(NotImplementedError, match="check_batched_grad"):
        ds.autograd.gradcheck(lambda a: a, (x,), check_batched_grad=True)
    with pytest.raises(NotImplementedError):
        ds.autograd.gradgradcheck(lambda a: a, (x,), check_batched_grad=True)


def test_checkpointed_function_passes_gradgradcheck():
    from descent.utils.checkpoint import checkpoint

    w = _pair(ds, [[0.2, -0.4], [1.1, 0.3], [0.5, 0.7]])
    f = lambda a: ds.tanh(a @ w).sum(1)  # noqa: E731
    x = _pair(ds, [[0.1, 0.2, 0.3], [-0.5, 0.4, 0.9]])
    assert ds.autograd.gradcheck(lambda a, b: checkpoint(f, a, use_reentrant=False) * b,
                                 (x, _pair(ds, Y)))  # fmt: skip
    assert ds.autograd.gradgradcheck(lambda a: checkpoint(f, a, use_reentrant=False), (x,))


def test_non_floating_outputs_are_skipped():
    x = _pair(ds, X)
    assert ds.autograd.gradcheck(lambda a: (a * 2, a > 0, (a * 10).long()), (x,))


@pytest.mark.parametrize("fast_mode", [False, True])
def test_check_forward_ad_agrees_with_torch(fast_mode):
    """check_forward_ad (descent.autograd.forward_ad) gives torch's verdicts: pass for correct
    functions, with or without the backward check, and a forward-mode mismatch message."""
    f = lambda lib, a, b: ((a.exp() * a).sum() * b, lib.tanh(b))  # noqa: E731
    for lib in (ds, torch):
        a, b = _pair(lib, X), _pair(lib, Y)
        assert lib.autograd.gradcheck(lambda p, q, lib=lib: f(lib, p, q), (a, b),
                                      check_forward_ad=True,
                                      fast_mode=fast_mode)  # fmt: skip
        assert lib.autograd.gradcheck(lambda p, q, lib=lib: f(lib, p, q), (a, b),
                                      check_forward_ad=True,
                                      check_backward_ad=False, fast_mode=fast_mode)  # fmt: skip
    # descent's forward mode differentiates the backward pass: a wrong backward is caught
    wrong = _square_fn(ds, wrong_first=True)
    with pytest.raises(GradcheckError, match="forward mode mismatch for output 0"):
        ds.autograd.gradcheck(wrong, (_pair(ds, X),), check_forward_ad=True,
                              check_backward_ad=False, fast_mode=fast_mode)  # fmt: skip
    with pytest.raises(ValueError, match="at least one of"):
        ds.autograd.gradcheck(lambda a: a, (_pair(ds, X),), check_backward_ad=False)
