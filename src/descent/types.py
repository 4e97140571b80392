"""torch.types: the type aliases PyTorch programs annotate with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from .devices import device as _device
from .tensor import Size, Tensor

__all__ = ["Device", "Number", "Size", "Storage", "_TensorOrTensors", "_int", "_float", "_bool"]

Number = Union[int, float, bool]  # noqa: UP007
Device = Union[_device, str, int, None]  # noqa: UP007
_TensorOrTensors = Union[Tensor, Sequence[Tensor]]  # noqa: UP007
_int, _float, _bool = int, float, bool
Storage = object  # descent has no storages; annotations only
