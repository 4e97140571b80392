"""Bessel functions of torch.special: i0, i0e, i1, i1e (differentiable, as PyTorch's), and
bessel_j0/j1, bessel_y0/y1, modified_bessel_i0/i1/k0/k1, scaled_modified_bessel_k0/k1,
spherical_bessel_j0 and the Airy function airy_ai (no gradient: PyTorch's results do not
require grad either).

Every kernel computes in float64 on NumPy arrays and the result is rounded once to the input
dtype (CuPy arrays take cupyx.scipy.special's kernels). The methods, from the formulas of
Abramowitz & Stegun (A&S) chapter 9 and Watson's integrals:

* small |x|: the power series (A&S 9.1.10-11 for J and Y, 9.6.10-11 for I and K) whose terms
  have one sign for I (no cancellation up to |x| = 25) or are few enough for J, Y, K (|x| < 2);
* large |x| (>= 25): the asymptotic expansions (A&S 9.2.5-10 for J and Y, 9.7.1-2 for I and
  K), whose smallest term there is about e^-2|x| = 2e-22 of the sum;
* in between for J, Y (2 <= x < 25): Bessel's and Schlaefli's integrals
  J_n(x) = 1/pi int_0^pi cos(n t - x sin t) dt (the trapezoidal rule, 48 steps: the
  integrand is even and periodic, so the error is 2 J_96(x), below 1e-30) and
  Y_n(x) = 1/pi int_0^pi sin(x sin t - n t) dt - 1/pi int_0^inf (e^(nt) + (-1)^n e^(-nt))
  e^(-x sinh t) dt (64-point Gauss-Legendre rules: the integrands are entire, the rules' error
  is below 1e-18 at x = 25);
* in between for K (2 <= x < 25): e^x K_n(x) = int_0^inf e^(-2 x sinh^2(t/2)) cosh(n t) dt
  by the trapezoidal rule with step 0.1 (spectrally accurate for this even, analytic
  integrand: error about e^(-2 pi / 0.1) of the sum).

The results are accurate to a few float64 ulp relative to the value, except next to the zeros
of J and Y, where the error is a few 1e-16 absolute (as for any method without the zeros
built in); float32 results are correctly rounded away from those zeros.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .math import _floating
from .nested_values import on_values
from .special_kernels import _EULER_GAMMA, _host
from .untracked import computed

_TWO_OVER_PI = 0.6366197723675814
_INV_PI = 0.3183098861837907
_INV_SQRT_2PI = 0.3989422804014327
_SQRT_PI_OVER_2 = 1.2533141373155003
_SMALL, _LARGE = 2.0, 25.0  # series below, asymptotic expansion from, integrals between


def _asymptotic_terms(nu: int, x: np.ndarray, count: int = 40):
    """c_k = prod_{j<=k} (4 nu^2 - (2j - 1)^2) / (k! (8x)^k), k = 0 .. count - 1: the terms of
    the large-argument expansions (A&S 9.2.5, 9.7.1)."""
    mu = 4.0 * nu * nu
    terms = [np.ones_like(x)]
    for k in range(1, count):
        terms.append(terms[-1] * ((mu - (2 * k - 1) ** 2) / (k * 8.0)) / x)
    return terms


def _i_series(nu: int, x: np.ndarray) -> np.ndarray:
    """I_nu(x) = (x/2)^nu sum_k (x^2/4)^k / (k! (k + nu)!), |x| <= 25: all terms positive,
    70 of them (the last below 1e-30 of the sum at |x| = 25)."""
    q = 0.25 * x * x
    term = np.ones_like(x)
    total = np.ones_like(x)
    for k in range(1, 70):
        term = term * q / (k * (k + nu))
        total = total + term
    return total if nu == 0 else total * (0.5 * x)


def _ie64(nu: int, x: np.ndarray) -> np.ndarray:
    """e^-|x| I_nu(x), float64, nu = 0 or 1."""
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    small = ax < _LARGE
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        xs = np.where(small, x, 0.0)
        near = _i_series(nu, xs) * np.exp(-np.abs(xs))
        # e^-x I_nu(x) ~ 1/sqrt(2 pi x) sum_k (-1)^k c_k (A&S 9.7.1)
        xl = np.where(small, _LARGE, ax)
        terms = _asymptotic_terms(nu, xl)
        far = sum(t if k % 2 == 0 else -t for k, t in enumerate(terms)) * (
            _INV_SQRT_2PI / np.sqrt(xl)
        )
        if nu == 1:
            far = np.where(x < 0, -far, far)
    out = np.where(small, near, far)
    return np.where(np.isnan(x), x, out)


def _i64(nu: int, x: np.ndarray) -> np.ndarray:
    """I_nu(x), float64: e^|x| (e^-|x| I_nu(x)) as two half factors, so that I0(713) = 2e307
    does not overflow in e^713."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        half = np.exp(0.5 * np.abs(x))
        out = _ie64(nu, x) * half * half
    # PyTorch's i0 and i1 give nan at +-inf (their Chebyshev kernels do); so does descent.
    return np.where(np.isnan(x) | np.isinf(x), np.nan, out)


