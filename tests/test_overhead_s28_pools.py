"""Session 28's per-call work on the small pools (helper-213) keeps their results.

- `PoolGather` (max_pool3d, adaptive_max_pool1d/2d/3d): the forward gathers NumPy arrays with
  one fancy index (was take_along_axis) and the backward calls the scatter-add loop
  (`_cpu_extra.scatter_add_along`) directly: bitwise the take_along_axis / along_axis_grad
  path, repeated winners (overlapping adaptive windows), NaN, inf and -0.0 gradients included.
- `_winner` returns the argmax when the windows hold no nan (one isnan pass), gathering the
  argmax values to find the nan rows only when one does: the same winners.
- `ops.window._strided`: im2col_nd / col2im_nd make their strided views of contiguous NumPy
  arrays as an ndarray over the buffer (was as_strided): the same views.
- backend's scatter-add paths look the kernel modules up once; the kernels' switch is still
  read at every call.
And the pools against PyTorch on the edge cases: ceil_mode, padding, dilation, return_indices,
empty batch, non-contiguous input, float64, nan.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent import array_backward, backend
from descent.errors import DescentError
from descent.kernels import cpu
from descent.nn.functional import _pooling_extra as pe
from descent.ops import window
from descent.ops.indexing import PoolGather

pytestmark = pytest.mark.skipif(not cpu.enabled(), reason="numba kernels off")


def _bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes()


def _old_winner(a, axis):
    """_winner's gather-the-argmax path (before this change)."""
    arg = a.argmax(axis=axis)
    found = np.take_along_axis(a, np.expand_dims(arg, axis), axis=axis)
    nan = np.isnan(np.squeeze(found, axis))
    if nan.any():
        arg = np.where(nan, pe._last_nan(np, a, axis), arg)
    return arg


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_winner_same_as_gathering_the_argmax(dtype):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 7, 9)).astype(dtype)
    a[0, 0, 0, 3] = np.nan
    a[0, 0, 1, :] = np.nan
    a[0, 1, 2, [1, 5]] = np.nan
    a[1, 0, 3, :] = -np.inf
    a[1, 1, 4, 2] = np.inf
    a[1, 2, 5, :] = 2.0  # ties: the first
    a[1, 2, 6, [0, 8]] = [np.inf, np.nan]
    for axis in (-1, 2):
        _bits(pe._winner(np, a, axis), _old_winner(a, axis))
    b = rng.standard_normal((4, 5)).astype(dtype)  # no nan: argmax
    _bits(pe._winner(np, b, -1), b.argmax(-1))


def _old_gather(x, idx):
    n, c = x.shape[:2]
    i3 = idx.reshape(n, c, -1)
    return np.take_along_axis(x.reshape(n, c, -1), i3, axis=2).reshape(idx.shape)


def _old_scatter(gy, idx, shape):
    n, c = shape[:2]
    i3 = idx.reshape(n, c, -1)
    return array_backward.along_axis_grad(
        np, gy.reshape(i3.shape), (n, c, int(np.prod(shape[2:]))), i3, 2
    ).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernels", [True, False])
def test_pool_gather_bitwise_the_take_along_axis_path(dtype, kernels):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6)).astype(dtype)
    x[0, 0, 0, 0] = np.nan
    idx = rng.integers(0, 30, (2, 3, 4, 4))  # repeats: windows sharing a winner
    idx[1, 2] = 7  # one element wins every window
    gy = rng.standard_normal(idx.shape).astype(dtype)
    gy[0, 0, 0, :2] = [np.inf, -np.inf]
    gy[0, 1, 1, 1] = np.nan
    gy[1, 0] = -0.0
    previous = cpu.set_enabled(kernels)
    try:
        xt = ds.tensor(x, requires_grad=True)
        y = PoolGather.apply(xt, idx=idx, kind="MaxPool3DWithIndicesBackward0")
        _bits(y.numpy(), _old_gather(x, idx))
        y.backward(ds.tensor(gy))
        _bits(xt.grad.numpy(), _old_scatter(gy, idx, x.shape))
    finally:
        cpu.set_enabled(previous)


