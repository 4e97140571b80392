"""Array-level kernels of the special functions: float64 NumPy arrays in, float64 out (erfc and
erf element by element through the C library, lgamma, digamma, polygamma, erfinv); CuPy arrays
take cupyx's kernels instead (`_cupy_special`), and `_host` runs a kernel on any float dtype and
rounds the result once to it.

Split out of ops/special.py, whose Function classes call these (the methods and their sources
are described in that module's docstring); special.py re-exports every name here, so
`from .special import _lgamma64` keeps working. No Tensor and no graph here: NumPy only.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend

_TWO_OVER_SQRT_PI = 1.1283791670955126  # 2 / sqrt(pi)
_SQRT_PI_OVER_2 = 0.8862269254527580  # sqrt(pi) / 2


def _cupy_special(name: str, x, *args):
    import cupyx.scipy.special as sp  # only reached with CuPy arrays

    # Python numbers as arrays of x's dtype: cupyx's polygamma tests `n == 0` with cupy.where,
    # which refuses a Python bool.
    xp = backend.get_array_module(x)
    args = [a if hasattr(a, "dtype") else xp.asarray(a, dtype=x.dtype) for a in args]
    return getattr(sp, name)(*args, x)


_LIBM_KERNELS = {math.erf: "erf_float64", math.erfc: "erfc_float64"}


def _elementwise(fn, x: np.ndarray) -> np.ndarray:
    """A float -> float function of `math` over a float64 array (element by element): erf and
    erfc through numba's loop over the same C library calls (~100x faster, the same bits),
    anything else, or without the CPU kernels, one Python call per element."""
    k = backend.fused(_LIBM_KERNELS.get(fn, ""), x) if x.dtype == np.float64 else None
    if k is not None:
        return k(x)
    out = np.frompyfunc(fn, 1, 1)(x.ravel())
    return np.asarray(out, dtype=np.float64).reshape(x.shape)


# Bernoulli numbers B_2 .. B_16 (A&S Table 23.2), for the asymptotic series below.
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)


def _zeta_minus_one(n: int, m: int = 64) -> float:
    """zeta(n) - 1 for n >= 2: the terms 2..m-1 summed exactly (fsum) plus the Euler-Maclaurin
    tail from m (error below 1e-18 for m = 64)."""
    head = math.fsum(j ** -float(n) for j in range(2, m))
    tail = (m ** (1.0 - n) / (n - 1) + 0.5 * m**-n + n * m ** (-n - 1.0) / 12
            - n * (n + 1) * (n + 2) * m ** (-n - 3.0) / 720
            + n * (n + 1) * (n + 2) * (n + 3) * (n + 4) * m ** (-n - 5.0) / 30240)  # fmt: skip
    return head + tail


_EULER_GAMMA = 0.5772156649015329
# Taylor coefficients of S(z) = log Gamma(2 + z) = z (1 - gamma) + sum (-1)^n (zeta(n) - 1) z^n/n
# (A&S 6.1.33 plus log(1 + z)), highest first for np.polyval; |z| <= 0.5 needs 30 terms.
_LGAMMA_SERIES = tuple(
    [(-1) ** n * _zeta_minus_one(n) / n for n in range(32, 1, -1)] + [1 - _EULER_GAMMA, 0.0]
)
_HALF_LOG_2PI = 0.9189385332046728  # log(2 pi) / 2


def _lgamma_positive(x: np.ndarray) -> np.ndarray:
    """log Gamma(x) for x > 0 (float64), with its digits near the zeros at 1 and 2."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # (0, 2.5): S(z) about 2, log Gamma(1 + z) = S(z) - log1p(z), and
        # log Gamma(x) = log Gamma(1 + x) - log x below 0.5.
        z = np.where(x < 0.5, x, np.where(x < 1.5, x - 1.0, x - 2.0))
        small = np.polyval(_LGAMMA_SERIES, np.clip(z, -0.5, 0.5))
        small = np.where(x < 1.5, small - np.log1p(z), small)
        small = np.where(x < 0.5, small - np.log(x), small)
        # [2.5, 10): down to [1.5, 2.5) by log Gamma(x) = log((x-1)...(x-m)) + log Gamma(x-m)
        # (each x - k is exact, the product has m <= 8 factors).
        mid = (x >= 2.5) & (x < 10)
        m = np.where(mid, np.floor(x - 1.5), 0.0)
        prod = np.ones_like(x)
        for k in range(1, 9):
            prod = np.where(m >= k, prod * (x - k), prod)
        zm = np.clip(x - m - 2.0, -0.5, 0.5)
        middle = np.log(prod) + np.polyval(_LGAMMA_SERIES, zm)
        # [10, inf): Stirling's series (A&S 6.1.40), 8 terms (the next is below 1e-18).
        xs = np.where(x >= 10, x, 10.0)
        w = 1.0 / (xs * xs)
        series = 0.0
        for k in range(len(_BERNOULLI), 0, -1):
            series = series * w + _BERNOULLI[k - 1] / (2 * k * (2 * k - 1))
        large = (xs - 0.5) * np.log(xs) - xs + _HALF_LOG_2PI + series / xs
        return np.where(x < 2.5, small, np.where(x < 10, middle, large))


