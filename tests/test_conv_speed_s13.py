"""The convolution fast paths of session 13 against PyTorch (float32 and float64) and float64
finite differences: the depthwise numba loops (kernels/_cpu_convdw.py: the flat stride-1
runs and the strided rows), each gradient alone, non-contiguous and empty inputs, and the
cases next to them that fall back to im2col."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF

import descent as ds
import descent.nn.functional as F
from conv_compare import compare as _compare
from conv_compare import grads as _grads
from conv_compare import kernels
from descent.kernels import cpu
from descent.ops import conv as conv_ops
from specs.nn import gradcheck64

pytestmark = pytest.mark.skipif(not cpu.available(), reason="numba missing")


# (input shape, kernel, stride, padding, dilation): depthwise (groups = C = O)
DEPTHWISE = [
    ((2, 3, 9, 11), (3, 3), 1, 1, 1),  # stride 1: the flat runs
    ((2, 3, 9, 11), (3, 3), 1, 0, 1),  # no padding
    ((1, 4, 7, 6), (3, 2), 1, (3, 2), (2, 1)),  # padding past the dilated kernel
    ((2, 2, 20, 18), (5, 5), 1, 2, 1),  # wide output rows
    ((2, 3, 9, 11), (3, 3), 2, 1, 1),  # strided: the row loops
    ((2, 3, 10, 9), (3, 3), (1, 2), (1, 0), (2, 1)),  # stride in one dimension only
    ((2, 3, 8, 8), (2, 2), 2, 0, 1),
    ((2, 5, 1, 13), (1, 7), 1, (0, 3), 1),  # conv1d's height-1 image
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,k,stride,padding,dilation", DEPTHWISE)
def test_depthwise_matches_torch(xs, k, stride, padding, dilation, dtype):
    c = xs[1]
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(xs), rng.standard_normal((c, 1, *k)), rng.standard_normal(c)]
    _compare(
        lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, c),
        lambda x, w, b: TF.conv2d(x, w, b, stride, padding, dilation, c),
        arrays,
        dtype=dtype,
    )


def test_depthwise_takes_the_numba_loops():
    """The kernel module is the one this file tests (and not with the kernels off)."""
    x, w = np.zeros((1, 3, 5, 5), np.float32), np.zeros((3, 1, 3, 3), np.float32)
    from descent.kernels import _cpu_convdw

    assert conv_ops._depthwise_kernels(x, w, 3) is _cpu_convdw
    assert conv_ops._depthwise_kernels(x, np.zeros((6, 1, 3, 3), np.float32), 3) is None
    with kernels(False):
        assert conv_ops._depthwise_kernels(x, w, 3) is None


@pytest.mark.parametrize("need", [[True, False, True], [False, True, False]])
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_one_gradient_alone(need, stride):
    """Only the input's gradient, or only the weight's: the other one is not computed."""
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((2, 4, 8, 7)), rng.standard_normal((4, 1, 3, 3)),
              rng.standard_normal(4)]  # fmt: skip
    _compare(
        lambda x, w, b: F.conv2d(x, w, b, stride, 1, 1, 4),
        lambda x, w, b: TF.conv2d(x, w, b, stride, 1, 1, 4),
        arrays,
        need=need,
    )


def test_depthwise_non_contiguous_and_empty_batch():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 5, 3, 7)).astype(np.float32)
    w = rng.standard_normal((3, 1, 3, 3)).astype(np.float32)
    # a transposed view (N, C, H, W) of a (N, H, C, W)-ordered array
    _compare(
        lambda x, w: F.conv2d(x.permute(0, 2, 1, 3), w, None, 1, 1, 1, 3),
        lambda x, w: TF.conv2d(x.permute(0, 2, 1, 3), w, None, 1, 1, 1, 3),
        [base, w],
    )
    _compare(
        lambda x, w: F.conv2d(x, w, None, 1, 1, 1, 3),
        lambda x, w: TF.conv2d(x, w, None, 1, 1, 1, 3),
        [np.zeros((0, 3, 5, 5), np.float32), w],
    )


def test_depthwise_agrees_with_the_im2col_path():
    """Kernels on (numba loops) and off (im2col and products): the same values."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal((3, 6, 12, 10)), rng.standard_normal((6, 1, 3, 3)),
              rng.standard_normal(6)]  # fmt: skip
    fn = lambda x, w, b: F.conv2d(x, w, b, 1, 2, 2, 6)  # noqa: E731
    on = _grads(ds, fn, arrays, [True] * 3, np.float64)
    with kernels(False):
        off = _grads(ds, fn, arrays, [True] * 3, np.float64)
    for a, b in zip(on, off):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride,padding,dilation", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_depthwise_gradcheck(stride, padding, dilation):
    rng = np.random.default_rng(5)
    gradcheck64(
        lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, 3),
        [rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((3, 1, 3, 2)),
         rng.standard_normal(3)],
    )  # fmt: skip


