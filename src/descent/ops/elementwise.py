"""Elementwise arithmetic, math functions, comparisons and in-place updates.

Each op's forward (on arrays) and backward (on `F`, see autograd.py) sit side by side. Broadcasting
in backward is handled centrally by the engine: a backward returns the gradient at the output's
shape and the engine sums it back to each input's shape.
"""

from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..autograd import Function
from ..tensor import Tensor
from ._common import as_tensor, check_devices, is_scalar


def _binary(op, a, b):
    """Apply a binary op after converting scalars (in the other operand's dtype)."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, b if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = as_tensor(b, a)
    if a.data.shape != b.data.shape:
        _check_broadcast(op, a, b)
    return op.apply(a, b)


def _check_broadcast(op, a, b) -> None:
    try:
        np.broadcast_shapes(a.data.shape, b.data.shape)
    except ValueError:
        raise ValueError(
            f"{op.__name__.lower()}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
            "broadcast together (trailing dimensions must be equal or 1); reshape or unsqueeze "
            "one operand"
        ) from None
    if type(a.data) is not type(b.data):
        check_devices(op.__name__.lower(), a, b)


# ---------------------------------------------------------------------------------------------
# Arithmetic


class Add(Function):
    """d/da (a + b) = 1, d/db (a + b) = 1."""

    def forward(self, a, b):
        return a + b

    def backward(self, gy, F):
        return gy, gy


class Sub(Function):
    """d/da (a - b) = 1, d/db (a - b) = -1."""

    def forward(self, a, b):
        return a - b

    def backward(self, gy, F):
        return gy, (-gy if self.parents[1] is not None else None)


class Mul(Function):
    """d/da (a * b) = b, d/db (a * b) = a."""

    save_inputs = True

    def forward(self, a, b):
        return a * b

    def backward(self, gy, F):
        a, b = self.inputs(F)
        p = self.parents
        return (gy * b if p[0] is not None else None), (gy * a if p[1] is not None else None)


class Div(Function):
    """d/da (a / b) = 1/b, d/db (a / b) = -a/b^2."""

    save_inputs = True

    def forward(self, a, b):
        return a / b

    def backward(self, gy, F):
        a, b = self.inputs(F)
        ga = gy / b
        gb = -ga * a / b if self.parents[1] is not None else None
        return ga, gb


class Pow(Function):
    """d/da a^b = b a^(b-1); d/db a^b = a^b log(a) (0 where a = 0)."""

    save_inputs = True
    save_output = True

    def forward(self, a, b):
        return a**b

    def backward(self, gy, F):
        a, b = self.inputs(F)
        ga = gy * b * a ** (b - 1) if self.parents[0] is not None else None
        gb = None
        if self.parents[1] is not None:
            y = self.output(F)
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = gy * F.where(a > 0, y * F.log(F.where(a > 0, a, 1)), 0)
        return ga, gb


# Tensor-scalar ops: `c` is the Python scalar, which takes the tensor's dtype (never upcasting
# it); `Function.apply_scalar` (autograd.py) also gives the op `ca`, on the CPU a cached 0-d
# array of the tensor's dtype that forward and the array backward use (faster than a Python
# float, same results).


class _ScalarOp(Function):
    """Base of the tensor-scalar ops (slots `c` and `ca`; see `Function.apply_scalar`)."""

    __slots__ = ("c", "ca")

    @classmethod
    def apply(cls, x, c):  # type: ignore[override]
        return cls.apply_scalar(x, c=c)


class AddScalar(_ScalarOp):
    """d/dx (x + c) = 1."""

    def forward(self, x):
        return x + self.ca

    def backward(self, gy, F):
        return gy


class MulScalar(_ScalarOp):
    """d/dx (c x) = c."""

    def forward(self, x):
        return x * self.ca

    def backward(self, gy, F):
        return gy * (self.c if F.is_graph else self.ca)


class RSubScalar(_ScalarOp):
    """d/dx (c - x) = -1."""

    def forward(self, x):
        return self.ca - x

    def backward(self, gy, F):
        return -gy


class RDivScalar(_ScalarOp):
    """d/dx (c / x) = -c / x^2 = -y / x (reuses the output)."""

    save_inputs = True
    save_output = True

    def forward(self, x):
        return self.ca / x

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        return -gy * self.output(F) / x


class PowScalar(_ScalarOp):
    """d/dx x^c = c x^(c-1)."""

    save_inputs = True

    def forward(self, x):
        return x**self.c  # NumPy special-cases Python exponents 2, 0.5, -1 ...

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        c = self.c
        if c == 0:
            return gy * 0
        if c == 1:
            return gy
        if c == 2:
            return gy * (x * 2)
        return gy * (x ** (c - 1) * c)


class RPowScalar(_ScalarOp):
    """d/dx c^x = c^x log(c) (reuses the output)."""

    save_output = True

    def forward(self, x):
        return self.ca**x

    def backward(self, gy, F):
        return gy * self.output(F) * float(np.log(self.c))


def _scalar_operand(x: Tensor, c):
    """(tensor, python scalar) for a tensor-scalar op: NumPy scalars become Python scalars, and
    integer/bool tensors meeting a float scalar compute in float32 (PyTorch's rule)."""
    if isinstance(c, np.generic):
        c = c.item()
    if x.data.dtype.kind != "f" and isinstance(c, float):
        x = cast(x, np.float32)
    return x, c


def add(a, b) -> Tensor:
    """a + b with NumPy broadcasting."""
    if isinstance(a, Tensor):
        tb = type(b)
        if (tb is float or tb is int) and a.data.dtype.kind == "f":
            return AddScalar.apply_scalar(a, c=b)
        if isinstance(b, Tensor):
            if a.data.shape != b.data.shape or type(a.data) is not type(b.data):
                _check_broadcast(Add, a, b)
            return Add.apply2(a, b)
        if is_scalar(b):
            x, c = _scalar_operand(a, b)
            return AddScalar.apply_scalar(x, c=c)
    elif isinstance(b, Tensor) and is_scalar(a):
        x, c = _scalar_operand(b, a)
        return AddScalar.apply_scalar(x, c=c)
    return _binary(Add, a, b)


def sub(a, b) -> Tensor:
    """a - b with NumPy broadcasting."""
    if isinstance(a, Tensor):
        tb = type(b)
        if (tb is float or tb is int) and a.data.dtype.kind == "f":
            return AddScalar.apply_scalar(a, c=-b)
        if isinstance(b, Tensor):
            if a.data.shape != b.data.shape or type(a.data) is not type(b.data):
                _check_broadcast(Sub, a, b)
            return Sub.apply2(a, b)
        if is_scalar(b):
            x, c = _scalar_operand(a, b)
            return AddScalar.apply_scalar(x, c=-c)
    elif isinstance(b, Tensor) and is_scalar(a):
        x, c = _scalar_operand(b, a)
        return RSubScalar.apply_scalar(x, c=c)
    return _binary(Sub, a, b)


def mul(a, b) -> Tensor:
    """a * b with NumPy broadcasting."""
    if isinstance(a, Tensor):
        tb = type(b)
        if (tb is float or tb is int) and a.data.dtype.kind == "f":
            return MulScalar.apply_scalar(a, c=b)
        if isinstance(b, Tensor):
            if a.data.shape != b.data.shape or type(a.data) is not type(b.data):
                _check_broadcast(Mul, a, b)
            return Mul.apply2(a, b)
        if is_scalar(b):
            x, c = _scalar_operand(a, b)
            return MulScalar.apply_scalar(x, c=c)
    elif isinstance(b, Tensor) and is_scalar(a):
        x, c = _scalar_operand(b, a)
        return MulScalar.apply_scalar(x, c=c)
    return _binary(Mul, a, b)


def div(a, b) -> Tensor:
    """a / b (true division) with NumPy broadcasting; integer tensors divide in float32."""
    if isinstance(a, Tensor) and a.data.dtype.kind != "f":
        a = cast(a, np.float32)
    if isinstance(b, Tensor) and b.data.dtype.kind != "f":
        b = cast(b, np.float32)
    if isinstance(a, Tensor):
        if isinstance(b, Tensor):
            if a.data.shape != b.data.shape or type(a.data) is not type(b.data):
                _check_broadcast(Div, a, b)
            return Div.apply2(a, b)
        if is_scalar(b):
            x, c = _scalar_operand(a, b)
            return MulScalar.apply_scalar(x, c=1.0 / c)
    elif isinstance(b, Tensor) and is_scalar(a):
        x, c = _scalar_operand(b, a)
        return RDivScalar.apply_scalar(x, c=c)
    return _binary(Div, a, b)


def pow(a, b) -> Tensor:  # noqa: A001 - PyTorch's name
    """a ** b: tensor or scalar base and exponent."""
    if isinstance(a, Tensor) and is_scalar(b):
        x, c = _scalar_operand(a, b)
        return PowScalar.apply_scalar(x, c=c)
    if isinstance(b, Tensor) and is_scalar(a):
        x, c = _scalar_operand(b, a)
        return RPowScalar.apply_scalar(x, c=c)
    return _binary(Pow, a, b)


def neg(x) -> Tensor:
    return Neg.apply(as_tensor(x))


class Neg(Function):
    """d/dx (-x) = -1."""

    def forward(self, x):
        return -x

    def backward(self, gy, F):
        return -gy


def square(x) -> Tensor:
    return PowScalar.apply(as_tensor(x), c=2)


def floor_divide(a, b) -> Tensor:
    """a // b: piecewise constant, so no gradient flows."""
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    b = as_tensor(b, a)
    return _nograd(lambda x, y: x // y, a, b)


def remainder(a, b) -> Tensor:
    """a % b (Python's sign convention); d/da = 1."""
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    return sub(a, mul(floor_divide(a, b).detach(), b))


def _nograd(fn, *tensors) -> Tensor:
    return Tensor._wrap(fn(*(t.data for t in tensors)))


# ---------------------------------------------------------------------------------------------
# Unary math


class Exp(Function):
    """d/dx exp(x) = exp(x) (reuses the output)."""

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).exp(x)

    def backward(self, gy, F):
        return gy * self.output(F)


class Log(Function):
    """d/dx log(x) = 1/x."""

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).log(x)

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        return gy / x


