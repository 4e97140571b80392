"""Tensor's Python protocol: the operators, the comparisons, `repr` and `format` (a mixin).

Split from `tensor.py`, which keeps the data model and the autograd entry points; `Tensor`
lists this mixin first among its bases, so these methods take precedence over the other
groups' as when they were written in the class body. Each operator is one call into the ops
table (`tensor_methods._ops`).
"""

from __future__ import annotations

import numpy as np

from . import backend
from .dtypes import complex_of, get_default_dtype
from .print_options import add_suffixes, format_values, print_edgeitems
from .tensor_methods import _ops


class PythonProtocol:
    """The operators (`+`, `@`, `==`, ...), `repr`, `str` and `format` of a Tensor."""

    __slots__ = ()

    # -- operators ---------------------------------------------------------------------------
    # Each is one call into the ops table: the dispatch on operand types (a Python number, a
    # tensor of the same shape, broadcasting) lives in ONE place, `ops.elementwise.arithmetic`,
    # which also holds the fast paths. The reflected forms swap the operands.
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __floordiv__(self, other):
        return _ops.floor_divide(self, other)

    def __rfloordiv__(self, other):
        return _ops.floor_divide(other, self)

    def __mod__(self, other):
        return _ops.remainder(self, other)

    def __rmod__(self, other):
        return _ops.remainder(other, self)

    def __pow__(self, other):
        return _ops.pow(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _ops.abs(self)

    # Bitwise on integer tensors (keeping the dtype), logical on bool tensors, as PyTorch.
    def __invert__(self):
        return _ops.bitwise_not(self)

    def __and__(self, other):
        return _ops.bitwise_and(self, other)

    def __rand__(self, other):
        return _ops.bitwise_and(other, self)

    def __or__(self, other):
        return _ops.bitwise_or(self, other)

    def __ror__(self, other):
        return _ops.bitwise_or(other, self)

    def __xor__(self, other):
        return _ops.bitwise_xor(self, other)

    def __rxor__(self, other):
        return _ops.bitwise_xor(other, self)

    def __lshift__(self, other):
        return _ops.bitwise_left_shift(self, other)

    def __rlshift__(self, other):
        return _ops.bitwise_left_shift(other, self)

    def __rshift__(self, other):
        return _ops.bitwise_right_shift(self, other)

    def __rrshift__(self, other):
        return _ops.bitwise_right_shift(other, self)

    # Comparisons return bool tensors (NumPy's and PyTorch's meaning), so Tensor defines
    # __hash__ by identity (tensor.py): tensors can still be dict keys and set members.
    def __eq__(self, other):  # type: ignore[override]
        if other is None:  # PyTorch: `x == None` is False (a Python bool), not a bool tensor
            return False
        return _ops.eq(self, other)

    def __ne__(self, other):  # type: ignore[override]
        if other is None:
            return True
        return _ops.ne(self, other)

    def __lt__(self, other):
        return _ops.lt(self, other)

    def __le__(self, other):
        return _ops.le(self, other)

    def __gt__(self, other):
        return _ops.gt(self, other)

    def __ge__(self, other):
        return _ops.ge(self, other)

    def __repr__(self) -> str:
        # PyTorch's layout (torch/_tensor_str.py): the device, then the dtype unless it is the
        # default float dtype, int64 or bool; an empty tensor shows any non-default dtype (no
        # value tells) and its size unless 1-d.
        data = self._data
        if type(data) is not np.ndarray and backend.is_meta(data):
            return self._meta_repr()
        values = backend.as_numpy(data)
        if data.dtype.kind == "V":  # bfloat16 prints its values as floats (exact in float32)
            values = values.astype(np.float32)
        body = format_values(values, "tensor(")  # set_printoptions
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        dt, default = data.dtype, get_default_dtype()
        if data.size == 0:
            if data.ndim != 1:
                extras.append(f"size={tuple(data.shape)}")
            if dt != default:
                extras.append(f"dtype=descent.{dt.name}")
        else:
            if not print_edgeitems():  # only "..." prints: PyTorch names the size
                extras.append(f"size={tuple(data.shape)}")
            # complex64 is the default complex dtype (complex128 under a float64 default)
            if dt != default and dt.kind != "b" and dt != np.int64 and dt != complex_of(default):
                extras.append(f"dtype=descent.{dt.name}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name().rpartition('::')[2]}>")  # CopySlices
        elif self._rg:
            extras.append("requires_grad=True")
        return add_suffixes("tensor(" + body, extras, len("tensor("))

    __str__ = __repr__

    def _meta_repr(self) -> str:
        """PyTorch's repr of a meta tensor: `tensor(..., device='meta', size=(2, 3))`, with
        any dtype other than the default float one (int64 too: no value shows it)."""
        extras = ["device='meta'", f"size={tuple(self._data.shape)}"]
        if self._data.dtype != get_default_dtype():
            extras.append(f"dtype=descent.{self._data.dtype.name}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.name().rpartition('::')[2]}>")  # CopySlices
        elif self._rg:
            extras.append("requires_grad=True")
        return "tensor(..., " + ", ".join(extras) + ")"

    def __format__(self, spec: str) -> str:
        """`f"{loss:.4f}"` formats a 0-d tensor's value, as in PyTorch."""
        if self._data.ndim == 0 and not self.is_meta:  # (a meta tensor has no value: its repr)
            return format(self.item(), spec)
        if not spec:
            return repr(self)
        raise TypeError(
            f"unsupported format string {spec!r} for a tensor of shape {tuple(self.shape)}: "
            "format its .item() (one element) or .tolist()"
        )
