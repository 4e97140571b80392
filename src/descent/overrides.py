"""torch.overrides: the `__torch_function__` protocol's entry points. descent has no tensor
subclass dispatch, so nothing ever overrides: `has_torch_function*` are False."""

from __future__ import annotations

from .tensor import Tensor

__all__ = ["has_torch_function", "has_torch_function_unary", "has_torch_function_variadic",
           "handle_torch_function", "is_tensor_like"]  # fmt: skip


def has_torch_function(relevant_args) -> bool:
    return False


def has_torch_function_unary(arg) -> bool:
    return False


def has_torch_function_variadic(*args) -> bool:
    return False


def handle_torch_function(public_api, relevant_args, *args, **kwargs):
    raise RuntimeError(
        "handle_torch_function: descent has no __torch_function__ dispatch (has_torch_function "
        "is always False, so this is never reached from a correct caller)"
    )


def is_tensor_like(inp) -> bool:
    """True for descent tensors (PyTorch also counts __torch_function__ types)."""
    return isinstance(inp, Tensor)