class Log1p(Function):
    """d/dx log(1 + x) = 1/(1 + x)."""

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).log1p(x)

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        return gy / (x + 1)


class Expm1(Function):
    """d/dx (exp(x) - 1) = exp(x) = y + 1 (reuses the output)."""

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).expm1(x)

    def backward(self, gy, F):
        return gy * (self.output(F) + 1)


class Sqrt(Function):
    """d/dx sqrt(x) = 1/(2 sqrt(x)) (reuses the output)."""

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).sqrt(x)

    def backward(self, gy, F):
        return gy / (self.output(F) * 2)


class Rsqrt(Function):
    """d/dx x^(-1/2) = -x^(-3/2)/2 = -y^3/2 (reuses the output)."""

    save_output = True

    def forward(self, x):
        return 1 / backend.get_array_module(x).sqrt(x)

    def backward(self, gy, F):
        y = self.output(F)
        return gy * (y * y * y) * -0.5


class Abs(Function):
    """d/dx |x| = sign(x) (0 at 0, as PyTorch)."""

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).abs(x)

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        return gy * F.sign(x)


class Sign(Function):
    """d/dx sign(x) = 0 (almost everywhere)."""

    def forward(self, x):
        return backend.get_array_module(x).sign(x)

    def backward(self, gy, F):
        return gy * 0


