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
