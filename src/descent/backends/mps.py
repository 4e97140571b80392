"""`torch.backends.mps`: descent has no Apple-GPU (Metal) backend."""

from __future__ import annotations

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    """False: descent runs on the CPU (NumPy) or an NVIDIA GPU (CuPy)."""
    return False


def is_built() -> bool:
    return False
