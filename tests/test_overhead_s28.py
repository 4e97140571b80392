"""Session 28's per-call overhead work (helper-210) keeps the results of the paths it changed.

- The float32 softmax kernels' row maximum (`kernels/_cpu_jit._row_max32`) and the
  cross-entropy kernel's (`ce_fwd32`) are llvm.maxnum loops (`_maxnum32`), vectorised, where a
  compare-and-select loop stayed scalar: the same maximum (NaN skipped), so softmax and
  log_softmax keep their bits; cross-entropy's float64 row sums are one vectorised loop
  (`_sum64`). Checked against a NumPy reference and PyTorch on NaN / inf / huge / empty rows,
  causal masks, non-contiguous inputs, ignore_index and label smoothing; float64 (the NumPy
  path) against finite differences.
- BatchNorm of a 2-D input (N, C) runs `_cpu_bnpool.bn2d_forward / bn2d_backward` (row by
  row): bitwise the per-channel kernels on the (N, C, 1) view, and PyTorch's values.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.enabled(), reason="numba kernels off")


def _jit():
    from descent.kernels import _cpu_jit

    return _cpu_jit


def _bnpool():
    from descent.kernels import _cpu_bnpool

    return _cpu_bnpool


def _edge_rows(rng, n_cols):
    """float32 rows with NaN, +-inf, all -inf, all NaN, huge and tied values (8, n_cols)."""
    x = (rng.standard_normal((8, n_cols)) * 4).astype(np.float32)
    x[1, n_cols // 2] = np.nan
    x[2, 0] = np.inf
    x[3, :] = -np.inf
    x[4, :] = np.nan
    x[5, :] = 7.0
    x[6, ::2] = 1e4
    x[7, -1] = -np.inf
    return x


# -- the row maximum ------------------------------------------------------------------------


@pytest.mark.parametrize("n_cols", [1, 5, 16, 17, 64, 100, 513])
@pytest.mark.parametrize("causal", [False, True])
def test_row_max_is_the_nan_skipping_maximum(n_cols, causal):
    rng = np.random.default_rng(n_cols)
    x = _edge_rows(rng, n_cols)
    n_q = 3 if causal else 1
    scale = np.float32(0.37)
    out = np.empty(8, np.float32)
    _jit()._row_max32(x, scale, n_q, causal, out)
    for r in range(8):
        lim = min(n_cols, r % n_q + 1) if causal else n_cols
        # np.fmax skips NaN, as `v if v > m else m` did (and llvm.maxnum does)
        want = np.fmax.reduce(scale * x[r, :lim], initial=-np.inf)
        assert out[r] == want or (np.isnan(want) and np.isnan(out[r])), (r, out[r], want)


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("n_cols", [1, 7, 16, 33, 512])
def test_softmax_kernel_against_float64(n_cols, log):
    """softmax_fwd32 on finite rows: within a few float32 ulp of float64's softmax."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, n_cols)) * 6).astype(np.float32)
    x[2, ::3] = 1e4
    y = x.copy()
    _jit().softmax_fwd32(y, np.float32(1.0), 1, False, log)
    x64 = x.astype(np.float64)
    z = x64 - x64.max(1, keepdims=True)
    lse = np.log(np.exp(z).sum(1, keepdims=True))
    ref = z - lse if log else np.exp(z - lse)
    np.testing.assert_allclose(
        y, ref, rtol=4e-7 * max(1, np.log2(n_cols)), atol=1e-6 if log else 1e-12
    )


