"""Session 25's per-call overhead work (helper-177) keeps the results of the paths it
replaced: padded max_pool2d on the numba kernel gives the numpy path's values, gradients
(padded overlapping windows add in that path's offset order) and indices; return_indices from
the kernel's winners; the cached pooling geometry still raises on every bad call; col2im_nd's
one add for tiling windows equals its offset loop; the view registry with many live views."""

from __future__ import annotations

import numpy as np
import pytest

import descent as ds
import descent.nn.functional as F
from descent.kernels import cpu


def _input(shape, dtype, seed):
    """Normals with ties (rounded to halves, no zeros: a tie of -0 and +0 picks a different
    sign) and a few NaNs (a window's last NaN wins)."""
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(shape) * 2) / 2 + 0.25
    x.reshape(-1)[rng.integers(0, x.size, 3)] = np.nan
    return x.astype(dtype)


def _pool(x, gy, kernels, **kw):
    before = cpu.set_enabled(kernels)
    try:
        t = ds.tensor(x, requires_grad=True)
        y, idx = F.max_pool2d(t, return_indices=True, **kw)
        y.backward(ds.tensor(gy))
        return y.detach().numpy(), idx.numpy(), t.grad.numpy()
    finally:
        cpu.set_enabled(before)


@pytest.mark.skipif(not cpu.enabled(), reason="the numba kernels are off")
@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3, stride=2, padding=1),  # overlapping: offset-order adds
        dict(kernel_size=3, stride=1, padding=1),  # nine windows share a pixel
        dict(kernel_size=(2, 3), stride=(2, 3), padding=(1, 1)),  # no overlap: the kernel's
        dict(kernel_size=2, stride=2),  # unpadded: indices from the kernel's winners
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_padded_kernel_path_bitwise_numpy_path(kw, dtype):
    x = _input((2, 3, 9, 10), dtype, 0)
    y_shape = F.max_pool2d(ds.tensor(x), **kw).shape
    gy = np.random.default_rng(1).standard_normal(tuple(y_shape)).astype(dtype)
    for a, b in zip(_pool(x, gy, True, **kw), _pool(x, gy, False, **kw), strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_cached_geometry_still_checks_every_call():
    x = ds.randn(1, 2, 6, 6)
    assert F.max_pool2d(x, 2).shape == (1, 2, 3, 3)
    assert F.max_pool2d(x, [2, 2], [2]).shape == (1, 2, 3, 3)  # lists: not cached, accepted
    for _ in range(2):  # errors are never cached: the second call raises too
        with pytest.raises(Exception, match="padding"):
            F.max_pool2d(x, 2, 2, 2)
    with pytest.raises(TypeError):  # a float kernel after the int one was cached
        F.max_pool2d(x, 2.0)
    with pytest.raises(Exception, match="kernel"):  # same arguments, a smaller input
        F.max_pool2d(ds.randn(1, 2, 1, 1), 2)
    assert F.max_pool3d(ds.randn(1, 1, 4, 4, 4), 2).shape == (1, 1, 2, 2, 2)
    with pytest.raises(Exception, match="kernel|size"):
        F.max_pool3d(ds.randn(1, 1, 1, 4, 4), 2)


@pytest.mark.parametrize("pad", [(0, 0, 0), (1, 0, 1)])
def test_col2im_tiling_windows_bitwise_offset_loop(pad):
    """col2im_nd's one add for windows that tile the image (stride == kernel) equals its loop
    of one strided add per kernel offset (kept for every other geometry)."""
    import itertools

    from descent.ops.window import col2im_nd

    k, sizes, n, c = (2, 3, 2), (5, 7, 6), 2, 3
    out = [(sz + 2 * p - ki) // ki + 1 for sz, p, ki in zip(sizes, pad, k)]
    cols = np.random.default_rng(0).standard_normal((c, *k, n, *out)).astype(np.float32)
    cols[0, 0, 0, 0] = -0.0  # 0 + -0 is +0 both ways
    got = col2im_nd(np, cols, (n, c, *sizes), (k, k, (1, 1, 1), pad))
    want = np.zeros((n, c, *(sz + 2 * p for sz, p in zip(sizes, pad))), np.float32)
    for offs in itertools.product(*(range(ki) for ki in k)):
        sl = tuple(slice(o, o + ki * (oi - 1) + 1, ki) for o, ki, oi in zip(offs, k, out))
        want[(slice(None), slice(None), *sl)] += np.moveaxis(cols[(slice(None), *offs)], 0, 1)
    want = want[(slice(None), slice(None), *(slice(p, p + sz) for p, sz in zip(pad, sizes)))]
    assert got.shape == want.shape and got.tobytes() == want.tobytes()


def test_many_live_views_of_one_tensor():
    """split into 128 views (the view registry scans for dead entries at 64, 128, 256, ...
    entries, not at every view past 64): every view still sees an in-place write, and dead
    entries are dropped."""
    x = ds.zeros(4, 512)
    parts = x.split(4, dim=1)
    assert len(parts) == 128
    x.add_(1.0)
    assert all(p._version == x._version for p in parts)
    assert all(float(p.sum()) == 16.0 for p in parts)
    del parts
    for _ in range(3):
        x[:, 0]  # noqa: B018 - a view that dies at once
    keep = [x[:, i] for i in range(70)]
    assert len(x._views) <= 2 * len(keep)
    x.mul_(2.0)
    assert all(float(v.sum()) == 8.0 for v in keep)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_backward_blend_is_where(dtype):
    """array_backward.sigmoid's bitwise blend (4096+ elements) gives where's bits: mixed signs,
    nan, +-inf, zeros of both signs (helper-182)."""
    from descent import array_backward

    x = np.random.default_rng(3).standard_normal((64, 80)).astype(dtype) * 8
    x.reshape(-1)[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    e = np.exp(-np.abs(x))
    want = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    got = array_backward.sigmoid(np, x)
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_without_weight_is_weight_of_ones(reduction):
    """nll_loss without class weights leaves out the row-weight product (helper-182): its loss
    and gradient are bitwise those of weight=ones, with ignored rows and -inf log-probabilities."""
    rng = np.random.default_rng(4)
    xa = rng.standard_normal((2, 5, 3)).astype(np.float32)
    xa[0, :, 0] = -np.inf
    t = ds.tensor(np.array([[0, -100, 2], [4, 1, -100]]))
    gy = rng.standard_normal(() if reduction != "none" else (2, 3)).astype(np.float32)
    out = []
    for w in (None, ds.ones(5)):
        x = ds.tensor(xa, requires_grad=True)
        y = F.nll_loss(x, t, weight=w, reduction=reduction)
        y.backward(ds.tensor(gy))
        out.append((y.detach().numpy().tobytes(), x.grad.numpy().tobytes()))
    assert out[0] == out[1]


def test_parameter_grad_assignment_fast_path_still_checks():
    """nn.Parameter's `.grad = g` skips the full check only for a plain Tensor of its shape and
    dtype with no grad_dtype set (helper-182): every other assignment still raises."""
    p = ds.nn.Parameter(ds.zeros(3))
    p.grad = ds.ones(3)
    assert p.grad.tolist() == [1.0, 1.0, 1.0]
    for bad, err in ((ds.ones(4), ds.DescentError), (ds.ones(3, dtype=ds.float64),
                     ds.DescentError), (np.ones(3, np.float32), TypeError)):  # fmt: skip
        with pytest.raises(err):
            p.grad = bad
    p.grad_dtype = ds.float64
    with pytest.raises(ds.DescentError, match="dtype"):
        p.grad = ds.ones(3)  # the parameter's own dtype, but its gradients are float64
    p.grad = ds.ones(3, dtype=ds.float64)
    assert p.grad.dtype == ds.float64


def test_plain_tensor_grad_assignment_checks_grad_dtype():
    """A plain tensor whose grad_dtype is float64 refuses a float32 gradient of its own dtype,
    as PyTorch's ("attempting to assign a gradient with dtype 'float' to a tensor with
    grad_dtype 'Double'"): the fast path skipped the check and stored the float32 gradient."""
    t = ds.zeros(3, requires_grad=True)
    t.grad_dtype = ds.float64
    with pytest.raises(RuntimeError, match="dtype"):
        t.grad = ds.ones(3)
    t.grad = ds.ones(3, dtype=ds.float64)
    assert t.grad.dtype == ds.float64
