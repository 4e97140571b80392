"""numba loops for training-mode batch norm and max pooling on NumPy float32/float64 arrays
(ops/norm.py's BatchNorm, ops/conv.py's MaxPool2d).

Imported on first use only (it imports numba), by callers that have checked
`kernels.cpu.enabled()`.

Each loop takes a range of the axis it may be split on, so that two threads can each run one
half at once (ops/conv_winograd.py's worker, `split_run`): batch norm a range of channels
[c0, c1), max pooling a range of images [n0, n1). Every output element is computed by the same
operations in the same order whichever range holds it, so a split run gives the bits of a
whole one.

Batch norm, per channel of x (N, C, L): the sum and the sum of squared deviations in float64
(PyTorch's CPU kernel accumulates in double too), the mean and rstd = 1/sqrt(var + eps)
rounded once to x's dtype, then xhat = (x - mean) * rstd and y = xhat * w + b in x's dtype.
Backward recomputes xhat the same way (nothing but mean and rstd is kept), sums gy and
gy * xhat in float64, and writes gx = (gy - mean(gy) - xhat * mean(gy xhat)) * rstd * w.
Strict IEEE element arithmetic (no contraction); only the float64 sums may be reassociated
(vectorised), which fixes their order per loop length, the same for every channel range.

Max pooling, per (image, channel) plane, stride sh, sw, no padding, dilation 1: the window's
first maximum, or its last NaN (PyTorch's `val > maxval || isnan(val)`), and its offset
i * kw + j in the window (int8: kh * kw <= 127). Backward zeroes the plane of gx and adds gy
at each window's winner, windows in row-major order (PyTorch's order where windows overlap).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True, error_model="numpy")
_SUMS = dict(_OPTS, fastmath={"reassoc"})  # the float64 sums only (see the docstring)


@njit(**_SUMS)
def _channel_sums(x, ch):  # pragma: no cover - compiled
    """(sum of x[:, ch, :], sum of squared deviations from its mean) in float64."""
    n, _, length = x.shape
    s = 0.0
    for i in range(n):
        for j in range(length):
            s += np.float64(x[i, ch, j])
    m = s / (n * length)
    q = 0.0
    for i in range(n):
        for j in range(length):
            d = np.float64(x[i, ch, j]) - m
            q += d * d
    return s, q


@njit(**_OPTS)
def _inv_std(v, eps):  # pragma: no cover - compiled
    """1 / sqrt(v + eps), or 0 where v == 0 and eps == 0: PyTorch's InvStd (a constant
    channel without eps gives the bias, not 0 * inf = nan)."""
    if v == 0.0 and eps == 0.0:
        return 0.0
    return 1.0 / math.sqrt(v + eps)


@njit(**_OPTS)
def bn_forward(x, w, b, has_w, has_b, eps, c0, c1, y, mean, rstd, var):  # pragma: no cover
    """Channels c0 .. c1 - 1 of x (N, C, L): mean, rstd (x's dtype), var (float64, biased)
    and y = (x - mean) * rstd [* w] [+ b]."""
    n, _, length = x.shape
    cnt = n * length
    for ch in range(c0, c1):
        s, q = _channel_sums(x, ch)
        v = q / cnt
        var[ch] = v
        mean[ch] = s / cnt
        rstd[ch] = _inv_std(v, eps)
        mf, rf = mean[ch], rstd[ch]
        wf, bf = w[ch], b[ch]
        for i in range(n):
            for j in range(length):
                h = (x[i, ch, j] - mf) * rf
                if has_w:
                    h = h * wf
                if has_b:
                    h = h + bf
                y[i, ch, j] = h


@njit(**_SUMS)
def _grad_sums(x, gy, ch, mf, rf):  # pragma: no cover - compiled
    """(sum of gy, sum of gy * xhat) over channel ch in float64, xhat = (x - mf) * rf."""
    n, _, length = x.shape
    s1 = 0.0
    s2 = 0.0
    for i in range(n):
        for j in range(length):
            g = gy[i, ch, j]
            h = (x[i, ch, j] - mf) * rf
            s1 += np.float64(g)
            s2 += np.float64(g) * np.float64(h)
    return s1, s2


@njit(**_OPTS)
def bn_backward(x, gy, mean, rstd, w, has_w, need_x, c0, c1, gx, sums):  # pragma: no cover
    """Channels c0 .. c1 - 1: sums (4, C) in x's dtype: sum(gy), sum(gy xhat), and their
    means over the n values of a channel; with need_x, gx = (gy - mean(gy) - xhat
    mean(gy xhat)) * rstd [* w]."""
    n, _, length = x.shape
    cnt = n * length
    for ch in range(c0, c1):
        mf, rf = mean[ch], rstd[ch]
        s1, s2 = _grad_sums(x, gy, ch, mf, rf)
        sums[0, ch] = s1
        sums[1, ch] = s2
        # the means rounded once from the float64 sums; the scale in x's dtype
        sums[2, ch] = s1 / cnt
        sums[3, ch] = s2 / cnt
        if not need_x:
            continue
        m1, m2 = sums[2, ch], sums[3, ch]
        sc = rf * w[ch] if has_w else rf
        for i in range(n):
            for j in range(length):
                h = (x[i, ch, j] - mf) * rf
                gx[i, ch, j] = (gy[i, ch, j] - m1 - h * m2) * sc


# Batch norm of a 2-D x (N, C) (BatchNorm1d on a batch of feature rows): the loops above would
# walk each channel down a column (stride C, no vector loads). These make the same operations
# row by row instead, the C channels of a row in one vectorised loop: each channel's float64
# sums still add its N values in row order, which is the order `_channel_sums` / `_grad_sums`
# take for (N, C, 1) (an inner loop of one value leaves nothing to reassociate), so mean, rstd,
# y and the gradients are bitwise those of bn_forward / bn_backward on x.reshape(N, C, 1).


@njit(**_OPTS)
def bn2d_forward(x, w, b, has_w, has_b, eps, y, mean, rstd, var):  # pragma: no cover
    """bn_forward for x (N, C): mean, rstd (x's dtype), var (float64, biased), y."""
    n, c = x.shape
    s = np.zeros(c, np.float64)
    for i in range(n):
        for ch in range(c):
            s[ch] += np.float64(x[i, ch])
    for ch in range(c):
        s[ch] = s[ch] / n  # the mean in float64 (`_channel_sums`' m)
    q = np.zeros(c, np.float64)
    for i in range(n):
        for ch in range(c):
            d = np.float64(x[i, ch]) - s[ch]
            q[ch] += d * d
    for ch in range(c):
        v = q[ch] / n
        var[ch] = v
        mean[ch] = s[ch]
        rstd[ch] = _inv_std(v, eps)
    for i in range(n):
        for ch in range(c):
            h = (x[i, ch] - mean[ch]) * rstd[ch]
            if has_w:
                h = h * w[ch]
            if has_b:
                h = h + b[ch]
            y[i, ch] = h


@njit(**_OPTS)
def bn2d_backward(x, gy, mean, rstd, w, has_w, need_x, gx, sums):  # pragma: no cover
    """bn_backward for x (N, C): sums (4, C) = sum(gy), sum(gy xhat) and their means; with
    need_x, gx = (gy - mean(gy) - xhat mean(gy xhat)) * rstd [* w]."""
    n, c = x.shape
    s1 = np.zeros(c, np.float64)
    s2 = np.zeros(c, np.float64)
    for i in range(n):
        for ch in range(c):
            g = gy[i, ch]
            h = (x[i, ch] - mean[ch]) * rstd[ch]
            s1[ch] += np.float64(g)
            s2[ch] += np.float64(g) * np.float64(h)
    for ch in range(c):
        sums[0, ch] = s1[ch]
        sums[1, ch] = s2[ch]
        sums[2, ch] = s1[ch] / n
        sums[3, ch] = s2[ch] / n
    if not need_x:
        return
    for i in range(n):
        for ch in range(c):
            h = (x[i, ch] - mean[ch]) * rstd[ch]
            sc = rstd[ch] * w[ch] if has_w else rstd[ch]
            gx[i, ch] = (gy[i, ch] - sums[2, ch] - h * sums[3, ch]) * sc


@njit(**_OPTS)
def maxpool_forward(x, kh, kw, sh, sw, n0, n1, y, idx):  # pragma: no cover - compiled
    """Images n0 .. n1 - 1: y = the window maximum (first maximum, or last NaN), idx = its
    offset i * kw + j in the window."""
    _, c, _, _ = x.shape
    _, _, ho, wo = y.shape
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        _maxpool22(x, n0, n1, y, idx)
        return
    for b in range(n0, n1):
        for ch in range(c):
            for oy in range(ho):
                r = oy * sh
                for ox in range(wo):
                    q = ox * sw
                    m = x[b, ch, r, q]
                    k = 0
                    for i in range(kh):
                        for j in range(kw):
                            v = x[b, ch, r + i, q + j]
                            if v > m or v != v:
                                m = v
                                k = i * kw + j
                    y[b, ch, oy, ox] = m
                    idx[b, ch, oy, ox] = k


@njit(**_OPTS)
def _maxpool22(x, n0, n1, y, idx):  # pragma: no cover - compiled
    """maxpool_forward's 2 x 2 windows at stride 2, written out (no loops over the window)."""
    _, c, _, _ = x.shape
    _, _, ho, wo = y.shape
    for b in range(n0, n1):
        for ch in range(c):
            for oy in range(ho):
                r0 = x[b, ch, 2 * oy]
                r1 = x[b, ch, 2 * oy + 1]
                yr = y[b, ch, oy]
                ir = idx[b, ch, oy]
                for ox in range(wo):
                    m = r0[2 * ox]
                    k = 0
                    v = r0[2 * ox + 1]
                    if v > m or v != v:
                        m = v
                        k = 1
                    v = r1[2 * ox]
                    if v > m or v != v:
                        m = v
                        k = 2
                    v = r1[2 * ox + 1]
                    if v > m or v != v:
                        m = v
                        k = 3
                    yr[ox] = m
                    ir[ox] = k


@njit(**_OPTS)
def maxpool_backward(gy, idx, kh, kw, sh, sw, n0, n1, gx):  # pragma: no cover - compiled
    """Images n0 .. n1 - 1 of gx (zeroed here): gy added at each window's winner, windows in
    row-major order. Flat indices (a table of the window's offsets): multi-dimensional ones
    kept this loop scalar and twice as slow."""
    _, c, ho, wo = gy.shape
    _, _, h, w = gx.shape
    off = np.empty(kh * kw, np.int64)
    for i in range(kh):
        for j in range(kw):
            off[i * kw + j] = i * w + j
    g1 = gy.reshape(-1)
    i1 = idx.reshape(-1)
    x1 = gx.reshape(-1)
    x1[n0 * c * h * w : n1 * c * h * w] = 0
    for p in range(n0 * c, n1 * c):
        for oy in range(ho):
            row = p * h * w + oy * sh * w
            o = (p * ho + oy) * wo
            for ox in range(wo):
                x1[row + ox * sw + off[i1[o + ox]]] += g1[o + ox]


@njit(**_OPTS)
def maxpool_backward_offsets(gy, idx, kh, kw, sh, sw, one, zero, gx):  # pragma: no cover
    """Padded overlapping windows: for each window offset k = i * kw + j in order, gx's
    strided view at that offset += gy * (idx == k), over every output (gx zeroed by the
    caller, padded). These are the NumPy statements `gx[sl] += gy * (idx == k)` of
    ops/conv.py's MaxPool2d, one element at a time in the same order (a pixel that wins
    several windows sums their gradients by offset; a non-winner gets + gy * 0, so a NaN or
    inf in gy spreads as it does there): the same bits, without 3 * kh * kw NumPy calls.
    `one` and `zero` have gy's dtype (the bool mask as NumPy casts it)."""
    n, c, ho, wo = gy.shape
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    for oy in range(ho):
                        for ox in range(wo):
                            m = one if idx[b, ch, oy, ox] == k else zero
                            gx[b, ch, oy * sh + i, ox * sw + j] += gy[b, ch, oy, ox] * m


@njit(**_OPTS)
def avgpool_forward_offsets(x, kh, kw, sh, sw, ph, pw, zero, out):  # pragma: no cover
    """ops/conv.py's AvgPool2d window sums on small inputs: out (N, C, Ho, Wo) = the value at
    offset (0, 0) of each window, then + the value at each later offset i * kw + j in order,
    a padding cell reading `zero` (x's dtype): the NumPy path's statements (a copy of the
    first offset's block of the zero-padded input, then one add per offset) one element at a
    time in the same order, so the same bits (-0.0 + a padding 0.0 is +0.0 as there), without
    the padded copy and kh * kw NumPy calls. The division stays with the caller."""
    n, c, h, w = x.shape
    _, _, ho, wo = out.shape
    for b in range(n):
        for ch in range(c):
            for oy in range(ho):
                for ox in range(wo):
                    acc = zero
                    for i in range(kh):
                        r = oy * sh + i - ph
                        for j in range(kw):
                            q = ox * sw + j - pw
                            v = x[b, ch, r, q] if 0 <= r < h and 0 <= q < w else zero
                            acc = v if i == 0 and j == 0 else acc + v
                    out[b, ch, oy, ox] = acc


@njit(**_OPTS)
def avgpool_backward_offsets(g, kh, kw, sh, sw, gx):  # pragma: no cover
    """AvgPool2d's backward on small inputs: for each window offset i * kw + j in order, gx's
    strided block at that offset += g (gx zeroed and padded by the caller): the NumPy path's
    `gx[sl] += g` per offset, one element at a time in the same order (a pixel in several
    windows sums their g by offset): the same bits, without kh * kw NumPy calls."""
    n, c, ho, wo = g.shape
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    for oy in range(ho):
                        for ox in range(wo):
                            gx[b, ch, oy * sh + i, ox * sw + j] += g[b, ch, oy, ox]


@njit(**_OPTS)
def avgpool3d_forward_offsets(x, k, s, p, zero, out):  # pragma: no cover
    """ops/window.py's AvgPool3d window sums: out (N, C, O0, O1, O2) = the value at offset
    (0, 0, 0) of each window, then + the value at each later offset in row-major order, a
    padding cell reading `zero` (x's dtype). NumPy's sum over im2col's offset axis (not the
    inner axis: one add per offset in that order, while the other axes hold more than one
    value) one element at a time: the same bits, without im2col's copy. k, s, p: int64 (3,);
    x and out C-contiguous.

    A cell's adds depend on each other (one chain per cell, in the offsets' order), so eight
    (image, channel) planes go side by side, eight independent chains: one chain at a time
    waited on each add's latency (4x8x16^3 with 8^3 windows, quiet, one core: 85 us, 36 us
    now, NumPy's im2col and sum 344 us; 2x2x2 windows 218 / 78 / 93 us). The remaining
    N * C % 8 planes take one chain each."""
    n, c, d0, d1, d2 = x.shape
    _, _, o0_, o1_, o2_ = out.shape
    nq = n * c
    xs = x.reshape(nq, d0, d1, d2)
    ys = out.reshape(nq, o0_, o1_, o2_)
    nq8 = nq - nq % 8
    for q in range(0, nq8, 8):
        for o0 in range(o0_):
            for o1 in range(o1_):
                for o2 in range(o2_):
                    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = zero
                    first = True
                    for i0 in range(k[0]):
                        r0 = o0 * s[0] + i0 - p[0]
                        in0 = 0 <= r0 < d0
                        for i1 in range(k[1]):
                            r1 = o1 * s[1] + i1 - p[1]
                            in1 = in0 and 0 <= r1 < d1
                            for i2 in range(k[2]):
                                r2 = o2 * s[2] + i2 - p[2]
                                if in1 and 0 <= r2 < d2:
                                    v0, v1 = xs[q, r0, r1, r2], xs[q + 1, r0, r1, r2]
                                    v2, v3 = xs[q + 2, r0, r1, r2], xs[q + 3, r0, r1, r2]
                                    v4, v5 = xs[q + 4, r0, r1, r2], xs[q + 5, r0, r1, r2]
                                    v6, v7 = xs[q + 6, r0, r1, r2], xs[q + 7, r0, r1, r2]
                                else:
                                    v0 = v1 = v2 = v3 = v4 = v5 = v6 = v7 = zero
                                if first:
                                    a0, a1, a2, a3, a4, a5, a6, a7 = v0, v1, v2, v3, v4, v5, v6, v7
                                    first = False
                                else:
                                    a0, a1, a2, a3 = a0 + v0, a1 + v1, a2 + v2, a3 + v3
                                    a4, a5, a6, a7 = a4 + v4, a5 + v5, a6 + v6, a7 + v7
                    ys[q, o0, o1, o2], ys[q + 1, o0, o1, o2] = a0, a1
                    ys[q + 2, o0, o1, o2], ys[q + 3, o0, o1, o2] = a2, a3
                    ys[q + 4, o0, o1, o2], ys[q + 5, o0, o1, o2] = a4, a5
                    ys[q + 6, o0, o1, o2], ys[q + 7, o0, o1, o2] = a6, a7
    for q in range(nq8, nq):
        for o0 in range(o0_):
            for o1 in range(o1_):
                for o2 in range(o2_):
                    acc = zero
                    first = True
                    for i0 in range(k[0]):
                        r0 = o0 * s[0] + i0 - p[0]
                        for i1 in range(k[1]):
                            r1 = o1 * s[1] + i1 - p[1]
                            for i2 in range(k[2]):
                                r2 = o2 * s[2] + i2 - p[2]
                                inside = 0 <= r0 < d0 and 0 <= r1 < d1 and 0 <= r2 < d2
                                v = xs[q, r0, r1, r2] if inside else zero
                                acc = v if first else acc + v
                                first = False
                    ys[q, o0, o1, o2] = acc


@njit(**_OPTS)
def avgpool3d_backward_offsets(g, k, s, gx):  # pragma: no cover
    """AvgPool3d's backward: for each window offset in row-major order, gx's strided block at
    that offset += g (gx zeroed and padded by the caller): ops/window.py's col2im_nd (per
    offset `gx[sl] += patch`, or, windows tiling the image, one add of each patch into zeros)
    one element at a time in the same order: the same bits."""
    n, c, o0_, o1_, o2_ = g.shape
    for b in range(n):
        for ch in range(c):
            for i0 in range(k[0]):
                for i1 in range(k[1]):
                    for i2 in range(k[2]):
                        for o0 in range(o0_):
                            for o1 in range(o1_):
                                for o2 in range(o2_):
                                    gx[b, ch, o0 * s[0] + i0, o1 * s[1] + i1, o2 * s[2] + i2] += g[
                                        b, ch, o0, o1, o2
                                    ]
