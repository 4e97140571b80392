"""torch.special's error-function and gamma-function family beyond descent.ops.special: erfcx,
ndtr, log_ndtr, ndtri, entr, xlog1py, gammainc / gammaincc (torch.igamma / igammac), the
Hurwitz zeta, multigammaln (torch.mvlgamma).

As in descent.ops.special, each kernel computes in float64 on NumPy arrays whatever the input
dtype and the result is rounded once to that dtype (CuPy arrays take cupyx.scipy.special's
kernels). The methods, written from the formulas cited at each kernel:

* erfcx(x) = exp(x^2) erfc(x): the product with exp(x^2) taken exactly (x^2 split into two
  doubles, Dekker's product) below x = 5, the Laplace continued fraction of erfc beyond
  (A&S 7.1.14), evaluated bottom-up with 60 terms.
* log_ndtr: log1p(-erfc(x/sqrt 2)/2) above -1, log(erfcx(-x/sqrt 2)/2) - x^2/2 below (no
  underflow: log_ndtr(-1e5) = -5e9).
* ndtri(p) = sqrt(2) erfinv(2p - 1) on [0.25, 0.75] (2p - 1 exact there); in the tails Newton's
  method on log ndtr(x) = log(min(p, 1 - p)) from A&S 26.2.23's estimate (1 - p is exact for
  p >= 0.5, so p = 1 - 1e-16 keeps its digits); log ndtr is nearly a parabola, four steps.
* gammainc: the power series of P(a, x) for x < a + 1, Legendre's continued fraction of
  Q(a, x) beyond (A&S 6.5.29, 6.5.31; modified Lentz), the other one as 1 minus; the prefactor
  x^a e^-x / Gamma(a + 1) through log1p and Stirling's series for a >= 10, so that it keeps
  its digits for large a.
* zeta(s, q): the recurrence zeta(s, q) = q^-s + zeta(s, q + 1) up to q >= 1.5 (s + 8), then
  the Euler-Maclaurin tail with eight Bernoulli terms (A&S 23.2, 23.1.30).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DescentError, DtypeError
from ..tensor import Tensor
from .math import _binary_float, _floating, _is_nan_number, round_to
from .nested_values import on_values
from .special import _BERNOULLI, _cupy_special, _elementwise, _erfinv64, erfc, lgamma

_INV_SQRT_PI = 0.5641895835477563  # 1 / sqrt(pi)
_SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2 / pi)
_INV_SQRT2 = 0.7071067811865476  # 1 / sqrt(2)
_SQRT2 = 1.4142135623730951
_SQRT_2PI = 2.5066282746310002  # sqrt(2 pi)
_LOG_2PI = 1.8378770664093453  # log(2 pi)


def _host(kernel, cupy_name: str, *arrays):
    """Run a float64 kernel on arrays of one float dtype; the result in that dtype."""
    if backend.is_cupy_array(arrays[-1]):
        return _cupy_special(cupy_name, arrays[-1], *arrays[:-1])
    dt = arrays[0].dtype
    out = kernel(*(a.astype(np.float64, copy=False) for a in arrays))
    return np.asarray(out, dtype=dt)


def _erfc64(x: np.ndarray) -> np.ndarray:
    return _elementwise(math.erfc, np.asarray(x, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# erfcx, ndtr, log_ndtr, ndtri


def _exp_square(x: np.ndarray) -> np.ndarray:
    """exp(x^2) for |x| < 27 with x^2's rounding error put back: x^2 = hi + lo exactly
    (Veltkamp's split of x into two 26-bit halves), exp(hi) (1 + lo)."""
    c = 134217729.0 * x  # 2^27 + 1
    xh = c - (c - x)
    xl = x - xh
    hi = x * x
    lo = ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl
    return np.exp(hi) * (1.0 + lo)


def _erfcx64(x: np.ndarray) -> np.ndarray:
    """exp(x^2) erfc(x), float64: inf below -26.6, 1/(x sqrt pi) asymptotically."""
    x = np.asarray(x, dtype=np.float64)
    near = x < 5.0
    with np.errstate(over="ignore", invalid="ignore"):
        xn = np.where(near, np.clip(x, -27.0, 5.0), 0.0)
        direct = _exp_square(xn) * _erfc64(xn)
        # erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))): 60 terms
        # give 1e-17 at x = 5 and more digits beyond.
        xf = np.where(near, 5.0, x)
        t = xf.copy()
        for n in range(60, 0, -1):
            t = xf + (0.5 * n) / t
        far = _INV_SQRT_PI / t
    out = np.where(near, direct, far)
    return np.where(x < -26.7, np.inf, np.where(np.isnan(x), x, out))


def _log_ndtr64(x: np.ndarray) -> np.ndarray:
    """log Phi(x), float64, without underflow in the lower tail."""
    x = np.asarray(x, dtype=np.float64)
    low = x < -1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        xl = np.where(low, x, -1.0)
        lower = np.log(0.5 * _erfcx64(-xl * _INV_SQRT2)) - 0.5 * xl * xl
        xh = np.where(low, 0.0, x)
        upper = np.log1p(-0.5 * _erfc64(xh * _INV_SQRT2))
    return np.where(low, lower, upper)


# A&S 26.2.23: the lower-tail quantile to 4.5e-4, x = -(t - P(t)/Q(t)), t = sqrt(-2 log p).
_AS_NUM = (0.010328, 0.802853, 2.515517)
_AS_DEN = (0.001308, 0.189269, 1.432788, 1.0)


def _ndtri64(p: np.ndarray) -> np.ndarray:
    """The standard normal quantile, float64: -inf at 0, inf at 1, nan outside [0, 1]."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    centre = (p >= 0.25) & (p <= 0.75)
    if centre.any():
        out[centre] = _SQRT2 * _erfinv64(2.0 * p[centre] - 1.0)  # 2p - 1 exact here
    tail = ((p > 0) & (p < 0.25)) | ((p > 0.75) & (p < 1))
    if tail.any():
        pt = p[tail]
        q = np.where(pt < 0.5, pt, 1.0 - pt)  # exact for p >= 0.5 (Sterbenz)
        logq = np.log(q)
        t = np.sqrt(-2.0 * logq)
        x = -(t - np.polyval(_AS_NUM, t) / np.polyval(_AS_DEN, t))
        for _ in range(4):
            # d/dx log Phi(x) = sqrt(2/pi) / erfcx(-x/sqrt 2): no underflow at x = -38.
            slope_inv = _erfcx64(-x * _INV_SQRT2) / _SQRT_2_OVER_PI
            x = x - (_log_ndtr64(x) - logq) * slope_inv
        out[tail] = np.where(pt < 0.5, x, -x)
    out[p == 0] = -np.inf
    out[p == 1] = np.inf
    return out


class Erfcx(Function):
    """d/dx erfcx(x) = 2 x erfcx(x) - 2/sqrt(pi) (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    save_inputs = True
    save_output = True

    def forward(self, x):
        return _host(_erfcx64, "erfcx", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        y = self.output(ops)
        with np.errstate(over="ignore", invalid="ignore"):
            return gy * (2.0 * x * y - 2.0 * _INV_SQRT_PI)


def _log_ndtr_slope64(x: np.ndarray) -> np.ndarray:
    return _SQRT_2_OVER_PI / _erfcx64(np.asarray(x, np.float64) * -_INV_SQRT2)


class LogNdtr(Function):
    """d/dx log Phi(x) = phi(x) / Phi(x) = sqrt(2/pi) / erfcx(-x / sqrt 2). PyTorch writes it
    exp(-(log Phi(x) + x^2/2)) / sqrt(2 pi), which cancels to 1e-4 in float32 at x = -30;
    this form has no cancellation (computed in float64, or through erfcx for create_graph)."""

    save_inputs = True

    def forward(self, x):
        return _host(_log_ndtr64, "log_ndtr", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if ops.is_graph:
            return gy * (_SQRT_2_OVER_PI / erfcx(x * -_INV_SQRT2))
        if backend.is_cupy_array(x):
            return gy * (_SQRT_2_OVER_PI / _cupy_special("erfcx", x * -_INV_SQRT2))
        return gy * _host(_log_ndtr_slope64, "", x)


class Ndtri(Function):
    """d/dp ndtri(p) = sqrt(2 pi) exp(ndtri(p)^2 / 2) (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    save_output = True

    def forward(self, p):
        return _host(_ndtri64, "ndtri", p)

    def backward(self, gy, ops):
        x = self.output(ops)
        with np.errstate(over="ignore"):
            return gy * (ops.exp(x * x * 0.5) * _SQRT_2PI)


@on_values
def erfcx(input) -> Tensor:
    """The scaled complementary error function exp(x^2) erfc(x) (torch.special.erfcx)."""
    return Erfcx.apply(_floating(input))


@on_values
def ndtr(input) -> Tensor:
    """The standard normal CDF Phi(x) = erfc(-x / sqrt(2)) / 2 (torch.special.ndtr; its
    gradient is erfc's)."""
    return erfc(_floating(input) * -_INV_SQRT2) * 0.5


@on_values
def log_ndtr(input) -> Tensor:
    """log Phi(x), accurate far in the lower tail (torch.special.log_ndtr)."""
    return LogNdtr.apply(_floating(input))


@on_values
def ndtri(input) -> Tensor:
    """The standard normal quantile, Phi^-1(p) (torch.special.ndtri)."""
    return Ndtri.apply(_floating(input))


# ---------------------------------------------------------------------------------------------
# entr, xlog1py


class Entr(Function):
    """-x log x (0 at 0, -inf below): d/dx = -(1 + log x)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    save_inputs = True

    def forward(self, x):
        xp = backend.get_array_module(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = -x * xp.log(x)
        out = xp.where(x == 0, 0, out)
        return xp.where(x < 0, -np.inf, out).astype(x.dtype, copy=False)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        with np.errstate(divide="ignore", invalid="ignore"):
            return gy * -(ops.log(x) + 1.0)


class Xlog1py(Function):
    """x log1p(y), 0 where x = 0 (unless y is nan): d/dx = log1p(y), d/dy = x / (1 + y);
    PyTorch's masking: d/dx = 0 where x = 0 and y <= -1, or y a nan Python number (Xlogy)."""

    save_inputs = True
    __slots__ = ("low", "nan_other")
    bfloat16_param = "low"  # (log1p(y) rounded to bfloat16 first, as Xlogy's log(y))

    def forward(self, x, y):
        xp = backend.get_array_module(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = x * round_to(xp.log1p(y), getattr(self, "low", None))
        return xp.where((x == 0) & ~xp.isnan(y), 0, out).astype(out.dtype, copy=False)

    def backward(self, gy, ops):
        x, y = self.inputs(ops)
        with np.errstate(divide="ignore", invalid="ignore"):
            # PyTorch's xlog1py(gy, y): 0 where gy = 0 (unless y is nan) and where x = 0 with
            # y <= -1 (log1p is not in `ops`: the Tensor op under create_graph).
            edge = (x == 0) & ((y <= -1) | getattr(self, "nan_other", False))
            if ops.is_graph:  # the op itself: d/dgy is log1p(y) also where gy = 0 (Xlogy)
                gx = ops.where(edge, 0, Xlog1py.apply(gy, y))
            else:
                flat = edge | ((gy == 0) & (y == y))
                gx = ops.where(flat, 0, gy * backend.get_array_module(y).log1p(y))
            gyy = gy * x / (y + 1.0)
        return gx, gyy


def entr(input) -> Tensor:
    """Elementwise entropy -x log x (0 at 0, -inf for x < 0; torch.special.entr)."""
    return Entr.apply(_floating(input))


def xlog1py(input, other) -> Tensor:
    """input * log1p(other), 0 where input is 0 (torch.special.xlog1py)."""
    return _binary_float(Xlog1py, input, other, low=None, nan_other=_is_nan_number(other))


# ---------------------------------------------------------------------------------------------
# The incomplete gamma functions


def _stirling_tail(a: np.ndarray) -> np.ndarray:
    """lgamma(a) - ((a - 1/2) log a - a + log(2 pi)/2) for a >= 10 (A&S 6.1.40, 8 terms)."""
    w = 1.0 / (a * a)
    s = 0.0
    for k in range(len(_BERNOULLI), 0, -1):
        s = s * w + _BERNOULLI[k - 1] / (2 * k * (2 * k - 1))
    return s / a


def _log_prefactor(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log(x^a e^-x / Gamma(a + 1)) for a > 0, x > 0. For a >= 10 as
    a (log1p(u) - u) - log(2 pi a)/2 - S(a) with u = (x - a)/a: no cancellation between
    a log x, x and lgamma(a + 1), each about a in size."""
    from .special import _lgamma64

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        big = a >= 10
        ab = np.where(big, a, 10.0)
        u = (x - ab) / ab
        # log(x/a) as log1p(u) near 1 and as log(x/a) away from it (where log1p's argument
        # would be near -1 and its rounding magnified).
        log_ratio = np.where(np.abs(u) < 0.5, np.log1p(u), np.log(x / ab))
        large = ab * (log_ratio - u) - 0.5 * (_LOG_2PI + np.log(ab)) - _stirling_tail(ab)
        small = a * np.log(x) - x - _lgamma64(a + 1.0)
    return np.where(big, large, small)


# Temme's uniform expansion (DLMF 8.12.3-8.12.4; Cephes' igam.c `asymptotic_series`) from this
# a on: the series and the continued fraction need O(sqrt(a)) terms near x = a (past their
# caps of 100 000 at a = 1e9: P(1e10, 1e10) came out 0.34, not 0.5). There P is 0 or 1 to double
# precision beyond |eta| = 0.004, where the first terms of the Taylor series in eta of the
# coefficients C_k(eta) are exact to 1e-17, and a^-3 is below 1e-24.
_IGAMMA_ASYMPTOTIC_A = 1e8
_TEMME_D = (
    (-1.0 / 3.0, 1.0 / 12.0, -2.0 / 135.0, 1.0 / 864.0, 3.527336860670194e-4),
    (-1.0 / 540.0, -1.0 / 288.0, 2.6455026455026455e-3, -9.9022633744855967e-4),
    (4.1335978835978836e-3, -2.6813271604938272e-3, 7.7160493827160494e-4),
)


def _igamma_asymptotic(a: np.ndarray, x: np.ndarray):
    """(P, Q) for a >= 1e8: Q = erfc(eta sqrt(a/2))/2 + e^(-a eta^2/2)/sqrt(2 pi a) sum_k C_k
    a^-k, eta = sign(x - a) sqrt(2 (x/a - 1 - log(x/a)))."""
    sigma = (x - a) / a
    with np.errstate(over="ignore", under="ignore"):
        # log(1 + s) - s, by its series where the difference would cancel
        s = np.where(np.abs(sigma) < 0.01, sigma, 0.0)
        series = sum((-1.0) ** (k + 1) * s**k / k for k in range(12, 1, -1))
        log1pmx = np.where(np.abs(sigma) < 0.01, series, np.log1p(sigma) - sigma)
        eta = np.sign(sigma) * np.sqrt(np.maximum(-2.0 * log1pmx, 0.0))
        total = np.zeros_like(a)
        afac = np.ones_like(a)
        for row in _TEMME_D:
            total += afac * np.polynomial.polynomial.polyval(eta, row)
            afac /= a
        tail = np.exp(-0.5 * a * eta * eta) / np.sqrt(2.0 * np.pi * a) * total
        root = eta * np.sqrt(0.5 * a)
        q = 0.5 * _erfc64(root) + tail
        p = 0.5 * _erfc64(-root) - tail
    # x far from a (a = 1e38 and x = 3.5, where x / a rounds to 0 and eta is -inf; x = 1e300):
    # the tail is 0 * inf; P is 0 or 1 to double precision where |eta| sqrt(a/2) > 40 (erfc
    # < 1e-697), as PyTorch's
    far = np.abs(root) > 40
    if far.any():
        p, q = np.where(far, eta > 0, p), np.where(far, eta < 0, q)
    return p, q


def _igamma64(a: np.ndarray, x: np.ndarray):
    """(P(a, x), Q(a, x)), the regularized incomplete gamma functions, float64 arrays of one
    shape; each is computed where it is the small one and the other is 1 minus it."""
    a, x = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(x, np.float64))
    a, x = a.ravel(), x.ravel()
    p = np.full(a.shape, np.nan)
    q = np.full(a.shape, np.nan)
    ok = (a > 0) & (x > 0) & np.isfinite(a) & np.isfinite(x)
    huge = ok & (a >= _IGAMMA_ASYMPTOTIC_A)
    if huge.any():
        p[huge], q[huge] = _igamma_asymptotic(a[huge], x[huge])
        ok &= ~huge
    series = np.flatnonzero(ok & (x < a + 1))
    frac = np.flatnonzero(ok & (x >= a + 1))
    eps = 1e-17
    if series.size:
        # P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n)) (A&S 6.5.29)
        aa, xx = a[series], x[series]
        term = np.ones_like(aa)
        total = np.ones_like(aa)
        live = np.arange(aa.size)
        ap = aa.copy()
        for _ in range(100000):
            ap[live] += 1.0
            term[live] *= xx[live] / ap[live]
            total[live] += term[live]
            live = live[term[live] > eps * total[live]]
            if not live.size:
                break
        ps = np.exp(_log_prefactor(aa, xx)) * total
        p[series], q[series] = ps, 1.0 - ps
    if frac.size:
        # Q(a, x) = x^a e^-x / Gamma(a) * 1/(x + 1 - a - 1(1 - a)/(x + 3 - a - 2(2 - a)/...))
        # (A&S 6.5.31 in its even form), by the modified Lentz method.
        aa, xx = a[frac], x[frac]
        tiny = 1e-300
        b = xx + 1.0 - aa
        c = np.full(aa.shape, 1.0 / tiny)
        d = 1.0 / b
        h = d.copy()
        live = np.arange(aa.size)
        for i in range(1, 100000):
            an = -i * (i - aa[live])
            b[live] += 2.0
            dl = an * d[live] + b[live]
            dl = np.where(np.abs(dl) < tiny, tiny, dl)
            cl = b[live] + an / c[live]
            cl = np.where(np.abs(cl) < tiny, tiny, cl)
            dl = 1.0 / dl
            delta = dl * cl
            d[live], c[live] = dl, cl
            h[live] *= delta
            live = live[np.abs(delta - 1.0) > eps]
            if not live.size:
                break
        # x^a e^-x / Gamma(a) = a * (x^a e^-x / Gamma(a + 1))
        qs = np.exp(_log_prefactor(aa, xx)) * aa * h
        q[frac], p[frac] = qs, 1.0 - qs
    # The edges in the order of PyTorch's kernels (calc_igamma / calc_igammac): negative
    # arguments nan; a = 0: P = 1 for x > 0 (nan at x = 0); x = 0: P = 0 (a nan included);
    # a = inf: P = 0 (nan at x = inf); x = inf: P = 1.
    rules = [
        ((x < 0) | (a < 0), np.nan),
        (a == 0, np.where(x > 0, 1.0, np.nan)),
        (x == 0, 0.0),
        (a == np.inf, np.where(x == np.inf, np.nan, 0.0)),
        (x == np.inf, 1.0),
    ]
    taken = np.zeros(a.shape, bool)
    for cond, value in rules:
        here = cond & ~taken
        p = np.where(here, value, p)
        q = np.where(here, 1.0 - np.asarray(value), q)  # nan stays nan
        taken |= here
    return p, q


class Igamma(Function):
    """P(a, x) = gamma(a, x) / Gamma(a): d/dx = x^(a-1) e^-x / Gamma(a); no derivative in a
    (PyTorch has none: backward raises when a requires grad)."""

    __slots__ = ("upper",)
    save_inputs = True

    def forward(self, a, x):
        if backend.is_cupy_array(x):
            return _cupy_special("gammaincc" if self.upper else "gammainc", x, a)
        p, q = _igamma64(a, x)
        shape = np.broadcast_shapes(a.shape, x.shape)
        return np.asarray(q if self.upper else p, dtype=x.dtype).reshape(shape)

    def backward(self, gy, ops):
        name = "gammaincc" if self.upper else "gammainc"
        if self.parents[0] is not None:
            raise DescentError(
                f"{name}: the derivative with respect to the first argument (a) is not "
                "implemented (PyTorch has none either); detach() a, or pass it as a constant"
            )
        a, x = self.inputs(ops)
        lg = lgamma(a).detach() if ops.is_graph else _host(_lgamma_array, "gammaln", a)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            gx = gy * ops.exp((a - 1.0) * ops.log(x) - x - lg)  # PyTorch's formula
        return None, (-gx if self.upper else gx)


def _lgamma_array(a):
    from .special import _lgamma64

    return _lgamma64(a)


def _check_floating(name: str, a, b) -> None:
    """PyTorch's igamma takes two tensors (a Python number is its binding's TypeError), and its
    kernels have no integer version: two integer operands raise its NotImplementedError."""
    for t, arg in ((a, "input"), (b, "other")):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): argument '{arg}' must be Tensor, not {type(t).__name__} "
                            f"(wrap it: descent.tensor({t!r}))")  # fmt: skip
    kinds = [t._data.dtype.kind for t in (a, b)]
    if not {"f", "V"} & set(kinds):  # V: bfloat16
        raise DtypeError(
            f"{name}: not implemented for integer tensors (dtypes {a.dtype} and {b.dtype}, "
            f"shapes {tuple(a.shape)} and {tuple(b.shape)}); expected floating point "
            "operands, convert one with .float()"
        )


@on_values
def gammainc(input, other) -> Tensor:
    """The regularized lower incomplete gamma function P(a, x), a = input, x = other
    (torch.special.gammainc, torch.igamma); differentiable in x only."""
    _check_floating("gammainc", input, other)
    return _binary_float(Igamma, input, other, upper=False)


@on_values
def gammaincc(input, other) -> Tensor:
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)
    (torch.special.gammaincc, torch.igammac); differentiable in x only."""
    _check_floating("gammaincc", input, other)
    return _binary_float(Igamma, input, other, upper=True)


# ---------------------------------------------------------------------------------------------
# The Hurwitz zeta function


def _zeta64(s: np.ndarray, q: np.ndarray) -> np.ndarray:
    """zeta(s, q) = sum_k (q + k)^-s, float64, Cephes' edges: inf at s = 1 and at q = 0, -1,
    ...; nan for s < 1 and for q < 0 with a non-integer s."""
    s, q = np.broadcast_arrays(np.asarray(s, np.float64), np.asarray(q, np.float64))
    s, q = s.ravel(), q.ravel()
    out = np.full(s.shape, np.nan)
    # Cephes' order (PyTorch's zeta): s = 1 pole, s < 1 nan, q = 0, -1, ... poles (s nan
    # included), q < 0 with a non-integer s nan, q = inf nan; s = inf its limits.
    pole = (s == 1) | (~(s < 1) & (q <= 0) & (np.floor(q) == q))
    ok = (s > 1) & ~pole & ~((q < 0) & (np.floor(s) != s)) & np.isfinite(q) & np.isfinite(s)
    idx = np.flatnonzero(ok)
    if idx.size:
        ss, z = s[idx], q[idx].copy()
        acc = np.zeros_like(z)
        # The tail's error is about 2 (s)_17 / (2 pi z)^18 of its size: below 1e-17 for
        # z >= 1.5 (s + 8); past z = 200 (s > 125) the tail is negligible against the sum.
        stop = np.minimum(np.maximum(10.0, 1.5 * (ss + 8.0)), 200.0)
        live = np.flatnonzero(z < stop)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
            while live.size:
                acc[live] += z[live] ** -ss[live]
                z[live] += 1.0
                live = live[z[live] < stop[live]]
            # zeta(s, z) ~ z^(1-s)/(s-1) + z^-s/2 + sum_j B_2j/(2j)! (s)_(2j-1) z^(-s-2j+1)
            tail = z ** (1.0 - ss) / (ss - 1.0) + 0.5 * z**-ss
            rising, fact, zp = ss.copy(), 2.0, z ** (-ss - 1.0)
            for j, b in enumerate(_BERNOULLI, start=1):
                tail = tail + (b / fact) * rising * zp
                rising = rising * (ss + 2 * j - 1) * (ss + 2 * j)
                fact *= (2 * j + 1) * (2 * j + 2)
                zp = zp / (z * z)
        out[idx] = acc + tail
    out[pole] = np.inf
    inf_s = (s == np.inf) & ~pole & ~(q == np.inf)
    out[inf_s] = np.where(q[inf_s] == 1, 1.0, np.where(np.abs(q[inf_s]) < 1, np.inf, np.nan))
    return out


class Zeta(Function):
    """zeta(s, q): d/dq = -s zeta(s + 1, q); no derivative in s (PyTorch has none: backward
    raises when s requires grad)."""

    save_inputs = True

    def forward(self, s, q):
        if backend.is_cupy_array(q):
            return _cupy_special("zeta", q, s)
        shape = np.broadcast_shapes(s.shape, q.shape)
        return np.asarray(_zeta64(s, q), dtype=q.dtype).reshape(shape)

    def backward(self, gy, ops):
        if self.parents[0] is not None:
            raise DescentError(
                "zeta: the derivative with respect to the first argument (s, the exponent) is "
                "not implemented (PyTorch has none either); detach() s, or pass it as a constant"
            )
        s, q = self.inputs(ops)
        with np.errstate(over="ignore", invalid="ignore"):
            if ops.is_graph:
                z1 = zeta(s.detach() + 1.0, q)  # differentiable in q again
            elif backend.is_cupy_array(q):
                z1 = _cupy_special("zeta", q, s + 1.0)
            else:
                shape = np.broadcast_shapes(s.shape, q.shape)
                z1 = np.asarray(_zeta64(s + 1.0, q), q.dtype).reshape(shape)
            return None, gy * (-s * z1)


@on_values
def zeta(input, other) -> Tensor:
    """The Hurwitz zeta function zeta(s, q) = sum_k (q + k)^-s, s = input, q = other
    (torch.special.zeta; zeta(s, 1) is Riemann's); differentiable in q only."""
    return _binary_float(Zeta, input, other)


# ---------------------------------------------------------------------------------------------
# The multivariate log-gamma function


@on_values
def multigammaln(input, p: int) -> Tensor:
    """log of the multivariate gamma function of dimension p:
    sum_{i<p} lgamma(a - i/2) + p (p - 1)/4 log(pi) (torch.special.multigammaln, torch.mvlgamma).

    An element not greater than (p - 1)/2 is computed too (lgamma's poles give inf), as PyTorch
    2.13 does: it no longer checks the domain (older versions raised).

    Raises:
        RuntimeError: p < 1 (as PyTorch).
    """
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise RuntimeError(f"multigammaln: p has to be greater than or equal to 1, got {p!r}")
    a = _floating(input)  # integers compute in the default float dtype, as PyTorch's
    xp = backend.get_array_module(a._data)
    # PyTorch's order: lgamma(a + k) for k = -(p-1)/2, ..., -1/2, 0, summed along a new last axis.
    offsets = Tensor._wrap(xp.arange(-(p - 1) * 0.5, 0.25, 0.5).astype(a._data.dtype))
    terms = lgamma(a.unsqueeze(-1) + offsets)  # (..., p)
    return terms.sum(-1) + p * (p - 1) / 4 * math.log(math.pi)
