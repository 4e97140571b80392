"""torch.fx.experimental.optimization: `fuse` (fold BatchNorm into the Conv / Linear before it,
for inference) and `remove_dropout`, written as fx passes over a traced model."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from descent import nn
from descent.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from .._symbolic_trace import symbolic_trace
from ..graph_module import GraphModule
from ..interpreter import Transformer
from ..node import Node

__all__ = ["fuse", "matches_module_pattern", "remove_dropout", "replace_node_module"]


def _parent_name(target: str) -> tuple[str, str]:
    """`foo.bar.baz` -> (`foo.bar`, `baz`)."""
    *parent, name = target.rsplit(".", 1)
    return (parent[0] if parent else ""), name


def matches_module_pattern(pattern: Iterable[type], node: Node, modules: dict) -> bool:
    """Whether `node` and its first argument are call_module nodes of exactly the two types of
    `pattern` (first argument first)."""
    if not node.args:
        return False
    for expected, current in zip(pattern, (node.args[0], node)):
        if not isinstance(current, Node) or current.op != "call_module":
            return False
        if not isinstance(current.target, str) or current.target not in modules:
            return False
        if type(modules[current.target]) is not expected:
            return False
    return True


def replace_node_module(node: Node, modules: dict, new_module) -> None:
    """Install `new_module` where `node`'s call_module target points (and in `modules`)."""
    parent_name, name = _parent_name(node.target)
    modules[node.target] = new_module
    setattr(modules[parent_name], name, new_module)


def fuse(model, inplace: bool = False, no_trace: bool = False) -> GraphModule:
    """Fold each BatchNorm that directly follows a Conv1d/2d/3d or Linear (whose output nothing
    else reads) into that layer, using the BatchNorm's running statistics (inference only).

    Args:
        model: the module (deep-copied unless `inplace`).
        inplace: modify `model`'s submodules instead of a copy's.
        no_trace: `model` is already a GraphModule: do not trace it again.

    Returns:
        A GraphModule without the folded BatchNorm calls.
    """
    patterns = [
        (nn.Conv1d, nn.BatchNorm1d),
        (nn.Conv2d, nn.BatchNorm2d),
        (nn.Conv3d, nn.BatchNorm3d),
        (nn.Linear, nn.BatchNorm1d),
    ]
    if not inplace:
        model = copy.deepcopy(model)
    fx_model = model if no_trace and isinstance(model, GraphModule) else symbolic_trace(model)
    modules = dict(fx_model.named_modules())
    new_graph = copy.deepcopy(fx_model.graph)
    for pattern in patterns:
        for node in list(new_graph.nodes):
            if not matches_module_pattern(pattern, node, modules):
                continue
            if len(node.args[0].users) > 1:
                continue  # the layer's output is also read elsewhere: keep the BatchNorm
            first, bn = modules[node.args[0].target], modules[node.target]
            if not bn.track_running_stats:
                continue
            if pattern[0] is nn.Linear:
                fused = fuse_linear_bn_eval(first, bn)
            else:
                fused = fuse_conv_bn_eval(first, bn)
            replace_node_module(node.args[0], modules, fused)
            node.replace_all_uses_with(node.args[0])
            new_graph.erase_node(node)
    return GraphModule(fx_model, new_graph)


def remove_dropout(model) -> GraphModule:
    """The traced model with every nn.Dropout call replaced by its input."""
    fx_model = symbolic_trace(model)

    class DropoutRemover(Transformer):
        def call_module(self, target, args, kwargs):
            if isinstance(self.submodules[target], nn.Dropout):
                if len(args) != 1:
                    raise RuntimeError(f"remove_dropout: {target} takes one input")
                return args[0]
            return super().call_module(target, args, kwargs)

    return DropoutRemover(fx_model).transform()