def test_depthwise_conv1d_and_multiplier_fallback():
    """conv1d depthwise runs as a height-1 image; groups = C with O = 2C (a channel
    multiplier) is not the loops' case and takes im2col."""
    rng = np.random.default_rng(6)
    _compare(
        lambda x, w, b: F.conv1d(x, w, b, 1, 3, 1, 4),
        lambda x, w, b: TF.conv1d(x, w, b, 1, 3, 1, 4),
        [rng.standard_normal((3, 4, 17)), rng.standard_normal((4, 1, 7)), rng.standard_normal(4)],
    )
    _compare(
        lambda x, w: F.conv2d(x, w, None, 1, 1, 1, 3),
        lambda x, w: TF.conv2d(x, w, None, 1, 1, 1, 3),
        [rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((6, 1, 3, 3))],
    )


# conv3d's stride-1 backward (ops/conv_nd.py): the input gradient as a convolution of gy with
# the reversed kernel, and the weight gradient from that convolution's patches of gy
CONV3D_S1 = [
    ((2, 4, 5, 4, 6), (6, 4, 3, 3, 3), dict(padding=1)),
    ((2, 4, 4, 5, 3), (6, 2, 2, 2, 3), dict(padding=(2, 1, 3), dilation=(1, 2, 1), groups=2)),
    ((3, 2, 6, 5, 4), (4, 2, 1, 3, 2), dict(padding=(0, 1, 0), dilation=2)),
]


@pytest.mark.parametrize("need", [[True, True, True], [True, False, False], [False, True, True]])
@pytest.mark.parametrize("xs,ws,kw", CONV3D_S1)
def test_conv3d_stride1_gradients_match_torch(xs, ws, kw, need, monkeypatch):
    """Each gradient alone and both, in row blocks that end inside images (7 rows)."""
    from descent.ops import conv_nd

    monkeypatch.setattr(conv_nd, "BLOCK_ROWS", 7)
    monkeypatch.setattr(conv_nd, "BLOCK_ROWS_THREADED", 7)
    monkeypatch.setattr(conv_nd, "BLOCK_BYTES", 1)
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
    for dtype in (np.float32, np.float64):
        _compare(
            lambda x, w, b: F.conv3d(x, w, b, **kw),
            lambda x, w, b: TF.conv3d(x, w, b, **kw),
            arrays,
            need=need,
            dtype=dtype,
        )


def test_conv3d_stride1_gradcheck():
    rng = np.random.default_rng(8)
    gradcheck64(
        lambda x, w, b: F.conv3d(x, w, b, padding=(1, 0, 2), dilation=(1, 1, 2), groups=2),
        [rng.standard_normal((2, 4, 3, 4, 3)), rng.standard_normal((2, 2, 2, 3, 2)),
         rng.standard_normal(2)],
    )  # fmt: skip


