"""`torch.utils.dlpack`: tensors to and from other libraries through the DLPack protocol
(`descent.from_dlpack` / `descent.to_dlpack`, docs/pytorch.md)."""

from descent.creation import from_dlpack
from descent.torch_misc import to_dlpack

__all__ = ["from_dlpack", "to_dlpack"]