class Sin(Function):
    """d/dx sin(x) = cos(x)."""

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).sin(x)

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        return gy * F.cos(x)


class Cos(Function):
    """d/dx cos(x) = -sin(x)."""

    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).cos(x)

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        return -gy * F.sin(x)


class Tan(Function):
    """d/dx tan(x) = 1 + tan(x)^2 (reuses the output)."""

    save_output = True

    def forward(self, x):
        return backend.get_array_module(x).tan(x)

    def backward(self, gy, F):
        y = self.output(F)
        return gy * (y * y + 1)


def _unary(op):
    def fn(x) -> Tensor:
        if type(x) is not Tensor:
            x = as_tensor(x)
        if x.data.dtype.kind != "f":
            x = cast(x, np.float32)
        return op.apply(x)

    fn.__name__ = op.__name__.lower()
    fn.__doc__ = op.__doc__
    return fn


exp = _unary(Exp)
log = _unary(Log)
log1p = _unary(Log1p)
expm1 = _unary(Expm1)
sqrt = _unary(Sqrt)
rsqrt = _unary(Rsqrt)
sin = _unary(Sin)
cos = _unary(Cos)
tan = _unary(Tan)


def abs(x) -> Tensor:  # noqa: A001 - NumPy's name
    """|x|; d/dx = sign(x)."""
    return Abs.apply(as_tensor(x))


