"""PyTorch's arange, linspace and logspace for integer dtypes with non-integer arguments.

NumPy computes these in float64 and casts at the end; PyTorch's kernels
(aten/src/ATen/native/RangeFactories.cpp and cpu/RangeFactoriesKernel.cpp) first convert the
bounds to the integer type (truncating toward zero, wrapping for unsigned types), so e.g.
`arange(0.0, -8.000001, -4.0, dtype=int64)` is [0, -4] in PyTorch and [0, -4, -8] in NumPy.
These helpers reproduce the kernels' arithmetic on the host; creation.py and
gaps_math_creation.py call them for an integer dtype. `float_space` is linspace's kernel for the
real float dtypes: its values are fused multiply-adds (one rounding), which NumPy's linspace is
not, and a value one ulp off moves grid_sample's floor (and its gradient) or an index.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import DescentError


def _to_int(v, dt: np.dtype) -> int:
    """Scalar.to<scalar_t>(): truncate toward zero, then wrap into dt (uint8: -3 -> 253); a
    float outside dt's range is refused, as PyTorch's checked conversion (uint8: -2.7)."""
    info = np.iinfo(dt)
    # c10's overflows(): an integer must fit too, except that an unsigned type takes -max..-1
    # (wrapped); a float must lie in the type's range
    low = -info.max if info.min == 0 and not isinstance(v, float) else info.min
    if not low <= v <= info.max:
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
        if base is None:  # linspace: each value one fused multiply-add, as PyTorch's kernel
            v = _symmetric(np.float64(s), np.float64(e), np.float64(step), idx, steps)
        else:  # logspace's exponents: two roundings (measured against PyTorch's kernel)
            v = np.where(idx < steps // 2, s + step * idx, e - step * (steps - idx - 1))
            v = np.power(float(base), v)
    with np.errstate(invalid="ignore"):  # (out of range is undefined in C++ too)
        return np.trunc(v).astype(np.int64).astype(dt)


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """a * b + c in float64 with one rounding (C's fma, which PyTorch's kernels compile to):
    Dekker's exact product and Knuth's exact sum, then one final addition. Where the split
    overflows (|a| or |b| past ~1e300) the plain a * b + c stands in."""
    with np.errstate(over="ignore", invalid="ignore"):
        p = a * b
        split = 134217729.0  # 2**27 + 1: Veltkamp's split into two 26-bit halves
        ta, tb = a * split, b * split
        ahi, bhi = ta - (ta - a), tb - (tb - b)
        alo, blo = a - ahi, b - bhi
        perr = ((ahi * bhi - p) + ahi * blo + alo * bhi) + alo * blo  # a * b - p, exactly
        s = p + c
        bv = s - p
        serr = (p - (s - bv)) + (c - bv)  # p + c - s, exactly
        out = s + (serr + perr)
    return np.where(np.isfinite(out), out, p + c)


def _symmetric(s, e, step, idx: np.ndarray, steps: int) -> np.ndarray:
    """PyTorch's linspace kernel: the first half counted up from start, the second down from
    end, each value one fused multiply-add (float64 arrays in, float64 out)."""
    first = idx < steps // 2
    return np.where(first, _fma(step, idx, s), _fma(-step, steps - 1 - idx, e))


def float_space(start, end, steps: int, dt: np.dtype) -> np.ndarray:
    """linspace for a real float dtype as PyTorch's CPU kernel computes it: start, end and the
    step (end - start) / (steps - 1) rounded to dt, then start + step * i (first half) or
    end - step * (steps - 1 - i) (second half). float32 and float64 round once per value
    (a fused multiply-add); float16 and bfloat16 round every operation, the index included
    (c10::Half's operators), which NumPy's float64 linspace cast to dt does not reproduce."""
    if steps == 0:
        return np.zeros(0, dt)
    # c10's checked conversion of the bounds: a finite bound must fit (inf may); for one step
    # float16 / bfloat16 fill start unchecked (it overflows to inf), as PyTorch does
    if steps > 1 or dt.itemsize >= 4:
        big = float(np.finfo(dt).max)
        for v in (start, end):
            if math.isfinite(v) and abs(v) > big:
                raise DescentError(f"value cannot be converted to type {dt} without overflow")
    if steps == 1:
        with np.errstate(over="ignore"):
            return np.array([start], dtype=np.float64).astype(dt)
    with np.errstate(over="ignore", invalid="ignore"):
        return _float_space(float(start), float(end), steps, dt)


def _float_space(start: float, end: float, steps: int, dt: np.dtype) -> np.ndarray:
    s, e = np.array(start, dtype=np.float64).astype(dt), np.array(end, dtype=np.float64).astype(dt)
    idx = np.arange(steps)
    if dt.itemsize >= 4:  # float32 / float64: one rounding per value
        step = ((e - s) / dt.type(steps - 1)).astype(np.float64)
        v = _symmetric(np.float64(s), np.float64(e), step, idx.astype(np.float64), steps)
        return v.astype(dt)
    # float16 / bfloat16: each operation rounds to dt (computed in float32 and rounded back)
    f32 = np.float32

    def rnd(x):
        return np.asarray(x, dtype=f32).astype(dt).astype(f32)

    s32, e32 = s.astype(f32), e.astype(f32)
    step = rnd(rnd(e32 - s32) / rnd(f32(steps - 1)))
    up = rnd(s32 + rnd(step * rnd(idx)))
    down = rnd(e32 - rnd(step * rnd(steps - 1 - idx)))
    return np.where(idx < steps // 2, up, down).astype(dt)
