"""Parameter: a Tensor that a Module registers as one of its learnable knobs."""

from __future__ import annotations

from ..tensor import _GRAD_PLAIN
from ..tensor import Tensor as _Tensor

__all__ = ["Parameter"]


class Parameter(_Tensor):
    """A leaf tensor that requires grad by default and is registered by `Module.__setattr__`.

    Args:
        data: a Tensor (its dtype is kept and its memory shared, as in PyTorch) or array-like
            data (floating data defaults to float32).
        requires_grad: whether optimizers should train it (default True).
        dtype: an explicit dtype.
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True, dtype=None) -> None:
        if data is None:
            data = []
        if isinstance(data, _Tensor):
            if dtype is None:
                dtype = data.dtype  # keep float64 float64: wrapping must not cast
            data = data._data
        super().__init__(data, dtype=dtype, requires_grad=requires_grad)

    def __deepcopy__(self, memo: dict) -> Parameter:
        """copy.deepcopy(p): a new Parameter holding a copy of the values, with the same
        requires_grad and NO `.grad`, as PyTorch's. So `copy.deepcopy(model)` after a backward
        gives a model whose gradients start empty (a copied `.grad` would be added to)."""
        if id(self) in memo:
            return memo[id(self)]
        result = Parameter(self.detach().clone(), self.requires_grad)
        if type(self) is not Parameter:  # subclasses (UninitializedParameter) share the layout
            result.__class__ = type(self)
        memo[id(self)] = result
        return result

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__


# `p.grad = g` for a plain Tensor g of p's shape and dtype skips the assignment check, as a plain
# Tensor's does (unless a grad_dtype is set: tensor.py)
_GRAD_PLAIN.add(Parameter)


def __getattr__(name: str):
    # torch.nn.parameter also holds Buffer, UninitializedParameter, UninitializedBuffer and
    # is_lazy; descent defines them in nn/buffer.py, which imports this module (so: on first use).
    if name in ("Buffer", "UninitializedParameter", "UninitializedBuffer", "is_lazy"):
        from . import buffer  # noqa: PLC0415

        return getattr(buffer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
