"""The reverse-mode backward pass over the graph that `descent.autograd` records.

`descent.autograd` (the engine: tensors, nodes, `Function`, the op hook point) re-exports
`run_backward` and `_seed` from here; how the pass works is in its docstring ("How it works"):
nodes pop from a heap by descending creation index, every gradient is delivered through one
function that unbroadcasts and accumulates out of place, saved values are released right after
a node's backward, and nothing recurses over the graph. It lives in its own module only to keep
files short (STYLE.md); it is part of the engine's layer.
"""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np

from . import autograd as _ag
from . import backend
from . import grad_fn as _gf
from .array_backward import array_namespace
from .autograd import (
    _FREED,
    _QUIET,
    Function,
    _NoGradView,
    _parent,
    _quiet_off,
    _quiet_on,
    _ZeroGradient,
)
from .autograd import (
    _ZERO_GRAD as ZERO_GRAD,
)
from .autograd import (
    _new_tensor as new_tensor,
)
from .autograd_views import no_grad_view_message
from .grad_mode import _state
from .hooks import (
    _backward_hooks,
    _grad_dtypes,
    _pass_hooks,
    _post_accumulate_hooks,
    _run_pass_hooks,
    run_post_accumulate_hooks,
)


def run_backward(roots, root_grads, *args, **kwargs):
    """Backpropagate from `roots` (Tensors) seeded with `root_grads` (see `_run_backward`),
    with NumPy's floating-point warnings silenced for the whole pass."""
    token = _quiet_on(_QUIET)
    try:
        return _run_backward(roots, root_grads, *args, **kwargs)
    finally:
        _quiet_off(token)


