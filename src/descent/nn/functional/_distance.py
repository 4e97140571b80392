"""Distances between vectors: pairwise_distance, pdist (cosine_similarity lives with normalize in
`_normalization`). Composites of descent ops."""

from __future__ import annotations

from ...ops import reduce as _red
from ...ops import torch_gaps as _torch_gaps
from ...ops._common import as_tensor
from ...tensor import Tensor

__all__ = ["pairwise_distance", "pdist"]


def pairwise_distance(x1, x2, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dimension (broadcasting), as PyTorch: the eps inside
    the norm keeps the gradient finite where x1 == x2."""
    a, b = as_tensor(x1), as_tensor(x2)
    diff = a - b + eps
    # (two 0-d inputs: the norm over dim -1 of a 0-d tensor is |diff|, as PyTorch's)
    return _red.norm(diff, ord=p, axis=-1, keepdims=keepdim)


def pdist(input, p: float = 2) -> Tensor:
    """The p-norm distances between the rows of an (N, M) input, i < j in row-major order:
    N (N - 1) / 2 values; descent.pdist's op (torch.nn.functional.pdist is torch.pdist)."""
    return _torch_gaps.pdist(input, p)
