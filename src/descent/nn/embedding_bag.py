"""EmbeddingBag: the sum, mean or max of bags of a learned table's rows (torch.nn.EmbeddingBag's
arguments, parameter name `weight` and N(0, 1) initialisation)."""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .embedding import Embedding

__all__ = ["EmbeddingBag"]


class EmbeddingBag(Embedding):
    """Sums, means or maxima of bags of embeddings, without the (B, L, dim) intermediate.

    Args:
        num_embeddings, embedding_dim, padding_idx, _weight: as `Embedding` (padding_idx
            entries are left out of every bag).
        mode: "sum", "mean" (default) or "max".
        include_last_offset: offsets has B + 1 entries, the last one the end of the last bag.

    `forward(input, offsets=None, per_sample_weights=None)`: a 2-D input (B, L) is B bags of
    L indices; a 1-D input needs `offsets` (B,) (the start of each bag). Returns (B, dim).
    max_norm renormalises the rows used, in place, as `Embedding`'s; scale_grad_by_freq divides
    each row's gradient by its index's count in the input (not with mode 'max'). sparse=True
    (modes 'sum' and 'mean', as PyTorch): the weight's gradient is a sparse COO tensor, as
    PyTorch's (see `F.embedding_bag`).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: Tensor | None = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        device=None,
        dtype=None,
    ) -> None:
        if mode not in ("sum", "mean", "max"):
            raise ValueError("EmbeddingBag: mode has to be one of sum, mean or max")
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, _weight=_weight, device=device,
                         dtype=dtype)  # fmt: skip
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset

    @classmethod
    def from_pretrained(
        cls, embeddings: Tensor, freeze: bool = True, max_norm=None, norm_type: float = 2.0,
        scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
        include_last_offset: bool = False, padding_idx: int | None = None,
    ) -> EmbeddingBag:  # fmt: skip
        """An EmbeddingBag whose weight is `embeddings` (2-D); frozen unless `freeze=False`."""
        if embeddings.ndim != 2:
            raise ValueError(
                f"from_pretrained: embeddings must be 2-D, got {tuple(embeddings.shape)}"
            )
        rows, cols = embeddings.shape
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                  embeddings, include_last_offset, padding_idx)  # fmt: skip
        bag.weight.requires_grad_(not freeze)
        return bag

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(
            input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
            self.mode, self.sparse, per_sample_weights, self.include_last_offset,
            self.padding_idx,
        )  # fmt: skip

    def extra_repr(self) -> str:
        # PyTorch's order; sparse is not shown (as PyTorch's)
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s
