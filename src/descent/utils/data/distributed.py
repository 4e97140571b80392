"""torch.utils.data.distributed: `DistributedSampler` (descent.distributed's, one class)."""

from __future__ import annotations

from ...distributed.sampler import DistributedSampler

__all__ = ["DistributedSampler"]
