"""Activation functions under PyTorch's names and signatures.

Each is a thin wrapper: the op itself (value and derivative) lives in `descent.ops.activation`
or `descent.ops.reduce`; this file adds torch.nn.functional's argument names and defaults.
`inplace=True` stores the result in the input and returns it, as PyTorch
(`_inplace_apply.apply_inplace`: recorded as one node, the version counter bumped).
"""

from __future__ import annotations

import warnings

from ...errors import DescentError
from ...grad_mode import is_grad_enabled
from ...ops import activation as _act
from ...ops import softmax as _sm
from ...ops._common import as_tensor, python_number
from ...tensor import Tensor
from ._inplace_apply import apply_inplace

__all__ = [
    "relu",
    "gelu",
    "silu",
    "tanh",
    "sigmoid",
    "leaky_relu",
    "elu",
    "softplus",
    "logsigmoid",
    "softmax",
    "log_softmax",
]


def relu(input, inplace: bool = False) -> Tensor:
    """max(x, 0); `inplace=True` stores it in `input`."""
    if inplace:
        return apply_inplace(input, _act.relu, "relu_")
    return _act.relu(input)


def gelu(input, approximate: str = "none") -> Tensor:
    """GELU: x Phi(x) (approximate='none') or its tanh approximation ('tanh')."""
    return _act.gelu(input, approximate=approximate)


def silu(input, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (complex input: x / (1 + e^-x), as ATen's kernel)."""
    op = _complex_silu if isinstance(input, Tensor) and input._data.dtype.kind == "c" else None
    if inplace:
        return apply_inplace(input, op or _act.silu, "silu_")
    return _act.silu(input) if op is None else op(input)


def _complex_silu(x: Tensor) -> Tensor:
    """ATen's complex silu, x / (1 + e^-x), without a derivative: PyTorch refuses to record
    it (its error, here too), so a program that runs on PyTorch never needs one."""
    if x.requires_grad and is_grad_enabled():
        raise DescentError(
            "silu does not support automatic differentiation for outputs with complex dtype."
        )
    return x / ((-x).exp() + 1.0)


def tanh(input) -> Tensor:
    """(e^x - e^-x) / (e^x + e^-x)."""
    return _act.tanh(input)


def sigmoid(input) -> Tensor:
    """1 / (1 + e^-x)."""
    return _act.sigmoid(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x where x > 0, else negative_slope * x."""
    slope = python_number(negative_slope)  # np.float64: no upcast
    if inplace:
        return apply_inplace(input, lambda t: _act.leaky_relu(t, slope), "leaky_relu_")
    return _act.leaky_relu(input, slope)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha (e^x - 1)."""
    if inplace:
        return apply_inplace(input, lambda t: _act.elu(t, python_number(alpha)), "elu_")
    return _act.elu(input, python_number(alpha))


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta; x itself where beta x > threshold (as PyTorch)."""
    return _act.softplus(input, python_number(beta), python_number(threshold))


def logsigmoid(input) -> Tensor:
    """log(sigmoid(x)) = min(x, 0) - log1p(e^-|x|), stable for large |x| (PyTorch's form)."""
    return _act.log_sigmoid(input)


def _implicit_dim(op: str, ndim: int, stacklevel: int) -> int:
    """PyTorch's legacy dim for softmax/log_softmax called without `dim` (0 for 0-, 1- and 3-d
    inputs, else 1; not the last dim), with PyTorch's deprecation warning."""
    dim = 0 if ndim in (0, 1, 3) else 1
    warnings.warn(
        f"{op}: implicit dimension choice for {op} has been deprecated (a {ndim}-d input takes "
        f"dim={dim}). Change the call to include dim=X as an argument.",
        UserWarning,
        stacklevel=stacklevel,
    )
    return dim


def softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along `dim`, stable (the maximum is subtracted first).

    `_stacklevel` exists only so that PyTorch calls that pass it positionally keep working.
    `dtype` casts the input first (PyTorch's way to get a float32 softmax of float16 logits).
    """
    x = as_tensor(input)
    if x._nested_layout:  # a jagged nested tensor (descent.nested)
        return x.softmax(-1 if dim is None else dim, dtype)
    if dim is None:
        dim = _implicit_dim("softmax", x.ndim, _stacklevel)
    if dtype is not None:
        x = x.astype(dtype)
    return _sm.softmax(x, dim=dim)


def log_softmax(input, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """x - logsumexp(x) along `dim`, stable."""
    x = as_tensor(input)
    if x._nested_layout:  # a jagged nested tensor (descent.nested)
        return x.log_softmax(-1 if dim is None else dim, dtype)
    if dim is None:
        dim = _implicit_dim("log_softmax", x.ndim, _stacklevel)
    if dtype is not None:
        x = x.astype(dtype)
    return _sm.log_softmax(x, dim=dim)
