"""3x3 stride-1 convolutions by Winograd's F(2x2, 3x3) (Lavin & Gray 2016), forward and
backward, for ConvNd (ops/conv_nd.py) on NumPy float32/float64 arrays.

Why. A 3x3 convolution as im2col + GEMM does 9 C O multiply-adds per output; OpenBLAS's sgemm
runs those at ~90-100 GFLOP/s on this machine's cores, about what PyTorch's oneDNN direct
convolution reaches, and the im2col copy comes on top (conv2d 32 -> 32 on (32, 32, 32, 32):
descent 11.0 ms forward against PyTorch's 5.9, taskset -c 1, load 2.5). F(2x2, 3x3) makes
each 2x2 block of outputs from 16 transformed products instead of 36: 16 GEMMs of
(tiles, C) @ (C, O) per block of tiles (small-K products run at ~100 GFLOP/s here too), with
the tile transforms (adds and subtracts only) in numba loops (kernels/_cpu_convwino.py).

Backward is the exact adjoint of the same linear algebra, from one transform of gy per tile:
    gm = A gy_tile A^T,  gV = gm @ U^T -> gx += B gV B^T,  gU += V^T @ gm -> gw = G^T gU G.
The weight gradient reuses the input tiles V (remade per block, as the forward made them),
and the input gradient needs no flipped kernel or second im2col.

Threads. ConvNd takes this path while NumPy's BLAS runs at most MAX_BLAS_THREADS (2)
threads. Measured on the quiet 2-core machine (other processes paused, 2026-12-05 22:25-22:34
UTC), benchmarks/cnn.py's ResNet-style step in-process against the im2col path: one thread
(taskset -c 0) 108-113 ms against 165-168 (0.66-0.67); two threads 133-138 ms against 202-210
(0.63-0.69) at 32x32 and 397 against 538 (0.74) at 56x56, with blocks of BLOCK_VALUES. Larger
blocks at two threads (2^21 values, tried for fewer BLAS wake-ups) were slower: 173 ms (0.85-
0.91 of im2col). More threads are not measured (the im2col path's larger products may use
them better), so they take im2col. Both paths ran slower at two threads than pinned to one
(PyTorch: 70 against 120 ms); the tile transforms are one-thread loops.

Rounding. The products are the same sums regrouped: U = G g G^T has weights (g0 + g1 + g2)/2
and the like (made in float64, rounded once), and each output adds 16 terms per channel
instead of 9. Against float64 references the float32 error is of the same order as the
im2col + GEMM path's (measured in tests/test_cnn_speed_s14.py); values are not bitwise equal
to that path. On tests/compat resnet_recipe's 16->16 layer at every step (rms error / rms
value, worst step): output 1.4e-7 (im2col 1.4e-7, PyTorch 1.4e-7), input gradient 1.5e-7
(9e-8, 2.0e-7), weight gradient 3.5-4.3e-7 (2.1-2.3e-7, 4.1e-7); on (32, 32, 32, 32) 32 -> 32
the weight gradient 4.6e-7 (2.7e-7, PyTorch 2.2e-6). The weight gradient's extra error is in
the float32 products (in float64 products it fell to 7e-8; summing gU across blocks in float64
alone: 4.6 -> 4.3e-7, not kept).
"""

from __future__ import annotations

import numpy as np

# G (4 x 3): the weight transform U = G g G^T of each 3x3 filter g.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = np.kron(_G, _G)  # (16, 9): row 4a + b, column 3i + j holds G[a, i] G[b, j]

# Transformed values per block: tiles * max(C, O) * 16 values of 4 bytes kept under ~512 KB,
# so V and M of a block stay in L2 between the transform loops and the GEMMs; at least 64
# tiles, so each GEMM has enough rows (also with two BLAS threads: see Threads above).
BLOCK_VALUES = 1 << 17

# ConvNd takes this path while NumPy's BLAS runs at most this many threads (see Threads above)
MAX_BLAS_THREADS = 2


def winograd_ok(x, w, geom, groups: int, nd: int) -> bool:
    """The ConvNd call can run here: 2-D, a 3x3 kernel, stride 1, dilation 1, one group,
    at least 16 input and output channels (fewer make the 16 products too thin to gain)."""
    k, s, d, _p = geom
    if nd != 2 or tuple(k) != (3, 3) or tuple(s) != (1, 1) or tuple(d) != (1, 1):
        return False
    return groups == 1 and x.shape[1] >= 16 and w.shape[0] >= 16


def _weight_tiles(w):
    """w (O, C, 3, 3) -> U (16, O, C) = G w G^T per filter, in float64 and rounded once."""
    # one (16, 9) @ (9, O*C) product with kron(G, G) (U[4a + b] = sum_ij G[a, i] G[b, j]
    # w[i, j]), in the (O, C) order of w: no transposing copy (a (16, C, O) layout cost ~5 ms
    # per call for 256 -> 256 channels; stacked 4x3 products ~1 ms per call at 32 -> 32)
    o, c = w.shape[:2]
    u = _GG @ w.reshape(o * c, 9).T.astype(np.float64)  # (16, O*C)
    return u.astype(w.dtype).reshape(16, o, c)


