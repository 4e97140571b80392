"""Grouped-query attention with rotary positions, logit soft-capping and a key/value cache.

Grouped-query attention (GQA; Ainslie et al. 2023, "GQA: Training Generalized Multi-Query
Transformer Models from Multi-Head Checkpoints") gives `n_head` query heads but only
`n_kv_head` key/value heads; query head h reads key/value head h // (n_head // n_kv_head), the
layout of PyTorch's `scaled_dot_product_attention(..., enable_gqa=True)`. Grok-1 has 48 query
and 8 key/value heads: the key/value cache is 6 times smaller than with full multi-head
attention.

Grok-1's attention (xai-org/grok-1 `model.py`, `MultiHeadAttention`), which this module follows:

    q, k, v = x Wq, x Wk, x Wv                     (no biases; key size = head_dim)
    q, k    = rope(q), rope(k)                     (rotary positions, half-split layout)
    s       = (q k^T) * attn_output_multiplier     (the only scaling: no extra 1/sqrt(d))
    s       = cap * tanh(s / cap)                  (soft-cap, cap = 30)
    y       = softmax(causal_mask(s)) v  -> heads side by side -> x Wo

Soft-capping bounds every logit in (-cap, cap) smoothly (Gemma 2 uses it too); its derivative
1 - tanh(s/cap)^2 stays positive, so gradients shrink but never vanish at large logits.
Without a cap the module calls the fused `F.scaled_dot_product_attention(enable_gqa=True)`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from . import functional as F
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .rotary import RotaryEmbedding

__all__ = ["soft_cap", "GroupedQueryAttention", "KVCache"]


class SoftCap(Function):
    """y = cap * tanh(x / cap); d/dx = 1 - (y / cap)^2 (reuses the output).

    One op where tanh(x * (1/cap)) * cap makes three: it runs on every attention logit (B, H,
    T, S) of every layer, and once per layer per generated token.
    """

    __slots__ = ("cap",)
    save_output = True

    def forward(self, x):
        xp = backend.get_array_module(x)
        y = x * (1.0 / self.cap)  # a new array, then tanh and the scale in place
        xp.tanh(y, out=y)
        y *= self.cap
        return y

    def backward(self, gy, ops):
        # Under create_graph the output is this node's Tensor, so the rule differentiates again.
        t = self.output(ops) * (1.0 / self.cap)  # tanh(x / cap)
        return gy - gy * t * t


def _rotate_pairs(xp, x, cos, sin):
    """Channel pairs (i, i + D/2) of x (..., T, D) rotated by angles with cos/sin (T, D/2).

    On the CPU one numba pass (`kernels.cpu.rope`, the same bits and layout as below)."""
    if type(x) is np.ndarray:
        k = backend.fused("rope", x, cos, sin)
        y = None if k is None else k(x, cos, sin)
        if y is not None:
            return y
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    y = xp.empty_like(x)
    y[..., :half] = x1 * cos - x2 * sin
    y[..., half:] = x1 * sin + x2 * cos
    return y


class RotaryRotation(Function):
    """y = RoPE(x) with the tables of a `RotaryEmbedding` (half-split pairs), as one op.

    The same arithmetic as `nn.rotary.apply_rotary_emb` (slices, four products, a concatenate:
    eleven ops per call, 30% of the ops of a decoding step); the derivative is the transposed
    rotation, i.e. the rotation by the opposite angles: gx = RoPE(gy) with sin -> -sin.
    """

    __slots__ = ("cos", "sin")

    def forward(self, x):
        return _rotate_pairs(backend.get_array_module(x), x, self.cos, self.sin)

    def backward(self, gy, ops):
        if ops.is_graph:  # recorded, so differentiable again
            return RotaryRotation.apply(gy, cos=self.cos, sin=-self.sin)
        return _rotate_pairs(backend.get_array_module(gy), gy, self.cos, -self.sin)


def soft_cap(x: Tensor, cap: float | None) -> Tensor:
    """cap * tanh(x / cap): a smooth clamp to (-cap, cap); identity when cap is None or 0.

    d/dx = 1 - tanh(x / cap)^2 (the `SoftCap` op; differentiable to any order).
    """
    if not cap:
        return x
    if cap < 0:
        raise ValueError(f"soft_cap: cap must be positive (or None for no cap), got {cap}")
    return SoftCap.apply(x, cap=float(cap))


class KVCache:
    """Keys and values of the tokens seen so far, one slot per attention layer, for generation.

    Each layer's keys and values live in a buffer (B, n_kv_head, max_len, head_dim) allocated on
    first use; `append` writes the new step's rows and returns views of everything so far. The
    cache holds arrays, not graph nodes: it is for inference under `no_grad`.

    Args:
        n_layer: number of attention layers that share this cache (one slot each).
        max_len: the most positions it can hold (a model's block_size).
    """

    def __init__(self, n_layer: int, max_len: int) -> None:
        if n_layer <= 0 or max_len <= 0:
            raise ValueError(f"KVCache: n_layer ({n_layer}) and max_len ({max_len}) must be > 0")
        self.max_len = int(max_len)
        self._k: list = [None] * n_layer  # per layer (B, Hkv, max_len, D) arrays
        self._v: list = [None] * n_layer
        self._len = [0] * n_layer

    @property
    def length(self) -> int:
        """The number of positions cached (read by the first layer before it appends)."""
        return self._len[0]

    def layer(self, i: int) -> _LayerCache:
        """The view of layer i's slot that an attention module appends to."""
        return _LayerCache(self, i)

    def reset(self) -> None:
        """Forget every cached position (the buffers are kept)."""
        self._len = [0] * len(self._len)

    def append(self, i: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store layer i's new keys/values (B, Hkv, T, D); return all so far (B, Hkv, S, D)."""
        n = self._len[i]
        t = k.shape[-2]
        if n + t > self.max_len:
            raise ValueError(
                f"KVCache: {n} cached + {t} new positions exceed max_len={self.max_len}; "
                "reset the cache and re-run the (cropped) context"
            )
        if self._k[i] is None or self._k[i].shape[0] != k.shape[0] or self._k[i].dtype != k.dtype:
            xp = backend.get_array_module(k._data)
            shape = (k.shape[0], k.shape[1], self.max_len, k.shape[-1])
            self._k[i] = xp.zeros(shape, dtype=k._data.dtype)
            self._v[i] = xp.zeros(shape, dtype=v._data.dtype)
        self._k[i][:, :, n : n + t] = k._data
        self._v[i][:, :, n : n + t] = v._data
        self._len[i] = n + t
        return Tensor._wrap(self._k[i][:, :, : n + t]), Tensor._wrap(self._v[i][:, :, : n + t])


class _LayerCache:
    """One layer's slot of a KVCache: its offset (positions already cached) and `append`."""

    __slots__ = ("cache", "index")

    def __init__(self, cache: KVCache, index: int) -> None:
        self.cache, self.index = cache, index

    @property
    def offset(self) -> int:
        return self.cache._len[self.index]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        return self.cache.append(self.index, k, v)


def _causal_mask(xp, n_q: int, n_k: int) -> np.ndarray:
    """(n_q, n_k) bool, True where query i (at absolute position n_k - n_q + i) may read key j."""
    offset = n_k - n_q
    return xp.arange(n_k)[None, :] <= (offset + xp.arange(n_q))[:, None]


class GroupedQueryAttention(Module):
    """Causal self-attention with `n_head` query heads sharing `n_kv_head` key/value heads.

    Args:
        n_embd: model width D.
        n_head: number of query heads.
        n_kv_head: number of key/value heads; must divide n_head (n_kv_head = n_head is plain
            multi-head attention, 1 is multi-query attention).
        head_dim: width of each head (Grok-1's key size, 128); None uses n_embd // n_head.
        attn_output_multiplier: the scale of q.k (None: 1 / sqrt(head_dim)).
        attn_logit_cap: soft-cap of the scaled logits (Grok-1: 30); None for none.
        rotary: a module applied to queries and keys as rotary(x, offset) (e.g.
            `descent.nn.RotaryEmbedding(head_dim, block_size, base)`); None for no positions.
        dropout: on the attention weights and the output (training mode only).
        bias: learn biases in the four projections (Grok-1: no).

    Parameters: `query` (n_head*head_dim, D), `key` and `value` (n_kv_head*head_dim, D) and
    `linear` (D, n_head*head_dim), Grok-1's names.

    Shapes: forward(x (B, T, D), kv_cache=None) -> (B, T, D). With a cache slot
    (`KVCache.layer(i)`), x holds only the new positions; they attend to the cached ones too.
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        n_kv_head: int,
        head_dim: int | None = None,
        attn_output_multiplier: float | None = None,
        attn_logit_cap: float | None = None,
        rotary: Module | None = None,
        dropout: float = 0.0,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if n_head <= 0 or n_kv_head <= 0 or n_head % n_kv_head:
            raise ValueError(
                f"GroupedQueryAttention: n_kv_head ({n_kv_head}) must divide n_head ({n_head}); "
                "each key/value head serves n_head // n_kv_head query heads"
            )
        if head_dim is None:
            if n_embd % n_head:
                raise ValueError(
                    f"GroupedQueryAttention: n_embd ({n_embd}) not divisible by n_head "
                    f"({n_head}); pass head_dim explicitly"
                )
            head_dim = n_embd // n_head
        self.n_embd, self.n_head, self.n_kv_head = n_embd, n_head, n_kv_head
        self.head_dim = head_dim
        self.attn_output_multiplier = (
            1.0 / math.sqrt(head_dim) if attn_output_multiplier is None
            else float(attn_output_multiplier)
        )  # fmt: skip
        self.attn_logit_cap = attn_logit_cap
        self.dropout_p = dropout
        self.query = Linear(n_embd, n_head * head_dim, bias=bias)
        self.key = Linear(n_embd, n_kv_head * head_dim, bias=bias)
        self.value = Linear(n_embd, n_kv_head * head_dim, bias=bias)
        self.linear = Linear(n_head * head_dim, n_embd, bias=bias)
        self.rotary = rotary
        self.attn_dropout = Dropout(dropout)
        self.resid_dropout = Dropout(dropout)

    def forward(self, x: Tensor, kv_cache: _LayerCache | None = None) -> Tensor:
        b, t, _ = x.shape
        h, hk, d = self.n_head, self.n_kv_head, self.head_dim
        q = self.query(x).view(b, t, h, d).transpose(1, 2)  # (B, H, T, d)
        k = self.key(x).view(b, t, hk, d).transpose(1, 2)  # (B, Hk, T, d)
        v = self.value(x).view(b, t, hk, d).transpose(1, 2)  # (B, Hk, T, d)
        offset = 0 if kv_cache is None else kv_cache.offset
        if self.rotary is not None:
            q, k = self._rope(q, offset), self._rope(k, offset)
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)  # (B, Hk, S, d) with S = offset + T
        y = self.attend(q, k, v)  # (B, H, T, d)
        y = y.transpose(1, 2).reshape(b, t, h * d)  # heads side by side
        y = self.linear(y)  # (B, T, D)
        return self.resid_dropout(y) if self.training and self.dropout_p > 0 else y

    def _rope(self, x: Tensor, offset: int) -> Tensor:
        """x (B, heads, T, d) rotated for positions offset..offset+T-1."""
        if not isinstance(self.rotary, RotaryEmbedding) or self.rotary.dim != x.shape[-1]:
            return self.rotary(x, offset)  # any other module (or a mismatch: its own error)
        # A RotaryEmbedding: its own cos/sin tables, applied by one op instead of eleven.
        cos, sin = self.rotary.cos_sin(x.shape[-2], offset, x.dtype, x.device)  # (T, d/2)
        return RotaryRotation.apply(x, cos=cos._data, sin=sin._data)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Causal attention of q (B, H, T, d) over k, v (B, Hk, S, d), S >= T; the last T keys
        sit at the queries' positions. Returns (B, H, T, d)."""
        b, h, t, d = q.shape
        hk, s = k.shape[1], k.shape[2]
        p_drop = self.dropout_p if self.training else 0.0
        if not self.attn_logit_cap:
            # No soft-cap: the fused op (GQA by enable_gqa; bottom-right causal mask as a bool
            # mask when the queries are the last T of S positions).
            mask = None if s == t else _causal_mask(backend.get_array_module(q._data), t, s)
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p_drop, is_causal=s == t,
                scale=self.attn_output_multiplier, enable_gqa=True,
            )  # fmt: skip
        rep = h // hk
        # Group the query heads by the key/value head they read: (B, Hk, rep, T, d); the keys
        # broadcast over `rep` instead of being copied (their gradient sums over the group).
        qg = q.reshape(b, hk, rep, t, d)
        kg = k.unsqueeze(2)  # (B, Hk, 1, S, d)
        vg = v.unsqueeze(2)  # (B, Hk, 1, S, d)
        scores = (qg @ kg.transpose(-2, -1)) * self.attn_output_multiplier  # (B, Hk, rep, T, S)
        scores = soft_cap(scores, self.attn_logit_cap)
        if t > 1:  # one query (decoding) is the newest position: it reads every key
            mask = _causal_mask(backend.get_array_module(q._data), t, s)  # (T, S)
            scores = scores.masked_fill(Tensor._wrap(~mask), float("-inf"))
        att = F.softmax(scores, dim=-1)
        att = self.attn_dropout(att) if p_drop > 0.0 else att
        return (att @ vg).reshape(b, h, t, d)  # (B, H, T, d)

    def extra_repr(self) -> str:
        return (
            f"n_embd={self.n_embd}, n_head={self.n_head}, n_kv_head={self.n_kv_head}, "
            f"head_dim={self.head_dim}, attn_output_multiplier={self.attn_output_multiplier:.6g}, "
            f"attn_logit_cap={self.attn_logit_cap}"
        )