def _lgamma64(x: np.ndarray) -> np.ndarray:
    """log|Gamma(x)|, float64; +inf at the poles (0, -1, -2, ...) and at +-inf, as PyTorch."""
    x = np.asarray(x, dtype=np.float64)
    pole = (x <= 0) & (np.floor(x) == x)  # includes -inf
    neg = (x <= 0) & ~pole
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        pos = _lgamma_positive(np.where(x > 0, x, 1.0))
        # Reflection (A&S 6.1.17): log|Gamma(x)| = log(pi / |sin(pi x)|) - log Gamma(1 - x), the
        # sine of x minus its nearest integer (exact), so that pi x's rounding error never
        # meets a pole or a large |x|.
        xn = np.where(neg, x, -0.5)
        refl = np.log(np.pi / np.abs(np.sin(np.pi * (xn - np.round(xn))))) - _lgamma_positive(
            1.0 - xn
        )
    out = np.where(neg, refl, pos)
    out = np.where(x == np.inf, np.inf, np.where(np.isnan(x), x, out))
    return np.where(pole, np.inf, out)


def _digamma64(x: np.ndarray) -> np.ndarray:
    """psi(x) = d/dx log Gamma(x), float64. PyTorch's edges: psi(+-0) = -+inf, nan at the
    negative integers and -inf."""
    x = np.asarray(x, dtype=np.float64)
    pole = (x < 0) & (np.floor(x) == x)
    reflect = x < 0.5
    # Reflection (A&S 6.3.7): psi(x) = psi(1 - x) - pi / tan(pi x); tan has period pi, so the
    # fractional part of x keeps the argument small (and exact) for large negative x.
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = x - np.round(x)  # in [-0.5, 0.5], exact: pi * frac keeps its digits near poles
        shift = np.where(reflect, -np.pi / np.tan(np.pi * frac), 0.0)
        shift0 = shift
        z = np.where(reflect, 1.0 - x, x)
        # Recurrence (A&S 6.3.5) psi(z) = psi(z + 1) - 1/z until z >= 10: at most 10 steps.
        for _ in range(10):
            low = z < 10
            if not low.any():
                break
            shift = np.where(low, shift - 1.0 / z, shift)
            z = np.where(low, z + 1.0, z)
        # Asymptotic series (A&S 6.3.18): psi(z) ~ ln z - 1/(2z) - sum B_2k / (2k z^2k); at
        # z >= 10 the first omitted term is below 1e-17.
        w = 1.0 / (z * z)
        series = 0.0
        for k in range(len(_BERNOULLI), 0, -1):
            series = (series + _BERNOULLI[k - 1] / (2 * k)) * w
        out = np.log(z) - 0.5 / z - series + shift
        # Near the positive zero x0 the sum above cancels to its last digits: a Taylor series
        # in h = x - x0 (x0 split in two doubles so that h is exact to 1e-32) instead.
        z = np.where(reflect, 1.0 - x, x)
        h = (z - _DIGAMMA_ROOT[0]) - _DIGAMMA_ROOT[1]
        near = np.abs(h) < 0.2
        if near.any():
            root_series = np.polyval(_digamma_root_series(), np.where(near, h, 0.0))
            out = np.where(near, root_series + np.where(reflect, shift0, 0.0), out)
    out = np.where(pole, np.nan, out)
    return np.where(x == 0, np.copysign(np.inf, -x), out)