def test_pool_gather_non_contiguous_input_and_create_graph():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((3, 2, 6, 5))
    x = ds.tensor(base, requires_grad=True)
    xt = x.transpose(0, 1)  # (2, 3, 6, 5), not contiguous
    idx = rng.integers(0, 30, (2, 3, 3, 2))
    y = PoolGather.apply(xt, idx=idx, kind="AdaptiveMaxPool2DBackward0")
    _bits(y.detach().numpy(), _old_gather(np.ascontiguousarray(base.transpose(1, 0, 2, 3)), idx))
    (g,) = ds.autograd.grad(y.sum(), x, create_graph=True)
    ref = _old_scatter(np.ones(idx.shape), idx, (2, 3, 6, 5)).transpose(1, 0, 2, 3)
    _bits(g.detach().numpy(), np.ascontiguousarray(ref))


def test_max_pool_backward_skips_the_checked_scatter(monkeypatch):
    """The max pools' backward calls the loop itself (the winners lie in each plane by
    construction): backend.scatter_add_along_axis's checks (index min / max, shapes) cost a
    small pool ~3 us. Fails where PoolGather's backward goes through along_axis_grad."""

    def refuse(*a, **k):
        raise AssertionError("scatter_add_along_axis called")

    monkeypatch.setattr(backend, "scatter_add_along_axis", refuse)
    x = ds.randn(2, 3, 4, 4, 4, requires_grad=True)
    F.max_pool3d(x, 2).sum().backward()
    assert x.grad is not None


