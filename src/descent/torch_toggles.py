"""PyTorch's process-wide switches at the top level: anomaly mode, warn-always, inference mode,
denormals, the legacy default tensor type, autocast state; and its tensor-format constants
`torch.layout`/`torch.strided`, `torch.memory_format` and its values, `torch.newaxis`
(docs/torch_gaps_tensor.md).

Each reads or sets descent's own state where descent has it (anomaly mode lives in
`autograd_torch`, autocast regions in `amp`, the default dtype in `dtypes`); a switch descent
has no use for (flush-denormal, the autocast cache) is accepted and answers as PyTorch does on a
machine without the feature.
"""

from __future__ import annotations

import threading
import warnings

from . import amp, legacy_tensors
from .dtypes import set_default_dtype
from .grad_mode import _state
from .tensor_gap_methods_tensor import layout, strided

__all__ = [
    "autocast_decrement_nesting", "autocast_increment_nesting", "clear_autocast_cache",
    "get_autocast_cpu_dtype", "get_autocast_dtype", "get_autocast_gpu_dtype",
    "is_anomaly_check_nan_enabled", "is_anomaly_enabled", "is_autocast_cache_enabled",
    "is_autocast_cpu_enabled", "is_autocast_enabled", "is_inference_mode_enabled",
    "is_warn_always_enabled", "layout", "set_anomaly_enabled", "set_autocast_cache_enabled",
    "set_autocast_cpu_dtype", "set_autocast_cpu_enabled", "set_autocast_dtype",
    "set_autocast_enabled", "set_autocast_gpu_dtype", "set_default_tensor_type",
    "set_flush_denormal", "set_warn_always", "strided", "memory_format", "contiguous_format",
    "channels_last", "channels_last_3d", "preserve_format", "legacy_contiguous_format",
    "newaxis",
]  # fmt: skip


class memory_format:
    """torch.memory_format: a layout request (`x.contiguous(memory_format=...)`,
    `x.to(memory_format=...)`). descent accepts these objects and keeps its C-contiguous
    arrays (docs/torch_gaps_tensor.md); the repr is PyTorch's spelling."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    def __reduce__(self):
        return self.name  # pickles as the module-level singleton


contiguous_format = memory_format("contiguous_format")
channels_last = memory_format("channels_last")
channels_last_3d = memory_format("channels_last_3d")
preserve_format = memory_format("preserve_format")
legacy_contiguous_format = contiguous_format  # the same object in PyTorch
newaxis = None  # torch.newaxis, NumPy's: x[:, descent.newaxis] adds a dimension


# ---------------------------------------------------------------------------------------------
# Anomaly mode, warnings, inference mode, denormals


def _anomaly():
    # descent.autograd_torch is imported on first use (it is not needed to import descent).
    from . import autograd_torch

    return autograd_torch


def is_anomaly_enabled() -> bool:
    """True while anomaly mode is on (torch.is_anomaly_enabled)."""
    return _anomaly().is_anomaly_enabled()


def is_anomaly_check_nan_enabled() -> bool:
    """True when anomaly mode is on and stops at NaN gradients."""
    return _anomaly().is_anomaly_check_nan_enabled()


def set_anomaly_enabled(enabled: bool, check_nan: bool = True) -> None:
    """Turn anomaly mode on or off now (torch.set_anomaly_enabled; the context manager is
    descent.autograd.detect_anomaly)."""
    _anomaly()._set(bool(enabled), bool(check_nan))


_warn_always = {"on": False}


def set_warn_always(b: bool) -> None:
    """PyTorch's switch for repeating warnings that are normally given once. descent records
    it (is_warn_always_enabled) and otherwise leaves Python's warning filters alone."""
    _warn_always["on"] = bool(b)


def is_warn_always_enabled() -> bool:
    return _warn_always["on"]


def is_inference_mode_enabled() -> bool:
    """True inside `descent.inference_mode()` (this thread)."""
    return getattr(_state, "inference", False)


def set_flush_denormal(mode: bool) -> bool:
    """False: descent cannot switch the CPU's flush-to-zero of denormals (NumPy offers no
    control), which is PyTorch's answer on a CPU without the feature."""
    del mode
    return False


