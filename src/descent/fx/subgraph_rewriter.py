"""torch.fx.subgraph_rewriter: `replace_pattern(gm, pattern, replacement)`.

`pattern` and `replacement` are functions (or Modules / Graphs) with the same parameters; each
place in `gm`'s graph where the pattern's computation occurs (same opcodes and targets, same
literal arguments, the pattern's parameters standing for any node) is replaced by a copy of the
replacement's graph. Matches are found in graph order and do not overlap; a match whose inner
values are read outside it is skipped (replacing it would change those readers).

A pattern may return several values (`return a, b`), as torch's: its anchors are the returned
nodes that nothing inside the pattern reads; each anchor is matched against every graph node,
and the combinations whose maps agree (backtracking, torch's SubgraphMatcher) are matches. The
replacement returns as many values, which take the place of the matched returned nodes in order;
it is inserted before the first reader of any of them. A match that would form a cycle when
replaced (a value leaves the match and comes back into it) is skipped, as in torch.
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


def _find_matches(original: Graph, p_anchors, p_placeholders, p_returning, p_inner,
                  ignore_literals: bool) -> list[InternalMatch]:  # fmt: skip
    """torch's SubgraphMatcher.match: every consistent assignment of graph nodes to the
    anchors (in graph order, the first anchor varying slowest), kept when it covers every
    pattern input, is self-contained (only returned values are read outside it) and forms no
    cycle, and maps no two pattern nodes to one graph node; then overlapping matches after the
    first are dropped."""
    graph_nodes = list(original.nodes)
    # per anchor: (graph node, its nodes_map) for every node where its computation occurs
    candidates = []
    for pa in p_anchors:
        found = []
        for gn in graph_nodes:
            m = _match(pa, gn, ignore_literals)
            if m is not None:
                found.append((gn, m))
        candidates.append(found)

    complete: list[dict] = []
    # an explicit stack of (anchor index, merged map so far), popped in torch's order
    stack = [(0, {})]
    while stack:
        i, merged = stack.pop()
        if i == len(p_anchors):
            complete.append(merged)
            continue
        for _, m in reversed(candidates[i]):  # reversed: the first candidate is tried first
            both = _merge(merged, m)
            if both is not None:
                stack.append((i + 1, both))

    matches: list[InternalMatch] = []
    taken: set[Node] = set()
    returning = set(p_returning)
    for nodes_map in complete:
        if any(p not in nodes_map for p in p_placeholders) or not _injective(nodes_map):
            continue
        inner = [nodes_map[p] for p in p_inner]
        inner_set = set(inner)
        # An inner value read outside the match would lose its definition (torch's _is_contained)
        if any(u not in inner_set for p in p_inner if p not in returning
               for u in nodes_map[p].users):  # fmt: skip
            continue
        if _forms_cycle(inner_set):
            continue
        if inner_set & taken:
            continue  # overlaps an earlier match
        taken |= inner_set
        matches.append(InternalMatch(list(p_anchors), nodes_map,
                                     [nodes_map[p] for p in p_placeholders],
                                     [nodes_map[p] for p in p_returning]))  # fmt: skip
    return matches


def _merge(a: dict, b: dict) -> dict | None:
    """The union of two anchors' maps, or None where one pattern node is on two graph nodes."""
    merged = dict(a)
    for p, g in b.items():
        if p in merged and merged[p] is not g:
            return None
        merged[p] = g
    return merged


def _injective(nodes_map: dict) -> bool:
    """No graph node stands for two pattern nodes: torch's matcher refuses it (the pattern
    `a + b` does not match `x + x`, whose two inputs are one node)."""
    nodes = [g for g in nodes_map.values() if isinstance(g, Node)]
    return len(set(nodes)) == len(nodes)


def _forms_cycle(inner: set) -> bool:
    """Whether a path leaves the matched nodes and comes back (replacing them by one block
    would then need a value computed after it: torch's validate_partition)."""
    stack = [u for g in inner for u in g.users if u not in inner]
    seen: set[Node] = set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        for u in n.users:
            if u in inner:
                return True
            stack.append(u)
    return False


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
    p_returning = p_output.all_input_nodes  # torch's pattern_returning_nodes
    if not p_returning or any(n.op == "placeholder" for n in p_returning):
        raise NotImplementedError("replace_pattern: descent matches patterns whose returned "
                                  "values are computed (not inputs)")  # fmt: skip
    # torch's anchors: the returned nodes only the output reads (one per independent result)
    p_anchors = [n for n in p_returning if len(n.users) == 1]
    p_inner = [n for n in pattern_graph.nodes if n.op not in ("placeholder", "output")]

    matches = _find_matches(original, p_anchors, p_placeholders, p_returning, p_inner,
                            ignore_literals)  # fmt: skip
    if match_filters:  # after the overlap removal, as torch's _replace_pattern
        matches = [m for m in matches if all(f(m, original, pattern_graph)
                                             for f in match_filters)]  # fmt: skip

    results = []
    changed: dict[Node, Any] = {}  # a replaced anchor -> its replacement (later inputs use it)
    for match in matches:
        nodes_map = match.nodes_map
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
        returning = [nodes_map[p] for p in p_returning]
        # torch's insert point: the first reader of a returned value in graph order, else the
        # node after the last returned value
        readers = {u for g in returning for u in g.users}
        insert_point = next((n for n in original.nodes if n in readers), None)
        if insert_point is None:
            last = max(returning, key=list(original.nodes).index)
            insert_point = last.next
        before = set(original.nodes)
        with original.inserting_before(insert_point):
            new_values = original.graph_copy(replacement_graph, val_map)
        if isinstance(new_values, Node):
            new_values = (new_values,)
        if not isinstance(new_values, (tuple, list)) or len(new_values) != len(returning):
            got = len(new_values) if isinstance(new_values, (tuple, list)) else 1
            raise ValueError(
                f"replace_pattern: the pattern returns {len(returning)} values and the "
                f"replacement {got}; they must agree"
            )
        added = [n for n in original.nodes if n not in before]
        for g, new_value in zip(returning, new_values, strict=True):
            g.replace_all_uses_with(new_value)
            changed[g] = new_value
        for p in reversed(p_inner):
            original.erase_node(nodes_map[p])
        results.append(ReplacedPatterns(anchor=p_anchors[0], nodes_map=nodes_map,
                                        replacements=added))  # fmt: skip
    gm.recompile()
    return results