def _weight_grad(gu, w_shape, dtype):
    """gw (O, C, 3, 3) = G^T gU G per filter from gu (16, O, C): the adjoint of _weight_tiles,
    in float64 and rounded once."""
    g = gu.reshape(16, -1).T.astype(np.float64) @ _GG  # (O*C, 9)
    return g.astype(dtype).reshape(w_shape)


def _buffer(most: int, width: int, dtype):
    """A (16, most, width) block buffer whose 16 planes are not a power of two apart: one
    spare row per plane. The transform loops touch all 16 planes per tile; planes 2^k bytes
    apart share cache sets (8-way L1), and input_tiles took 12.5 ms against 1.8 on
    (32, 32, 32, 32) (taskset -c 1, load 2.5). The loops take the whole (contiguous) buffer,
    the products its first rows."""
    return np.empty((16, most + 1, width), dtype=dtype)


def _tile_blocks(tiles: int, width: int):
    """(t0, t1) ranges of tiles: BLOCK_VALUES of 16 * width values (at least 64 tiles)."""
    step = max(64, BLOCK_VALUES // (16 * max(width, 1)))
    return [(t0, min(tiles, t0 + step)) for t0 in range(0, tiles, step)]


def _tiling(x_shape, wins):
    """(tiles along H, along W, all tiles) for the output windows wins (Ho, Wo)."""
    th, tw = (wins[0] + 1) // 2, (wins[1] + 1) // 2
    return th, tw, x_shape[0] * th * tw


def forward(xl, w, pad, wins):
    """y (N, Ho, Wo, O) channels-last = the correlation of xl (N, H, W, C) with w (O, C, 3,
    3), padding pad (ph, pw)."""
    from ..kernels import _cpu_convwino as k

    n, c, o = xl.shape[0], xl.shape[-1], w.shape[0]
    ph, pw = pad
    th, tw, tiles = _tiling(xl.shape, wins)
    ut = _weight_tiles(w).transpose(0, 2, 1)  # (16, C, O) view
    blocks = _tile_blocks(tiles, max(c, o))
    most = max(t1 - t0 for t0, t1 in blocks)
    v = _buffer(most, c, xl.dtype)
    m = _buffer(most, o, xl.dtype)
    y = np.empty((n, wins[0], wins[1], o), dtype=xl.dtype)
    for t0, t1 in blocks:
        vb, mb = v[:, : t1 - t0], m[:, : t1 - t0]
        k.input_tiles(xl, ph, pw, th, tw, t0, t1 - t0, v)
        np.matmul(vb, ut, out=mb)  # (16, tiles, O): one product per transformed position
        k.output_tiles(m, th, tw, t0, t1 - t0, y)
    return y


def backward(xl, w, gyl, x_shape, pad, need_x: bool, need_w: bool):
    """(gx (N, H, W, C) channels-last or None, gw (O, C, 3, 3) or None) from gyl (N, Ho, Wo,
    O) channels-last, for x of shape x_shape (N, C, H, W); xl, x channels-last (N, H, W, C),
    is needed for gw only (else None). The adjoint of forward, block by block."""
    from ..kernels import _cpu_convwino as k

    n, c, h, wd = x_shape
    o = w.shape[0]
    ph, pw = pad
    th, tw, tiles = _tiling(x_shape, gyl.shape[1:3])
    blocks = _tile_blocks(tiles, max(c, o))
    most = max(t1 - t0 for t0, t1 in blocks)
    gm = _buffer(most, o, gyl.dtype)
    gx = gv = v = gu = u = None
    if need_x:
        gx = np.zeros((n, h, wd, c), dtype=gyl.dtype)
        gv = _buffer(most, c, gyl.dtype)
        u = _weight_tiles(w)  # (16, O, C)
    if need_w:
        v = _buffer(most, c, gyl.dtype)
        gu = np.zeros((16, o, c), dtype=gyl.dtype)
    for t0, t1 in blocks:
        b = t1 - t0
        gmb = gm[:, :b]
        k.output_tiles_adjoint(gyl, th, tw, t0, b, gm)
        if need_x:  # gV = gM @ U^T, then gx += B gV B^T at the block's tiles
            gvb = gv[:, :b]
            np.matmul(gmb, u, out=gvb)
            k.input_tiles_adjoint(gv, ph, pw, th, tw, t0, b, gx)
        if need_w:  # gU^T += gM^T @ V ((16, O, C), as U), V remade for this block
            vb = v[:, :b]
            k.input_tiles(xl, ph, pw, th, tw, t0, b, v)
            gu += gmb.transpose(0, 2, 1) @ vb
    gw = None
    if need_w:
        gw = _weight_grad(gu, w.shape, w.dtype)
    return gx, gw
