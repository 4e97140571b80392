"""torch.autograd.function: `Function`, `FunctionCtx`, `once_differentiable` and
`InplaceFunction` under PyTorch's module path (`from torch.autograd.function import ...`)."""

from __future__ import annotations

import functools

from .autograd import Function, no_grad
from .autograd_torch import FunctionCtx

__all__ = ["Function", "FunctionCtx", "InplaceFunction", "once_differentiable"]


class InplaceFunction(Function):
    """PyTorch's base for custom functions that may work in place (`inplace` flag kept)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace


def once_differentiable(fn):
    """Decorate a custom function's `backward`: it runs without recording, so its gradients
    carry no graph (a second derivative through it is not available, as in PyTorch)."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with no_grad():
            return fn(ctx, *args)

    wrapper.once_differentiable = True  # forward mode needs a jvp then (autograd_torch)
    return wrapper