def _run_backward(
    roots,
    root_grads,
    retain_graph: bool = False,
    create_graph: bool = False,
    capture=None,
    accumulate: bool = True,
    run_inputs: bool = False,
):
    """Backpropagate from `roots` (Tensors) seeded with `root_grads`.

    Args:
        roots: output tensors to differentiate.
        root_grads: one gradient per root (arrays when create_graph is False, else Tensors).
        retain_graph: keep saved values so the graph can be traversed again.
        create_graph: record the backward pass so its result can be differentiated.
        capture: optional list of tensors whose total gradients are returned (and not stored
            in `.grad` when `accumulate` is False).
        accumulate: store gradients into the `.grad` of leaves (False for `descent.grad`-style
            functional calls, which must never touch a user's `.grad`).
        run_inputs: with a capture and accumulate False, also run the nodes of the captured
            non-leaves (`backward(inputs=...)`, as PyTorch's; `autograd.grad` leaves them).

    With a capture and accumulate False, only the nodes on a path from the roots to a captured
    tensor run (PyTorch's exec_info): the others get no gradient, so their tensor hooks,
    retain_grad and node hooks do not fire, their saved values are neither checked nor freed,
    and leaves not captured get nothing.

    Returns:
        A list with the captured gradients (None where no gradient reached a tensor).
    """
    if _pass_hooks:  # descent.compile records the pass (hooks.add_pass_hook)
        options = dict(retain_graph=retain_graph, create_graph=create_graph, capture=capture,
                       accumulate=accumulate)  # fmt: skip
        _run_pass_hooks("begin", roots, root_grads, options)
    graph_ns = _ag._graph_namespace if create_graph else None
    grads: dict[Any, Any] = {}  # node -> gradient of its output, until the node is popped
    leaf_grads: dict[Any, Any] = {}  # leaf tensor -> accumulated gradient of this pass
    heap: list = []  # (-index, node): the largest creation index pops first

    capture_nodes: dict[Any, list[int]] = {}
    capture_leaves: dict[Any, list[int]] = {}
    captured: list[Any] = [None] * (len(capture) if capture else 0)
    if capture:
        for i, t in enumerate(capture):
            if t._node is not None:
                capture_nodes.setdefault(t._node, []).append(i)
            else:
                capture_leaves.setdefault(t, []).append(i)
    pending_nodes = len(capture_nodes)
    run = None  # the nodes that run (None: all reached)
    if capture and not accumulate:
        run = _nodes_to_run(roots, capture_nodes, capture_leaves, run_inputs)

    prev_mode = _state.enabled
    _state.enabled = create_graph  # the backward ops are recorded only under create_graph
    # a saved input that went stale since (ops/view_write.StaleView) is read by its node's
    # create_graph backward as PyTorch's unpacked saved value: no stale-view error there
    in_backward = _ag._backward_state  # (this thread's)
    prev_in_backward, in_backward.on = in_backward.on, True
    np_ns = array_namespace(np)
    ndarray = np.ndarray
    heappop, heappush = heapq.heappop, heapq.heappush
    backward_hooks = _backward_hooks
    # Slices' gradients are delivered lazily (`_Slices`) on the plain path only: no tool
    # watching each node's gradients (descent.compile's recorder, anomaly mode, pass hooks).
    plain = not (create_graph or backward_hooks or _pass_hooks)
    getitem, reshape = _lazy_types() if plain else (None, None)
    prev_consume, in_backward.consume = in_backward.consume, plain and not retain_graph

    def deliver(node, parent, gx, shape, ops) -> None:
        """The ONE delivery: unbroadcast gx to its input's shape and add it to what `parent`
        (a node or a leaf tensor) has received this pass. A function, not inlined: calling it
        costs less than zipping a one-input node's 1-tuples."""
        if gx.shape != shape:
            gx = _sum_to_checked(node, gx, shape, ops)  # the one unbroadcast
        # Accumulate out of place (`prev + gx`, never `+=`): gx may be an array that another
        # gradient or a saved value shares.
        if isinstance(parent, Function):
            if run is not None and parent not in run and parent not in capture_nodes:
                return  # (not on a path to a captured tensor: PyTorch's engine drops it)
            prev = grads.get(parent)
            if prev is None:
                grads[parent] = gx
                heappush(heap, (-parent.index, parent))  # its first gradient: queue it
            else:
                if type(prev) in _DEFERRED:  # slices' gradients so far, then this one
                    prev = prev.value()
                grads[parent] = gx if type(prev) is _ZeroGradient else prev + gx
        elif type(getattr(parent, "_view_base", None)) is not _NoGradView:  # (see _dead)
            if run is not None and parent not in capture_leaves:
                return
            prev = leaf_grads.get(parent)
            leaf_grads[parent] = gx if prev is None or type(prev) is _ZeroGradient else prev + gx

    def deliver_zero(parent, shape, like, node=None) -> None:
        """A known-zero gradient for `parent` (of its shape, in the dtype of `like`, a gradient
        or a _ZeroGradient): kept only where nothing came yet. Passed by a broadcasting `node`
        to an input of another shape, it is real zeros: PyTorch's sum_to materializes its zero
        tensor (outer(y, z) gives nan through an infinite derivative below, y + z does not)."""
        if node is not None and node.broadcasts and type(like) is _ZeroGradient \
                and like.shape is not None and like.shape != shape:  # fmt: skip
            z = _ZeroGradient(shape, like.dtype, like.xp).materialize(create_graph)
            deliver(node, parent, z, shape, None)
            return
        if type(like) is not _ZeroGradient:
            data = like._data if create_graph else like
            like = _ZeroGradient(None, data.dtype, backend.get_array_module(data))
        z = _ZeroGradient(shape, like.dtype, like.xp)
        if run is not None and parent not in run and parent not in capture_nodes \
                and parent not in capture_leaves:  # fmt: skip
            return
        if isinstance(parent, Function):
            if parent not in grads:
                grads[parent] = z
                heappush(heap, (-parent.index, parent))
        elif parent not in leaf_grads:
            leaf_grads[parent] = z

    def run_group(node, gy) -> bool:
        """The pieces of one split / chunk / unbind (`node.group`, grad_fn.PieceGroup) as
        PyTorch's one node over them (SplitBackward0, UnbindBackward0, ...). Run when its first
        piece pops (the highest index: the pieces are made together, so every consumer of
        every piece has delivered): it takes each piece's gradient (the others are marked
        `_TAKEN`), runs each piece's tensor hooks, retain_grad and capture, then the shared
        node's pre-hooks with all of them (None for a piece no gradient reached), and sends x
        their cat (`pieces_grad`: a piece's -0.0 kept, zeros where none came) through the
        node's post-hooks, delivered once. True when everything asked for is known."""
        nonlocal pending_nodes
        group = node.group
        nodes = group.nodes()
        gs: list = []
        for p in nodes:
            g = None if p is None else gy if p is node else grads.pop(p, None)
            if g is not None and p is not node:
                grads[p] = _TAKEN
            gs.append(g)
        hooks = group.hooks
        runs = run is None or node in run
        watched = False  # a piece with tensor hooks or retain_grad
        for k, p in enumerate(nodes):
            g = gs[k]
            if g is None:
                continue
            kind = type(g)
            if kind is _ZeroGradient:
                g = g.materialize(create_graph)
            elif kind is _Slices:
                g = g.value()
            elif kind is _Reshaped and (hooks or p.hooks is not None or p.retained is not None
                                        or capture_nodes):  # fmt: skip
                g = g.value()
            gs[k] = g
            watched = watched or p.hooks is not None or p.retained is not None
        if watched:
            gs = _run_piece_hooks(nodes, gs, group.order, create_graph)
        if capture_nodes:
            for p, g in zip(nodes, gs):
                if g is not None and p in capture_nodes:
                    for i in capture_nodes[p]:
                        captured[i] = g if create_graph else new_tensor(g)
                    pending_nodes -= 1
        if capture_nodes and pending_nodes == 0 and not capture_leaves and not accumulate \
                and not run_inputs:  # fmt: skip
            return True
        if not runs:
            return False
        outs = None
        if hooks:  # the shared node's pre-hooks see (and may replace) every piece's gradient
            outs = tuple(g if g is None or create_graph else new_tensor(g) for g in gs)
            for h in hooks:
                pre = getattr(h, "__wrapped_prehook__", None)
                if pre is not None:
                    r = pre(outs)
                    if r is not None:
                        if len(r) != len(outs):
                            raise RuntimeError(
                                f"pre-hook of {type(node).__name__} returned {len(r)} "
                                f"gradients; the node has {len(outs)} outputs"
                            )
                        outs = tuple(r)
            gs = [g if g is None or create_graph else g._data for g in outs]
        first = next((g for g in gs if g is not None), None)
        if first is None:
            return False
        if create_graph:
            ops = graph_ns
        elif type(first) is ndarray or type(first) is _Reshaped:
            ops = np_ns
        else:
            ops = array_namespace(backend.get_array_module(first))
        shape = node.in_shapes[0]
        parent = node.parents[0]
        per = None  # summed groups: (piece, gradient, its input's gradient), descending index
        if run is not None and not (parent in run or parent in capture_nodes
                                    or parent in capture_leaves):  # fmt: skip
            gx = None  # x's gradient is not needed (backward(inputs=[piece])): PyTorch's None
        elif group.summed:  # aminmax: each result's backward over x, summed (commutative)
            per = _summed_pieces(nodes, gs, ops, create_graph)
            gx = None
            for _, _, g in per:
                gx = g if gx is None else gx + g
        elif any(type(g) is _Reshaped for g in gs):
            gx = _cat_reshaped(gs, shape, group.idxs)
        else:
            gx = ops.pieces_grad(gs, shape, group.idxs)
        if hooks and any(type(h) is _gf._PostHook for h in hooks):
            ins = (gx if gx is None or create_graph else new_tensor(gx),)
            for h in hooks:
                if type(h) is _gf._PostHook:
                    r = h.fn(ins, outs)
                    if r is not None:
                        if len(r) != 1:
                            raise RuntimeError(
                                f"hook of {type(node).__name__} returned {len(r)} gradients; "
                                "the node has 1 input"
                            )
                        ins = tuple(r)
            gx = ins[0] if ins[0] is None or create_graph else ins[0]._data
        if backward_hooks:  # each piece as its own node (the compile recorder, anomaly mode)
            if per is None:
                per = [(p, g, None if group.summed else p.backward(g, ops))
                       for p, g in reversed(list(zip(nodes, gs))) if g is not None]  # fmt: skip
            for p, g, gxp in per:
                for hook in tuple(backward_hooks):
                    hook(p, g, gxp)
        if not retain_graph:
            for p in nodes:
                if p is not None and p._saves:
                    p._free_saved()
        if parent is not None and gx is not None:
            deliver(node, parent, gx, shape, ops)
        return False

    try:
        for root, g in zip(roots, root_grads):  # the seeds: delivered like any gradient
            target = _parent(root)
            if target is not None:
                deliver(None, target, g, g.shape, None)
        while heap:
            node = heappop(heap)[1]
            # Every consumer has delivered by now (it has a larger index): gy is complete.
            gy = grads.pop(node)
            if node.group is not None:  # a piece of split / chunk / unbind: one step for all
                if gy is not _TAKEN and run_group(node, gy):
                    break
                continue
            if type(gy) is _Slices:
                gy = gy.value()
            elif type(gy) is _Reshaped and (node.hooks is not None or node.retained is not None
                                            or capture_nodes):  # fmt: skip
                gy = gy.value()  # (a slice's gradient, read here: stays lazy only for _Slices)
            zero_in, z = (), None  # the inputs a known-zero gy passes to unchanged; the zero
            if type(gy) is _ZeroGradient:  # only known-zero gradients reached this node
                zero_in = node.zero_passes
                if zero_in is True:
                    captures = capture_nodes and node in capture_nodes
                    if captures or node.hooks is not None or node.retained is not None:
                        # a non-leaf reached by known zeros only: its hooks, retain_grad and
                        # autograd.grad see zeros (PyTorch's zero tensor is a defined
                        # gradient), not nothing (grad2 fuzz, session 28); its parents still
                        # get the known zero
                        zg = gy.materialize(create_graph)
                        if node.hooks is not None or node.retained is not None:
                            zg = _run_node_hooks(node, zg, create_graph, run is None or node in run)
                        if captures:
                            for i in capture_nodes[node]:
                                captured[i] = zg if create_graph else new_tensor(zg)
                            pending_nodes -= 1
                    for parent, shape in zip(node.parents, node.in_shapes):
                        if parent is not None:
                            deliver_zero(parent, shape, gy, node)
                    continue
                zero_in, z, gy = zero_in or (), gy, gy.materialize(create_graph)
            runs = run is None or node in run
            if node.hooks is not None or node.retained is not None:
                gy = _run_node_hooks(node, gy, create_graph, runs)
            if capture_nodes and node in capture_nodes:
                for i in capture_nodes[node]:
                    captured[i] = gy if create_graph else new_tensor(gy)
                pending_nodes -= 1
                if pending_nodes == 0 and not capture_leaves and not accumulate and not run_inputs:
                    break  # everything asked for is known; the rest of the graph is not needed
            if not runs:
                continue  # a captured input's node that nothing asked for needs (autograd.grad)
            saved = node.saved
            if saved is not None:
                if saved is _FREED:
                    if _live(node):
                        raise RuntimeError(node._freed_message())
                    # PyTorch saved nothing (no input whose gradient reads the saved values
                    # needs one): the node runs again for its other inputs (fmod's a), if any
                    if all(_dead(p) for p in node.parents):
                        continue
                else:
                    versions = node.versions
                    # One comparison for the common one-input case; zip only for more inputs.
                    if saved[0]._version != versions[0] or len(saved) > 1:
                        for i, (t, v) in enumerate(zip(saved, versions)):
                            if t._version != v and (_needed(node, i) or _no_grad_view(t)):
                                raise RuntimeError(_modified_message(node, t, v))
            if create_graph:
                if not node.differentiable_backward:
                    raise RuntimeError(_no_create_graph_message(node))
                ops = graph_ns
            elif type(gy) is ndarray or type(gy) is _Reshaped:  # NumPy: fetched once per pass
                ops = np_ns
            else:
                ops = array_namespace(backend.get_array_module(gy))
            if (
                node.op_class is getitem  # (the op, also when grad_fn renamed the node)
                and z is None
                and node.hooks is None
                and (type(gy) is ndarray or type(gy) is _Reshaped)
            ):
                # x[a:b] along one axis (split, chunk): its zeros-padded gradient is deferred
                # and the parent's slices are summed at once when it is read (`_Slices`)
                parent = node.parents[0]
                if isinstance(parent, Function) and node.basic:
                    span = _slice_span(node.idx, node.in_shapes[0])
                    if span is not None:
                        prev = grads.get(parent)
                        if prev is None:
                            grads[parent] = _Slices(node.in_shapes[0], node.idx, span, gy)
                            heappush(heap, (-parent.index, parent))
                            continue
                        if type(prev) is _Slices:
                            prev.add(node.idx, span, gy)
                            continue
            elif (node.op_class is reshape and z is None and node.hooks is None
                  and type(gy) is ndarray and not gy.flags.c_contiguous):  # fmt: skip
                # A slice's view(...) (attention's heads): the reshape back would copy gy; the
                # slice's node gets gy and the shape instead (`_Reshaped`), and `_Slices`
                # writes gy straight into the sum, reshaped as a view of its place there
                parent = node.parents[0]
                if type(parent) is getitem and parent not in grads:
                    grads[parent] = _Reshaped(gy, node.in_shapes[0])
                    heappush(heap, (-parent.index, parent))
                    continue
            if type(gy) is _Reshaped:
                gy = gy.value()
            gxs = node.backward(gy, ops) if z is None else node.zero_backward(gy, ops)
            if node.hooks is not None:  # grad_fn.register_hook's post-hooks (grad_fn.py)
                gxs = _gf.run_post_hooks(node, gy, gxs, create_graph, new_tensor, ZERO_GRAD)
            if backward_hooks:
                for hook in tuple(backward_hooks):
                    hook(node, gy, gxs)
            if node._saves and not retain_graph:
                # The one release, as soon as the node's backward has run: free what it saved
                # (the saved inputs, the saved output, every saved_slots array), on the fast
                # and the create_graph path alike. A later backward through it finds _FREED.
                node._free_saved()
            parents = node.parents
            if type(gxs) is not tuple:  # one input (most ops) may return its gradient bare
                if len(parents) != 1:
                    raise _count_error(node, 1)
                parent = parents[0]
                if parent is not None and gxs is not None:
                    if gxs is ZERO_GRAD:
                        deliver_zero(parent, node.in_shapes[0], gy)
                    else:
                        deliver(node, parent, gxs, node.in_shapes[0], ops)
                continue
            if len(gxs) != len(parents):
                raise _count_error(node, len(gxs))
            for i, (parent, gx, shape) in enumerate(zip(parents, gxs, node.in_shapes)):
                if parent is not None and gx is not None:
                    if gx is ZERO_GRAD or (zero_in and zero_in[i]):
                        deliver_zero(parent, shape, z if zero_in else gy, node)
                    else:
                        deliver(node, parent, gx, shape, ops)
    finally:
        _state.enabled = prev_mode
        in_backward.on = prev_in_backward
        in_backward.consume = prev_consume

    if _pass_hooks:
        _run_pass_hooks("end", leaf_grads, None, None)
    # Leaves: hooks see the total gradient of this pass, then it is stored or captured.
    seen: set[int] = set()
    for leaf, g in leaf_grads.items():
        if type(g) is _ZeroGradient:  # reached by known-zero gradients only: zeros
            g = backend.get_array_module(leaf._data).zeros_like(leaf._data)
            if create_graph:
                g = new_tensor(g)
        if leaf._hooks:
            gt = g if create_graph else new_tensor(g)
            for hook in leaf._hooks:
                r = hook(gt)
                if r is not None:
                    gt = r
            g = gt if create_graph else gt._data
        cast = True  # to the leaf's dtype, unless Tensor.grad_dtype says otherwise
        if _grad_dtypes and id(leaf) in _grad_dtypes:
            g, cast = _to_grad_dtype(leaf, g, create_graph), False
        if leaf in capture_leaves:
            if cast and g.dtype != leaf._data.dtype and leaf._data.dtype.kind == "c":
                # a real gradient of a complex leaf (a known zero materialized at a real op's
                # output and passed on: abs(x).sgn()): complex, as PyTorch's engine casts
                # each gradient to its input's dtype (.grad gets the cast below)
                g = g.to(leaf.dtype) if create_graph else g.astype(leaf._data.dtype)
            for i in capture_leaves[leaf]:
                captured[i] = g if create_graph else new_tensor(g)
        if not accumulate:
            continue
        if create_graph:
            leaf.grad = g if leaf.grad is None else leaf.grad + g
            continue
        if type(g) is not type(leaf._data) and backend.is_meta(leaf._data):
            g = backend.to_device(g, "meta")  # a meta leaf's gradient is meta: shape only
        if cast and g.dtype != leaf._data.dtype:
            if g.dtype.kind == "c" and leaf._data.dtype.kind != "c":
                g = g.real  # a real leaf keeps the real part of a complex gradient (PyTorch)
            g = g.astype(leaf._data.dtype)
        if leaf.grad is None:
            # Never store an array that another gradient (or a broadcast view) shares: the
            # optimizer updates .grad in place (e.g. weight decay) and would change both.
            if id(g) in seen or not backend.owns_data(g):
                g = g.copy()
            seen.add(id(g))
            leaf.grad = new_tensor(g)
        else:
            leaf.grad = new_tensor(leaf.grad._data + g)
    if _post_accumulate_hooks and accumulate:  # Tensor.register_post_accumulate_grad_hook
        # PyTorch's engine runs hooks with grad mode = create_graph: an optimizer step in the
        # hook (p.add_(p.grad, alpha=-lr), its docstring's example) writes the leaf in place
        # unrecorded instead of raising the leaf in-place error.
        prev_mode = _state.enabled
        _state.enabled = create_graph
        try:
            run_post_accumulate_hooks(tuple(leaf_grads))
        finally:
            _state.enabled = prev_mode
    return captured


