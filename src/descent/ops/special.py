"""Special functions (erfc, erfinv, lgamma, digamma, polygamma) and PyTorch's remaining
elementwise helpers: nan-ignoring reductions (nansum, nanmean), fmax/fmin, sgn, signbit,
positive, sinc, heaviside, ldexp, float_power.

The special functions are one node each (forward on arrays, backward next to it). NumPy has none
of them and SciPy is not a dependency, so the values are computed here, in float64 whatever the
input dtype, then rounded once to that dtype (float32 in, float32 out: correctly rounded up to
the float64 error, within an ulp of PyTorch's float32 kernels):

* erfc, lgamma: the C library's `erfc` / `lgamma` (Python's `math`, accurate to an ulp or two
  in float64), element by element; erfc is never 1 - erf, so its tail keeps its digits.
* digamma, polygamma: the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 10, then the
  asymptotic (Stirling) series; reflection for x < 0.5 (Abramowitz & Stegun 6.3.7, 6.4.7, 6.4.11).
* erfinv: Giles' single-precision approximation ("Approximating the erfinv function", GPU
  Computing Gems, 2011) polished by two Newton steps on erf, or on erfc when |y| > 0.5 (where
  1 - |y| is exact and erfc has the digits that erf has lost).

The elementwise helpers are compositions of differentiable ops (no Function of their own), which
gives PyTorch's gradient conventions: nansum's gradient is 0 at nan entries (a `where`), fmax and
fmin route the gradient to the chosen operand (the first one on ties). sinc is one node (Sinc),
its gradient in PyTorch's form (0 at 0, no cancellation at tiny x).
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .. import backend
from ..autograd import ZERO_GRAD, Function
from ..errors import DescentError, DtypeError
from ..opmath import HALF, in_float32
from ..tensor import Tensor
from ._common import apply_binary, as_tensor, check_broadcast, is_scalar, result_type
from .arithmetic import div, mul, pow
from .comparison import isnan
from .complex import ComplexSgn
from .elementwise import cast, sign, sin, where
from .math import _floating
from .reduce import sum as _sum

_TWO_OVER_SQRT_PI = 1.1283791670955126  # 2 / sqrt(pi)
_SQRT_PI_OVER_2 = 0.8862269254527580  # sqrt(pi) / 2

# ---------------------------------------------------------------------------------------------
# Array-level kernels (float64 NumPy arrays in, float64 out). CuPy arrays take cupyx's kernels.


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


# ---------------------------------------------------------------------------------------------
# The Function classes


class Erfc(Function):
    """d/dx erfc(x) = -2/sqrt(pi) exp(-x^2)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        if backend.is_cupy_array(x):
            return _cupy_special("erfc", x)
        return np.asarray(_elementwise(math.erfc, x.astype(np.float64, copy=False)), x.dtype)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        e = ops.exp(-(x * x))
        if not ops.is_graph and x.dtype == HALF:  # the constant kept in float32 (as erf's)
            return gy * in_float32(operator.mul, e, -_TWO_OVER_SQRT_PI)
        return gy * (e * -_TWO_OVER_SQRT_PI)


