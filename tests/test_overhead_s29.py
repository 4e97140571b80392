"""Session 29's per-call work (helper-220) keeps the results of the paths it changed.

- AvgPool3d's forward loop (`_cpu_bnpool.avgpool3d_forward_offsets`, avg_pool3d and the
  dividing adaptive_avg_pool3d) sums eight (image, channel) planes side by side and serves
  every input size (it served inputs below 32,768 values): bitwise the im2col / sum path
  (kernels off) with -0.0, nan, inf and huge values, planes in blocks of eight and the rest.
- adaptive_avg_pool2d / 3d show PyTorch's node names (AdaptiveAvgPool2DBackward0, ...).
- split / chunk make each piece with GetItem itself (x[...] made the same call after its index
  checks): the same views, nodes, view bookkeeping and errors as indexing x.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent.kernels import cpu

pytestmark = pytest.mark.skipif(not cpu.enabled(), reason="numba kernels off")


def _bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype
    assert a.tobytes() == b.tobytes()


def _edge_values(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 100).astype(dtype)
    x[0, 0, 0, 0, :] = -0.0
    x.flat[17] = np.nan
    x.flat[40] = np.inf
    x.flat[-3] = -np.inf
    x[-1, -1, -1, :, :] = 3e38 if dtype == np.float32 else 1e308
    return x


def _kernels_vs_numpy(fn, x, dtype, transpose=False):
    """(values, gradients) with the kernels on and off, compared bit for bit."""
    gy = None
    res = []
    for flag in (True, False):
        previous = cpu.set_enabled(flag)
        try:
            t = ds.tensor(x, requires_grad=True)
            y = fn(t.transpose(3, 4) if transpose else t)
            if gy is None:
                rng = np.random.default_rng(3)
                gy = (rng.standard_normal(tuple(y.shape)) * 100).astype(dtype)
                gy.flat[::5] = -0.0
                gy.flat[1] = np.nan
            y.backward(ds.tensor(gy))
            res.append((y.detach().numpy(), t.grad.numpy()))
        finally:
            cpu.set_enabled(previous)
    _bits(res[0][0], res[1][0])
    _bits(res[0][1], res[1][1])


_AVG3D = [
    ((3, 3, 5, 6, 4), dict(kernel_size=3, stride=2, padding=1)),  # 9 planes: 8 + 1
    ((4, 4, 5, 6, 7), dict(kernel_size=(3, 2, 3), stride=(2, 1, 2), ceil_mode=True)),
    ((2, 8, 5, 6, 4), dict(kernel_size=3, stride=1, padding=1, count_include_pad=False)),
    ((2, 5, 4, 4, 4), dict(kernel_size=2, stride=1, divisor_override=3)),  # 10 planes
    ((4, 8, 16, 16, 16), dict(kernel_size=8)),  # 512 offsets: served above 32,768 values now
    ((4, 8, 16, 16, 16), dict(kernel_size=2)),
    ((2, 4, 16, 16, 16), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 8, 8, 8, 8), dict(kernel_size=8)),  # N O = 1: NumPy's pairwise sum, not the kernel
]


@pytest.mark.parametrize("shape,kw", _AVG3D)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool3d_kernel_bitwise_the_im2col_path(shape, kw, dtype):
    x = _edge_values(shape, dtype, 9)
    _kernels_vs_numpy(lambda t: F.avg_pool3d(t, **kw), x, dtype)
    if shape[2] < 16:  # a strided input too (the kernel's contiguous copy)
        _kernels_vs_numpy(lambda t: F.avg_pool3d(t, **kw), x, dtype, transpose=True)


@pytest.mark.parametrize("shape,out", [((4, 8, 16, 16, 16), 2), ((3, 3, 6, 6, 6), (2, 3, 1))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_avg_pool3d_kernel_bitwise_and_torch(shape, out, dtype):
    x = _edge_values(shape, dtype, 4)
    _kernels_vs_numpy(lambda t: F.adaptive_avg_pool3d(t, out), x, dtype)
    v = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    xd, xt = ds.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    yd, yt = F.adaptive_avg_pool3d(xd, out), torch.nn.functional.adaptive_avg_pool3d(xt, out)
    assert type(yd.grad_fn).__name__ == type(yt.grad_fn).__name__
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), **tol)
    gy = np.random.default_rng(6).standard_normal(tuple(yd.shape)).astype(dtype)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), **tol)


def test_avg_pool3d_forward_kernel_every_size(monkeypatch):
    from descent.kernels import _cpu_bnpool

    calls = []
    for name in ("avgpool3d_forward_offsets", "avgpool3d_backward_offsets"):
        real = getattr(_cpu_bnpool, name)
        monkeypatch.setattr(
            _cpu_bnpool, name, lambda *a, name=name, real=real: calls.append(name) or real(*a)
        )
    x = ds.randn(4, 8, 16, 16, 16, requires_grad=True)
    F.avg_pool3d(x, 2).sum().backward()  # the forward's loop; backward keeps NumPy's
    assert calls == ["avgpool3d_forward_offsets"]
    x = ds.randn(2, 3, 4, 4, 4, requires_grad=True)
    F.adaptive_avg_pool3d(x, 2).sum().backward()
    assert calls[1:] == ["avgpool3d_forward_offsets", "avgpool3d_backward_offsets"]
    x = ds.tensor(np.random.default_rng(1).standard_normal((3, 3, 4, 5, 3)), requires_grad=True)
    assert ds.autograd.gradcheck(lambda t: F.avg_pool3d(t, 2, 1, 1) ** 2, (x,))
    assert ds.autograd.gradgradcheck(lambda t: F.avg_pool3d(t, 2, 1, 1) ** 2, (x,))


@pytest.mark.parametrize(
    "fn,shape,out",
    [
        (F.adaptive_avg_pool3d, (3, 4, 4, 4), 2),  # unbatched, dividing: one AvgPool3d
        (F.adaptive_avg_pool3d, (2, 3, 5, 6, 7), (2, 4, 3)),  # the window products
        (F.adaptive_avg_pool3d, (3, 4, 5, 6), 1),  # global, unbatched: a mean
        (F.adaptive_avg_pool2d, (2, 3, 8, 8), 2),
        (F.adaptive_avg_pool2d, (3, 8, 8), 3),
        (F.adaptive_avg_pool2d, (3, 7, 5), 1),
        (F.adaptive_avg_pool2d, (2, 3, 7, 5), (None, 2)),
        (F.adaptive_avg_pool1d, (2, 3, 16), 5),
        (F.adaptive_avg_pool1d, (3, 16), 1),
    ],
)
def test_adaptive_avg_pool_grad_fn_chain_as_torch(fn, shape, out):
    """grad_fn and the nodes behind it named as PyTorch's (AdaptiveAvgPool2DBackward0 /
    AdaptiveAvgPool3DBackward0, MeanBackward1 for global pooling, unbatched included); values
    and gradients as PyTorch's."""
    v = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    xd, xt = ds.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    yd, yt = fn(xd, out), getattr(torch.nn.functional, fn.__name__)(xt, out)

    def chain(g):
        names = []
        while g is not None:
            names.append(type(g).__name__)
            nxt = [f for f, _ in g.next_functions if f is not None]
            g = nxt[0] if nxt else None
        return names

    assert chain(yd.grad_fn) == chain(yt.grad_fn)
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=1e-5, atol=1e-6)
    gy = np.random.default_rng(3).standard_normal(tuple(yd.shape)).astype(np.float32)
    yd.backward(ds.tensor(gy))
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn,shape", [(F.adaptive_avg_pool2d, (3, 7, 5)),
                                      (F.adaptive_avg_pool3d, (3, 4, 5, 6))])  # fmt: skip
