"""torch.utils.data._utils.collate: `default_collate` and `default_convert` (descent's
utils/data/collate.py; this path exists for `from torch.utils.data._utils.collate import
default_collate`)."""

from __future__ import annotations

from ..collate import default_collate, default_convert

__all__ = ["default_collate", "default_convert"]