def _softmax_both(fn, x, dim, gy=None):
    xd = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    name = {"softmax": "softmax", "log_softmax": "log_softmax"}[fn]
    yd = getattr(F, name)(xd, dim)
    yt = getattr(torch.nn.functional, name)(xt, dim)
    if gy is None:
        gy = np.random.default_rng(7).standard_normal(x.shape).astype(x.dtype)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    return yd.detach().numpy(), yt.detach().numpy(), xd.grad.numpy(), xt.grad.numpy()


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(8, 16), (64, 512), (3, 1), (2, 3, 40)])
def test_softmax_matches_torch_with_edge_rows(fn, shape):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    flat = x.reshape(-1, shape[-1])
    flat[0, 0] = np.nan
    if flat.shape[0] > 2:
        flat[1, :] = -np.inf
        flat[2, -1] = np.inf
    yd, yt, gd, gt = _softmax_both(fn, x, -1)
    np.testing.assert_allclose(yd, yt, rtol=2e-6, atol=1e-6, equal_nan=True)
    # (log_softmax's gy - p sum(gy): the float32 sum of a row's gy, added in another order
    # than PyTorch's, is off by ~1e-6 of 512 unit values)
    np.testing.assert_allclose(gd, gt, rtol=2e-5, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_non_contiguous_broadcast_gradient_and_other_dims(fn):
    rng = np.random.default_rng(12)
    x = (rng.standard_normal((40, 24)) * 3).astype(np.float32)
    for xs, dim in ((x.T, -1), (x[:, ::2], 1), (x, 0)):
        yd, yt, gd, gt = _softmax_both(fn, np.ascontiguousarray(xs) if dim == 0 else xs, dim)
        np.testing.assert_allclose(yd, yt, rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(gd, gt, rtol=2e-5, atol=1e-6)
    # an upstream gradient that is a broadcast (expanded) array: the kernel's other branch
    xd = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    (getattr(F, fn)(xd, -1) * ds.tensor(np.float32(2.5))).sum().backward()
    (getattr(torch.nn.functional, fn)(xt, -1) * 2.5).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_empty_and_zero_dim(fn):
    for shape, dim in (((0, 5), -1), ((3, 0), -1), ((), 0)):
        x = np.full(shape, 0.5, np.float32)
        yd, yt, gd, gt = _softmax_both(fn, x, dim, gy=np.ones(shape, np.float32))
        assert yd.shape == yt.shape and gd.shape == gt.shape
        np.testing.assert_allclose(yd, yt)
        np.testing.assert_allclose(gd, gt)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_float64_gradients_against_finite_differences(fn):
    x = ds.tensor(np.random.default_rng(4).standard_normal((3, 6)), requires_grad=True)
    f = getattr(F, fn)
    assert ds.autograd.gradcheck(lambda t: f(t, -1), (x,))
    assert ds.autograd.gradgradcheck(lambda t: f(t, -1), (x,))


# -- cross-entropy ----------------------------------------------------------------------------


def _ce_both(x, t, **kw):
    xd = ds.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    ld = F.cross_entropy(xd, ds.tensor(t), **kw)
    lt = torch.nn.functional.cross_entropy(xt, torch.tensor(t), **kw)
    gy = np.random.default_rng(5).standard_normal(tuple(lt.shape)).astype(x.dtype)
    ld.backward(ds.tensor(gy))
    lt.backward(torch.tensor(gy))
    return ld.detach().numpy(), lt.detach().numpy(), xd.grad.numpy(), xt.grad.numpy()


@pytest.mark.parametrize("n_cls", [1, 3, 16, 17, 512, 1000])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_kernel_matches_torch(n_cls, smoothing, reduction):
    rng = np.random.default_rng(n_cls)
    x = (rng.standard_normal((24, n_cls)) * 4).astype(np.float32)
    x[5, ::2] = 1e4  # huge logits: the maximum must be exact
    x[6, :] = -3e4
    t = rng.integers(0, n_cls, 24)
    t[[2, 9]] = -100  # ignored rows
    t[10] = 7 % n_cls
    x[10, 7 % n_cls] = -np.inf if n_cls > 1 else x[10, 0]  # the target's logit is -inf
    ld, lt, gd, gt = _ce_both(x, t, reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(ld, lt, rtol=3e-6, atol=1e-6)
    np.testing.assert_allclose(gd, gt, rtol=2e-5, atol=1e-7)
    assert not gd[[2, 9]].any()


def test_cross_entropy_kernel_sums_against_float64():
    """The vectorised float64 row sums: the loss within float32 rounding of float64's."""
    rng = np.random.default_rng(8)
    for n_cls in (5, 64, 50257):
        x = (rng.standard_normal((6, n_cls)) * 3).astype(np.float32)
        t = rng.integers(0, n_cls, 6)
        loss, stats = cpu.cross_entropy_forward(x, t)
        x64 = x.astype(np.float64)
        m = x64.max(1)
        lse = np.log(np.exp(x64 - m[:, None]).sum(1))
        np.testing.assert_array_equal(stats[:, 0], x.max(1))
        np.testing.assert_allclose(stats[:, 1], lse, rtol=3e-7, atol=3e-7)
        np.testing.assert_allclose(loss, lse - (x64[np.arange(6), t] - m), rtol=1e-6, atol=1e-6)
        # label smoothing's mean of (x - max) runs through the same sum
        loss_s, _ = cpu.cross_entropy_forward(x, t, smoothing=0.25)
        mean_z = (x64 - m[:, None]).mean(1)
        ref = 0.75 * (lse - (x64[np.arange(6), t] - m)) + 0.25 * (lse - mean_z)
        np.testing.assert_allclose(loss_s, ref, rtol=2e-6, atol=1e-5)


def test_cross_entropy_nan_rows_spatial_unbatched_and_empty():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    x[1, 3] = np.nan
    ld, lt, gd, gt = _ce_both(x, np.array([0, 1, 2, 3]), reduction="none")
    np.testing.assert_array_equal(np.isnan(ld), np.isnan(lt))
    np.testing.assert_allclose(ld[[0, 2, 3]], lt[[0, 2, 3]], rtol=2e-6)
    # (N, C, d) targets: the class axis moved last (a transposed copy into the kernel)
    xs = rng.standard_normal((3, 5, 4)).astype(np.float32)
    ts = rng.integers(0, 5, (3, 4))
    ts[0, 1] = 2
    ld, lt, gd, gt = _ce_both(xs, ts, ignore_index=2, label_smoothing=0.1)
    np.testing.assert_allclose(ld, lt, rtol=2e-6)
    np.testing.assert_allclose(gd, gt, rtol=2e-5, atol=1e-7)
    # unbatched (C,) logits with a 0-d target
    ld, lt, gd, gt = _ce_both(x[0], np.array(4))
    np.testing.assert_allclose(ld, lt, rtol=2e-6)
    np.testing.assert_allclose(gd, gt, rtol=2e-5, atol=1e-7)
    # an empty batch: nan mean (0 / 0), as PyTorch
    ld, lt, gd, gt = _ce_both(np.zeros((0, 6), np.float32), np.zeros(0, np.int64))
    assert np.isnan(ld) and np.isnan(lt) and gd.shape == (0, 6)


def test_cross_entropy_float64_against_finite_differences():
    rng = np.random.default_rng(10)
    x = ds.tensor(rng.standard_normal((5, 7)), requires_grad=True)
    t = ds.tensor(np.array([0, 6, -100, 3, 3]))
    for kw in ({}, dict(label_smoothing=0.3), dict(reduction="sum")):
        assert ds.autograd.gradcheck(lambda a, kw=kw: F.cross_entropy(a, t, **kw), (x,))


# -- batch norm of (N, C) -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3), (8, 16), (64, 512), (5, 1), (3, 70)])
def test_bn2d_kernels_are_the_channel_kernels_on_the_nc1_view(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    n, c = shape
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    x[0, 0] = 1e3
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    k = _bnpool()
    for has_w, has_b in ((True, True), (False, False), (True, False)):
        outs = []
        for view in (False, True):
            mean, rstd, var = np.empty(c, dtype), np.empty(c, dtype), np.empty(c)
            gx, sums = np.empty(shape, dtype), np.empty((4, c), dtype)
            y = np.empty(shape, dtype)
            if view:
                x3, y3 = x.reshape(n, c, 1), y.reshape(n, c, 1)
                k.bn_forward(x3, w, b, has_w, has_b, 1e-5, 0, c, y3, mean, rstd, var)
                k.bn_backward(x3, gy.reshape(n, c, 1), mean, rstd, w, has_w, True, 0, c,
                              gx.reshape(n, c, 1), sums)  # fmt: skip
            else:
                k.bn2d_forward(x, w, b, has_w, has_b, 1e-5, y, mean, rstd, var)
                k.bn2d_backward(x, gy, mean, rstd, w, has_w, True, gx, sums)
            outs.append((y, mean, rstd, var, gx, sums))
        for a, bb in zip(*outs, strict=True):
            assert a.tobytes() == bb.tobytes()


def _bn1d_both(x, affine=True, track=True, x_grad=True, w_grad=True):
    ours = ds.nn.BatchNorm1d(x.shape[1], affine=affine, track_running_stats=track)
    theirs = torch.nn.BatchNorm1d(x.shape[1], affine=affine, track_running_stats=track)
    if x.dtype == np.float64:
        ours, theirs = ours.double(), theirs.double()
    rng = np.random.default_rng(2)
    if affine:
        w = rng.standard_normal(x.shape[1]).astype(x.dtype)
        b = rng.standard_normal(x.shape[1]).astype(x.dtype)
        with ds.no_grad():
            ours.weight.copy_(ds.tensor(w))
            ours.bias.copy_(ds.tensor(b))
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
            theirs.bias.copy_(torch.tensor(b))
        ours.weight.requires_grad_(w_grad)
        theirs.weight.requires_grad_(w_grad)
    xd, xt = ds.tensor(x, requires_grad=x_grad), torch.tensor(x, requires_grad=x_grad)
    gy = rng.standard_normal(x.shape).astype(x.dtype)
    for _ in range(2):  # twice: the running statistics move twice
        yd, yt = ours(xd), theirs(xt)
        yd.backward(ds.tensor(gy))
        yt.backward(torch.tensor(gy))
    return ours, theirs, xd, xt, yd, yt


@pytest.mark.parametrize("shape", [(2, 3), (8, 16), (64, 512)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_1d_rows_match_torch(shape, affine):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 2 - 1).astype(np.float32)
    ours, theirs, xd, xt, yd, yt = _bn1d_both(x, affine=affine)
    assert yd.grad_fn.name() == yt.grad_fn.name()
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=2e-6)
    np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-6)
    if affine:
        for p, q in ((ours.weight, theirs.weight), (ours.bias, theirs.bias)):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_batch_norm_1d_rows_kernel_runs_and_is_the_3d_path_bitwise():
    """(N, C) takes bn2d_*; its value and gradients are bitwise those of (N, C, 1)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((16, 40)).astype(np.float32)
    w, b = rng.standard_normal(40).astype(np.float32), rng.standard_normal(40).astype(np.float32)
    gy = rng.standard_normal((16, 40)).astype(np.float32)
    res = []
    for three in (False, True):
        xd = ds.tensor(x[:, :, None] if three else x, requires_grad=True)
        wd, bd = ds.tensor(w, requires_grad=True), ds.tensor(b, requires_grad=True)
        rm, rv = ds.zeros(40), ds.ones(40)
        y = F.batch_norm(xd, rm, rv, wd, bd, training=True)
        y.backward(ds.tensor(gy[:, :, None] if three else gy))
        res.append([a.reshape(16, 40) if a.ndim == 3 else a for a in (
            y.detach().numpy(), xd.grad.numpy(), wd.grad.numpy(), bd.grad.numpy(), rm.numpy(),
            rv.numpy())])  # fmt: skip
    for a, bb in zip(*res, strict=True):
        assert a.tobytes() == bb.tobytes()


def test_batch_norm_1d_rows_partial_grads_non_contiguous_and_float64():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((12, 9)).astype(np.float32)
    for kw in (dict(x_grad=False), dict(w_grad=False), dict(track=False)):
        ours, theirs, xd, xt, yd, yt = _bn1d_both(x, **kw)
        np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=2e-6)
        if kw.get("x_grad", True):
            np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=2e-6)
        else:
            assert xd.grad is None
        np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-5)
        assert (ours.weight.grad is None) == (theirs.weight.grad is None)
    # a transposed (non-contiguous) input takes the NumPy path: the same results
    xn = rng.standard_normal((9, 12)).astype(np.float32).T
    ours, theirs, xd, xt, yd, yt = _bn1d_both(xn)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=2e-6)
    # float64 against PyTorch and finite differences
    x64 = rng.standard_normal((6, 4))
    ours, theirs, xd, xt, yd, yt = _bn1d_both(x64)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    xg = ds.tensor(x64, requires_grad=True)
    wg = ds.tensor(rng.standard_normal(4), requires_grad=True)
    bg = ds.tensor(rng.standard_normal(4), requires_grad=True)

    def f(a, w, b):
        return F.batch_norm(a, None, None, w, b, training=True)

    assert ds.autograd.gradcheck(f, (xg, wg, bg))
    assert ds.autograd.gradgradcheck(f, (xg, wg, bg))


# -- padded overlapping max-pool windows' backward ------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "geom", [(3, 3, 2, 2, 1, 1), (3, 3, 1, 1, 1, 1), (2, 3, 1, 2, 1, 0), (3, 2, 2, 1, 0, 1)]
)
def test_maxpool_backward_offsets_is_the_numpy_statements_bitwise(geom, dtype):
    """maxpool_backward_offsets against ops/conv.py's former NumPy loop over the offsets
    (gx[sl] += gy * (idx == k)), with ties, NaN / inf / -0.0 gradients."""
    from descent.ops.conv import _offsets

    kh, kw, sh, sw, ph, pw = geom
    rng = np.random.default_rng(kh * 10 + kw)
    n, c, h, w = 2, 3, 7, 6
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    idx = rng.integers(0, kh * kw, (n, c, ho, wo)).astype(np.int8)
    gy = rng.standard_normal((n, c, ho, wo)).astype(dtype)
    gy[0, 0, 0, 0] = np.nan
    gy[0, 1, 1, 1] = np.inf
    gy[1, 2, 0, 1] = -0.0
    gy[1, 0, -1, -1] = -np.inf
    ref = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype)
    with np.errstate(invalid="ignore"):  # (inf * 0)
        for i, j, sl in _offsets((kh, kw, sh, sw, 1, 1, ph, pw), ho, wo):
            ref[sl] += gy * (idx == i * kw + j)
    got = np.zeros_like(ref)
    _bnpool().maxpool_backward_offsets(gy, idx, kh, kw, sh, sw, dtype(1), dtype(0), got)
    assert got.tobytes() == ref.tobytes()
    # a non-contiguous gy (the engine may hand one in)
    got2 = np.zeros_like(ref)
    gyt = np.ascontiguousarray(gy.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    _bnpool().maxpool_backward_offsets(gyt, idx, kh, kw, sh, sw, dtype(1), dtype(0), got2)
    assert got2.tobytes() == ref.tobytes()


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, stride=2, padding=1),
        dict(kernel_size=3, stride=1, padding=1),
        dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1)),
    ],
)
def test_padded_max_pool2d_matches_torch(kw):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    x[0, 0, 2:5, 2:5] = 1.5  # ties across overlapping windows
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = F.max_pool2d(xd, **kw), torch.nn.functional.max_pool2d(xt, **kw)
    gy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    # (a pixel that wins several windows adds their gradients by offset, PyTorch by window:
    # float32 rounding of a sum of up to 9 values)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=2e-6)
    x64 = ds.tensor(rng.standard_normal((1, 2, 6, 5)), requires_grad=True)
    assert ds.autograd.gradcheck(lambda a: F.max_pool2d(a, **kw), (x64,))


def test_cross_entropy_target_range_check():
    """The NumPy range check takes min/max first: every out-of-range class still raises,
    ignore_index (in or out of the classes) does not; uint8 targets too."""
    x = ds.tensor(np.zeros((3, 4), np.float32))
    for t in ([0, 4, 1], [0, -1, 1], [-7, 0, 0]):
        with pytest.raises(IndexError, match="out of range for 4 classes"):
            F.cross_entropy(x, ds.tensor(np.array(t)))
    for t, ii in (([0, -7, 3], -7), ([0, 9, 3], 9), ([2, 2, 2], 2)):
        ld = F.cross_entropy(x, ds.tensor(np.array(t)), ignore_index=ii)
        lt = torch.nn.functional.cross_entropy(torch.zeros(3, 4), torch.tensor(t), ignore_index=ii)
        np.testing.assert_allclose(ld.item(), lt.item(), equal_nan=True)
    with pytest.raises(IndexError, match="target 200 is out of range"):
        F.cross_entropy(x, ds.tensor(np.array([0, 200, 1], np.uint8)))
    ld = F.cross_entropy(x, ds.tensor(np.array([0, 3, 1], np.uint8)))
    np.testing.assert_allclose(ld.item(), np.log(4), rtol=1e-6)


def test_cross_entropy_mean_scale_and_all_ignored():
    """The NumPy mean's branch: the gradient's scale 1/n, and nan with zero gradients when
    every row is ignored (the errstate path), as PyTorch."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    for t in ([0, 1, 2, 1, 0], [0, -100, 2, -100, -100], [-100] * 5):
        ld, lt, gd, gt = _ce_both(x, np.array(t))
        np.testing.assert_allclose(ld, lt, rtol=2e-6, equal_nan=True)
        np.testing.assert_allclose(gd, gt, rtol=2e-5, atol=1e-7)


# -- SelectedValues' (N, C) path (max / min / kthvalue / median / mode over a dim) ------------


def _selected(x, fn, dim, keep, gy, fast, monkeypatch):
    from descent.ops import indexing

    if not fast:
        monkeypatch.setattr(indexing, "_one_per_row", lambda *a: False)
    xd = ds.tensor(x, requires_grad=True)
    out = fn(xd, dim, keep)
    out.backward(ds.tensor(gy.reshape(tuple(out.shape))))
    monkeypatch.undo()
    return out.detach().numpy(), xd.grad.numpy()


_SELECTORS = {
    "max": lambda x, d, k: x.max(d, keepdim=k)[0],
    "min": lambda x, d, k: x.min(d, keepdim=k).values,
    "kthvalue": lambda x, d, k: x.kthvalue(2, d, keepdim=k)[0],
    "median": lambda x, d, k: x.median(d, keepdim=k)[0],
    "mode": lambda x, d, k: x.mode(d, keepdim=k)[0],
}


@pytest.mark.parametrize("name", sorted(_SELECTORS))
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_selected_values_rows_bitwise_the_take_along_axis_path(name, dim, keep, dtype, monkeypatch):
    rng = np.random.default_rng(15)
    x = rng.integers(-3, 4, (6, 5)).astype(dtype)  # ties
    x[1, 2] = np.nan
    x[4, 0] = -np.inf
    n_out = 5 if dim == 0 else 6
    gy = rng.standard_normal(n_out).astype(dtype)
    gy[0] = -0.0
    gy[1] = np.nan
    fn = _SELECTORS[name]
    new = _selected(x, fn, dim, keep, gy, True, monkeypatch)
    old = _selected(x, fn, dim, keep, gy, False, monkeypatch)
    for a, b in zip(new, old, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()
        assert a.flags.c_contiguous == b.flags.c_contiguous


@pytest.mark.parametrize("dim", [0, 1])
def test_max_dim_rows_match_torch_and_finite_differences(dim):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((8, 16)).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    vd, id_ = xd.max(dim)
    vt, it = xt.max(dim)
    np.testing.assert_array_equal(vd.detach().numpy(), vt.detach().numpy())
    np.testing.assert_array_equal(id_.numpy(), it.numpy())
    assert vd.grad_fn.name() == vt.grad_fn.name()
    gy = rng.standard_normal(tuple(vt.shape)).astype(np.float32)
    vd.backward(ds.tensor(gy))
    vt.backward(torch.tensor(gy))
    np.testing.assert_array_equal(xd.grad.numpy(), xt.grad.numpy())
    x64 = ds.tensor(rng.standard_normal((5, 4)), requires_grad=True)
    assert ds.autograd.gradcheck(lambda a: a.max(dim)[0], (x64,))
    assert ds.autograd.gradgradcheck(lambda a: a.min(dim, keepdim=True)[0], (x64,))
    # a (N, C) view that is not contiguous, and an empty batch
    xb, xtb = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    (xb.T.max(dim)[0] * 2).sum().backward()
    (xtb.T.max(dim)[0] * 2).sum().backward()
    np.testing.assert_array_equal(xb.grad.numpy(), xtb.grad.numpy())
    e = ds.zeros((0, 3), requires_grad=True)
    (e.max(1)[0]).sum().backward()
    assert e.grad.shape == (0, 3)


# -- var / std: NumPy's mean without its Python layers ---------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize(
    "shape, axis",
    [((8, 16), (1,)), ((8, 16), (0,)), ((3, 4, 5), (0, 2)), ((3, 4, 5), (-1,)),
     ((7,), (0,)), ((2, 3), None), ((5, 4000), (1,)), ((0, 3), (1,)), ((), ()), ((), None)],
)  # fmt: skip
def test_mean_kept_is_numpys_mean_bitwise(shape, axis, dtype):
    from descent.ops.variance import _mean_kept

    rng = np.random.default_rng(17)
    a = (rng.standard_normal(shape) * 100 + 3).astype(dtype)
    if a.size > 4:
        a.reshape(-1)[1] = np.nan
        a.reshape(-1)[3] = np.inf
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (NumPy's "Mean of empty slice", where it applies)
        got = _mean_kept(a, axis)
        want = a.mean(axis=axis, keepdims=True)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    # a transposed (non-contiguous) array
    if a.ndim == 2 and a.size:
        t = a.T
        ax = None if axis is None else tuple(1 - x if x >= 0 else x for x in axis)
        assert _mean_kept(t, ax).tobytes() == t.mean(axis=ax, keepdims=True).tobytes()


@pytest.mark.parametrize("fn", ["var", "std"])
@pytest.mark.parametrize("dim", [0, 1, (0, 1), None])
@pytest.mark.parametrize("correction", [0, 1, 2])
def test_var_std_match_torch(fn, dim, correction):
    rng = np.random.default_rng(18)
    x = (rng.standard_normal((8, 16)) * 3 + 1).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd = getattr(xd, fn)(dim, correction=correction)
    yt = getattr(xt, fn)(dim, correction=correction)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=2e-6)
    gy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=2e-5, atol=1e-6)


def test_var_edge_cases_and_float64_gradients():
    # one element per row with correction=1: nan (0 / 0) without a warning from the division
    xd = ds.tensor(np.ones((3, 1), np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="degrees of freedom"):
        v = xd.var(1)
    assert np.isnan(v.numpy()).all()
    # nan and inf inputs: the row's variance nan, the others finite (as PyTorch)
    x = np.random.default_rng(19).standard_normal((4, 6)).astype(np.float32)
    x[1, 2], x[2, 0] = np.nan, np.inf
    yd, yt = ds.tensor(x).var(1), torch.tensor(x).var(1)
    np.testing.assert_allclose(yd.numpy(), yt.numpy(), rtol=2e-6, equal_nan=True)
    # float64: finite differences, first and second order
    x64 = ds.tensor(np.random.default_rng(20).standard_normal((4, 5)), requires_grad=True)
    for f in (lambda a: a.var(1), lambda a: a.std(0, correction=0), lambda a: a.var()):
        assert ds.autograd.gradcheck(f, (x64,))
        assert ds.autograd.gradgradcheck(f, (x64,))


def test_batch_norm_reads_the_kernel_switch_on_every_call(monkeypatch):
    """The kernel modules are looked up once (ops/norm._MODULES), the switch at every call:
    with the kernels off the NumPy path runs (the kernel is never called), then on again."""
    k = _bnpool()
    x = ds.tensor(np.random.default_rng(21).standard_normal((6, 5)).astype(np.float32))
    F.batch_norm(x, None, None, training=True)  # (the modules cached)

    def refuse(*args):
        raise AssertionError("the kernel ran")

    monkeypatch.setattr(k, "bn2d_forward", refuse)
    previous = cpu.set_enabled(False)
    try:
        y = F.batch_norm(x, None, None, training=True)
    finally:
        cpu.set_enabled(previous)
    yt = torch.nn.functional.batch_norm(torch.tensor(x.numpy()), None, None, training=True)
    np.testing.assert_allclose(y.numpy(), yt.numpy(), rtol=1e-5, atol=2e-6)
    with pytest.raises(AssertionError, match="the kernel ran"):
        F.batch_norm(x, None, None, training=True)
