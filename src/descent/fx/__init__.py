"""descent.fx: PyTorch's torch.fx over descent (docs/fx.md).

Trace a model into a Graph (`symbolic_trace`), inspect and edit it (`Graph`, `Node`), turn it
back into a Module (`GraphModule`), run it node by node (`Interpreter`, `Transformer`),
annotate shapes (`passes.shape_prop.ShapeProp`) and rewrite patterns
(`subgraph_rewriter.replace_pattern`). Loaded on first use of `descent.fx`.
"""

from __future__ import annotations

from . import immutable_collections, node, passes, proxy, subgraph_rewriter
from ._symbolic_trace import PH, Tracer, has_side_effect, symbolic_trace, wrap
from .graph import Graph
from .graph_module import GraphModule
from .interpreter import Interpreter, Transformer
from .node import Node, map_arg
from .proxy import Proxy, TraceError
from .subgraph_rewriter import replace_pattern

__all__ = [
    "PH", "Graph", "GraphModule", "Interpreter", "Node", "Proxy", "TraceError", "Tracer",
    "Transformer", "experimental", "has_side_effect", "immutable_collections", "map_arg", "node",
    "passes", "proxy", "replace_pattern", "subgraph_rewriter", "symbolic_trace", "wrap",
]  # fmt: skip


def __getattr__(name: str):
    # descent.fx.experimental (the BatchNorm-folding passes) loads on first use: it needs
    # descent.nn.utils.fusion, which a plain trace does not.
    if name == "experimental":
        import importlib  # noqa: PLC0415

        return importlib.import_module(f"{__name__}.experimental")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
