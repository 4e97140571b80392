"""`torch.xpu`: descent has no Intel-GPU backend. As PyTorch's build without XPU answers:
`is_available()` False, `device_count()` 0, the seeding and cache calls do nothing, and the
calls that need the device raise AssertionError ("... not compiled with XPU enabled")."""

from __future__ import annotations

__all__ = ["is_available", "device_count", "is_initialized", "manual_seed", "manual_seed_all",
           "seed", "seed_all", "empty_cache", "synchronize", "current_device", "get_device_name",
           "memory_allocated", "max_memory_allocated", "is_bf16_supported"]  # fmt: skip


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_initialized() -> bool:
    return False


def manual_seed(seed: int) -> None:
    """A no-op without the device, as in PyTorch."""
    int(seed)


def manual_seed_all(seed: int) -> None:
    int(seed)


def seed() -> None:
    """A no-op without the device."""


def seed_all() -> None:
    """A no-op without the device."""


def empty_cache() -> None:
    """A no-op without the device."""


def memory_allocated(device=None) -> int:
    return 0


def max_memory_allocated(device=None) -> int:
    return 0


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def _unavailable() -> None:
    raise AssertionError("Torch not compiled with XPU enabled (descent has no XPU backend: it "
                         "runs on the CPU, or on an NVIDIA GPU through CuPy)")  # fmt: skip


def synchronize(device=None) -> None:
    _unavailable()


def current_device() -> int:
    _unavailable()


def get_device_name(device=None) -> str:
    _unavailable()
