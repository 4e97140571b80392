"""The numba-compiled loops behind `descent.kernels.cpu` (imported on first kernel use only).

Every kernel is a plain loop that LLVM vectorises (AVX2/AVX-512): `error_model='numpy'` removes
the division-by-zero branch Python semantics would add, and the fast-math flags below allow
contraction and reassociation but NOT 'nnan'/'ninf', so NaN and inf propagate as in NumPy.
libm's scalar expf would stop the vectorisation, so exp is `_exp32`: Cephes' expf (range
reduction by ln 2 in two parts, degree-5 polynomial, all in float32; within 1.5 ulp on
[-20, 0], where the softmax calls it) with 2^n built from its IEEE-754 bits.

Compiled lazily per signature, cached on disk (`cache=True`).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from . import _cpu_simd as _simd

_FAST = {"contract", "arcp", "nsz", "afn", "reassoc"}
_OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)


@intrinsic
def _f32_from_bits(typingctx, v):
    """Reinterpret an integer's low 32 bits as a float32 (a free LLVM bitcast)."""
    if not isinstance(v, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        i = args[0]
        if v.bitwidth > 32:
            i = builder.trunc(i, ir.IntType(32))
        return builder.bitcast(i, ir.FloatType())

    return types.float32(v), codegen


@intrinsic
def _bits32(typingctx, v):
    """A float32's IEEE-754 bits as an int32 (a free LLVM bitcast)."""
    if not (isinstance(v, types.Float) and v.bitwidth == 32):
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(v), codegen


@intrinsic
def _fma32(typingctx, a, b, c):
    """a * b + c rounded once (LLVM's llvm.fma.f32: IEEE fused multiply-add, vectorised to
    vfmadd; the same bits on every machine, unlike fast-math contraction, which LLVM may or
    may not apply to each lane or the scalar remainder)."""
    if not all(isinstance(v, types.Float) and v.bitwidth == 32 for v in (a, b, c)):
        return None

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return types.float32(a, b, c), codegen


@intrinsic
def _maxnum32(typingctx, a, b):
    """max(a, b) of two float32 as LLVM's llvm.maxnum.f32: a NaN operand gives the other one
    (so a NaN never wins, as in `v if v > m else m`), and a max reduction of it vectorises
    without fast-math flags (the compare-and-select form stayed scalar here, even with 'nnan':
    max of a (64, 512) float32 array's rows 36.7 -> 2.7 us, one core of the Intel host).
    Between -0.0 and +0.0 either may come back; every caller subtracts the maximum from the
    values, where the sign of a zero maximum changes no result."""
    if not all(isinstance(v, types.Float) and v.bitwidth == 32 for v in (a, b)):
        return None

    def codegen(context, builder, sig, args):
        f32 = ir.FloatType()
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(f32, [f32, f32]), "llvm.maxnum.f32"
        )
        return builder.call(fn, args)

    return types.float32(a, b), codegen


_f = np.float32
_LOG2E = _f(1.4426950408889634)
_LN2_HI, _LN2_LO = _f(0.693359375), _f(-2.12194440e-4)
_E0, _E1, _E2 = _f(1.9875691500e-4), _f(1.3981999507e-3), _f(8.3334519073e-3)
_E3, _E4, _E5 = _f(4.1665795894e-2), _f(1.6666665459e-1), _f(5.0000001201e-1)
_EXP_LO, _EXP_HI = _f(-87.33654), _f(88.72283)
_ZERO, _HALF, _ONE = _f(0.0), _f(0.5), _f(1.0)
_INF = _f(np.inf)


