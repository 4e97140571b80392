"""The in-place activations of torch.nn.functional: relu_, elu_, leaky_relu_, hardtanh_,
threshold_, celu_, selu_ and rrelu_.

Each computes the out-of-place function and stores the result in its input
(`_inplace_apply.apply_inplace`, shared with the `inplace=True` arguments).
"""

from __future__ import annotations

from ...tensor import Tensor
from ._activation import elu, leaky_relu, relu
from ._activation_extra import celu, hardtanh, rrelu, selu
from ._activation_extra import threshold as _threshold  # `threshold` is an argument below
from ._inplace_apply import apply_inplace as _inplace

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