# ---------------------------------------------------------------------------------------------
# J and Y


_NODES: dict = {}


def _gauss(n: int, lo: float = 0.0, hi: float = 1.0):
    """n-point Gauss-Legendre nodes and weights on [0, 1] (computed once), for [lo, hi]."""
    if n not in _NODES:
        t, w = np.polynomial.legendre.leggauss(n)
        _NODES[n] = (0.5 * (t + 1.0), 0.5 * w)
    t, w = _NODES[n]
    return t, w


def _jy_series(x: np.ndarray):
    """J0, J1, Y0, Y1 at 0 < x < 2 (A&S 9.1.10, 9.1.11): 25 terms (the last below 1e-40)."""
    q = -0.25 * x * x
    j0 = np.ones_like(x)
    j1 = np.ones_like(x)
    t0 = np.ones_like(x)
    t1 = np.ones_like(x)
    harm = 0.0  # H_k = psi(k + 1) + gamma
    s0 = np.zeros_like(x)  # sum_k psi(k + 1) q^k / k!^2, without k = 0's -gamma
    s1 = np.full_like(x, 1.0 - 2.0 * _EULER_GAMMA)  # sum_k (psi(k+1) + psi(k+2)) q^k/(k!(k+1)!)
    for k in range(1, 25):
        t0 = t0 * q / (k * k)
        t1 = t1 * q / (k * (k + 1))
        j0 = j0 + t0
        j1 = j1 + t1
        harm += 1.0 / k
        s0 = s0 + harm * t0
        s1 = s1 + (2.0 * harm + 1.0 / (k + 1) - 2.0 * _EULER_GAMMA) * t1
    j1 = j1 * (0.5 * x)
    log_half = np.log(0.5 * x)
    # Y0 = 2/pi (log(x/2) + gamma) J0 - 2/pi sum_{k>=1} H_k q^k / k!^2
    y0 = _TWO_OVER_PI * ((log_half + _EULER_GAMMA) * j0 - s0)
    # Y1 = -2/(pi x) + 2/pi log(x/2) J1 - x/(2 pi) sum (psi(k+1) + psi(k+2)) q^k/(k!(k+1)!)
    y1 = -_TWO_OVER_PI / x + _TWO_OVER_PI * log_half * j1 - (0.5 * _INV_PI) * x * s1
    return j0, j1, y0, y1


def _jy_integrals(x: np.ndarray, which: int):
    """J0, J1, Y0 or Y1 (which = 0, 1, 2, 3) at 2 <= x < 25 from Bessel's and Schlaefli's
    integrals; the other three entries of the result are None."""
    nu = which % 2
    out = [None] * 4
    if which < 2:
        # J_n(x) = 1/pi int_0^pi cos(n t - x sin t) dt: an even, 2 pi-periodic integrand, so
        # the trapezoidal rule with N steps is exact up to 2 J_2N(x) (below 1e-30 at x = 25
        # for N = 48).
        n_steps = 48
        acc = np.zeros_like(x)
        for j in range(n_steps + 1):
            th = np.pi * j / n_steps
            f = np.cos(nu * th - x * np.sin(th))
            acc += 0.5 * f if j in (0, n_steps) else f
        out[which] = acc / n_steps
        return out
    # Y_n: the first integral's integrand sin(x sin t - n t) is odd (no periodic trick):
    # Gauss-Legendre; the second on [0, T] with e^(-x sinh T) below 1e-20.
    t, w = _gauss(64)
    acc = np.zeros_like(x)
    for th, wt in zip(np.pi * t, w, strict=True):
        acc += wt * np.sin(x * np.sin(th) - nu * th)
    big_t = np.arcsinh(48.0 / x)
    t2, w2 = _gauss(64)
    tail = np.zeros_like(x)
    for u, wt in zip(t2, w2, strict=True):
        tt = u * big_t
        decay = np.exp(-x * np.sinh(tt))
        tail += wt * (decay if nu == 0 else decay * np.sinh(tt))
    # int_0^pi f = pi sum w f(pi t) (the 1/pi cancels); Y0's kernel is 2, Y1's 2 sinh t.
    out[which] = acc - 2.0 * _INV_PI * big_t * tail
    return out


