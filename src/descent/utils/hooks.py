"""torch.utils.hooks: `RemovableHandle` (what descent's register_*_hook methods return)."""

from __future__ import annotations

from ..nn.module import RemovableHandle

__all__ = ["RemovableHandle"]
