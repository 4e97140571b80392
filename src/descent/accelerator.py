"""descent.accelerator: `torch.accelerator`'s questions, answered for descent's one kind of
accelerator, an NVIDIA GPU through CuPy.

    device = (descent.accelerator.current_accelerator()
              if descent.accelerator.is_available() else descent.device("cpu"))
"""

from __future__ import annotations

from typing import Any

from . import backend

__all__ = [
    "current_accelerator",
    "current_device_index",
    "device_count",
    "is_available",
    "synchronize",
]


def is_available() -> bool:
    """True when a CUDA GPU is usable (CuPy installed and a device present)."""
    return backend.cuda_available()


def device_count() -> int:
    """How many CUDA GPUs CuPy sees (0 without one)."""
    return backend.cuda_device_count()


def current_accelerator(check_available: bool = False) -> Any:
    """The accelerator's device, `descent.device("cuda")`, or None when there is none.

    Args:
        check_available: also return None when the accelerator is built but not usable
            (for descent the two are the same question).
    """
    del check_available
    if not is_available():
        return None
    import descent  # the package's public device type, looked up at call time

    make = getattr(descent, "device", None)
    return make("cuda") if callable(make) else "cuda"


def current_device_index() -> int:
    """The index of the current GPU (-1 without one)."""
    if not is_available():
        return -1
    return int(backend.cupy_module().cuda.Device().id)


def synchronize(device: Any = None) -> None:
    """Wait for the GPU's queued work to finish (nothing to wait for on the CPU)."""
    del device
    backend.cuda_synchronize()
