"""numba loops for the Winograd F(2x2, 3x3) convolution of ops/conv_winograd.py: the tile
transforms of the input, of the output's gradient, and their adjoints.

Imported on first use only (it imports numba), by callers that have checked
`kernels.cpu.enabled()`.

Winograd's minimal filtering (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural
Networks", F(2x2, 3x3)): a 2x2 block of outputs of a 3x3 correlation is
    Y = A^T [ (G g G^T) * (B^T d B) ] A
for the 4x4 input tile d (stride 2 between tiles) and filter g, with
    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]],
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]].
Summed over input channels, the elementwise product becomes 16 matrix products (one per
transformed position xi): M[xi] (tiles, O) = V[xi] (tiles, C) @ U[xi] (C, O).

B and A hold only 0 and +-1: these loops add and subtract, never multiply. Layout: images
channels-last, (N, H, W, C), so every loop's innermost index runs over contiguous channels
(vectorised); transformed tiles (16, tiles, C) with tile t = (n, ty, tx) row-major and its
4x4 input tile at rows 2 ty - ph .., columns 2 tx - pw ..; out-of-image positions read zero
(padding, and the partial last tile of an odd output) and are dropped when writing back.
Each loop takes a range of tiles (t0 and a count nt) and the whole (16, most, C) block buffer
(its first nt rows per position are used), so callers work in blocks that stay in cache.
Indices are flat and unsigned in the inner loops: no negative-index wraparound test per
element, so LLVM vectorises them over the channels (as kernels/_cpu_convnd.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


#: Channels per chunk of the transform loops: each channel loop runs as chunks of this many
#: channels with a constant trip count, then the rest one by one. LLVM's vector loop over a
#: run-time count takes 32 floats per iteration (8 lanes, unrolled 4 times), so with 16
#: channels every element ran in its scalar remainder (see _chunks).
CHUNK = 16


@njit(inline="always", **_OPTS)
def _input_one(buf, pa, pb, plus, uc, dst, o, plane, ci):  # pragma: no cover - compiled
    """Channel ci of _input_row."""
    uc2 = np.uint64(2) * uc
    uc3 = np.uint64(3) * uc
    if plus:
        s0 = buf[pa + ci] + buf[pb + ci]
        s1 = buf[pa + uc + ci] + buf[pb + uc + ci]
        s2 = buf[pa + uc2 + ci] + buf[pb + uc2 + ci]
        s3 = buf[pa + uc3 + ci] + buf[pb + uc3 + ci]
    else:
        s0 = buf[pa + ci] - buf[pb + ci]
        s1 = buf[pa + uc + ci] - buf[pb + uc + ci]
        s2 = buf[pa + uc2 + ci] - buf[pb + uc2 + ci]
        s3 = buf[pa + uc3 + ci] - buf[pb + uc3 + ci]
    dst[o + ci] = s0 - s2
    dst[o + plane + ci] = s1 + s2
    dst[o + np.uint64(2) * plane + ci] = s2 - s1
    dst[o + np.uint64(3) * plane + ci] = s1 - s3


@njit(**_OPTS)
def _input_row(buf, pa, pb, plus, uc, dst, o, plane):  # pragma: no cover - compiled
    """One row of v = B^T d B: s = d[a] + d[b] (plus) or d[a] - d[b] (rows of the tile at
    pa, pb in buf, positions uc apart), then dst[o + j * plane + ci] = (s B)[j].

    A function per row: four output streams per loop. With all sixteen in one loop LLVM
    needed more run-time overlap checks between the stores and the loads than it allows,
    and left the channel loop scalar (input_tiles 1.8 ms on (32, 32, 32, 32); one row at a
    time it is vectorised)."""
    chunk = np.uint64(CHUNK)
    full = uc // chunk
    for cb in range(full):
        c0 = np.uint64(cb) * chunk
        for cj in range(CHUNK):
            _input_one(buf, pa, pb, plus, uc, dst, o, plane, c0 + np.uint64(cj))
    for ci in range(full * chunk, uc):
        _input_one(buf, pa, pb, plus, uc, dst, o, plane, ci)


@njit(**_OPTS)
def input_tiles(x, ph, pw, th, tw, t0, nt, v):  # pragma: no cover - compiled
    """v[:, i, :] = B^T d B for the tiles t0 + i, i < nt, of x (N, H, W, C): the 4x4 windows
    at (2 ty - ph, 2 tx - pw), zero outside the image. v (16, most, C), most >= nt."""
    n_, h_, w_, c_ = x.shape
    src = x.reshape(-1)
    dst = v.reshape(-1)
    most = v.shape[1]
    uc = np.uint64(c_)
    plane = np.uint64(most * c_)  # one transformed position's block in v
    plane4 = np.uint64(4) * plane
    plane8 = np.uint64(8) * plane
    plane12 = np.uint64(12) * plane
    d = np.zeros(16 * c_, dtype=x.dtype)  # a border tile, row-major over its 4x4 positions
    for i in range(nt):
        t = t0 + i
        tx = t % tw
        ty = (t // tw) % th
        n = t // (tw * th)
        r0, q0 = 2 * ty - ph, 2 * tx - pw
        if r0 >= 0 and q0 >= 0 and r0 + 4 <= h_ and q0 + 4 <= w_:
            base = np.uint64(((n * h_ + r0) * w_ + q0) * c_)
            row = np.uint64(w_ * c_)
            buf = src
        else:
            d[:] = 0
            for a in range(4):
                r = r0 + a
                if r < 0 or r >= h_:
                    continue
                for b in range(4):
                    q = q0 + b
                    if 0 <= q < w_:
                        so = np.uint64(((n * h_ + r) * w_ + q) * c_)
                        do = np.uint64((4 * a + b) * c_)
                        for ci in range(uc):
                            d[do + ci] = src[so + ci]
            base = np.uint64(0)
            row = np.uint64(4 * c_)
            buf = d
        p0 = base
        p1 = base + row
        p2 = p1 + row
        p3 = p2 + row
        o = np.uint64(i * c_)
        # the rows of B^T d: d0 - d2, d1 + d2, d2 - d1, d1 - d3
        _input_row(buf, p0, p2, False, uc, dst, o, plane)
        _input_row(buf, p1, p2, True, uc, dst, o + plane4, plane)
        _input_row(buf, p2, p1, False, uc, dst, o + plane8, plane)
        _input_row(buf, p1, p3, False, uc, dst, o + plane12, plane)


@njit(inline="always", **_OPTS)
def _adjoint_col(src, o, plane, uc, dst, q, ci):  # pragma: no cover - compiled
    """Channel ci of _adjoint_cols."""
    g0 = src[o + ci]
    g1 = src[o + plane + ci]
    g2 = src[o + np.uint64(2) * plane + ci]
    g3 = src[o + np.uint64(3) * plane + ci]
    dst[q + ci] = g0
    dst[q + uc + ci] = g1 - g2 + g3
    dst[q + np.uint64(2) * uc + ci] = g1 + g2 - g0
    dst[q + np.uint64(3) * uc + ci] = -g3


@njit(**_OPTS)
def _adjoint_cols(src, o, plane, uc, dst, q):  # pragma: no cover - compiled
    """dst[q + j * uc + ci] = (g B^T)[j] for the row g = src[o + j' * plane + ci], j' < 4
    (the adjoint of v = s B for one row; four output streams per loop, see _input_row;
    channels in chunks, see CHUNK)."""
    chunk = np.uint64(CHUNK)
    full = uc // chunk
    for cb in range(full):
        c0 = np.uint64(cb) * chunk
        for cj in range(CHUNK):
            _adjoint_col(src, o, plane, uc, dst, q, c0 + np.uint64(cj))
    for ci in range(full * chunk, uc):
        _adjoint_col(src, o, plane, uc, dst, q, ci)


@njit(inline="always", **_OPTS)
def _adjoint_row(s, uc, q, d, ci):  # pragma: no cover - compiled
    """Channel ci of _adjoint_rows."""
    r1 = np.uint64(4) * uc
    r2 = r1 + r1
    r3 = r2 + r1
    e0 = s[q + ci]
    e1 = s[q + r1 + ci]
    e2 = s[q + r2 + ci]
    e3 = s[q + r3 + ci]
    d[q + ci] = e0
    d[q + r1 + ci] = e1 - e2 + e3
    d[q + r2 + ci] = e1 + e2 - e0
    d[q + r3 + ci] = -e3


@njit(**_OPTS)
def _adjoint_rows(s, uc, b, d):  # pragma: no cover - compiled
    """Column b of d = B s (the adjoint of s = B^T d), s and d (4 x 4 positions, uc
    channels each) row-major; channels in chunks (see CHUNK)."""
    q = b * uc
    chunk = np.uint64(CHUNK)
    full = uc // chunk
    for cb in range(full):
        c0 = np.uint64(cb) * chunk
        for cj in range(CHUNK):
            _adjoint_row(s, uc, q, d, c0 + np.uint64(cj))
    for ci in range(full * chunk, uc):
        _adjoint_row(s, uc, q, d, ci)


@njit(**_OPTS)
def input_tiles_adjoint(gv, ph, pw, th, tw, t0, nt, gx):  # pragma: no cover - compiled
    """gx (N, H, W, C) += B gv B^T for the tiles t0 + i, i < nt (the adjoint of input_tiles:
    overlapping tiles add up, in tile order; out-of-image positions drop)."""
    n_, h_, w_, c_ = gx.shape
    src = gv.reshape(-1)
    dst = gx.reshape(-1)
    most = gv.shape[1]
    uc = np.uint64(c_)
    plane = np.uint64(most * c_)
    s = np.empty(16 * c_, dtype=gx.dtype)  # gv B^T, row-major over 4x4 positions
    d = np.empty(16 * c_, dtype=gx.dtype)  # B gv B^T: the tile's gradient
    for i in range(nt):
        t = t0 + i
        tx = t % tw
        ty = (t // tw) % th
        n = t // (tw * th)
        r0, q0 = 2 * ty - ph, 2 * tx - pw
        o = np.uint64(i * c_)
        for a in range(4):
            _adjoint_cols(src, o + np.uint64(4 * a) * plane, plane, uc, s,
                          np.uint64(4 * a) * uc)  # fmt: skip
        for b in range(4):
            _adjoint_rows(s, uc, np.uint64(b), d)
        if r0 >= 0 and q0 >= 0 and r0 + 4 <= h_ and q0 + 4 <= w_:
            # an inner tile: each of its rows is 4 C values in a row of gx, one loop each
            # (16 loops of C values each cost ~4x more per value with 16 channels)
            for a in range(4):
                so = np.uint64(4 * a) * uc
                do = np.uint64(((n * h_ + r0 + a) * w_ + q0) * c_)
                for ci in range(np.uint64(4) * uc):
                    dst[do + ci] += d[so + ci]
            continue
        for a in range(4):
            r = r0 + a
            if r < 0 or r >= h_:
                continue
            for b in range(4):
                q = q0 + b
                if 0 <= q < w_:
                    so = np.uint64((4 * a + b) * c_)
                    do = np.uint64(((n * h_ + r) * w_ + q) * c_)
                    for ci in range(uc):
                        dst[do + ci] += d[so + ci]


@njit(**_OPTS)
def output_tiles(m, th, tw, t0, nt, y):  # pragma: no cover - compiled
    """y (N, Ho, Wo, O) at the 2x2 blocks of tiles t0 + i, i < nt, = A^T m A (m (16, most,
    O)); the parts of a last tile past Ho or Wo are not written."""
    n_, ho_, wo_, o_ = y.shape
    src = m.reshape(-1)
    dst = y.reshape(-1)
    most = m.shape[1]
    uo = np.uint64(o_)
    plane = np.uint64(most * o_)
    # each transformed position's offset in the block buffer
    pl2 = np.uint64(2) * plane
    pl3 = np.uint64(3) * plane
    pl4 = np.uint64(4) * plane
    pl5 = np.uint64(5) * plane
    pl6 = np.uint64(6) * plane
    pl7 = np.uint64(7) * plane
    pl8 = np.uint64(8) * plane
    pl9 = np.uint64(9) * plane
    pl10 = np.uint64(10) * plane
    pl11 = np.uint64(11) * plane
    pl12 = np.uint64(12) * plane
    pl13 = np.uint64(13) * plane
    pl14 = np.uint64(14) * plane
    pl15 = np.uint64(15) * plane
    for i in range(nt):
        t = t0 + i
        tx = t % tw
        ty = (t // tw) % th
        n = t // (tw * th)
        r, q = 2 * ty, 2 * tx
        full_r, full_q = r + 1 < ho_, q + 1 < wo_
        o = np.uint64(i * o_)
        y00 = np.uint64(((n * ho_ + r) * wo_ + q) * o_)
        y01 = y00 + uo
        y10 = y00 + np.uint64(wo_ * o_)
        y11 = y10 + uo
        for k in range(uo):
            # rows: s = A^T m (2 x 4), then columns: y = s A (2 x 2)
            s00 = src[o + k] + src[o + pl4 + k] + src[o + pl8 + k]
            s01 = src[o + plane + k] + src[o + pl5 + k] + src[o + pl9 + k]
            s02 = src[o + pl2 + k] + src[o + pl6 + k] + src[o + pl10 + k]
            s03 = src[o + pl3 + k] + src[o + pl7 + k] + src[o + pl11 + k]
            s10 = src[o + pl4 + k] - src[o + pl8 + k] - src[o + pl12 + k]
            s11 = src[o + pl5 + k] - src[o + pl9 + k] - src[o + pl13 + k]
            s12 = src[o + pl6 + k] - src[o + pl10 + k] - src[o + pl14 + k]
            s13 = src[o + pl7 + k] - src[o + pl11 + k] - src[o + pl15 + k]
            dst[y00 + k] = s00 + s01 + s02
            if full_q:
                dst[y01 + k] = s01 - s02 - s03
            if full_r:
                dst[y10 + k] = s10 + s11 + s12
                if full_q:
                    dst[y11 + k] = s11 - s12 - s13


@njit(inline="always", **_OPTS)
def _gm_one(src, a0, a1, b0, b1, mode, dst, o, plane, k):  # pragma: no cover - compiled
    """Channel k of _gm_row."""
    g00 = src[a0 + k]
    g01 = src[a1 + k]
    g10 = src[b0 + k]
    g11 = src[b1 + k]
    u00, u01, u02, u03 = g00, g00 + g01, g00 - g01, -g01
    u10, u11, u12, u13 = g10, g10 + g11, g10 - g11, -g11
    o1 = o + plane
    o2 = o1 + plane
    o3 = o2 + plane
    if mode == 0:
        dst[o + k] = u00
        dst[o1 + k] = u01
        dst[o2 + k] = u02
        dst[o3 + k] = u03
    elif mode == 1:
        dst[o + k] = u00 + u10
        dst[o1 + k] = u01 + u11
        dst[o2 + k] = u02 + u12
        dst[o3 + k] = u03 + u13
    elif mode == 2:
        dst[o + k] = u00 - u10
        dst[o1 + k] = u01 - u11
        dst[o2 + k] = u02 - u12
        dst[o3 + k] = u03 - u13
    else:
        dst[o + k] = -u10
        dst[o1 + k] = -u11
        dst[o2 + k] = -u12
        dst[o3 + k] = -u13


@njit(**_OPTS)
def _gm_row(src, a0, a1, b0, b1, mode, uo, dst, o, plane):  # pragma: no cover - compiled
    """Row `mode` of A g A^T for the 2x2 blocks g = ((src[a0], src[a1]), (src[b0],
    src[b1])) (O channels each): dst[o + j * plane + k] (four output streams per loop, see
    _input_row; channels in chunks, see CHUNK). With u = g A^T, row r of u being (g_r0,
    g_r0 + g_r1, g_r0 - g_r1, -g_r1), the rows of A u are u_0, u_0 + u_1, u_0 - u_1, -u_1."""
    chunk = np.uint64(CHUNK)
    full = uo // chunk
    for cb in range(full):
        c0 = np.uint64(cb) * chunk
        for cj in range(CHUNK):
            _gm_one(src, a0, a1, b0, b1, mode, dst, o, plane, c0 + np.uint64(cj))
    for k in range(full * chunk, uo):
        _gm_one(src, a0, a1, b0, b1, mode, dst, o, plane, k)


@njit(**_OPTS)
def output_tiles_adjoint(gy, th, tw, t0, nt, gm):  # pragma: no cover - compiled
    """gm[:, i, :] = A g A^T for the 2x2 blocks g of gy (N, Ho, Wo, O) at the tiles t0 + i,
    i < nt (the adjoint of output_tiles; zero past Ho or Wo). gm (16, most, O)."""
    n_, ho_, wo_, o_ = gy.shape
    src = gy.reshape(-1)
    dst = gm.reshape(-1)
    most = gm.shape[1]
    uo = np.uint64(o_)
    plane = np.uint64(most * o_)
    z = np.zeros(4 * o_, dtype=gy.dtype)  # a partial last tile's block, zeros past Ho or Wo
    for i in range(nt):
        t = t0 + i
        tx = t % tw
        ty = (t // tw) % th
        n = t // (tw * th)
        r, q = 2 * ty, 2 * tx
        o = np.uint64(i * o_)
        b00 = np.uint64(((n * ho_ + r) * wo_ + q) * o_)
        if r + 1 < ho_ and q + 1 < wo_:
            buf = src
            a0, a1 = b00, b00 + uo
            c0 = b00 + np.uint64(wo_ * o_)
            c1 = c0 + uo
        else:
            z[:] = 0
            for k in range(uo):
                z[k] = src[b00 + k]
            if q + 1 < wo_:
                for k in range(uo):
                    z[uo + k] = src[b00 + uo + k]
            if r + 1 < ho_:
                for k in range(uo):
                    z[np.uint64(2) * uo + k] = src[b00 + np.uint64(wo_ * o_) + k]
            buf = z
            a0, a1 = np.uint64(0), uo
            c0 = np.uint64(2) * uo
            c1 = c0 + uo
        for mode in range(4):
            _gm_row(buf, a0, a1, c0, c1, mode, uo, dst, o + np.uint64(4 * mode) * plane, plane)