@njit(inline="always", **_OPTS)
def _exp32(x):
    """exp(x) for float32, vectorisable (Cephes expf); exp(x < -87.3) = 0, exp(NaN) = NaN.

    Every value stays float32 (`np.floor` keeps float32, the exponent bits come from an int32),
    so LLVM vectorises it 8 wide with no float -> int64 conversion. Within 5 ulp of float64's
    exp on [-87, 88] and 1.5 ulp on [-20, 0], the softmax's range (z - max <= 0;
    tests/test_compile_kernels.py). Until 2026-12-04 the reduction ran in float64 (within
    2e-7 relative everywhere) and the softmax was ~2x slower; descent.compile's replay already
    used this form, so eager and replay now share one softmax.
    """
    xc = _EXP_HI if x > _EXP_HI else x
    xc = _EXP_LO if xc < _EXP_LO else xc
    n = np.floor(xc * _LOG2E + _HALF)  # float32
    r = xc - n * _LN2_HI - n * _LN2_LO
    p = ((((_E0 * r + _E1) * r + _E2) * r + _E3) * r + _E4) * r + _E5
    y = (p * r * r + r + _ONE) * _f32_from_bits((np.int32(n) + 127) << 23)
    y = _INF if x > _EXP_HI else y
    y = _ZERO if x < _EXP_LO else y
    return y if x == x else x


# ---------------------------------------------------------------------------------------------
# GELU (exact), float64: libm's erf and exp. The float32 loops live in `_cpu_fast` (shared with
# descent.compile's replay): all-float32 and accurate to a few ulp.

