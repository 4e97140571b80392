"""`torch.cpu`: the CPU as a device module, with the same questions `torch.cuda` answers
(`is_available()` True, `device_count()` 1, `current_device()` 'cpu', `synchronize()` a no-op:
descent's CPU work is synchronous) and `torch.cpu.amp`'s older autocast / GradScaler spellings.
Device-agnostic scripts call `getattr(torch, device_type).synchronize()`; this makes 'cpu' one.
"""

from __future__ import annotations

import contextlib as _contextlib

from . import amp
from ._capabilities import get_capabilities

__all__ = ["amp", "is_available", "device_count", "current_device", "synchronize", "set_device",
           "is_initialized", "Stream", "current_stream", "stream", "get_capabilities"]  # fmt: skip


def is_available() -> bool:
    return True


def device_count() -> int:
    return 1


def current_device() -> str:
    return "cpu"


def set_device(device) -> None:
    """A no-op, as in PyTorch (there is one CPU device)."""


def is_initialized() -> bool:
    return True


def synchronize(device=None) -> None:
    """A no-op: descent's CPU ops have finished when they return."""


class Stream:
    """torch.cpu.Stream: a placeholder stream (CPU work is not queued)."""

    def __init__(self, priority: int = -1) -> None:
        self.priority = priority

    def wait_stream(self, stream) -> None:
        """Nothing to wait for."""

    def synchronize(self) -> None:
        """Nothing to wait for."""

    def query(self) -> bool:
        return True


_DEFAULT_STREAM = Stream()


def current_stream(device=None) -> Stream:
    return _DEFAULT_STREAM


@_contextlib.contextmanager
def stream(stream):  # noqa: A001 - PyTorch's name
    """torch.cpu.stream(s): a context that changes nothing on the CPU."""
    yield
