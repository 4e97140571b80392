"""numba loops for depthwise 2-D convolution (groups = C = O, one filter per channel, as
MobileNet's and ConvNeXt's), used by ops/conv.py's Conv2d (conv1d depthwise too, as a height-1
image).

Imported on first use only (it imports numba), by callers that have checked
`kernels.cpu.enabled()`.

Each (image, channel) plane is handled on its own, padded into a small buffer that stays in
the L1 cache (no padded copy of the whole input is made, and backward re-pads from x). With
stride 1 the plane is read flat: the output is computed over the padded width Wp (columns
Wo..Wp-1 are thrown away), so that kernel tap (i, j) is one contiguous run,
acc[q] += w[i, j] * xpad_flat[q + i dh Wp + j dw] for q < (Ho - 1) Wp + Wo: kh*kw long
vectorised loops per plane instead of kh*kw short ones per output row. The backward pass
uses the same runs: gx scatters w[i, j] * gy (zero in the thrown-away columns) into a padded
plane, gw[c, i, j] is the dot product of gy with the run (float32 per plane, summed over
the planes in float64). Strided convolutions loop output rows with strided reads.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# reassoc lets LLVM vectorise gw's dot products (several partial sums); contract, FMA. No
# nnan/ninf: NaN and inf propagate as in plain arithmetic.
_OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})


@njit(**_OPTS)
def _pad_plane(x, n, c, ph, pw, buf):  # pragma: no cover - compiled
    """buf (Hp, Wp) = the plane x[n, c] with ph, pw zeros around it (buf's border is zero
    already: only the interior is written)."""
    h, w = x.shape[2], x.shape[3]
    for r in range(h):
        src = x[n, c, r]
        dst = buf[ph + r]
        for s in range(w):
            dst[pw + s] = src[s]


@njit(**_OPTS)
def depthwise_forward(x, w, bias, sh, sw, dh, dw, ph, pw, out):  # pragma: no cover - compiled
    """out (N, C, Ho, Wo) = the depthwise cross-correlation of x (N, C, H, W) (contiguous)
    zero-padded by ph, pw with w (C, kh, kw), plus bias (C,) (or an empty array: none):
    out[n, c, a, b] = bias[c] + sum_ij w[c, i, j] xpad[n, c, a sh + i dh, b sw + j dw]."""
    n_, c_, ho, wo = out.shape
    kh, kw = w.shape[1], w.shape[2]
    hp, wp = x.shape[2] + 2 * ph, x.shape[3] + 2 * pw
    buf = np.zeros((hp, wp), dtype=x.dtype)
    flat = buf.reshape(-1)
    span = (ho - 1) * wp + wo  # the flat run of one tap (stride 1)
    acc = np.empty(ho * wp, dtype=x.dtype)
    has_b = bias.size > 0
    for n in range(n_):
        for c in range(c_):
            _pad_plane(x, n, c, ph, pw, buf)
            b0 = bias[c] if has_b else 0  # the sums start at the bias (no second pass)
            if sh == 1 and sw == 1:
                acc[:] = b0
                for i in range(kh):
                    for j in range(kw):
                        wv = w[c, i, j]
                        src = flat[i * dh * wp + j * dw :]
                        for q in range(span):
                            acc[q] += wv * src[q]
                for a in range(ho):
                    dst = out[n, c, a]
                    for b in range(wo):
                        dst[b] = acc[a * wp + b]
            else:
                for a in range(ho):
                    row = acc[:wo]
                    row[:] = b0
                    for i in range(kh):
                        src = buf[a * sh + i * dh]
                        for j in range(kw):
                            wv = w[c, i, j]
                            c0 = j * dw
                            for b in range(wo):
                                row[b] += wv * src[c0 + b * sw]
                    dst = out[n, c, a]
                    for b in range(wo):
                        dst[b] = row[b]


@njit(**_OPTS)
def depthwise_backward(x, w, gy, sh, sw, dh, dw, ph, pw, gx, gw, gb):  # pragma: no cover
    """The adjoint of depthwise_forward: gx (N, C, H, W) (or an empty array: not wanted) gets
    gy scattered back through w; gw (C, kh, kw) float64 (or empty), zeros on entry, gets the
    dot products of gy with the shifted padded input; gb (C,) float64 (or empty), zeros on
    entry, the sums of gy (float32 per plane)."""
    n_, c_, ho, wo = gy.shape
    kh, kw = w.shape[1], w.shape[2]
    h, wd = x.shape[2], x.shape[3]
    hp, wp = h + 2 * ph, wd + 2 * pw
    need_x, need_w, need_b = gx.size > 0, gw.size > 0, gb.size > 0
    buf = np.zeros((hp, wp), dtype=x.dtype)  # the padded input plane
    flat = buf.reshape(-1)
    gbuf = np.zeros((hp, wp), dtype=x.dtype)  # the padded input gradient plane
    gflat = gbuf.reshape(-1)
    span = (ho - 1) * wp + wo
    gyf = np.zeros(ho * wp, dtype=x.dtype)  # gy at width Wp, zeros past Wo
    zero = np.zeros(1, dtype=x.dtype)[0]
    for n in range(n_):
        for c in range(c_):
            if need_w:
                _pad_plane(x, n, c, ph, pw, buf)
            if need_x:
                gflat[:] = 0
            if need_b:
                s = zero
                for a in range(ho):
                    g = gy[n, c, a]
                    for b in range(wo):
                        s += g[b]
                gb[c] += s
            if sh == 1 and sw == 1:
                for a in range(ho):
                    src = gy[n, c, a]
                    for b in range(wo):
                        gyf[a * wp + b] = src[b]
                # Two passes over the taps (one loop per nest vectorises; mixed, they did not)
                if need_x:
                    for i in range(kh):
                        for j in range(kw):
                            wv = w[c, i, j]
                            dst = gflat[i * dh * wp + j * dw :]
                            for q in range(span):
                                dst[q] += wv * gyf[q]
                if need_w:
                    for i in range(kh):
                        for j in range(kw):
                            xs = flat[i * dh * wp + j * dw :]
                            s = zero
                            for q in range(span):
                                s += gyf[q] * xs[q]
                            gw[c, i, j] += s
            else:
                for a in range(ho):
                    g = gy[n, c, a]
                    for i in range(kh):
                        r = a * sh + i * dh
                        xr = buf[r]
                        gr = gbuf[r]
                        for j in range(kw):
                            c0 = j * dw
                            if need_x:
                                wv = w[c, i, j]
                                for b in range(wo):
                                    gr[c0 + b * sw] += wv * g[b]
                            if need_w:
                                s = zero
                                for b in range(wo):
                                    s += g[b] * xr[c0 + b * sw]
                                gw[c, i, j] += s
            if need_x:
                for r in range(h):
                    src = gbuf[ph + r]
                    dst = gx[n, c, r]
                    for s2 in range(wd):
                        dst[s2] = src[pw + s2]