_LAZY: list = []  # [(ops.indexing.GetItem, ops.shape.Reshape)], set by descent.ops at import


class _Unregistered:
    """Stands in for GetItem/Reshape before descent.ops registered them: no node is one."""


def register_slice_types(get_item: type, reshape: type) -> None:
    """descent.ops hands the engine its GetItem and Reshape classes (the ops import the
    engine, not the other way round: the layers of pyproject.toml's import contract)."""
    _LAZY[:] = [(get_item, reshape)]


def _lazy_types():
    """(ops.indexing.GetItem, ops.shape.Reshape), as descent.ops registered them."""
    return _LAZY[0] if _LAZY else (_Unregistered, _Unregistered)


class _Reshaped:
    """The gradient of a slice x[a:b] that a view/reshape of it delivered: gy and the slice's
    shape, `value()` being what Reshape's backward returns (gy.reshape(shape), a copy where gy
    is not contiguous). `_Slices` adds gy into its place without that copy."""

    __slots__ = ("g", "shape", "dtype")

    def __init__(self, g, shape) -> None:
        self.g, self.shape, self.dtype = g, shape, g.dtype

    def value(self):
        return self.g.reshape(self.shape)


def _slice_span(idx, shape):
    """(axis, start, stop) where the basic index `idx` is x[..., start:stop] on one axis with
    step 1 and every other axis whole (split's and chunk's pieces), else None."""
    if type(idx) is not tuple or len(idx) > len(shape):
        return None
    span = None
    for i, s in enumerate(idx):
        if type(s) is not slice:
            return None
        if s.start is None and s.stop is None and s.step is None:
            continue
        if span is not None:
            return None
        lo, hi, step = s.indices(shape[i])
        if step != 1:
            return None
        span = (i, lo, max(hi, lo))
    return span