def set_default_tensor_type(t) -> None:
    """The deprecated torch.set_default_tensor_type: set the default dtype from a legacy type
    (`descent.DoubleTensor`) or its name ('torch.DoubleTensor', 'descent.DoubleTensor').

    Raises:
        TypeError: not a floating type, or an unknown name.
    """
    warnings.warn(
        "set_default_tensor_type() is deprecated as of PyTorch 2.1, please use "
        "descent.set_default_dtype() instead",
        UserWarning,
        stacklevel=2,
    )
    if isinstance(t, str):
        name = t.rsplit(".", 1)[-1]
        legacy = getattr(legacy_tensors, name, None)
        if not isinstance(legacy, type) or not hasattr(legacy, "_dtype"):
            raise TypeError(f"set_default_tensor_type: invalid type string: {t!r}")
        t = legacy
    dtype = getattr(t, "_dtype", t)
    try:
        set_default_dtype(dtype)
    except (TypeError, ValueError):
        raise TypeError(
            f"set_default_tensor_type: only floating-point types are supported as the default "
            f"type, got {t!r}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Autocast state (descent.amp): the setters open or close a region that lasts until changed


_local = threading.local()  # .entry: the region the setters opened; .dtypes; .nesting


def _device(device_type) -> str:
    dev = str(device_type).split(":")[0].lower()
    if dev not in ("cuda", "cpu"):
        raise ValueError(f"autocast: device_type must be 'cuda' or 'cpu', got {device_type!r}")
    return dev


def _dtypes() -> dict:
    d = getattr(_local, "dtypes", None)
    if d is None:
        d = _local.dtypes = {}
    return d


def is_autocast_enabled(device_type: str = "cuda") -> bool:
    """True inside an enabled autocast region for device_type (torch.is_autocast_enabled)."""
    return amp._is_autocast_enabled(_device(device_type))


def get_autocast_dtype(device_type: str):
    """The low dtype autocast uses for device_type: the open region's, else the one set with
    set_autocast_dtype, else float16 (descent's CPU autocast runs float16 only)."""
    dev = _device(device_type)
    if amp._is_autocast_enabled(dev):
        return amp._get_autocast_dtype(dev)
    return _dtypes().get(dev, amp._get_autocast_dtype(dev))


def set_autocast_dtype(device_type: str, dtype) -> None:
    """The dtype the next set_autocast_enabled(device_type, True) uses."""
    amp._dtype_name(dtype)  # refuse what autocast never accepts (ValueError)
    _dtypes()[_device(device_type)] = dtype


def set_autocast_enabled(device_type, enabled=None) -> None:
    """Open (True) or close (False) an autocast region for device_type that lasts until the
    next call; `set_autocast_enabled(enabled)` is the legacy CUDA form. Inside a `with
    autocast(...)` block use the context manager instead (RuntimeError)."""
    if enabled is None:
        device_type, enabled = "cuda", device_type
    dev = _device(device_type)
    st = amp._stack()
    ours = getattr(_local, "entry", None)
    if st and not (ours is not None and len(st) == 1 and st[0] is ours):
        raise RuntimeError(
            "set_autocast_enabled: an autocast context manager is open; change its state with "
            "`with descent.autocast(device_type, enabled=...)` instead"
        )
    if ours is not None:
        st.pop()
        amp._depth -= 1
        _local.entry = None
    if enabled:
        # autocast() validates, and warns and disables where PyTorch does (CUDA without a GPU,
        # a CPU dtype other than float16).
        region = amp.autocast(dev, dtype=_dtypes().get(dev), enabled=True)
        _local.entry = (region.enabled, dev, region.fast_dtype)
        st.append(_local.entry)
        amp._depth += 1


def is_autocast_cpu_enabled() -> bool:
    return is_autocast_enabled("cpu")


def set_autocast_cpu_enabled(enabled: bool) -> None:
    set_autocast_enabled("cpu", enabled)


def get_autocast_cpu_dtype():
    return get_autocast_dtype("cpu")


def get_autocast_gpu_dtype():
    return get_autocast_dtype("cuda")


def set_autocast_cpu_dtype(dtype) -> None:
    set_autocast_dtype("cpu", dtype)


def set_autocast_gpu_dtype(dtype) -> None:
    set_autocast_dtype("cuda", dtype)


_cache = {"enabled": True}


def is_autocast_cache_enabled() -> bool:
    """PyTorch's cache of low-precision weight copies; descent keeps none (the flag only)."""
    return _cache["enabled"]


def set_autocast_cache_enabled(enabled: bool) -> None:
    _cache["enabled"] = bool(enabled)


def clear_autocast_cache() -> None:
    """Nothing to clear: descent caches no casts."""


def autocast_increment_nesting() -> int:
    """PyTorch's nesting counter for autocast (its cache is cleared at 0); returns the count."""
    _local.nesting = getattr(_local, "nesting", 0) + 1
    return _local.nesting


def autocast_decrement_nesting() -> int:
    _local.nesting = getattr(_local, "nesting", 0) - 1
    return _local.nesting
