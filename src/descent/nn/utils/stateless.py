"""torch.nn.utils.stateless: `functional_call` (PyTorch deprecated this path for
torch.func.functional_call; both run the module with the given parameters and buffers)."""

from __future__ import annotations

from ...func_vmap import functional_call

__all__ = ["functional_call"]
