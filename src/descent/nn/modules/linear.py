"""torch.nn.modules.linear: the same classes as `descent.nn` (one implementation;
this path exists for programs that import from it)."""

from __future__ import annotations

from .. import (  # noqa: F401
    Bilinear,
    Identity,
    LazyLinear,
    Linear,
)

__all__ = ["Bilinear", "Identity", "LazyLinear", "Linear"]
