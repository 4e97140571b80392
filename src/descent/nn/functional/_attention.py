"""scaled_dot_product_attention: softmax(q k^T / sqrt(E) + mask) v as one fused op.

Vaswani et al., "Attention Is All You Need" (2017), eq. 1. The fused op
(`descent.ops.attention`) keeps only the attention probabilities for backward instead of every
intermediate (..., L, S) tensor a composite would record; this file checks the arguments,
builds the mask and the dropout mask, and repeats key/value heads for grouped-query attention.
"""

from __future__ import annotations

import math

import numpy as np

from ... import amp, backend
from ...errors import DescentError
from ...opmath import HALF
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...ops.attention import ScaledDotProductAttention
from ...ops.half import in_float32
from ...tensor import Tensor
from ._dropout import dropout_mask

__all__ = ["scaled_dot_product_attention"]

_F32_64 = (np.dtype(np.float32), np.dtype(np.float64))


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    generator=None,
) -> Tensor:
    """softmax(q k^T * scale + mask) v over q (..., L, E), k (..., S, E), v (..., S, Ev).

    Args:
        attn_mask: bool (True = may attend) or additive float, broadcastable to (..., L, S).
            A constant: no gradient flows into it.
        dropout_p: dropout on the attention probabilities (applied whenever > 0, as PyTorch;
            pass 0.0 in evaluation).
        is_causal: mask out keys after each query (top-left aligned); not with attn_mask.
        scale: defaults to 1/sqrt(E).
        generator: descent.Generator for the dropout mask (default generator otherwise).

    Returns:
        (..., L, Ev). One fused op; see docs/functional.md.
    """
    # The common call (float32/float64 NumPy q, k, v of one dtype whose shapes fit, no mask,
    # dropout or grouped heads, outside autocast) goes to the op without the checks below,
    # which it passes (~4 us a call less): the same op call.
    if (type(query) is Tensor and type(key) is Tensor and type(value) is Tensor
            and attn_mask is None and not dropout_p and not enable_gqa
            and not amp._depth):  # fmt: skip
        a, b, c = query._data, key._data, value._data
        dt = a.dtype
        if (type(a) is np.ndarray and (dt is _F32_64[0] or dt is _F32_64[1])
                and b.dtype is dt and c.dtype is dt and a.ndim >= 2 and b.ndim >= 2
                and c.ndim >= 2 and a.shape[-1] == b.shape[-1]
                and b.shape[-2] == c.shape[-2]):  # fmt: skip
            return ScaledDotProductAttention.apply(
                query, key, value, scale=1.0 / math.sqrt(a.shape[-1]) if scale is None
                else float(scale), causal=bool(is_causal), mask=None, drop=None,
            )  # fmt: skip
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    if q._nested_layout:  # jagged nested tensors: attention within each sequence
        from ...nested import functional as _nf  # noqa: PLC0415 - descent.nested is lazy

        return _nf.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale,
                                                enable_gqa, generator)  # fmt: skip
    if amp._depth:  # inside descent.autocast: attention in the low dtype
        q, k, v = amp._lower(q, k, v)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise DescentError(
            "scaled_dot_product_attention: q, k, v need at least 2 dims (..., L, E), got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise DescentError(
            f"scaled_dot_product_attention: shapes q {tuple(q.shape)}, k {tuple(k.shape)}, "
            f"v {tuple(v.shape)} do not fit: need q (..., L, E), k (..., S, E), v (..., S, Ev)"
        )
    _check_dtypes(q, k, v)
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        # Grouped-query attention (Ainslie et al., 2023): Hq query heads share Hk = Hq / rep
        # key/value heads; repeating them lets the fused op treat every head alike.
        rep = q.shape[-3] // k.shape[-3]
        k = _gqa(k, rep)
        v = _gqa(v, rep)
    if is_causal and attn_mask is not None:
        raise DescentError("scaled_dot_product_attention: pass either attn_mask or is_causal")
    n_q, n_k = q.shape[-2], k.shape[-2]
    dt = q._data.dtype
    mask, bias = None, ()
    if attn_mask is not None:
        m = attn_mask._data if isinstance(attn_mask, Tensor) else attn_mask
        xp = backend.get_array_module(q._data)
        m = xp.asarray(m)  # a NumPy mask moves to q's device; np.asarray would fail on CuPy
        try:  # the scores are (..., L, S): q's and k's batch dims broadcast
            np.broadcast_shapes(m.shape, q.shape[:-2] + (n_q, n_k), k.shape[:-2] + (n_q, n_k))
        except ValueError:
            raise DescentError(
                f"scaled_dot_product_attention: attn_mask {tuple(m.shape)} cannot be broadcast "
                f"to the attention scores (..., L, S) of q {tuple(q.shape)} and k "
                f"{tuple(k.shape)}"
            ) from None
        if m.dtype not in (np.bool_, np.float32, dt):
            raise DescentError(
                "scaled_dot_product_attention: expected attn_mask dtype to be bool or float "
                f"or to match query dtype, but got attn_mask {m.dtype} {tuple(m.shape)} and "
                f"query {dt} {tuple(q.shape)} (as PyTorch); convert the mask with "
                ".to(query.dtype)"
            )
        if m.dtype == np.bool_:  # True = may attend; the op fills the rest with -inf
            mask = m
        else:
            # An additive mask is an input of the op: added to the scores, and differentiated
            # (learned attention biases), as in PyTorch.
            b = attn_mask if isinstance(attn_mask, Tensor) else Tensor._wrap(m)
            bias = (b if b._data.dtype == dt else b.to(dt),)
    drop = None
    if dropout_p > 0.0:
        # Drawn here, not inside the op, so the op stays deterministic given its arguments:
        # the backward reuses this exact mask. (..., L, S), one value per attention weight.
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
        drop = dropout_mask(batch + (n_q, n_k), dropout_p, dt, q.device, generator)
    sc = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    if dt == HALF and not backend.is_cupy_array(q._data):
        # PyTorch's CPU kernel computes half attention in float32 and rounds once (its
        # acc_type); the float16 scores, softmax and products here were ~6x further from the
        # float64 values in the gradients. Recorded casts: the gradients come back float16.
        drop = None if drop is None else drop.astype(np.float32)
        return in_float32(ScaledDotProductAttention.apply, q, k, v, *bias, scale=sc,
                          causal=bool(is_causal), mask=mask, drop=drop)  # fmt: skip
    return ScaledDotProductAttention.apply(
        q, k, v, *bias, scale=sc, causal=bool(is_causal), mask=mask, drop=drop
    )