def sign(x) -> Tensor:
    """sign(x); its gradient is zero."""
    return Sign.apply(as_tensor(x))


# ---------------------------------------------------------------------------------------------
# Binary selections


class Maximum(Function):
    """d max(a, b): 1 to the larger input; ties split the gradient in half (as PyTorch)."""

    save_inputs = True

    def forward(self, a, b):
        return backend.get_array_module(a).maximum(a, b)

    def backward(self, gy, F):
        a, b = self.inputs(F)
        w = (a > b) + (a == b) * 0.5
        w = F.cast(w, gy.dtype)
        return gy * w, gy * (1 - w)


class Minimum(Function):
    """d min(a, b): 1 to the smaller input; ties split the gradient in half (as PyTorch)."""

    save_inputs = True

    def forward(self, a, b):
        return backend.get_array_module(a).minimum(a, b)

    def backward(self, gy, F):
        a, b = self.inputs(F)
        w = (a < b) + (a == b) * 0.5
        w = F.cast(w, gy.dtype)
        return gy * w, gy * (1 - w)


def maximum(a, b) -> Tensor:
    return _binary(Maximum, a, b)


def minimum(a, b) -> Tensor:
    return _binary(Minimum, a, b)


class Clamp(Function):
    """d/dx clamp(x, lo, hi) = 1 where lo <= x <= hi, else 0 (as PyTorch)."""

    __slots__ = ("lo", "hi")
    save_inputs = True

    def forward(self, x):
        return backend.get_array_module(x).clip(x, self.lo, self.hi)

    def backward(self, gy, F):
        (x,) = self.inputs(F)
        mask = None
        if self.lo is not None:
            mask = x >= self.lo
        if self.hi is not None:
            m2 = x <= self.hi
            mask = m2 if mask is None else mask & m2
        return F.where(mask, gy, 0)


