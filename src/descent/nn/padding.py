"""Padding layers (torch.nn.modules.padding): ZeroPad, ConstantPad, ReflectionPad,
ReplicationPad and CircularPad in 1d, 2d and 3d (no parameters).

Each stores `padding` as PyTorch does, a tuple of 2 * nd amounts (left, right, top, bottom,
front, back; an int is used for every side) and calls `descent.nn.functional.pad`, which
checks the input rank and sizes as PyTorch (reflection narrower than the input, circular
padding wrapping at most once). A negative amount crops.
"""

from __future__ import annotations

from . import functional as F
from .module import Module

__all__ = [
    "ZeroPad1d",
    "ZeroPad2d",
    "ZeroPad3d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ConstantPad3d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReflectionPad3d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "ReplicationPad3d",
    "CircularPad1d",
    "CircularPad2d",
    "CircularPad3d",
]


def _amounts(padding, nd: int, name: str) -> tuple[int, ...]:
    """An int for every side, or exactly 2 * nd ints (PyTorch's _ntuple / tuple check)."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        return (padding,) * (2 * nd)
    amounts = tuple(int(p) for p in padding)
    if len(amounts) != 2 * nd:
        raise ValueError(
            f"{name}: padding must be an int or a tuple of {2 * nd} ints (left, right"
            f"{', top, bottom' if nd > 1 else ''}{', front, back' if nd > 2 else ''}), got "
            f"{padding!r}"
        )
    return amounts


class _PadNd(Module):
    _nd = 1
    _mode = "constant"

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = _amounts(padding, self._nd, type(self).__name__)

    def forward(self, input):  # PyTorch's names
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dimension with `value`: (left, right), or an int for both."""


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dimensions with `value`: (left, right, top, bottom) or an int."""

    _nd = 2


class ConstantPad3d(_ConstantPadNd):
    """Pad the last three dimensions with `value`: (left, right, top, bottom, front, back)."""

    _nd = 3


class ZeroPad1d(ConstantPad1d):
    """Pad the last dimension with zeros."""

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dimensions with zeros."""

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """Pad the last three dimensions with zeros."""

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pad (C, W) or (N, C, W) with the reflection of the input (the edge not repeated);
    each amount must be smaller than W."""

    _mode = "reflect"


class ReflectionPad2d(ReflectionPad1d):
    """Reflection padding of (C, H, W) or (N, C, H, W)."""

    _nd = 2


class ReflectionPad3d(ReflectionPad1d):
    """Reflection padding of (C, D, H, W) or (N, C, D, H, W)."""

    _nd = 3


class ReplicationPad1d(_PadNd):
    """Pad (C, W) or (N, C, W) by repeating the edge value."""

    _mode = "replicate"


class ReplicationPad2d(ReplicationPad1d):
    """Edge padding of (C, H, W) or (N, C, H, W)."""

    _nd = 2


class ReplicationPad3d(ReplicationPad1d):
    """Edge padding of (C, D, H, W) or (N, C, D, H, W)."""

    _nd = 3


class CircularPad1d(_PadNd):
    """Pad (C, W) or (N, C, W) with the input wrapped around (each amount at most W)."""

    _mode = "circular"


class CircularPad2d(CircularPad1d):
    """Circular padding of (C, H, W) or (N, C, H, W)."""

    _nd = 2


class CircularPad3d(CircularPad1d):
    """Circular padding of (C, D, H, W) or (N, C, D, H, W)."""

    _nd = 3