def test_scatter_kernels_switch_read_per_call():
    """Modules looked up once, the switch still read: off, gather's backward takes np.add.at
    (the same bits), on again, the loop."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    idx = rng.integers(0, 6, (4, 9))
    gy = rng.standard_normal((4, 9)).astype(np.float32)
    out = []
    for flag in (True, False, True):
        previous = cpu.set_enabled(flag)
        try:
            t = np.zeros_like(x)
            assert backend.scatter_add_along_axis(t, idx, gy, 1) is flag
            if not flag:
                np.add.at(t, (np.arange(4)[:, None], idx), gy)
            out.append(t)
        finally:
            cpu.set_enabled(previous)
    _bits(out[0], out[1])
    _bits(out[0], out[2])


def _as_strided_im2col(x, geom):
    k, s, d, p = geom
    n, c, *sizes = x.shape
    out = [window.window_out_size(sz, *g) for sz, g in zip(sizes, zip(k, s, d, p))]
    if any(p):
        x = np.pad(x, ((0, 0), (0, 0)) + tuple((pi, pi) for pi in p))
    st_n, st_c, *st = x.strides
    view = np.lib.stride_tricks.as_strided(
        x,
        (c, *k, n, *out),
        (st_c, *(a * b for a, b in zip(st, d)), st_n, *(a * b for a, b in zip(st, s))),
    )
    return np.ascontiguousarray(view)


@pytest.mark.parametrize(
    "geom",
    [
        ((2, 2, 2), (2, 2, 2), (1, 1, 1), (0, 0, 0)),
        ((3, 2, 2), (1, 2, 1), (1, 1, 2), (1, 0, 1)),
        ((2,), (1,), (3,), (0,)),
        ((3, 3), (2, 2), (1, 1), (1, 1)),
    ],
)
@pytest.mark.parametrize("contiguous", [True, False])
def test_window_views_same_as_as_strided(geom, contiguous):
    nd = len(geom[0])
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, *(7,) * nd))
    if not contiguous:
        x = np.swapaxes(np.swapaxes(x, 0, 1).copy(), 0, 1)
    cols = window.im2col_nd(np, x, geom)
    _bits(cols, _as_strided_im2col(x, geom))
    # col2im_nd is im2col_nd's adjoint: <im2col(x), g> = <x, col2im(g)>, and its tiled view
    # path (stride = kernel, no dilation) the loop's bits
    g = rng.standard_normal(cols.shape)
    back = window.col2im_nd(np, g, x.shape, geom)
    assert back.shape == x.shape
    np.testing.assert_allclose((cols * g).sum(), (x * back).sum(), rtol=1e-12)


def test_col2im_tiled_view_bitwise_the_loop():
    rng = np.random.default_rng(5)
    geom = ((2, 2, 2), (2, 2, 2), (1, 1, 1), (0, 0, 0))
    cols = rng.standard_normal((3, 2, 2, 2, 2, 2, 2, 2)).astype(np.float32)
    fast = window.col2im_nd(np, cols, (2, 3, 4, 4, 4), geom)
    # the same adjoint by the per-offset loop: dilation 1 spelled so the tiled branch is skipped
    gx = np.zeros((2, 3, 4, 4, 4), np.float32)
    for a in range(2):
        for b in range(2):
            for c in range(2):
                gx[:, :, a::2, b::2, c::2] += cols[:, a, b, c].swapaxes(0, 1)
    _bits(fast, gx)


def test_empty_and_read_only_arrays_keep_as_strided():
    empty = np.zeros((0, 3, 4, 4, 4))
    geom = ((2, 2, 2), (2, 2, 2), (1, 1, 1), (0, 0, 0))
    assert window.im2col_nd(np, empty, geom).shape == (3, 2, 2, 2, 0, 2, 2, 2)
    ro = np.arange(2 * 3 * 64, dtype=np.float64).reshape(2, 3, 4, 4, 4)
    ro.flags.writeable = False
    _bits(window.im2col_nd(np, ro, geom), _as_strided_im2col(ro, geom))


# -- against PyTorch -------------------------------------------------------------------------

_NANS = [(0, 0, 0, 0), (1, 2, 3, 1)]


def _pair(shape, dtype, seed, nan=False, transpose=False):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if nan:
        for ix in _NANS:
            x[ix[: len(shape)] if len(shape) <= 4 else ix + (0,) * (len(shape) - 4)] = np.nan
    if transpose:  # non-contiguous: the batch and channel axes swapped
        xd = ds.tensor(np.swapaxes(x, 0, 1).copy(), requires_grad=True)
        xt = torch.tensor(np.swapaxes(x, 0, 1).copy(), requires_grad=True)
        return xd, xt, xd.transpose(0, 1), xt.transpose(0, 1)
    xd = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    return xd, xt, xd, xt


def _check(fd, ft, shape, dtype, seed=0, nan=False, transpose=False, exact=True):
    """Values (exact for a maximum; an average's float32 sums in another order within
    rounding), indices exact, gradients within rounding."""
    xd, xt, ind, int_ = _pair(shape, dtype, seed, nan, transpose)
    yd, yt = fd(ind), ft(int_)
    if isinstance(yd, tuple):
        (yd, idd), (yt, idt) = yd, yt
        np.testing.assert_array_equal(idd.numpy(), idt.numpy())
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    if exact:
        np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    else:
        np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), **tol)
    if yd.numel() == 0:
        return
    gy = np.random.default_rng(seed + 1).standard_normal(tuple(yd.shape)).astype(dtype)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), **tol)


_MAX3D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=2, stride=1, dilation=2),
    dict(kernel_size=3, stride=2, ceil_mode=True),
    dict(kernel_size=(2, 3, 1), stride=(1, 2, 1), padding=(1, 1, 0), ceil_mode=True),
]


@pytest.mark.parametrize("kw", _MAX3D)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("transpose", [False, True])
def test_max_pool3d_matches_torch(kw, dtype, nan, transpose):
    for ri in (False, True):
        _check(
            lambda x, ri=ri: F.max_pool3d(x, return_indices=ri, **kw),
            lambda x, ri=ri: torch.nn.functional.max_pool3d(x, return_indices=ri, **kw),
            (2, 3, 5, 6, 4),
            dtype,
            nan=nan,
            transpose=transpose,
        )


_ADAPTIVE = [
    (1, (2, 3, 10), 4),
    (2, (2, 3, 7, 9), (3, 4)),
    (2, (2, 3, 8, 8), 3),
    (3, (2, 3, 5, 4, 6), (2, 3, 4)),
]


@pytest.mark.parametrize("nd,size,out", _ADAPTIVE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nan", [False, True])
@pytest.mark.parametrize("transpose", [False, True])
def test_adaptive_max_pool_matches_torch(nd, size, out, dtype, nan, transpose):
    name = f"adaptive_max_pool{nd}d"
    for ri in (False, True):
        _check(
            lambda x, ri=ri: getattr(F, name)(x, out, return_indices=ri),
            lambda x, ri=ri: getattr(torch.nn.functional, name)(x, out, return_indices=ri),
            size,
            dtype,
            nan=nan,
            transpose=transpose,
        )


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
        dict(kernel_size=3, stride=2, ceil_mode=True),
        dict(kernel_size=2, divisor_override=3),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose", [False, True])
def test_avg_pool3d_and_adaptive_match_torch(kw, dtype, transpose):
    _check(lambda x: F.avg_pool3d(x, **kw), lambda x: torch.nn.functional.avg_pool3d(x, **kw),
           (2, 3, 5, 6, 4), dtype, transpose=transpose, exact=False)  # fmt: skip
    for out in (2, (3, 2, 4), 1):
        _check(
            lambda x, out=out: F.adaptive_avg_pool3d(x, out),
            lambda x, out=out: torch.nn.functional.adaptive_avg_pool3d(x, out),
            (2, 3, 4, 6, 4),
            dtype,
            transpose=transpose,
            exact=False,
        )


def test_empty_batch_and_unbatched_match_torch():
    for fd, ft, shape in [
        (lambda x: F.max_pool3d(x, 2, return_indices=True),
         lambda x: torch.nn.functional.max_pool3d(x, 2, return_indices=True), (0, 3, 4, 4, 4)),
        (lambda x: F.adaptive_max_pool2d(x, 3, return_indices=True),
         lambda x: torch.nn.functional.adaptive_max_pool2d(x, 3, return_indices=True),
         (0, 3, 7, 7)),
        (lambda x: F.avg_pool3d(x, 2), lambda x: torch.nn.functional.avg_pool3d(x, 2),
         (0, 2, 4, 4, 4)),
        (lambda x: F.avg_pool3d(x, 2), lambda x: torch.nn.functional.avg_pool3d(x, 2),
         (2, 4, 4, 4)),
        (lambda x: F.max_pool3d(x, 2, return_indices=True),
         lambda x: torch.nn.functional.max_pool3d(x, 2, return_indices=True), (3, 4, 4, 4)),
        (lambda x: F.adaptive_max_pool3d(x, 2), lambda x: torch.nn.functional.adaptive_max_pool3d(
            x, 2), (3, 4, 5, 4)),
    ]:  # fmt: skip
        _check(fd, ft, shape, np.float32)


def test_max_pool_float64_gradcheck_and_errors():
    x = ds.tensor(np.random.default_rng(6).standard_normal((1, 2, 4, 5, 3)), requires_grad=True)
    assert ds.autograd.gradcheck(lambda t: F.max_pool3d(t, 2, 1, 1), (x,))
    assert ds.autograd.gradcheck(lambda t: F.adaptive_max_pool3d(t, (3, 2, 2)), (x,))
    with pytest.raises(Exception, match="pad should be at most half"):
        F.max_pool3d(x, 2, padding=2)
    with pytest.raises(Exception, match="kernel_size must be greater than zero"):
        F.max_pool3d(x, 0)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_adaptive_pools_channel_free_inputs_as_torch(nd, kind):
    """A batched input with no channels is refused (PyTorch: "Expected input to have non-zero
    size for non-batch dimensions", descent pooled the max ones to an empty result); an
    unbatched one with no channels pools to an empty (0, *out) with an empty gradient
    (descent refused the average ones)."""
    name = f"adaptive_{kind}_pool{nd}d"
    with pytest.raises(RuntimeError):  # PyTorch's (in forward, or backward for the average)
        x = torch.zeros((2, 0) + (4,) * nd, requires_grad=True)
        getattr(torch.nn.functional, name)(x, 2).sum().backward()
    with pytest.raises(DescentError, match="non-zero size for non-batch|non-empty"):
        getattr(F, name)(ds.zeros((2, 0) + (4,) * nd, requires_grad=True), 2)
    for out in (2, 3):
        xt = torch.zeros((0,) + (4,) * nd, requires_grad=True)
        xd = ds.zeros((0,) + (4,) * nd, requires_grad=True)
        yt = getattr(torch.nn.functional, name)(xt, out)
        yd = getattr(F, name)(xd, out)
        assert tuple(yd.shape) == tuple(yt.shape)
        yt.sum().backward()
        yd.sum().backward()
        assert tuple(xd.grad.shape) == tuple(xt.grad.shape)


def test_adaptive_avg_window_matrices_remembered_read_only():
    """The window matrices of the non-dividing adaptive averages are built once per sizes and
    dtype (read-only: a program cannot change the next call's pooling through them)."""
    from descent.nn.functional import _pooling

    a, a_t = _pooling._window_matrices(7, 3, np.dtype(np.float32))
    assert _pooling._window_matrices(7, 3, np.dtype(np.float32))[0] is a
    _bits(a, _pooling._window_matrix(7, 3, np.float32))
    _bits(a_t, np.ascontiguousarray(_pooling._window_matrix(7, 3, np.float32).T))
    assert not a.flags.writeable and not a_t.flags.writeable


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg_non_dividing_matches_torch_twice(dtype):
    """Two calls (the second on the remembered matrices), values and gradients as PyTorch;
    float64's second derivative through the products as well."""
    for _ in range(2):
        _check(lambda x: F.adaptive_avg_pool2d(x, (3, 5)),
               lambda x: torch.nn.functional.adaptive_avg_pool2d(x, (3, 5)),
               (2, 3, 7, 9), dtype, exact=False)  # fmt: skip
        _check(lambda x: F.adaptive_avg_pool3d(x, (2, 3, 4)),
               lambda x: torch.nn.functional.adaptive_avg_pool3d(x, (2, 3, 4)),
               (2, 3, 5, 7, 6), dtype, exact=False, transpose=True)  # fmt: skip
        _check(lambda x: F.adaptive_avg_pool1d(x, 3),
               lambda x: torch.nn.functional.adaptive_avg_pool1d(x, 3),
               (2, 3, 7), dtype, exact=False)  # fmt: skip
    if dtype == np.float64:
        x = ds.tensor(np.random.default_rng(7).standard_normal((1, 2, 5, 7)), requires_grad=True)
        assert ds.autograd.gradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 4)) ** 2, (x,))
        assert ds.autograd.gradgradcheck(lambda t: F.adaptive_avg_pool2d(t, (3, 4)) ** 2, (x,))


