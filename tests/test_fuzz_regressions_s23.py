"""Regressions found by the session-23 fuzz campaign (helper-168; seeds 23100001 onward of
tests/test_fuzz_differential.py and tests/test_view_inplace_fuzz_s14.py): each case runs in
descent and in torch 2.13 (the oracle) and compares the outcomes."""

import math

import numpy as np
import pytest
import torch

import descent as ds


def _outcome(fn, m):
    """fn(m)'s value as a NumPy array, or the class of the error it raised."""
    try:
        r = fn(m)
    except Exception as e:  # noqa: BLE001 - the outcome compared is the error class
        return RuntimeError if isinstance(e, RuntimeError) else type(e)
    return np.asarray(r.detach().numpy() if hasattr(r, "detach") else r)


def _same(fn):
    t, d = _outcome(fn, torch), _outcome(fn, ds)
    if isinstance(t, type):
        assert d is t, (d, t)
    else:
        assert not isinstance(d, type), d
        assert d.dtype == t.dtype and d.shape == t.shape, (d, t)
        np.testing.assert_array_equal(d, t)


@pytest.mark.parametrize("mode", ["floor", "trunc"])
@pytest.mark.parametrize("cot", [math.inf, math.nan])
def test_rounded_div_gradient_is_zeros_for_an_inf_or_nan_cotangent(mode, cot):
    # div(rounding_mode=...)'s gradient was gy * 0 (nan where gy is inf or nan); PyTorch's
    # div_tensor_self/other_backward give zeros_like(grad). Fuzz program 23100070303857 (view
    # fuzz): floor div_ then pow with a fractional exponent at 0 (gy = inf) gave x.grad nan.
    def grads(m):
        x = m.tensor([-2.256, 1.0], requires_grad=True)
        o = m.tensor([1.706, 2.0], requires_grad=True)
        y = x * 1
        y.div_(1.706, rounding_mode=mode)
        z = m.div(x, o, rounding_mode=mode) + y
        (z * cot).sum().backward()
        return m.stack([x.grad, o.grad])

    _same(grads)


def test_floor_div_then_pow_of_a_negative_base_gradient():
    # the fuzz program, shrunk: pow_'s gradient at -2 ** 0.826 is nan, floor div_'s is 0
    def grad(m):
        x = m.tensor(-2.256, requires_grad=True)
        y = x * 1
        y.div_(1.706, rounding_mode="floor")
        y.pow_(m.tensor(0.826))
        y.backward()
        return x.grad

    _same(grad)


@pytest.mark.parametrize(
    "write",
    [
        lambda v: v.div_(2),  # float result into int64: raises
        lambda v: v.add_(2.5),  # same
        lambda v: v.add_(2),  # fine
        lambda v: v.add_(v.new_ones(3)),  # (3,) does not broadcast to (0,): raises
    ],
)
def test_write_into_an_empty_expanded_tensor_checks_dtype_and_shape(write):
    # NumPy refuses a read-only (expanded) array before its casting check, and descent took
    # an empty one's refusal as "nothing to write"; PyTorch checks the result type and the
    # shapes even with nothing to write. Fuzz program 23100070306457 (view fuzz):
    # bool (2, 0) -> pow(2) (int64) -> diagonal -> expand(0) -> div_(2).
    def run(m):
        v = m.zeros((2, 0), dtype=m.int64).diagonal(0, 0, 1).expand(0)
        write(v)
        return v

    _same(run)


def test_sgn_after_sinc_materializes_the_zero_gradient():
    # sinc passed sgn's known-zero gradient on to x * x, which kept it (0 at a nan x);
    # PyTorch's sinc_backward ends in where(pi x^2 == 0, 0, out): real zeros, and x * x's
    # backward then gives 0 * nan = nan. Differential fuzz (fuzz_extra_dtypes.py ints,
    # seed 23100002): `x * x > sinc > sgn`, float32. sinc(x) then sgn stays 0 at inf and nan.
    def grads(m):
        x = m.tensor([[1.0, math.inf], [math.nan, 0.0]], requires_grad=True)
        m.sgn(m.sinc(x * x)).sum().backward()
        y = m.tensor([[1.0, math.inf], [math.nan, 0.0]], requires_grad=True)
        m.sgn(m.sinc(y)).sum().backward()
        return m.stack([x.grad, y.grad])

    _same(grads)


@pytest.mark.parametrize("index", ["basic", "tensor", "view"])
def test_overwritten_entries_get_zero_gradient_for_an_inf_or_nan_cotangent(index):
    # SetItem's gradient to the overwritten tensor was gy * (0/1 mask): nan where gy is inf or
    # nan; PyTorch's CopySlices zero_()s the slice (index_put writes zeros). View fuzz program
    # 23100070311834: y = x * 1; v = y.unsqueeze(1); v.clamp_(0); v.pow_(x.unsqueeze(1))
    # gave x.grad nan (pow's inf gradient at 0 ** negative, through clamp_'s write).
    def grads(m):
        x = m.tensor([1.2, -1.081, 0.5], dtype=m.float64, requires_grad=True)
        y = x * 1
        if index == "view":
            v = y.unsqueeze(0)
            v.clamp_(0)
            v.pow_(x.unsqueeze(0))
            y.backward(m.tensor([0.5, -1.88, 0.2], dtype=m.float64))
            return x.grad
        if index == "basic":
            y[1] = x[0]
        else:
            y[m.tensor([1])] = x[0]
        (y * m.tensor([math.inf, math.nan, 1.0], dtype=m.float64)).sum().backward()
        return x.grad

    _same(grads)


def test_write_into_a_non_overlapping_part_of_an_expanded_tensor():
    # copy_ / clamp_ into a part of an expanded tensor whose elements do not share memory
    # raised "the tensor's memory is read-only" (NumPy's broadcast arrays are); PyTorch writes
    # into the expanded tensor's memory (fill_ did already). A write into the whole expanded
    # tensor still raises in both. View fuzz program 23100070307871.
    def run(m):
        x = m.tensor([[-0.249, 0.062]], dtype=m.float64, requires_grad=True)
        with m.no_grad():
            e = x.expand(2, 2)
            e[0, -3:-1:2].copy_(m.tensor([-0.801], dtype=m.float64))
            e[1, 1:].clamp_(0.5)
        return x

    _same(run)
    _same(lambda m: m.zeros(1, 2).expand(2, 2).copy_(m.ones(2, 2)))
