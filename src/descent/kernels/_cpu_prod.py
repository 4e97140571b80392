"""numba loop for prod along contiguous rows in PyTorch's CPU order (ops/reduce.py's Prod).

Imported on first use only (it imports numba), by a caller that has checked
`kernels.cpu.enabled()`; ops/reduce.py has the NumPy form of the same order beside it (what
runs with `DESCENT_KERNELS=numpy`, and for float16/bfloat16), and the two give the same bits.

PyTorch's vectorized_inner_reduction (aten/src/ATen/native/cpu/Reduce.h) keeps 4 vectors of
`lanes` values, multiplies each successive block of 4 * lanes values into them, combines them
as (a0 a1)(a2 a3), then its lanes one after another, then the tail one value at a time. NumPy
needs a strided reduce, two products, a lane reduce and a concatenated tail for that (~20 us of
calls for a row of 128); one pass here, every product in the array's dtype.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True, error_model="numpy")


@njit(**_OPTS)
def prod_rows(rows, lanes, out):  # pragma: no cover - compiled
    """out[m] = the product of rows[m, :] (float32 or float64, (M, n), contiguous rows) in
    PyTorch's vectorized order with `lanes` lanes per vector; each product rounded to the
    dtype (no fastmath: numba keeps the order written here)."""
    m_, n_ = rows.shape
    width = 4 * lanes
    count = n_ // width
    acc = np.empty(width, rows.dtype)
    for m in range(m_):
        row = rows[m]
        p = rows.dtype.type(1)
        if count:
            acc[:] = row[:width]
            for i in range(1, count):
                block = row[i * width : (i + 1) * width]
                for j in range(width):  # 4 * lanes independent products: vectorised
                    acc[j] = acc[j] * block[j]
            for j in range(lanes):  # (a0 a1)(a2 a3), lane by lane
                acc[j] = (acc[j] * acc[lanes + j]) * (acc[2 * lanes + j] * acc[3 * lanes + j])
            b = acc[0]
            for j in range(1, lanes):
                b = b * acc[j]
            p = p * b
        for k in range(count * width, n_):
            p = p * row[k]
        out[m] = p
