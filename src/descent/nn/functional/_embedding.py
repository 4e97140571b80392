"""Integer class indices to vectors: `embedding` (rows of a learned table) and `one_hot`."""

from __future__ import annotations

from ...ops._common import as_tensor
from ...ops.embedding import Embedding
from ...ops.indexing import one_hot as _one_hot
from ...tensor import Tensor

__all__ = ["embedding", "one_hot"]


def embedding(
    input,
    weight,
    padding_idx: int | None = None,
    max_norm=None,
    norm_type=2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by the integer tensor `input`.

    `padding_idx` rows receive no gradient. max_norm, scale_grad_by_freq and sparse are not
    supported (they raise).
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding: max_norm, scale_grad_by_freq and sparse are not supported by descent"
        )
    w = as_tensor(weight)
    idx = as_tensor(input)._data
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n_rows = w.shape[0]
    # Range-checked here, before the gather: CuPy wraps out-of-range indices silently instead of
    # raising, and NumPy's own IndexError would not name the function.
    # Negative indices are refused as PyTorch refuses them: a token id of -1 is a bug upstream
    # (a padding sentinel, an unmapped character), and wrapping it to the last row would train
    # that row silently.
    lo, hi = (int(idx.min()), int(idx.max())) if idx.size else (0, 0)
    if lo < 0 or hi >= n_rows:
        bad = lo if lo < 0 else hi
        raise IndexError(
            f"embedding: index {bad} out of range for {n_rows} embeddings (indices must be in "
            f"[0, {n_rows}); negative indices are not allowed, as in PyTorch)"
        )
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n_rows
    return Embedding.apply(w, idx=idx, padding_idx=padding_idx)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding with a new last axis of size num_classes (inferred when -1)."""
    t = as_tensor(tensor)
    if t._data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expects an integer tensor of class indices, got {t.dtype}")
    if t.size and (
        int(t._data.min()) < 0 or (num_classes >= 0 and int(t._data.max()) >= num_classes)
    ):
        raise ValueError(
            f"one_hot: class values must lie in [0, {num_classes}), got min {int(t._data.min())} "
            f"and max {int(t._data.max())}"
        )
    return _one_hot(t, num_classes)
