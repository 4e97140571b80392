"""The CNN fast paths of session 14 against PyTorch (float32 and float64) and float64 finite
differences: 3x3 stride-1 convolutions by Winograd F(2x2, 3x3) (ops/conv_winograd.py,
kernels/_cpu_convwino.py) with odd sizes, paddings, batch 1, blocks that end inside images,
each gradient alone, non-contiguous inputs, create_graph, and the cases that stay on im2col."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import descent as ds
import descent.nn.functional as F
from conv_compare import compare as _compare
from conv_compare import grads as _grads
from conv_compare import kernels
from descent.kernels import cpu
from descent.ops import conv as conv_ops
from descent.ops import conv_nd, conv_winograd
from specs.nn import gradcheck64

pytestmark = pytest.mark.skipif(not cpu.available(), reason="numba missing")


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Winograd's path runs with a BLAS of at most two threads (ops/conv_winograd.py)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 tiles: several blocks per image and a partial last one."""
    monkeypatch.setattr(conv_winograd, "BLOCK_VALUES", 1)
    monkeypatch.setattr(conv_winograd, "MIN_BLOCK_TILES", 64)


# (input shape, output channels, padding): 3x3 stride 1 with >= 16 channels
WINOGRAD = [
    ((2, 16, 8, 8), 16, 1),  # even output: whole tiles
    ((3, 16, 9, 7), 17, 1),  # odd output height and width: partial last tiles
    ((1, 16, 5, 6), 16, 0),  # batch 1, no padding (4x3 output)
    ((2, 16, 7, 9), 20, 2),  # padding 2: tiles reading only padding
    ((2, 24, 3, 3), 16, 0),  # a 1x1 output: one partial tile per image
    ((1, 16, 20, 18), 32, (1, 0)),  # wide rows, asymmetric padding per dimension
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,o,padding", WINOGRAD)
def test_winograd_matches_torch(xs, o, padding, dtype, small_blocks):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(xs), rng.standard_normal((o, xs[1], 3, 3)) * 0.2,
              rng.standard_normal(o)]  # fmt: skip
    _compare(
        lambda x, w, b: F.conv2d(x, w, b, 1, padding),
        lambda x, w, b: TF.conv2d(x, w, b, 1, padding),
        arrays,
        dtype=dtype,
    )


def test_winograd_whole_batch_blocks():
    """The default block size (several images per block on 8x8 outputs)."""
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((5, 16, 8, 10)), rng.standard_normal((16, 16, 3, 3)) * 0.2]
    for dtype in (np.float32, np.float64):
        _compare(lambda x, w: F.conv2d(x, w, None, 1, 1),
                 lambda x, w: TF.conv2d(x, w, None, 1, 1), arrays, dtype=dtype)  # fmt: skip


@pytest.mark.parametrize("need", [[True, False, False], [False, True, True], [True, True, False]])
def test_winograd_one_gradient_alone(need, small_blocks):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal((2, 16, 7, 6)), rng.standard_normal((16, 16, 3, 3)),
              rng.standard_normal(16)]  # fmt: skip
    _compare(lambda x, w, b: F.conv2d(x, w, b, 1, 1),
             lambda x, w, b: TF.conv2d(x, w, b, 1, 1), arrays, need=need)  # fmt: skip


def test_winograd_non_contiguous_input():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((2, 9, 16, 8)).astype(np.float32)
    w = (rng.standard_normal((16, 16, 3, 3)) * 0.2).astype(np.float32)
    # a permuted view (N, C, H, W) of an (N, H, C, W)-ordered array
    _compare(
        lambda x, w: F.conv2d(x.permute(0, 2, 1, 3), w, None, 1, 1),
        lambda x, w: TF.conv2d(x.permute(0, 2, 1, 3), w, None, 1, 1),
        [base, w],
    )


def test_winograd_agrees_with_im2col_in_float64():
    """Kernels on (Winograd) and off (im2col and products): equal to float64 rounding."""
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((3, 16, 12, 10)), rng.standard_normal((18, 16, 3, 3)),
              rng.standard_normal(18)]  # fmt: skip
    fn = lambda x, w, b: F.conv2d(x, w, b, 1, 1)  # noqa: E731
    on = _grads(ds, fn, arrays, [True] * 3, np.float64)
    with kernels(False):
        off = _grads(ds, fn, arrays, [True] * 3, np.float64)
    for a, b in zip(on, off):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11)


def test_winograd_gradcheck(small_blocks):
    rng = np.random.default_rng(6)
    gradcheck64(
        lambda x, w, b: F.conv2d(x, w, b, 1, 1),
        [rng.standard_normal((2, 16, 5, 3)), rng.standard_normal((16, 16, 3, 3)),
         rng.standard_normal(16)],
    )  # fmt: skip


