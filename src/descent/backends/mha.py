"""`torch.backends.mha`: the switch for PyTorch's fast path of nn.MultiheadAttention and
nn.TransformerEncoder in inference.

descent has no separate fused kernels, but one result of PyTorch's fast path is visible:
`nn.TransformerEncoder` in eval mode without gradients turns a left-aligned padded batch into a
nested tensor and returns 0 at the padded positions (descent/nn/transformer.py does the same).
Turning the fast path off here keeps the computed values there, as in PyTorch.
"""

from __future__ import annotations

__all__ = ["get_fastpath_enabled", "set_fastpath_enabled"]

_is_fastpath_enabled: bool = True


def get_fastpath_enabled() -> bool:
    """Whether the inference fast path of TransformerEncoder / MultiheadAttention is on."""
    return _is_fastpath_enabled


def set_fastpath_enabled(value: bool) -> None:
    """Turn the inference fast path on or off (process-wide, as in PyTorch)."""
    global _is_fastpath_enabled
    _is_fastpath_enabled = bool(value)
