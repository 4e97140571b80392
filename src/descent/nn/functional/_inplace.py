"""The in-place activations of torch.nn.functional: relu_, elu_, leaky_relu_, hardtanh_,
threshold_, celu_, selu_ and rrelu_.

Each computes the out-of-place function and stores the result in its input with the rules of
descent's in-place methods (`descent.inplace_unary`): recorded when a gradient can flow (the
function runs on an alias of the old value and the input is rebound to the result, so the
graph gets one node), otherwise written into the input's array (views see it); the version
counter goes up either way, and a leaf that requires grad may not be changed under grad mode.
"""

from __future__ import annotations

from ...inplace_unary import _fit, write_values
from ...ops.inplace import _bump, _check_leaf_inplace, _rebind, _records
from ...tensor import Tensor
from ._activation import elu, leaky_relu, relu
from ._activation_extra import celu, hardtanh, rrelu, selu
from ._activation_extra import threshold as _threshold  # `threshold` is an argument below

__all__ = [
    "relu_",
    "elu_",
    "leaky_relu_",
    "hardtanh_",
    "threshold_",
    "celu_",
    "selu_",
    "rrelu_",
]


def _inplace(x: Tensor, fn, op: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a descent Tensor, got {type(x).__name__}")
    _check_leaf_inplace(x, op)
    if _records(x):
        return _rebind(x, _fit(x, fn(x._alias()), op, op[:-1]))
    write_values(x, _fit(x, fn(x), op, op[:-1])._data)
    _bump(x)
    return x


def relu_(input: Tensor) -> Tensor:
    """relu, in place."""
    return _inplace(input, relu, "relu_")


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """elu, in place."""
    return _inplace(input, lambda t: elu(t, alpha), "elu_")


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """leaky_relu, in place."""
    return _inplace(input, lambda t: leaky_relu(t, negative_slope), "leaky_relu_")


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """hardtanh, in place."""
    return _inplace(input, lambda t: hardtanh(t, min_val, max_val), "hardtanh_")


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """threshold, in place."""
    return _inplace(input, lambda t: _threshold(t, threshold, value), "threshold_")


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """celu, in place."""
    return _inplace(input, lambda t: celu(t, alpha), "celu_")


def selu_(input: Tensor) -> Tensor:
    """selu, in place."""
    return _inplace(input, selu, "selu_")


def rrelu_(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False
) -> Tensor:
    """rrelu, in place."""
    return _inplace(input, lambda t: rrelu(t, lower, upper, training), "rrelu_")