class _Slices:
    """The gradients that slices x[a:b] on one axis of a node's output delivered to it, before
    anything else did, kept as they came until the node's gradient is read (`value`).

    Each slice's gradient is zeros of x's shape with its piece at its index (GetItem's
    backward, `index_grad`) and the engine adds them in delivery order; `value` gives those
    bits. One slice: that array. Two or more on disjoint ranges: every element of the sum is
    its piece's value plus +0.0s, which is `g + 0.0` (IEEE addition is commutative, and
    adding +0.0 changes only -0.0, to +0.0), and +0.0 where no piece is: written in one pass
    per piece into one array, instead of a zeros array per piece and a full-size sum per
    piece after the first (split's three pieces of baby-gpt's qkv: 308 -> 108 us hot); pieces
    that arrive as transposed views (attention's heads) are copied into place and get their
    + 0.0 in one pass over the whole array. Any other mix (overlapping ranges, other axes or
    dtypes) is summed as the engine did."""

    __slots__ = ("shape", "parts", "disjoint")

    def __init__(self, shape, idx, span, g) -> None:
        self.shape = shape
        self.parts = [(idx, span, g)]
        self.disjoint = g.dtype.kind == "f"

    def add(self, idx, span, g) -> None:
        if self.disjoint:
            _, span0, g0 = self.parts[0]
            self.disjoint = (
                span[0] == span0[0]
                and g.dtype == g0.dtype
                and all(span[2] <= s[1] or s[2] <= span[1] for _, s, _ in self.parts)
            )
        self.parts.append((idx, span, g))

    def value(self):
        parts = self.parts
        if len(parts) > 1 and self.disjoint:
            axis, g0 = parts[0][1][0], parts[0][2]
            whole = sum([s[2] - s[1] for _, s, _ in parts]) == self.shape[axis]
            out = (np.empty if whole else np.zeros)(self.shape, g0.dtype)
            zero = g0.dtype.type(0)
            if any(type(g) is _Reshaped for _, _, g in parts):
                # Attention's heads: each piece a transposed view whose runs are short (hs
                # values), where NumPy's copy loop costs half its add loop. Copied into place,
                # then + 0.0 in one pass over all of out: the same bits (zeros stay +0.0);
                # baby-gpt's three (12, 64, 4, 32) pieces 224-265 -> 122 us hot.
                if _heads_in_halves(parts, out, axis, zero):
                    return out
                _copy_pieces(parts, out)
                return np.add(out, zero, out=out)
            for idx, _, g in parts:
                np.add(g, zero, out=out[idx])
            return out
        acc = None
        for idx, _, g in parts:
            if type(g) is _Reshaped:
                g = g.value()
            full = array_namespace(np).index_grad(g, self.shape, idx, True)  # GetItem's
            acc = full if acc is None else acc + full
        return acc