def test_global_pool_of_unbatched_input_bitwise_the_batched_one(fn, shape):
    """An unbatched input's global pooling is a mean of the input itself (was: of its
    unsqueezed view, then a select): the batched input's bits, values and gradients."""
    v = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    v.flat[3] = -0.0
    a, b = ds.tensor(v, requires_grad=True), ds.tensor(v[None], requires_grad=True)
    ya, yb = fn(a, 1), fn(b, 1)
    _bits(ya.detach().numpy(), yb.detach().numpy()[0])
    gy = np.random.default_rng(5).standard_normal(tuple(ya.shape)).astype(np.float32)
    ya.backward(ds.tensor(gy))
    yb.backward(ds.tensor(gy[None]))
    _bits(a.grad.numpy(), b.grad.numpy()[0])


def _split_ref(x, sizes, axis):
    """split's pieces as the indexing it replaces: x[..., a:b] per piece."""
    pre, out, start = (slice(None),) * axis, [], 0
    for n in sizes:
        out.append(x[pre + (slice(start, start + n),)])
        start += n
    return out


@pytest.mark.parametrize("grad", [True, False])
@pytest.mark.parametrize(
    "shape,arg,axis", [((6, 10), 4, 1), ((6, 10), [1, 0, 5, 4], 1), ((5, 3, 2), 2, 0),
                       ((4, 6), 6, -1), ((0, 4), 2, 1)],
)  # fmt: skip
def test_split_pieces_as_indexing(shape, arg, axis, grad):
    """Each piece: the values, strides and memory of x[..., a:b] (a view of x), requires_grad,
    version counter shared with x, and the gradient scattered back into place."""
    v = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x = ds.tensor(v, requires_grad=grad)
    pieces = ds.split(x, arg, dim=axis)
    ax = axis % len(shape)
    n = shape[ax]
    sizes = arg if isinstance(arg, list) else [arg] * (n // arg) + ([n % arg] if n % arg else [])
    ref = _split_ref(x.detach(), sizes, ax)
    assert len(pieces) == len(ref)
    for p, r in zip(pieces, ref):
        assert p.shape == r.shape and p.stride() == r.stride()
        _bits(p.detach().numpy(), r.numpy())
        assert p.requires_grad == grad
        assert p.numel() == 0 or np.shares_memory(p._data, x._data)
    if grad and x.numel():
        assert pieces[0]._base is x
        assert type(pieces[-1].grad_fn).__name__ == (
            "SplitBackward0" if isinstance(arg, int) else "SplitWithSizesBackward0"
        )
        gys = [np.full(p.shape, k + 1.0, np.float32) for k, p in enumerate(pieces)]
        ds.autograd.backward(list(pieces), [ds.tensor(g) for g in gys])
        xt = torch.tensor(v, requires_grad=True)
        torch.autograd.backward(
            list(torch.split(xt, arg, dim=axis)), [torch.tensor(g) for g in gys]
        )
        _bits(x.grad.numpy(), xt.grad.numpy())
    with ds.no_grad():
        x.add_(1.0)  # one version counter for x and its views
    assert all(p._version == x._version for p in pieces)


def test_split_piece_in_place_refused_as_torch():
    """A tracked in-place op on a piece raises as PyTorch's (a view from a function returning
    several views); chunk's pieces too."""
    x = ds.randn(4, 6, requires_grad=True)
    y = x * 1.0
    for pieces in (ds.split(y, 2, dim=1), y.chunk(3, 1)):
        with pytest.raises(RuntimeError, match="multiple|several|views"):
            pieces[1].mul_(2.0)


def test_split_skips_the_index_conversion(monkeypatch):
    """split's pieces come from GetItem directly: x[...]'s index conversion is not run."""
    from descent.ops import indexing

    calls = []
    real = indexing._convert_index
    monkeypatch.setattr(indexing, "_convert_index", lambda *a: calls.append(1) or real(*a))
    x = ds.randn(4, 8, requires_grad=True)
    pieces = ds.split(x, 2, dim=1) + x.chunk(2, 0)
    assert calls == [] and len(pieces) == 6
    x[:, 1:3]  # (indexing itself still converts)
    assert calls == [1]


def test_compile_replays_the_changed_ops_as_eager():
    """descent.compile's replay of avg_pool3d (the eight-plane loop, below and above 32,768
    values), adaptive_avg_pool3d / 2d and split's pieces: bitwise eager's values and
    gradients on every call, and replayed."""
    from compile_harness import assert_replayed, compare_calls

    rng = np.random.default_rng(11)
    w = ds.tensor(rng.standard_normal((8, 1, 1, 1)).astype(np.float32), requires_grad=True)
    v = ds.tensor(rng.standard_normal((1, 10)).astype(np.float32), requires_grad=True)

    def step(big, small, flat):
        a = F.adaptive_avg_pool3d(big * w, 2)  # (4, 8, 2, 2, 2): the loop above the bound
        b = F.avg_pool3d(small * w, 3, 2, 1)  # (2, 8, 3, 3, 2): below it, with padding
        c = F.adaptive_avg_pool2d(small[:, :, 0] * w[:, 0], (3, 2))  # the window products
        pieces = ds.split(flat * v, 3, dim=1)
        d = sum((p * (k + 1)).sum() for k, p in enumerate(pieces))
        loss = a.square().sum() + b.sum() + c.square().sum() + d
        loss.backward()
        return loss, a, b, c

    def args(k):
        r = np.random.default_rng(0 if k < 2 else k)
        return (
            ds.tensor(r.standard_normal((4, 8, 16, 16, 16)).astype(np.float32)),
            ds.tensor(r.standard_normal((2, 8, 5, 6, 4)).astype(np.float32)),
            ds.tensor(r.standard_normal((4, 10)).astype(np.float32)),
        )

    assert_replayed(*compare_calls(step, args, calls=4, leaves=[w, v]), calls=4)


@pytest.mark.parametrize(
    "shape,out", [((2, 3, 8, 8), 2), ((3, 8, 6), (4, 3)), ((2, 3, 16), None), ((0, 3, 4, 4), 2)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dividing_adaptive_avg_pool2d_bitwise_avg_pool2d(shape, out, dtype, monkeypatch):
    """adaptive_avg_pool2d / 1d with dividing sizes: avg_pool2d's node and bits (values and
    gradients, -0.0 / nan / inf / huge), without avg_pool2d's argument checks."""
    from descent.nn.functional import _pooling

    rng = np.random.default_rng(7)
    v = (rng.standard_normal(shape) * 100).astype(dtype)
    if v.size:
        v.flat[0], v.flat[5], v.flat[-1] = -0.0, np.nan, 3e38 if dtype == np.float32 else 1e308
        v.flat[9] = -np.inf
    one_d = out is None
    calls = []
    real = _pooling.avg_pool2d
    monkeypatch.setattr(_pooling, "avg_pool2d", lambda *a, **k: calls.append(1) or real(*a, **k))
    a = ds.tensor(v, requires_grad=True)
    y = F.adaptive_avg_pool1d(a, 4) if one_d else F.adaptive_avg_pool2d(a, out)
    assert calls == ([] if v.size else [1])
    b = ds.tensor(v, requires_grad=True)
    if one_d:
        want = real(b[:, :, None], (1, shape[-1] // 4))[:, :, 0]
    else:
        o = (out, out) if isinstance(out, int) else out
        want = real(b, (shape[-2] // o[0], shape[-1] // o[1]))
    _bits(y.detach().numpy(), want.detach().numpy())
    if v.size:
        gy = (rng.standard_normal(tuple(y.shape)) * 10).astype(dtype)
        gy.flat[0], gy.flat[1] = -0.0, np.nan
        y.backward(ds.tensor(gy))
        want.backward(ds.tensor(gy))
        _bits(a.grad.numpy(), b.grad.numpy())


@pytest.mark.parametrize(
    "shape,out", [((2, 3, 4, 4, 4), 2), ((3, 4, 6, 2), (2, 3, 1)), ((4, 8, 16, 16, 16), 2)]
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dividing_adaptive_avg_pool3d_bitwise_avg_pool3d(shape, out, dtype, monkeypatch):
    """adaptive_avg_pool3d with dividing sizes: avg_pool3d's node, divisor and bits (values
    and gradients, -0.0 / nan / inf / huge), without avg_pool3d's argument checks; float16
    and empty inputs still go through avg_pool3d."""
    from descent.nn.functional import _pooling_extra as pe

    rng = np.random.default_rng(8)
    v = (rng.standard_normal(shape) * 100).astype(dtype)
    v.flat[0], v.flat[5], v.flat[-1] = -0.0, np.nan, 3e38 if dtype == np.float32 else 1e308
    v.flat[9] = -np.inf
    calls = []
    real = pe.avg_pool3d
    monkeypatch.setattr(pe, "avg_pool3d", lambda *a, **k: calls.append(1) or real(*a, **k))
    a, b = ds.tensor(v, requires_grad=True), ds.tensor(v, requires_grad=True)
    y = F.adaptive_avg_pool3d(a, out)
    assert calls == []
    o = (out,) * 3 if isinstance(out, int) else out
    want = real(b, tuple(s // k for s, k in zip(shape[-3:], o)))
    _bits(y.detach().numpy(), want.detach().numpy())
    gy = (rng.standard_normal(tuple(y.shape)) * 10).astype(dtype)
    gy.flat[0], gy.flat[1] = -0.0, np.nan
    y.backward(ds.tensor(gy))
    want.backward(ds.tensor(gy))
    _bits(a.grad.numpy(), b.grad.numpy())
    F.adaptive_avg_pool3d(ds.tensor(v[:1].astype(np.float16)), out)
    F.adaptive_avg_pool3d(ds.zeros((0, *shape[-4:])) if len(shape) == 5 else a, out)
    assert calls == [1, 1] if len(shape) == 5 else calls == [1]