def clamp(x, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Limit values to [min, max]; either bound may be None."""
    x = as_tensor(x)
    if min is None and max is None:
        raise ValueError("clamp: give at least one of min= and max=")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = x
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    if x.data.dtype.kind != "f" and (isinstance(min, float) or isinstance(max, float)):
        x = cast(x, np.float32)
    return Clamp.apply(x, lo=min, hi=max)


clip = clamp


class Where(Function):
    """where(c, a, b): gradient to a where c holds, to b elsewhere; none to c."""

    save_inputs = True

    def forward(self, c, a, b):
        return backend.get_array_module(a).where(c, a, b)

    def backward(self, gy, F):
        c = self.inputs(F)[0]
        p = self.parents
        ga = F.where(c, gy, 0) if p[1] is not None else None
        gb = F.where(c, 0, gy) if p[2] is not None else None
        return None, ga, gb


def where(condition, a, b) -> Tensor:
    """Elementwise choice: a where `condition` is true, b elsewhere (broadcasting)."""
    condition = as_tensor(condition)
    if condition.data.dtype != np.bool_:
        condition = Tensor._wrap(condition.data.astype(bool))
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = as_tensor(a)
    a = as_tensor(a, b if isinstance(b, Tensor) else None)
    b = as_tensor(b, a)
    try:
        np.broadcast_shapes(condition.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"where: condition {condition.shape}, x {a.shape} and y {b.shape} cannot be "
            "broadcast together"
        ) from None
    return Where.apply(condition, a, b)


class MaskedFill(Function):
    """masked_fill(x, mask, v): gradient flows to x where the mask is false."""

    __slots__ = ("value",)
    save_inputs = True

    def forward(self, x, mask):
        return backend.get_array_module(x).where(mask, x.dtype.type(self.value), x)

    def backward(self, gy, F):
        mask = self.inputs(F)[1]
        return F.where(mask, 0, gy), None


def masked_fill(x, mask, value) -> Tensor:
    """Replace the entries of x where `mask` is true by `value` (mask broadcasts to x)."""
    mask = as_tensor(mask)
    if mask.data.dtype != np.bool_:
        mask = Tensor._wrap(mask.data.astype(bool))
    if isinstance(value, Tensor):
        return where(mask, value, x)
    return MaskedFill.apply(x, mask, value=value)


class Cast(Function):
    """d/dx cast(x) = 1, cast back to the input's dtype."""

    __slots__ = ("dtype", "in_dtype")

    def forward(self, x):
        self.in_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy, F):
        if self.in_dtype.kind != "f":
            return None
        return F.cast(gy, self.in_dtype)


def cast(x, dtype) -> Tensor:
    """x converted to `dtype` (differentiable between floating dtypes)."""
    x = as_tensor(x)
    dtype = np.dtype(dtype)
    if x.data.dtype == dtype:
        return x
    if dtype.kind != "f":
        return Tensor._wrap(x.data.astype(dtype))
    return Cast.apply(x, dtype=dtype)


