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
(0.63-0.69) at 32x32 and 397 against 538 (0.74) at 56x56, with blocks of BLOCK_VALUES. More
threads are not measured (the im2col path's larger products may use them better), so they
take im2col. Both paths ran slower at two threads than pinned to one (PyTorch: 70 against
120 ms): every product of the step (16 per block, (tiles, C) @ (C, O)) split over OpenBLAS's
two threads gained little, the transforms and copies ran on one, and OpenBLAS's worker spun
between products on the core the next op wanted.
Since session 15 (helper-105), with two BLAS threads and two cores, the batch is split in
two halves of images (_parts), the second run by one worker thread (_run) while the calling
thread runs the first, each half's transforms, products (the BLAS at one thread meanwhile,
_OneBlasThread, the weight transforms' products included) and channels-last copies in its
own thread; the halves write disjoint images, and their weight gradients are added first
half first. Since session 16 a one-thread BLAS runs the same two halves one after the other
(_ranges), so two threads give one thread's bits. ops/conv_nd.py splits its im2col products
the same way, ops/conv.py's Conv2d its wide layout, and batch norm and max pooling their
numba loops (split_run: channels, images). The ResNet-style step at two threads (quiet.py,
load 4-5): 133 ms before session 15's split, 81 ms after (PyTorch 66-73 ms; cpu/wall 1.48:
batch norm, ReLU and pooling on one thread); pinned to one core unchanged (107-115).
Session 16's figures are in docs/performance.md.
The BLAS controller must be NumPy's (_blas): with SciPy's wheel loaded a second OpenBLAS is
listed, and limiting that one left NumPy's products threaded inside the split (123-152 ms).

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

import os

import numpy as np

from .. import blas

# G (4 x 3): the weight transform U = G g G^T of each 3x3 filter g.
_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_GG = np.kron(_G, _G)  # (16, 9): row 4a + b, column 3i + j holds G[a, i] G[b, j]

# Transformed values per block: tiles * max(C, O) * 16 values of 4 bytes kept under ~512 KB,
# so V and M of a block stay in L2 between the transform loops and the GEMMs; at least
# MIN_BLOCK_TILES tiles, so each GEMM has enough rows (also with two BLAS threads: see
# Threads above).
BLOCK_VALUES = 1 << 17

