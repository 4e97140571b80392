"""torch.overrides: the `__torch_function__` protocol's entry points. descent has no tensor
subclass dispatch, so nothing ever overrides: `has_torch_function*` are False."""

from __future__ import annotations

from .tensor import Tensor as _Tensor

__all__ = ["has_torch_function", "has_torch_function_unary", "has_torch_function_variadic",
           "handle_torch_function", "is_tensor_like",
           "is_tensor_method_or_property"]  # fmt: skip


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
    """True for descent tensors and for objects whose type defines `__torch_function__`
    (PyTorch's "Tensor-like"), as torch.overrides.is_tensor_like."""
    return isinstance(inp, _Tensor) or hasattr(type(inp), "__torch_function__")


_tensor_methods: set | None = None


def is_tensor_method_or_property(func) -> bool:
    """True for a method of Tensor (`Tensor.add`) or a property's `__get__`, False for a
    function (`descent.add`), as torch.overrides.is_tensor_method_or_property."""
    global _tensor_methods
    if _tensor_methods is None:  # every callable in the class dicts of Tensor and its mixins
        _tensor_methods = {
            v for cls in _Tensor.__mro__[:-1] for v in vars(cls).values() if callable(v)
        }
    try:
        if func in _tensor_methods:
            return True
    except TypeError:  # an unhashable object is no method
        return False
    return getattr(func, "__name__", None) == "__get__"
