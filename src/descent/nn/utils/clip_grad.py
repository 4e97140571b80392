"""torch.nn.utils.clip_grad: the clipping functions under PyTorch's module path."""

from __future__ import annotations

from . import clip_grad_norm, clip_grad_norm_, clip_grad_value_  # noqa: F401

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_"]
