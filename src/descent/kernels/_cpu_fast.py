"""All-float32 loops: the float32 exact GELU (eager's and the replay's) and the gated tanh GELU.

Every value stays float32 (the exponent bits come from an int32), so LLVM vectorises the loops
16 wide (AVX-512; 8 on AVX2); `exp32` is `_cpu_jit._exp32`, which eager's softmax also uses
(one softmax loop, `_cpu_jit.softmax_fwd32`, for eager and the replay).

GELU (`gelu_*32`): `kernels.cpu.gelu_forward/backward` run these for float32 arrays (eager), and
descent.compile's replay runs the same loops (`gelu_fwd_d32` stores the derivative for its
backward, the same bits as `gelu_bwd32`; the `_par` twins give the same bits on every core),
so GELU is bitwise eager's on replay. Their CDF is accurate to a few ulp (below, and
tests/test_gelu_accuracy.py): forward within 5.6 ulp of float64, derivative within 4.4 ulp
(absolute 5.6e-8 near its zero at x = -0.75), over every 256th float32. The GELU loops use no
fast-math flag: every fused multiply-add is written out (`_fma32`), so each lane, the scalar
remainder and every machine with FMA compute the same bits.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import _cpu_jit as _j

_OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath=_j._FAST)
_f32_from_bits, _bits32, _fma32 = _j._f32_from_bits, _j._bits32, _j._fma32
_ZERO, _HALF, _ONE, _INF = _j._ZERO, _j._HALF, _j._ONE, _j._INF
_f = np.float32


exp32 = _j._exp32  # Cephes' expf, all float32 (eager's softmax and the gated tanh GELU)


# -- GELU's normal CDF, accurate to a few ulp in float32 ------------------------------------------
# With a = |x| (clamped to 14.4, where Phi(-a) and the density are 0 in float32):
#   the density  phi(a) = exp(-a^2/2) / sqrt(2 pi), and
#   Phi(-a) = phi(a) M(a), M = P4(a) / Q5(a) Mills' ratio (Phi(-a)/phi(a)) as a rational of
#   degrees 4 and 5, a relative minimax fit on [0, 14.4] (5.8e-9 in float64, 2.9e-8 with float32
#   coefficients; Q monic, so its first Horner step is an addition). Every coefficient is
#   positive, so neither polynomial cancels for a >= 0. The negative tail keeps its relative
#   accuracy, and phi is also the derivative's density.
# exp(-a^2/2): a^2 = hi + lo exactly (lo by an FMA); n = round(-hi / (2 ln 2)) by the 1.5 * 2^23
# trick (n sits in the low bits of nf); s = a^2 + 2 n ln 2 = -2r, |s| <= ln 2, from hi + 2 n ln2_hi
# (exact) + lo + 2 n ln2_lo, so a^2's rounding never enters the exponential; exp(r) / sqrt(2 pi)
# is a degree-6 polynomial in s (relative minimax on |s| <= 1.0002 ln 2: 1.9e-8 with float32
# coefficients), its coefficients scaled by 2^-24 so that one product with 2^(n + 24) (built
# from nf's bits; n >= -150 for a <= 14.4) scales it and rounds once, into the subnormals too
# (gradual underflow: Phi(x) keeps its digits down to x = -14).
# Per 16 values: 23 multiplies or FMAs and one division (the previous kernel, 1 - erfc by a
# degree-10 polynomial in 1/(1 + 0.28 a), took ~32 and was within 6.8 / 9.5 ulp).
_AMAX = _f(14.4)
_M0, _M1, _M2, _M3, _M4 = (_f(c) for c in (
    121.69393920898438, 106.62596893310547, 44.56035614013672, 9.877202033996582,
    1.0000118017196655))  # fmt: skip
_N0, _N1, _N2, _N3, _N4 = (_f(c) for c in (
    97.09771728515625, 162.5480194091797, 116.69925689697266, 45.54570770263672,
    9.877835273742676))  # Q = N0 + N1 a + ... + N4 a^4 + a^5  # fmt: skip
_S24 = _f(2.0**-24)
_D0, _D1, _D2, _D3, _D4, _D5, _D6 = (_f(c) * _S24 for c in (
    0.3989422917366028, -0.19947116076946259, 0.04986777901649475, -0.008311174809932709,
    0.00103895110078156, -0.00010440858750371262, 8.625148439023178e-06))  # fmt: skip
_MAGIC = _f(1.5 * 2.0**23)
_NL2E_2 = _f(-0.5) * _j._LOG2E  # -log2(e) / 2
_LN2H_2, _LN2L_2 = _f(2.0) * _j._LN2_HI, _f(2.0) * _j._LN2_LO  # 2 ln 2 in two parts
_GOPTS = dict(cache=True, nogil=True, error_model="numpy")  # strict IEEE, FMAs explicit
_GPOPTS = dict(parallel=True, nogil=True, error_model="numpy")


@njit(inline="always", **_GOPTS)
def phi_parts32(v):
    """(Phi(v), phi(v)), float32, each within a few ulp (tests/test_gelu_accuracy.py)."""
    a = abs(v)
    a = _AMAX if a > _AMAX else a  # NaN stays NaN
    hi = a * a
    lo = _fma32(a, a, -hi)  # a^2 = hi + lo
    nf = _fma32(hi, _NL2E_2, _MAGIC)
    n = nf - _MAGIC
    s = _fma32(n, _LN2H_2, hi)  # exact
    s = _fma32(n, _LN2L_2, s + lo)  # a^2 + 2 n ln 2
    p = _fma32(_fma32(_fma32(_D6, s, _D5), s, _D4), s, _D3)
    p = _fma32(_fma32(_fma32(p, s, _D2), s, _D1), s, _D0)
    dens = p * _f32_from_bits((_bits32(nf) + 151) << 23)  # phi(a) = 2^-24 p 2^(n + 24)
    num = _fma32(_fma32(_fma32(_fma32(_M4, a, _M3), a, _M2), a, _M1), a, _M0)
    den = _fma32(_fma32(_fma32(_fma32(a + _N4, a, _N3), a, _N2), a, _N1), a, _N0)
    tail = dens * (num / den)  # Phi(-|v|)
    return (tail if v < _ZERO else _ONE - tail), dens


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
        cdf, dens = phi_parts32(v)
        out[i] = gy[i] * _fma32(v, dens, cdf)


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
        cdf, dens = phi_parts32(v)
        out[i] = gy[i] * _fma32(v, dens, cdf)


@njit(**_GOPTS)
def gelu_fwd_d32(x, out, d):
    """out = GELU(x) and d = its derivative Phi(x) + x phi(x), from one evaluation of Phi."""
    for i in range(x.size):
        v = x[i]
        cdf, dens = phi_parts32(v)
        out[i] = v * cdf
        d[i] = _fma32(v, dens, cdf)


@njit(**_GPOPTS)
def gelu_fwd_d32_par(x, out, d):
    for i in prange(x.size):
        v = x[i]
        cdf, dens = phi_parts32(v)
        out[i] = v * cdf
        d[i] = _fma32(v, dens, cdf)


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
_TOPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath=_j._FAST - {"reassoc"})


@njit(**_TOPTS)
def gg_tanh_fwd32(a, b, h):
    """h = gelu_tanh(a) * b, elementwise (float32, flat arrays)."""
    for i in range(a.size):
        x = a[i]
        u = x * (_GT_C + _GT_CK * (x * x))  # C (x + K x^3)
        e = exp32(-_TWO * abs(u))  # in (0, 1]
        r = _ONE / (_ONE + e)
        si = r if u >= _ZERO else e * r
        h[i] = (x * si) * b[i]


@njit(**_TOPTS)
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
