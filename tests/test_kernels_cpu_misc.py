"""kernels/_cpu_misc.py's loops against the NumPy paths beside them in their callers, and torch.

cummax / cummin: the running-extreme index in one numba pass (`running_extreme_index`) must
be the NumPy path's (`ops/scan._running_index` with the kernels off) on ties, NaN, signed
zeros and infinities, for every axis and the supported dtypes; values and gradients as
torch's.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import descent
from descent.kernels import cpu
from descent.ops import scan

needs_numba = pytest.mark.skipif(not cpu.available(), reason="numba missing")


@contextlib.contextmanager
def kernels(flag: bool):
    previous = cpu.set_enabled(flag)
    try:
        yield
    finally:
        cpu.set_enabled(previous)


def _data(rng, shape, dtype):
    if np.dtype(dtype).kind == "i":
        return rng.integers(-3, 4, shape).astype(dtype)  # many ties
    x = rng.integers(-3, 4, shape).astype(dtype)  # ties
    flat = x.reshape(-1)
    pick = rng.choice(flat.size, size=min(flat.size, 12), replace=False)
    flat[pick] = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, np.nan, 0.5, -0.0,
                           np.nan, 2.0, -np.inf, np.inf], dtype=dtype)[: pick.size]  # fmt: skip
    flat[::7] += rng.standard_normal(flat[::7].size).astype(dtype)
    return x


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
@pytest.mark.parametrize("shape", [(50,), (6, 40), (3, 17, 5), (2, 3, 4, 9)])
@pytest.mark.parametrize("is_min", [False, True])
def test_running_index_kernel_is_the_numpy_path(dtype, shape, is_min, monkeypatch):
    from descent.kernels import _cpu_misc

    rng = np.random.default_rng(5)
    a = _data(rng, shape, dtype)
    calls = []
    original = _cpu_misc.running_extreme_index
    monkeypatch.setattr(_cpu_misc, "running_extreme_index",
                        lambda *args: calls.append(1) or original(*args))  # fmt: skip
    for axis in range(a.ndim):
        with kernels(True):
            got = scan._running_index(a, axis, is_min, np)
        assert calls, "the kernel did not run"
        calls.clear()
        with kernels(False):
            want = scan._running_index(a, axis, is_min, np)
        assert not calls
        assert got.dtype == want.dtype == np.int64
        np.testing.assert_array_equal(got, want)


@needs_numba
@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cummax_cummin_with_the_kernel_match_torch(name, dim):
    rng = np.random.default_rng(6)
    x = _data(rng, (7, 9, 4), np.float64)
    gy = rng.standard_normal(x.shape)
    with kernels(True):
        xd = descent.tensor(x, requires_grad=True)
        vd, id_ = getattr(descent, name)(xd, dim)
        vd.backward(descent.tensor(gy))
    xt = torch.tensor(x, requires_grad=True)
    vt, it = getattr(torch, name)(xt, dim)
    vt.backward(torch.tensor(gy))
    np.testing.assert_array_equal(vd.numpy(), vt.detach().numpy())
    np.testing.assert_array_equal(id_.numpy(), it.numpy())
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())


def _cumprod_value_and_grad(x, gy, dim):
    xd = descent.tensor(x, requires_grad=True)
    y = descent.cumprod(xd, dim)
    y.backward(descent.tensor(gy))
    return y.numpy().copy(), xd.grad.numpy().copy()


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40,), (5, 30), (3, 20, 6)])
@pytest.mark.parametrize("zeros", [False, True])
def test_cumprod_kernels_are_the_numpy_path(dtype, shape, zeros, monkeypatch):
    """Forward (float64 accumulation: a float32 product that passes through overflow comes
    back) and the no-zero backward give the NumPy path's bits; with a zero on the axis the
    backward's exact branch runs as before."""
    from descent.kernels import _cpu_misc

    rng = np.random.default_rng(7)
    x = (rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)).astype(dtype)
    x.reshape(-1)[3:6] = np.array([3e30, 1e10, 1e-25], dtype=dtype)  # through float32 overflow
    x.reshape(-1)[-2] = -0.0 if zeros else 1e-30
    gy = rng.standard_normal(shape).astype(dtype)
    ran = []
    for name in ("cumprod_axis1", "cumprod_backward_axis1"):
        original = getattr(_cpu_misc, name)
        monkeypatch.setattr(_cpu_misc, name,
                            lambda *a, _f=original, _n=name: ran.append(_n) or _f(*a))  # fmt: skip
    for dim in range(x.ndim):
        ran.clear()
        with kernels(True), np.errstate(all="ignore"):
            got = _cumprod_value_and_grad(x, gy, dim)
        assert "cumprod_axis1" in ran
        assert ("cumprod_backward_axis1" in ran) == (not zeros)
        with kernels(False), np.errstate(all="ignore"):
            want = _cumprod_value_and_grad(x, gy, dim)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            keep = ~np.isnan(a)
            np.testing.assert_array_equal(a[keep].view(np.uint8), b[keep].view(np.uint8))