def _check_dtypes(q: Tensor, k: Tensor, v: Tensor) -> None:
    """PyTorch's checks: one dtype for q, k and v, and a floating one (integer or bool inputs
    raised NumPy's casting errors, or computed when mixed)."""
    dts = (q._data.dtype, k._data.dtype, v._data.dtype)
    if dts[0] == dts[1] == dts[2] and (dts[0].kind in "fV" or not q._data.size):
        return  # (the message's shapes are built only for an error: ~2 us a call)
    shapes = f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
    if dts[0] != dts[1] or dts[0] != dts[2]:
        raise DescentError(
            "scaled_dot_product_attention: expected query, key and value to have the same "
            f"dtype, but got {q.dtype}, {k.dtype} and {v.dtype} ({shapes}); convert them to "
            "one floating dtype first"
        )
    if dts[0].kind not in "fV" and q._data.size:
        raise DescentError(
            f"scaled_dot_product_attention: expected a floating query, key and value, but got "
            f'{q.dtype} ({shapes}), as PyTorch ("expected scalar type Float"); convert with '
            ".float()"
        )


def _gqa(t: Tensor, rep: int) -> Tensor:
    """Repeat each key/value head `rep` times along dim -3 (grouped-query attention)."""
    shp = tuple(t.shape)
    t = _shape.unsqueeze(t, -3)  # (..., Hk, 1, S, E)
    t = _shape.broadcast_to(t, shp[:-3] + (shp[-3], rep) + shp[-2:])
    return t.reshape(shp[:-3] + (shp[-3] * rep,) + shp[-2:])
