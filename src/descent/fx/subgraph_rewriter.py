"""torch.fx.subgraph_rewriter: `replace_pattern(gm, pattern, replacement)`.

`pattern` and `replacement` are functions (or Modules / Graphs) with the same parameters; each
place in `gm`'s graph where the pattern's computation occurs (same opcodes and targets, same
literal arguments, the pattern's parameters standing for any node) is replaced by a copy of the
replacement's graph. Matches are found in graph order and do not overlap; a match whose inner
values are read outside it is skipped (replacing it would change those readers).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ._symbolic_trace import symbolic_trace
from .graph import Graph
from .graph_module import GraphModule
from .node import Node

__all__ = ["Match", "replace_pattern"]


class Match(NamedTuple):
    """One replaced occurrence: `anchor` (the pattern's returned node, as in torch) and
    `nodes_map` (pattern node -> the graph node it matched)."""

    anchor: Node
    nodes_map: dict[Node, Node]


def _as_graph(obj) -> Graph:
    if isinstance(obj, GraphModule):
        return obj.graph
    if isinstance(obj, Graph):
        return obj
    return symbolic_trace(obj).graph


def _match(anchor_p: Node, anchor_g: Node) -> dict[Node, Any] | None:
    """Pattern node -> graph node (or literal, for a pattern parameter) if the pattern's
    computation ending at `anchor_p` occurs ending at `anchor_g`; else None."""
    nodes_map: dict[Node, Any] = {}
    stack = [(anchor_p, anchor_g)]  # an explicit stack: no recursion over the graph
    while stack:
        pa, ga = stack.pop()
        if isinstance(pa, Node):
            if pa in nodes_map:
                if nodes_map[pa] is not ga:
                    return None
                continue
            if pa.op == "placeholder":
                nodes_map[pa] = ga
                continue
            if not isinstance(ga, Node) or pa.op != ga.op or pa.target != ga.target:
                return None
            if len(pa.args) != len(ga.args) or set(pa.kwargs) != set(ga.kwargs):
                return None
            nodes_map[pa] = ga
            stack.extend(zip(pa.args, ga.args))
            stack.extend((pa.kwargs[k], ga.kwargs[k]) for k in pa.kwargs)
        elif isinstance(pa, (tuple, list)):
            if not isinstance(ga, (tuple, list)) or len(pa) != len(ga):
                return None
            stack.extend(zip(pa, ga))
        elif isinstance(pa, dict):
            if not isinstance(ga, dict) or set(pa) != set(ga):
                return None
            stack.extend((pa[k], ga[k]) for k in pa)
        elif isinstance(ga, Node) or type(pa) is not type(ga) or pa != ga:
            return None
    return nodes_map


def replace_pattern(gm: GraphModule, pattern, replacement) -> list[Match]:
    """Replace every non-overlapping occurrence of `pattern` in `gm` by `replacement`, then
    recompile `gm`.

    Args:
        gm: the GraphModule to rewrite in place.
        pattern: a function, Module, GraphModule or Graph: the computation to find.
        replacement: the same kinds: what to put instead (same parameters as `pattern`).

    Returns:
        One Match per replaced occurrence.
    """
    original = gm.graph
    pattern_graph = _as_graph(pattern)
    replacement_graph = _as_graph(replacement)
    p_placeholders = [n for n in pattern_graph.nodes if n.op == "placeholder"]
    r_placeholders = [n for n in replacement_graph.nodes if n.op == "placeholder"]
    if len(p_placeholders) != len(r_placeholders):
        raise ValueError(f"replace_pattern: the pattern takes {len(p_placeholders)} inputs and "
                         f"the replacement {len(r_placeholders)}; they must agree")  # fmt: skip
    p_output = next(n for n in pattern_graph.nodes if n.op == "output")
    p_anchor = p_output.args[0]
    if not isinstance(p_anchor, Node) or p_anchor.op == "placeholder":
        raise NotImplementedError("replace_pattern: descent matches patterns that return one "
                                  "computed value (not a tuple or an input)")  # fmt: skip
    p_inner = [n for n in pattern_graph.nodes if n.op not in ("placeholder", "output")]

    matches: list[dict[Node, Any]] = []
    taken: set[Node] = set()
    for gn in original.nodes:
        nodes_map = _match(p_anchor, gn)
        if nodes_map is None or any(p not in nodes_map for p in p_placeholders):
            continue
        inner = [nodes_map[p] for p in p_inner]
        inner_set = set(inner)
        if inner_set & taken:
            continue  # overlaps an earlier match
        # An inner value read outside the match would lose its definition.
        if any(u not in inner_set for g in inner if g is not gn for u in g.users):
            continue
        taken |= inner_set
        matches.append(nodes_map)

    results = []
    changed: dict[Node, Any] = {}  # a replaced anchor -> its replacement (later inputs use it)
    for nodes_map in matches:
        anchor = nodes_map[p_anchor]
        for p in p_placeholders:
            if isinstance(nodes_map[p], Node) and nodes_map[p] in changed:
                nodes_map[p] = changed[nodes_map[p]]
        val_map = {r: nodes_map[p] for r, p in zip(r_placeholders, p_placeholders)}
        users = list(anchor.users)
        if users:
            insert_point = next(n for n in original.nodes if n in anchor.users)
        else:
            insert_point = anchor.next
        with original.inserting_before(insert_point):
            new_value = original.graph_copy(replacement_graph, val_map)
        anchor.replace_all_uses_with(new_value)
        changed[anchor] = new_value
        for p in reversed(p_inner):
            original.erase_node(nodes_map[p])
        results.append(Match(anchor=p_anchor, nodes_map=nodes_map))
    gm.recompile()
    return results
