"""`torch.cpu.amp`: PyTorch's older CPU mixed-precision spellings over `descent.amp`.

`torch.cpu.amp.autocast(enabled=True, dtype=bfloat16, cache_enabled=True)` is
`descent.amp.autocast('cpu', ...)` and `torch.cpu.amp.GradScaler(...)` is
`descent.amp.GradScaler('cpu', ...)`; as in PyTorch 2.13 constructing either emits a
FutureWarning naming the `descent.amp` spelling.
"""

from __future__ import annotations

import warnings

from ..amp import GradScaler as _GradScaler
from ..amp import autocast as _autocast

__all__ = ["autocast", "GradScaler"]


def _deprecated(name: str) -> None:
    warnings.warn(
        f"`descent.cpu.amp.{name}(args...)` is deprecated (as `torch.cpu.amp.{name}` is in "
        f"PyTorch). Please use `descent.amp.{name}('cpu', args...)` instead.",
        FutureWarning,
        stacklevel=3,
    )


class autocast(_autocast):  # PyTorch's name
    """`descent.amp.autocast('cpu', dtype=dtype, enabled=enabled)` with torch.cpu.amp's
    signature (default dtype bfloat16)."""

    def __init__(self, enabled: bool = True, dtype=None, cache_enabled: bool = True) -> None:
        _deprecated("autocast")
        if dtype is None:
            from ..dtypes import bfloat16_dtype  # noqa: PLC0415 - ml_dtypes loads on first use

            dtype = bfloat16_dtype()
        super().__init__("cpu", dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)


class GradScaler(_GradScaler):
    """`descent.amp.GradScaler('cpu', ...)` with torch.cpu.amp's signature (no device)."""

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000,
                 enabled: bool = True) -> None:  # fmt: skip
        _deprecated("GradScaler")
        super().__init__("cpu", init_scale=init_scale, growth_factor=growth_factor,
                         backoff_factor=backoff_factor, growth_interval=growth_interval,
                         enabled=enabled)  # fmt: skip