# The positive zero of digamma, 1.46163214496836234126..., as hi + lo doubles (from mpmath).
_DIGAMMA_ROOT = (1.4616321449683622, 9.549995429965697e-17)
_ROOT_SERIES: list = []


def _digamma_root_series() -> np.ndarray:
    """Taylor coefficients psi^(k)(x0) / k!, k = 20 .. 1 and 0 (highest first), computed once:
    at |h| < 0.2 the first omitted term is below 1e-17 of the sum."""
    if not _ROOT_SERIES:
        x0 = np.array([_DIGAMMA_ROOT[0]])
        coefs = [_polygamma64(k, x0)[0] / math.factorial(k) for k in range(20, 0, -1)]
        _ROOT_SERIES.append(np.array(coefs + [0.0]))
    return _ROOT_SERIES[0]


def _cot_derivative_poly(n: int) -> np.ndarray:
    """Coefficients (lowest first) of P_n with d^n/du^n cot(u) = P_n(cot u): P_0 = c and
    P_{k+1}(c) = -(1 + c^2) P_k'(c)."""
    p = np.array([0.0, 1.0])
    for _ in range(n):
        p = -np.polynomial.polynomial.polymul([1.0, 0.0, 1.0], np.polynomial.polynomial.polyder(p))
    return p


def _polygamma64(n: int, x: np.ndarray) -> np.ndarray:
    """psi^(n)(x) for n >= 1, float64: (-1)^(n+1) n! zeta(n + 1, x) (A&S 6.4.10), the Hurwitz
    zeta by recurrence to z >= 10 + n and its Euler-Maclaurin tail; reflection for x < 0.5
    (A&S 6.4.7 differentiated: psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi d^n/dx^n cot(pi x))."""
    x = np.asarray(x, dtype=np.float64)
    s = n + 1
    reflect = x < 0.5
    z = np.where(reflect, 1.0 - x, x)
    acc = np.zeros_like(z)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        big = 10.0 + n
        for _ in range(int(big) + 1):
            low = z < big
            if not low.any():
                break
            acc = np.where(low, acc + z**-s, acc)
            z = np.where(low, z + 1.0, z)
        # zeta(s, z) ~ z^(1-s)/(s-1) + z^-s/2 + sum_j B_2j/(2j)! (s)_(2j-1) z^(-s-2j+1).
        tail = z ** (1.0 - s) / (s - 1) + 0.5 * z**-s
        rising, fact, zp = float(s), 2.0, z ** (-s - 1.0)
        for j, b in enumerate(_BERNOULLI, start=1):
            tail = tail + (b / fact * rising) * zp
            rising *= (s + 2 * j - 1) * (s + 2 * j)
            fact *= (2 * j + 1) * (2 * j + 2)
            zp = zp / (z * z)
        out = (-1.0) ** (n + 1) * math.factorial(n) * (acc + tail)
        if reflect.any():
            frac = x - np.round(x)  # exact, in [-0.5, 0.5] (cot has period 1 in x)
            cot = 1.0 / np.tan(np.pi * frac)
            dcot = np.pi ** (n + 1) * np.polynomial.polynomial.polyval(cot, _cot_derivative_poly(n))
            out = np.where(reflect, (-1.0) ** n * out - dcot, out)
            # 0 < |x| < 1e-100 (float64 subnormals: cot overflows, inf - inf): the pole term
            # (-1)^(n+1) n! / x^(n+1) alone, the rest below 1e-200 of it (inf as PyTorch's)
            tiny = (np.abs(x) < 1e-100) & (x != 0)
            out = np.where(tiny, (-1.0) ** (n + 1) * math.factorial(n) * x ** -(n + 1.0), out)
    # PyTorch's edges: (-1)^(n+1) inf at the poles 0, -1, ... (its Hurwitz zeta is +inf there),
    # nan at -inf, and nan at +inf for n >= 2 (trigamma gives 0 there).
    pole = (x <= 0) & (np.floor(x) == x) & (x > -np.inf)
    out = np.where(pole, np.inf if n % 2 else -np.inf, out)
    return np.where((x == -np.inf) | ((x == np.inf) & (n >= 2)), np.nan, out)


