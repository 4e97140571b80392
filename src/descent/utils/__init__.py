"""descent.utils: the `torch.utils` names PyTorch programs import (`descent.utils.data`)."""

from . import data

__all__ = ["data"]
