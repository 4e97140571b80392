"""Arithmetic: + - * / ** and negation, their tensor-scalar forms, and the one dispatch.

Tensor's operators (`x + y`, `x * 0.5`, `2 - x`) and `descent.add/sub/mul/div` all go through
`_arithmetic`, which picks the op from the operand types: a tensor-tensor op (`Add`, ...), or a
tensor-scalar op (`AddScalar`, ...) that keeps the Python number as a constant instead of
turning it into a tensor. Broadcasting in backward is the engine's job (see autograd.py).

Rounded and integer-valued division (floor_divide, remainder, div's rounding_mode=) is in
ops/division.py; its names are re-exported here.
"""

from __future__ import annotations

import cmath
import math
import operator

import numpy as np

from .. import backend, opmath
from ..autograd import Function
from ..errors import DescentError, DtypeError
from ..tensor import Tensor, get_default_dtype
from ._common import (
    apply_binary,
    as_tensor,
    c_ordered,
    check_broadcast,
    check_int_range,
    conj_if_complex,
    fill_int,
    half_value,
    input_ordered,
    is_scalar,
    promote,
    refuse_bool_uint64,
    wrap_int,
)
from .division import (  # noqa: F401 - moved to ops/division.py, re-exported from here
    FloorDivide,
    Remainder,
    RoundedDiv,
    RRemainder,
    _check_integer_divisor,
    _in_float32,
    _promoted_operands,
    divide_rounded,
    floor_divide,
    remainder,
)
from .elementwise import cast
from .half import in_float32
from .out_arg import write_out
from .untracked import computed


def _bool_sub_message(*shapes) -> str:
    shapes = " and ".join(str(tuple(s)) for s in shapes)
    return (
        f"sub: subtraction with a bool tensor (shapes {shapes}) is not supported, as in "
        "PyTorch; to invert a mask use ~mask or logical_not(mask), to subtract the values "
        "convert first with .int() or .float()"
    )


def _refuse_bool_sub(a, b) -> None:
    """PyTorch's check: `-` with a bool tensor operand (or a bool scalar) raises."""
    if any((isinstance(v, Tensor) and v._data.dtype.kind == "b")
           or isinstance(v, (bool, np.bool_)) for v in (a, b)):  # fmt: skip
        shapes = [tuple(v.shape) if isinstance(v, Tensor) else () for v in (a, b)]
        raise DescentError(_bool_sub_message(*shapes))


# ---------------------------------------------------------------------------------------------
# Arithmetic


class Add(Function):
    """d/da (a + b) = 1, d/db (a + b) = 1."""

    zero_passes = True  # PyTorch's AddBackward passes its gradient (a zero tensor too)
    broadcasts = True

    def forward(self, a, b):
        return a + b

    # Both inputs get gy itself (no copy): the engine accumulates out of place, so sharing one
    # array between two gradients is safe. Broadcast inputs are summed back by the engine.
    def backward(self, gy, ops):
        return gy, gy


class Sub(Function):
    """d/da (a - b) = 1, d/db (a - b) = -1."""

    # PyTorch's SubBackward passes grad to a (its zero tensor too); -grad materializes it
    zero_passes = (True, False)
    broadcasts = True

    def forward(self, a, b):
        try:
            return a - b
        except TypeError:  # NumPy refuses bool - bool, as PyTorch does: say so in its words
            raise DescentError(_bool_sub_message(a.shape, b.shape)) from None

    def backward(self, gy, ops):
        # The negation is skipped when b needs no gradient (a constant, or under no_grad).
        return gy, (-gy if self.parents[1] is not None else None)


