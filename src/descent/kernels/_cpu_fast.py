"""All-float32 loops: the float32 exact GELU (eager's and the replay's) and the gated tanh GELU.

Every value stays float32 (`np.floor` keeps float32; the exponent bits come from an int32), so
LLVM vectorises the loops 8 wide; `exp32` is `_cpu_jit._exp32`, which eager's softmax also
uses (one softmax loop, `_cpu_jit.softmax_fwd32`, for eager and the replay).

GELU (`gelu_*32`): `kernels.cpu.gelu_forward/backward` run these for float32 arrays (eager), and
descent.compile's replay runs the same loops (`gelu_fwd_d32` stores the derivative for its
backward, the same bits as `gelu_bwd32`; the `_par` twins give the same bits on every core),
so GELU is bitwise eager's on replay. Their CDF is accurate to a few ulp (below, and
tests/test_gelu_accuracy.py): forward within 6.8 ulp of float64, derivative within 9.5 ulp
(absolute 1.25e-7 near its zero at x = -0.75), over every 256th float32.
"""

from __future__ import annotations

import math

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
_ISQ2, _ISQ2PI = _j._ISQ2, _j._ISQ2PI
_f = np.float32


exp32 = _j._exp32  # Cephes' expf, all float32 (eager's softmax and GELU's range reduction)


# -- GELU's normal CDF, accurate to a few ulp in float32 ------------------------------------------
# Phi(-|x|) = erfc(z)/2 = t R(t) exp(-x^2/2) / 2 with z = |x|/sqrt 2, t = 1/(1 + 0.4 z) and R a
# degree-10 polynomial: a Chebyshev least-squares fit of erfcx(z)/t over t in (0, 1], relative
# error 6.7e-9 (float64; coefficients rounded to float32). So the negative tail keeps its
# relative accuracy (A&S 7.1.26, the NumPy path's formula, is 1.5e-7 absolute: 2% off at
# x = -10), and exp(-x^2/2) is also the density. -x^2/2 is taken in two parts, exactly:
# x = xh + xl with xh = floor(256 x)/256 (at most 12 significant bits below |x| = 16, so xh^2 is
# exact) and x^2 - xh^2 = xl (x + xh); the exponential adds the small part after its range
# reduction (`exp32x`). The kernels that inline these run without the 'reassoc' flag (`_GOPTS`),
# which could undo both splits.

_T_C = _f(0.4 / math.sqrt(2.0))  # t = 1/(1 + _T_C |x|)
_R0, _R1, _R2, _R3, _R4, _R5, _R6, _R7, _R8, _R9, _R10 = (_f(c) for c in (
    0.22567583620548248, 0.22567608952522278, 0.20760805904865265, 0.1718023419380188,
    0.11863411962985992, 0.08522811532020569, -0.04974403232336044, 0.14143522083759308,
    -0.23873597383499146, 0.1419266015291214, -0.029506411403417587))  # fmt: skip
_S256, _I256, _SIXTEEN = _f(256.0), _f(1.0 / 256.0), _f(16.0)
_EXP_LO_SUB, _TWO_M24 = _f(-103.9), _f(2.0**-24)
_GFAST = _j._FAST - {"reassoc"}
_GOPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath=_GFAST)
_GPOPTS = dict(parallel=True, nogil=True, error_model="numpy", fastmath=_GFAST)


