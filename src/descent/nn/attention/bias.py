"""Causal attention biases (torch.nn.attention.bias): causal_upper_left, causal_lower_right.

PyTorch's CausalBias is a Tensor subclass that scaled_dot_product_attention dispatches on,
materialising the mask only where a kernel needs one. Here it is a bool Tensor holding that
mask (True: attend), with PyTorch's fields (`seq_len_q`, `seq_len_kv`, `variant`) and
`_materialize()`, so that F.scaled_dot_product_attention(q, k, v, attn_mask=bias) and
nn.MultiheadAttention take it as any bool mask:

* upper left (`is_causal=True`'s mask): query i sees keys j <= i;
* lower right (a KV cache's): the diagonal ends at the bottom-right corner, query i sees keys
  j <= i + seq_len_kv - seq_len_q.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from ... import backend
from ...autograd import _init_tensor as init_tensor
from ...tensor import Tensor

__all__ = ["CausalBias", "CausalVariant", "causal_lower_right", "causal_upper_left"]


class CausalVariant(IntEnum):
    """Which corner the causal diagonal starts from (PyTorch's values)."""

    UPPER_LEFT = 1
    LOWER_RIGHT = 2


def _mask(seq_len_q: int, seq_len_kv: int, variant: CausalVariant, xp=np):
    diagonal = 0 if variant == CausalVariant.UPPER_LEFT else seq_len_kv - seq_len_q
    return xp.tri(seq_len_q, seq_len_kv, k=diagonal, dtype=bool)


class CausalBias(Tensor):
    """A (seq_len_q, seq_len_kv) bool mask of a causal variant; build it with
    causal_upper_left / causal_lower_right."""

    def __init__(self, variant: CausalVariant, seq_len_q: int, seq_len_kv: int) -> None:
        # Built by __new__ (the mask); kept for PyTorch's constructor signature.
        pass

    def __new__(cls, variant: CausalVariant, seq_len_q: int, seq_len_kv: int):
        if not isinstance(variant, CausalVariant):
            raise TypeError(f"CausalBias: variant must be a CausalVariant, got {variant!r}")
        seq_len_q, seq_len_kv = int(seq_len_q), int(seq_len_kv)
        if seq_len_q < 0 or seq_len_kv < 0:
            raise ValueError(
                f"CausalBias: sequence lengths must be >= 0, got {seq_len_q}, {seq_len_kv}"
            )
        self = init_tensor(object.__new__(cls), _mask(seq_len_q, seq_len_kv, variant), False, None)
        self.variant, self.seq_len_q, self.seq_len_kv = variant, seq_len_q, seq_len_kv
        return self

    def _materialize(self, device=None) -> Tensor:
        """The mask as a plain bool Tensor (True: attend)."""
        xp = backend.get_array_module(self._data)
        out = Tensor._wrap(_mask(self.seq_len_q, self.seq_len_kv, self.variant, xp))
        return out if device is None else out.to(device)

    def _upper_left(self, device=None) -> Tensor:
        return Tensor._wrap(_mask(self.seq_len_q, self.seq_len_kv, CausalVariant.UPPER_LEFT))

    def _lower_right(self, device=None) -> Tensor:
        return Tensor._wrap(_mask(self.seq_len_q, self.seq_len_kv, CausalVariant.LOWER_RIGHT))

    def __repr__(self) -> str:
        return repr(self._materialize())


def _lengths(size, op: str) -> tuple[int, int]:
    if len(size) != 2:
        raise ValueError(f"{op}: expected two sizes (seq_len_q, seq_len_kv), got {size}")
    return int(size[0]), int(size[1])


def causal_upper_left(*size) -> CausalBias:
    """The causal mask whose diagonal starts at the top-left corner (is_causal=True's)."""
    return CausalBias(CausalVariant.UPPER_LEFT, *_lengths(size, "causal_upper_left"))


def causal_lower_right(*size) -> CausalBias:
    """The causal mask whose diagonal ends at the bottom-right corner: with a cache of earlier
    keys (seq_len_kv > seq_len_q), each new query sees every cached key and those up to it."""
    return CausalBias(CausalVariant.LOWER_RIGHT, *_lengths(size, "causal_lower_right"))