_ISQ2 = _f(1.0 / math.sqrt(2.0))
_ISQ2PI = _f(1.0 / math.sqrt(2.0 * math.pi))
_ISQ2_64 = 1.0 / math.sqrt(2.0)
_ISQ2PI_64 = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True, nogil=True, error_model="numpy")  # float64: strict IEEE, libm erf/exp
def gelu_fwd64(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = v * (0.5 * (1.0 + math.erf(v * _ISQ2_64)))


@njit(cache=True, nogil=True, error_model="numpy")
def gelu_bwd64(x, gy, out):
    for i in range(x.size):
        v = x[i]
        cdf = 0.5 * (1.0 + math.erf(v * _ISQ2_64))
        out[i] = gy[i] * (cdf + v * (math.exp(-0.5 * v * v) * _ISQ2PI_64))


# ---------------------------------------------------------------------------------------------
# ReLU's backward from its output: gy where y > 0 (or NaN), else +0. No arithmetic, so the
# same bits as NumPy's where(y <= 0, 0, gy), which takes ~100 us on 32k float32 values (the
# Python 0 goes through a broadcast path) against ~5 us here.


@njit(**_OPTS)
def relu_bwd(y, gy, out):
    for i in range(y.size):
        out[i] = gy[i]
        if y[i] <= 0:
            out[i] = 0


# ---------------------------------------------------------------------------------------------
# RMS norm over the last axis (no weight), float32, the same bits as the NumPy path
# (ops/norm.py): x * x rounded, NumPy's pairwise sum of each row (rows of at most 128: eight
# accumulators, combined ((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7)), then the tail in order), the
# mean as float64 sum / n rounded to float32 (np.mean divides by an intp count), + eps, sqrt,
# 1 / it; strict IEEE (no fast-math: no contraction). Works on 4-D views of any strides
# (leading axes of 1 added by the caller), so y and gx keep NumPy's memory layouts.


@njit(inline="always", cache=True, nogil=True, error_model="numpy")
def _pairwise_sum32(buf, n):
    if n < 8:
        res = _ZERO
        for i in range(n):
            res += buf[i]
        return res
    r0, r1, r2, r3 = buf[0], buf[1], buf[2], buf[3]
    r4, r5, r6, r7 = buf[4], buf[5], buf[6], buf[7]
    i = 8
    m = n - n % 8
    while i < m:
        r0 += buf[i]
        r1 += buf[i + 1]
        r2 += buf[i + 2]
        r3 += buf[i + 3]
        r4 += buf[i + 4]
        r5 += buf[i + 5]
        r6 += buf[i + 6]
        r7 += buf[i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += buf[i]
        i += 1
    return res


# The 4-D views are typed 'A' (any strides) whenever the rows are not visited in C order (a head
# split's x, or its gradient when it arrives in another layout), and LLVM then reads and writes
# them with AVX-512 gathers and scatters. So each kernel holds its loop twice: once behind a
# test that the rows' values are contiguous (strides[3] == 4, a constant there for LLVM, which
# then loads vectors), once for anything else (a row of one value may have any stride). The
# same bits; rms_norm_bwd32 on a (12, 4, 64, 32) head split with its gradient in (B, H, T, D)
# order 117 -> 57 us, rms_norm_fwd32 on rows of a wider array 114 -> 44 us (one core). Comparing
# with `a.itemsize` instead of 4 gains nothing: a field of the array, not a constant.


@njit(cache=True, nogil=True, error_model="numpy")
def rms_norm_fwd32(x, y, rstd, eps):
    """y = x * rstd, rstd = 1 / sqrt(mean(x * x) + eps) per row; x, y (A, B, C, n), n <= 128."""
    if x.strides[3] == 4 and y.strides[3] == 4:
        _rms_norm_fwd_rows(x, y, rstd, eps)
    else:
        _rms_norm_fwd_rows(x, y, rstd, eps)


@njit(inline="always", cache=True, nogil=True, error_model="numpy")
def _rms_norm_fwd_rows(x, y, rstd, eps):
    d0, d1, d2, n = x.shape
    buf = np.empty(n, np.float32)
    nd = np.float64(n)
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                for j in range(n):
                    v = x[a, b, c, j]
                    buf[j] = v * v
                m = np.float32(np.float64(_pairwise_sum32(buf, n)) / nd)
                r = _ONE / np.sqrt(m + eps)
                rstd[a, b, c, 0] = r
                for j in range(n):
                    y[a, b, c, j] = x[a, b, c, j] * r


@njit(cache=True, nogil=True, error_model="numpy")
def rms_norm_bwd32(x, rstd, gy, gx):
    """gx = (gy - xhat * mean(gy * xhat)) * rstd, xhat = x * rstd, per row."""
    if x.strides[3] == 4 and gy.strides[3] == 4 and gx.strides[3] == 4:
        _rms_norm_bwd_rows(x, rstd, gy, gx)
    else:
        _rms_norm_bwd_rows(x, rstd, gy, gx)


@njit(inline="always", cache=True, nogil=True, error_model="numpy")
def _rms_norm_bwd_rows(x, rstd, gy, gx):
    d0, d1, d2, n = x.shape
    buf = np.empty(n, np.float32)
    nd = np.float64(n)
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                r = rstd[a, b, c, 0]
                for j in range(n):
                    buf[j] = gy[a, b, c, j] * (x[a, b, c, j] * r)
                mm = np.float32(np.float64(_pairwise_sum32(buf, n)) / nd)
                for j in range(n):
                    gx[a, b, c, j] = (gy[a, b, c, j] - (x[a, b, c, j] * r) * mm) * r


@njit(cache=True, nogil=True, error_model="numpy")
def rms_norm_fwd_w32(x, w, y, rstd, eps):
    """y = (x * rstd) * w per row of a C-contiguous (M, n) x, n <= 128: the NumPy path's bits
    (x * rstd, then *= w)."""
    m_rows, n = x.shape
    buf = np.empty(n, np.float32)
    nd = np.float64(n)
    for i in range(m_rows):
        for j in range(n):
            v = x[i, j]
            buf[j] = v * v
        m = np.float32(np.float64(_pairwise_sum32(buf, n)) / nd)
        r = _ONE / np.sqrt(m + eps)
        rstd[i, 0] = r
        for j in range(n):
            y[i, j] = (x[i, j] * r) * w[j]


@njit(cache=True, nogil=True, error_model="numpy")
def rms_norm_bwd_w32(x, w, rstd, gy, gx, gw, want_gx):
    """Weighted RMS norm backward per row, the NumPy path's bits: gh = gy * w, xhat = x * rstd,
    gx = (gh - xhat * mean(gh * xhat)) * rstd; gw += gy * xhat row after row (NumPy's order for
    a sum over the leading axes of a C-contiguous array). gw must start at zero."""
    m_rows, n = x.shape
    buf = np.empty(n, np.float32)
    nd = np.float64(n)
    for i in range(m_rows):
        r = rstd[i, 0]
        if want_gx:
            for j in range(n):
                buf[j] = (gy[i, j] * w[j]) * (x[i, j] * r)
            mm = np.float32(np.float64(_pairwise_sum32(buf, n)) / nd)
            for j in range(n):
                gx[i, j] = (gy[i, j] * w[j] - (x[i, j] * r) * mm) * r
        for j in range(n):
            gw[j] += gy[i, j] * (x[i, j] * r)


@njit(cache=True, nogil=True, error_model="numpy")
def rope4(x, cos, sin, y):
    """Rotary embedding of x (A, B, T, D) (any strides) into y: channel pairs (j, j + D/2)
    rotated by cos/sin (T, D/2). The NumPy path's bits: x1 c - x2 s and x1 s + x2 c, each
    product rounded (no fused multiply-add).

    One copy of the loop per case, so that LLVM sees the unit stride of the usual layouts
    as a constant (rows of a head split are contiguous, the view is not) and loads vectors
    instead of gathering: float32 (12, 4, 64, 32) head split 60.6 -> 13.1 us (one core)."""
    sx, sy, sc, ss = x.strides[3], y.strides[3], cos.strides[1], sin.strides[1]
    if sx == 4 and sy == 4 and sc == 4 and ss == 4:  # float32 rows
        _rope_rows(x, cos, sin, y)
    elif sx == 8 and sy == 8 and sc == 8 and ss == 8:  # float64 rows
        _rope_rows(x, cos, sin, y)
    else:
        _rope_rows(x, cos, sin, y)


@njit(inline="always", cache=True, nogil=True, error_model="numpy")
def _rope_rows(x, cos, sin, y):
    d0, d1, t_n, d = x.shape
    half = d // 2
    for a in range(d0):
        for b in range(d1):
            for t in range(t_n):
                for j in range(half):
                    x1 = x[a, b, t, j]
                    x2 = x[a, b, t, j + half]
                    c = cos[t, j]
                    s = sin[t, j]
                    y[a, b, t, j] = x1 * c - x2 * s
                    y[a, b, t, j + half] = x1 * s + x2 * c


# ---------------------------------------------------------------------------------------------
# Softmax over the last axis of a (R, S) row view, float32, with attention's causal mask: row r
# is query r % n_q and sees keys 0..r % n_q only (the masked columns are never exponentiated).
#
# The row maxima come first, for all rows, from a loop of llvm.maxnum (`_maxnum32`), which LLVM
# vectorises: a compare-and-select max stays scalar (NaN ordering), even compiled with 'nnan'
# (how it was until session 28: the (64, 512) softmax's forward 46 -> 20 us with maxnum, one
# core of the Intel host; earlier a quarter of the baby-gpt step's causal kernel). A NaN in a
# row is skipped by the maximum, but its own exponential is NaN, so the row's sum and every
# output of that row are NaN (PyTorch's result); +inf likewise (inf - inf).
# max_j(scale * x_j) is exact: rounding is monotone, so no value changes (tested bitwise).
#
# Causal rows (attention's: 1..T long) run in explicit 16-lane chunks instead (`_cpu_simd`,
# session 30): LLVM's vector loop takes 64 values a pass, so their exponentials ran in its
# scalar remainder (3072 baby-gpt rows of 64: 124-132 -> 55-60 us, one core of the Intel host).
# Their sum is lane k over its chunks, then the lanes by halves (tests/test_softmax_causal_s30.py
# pins it); the unmasked rows keep LLVM's loops, whose sums it orders (fast-math reassoc).


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _row_max32(x, scale, n_q, causal, out):
    """out[r] = max over row r's visible columns of scale * x[r, :] (-inf for an empty row)."""
    n_rows, n_cols = x.shape
    for r in range(n_rows):
        lim = min(n_cols, r % n_q + 1) if causal else n_cols
        m = -_INF
        for j in range(lim):
            m = _maxnum32(m, scale * x[r, j])
        out[r] = m


@njit(inline="always", **_OPTS)
def _all_neginf(x, r, lim, scale):
    """Whether scale * x[r, j] is -inf for every j < lim (a row that attends to nothing)."""
    for j in range(lim):
        if scale * x[r, j] != -_INF:
            return False
    return True


@njit(**_OPTS)
def softmax_fwd32(x, scale, n_q, causal, log, safe=False):
    """In place: x (R, S) becomes softmax(scale * x) (or log-softmax) row by row.

    safe (attention, softmax only): a row whose scaled scores are all -inf becomes 0, as
    PyTorch's _safe_softmax, instead of nan (exp(-inf - -inf)), as F.softmax keeps. Checked
    only where the row's maximum is -inf (the maxima skip a NaN, so the whole row is read once
    more there): one compare per row on the other rows. Every caller in descent passes it (one
    compiled specialisation for F.softmax and attention); omitted, it is False.

    One array argument: an output that aliased the input would fail LLVM's runtime alias
    check and run the scalar loop (3x slower, measured). The masked columns are filled by a
    slice assignment: a `for j in range(lim, n_cols)` loop kept numba's negative-index
    wrap-around (LLVM cannot prove lim >= 0) and became AVX-512 scatters, 20-25% of the
    causal kernel (3072x64 scores, one core: 169 -> 132 us, log 186 -> 137 us; same bits).
    """
    n_rows, n_cols = x.shape
    mx = np.empty(n_rows, np.float32)
    if causal and (x.strides[1] == 4 or n_cols == 1):
        _causal_rows16(x, scale, n_q, log, safe, mx)
        return
    _row_max32(x, scale, n_q, causal, mx)
    for r in range(n_rows):
        lim = min(n_cols, r % n_q + 1) if causal else n_cols
        m = mx[r]
        if safe and m == -_INF and _all_neginf(x, r, lim, scale):
            x[r, :] = _ZERO
            continue
        s = _ZERO
        if log:
            for j in range(lim):
                z = scale * x[r, j] - m
                x[r, j] = z
                s += _exp32(z)
            ls = math.log(s)
            for j in range(lim):
                x[r, j] -= ls  # (z - m) - log s, not z - (m + log s): keeps log s exact
            if lim < n_cols:
                x[r, lim:] = -_INF
        else:
            for j in range(lim):
                e = _exp32(scale * x[r, j] - m)
                x[r, j] = e
                s += e
            inv = _ONE / s
            for j in range(lim):
                x[r, j] *= inv
            if lim < n_cols:
                x[r, lim:] = _ZERO


@njit(inline="always", **_OPTS)
def _causal_rows16(x, scale, n_q, log, safe, t):
    """softmax_fwd32's causal rows in 16-lane chunks (`_cpu_simd`; t: (R,) scratch). Three
    passes over all the rows, each row independent of the others within a pass (so the core
    overlaps consecutive rows): the maxima, the exponentials and their sums, the scaling. The
    safe rows of -inf scores are found between the first two (a compare loop over the maxima)
    and zeroed after the third, so the two hot passes stay as they were."""
    n_rows, n_cols = x.shape
    for r in range(n_rows):
        t[r] = _simd.row_max(x, r, min(n_cols, r % n_q + 1), scale)
    dead = np.empty(0, np.int64)
    if safe:
        n_dead = 0
        for r in range(n_rows):
            n_dead += t[r] == -_INF
        if n_dead:
            dead = np.empty(n_dead, np.int64)
            n_dead = 0
            for r in range(n_rows):
                if t[r] == -_INF and _all_neginf(x, r, min(n_cols, r % n_q + 1), scale):
                    dead[n_dead] = r
                    n_dead += 1
            dead = dead[:n_dead]
    for r in range(n_rows):
        lim = min(n_cols, r % n_q + 1)
        if log:
            t[r] = _simd.row_z_sum(x, r, lim, scale, t[r])
        else:
            t[r] = _simd.row_exp_sum(x, r, lim, scale, t[r])
    for r in range(n_rows):
        lim = min(n_cols, r % n_q + 1)
        if log:
            _simd.row_shift(x, r, lim, np.float32(math.log(t[r])))
            if lim < n_cols:
                x[r, lim:] = -_INF
        else:
            _simd.row_scale(x, r, lim, _ONE / t[r])
            if lim < n_cols:
                x[r, lim:] = _ZERO
    for r in dead:
        x[r, :] = _ZERO


@njit(**_OPTS)
def softmax_bwd32(y, g, out, scale, log):
    """out = scale * y (g - sum(g y)) (log: scale * (g - exp(y) sum(g))); out may be g."""
    n_rows, n_cols = y.shape
    for r in range(n_rows):
        acc = _ZERO
        if log:
            for j in range(n_cols):
                acc += g[r, j]
            for j in range(n_cols):
                out[r, j] = scale * (g[r, j] - _exp32(y[r, j]) * acc)
        else:
            for j in range(n_cols):
                acc += g[r, j] * y[r, j]
            for j in range(n_cols):
                out[r, j] = scale * (y[r, j] * (g[r, j] - acc))


@njit(**_OPTS)
def softmax_bwd32_inplace(y, g, scale, log):
    """softmax_bwd32 with out = g (one array argument: no aliasing check fails)."""
    n_rows, n_cols = y.shape
    for r in range(n_rows):
        acc = _ZERO
        if log:
            for j in range(n_cols):
                acc += g[r, j]
            for j in range(n_cols):
                g[r, j] = scale * (g[r, j] - _exp32(y[r, j]) * acc)
        else:
            for j in range(n_cols):
                acc += g[r, j] * y[r, j]
            for j in range(n_cols):
                g[r, j] = scale * (y[r, j] * (g[r, j] - acc))


# ---------------------------------------------------------------------------------------------
# Layer norm over the rows of (M, D), float32 (Ba et al., 2016), statistics kept as (M,) arrays:
#   forward   y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps)  (biased variance)
#   backward  xhat = (x - mean) rstd,  gh = gy w,
#             gx = rstd (gh - mean(gh) - xhat mean(gh xhat)),  gw = sum_rows gy xhat,  gb = sum gy
# Two passes over each row for the statistics (mean, then the centred sum of squares: no
# E[x^2] - E[x]^2 cancellation), one for the output.


@njit(**_OPTS)
def layer_norm_fwd32(x, w, b, y, mean, rstd, eps, has_w, has_b, r0, r1):
    """Rows [r0, r1) of y, mean and rstd (each row alone: any split of the rows gives the whole
    call's bits; kernels.cpu.layer_norm_rows_forward)."""
    d = x.shape[1]
    inv_d = _ONE / _f(d)
    for r in range(r0, r1):
        s = _ZERO
        for j in range(d):
            s += x[r, j]
        mu = s * inv_d
        q = _ZERO
        for j in range(d):
            c = x[r, j] - mu
            q += c * c
        rs = _ONE / math.sqrt(q * inv_d + eps)
        mean[r] = mu
        rstd[r] = rs
        for j in range(d):
            h = (x[r, j] - mu) * rs
            if has_w:
                h = h * w[j]
            if has_b:
                h = h + b[j]
            y[r, j] = h


@njit(**_OPTS)
def layer_norm_bwd32(x, w, gy, mean, rstd, gx, gw, gb, has_w, need_x, need_wb, r0, r1):
    """Rows [r0, r1) of gx (M, D) when need_x; gw, gb (D,) float32 accumulators (zeroed by the
    caller) get those rows' gy xhat and gy added row after row.

    With need_x the weight and bias gradients are accumulated in the pass that takes the row
    sums (one pass over gy and x fewer: (768, 128) with w, b 33.7 -> 28.3 us, one core)."""
    d = x.shape[1]
    inv_d = _ONE / _f(d)
    for r in range(r0, r1):
        mu, rs = mean[r], rstd[r]
        if need_x:
            m1 = _ZERO
            m2 = _ZERO
            for j in range(d):
                g = gy[r, j]
                xh = (x[r, j] - mu) * rs
                if need_wb:
                    gw[j] += g * xh
                    gb[j] += g
                gh = g * w[j] if has_w else g
                m1 += gh
                m2 += gh * xh
            m1 *= inv_d
            m2 *= inv_d
            for j in range(d):
                gh = gy[r, j] * w[j] if has_w else gy[r, j]
                gx[r, j] = rs * (gh - m1 - ((x[r, j] - mu) * rs) * m2)
        elif need_wb:
            for j in range(d):
                g = gy[r, j]
                gw[j] += g * ((x[r, j] - mu) * rs)
                gb[j] += g


@njit(**_OPTS)
def layer_norm_bwd32_blocks(x, w, gy, mean, rstd, gx, gw, gb, has_w, need_x, need_wb, r0, r1,
                            rows):  # fmt: skip
    """`layer_norm_bwd32` over rows [r0, r1) with the sums of block k (rows [k rows, (k + 1)
    rows)) into gw[k], gb[k] ((blocks, D) float32 accumulators, zeroed by the caller);
    `layer_norm_block_sums` adds the blocks. (kernels.cpu.layer_norm_rows_backward: every call
    of a size runs this one loop, whole or in parts.)"""
    start = r0
    while start < r1:
        k = start // rows
        stop = min(r1, (k + 1) * rows)
        layer_norm_bwd32(x, w, gy, mean, rstd, gx, gw[k], gb[k], has_w, need_x, need_wb, start,
                         stop)  # fmt: skip
        start = stop


@njit(cache=True, nogil=True, error_model="numpy")  # no fastmath: the blocks in their order
def layer_norm_block_sums(aw, ab, gw, gb):
    """gw = aw[0] + aw[1] + ... and gb = ab[0] + ab[1] + ..., left to right."""
    d = gw.shape[0]
    for j in range(d):
        gw[j] = aw[0, j]
        gb[j] = ab[0, j]
    for k in range(1, aw.shape[0]):
        for j in range(d):
            gw[j] += aw[k, j]
            gb[j] += ab[k, j]


# ---------------------------------------------------------------------------------------------
# erf and erfc, float64: the C library's (what Python's math.erf/erfc call), one loop instead of
# a Python call per element (descent.ops.special: erfc, erfinv's Newton steps).


@njit(cache=True, nogil=True, error_model="numpy")
def erf64(x, out):
    for i in range(x.size):
        out[i] = math.erf(x[i])


@njit(cache=True, nogil=True, error_model="numpy")
def erfc64(x, out):
    for i in range(x.size):
        out[i] = math.erfc(x[i])


# ---------------------------------------------------------------------------------------------
# Softmax cross-entropy of float32 logits x (M, C) against class indices: the CUDA kernels'
# contract (`kernels/cuda.py` ce_fwd / ce_bwd): per-row losses and (max, log-sum-exp) statistics
# forward, the gradient rebuilt from them backward, so no (M, C) probabilities are kept. The row
# sums run in float64 (exact enough for any vocabulary), the exponentials in float32 (_exp32).
# Without 'reassoc': it would turn (x - m) - ls into x - (m + ls) and ls - (x_t - m) into
# (ls + m) - x_t, which lose every digit of ls next to logits of 1e4 (measured: 2e-4 relative).
_CE_OPTS = dict(cache=True, nogil=True, error_model="numpy", fastmath=_FAST - {"reassoc"})


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc"})
def _sum64(e, n):
    """sum(e[:n]) of float32 values, accumulated in float64. Its own function so that only
    this loop has 'reassoc': LLVM then splits it into vector lanes of partial sums (4 chains
    by hand before session 28: 64 rows of 512 classes' sums ~3x slower). The order of the
    additions is the compiled loop's (fixed for a machine's vector width); in float64 it moves
    the float32 log-sum-exp of a row by at most one rounding, rarely at all."""
    s = 0.0
    for j in range(n):
        s += np.float64(e[j])
    return s


@njit(**_CE_OPTS)
def ce_fwd32(x, tgt, loss, stats, ignore_index, smoothing):
    n_rows, n_cls = x.shape
    e = np.empty(n_cls, np.float32)  # a row's exponentials: that loop has no reduction, so
    for r in range(n_rows):  # it vectorises; the sums run in float64 (`_sum64`)
        m = -_INF
        for j in range(n_cls):
            m = _maxnum32(m, x[r, j])  # vectorised (a NaN is skipped: its exp makes the sum NaN)
        for j in range(n_cls):
            e[j] = _exp32(x[r, j] - m)
        ls = np.float32(math.log(_sum64(e, n_cls)))  # (float64, vectorised: `_sum64`)
        stats[r, 0] = m
        stats[r, 1] = ls
        t = tgt[r]
        val = _ZERO
        if t != ignore_index:
            val = (_ONE - smoothing) * (ls - (x[r, t] - m))
            if smoothing != _ZERO:
                for j in range(n_cls):
                    e[j] = x[r, j] - m  # (e is free again: ls is taken)
                val += smoothing * (ls - np.float32(_sum64(e, n_cls) / n_cls))
        loss[r] = val


@njit(**_CE_OPTS)
def ce_bwd32(x, tgt, stats, g, g_stride, gx, ignore_index, smoothing):
    n_rows, n_cls = x.shape
    off = smoothing / np.float32(n_cls)
    hit = _ONE - smoothing
    for r in range(n_rows):
        t = tgt[r]
        if t == ignore_index:
            for j in range(n_cls):
                gx[r, j] = _ZERO
            continue
        gi = g[r * g_stride]
        m = stats[r, 0]
        ls = stats[r, 1]
        for j in range(n_cls):
            p = _exp32((x[r, j] - m) - ls)
            d = p - off - (hit if j == t else _ZERO)
            gx[r, j] = gi * d


# ---------------------------------------------------------------------------------------------
# Adam / AdamW over a flat float32 buffer: the exact operations of `Adam._update`'s NumPy path
# (PyTorch's order, every scalar rounded to float32 first, as NumPy does), in one pass instead
# of about ten. No fast-math: IEEE float32 arithmetic without contraction, so the result is
# bitwise the NumPy path's and the parity tests against torch.optim hold unchanged.
# numba types math.sqrt of a float32 as float32 (LLVM's sqrt.f32, correctly rounded), so with
# float32 scalars (the callers pass np.float32) the loop is float32 throughout and vectorised,
# 16 wide (vsqrtps/vdivps): 269k values in ~150 us, memory-bound. Python floats would give a
# float64 signature: everything in float64, half the speed and not the NumPy path's bits.


@njit(cache=True, nogil=True, error_model="numpy")
def adam32(p, g, m, v, maximize, wd_mode, decay, wd, wd_is_one, lerp_small, w, beta2,
           one_m_beta2, bc2, eps, alpha, alpha_is_one):  # fmt: skip
    # prange: a plain range here; descent.compile's every-core twin compiles this same loop
    # with parallel=True (compiler/fusion._adam_kernel)
    for i in prange(p.size):
        gi = g[i]
        pi = p[i]
        if maximize:
            gi = -gi
        if wd_mode == 1:  # AdamW: p *= 1 - lr wd
            pi = pi * decay
        elif wd_mode == 2:  # Adam: g += wd p
            gi = gi + (pi if wd_is_one else pi * wd)
        d = gi - m[i]  # lerp(m, g, 1 - beta1), PyTorch's two forms
        mi = m[i] + d * w if lerp_small else gi - d * w
        vi = v[i] * beta2 + (gi * gi) * one_m_beta2
        denom = math.sqrt(vi) / bc2 + eps
        t = mi / denom
        p[i] = pi + (t if alpha_is_one else t * alpha)
        m[i] = mi
        v[i] = vi