# conv2d sent to ops/conv_nd.py (ops.conv.prefer_conv_nd: stride 1, >= 4 taps, >= 16 channels
# per group, output rows >= 16 wide) and its neighbours that stay with Conv2d
CONV2D_ND = [
    # (input shape, weight shape, padding, dilation, groups)
    ((2, 16, 7, 17), (5, 16, 3, 3), 1, 1, 1),
    ((2, 32, 6, 21), (4, 16, 2, 3), (2, 0), (1, 2), 2),  # groups, padding past the kernel
    ((1, 16, 5, 20), (3, 16, 5, 1), "same", 1, 1),  # 'same': asymmetric pre-padding
    ((3, 16, 6, 17), (2, 16, 2, 2), "same", 2, 1),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("need", [[True, True, True], [True, False, False], [False, True, True]])
@pytest.mark.parametrize("xs,ws,padding,dilation,groups", CONV2D_ND)
def test_conv2d_through_conv_nd_matches_torch(xs, ws, padding, dilation, groups, need):
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
    y = F.conv2d(ds.tensor(arrays[0]), ds.tensor(arrays[1], requires_grad=True), None, 1,
                 padding, dilation, groups)  # fmt: skip
    assert type(y._node).__name__ == "ConvNd"
    for dtype in (np.float32, np.float64):
        _compare(
            lambda x, w, b: F.conv2d(x, w, b, 1, padding, dilation, groups),
            lambda x, w, b: TF.conv2d(x, w, b, 1, padding, dilation, groups),
            arrays,
            need=need,
            dtype=dtype,
        )


@pytest.mark.parametrize(
    "xs,ws,stride,want",
    [
        ((2, 16, 6, 17), (4, 16, 3, 3), 1, "ConvNd"),
        ((2, 16, 6, 14), (4, 16, 3, 3), 1, "Conv2d"),  # output rows < 16 wide
        ((2, 16, 6, 34), (4, 16, 3, 3), 2, "Conv2d"),  # strided
        ((2, 16, 6, 17), (4, 16, 1, 1), 1, "Conv2d"),  # 1x1
        ((2, 8, 6, 17), (4, 8, 3, 3), 1, "Conv2d"),  # 8 channels
    ],
)
def test_conv2d_op_chosen(xs, ws, stride, want, monkeypatch):
    from descent.ops import conv_nd

    monkeypatch.setattr(conv_nd, "_BLAS_THREADS", [lambda: 1])  # the one-thread choice
    rng = np.random.default_rng(10)
    x = ds.tensor(rng.standard_normal(xs).astype(np.float32), requires_grad=True)
    w = ds.tensor(rng.standard_normal(ws).astype(np.float32), requires_grad=True)
    y = F.conv2d(x, w, None, stride, 1)
    assert type(y._node).__name__ == want
    with kernels(False):  # the numba kernels off: always Conv2d
        assert type(F.conv2d(x, w, None, stride, 1)._node).__name__ == "Conv2d"
    _compare(
        lambda x, w: F.conv2d(x, w, None, stride, 1),
        lambda x, w: TF.conv2d(x, w, None, stride, 1),
        [x.numpy(), w.numpy()],
    )


def test_conv2d_through_conv_nd_unbatched_noncontiguous_gradcheck():
    rng = np.random.default_rng(11)
    base = rng.standard_normal((5, 16, 17)).astype(np.float32)  # (H, C, W)
    w = rng.standard_normal((3, 16, 3, 3)).astype(np.float32)
    _compare(
        lambda x, w: F.conv2d(x.permute(1, 0, 2), w, None, 1, 1),
        lambda x, w: TF.conv2d(x.permute(1, 0, 2), w, None, 1, 1),
        [base, w],
    )
    gradcheck64(
        lambda x, w, b: F.conv2d(x, w, b, 1, 1, 2, 1),
        [rng.standard_normal((1, 16, 2, 16)), rng.standard_normal((2, 16, 2, 2)),
         rng.standard_normal(2)],
    )  # fmt: skip


@pytest.mark.parametrize("permuted", [False, True])
def test_conv_nd_with_256_positions_or_more(permuted):
    """Inputs of >= 256 positions are moved channels-last by the tiled numba copy
    (kernels/_cpu_convnd.channels_last; 8-channel tiles, so 13 channels leave a partial one),
    non-contiguous ones by NumPy."""
    rng = np.random.default_rng(12)
    w3 = rng.standard_normal((4, 13, 2, 3, 2))
    x3 = rng.standard_normal((2, 9, 13, 8, 7) if permuted else (2, 13, 9, 8, 7))
    p3 = (lambda x: x.permute(0, 2, 1, 3, 4)) if permuted else (lambda x: x)
    _compare(
        lambda x, w: F.conv3d(p3(x), w, None, 1, 1),
        lambda x, w: TF.conv3d(p3(x), w, None, 1, 1),
        [x3, w3],
    )
    x2 = rng.standard_normal((2, 16, 17, 16))
    w2 = rng.standard_normal((3, 16, 3, 3))
    p2 = (lambda x: x.transpose(2, 3)) if permuted else (lambda x: x)
    for dtype in (np.float32, np.float64):
        _compare(
            lambda x, w: F.conv2d(p2(x), w, None, 1, 1),
            lambda x, w: TF.conv2d(p2(x), w, None, 1, 1),
            [x2, w2],
            dtype=dtype,
        )


def test_conv_nd_blocks_follow_the_blas_threads(monkeypatch):
    """512-row patch blocks with a one-thread BLAS, 16384-row ones with more threads."""
    from descent.ops import conv_nd

    monkeypatch.setattr(conv_nd, "_BLAS_THREADS", [lambda: 1])
    assert conv_nd._blocks(2000, 4096)[:2] == [(0, 512), (512, 1024)]
    assert conv_nd._blocks(100000, 16)[0] == (0, 65536)  # short rows: 1 MB of them
    monkeypatch.setattr(conv_nd, "_BLAS_THREADS", [lambda: 2])
    assert conv_nd._blocks(40000, 4096) == [(0, 16384), (16384, 32768), (32768, 40000)]
    monkeypatch.setattr(conv_nd, "_BLAS_THREADS", [None])
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert conv_nd._blas_threads() == 1


@pytest.mark.parametrize(
    "xs,ws,stride,groups,want",
    [
        ((2, 16, 6, 34), (4, 16, 3, 3), 2, 1, "ConvNd"),  # strided
        ((2, 16, 6, 17), (4, 16, 1, 1), 1, 1, "ConvNd"),  # 1x1
        ((2, 3, 6, 17), (4, 3, 3, 3), 1, 1, "ConvNd"),  # 3 channels
        ((2, 8, 6, 17), (4, 4, 3, 3), 1, 2, "Conv2d"),  # 4 channels per group
        ((2, 8, 6, 17), (8, 1, 3, 3), 1, 8, "Conv2d"),  # depthwise
        ((2, 16, 6, 14), (4, 16, 3, 3), 1, 1, "Conv2d"),  # output rows < 16 wide
    ],
)
@pytest.mark.parametrize("cores", [1, 2])
def test_conv2d_op_chosen_with_blas_threads(xs, ws, stride, groups, want, cores, monkeypatch):
    """With a two-thread BLAS on one core, conv2d's wide-layout cases all go to ConvNd; on two
    cores, where the batch splits into two one-thread halves (ops/conv.py, _halves), the
    one-thread choice holds (strided, 1x1 and 3-channel cases stay Conv2d)."""
    from descent.ops import conv, conv_nd, conv_winograd

    monkeypatch.setattr(conv_nd, "_BLAS_THREADS", [lambda: 2])
    monkeypatch.setattr(conv_winograd, "_cores", lambda: cores)
    if cores == 2 and conv.PREFER_SPLIT_CONV2D and conv_winograd._blas() is not None:
        want = "Conv2d"  # the one-thread choice for these six cases
    rng = np.random.default_rng(13)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
    y = F.conv2d(ds.tensor(arrays[0], requires_grad=True), ds.tensor(arrays[1]), None,
                 stride, 1, 1, groups)  # fmt: skip
    assert type(y._node).__name__ == want
    for dtype in (np.float32, np.float64):
        _compare(
            lambda x, w, b: F.conv2d(x, w, b, stride, 1, 1, groups),
            lambda x, w, b: TF.conv2d(x, w, b, stride, 1, 1, groups),
            arrays,
            dtype=dtype,
        )
