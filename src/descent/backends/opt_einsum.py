"""`torch.backends.opt_einsum`: whether `einsum` picks a contraction order for three or more
operands. descent's einsum contracts through NumPy's `einsum_path` optimiser (always present), so
`is_available()` is True; `enabled` and `strategy` ('auto', 'greedy', 'optimal') are recorded
and read back; they do not change descent's results."""

from __future__ import annotations

__all__ = ["is_available", "get_opt_einsum", "enabled", "strategy"]

enabled = True
strategy = "auto"


def is_available() -> bool:
    return True


def get_opt_einsum():
    """The opt_einsum package if it is installed, else None (as PyTorch)."""
    try:
        import opt_einsum  # noqa: PLC0415
    except ImportError:
        return None
    return opt_einsum
