"""numba loops for scans that NumPy makes in several passes (benchmarks/op_sweep.py).

Imported on first use only (it imports numba), by callers that have checked
`kernels.cpu.enabled()`; each loop has a NumPy path beside it in its caller, which is what runs
with `DESCENT_KERNELS=numpy`, and the two give the same results (tests compare them).

- `running_extreme_index`: the index of the running maximum (minimum) along one axis, PyTorch's
  rule (ties and NaN take over; after a NaN only another NaN does), for cummax / cummin. NumPy
  needs an accumulate, two comparisons, a NaN mask with its own accumulate, a where and another
  accumulate (~35 ms for 256 x 4096 floats); one pass here.
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
