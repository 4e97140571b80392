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

The float64 array kernels (the methods above) are in ops/special_kernels.py, re-exported here.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .. import backend
from ..autograd import _ZERO_GRAD as ZERO_GRAD
from ..autograd import Function
from ..dtypes import get_default_dtype
from ..errors import DescentError, DtypeError
from ..grad_fn import show_as
from ..opmath import HALF, in_float32
from ..tensor import Tensor, as_dtype
from ._common import (
    apply_binary,
    as_tensor,
    check_broadcast,
    check_int_range,
    is_scalar,
    refuse_kinds,
    result_type,
)
from .arithmetic import div, mul, pow
from .comparison import isnan
from .complex import ComplexSgn
from .elementwise import cast, sign, sin, where
from .math import _floating
from .nested_values import on_values
from .reduce import sum as _sum
from .special_kernels import (  # noqa: F401 - the array kernels, re-exported from here
    _BERNOULLI,
    _DIGAMMA_ROOT,
    _EULER_GAMMA,
    _GILES_CENTRE,
    _GILES_TAIL,
    _HALF_LOG_2PI,
    _LGAMMA_SERIES,
    _LIBM_KERNELS,
    _ROOT_SERIES,
    _SQRT_PI_OVER_2,
    _TWO_OVER_SQRT_PI,
    _cot_derivative_poly,
    _cupy_special,
    _digamma64,
    _digamma_root_series,
    _elementwise,
    _erfinv64,
    _host,
    _lgamma64,
    _lgamma_positive,
    _polygamma64,
    _zeta_minus_one,
)
from .untracked import computed

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
    """d/dy erfinv(y) = sqrt(pi)/2 exp(erfinv(y)^2) (inf at +-1). As PyTorch's formula, from
    the input (erfinv recomputed), not the output: PyTorch saves no result here, so the output
    may change in place before backward."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return _host(_erfinv64, "erfinv", x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        r = erfinv(x) if ops.is_graph else _host(_erfinv64, "erfinv", x)
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


@on_values
def erfc(input) -> Tensor:
    """The complementary error function 1 - erf(x), accurate in the tail (erfc(10) = 2.1e-45
    in float64, not 0). Integers compute in the default float dtype."""
    return Erfc.apply(_floating(input))


@on_values
def erfinv(input) -> Tensor:
    """The inverse error function on [-1, 1] (+-inf at +-1, nan outside)."""
    return Erfinv.apply(_floating(input))


@on_values
def lgamma(input) -> Tensor:
    """log |Gamma(x)| (+inf at 0, -1, -2, ... and at +-inf)."""
    return Lgamma.apply(_floating(input))


@on_values
def digamma(input) -> Tensor:
    """psi(x) = Gamma'(x) / Gamma(x) (-inf at +0, +inf at -0, nan at negative integers)."""
    return Digamma.apply(_floating(input))


@on_values
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

    def _graph_where(self, x, d, ops):
        lo, hi = (0.0, 1.0) if self.eps is None else (self.eps, 1 - self.eps)
        return ops.where((x >= lo) & (x <= hi), d, math.nan if self.eps is None else 0.0)

    def zero_backward(self, gy, ops):
        # sgn's known zero (gy: it, materialized): under create_graph PyTorch's zero tensor
        # divided by x (1 - x) stays a zero tensor, which its where materializes (0 inside, at
        # x = 0 too, where real zeros give 0 / 0 = nan); its kernel (no graph) divides zeros
        if not ops.is_graph:
            return self.backward(gy, ops)
        (x,) = self.inputs(ops)
        return self._graph_where(x, gy, ops)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if ops.is_graph:
            # create_graph: PyTorch's infinitely_differentiable_logit_backward, a where over
            # gy / (x (1 - x)) inside [lo, hi] (>= and <=: a nan x is outside, 0 with eps),
            # nan (no eps) or 0 outside. Its division keeps the sign of a zero (gy / -0.0 is
            # -inf, the kernel's scalar path gives gy * inf), and its second derivatives are
            # this where's (sessions 30-31 grad2 fuzz: 9 programs at x = -0.0, 12 at a nan or
            # out-of-range x with eps).
            with np.errstate(divide="ignore", invalid="ignore"):
                d = gy / (x * (1 - x))
            return self._graph_where(x, d, ops)
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
    saves_params = True  # PyTorch's NansumBackward0 saves self: a second backward raises
    # (computed by forward from the values: a saved slot, so that descent.compile does not
    # compare it between two recordings, which differed wherever the nans moved)
    saved_slots = ("keep",)

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
    refuse_kinds("nansum", x, "c", "nansum on CPU does not support complex inputs")
    if dtype is not None and as_dtype(dtype).kind == "c" and x._data.size:  # no complex kernel
        raise DtypeError(f'nansum: "nansum_cpu" not implemented for dtype={as_dtype(dtype)} '
                         f"(input {x.dtype} of shape {tuple(x.shape)}), as in PyTorch")  # fmt: skip
    x0 = x
    if x._data.dtype.kind in "fV":
        x = NanToZero.apply(x)
    return show_as(_sum(x, dim, keepdim, dtype=dtype), "NansumBackward0", (x0,))


def nanmean(input, dim=None, keepdim: bool = False, *, dtype=None, axis=None) -> Tensor:
    """Mean of the non-nan entries (torch.nanmean): nan where a slice is all nan or empty."""
    x = as_tensor(input)
    dim = axis if dim is None else dim
    if x._data.dtype.kind not in "fVc":  # (before dtype=: PyTorch refuses an integer input
        raise DtypeError(  # whatever the dtype, unlike mean)
            f"nanmean(): expected input to have floating point or complex dtype but got "
            f"{x.dtype} (shape {tuple(x.shape)}), as in PyTorch; convert with .float() (a "
            "dtype= does not do it for nanmean)"
        )
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
    return show_as(where((a >= b) | isnan(b), a, b), "FmaxBackward0", (input, other))


