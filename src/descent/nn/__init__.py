"""Neural-network building blocks (PyTorch's names)."""

from .parameter import Parameter  # noqa: F401
