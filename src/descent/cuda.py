"""`descent.cuda`: is a CUDA GPU usable through CuPy? (PyTorch's names.)"""

from __future__ import annotations

from . import backend


def is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return backend.cuda_available()


def device_count() -> int:
    """Number of CUDA devices CuPy sees (0 without CuPy or a GPU)."""
    return backend.cuda_device_count()


def synchronize() -> None:
    """Wait for all queued GPU work to finish (a no-op without a GPU); use it around timings."""
    backend.cuda_synchronize()


def manual_seed(seed: int) -> None:
    """Seed the GPU generator used by descent's random functions on device='cuda'."""
    from .creation import _device_generator

    for i in range(device_count()):
        _device_generator(f"cuda:{i}").manual_seed(seed)