def _jy_asymptotic(x: np.ndarray):
    """J0, J1, Y0, Y1 at x >= 25 (A&S 9.2.5-9.2.10, with cos(x - pi/4) written as
    (cos x + sin x)/sqrt 2 so that x - pi/4 is never rounded)."""
    c, s = np.cos(x), np.sin(x)
    amp = np.sqrt(_TWO_OVER_PI / x) * 0.7071067811865476
    out = []
    for nu in (0, 1):
        terms = _asymptotic_terms(nu, x)
        p = sum(t if k % 4 == 0 else -t for k, t in enumerate(terms) if k % 2 == 0)
        q = sum(t if k % 4 == 1 else -t for k, t in enumerate(terms) if k % 2 == 1)
        # chi = x - pi/4 (nu = 0), x - 3 pi/4 (nu = 1); times sqrt 2:
        cos_chi, sin_chi = (c + s, s - c) if nu == 0 else (s - c, -(s + c))
        out.append((amp * (p * cos_chi - q * sin_chi), amp * (p * sin_chi + q * cos_chi)))
    (j0, y0), (j1, y1) = out
    return j0, j1, y0, y1


def _jy64(x: np.ndarray, which: int) -> np.ndarray:
    """J0, J1, Y0 or Y1 (which = 0, 1, 2, 3) of |x|, float64; nan at +-inf, as PyTorch's
    (the limit would be 0). Signs and edges are applied by the callers."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    out = np.full(ax.shape, np.nan)
    finite = np.isfinite(ax)
    for lo, hi, fn in ((0.0, _SMALL, _jy_series), (_SMALL, _LARGE, _jy_integrals),
                       (_LARGE, np.inf, _jy_asymptotic)):  # fmt: skip
        sel = finite & (ax >= lo) & (ax < hi)
        if sel.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                parts = fn(ax[sel], which) if fn is _jy_integrals else fn(ax[sel])
            out[sel] = parts[which]
    return out


def _j0_64(x):
    j0 = _jy64(x, 0)
    j0[np.asarray(x) == 0] = 1.0
    return j0


def _j1_64(x):
    j1 = _jy64(x, 1)
    j1 = np.where(np.asarray(x) < 0, -j1, j1)
    return np.where(np.asarray(x) == 0, np.asarray(x, np.float64), j1)  # J1(-0) = -0


def _y_edges(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    y = np.where(x < 0, np.nan, y)
    return np.where(x == 0, -np.inf, y)


def _y0_64(x):
    return _y_edges(_jy64(x, 2), x)


def _y1_64(x):
    return _y_edges(_jy64(x, 3), x)


# ---------------------------------------------------------------------------------------------
# K


def _k_series(x: np.ndarray):
    """K0, K1 at 0 < x < 2 (A&S 9.6.13, 9.6.11): the I series with log(x/2) and psi sums."""
    q = 0.25 * x * x
    i0 = np.ones_like(x)
    i1 = np.ones_like(x)
    t0 = np.ones_like(x)
    t1 = np.ones_like(x)
    harm = 0.0
    s0 = np.full_like(x, -_EULER_GAMMA)  # sum_k psi(k + 1) q^k / k!^2
    s1 = np.full_like(x, 1.0 - 2.0 * _EULER_GAMMA)
    for k in range(1, 25):
        t0 = t0 * q / (k * k)
        t1 = t1 * q / (k * (k + 1))
        i0 = i0 + t0
        i1 = i1 + t1
        harm += 1.0 / k
        s0 = s0 + (harm - _EULER_GAMMA) * t0
        s1 = s1 + (2.0 * harm + 1.0 / (k + 1) - 2.0 * _EULER_GAMMA) * t1
    i1 = i1 * (0.5 * x)
    log_half = np.log(0.5 * x)
    k0 = -log_half * i0 + s0
    k1 = 1.0 / x + log_half * i1 - 0.25 * x * s1
    return k0, k1


def _ke_trapezoid(x: np.ndarray):
    """e^x K0, e^x K1 at 2 <= x < 25: the trapezoidal rule on the cosh integral."""
    h = 0.1
    e0 = 0.5 * np.ones_like(x)  # the t = 0 node, half weight
    e1 = 0.5 * np.ones_like(x)
    for j in range(1, 60):  # t up to 5.9: e^(-2 * 2 sinh^2(2.95)) cosh(5.9) < 1e-30
        t = j * h
        sh = np.sinh(0.5 * t)
        f = np.exp(-2.0 * x * sh * sh)
        e0 += f
        e1 += f * np.cosh(t)
    return h * e0, h * e1


def _ke_asymptotic(x: np.ndarray):
    """e^x K0, e^x K1 at x >= 25 (A&S 9.7.2: sqrt(pi/(2x)) sum_k c_k)."""
    amp = _SQRT_PI_OVER_2 / np.sqrt(x)
    return tuple(sum(_asymptotic_terms(nu, x)) * amp for nu in (0, 1))


def _k64(nu: int, x: np.ndarray, scaled: bool) -> np.ndarray:
    """K_nu(x) (or e^x K_nu(x)), float64: inf at 0, nan below."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        sel = (x > 0) & (x < _SMALL)
        if sel.any():
            v = _k_series(x[sel])[nu]
            out[sel] = v * np.exp(x[sel]) if scaled else v
        for lo, hi, fn in ((_SMALL, _LARGE, _ke_trapezoid), (_LARGE, np.inf, _ke_asymptotic)):
            sel = (x >= lo) & (x < hi)
            if sel.any():
                v = fn(x[sel])[nu]
                out[sel] = v if scaled else v * np.exp(-x[sel])
    out[x == 0] = np.inf
    out[x == np.inf] = 0.0
    return out


