"""A view of the computation graph behind a tensor: ops, shapes, dtypes and gradient norms.

    >>> g = descent.explain.graph(loss, params=model.named_parameters())
    >>> loss.backward()          # hooks installed by graph() record each node's gradient norm
    >>> print(g)                 # one line per node, inputs first
    >>> open("graph.dot", "w").write(g.to_dot())

The engine frees saved values after backward and a node does not keep its output, so the view
records what it needs when it is built: each node's output shape comes from its consumers'
`in_shapes` (the root's from the tensor itself), and gradient norms come from hooks on the nodes
(read after backward). Leaves get a hook too (removed once it has fired), so their norm is the
gradient of this backward pass, not whatever `.grad` accumulated before. The traversal is an
explicit stack: a 100,000-deep chain is fine.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor

__all__ = ["GraphNode", "GraphView", "graph"]


@dataclass
class GraphNode:
    """One node of the view: an op, or a leaf tensor (a parameter or an input needing grad).

    Attributes:
        id: position in the view (inputs before the ops that use them).
        kind: "op" or "leaf".
        name: the op's class name, or the leaf's parameter name ("leaf" when unnamed).
        shape: the output shape (None if unknown).
        dtype: the output dtype ("?" if it cannot be inferred).
        inputs: ids of the nodes feeding this one (leaves and ops needing grad only).
        grad_norm: L2 norm of the gradient of this node's output (after backward), or None.
    """

    id: int
    kind: str
    name: str
    shape: tuple[int, ...] | None
    dtype: str
    inputs: list[int]
    grad_norm: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class GraphView:
    """The graph of one output tensor; gradient norms fill in once backward has run."""

    def __init__(self, nodes: list[GraphNode], objects: list[Any], root: int) -> None:
        self._nodes = nodes
        self._objects = objects  # the Function node or leaf Tensor behind each GraphNode
        self.root = root
        self._grad_norms: dict[int, float] = {}
        self._leaf_handles: dict[int, Any] = {}
        self._armed = False  # set by the root's hook: leaves record only in that pass

    @property
    def nodes(self) -> list[GraphNode]:
        """The nodes, inputs before the ops that use them, with current gradient norms."""
        self._refresh()
        return self._nodes

    def _refresh(self) -> None:
        for n in self._nodes:
            n.grad_norm = self._grad_norms.get(n.id)
        # leaf hooks that have fired are no longer needed (removed here, never mid-backward)
        for handle in [h for i, h in self._leaf_handles.items() if i in self._grad_norms]:
            handle.remove()
        self._leaf_handles = {
            i: h for i, h in self._leaf_handles.items() if i not in self._grad_norms
        }
        if self._armed and isinstance(self._objects[self.root], Function):
            self._armed = False

    def to_dicts(self) -> list[dict[str, Any]]:
        self._refresh()
        return [n.to_dict() for n in self.nodes]

    def to_json(self) -> str:
        return json.dumps(self.to_dicts())

    def __len__(self) -> int:
        return len(self._nodes)

    def __str__(self) -> str:
        self._refresh()
        rows = [("id", "op", "shape", "dtype", "|grad|", "inputs")]
        for n in self.nodes:
            rows.append(
                (
                    f"#{n.id}",
                    n.name if n.kind == "op" else f"[{n.name}]",
                    "?" if n.shape is None else str(n.shape),
                    n.dtype,
                    "-" if n.grad_norm is None else f"{n.grad_norm:.4g}",
                    ", ".join(f"#{i}" for i in n.inputs),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        head = f"graph of {len(self.nodes)} nodes ([name] = leaf; |grad| after backward)"
        return head + "\n" + "\n".join(lines)

    def to_dot(self) -> str:
        """Graphviz DOT text: ops as ellipses, leaves as boxes, edges from input to consumer."""
        self._refresh()
        out = ["digraph descent {", "  rankdir=BT;", '  node [fontname="Helvetica"];']
        for n in self.nodes:
            shape = "?" if n.shape is None else "x".join(str(s) for s in n.shape) or "scalar"
            label = f"{n.name}\\n{shape} {n.dtype}"
            if n.grad_norm is not None:
                label += f"\\n|grad| {n.grad_norm:.3g}"
            style = "box, style=filled, fillcolor=lightblue" if n.kind == "leaf" else "ellipse"
            if n.id == self.root:
                style += ", penwidth=2"
            out.append(f'  n{n.id} [label="{_escape(label)}", shape={style}];')
        for n in self.nodes:
            for i in n.inputs:
                out.append(f"  n{i} -> n{n.id};")
        out.append("}")
        return "\n".join(out) + "\n"


def _escape(s: str) -> str:
    return s.replace('"', '\\"')


def _norm(a) -> float:
    a = backend.as_numpy(a)
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


def graph(output: Tensor, params=None, record_grads: bool = True) -> GraphView:
    """Build a view of the graph that computed `output`.

    Call it before `output.backward()` to also see each op's gradient norm afterwards.

    Args:
        output: the tensor (usually the loss) whose graph to show.
        params: optional names for leaves: `model.named_parameters()` or a dict name -> tensor.
        record_grads: install hooks that record the gradient norm reaching each op node.

    Returns:
        A GraphView: `str(view)` is a table; `view.to_dot()` is Graphviz DOT.

    Raises:
        ValueError: when `output` has no graph (computed under no_grad or from leaves only).
    """
    names: dict[int, str] = {}
    if params is not None:
        items = params.items() if isinstance(params, dict) else params
        for name, p in items:
            names[id(p)] = name
    root = output._node if output._node is not None else output
    if output._node is None and not output.requires_grad:
        raise ValueError(
            "graph(): the tensor has no graph (computed under no_grad(), or from tensors "
            "without requires_grad=True)"
        )
    # Collect reachable nodes with an explicit stack; record output shapes from consumers.
    seen: dict[int, Any] = {id(root): root}
    shapes: dict[int, tuple[int, ...]] = {id(root): tuple(output.shape)}
    stack = [root]
    while stack:
        obj = stack.pop()
        if not isinstance(obj, Function):
            continue
        for parent, shape in zip(obj.parents, obj.in_shapes):
            if parent is None:
                continue
            shapes.setdefault(id(parent), tuple(shape))
            if id(parent) not in seen:
                seen[id(parent)] = parent
                stack.append(parent)

    # Order: leaves first (in discovery order), then ops by creation index (a topological order).
    objs = list(seen.values())
    leaves = [o for o in objs if not isinstance(o, Function)]
    ops = sorted((o for o in objs if isinstance(o, Function)), key=lambda f: f.index)
    ordered = leaves + ops
    pos = {id(o): i for i, o in enumerate(ordered)}
    dtypes: dict[int, str] = {}
    nodes: list[GraphNode] = []
    for i, o in enumerate(ordered):
        if isinstance(o, Function):
            inputs = [pos[id(p)] for p in o.parents if p is not None]
            dt = _infer_dtype(o, [dtypes.get(j, "?") for j in inputs])
            nodes.append(GraphNode(i, "op", o.name, shapes.get(id(o)), dt, inputs))
        else:
            dt = str(o._data.dtype)
            nodes.append(
                GraphNode(i, "leaf", names.get(id(o), o.name or "leaf"), tuple(o.shape), dt, [])
            )
        dtypes[i] = dt
    view = GraphView(nodes, ordered, pos[id(root)])
    if record_grads:
        for o in ops:
            _add_hook(o, view, pos[id(o)], arm=o is root)
        view._armed = not isinstance(root, Function)
        for o in leaves:
            hook = _recorder(view, pos[id(o)], leaf=True)
            view._leaf_handles[pos[id(o)]] = o.register_hook(hook)
    return view


def _infer_dtype(node: Function, parent_dtypes: list[str]) -> str:
    """The node keeps no output; infer its dtype from what it holds or from its inputs."""
    if node.out_data is not None:
        return str(node.out_data.dtype)
    dt = getattr(node, "dtype", None)  # a cast op carries its target dtype
    if dt is not None:
        try:
            return str(np.dtype(dt))
        except TypeError:
            pass
    saved = node.saved
    if type(saved) is tuple and saved:  # (not saved_tensors_hooks' packed slots)
        floats = [str(t._data.dtype) for t in saved if t._data.dtype.kind in "fV"]
        if floats:
            return max(floats, key=lambda s: np.dtype(s).itemsize)
    known = [d for d in parent_dtypes if d != "?"]
    if known:
        return max(known, key=lambda s: np.dtype(s).itemsize)
    return "?"


def _recorder(view: GraphView, i: int, arm: bool = False, leaf: bool = False):
    """A hook that stores the gradient norm into the view (weakly: a dead view is ignored).

    A leaf hook fires in every backward that reaches the leaf, also through other graphs, so
    leaves record only while the view is armed: the root's hook arms it, and it is disarmed
    when the norms are read.
    """
    ref = weakref.ref(view)

    def hook(g):
        v = ref()
        if v is None:
            return
        if arm:
            v._armed = True
        if leaf and not v._armed:
            return
        v._grad_norms[i] = _norm(g._data)

    return hook


def _add_hook(node: Function, view: GraphView, i: int, arm: bool = False) -> None:
    hook = _recorder(view, i, arm=arm)
    if node.hooks is None:
        node.hooks = []
    node.hooks.append(hook)
