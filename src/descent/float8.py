"""float8: PyTorch's five 8-bit floating formats and its conversion rules (docs/dtypes.md).

`torch.float8_e4m3fn`, `float8_e5m2`, `float8_e4m3fnuz`, `float8_e5m2fnuz` and
`float8_e8m0fnu` are storage formats: PyTorch's CPU converts to and from them, moves them
(cat, reshape, indexing, copy_) and computes with almost nothing else (`ops/float8.py` holds
that list). Their NumPy dtypes come from the `ml_dtypes` package (as bfloat16's: loaded on first
use, dtypes.py), of NumPy kind "V" except float8_e5m2's "f" (descent tells them all by their
NumPy dtype number, >= 256); this module says how values convert, where PyTorch's rules are
not ml_dtypes' casts:

* every conversion goes through float32, as c10's float8 types are built from a `float`: a
  float64 value is rounded to float32 first (two roundings; ml_dtypes rounds float64 once, and
  disagrees at about 1 value in 400 of the midpoints tested), and float8 reaches every other
  dtype through its exact float32 value;
* float8_e4m3fn has no infinity: PyTorch saturates every value beyond +-448, inf included, to
  +-448 (ml_dtypes gives nan);
* nan keeps its sign in the all-ones pattern (0x7F / 0xFF) in e4m3fn and e5m2 (ml_dtypes writes
  0x7E for e5m2); the fnuz formats have one nan (0x80), as in ml_dtypes;
* float8_e8m0fnu (a power of two, no sign, no zero: scale factors for MX formats) rounds the
  float32 exponent to nearest on its top mantissa bits and ignores the sign, so 0 becomes 2**-127
  and -4 becomes 4, as c10's `fp8e8m0fnu_from_fp32_value` (ml_dtypes gives nan for both).

tests/test_dtypes_float8_unsigned.py compares all 256 bit patterns and adversarial float32 and
float64 values with PyTorch bitwise. This module imports nothing of descent.
"""

from __future__ import annotations

import math

import numpy as np

# PyTorch's names, which are ml_dtypes' names too (dtypes.py reads them from here).
NAMES = ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu")

_F32 = np.dtype(np.float32)
# safetensors' dtype codes (as safetensors.torch writes them; e8m0fnu has none).
SAFETENSORS = {
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "float8_e4m3fnuz": "F8_E4M3FNUZ",
    "float8_e5m2fnuz": "F8_E5M2FNUZ",
}


def is_float8(d) -> bool:
    """True for a float8 dtype (any form: NumPy or descent dtype, an array's dtype). By name:
    ml_dtypes gives float8_e5m2 NumPy kind "f" (the others are "V")."""
    d = getattr(d, "dtype", d)
    return getattr(d, "name", "").startswith("float8_")


def numpy_dtype(name: str) -> np.dtype:
    """ml_dtypes' NumPy dtype of a float8 name (imports ml_dtypes: ~0.5 s the first time)."""
    import ml_dtypes  # noqa: PLC0415 - lazy, as bfloat16's (dtypes.bfloat16_dtype)

    return np.dtype(getattr(ml_dtypes, name))


def astype(a, dtype):
    """The array `a` converted to `dtype` by PyTorch's rules (the module docstring), for a
    conversion from or to a float8 dtype; NumPy's `astype` for any other."""
    dtype = np.dtype(dtype)
    if is_float8(a.dtype):
        if a.dtype == dtype:
            return a.copy()
        a = _float32_table(a.dtype)[a.view(np.uint8)]  # exact: every float8 value is a float32
        if not is_float8(dtype):
            with np.errstate(invalid="ignore", over="ignore"):
                out = a if dtype == _F32 else a.astype(dtype)
            if dtype.name in ("float16", "bfloat16"):
                nan = np.isnan(a)
                if nan.any():  # c10's nan: bfloat16's is always 0x7FC0, a quiet float16 one
                    bits = out.view(np.uint16)
                    if dtype.name == "bfloat16":
                        bits[nan] = 0x7FC0
                    else:
                        bits[a.view(np.uint32) == 0x7F800001] = 0x7E00
            return out
    elif not is_float8(dtype):
        return a.astype(dtype)
    if a.dtype.kind == "c":
        a = a.real  # complex -> real keeps the real part, as PyTorch
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.asarray(a, dtype=_F32)  # float64 rounds to float32 first, as c10's
    name = dtype.name
    if name == "float8_e8m0fnu":
        return _e8m0_bits(a).view(dtype)
    if name == "float8_e4m3fn":
        a = np.asarray(np.clip(a, -448.0, 448.0))  # no infinity: PyTorch saturates
    out = np.asarray(a.astype(dtype))  # (an array for 0-d input too: written below)
    if name in ("float8_e4m3fn", "float8_e5m2"):
        nan = np.isnan(a)
        if nan.any():  # PyTorch's nan: all ones, with the input's sign
            bits = out.view(np.uint8)
            bits[nan] = np.where(np.signbit(a[nan]), 0xFF, 0x7F)
    return out