# ---------------------------------------------------------------------------------------------
# The differentiable I functions


class I0(Function):
    """d/dx I0(x) = I1(x)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return _host(_i0_64, "i0", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return gy * (i1(x) if ops.is_graph else _host(_i1_64, "i1", x))


class I0e(Function):
    """d/dx e^-|x| I0(x) = i1e(x) - sgn(x) i0e(x) (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    save_inputs = True
    save_output = True

    def forward(self, x):
        return _host(lambda a: _ie64(0, a), "i0e", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        y = self.output(ops)
        d1 = i1e(x) if ops.is_graph else _host(lambda a: _ie64(1, a), "i1e", x)
        return gy * (d1 - ops.sign(x) * y)


class I1(Function):
    """d/dx I1(x) = I0(x) - I1(x)/x, 1/2 at 0 (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    save_inputs = True
    save_output = True

    def forward(self, x):
        return _host(_i1_64, "i1", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        y = self.output(ops)
        d0 = i0(x) if ops.is_graph else _host(_i0_64, "i0", x)
        zero = x == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            d = d0 - y / ops.where(zero, 1.0, x)
        return gy * ops.where(zero, 0.5, d)


class I1e(Function):
    """d/dx e^-|x| I1(x) = i0e(x) - i1e(x) (sgn(x) + 1/x), 1/2 at 0 (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    save_inputs = True
    save_output = True

    def forward(self, x):
        return _host(lambda a: _ie64(1, a), "i1e", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        y = self.output(ops)
        d0 = i0e(x) if ops.is_graph else _host(lambda a: _ie64(0, a), "i0e", x)
        zero = x == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            d = d0 - y * (ops.sign(x) + 1.0 / ops.where(zero, 1.0, x))
        return gy * ops.where(zero, 0.5, d)


@on_values
def i0(input) -> Tensor:
    """The modified Bessel function of the first kind of order 0 (torch.i0)."""
    return I0.apply(_floating(input))


@on_values
def i0e(input) -> Tensor:
    """The exponentially scaled e^-|x| I0(x) (torch.special.i0e)."""
    return I0e.apply(_floating(input))


@on_values
def i1(input) -> Tensor:
    """The modified Bessel function of the first kind of order 1 (torch.special.i1)."""
    return I1.apply(_floating(input))


@on_values
def i1e(input) -> Tensor:
    """The exponentially scaled e^-|x| I1(x) (torch.special.i1e)."""
    return I1e.apply(_floating(input))


# ---------------------------------------------------------------------------------------------
# The functions without a gradient (as PyTorch's: their results never require grad)


def _constant(kernel, cupy_name: str, input) -> Tensor:
    x = _floating(input)
    # (through untracked.computed: descent.compile replays it; it was frozen as a constant)
    return computed(_host_kernel, (x,), (kernel, cupy_name))


def _host_kernel(a, kernel, cupy_name: str):
    return _host(kernel, cupy_name, a)


# Module-level kernels (untracked.computed compares them by identity; a lambda per call made
# two recordings differ, so a compiled function ran eagerly)
def _i0_64(a):
    return _i64(0, a)


def _i1_64(a):
    return _i64(1, a)


def _k0_64(a):
    return _k64(0, a, False)


def _k1_64(a):
    return _k64(1, a, False)


def _k0e_64(a):
    return _k64(0, a, True)


def _k1e_64(a):
    return _k64(1, a, True)


def _spherical_j0(x):
    """sin(x) / x in float64, rounded once to x's dtype."""
    return _sinc_unnormalized(x.astype(np.float64)).astype(x.dtype)


def _sinc_unnormalized(x):
    """sin(x) / x on any array module, in x's dtype: 1 at 0, 0 at +-inf (as PyTorch)."""
    xp = backend.get_array_module(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = xp.sin(x) / x
    out = xp.where(xp.isinf(x), 0, out)
    return xp.where(x == 0, 1, out).astype(x.dtype, copy=False)


@on_values
def bessel_j0(input) -> Tensor:
    """The Bessel function of the first kind of order 0, J0 (no gradient, as PyTorch)."""
    return _constant(_j0_64, "j0", input)


@on_values
def bessel_j1(input) -> Tensor:
    """The Bessel function of the first kind of order 1, J1 (no gradient, as PyTorch)."""
    return _constant(_j1_64, "j1", input)


@on_values
def bessel_y0(input) -> Tensor:
    """The Bessel function of the second kind of order 0, Y0 (nan below 0, -inf at 0)."""
    return _constant(_y0_64, "y0", input)


@on_values
def bessel_y1(input) -> Tensor:
    """The Bessel function of the second kind of order 1, Y1 (nan below 0, -inf at 0)."""
    return _constant(_y1_64, "y1", input)


@on_values
def modified_bessel_i0(input) -> Tensor:
    """I0 without a gradient (torch.special.modified_bessel_i0; i0 is the differentiable one)."""
    return _constant(_i0_64, "i0", input)


@on_values
def modified_bessel_i1(input) -> Tensor:
    """I1 without a gradient (torch.special.modified_bessel_i1; i1 is the differentiable one)."""
    return _constant(_i1_64, "i1", input)


@on_values
def modified_bessel_k0(input) -> Tensor:
    """The modified Bessel function of the second kind of order 0, K0 (inf at 0, nan below)."""
    return _constant(_k0_64, "k0", input)


@on_values
def modified_bessel_k1(input) -> Tensor:
    """The modified Bessel function of the second kind of order 1, K1 (inf at 0, nan below)."""
    return _constant(_k1_64, "k1", input)


@on_values
def scaled_modified_bessel_k0(input) -> Tensor:
    """e^x K0(x) (torch.special.scaled_modified_bessel_k0)."""
    return _constant(_k0e_64, "k0e", input)


@on_values
def scaled_modified_bessel_k1(input) -> Tensor:
    """e^x K1(x) (torch.special.scaled_modified_bessel_k1)."""
    return _constant(_k1e_64, "k1e", input)


@on_values
def spherical_bessel_j0(input) -> Tensor:
    """The spherical Bessel function j0(x) = sin(x)/x (1 at 0, 0 at +-inf)."""
    # in float64 then rounded once, as the other kernels (untracked.computed: replayed)
    return computed(_spherical_j0, (_floating(input),), ())


# ---------------------------------------------------------------------------------------------
# The Airy function Ai


_AI0 = 0.3550280538878172  # Ai(0) = 1 / (3^(2/3) Gamma(2/3))
_AIP0 = 0.2588194037928068  # -Ai'(0) = 1 / (3^(1/3) Gamma(1/3))
_SQRT3 = 1.7320508075688772
_INV_SQRT_PI = 0.5641895835477563


def _airy_series(x: np.ndarray) -> np.ndarray:
    """Ai(x) = Ai(0) f(x) + Ai'(0) g(x) (A&S 10.4.2-3) for |x| <= 2: f = sum 3^k (1/3)_k
    x^(3k)/(3k)!, g = sum 3^k (2/3)_k x^(3k+1)/(3k+1)!, 30 terms."""
    c = x * x * x
    tf, tg = np.ones_like(x), x.copy()
    f, g = tf.copy(), tg.copy()
    for k in range(1, 30):
        tf = tf * c / ((3 * k - 1) * (3 * k))
        tg = tg * c / ((3 * k) * (3 * k + 1))
        f += tf
        g += tg
    return _AI0 * f - _AIP0 * g


def _airy_u(count: int = 30):
    """u_k of Ai's asymptotic expansions (A&S 10.4.58-60): u_0 = 1,
    u_k = u_(k-1) (6k - 5)(6k - 3)(6k - 1) / ((2k - 1) 216 k)."""
    u = [1.0]
    for k in range(1, count):
        u.append(u[-1] * (6 * k - 5) * (6 * k - 3) * (6 * k - 1) / ((2 * k - 1) * 216 * k))
    return u


def _airy64(x: np.ndarray) -> np.ndarray:
    """Ai(x), float64: nan at +-inf, as PyTorch's."""
    x = np.asarray(x, dtype=np.float64)
    out = np.full(x.shape, np.nan)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        sel = np.abs(x) <= 2.0
        if sel.any():
            out[sel] = _airy_series(x[sel])
        # x > 2: Ai(x) = sqrt(x/3)/pi K_1/3(zeta), zeta = 2/3 x^(3/2) (A&S 10.4.14); e^zeta
        # K_1/3 by the trapezoidal rule of _ke_trapezoid below zeta = 25, A&S 10.4.59 beyond.
        sel = (x > 2.0) & (x < np.inf)
        if sel.any():
            xs = x[sel]
            zeta = (2.0 / 3.0) * xs * np.sqrt(xs)
            near = zeta < _LARGE
            val = np.empty_like(xs)
            if near.any():
                z = zeta[near]
                h, acc = 0.1, 0.5 * np.ones_like(z)
                for j in range(1, 60):
                    sh = np.sinh(0.5 * j * h)
                    acc += np.exp(-2.0 * z * sh * sh) * np.cosh(j * h / 3.0)
                ke = h * acc
                val[near] = np.sqrt(xs[near] / 3.0) * _INV_PI * ke * np.exp(-z)
            if (~near).any():
                z, xf = zeta[~near], xs[~near]
                s = sum(((-1) ** k) * u / z**k for k, u in enumerate(_airy_u()))
                val[~near] = 0.5 * _INV_SQRT_PI * xf**-0.25 * np.exp(-z) * s
            out[sel] = val
        # x < -2: Ai(-y) = sqrt(y)/3 (J_1/3(zeta) + J_-1/3(zeta)) (A&S 10.4.15), the sum from
        # Schlaefli's integrals: 2/pi int_0^pi cos(t/3) cos(zeta sin t) dt
        # + sqrt(3)/pi int_0^inf e^(-zeta sinh t) sinh(t/3) dt; A&S 10.4.60 beyond zeta = 25.
        sel = (x < -2.0) & (x > -np.inf)
        if sel.any():
            y = -x[sel]
            zeta = (2.0 / 3.0) * y * np.sqrt(y)
            near = zeta < _LARGE
            val = np.empty_like(y)
            if near.any():
                z = zeta[near]
                t, w = _gauss(64)
                first = np.zeros_like(z)
                for th, wt in zip(np.pi * t, w, strict=True):
                    first += wt * np.cos(th / 3.0) * np.cos(z * np.sin(th))
                big_t = np.arcsinh(48.0 / z)
                second = np.zeros_like(z)
                for u, wt in zip(*_gauss(64), strict=True):
                    tt = u * big_t
                    second += wt * np.exp(-z * np.sinh(tt)) * np.sinh(tt / 3.0)
                jsum = 2.0 * first + _SQRT3 * _INV_PI * big_t * second
                val[near] = np.sqrt(y[near]) / 3.0 * jsum
            if (~near).any():
                z, yf = zeta[~near], y[~near]
                us = _airy_u()
                p = sum(((-1) ** (k // 2)) * u / z**k for k, u in enumerate(us) if k % 2 == 0)
                q = sum(((-1) ** (k // 2)) * u / z**k for k, u in enumerate(us) if k % 2 == 1)
                # sin(zeta + pi/4) and cos(zeta + pi/4), times sqrt 2, without rounding pi/4 in
                s_, c_ = np.sin(z), np.cos(z)
                val[~near] = (_INV_SQRT_PI * yf**-0.25 * 0.7071067811865476
                              * ((s_ + c_) * p - (c_ - s_) * q))  # fmt: skip
            out[sel] = val
    return out


@on_values
def airy_ai(input) -> Tensor:
    """The Airy function Ai(x) (torch.special.airy_ai; nan at +-inf, no gradient)."""
    return _constant(_airy64, "airy", input)
