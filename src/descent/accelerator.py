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
    "current_device_idx",
    "current_device_index",
    "device_count",
    "device_index",
    "is_available",
    "set_device_idx",
    "set_device_index",
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


def _require() -> None:
    if not is_available():  # PyTorch's message
        raise RuntimeError("Cannot access accelerator device when none is available.")


def set_device_index(device) -> None:
    """Make GPU number `device` the current one (PyTorch's accelerator.set_device_index).

    Raises:
        RuntimeError: there is no GPU (PyTorch's message).
    """
    _require()
    backend.cupy_module().cuda.Device(int(device)).use()


class device_index:
    """`with device_index(i):` makes GPU i current inside the block and restores the previous
    one after it; None changes nothing (PyTorch's accelerator.device_index). Entering with an
    index raises RuntimeError when there is no GPU, as PyTorch's."""

    def __init__(self, device) -> None:
        self.index, self.previous = device, None

    def __enter__(self):
        if self.index is not None:
            _require()
            self.previous = current_device_index()
            set_device_index(self.index)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            set_device_index(self.previous)


# PyTorch's older names for the same functions
current_device_idx = current_device_index
set_device_idx = set_device_index