def fmin(input, other) -> Tensor:
    """Elementwise minimum ignoring nan; the gradient goes to the chosen operand, `input` on
    ties (torch.fmin)."""
    a, b = _promoted(input, other)
    return show_as(where((a <= b) | isnan(b), a, b), "FminBackward0", (input, other))


class Sgn(Function):
    """sgn(x) = sign(x) for real x: its gradient is PyTorch's "zero tensor" (the engine's
    ZERO_GRAD): the leaves get zeros, and no 0 * inf of an earlier op's derivative becomes nan."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    saves_params = True  # PyTorch's SgnBackward0 saves self and result (sign() saves nothing)

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
    refuse_kinds("signbit", x, "c", "take .real first")
    return computed(_signbit, (x,), ())  # (descent.compile records it: ops/untracked.py)


def _signbit(a):
    return backend.get_array_module(a).signbit(a)


def positive(input) -> Tensor:
    """The input itself (torch.positive); bool tensors raise, as in PyTorch."""
    x = as_tensor(input)
    if x._data.dtype.kind == "b":
        raise DtypeError(
            "positive: not supported for bool tensors (shape "
            f"{tuple(x.shape)}); convert with .int() or .float() first"
        )
    return x


class Sinc(Function):
    """d/dx sin(pi x) / (pi x) = (pi x cos(pi x) - sin(pi x)) / (pi x^2), 0 at x = 0 (PyTorch's
    form: the quotient rule's two 1/x^2 terms would cancel to noise at tiny x)."""

    # A known-zero gradient is materialized here (zero_backward): PyTorch's
    # where(pi x^2 == 0, 0, grad * ...) of its zero tensor is a tensor of real zeros, even at
    # x = inf (whose derivative is nan), which the ops before sinc then multiply (a nan x of
    # x * x gives a nan gradient there)
    save_inputs = True

    def zero_backward(self, gy, ops):
        return ops.where(True, 0, gy)

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
    if ops.is_graph:
        # Under create_graph the branch at 0 is -(pi^2 / 3) x gy: 0 there (a finite gy), and
        # its derivative is sinc''(0) = -pi^2 / 3 (the constant 0 gave 0; PyTorch's double
        # backward of its where gives nan)
        finite = ops.where(gy - gy == 0, gy, 0)  # (inf - inf and nan - nan are nan)
        return ops.where(zero, x * (-(math.pi**2) / 3) * finite + 0.0, gy * d)
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


@on_values
def heaviside(input, values) -> Tensor:
    """The step function with `values` at 0 (torch.heaviside); not differentiable. Both
    operands must have one dtype, as in PyTorch."""
    x, v = as_tensor(input), as_tensor(values)
    refuse_kinds("heaviside", x, "c", "heaviside is not yet implemented for complex tensors")
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
    # forward computes e from its input on every call (descent.compile's recorder and
    # signature skip it: a replay recomputes it; no saved slot, so a second backward works)
    computed_slots = ("e",)

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
        # PyTorch's input * pow(two, other), `two` a 0-d 2 of input's dtype (float32 for an
        # integer or bool one): the power is formed in the promoted complex dtype, so
        # complex128 * 2**uint8 255 is finite and a 0-d complex128 input keeps complex128
        # (pow(2.0, other) made a float32 power first). Its complex pow is C's cpow, which
        # descent does not copy bit for bit (tests/test_edges_s13.py's known class).
        x = as_tensor(input)
        two_dt = get_default_dtype() if x._data.dtype.kind in "biu" else x._data.dtype
        two = Tensor._wrap(backend.get_array_module(x._data).full((), 2.0, dtype=two_dt))
        return mul(x, pow(two, other))
    if isinstance(other, Tensor):
        x = as_tensor(input)
        if x._data.dtype.kind in "fV":  # PyTorch's exact kernel has no bool exponent
            refuse_kinds("ldexp", other, "b")
        if other._data.dtype.kind in "fV" and other._data.dtype != x._data.dtype:
            # another float dtype: PyTorch's input * pow(2.0, other), the power in other's
            # dtype (2 ** 0.5 is 1.414 in float16) before the promoted product
            return mul(x, pow(2.0, other))
        if other._data.dtype.kind in "iu" and x._data.dtype.kind in "fV":
            # (PyTorch's exact kernel is for a float input; an integer one is x * pow(2.0, e))
            if x._data.shape != other._data.shape:
                check_broadcast(LdexpInt, x, other)
            return LdexpInt.apply(x, other)
        if x._data.dtype.kind in "biu":
            # an integer or bool input: PyTorch's mul(input, pow(2.0, other)), the power in
            # the default float dtype (int8 1 * 2 ** uint8 254 is inf; promoting the exponent
            # to int8 first wrapped 254 to -2)
            return mul(x, pow(2.0, other))
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
    if type(exponent) is int:
        check_int_range(exponent)  # (PyTorch's parser: an OverflowError beyond 2**64)
    if dt == np.complex128 and not isinstance(exponent, complex) and exponent == 0:
        return pow(a, 0.0)  # PyTorch's pow with a real 0: ones (C's cpow(0, 0j) is nan)
    return pow(a, complex(exponent) if dt == np.complex128 else float(exponent))