@needs_numba
def test_cumprod_with_the_kernels_matches_torch():
    rng = np.random.default_rng(8)
    x = rng.uniform(0.5, 1.5, (6, 50)).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    with kernels(True):
        y, gx = _cumprod_value_and_grad(x, gy, 1)
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.cumprod(xt, 1)
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=2e-6)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_cumprod_backward_with_zeros_matches_torch(dtype, rtol, dim):
    """One, two and three zeros per slice (at the ends too): PyTorch's first-order split,
    now O(n) per slice (the products that leave out the first zero, one cumprod)."""
    rng = np.random.default_rng(9)
    x = rng.uniform(0.5, 1.5, (4, 30, 5)).astype(dtype) * rng.choice([-1, 1], (4, 30, 5))
    x = np.moveaxis(x, 1, dim).copy()
    z = np.moveaxis(x, dim, 0)  # a view: zeros along `dim`
    z[0, 0, 0] = 0
    z[[3, 17], 1, 1] = 0
    z[[0, 5, 29], 2, 2] = 0
    z[29, 3, 3] = 0
    gy = rng.standard_normal(x.shape).astype(dtype)
    xd = descent.tensor(x, requires_grad=True)
    descent.cumprod(xd, dim).backward(descent.tensor(gy))
    xt = torch.tensor(x, requires_grad=True)
    torch.cumprod(xt, dim).backward(torch.tensor(gy))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=rtol, atol=rtol)


def test_cumprod_backward_with_a_zero_on_a_long_axis():
    """The (n, n) products of every left-out element were 3.2 GB here (32 GiB for 256 rows
    of 4096); one cumprod per slice now."""
    x = np.full((1, 20000), 1.0001)
    x[0, 7] = 0.0
    xd = descent.tensor(x, requires_grad=True)
    descent.cumprod(xd, 1).sum().backward()
    g = xd.grad.numpy()[0]
    # d/dx_7 of sum_j prod_{k<=j} x_k = sum_{j>=7} prod_{k<=j, k!=7} x_k = sum_{m=7}^{19999}
    # 1.0001^m (every other element is 1.0001)
    want = sum(1.0001**m for m in range(7, 20000))
    np.testing.assert_allclose(g[7], want, rtol=1e-9)
    assert (g[8:] == 0).all()  # every product that leaves x_i (i > 7) out contains x_7 = 0


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_reflect_pad_fold_kernel_is_the_numpy_path(dtype, monkeypatch):
    """The gradient of reflect padding of the last one or two axes folded by one numba loop:
    the NumPy slices' bits, for pads up to the axis length - 1 on either side."""
    from descent.kernels import _cpu_misc
    from descent.ops import shape_copy

    ran = []
    original = _cpu_misc.reflect_fold_2d
    monkeypatch.setattr(_cpu_misc, "reflect_fold_2d", lambda *a: ran.append(1) or original(*a))
    rng = np.random.default_rng(10)
    for _ in range(60):
        nd = int(rng.integers(2, 5))
        shape = tuple(int(v) for v in rng.integers(2, 8, nd))
        pw = [(0, 0)] * nd
        for ax in (nd - 2, nd - 1):
            pw[ax] = (int(rng.integers(0, shape[ax])), int(rng.integers(0, shape[ax])))
        pw = tuple(pw)
        gy = rng.standard_normal(tuple(n + a + b for n, (a, b) in zip(shape, pw))).astype(dtype)
        ran.clear()
        with kernels(True):
            got = shape_copy._fold_pad_grad(np, gy, pw, "reflect")
        assert ran
        with kernels(False):
            want = shape_copy._fold_pad_grad(np, gy, pw, "reflect")
        assert got.shape == want.shape == shape
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@needs_numba
def test_reflect_pad_gradient_with_the_kernel_matches_torch():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 6, 7))
    gy = rng.standard_normal((2, 3, 6 + 5, 7 + 3))
    with kernels(True):
        xd = descent.tensor(x, requires_grad=True)
        descent.nn.functional.pad(xd, (1, 2, 3, 2), mode="reflect").backward(descent.tensor(gy))
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.pad(xt, (1, 2, 3, 2), mode="reflect").backward(torch.tensor(gy))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-12)
