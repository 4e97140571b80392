"""numba loops for scans that NumPy makes in several passes (benchmarks/op_sweep.py).

Imported on first use only (it imports numba), by callers that have checked
`kernels.cpu.enabled()`; each loop has a NumPy path beside it in its caller, which is what runs
with `DESCENT_KERNELS=numpy`, and the two give the same results (tests compare them).

- `running_extreme_index`: the index of the running maximum (minimum) along one axis, PyTorch's
  rule (ties and NaN take over; after a NaN only another NaN does), for cummax / cummin. NumPy
  needs an accumulate, two comparisons, a NaN mask with its own accumulate, a where and another
  accumulate (~35 ms for 256 x 4096 floats); one pass here.
- `cumprod_axis1` / `cumprod_backward_axis1`: cumprod's float64-accumulated forward and its
  backward for inputs without zeros (the reversed cumulative sum of gy y over x), each one
  pass instead of a float64 temporary, flips and casts.
- `reflect_fold_2d`: the gradient of reflect padding of the last two axes (ops/shape_copy.py's
  fold, the same additions in the same order) without NumPy's short strided inner loops.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_OPTS)
def running_extreme_index(x, idx, is_min):  # pragma: no cover - compiled
    """idx (P, N, Q) int64 = position along axis 1 of the running max (min when is_min) of
    x (P, N, Q): element n takes over when x[n] >= the running value (<= for min) or x[n] is
    NaN; once the running value is NaN only a NaN takes over (`v != v` is NaN, never true for
    integers). The running values walk along q, the contiguous axis, so the loop vectorises
    when Q > 1."""
    p_, n_, q_ = x.shape
    if q_ == 1:  # a scan along the last axis: the running value in a register
        for p in range(p_):
            b = x[p, 0, 0]
            k = 0
            idx[p, 0, 0] = 0
            for n in range(1, n_):
                v = x[p, n, 0]
                if b != b:
                    take = v != v
                elif is_min:
                    take = v <= b or v != v
                else:
                    take = v >= b or v != v
                if take:
                    b = v
                    k = n
                idx[p, n, 0] = k
        return
    best = np.empty(q_, dtype=x.dtype)
    for p in range(p_):
        for q in range(q_):
            best[q] = x[p, 0, q]
            idx[p, 0, q] = 0
        for n in range(1, n_):
            for q in range(q_):
                v = x[p, n, q]
                b = best[q]
                if b != b:
                    take = v != v
                elif is_min:
                    take = v <= b or v != v
                else:
                    take = v >= b or v != v
                if take:
                    best[q] = v
                    idx[p, n, q] = n
                else:
                    idx[p, n, q] = idx[p, n - 1, q]


@njit(**_OPTS)
def cumprod_axis1(x, out):  # pragma: no cover - compiled
    """out (P, N, Q) = running products of x (P, N, Q) along axis 1, accumulated in float64
    and rounded once per element: NumPy's cumprod(dtype=float64) then astype, in one pass."""
    p_, n_, q_ = x.shape
    if q_ == 1:  # along the last axis: the product in a register
        for p in range(p_):
            a = np.float64(x[p, 0, 0])
            out[p, 0, 0] = a
            for n in range(1, n_):
                a = a * x[p, n, 0]
                out[p, n, 0] = a
        return
    acc = np.empty(q_, dtype=np.float64)
    for p in range(p_):
        for q in range(q_):
            acc[q] = x[p, 0, q]
            out[p, 0, q] = acc[q]
        for n in range(1, n_):
            for q in range(q_):
                acc[q] = acc[q] * x[p, n, q]
                out[p, n, q] = acc[q]


@njit(**_OPTS)
def cumprod_backward_axis1(x, y, gy, gx):  # pragma: no cover - compiled
    """gx (P, N, Q) = rev_cumsum(gy y)_n / x_n along axis 1, for x without zeros (the caller
    checks): gy y in the array dtype, the sum from the end in float64 starting at the last
    term (NumPy's cumsum of the flipped array), rounded, then divided, as ops/scan.py's
    NumPy formula."""
    p_, n_, q_ = x.shape
    last = n_ - 1
    if q_ == 1:  # along the last axis: the sum in a register
        for p in range(p_):
            a = np.float64(gy[p, last, 0] * y[p, last, 0])
            gx[p, last, 0] = a
            gx[p, last, 0] = gx[p, last, 0] / x[p, last, 0]
            for i in range(1, n_):
                n = last - i
                a = a + gy[p, n, 0] * y[p, n, 0]
                gx[p, n, 0] = a
                gx[p, n, 0] = gx[p, n, 0] / x[p, n, 0]
        return
    acc = np.empty(q_, dtype=np.float64)
    for p in range(p_):
        for q in range(q_):
            acc[q] = gy[p, last, q] * y[p, last, q]  # the product in the array dtype
            gx[p, last, q] = acc[q]  # rounded to the array dtype, then divided in it
            gx[p, last, q] = gx[p, last, q] / x[p, last, q]
        for i in range(1, n_):
            n = last - i
            for q in range(q_):
                acc[q] = acc[q] + gy[p, n, q] * y[p, n, q]
                gx[p, n, q] = acc[q]
                gx[p, n, q] = gx[p, n, q] / x[p, n, q]


@njit(**_OPTS)
def _fold_row(src, lw, hw, dst):  # pragma: no cover - compiled
    """dst (W,) = the reflect-pad gradient of one row src (lw + W + hw,) along it."""
    w_ = dst.shape[0]
    for j in range(w_):
        dst[j] = src[lw + j]
    for t in range(lw):
        dst[1 + t] += src[lw - 1 - t]
    for t in range(hw):
        dst[w_ - 1 - hw + t] += src[lw + w_ + hw - 1 - t]


@njit(**_OPTS)
def reflect_fold_2d(g, lh, hh, lw, hw, out):  # pragma: no cover - compiled
    """out (M, H, W) = the gradient of reflect padding ((lh, hh), (lw, hw)) of the last two
    axes, from g (M, lh + H + hh, lw + W + hw): ops/shape_copy._fold_pad_grad's additions in
    its order (axis -2 folded first: the centre row, then the top border mirrored onto rows
    1..lh, then the bottom one onto H-1-hh..H-2; then the same along axis -1), one row at a
    time. NumPy runs those slices as inner loops of length lh, hh, lw, hw: for (32, 64, 32, 32)
    padded by 3 the fold took ~10 ms, over half of PyTorch's forward + backward."""
    m_, h_, w_ = out.shape
    wp = g.shape[2]
    row = np.empty(wp, dtype=g.dtype)
    for m in range(m_):
        for i in range(h_):
            top = 1 <= i <= lh  # output row lh-1-t copies input row t+1: t = i-1
            bottom = h_ - 1 - hh <= i <= h_ - 2  # t = i-(h-1-hh): output row lh+h+hh-1-t
            if not (top or bottom):  # most rows: only the fold along the row
                _fold_row(g[m, lh + i], lw, hw, out[m, i])
                continue
            for k in range(wp):
                row[k] = g[m, lh + i, k]
            if top:
                for k in range(wp):
                    row[k] += g[m, lh - i, k]
            if bottom:
                t = i - (h_ - 1 - hh)
                for k in range(wp):
                    row[k] += g[m, lh + h_ + hh - 1 - t, k]
            _fold_row(row, lw, hw, out[m, i])