# Giles (2011), single-precision erfinv: w = -log((1 - y)(1 + y)), a polynomial in w - 2.5 for
# w < 5 (the centre) and in sqrt(w) - 3 beyond (the tails); coefficients highest first.
_GILES_CENTRE = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                 -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)  # fmt: skip
_GILES_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
               -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)  # fmt: skip


def _erfinv64(y: np.ndarray) -> np.ndarray:
    """erfinv(y), float64: +-inf at +-1, nan beyond."""
    y = np.asarray(y, dtype=np.float64)
    a = np.abs(y)
    inside = a < 1
    ai = np.where(inside, a, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        w = -np.log((1.0 - ai) * (1.0 + ai))
        centre = w < 5.0
        pc = np.polyval(_GILES_CENTRE, w - 2.5)
        pt = np.polyval(_GILES_TAIL, np.sqrt(np.where(centre, 5.0, w)) - 3.0)
        r = np.where(centre, pc, pt) * ai  # |erfinv(y)| to about 1e-7 relative
        # Newton steps: on erf(r) - a for a <= 0.5 (two steps take 1e-7 to float64's rounding),
        # and on log erfc(r) - log(1 - a) beyond (1 - a exact there; log erfc is nearly the
        # parabola -r^2, so Newton converges from Giles' estimate even where that estimate,
        # fitted for float32's range 1 - a >= 6e-8, is off by 7% at 1 - a = 1e-16).
        # Each step runs on its subset only (erf and erfc are element-by-element calls): two
        # steps everywhere, three more where 1 - a < 1e-7, beyond Giles' fitted range.
        r = r.ravel()
        af = ai.ravel()
        centre_idx = np.flatnonzero((af > 0) & (af <= 0.5))
        tail_idx = np.flatnonzero(af > 0.5)
        far_idx = np.flatnonzero(af > 1 - 1e-7)
        for idx, steps, tail in ((centre_idx, 2, False), (tail_idx, 2, True), (far_idx, 3, True)):
            for _ in range(steps if idx.size else 0):
                rs, ys = r[idx], af[idx]
                slope = _TWO_OVER_SQRT_PI * np.exp(-rs * rs)
                if tail:
                    c = _elementwise(math.erfc, rs)
                    r[idx] = rs + (np.log(c) - np.log(1.0 - ys)) * (c / slope)
                else:
                    r[idx] = rs - (_elementwise(math.erf, rs) - ys) / slope
        r = r.reshape(ai.shape)
    out = np.where(inside, r, np.where(a == 1, np.inf, np.nan))
    return np.copysign(out, y)  # erfinv(-0) = -0, and nan keeps nan


def _host(kernel, cupy_name: str, x, *args):
    """Run a float64 kernel on `x` (any float dtype) and round the result to x's dtype."""
    if backend.is_cupy_array(x):
        return _cupy_special(cupy_name, x, *args)
    y = kernel(*args, x.astype(np.float64, copy=False))
    return np.asarray(y, dtype=x.dtype)