class Erfinv(Function):
    """d/dy erfinv(y) = sqrt(pi)/2 exp(erfinv(y)^2) (reuses the output; inf at +-1)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_output = True

    def forward(self, x):
        return _host(_erfinv64, "erfinv", x)

    def backward(self, gy, ops):
        r = self.output(ops)
        with np.errstate(over="ignore"):
            return gy * (ops.exp(r * r) * _SQRT_PI_OVER_2)


class Lgamma(Function):
    """d/dx log|Gamma(x)| = digamma(x)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return _host(_lgamma64, "gammaln", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return gy * (digamma(x) if ops.is_graph else _host(_digamma64, "digamma", x))


class Digamma(Function):
    """d/dx digamma(x) = polygamma(1, x) (trigamma)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return _host(_digamma64, "digamma", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if ops.is_graph:
            return gy * polygamma(1, x)
        return gy * _host(_polygamma64, "polygamma", x, 1)


class Polygamma(Function):
    """d/dx polygamma(n, x) = polygamma(n + 1, x)."""

    __slots__ = ("n",)
    save_inputs = True

    def forward(self, x):
        return _host(_polygamma64, "polygamma", x, self.n)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if ops.is_graph:
            return gy * polygamma(self.n + 1, x)
        return gy * _host(_polygamma64, "polygamma", x, self.n + 1)


def erfc(input) -> Tensor:
    """The complementary error function 1 - erf(x), accurate in the tail (erfc(10) = 2.1e-45
    in float64, not 0). Integers compute in the default float dtype."""
    return Erfc.apply(_floating(input))


def erfinv(input) -> Tensor:
    """The inverse error function on [-1, 1] (+-inf at +-1, nan outside)."""
    return Erfinv.apply(_floating(input))


def lgamma(input) -> Tensor:
    """log |Gamma(x)| (+inf at 0, -1, -2, ... and at +-inf)."""
    return Lgamma.apply(_floating(input))


def digamma(input) -> Tensor:
    """psi(x) = Gamma'(x) / Gamma(x) (-inf at +0, +inf at -0, nan at negative integers)."""
    return Digamma.apply(_floating(input))


def polygamma(n: int, input) -> Tensor:
    """The n-th derivative of digamma (torch.polygamma(n, input)); n = 0 is digamma."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer, got {n!r}")
    if n == 0:
        return digamma(input)
    return Polygamma.apply(_floating(input), n=int(n))


class Logit(Function):
    """log(z / (1 - z)), z = x clamped to [eps, 1 - eps] when eps is given: d/dx = 1 / (x (1 - x))
    inside; PyTorch's edges: nan outside [0, 1] without eps, 0 outside [eps, 1 - eps] (and at nan)
    with it."""

    __slots__ = ("eps",)
    save_inputs = True

    def forward(self, x):
        xp = backend.get_array_module(x)
        z = x if self.eps is None else xp.clip(x, self.eps, 1 - self.eps).astype(x.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.log(z / (1 - z))

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        with np.errstate(divide="ignore", invalid="ignore"):
            # PyTorch's kernel: gy * inf at 0 and 1 (whatever the sign of a zero), else
            # gy / (x (1 - x)), a division: a zero gy stays 0 where x (1 - x) underflows to a
            # denormal (gy * (1 / ...) was 0 * inf = nan at x = 1e-45). gy / +0 is gy * inf at
            # the edges, and gy stays outside the where: a where's backward masks its gradient
            # with zeros, and 0 * inf made d(d)/d(gy) nan everywhere (every jvp of logit by the
            # double-backward trick).
            edge = (x == 0) | (x == 1)
            d = gy / ops.where(edge, 0.0, x * (1 - x))
        if self.eps is None:
            return ops.where((x < 0) | (x > 1), math.nan, d)
        # outside [eps, 1 - eps]: 0; a nan x keeps d (nan), as PyTorch 2.13's kernel
        return ops.where((x < self.eps) | (x > 1 - self.eps), 0, d)


def logit(input, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), with p clamped to [eps, 1 - eps] when eps is given (torch.logit);
    integers and bools compute in the default float dtype."""
    return Logit.apply(_floating(input), eps=None if eps is None else float(eps))


# ---------------------------------------------------------------------------------------------
# nan-ignoring reductions


class NanToZero(Function):
    """x with its nans replaced by 0; d/dx = gy * (x is not nan), a product as in PyTorch's
    nansum_backward (so an inf or nan gy gives nan at the nan entries too, not 0)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("keep",)  # the not-nan mask, the one thing backward needs

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.keep = x == x
        return xp.where(self.keep, x, 0).astype(x.dtype, copy=False)

    def backward(self, gy, ops):
        return gy * self.keep


def nansum(input, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Sum treating nan as zero (torch.nansum); the gradient is gy * (x is not nan)."""
    x = as_tensor(input)
    dim = axis if dim is None else dim
    if x._data.dtype.kind in "fV":
        x = NanToZero.apply(x)
    return _sum(x, dim, keepdim, dtype=dtype)


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Mean of the non-nan entries (torch.nanmean): nan where a slice is all nan or empty."""
    x = as_tensor(input)
    dim = axis if dim is None else dim
    if dtype is not None:
        x = cast(x, dtype)
    if x._data.dtype.kind not in "fV":
        raise DtypeError(
            f"nanmean: expected a floating point input, got dtype {x.dtype} (shape "
            f"{tuple(x.shape)}); pass dtype=descent.float32 or convert with .float()"
        )
    nan = isnan(x)
    count = _sum(~nan, dim, keepdim)  # int64 counts
    # Half precision divides in float32, as PyTorch (a float16 count above 65,504 is inf: the
    # mean of 70,000 values was nan, or 0)
    wide = np.float32 if x._data.dtype.itemsize == 2 else x._data.dtype
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = div(cast(nansum(x, dim, keepdim), wide), cast(count, wide))
    return cast(mean, x._data.dtype)


# ---------------------------------------------------------------------------------------------
# Elementwise helpers


def _promoted(input, other):
    """Two tensors at PyTorch's result type (a Python scalar is weak: it keeps the tensor's
    dtype)."""
    if not isinstance(input, Tensor) and not is_scalar(input):
        input = as_tensor(input)
    if not isinstance(other, Tensor) and not is_scalar(other):
        other = as_tensor(other)
    dt = result_type(input, other)
    a, b = as_tensor(input), as_tensor(other)
    return (a if a._data.dtype == dt else cast(a, dt)), (b if b._data.dtype == dt else cast(b, dt))


def fmax(input, other) -> Tensor:
    """Elementwise maximum ignoring nan (nan only where both are nan); the gradient goes to the
    chosen operand, `input` on ties (torch.fmax)."""
    a, b = _promoted(input, other)
    return where((a >= b) | isnan(b), a, b)


def fmin(input, other) -> Tensor:
    """Elementwise minimum ignoring nan; the gradient goes to the chosen operand, `input` on
    ties (torch.fmin)."""
    a, b = _promoted(input, other)
    return where((a <= b) | isnan(b), a, b)


class Sgn(Function):
    """sgn(x) = sign(x) for real x: its gradient is PyTorch's "zero tensor" (the engine's
    ZERO_GRAD): the leaves get zeros, and no 0 * inf of an earlier op's derivative becomes nan."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    def forward(self, x):
        xp = backend.get_array_module(x)
        s = xp.sign(x)
        return xp.where(s == s, s, 0) if x.dtype.kind in "fV" else s  # sgn(nan) = 0 (PyTorch)

    def backward(self, gy, ops):
        return ZERO_GRAD