# nan as c10 widens it to float32, by format: the float8 nan's own bits shifted into place
# (e4m3fn, e5m2 through float16), or c10's one nan (0x7F800001) for the formats with one.
_NAN32 = {"float8_e4m3fn": 0x7FF00000, "float8_e5m2": 0x7FE00000}
_tables: dict = {}


def _float32_table(dtype) -> np.ndarray:
    """The float32 value of each of the 256 bit patterns of a float8 dtype, nan bits as c10's."""
    table = _tables.get(dtype.name)
    if table is None:
        table = np.arange(256, dtype=np.uint8).view(dtype).astype(_F32)
        bits = table.view(np.uint32)
        nan = np.isnan(table)
        sign = np.where(np.arange(256) >= 128, 0x80000000, 0).astype(np.uint32)
        bits[nan] = sign[nan] | _NAN32.get(dtype.name, 0x7F800001)
        if dtype.name == "float8_e5m2":  # 0x7E widens to float16's canonical nan, 0x7E00
            bits[[0x7E, 0xFE]] = sign[[0x7E, 0xFE]] | 0x7FC00000
        if dtype.name != "float8_e4m3fn" and dtype.name != "float8_e5m2":
            bits[nan] = 0x7F800001
        table.flags.writeable = False
        _tables[dtype.name] = table
    return table


def overflows(c, dtype) -> bool:
    """c10's `overflows` check for a number written into a float8 tensor by fill_ or full:
    outside [lowest, max] (e8m0fnu's lowest is 2**-127: no zero, no negatives), or an infinity
    where the format has none (every format but e5m2). nan passes."""
    c = float(c)
    if math.isinf(c):
        return dtype.name != "float8_e5m2"
    info = finfo_fields(dtype.name)
    return c < info["min"] or c > info["max"]


def _e8m0_bits(a32):
    """float32 -> float8_e8m0fnu bit patterns, as c10's fp8e8m0fnu_from_fp32_value: the
    biased exponent, plus one when the mantissa's guard bit is set and the round or sticky bits
    or the implied leading bit (set for normal numbers) are: round to nearest, ties up for
    normal numbers. The sign is dropped; nan and +-inf give nan (0xFF)."""
    a32 = np.asarray(a32)
    bits = (a32 if a32.flags.c_contiguous else a32.copy()).view(np.uint32)  # (keeps 0-d)
    exponent = ((bits >> 23) & 0xFF).astype(np.uint8)
    guard = (bits & 0x400000) != 0
    rest = (bits & 0x3FFFFF) != 0  # the round bit and the sticky bits together
    up = guard & (rest | (exponent > 0)) & (exponent != 0xFF)
    return (exponent + up.astype(np.uint8)).astype(np.uint8)


def finfo_fields(name: str) -> dict:
    """torch.finfo's fields of a float8 dtype (ml_dtypes' finfo, where PyTorch agrees)."""
    import ml_dtypes  # noqa: PLC0415

    info = ml_dtypes.finfo(getattr(ml_dtypes, name))
    eps = float(info.eps)
    if name == "float8_e5m2fnuz":
        eps = 0.125  # PyTorch's value (c10's numeric_limits epsilon); ml_dtypes says 0.25
    return {"bits": 8, "eps": eps, "max": float(info.max), "min": float(info.min),
            "tiny": float(info.tiny), "resolution": 1.0}  # fmt: skip
