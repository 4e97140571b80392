"""torch.nn.modules.adaptive: the same classes as `descent.nn` (one implementation;
this path exists for programs that import from it)."""

from __future__ import annotations

from .. import (  # noqa: F401
    AdaptiveLogSoftmaxWithLoss,
)

__all__ = ["AdaptiveLogSoftmaxWithLoss"]
