"""numba loops for the N-d convolutions of ops/conv_nd.py: a channels-last im2col and its
adjoint col2im, in 3-D (1-D and 2-D callers add unit spatial dimensions).

Imported on first use only (it imports numba), by callers that have checked
`kernels.cpu.enabled()`; the composite form in nn/functional/_conv_extra.py is the NumPy path.

Layout. The input is channels-last, (N, D, H, W, C), and the patch matrix is
cols (R, G, kvol, C/G) with R = N * Od * Oh * Ow windows (row-major over n, od, oh, ow) and
kvol = kd * kh * kw kernel offsets: every patch row is a run of C/G contiguous input values,
so both loops move whole channel runs (the strided NumPy copy of ops/window.py and its
kd*kh*kw strided adds moved Wo-long rows; 16 + 30 ms of a 150 ms conv3d step).

geom is an int64 array of 15 entries: kernel (3), stride (3), dilation (3), padding (3) and
window counts (Od, Oh, Ow) (3). A window position outside the input reads zero (padding) in
im2col and is skipped in col2im. Both take a range of rows (r0 and the number of cols rows),
so callers can make the patch matrix in blocks smaller than one image (ops/conv_nd.py).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_OPTS)
def im2col_cl(x, geom, r0, cols):  # pragma: no cover - compiled
    """cols (rows, G, kvol, Cg) = the windows r0 .. r0 + rows - 1 (row-major over n, od, oh,
    ow) of x (N, D, H, W, C = G * Cg), zero padding."""
    n_, d_, h_, w_, c = x.shape
    g_, kvol, cg = cols.shape[1], cols.shape[2], cols.shape[3]
    src = x.reshape(-1)  # flat views (both are contiguous): the inner copies index 1-D runs
    dst = cols.reshape(-1)
    kd, kh, kw, sd, sh, sw = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5]
    dd, dh, dw, pd, ph, pw = geom[6], geom[7], geom[8], geom[9], geom[10], geom[11]
    od_, oh_, ow_ = geom[12], geom[13], geom[14]
    gstride = kvol * cg  # a group's block in a cols row
    # Unsigned offsets in the inner copies: no negative-index wraparound test per element, so
    # LLVM vectorises them (3 ms against 10.5 ms for the 56 MB patch matrix of a conv3d)
    ucg = np.uint64(cg)
    out = 0  # the start of the current (row, koff) run of Cg values in group 0
    for r in range(r0, r0 + cols.shape[0]):
        ow = r % ow_
        t = r // ow_
        oh = t % oh_
        t //= oh_
        od = t % od_
        n = t // od_
        for a in range(kd):
            i0 = od * sd + a * dd - pd
            for b in range(kh):
                i1 = oh * sh + b * dh - ph
                for e in range(kw):
                    i2 = ow * sw + e * dw - pw
                    if (0 <= i0 < d_) and (0 <= i1 < h_) and (0 <= i2 < w_):
                        base = (((n * d_ + i0) * h_ + i1) * w_ + i2) * c
                        for g in range(g_):
                            o = np.uint64(out + g * gstride)
                            si = np.uint64(base + g * cg)
                            for ci in range(ucg):
                                dst[o + ci] = src[si + ci]
                    else:
                        for g in range(g_):
                            o = np.uint64(out + g * gstride)
                            for ci in range(ucg):
                                dst[o + ci] = 0
                    out += cg
        out += (g_ - 1) * gstride  # past the other groups' blocks of this row


@njit(**_OPTS)
def col2im_cl(cols, geom, r0, gx):  # pragma: no cover - compiled
    """gx (N, D, H, W, C) += the patches cols (rows, G, kvol, Cg) of windows r0 .. r0 + rows
    - 1 at the positions im2col_cl read them from (the adjoint; overlapping windows add up,
    padded positions drop out)."""
    n_, d_, h_, w_, c = gx.shape
    g_, kvol, cg = cols.shape[1], cols.shape[2], cols.shape[3]
    src = cols.reshape(-1)
    dst = gx.reshape(-1)
    kd, kh, kw, sd, sh, sw = geom[0], geom[1], geom[2], geom[3], geom[4], geom[5]
    dd, dh, dw, pd, ph, pw = geom[6], geom[7], geom[8], geom[9], geom[10], geom[11]
    od_, oh_, ow_ = geom[12], geom[13], geom[14]
    gstride = kvol * cg
    ucg = np.uint64(cg)
    inp = 0
    for r in range(r0, r0 + cols.shape[0]):
        ow = r % ow_
        t = r // ow_
        oh = t % oh_
        t //= oh_
        od = t % od_
        n = t // od_
        for a in range(kd):
            i0 = od * sd + a * dd - pd
            for b in range(kh):
                i1 = oh * sh + b * dh - ph
                for e in range(kw):
                    i2 = ow * sw + e * dw - pw
                    if (0 <= i0 < d_) and (0 <= i1 < h_) and (0 <= i2 < w_):
                        base = (((n * d_ + i0) * h_ + i1) * w_ + i2) * c
                        for g in range(g_):
                            si = np.uint64(inp + g * gstride)
                            o = np.uint64(base + g * cg)
                            for ci in range(ucg):
                                dst[o + ci] += src[si + ci]
                    inp += cg
        inp += (g_ - 1) * gstride


@njit(**_OPTS)
def channels_last(src, dst):  # pragma: no cover - compiled
    """dst (N, P, C) = src (N, C, P) (both contiguous): channels-first to channels-last, in
    tiles of 8 channels x 256 positions. NumPy's copy of the transposed view reads one value
    per source row of P values: with P = 1024 float32 the rows are 4 KB apart, the same cache
    set, and (32, 64, 1024) took 10-18 ms against 2.6 here (load 11; 8 x 64 tiles: 4.0,
    16 x 16: 11.2). The other direction, (N, P, C) to (N, C, P), NumPy does well (2.3 ms)."""
    n_, c_, p_ = src.shape
    for n in range(n_):
        for c0 in range(0, c_, 8):
            c1 = min(c_, c0 + 8)
            for p0 in range(0, p_, 256):
                p1 = min(p_, p0 + 256)
                for q in range(p0, p1):
                    for c in range(c0, c1):
                        dst[n, q, c] = src[n, c, q]
