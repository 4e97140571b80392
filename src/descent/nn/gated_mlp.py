"""The gated feed-forward network of GLU-variant transformers, and Grok-1's expert.

    y = W1( act(W x) * (V x) )                       (Shazeer 2020, "GLU Variants Improve
                                                       Transformer"; GEGLU when act = GELU)

Grok-1 (xai-org/grok-1, `model.py`, `DenseBlock`) uses exactly this with GELU and names its three
bias-free projections `linear` (W), `linear_v` (V) and `linear_1` (W1); the hidden width is
`ffn_size(D, widening_factor)`: two thirds of `widening_factor * D` (so that three matrices cost
what two of a plain `widening_factor * D` MLP cost), rounded up to a multiple of 8.
"""

from __future__ import annotations

import math

from ..autograd import Function
from ..ops.moe import gelu_tanh_gate, gelu_tanh_gate_backward
from ..tensor import Tensor
from . import functional as F
from .dropout import Dropout
from .linear import Linear
from .module import Module

__all__ = ["GatedMLP", "ffn_size", "gated_gelu_tanh"]

_ACTIVATIONS = ("gelu", "gelu_tanh", "silu", "relu")
_C = math.sqrt(2.0 / math.pi)  # GELU's tanh approximation: u = C (a + 0.044715 a^3)
_K = 0.044715


class GatedGeluTanh(Function):
    """y = gelu_tanh(a) * b, with gelu_tanh(a) = a/2 (1 + t), t = tanh(C (a + K a^3)).

    dy/db = gelu_tanh(a); dy/da = b * ((1 + t)/2 + a/2 (1 - t^2) C (1 + 3 K a^2)).
    Saves a, b and t (so backward does not recompute the tanh). One op instead of GELU then a
    multiply: Grok's experts spend about a seventh of a training step here, most of it in
    NumPy temporaries, which the in-place arithmetic of `ops.moe.gelu_tanh_gate` avoids.
    """

    __slots__ = ("t",)
    save_inputs = True
    saved_slots = ("t",)

    def forward(self, a, b):
        y, self.t = gelu_tanh_gate(a, b)  # ops/moe.py: the fused MoE experts share the kernel
        return y

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        if ops.is_graph:  # create_graph: the same formulas on Tensors, recorded
            t = ops.tanh((a + a * a * a * _K) * _C)
            d = (t + 1) * 0.5 + a * 0.5 * (1 - t * t) * (a * a * (3 * _K) + 1) * _C
            return gy * b * d, gy * (a * 0.5 * (t + 1))
        return gelu_tanh_gate_backward(a, b, self.t, gy)


def gated_gelu_tanh(a: Tensor, b: Tensor) -> Tensor:
    """gelu(a, approximate='tanh') * b as one differentiable op (GEGLU's gate; Grok-1's expert).

    Args:
        a, b: tensors of the same shape and dtype.
    """
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"gated_gelu_tanh: a {tuple(a.shape)} and b {tuple(b.shape)} must have "
                         "the same shape")  # fmt: skip
    return GatedGeluTanh.apply(a, b)


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
        if self.activation == "gelu_tanh":  # Grok-1's: one fused op for act(W x) * (V x)
            h = gated_gelu_tanh(self.linear(x), self.linear_v(x))  # (..., hidden)
        else:
            h = self._act(self.linear(x)) * self.linear_v(x)  # (..., hidden)
        y = self.linear_1(h)  # (..., D)
        return self.dropout(y) if self.training and self.dropout.p > 0 else y

    def extra_repr(self) -> str:
        return f"n_embd={self.n_embd}, hidden={self.hidden}, activation={self.activation!r}"