@njit(inline="always", **_GOPTS)
def exp32x(a, b):
    """exp(a + b) in float32 (Cephes expf) for a + b <= 0, a exact and large, b small: b joins
    the reduced argument after a - n ln2_hi (exact), so a + b's rounding does not enter the
    result. Underflows gradually: 2^n is built as 2^(n + 24) 2^-24, so results down to the
    subnormals (a + b >= -103.9) keep their digits, where expf's floor is 2^-126."""
    x = a + b
    xc = _ZERO if x > _ZERO else x
    xc = _EXP_LO_SUB if xc < _EXP_LO_SUB else xc
    n = np.floor(xc * _LOG2E + _HALF)
    r = ((a - n * _LN2_HI) + b) - n * _LN2_LO
    p = ((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5
    y = (p * r * r + r + _ONE) * _f32_from_bits((np.int32(n) + 151) << 23) * _TWO_M24
    y = _ZERO if x < _EXP_LO_SUB else y
    return y if x == x else x


@njit(inline="always", **_GOPTS)
def phi_parts32(v):
    """(Phi(v), exp(-v^2/2)), float32, each within a few ulp (tests/test_gelu_accuracy.py)."""
    av = abs(v)
    av = _SIXTEEN if av > _SIXTEEN else av  # exp(-x^2/2) is 0 from 14.5; no inf - inf
    vh = np.floor(av * _S256) * _I256
    e = exp32x(-_HALF * (vh * vh), -_HALF * ((av - vh) * (av + vh)))  # exp(-x^2/2)
    t = _ONE / (_ONE + _T_C * av)
    r = _R6 + t * (_R7 + t * (_R8 + t * (_R9 + t * _R10)))
    r = _R0 + t * (_R1 + t * (_R2 + t * (_R3 + t * (_R4 + t * (_R5 + t * r)))))
    half_erfc = (_HALF * t) * r * e  # Phi(-|v|)
    return (half_erfc if v < _ZERO else _ONE - half_erfc), e


@njit(**_OPTS)
def exp_vec32(x, out):
    """out = exp(x) elementwise (tests measure exp32's error through it)."""
    for i in range(x.size):
        out[i] = exp32(x[i])


@njit(**_GOPTS)
def gelu_fwd32(x, out):
    for i in range(x.size):
        v = x[i]
        cdf, _ = phi_parts32(v)
        out[i] = v * cdf


@njit(**_GOPTS)
def gelu_bwd32(x, gy, out):
    for i in range(x.size):
        v = x[i]
        cdf, e = phi_parts32(v)
        out[i] = gy[i] * (cdf + v * (e * _ISQ2PI))


@njit(**_GPOPTS)
def gelu_fwd32_par(x, out):
    for i in prange(x.size):
        v = x[i]
        cdf, _ = phi_parts32(v)
        out[i] = v * cdf


@njit(**_GPOPTS)
def gelu_bwd32_par(x, gy, out):
    for i in prange(x.size):
        v = x[i]
        cdf, e = phi_parts32(v)
        out[i] = gy[i] * (cdf + v * (e * _ISQ2PI))


@njit(**_GOPTS)
def gelu_fwd_d32(x, out, d):
    """out = GELU(x) and d = its derivative Phi(x) + x phi(x), from one evaluation of Phi."""
    for i in range(x.size):
        v = x[i]
        cdf, e = phi_parts32(v)
        out[i] = v * cdf
        d[i] = cdf + v * (e * _ISQ2PI)


@njit(**_GPOPTS)
def gelu_fwd_d32_par(x, out, d):
    for i in prange(x.size):
        v = x[i]
        cdf, e = phi_parts32(v)
        out[i] = v * cdf
        d[i] = cdf + v * (e * _ISQ2PI)


# -- the gated tanh-GELU of GEGLU / Grok-1's experts: h = gelu_tanh(a) * b -------------------------
# gelu_tanh(a) = a (1 + tanh u)/2, u = C (a + K a^3). (1 + tanh u)/2 is the sigmoid of 2u,
# s = 1/(1 + exp(-2u)), taken from e = exp(-2|u|) <= 1 and r = 1/(1 + e): s = r (u >= 0) or e r,
# so it keeps its relative accuracy where it is small (a << 0: NumPy's 1 + tanh u cancels there,
# 10x off at a = -5.4 in float32). The derivative's (1 - tanh^2 u)/2 is 2 s (1 - s) = 2 e r^2,
# again without cancellation. The backward recomputes e from a (one exponential) instead of
# saving anything: no activation-sized array is kept between forward and backward.
_GT_C = _f(math.sqrt(2.0 / math.pi))
_GT_CK = _f(math.sqrt(2.0 / math.pi) * 0.044715)
_GT_CK3 = _f(3.0 * math.sqrt(2.0 / math.pi) * 0.044715)
_TWO = _f(2.0)


@njit(**_GOPTS)
def gg_tanh_fwd32(a, b, h):
    """h = gelu_tanh(a) * b, elementwise (float32, flat arrays)."""
    for i in range(a.size):
        x = a[i]
        u = x * (_GT_C + _GT_CK * (x * x))  # C (x + K x^3)
        e = exp32(-_TWO * abs(u))  # in (0, 1]
        r = _ONE / (_ONE + e)
        si = r if u >= _ZERO else e * r
        h[i] = (x * si) * b[i]


@njit(**_GOPTS)
def gg_tanh_bwd32(a, b, gh, ga, gb):
    """ga = gh b d gelu_tanh(a)/da and gb = gh gelu_tanh(a), recomputing s from a."""
    for i in range(a.size):
        x = a[i]
        u = x * (_GT_C + _GT_CK * (x * x))
        e = exp32(-_TWO * abs(u))
        r = _ONE / (_ONE + e)
        si = r if u >= _ZERO else e * r
        g = gh[i]
        gb[i] = g * (x * si)
        q = _GT_C + _GT_CK3 * (x * x)  # C (1 + 3 K x^2)
        d = si + x * ((_TWO * e) * (r * r)) * q  # (1 + t)/2 + x (1 - t^2)/2 C (1 + 3 K x^2)
        ga[i] = (g * b[i]) * d
