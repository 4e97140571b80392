"""torch.nn.modules.normalization: the same classes as `descent.nn` (one implementation;
this path exists for programs that import from it)."""

from __future__ import annotations

from .. import (  # noqa: F401
    CrossMapLRN2d,
    GroupNorm,
    LayerNorm,
    LocalResponseNorm,
    RMSNorm,
)

__all__ = ["GroupNorm", "LayerNorm", "LocalResponseNorm", "RMSNorm", "CrossMapLRN2d"]