def test_winograd_create_graph_second_order():
    """create_graph differentiates the composite form: gradients of gradients agree."""
    rng = np.random.default_rng(7)
    x0 = rng.standard_normal((1, 16, 4, 5))
    w0 = rng.standard_normal((16, 16, 3, 3)) * 0.2
    res = []
    for lib in (ds, torch):
        x = lib.tensor(x0, requires_grad=True)
        w = lib.tensor(w0, requires_grad=True)
        conv = F.conv2d if lib is ds else TF.conv2d
        y = conv(x, w, None, 1, 1)
        (gx,) = (ds if lib is ds else torch).autograd.grad((y * y).sum(), [x], create_graph=True)
        (gw,) = (ds if lib is ds else torch).autograd.grad((gx * gx).sum(), [w])
        res.append(gw.numpy() if lib is ds else gw.detach().numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-9, atol=1e-9)


def test_winograd_geometry_choice():
    """Which convolutions take the Winograd path (3x3, stride 1, dilation 1, one group, >= 16
    channels in and out), and that conv2d sends them to ConvNd at any output width."""
    x = np.zeros((2, 16, 6, 6), np.float32)
    w = np.zeros((16, 16, 3, 3), np.float32)

    def ok(w, s=1, d=1, g=1, x=x):
        return conv_winograd.winograd_ok(x, w, ((3, 3), (s, s), (d, d), (1, 1)), g, 2)

    assert ok(w)
    assert not ok(w, s=2) and not ok(w, d=2) and not ok(np.zeros((16, 8, 3, 3)), g=2)
    assert not ok(np.zeros((8, 16, 3, 3), np.float32))  # too few output channels
    assert not ok(w[:, :8], x=x[:, :8])  # too few input channels
    assert not conv_winograd.winograd_ok(x, np.zeros((16, 16, 5, 5)), ((5, 5), (1, 1), (1, 1),
                                         (2, 2)), 1, 2)  # fmt: skip
    geom = (3, 3, 1, 1, 1, 1, 1, 1)
    assert conv_ops.prefer_conv_nd(x, w, geom, 1)  # a 6-wide output: ConvNd (Winograd)
    with kernels(False):
        assert not conv_ops.prefer_conv_nd(x, w, geom, 1)


def test_blas_threads_past_the_limit_take_im2col(monkeypatch):
    """With two BLAS threads the convolution takes Winograd; with more threads than
    MAX_BLAS_THREADS (here lowered to 1) it takes im2col (Winograd's forward is never called);
    the values match PyTorch's either way."""
    from threadpoolctl import threadpool_limits

    calls = []
    real = conv_winograd.forward
    monkeypatch.setattr(conv_winograd, "forward", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(10)
    arrays = [rng.standard_normal((2, 16, 6, 6)), rng.standard_normal((16, 16, 3, 3)) * 0.2]

    def check():
        _compare(lambda x, w: F.conv2d(x, w, None, 1, 1),
                 lambda x, w: TF.conv2d(x, w, None, 1, 1), arrays)  # fmt: skip

    with threadpool_limits(limits=2, user_api="blas"):
        if conv_nd._blas_threads() < 2:
            pytest.skip("a one-thread BLAS here")
        check()
        assert calls
        calls.clear()
        monkeypatch.setattr(conv_winograd, "MAX_BLAS_THREADS", 1)
        check()
        assert not calls
    check()  # one thread
    assert calls


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(padding=2, dilation=2),
                                dict(padding=1, groups=2)])  # fmt: skip
def test_neighbours_stay_on_im2col(kw):
    """Strided, dilated and grouped 3x3 convolutions (not Winograd's) still match."""
    rng = np.random.default_rng(8)
    g = kw.get("groups", 1)
    arrays = [rng.standard_normal((2, 32, 9, 8)), rng.standard_normal((32, 32 // g, 3, 3)),
              rng.standard_normal(32)]  # fmt: skip
    _compare(lambda x, w, b: F.conv2d(x, w, b, **kw),
             lambda x, w, b: TF.conv2d(x, w, b, **kw), arrays)  # fmt: skip


def test_winograd_saved_input_and_retain_graph():
    """The channels-last input forward keeps for the weight gradient: a second backward with
    retain_graph gives the same gradients again; without it the saved values are gone."""
    rng = np.random.default_rng(9)
    x = ds.tensor(rng.standard_normal((2, 16, 6, 5)).astype(np.float32), requires_grad=True)
    w = ds.tensor(rng.standard_normal((16, 16, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w, None, 1, 1).sum()
    y.backward(retain_graph=True)
    g1 = w.grad.numpy().copy()
    y.backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * g1, rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError):
        y.backward()
