"""The one way an activation runs in place: `F.relu_(x)`, `F.relu(x, inplace=True)` and
`nn.ReLU(inplace=True)` all come here.

The out-of-place function computes the result, which is stored in the input with the rules of
descent's in-place methods (`descent.inplace_unary`): recorded when a gradient can flow (the
function runs on an alias of the old value and the input is rebound to the result, so the graph
gets one node and nodes that saved the old value keep it), otherwise written into the input's
array (views see it); the version counter goes up either way, and a leaf that requires grad may
not be changed under grad mode. The input then holds the result, as in PyTorch: a residual block
`x + block(x)` whose block starts with `nn.ReLU(inplace=True)` adds relu(x), not x.
"""

from __future__ import annotations

from ...inplace_unary import _fit, write_values
from ...ops.inplace import _check_leaf_inplace, _rebind, _records, _written
from ...ops.view_write import redo_assign
from ...tensor import Tensor

__all__ = ["apply_inplace"]


def apply_inplace(x: Tensor, fn, op: str) -> Tensor:
    """Store fn(x) in x and return x; `op` names the in-place function in errors ('relu_').

    Raises:
        TypeError: x is not a descent Tensor (PyTorch needs a tensor to write into).
        RuntimeError: x is a leaf that requires grad and grad mode is on.
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a descent Tensor, got {type(x).__name__}")
    _check_leaf_inplace(x, op)
    if _records(x):
        return _rebind(x, _fit(x, fn(x._alias()), op, op[:-1]))
    values = _fit(x, fn(x), op, op[:-1])._data
    write_values(x, values)
    _written(x, (redo_assign, values))  # x's version, its views' and base's, as Tensor.relu_'s
    return x
