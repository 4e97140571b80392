"""Arithmetic: + - * / ** and negation, their tensor-scalar forms, and the one dispatch.

Tensor's operators (`x + y`, `x * 0.5`, `2 - x`) and `descent.add/sub/mul/div` all go through
`_arithmetic`, which picks the op from the operand types: a tensor-tensor op (`Add`, ...), or a
tensor-scalar op (`AddScalar`, ...) that keeps the Python number as a constant instead of
turning it into a tensor. Broadcasting in backward is the engine's job (see autograd.py).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..tensor import Tensor
from ._common import apply_binary, as_tensor, check_broadcast, is_scalar
from .elementwise import cast

# ---------------------------------------------------------------------------------------------
# Arithmetic


class Add(Function):
    """d/da (a + b) = 1, d/db (a + b) = 1."""

    def forward(self, a, b):
        return a + b

    def backward(self, gy, ops):
        return gy, gy


class Sub(Function):
    """d/da (a - b) = 1, d/db (a - b) = -1."""

    def forward(self, a, b):
        return a - b

    def backward(self, gy, ops):
        return gy, (-gy if self.parents[1] is not None else None)


class Mul(Function):
    """d/da (a * b) = b, d/db (a * b) = a."""

    save_inputs = True

    def forward(self, a, b):
        return a * b

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        p = self.parents
        return (gy * b if p[0] is not None else None), (gy * a if p[1] is not None else None)


class Div(Function):
    """d/da (a / b) = 1/b, d/db (a / b) = -a/b^2."""

    save_inputs = True

    def forward(self, a, b):
        return a / b

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        ga = gy / b
        gb = -ga * a / b if self.parents[1] is not None else None
        return ga, gb


class Pow(Function):
    """d/da a^b = b a^(b-1); d/db a^b = a^b log(a) (0 where a = 0)."""

    save_inputs = True
    save_output = True

    def forward(self, a, b):
        return a**b

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        ga = gy * b * a ** (b - 1) if self.parents[0] is not None else None
        gb = None
        if self.parents[1] is not None:
            y = self.output(ops)
            with np.errstate(divide="ignore", invalid="ignore"):
                gb = gy * ops.where(a > 0, y * ops.log(ops.where(a > 0, a, 1)), 0)
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

    def backward(self, gy, ops):
        return gy


class MulScalar(_ScalarOp):
    """d/dx (c x) = c."""

    def forward(self, x):
        return x * self.ca

    def backward(self, gy, ops):
        return gy * (self.c if ops.is_graph else self.ca)


class RSubScalar(_ScalarOp):
    """d/dx (c - x) = -1."""

    def forward(self, x):
        return self.ca - x

    def backward(self, gy, ops):
        return -gy


class RDivScalar(_ScalarOp):
    """d/dx (c / x) = -c / x^2 = -y / x (reuses the output)."""

    save_inputs = True
    save_output = True

    def forward(self, x):
        return self.ca / x

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
        return -gy * self.output(ops) / x


class PowScalar(_ScalarOp):
    """d/dx x^c = c x^(c-1)."""

    save_inputs = True

    def forward(self, x):
        return x**self.c  # NumPy special-cases Python exponents 2, 0.5, -1 ...

    def backward(self, gy, ops):
        (x,) = self.inputs(ops)
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

    def backward(self, gy, ops):
        return gy * self.output(ops) * float(np.log(self.c))


def _scalar_operand(x: Tensor, c):
    """(tensor, python scalar) for a tensor-scalar op: NumPy scalars become Python scalars, and
    integer/bool tensors meeting a float scalar compute in float32 (PyTorch's rule)."""
    if isinstance(c, np.generic):
        c = c.item()
    if x.data.dtype.kind != "f" and isinstance(c, float):
        x = cast(x, np.float32)
    return x, c


_SAME, _NEGATE, _RECIPROCAL = 0, 1, 2  # how `x (op) c` becomes `scalar_op` with a constant


def _arithmetic(name, doc, op, scalar_op, rscalar_op, fold=_SAME, true_division=False):
    """Make one of add/sub/mul/div: the one dispatch on operand types, fast paths included.

    Tensor operators (`x + y`, `2 * x`) and `descent.add/sub/mul/div` all end up in the
    function made here; its body is written once for the four. Three cases, cheapest first:
      * tensor (op) Python number: `scalar_op` with the constant c, or -c (sub) or 1/c (div),
        so `x - 1` and `x / 2` record one AddScalar or MulScalar node (x + (-1), x * 0.5);
      * tensor (op) tensor: `op` through `apply2`, after a broadcast (and device) check that
        equal shapes on one array type skip;
      * number (op) tensor: `rscalar_op` with c (for sub c - x, for div c / x).
    Anything else (lists, arrays, NumPy scalars meeting an integer tensor) goes through
    `apply_binary`, which converts the operand first. With `true_division`, integer tensors
    are cast to float32 first (PyTorch's `/`).

    A factory, not a shared helper called by four wrappers: the operators are the hottest
    Python path of a training step, and a closure saves the extra call per op.
    """

    def arithmetic(a, b) -> Tensor:
        if true_division:
            if isinstance(a, Tensor) and a.data.dtype.kind != "f":
                a = cast(a, np.float32)
            if isinstance(b, Tensor) and b.data.dtype.kind != "f":
                b = cast(b, np.float32)
        if isinstance(a, Tensor):
            tb = type(b)
            # `x * 0.5`, the most common operand of all in model code: a plain float or int
            # with a floating tensor needs no conversion and no dtype decision (the scalar
            # takes the tensor's dtype), so it goes straight to the op.
            if (tb is float or tb is int) and a.data.dtype.kind == "f":
                c = b if fold == _SAME else (-b if fold == _NEGATE else 1.0 / b)
                return scalar_op.apply_scalar(a, c)
            if isinstance(b, Tensor):
                if a.data.shape != b.data.shape or type(a.data) is not type(b.data):
                    check_broadcast(op, a, b)
                return op.apply2(a, b)
            if is_scalar(b):
                x, c = _scalar_operand(a, b)
                c = c if fold == _SAME else (-c if fold == _NEGATE else 1.0 / c)
                return scalar_op.apply_scalar(x, c)
        elif isinstance(b, Tensor):
            ta = type(a)
            if (ta is float or ta is int) and b.data.dtype.kind == "f":  # `0.5 * x`, as above
                return rscalar_op.apply_scalar(b, a)
            if is_scalar(a):
                x, c = _scalar_operand(b, a)
                return rscalar_op.apply_scalar(x, c)
        return apply_binary(op, a, b)

    arithmetic.__name__ = arithmetic.__qualname__ = name
    arithmetic.__doc__ = doc
    return arithmetic


add = _arithmetic("add", "a + b with NumPy broadcasting.", Add, AddScalar, AddScalar)
sub = _arithmetic("sub", "a - b with NumPy broadcasting.", Sub, AddScalar, RSubScalar, _NEGATE)
mul = _arithmetic("mul", "a * b with NumPy broadcasting.", Mul, MulScalar, MulScalar)
div = _arithmetic(
    "div",
    "a / b (true division) with NumPy broadcasting; integer tensors divide in float32.",
    Div, MulScalar, RDivScalar, _RECIPROCAL, true_division=True,
)  # fmt: skip


def pow(a, b) -> Tensor:
    """a ** b: tensor or scalar base and exponent."""
    if isinstance(a, Tensor) and is_scalar(b):
        x, c = _scalar_operand(a, b)
        return PowScalar.apply_scalar(x, c=c)
    if isinstance(b, Tensor) and is_scalar(a):
        x, c = _scalar_operand(b, a)
        return RPowScalar.apply_scalar(x, c=c)
    return apply_binary(Pow, a, b)


def neg(x) -> Tensor:
    return Neg.apply(as_tensor(x))


class Neg(Function):
    """d/dx (-x) = -1."""

    def forward(self, x):
        return -x

    def backward(self, gy, ops):
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
