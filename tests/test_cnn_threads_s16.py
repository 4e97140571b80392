"""Batch norm and max pooling by numba loops, split over two threads (session 16): BatchNorm's
channels (ops/norm.py) and MaxPool2d's images (ops/conv.py) in two halves run at once by
conv_winograd.split_run where the BLAS runs two threads. A split call gives the bits of a
whole one; against PyTorch (float32 and float64) and float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.nn.functional as F
from descent.kernels import cpu
from descent.ops import conv_nd, conv_winograd
from specs.nn import gradcheck64

pytestmark = pytest.mark.skipif(not cpu.enabled(), reason="numba kernels off")


class _NoBlas:
    get_num_threads = staticmethod(lambda: 1)
    set_num_threads = staticmethod(lambda n: None)


@pytest.fixture
def threads(monkeypatch):
    """threads(n): split_run sees n BLAS threads and two cores (the split's results do not
    depend on the cores), from 64 values on; returns the parts of each split run."""
    splits = []
    real = conv_winograd._run
    monkeypatch.setattr(conv_winograd, "_cores", lambda: 2)
    if conv_winograd._blas() is None:  # no threadpoolctl: a stand-in controller
        monkeypatch.setattr(conv_winograd, "_blas", lambda: _NoBlas)
    monkeypatch.setattr(conv_winograd, "SPLIT_MIN_VALUES", 64)
    monkeypatch.setattr(conv_winograd, "_run", lambda parts, fn: splits.append(parts) or real(
        parts, fn))  # fmt: skip

    def set_threads(n: int):
        monkeypatch.setattr(conv_nd, "_blas_threads", lambda: n)
        splits.clear()
        return splits

    return set_threads


def _bn(lib, arrays, affine=True, need=(True, True, True), running=True):
    """y, gx, gw, gb, running mean, running var of a training-mode batch norm in lib."""
    x, w, b, gy = arrays
    t = [lib.tensor(a, requires_grad=r) for a, r in zip((x, w, b), need)]
    c = x.shape[1]
    rm = lib.tensor(np.linspace(-1, 1, c, dtype=x.dtype)) if running else None
    rv = lib.tensor(np.linspace(0.5, 2, c, dtype=x.dtype)) if running else None
    fn = ds.nn.functional.batch_norm if lib is ds else torch.nn.functional.batch_norm
    wb = (t[1], t[2]) if affine else (None, None)
    y = fn(t[0], rm, rv, *wb, training=True, momentum=0.2, eps=1e-4)
    y.backward(lib.tensor(gy))
    grads = [a.grad.numpy() if a.grad is not None else None for a in t]
    stats = [rm.numpy(), rv.numpy()] if running else [None, None]
    return [y.detach().numpy(), *grads, *stats]


def _bn_arrays(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    return [(rng.standard_normal(shape) * 2 + 0.5).astype(dtype),
            rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype),
            rng.standard_normal(shape).astype(dtype)]  # fmt: skip


BN_SHAPES = [(6, 5, 7, 3), (4, 8, 9), (3, 3, 2, 4, 3)]


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_split_is_bitwise_one_thread(shape, dtype, threads):
    arrays = _bn_arrays(shape, dtype)
    threads(1)
    one = _bn(ds, arrays)
    splits = threads(2)
    two = _bn(ds, arrays)
    assert splits == [[(0, (shape[1] + 1) // 2), ((shape[1] + 1) // 2, shape[1])]] * 2
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_kernels_match_torch(shape, dtype, affine, threads):
    threads(2)
    arrays = _bn_arrays(shape, dtype, seed=1)
    got, want = _bn(ds, arrays, affine), _bn(torch, arrays, affine)
    tol = dict(rtol=1e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for name, a, b in zip(("y", "gx", "gw", "gb", "rm", "rv"), got, want, strict=True):
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype, name
            np.testing.assert_allclose(a, b, err_msg=name, **tol)


@pytest.mark.parametrize("need", [(True, False, False), (False, True, True), (True, True, False)])
def test_batch_norm_kernels_one_gradient(need, threads):
    """Only the flagged inputs get a gradient; the others' paths are skipped (no x gradient
    written where x needs none)."""
    threads(2)
    arrays = _bn_arrays((4, 6, 5, 5), np.float32, seed=2)
    got, want = _bn(ds, arrays, need=need), _bn(torch, arrays, need=need)
    for name, a, b in zip(("y", "gx", "gw", "gb"), got, want):
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6, err_msg=name)


def test_batch_norm_kernels_finite_differences(threads):
    """float64, the kernel path (first order) and the create_graph path (second order)."""
    threads(2)
    x, w, b, _ = _bn_arrays((3, 4, 3, 3), np.float64, seed=3)
    gradcheck64(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), [x, w, b],
                second_order=True)  # fmt: skip


POOL_CASES = [  # (x shape, kernel, stride, padding, ceil_mode): all on the kernel path
    ((5, 3, 8, 10), 2, 2, 0, False),  # the ResNet's 2 x 2, odd batch
    ((4, 2, 9, 7), 3, 2, 0, False),  # overlapping windows, rows left over
    ((3, 2, 7, 7), 3, 1, 0, False),  # nine windows share a pixel
    ((3, 2, 6, 8), (2, 3), (1, 2), 0, False),
    ((3, 3, 9, 9), 2, 2, 0, True),  # ceil_mode pads by -inf before the op: kernel path
    ((3, 2, 8, 8), 2, 2, 1, False),  # padded: the kernel on a -inf padded copy (session 25)
]


def _pool(lib, x, gy_seed, geom):
    k, s, p, ceil = geom
    t = lib.tensor(x, requires_grad=True)
    fn = ds.nn.functional.max_pool2d if lib is ds else torch.nn.functional.max_pool2d
    y = fn(t, k, s, p, ceil_mode=ceil)
    gy = np.random.default_rng(gy_seed).standard_normal(tuple(y.shape)).astype(x.dtype)
    y.backward(lib.tensor(gy))
    return y.detach().numpy(), t.grad.numpy()


def _pool_input(shape, dtype, seed=0):
    """Small integers (many ties) and a few NaNs (a window's last NaN wins)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(dtype)
    x.reshape(-1)[rng.integers(0, x.size, 6)] = np.nan
    return x


@pytest.mark.parametrize("case", POOL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_split_bitwise_and_torch(case, dtype, threads):
    """Outputs and gradients bitwise PyTorch's (ties: the first maximum; NaN: the last NaN;
    overlapping windows add in PyTorch's order) and the one-thread run's."""
    shape, *geom = case
    x = _pool_input(shape, dtype)
    threads(1)
    one = _pool(ds, x, 1, geom)
    splits = threads(2)
    two = _pool(ds, x, 1, geom)
    want = _pool(torch, x, 1, geom)
    assert len(splits) == 2
    for a, b, c in zip(one, two, want, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(b, c)


@pytest.mark.parametrize("case", [0, 1, 3])
def test_max_pool_kernels_finite_differences(case, threads):
    """float64, distinct values 0.01 apart or more (no tie within a difference step), first
    and second order (the create_graph path takes the winners from the kernel's indices)."""
    threads(2)
    shape, k, s, p, ceil = POOL_CASES[case]
    rng = np.random.default_rng(4)
    x = rng.permutation(np.prod(shape)).reshape(shape) * 0.01
    gradcheck64(lambda t: F.max_pool2d(t, k, s, p, ceil_mode=ceil) ** 2, [x], second_order=True)


def test_max_pool_kernel_double_backward_matches_torch(threads):
    threads(2)
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 6))
    out = []
    for lib in (ds, torch):
        t = lib.tensor(x, requires_grad=True)
        fn = ds.nn.functional.max_pool2d if lib is ds else torch.nn.functional.max_pool2d
        y = fn(t, 3, 2)
        (g,) = (ds if lib is ds else torch).autograd.grad((y**3).sum(), t, create_graph=True)
        (g * g).sum().backward()
        out.append(t.grad.numpy())
    np.testing.assert_allclose(out[0], out[1], rtol=1e-12, atol=1e-12)


def test_max_pool_kernel_second_backward_raises(threads):
    threads(2)
    t = ds.tensor(np.ones((2, 2, 4, 4), np.float32), requires_grad=True)
    y = F.max_pool2d(t, 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


AVG_CASES = [((3, 5, 8, 8), 8, {}), ((2, 3, 12, 9), 3, {}),
             ((2, 3, 6, 8), (3, 4), dict(divisor_override=5))]  # fmt: skip


@pytest.mark.parametrize("shape, k, kw", AVG_CASES)
def test_avg_pool_tiled_windows(shape, k, kw):
    """Windows of 9+ values tiling the input (a global average): one reduction each way."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape)
    got, want = [], []
    for lib, out in ((ds, got), (torch, want)):
        for dt in (np.float32, np.float64):
            t = lib.tensor(x.astype(dt), requires_grad=True)
            fn = ds.nn.functional.avg_pool2d if lib is ds else torch.nn.functional.avg_pool2d
            y = fn(t, k, **kw)
            y.backward(lib.tensor(np.linspace(-1, 1, y.numel()).reshape(tuple(y.shape)).astype(dt)))
            out += [y.detach().numpy(), t.grad.numpy()]
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-6 if a.dtype == np.float32 else 1e-13, atol=1e-7)
    gradcheck64(lambda t: F.avg_pool2d(t, k, **kw) ** 2, [x[:2, :2]], second_order=True)


CONV2D_CASES = [  # (x shape, w shape, conv2d keywords): Conv2d's wide layout (Wo >= 16)
    ((5, 3, 16, 18), (8, 3, 3, 3), dict(padding=1)),  # the 3-channel stem, odd batch
    ((4, 6, 33, 33), (4, 6, 3, 3), dict(stride=2, padding=1)),  # stride 2
    ((3, 4, 16, 16), (6, 2, 1, 1), dict(groups=2)),  # 1x1, groups
    ((2, 4, 19, 18), (4, 4, 2, 2), dict(dilation=2)),  # one image per half
]


def _conv2d(lib, arrays, kw, need_x=True):
    x, w, b, gy = arrays
    t = [lib.tensor(x, requires_grad=need_x), lib.tensor(w, requires_grad=True),
         lib.tensor(b, requires_grad=True)]  # fmt: skip
    fn = ds.nn.functional.conv2d if lib is ds else torch.nn.functional.conv2d
    y = fn(*t, **kw)
    y.backward(lib.tensor(gy.reshape(tuple(y.shape))))
    return [y.detach().numpy()] + [a.grad.numpy() if a.grad is not None else None for a in t]


@pytest.mark.parametrize("case", CONV2D_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("need_x", [True, False])
def test_conv2d_halves_bitwise_and_torch(case, dtype, need_x, threads):
    """Conv2d (ops/conv.py) runs its wide layout by image halves at any thread count: at two
    threads the halves run at once with the bits of one thread (the weight gradient adds the
    same two partial sums); against PyTorch."""
    from descent.ops.conv import prefer_conv_nd

    xs, ws, kw = case
    rng = np.random.default_rng(7)
    y_shape = tuple(torch.nn.functional.conv2d(torch.zeros(xs), torch.zeros(ws), **kw).shape)
    arrays = [a.astype(dtype) for a in (rng.standard_normal(xs), rng.standard_normal(ws) * 0.3,
              rng.standard_normal(ws[0]), rng.standard_normal(y_shape))]  # fmt: skip
    geom = (*ws[2:], *([kw.get("stride", 1)] * 2), *([kw.get("dilation", 1)] * 2),
            *([kw.get("padding", 0)] * 2))  # fmt: skip
    threads(1)
    assert not prefer_conv_nd(arrays[0], arrays[1], geom, kw.get("groups", 1))
    one = _conv2d(ds, arrays, kw, need_x)
    splits = threads(2)
    assert not prefer_conv_nd(arrays[0], arrays[1], geom, kw.get("groups", 1))
    two = _conv2d(ds, arrays, kw, need_x)
    assert len(splits) == 2 and all(len(p) == 2 for p in splits)
    want = _conv2d(torch, arrays, kw, need_x)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-11)
    for name, a, b, c in zip(("y", "gx", "gw", "gb"), one, two, want, strict=True):
        assert (a is None) == (b is None) == (c is None), name
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=name)
            scale = max(1.0, float(np.abs(c).max()))
            np.testing.assert_allclose(b, c, rtol=tol["rtol"], atol=tol["atol"] * scale,
                                       err_msg=name)  # fmt: skip


def test_conv2d_halves_finite_differences(threads):
    threads(2)
    rng = np.random.default_rng(8)
    xs, ws, kw = CONV2D_CASES[1]
    arrays = [rng.standard_normal((2, *xs[1:])), rng.standard_normal(ws) * 0.3,
              rng.standard_normal(ws[0])]  # fmt: skip
    gradcheck64(lambda x, w, b: F.conv2d(x, w, b, **kw), arrays)


def test_resnet_step_two_threads_bitwise_one_thread(threads):
    """A small ResNet-style training step (stem, a residual block, max pool, a stride-2 conv,
    global average, linear; SGD) gives the same bits with every split on as at one thread:
    Winograd's and ConvNd's halves run in order at one thread (conv_winograd._ranges)."""
    from threadpoolctl import threadpool_limits

    nn = ds.nn
    rng = np.random.default_rng(9)
    x = rng.standard_normal((6, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 5, 6)

    def net():
        ds.manual_seed(3)
        body = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                             nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, bias=False),
                             nn.BatchNorm2d(16))  # fmt: skip
        stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        down = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU())
        return stem, body, down, nn.MaxPool2d(2), nn.Linear(32, 5)

    def train(n_threads):
        splits = threads(n_threads)
        stem, body, down, pool, fc = mods = net()
        params = [p for m in mods for p in m.parameters()]
        opt = ds.optim.SGD(params, lr=0.1, momentum=0.9)
        for _ in range(2):
            opt.zero_grad()
            h = stem(ds.tensor(x))
            h = pool(F.relu(h + body(h)))
            logits = fc(F.adaptive_avg_pool2d(down(h), 1).flatten(1))
            F.cross_entropy(logits, ds.tensor(y)).backward()
            opt.step()
        return [p.detach().numpy().copy() for p in params], len(splits)

    with threadpool_limits(limits=1, user_api="blas"):
        one, n_one = train(1)
        two, n_two = train(2)
    assert n_one == 0 and n_two > 20
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
