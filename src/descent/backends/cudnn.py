"""`torch.backends.cudnn`: descent does not call cuDNN, so `is_available()` is False and the
switches (`benchmark`, `deterministic`, `allow_tf32`, `enabled`) are recorded only. descent's
results do not depend on them: its CPU arithmetic is deterministic, and on a GPU it uses CuPy's
kernels in the tensor's own precision."""

from __future__ import annotations

__all__ = ["allow_tf32", "benchmark", "deterministic", "enabled", "is_available", "version"]

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """False: descent does not use cuDNN."""
    return False


def version() -> None:
    """None, as torch answers without cuDNN."""
    return None
