"""TransformerEncoderLayer and TransformerEncoder (Vaswani et al., 2017, "Attention Is All You
Need"), with torch.nn's arguments, submodule names (`self_attn`, `linear1`, `linear2`,
`norm1`, `norm2`, `dropout`, `dropout1`, `dropout2`) and initialisation, so a PyTorch
state_dict loads and, in eval mode, the outputs agree.

    post-norm (norm_first=False):  x = norm1(x + SA(x));        x = norm2(x + FF(x))
    pre-norm  (norm_first=True):   x = x + SA(norm1(x));        x = x + FF(norm2(x))
    SA(x) = dropout1(self_attn(x, x, x)),   FF(x) = dropout2(linear2(dropout(act(linear1(x)))))

PyTorch's eval-mode "fast path" (nested tensors) is an implementation detail with the same
arithmetic, except that TransformerEncoder then returns 0 at the positions masked by
`src_key_padding_mask` (before its final `norm`, so those rows are norm(0)). descent has no
nested fast path, but it zeroes those rows under PyTorch's conditions (`_nested_fast_path`):
eval mode, no gradient needed, a left-aligned padding mask and no `mask`, batch_first
post-norm layers with an even head count, and `backends.mha.get_fastpath_enabled()`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import numpy as np

from ..amp import _is_autocast_enabled
from ..backends import mha as _mha
from ..grad_mode import is_grad_enabled
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
        # PyTorch's marker for its fused kernels (1: relu, 2: gelu, 0: another activation);
        # TransformerEncoder reads it to decide on its nested fast path
        if activation in ("relu", F.relu) or type(activation).__name__ == "ReLU":
            self.activation_relu_or_gelu = 1
        elif activation in ("gelu", F.gelu) or type(activation).__name__ == "GELU":
            self.activation_relu_or_gelu = 2
        else:
            self.activation_relu_or_gelu = 0
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

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal=False) -> Tensor:
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
        # PyTorch's use_nested_tensor: whether the layers allow the nested fast path at all
        why_not = _why_no_nested_layers(encoder_layer)
        self.use_nested_tensor = enable_nested_tensor and not why_not
        if enable_nested_tensor and why_not:
            warnings.warn(
                f"enable_nested_tensor is True, but self.use_nested_tensor is False because "
                f"{why_not}",
                stacklevel=2,
            )

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
        if self._nested_fast_path(src, mask, src_key_padding_mask):
            # PyTorch computes only the valid tokens (a nested tensor) and pads back with 0
            padded = src_key_padding_mask
            if padded.dtype != np.bool_:
                padded = padded != 0  # a float mask: 0 keeps, anything else pads
            out = out.masked_fill(padded.unsqueeze(-1), 0.0)  # (N, L, E)
        if self.norm is not None:
            out = self.norm(out)
        return out

    def _nested_fast_path(self, src, mask, src_key_padding_mask) -> bool:
        """PyTorch's conditions for running the layers on a nested tensor (its
        TransformerEncoder.forward): then the padded positions come back as 0."""
        first = self.layers[0]
        if not (
            _mha.get_fastpath_enabled()
            and getattr(self, "use_nested_tensor", False)
            and not first.training
            and src.dim() == 3
            and src_key_padding_mask is not None
            and mask is None
            and not src.is_nested
            and not _is_autocast_enabled("cuda")  # torch.is_autocast_enabled(): CUDA's
        ):
            return False
        do_mask_check = getattr(self, "mask_check", True)
        if do_mask_check and _recording():
            return False  # PyTorch: "mask_check enabled with torch.compile or torch.export"
        valid = src_key_padding_mask
        valid = valid.logical_not() if valid.dtype == np.bool_ else valid == 0  # (N, L)
        if do_mask_check and not _left_aligned(valid):
            return False
        attn = first.self_attn
        args = (src, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.weight,
                attn.out_proj.bias, first.norm1.weight, first.norm1.bias, first.norm2.weight,
                first.norm2.bias, first.linear1.weight, first.linear1.bias,
                first.linear2.weight, first.linear2.bias)  # fmt: skip
        return not (is_grad_enabled() and any(t is not None and t.requires_grad for t in args))


def _recording() -> bool:
    """Whether descent.compile records this call (torch.compiler.is_compiling's moment)."""
    from ..compiler import attach  # noqa: PLC0415 (compiler sits above nn)

    return attach.current() is not None


def _left_aligned(valid: Tensor) -> bool:
    """Every row of the (N, L) bool `valid` is True up to its length, then False (PyTorch's
    _nested_tensor_from_mask_left_aligned): no False is followed by a True."""
    return not bool((valid[:, 1:] & valid[:, :-1].logical_not()).any())


def _why_no_nested_layers(layer: Module) -> str:
    """Why PyTorch's TransformerEncoder.__init__ turns use_nested_tensor off ('' if it does
    not)."""
    if not isinstance(layer, TransformerEncoderLayer):
        return "encoder_layer was not TransformerEncoderLayer"
    if layer.norm_first:
        return "encoder_layer.norm_first was True"
    if not layer.self_attn.batch_first:
        return (
            "encoder_layer.self_attn.batch_first was not True"
            "(use batch_first for better inference performance)"
        )
    if not layer.self_attn._qkv_same_embed_dim:
        return "encoder_layer.self_attn._qkv_same_embed_dim was not True"
    if layer.self_attn.in_proj_bias is None:
        return "encoder_layer.self_attn was passed bias=False"
    if not getattr(layer, "activation_relu_or_gelu", 0):
        return "encoder_layer.activation_relu_or_gelu was not True"
    if layer.norm1.eps != layer.norm2.eps:
        return "encoder_layer.norm1.eps was not equal to encoder_layer.norm2.eps"
    if layer.self_attn.num_heads % 2 == 1:
        return "encoder_layer.self_attn.num_heads is odd"
    return ""