_AVG2D = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=3, stride=2, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, stride=1, divisor_override=3),
    dict(kernel_size=3),  # tiled (stride = kernel, 9 values): its own path, unchanged
]


@pytest.mark.parametrize("kw", _AVG2D)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose", [False, True])
def test_avg_pool2d_kernel_bitwise_the_numpy_loop(kw, dtype, transpose):
    """AvgPool2d's small-input kernels (avgpool_forward_offsets / avgpool_backward_offsets)
    against the NumPy offset loop (kernels off): values and gradients bit for bit, with -0.0
    (plus a padding 0.0: +0.0 in both), nan, inf and huge values; and against PyTorch."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 2, 7, 9)).astype(dtype)
    x[0, 0, 0, :] = -0.0
    x[0, 1, 2, 3] = np.nan
    x[1, 0, 4, 4] = np.inf
    x[2, 1, 1, :] = 3e38 if dtype == np.float32 else 1e308
    gy = None
    res = []
    for flag in (True, False):
        previous = cpu.set_enabled(flag)
        try:
            t = ds.tensor(x, requires_grad=True)
            inp = t.transpose(0, 1).transpose(0, 1) if not transpose else t.transpose(2, 3)
            y = F.avg_pool2d(inp, **kw)
            if gy is None:
                gy = rng.standard_normal(tuple(y.shape)).astype(dtype)
                gy.flat[::7] = -0.0
                gy.flat[3] = np.nan
            y.backward(ds.tensor(gy))
            res.append((y.detach().numpy(), t.grad.numpy()))
        finally:
            cpu.set_enabled(previous)
    _bits(res[0][0], res[1][0])
    _bits(res[0][1], res[1][1])
    _check(lambda v: F.avg_pool2d(v, **kw), lambda v: torch.nn.functional.avg_pool2d(v, **kw),
           (2, 3, 7, 9), dtype, exact=False, transpose=transpose)  # fmt: skip
    _check(lambda v: F.avg_pool1d(v, 3, 2, 1), lambda v: torch.nn.functional.avg_pool1d(v, 3, 2, 1),
           (2, 3, 11), dtype, exact=False)  # fmt: skip


def test_avg_pool2d_kernel_only_small_inputs(monkeypatch):
    """The kernels serve inputs below conv._PADDED_KERNEL_MAX_VALUES (a per-call cost cut);
    larger ones keep the NumPy loop (its strided adds are faster there)."""
    from descent.ops import conv

    calls = []
    k = conv._bnpool()[0]
    real = k.avgpool_forward_offsets
    monkeypatch.setattr(k, "avgpool_forward_offsets", lambda *a: calls.append(1) or real(*a))
    F.avg_pool2d(ds.randn(2, 3, 8, 8), 3, 2, 1)
    assert calls == [1]
    F.avg_pool2d(ds.randn(16, 16, 32, 32), 3, 2, 1)
    assert calls == [1]
    x = ds.randn(1, 2, 6, 6, requires_grad=True)
    y = F.avg_pool2d(x, 3, 1, 1)
    (g,) = ds.autograd.grad(y.sum(), x, create_graph=True)  # create_graph: the Tensor form
    assert ds.autograd.gradcheck(lambda t: F.avg_pool2d(t, 3, 2, 1), (x.double(),))


_AVG3D = [
    ((2, 3, 4, 4, 4), dict(kernel_size=2)),
    ((2, 3, 5, 6, 4), dict(kernel_size=3, stride=2, padding=1)),
    ((2, 3, 5, 6, 4), dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ((2, 3, 5, 6, 7), dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), ceil_mode=True)),
    ((1, 2, 4, 4, 4), dict(kernel_size=2, stride=1, divisor_override=3)),
    ((1, 2, 16, 16, 16), dict(kernel_size=8)),  # 512 offsets, 8 windows
    ((2, 1, 8, 8, 8), dict(kernel_size=8)),  # 512 offsets, one window per sample: N O = 2
    ((1, 3, 8, 8, 8), dict(kernel_size=8)),  # N O = 1: NumPy's pairwise sum, not the kernel
]


@pytest.mark.parametrize("shape,kw", _AVG3D)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose", [False, True])
def test_avg_pool3d_kernel_bitwise_the_im2col_path(shape, kw, dtype, transpose):
    """AvgPool3d's loops (avgpool3d_forward_offsets / avgpool3d_backward_offsets) against the
    im2col / sum / col2im path (kernels off): values and gradients bit for bit, -0.0, nan,
    inf and huge values in both; and against PyTorch."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal(shape) * 100).astype(dtype)
    x[0, 0, 0, 0, :] = -0.0
    x.flat[17] = np.nan
    x.flat[40] = np.inf
    x[-1, -1, -1, :, :] = 3e38 if dtype == np.float32 else 1e308
    gy = None
    res = []
    for flag in (True, False):
        previous = cpu.set_enabled(flag)
        try:
            t = ds.tensor(x, requires_grad=True)
            inp = t.transpose(3, 4) if transpose else t
            y = F.avg_pool3d(inp, **kw)
            if gy is None:
                gy = (rng.standard_normal(tuple(y.shape)) * 100).astype(dtype)
                gy.flat[::5] = -0.0
                gy.flat[1] = np.nan
            y.backward(ds.tensor(gy))
            res.append((y.detach().numpy(), t.grad.numpy()))
        finally:
            cpu.set_enabled(previous)
    _bits(res[0][0], res[1][0])
    _bits(res[0][1], res[1][1])
    _check(lambda v: F.avg_pool3d(v, **kw), lambda v: torch.nn.functional.avg_pool3d(v, **kw),
           shape, dtype, exact=False, transpose=transpose)  # fmt: skip