def _heads_in_halves(parts, out, axis, zero) -> bool:
    """`_Slices.value`'s attention-heads case (every piece a `_Reshaped` view that writes into
    its place of `out`) as two halves of the leading axis at once at two BLAS threads
    (descent/halves.py): each half copies its rows of every piece and adds 0.0 to them, so each
    value is still its piece's + 0.0 (`zero` None: copied only, `_cat_reshaped`). False, with
    nothing written, where it runs whole."""
    from . import halves  # noqa: PLC0415

    b = out.shape[0] if out.ndim else 0
    if axis == 0 or b < 2 or out.size < halves.MIN_VALUES or type(out) is not np.ndarray:
        return False
    views = []
    for idx, _, g in parts:
        if type(g) is not _Reshaped or type(g.g) is not np.ndarray or g.g.shape[:1] != (b,):
            return False
        view = out[idx].reshape(g.g.shape)
        if not np.may_share_memory(view, out):
            return False
        views.append((view, g.g))
    if not halves.allowed(out.size):
        return False

    def part(i0, i1):
        for view, g in views:
            np.copyto(view[i0:i1], g[i0:i1])
        if zero is not None:
            np.add(out[i0:i1], zero, out=out[i0:i1])

    halves.run(((0, b // 2), (b // 2, b)), part)
    return True


def _cat_reshaped(gs, shape, idxs):
    """`pieces_grad` for NumPy pieces some of which are `_Reshaped` (attention's heads: q, k, v
    of one split, each a transposed view whose reshape back would copy it): each written
    straight into its place of the result (in two halves of the batch where halves run), no
    zero-padded arrays and no additions: PyTorch's cat, -0.0 kept."""
    got = [g.g if type(g) is _Reshaped else g for g in gs if g is not None]
    dtype = got[0].dtype if len(got) == 1 else np.result_type(*[g.dtype for g in got])
    out = (np.empty if len(got) == len(gs) else np.zeros)(shape, dtype)
    parts = [(idx, None, g) for idx, g in zip(idxs, gs) if g is not None]
    if _heads_in_halves(parts, out, len(idxs[0]) - 1, None):
        return out
    _copy_pieces(parts, out)
    return out


def _copy_pieces(parts, out) -> None:
    """Each piece's gradient copied into its place `idx` of `out`; a `_Reshaped` one straight
    from its transposed view through a reshape of its place where the strides allow."""
    for idx, _, g in parts:
        dst = out[idx]
        if type(g) is _Reshaped:
            view = dst.reshape(g.g.shape)  # a view of out where the strides allow
            if np.may_share_memory(view, out):
                np.copyto(view, g.g)
                continue
            g = g.value()
        np.copyto(dst, g)


# a piece of a split whose gradient its group took already (run_group): skipped when popped
_TAKEN = object()

# The engine's deferred gradients that read as an array through `value()` (not
# _ZeroGradient: a known zero is replaced by the next gradient, never added to it)
_DEFERRED = (_Slices, _Reshaped)


def _to_grad_dtype(leaf, g, create_graph):
    """g (an array, or a Tensor under create_graph) in leaf.grad_dtype's dtype (PyTorch
    2.13's AccumulateGrad cast); unchanged where grad_dtype is None (any dtype)."""
    from .hooks import get_grad_dtype

    want = get_grad_dtype(leaf)
    if want is None or (want == leaf.dtype and g.dtype == leaf._data.dtype):
        return g
    if create_graph:
        return g.to(want)
    return new_tensor(g).to(want)._data


def _sum_to_checked(node, gx, shape, ops):
    """The engine's one unbroadcast: sum gx back to its input's shape, or name the culprit."""
    try:
        return ops.sum_to(gx, shape)
    except ValueError:
        raise RuntimeError(
            f"'{node.name}'.backward produced a gradient of shape {tuple(gx.shape)} for an input "
            f"of shape {shape}"
        ) from None


def _count_error(node, n: int) -> RuntimeError:
    return RuntimeError(
        f"internal error in '{node.name}'.backward: returned {n} gradients for "
        f"{len(node.parents)} inputs with shapes {node.in_shapes}"
    )


def _dead(p) -> bool:
    """Whether parent p gets no gradient: None, or a view made under no_grad of a tensor that
    requires grad (it requires grad too, but as PyTorch's it has no gradient edge: its .grad
    stays None, its hooks never run, and the ops using it save nothing for it)."""
    return p is None or (not isinstance(p, Function)
                         and type(getattr(p, "_view_base", None)) is _NoGradView)


def _live(node) -> bool:
    """Whether some input of node gets a gradient (else PyTorch saved nothing for backward);
    for an op whose saved values only some inputs' gradients read (`saved_for`: fmod's
    divisor), whether one of those does."""
    parents = node.parents
    need = node.saved_for
    if need is not None:
        return not all(_dead(parents[i]) for i in need)
    return not all(_dead(p) for p in parents)


def _needed(node, i: int) -> bool:
    """Whether backward reads saved input i. For an op whose inputs' gradients each need only
    the other inputs (`cross_saved`: a * b, a @ b, linear), input i is read only when another
    input gets a gradient: PyTorch saves it only then, so an in-place change of an input whose
    partners are constants is no error there (y = x * 2; loss = (y * c).sum(); y.mul_(0)).
    A tuple of flags says it per input (a / b: a is read for b's gradient only, b for both:
    `(True, False)`, PyTorch's DivBackward0/2 save self only when other requires grad).
    An op whose backward reads only some of its saved inputs names them in `read_inputs`
    (where's condition, masked_fill's mask): the others' versions are not checked."""
    read = getattr(node, "read_inputs", None)
    if read is not None and i not in read:
        return False
    cross = getattr(node, "cross_saved", False)
    if not cross or (type(cross) is tuple and not cross[i]):
        return _live(node)
    parents = node.parents
    return any(not _dead(p) for j, p in enumerate(parents) if j != i)


def _no_grad_view(t) -> bool:
    """Whether saved tensor t is a view made under no_grad of a tensor that requires grad:
    PyTorch saved it (the op's result requires grad), and unpacking it in backward reads its
    grad_fn, which raises once the view's memory was written since (handle_view_on_rebase),
    whether or not some input gets a gradient."""
    return type(getattr(t, "_view_base", None)) is _NoGradView


def _no_create_graph_message(node) -> str:
    """The error for create_graph=True through a node whose backward is an array kernel."""
    return (
        f"'{node.name}' does not support create_graph=True (higher-order gradients): its "
        "backward is a fused array kernel. Use the composite form of the op for higher-order "
        "derivatives."
    )


def _modified_message(node, t, v) -> str:
    if _no_grad_view(t):
        return no_grad_view_message(t.shape)
    return (
        f"an input of '{node.name}' (shape {tuple(t.shape)}) was modified in place after the op "
        f"saved it for backward (version {v} -> {t._version}). Clone it before the in-place "
        "change (x = x.clone()) or do the in-place change before using it."
    )


def _run_node_hooks(node, gy, create_graph, runs=True):
    """Tensor hooks and retain_grad() of a non-leaf, then grad_fn.register_prehook's hooks:
    they see its total gradient as a Tensor. PyTorch's order (engine.cpp): the tensor hooks,
    then the retained .grad (which sees what they returned), then the node's pre-hooks, each
    kind in registration order. A node that does not run (`runs` False: an autograd.grad input
    that nothing else needs) gets its tensor hooks and retain_grad only, as PyTorch's
    call_tensor_pre_hooks."""
    gt = gy if create_graph else new_tensor(gy)
    hooks = node.hooks or ()
    prehooks = False
    for hook in hooks:
        if type(hook) is _gf._PostHook:
            continue
        if hasattr(hook, "__wrapped_prehook__"):
            prehooks = True
            continue
        r = hook(gt)
        if r is not None:
            gt = r
    _retain(node, gt, create_graph)
    if prehooks and runs:
        for hook in hooks:
            if hasattr(hook, "__wrapped_prehook__"):
                r = hook(gt)
                if r is not None:
                    gt = r
    return gt if create_graph else gt._data


def _summed_pieces(nodes, gs, ops, create_graph) -> list:
    """A summed group's pieces (aminmax's results, `grad_fn.PieceGroup.summed`): each one's
    backward over the shared input, in descending index (the order the engine ran them as
    separate nodes), after the checks the engine makes on a node's saved values. Returns
    [(piece, its gradient, its input's gradient)] for the pieces a gradient reached."""
    out = []
    for p, g in reversed(list(zip(nodes, gs))):
        if g is None or p is None:
            continue
        saved = p.saved
        if saved is _FREED:
            raise RuntimeError(p._freed_message())
        if saved is not None:
            for i, (t, v) in enumerate(zip(saved, p.versions)):
                if t._version != v and (_needed(p, i) or _no_grad_view(t)):
                    raise RuntimeError(_modified_message(p, t, v))
        if create_graph and not p.differentiable_backward:
            raise RuntimeError(_no_create_graph_message(p))
        gx = p.backward(g, ops)
        if type(gx) is tuple:
            gx = gx[0]
        if gx is not None and gx is not ZERO_GRAD:
            out.append((p, g, gx))
    return out


def _run_piece_hooks(nodes, gs, order, create_graph) -> list:
    """The tensor hooks and retain_grad() of split's pieces (`run_group`), as PyTorch runs a
    node's outputs' hooks: every piece's tensor hooks in registration order (`order`: (output
    index, hook)), then each retained piece's .grad; a piece no gradient reached gets none."""
    gts = [g if g is None or create_graph else new_tensor(g) for g in gs]
    ran: dict = {}  # (output index, id(hook)) -> times run (a hook registered twice runs twice)
    for k, hook in order:
        p = nodes[k]
        if gts[k] is None or p is None or p.hooks is None:
            continue
        key = (k, id(hook))
        n = ran.get(key, 0)
        if n >= sum(h is hook for h in p.hooks):  # removed (its handle's remove())
            continue
        ran[key] = n + 1
        r = hook(gts[k])
        if r is not None:
            gts[k] = r
    for p, gt in zip(nodes, gts):
        if gt is not None and p is not None:
            _retain(p, gt, create_graph)
    return [g if g is None or create_graph else g._data for g in gts]


def _nodes_to_run(roots, capture_nodes, capture_leaves, run_inputs: bool) -> set:
    """The nodes on a path from the roots to a captured tensor (PyTorch's exec_info `needed`):
    a node runs when one of its parents is a captured leaf, or a node that runs or is captured.
    With run_inputs, the captured nodes run too. Parents have smaller creation indexes, so one
    walk in index order decides each node after its parents; nothing recurses."""
    stack = [p for p in map(_parent, roots) if isinstance(p, Function)]
    seen = set(stack)
    while stack:
        for p in stack.pop().parents:
            if p is not None and p not in seen and isinstance(p, Function):
                seen.add(p)
                stack.append(p)
    run: set = set()
    for node in sorted(seen, key=_index):
        if node in run:  # (a piece of a split whose group runs: added with the first)
            continue
        if not (run_inputs and node in capture_nodes):
            for p in node.parents:
                if p is None:
                    continue
                if isinstance(p, Function):
                    if p in run or p in capture_nodes:
                        break
                elif p in capture_leaves:
                    break
            else:
                continue
        run.add(node)
        if node.group is not None:  # split's pieces are one node: all of them run (every
            # piece's gradient reaches it, as PyTorch's node's input buffer); they precede
            # every consumer of any of them, so none of those is decided yet
            run.update(p for p in node.group.nodes() if p is not None and p in seen)
    return run


def _index(node) -> int:
    return node.index


def _retain(node, gt, create_graph):
    """retain_grad(): accumulate the gradient the tensor hooks left into the tensor's .grad."""
    if node.retained is not None:
        t = node.retained()
        if t is not None:
            if t.grad is None:
                t.grad = gt if create_graph else new_tensor(gt._data.copy())
            else:
                t.grad = t.grad + gt if create_graph else new_tensor(t.grad._data + gt._data)


def _seed(out, gradient, create_graph: bool, where: str):
    """The initial gradient of an output: ones for a scalar, else the user's `gradient`."""
    if not out.requires_grad:
        raise RuntimeError(
            f"{where}(): the tensor of shape {tuple(out.shape)} does not require grad and "
            "has no graph "
            "(was it computed under no_grad(), or from inputs without requires_grad=True?)"
        )
    if gradient is None:
        if out.numel() != 1:
            made_by = f" (made by '{out._node.name}')" if out._node is not None else ""
            raise RuntimeError(
                f"{where}() on a non-scalar tensor of shape {tuple(out.shape)}{made_by}: pass "
                "gradient= (a tensor of that shape), or reduce it first (e.g. .sum())"
            )
        xp = backend.get_array_module(out._data)
        g = xp.ones_like(out._data)
    else:
        g = gradient._data if isinstance(gradient, _ag._tensor_class) else np.asarray(gradient)
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(
                f"{where}(): gradient has shape {tuple(g.shape)} but the output has shape "
                f"{tuple(out.shape)}"
            )
        if g.dtype != out._data.dtype:
            g = g.astype(out._data.dtype)
    if create_graph:
        if isinstance(gradient, _ag._tensor_class):
            return gradient
        return new_tensor(g)
    return g