# 128 since session 27 (64 before): 128+ channels made blocks of 64 tiles, and OpenBLAS's
# (64, C) @ (C, O) products ran slowly on the Intel host (SkylakeX kernels; fwd+bwd, one
# thread, quiet: 128->128 on 8x8 14.0 -> 12.4 ms, on 16x16 52.0 -> 47.7, 256->256 on 8x8
# 50.0 -> 43.8; 64 channels already had 128). 256 was slower for 128 channels on 8x8 and
# 64 on 16x16 (faster for 128 on 16x16 and 256 on 8x8: docs/performance.md).
MIN_BLOCK_TILES = 128

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
    """(t0, t1) ranges of tiles: BLOCK_VALUES of 16 * width values (at least
    MIN_BLOCK_TILES tiles)."""
    step = max(MIN_BLOCK_TILES, BLOCK_VALUES // (16 * max(width, 1)))
    return [(t0, min(tiles, t0 + step)) for t0 in range(0, tiles, step)]


def _tiling(x_shape, wins):
    """(tiles along H, along W, all tiles) for the output windows wins (Ho, Wo)."""
    th, tw = (wins[0] + 1) // 2, (wins[1] + 1) // 2
    return th, tw, x_shape[0] * th * tw


def _parts(n: int, threads: int):
    """Image ranges (i0, i1) of the batch, one per thread: two halves where the BLAS may run
    two threads, two cores are ours and there are two images, else the whole batch."""
    if threads < 2 or n < 2 or _cores() < 2 or _blas() is None:
        return [(0, n)]
    h = (n + 1) // 2
    return [(0, h), (h, n)]


def _ranges(n: int, threads: int, parts):
    """The image ranges the loops run: the parts of a two-thread split, or with a one-thread
    BLAS the same two halves one after the other, so that one thread and two compute every
    half alike and add the halves' weight gradients in one order (the same bits)."""
    if len(parts) == 2 or threads != 1 or n < 2:
        return parts
    h = (n + 1) // 2
    return [(0, h), (h, n)]


def _run_ranges(parts, ranges, fn):
    """[fn(i0, i1) for each range]: at once (_run) where parts split, else in order."""
    if len(parts) == 2:
        return _run(parts, fn)
    return [fn(*r) for r in ranges]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


_BLAS: list = []  # [threadpoolctl's controller of NumPy's BLAS, or None] once looked up
_POOL: list = []  # [(pid, the one-worker executor of this process)]


def _blas():
    """threadpoolctl's controller of NumPy's BLAS (made once), or None without it: the one under
    NumPy's directory where SciPy's wheel brings a second OpenBLAS
    (`descent.halves.numpy_blas_controller`)."""
    if not _BLAS:
        from ..halves import numpy_blas_controller  # noqa: PLC0415

        _BLAS.append(numpy_blas_controller())
    return _BLAS[0]


def _worker():
    """The one worker thread of this process (made again after a fork)."""
    pid = os.getpid()
    if not _POOL or _POOL[0][0] != pid:
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        _POOL[:] = [(pid, ThreadPoolExecutor(1, thread_name_prefix="descent-winograd"))]
    return _POOL[0][1]


class _OneBlasThread:
    """With two parts: the BLAS at one thread inside (every product of the call, the weight
    transforms' too, so that no BLAS worker spins on the second part's core): NumPy's
    OpenBLAS, and MKL's threads where descent.blas runs the products on MKL."""

    __slots__ = ("parts", "before", "mkl")

    def __init__(self, parts) -> None:
        self.parts = parts
        self.before = 0
        self.mkl = None

    def __enter__(self):
        if len(self.parts) > 1:
            lib = _blas()
            self.before = lib.get_num_threads()
            lib.set_num_threads(1)
            self.mkl = blas.set_mkl_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        if len(self.parts) > 1:
            _blas().set_num_threads(self.before)
            if self.mkl is not None:
                blas.set_mkl_threads(self.mkl)


def _run(parts, fn):
    """[fn(i0, i1) for each part]: the second part on the worker thread while this thread
    runs the first (inside _OneBlasThread: each part's products in its own thread, see
    Threads in the module docstring). The parts touch disjoint images."""
    if len(parts) == 1:
        return [fn(*parts[0])]
    second = _worker().submit(fn, *parts[1])
    try:
        first = fn(*parts[0])
    finally:
        other = second.result()
    return [first, other]


#: The ops between the convolutions (batch norm, max pooling: split_run) split their loops
#: from this many values on: below it waking the worker (~20-50 us) costs about what the
#: second core saves.
SPLIT_MIN_VALUES = 1 << 16


def split_run(count: int, values: int, fn) -> None:
    """fn(i0, i1) over [0, count) in two halves at once (the second on the worker thread, as
    the convolutions' _run) where NumPy's BLAS runs two threads on two cores of ours, count
    >= 2 and the call covers at least SPLIT_MIN_VALUES values; else fn(0, count). For numba
    loops that release the GIL and make no BLAS call (nothing to hold at one thread), whose
    ranges write disjoint outputs computed the same way in either half: a split call gives
    the bits of a whole one."""
    if values < SPLIT_MIN_VALUES:  # (first: small calls skip the import below)
        fn(0, count)
        return
    from .conv_nd import _blas_threads  # noqa: PLC0415 - conv_nd imports this module

    if _blas_threads() != 2:
        fn(0, count)
        return
    _run(_parts(count, 2), fn)


def _to_last(src, dst) -> None:
    """dst (n, P, C) = src (n, C, P): the numba tiled copy for contiguous inputs of 256
    positions or more (ops/conv_nd.py's _positions_last), NumPy's otherwise."""
    if src.flags.c_contiguous and src.shape[2] >= 256:
        from ..kernels import _cpu_convnd  # noqa: PLC0415

        _cpu_convnd.channels_last(src, dst)
    else:
        dst[...] = src.transpose(0, 2, 1)


def forward(x, w, b, pad, wins, threads: int = 1):
    """(y (N, O, Ho, Wo), xl (N, H, W, C)): the correlation of x (N, C, H, W) with w (O, C,
    3, 3), padding pad (ph, pw), plus the bias b (O,) or None; xl is x channels-last (the
    weight gradient's tiles). With threads >= 2 two halves of the batch run at once."""
    from ..kernels import _cpu_convwino as k

    n, c, h, wd = x.shape
    o = w.shape[0]
    ph, pw = pad
    th, tw, _ = _tiling(x.shape, wins)
    p = wins[0] * wins[1]
    parts = _parts(n, threads)
    ranges = _ranges(n, threads, parts)
    x3 = x.reshape(n, c, h * wd)
    xl = np.empty((n, h, wd, c), dtype=x.dtype)
    y = np.empty((n, o, p), dtype=x.dtype)

    def part(i0, i1):
        xp = xl[i0:i1]
        _to_last(x3[i0:i1], xp.reshape(i1 - i0, h * wd, c))
        tiles = (i1 - i0) * th * tw
        blocks = _tile_blocks(tiles, max(c, o))
        most = max(t1 - t0 for t0, t1 in blocks)
        v = _buffer(most, c, x.dtype)
        m = _buffer(most, o, x.dtype)
        yl = np.empty((i1 - i0, wins[0], wins[1], o), dtype=x.dtype)
        for t0, t1 in blocks:
            vb, mb = v[:, : t1 - t0], m[:, : t1 - t0]
            k.input_tiles(xp, ph, pw, th, tw, t0, t1 - t0, v)
            blas.matmul(vb, ut, out=mb)  # (16, tiles, O): one product per transformed position
            k.output_tiles(m, th, tw, t0, t1 - t0, yl)
        yt = yl.reshape(i1 - i0, p, o).transpose(0, 2, 1)
        if b is None:
            y[i0:i1] = yt
        else:
            np.add(yt, b.reshape(1, o, 1), out=y[i0:i1])

    with _OneBlasThread(parts):
        ut = _weight_tiles(w).transpose(0, 2, 1)  # (16, C, O) view
        _run_ranges(parts, ranges, part)
    return y.reshape(n, o, *wins), xl


def backward(xl, w, gy, x_shape, pad, need_x: bool, need_w: bool, threads: int = 1):
    """(gx (N, C, H, W) or None, gw (O, C, 3, 3) or None) from gy (N, O, Ho, Wo), for x of
    shape x_shape; xl, x channels-last (N, H, W, C), is needed for gw only (else None). The
    adjoint of forward, block by block; with threads >= 2 two halves of the batch at once
    (their weight gradients added, the first half's first)."""
    from ..kernels import _cpu_convwino as k

    n, c, h, wd = x_shape
    o = w.shape[0]
    ph, pw = pad
    ho, wo = gy.shape[2:]
    th, tw, _ = _tiling(x_shape, (ho, wo))
    gy3 = gy.reshape(n, o, ho * wo)
    gx = np.empty((n, c, h * wd), dtype=gy.dtype) if need_x else None
    parts = _parts(n, threads)
    ranges = _ranges(n, threads, parts)
    u = None

    def part(i0, i1):
        gyl = np.empty((i1 - i0, ho, wo, o), dtype=gy.dtype)
        _to_last(gy3[i0:i1], gyl.reshape(i1 - i0, ho * wo, o))
        blocks = _tile_blocks((i1 - i0) * th * tw, max(c, o))
        most = max(t1 - t0 for t0, t1 in blocks)
        gm = _buffer(most, o, gy.dtype)
        gxl = gv = v = gu = None
        if need_x:
            gxl = np.zeros((i1 - i0, h, wd, c), dtype=gy.dtype)
            gv = _buffer(most, c, gy.dtype)
        if need_w:
            xp = xl[i0:i1]
            v = _buffer(most, c, gy.dtype)
            gu = np.zeros((16, o, c), dtype=gy.dtype)
        for t0, t1 in blocks:
            nb = t1 - t0
            gmb = gm[:, :nb]
            k.output_tiles_adjoint(gyl, th, tw, t0, nb, gm)
            if need_x:  # gV = gM @ U^T, then gx += B gV B^T at the block's tiles
                blas.matmul(gmb, u, out=gv[:, :nb])
                k.input_tiles_adjoint(gv, ph, pw, th, tw, t0, nb, gxl)
            if need_w:  # gU^T += gM^T @ V ((16, O, C), as U), V remade for this block
                k.input_tiles(xp, ph, pw, th, tw, t0, nb, v)
                gu += blas.matmul(gmb.transpose(0, 2, 1), v[:, :nb])
        if need_x:
            gx[i0:i1] = gxl.reshape(i1 - i0, h * wd, c).transpose(0, 2, 1)
        return gu

    gw = None
    with _OneBlasThread(parts):
        if need_x:
            u = _weight_tiles(w)  # (16, O, C)
        gus = _run_ranges(parts, ranges, part)
        if need_w:
            gu = gus[0] if len(gus) == 1 else gus[0] + gus[1]
            gw = _weight_grad(gu, w.shape, w.dtype)
    return (gx.reshape(x_shape) if need_x else None), gw
