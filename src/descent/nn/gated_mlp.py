"""The gated feed-forward network of GLU-variant transformers, and Grok-1's expert.

    y = W1( act(W x) * (V x) )                       (Shazeer 2020, "GLU Variants Improve
                                                       Transformer"; GEGLU when act = GELU)

Grok-1 (xai-org/grok-1, `model.py`, `DenseBlock`) uses exactly this with GELU and names its three
bias-free projections `linear` (W), `linear_v` (V) and `linear_1` (W1); the hidden width is
`ffn_size(D, widening_factor)`: two thirds of `widening_factor * D` (so that three matrices cost
what two of a plain `widening_factor * D` MLP cost), rounded up to a multiple of 8.
"""

from __future__ import annotations

from ..tensor import Tensor
from . import functional as F
from .dropout import Dropout
from .linear import Linear
from .module import Module

__all__ = ["GatedMLP", "ffn_size"]

_ACTIVATIONS = ("gelu", "gelu_tanh", "silu", "relu")


def ffn_size(emb_size: int, widening_factor: float) -> int:
    """Grok-1's hidden width: int(widening_factor * emb_size) * 2 // 3, rounded up to a
    multiple of 8 (e.g. 6144 and 8 give 32768)."""
    if emb_size <= 0 or widening_factor <= 0:
        raise ValueError(
            f"ffn_size: emb_size ({emb_size}) and widening_factor ({widening_factor}) must be "
            "positive"
        )
    size = int(widening_factor * emb_size) * 2 // 3
    return size + (8 - size) % 8


class GatedMLP(Module):
    """A gated MLP: `linear_1(act(linear(x)) * linear_v(x))`, all three without bias by default.

    Args:
        n_embd: input and output width D.
        hidden: the gated hidden width (Grok-1: `ffn_size(D, widening_factor)`).
        activation: 'gelu_tanh' (GELU's tanh approximation, jax.nn.gelu's default, which Grok-1
            uses), 'gelu' (the exact erf form), 'silu' (SwiGLU, as LLaMA) or 'relu'.
        bias: learn biases in the three projections.
        dropout: dropout on the output (training mode only).

    Shapes: (..., D) -> (..., D).
    """

    def __init__(
        self,
        n_embd: int,
        hidden: int,
        activation: str = "gelu_tanh",
        bias: bool = False,
        dropout: float = 0.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"GatedMLP: unknown activation {activation!r}; choose one of {_ACTIVATIONS}"
            )
        self.n_embd, self.hidden, self.activation = n_embd, hidden, activation
        self.linear = Linear(n_embd, hidden, bias=bias, device=device, dtype=dtype)  # W
        self.linear_v = Linear(n_embd, hidden, bias=bias, device=device, dtype=dtype)  # V
        self.linear_1 = Linear(hidden, n_embd, bias=bias, device=device, dtype=dtype)  # W1
        self.dropout = Dropout(dropout)

    def _act(self, h: Tensor) -> Tensor:
        if self.activation == "gelu_tanh":
            return F.gelu(h, approximate="tanh")
        if self.activation == "gelu":
            return F.gelu(h)
        if self.activation == "silu":
            return F.silu(h)
        return F.relu(h)

    def forward(self, x: Tensor) -> Tensor:
        gate = self._act(self.linear(x))  # (..., hidden)
        return self.dropout(self.linear_1(gate * self.linear_v(x)))  # (..., D)

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, hidden={self.hidden}, activation={self.activation!r}"
