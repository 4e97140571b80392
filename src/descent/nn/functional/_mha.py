"""torch.nn.functional.multi_head_attention_forward: the whole multi-head attention of
nn.MultiheadAttention as one function over explicit weights (docs/torch_gaps_nn.md).

It follows PyTorch's function step by step (Vaswani et al. 2017, with PyTorch's options):
input projections (packed `in_proj_weight` or separate q/k/v weights), optional learned
`bias_k`/`bias_v` rows and a zero attention row appended to the keys and values, masks
canonicalised to additive float masks (a bool True excludes), scaled dot products, softmax,
dropout on the weights when training, and the output projection. Layout (L, N, E), or
unbatched (L, E).
"""

from __future__ import annotations

import math

import numpy as np

from ...ops.elementwise import where
from ...ops.shape import cat
from ...tensor import Tensor
from ._activation import softmax
from ._dropout import dropout as _dropout
from ._linear import linear
from ._padding import pad

__all__ = ["multi_head_attention_forward"]


def _float_mask(mask, dtype, name: str):
    """A bool mask (True = excluded) as an additive float mask (-inf there), else as given."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        raise TypeError(f"multi_head_attention_forward: {name} must be a Tensor, got "
                        f"{type(mask).__name__}")  # fmt: skip
    if mask.dtype == np.bool_:
        return where(mask, float("-inf"), 0.0).to(dtype)  # True -> -inf, False -> 0
    return mask.to(dtype)


def multi_head_attention_forward(
    query, key, value, embed_dim_to_check, num_heads, in_proj_weight, in_proj_bias, bias_k,
    bias_v, add_zero_attn, dropout_p, out_proj_weight, out_proj_bias, training=True,
    key_padding_mask=None, need_weights=True, attn_mask=None, use_separate_proj_weight=False,
    q_proj_weight=None, k_proj_weight=None, v_proj_weight=None, static_k=None, static_v=None,
    average_attn_weights=True, is_causal=False,
):  # fmt: skip
    """Multi-head attention over explicit weights, PyTorch's function.

    Args:
        query: (L, N, E) or (L, E); key, value: (S, N, E) or (S, E).
        embed_dim_to_check: must equal E.
        num_heads: H, dividing E.
        in_proj_weight, in_proj_bias: the packed (3E, E) / (3E,) projections (or the biases
            only, with use_separate_proj_weight and q/k/v_proj_weight).
        bias_k, bias_v: (1, 1, E) rows appended to the projected keys and values, or None.
        add_zero_attn: append a zero row to the (per-head) keys and values.
        dropout_p: dropout on the attention weights when `training`.
        out_proj_weight, out_proj_bias: the output projection.
        key_padding_mask: (N, S) (or (S,) unbatched); True or -inf excludes a key.
        need_weights: return the attention weights too.
        attn_mask: (L, S) or (N H, L, S); True or -inf excludes a pair.
        static_k, static_v: (N H, S, E / H) keys and values used as they are.
        average_attn_weights: average the returned weights over heads.
        is_causal: a hint that attn_mask is causal; it requires attn_mask, as in PyTorch.

    Returns:
        (output (L, N, E) or (L, E), weights (N, L, S) / (N, H, L, S) or None).
    """
    batched = query.ndim == 3
    if not batched:  # (L, E) -> (L, 1, E)
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    tgt_len, bsz, embed_dim = query.shape
    if embed_dim != embed_dim_to_check or embed_dim % num_heads:
        raise ValueError(
            f"multi_head_attention_forward: query embedding {embed_dim} must equal "
            f"embed_dim_to_check {embed_dim_to_check} and be divisible by num_heads {num_heads}"
        )
    if is_causal and attn_mask is None:
        raise RuntimeError("multi_head_attention_forward: Need attn_mask if specifying the "
                           "is_causal hint (pass the causal mask itself)")  # fmt: skip
    head_dim = embed_dim // num_heads
    dtype = query.dtype
    e = embed_dim
    b = (None, None, None) if in_proj_bias is None else (
        in_proj_bias[:e], in_proj_bias[e : 2 * e], in_proj_bias[2 * e :])  # fmt: skip
    if use_separate_proj_weight:
        ws = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        ws = (in_proj_weight[:e], in_proj_weight[e : 2 * e], in_proj_weight[2 * e :])
    q = linear(query, ws[0], b[0])  # (L, N, E)
    k = linear(key, ws[1], b[1])  # (S, N, E)
    v = linear(value, ws[2], b[2])
    attn_mask = _float_mask(attn_mask, dtype, "attn_mask")
    key_padding_mask = _float_mask(key_padding_mask, dtype, "key_padding_mask")
    if attn_mask is not None and attn_mask.ndim == 2:
        attn_mask = attn_mask.unsqueeze(0)  # (1, L, S)
    if bias_k is not None and bias_v is not None:  # one learned key/value row more
        k = cat([k, bias_k.expand(1, bsz, e)])
        v = cat([v, bias_v.expand(1, bsz, e)])
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    q = q.reshape(tgt_len, bsz * num_heads, head_dim).transpose(0, 1)  # (N H, L, D)
    if static_k is None:
        k = k.reshape(k.shape[0], bsz * num_heads, head_dim).transpose(0, 1)  # (N H, S, D)
    else:
        k = static_k
    if static_v is None:
        v = v.reshape(v.shape[0], bsz * num_heads, head_dim).transpose(0, 1)
    else:
        v = static_v
    if add_zero_attn:  # a zero key/value row every query may attend to
        zeros = k.new_zeros((bsz * num_heads, 1, head_dim))
        k, v = cat([k, zeros], 1), cat([v, zeros], 1)
        attn_mask = None if attn_mask is None else pad(attn_mask, (0, 1))
        key_padding_mask = None if key_padding_mask is None else pad(key_padding_mask, (0, 1))
    src_len = k.shape[1]
    if key_padding_mask is not None:  # (N, S) -> (N H, 1, S), merged into attn_mask
        kpm = key_padding_mask.reshape(bsz, 1, 1, src_len).expand(bsz, num_heads, 1, src_len)
        kpm = kpm.reshape(bsz * num_heads, 1, src_len)
        attn_mask = kpm if attn_mask is None else attn_mask + kpm
    scores = (q * math.sqrt(1.0 / head_dim)) @ k.transpose(-2, -1)  # (N H, L, S)
    if attn_mask is not None:
        scores = scores + attn_mask
    weights = softmax(scores, dim=-1)
    if training and dropout_p > 0.0:
        weights = _dropout(weights, dropout_p, True)
    out = (weights @ v).transpose(0, 1).reshape(tgt_len * bsz, embed_dim)  # (L N, E)
    out = linear(out, out_proj_weight, out_proj_bias).reshape(tgt_len, bsz, embed_dim)
    if not batched:
        out = out.squeeze(1)
    if not need_weights:
        return out, None
    weights = weights.reshape(bsz, num_heads, tgt_len, src_len)
    if average_attn_weights:
        weights = weights.mean(dim=1)
    if not batched:
        weights = weights.squeeze(0)
    return out, weights
