"""TransformerEncoderLayer and TransformerEncoder (Vaswani et al., 2017, "Attention Is All You
Need"), with torch.nn's arguments, submodule names (`self_attn`, `linear1`, `linear2`,
`norm1`, `norm2`, `dropout`, `dropout1`, `dropout2`) and initialisation, so a PyTorch
state_dict loads and, in eval mode, the outputs agree.

    post-norm (norm_first=False):  x = norm1(x + SA(x));        x = norm2(x + FF(x))
    pre-norm  (norm_first=True):   x = x + SA(norm1(x));        x = x + FF(norm2(x))
    SA(x) = dropout1(self_attn(x, x, x)),   FF(x) = dropout2(linear2(dropout(act(linear1(x)))))

PyTorch's eval-mode "fast path" (nested tensors) is an implementation detail with the same
arithmetic, except that it returns 0 at positions masked by `src_key_padding_mask`; descent
always computes those positions, as PyTorch's training path does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from ..hooks import composite
from ..tensor import Tensor
from . import functional as F
from .attention import MultiheadAttention
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm

__all__ = ["TransformerEncoderLayer", "TransformerEncoder"]


def _activation(activation: str | Callable) -> Callable:
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise RuntimeError(f"activation should be relu/gelu, not {activation}")
    if not callable(activation):
        raise TypeError(f"activation must be 'relu', 'gelu' or a callable, got {activation!r}")
    return activation


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with a residual connection and LayerNorm.

    Args:
        d_model: the model width E.
        nhead: attention heads (must divide d_model).
        dim_feedforward: the hidden width of the feed-forward block.
        dropout: dropout on the attention weights, after each block and inside the
            feed-forward block (training mode only).
        activation: "relu", "gelu", or a callable (a Module is registered as a submodule).
        layer_norm_eps: eps of both LayerNorms.
        batch_first: inputs are (N, L, E) instead of (L, N, E).
        norm_first: pre-norm (LayerNorm before each block) instead of post-norm.
        bias: learn the biases of the Linear and LayerNorm layers.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = F.relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.batch_first = batch_first
        self.activation = _activation(activation)

    @composite("nn.TransformerEncoderLayer")  # PyTorch's fused inference path: flop_counter
    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Args:
            src: (L, N, E), (N, L, E) with batch_first, or unbatched (L, E).
            src_mask: (L, L) or (N * nhead, L, L) attention mask (True = not allowed, or a
                float mask added to the scores).
            src_key_padding_mask: (N, L), True at padded positions.
            is_causal: apply a causal mask (when src_mask is None).

        Returns:
            A tensor shaped like `src`.
        """
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal) -> Tensor:
        x = self.self_attn(
            x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
            need_weights=False, is_causal=is_causal and attn_mask is None,
        )[0]  # fmt: skip
        return self.dropout1(x)

    def _ff_block(self, x) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.dropout2(x)


class TransformerEncoder(Module):
    """A stack of `num_layers` copies of `encoder_layer` (deep copies: the same initial
    weights, trained independently), then an optional final `norm`.

    Args:
        encoder_layer: the layer to copy.
        num_layers: the number of layers.
        norm: an optional final normalisation module.
        enable_nested_tensor, mask_check: PyTorch's fast-path switches; accepted, no effect.
    """

    def __init__(
        self,
        encoder_layer: Module,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"TransformerEncoder: num_layers must be >= 1, got {num_layers}")
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor
        self.mask_check = mask_check

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        """Run every layer in turn (arguments as `TransformerEncoderLayer.forward`)."""
        out = src
        for layer in self.layers:
            out = layer(
                out, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                is_causal=bool(is_causal),
            )  # fmt: skip
        if self.norm is not None:
            out = self.norm(out)
        return out
