"""torch.fx.subgraph_rewriter: `replace_pattern(gm, pattern, replacement)`.

`pattern` and `replacement` are functions (or Modules / Graphs) with the same parameters; each
place in `gm`'s graph where the pattern's computation occurs (same opcodes and targets, same
literal arguments, the pattern's parameters standing for any node) is replaced by a copy of the
replacement's graph. Matches are found in graph order and do not overlap; a match whose inner
values are read outside it is skipped (replacing it would change those readers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._symbolic_trace import symbolic_trace
from .graph import Graph
from .graph_module import GraphModule
from .node import Node

__all__ = ["InternalMatch", "Match", "ReplacedPatterns", "replace_pattern",
           "replace_pattern_with_filters"]  # fmt: skip


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


def _match(anchor_p: Node, anchor_g: Node, ignore_literals: bool = False
           ) -> dict[Node, Any] | None:  # fmt: skip
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
        elif isinstance(ga, Node):
            return None
        elif not ignore_literals and (type(pa) is not type(ga) or pa != ga):
            return None
    return nodes_map


@dataclass
class InternalMatch:
    """What a match filter sees (torch's passes.utils.matcher_utils.InternalMatch)."""

    anchors: list[Node]
    nodes_map: dict[Node, Any] = field(default_factory=dict)
    placeholder_nodes: list[Any] = field(default_factory=list)
    returning_nodes: list[Node] = field(default_factory=list)


@dataclass
class ReplacedPatterns:
    """One replaced occurrence, with the nodes the replacement added."""

    anchor: Node
    nodes_map: dict[Node, Any]
    replacements: list[Node]


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
    done = replace_pattern_with_filters(gm, pattern, replacement)
    return [Match(anchor=r.anchor, nodes_map=r.nodes_map) for r in done]


def replace_pattern_with_filters(gm: GraphModule, pattern, replacement=None,
                                 match_filters=None, ignore_literals: bool = False,
                                 replacement_callback=None) -> list[ReplacedPatterns]:  # fmt: skip
    """`replace_pattern` with torch's options.

    Args:
        match_filters: callables `(InternalMatch, original_graph, pattern_graph) -> bool`; a
            match is replaced only if all return True.
        ignore_literals: literal arguments of the pattern match any literal.
        replacement_callback: `(InternalMatch, original_graph, pattern_graph) -> Graph`, the
            replacement for that match (instead of `replacement`).
    """
    original = gm.graph
    pattern_graph = _as_graph(pattern)
    common_replacement = _as_graph(replacement) if replacement is not None else None
    if common_replacement is None and replacement_callback is None:
        raise ValueError("replace_pattern: give a replacement or a replacement_callback")
    p_placeholders = [n for n in pattern_graph.nodes if n.op == "placeholder"]
    p_output = next(n for n in pattern_graph.nodes if n.op == "output")
    p_anchor = p_output.args[0]
    if not isinstance(p_anchor, Node) or p_anchor.op == "placeholder":
        raise NotImplementedError("replace_pattern: descent matches patterns that return one "
                                  "computed value (not a tuple or an input)")  # fmt: skip
    p_inner = [n for n in pattern_graph.nodes if n.op not in ("placeholder", "output")]

    matches: list[InternalMatch] = []
    taken: set[Node] = set()
    for gn in original.nodes:
        nodes_map = _match(p_anchor, gn, ignore_literals)
        if nodes_map is None or any(p not in nodes_map for p in p_placeholders):
            continue
        inner = [nodes_map[p] for p in p_inner]
        inner_set = set(inner)
        if inner_set & taken:
            continue  # overlaps an earlier match
        # An inner value read outside the match would lose its definition.
        if any(u not in inner_set for g in inner if g is not gn for u in g.users):
            continue
        match = InternalMatch([p_anchor], nodes_map, [nodes_map[p] for p in p_placeholders],
                              [gn])  # fmt: skip
        if match_filters and not all(f(match, original, pattern_graph) for f in match_filters):
            continue
        taken |= inner_set
        matches.append(match)

    results = []
    changed: dict[Node, Any] = {}  # a replaced anchor -> its replacement (later inputs use it)
    for match in matches:
        nodes_map = match.nodes_map
        anchor = nodes_map[p_anchor]
        for p in p_placeholders:
            if isinstance(nodes_map[p], Node) and nodes_map[p] in changed:
                nodes_map[p] = changed[nodes_map[p]]
        replacement_graph = common_replacement
        if replacement_callback is not None:
            replacement_graph = replacement_callback(match, original, pattern_graph)
        r_placeholders = [n for n in replacement_graph.nodes if n.op == "placeholder"]
        if len(p_placeholders) != len(r_placeholders):
            raise ValueError(
                f"replace_pattern: the pattern takes {len(p_placeholders)} inputs and the "
                f"replacement {len(r_placeholders)}; they must agree"
            )
        val_map = {r: nodes_map[p] for r, p in zip(r_placeholders, p_placeholders)}
        if anchor.users:
            insert_point = next(n for n in original.nodes if n in anchor.users)
        else:
            insert_point = anchor.next
        before = set(original.nodes)
        with original.inserting_before(insert_point):
            new_value = original.graph_copy(replacement_graph, val_map)
        added = [n for n in original.nodes if n not in before]
        anchor.replace_all_uses_with(new_value)
        changed[anchor] = new_value
        for p in reversed(p_inner):
            original.erase_node(nodes_map[p])
        results.append(ReplacedPatterns(anchor=p_anchor, nodes_map=nodes_map, replacements=added))
    gm.recompile()
    return results