def test_avg_pool3d_kernel_used_and_create_graph(monkeypatch):
    from descent.kernels import _cpu_bnpool

    calls = []
    real = _cpu_bnpool.avgpool3d_forward_offsets
    monkeypatch.setattr(
        _cpu_bnpool, "avgpool3d_forward_offsets", lambda *a: calls.append(1) or real(*a)
    )
    F.avg_pool3d(ds.randn(2, 3, 4, 4, 4), 2)
    F.adaptive_avg_pool3d(ds.randn(2, 3, 4, 4, 4), 2)
    assert calls == [1, 1]
    # above window._KERNEL_MAX_VALUES: the forward's loop still (session 29: eight planes side
    # by side), the backward NumPy's (tests/test_overhead_s29.py)
    F.avg_pool3d(ds.randn(4, 8, 16, 16, 16), 2)
    assert calls == [1, 1, 1]
    x = ds.tensor(np.random.default_rng(10).standard_normal((1, 2, 4, 5, 3)), requires_grad=True)
    assert ds.autograd.gradcheck(lambda t: F.avg_pool3d(t, 2, 1, 1) ** 2, (x,))
    assert ds.autograd.gradgradcheck(lambda t: F.avg_pool3d(t, 2, 1, 1) ** 2, (x,))


def _old_indices(off, geom, w):
    """return_indices' former formula over the kernel's winning offsets."""
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    ho, wo = off.shape[2], off.shape[3]
    rows = np.arange(ho).reshape(-1, 1) * sh - ph
    cols = np.arange(wo).reshape(1, -1) * sw - pw
    i, j = np.divmod(off, np.int8(kw))
    return (rows + i * dh) * w + (cols + j * dw)


