"""pad: PyTorch's padding modes mapped onto descent's pad op (NumPy's mode names)."""

from __future__ import annotations

from collections.abc import Sequence

from ...ops import shape as _shape
from ...tensor import Tensor

__all__ = ["pad"]


def pad(input, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last len(pad)//2 dimensions; `pad` = (left, right, top, bottom, ...) as PyTorch.

    Modes: 'constant' (differentiable), 'reflect', 'replicate' and 'circular' (forward only).
    """
    np_mode = {
        "constant": "constant",
        "reflect": "reflect",
        "replicate": "edge",
        "circular": "wrap",
    }.get(mode)
    if np_mode is None:
        raise ValueError(f"pad: unknown mode {mode!r}; use constant, reflect, replicate, circular")
    return _shape.pad(input, pad, mode=np_mode, value=0.0 if value is None else value)