def sgn(input) -> Tensor:
    """sign(x) for real tensors, x / |x| for complex ones (torch.sgn); its real gradient is a
    known zero (PyTorch's zero tensor: x.grad is zeros, and an op before it with no derivative,
    floor_divide, still raises), unlike sign's computed zeros."""
    x = as_tensor(input)
    if x._data.dtype.kind == "b":
        return sign(x)
    if x._data.dtype.kind == "c":
        return ComplexSgn.apply(x)
    return Sgn.apply(x)


def signbit(input) -> Tensor:
    """True where the sign bit is set (-0.0 and -nan included); bool, no gradient."""
    x = as_tensor(input)
    return Tensor._wrap(backend.get_array_module(x._data).signbit(x._data))


def positive(input) -> Tensor:
    """The input itself (torch.positive); bool tensors raise, as in PyTorch."""
    x = as_tensor(input)
    if x._data.dtype.kind == "b":
        raise TypeError(
            "positive: not supported for bool tensors (shape "
            f"{tuple(x.shape)}); convert with .int() or .float() first"
        )
    return x


class Sinc(Function):
    """d/dx sin(pi x) / (pi x) = (pi x cos(pi x) - sin(pi x)) / (pi x^2), 0 at x = 0 (PyTorch's
    form: the quotient rule's two 1/x^2 terms would cancel to noise at tiny x)."""

    # a known-zero gradient passes: PyTorch's where(pi x^2 == 0, 0, grad * ...) of a zero
    # tensor is zeros, even at x = inf (whose derivative is nan)
    zero_passes = True

    save_inputs = True

    def forward(self, x):
        if x.dtype == HALF:  # PyTorch's float32 opmath (pi x overflows)
            return in_float32(self.forward, x)
        xp = backend.get_array_module(x)
        zero = x == 0
        px = xp.where(zero, 1, x) * x.dtype.type(math.pi)  # float32 stays float32
        return xp.where(zero, 1, xp.sin(px) / px).astype(x.dtype, copy=False)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if not ops.is_graph and x.dtype == HALF:  # float32, rounded once (PyTorch's float16
            return in_float32(_sinc_vjp, gy, x, ops)  # ops round each step: 1.2x the error)
        return _sinc_vjp(gy, x, ops)


def _sinc_vjp(gy, x, ops):
    """PyTorch's sinc_backward, in its order: 0 where pi x^2 is 0 (underflow included)."""
    px = x * math.pi
    sq = x * x * math.pi
    zero = sq == 0
    d = (px * ops.cos(px) - ops.sin(px)) / ops.where(zero, 1, sq)
    return ops.where(zero, 0, gy * d)  # 0 there even for an inf or nan gy, as PyTorch


def sinc(input) -> Tensor:
    """sin(pi x) / (pi x), 1 at 0 (the normalized sinc); its gradient is 0 at 0. Complex x: the
    same formula, composed of complex ops (their gradients follow PyTorch's convention)."""
    x = _floating(input, "sinc", allow_complex=True)
    if x._data.dtype.kind == "c":
        zero = x == 0
        pz = where(zero, 1, x) * math.pi
        return where(zero, 1, sin(pz) / pz)
    return Sinc.apply(x)


