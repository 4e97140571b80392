"""`torch.backends.mkldnn`: descent does not call oneDNN (its CPU products are NumPy's BLAS), so
`is_available()` is False; `enabled` and `deterministic` are recorded flags a script can set and
read back, and `flags(...)` is PyTorch's context manager for them."""

from __future__ import annotations

import contextlib

__all__ = ["is_available", "enabled", "deterministic", "flags"]

enabled = True
deterministic = False


def is_available() -> bool:
    return False


@contextlib.contextmanager
def flags(enabled: bool = False, deterministic: bool = False):
    """Set the flags for a block, then restore them."""
    module = globals()
    old = module["enabled"], module["deterministic"]
    module["enabled"], module["deterministic"] = enabled, deterministic
    try:
        yield
    finally:
        module["enabled"], module["deterministic"] = old
