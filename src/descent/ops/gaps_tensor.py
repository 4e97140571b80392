"""PyTorch's shape, indexing and tensor-object functions that descent lacked until 2026-12-04
(docs/torch_gaps_tensor.md).

Every public function defined here is a top-level `descent.<name>` (through `__all__`) and an
entry of Tensor's ops table (descent/ops/__init__.py), which the methods of
`descent.tensor_gap_methods_tensor.TensorGapMethods2` call.
"""

from __future__ import annotations

__all__: list[str] = []
