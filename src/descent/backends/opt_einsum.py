"""`torch.backends.opt_einsum`: PyTorch's switches for the opt_einsum package, which orders the
contractions of an `einsum` with three or more operands. As in PyTorch, `is_available()` says
whether that package is installed, `enabled` defaults to it, and `strategy` is "auto" when it
is available and None otherwise. A script can set both and read them back. They do not change
descent's results: its einsum contracts through NumPy's own `einsum_path` optimiser, with or
without the package."""

from __future__ import annotations

import importlib.util

__all__ = ["is_available", "get_opt_einsum", "enabled", "strategy"]


def get_opt_einsum():
    """The opt_einsum package if it is installed, else None (as PyTorch)."""
    if importlib.util.find_spec("opt_einsum") is None:
        return None
    import opt_einsum  # noqa: PLC0415

    return opt_einsum


def is_available() -> bool:
    return importlib.util.find_spec("opt_einsum") is not None


enabled = is_available()
strategy = "auto" if enabled else None
