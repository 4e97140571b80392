"""Rotary position embeddings (RoPE; Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary
Position Embedding", arXiv:2104.09864).

Instead of adding a position vector to the token embedding, RoPE rotates the queries and keys of
attention by an angle proportional to their position. Channel pair i of a head of width D turns
at the frequency theta_i = base^(-2i / D), i = 0..D/2-1, so at position m the pair is rotated by
the angle m * theta_i. A rotation by m then a rotation by n leaves, in the dot product q_m . k_n,
only the difference m - n: attention scores depend on relative positions, and no position is
learned.

Pairing convention: the "half-split" layout of GPT-NeoX, LLaMA (Hugging Face) and
modded-nanogpt: channel i is paired with channel i + D/2 (not with its neighbour i + 1, as in
the RoFormer paper's interleaved layout). With x1 = x[..., :D/2], x2 = x[..., D/2:]:

    y1 = x1 * cos(m theta) - x2 * sin(m theta)
    y2 = x1 * sin(m theta) + x2 * cos(m theta)        y = cat([y1, y2], dim=-1)

Public API (all differentiable with respect to `x`; cos/sin are constants):

    rotary_cos_sin(seq_len, dim, base=10000.0, *, offset=0, dtype=None, device=None)
        -> (cos, sin), two Tensors of shape (seq_len, dim // 2) for the positions
           offset .. offset + seq_len - 1. The angles are computed in float64 and then cast to
           `dtype` (float32 by default), so float64 models get float64-exact tables.
    apply_rotary_emb(x, cos, sin) -> Tensor
        x: (..., T, D) with D even; cos, sin: broadcastable to (..., T, D // 2).
    RotaryEmbedding(dim, max_seq_len=None, base=10000.0)
        a Module with no parameters that keeps the cos/sin tables per (dtype, device) and
        applies them: rope(x, offset=0) with x (..., T, D). `offset` is the position of x's
        first row (a KV cache passes the number of cached tokens). `max_seq_len`, when given,
        bounds offset + T and raises a clear error beyond it.

    >>> rope = RotaryEmbedding(16)
    >>> q = descent.randn(2, 4, 8, 16)                  # (B, heads, T, head_dim)
    >>> rope(q).shape
    (2, 4, 8, 16)

The tables are plain attributes, not buffers: they are derived from (dim, base) alone, so they
are neither saved in checkpoints nor loaded from them.
"""

from __future__ import annotations

import numpy as np

from .. import creation
from ..ops import rotary as _rotary
from ..tensor import Tensor
from .module import Module

__all__ = ["rotary_frequencies", "rotary_cos_sin", "apply_rotary_emb", "RotaryEmbedding"]


def rotary_frequencies(dim: int, base: float = 10000.0) -> np.ndarray:
    """theta_i = base^(-2i / dim) for i = 0..dim/2-1, in float64 (shape (dim // 2,)).

    Raises:
        ValueError: dim is not a positive even number, or base <= 1.
    """
    if int(dim) != dim or dim <= 0 or dim % 2:
        raise ValueError(
            f"rotary embedding: dim must be a positive even number (channels are rotated in "
            f"pairs), got {dim}; use an even head width"
        )
    if not base > 1.0:
        raise ValueError(f"rotary embedding: base must be > 1, got {base}")
    return 1.0 / (float(base) ** (np.arange(0, dim, 2, dtype=np.float64) / dim))


def rotary_cos_sin(
    seq_len: int,
    dim: int,
    base: float = 10000.0,
    *,
    offset: int = 0,
    dtype=None,
    device=None,
) -> tuple[Tensor, Tensor]:
    """cos and sin of the rotation angles for positions offset..offset+seq_len-1.

    Args:
        seq_len: number of positions T.
        dim: head width D (even).
        base: the frequency base (10000 in the paper).
        offset: the first position.
        dtype: dtype of the returned tables (float32 by default); angles are computed in float64.
        device: device of the returned tables.

    Returns:
        (cos, sin): two constant Tensors of shape (seq_len, dim // 2).
    """
    if seq_len < 0 or offset < 0:
        raise ValueError(f"rotary_cos_sin: seq_len ({seq_len}) and offset ({offset}) must be >= 0")
    inv_freq = rotary_frequencies(dim, base)  # (D/2,)
    pos = np.arange(offset, offset + seq_len, dtype=np.float64)  # (T,)
    angles = np.outer(pos, inv_freq)  # (T, D/2)
    dtype = np.float32 if dtype is None else dtype
    cos = creation.tensor(np.cos(angles), dtype=dtype, device=device)
    sin = creation.tensor(np.sin(angles), dtype=dtype, device=device)
    return cos, sin


