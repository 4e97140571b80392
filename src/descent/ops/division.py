"""Rounded and integer-valued division: floor_divide (a // b), remainder (a % b) and
div(a, b, rounding_mode='floor' | 'trunc').

Split out of ops/arithmetic.py, which re-exports every name here (descent.ops.arithmetic.
floor_divide and `from .arithmetic import _promoted_operands` keep working); `div` there sends
`rounding_mode=` to `divide_rounded`. These ops share PyTorch's rules that + - * / do not: an
integer division by zero raises, bool operands are refused, and a float16 tensor divided by a
Python number is computed in float32 and rounded once.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DescentError, DtypeError
from ..tensor import Tensor
from ._common import as_tensor, check_broadcast, is_scalar, promote
from .elementwise import cast

_F16, _F32 = np.dtype(np.float16), np.dtype(np.float32)


# Integer-valued results: piecewise constant.
class FloorDivide(Function):
    """a // b, rounded down (Python's and PyTorch's floor division). PyTorch marks a floating
    result as requiring grad but has no derivative for it; so does this: backward raises."""

    def forward(self, a, b):
        with np.errstate(divide="ignore", invalid="ignore"):  # x // 0 is +-inf or nan
            return backend.get_array_module(a).floor_divide(a, b)

    def backward(self, gy, ops):
        raise DescentError(
            "floor_divide: the derivative of a // b is not implemented (PyTorch has none "
            "either); detach() the quotient, or use div(a, b, rounding_mode='floor'), whose "
            "gradient is 0"
        )


def floor_divide(a, b) -> Tensor:
    """a // b (Python's floor division; an integer division by zero raises, as in PyTorch)."""
    pa, pb = _promoted_operands(a, b)
    _check_integer_divisor("floor_divide", pa, pb)
    if pa._data.shape != pb._data.shape:
        check_broadcast(FloorDivide, pa, pb)
    if pa._data.dtype is _F16 and is_scalar(b):  # float16 tensor by a number: _in_float32
        return cast(FloorDivide.apply(*_in_float32(a, pa, b, pb)), _F16)
    return FloorDivide.apply(pa, pb)


def _in_float32(a, pa, b, pb):
    """The operands of a float16 tensor's rounded division by a Python number, which PyTorch
    computes in float32 and rounds once (x // 0.1: 0.1 kept in float32, x = 0.1 gives 0; trunc
    of 3074 / 3 is 1024, not trunc of float16's 1025): the tensor cast to float32, the number
    as a float32 0-d tensor. (A number divided by a float16 tensor, and two float16 tensors:
    PyTorch rounds the number to float16; its floor division then rounds its steps to float16,
    NumPy's does not, docs/pytorch.md; trunc divides in float16 there, as NumPy does.)"""
    xp = backend.get_array_module(pa._data)
    return tuple(Tensor._wrap(xp.asarray(v, dtype=_F32)) if is_scalar(v) else cast(p, _F32)
                 for v, p in ((a, pa), (b, pb)))  # fmt: skip


class Remainder(Function):
    """a % b with the sign of b (Python's): d/da = 1, d/db = -(a // b), as PyTorch's."""

    zero_passes = (True, False)  # a known-zero gradient passes (PyTorch's formula multiplies it)

    save_inputs = True
    saved_for = (1,)  # only b's gradient reads them (PyTorch's RemainderBackward1 saves them then)

    def forward(self, a, b):
        # PyTorch's form: fmod, then b added where the signs differ (a zero keeps fmod's sign:
        # -3e38 % 2 is -0.0 there, +0.0 in NumPy's remainder).
        xp = backend.get_array_module(a)
        with np.errstate(divide="ignore", invalid="ignore"):  # x % 0 is nan
            m = xp.fmod(a, b)
            return xp.where((m != 0) & ((b < 0) != (m < 0)), m + b, m)

    def backward(self, gy, ops):
        gb = None
        if self.parents[1] is not None:
            a, b = self.inputs(ops)
            with np.errstate(divide="ignore", invalid="ignore"):
                q = a // b  # piecewise constant: no gradient flows through it
            gb = -gy * (q.detach() if ops.is_graph else q)
        return gy, gb


class RRemainder(Remainder):
    """number % tensor: PyTorch has no derivative for it (remainder.Scalar_Tensor); backward
    raises, as there."""

    def backward(self, gy, ops):
        raise DescentError(
            "remainder: the derivative of number % tensor is not implemented (PyTorch has none "
            "either); detach() the divisor, or write number - (number // x).detach() * x"
        )


