"""descent.utils: the `torch.utils` names PyTorch programs import (`descent.utils.data`,
`descent.utils.checkpoint`)."""

from . import checkpoint, data

__all__ = ["checkpoint", "data"]
