"""Session 27's per-call overhead work (helper-198) keeps the results of the paths it replaced:
avg_pool3d (and adaptive_avg_pool3d where the sizes divide) is one AvgPool3d node (six before:
Im2ColNd, reshape, sum, swapaxes, contiguous, division), bitwise the composite in the value,
the gradient and the second derivative, and agrees with PyTorch; binary_cross_entropy_with_logits
without weights is one BCEWithLogits node (five before: neg, softplus, the product by 1 - y, the
add, the reduction), bitwise the composite too; max_pool3d and adaptive_max_pool1d/2d/3d gather
their winners with one PoolGather node (a reshape, TakeAlongAxis and a reshape before), bitwise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent.nn.functional import _pooling_extra
from descent.ops.loss import BCEWithLogits

_AVG3 = [
    dict(kernel_size=2),
    dict(kernel_size=(3, 2, 1), stride=(1, 2, 1), padding=(1, 1, 0)),
    dict(kernel_size=2, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(2, 3, 2), stride=(2, 1, 3), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, divisor_override=5),
]


def _avg3(fused, x, kw, gy, monkeypatch):
    """(value, gradient, gradient under create_graph, second derivative of <gradient, w>
    with respect to gy) as arrays."""
    monkeypatch.setattr(_pooling_extra, "_FUSED_AVG", _pooling_extra._FUSED_AVG if fused else ())
    xt = ds.tensor(x, requires_grad=True)
    y = F.avg_pool3d(xt, **kw)
    node = y.grad_fn if x.ndim == 5 else y.grad_fn.next_functions[0][0]
    assert (node.op_class.__name__ == "AvgPool3d") == fused
    (g,) = ds.autograd.grad(y, [xt], ds.tensor(gy), retain_graph=True)  # on the arrays
    gyt = ds.tensor(gy, requires_grad=True)
    (gg,) = ds.autograd.grad(y, [xt], gyt, create_graph=True)  # on Tensors, recorded
    w = np.random.default_rng(3).standard_normal(x.shape).astype(x.dtype)
    (g2,) = ds.autograd.grad((gg * ds.tensor(w)).sum(), [gyt])
    return y.detach().numpy(), g.numpy(), gg.detach().numpy(), g2.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", _AVG3)
@pytest.mark.parametrize("shape", [(2, 3, 5, 4, 6), (3, 4, 5, 4)])
def test_avg_pool3d_fused_node_bitwise_composite(shape, kw, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    x.reshape(-1)[::11] = np.nan
    x.reshape(-1)[5::13] = np.inf
    x.reshape(-1)[7::17] = np.finfo(dtype).max  # window sums that overflow
    yshape = F.avg_pool3d(ds.tensor(x), **kw).shape
    gy = rng.standard_normal(tuple(yshape)).astype(dtype)
    gy.reshape(-1)[::5] = 0.0
    gy.reshape(-1)[1] = np.nan
    new = _avg3(True, x, kw, gy, monkeypatch)
    old = _avg3(False, x, kw, gy, monkeypatch)
    for a, b in zip(new, old, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("kw", _AVG3)
def test_avg_pool3d_fused_node_agrees_with_torch(kw):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 4, 6)).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = F.avg_pool3d(xd, **kw), torch.nn.functional.avg_pool3d(xt, **kw)
    assert yd.grad_fn.op_class.__name__ == "AvgPool3d"
    assert yd.grad_fn.name() == yt.grad_fn.name() == "AvgPool3DBackward0"
    gy = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6)
    # PyTorch's node saves self: a second backward without retain_graph raises in both
    with pytest.raises(RuntimeError):
        yt.backward(torch.tensor(gy))
    with pytest.raises(RuntimeError):
        yd.backward(ds.tensor(gy))


@pytest.mark.parametrize("kw", _AVG3[1:3])
def test_avg_pool3d_fused_node_finite_differences(kw):
    x = ds.tensor(np.random.default_rng(2).standard_normal((1, 2, 4, 3, 4)), requires_grad=True)
    f = lambda t: F.avg_pool3d(t, **kw)  # noqa: E731
    assert f(x).grad_fn.op_class.__name__ == "AvgPool3d"
    assert torch_free_gradcheck(f, x)


def torch_free_gradcheck(f, x) -> bool:
    """float64 central differences of f's first and second derivatives (descent's own)."""
    return ds.autograd.gradcheck(f, (x,)) and ds.autograd.gradgradcheck(f, (x,))


def test_adaptive_avg_pool3d_even_sizes_is_one_node_and_agrees_with_torch():
    x = np.random.default_rng(4).standard_normal((2, 3, 4, 6, 8)).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd = F.adaptive_avg_pool3d(xd, (2, 3, 2))
    yt = torch.nn.functional.adaptive_avg_pool3d(xt, (2, 3, 2))
    assert yd.grad_fn.op_class.__name__ == "AvgPool3d"
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.int64])
def test_avg_pool3d_other_dtypes_keep_the_composite(dtype):
    x = (np.arange(2 * 4 * 4 * 4).reshape(2, 4, 4, 4) % 7 - 3).astype(dtype)
    y = F.avg_pool3d(ds.tensor(x), 2)
    # (PyTorch's CPU avg_pool3d has no float16 kernel: its float32 result, exact in float16)
    xt = torch.tensor(x.astype(np.float32) if dtype == np.float16 else x)
    yt = torch.nn.functional.avg_pool3d(xt, 2).numpy().astype(dtype)
    assert y.dtype == ds.float16 if dtype == np.float16 else y.dtype == ds.int64
    np.testing.assert_array_equal(y.numpy(), yt)


def test_avg_pool3d_fused_node_replays_under_compile():
    w = ds.tensor(np.random.default_rng(7).standard_normal((2, 3, 4, 4, 4)), requires_grad=True)

    def f(x):
        y = F.avg_pool3d(x * w, 2, 2, 1, count_include_pad=False)
        (y * y).sum().backward()
        return y

    cf = ds.compile(f)
    for i in range(3):
        x = ds.tensor(np.random.default_rng(i).standard_normal((2, 3, 4, 4, 4)))
        w.grad = None
        y, g = f(x).detach().numpy(), w.grad.numpy().copy()
        w.grad = None
        assert cf(x).detach().numpy().tobytes() == y.tobytes()
        assert w.grad.numpy().tobytes() == g.tobytes()
    assert cf.stats["replays"] == 1 and cf.stats["fallbacks"] == 0


def _bce(fused, x, y, reduction, gy, monkeypatch):
    """(loss, gradient, gradient under create_graph, second derivatives of <gradient, w> in x
    and gy) as arrays."""
    monkeypatch.setattr(BCEWithLogits, "dtypes", BCEWithLogits.dtypes if fused else ())
    xt = ds.tensor(x, requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(xt, ds.tensor(y), reduction=reduction)
    assert (loss.grad_fn.op_class.__name__ == "BCEWithLogits") == fused
    (g,) = ds.autograd.grad(loss, [xt], ds.tensor(gy), retain_graph=True)
    gyt = ds.tensor(gy, requires_grad=True)
    (gg,) = ds.autograd.grad(loss, [xt], gyt, create_graph=True)
    w = np.random.default_rng(3).standard_normal(x.shape).astype(x.dtype)
    g2x, g2y = ds.autograd.grad((gg * ds.tensor(w)).sum(), [xt, gyt])
    return loss.detach().numpy(), g.numpy(), gg.detach().numpy(), g2x.numpy(), g2y.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(8, 16), (64, 80), (3, 0)])
def test_bce_with_logits_fused_node_bitwise_composite(shape, reduction, dtype, monkeypatch):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 30).astype(dtype)  # both signs of the 4096-value blend
    y = rng.random(shape).astype(dtype)
    if x.size:
        x.reshape(-1)[::9] = np.nan
        x.reshape(-1)[1::9] = np.inf
        x.reshape(-1)[2::9] = -np.inf
        x.reshape(-1)[3::9] = -0.0
        x.reshape(-1)[4::9] = np.finfo(dtype).max
        y.reshape(-1)[5::9] = np.nan
        y.reshape(-1)[6::9] = 1.0
    gy = rng.standard_normal(shape if reduction == "none" else ()).astype(dtype)
    if gy.size > 1:
        gy.reshape(-1)[1] = 0.0
    new = _bce(True, x, y, reduction, gy, monkeypatch)
    old = _bce(False, x, y, reduction, gy, monkeypatch)
    for a, b in zip(new, old, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_fused_node_agrees_with_torch(reduction):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((64, 80)) * 5).astype(np.float32)
    y = rng.random((64, 80)).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ld = F.binary_cross_entropy_with_logits(xd, ds.tensor(y), reduction=reduction)
    lt = torch.nn.functional.binary_cross_entropy_with_logits(
        xt, torch.tensor(y), reduction=reduction
    )
    assert ld.grad_fn.name() == lt.grad_fn.name() == "BinaryCrossEntropyWithLogitsBackward0"
    gy = rng.standard_normal(tuple(lt.shape)).astype(np.float32)
    ld.backward(ds.tensor(gy))
    lt.backward(torch.tensor(gy))
    np.testing.assert_allclose(ld.detach().numpy(), lt.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(RuntimeError):  # the saved values are freed, as PyTorch's
        ld.backward(ds.tensor(gy))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_with_logits_fused_node_finite_differences(reduction):
    rng = np.random.default_rng(2)
    x = ds.tensor(rng.standard_normal((3, 4)) * 3, requires_grad=True)
    y = ds.tensor(rng.random((3, 4)))
    f = lambda t: F.binary_cross_entropy_with_logits(t, y, reduction=reduction)  # noqa: E731
    assert f(x).grad_fn.op_class.__name__ == "BCEWithLogits"
    assert torch_free_gradcheck(f, x)


def test_bce_with_logits_target_gradient_and_half_keep_the_composite():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    y = rng.random((4, 5)).astype(np.float32)
    xd, yd = ds.tensor(x, requires_grad=True), ds.tensor(y, requires_grad=True)
    xt, yt = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    ld = F.binary_cross_entropy_with_logits(xd, yd)
    lt = torch.nn.functional.binary_cross_entropy_with_logits(xt, yt)
    assert ld.grad_fn.op_class.__name__ != "BCEWithLogits"
    ld.backward()
    lt.backward()
    np.testing.assert_allclose(yd.grad.numpy(), yt.grad.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)
    h = F.binary_cross_entropy_with_logits(ds.tensor(x).half(), ds.tensor(y).half())
    assert h.dtype == ds.float16


def test_pool2d_offset_slices_are_remembered():
    from descent.ops import conv

    geom = (3, 2, 2, 1, 1, 2, 1, 0)  # kh, kw, sh, sw, dh, dw, ph, pw
    offs = conv._offsets(geom, 4, 5)
    assert offs is conv._offsets(list(geom), 4, 5)  # one tuple per (geometry, output size)
    want = [
        (i, j, (slice(None), slice(None), slice(i, i + 7, 2), slice(2 * j, 2 * j + 5, 1)))
        for i in range(3)
        for j in range(2)
    ]
    assert list(offs) == want


_MAXPOOLS = [
    ("max_pool3d", lambda f, t: f.max_pool3d(t, 2), (2, 3, 4, 5, 4)),
    ("max_pool3d-geometry", lambda f, t: f.max_pool3d(t, (2, 3, 2), (1, 2, 2), (1, 1, 0),
                                                      (1, 1, 2), ceil_mode=True), (2, 3, 4, 5, 4)),
    ("max_pool3d-indices", lambda f, t: f.max_pool3d(t, 2, return_indices=True)[0], (3, 4, 4, 5)),
    ("adaptive_max_pool1d", lambda f, t: f.adaptive_max_pool1d(t, 5), (2, 3, 13)),
    ("adaptive_max_pool2d", lambda f, t: f.adaptive_max_pool2d(t, (3, 4)), (2, 3, 7, 9)),
    ("adaptive_max_pool3d", lambda f, t: f.adaptive_max_pool3d(t, (2, 3, 2)), (2, 3, 5, 4, 3)),
]  # fmt: skip


def _maxpool(fused, fn, x, gy, monkeypatch):
    monkeypatch.setattr(
        _pooling_extra, "_FUSED_GATHER", _pooling_extra._FUSED_GATHER if fused else ()
    )
    xt = ds.tensor(x, requires_grad=True)
    y = fn(F, xt)
    node = y.grad_fn if y.grad_fn.name() != "SelectBackward0" else y.grad_fn.next_functions[0][0]
    assert (node.op_class.__name__ == "PoolGather") == fused
    (g,) = ds.autograd.grad(y, [xt], ds.tensor(gy), retain_graph=True)
    gyt = ds.tensor(gy, requires_grad=True)
    (gg,) = ds.autograd.grad(y, [xt], gyt, create_graph=True)
    w = np.random.default_rng(3).standard_normal(x.shape).astype(x.dtype)
    (g2,) = ds.autograd.grad((gg * ds.tensor(w)).sum(), [gyt])
    return y.detach().numpy(), g.numpy(), gg.detach().numpy(), g2.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", _MAXPOOLS, ids=[c[0] for c in _MAXPOOLS])
def test_max_pool_gather_node_bitwise_composite(case, dtype, monkeypatch):
    _, fn, shape = case
    rng = np.random.default_rng(0)
    x = np.round(rng.standard_normal(shape) * 2).astype(dtype)  # ties
    x.reshape(-1)[::13] = np.nan
    x.reshape(-1)[5::11] = -np.inf
    gy = rng.standard_normal(tuple(fn(F, ds.tensor(x)).shape)).astype(dtype)
    new = _maxpool(True, fn, x, gy, monkeypatch)
    old = _maxpool(False, fn, x, gy, monkeypatch)
    for a, b in zip(new, old, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("case", _MAXPOOLS, ids=[c[0] for c in _MAXPOOLS])
def test_max_pool_gather_node_agrees_with_torch(case):
    name, fn, shape = case
    x = np.random.default_rng(1).permutation(np.prod(shape)).reshape(shape).astype(np.float32)
    xd, xt = ds.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = fn(F, xd), fn(torch.nn.functional, xt)
    if len(shape) > 4 or name == "adaptive_max_pool2d":  # (unbatched: a select on top)
        assert yd.grad_fn.name() == yt.grad_fn.name()
    if name == "adaptive_max_pool1d":  # PyTorch's 1-d squeezes the output of its 2-d node:
        # descent's one node shows that chain since session 31 (tests/test_fidelity_s31.py)
        assert yd.grad_fn.name() == yt.grad_fn.name() == "SqueezeBackward1"
        inner_d, inner_t = yd.grad_fn.next_functions[0][0], yt.grad_fn.next_functions[0][0]
        assert inner_d.name() == inner_t.name() == "AdaptiveMaxPool2DBackward0"
    gy = np.random.default_rng(2).standard_normal(tuple(yt.shape)).astype(np.float32)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_array_equal(yd.detach().numpy(), yt.detach().numpy())
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError):  # PyTorch's node saves the indices: freed after backward
        yd.backward(ds.tensor(gy))


def test_max_pool_gather_node_finite_differences():
    x = np.random.default_rng(2).permutation(60).reshape(1, 3, 4, 5) / 7.0
    x = ds.tensor(x, requires_grad=True)
    f = lambda t: F.adaptive_max_pool2d(t, (3, 2))  # noqa: E731
    assert f(x).grad_fn.op_class.__name__ == "PoolGather"
    assert torch_free_gradcheck(f, x)


def test_max_pool3d_of_integers_keeps_the_composite():
    x = np.arange(2 * 4 * 4 * 4).reshape(2, 4, 4, 4) % 11
    y = F.max_pool3d(ds.tensor(x), 2)
    assert y.dtype == ds.int64
    want = torch.nn.functional.max_pool3d(torch.tensor(x), 2).numpy()
    np.testing.assert_array_equal(y.numpy(), want)


def test_max_pool_gather_node_replays_under_compile():
    w = ds.tensor(np.random.default_rng(7).standard_normal((2, 3, 4, 4, 4)), requires_grad=True)

    def f(x):
        y = F.max_pool3d(x * w, 2) + F.adaptive_max_pool3d(x * w, (3, 2, 3)).sum()
        (y * y).sum().backward()
        return y

    cf = ds.compile(f)
    for i in range(3):  # other data: other winners at each call
        x = ds.tensor(np.random.default_rng(i).standard_normal((2, 3, 4, 4, 4)))
        w.grad = None
        y, g = f(x).detach().numpy(), w.grad.numpy().copy()
        w.grad = None
        assert cf(x).detach().numpy().tobytes() == y.tobytes()
        assert w.grad.numpy().tobytes() == g.tobytes()
    assert cf.stats["replays"] == 1 and cf.stats["fallbacks"] == 0
