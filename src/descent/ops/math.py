"""More elementwise math: inverse trigonometric and hyperbolic functions, rounding, base-2 and
base-10 exponentials and logarithms, two-argument functions (atan2, hypot, copysign, logaddexp,
xlogy, fmod), lerp and nan_to_num.

As in `elementwise.py`, each op's forward (on arrays) sits next to its backward (written once
against `ops`, so `create_graph=True` differentiates it again). Backward code uses only what
arrays and Tensors share (arithmetic, `**`, `abs`, `//`) and the `ops.` names of the backward
namespaces; so cosh, for instance, is written (exp(x) + exp(-x)) / 2. Integer inputs compute in
the default float dtype, as PyTorch's do; the rounding functions keep an integer dtype.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DescentError, DtypeError
from ..grad_fn import show_as
from ..opmath import HALF, in_float32
from ..tensor import Tensor, get_default_dtype
from ._common import (
    apply_binary,
    as_tensor,
    check_broadcast,
    check_real_value,
    conj_if_complex,
    fill_int,
    holomorphic,
    input_ordered,
    is_scalar,
    refuse_complex,
    refuse_kinds,
    result_type,
)
from .arithmetic import _check_integer_divisor, _promoted_operands, add, mul, sub
from .elementwise import _array_copy, cast, where
from .half import rounds_once
from .untracked import computed

# ln 2 and ln 10 as the literals of PyTorch's derivative formulas (log10's is 2.3025850929940456,
# one unit in the last place below math.log(10.0): the same gradients to the last bit).
_LN2 = 0.6931471805599453
_LN10 = 2.3025850929940456


def _floating(x, op: str = "this op", allow_complex: bool = False) -> Tensor:
    """x as a Tensor of a floating dtype (integers and bools compute in float32; complex
    tensors are refused, not cast, unless `allow_complex`)."""
    if type(x) is not Tensor:
        x = as_tensor(x)
    if x._data.dtype.kind not in "fV":
        if allow_complex and x._data.dtype.kind == "c":
            return x
        refuse_complex(x, op)
        x = cast(x, get_default_dtype())
    return x


def _rsqrt(t, ops):
    """t ** -0.5 with PyTorch's rsqrt at -inf (nan; the power gives 0 there): a power, which
    arrays and Tensors share (sqrt is not in `ops`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return ops.where(t == -math.inf, math.nan, t**-0.5)


# ---------------------------------------------------------------------------------------------
# Inverse trigonometric and hyperbolic functions. Each saves its input: the derivatives are
# algebraic in x (1/sqrt(1 - x^2), ...), cheaper than recomputing from the output.


class Asin(Function):
    """d/dx asin(x) = 1 / sqrt(1 - x^2)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).arcsin(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return gy * _rsqrt(1 - x * x, ops)


class Acos(Function):
    """d/dx acos(x) = -1 / sqrt(1 - x^2)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).arccos(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return -gy * _rsqrt(1 - x * x, ops)


class Atan(Function):
    """d/dx atan(x) = 1 / (1 + x^2)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).arctan(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return gy / (x * x + 1)


class Sinh(Function):
    """d/dx sinh(x) = cosh(x) = (e^x + e^-x) / 2."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).sinh(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if not ops.is_graph and x.dtype == HALF:  # PyTorch's gy * cosh(x): float16's cosh is
            return gy * backend.get_array_module(x).cosh(x)  # rounded once, the exps twice
        if ops.is_graph:
            # cosh itself (as PyTorch, and Cosh's sinh): the derivative of (e^x + e^-x) / 2 is
            # the difference of two products, inf - inf = nan for an infinite gradient (exp of
            # sinh(30) overflowing: grad2 fuzz 31540855, 31510275)
            return gy * cosh(x)
        return gy * ((ops.exp(x) + ops.exp(-x)) * 0.5)


class Cosh(Function):
    """d/dx cosh(x) = sinh(x)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).cosh(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        # sinh itself (as PyTorch), not (e^x - e^-x) / 2, which cancels to noise at tiny x
        # (sinh(1e-15) came out 5% off).
        return gy * (sinh(x) if ops.is_graph else backend.get_array_module(x).sinh(x))


class Asinh(Function):
    """d/dx asinh(x) = 1 / sqrt(x^2 + 1)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).arcsinh(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return gy * (x * x + 1) ** -0.5


class Acosh(Function):
    """d/dx acosh(x) = 1 / sqrt(x^2 - 1) (x > 1)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).arccosh(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if x.dtype.kind == "c":  # the principal branch's derivative, PyTorch's for complex
            return gy * (_rsqrt(x + 1, ops) * _rsqrt(x - 1, ops))
        return gy * _rsqrt(x * x - 1, ops)


class Atanh(Function):
    """d/dx atanh(x) = 1 / (1 - x^2) (|x| < 1)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).arctanh(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return gy / (1 - x * x)


# ---------------------------------------------------------------------------------------------
# Base 2 and base 10


class Exp2(Function):
    """d/dx 2^x = 2^x ln 2 (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).exp2(x)

    def backward(self, gy, ops):
        y = self.output(ops)
        if not ops.is_graph and y.dtype == HALF:  # PyTorch's (gy y) ln 2 as float16 ops, ln 2
            return in_float32(operator.mul, gy * y, _LN2)  # kept in float32 (opmath)
        # PyTorch's order, grad * result * M_LN2: gy y overflows to inf first where y is near
        # the dtype's largest value (y ln 2 first gave a finite 2.95e38 for exp2(127.8) * 1.5)
        return (gy * y) * _LN2


class Log2(Function):
    """d/dx log2(x) = 1 / (x ln 2)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).log2(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if not ops.is_graph and x.dtype == HALF:  # PyTorch's float16 ops keep ln 2 in float32
            return gy / in_float32(operator.mul, x, _LN2)  # (NumPy rounds it: 1.5x the error)
        return gy / (x * _LN2)


class Log10(Function):
    """d/dx log10(x) = 1 / (x ln 10)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).log10(x)

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        if not ops.is_graph and x.dtype == HALF:  # ln 10 kept in float32, as PyTorch's
            return gy / in_float32(operator.mul, x, _LN10)
        return gy / (x * _LN10)


def _unary(op, doc):
    # Each of these is holomorphic and its backward a product of gy with f'(x) written in
    # complex-safe arithmetic: complex inputs get gy * conj(f'(z)) through the decorator.
    holomorphic(op)
    name = op.__name__.lower()

    def fn(x) -> Tensor:
        return op.apply(_floating(x, name, allow_complex=True))

    fn.__name__ = fn.__qualname__ = op.__name__.lower()
    fn.__doc__ = doc
    return fn


asin = _unary(Asin, "Inverse sine (radians), elementwise.")
acos = _unary(Acos, "Inverse cosine (radians), elementwise.")
atan = _unary(Atan, "Inverse tangent (radians), elementwise.")
sinh = _unary(Sinh, "Hyperbolic sine.")
cosh = _unary(Cosh, "Hyperbolic cosine.")
asinh = _unary(Asinh, "Inverse hyperbolic sine.")
acosh = _unary(Acosh, "Inverse hyperbolic cosine (nan below 1).")
atanh = _unary(Atanh, "Inverse hyperbolic tangent (+-inf at +-1, nan beyond).")
exp2 = _unary(Exp2, "2 ** x.")
log2 = _unary(Log2, "Base-2 logarithm.")
log10 = _unary(Log10, "Base-10 logarithm.")
# PyTorch's NumPy-style aliases.
arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh


# ---------------------------------------------------------------------------------------------
# Rounding: piecewise constant, so the gradient is zero (PyTorch's floor/ceil/round/trunc give
# zeros too, and keep the input connected: a model that rounds still backpropagates).


class Round(Function):
    """d/dx floor(x) = d/dx ceil(x) = d/dx trunc(x) = d/dx round(x) = 0 (almost everywhere)."""

    __slots__ = ("mode", "decimals")

    def forward(self, x):
        xp = backend.get_array_module(x)
        if self.mode == "round":
            # Half to even, as PyTorch's (and NumPy's); with decimals, x * 10^d is rounded
            # (float16 in float32, as PyTorch: 65504 * 10 overflows float16)
            if self.decimals and x.dtype == np.float16:
                return xp.round(x.astype(np.float32), self.decimals).astype(np.float16)
            return xp.round(x, self.decimals)
        return getattr(xp, self.mode)(x)

    def backward(self, gy, ops):
        # Zeros, not None (the input stays connected) and not gy * 0: PyTorch's zeros_like(grad)
        # also where gy is inf or nan. Under create_graph they hang on no graph (zeros_like's
        # result does not depend on grad): a where over gy passed a 0 back into gy's own graph,
        # where 0 times an infinite derivative was nan (trunc(x) ** y at a zero base: grad2
        # fuzz 30510099)
        return ops.where(True, 0, gy.detach() if ops.is_graph else gy)


def _rounding(mode, doc):
    def fn(x) -> Tensor:
        x = as_tensor(x)
        refuse_kinds(mode, x, "bc")  # PyTorch has no bool or complex kernel for these
        if x._data.dtype.kind not in "fV":  # integers are already whole: an integer copy
            return computed(_array_copy, (x,), ())  # (replayed by descent.compile)
        return Round.apply(x, mode=mode, decimals=0)

    fn.__name__ = fn.__qualname__ = mode
    fn.__doc__ = doc
    return fn


floor = _rounding("floor", "The largest integer <= x (gradient 0).")
ceil = _rounding("ceil", "The smallest integer >= x (gradient 0).")
trunc = _rounding("trunc", "x rounded toward zero (gradient 0).")
fix = trunc


def round(x, decimals: int = 0) -> Tensor:
    """x rounded to `decimals` decimal places, halves to even (gradient 0), as torch.round."""
    x = as_tensor(x)
    refuse_kinds("round", x, "bc")  # PyTorch has no bool or complex kernel for round
    if decimals:  # nor an integer kernel for round(decimals=)
        refuse_kinds("round", x, "iu", "round(decimals=) takes floating tensors: .float() first")
    if x._data.dtype.kind not in "fV" and decimals >= 0:
        return computed(_array_copy, (x,), ())  # (replayed by descent.compile)
    return Round.apply(_floating(x), mode="round", decimals=int(decimals))


def frac(x) -> Tensor:
    """x - trunc(x), the fractional part with x's sign; d/dx = 1. Floating tensors only (an
    integer's is 0: PyTorch has no kernel for it)."""
    refuse_kinds("frac", as_tensor(x), "biuc")
    x = _floating(x)
    # trunc detached: its gradient is 0 anyway, and PyTorch's frac backward is `grad` itself,
    # which passes sgn's known-zero gradient on (trunc's zeros_like materialized it: nan
    # from 0 * inf in prod's backward before it)
    return show_as(sub(x, trunc(x).detach()), "FracBackward0", (x,))  # (PyTorch's one node)


# ---------------------------------------------------------------------------------------------
# Two-argument functions (broadcasting; the engine sums each gradient back to its input).


class Atan2(Function):
    """atan2(a, b), the angle of (b, a): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    broadcasts = True

    save_inputs = True

    def forward(self, a, b):
        return backend.get_array_module(a).arctan2(a, b)

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        # PyTorch's form: (gy * b) / (a^2 + b^2), with 1 / 0 taken as 0 (the origin, or a^2 + b^2
        # underflowing) rather than inf.
        d = a * a + b * b
        with np.errstate(divide="ignore"):
            r = ops.where(d == 0, 0, 1 / ops.where(d == 0, 1, d))
        return gy * b * r, gy * -a * r


class Hypot(Function):
    """h = sqrt(a^2 + b^2): d/da = a / h, d/db = b / h (reuses the output)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    broadcasts = True

    save_inputs = True
    save_output = True

    def forward(self, a, b):
        return backend.get_array_module(a).hypot(a, b)

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        # PyTorch's order, gy * a / h: (1e-45 * 1) / 1e-45 is 1 where 1 / 1e-45 overflows.
        h = self.output(ops)
        return gy * a / h, gy * b / h


class Copysign(Function):
    """|a| with the sign of b: d/da = y / a (+-1; 0 where a = 0, as PyTorch), d/db = 0."""

    zero_passes = (True, False)  # a known-zero gradient passes (PyTorch's formula multiplies it)
    broadcasts = True

    save_inputs = True
    save_output = True

    def forward(self, a, b):
        return backend.get_array_module(a).copysign(a, b)

    def backward(self, gy, ops):
        a, _ = self.inputs(ops)
        y = self.output(ops)
        zero = a == 0
        # gy * ratio, the ratio y / a (+-1) with a's zeros divided by 1 and masked to 0: a
        # product, as PyTorch's (a nan gy stays nan there). b gets zeros (PyTorch's zeros_like,
        # also where gy is inf or nan).
        ratio = ops.where(zero, 0, y / ops.where(zero, 1, a))
        return gy * ratio, ops.where(True, 0, gy)


class LogAddExp(Function):
    """y = log(e^a + e^b) (base 2 with `base2`): d/da = 1 / (1 + e^(b - a)) and d/db =
    1 / (1 + e^(a - b)), the two softmax weights (2^(b - a) in base 2)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    broadcasts = True

    __slots__ = ("base2",)
    save_inputs = True

    def forward(self, a, b):
        xp = backend.get_array_module(a)
        if a.dtype.kind == "c":
            return log_add_exp_complex(a, b)
        return xp.logaddexp2(a, b) if self.base2 else xp.logaddexp(a, b)

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        k = _LN2 if self.base2 else 1.0
        # PyTorch's form: with an infinite input the weights are exactly 0 and 1 (e^(a - y)
        # would be e^(inf - inf) = nan); exp may overflow to inf, whose reciprocal is 0.
        # Complex (base e only): the conjugate weights, PyTorch's convention.
        with np.errstate(over="ignore"):
            wa = conj_if_complex(ops, ops.exp((b - a) * k) + 1)
            wb = conj_if_complex(ops, ops.exp((a - b) * k) + 1)
            return gy / wa, gy / wb


def log_add_exp_complex(a, b):
    """log(e^a + e^b) of complex arrays (NumPy has no complex logaddexp), elementwise as
    PyTorch's _log_add_exp_helper (LogAddExp.h): max + log1p(exp(min - max)) with min and max
    by the real part, NaN (in either part) infectious, two infinite real parts of one sign
    apart (-inf: the smaller; +inf: log(e^a + e^b))."""
    xp = backend.get_array_module(a)
    a, b = xp.broadcast_arrays(a, b)
    with np.errstate(all="ignore"):
        a_low = a.real < b.real
        lo, hi = xp.where(a_low, a, b), xp.where(a_low, b, a)
        both_inf = ~xp.isfinite(lo.real) & (lo.real == hi.real)
        out = xp.where(
            both_inf,
            xp.where(lo.real < 0, lo, xp.log(xp.exp(lo) + xp.exp(hi))),
            xp.log1p(xp.exp(lo - hi)) + hi,
        )
        nan = xp.asarray(complex(np.nan, np.nan), out.dtype)
        return xp.where(xp.isnan(a) | xp.isnan(b), nan, out)


class Xlogy(Function):
    """x log(y), 0 where x = 0 (unless y is nan): d/dx = log(y), d/dy = x / y; PyTorch's
    masking: d/dx = 0 where x = 0 and y <= 0, and where x = 0 for a Python-number y that is
    not > 0 (`nan_other`: its xlogy.Scalar_Other formula, which differs at a nan y only)."""

    zero_passes = (False, True)  # a known-zero gradient passes (PyTorch's formula multiplies it)
    broadcasts = True

    save_inputs = True
    __slots__ = ("low", "nan_other")
    # bfloat16 operands (ops/bfloat16.py): `low` is set to the dtype, and log(y) is rounded to
    # it before the product, as PyTorch's kernel computes x * std::log(y) on bfloat16 values
    bfloat16_param = "low"

    def forward(self, x, y):
        xp = backend.get_array_module(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = x * round_to(xp.log(y), getattr(self, "low", None))
        return xp.where((x == 0) & ~xp.isnan(y), 0, out).astype(out.dtype, copy=False)

    def backward(self, gy, ops):
        x, y = self.inputs(ops)
        with np.errstate(divide="ignore", invalid="ignore"):
            # PyTorch's xlogy(gy, y): 0 where gy is 0 (unless y is nan), and 0 where x = 0 and
            # y <= 0 (log 1 = 0 there: no -inf enters even a second-order pass).
            edge = (x == 0) & ((y <= 0) | getattr(self, "nan_other", False))
            if ops.is_graph:
                # PyTorch's xlogy(gy, y) as an op: its derivative in gy is log(y) also where
                # gy = 0 (the masked product below has 0 there: a second order through a zero
                # first-order gradient, xlogy(x, 2) ** 2 at x = 0, lost 2 log(2)^2)
                gx = ops.where(edge, 0, Xlogy.apply(gy, y))
            else:
                flat = edge | ((gy == 0) & (y == y))
                # the edge is 0 whatever gy is (PyTorch masks after the product: a nan gy too)
                gx = ops.where(edge, 0, gy * ops.log(ops.where(flat, 1, y)))
            gyy = gy * x / y
        return gx, gyy


class Fmod(Function):
    """fmod(a, b) = a - trunc(a / b) b (the sign of a): d/da = 1, d/db = -trunc(a / b)."""

    zero_passes = (True, False)  # a known-zero gradient passes (PyTorch's formula multiplies it)
    broadcasts = True

    save_inputs = True
    saved_for = (1,)  # only b's gradient reads them (PyTorch's FmodBackward1 saves them then)

    def forward(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):  # fmod(x, 0) is nan
            return backend.get_array_module(a).fmod(a, b)

    def backward(self, gy, ops):
        if self.parents[1] is None:
            return gy, None
        a, b = self.inputs(ops)
        # PyTorch's -gy * trunc(a / b), the quotient a constant (no gradient flows through it).
        with np.errstate(divide="ignore", invalid="ignore"):
            q = a / b
            n = trunc(q).detach() if ops.is_graph else backend.get_array_module(q).trunc(q)
        return gy, -gy * n


def _binary_float(op, a, b, **params):
    """A binary op on two operands promoted to one floating dtype (scalars stay weak)."""
    if not isinstance(a, Tensor) and not is_scalar(a):
        a = as_tensor(a)
    if not isinstance(b, Tensor) and not is_scalar(b):
        b = as_tensor(b)
    # PyTorch's result type, then the default float dtype if it is not floating (an int64
    # tensor with a float64 0-d tensor computes in float64, int with int in float32).
    dt = result_type(a, b)
    if dt.kind == "c" and not (op is LogAddExp and not params.get("base2")):
        # PyTorch has no complex kernel for these (casting would drop the imaginary parts)
        raise DtypeError(
            f"{op.__name__.lower()}: not implemented for complex operands (result dtype {dt}), "
            "as in PyTorch; take .real, .imag or .abs() first"
        )
    if dt.kind not in "fcV":
        dt = get_default_dtype()
    if isinstance(a, Tensor) and a._data.dtype != dt:
        a = cast(a, dt)
    if isinstance(b, Tensor) and b._data.dtype != dt:
        b = cast(b, dt)
    if params:
        return apply_binary(_Bound(op, params), a, b)
    return apply_binary(op, a, b)


class _Bound:
    """`op` with fixed parameters, shaped like an op class for `apply_binary`."""

    def __init__(self, op, params):
        self.op, self.params, self.__name__ = op, params, op.__name__

    def apply(self, a, b):
        return self.op.apply(a, b, **self.params)


def atan2(input, other) -> Tensor:
    """The angle of the point (other, input) in (-pi, pi], elementwise. Two tensors, as
    PyTorch's binding (a Python number is its TypeError)."""
    for t, arg in ((input, "input"), (other, "other")):
        if not isinstance(t, Tensor):
            raise TypeError(f"atan2(): argument '{arg}' must be Tensor, not {type(t).__name__} "
                            f"(wrap it: descent.tensor({t!r}))")  # fmt: skip
    return _binary_float(Atan2, input, other)


arctan2 = atan2


def hypot(input, other) -> Tensor:
    """sqrt(input^2 + other^2) without overflow (floating operands only, as in PyTorch)."""
    if result_type(input, other).kind in "biu":
        raise DtypeError(
            f'"hypot_cpu" not implemented for integer or bool operands (result dtype '
            f"{result_type(input, other)}), as in PyTorch; convert with .float() first"
        )
    return _binary_float(Hypot, input, other)


def copysign(input, other) -> Tensor:
    """|input| with the sign of other (the sign bit: -0.0 counts as negative)."""
    return _binary_float(Copysign, input, other)


def logaddexp(input, other) -> Tensor:
    """log(exp(input) + exp(other)), computed without overflow (floating operands, as
    PyTorch's kernel: two integer or bool operands raise)."""
    _refuse_integer_result("logaddexp", input, other)
    return _binary_float(LogAddExp, input, other, base2=False)


def logaddexp2(input, other) -> Tensor:
    """log2(2^input + 2^other), computed without overflow."""
    _refuse_integer_result("logaddexp2", input, other)
    return _binary_float(LogAddExp, input, other, base2=True)


def _refuse_integer_result(op, a, b) -> None:
    dt = result_type(a, b)
    if dt.kind in "biu":
        raise DtypeError(
            f'"{op}_cpu" not implemented for {dt} operands, as in PyTorch; convert with '
            ".float() first"
        )


def xlogy(input, other) -> Tensor:
    """input * log(other), and 0 where input is 0 (so 0 log 0 = 0, entropy's convention)."""
    return _binary_float(Xlogy, input, other, low=None, nan_other=_is_nan_number(other))


def _is_nan_number(x) -> bool:
    """A Python (or NumPy) number that is nan: PyTorch's Scalar_Other gradient formulas of
    xlogy / xlog1py mask where x = 0 unless the number is > 0 (> -1), a tensor's only where
    it is <= 0 (<= -1): the two differ at nan."""
    return is_scalar(x) and x != x


def round_to(a, low):
    """a rounded to the low-precision dtype `low` (bfloat16) and back, where a kernel rounds an
    intermediate value as PyTorch's does on bfloat16 operands; a itself when low is None."""
    return a if low is None else a.astype(low).astype(a.dtype)


def fmod(input, other) -> Tensor:
    """The C remainder a - trunc(a / b) b, with the sign of the dividend (unlike remainder);
    integers stay integers (a zero integer divisor raises, as in PyTorch)."""
    a, b = _promoted_operands(input, other)
    if a._data.dtype.kind in "fV":
        return apply_binary(Fmod, a, b)
    _check_integer_divisor("fmod", a, b)
    if a._data.shape != b._data.shape:
        check_broadcast(Fmod, a, b)
    # (through untracked.computed, so descent.compile replays it on each call's values:
    # computed on the arrays it was a constant the replay froze; session 19's fuzzer)
    return computed(_fmod_arrays, (a, b), ())


def _fmod_arrays(a, b):
    """C's remainder of integer arrays (fmod's kernel, untracked.computed)."""
    return backend.get_array_module(a).fmod(a, b)


class LerpScalar(Function):
    """lerp(a, b, w) for a number w, from the nearer end as PyTorch: d/da = 1 - w, d/db = w
    (PyTorch's lerp_backward; the composite's chain rule made an infinite gradient nan, as
    inf - inf * 0 at w = 0)."""

    __slots__ = ("w",)
    zero_passes = True  # PyTorch's lerp_backward multiplies its gradient
    broadcasts = True

    def forward(self, a, b):
        w = self.w
        with np.errstate(invalid="ignore", over="ignore"):
            d = b - a
            return a + w * d if abs(w) < 0.5 else b - d * (1 - w)

    def backward(self, gy, ops):
        # Products with the Python numbers: gy's dtype is kept (a float32 gy stays float32).
        return gy * (1 - self.w), gy * self.w


@rounds_once  # one kernel in PyTorch: bfloat16 rounds the result once
def lerp(input, end, weight) -> Tensor:
    """input + weight (end - input), computed as PyTorch does: from the nearer end, so
    end - (end - input) (1 - weight) for |weight| >= 0.5 (lerp(inf, 1, 2) is -inf, not nan);
    weight a number or a tensor (composite: its gradient comes from the primitives).
    Floating and complex tensors only, as PyTorch's kernels."""
    if not isinstance(end, Tensor):  # PyTorch's binding takes a tensor end only
        raise TypeError(f"lerp: end must be a Tensor, got {type(end).__name__} {end!r} (input "
                        f"of shape {tuple(as_tensor(input).shape)}), as in PyTorch; pass "
                        f"full_like(input, {end!r})")  # fmt: skip
    refuse_kinds("lerp", as_tensor(input), "biu")
    check_real_value("lerp", input, weight)
    if isinstance(weight, (int, float)) and not isinstance(weight, bool):
        fill_int(weight, as_tensor(input)._data.dtype)  # PyTorch's checked conversion
    for name, t in (("end", end), ("weight", weight)):  # PyTorch's kernel takes one dtype
        if isinstance(t, Tensor) and isinstance(input, Tensor) and t.dtype != input.dtype:
            raise DescentError(
                f"lerp: expected dtype {input.dtype} for `{name}` but got dtype {t.dtype}, as "
                "in PyTorch; convert it first"
            )
    if not isinstance(weight, Tensor):
        a, b = _promoted_operands(input, end)
        if a._data.dtype.kind == "f":  # PyTorch's rule: d/dinput = 1 - w, d/dend = w
            if a._data.shape != b._data.shape:
                check_broadcast(LerpScalar, a, b)
            return LerpScalar.apply(a, b, w=float(weight))
    d = sub(end, input)
    if not isinstance(weight, Tensor):
        if abs(weight) < 0.5:
            return add(input, mul(weight, d))
        return sub(end, mul(d, 1 - weight))
    near = weight.abs() < 0.5
    return where(near, add(input, mul(weight, d)), sub(end, mul(d, sub(1, weight))))


# ---------------------------------------------------------------------------------------------
# nan_to_num


class NanToNum(Function):
    """Replace nan, +inf, -inf by numbers; d/dx = 1 where x is finite, 0 where it was replaced
    (PyTorch's grad * isfinite(x))."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("nan", "posinf", "neginf", "finite")
    saved_slots = ("finite",)  # the bool mask of finite inputs, read only by backward

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.finite = xp.isfinite(x)
        # (in x's memory order, as PyTorch's: NumPy's copy of a broadcast x is F-ordered)
        return input_ordered(
            xp.nan_to_num(x, nan=self.nan, posinf=self.posinf, neginf=self.neginf), x)

    def backward(self, gy, ops):
        # A product, as PyTorch's grad * isfinite(x): an inf in gy at a replaced entry is nan.
        return gy * self.finite


def _nan_to_num_arrays(a, nan, posinf, neginf):
    """NumPy's nan_to_num (complex nan_to_num's kernel, untracked.computed)."""
    xp = backend.get_array_module(a)  # (in a's memory order, as PyTorch's)
    return input_ordered(xp.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf), a)


def nan_to_num(x, nan: float = 0.0, posinf=None, neginf=None) -> Tensor:
    """nan -> `nan`, +inf -> `posinf`, -inf -> `neginf` (the dtype's largest/smallest finite
    values by default), as torch.nan_to_num."""
    x = as_tensor(x)
    if x._data.dtype.kind == "c":
        # each part replaced (the real dtype's limits by default); no gradient, as PyTorch's
        # "nan_to_num does not support automatic differentiation for outputs with complex dtype"
        return computed(_nan_to_num_arrays, (x,), (nan, posinf, neginf))
    if x._data.dtype.kind not in "fV":
        return computed(_array_copy, (x,), ())  # (replayed by descent.compile)
    if x._data.dtype.kind == "V":  # bfloat16's own limits (NumPy's are float32's, rounded to inf)
        big = 3.3895313892515355e38
        posinf = big if posinf is None else posinf
        neginf = -big if neginf is None else neginf
    return NanToNum.apply(x, nan=nan, posinf=posinf, neginf=neginf)