def remainder(a, b) -> Tensor:
    """a % b with the sign of the divisor (Python's convention); d/da = 1, d/db = -(a // b)."""
    op = RRemainder if is_scalar(a) else Remainder
    a, b = _promoted_operands(a, b)
    _check_integer_divisor("remainder", a, b)
    if a._data.shape != b._data.shape:
        check_broadcast(op, a, b)
    return op.apply(a, b)


def _check_integer_divisor(name: str, a: Tensor, b: Tensor) -> None:
    """PyTorch's integer division by zero raises (a float one gives inf or nan); an empty
    result divides nothing. Two bool operands raise too (PyTorch has no bool kernel)."""
    if a._data.dtype.kind == "c":  # promoted: either is complex
        raise DtypeError(
            f"{name}: not implemented for complex tensors (dtype {a._data.dtype}, shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}), as in PyTorch"
        )
    if a._data.dtype.kind == "b":  # promoted: both are bool (PyTorch: NotImplementedError,
        raise NotImplementedError(  # "div_trunc_cpu" not implemented for 'Bool')
            f"{name}: not implemented for bool tensors (shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}), as in PyTorch; convert first with .int() or .float()"
        )
    if b._data.dtype.kind in "biu" and a._data.size and not b._data.all():
        raise DescentError(
            f"{name}: integer division by zero (divisor of shape {tuple(b.shape)} and dtype "
            f"{b._data.dtype} holds a 0), as PyTorch refuses; divide floats (.float()) to get "
            "inf/nan instead"
        )


class RoundedDiv(Function):
    """div(a, b, rounding_mode): floor(a / b) or trunc(a / b); the gradient is 0 to both (as
    PyTorch's, which keeps the inputs connected). The inputs are saved though backward reads
    neither: PyTorch's DivBackward2 saves b when a needs a gradient and a when b does, so an
    in-place change of the saved one (x.div_(x, rounding_mode='floor')) makes backward raise,
    and a second backward without retain_graph raises too."""

    __slots__ = ("mode",)
    save_inputs = True
    # a is read (its version checked) only for b's gradient, b for both (PyTorch's DivBackward2)
    cross_saved = (True, False)

    def forward(self, a, b):
        xp = backend.get_array_module(a)
        if self.mode == "floor":
            # floor_divide, not floor(a / b): exact where the quotient rounds up to a whole
            # number (1 // 0.1 is 9, floor(1 / 0.1) is 10), as Python's and PyTorch's.
            with np.errstate(divide="ignore", invalid="ignore"):
                return xp.floor_divide(a, b)
        if a.dtype.kind in "iu":  # exact in integers (a / b in float64 rounds beyond 2**53)
            with np.errstate(over="ignore"):  # INT_MIN // -1 wraps, as in PyTorch
                q = xp.floor_divide(a, b)
                return q + ((q * b != a) & ((a < 0) != (b < 0))).astype(q.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = xp.trunc(a / b)
        return q if q.dtype == a.dtype else q.astype(a.dtype)

    def backward(self, gy, ops):
        # Zeros, not gy * 0: PyTorch's div_tensor_self/other_backward give zeros_like(grad)
        # with a rounding mode, also where gy is inf or nan; under create_graph a constant (an
        # operand reached by them alone keeps a second-order .grad of None, as there)
        gx = ops.where(True, 0, gy)
        if ops.is_graph:
            gx = gx.detach()
        return gx, gx


def divide_rounded(a, b, rounding_mode: str) -> Tensor:
    """a / b rounded down ('floor') or toward zero ('trunc'); integers stay integers."""
    if rounding_mode not in ("floor", "trunc"):
        raise DescentError(
            f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}"
        )
    pa, pb = _promoted_operands(a, b)
    _check_integer_divisor(f"div(rounding_mode={rounding_mode!r})", pa, pb)
    if pa._data.shape != pb._data.shape:
        check_broadcast(RoundedDiv, pa, pb)
    if pa._data.dtype is _F16 and is_scalar(b):  # float16 tensor by a number: _in_float32
        return cast(RoundedDiv.apply(*_in_float32(a, pa, b, pb), mode=rounding_mode), _F16)
    return RoundedDiv.apply(pa, pb, mode=rounding_mode)


def _promoted_operands(a, b):
    """Both operands as Tensors of PyTorch's result dtype (lists and arrays become tensors)."""
    if not isinstance(a, Tensor) and (not is_scalar(a) or not isinstance(b, Tensor)):
        a = as_tensor(a)
    if not isinstance(b, Tensor) and not is_scalar(b):
        b = as_tensor(b)
    return promote(a, b)
