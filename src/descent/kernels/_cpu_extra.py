"""numba loops for ops whose NumPy form is far slower than PyTorch's (benchmarks/op_sweep.py).

Imported on first use only (it imports numba), by callers that have checked
`kernels.cpu.enabled()`; each loop has a NumPy path beside it in its caller, which is what runs
with `DESCENT_KERNELS=numpy`, and the two give the same bits (tests compare them).

- `scatter_add_rows`: target[..., idx[i], ...] += values[..., i, ...] along one axis, the
  backward of index_select / x[idx] / embedding and the forward of index_add. `np.add.at`
  walks its index element by element through a generic ufunc loop (8 ms for 2048 rows of 256
  floats against 0.3 ms here); the order of the additions is the same as add.at's (increasing
  i for each target element), so the sums are bit-identical.
- `topk_rows`: the positions of the k smallest keys of each row, in index order, with ties at
  the k-th key resolved to the lowest positions, i.e. exactly the first k entries of a stable
  argsort of the row, found in O(n) instead of the O(n log n) full sort (after NumPy's
  partition has found the k-th key); `topk_small_rows` does the same for small k in one scan
  that keeps the k best in order (np.partition alone costs 23 ms on 64 rows of 32k floats).
- `scatter_add_along`: torch.scatter_add's along-axis form, in np.add.at's order.
- `depthwise_conv2d_forward/backward`: groups = C convolutions without im2col.
- `lstm_cell_forward/backward`: an LSTM step's pointwise part in one pass (ops/rnn.py).
- `group_norm_forward/backward`, `cumsum_axis1`, `col2im_2d` (Conv2d's input gradient).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._cpu_jit import _exp32  # the vectorised float32 exp of the softmax kernels

_OPTS = dict(cache=True, nogil=True, error_model="numpy")
# Reductions: reassociation lets LLVM vectorise the float64 sums (no 'nnan'/'ninf': NaN and
# inf propagate as in NumPy).
_SUM_OPTS = dict(_OPTS, fastmath={"reassoc", "contract", "nsz", "arcp"})


@njit(**_OPTS)
def scatter_add_rows(target, idx, values):  # pragma: no cover - compiled
    """target (P, N, Q) += values (P, M, Q) scattered along axis 1 at idx (M,); idx in [-N, N)."""
    p_, n, q_ = target.shape
    m = idx.shape[0]
    for p in range(p_):
        for i in range(m):
            j = idx[i]
            if j < 0:
                j += n
            for q in range(q_):
                target[p, j, q] += values[p, i, q]


@njit(**_OPTS)
def topk_rows(keys, kth, k, out):  # pragma: no cover - compiled
    """out (R, k) = per row of keys (R, N), the positions of the k smallest keys in increasing
    position order; kth (R,) is each row's k-th smallest key (np.partition). Keys equal to kth
    are taken from the lowest positions until k are taken (a stable sort's choice)."""
    r_, n = keys.shape
    for r in range(r_):
        t = kth[r]
        less = 0
        for j in range(n):
            if keys[r, j] < t:
                less += 1
        ties = k - less  # how many of the keys equal to kth belong to the first k
        c = 0
        for j in range(n):
            v = keys[r, j]
            if v < t:
                out[r, c] = j
                c += 1
            elif v == t and ties > 0:
                out[r, c] = j
                c += 1
                ties -= 1


@njit(**_OPTS)
def topk_small_rows(keys, k, out):  # pragma: no cover - compiled
    """out (R, k) = per row of keys (R, N), the positions of its k smallest keys in a stable
    sort's order, by one scan that keeps the k best so far sorted: a key enters only when
    strictly below the current k-th (an equal key at a later position sorts after it), so
    most keys cost one comparison. For small k (the caller's bound: the worst case, falling
    keys, is O(N k)). Returns False, leaving out unspecified, at the first NaN key."""
    r_, n = keys.shape
    best = np.empty(k, dtype=keys.dtype)
    for r in range(r_):
        filled = 0
        for j in range(n):
            v = keys[r, j]
            if v != v:
                return False
            if filled == k and not v < best[k - 1]:
                continue
            # Insert after every kept key <= v (stability), dropping the k-th if full.
            s = filled if filled < k else k - 1
            while s > 0 and v < best[s - 1]:
                best[s] = best[s - 1]
                out[r, s] = out[r, s - 1]
                s -= 1
            best[s] = v
            out[r, s] = j
            if filled < k:
                filled += 1
    return True


@njit(**_OPTS)
def depthwise_conv2d_forward(xpad, w, sh, sw, dh, dw, out):  # pragma: no cover - compiled
    """out (N, C, Ho, Wo) = depthwise cross-correlation of the padded input xpad (N, C, Hp, Wp)
    with w (C, kh, kw): out[n, c, a, b] = sum_ij w[c, i, j] xpad[n, c, a sh + i dh, b sw + j dw].
    The innermost loop runs along the output row (contiguous, vectorised for stride 1)."""
    n_, c_, ho, wo = out.shape
    kh, kw = w.shape[1], w.shape[2]
    for n in range(n_):
        for c in range(c_):
            for a in range(ho):
                for b in range(wo):
                    out[n, c, a, b] = 0
                for i in range(kh):
                    r = a * sh + i * dh
                    for j in range(kw):
                        wv = w[c, i, j]
                        c0 = j * dw
                        for b in range(wo):
                            out[n, c, a, b] += wv * xpad[n, c, r, c0 + b * sw]


@njit(**_OPTS)
def depthwise_conv2d_backward(xpad, w, gy, sh, sw, dh, dw, gxpad, gw):  # pragma: no cover
    """The adjoint of depthwise_conv2d_forward: gxpad (N, C, Hp, Wp), zeros on entry, gets
    gy scattered back through w; gw (C, kh, kw) float64, zeros on entry, gets the dot products
    of gy with the shifted input (summed in float64: N Ho Wo terms per weight)."""
    n_, c_, ho, wo = gy.shape
    kh, kw = w.shape[1], w.shape[2]
    for n in range(n_):
        for c in range(c_):
            for a in range(ho):
                for i in range(kh):
                    r = a * sh + i * dh
                    for j in range(kw):
                        wv = w[c, i, j]
                        c0 = j * dw
                        s = 0.0
                        for b in range(wo):
                            g = gy[n, c, a, b]
                            gxpad[n, c, r, c0 + b * sw] += wv * g
                            s += g * xpad[n, c, r, c0 + b * sw]
                        gw[c, i, j] += s


@njit(**_OPTS)
def scatter_add_along(target, idx, values):  # pragma: no cover - compiled
    """target (P, N, Q)[p, idx[p, m, q], q] += values (P, M, Q)[p, m, q] (torch.scatter_add
    along axis 1, idx in [-N, N)), in np.add.at's order (C order over p, m, q)."""
    p_, m_, q_ = idx.shape
    n = target.shape[1]
    for p in range(p_):
        for m in range(m_):
            for q in range(q_):
                j = idx[p, m, q]
                if j < 0:
                    j += n
                target[p, j, q] += values[p, m, q]


@njit(**_OPTS)
def lstm_cell_forward(pre, c_prev, hc, tanh_c):  # pragma: no cover - compiled
    """One LSTM step's pointwise part, float32, in one pass: pre (N, 4H) (W_ih x + W_hh h + b)
    becomes the activated gates in place (i, f, o by sigmoid, g by tanh); hc (N, 2H) gets
    [h, c] and tanh_c (N, H) tanh(c). c = f c_prev + i g, h = o tanh(c). exp is _cpu_jit's
    vectorised float32 one; sigmoid(x) = 1 / (1 + exp(-x)) and tanh(x) = 1 - 2 / (exp(2x) + 1)
    (absolute error ~1e-7, saturating to 0/1 and -1/1 without NaN)."""
    n_, h4 = pre.shape
    hid = h4 // 4
    one = np.float32(1.0)
    two = np.float32(2.0)
    # One simple loop per gate block and per result, so each vectorises (one loop over all
    # four gates per element was 4x slower: 0.55 against 0.14 ms for (32, 1024)).
    for n in range(n_):
        p = pre[n]
        for j in range(2 * hid):  # i, f
            p[j] = one / (one + _exp32(-p[j]))
        for j in range(2 * hid, 3 * hid):  # g
            p[j] = one - two / (_exp32(two * p[j]) + one)
        for j in range(3 * hid, 4 * hid):  # o
            p[j] = one / (one + _exp32(-p[j]))
        row, tr, cp = hc[n], tanh_c[n], c_prev[n]
        for j in range(hid):
            row[hid + j] = p[hid + j] * cp[j] + p[j] * p[2 * hid + j]  # c = f c_prev + i g
        for j in range(hid):
            tr[j] = one - two / (_exp32(two * row[hid + j]) + one)
        for j in range(hid):
            row[j] = p[3 * hid + j] * tr[j]  # h = o tanh(c)


@njit(**_OPTS)
def lstm_cell_backward(acts, c_prev, tanh_c, gy, dh, dc, d):  # pragma: no cover - compiled
    """One LSTM step's pointwise backward (ops/rnn.py's formulas, in their order of
    operations, so the same bits as its NumPy form): gy (N, 2H) the output's [h, c]
    gradient; dh, dc (N, H) carried from step t+1, dc updated in place to dc f; d (N, 4H)
    gets the pre-activation gradients. dh itself is updated by the caller (d @ W_hh)."""
    n_, h4 = acts.shape
    hid = h4 // 4
    one = np.ones(1, dtype=acts.dtype)[0]  # 1 of acts' dtype (an int 1 would make float64)
    for n in range(n_):
        for j in range(hid):
            i = acts[n, j]
            f = acts[n, hid + j]
            g = acts[n, 2 * hid + j]
            o = acts[n, 3 * hid + j]
            tc = tanh_c[n, j]
            dh_ = dh[n, j] + gy[n, j]
            dc_ = dc[n, j] + gy[n, hid + j] + dh_ * o * (one - tc * tc)
            d[n, j] = dc_ * g * i * (one - i)
            d[n, hid + j] = dc_ * c_prev[n, j] * f * (one - f)
            d[n, 2 * hid + j] = dc_ * i * (one - g * g)
            d[n, 3 * hid + j] = dh_ * tc * o * (one - o)
            dc[n, j] = dc_ * f


@njit(**_SUM_OPTS)
def group_norm_forward(x, cg, w, b, eps, y, mean, rstd):  # pragma: no cover - compiled
    """GroupNorm of x (N, C, S) in groups of cg channels: y = (x - mean) rstd w[c] + b[c],
    statistics per (n, group) over cg * S values, summed in float64 (two passes: the
    centred variance); mean, rstd (N, G) float64 are saved for backward."""
    n_, c_, s_ = x.shape
    g_ = c_ // cg
    inv = 1.0 / (cg * s_)
    for n in range(n_):
        for g in range(g_):
            acc = 0.0
            for c in range(g * cg, (g + 1) * cg):
                for k in range(s_):
                    acc += x[n, c, k]
            mu = acc * inv
            var = 0.0
            for c in range(g * cg, (g + 1) * cg):
                for k in range(s_):
                    d = x[n, c, k] - mu
                    var += d * d
            r = 1.0 / np.sqrt(var * inv + eps)
            mean[n, g] = mu
            rstd[n, g] = r
            for c in range(g * cg, (g + 1) * cg):
                a = r * w[c]
                sh = b[c] - mu * a
                for k in range(s_):
                    y[n, c, k] = x[n, c, k] * a + sh


@njit(**_SUM_OPTS)
def group_norm_backward(x, gy, cg, w, mean, rstd, gx, gw, gb):  # pragma: no cover - compiled
    """The gradients of group_norm_forward (xhat = (x - mean) rstd, gh = gy w[c], means over
    each group's cg * S values): gx = rstd (gh - mean(gh) - xhat mean(gh xhat)); gw[c] and
    gb[c] (float64, zeros on entry) get sum(gy xhat) and sum(gy) over n and S."""
    n_, c_, s_ = x.shape
    g_ = c_ // cg
    inv = 1.0 / (cg * s_)
    for n in range(n_):
        for g in range(g_):
            mu = mean[n, g]
            r = rstd[n, g]
            s1 = 0.0
            s2 = 0.0
            for c in range(g * cg, (g + 1) * cg):
                sg = 0.0
                sgx = 0.0
                for k in range(s_):
                    gv = gy[n, c, k]
                    xh = (x[n, c, k] - mu) * r
                    sg += gv
                    sgx += gv * xh
                gb[c] += sg
                gw[c] += sgx
                s1 += sg * w[c]
                s2 += sgx * w[c]
            m1 = s1 * inv
            m2 = s2 * inv
            for c in range(g * cg, (g + 1) * cg):
                wc = w[c]
                for k in range(s_):
                    xh = (x[n, c, k] - mu) * r
                    gx[n, c, k] = r * (gy[n, c, k] * wc - m1 - xh * m2)


@njit(**_OPTS)
def cumsum_axis1(x, out, reverse):  # pragma: no cover - compiled
    """out (P, N, Q) = cumulative sums of x (P, N, Q) along axis 1 (from the end when
    reverse), accumulated in float64 from +0 and rounded once per element: NumPy's
    cumsum(dtype=float64) + 0.0 then astype, in one pass instead of three."""
    p_, n_, q_ = x.shape
    if q_ == 1:  # along the last axis: a register accumulator (the array one is 5x slower)
        for p in range(p_):
            s = 0.0
            for i in range(n_):
                n = n_ - 1 - i if reverse else i
                s += x[p, n, 0]
                out[p, n, 0] = s
        return
    acc = np.empty(q_, dtype=np.float64)
    for p in range(p_):
        acc[:] = 0.0
        for i in range(n_):
            n = n_ - 1 - i if reverse else i
            for q in range(q_):
                acc[q] += x[p, n, q]
                out[p, n, q] = acc[q]


@njit(**_OPTS)
def col2im_2d(gcols, sh, sw, dh, dw, gxpad):  # pragma: no cover - compiled
    """gxpad (N, C, Hp, Wp) (zeros on entry) += the patches gcols (N, C, kh, kw, Ho, Wo) put
    back where they were read: ops.conv.col2im_nfirst's slab adds, per image element in the
    same kernel-offset order (so the same bits), in one pass."""
    n_, c_, kh, kw, ho, wo = gcols.shape
    for n in range(n_):
        for c in range(c_):
            plane = gxpad[n, c]
            for i in range(kh):
                for j in range(kw):
                    src = gcols[n, c, i, j]
                    for a in range(ho):
                        row = plane[a * sh + i * dh]
                        srow = src[a]
                        if sw == 1:
                            for b in range(wo):
                                row[j * dw + b] += srow[b]
                        else:
                            for b in range(wo):
                                row[j * dw + b * sw] += srow[b]


@njit(**_OPTS)
def col2im_nlast_2d(gcols, sh, sw, dh, dw, gxpad):  # pragma: no cover - compiled
    """gxpad (C, Hp, Wp, N) (zeros on entry) += the batch-last patches gcols
    (C, kh, kw, Ho, Wo, N): ops.conv.col2im_nlast's slab adds in one pass, per element in
    the same kernel-offset order (the same bits); the innermost loop runs over the batch."""
    c_, kh, kw, ho, wo, n_ = gcols.shape
    for c in range(c_):
        for i in range(kh):
            for j in range(kw):
                for a in range(ho):
                    for b in range(wo):
                        dst = gxpad[c, a * sh + i * dh, b * sw + j * dw]
                        src = gcols[c, i, j, a, b]
                        for n in range(n_):
                            dst[n] += src[n]
