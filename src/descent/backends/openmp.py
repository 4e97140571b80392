"""`torch.backends.openmp`: descent does not use OpenMP itself (NumPy's BLAS has its own
threads; see `threadpoolctl` to limit them)."""

from __future__ import annotations

__all__ = ["is_available"]


def is_available() -> bool:
    return False