class Mul(Function):
    """d/da (a * b) = b, d/db (a * b) = a (conjugated for complex inputs: ga = gy conj(b))."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    broadcasts = True

    # Each input's gradient needs the other input: both are saved (and versioned); an input is
    # read (and its version checked) only when the other one gets a gradient, as PyTorch saves.
    save_inputs = True
    cross_saved = True

    def forward(self, a, b):
        return a * b

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        if a.dtype.kind == "c":  # PyTorch's complex convention: gy times the conjugate
            a, b = conj_if_complex(ops, a), conj_if_complex(ops, b)
        p = self.parents
        return (gy * b if p[0] is not None else None), (gy * a if p[1] is not None else None)


class Div(Function):
    """d/da (a / b) = 1/b, d/db (a / b) = -a/b^2 (conjugated for complex inputs)."""

    zero_passes = (True, False)  # a known-zero gradient passes (PyTorch's formula multiplies it)
    broadcasts = True

    save_inputs = True
    # a is read (its version checked) only for b's gradient, b for both: PyTorch's DivBackward0
    # saves self only when other requires grad (y / c; y.add_(1) then backward runs there)
    cross_saved = (True, False)

    def forward(self, a, b):
        return a / b

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        if a.dtype.kind == "c":  # PyTorch's complex convention: gy times the conjugate
            a, b = conj_if_complex(ops, a), conj_if_complex(ops, b)
        # d/db (a/b) = -gy * ((a / b) / b), PyTorch's order: b is squared by two divisions rather
        # than by b * b (which overflows float16 first), and where 1 / b overflows (a tiny b) a
        # zero gy gives nan as there.
        ga = gy / b if self.parents[0] is not None else None
        gb = -gy * ((a / b) / b) if self.parents[1] is not None else None
        return ga, gb


class Pow(Function):
    """d/da a^b = b a^(b-1) (0 where b = 0); d/db a^b = a^b log(a) (0 where a = 0 and b >= 0;
    nan for a negative base), PyTorch's conventions (pow_backward_self/_exponent)."""

    # A known-zero gradient passes to the exponent (PyTorch's grad * where(...)) but becomes
    # real zeros for the base (zero_backward): a nan-making backward before it (var of one
    # element) turns them into nan, as PyTorch's.
    zero_passes = (False, True)
    broadcasts = True

    save_inputs = True
    save_output = True

    def forward(self, a, b):
        if a.dtype.kind in "iu" and (b < 0).any():
            return _int_pow(a, b)
        if a.dtype.kind == "c" or b.dtype.kind == "c":
            return complex_pow(a, b)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 = inf, (-1) ** 0.5 = nan
            if b.size == 1 and b.dtype.kind == "f" and b.reshape(()) == 0.5:
                # NumPy turns a one-element exponent of 0.5 into sqrt (sqrt(-inf) = nan,
                # sqrt(-0.) = -0.); PyTorch's tensor exponent is C's pow (inf, 0.): a full
                # exponent array (not a broadcast one) takes NumPy's general loop
                shape = np.broadcast_shapes(a.shape, b.shape)
                full = backend.get_array_module(a).full(shape or (1,), 0.5, dtype=b.dtype)
                return (a ** full).reshape(shape)
            return a**b

    def zero_backward(self, gy, ops):
        # gy: the known zero, materialized. PyTorch's pow_backward_self is where(b == 0, 0,
        # ZeroTensor * ...), zeros whatever a and b hold (no 0 * nan); the exponent's entry is
        # replaced by the known zero (zero_passes).
        return gy, gy

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        # PyTorch's PowBackward1 unpacks its saved result in every backward: an in-place change
        # of the output (y.pow_(e).pow_(3)) raises even where only the base needs a gradient
        y = self.output(ops)
        if y.dtype.kind == "c" and not ops.is_graph:  # PyTorch's formulas over its cpow
            return _complex_pow_vjp(self, gy, a, b, y)
        if a.dtype.kind == "c":  # complex: gy times the conjugate derivatives
            a, b = conj_if_complex(ops, a), conj_if_complex(ops, b)
        ga = gb = None
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.parents[0] is not None:
                # b a^(b-1) is 0 * 0^-1 = nan at a = b = 0, where the true derivative of a^0 = 1
                # is 0: PyTorch masks b = 0 to 0, and so does this.
                ga = ops.where(b == 0, 0, gy * (b * a ** (b - 1)))  # PyTorch's order
            if self.parents[1] is not None:
                # a^b log(a): at a = 0 with b >= 0 the limit is 0 (0 ** x is flat for x > 0), so
                # log's argument is replaced by 1 there (log 1 = 0, and no -inf enters even a
                # second-order pass); a negative base keeps log(a) = nan, as in PyTorch, and
                # 0 ** b with b < 0 gives inf * -inf = -inf.
                y = conj_if_complex(ops, y)
                if b.dtype.kind == "c":  # flat only for a real b >= 0 (PyTorch's: 0 ** z with
                    flat = (a == 0) & (b.imag == 0) & (b.real >= 0)  # Im z != 0 gives nan)
                else:
                    flat = (a == 0) & (b >= 0)
                gb = gy * (y * ops.log(ops.where(flat, 1, a)))
        return ga, gb


def complex_pow(a, b):
    """a ** b for complex arrays as PyTorch's CPU kernel computes it: C's cpow, which glibc
    writes as cexp(b * clog(a)) with C's complex product (Annex G: an infinite factor keeps the
    product infinite where the plain formula gives nan + nan j). So 0 ** 0 is nan + nan j and
    0 ** -1 inf + nan j, where NumPy's power special-cases zeros and integer exponents."""
    xp = backend.get_array_module(a, b)
    dt = np.result_type(a.dtype, b.dtype)
    a, b = xp.broadcast_arrays(xp.asarray(a, dtype=dt), xp.asarray(b, dtype=dt))
    with np.errstate(all="ignore"):
        return xp.exp(_annex_g_product(xp, b, xp.log(a)))