def apply_rotary_emb(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs (i, i + D/2) of x by the angles whose cos/sin are given.

    Args:
        x: (..., T, D) queries or keys, D even.
        cos, sin: (T, D // 2) tables from `rotary_cos_sin` (or anything broadcastable to
            (..., T, D // 2)), in x's dtype.

    Returns:
        (..., T, D), differentiable in x to every order: d y / d x is the transposed rotation
        (the inverse), which is the same op with -sin.

    Raises:
        ValueError: odd D, or tables whose last dimension is not D // 2.
    """
    d = x.shape[-1]
    if d % 2:
        raise ValueError(
            f"apply_rotary_emb: the last dimension of x {tuple(x.shape)} must be even "
            "(channels are rotated in pairs)"
        )
    half = d // 2
    if cos.shape[-1] != half or sin.shape[-1] != half:
        raise ValueError(
            f"apply_rotary_emb: cos {tuple(cos.shape)} and sin {tuple(sin.shape)} must end in "
            f"D // 2 = {half} for x {tuple(x.shape)}; build them with rotary_cos_sin(T, {d})"
        )
    if cos.dtype != x.dtype or sin.dtype != x.dtype:
        raise TypeError(
            f"apply_rotary_emb: cos/sin dtype {cos.dtype} differs from x's {x.dtype}; build the "
            "tables with rotary_cos_sin(..., dtype=x.dtype) (no silent casts)"
        )
    # One op (descent.ops.rotary): y1 = x1 cos - x2 sin, y2 = x2 cos + x1 sin, written into
    # the two halves of one array; bitwise what the slices, products and concatenation gave.
    return _rotary.rotary(x, cos._data, sin._data)  # (..., T, D)


class RotaryEmbedding(Module):
    """Rotary position embedding for one head width: rope(x, offset=0) rotates x (..., T, D).

    Args:
        dim: the head width D (even).
        max_seq_len: the longest offset + T allowed (None: unbounded). A model sets its
            block_size here so that a position beyond it fails loudly.
        base: the frequency base (10000).

    The module has no parameters and no buffers. It keeps cos/sin tables for each
    (dtype, device) it has met, grown to the longest offset + T seen, and slices them.
    """

    def __init__(self, dim: int, max_seq_len: int | None = None, base: float = 10000.0) -> None:
        super().__init__()
        rotary_frequencies(dim, base)  # validates dim and base
        if max_seq_len is not None and max_seq_len <= 0:
            raise ValueError(f"RotaryEmbedding: max_seq_len must be positive, got {max_seq_len}")
        self.dim = int(dim)
        self.max_seq_len = max_seq_len
        self.base = float(base)
        self._tables: dict = {}  # (dtype, device) -> (cos, sin), each (n, D/2)

    def cos_sin(self, seq_len: int, offset: int = 0, dtype=None, device=None):
        """(cos, sin) of shape (seq_len, D/2) for positions offset..offset+seq_len-1."""
        end = offset + seq_len
        if self.max_seq_len is not None and end > self.max_seq_len:
            raise ValueError(
                f"RotaryEmbedding: positions up to {end - 1} requested (offset {offset} + "
                f"length {seq_len}) but max_seq_len={self.max_seq_len}; crop the sequence"
            )
        dtype = np.dtype(np.float32 if dtype is None else dtype)
        key = (dtype.str, str(device))
        cached = self._tables.get(key)
        if cached is None or cached[0].shape[0] < end:
            # Build for at least max_seq_len positions when it is known: one table serves all.
            n = max(end, self.max_seq_len or 0)
            cached = rotary_cos_sin(n, self.dim, self.base, dtype=dtype, device=device)
            self._tables[key] = cached
        cos, sin = cached
        if offset == 0 and seq_len == cos.shape[0]:
            return cos, sin
        return cos[offset:end], sin[offset:end]

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """x (..., T, D) -> (..., T, D) rotated for positions offset..offset+T-1."""
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"RotaryEmbedding: x {tuple(x.shape)} ends in {x.shape[-1]} channels, this "
                f"module was built for dim={self.dim}"
            )
        cos, sin = self.cos_sin(x.shape[-2], offset, x.dtype, x.device)
        return apply_rotary_emb(x, cos, sin)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, max_seq_len={self.max_seq_len}, base={self.base}"
