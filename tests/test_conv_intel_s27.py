"""Session 27 (helper-201): the Winograd tile transforms (kernels/_cpu_convwino.py) run their
channel loops in chunks of CHUNK channels with a constant trip count, then the rest one by
one. The transforms only add and subtract, so every value is bitwise a NumPy evaluation of
the same sums in the same order: checked here for channel counts below, at, between and
above the chunk size, inner and border tiles, float32 and float64; and whole convolutions at
those channel counts against PyTorch (float32, float64) and float64 finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as TF

import descent.nn.functional as F
from conv_compare import compare as _compare
from descent.kernels import cpu
from specs.nn import gradcheck64

pytestmark = pytest.mark.skipif(not cpu.available(), reason="numba missing")

CHANNELS = [1, 7, 15, 16, 17, 32, 33, 50]


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Winograd's path runs with a BLAS of at most two threads (ops/conv_winograd.py)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _tile_origins(n, th, tw, ph, pw):
    return [(t, t // (tw * th), 2 * ((t // tw) % th) - ph, 2 * (t % tw) - pw)
            for t in range(n * th * tw)]  # fmt: skip


def _window(x, n, r0, q0):
    """The 4x4 window of x (N, H, W, C) at (r0, q0), zeros outside."""
    d = np.zeros((4, 4, x.shape[3]), x.dtype)
    for a in range(4):
        for b in range(4):
            r, q = r0 + a, q0 + b
            if 0 <= r < x.shape[1] and 0 <= q < x.shape[2]:
                d[a, b] = x[n, r, q]
    return d


def _rows_bt(d):
    """B^T applied along axis 0 of d (4, ...), as the kernels order the operations."""
    return np.stack([d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3]])


def _rows_b(s):
    """B applied along axis 0 of s (4, ...): (s0, s1 - s2 + s3, s1 + s2 - s0, -s3)."""
    return np.stack([s[0], s[1] - s[2] + s[3], s[1] + s[2] - s[0], -s[3]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CHANNELS)
def test_input_tiles_bitwise(c, dtype):
    from descent.kernels import _cpu_convwino as k

    rng = np.random.default_rng(c)
    x = rng.standard_normal((2, 7, 9, c)).astype(dtype)
    ph, pw, th, tw = 1, 1, 4, 5
    tiles = _tile_origins(2, th, tw, ph, pw)
    v = np.full((16, len(tiles) + 1, c), np.nan, dtype)
    k.input_tiles(x, ph, pw, th, tw, 0, len(tiles), v)
    for t, n, r0, q0 in tiles:
        d = _window(x, n, r0, q0)
        # rows first (s_j = row combination at column j), then columns
        s = _rows_bt(d)  # (4 rows, 4 columns, C)
        ref = np.stack([s[:, 0] - s[:, 2], s[:, 1] + s[:, 2], s[:, 2] - s[:, 1],
                        s[:, 1] - s[:, 3]], axis=1)  # fmt: skip
        np.testing.assert_array_equal(v[:, t].reshape(4, 4, c), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CHANNELS)
def test_input_tiles_adjoint_bitwise(c, dtype):
    from descent.kernels import _cpu_convwino as k

    rng = np.random.default_rng(100 + c)
    ph, pw, th, tw = 1, 0, 4, 4
    h, w = 7, 9
    tiles = _tile_origins(2, th, tw, ph, pw)
    gv = rng.standard_normal((16, len(tiles) + 1, c)).astype(dtype)
    gx = np.zeros((2, h, w, c), dtype)
    k.input_tiles_adjoint(gv, ph, pw, th, tw, 0, len(tiles), gx)
    ref = np.zeros((2, h, w, c), dtype)
    for t, n, r0, q0 in tiles:  # tile order: overlapping tiles add up in this order
        g = gv[:, t].reshape(4, 4, c)
        s = _rows_b(g.transpose(1, 0, 2)).transpose(1, 0, 2)  # g B^T: columns
        d = _rows_b(s)  # B (g B^T): rows
        for a in range(4):
            for b in range(4):
                r, q = r0 + a, q0 + b
                if 0 <= r < h and 0 <= q < w:
                    ref[n, r, q] += d[a, b]
    np.testing.assert_array_equal(gx, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("o", CHANNELS)
def test_output_tiles_adjoint_bitwise(o, dtype):
    from descent.kernels import _cpu_convwino as k

    rng = np.random.default_rng(200 + o)
    ho, wo = 5, 7  # odd: partial last tiles
    th, tw = 3, 4
    gy = rng.standard_normal((2, ho, wo, o)).astype(dtype)
    nt = 2 * th * tw
    gm = np.full((16, nt + 1, o), np.nan, dtype)
    k.output_tiles_adjoint(gy, th, tw, 0, nt, gm)
    for t, n, r, q in _tile_origins(2, th, tw, 0, 0):
        g = np.zeros((2, 2, o), dtype)
        for a in range(2):
            for b in range(2):
                if r + a < ho and q + b < wo:
                    g[a, b] = gy[n, r + a, q + b]
        # u = g A^T per row: (g0, g0 + g1, g0 - g1, -g1); then rows of A u
        u = np.stack([g[:, 0], g[:, 0] + g[:, 1], g[:, 0] - g[:, 1], -g[:, 1]], axis=1)
        ref = np.stack([u[0], u[0] + u[1], u[0] - u[1], -u[1]])
        np.testing.assert_array_equal(gm[:, t].reshape(4, 4, o), ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c,o", [(16, 33), (33, 16), (48, 50), (17, 32)])
def test_winograd_conv_channel_chunks_match_torch(c, o, dtype):
    rng = np.random.default_rng(c * o)
    arrays = [rng.standard_normal((2, c, 9, 8)), rng.standard_normal((o, c, 3, 3)) * 0.2,
              rng.standard_normal(o)]  # fmt: skip
    _compare(
        lambda x, w, b: F.conv2d(x, w, b, 1, 1),
        lambda x, w, b: TF.conv2d(x, w, b, 1, 1),
        arrays,
        dtype=dtype,
    )


def test_winograd_conv_channel_chunks_gradcheck():
    rng = np.random.default_rng(27)
    gradcheck64(
        lambda x, w, b: F.conv2d(x, w, b, 1, 1),
        [rng.standard_normal((1, 17, 5, 4)), rng.standard_normal((33, 17, 3, 3)) * 0.2,
         rng.standard_normal(33)],
    )  # fmt: skip


def test_block_rows_at_least_128_tiles():
    """Blocks of at least 128 tiles (64 before session 27): 128+ channels made (64, C) @ (C, O)
    products, slow with OpenBLAS's SkylakeX kernels; narrower layers keep BLOCK_VALUES."""
    from descent.ops import conv_winograd

    assert conv_winograd._tile_blocks(300, 128) == [(0, 128), (128, 256), (256, 300)]
    assert conv_winograd._tile_blocks(300, 256)[0] == (0, 128)
    assert conv_winograd._tile_blocks(600, 64)[0] == (0, 128)
    assert conv_winograd._tile_blocks(600, 16)[0] == (0, 512)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_128_channels_two_blocks_match_torch(dtype):
    """(4, 128, 12, 12): 144 tiles, blocks of 128 and 16 (the weight gradient summed over two
    blocks), against PyTorch."""
    rng = np.random.default_rng(128)
    arrays = [rng.standard_normal((4, 128, 12, 12)), rng.standard_normal((128, 128, 3, 3)) * 0.05,
              rng.standard_normal(128)]  # fmt: skip
    _compare(
        lambda x, w, b: F.conv2d(x, w, b, 1, 1),
        lambda x, w, b: TF.conv2d(x, w, b, 1, 1),
        arrays,
        dtype=dtype,
    )