def _annex_g_product(xp, x, y):
    """x * y for complex arrays with C99 Annex G's recovery of infinities (GCC's __muldc3:
    where both parts of the plain product are nan, an infinite operand makes them +-inf)."""
    a, b, c, d = x.real, x.imag, y.real, y.imag
    re, im = a * c - b * d, a * d + b * c
    bad = xp.isnan(re) & xp.isnan(im)
    if bad.any():
        one, zero = a.dtype.type(1), a.dtype.type(0)

        def unit(v):  # an infinity as +-1, a finite value as +-0 (its sign kept)
            return xp.copysign(xp.where(xp.isinf(v), one, zero), v)

        def nan_zero(v, where):  # a nan as +-0 where asked
            return xp.where(where & xp.isnan(v), xp.copysign(zero, v), v)

        x_inf = xp.isinf(a) | xp.isinf(b)
        a, b = xp.where(x_inf, unit(a), a), xp.where(x_inf, unit(b), b)
        c, d = nan_zero(c, x_inf), nan_zero(d, x_inf)
        y_inf = xp.isinf(c) | xp.isinf(d)
        c, d = xp.where(y_inf, unit(c), c), xp.where(y_inf, unit(d), d)
        a, b = nan_zero(a, y_inf), nan_zero(b, y_inf)
        xr, xi, yr, yi = x.real, x.imag, y.real, y.imag  # (a product that overflowed)
        big = ~(x_inf | y_inf) & (xp.isinf(xr * yr) | xp.isinf(xi * yi)
                                  | xp.isinf(xr * yi) | xp.isinf(xi * yr))  # fmt: skip
        a, b, c, d = (nan_zero(v, big) for v in (a, b, c, d))
        again = bad & (x_inf | y_inf | big)
        re = xp.where(again, xp.inf * (a * c - b * d), re).astype(re.dtype, copy=False)
        im = xp.where(again, xp.inf * (a * d + b * c), im).astype(im.dtype, copy=False)
    out = xp.empty(re.shape, x.dtype)
    out.real, out.imag = re, im
    return out


def _complex_pow_vjp(op, gy, a, b, y):
    """Complex a ** b's gradients as PyTorch's pow_backward_self and pow_backward_exponent
    (arrays): where(b == 0, 0, gy conj(b a^(b - 1))) with a^(b - 1) its cpow (so 0 ** 1
    gives nan, as 0 ** 0 does there), and gy where(a == 0 and b real >= 0, 0, conj(y log a))."""
    xp = backend.get_array_module(gy)
    ga = gb = None
    with np.errstate(all="ignore"):
        if op.parents[0] is not None:
            ga = xp.where(b == 0, 0, gy * xp.conj(b * complex_pow(a, b - 1)))
            if a.dtype.kind != "c":
                ga = ga.real  # (PyTorch's handle_r_to_c: a real input's gradient is real)
        if op.parents[1] is not None:
            real_b = (b.imag == 0) & (b.real >= 0) if b.dtype.kind == "c" else b >= 0
            gb = gy * xp.where((a == 0) & real_b, 0, xp.conj(y * xp.log(a.astype(y.dtype))))
            if b.dtype.kind != "c":
                gb = gb.real
    return ga, gb


def _complex_pow_scalar(x, c):
    """x ** c for a complex x and a Python number c, as PyTorch's pow(Tensor, Scalar): 1 for
    c = 0 and x for c = 1 (pow's own shortcuts), its kernels' sqrt, reciprocal of sqrt,
    reciprocal, x * x, x * x * x, 1 / (x * x) for c = 0.5, -0.5, -1, 2, 3, -2, else cpow."""
    xp = backend.get_array_module(x)
    if c == 0:
        return xp.ones_like(x)
    if c == 1:
        return x.copy()
    if c == 0.5:
        return xp.sqrt(x)
    if c == -0.5:
        return 1 / xp.sqrt(x)
    if c == -1:
        return 1 / x
    if c in (2, 3, -2):
        y = x * x
        return y * x if c == 3 else (1 / y if c == -2 else y)
    return complex_pow(x, xp.full(x.shape, c, dtype=x.dtype))


def _int_pow(a, b):
    """Integer a ** b with negative exponents in b, as PyTorch computes them (NumPy refuses):
    1 ** -n = 1, (-1) ** -n = +-1 by parity, any other base (0 included) gives 0."""
    xp = backend.get_array_module(a)
    neg = b < 0
    with np.errstate(over="ignore"):
        out = a ** xp.where(neg, 0, b)
    tiny = xp.where(a == 1, 1, xp.where(a == -1, xp.where(b & 1, -1, 1), 0))
    return xp.where(neg, tiny, out).astype(a.dtype, copy=False)


# Tensor-scalar ops: `c` is the Python scalar, which takes the tensor's dtype (never upcasting
# it); `Function.apply_scalar` (autograd.py) also gives the op `ca`, on the CPU a cached 0-d
# array of the tensor's dtype that forward and the array backward use (faster than a Python
# float, same results).


class _ScalarOp(Function):
    """Base of the tensor-scalar ops (slots `c` and `ca`; see `Function.apply_scalar`)."""

    __slots__ = ("c", "ca")

    # `Op.apply(x, c)` works as for any op; the engine's apply_scalar does the real work.
    @classmethod
    def apply(cls, x, c):  # type: ignore[override]
        return cls.apply_scalar(x, c=c)


class AddScalar(_ScalarOp):
    """d/dx (x + c) = 1."""

    bfloat16_scalar = "round"  # x_bf16 + c adds c rounded to bfloat16, as PyTorch (bfloat16.py)

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    def forward(self, x):
        return x + self.ca

    # The constant has no gradient; x gets gy unchanged.
    def backward(self, gy, ops):
        return gy


