"""torch.fx.experimental: the inference optimizations (`optimization.fuse`,
`optimization.remove_dropout`). torch's symbolic-shape machinery (`symbolic_shapes`,
`proxy_tensor.make_fx`) is not provided (docs/fx.md)."""

from __future__ import annotations

from . import optimization

__all__ = ["optimization"]
