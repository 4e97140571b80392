"""torch.fx.passes.shape_prop: `ShapeProp` runs a GraphModule on example inputs and records
each node's result as `node.meta["tensor_meta"]` (a `TensorMetadata`: shape, dtype,
requires_grad, stride, memory_format, is_quantized, qparams) and `node.meta["type"]`."""

from __future__ import annotations

from typing import Any, NamedTuple

import descent

from ..interpreter import Interpreter
from ..node import map_aggregate

__all__ = ["ShapeProp", "TensorMetadata"]


class TensorMetadata(NamedTuple):
    """What ShapeProp records about a tensor result."""

    shape: Any
    dtype: Any
    requires_grad: bool
    stride: tuple
    memory_format: Any
    is_quantized: bool
    qparams: dict


def _memory_format(t) -> Any:
    for fmt_name in ("contiguous_format", "channels_last", "channels_last_3d"):
        fmt = getattr(descent, fmt_name, None)
        if fmt is None:
            continue
        try:
            if t.is_contiguous(memory_format=fmt):
                return fmt
        except (TypeError, ValueError, RuntimeError):
            continue
    return None


def _extract_tensor_metadata(t) -> TensorMetadata:
    return TensorMetadata(t.shape, t.dtype, t.requires_grad, tuple(t.stride()),
                          _memory_format(t), False, {})  # fmt: skip


class ShapeProp(Interpreter):
    """An Interpreter that annotates every node with its result's metadata.

    Example:
        >>> gm = descent.fx.symbolic_trace(model)
        >>> ShapeProp(gm).propagate(x)
        >>> [n.meta["tensor_meta"].shape for n in gm.graph.nodes if "tensor_meta" in n.meta]
    """

    def __init__(self, gm, fake_mode=None) -> None:
        super().__init__(gm)

    def run_node(self, n) -> Any:
        result = super().run_node(n)
        found = False

        def extract(obj):
            nonlocal found
            if isinstance(obj, descent.Tensor):
                found = True
                return _extract_tensor_metadata(obj)
            return obj

        meta = map_aggregate(result, extract)
        if found:
            n.meta["tensor_meta"] = meta
        n.meta["type"] = type(result)
        return result

    def propagate(self, *args) -> Any:
        """Run the module on `args`, annotating as it goes; returns the output."""
        return super().run(*args)