@pytest.mark.parametrize(
    "geom", [(2, 2, 2, 2, 1, 1, 0, 0), (3, 3, 2, 2, 1, 1, 1, 1), (3, 2, 1, 2, 1, 1, 1, 0),
             (1, 5, 1, 3, 1, 1, 0, 2), (11, 11, 1, 1, 1, 1, 5, 5)],
)  # fmt: skip
def test_max_pool2d_index_table_same_as_the_formula(geom):
    from descent.nn.functional import _pooling
    from descent.ops.conv import pool_kernel_ok, pool_kernel_winners

    x = np.random.default_rng(11).standard_normal((2, 3, 12, 13)).astype(np.float32)
    assert pool_kernel_ok(x, geom)
    _, off = pool_kernel_winners(x, geom)
    got = _pooling._max_indices_of(x, None, geom, 12, 13)
    _bits(got, _old_indices(off, geom, 13))
    assert not _pooling._index_table(geom, off.shape[2], off.shape[3], 13).flags.writeable


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=2),
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=3, stride=2, ceil_mode=True),
        dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), ceil_mode=True),
        dict(kernel_size=2, dilation=2),
    ],
)
@pytest.mark.parametrize("nan", [False, True])
def test_max_pool_return_indices_match_torch(kw, nan):
    _check(lambda v: F.max_pool2d(v, return_indices=True, **kw),
           lambda v: torch.nn.functional.max_pool2d(v, return_indices=True, **kw),
           (2, 3, 7, 9), np.float32, nan=nan)  # fmt: skip
    k1 = {a: (b[-1] if isinstance(b, tuple) else b) for a, b in kw.items()}
    _check(lambda v: F.max_pool1d(v, return_indices=True, **k1),
           lambda v: torch.nn.functional.max_pool1d(v, return_indices=True, **k1),
           (2, 3, 11), np.float64)  # fmt: skip
