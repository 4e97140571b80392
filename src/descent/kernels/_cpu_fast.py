"""All-float32 twins of `_cpu_jit`'s GELU and softmax loops, for descent.compile's replay.

`_cpu_jit._exp32` is Cephes' expf, but numba types its `math.floor(...)` as an int64, so the
range reduction and the polynomial run in float64 (int64 * float32 -> float64), with a
float -> int64 conversion per element that AVX2 has no vector instruction for: GELU's forward
over baby-gpt's 393k values takes ~1.5 ms instead of ~0.4. The loops here are the same
formulas with every value float32 (`np.floor` keeps float32; the exponent bits come from an
int32), so LLVM vectorises them 8 wide: 3-4x faster (measured on this machine, one core).

Eager keeps `_cpu_jit`'s kernels (its results must not change), so these differ from eager by
float32 rounding: exp within 2 ulp of the float64 exp (tests/test_compile_kernels.py measures
it), GELU and its derivative within ~1e-6 absolute. descent.compile uses them on replay unless
`options={"exact": True}`; docs/compile.md states it per fusion.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _cpu_jit as _j

_OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath=_j._FAST)
_POPTS = dict(parallel=True, nogil=True, error_model="numpy", fastmath=_j._FAST)
_f32_from_bits = _j._f32_from_bits
_LOG2E, _LN2_HI, _LN2_LO = _j._LOG2E, _j._LN2_HI, _j._LN2_LO
_E0, _E1, _E2, _E3, _E4, _E5 = _j._E0, _j._E1, _j._E2, _j._E3, _j._E4, _j._E5
_EXP_LO, _EXP_HI = _j._EXP_LO, _j._EXP_HI
_ZERO, _HALF, _ONE, _INF = _j._ZERO, _j._HALF, _j._ONE, _j._INF
_AS_P, _A1, _A2, _A3, _A4, _A5 = _j._AS_P, _j._A1, _j._A2, _j._A3, _j._A4, _j._A5
_ISQ2, _ISQ2PI = _j._ISQ2, _j._ISQ2PI


@njit(inline="always", **_OPTS)
def exp32(x):
    """exp(x) in float32 throughout (Cephes expf); exp(x < -87.3) = 0, exp(NaN) = NaN."""
    xc = _EXP_HI if x > _EXP_HI else x
    xc = _EXP_LO if xc < _EXP_LO else xc
    n = np.floor(xc * _LOG2E + _HALF)  # float32
    r = xc - n * _LN2_HI - n * _LN2_LO
    p = ((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5
    y = (p * r * r + r + _ONE) * _f32_from_bits((np.int32(n) + 127) << 23)
    y = _INF if x > _EXP_HI else y
    y = _ZERO if x < _EXP_LO else y
    return y if x == x else x


@njit(inline="always", **_OPTS)
def phi_parts32(v):
    """(Phi(v), exp(-v^2/2)), float32 (A&S 7.1.26 as `_cpu_jit._phi_parts32`)."""
    e = exp32(-_HALF * v * v)
    t = _ONE / (_ONE + _AS_P * abs(v * _ISQ2))
    tail = _HALF * (((((_A5 * t + _A4) * t + _A3) * t + _A2) * t + _A1) * t) * e
    return (tail if v < _ZERO else _ONE - tail), e


@njit(**_OPTS)
def exp_vec32(x, out):
    """out = exp(x) elementwise (tests measure exp32's error through it)."""
    for i in range(x.size):
        out[i] = exp32(x[i])


@njit(**_OPTS)
def gelu_fwd32(x, out):
    for i in range(x.size):
        v = x[i]
        cdf, _ = phi_parts32(v)
        out[i] = v * cdf


@njit(**_OPTS)
def gelu_bwd32(x, gy, out):
    for i in range(x.size):
        v = x[i]
        cdf, e = phi_parts32(v)
        out[i] = gy[i] * (cdf + v * (e * _ISQ2PI))


@njit(**_POPTS)
def gelu_fwd32_par(x, out):
    for i in prange(x.size):
        v = x[i]
        cdf, _ = phi_parts32(v)
        out[i] = v * cdf


@njit(**_POPTS)
def gelu_bwd32_par(x, gy, out):
    for i in prange(x.size):
        v = x[i]
        cdf, e = phi_parts32(v)
        out[i] = gy[i] * (cdf + v * (e * _ISQ2PI))


@njit(**_OPTS)
def gelu_fwd_d32(x, out, d):
    """out = GELU(x) and d = its derivative Phi(x) + x phi(x), from one evaluation of Phi."""
    for i in range(x.size):
        v = x[i]
        cdf, e = phi_parts32(v)
        out[i] = v * cdf
        d[i] = cdf + v * (e * _ISQ2PI)


@njit(**_POPTS)
def gelu_fwd_d32_par(x, out, d):
    for i in prange(x.size):
        v = x[i]
        cdf, e = phi_parts32(v)
        out[i] = v * cdf
        d[i] = cdf + v * (e * _ISQ2PI)


@njit(**_OPTS)
def softmax_fwd32(x, scale, n_q, causal):
    """In place: x (R, S) becomes softmax(scale * x) row by row (`_cpu_jit.softmax_fwd32`'s
    loop without its log branch, float32 exp); row r is query r % n_q under `causal`."""
    n_rows, n_cols = x.shape
    for r in range(n_rows):
        lim = min(n_cols, r % n_q + 1) if causal else n_cols
        m = -_INF
        for j in range(lim):
            z = scale * x[r, j]
            m = z if z > m else m
        s = _ZERO
        for j in range(lim):
            e = exp32(scale * x[r, j] - m)
            x[r, j] = e
            s += e
        inv = _ONE / s
        for j in range(lim):
            x[r, j] *= inv
        for j in range(lim, n_cols):
            x[r, j] = _ZERO
