"""`torch.mps`: descent has no Apple-GPU (Metal) backend. As PyTorch answers on a machine
without MPS: `device_count()` is 0, `is_available()` False, `manual_seed` does nothing, and
the calls that need the device raise RuntimeError ("... without MPS backend")."""

from __future__ import annotations

__all__ = ["is_available", "device_count", "manual_seed", "seed", "synchronize", "empty_cache",
           "current_allocated_memory", "driver_allocated_memory", "recommended_max_memory",
           "set_per_process_memory_fraction", "get_rng_state", "set_rng_state"]  # fmt: skip


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """A no-op without the device, as in PyTorch."""
    int(seed)


def _unavailable(what: str):
    raise RuntimeError(f"Cannot execute {what}() without MPS backend (descent has none: it runs "
                       "on the CPU, or on an NVIDIA GPU through CuPy)")  # fmt: skip


def seed() -> None:
    _unavailable("getDefaultGenerator")


def synchronize() -> None:
    _unavailable("deviceSynchronize")


def empty_cache() -> None:
    _unavailable("emptyCache")


def current_allocated_memory() -> int:
    _unavailable("getCurrentAllocatedMemory")


def driver_allocated_memory() -> int:
    _unavailable("getDriverAllocatedMemory")


def recommended_max_memory() -> int:
    _unavailable("getRecommendedMaxMemory")


def set_per_process_memory_fraction(fraction: float) -> None:
    _unavailable("setMemoryFraction")


def get_rng_state(device="mps"):
    _unavailable("getDefaultGenerator")


def set_rng_state(new_state, device="mps") -> None:
    _unavailable("getDefaultGenerator")
