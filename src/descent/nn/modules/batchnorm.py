"""torch.nn.modules.batchnorm: the same classes as `descent.nn` (one implementation;
this path exists for programs that import from it)."""

from __future__ import annotations

from .. import (  # noqa: F401
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
    SyncBatchNorm,
)
from ..normalization import _BatchNorm, _NormBase  # noqa: F401

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "LazyBatchNorm1d",
    "LazyBatchNorm2d",
    "LazyBatchNorm3d",
    "_BatchNorm",
    "_NormBase",
    "SyncBatchNorm",
]