class Heaviside(Function):
    """0 where x < 0 (and at nan), `values` where x == 0, 1 where x > 0. PyTorch marks a result
    as requiring grad but has no derivative for it; so does this: backward raises."""

    def forward(self, x, v):
        xp = backend.get_array_module(x)
        out = xp.where(x == 0, v, (x > 0).astype(x.dtype))  # nan > 0 is False: 0, as PyTorch
        return xp.asarray(out, dtype=x.dtype)

    def backward(self, gy, ops):
        raise DescentError(
            "heaviside: the derivative is not implemented (PyTorch has none either); detach() "
            "its inputs, or use a smooth step such as sigmoid(k * x)"
        )


def heaviside(input, values) -> Tensor:
    """The step function with `values` at 0 (torch.heaviside); not differentiable. Both
    operands must have one dtype, as in PyTorch."""
    x, v = as_tensor(input), as_tensor(values)
    if x._data.dtype != v._data.dtype:
        raise RuntimeError(
            f"heaviside: input and values must have the same dtype, got {x.dtype} and "
            f"{v.dtype} (shapes {tuple(x.shape)} and {tuple(v.shape)}); cast one with .to()"
        )
    return apply_binary(Heaviside, x, v)


class LdexpInt(Function):
    """x * 2^e for an integer tensor e, exact (C's ldexp: no overflow of 2^e on the way, so
    ldexp(0.03, 130) is finite in float32); e is cast to a C int as PyTorch's kernel does
    (int64 exponents wrap: -2^63 becomes 0). d/dx = 2^e, exact; e gets no gradient. (PyTorch's
    backward forms pow(2, e) in the integer dtype: 0 for every negative e.)"""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("e",)  # the int32 exponents, the one thing backward needs

    def forward(self, x, e):
        xp = backend.get_array_module(x)
        self.e = e.astype(np.int32)
        return xp.ldexp(x, self.e)

    def backward(self, gy, ops):
        xp = backend.get_array_module(self.e)
        return gy * xp.ldexp(xp.ones((), dtype=gy.dtype), self.e), None


class Ldexp(Function):
    """x * 2^e for a floating e (both at their promoted dtype): d/dx = 2^e, d/de = y ln 2 with
    y the output (PyTorch's order: finite where x 2^e is, though x * gy may overflow), formed
    in the broadcast shape as PyTorch's (0 * inf is nan in an element even where the summed
    gradient of a broadcast e would be finite)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True
    save_output = True

    def forward(self, x, e):
        with np.errstate(over="ignore"):
            return x * (2.0 ** e).astype(x.dtype, copy=False)

    def backward(self, gy, ops):
        x, e = self.inputs(ops)
        with np.errstate(over="ignore", invalid="ignore"):
            p = 2.0**e
            gx = gy * p if self.parents[0] is not None else None
            ge = None if self.parents[1] is None else gy * self.output(ops)
            if ge is not None and not ops.is_graph and ge.dtype == HALF:  # ln 2 in float32
                ge = in_float32(operator.mul, ge, math.log(2.0))  # (NumPy rounded it: 1.45x)
            elif ge is not None:
                ge = ge * math.log(2.0)
        return gx, ge


def ldexp(input, other) -> Tensor:
    """input * 2^other (torch.ldexp: a product with a power of two, differentiable in both);
    integers compute in the default float dtype; an integer tensor `other` is applied exactly
    (C's ldexp); complex operands compute PyTorch's input * pow(2, other)."""
    if _is_complex(input) or _is_complex(other):
        return mul(input, pow(2.0, other))
    if isinstance(other, Tensor):
        x = as_tensor(input)
        if other._data.dtype.kind in "iu" and x._data.dtype.kind in "fV":
            # (PyTorch's exact kernel is for a float input; an integer one is x * pow(2.0, e))
            if x._data.shape != other._data.shape:
                check_broadcast(LdexpInt, x, other)
            return LdexpInt.apply(x, other)
        a, e = _promoted(input, other)  # (a 0-d float64 e makes an int64 x float64)
        if a._data.dtype.kind not in "fV":
            a, e = _floating(a), _floating(e)
        if a._data.shape != e._data.shape:
            check_broadcast(Ldexp, a, e)
        return Ldexp.apply(a, e)
    return mul(_floating(input), 2.0**other)


def _is_complex(v) -> bool:
    """A complex tensor or Python complex number."""
    return v._data.dtype.kind == "c" if isinstance(v, Tensor) else isinstance(v, complex)


def float_power(input, exponent) -> Tensor:
    """input ** exponent in float64, whatever the dtypes (complex128 when either is complex)
    (torch.float_power: an explicit double-precision result, differentiable in both)."""
    a = as_tensor(input)
    dt = np.complex128 if _is_complex(a) or _is_complex(exponent) else np.float64
    a = cast(a, dt)
    if isinstance(exponent, Tensor):
        return pow(a, cast(exponent, dt))
    return pow(a, complex(exponent) if dt == np.complex128 else float(exponent))