class Clone(Function):
    """d/dx clone(x) = 1."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy, F):
        return gy


def clone(x) -> Tensor:
    return Clone.apply(as_tensor(x))


# ---------------------------------------------------------------------------------------------
# Comparisons and logic: bool tensors, no gradient


def _compare(ufunc_name):
    def fn(a, b) -> Tensor:
        ta = a if isinstance(a, Tensor) else None
        tb = b if isinstance(b, Tensor) else None
        av = a.data if ta is not None else a
        bv = b.data if tb is not None else b
        if ta is not None and tb is not None and ta.data.shape != tb.data.shape:
            try:
                np.broadcast_shapes(ta.data.shape, tb.data.shape)
            except ValueError:
                raise ValueError(
                    f"{ufunc_name}: shapes {ta.shape} and {tb.shape} cannot be broadcast together"
                ) from None
        xp = backend.get_array_module(av, bv)
        return Tensor._wrap(getattr(xp, ufunc_name)(av, bv))

    fn.__name__ = ufunc_name
    return fn


eq = _compare("equal")
ne = _compare("not_equal")
lt = _compare("less")
le = _compare("less_equal")
gt = _compare("greater")
ge = _compare("greater_equal")
logical_and = _compare("logical_and")
logical_or = _compare("logical_or")
logical_xor = _compare("logical_xor")


def logical_not(x) -> Tensor:
    x = as_tensor(x)
    xp = backend.get_array_module(x.data)
    if x.data.dtype == np.bool_:
        return Tensor._wrap(xp.logical_not(x.data))
    return Tensor._wrap(xp.invert(x.data))


def isfinite(x) -> Tensor:
    x = as_tensor(x)
    return Tensor._wrap(backend.get_array_module(x.data).isfinite(x.data))


def isnan(x) -> Tensor:
    x = as_tensor(x)
    return Tensor._wrap(backend.get_array_module(x.data).isnan(x.data))


def isinf(x) -> Tensor:
    x = as_tensor(x)
    return Tensor._wrap(backend.get_array_module(x.data).isinf(x.data))


def allclose(a, b, rtol=1e-5, atol=1e-8) -> bool:
    a = as_tensor(a)
    b = as_tensor(b)
    return bool(np.allclose(backend.as_numpy(a.data), backend.as_numpy(b.data), rtol, atol))


# ---------------------------------------------------------------------------------------------
# In-place updates
#
# Under no_grad (or on tensors outside any graph) they write into the existing array, so views and
# optimizer state see the change. When the result must be recorded, the out-of-place op runs and the
# tensor is rebound to its result: the old value stays available to nodes that saved it. Either way
# the version counter goes up, so a backward that saved the old value raises instead of silently
# using the new one.


def _bump(t: Tensor) -> None:
    t._version += 1


def _check_leaf_inplace(t: Tensor, op: str) -> None:
    if t._rg and t._node is None and autograd.is_grad_enabled():
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {t.shape}) is being modified in place "
            "while grad mode is on; wrap the update in `with descent.no_grad():`"
        )


def _records(t: Tensor, *others) -> bool:
    if not autograd.is_grad_enabled():
        return False
    return t._rg or any(isinstance(o, Tensor) and o._rg for o in others)


def _rebind(t: Tensor, result: Tensor) -> Tensor:
    """Make t the result of a recorded in-place op. The op was applied to `t._alias()` (a
    second Tensor object holding t's old value and node), so what it saved for backward is not
    changed by rebinding t here."""
    t.data = result.data
    t._node = result._node
    t._rg = result._rg
    _bump(t)
    return t


def _inplace(t: Tensor, other, outofplace, ufunc: str, op: str) -> Tensor:
    _check_leaf_inplace(t, op)
    if _records(t, other):
        return _rebind(t, outofplace(t._alias(), other))
    o = other.data if isinstance(other, Tensor) else other
    xp = backend.get_array_module(t.data)
    if isinstance(other, Tensor):
        check_devices(op, t, other)
    getattr(xp, ufunc)(t.data, o, out=t.data, casting="same_kind")
    _bump(t)
    return t


def add_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, add, "add", "add_")


def sub_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, sub, "subtract", "sub_")


def mul_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, mul, "multiply", "mul_")


def div_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, div, "true_divide", "div_")


def clamp_(t: Tensor, min=None, max=None) -> Tensor:  # noqa: A002
    _check_leaf_inplace(t, "clamp_")
    if _records(t):
        return _rebind(t, clamp(t._alias(), min, max))
    backend.get_array_module(t.data).clip(t.data, min, max, out=t.data)
    _bump(t)
    return t


def copy_(t: Tensor, src) -> Tensor:
    """Copy `src`'s values into t (broadcasting); differentiable with respect to src."""
    _check_leaf_inplace(t, "copy_")
    src = as_tensor(src, t)
    if _records(t, src):
        b = src if src.shape == t.shape else src.broadcast_to(t.shape)
        return _rebind(t, clone(cast(b, t.dtype)))
    if src.device != t.device:
        t.data[...] = backend.to_device(src.data, t.device)
    else:
        t.data[...] = src.data
    _bump(t)
    return t


def fill_(t: Tensor, value) -> Tensor:
    _check_leaf_inplace(t, "fill_")
    if _records(t, value):
        return _rebind(t, t._alias() * 0 + value)
    t.data[...] = value.data if isinstance(value, Tensor) else value
    _bump(t)
    return t


def masked_fill_(t: Tensor, mask, value) -> Tensor:
    _check_leaf_inplace(t, "masked_fill_")
    if _records(t, value):
        return _rebind(t, masked_fill(t._alias(), mask, value))
    mask = as_tensor(mask)
    xp = backend.get_array_module(t.data)
    xp.copyto(t.data, value.data if isinstance(value, Tensor) else value, where=mask.data)
    _bump(t)
    return t
