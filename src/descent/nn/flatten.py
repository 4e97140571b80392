"""Flatten and Unflatten: reshapes as layers, for use inside a Sequential."""

from __future__ import annotations

from collections.abc import Sequence

from .module import Module

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Flatten dimensions start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension `dim` into `unflattened_size`: the inverse of Flatten."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        self.dim = dim
        # kept as given (a Size, tuple or list), as PyTorch: its repr shows that object
        if not isinstance(unflattened_size, (tuple, list)):
            unflattened_size = tuple(unflattened_size)
        self.unflattened_size = unflattened_size

    def forward(self, input):
        # Tensor.unflatten checks the dim (a modulo wrapped an out-of-range one silently)
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
