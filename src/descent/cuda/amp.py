"""`descent.cuda.amp`: PyTorch's older mixed-precision spellings, `torch.cuda.amp.autocast` and
`torch.cuda.amp.GradScaler`, over `descent.amp`.

They take PyTorch's `torch.cuda.amp` arguments, which differ from `torch.amp`'s: the device is
fixed to 'cuda', so the first positional argument is `enabled` (autocast) or `init_scale`
(GradScaler), not the device. As in PyTorch 2.13, constructing either emits a FutureWarning that
points to the `descent.amp` spelling; otherwise they are `descent.amp`'s classes (subclasses, so
isinstance checks and every method are the same).

Without a GPU, `autocast()` here warns and is disabled like any `autocast('cuda')` (see
`descent.amp`). `GradScaler()` stays enabled and scales the gradients wherever they are (PyTorch
disables it without CUDA); `enabled=False` gives PyTorch's pass-through.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import amp as _amp
from ..amp import GradScaler as _GradScaler
from ..amp import autocast as _autocast

__all__ = ["GradScaler", "autocast", "custom_bwd", "custom_fwd"]

_FLOAT16 = np.dtype(np.float16)  # torch.cuda.amp.autocast's default dtype


def _deprecated(name: str, stacklevel: int) -> None:
    warnings.warn(
        f"`descent.cuda.amp.{name}(args...)` is deprecated (as `torch.cuda.amp.{name}` is in "
        f"PyTorch). Please use `descent.amp.{name}('cuda', args...)` instead.",
        FutureWarning,
        stacklevel=stacklevel,
    )


class autocast(_autocast):  # PyTorch's name
    """`descent.amp.autocast('cuda', dtype=dtype, enabled=enabled)` with torch.cuda.amp's
    signature.

    Args:
        enabled: False makes the region a no-op.
        dtype: descent.float16 (default) or descent.bfloat16 (GPU only).
        cache_enabled: accepted for PyTorch compatibility; ignored.
    """

    def __init__(self, enabled: bool = True, dtype=_FLOAT16, cache_enabled: bool = True) -> None:
        _deprecated("autocast", stacklevel=3)
        super().__init__("cuda", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_GradScaler):
    """`descent.amp.GradScaler('cuda', ...)` with torch.cuda.amp's signature (no device)."""

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        _deprecated("GradScaler", stacklevel=3)
        super().__init__(
            "cuda",
            init_scale=init_scale,
            growth_factor=growth_factor,
            backoff_factor=backoff_factor,
            growth_interval=growth_interval,
            enabled=enabled,
        )


def custom_fwd(fwd=None, *, cast_inputs=None):
    """`descent.amp.custom_fwd(device_type='cuda', ...)` (torch.cuda.amp.custom_fwd)."""
    _deprecated("custom_fwd", stacklevel=3)
    return _amp.custom_fwd(fwd, device_type="cuda", cast_inputs=cast_inputs)


def custom_bwd(bwd):
    """`descent.amp.custom_bwd(device_type='cuda')` (torch.cuda.amp.custom_bwd)."""
    _deprecated("custom_bwd", stacklevel=3)
    return _amp.custom_bwd(bwd, device_type="cuda")
