"""More normalisation layers: BatchNorm3d and LocalResponseNorm (torch.nn's arguments,
parameters and buffers)."""

from __future__ import annotations

from . import functional as F
from .module import Module
from .normalization import _BatchNorm

__all__ = ["BatchNorm3d", "LocalResponseNorm"]


class BatchNorm3d(_BatchNorm):
    """BatchNorm over (N, C, D, H, W) inputs; statistics per channel C."""

    _expected_dims = (5,)


class LocalResponseNorm(Module):
    """x / (k + alpha / size * sum of x^2 over `size` neighbouring channels)^beta."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, input):
        return F.local_response_norm(input, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