class MulScalar(_ScalarOp):
    """d/dx (c x) = c."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)
    # PyTorch's x * c saves c as a wrapped-number tensor (MulBackward0's `other`), freed after
    # backward: a second backward without retain_graph raises. Composite ops that PyTorch
    # records as one node saving nothing (add's alpha, trapezoid's dx) scale with `Scale`.
    saves_params = True

    def forward(self, x):
        return x * self.ca

    def backward(self, gy, ops):
        # The cached 0-d array `ca` on arrays (fast, same dtype); the Python scalar on Tensors,
        # where it takes the Tensor's dtype like any Python number.
        return gy * (self.c if ops.is_graph else self.ca)


class Scale(MulScalar):
    """d/dx (c x) = c, as a step of a composite op (trapezoid's dx, add's alpha, addmm's beta):
    PyTorch's C++ composites multiply by a Scalar (mul.Scalar, MulBackward1), which keeps c as
    a number, not a freed tensor, so a second backward through it runs again. The user's
    x * c (MulBackward0) is MulScalar, which raises there."""

    __slots__ = ()
    saves_params = False


def scale(x: Tensor, c) -> Tensor:
    """x * c for a composite op's internal scaling (see `Scale`); x * c itself otherwise (a
    non-float tensor or a non-Python-number c takes mul's dtype rules)."""
    tc = type(c)
    if (tc is float or tc is int) and x._data.dtype.kind == "f":
        return Scale.apply_scalar(x, c)
    return mul(x, c)


def scale_div(x: Tensor, c) -> Tensor:
    """x / c for a composite op's internal division by a number (div.Scalar, DivBackward1:
    nothing freed; see `Scale`); x / c itself for other operands."""
    tc = type(c)
    if (tc is float or tc is int) and x._data.dtype.kind == "f":
        m, e = math.frexp(c)
        if (m == 0.5 or m == -0.5) and -13 <= e <= 15:  # as _divide_scalar
            return ExactDivScale.apply_scalar(x, 1.0 / c)
        return DivScale.apply_scalar(x, c)
    return div(x, c)


# x - c and x / c where 1 / c is exact are computed as x + (-c) and x * (1 / c); a subclass
# each only so that grad_fn.name() shows PyTorch's SubBackward0 / DivBackward0 (the name is
# looked up from the class when asked for: nothing more is recorded).
class SubScalar(AddScalar):
    """d/dx (x - c) = 1 (computed as x + (-c): `c` holds -c)."""

    __slots__ = ()


class ExactDivScalar(MulScalar):
    """d/dx (x / c) = 1 / c, for a c whose reciprocal is exact (a power of two: x / 2),
    computed as x * (1 / c) (`c` holds 1 / c)."""

    __slots__ = ()


class DivScalar(_ScalarOp):
    """d/dx (x / c) = 1 / c."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's gy / c keeps its zero tensor)
    saves_params = True  # PyTorch's DivBackward0 saves c as a tensor (see MulScalar)

    def forward(self, x):
        return x / self.ca

    def backward(self, gy, ops):
        return gy / (self.c if ops.is_graph else self.ca)


class ExactDivScale(ExactDivScalar):
    """ExactDivScalar inside a composite op: nothing freed (see `Scale`)."""

    __slots__ = ()
    saves_params = False


class DivScale(DivScalar):
    """DivScalar inside a composite op: nothing freed (see `Scale`)."""

    __slots__ = ()
    saves_params = False


class RSubScalar(_ScalarOp):
    """d/dx (c - x) = -1."""

    bfloat16_scalar = "round"

    def forward(self, x):
        return self.ca - x

    def backward(self, gy, ops):
        return -gy


class RDivScalar(_ScalarOp):
    """c / x computed as PyTorch does, reciprocal(x) * c: d/dx = -(gy c) r^2 with r = 1 / x
    (PyTorch's reciprocal backward), r recomputed from the saved input. PyTorch's c / x (1 / x
    too: reciprocal(x) * 1) saves the reciprocal, not the product the user holds, so an
    in-place change of the result must not make backward raise, and backward must not read
    it. (x.reciprocal() shares this op: where PyTorch raises on such a change, descent's
    gradient, from x, is still the true one.)"""

    save_inputs = True
    bfloat16_scalar = "reciprocal"  # bfloat16: the reciprocal is rounded before the product

    def forward(self, x):
        r = 1 / x
        return r if self.c == 1 else r * self.ca

    def backward(self, gy, ops):
        if self.c == 1:
            (x,) = self.inputs(ops)
            r = 1 / conj_if_complex(ops, x)  # complex x: the conjugate derivative
            return -gy * (r * r)
        (x,) = self.inputs(ops)
        r = 1 / conj_if_complex(ops, x)
        return -(gy * (self.c if ops.is_graph else self.ca)) * (r * r)

    def zero_backward(self, gy, ops):
        # sgn's known zero passes PyTorch's `* c` (a product) and is materialized at reciprocal:
        # -0 r^2, not (0 c) r^2, which is nan for an infinite c.
        (x,) = self.inputs(ops)
        r = 1 / x
        return -gy * (r * r)


class Reciprocal(RDivScalar):
    """x.reciprocal() (torch.reciprocal): PyTorch's ReciprocalBackward0 saves its result and
    takes -gy conj(r)^2 from it, so a change of the result in place makes backward raise
    there, as here (`1 / x` is RDivScalar: PyTorch's reciprocal(x) * 1 saves the reciprocal
    it made, not the product the user holds). The saved r is the same array 1 / x recomputes."""

    save_inputs = False
    save_output = True

    def backward(self, gy, ops):
        r = conj_if_complex(ops, self.output(ops))
        return -gy * (r * r)

    def zero_backward(self, gy, ops):
        r = self.output(ops)
        return -gy * (r * r)


def reciprocal(x: Tensor) -> Tensor:
    """1 / x as its own op (ReciprocalBackward0, saving the result; integers and bools give
    the default float dtype, as in PyTorch)."""
    x, c = _scalar_operand(x, 1.0)
    return Reciprocal.apply_scalar(x, c)


class PowScalar(_ScalarOp):
    """d/dx x^c = c x^(c-1)."""

    @property
    def zero_passes(self):
        # a known-zero gradient passes (PyTorch's formula multiplies it), except for c = 0:
        # PyTorch's pow_backward returns zeros_like(x) there, real zeros
        return self.c != 0

    save_inputs = True

    def forward(self, x):
        # NumPy special-cases Python exponents 2, 0.5, -1 ...; 0 ** -1 = inf and (-1) ** 0.5 =
        # nan are values, as in PyTorch, not warnings.
        with np.errstate(divide="ignore", invalid="ignore"):
            if (self.c == 0.5 or self.c == -0.5) and x.dtype is _F16:
                # PyTorch's float16 kernel takes C's pow in float32 (-0. ** 0.5 = 0., -inf **
                # -0.5 = 0.), not sqrt / rsqrt as NumPy's x ** 0.5 and its float32 kernel do:
                # an exponent array avoids NumPy's shortcut
                xp = backend.get_array_module(x)  # (in x's order, as PyTorch's)
                return input_ordered(x ** xp.full(x.shape, self.c, dtype=x.dtype), x)
            if self.c == -0.5 and x.dtype.kind in "fV":
                # PyTorch computes x ** -0.5 as rsqrt(x): nan at -inf, where C's pow gives 0
                return 1 / backend.get_array_module(x).sqrt(x)
            if x.dtype.kind == "c":
                return input_ordered(_complex_pow_scalar(x, self.c), x)
            return x**self.c

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        x = conj_if_complex(ops, x)  # complex x: gy * conj(c x^(c-1)) for a real c
        c = self.c
        # Small integer exponents are special-cased: exact, cheaper than a general power, and
        # x^(c-1) with c = 0 would be x^-1 (inf at x = 0) times 0 = nan.
        if c == 0:
            # PyTorch's where(c == 0, 0, ...): 0 even for an inf or nan gy (gy * 0 would be
            # nan); sign(gy) > 1 is never true, so this is zeros of gy's shape and dtype
            return ops.where(ops.sign(gy) > 1, gy, 0)
        if c == 1:
            return gy
        if c == 2:
            return gy * (x * 2)
        if c == 0.5 and x.dtype != _F16:  # x^-0.5 as PyTorch's rsqrt: nan at -inf (C's pow
            # gives 0 there, and PyTorch's float16 kernel takes it: the general rule below)
            with np.errstate(divide="ignore", invalid="ignore"):
                return gy * ((1 / x**0.5) * 0.5)  # (** 0.5 is a square root in both)
        with np.errstate(divide="ignore", invalid="ignore"):
            if ops.is_graph:  # Tensor * c: float16's float32 product through MulScalar
                return gy * (x ** (c - 1) * c)
            return gy * half_times(x ** (c - 1), c)  # PyTorch's order and float16 rounding


class RPowScalar(_ScalarOp):
    """d/dx c^x = c^x log(c) (reuses the output); for c = 0, 0 where x >= 0 and -inf where
    x < 0; nan for c < 0 (PyTorch's pow_backward_exponent)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_output = True

    def forward(self, x):
        # C-ordered as PyTorch's (its Scalar ** Tensor result is contiguous whatever x's
        # layout; NumPy keeps a transposed x's, so (2 ** x.t()).view(-1) raised)
        return c_ordered(self._power(x))

    def _power(self, x):
        if x.dtype.kind in "iu" and isinstance(self.c, int) and (x < 0).any():
            # An integer base to a negative integer power: PyTorch's integer result (2 ** -1
            # is 0, (-1) ** -1 is -1), where NumPy refuses; the other entries wrap around
            # as PyTorch's (2 ** 32 is 0 in int32, not a float power cast back).
            xp = backend.get_array_module(x)
            return _int_pow(xp.broadcast_to(xp.asarray(self.ca, dtype=x.dtype), x.shape), x)
        if x.dtype.kind == "c":  # C's cpow (complex_pow); 1 ** x is PyTorch's ones
            xp = backend.get_array_module(x)
            if self.c == 0:  # 0 ** 0j is nan (cpow), its gradient PyTorch's masked 0
                self.zero_exp = x == 0
            return xp.ones_like(x) if self.c == 1 else complex_pow(
                xp.full(x.shape, self.c, x.dtype), x)  # fmt: skip
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.ca**x

    def backward(self, gy, ops):
        y = self.output(ops)
        c = self.c
        if c == 0:
            # 0^x is 0 for x > 0 and 1 at x = 0 (flat: gradient 0), inf for x < 0, where the
            # gradient is inf * log(0) = -inf. y > 1 tells x < 0 apart without saving x.
            # PyTorch's grad * where(x >= 0, 0, y log 0): a product, so a nan gy stays nan.
            with np.errstate(invalid="ignore"):  # 0 * -inf in the unselected entries
                if y.dtype.kind != "c":
                    return gy * ops.where(y > 1, y * float("-inf"), y * 0)
                # complex x: PyTorch masks only x real and >= 0; its nan for Re x > 0, Im x
                # != 0 (0 * log 0) is not followed: 0 ** x is 0 there, the derivative's
                # limit 0 (y * 0). At x = 0 y is nan, the mask gives 0.
                g = gy * (y * 0)
                zero = getattr(self, "zero_exp", None)
                return g if zero is None or not zero.any() else ops.where(zero, 0, g)
        if y.dtype.kind == "c":  # complex x: gy * conj(y log c), with c's complex log (a
            # negative base has one: log|c| + i pi), PyTorch's pow_backward_exponent
            return gy * conj_if_complex(ops, y * cmath.log(c))
        # log(c) as a Python float keeps gy's dtype; a negative base has no real log (nan).
        # PyTorch's order, gy * (y log c): y log c overflows to inf before meeting a small gy
        log_c = math.log(c) if c > 0 else float("nan")
        if not ops.is_graph and y.dtype == _F16:  # log(c) kept in float32 (opmath), as
            return gy * half_times(y, log_c)  # PyTorch's (NumPy rounded it: 2x the error)
        return gy * (y * log_c)


# float16 tensor (op) Python scalar that float16 cannot hold exactly (x * 0.1, x * -1e9, x / 3,
# 0.1 / x): PyTorch's CPU kernels multiply and divide a half tensor by a scalar in float32
# ("opmath": the scalar kept in float32, one rounding to half at the end), where NumPy 2 would
# round the scalar to float16 first (NEP 50), turning -1e9 into -inf and 0 * -1e9 into nan.
# `Function.apply_scalar` calls these only in that case (the cache of exact scalars answers
# every other call, float32 included, without a test). The casts are graph nodes, so backward
# runs the op's own backward in float32 and rounds once (gy * c, gy / c: PyTorch's too).
# AddScalar, RSubScalar and RPowScalar keep NumPy's rounding of c, which is PyTorch's there.
_F16, _F32 = np.dtype(np.float16), np.dtype(np.float32)


def _half_in_float32(op):
    """`half_scalar_apply` for `op`: cast(op(cast(x, float32), c), float16) (ops/half.py)."""

    def half_scalar_apply(x: Tensor, c) -> Tensor:
        return in_float32(op.apply_scalar, x, c)

    return staticmethod(half_scalar_apply)


def _half_reciprocal(x: Tensor, c) -> Tensor:
    """c / x on float16 as PyTorch's reciprocal(x) * c: the reciprocal rounded to float16, the
    product in float32."""
    return MulScalar.apply_scalar(RDivScalar.apply_scalar(x, 1), c)


def half_times(a, c):
    """Array a times the Python number c with PyTorch's float16 rounding: for a float16 array
    and a c that float16 cannot hold, the product in float32 rounded once (backward formulas
    that scale by a constant, pow's `c * x^(c-1)`); else NumPy's a * c."""
    if a.dtype == _F16 and isinstance(c, (int, float)) and float(np.float16(c)) != c and c == c:
        with np.errstate(over="ignore"):
            return opmath.in_float32(operator.mul, a, np.float32(c))
    return a * c


MulScalar.half_scalar_apply = _half_in_float32(MulScalar)
DivScalar.half_scalar_apply = _half_in_float32(DivScalar)
Scale.half_scalar_apply = _half_in_float32(Scale)  # (each its own class: nothing freed)
DivScale.half_scalar_apply = _half_in_float32(DivScale)
RDivScalar.half_scalar_apply = staticmethod(_half_reciprocal)


def _scalar_operand(x: Tensor, c):
    """(tensor, python scalar) for a tensor-scalar op: NumPy scalars become Python scalars, and
    integer/bool tensors meeting a float scalar compute in the default float dtype (float32;
    PyTorch's rule, see `_common.result_type`)."""
    # A NumPy scalar would not be "weak" under NEP 50 (np.float64(2) * float32 -> float64):
    # as a Python scalar it takes the tensor's dtype, as PyTorch's scalars do.
    if isinstance(c, np.generic):
        c = c.item()
    if x._data.dtype.kind not in "fcV" and isinstance(c, float):
        x = cast(x, get_default_dtype())
    elif x._data.dtype.kind == "b" and isinstance(c, int) and not isinstance(c, bool):
        refuse_bool_uint64(c)  # (2**63: a uint64 number, which PyTorch refuses with bool)
        x = cast(x, np.int64)  # bool with an int is int64 (NumPy's bool ** 2 would be int8)
    return x, c


def _divide_scalar(x: Tensor, c) -> Tensor:
    """x / c for a Python number c: folded into x * (1 / c) where that is exact (c a power of
    two in the range where 1 / c is a normal float16 number: x / 2, x / 0.5), else a true
    division, as PyTorch's (x * (1 / 3) may differ from x / 3 in the last bit, and 1 / 1e-45
    overflows float32 where 0 / 1e-45 is 0). x / 0 is inf, -inf or nan per element, as in
    PyTorch (not Python's ZeroDivisionError). A complex x always divides: its product by -1
    (or 0.5) is not its quotient in the signed zeros ((0.29 + 0i) * -1 = -0.29 + 0i, / -1 is
    -0.29 - 0i, PyTorch's), which a later log or pow reads as a side of the branch cut."""
    if x._data.dtype.kind == "c":
        return DivScalar.apply_scalar(x, c)
    m, e = math.frexp(c)
    if (m == 0.5 or m == -0.5) and -13 <= e <= 15:
        return ExactDivScalar.apply_scalar(x, 1.0 / c)
    return DivScalar.apply_scalar(x, c)


_SAME, _NEGATE, _RECIPROCAL = 0, 1, 2  # how `x (op) c` becomes `scalar_op` with a constant


# A Python int operand must fit int64 or uint64, as PyTorch's argument parser requires
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1


def _int_too_big(c):
    raise OverflowError(
        f"int too big to convert ({c} is outside [-2**63, 2**64), as PyTorch's argument "
        "parser checks); use a float"
    )


def scaled_int(dt, other: int, alpha):
    """alpha * other for add/sub's alpha= with a Python int `other` and a tensor of dtype dt.
    Beyond int64 (PyTorch's parser takes [-2**63, 2**64)) as PyTorch casts: to an integer
    dtype first (2**64 - 1 is -1 there), scaled in it, wrapping; to a float for a floating
    tensor. Within int64 the plain product (the op wraps it to dt)."""
    v = other * alpha
    if type(alpha) not in (int, bool, float) or dt.kind == "b" or -(2**63) <= v < 2**63:
        return v
    check_int_range(other)
    if dt.kind not in "iu":
        return float(other) * alpha
    info, bits = np.iinfo(dt), 8 * dt.itemsize
    return (int(wrap_int(other, dt)) * int(alpha) - info.min) % (1 << bits) + info.min


def _arithmetic(name, doc, op, scalar_op, rscalar_op, fold=_SAME, true_division=False):  # noqa: C901
    """Make one of add/sub/mul/div: the one dispatch on operand types, fast paths included.

    Tensor operators (`x + y`, `2 * x`) and `descent.add/sub/mul/div` all end up in the
    function made here; its body is written once for the four. Three cases, cheapest first:
      * tensor (op) Python number: `scalar_op` with the constant c, or -c (sub), so `x - 1`
        records one SubScalar node (x + (-1)); for div `_divide_scalar` (x / 2 is x * 0.5);
      * tensor (op) tensor: `op` through `apply2`, after a broadcast (and device) check that
        equal shapes on one array type skip;
      * number (op) tensor: `rscalar_op` with c (for sub c - x, for div c / x).
    Anything else (lists, arrays, NumPy scalars meeting an integer tensor) goes through
    `apply_binary`, which converts the operand first. With `true_division`, integer tensors
    operands are promoted to a floating dtype first (PyTorch's `/`). Tensors of two dtypes are
    promoted by PyTorch's rule (`_common.result_type`) before the op.

    A factory, not a shared helper called by four wrappers: the operators are the hottest
    Python path of a training step, and a closure saves the extra call per op.
    """

    def arithmetic(a, b, *, rounding_mode=None, out=None) -> Tensor:
        if out is not None:  # PyTorch's out= (ops/out_arg.py); one test on the common path
            return write_out(arithmetic(a, b, rounding_mode=rounding_mode), out, name,
                             inputs=(a, b))  # fmt: skip
        if true_division:
            # div(a, b, rounding_mode='floor'|'trunc'): PyTorch's rounded division.
            if rounding_mode is not None:
                return divide_rounded(a, b, rounding_mode)
            if (isinstance(a, Tensor) and a._data.dtype.kind not in "fcV") or (
                isinstance(b, Tensor) and b._data.dtype.kind not in "fcV"
            ):
                a, b = promote(a, b, floating=True)  # int / int is a float division
        elif rounding_mode is not None:
            raise TypeError(f"{name}() got an unexpected keyword argument 'rounding_mode'")
        if isinstance(a, Tensor):
            tb = type(b)
            # `x * 0.5`, the most common operand of all in model code: a plain float or int
            # with a floating tensor needs no conversion and no dtype decision (the scalar
            # takes the tensor's dtype), so it goes straight to the op.
            if (tb is float or tb is int) and a._data.dtype.kind == "f":
                if tb is int and not _INT_MIN <= b <= _UINT_MAX:
                    _int_too_big(b)
                if fold == _SAME:
                    return scalar_op.apply_scalar(a, b)
                if fold == _NEGATE:  # x - 0 is x + -0.0: it keeps x's -0.0 (PyTorch's x - 0)
                    return scalar_op.apply_scalar(a, -b if b else -float(b))
                return _divide_scalar(a, b)
            if isinstance(b, Tensor):
                da, db = a._data.dtype, b._data.dtype
                if da is not db and da != db:  # two dtypes: PyTorch's promotion, not NumPy's
                    if fold == _NEGATE:
                        _refuse_bool_sub(a, b)
                    a, b = promote(a, b)
                if a._data.shape != b._data.shape or type(a._data) is not type(b._data):
                    check_broadcast(op, a, b)
                return op.apply2(a, b)
            if is_scalar(b):
                if type(b) is int and not _INT_MIN <= b <= _UINT_MAX:
                    _int_too_big(b)
                if fold == _NEGATE:
                    _refuse_bool_sub(a, b)
                x, c = _scalar_operand(a, b)
                if fold == _RECIPROCAL:
                    return _divide_scalar(x, c)
                dt = x._data.dtype
                if fold == _NEGATE:  # (x - 0 on bfloat16: x + -0.0, as above)
                    if type(c) is int and dt.kind in "iu":
                        # PyTorch casts c to the dtype first, then negates there: int64 -
                        # (2**64 - 1) is x - (-1), where -c was out of every int range
                        c = wrap_int(-wrap_int(c, dt), dt)
                    else:
                        c = -float(c) if c == 0 and dt.kind in "fVc" else -c
                    if type(c) is int and dt.kind not in "iu":
                        return scalar_op.apply_scalar(x, c)  # (-c: checked as c above)
                # an int out of an integer tensor's range wraps, as in PyTorch (uint8 - 2)
                return scalar_op.apply_scalar(x, wrap_int(c, dt))
        elif isinstance(b, Tensor):
            ta = type(a)
            if (ta is float or ta is int) and b._data.dtype.kind == "f":  # `0.5 * x`, as above
                if ta is int and not _INT_MIN <= a <= _UINT_MAX:
                    _int_too_big(a)
                return rscalar_op.apply_scalar(b, a)
            if is_scalar(a):
                if type(a) is int and not _INT_MIN <= a <= _UINT_MAX:
                    _int_too_big(a)
                if fold == _NEGATE:
                    _refuse_bool_sub(a, b)
                x, c = _scalar_operand(b, a)
                return rscalar_op.apply_scalar(x, wrap_int(c, x._data.dtype))
        if fold == _NEGATE:
            _refuse_bool_sub(a, b)
        return apply_binary(op, a, b)

    arithmetic.__name__ = arithmetic.__qualname__ = name
    arithmetic.__doc__ = doc
    return arithmetic


add = _arithmetic("add", "a + b with NumPy broadcasting.", Add, AddScalar, AddScalar)
sub = _arithmetic("sub", "a - b with NumPy broadcasting.", Sub, SubScalar, RSubScalar, _NEGATE)
mul = _arithmetic("mul", "a * b with NumPy broadcasting.", Mul, MulScalar, MulScalar)
div = _arithmetic(
    "div",
    "a / b (true division) with NumPy broadcasting; integer tensors divide in float32.",
    Div, MulScalar, RDivScalar, _RECIPROCAL, true_division=True,
)  # fmt: skip


def _bool_pow(a, b):
    """bool a ** bool b (b constant): a itself (a copy) or all True; pow's computed kernel."""
    return a.copy() if b else backend.get_array_module(a).ones_like(a)


# pow is not in the factory: its scalar forms differ (c ** x is RPowScalar, x ** c PowScalar,
# and no constant folding applies), and it is far less hot than + - * /.
def pow(a, b) -> Tensor:
    """a ** b: tensor or scalar base and exponent (an integer tensor to a negative Python
    integer raises, as in PyTorch)."""
    if isinstance(a, Tensor) and is_scalar(b):
        kind = a._data.dtype.kind
        if type(b) is int:
            check_int_range(b)  # (x ** 2**64: PyTorch's OverflowError, before its int checks)
        if isinstance(b, (bool, np.bool_)) and kind == "b":  # bool ** bool stays bool
            return computed(_bool_pow, (a,), (bool(b),))  # (replayed by descent.compile)
        if kind in "biu" and isinstance(b, (int, np.integer)) and b < 0:
            raise DescentError(
                f"pow: integers to negative integer powers are not allowed (a {a._data.dtype} "
                f"tensor of shape {tuple(a.shape)} ** {b}), as in PyTorch; use a float exponent "
                f"({float(b)}) or convert the tensor with .float()"
            )
        x, c = _scalar_operand(a, b)
        if x._data.dtype == _F16:  # PyTorch converts the exponent to float16 (overflow error)
            half_value(c)
        elif type(c) is int and x._data.dtype.kind in "iu":  # and to the integer dtype: int8
            fill_int(c, x._data.dtype)  # ** 255 raises its overflow error (NumPy's OverflowError)
        return PowScalar.apply_scalar(x, c=c)
    if isinstance(b, Tensor) and is_scalar(a):
        if b._data.dtype.kind == "b" and isinstance(a, (bool, np.bool_)):
            raise DtypeError(_bool_pow_message(b))
        x, c = _scalar_operand(b, a)
        return RPowScalar.apply_scalar(x, c=wrap_int(c, x._data.dtype))
    if (isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype.kind == "b"
            and b._data.dtype.kind == "b"):  # fmt: skip
        raise DtypeError(_bool_pow_message(a))
    return apply_binary(Pow, a, b)


def _bool_pow_message(t: Tensor) -> str:
    return (
        f"pow: a bool tensor (shape {tuple(t.shape)}) as the exponent of a bool base is not "
        "implemented, as in PyTorch; convert first with .int() or .float()"
    )


def neg(x) -> Tensor:
    return Neg.apply(as_tensor(x))


class Neg(Function):
    """d/dx (-x) = -1."""

    def forward(self, x):
        if x.dtype.kind == "b":
            raise DescentError(
                f"neg: negation of a bool tensor (shape {tuple(x.shape)}) is not supported, as "
                "in PyTorch; to invert a mask use ~mask or logical_not(mask)"
            )
        return -x

    def backward(self, gy, ops):
        return -gy


def square(x) -> Tensor:
    """x * x (a bool tensor squares to int64, as in PyTorch)."""
    return pow(as_tensor(x), 2)
