"""PyTorch's arange, linspace and logspace for integer dtypes with non-integer arguments.

NumPy computes these in float64 and casts at the end; PyTorch's kernels
(aten/src/ATen/native/RangeFactories.cpp and cpu/RangeFactoriesKernel.cpp) first convert the
bounds to the integer type (truncating toward zero, wrapping for unsigned types), so e.g.
`arange(0.0, -8.000001, -4.0, dtype=int64)` is [0, -4] in PyTorch and [0, -4, -8] in NumPy.
These helpers reproduce the kernels' arithmetic on the host; creation.py and
gaps_math_creation.py call them only for an integer dtype, so the float paths are unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import DescentError


def _to_int(v, dt: np.dtype) -> int:
    """Scalar.to<scalar_t>(): truncate toward zero, then wrap into dt (uint8: -3 -> 253); a
    float outside dt's range is refused, as PyTorch's checked conversion (uint8: -2.7)."""
    info = np.iinfo(dt)
    if isinstance(v, float) and not info.min <= v <= info.max:
        raise DescentError(f"value {v} cannot be converted to type {dt} without overflow")
    return int(np.array(math.trunc(v), dtype=np.int64).astype(dt))


def integer_arange(start, end, step, dt: np.dtype) -> np.ndarray:
    """arange for an integer dtype: int64 truncates start, end and step and counts
    ceil((end - start) / step) in integers; the narrower types count in float64 from the
    original bounds. Values are start + i * step with the truncated start and step."""
    xs, xe, xst = (math.trunc(v) for v in (start, end, step))
    if dt == np.int64:
        if xst == 0:
            # (PyTorch raises a ValueError here; DescentError is both that and RuntimeError)
            raise DescentError("arange: step must be nonzero (the int64 step truncates to 0)")
        sgn = (xst > 0) - (xst < 0)
        num = xe - xs + xst - sgn
        n = abs(num) // abs(xst) * (1 if (num >= 0) == (xst > 0) else -1)  # C's division
    else:
        n = math.ceil((float(end) - float(start)) / float(step))
    n = max(int(n), 0)
    return (xs + np.arange(n, dtype=np.int64) * xst).astype(dt)


def integer_space(start, end, steps: int, dt: np.dtype, base=None) -> np.ndarray:
    """linspace (base None) or logspace for an integer dtype: start and end converted to dt,
    the step (end - start) / (steps - 1) in float64, the first half of the values counted
    from start and the second from end (PyTorch's symmetric kernel), each truncated to dt.
    One step is start itself (linspace) or base ** start with start unconverted (logspace)."""
    if steps == 0:  # (no bound is converted then)
        return np.zeros(0, dt)
    if steps == 1:
        v = np.array([float(base) ** float(start) if base is not None else _to_int(start, dt)])
    else:
        s, e = _to_int(start, dt), _to_int(end, dt)
        step = (e - s) / (steps - 1)
        idx = np.arange(steps, dtype=np.float64)
        v = np.where(idx < steps // 2, s + step * idx, e - step * (steps - idx - 1))
        if base is not None:
            v = np.power(float(base), v)
    with np.errstate(invalid="ignore"):  # (out of range is undefined in C++ too)
        return np.trunc(v).astype(np.int64).astype(dt)
