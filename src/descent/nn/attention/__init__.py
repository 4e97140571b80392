"""Attention layers: PyTorch's `MultiheadAttention` and nanoGPT's `CausalSelfAttention`.

Both compute scaled dot-product attention (Vaswani et al. 2017):

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_head) + mask) V

over `num_heads` heads of width d_head = embed_dim / num_heads, then mix the heads with an
output projection.
"""

from __future__ import annotations

import contextlib
import enum as _enum
import math as _math

import numpy as _np

from ... import creation as _creation
from ...errors import CheckError as _CheckError
from ...hooks import composite as _composite
from ...tensor import Tensor as _Tensor
from .. import functional as _F
from .. import init as _init
from ..dropout import Dropout as _Dropout
from ..linear import Linear as _Linear
from ..module import Module as _Module
from ..parameter import Parameter as _Parameter

__all__ = ["MultiheadAttention", "CausalSelfAttention", "SDPBackend", "sdpa_kernel"]


class NonDynamicallyQuantizableLinear(_Linear):
    """A plain Linear under PyTorch's class name for `MultiheadAttention.out_proj` (so that the
    two libraries print the same repr)."""


class MultiheadAttention(_Module):
    """Multi-head attention with PyTorch's parameters, so a torch `state_dict` loads unchanged.

    Parameters: `in_proj_weight` (3E, E) holding the query, key and value projections stacked
    (xavier_uniform_), `in_proj_bias` (3E,) (zeros), and `out_proj` a Linear(E, E) whose bias
    starts at zero.

    Args:
        embed_dim: model width E.
        num_heads: number of heads; must divide E.
        dropout: dropout probability on the attention weights (training mode only).
        bias: learn the input and output projection biases.
        batch_first: inputs are (N, L, E) instead of PyTorch's default (L, N, E).

    kdim/vdim != embed_dim (separate q/k/v projection weights), add_bias_kv and add_zero_attn
    run through `F.multi_head_attention_forward`, PyTorch's functional form.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise _CheckError(
                f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                f"({num_heads})"
            )
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first

        def empty(*shape):
            return _Parameter(_creation.empty(*shape, dtype=dtype, device=device))

        # PyTorch's registration order, so that state_dict keys and reprs agree.
        if not self._qkv_same_embed_dim:
            self.q_proj_weight = empty(embed_dim, embed_dim)
            self.k_proj_weight = empty(embed_dim, self.kdim)
            self.v_proj_weight = empty(embed_dim, self.vdim)
            self.register_parameter("in_proj_weight", None)
        else:
            self.in_proj_weight = empty(3 * embed_dim, embed_dim)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        if bias:
            self.in_proj_bias = empty(3 * embed_dim)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(
            embed_dim, embed_dim, bias=bias, device=device, dtype=dtype
        )
        if add_bias_kv:
            self.bias_k = empty(1, 1, embed_dim)
            self.bias_v = empty(1, 1, embed_dim)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            _init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                _init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            _init.zeros_(self.in_proj_bias)
            _init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            _init.xavier_normal_(self.bias_k)
            _init.xavier_normal_(self.bias_v)

    def _general_forward(self, query, key, value, key_padding_mask, need_weights, attn_mask,
                         average_attn_weights, is_causal):  # fmt: skip
        """kdim/vdim != embed_dim, add_bias_kv, add_zero_attn: PyTorch's functional form."""
        batched = query.ndim == 3
        if self.batch_first and batched:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        separate = not self._qkv_same_embed_dim
        out, weights = _F.multi_head_attention_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=separate, q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal,
        )  # fmt: skip
        if self.batch_first and batched:
            out = out.transpose(0, 1)
        return out, weights

    @_composite("nn.MultiheadAttention")  # PyTorch's ATen products: descent.utils.flop_counter
    def forward(
        self,
        query: _Tensor,
        key: _Tensor,
        value: _Tensor,
        key_padding_mask: _Tensor | None = None,
        need_weights: bool = True,
        attn_mask: _Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[_Tensor, _Tensor | None]:
        """Attend from `query` to `key`/`value`.

        Args:
            query: (L, N, E), or (N, L, E) with batch_first, or unbatched (L, E).
            key, value: (S, N, E) / (N, S, E) / (S, E) likewise.
            key_padding_mask: (N, S); True (bool) marks keys to ignore, or a float mask added.
            need_weights: also return the attention weights.
            attn_mask: (L, S) or (N * num_heads, L, S); True (bool) marks pairs NOT allowed to
                attend (PyTorch's MultiheadAttention convention), or a float mask added.
            average_attn_weights: average the returned weights over heads.
            is_causal: apply a causal mask when `attn_mask` is not given.

        Returns:
            `(output, weights)`: output shaped like `query`; weights (N, L, S) averaged, or
            (N, num_heads, L, S), or None when `need_weights` is False.
        """
        if tuple(key.shape[:-1]) != tuple(value.shape[:-1]):
            raise _CheckError(
                f"MultiheadAttention: key {tuple(key.shape)} and value {tuple(value.shape)} "
                "must have the same sizes but the last (one value per key)"
            )
        if not self._qkv_same_embed_dim or self.bias_k is not None or self.add_zero_attn:
            return self._general_forward(query, key, value, key_padding_mask, need_weights,
                                         attn_mask, average_attn_weights, is_causal)  # fmt: skip
        batched = query.ndim == 3
        if not batched:  # (L, E) -> (1, L, E)
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, tq, e = query.shape
        s = key.shape[1]
        if e != self.embed_dim:
            raise _CheckError(
                f"MultiheadAttention: query has embedding size {e}, expected {self.embed_dim}"
            )
        h, d = self.num_heads, self.head_dim

        w, b = self.in_proj_weight, self.in_proj_bias
        if query is key and key is value:
            # Self-attention: one (E -> 3E) projection, then split into q, k, v.
            q, k, v = _F.linear(query, w, b).split(e, dim=-1)
        else:
            bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
            q = _F.linear(query, w[:e], bq)
            k = _F.linear(key, w[e : 2 * e], bk)
            v = _F.linear(value, w[2 * e :], bv)
        q = q.reshape(n, tq, h, d).transpose(1, 2)  # (N, H, L, D)
        k = k.reshape(n, s, h, d).transpose(1, 2)  # (N, H, S, D)
        v = v.reshape(n, s, h, d).transpose(1, 2)  # (N, H, S, D)

        scores = (q * (1.0 / _math.sqrt(d))) @ k.transpose(-2, -1)  # (N, H, L, S)
        if attn_mask is None and is_causal:
            attn_mask = _creation.tensor(_np.triu(_np.ones((tq, s), dtype=bool), k=1))
            attn_mask = attn_mask.to(scores.device)
        if attn_mask is not None:
            if attn_mask.ndim == 3:  # (N*H, L, S) -> (N, H, L, S)
                attn_mask = attn_mask.reshape(n, h, tq, s)
            scores = _apply_mask(scores, attn_mask)
        if key_padding_mask is not None:
            scores = _apply_mask(scores, key_padding_mask.reshape(n, 1, 1, s))
        attn = _F.softmax(scores, dim=-1)  # (N, H, L, S)
        if self.training and self.dropout > 0.0:
            attn = _F.dropout(attn, self.dropout, True)
        y = (attn @ v).transpose(1, 2).reshape(n, tq, e)  # (N, L, E)
        y = self.out_proj(y)

        if not batched:
            y = y.squeeze(0)
        elif not self.batch_first:
            y = y.transpose(0, 1)  # back to (L, N, E)
        if not need_weights:
            return y, None
        weights = attn.mean(dim=1) if average_attn_weights else attn
        if not batched:
            weights = weights.squeeze(0)
        return y, weights


def _apply_mask(scores: _Tensor, mask) -> _Tensor:
    """Bool mask: True -> -inf (position excluded); float mask: added to the scores."""
    if not isinstance(mask, _Tensor):
        mask = _creation.tensor(mask)
    if mask.dtype == _np.bool_:
        return scores.masked_fill(mask, float("-inf"))
    return scores + mask.astype(scores.dtype)


class CausalSelfAttention(_Module):
    """nanoGPT's causal self-attention block (Karpathy, nanoGPT `model.py`).

    Parameters: `c_attn` Linear(n_embd, 3 n_embd) (query, key, value), `c_proj`
    Linear(n_embd, n_embd); both with `bias`. Dropout on the attention weights and on the
    output (`attn_dropout`, `resid_dropout`), in training mode only.

    Construct as `CausalSelfAttention(n_embd, n_head, dropout=0.0, bias=True)` or, as in
    nanoGPT, `CausalSelfAttention(config)` with a config object having those attributes.
    """

    def __init__(
        self, n_embd, n_head: int | None = None, dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        if n_head is None:  # nanoGPT's form: CausalSelfAttention(config)
            config = n_embd
            n_embd, n_head = config.n_embd, config.n_head
            dropout, bias = getattr(config, "dropout", 0.0), getattr(config, "bias", True)
        if n_embd % n_head:
            raise ValueError(
                f"CausalSelfAttention: n_embd ({n_embd}) must be divisible by n_head ({n_head})"
            )
        self.c_attn = _Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = _Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = _Dropout(dropout)
        self.resid_dropout = _Dropout(dropout)
        self.n_head = n_head
        self.n_embd = n_embd
        self.dropout = dropout

    def forward(self, x: _Tensor) -> _Tensor:
        """x: (B, T, C) -> (B, T, C); token t attends to tokens 0..t only."""
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        hs = c // self.n_head
        q = q.view(b, t, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(b, t, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(b, t, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        y = _F.scaled_dot_product_attention(
            q, k, v, attn_mask=None, dropout_p=self.dropout if self.training else 0.0,
            is_causal=True,
        )  # (B, nh, T, hs)  # fmt: skip
        y = y.transpose(1, 2).reshape(b, t, c)  # re-assemble the heads side by side
        return self.resid_dropout(self.c_proj(y))


# -- torch.nn.attention's names ---------------------------------------------------------------
# PyTorch picks among flash, memory-efficient, cuDNN and math kernels for
# scaled_dot_product_attention; descent has one per device (numba on the CPU, CuPy on the GPU),
# so `sdpa_kernel(...)` accepts any backend list and changes nothing.


class SDPBackend(_enum.IntEnum):
    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority: bool = False):
    """`with sdpa_kernel(SDPBackend.FLASH_ATTENTION):` accepted; one implementation runs. As
    PyTorch's, it sets `torch.backends.cuda`'s switches for the block (the listed kernels on,
    the others off) and restores them; the flop counter reads them (PyTorch counts its math
    kernel's products, not its CPU flash kernel)."""
    from ...backends import cuda as _cuda  # noqa: PLC0415 - the switches' module

    chosen = [backends] if isinstance(backends, SDPBackend) else list(backends)
    for b in chosen:
        if not isinstance(b, SDPBackend):
            raise TypeError(f"sdpa_kernel: {b!r} is not an SDPBackend")
    before = dict(_cuda._sdp)
    _cuda._sdp.update(flash=SDPBackend.FLASH_ATTENTION in chosen,
                      mem_efficient=SDPBackend.EFFICIENT_ATTENTION in chosen,
                      math=SDPBackend.MATH in chosen)  # fmt: skip
    try:
        yield
    finally:
        _cuda._sdp.update(before)
