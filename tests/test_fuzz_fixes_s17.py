"""Fixes found by this session's differential fuzz rounds (tests/test_fuzz_differential.py
from case 4170000, tests/fuzz_extra_dtypes.py half with seed 4170001), each against torch 2.13.
"""

import math

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


def _grads(m, fn, arrays, w, dtype):
    dt = getattr(m, dtype)
    ts = [m.tensor(a, dtype=dt, requires_grad=True) for a in arrays]
    out = fn(m, *ts)
    gs = m.autograd.grad(out, ts, m.tensor(np.asarray(w), dtype=dt))
    return [np.asarray(g.float().tolist() if m is torch else g.to(descent.float32).tolist())
            for g in gs]  # fmt: skip


def _same(a, b):
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(np.nan_to_num(a, nan=0), np.nan_to_num(b, nan=0), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_cumprod_backward_at_the_first_zero_multiplies_the_sum_by_the_prefix(dtype):
    # fuzz_extra_dtypes half, seed 4170001: at the first zero z, PyTorch computes
    # y_{z-1} * (gy_z + sum_j gy_j prod_{z<i<=j} x_i); descent summed inf * gy_j terms of both
    # signs (nan where PyTorch has inf)
    x = [[math.inf, 1.0, 0.0, 1.0], [1.0, 2.0, 0.0, 3.0], [0.0, 2.0, 1.0, 0.0]]
    w = [[0.5, -0.3, 0.7, -0.2], [0.1, 0.2, 0.3, 0.4], [1.0, -2.0, 0.5, 0.25]]

    def f(m, a):
        return m.cumprod(a, 1)

    for a, b in zip(_grads(torch, f, [x], w, dtype), _grads(descent, f, [x], w, dtype),
                    strict=True):  # fmt: skip
        _same(b, a)


def test_cumprod_backward_with_zeros_and_infs_random():
    rng = np.random.default_rng(0)
    for _ in range(150):
        shape = tuple(int(n) for n in rng.integers(1, 6, rng.integers(1, 4)))
        ax = int(rng.integers(0, len(shape)))
        a = rng.standard_normal(shape)
        a[rng.random(shape) < 0.3] = 0
        a[rng.random(shape) < 0.05] = np.inf
        w = rng.standard_normal(shape)

        def f(m, t, ax=ax):
            return m.cumprod(t, ax)

        _same(_grads(descent, f, [a], w, "float64")[0], _grads(torch, f, [a], w, "float64")[0])


def test_exp2_backward_multiplies_in_pytorchs_order():
    # test_fuzz_differential case 4177251: grad * result * ln 2 overflows where result * ln 2
    # first did not (exp2(127.818) = 3e38, times 1.5 is inf in float32)
    def f(m, a):
        return m.exp2(a)

    g_t = _grads(torch, f, [127.81822967529297], 1.5, "float32")[0]
    g_d = _grads(descent, f, [127.81822967529297], 1.5, "float32")[0]
    assert np.isinf(g_t) and np.isinf(g_d)


@pytest.mark.parametrize(("lo", "hi"), [(1e30, math.nan), (math.nan, 1e30), (-1e30, math.nan)])
def test_float16_clamp_beside_a_nan_bound_is_nan_without_the_overflow_check(lo, hi):
    # fuzz_extra_dtypes half, seed 4170003: PyTorch's clamp with a nan bound gives nan and
    # does not check the other bound against float16's range; descent raised its overflow
    # error (a bound beyond 65504 alone still raises, as in PyTorch)
    for m in (torch, descent):
        x = m.tensor([1.0, -2.0], dtype=m.float16, requires_grad=True)
        y = m.clamp(x, lo, hi)
        assert np.isnan(np.asarray(y.tolist())).all()
        (g,) = m.autograd.grad(y.sum(), x)
        assert g.tolist() == [0.0, 0.0]
        z = m.tensor([1.0, -2.0], dtype=m.float16)
        assert np.isnan(np.asarray(z.clamp_(lo, hi).tolist())).all()
    with pytest.raises(Exception, match="overflow"):
        descent.clamp(descent.tensor([1.0], dtype=descent.float16), 1e30)
