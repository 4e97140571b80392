"""torch.autograd.graph: hooks on the tensors that ops save for backward.

    with descent.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = (x * w).sin()          # each saved tensor t is kept as pack(t)
    y.sum().backward()             # ... and read back as unpack(packed) when backward uses it

`save_on_cpu()` is the pair that moves saved tensors to host memory (pack: `t.to("cpu")` with
the tensor's device remembered; unpack: back to that device); on the CPU it changes nothing.
`disable_saved_tensors_hooks(message)` makes entering `saved_tensors_hooks` raise
`RuntimeError(message)` inside it, as in PyTorch.

The hooks are per thread, as PyTorch's (its SavedTensorDefaultHooks state is thread-local):
a context and a `disable_saved_tensors_hooks` block act on the ops of the thread that opened
them only (before session 22 they packed every thread's saved tensors).

How it attaches to the engine, at no cost when no hooks are active: `autograd.record_node`
tests one module-level variable (`autograd._saved_hooks`: `_DISPATCH` while a context is open
in any thread, else None) and, when set, calls its `pack_node`, which finds the calling
thread's innermost context (`_active_saved_hooks`) and has it replace what the node saved
(`node.saved`, the inputs; `node.out_data`, the output) by `autograd.PackedSaved` tuples of
`_Slot`s. The
node's `inputs()` / `output()` unpack them each time backward reads them (one type test there).
Unpack belongs to the slot, so a backward after the `with` block still unpacks. A ctx-style
custom function's `ctx.save_for_backward` packs the same way (autograd_torch.py).

What descent saves differs from PyTorch's in places (descent's Mul saves both inputs where
PyTorch saves only the one the other's gradient needs; arrays an op keeps in `saved_slots` are
not tensors and are not packed), so hook call counts match PyTorch's for the common ops
(products, unary math, matmul, outputs of exp/tanh/sigmoid), not for every op.
"""

from __future__ import annotations

import contextlib
import threading as _threading
import weakref as _weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as _np

from . import autograd as _autograd
from . import backend as _backend
from . import hooks as _hooks

__all__ = [
    "GradientEdge",
    "Node",
    "allow_mutation_on_saved_tensors",
    "disable_saved_tensors_hooks",
    "get_gradient_edge",
    "increment_version",
    "register_multi_grad_hook",
    "save_on_cpu",
    "saved_tensors_hooks",
    "set_warn_on_accumulate_grad_stream_mismatch",
]


class _ThreadHooks(_threading.local):
    """The calling thread's saved_tensors_hooks state (PyTorch's is thread-local too)."""

    def __init__(self) -> None:
        self.stack: list = []  # the active saved_tensors_hooks contexts, innermost last
        self.disabled: list = []  # messages of the active disable_saved_tensors_hooks blocks


_tls = _ThreadHooks()
_open = [0]  # contexts open in all threads: autograd._saved_hooks is _DISPATCH while > 0
_open_lock = _threading.Lock()


def _active_saved_hooks():
    """The calling thread's innermost saved_tensors_hooks context, or None."""
    stack = _tls.stack
    return stack[-1] if stack else None


class _Dispatch:
    """`autograd._saved_hooks` while any thread has a context open: packs with the calling
    thread's innermost context, and leaves other threads' saved tensors alone."""

    def pack_node(self, node, out) -> None:
        ctx = _active_saved_hooks()
        if ctx is not None:
            ctx.pack_node(node, out)

    def pack_tensors(self, tensors) -> tuple | None:
        """The packed tensors, or None where this thread has no context (saved as they are)."""
        ctx = _active_saved_hooks()
        return None if ctx is None else ctx.pack_tensors(tensors)


_DISPATCH = _Dispatch()


class _Slot:
    """One saved tensor under hooks: what pack returned, the unpack to apply, and what
    create_graph needs to put the unpacked value back at the tensor's place in the graph."""

    __slots__ = ("packed", "packed_version", "unpack_hook", "version", "node", "leaf", "shape")

    def __init__(self, t, pack_hook, unpack_hook) -> None:
        self.version = t._version
        self.shape = t.shape  # for the engine's in-place error message
        self.node = t._node
        self.leaf = t if (t._node is None and t._rg) else None  # a leaf: its gradient's target
        self.unpack_hook = unpack_hook
        self.packed = p = pack_hook(t)
        self.packed_version = p._version if isinstance(p, _autograd._tensor_class) else None

    @property
    def _version(self):
        """The engine's in-place check: the version at save time, moved by the changes made
        since to what pack returned. Where pack kept the tensor itself (or a view sharing its
        version), a change after saving raises (PyTorch calls that undefined behaviour and
        uses the changed values; tests/test_autograd_graph.py); a new tensor (`t.double()`,
        `t.cpu()`) starts at its own version, and only changes made to it count."""
        p = self.packed
        if self.packed_version is None:
            return self.version
        return self.version + (p._version - self.packed_version)

    def unpack(self, graph: bool = False):
        t = self.unpack_hook(self.packed)
        if not isinstance(t, _autograd._tensor_class):
            raise TypeError(
                f"saved_tensors_hooks: unpack_hook returned {type(t).__name__}; it must return "
                "a Tensor (the saved tensor's value)"
            )
        if graph:  # create_graph: the value at the saved tensor's place in the graph
            if self.leaf is not None:
                return self.leaf  # a leaf's gradient must reach the leaf object itself
            if self.node is not None and t._node is not self.node:
                return _autograd._new_tensor(t._data, True, self.node)
        return t


class saved_tensors_hooks:  # noqa: N801 - PyTorch's name
    """Context manager: ops recorded inside save `pack_hook(t)` instead of each tensor t they
    keep for backward, and backward reads `unpack_hook(packed)`.

    Args:
        pack_hook: Tensor -> anything (it must not modify the tensor in place).
        unpack_hook: what pack returned -> a Tensor of the same value.

    Raises:
        RuntimeError: on entering, inside `disable_saved_tensors_hooks`.
    """

    def __init__(self, pack_hook: Callable, unpack_hook: Callable) -> None:
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        if _tls.disabled:
            raise RuntimeError(_tls.disabled[-1])
        _tls.stack.append(self)
        with _open_lock:
            _open[0] += 1
            _autograd._saved_hooks = _DISPATCH
        return self

    def __exit__(self, *exc) -> None:
        _tls.stack.remove(self)
        with _open_lock:
            _open[0] -= 1
            if not _open[0]:
                _autograd._saved_hooks = None

    def pack_node(self, node, out) -> None:
        """Called by autograd.record_node: pack the node's saved inputs and saved output."""
        pack, unpack = self.pack_hook, self.unpack_hook
        saved = node.saved
        if saved is not None:
            node.saved = _autograd._PackedSaved([_Slot(t, pack, unpack) for t in saved])
        if node.out_data is not None and out is not None:
            node.out_data = _autograd._PackedSaved([_Slot(out, pack, unpack)])

    def pack_tensors(self, tensors) -> tuple:
        """ctx.save_for_backward's tensors, packed (None stays None)."""
        pack, unpack = self.pack_hook, self.unpack_hook
        return tuple(None if t is None else _Slot(t, pack, unpack) for t in tensors)


class save_on_cpu(saved_tensors_hooks):  # noqa: N801 - PyTorch's name
    """Saved tensors are kept in host memory and moved back to their device when backward
    reads them (PyTorch's `save_on_cpu`). On the CPU both moves are no-ops.

    Args:
        pin_memory: accepted for PyTorch compatibility (descent has no pinned memory).
        device_type: accepted for PyTorch compatibility.
    """

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        def pack(t):
            return (t.device, t.to("cpu"))

        def unpack(packed):
            device, t = packed
            return t.to(device)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:  # noqa: N801 - PyTorch's name
    """Inside it, entering `saved_tensors_hooks` raises `RuntimeError(error_message)` (for
    code whose saved tensors must not be intercepted)."""

    def __init__(self, error_message: str) -> None:
        self.error_message = error_message

    def __enter__(self) -> None:
        _tls.disabled.append(self.error_message)

    def __exit__(self, *exc) -> None:
        _tls.disabled.remove(self.error_message)


class _NodeMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        from .grad_fn import AccumulateGrad, ShownNode

        return isinstance(obj, (_autograd.Function, AccumulateGrad, ShownNode))


class Node(metaclass=_NodeMeta):
    """torch.autograd.graph.Node, for isinstance checks: `isinstance(t.grad_fn, Node)` holds
    for descent's graph nodes (the ops' Function objects, custom functions' nodes) and for the
    AccumulateGrad objects of `next_functions`, as in PyTorch."""


def increment_version(tensor) -> None:
    """Mark tensor (or each tensor of an iterable) as modified in place: a backward that saved
    it before then raises, as after any in-place op."""
    tensors = [tensor] if isinstance(tensor, _autograd._tensor_class) else list(tensor)
    for t in tensors:
        t._version += 1


class _MultiGradHandle:
    """What register_multi_grad_hook returns: `remove()` takes off every hook it added."""

    def __init__(self, handles: list) -> None:
        self._handles = handles

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def _leaf_grad(leaf_grads: dict, t):
    """t's gradient of the pass that is ending, as a Tensor (None when none reached it)."""
    g = leaf_grads.get(t)
    if g is None or isinstance(g, _autograd._tensor_class):
        return g
    if type(g) is _autograd._ZeroGradient:  # reached by known-zero gradients only
        g = _backend.get_array_module(t._data).zeros_like(t._data)
    return _autograd._new_tensor(g)


def register_multi_grad_hook(tensors, fn: Callable, *, mode: str = "all"):
    """Call `fn` once per backward pass that reaches any of `tensors` (torch.autograd.graph's).

    mode "all": `fn(grads)` after the pass has computed every gradient it will, `grads` a tuple
    with one entry per tensor (None for a tensor the pass did not reach). mode "any":
    `fn(grad)` with the first of the tensors' gradients to be computed. A pass that reaches
    none of them calls nothing. Returns a handle with `.remove()`. The order in which several
    such hooks run within one pass may differ from PyTorch's (leaves' run when the pass ends).

    How: a non-leaf's gradient is caught by a tensor hook mid-pass; a leaf's is read from the
    pass's leaf gradients when the pass ends (hooks.add_pass_hook), before `.grad` is written.
    While registered, `descent.compile` runs steps eagerly (a pass hook is active). The
    tensors own the hook, as PyTorch's graph nodes do: it goes away with them, so a forgotten
    handle neither keeps them alive nor keeps steps eager.
    """
    if mode not in ("all", "any"):
        raise ValueError(f"Expects mode to be one of ('all', 'any') but got {mode}")
    tensors = tuple(tensors)
    for i, t in enumerate(tensors):
        if not t.requires_grad:
            raise RuntimeError(
                f"register_multi_grad_hook: tensor {i} (shape {tuple(t.shape)}) does not "
                "require grad, so no backward pass computes its gradient"
            )
    frames: list[dict] = []  # one per running backward pass (a pass inside a hook nests)
    refs = [_weakref.ref(t) for t in tensors]
    n = len(tensors)

    def on_pass(event, leaf_grads, _b, options) -> None:
        if event == "begin":
            # backward(inputs=...) and autograd.grad compute the given tensors' gradients only
            # (PyTorch's engine runs no other leaf's accumulation): other leaves count as None
            only = None
            if not options["accumulate"]:
                only = {id(t) for t in options["capture"] or ()}
            frames.append({"grads": {}, "fired": False, "only": only})
            return
        frame = frames.pop()
        grads = frame["grads"]
        only = frame["only"]
        for i, ref in enumerate(refs):
            t = ref()
            if t is None or (only is not None and id(t) not in only):
                continue
            if t._node is None and i not in grads:
                g = _leaf_grad(leaf_grads, t)
                if g is not None:
                    grads[i] = g
        if not grads:
            return
        if mode == "all":
            fn(tuple(grads.get(i) for i in range(n)))
        elif not frame["fired"]:  # the leaf whose gradient arrived first (leaf_grads' order)
            first = next(i for leaf in leaf_grads for i in grads if refs[i]() is leaf)
            fn(grads[first])

    def node_hook(i):
        def hook(g):
            if frames:
                frame = frames[-1]
                frame["grads"][i] = g
                if mode == "any" and not frame["fired"]:
                    frame["fired"] = True
                    fn(g)

        return hook

    # Ownership as PyTorch's (the hook lives on the tensors' graph nodes): the tensors hold
    # on_pass (and through it fn); the global pass-hook list holds only a trampoline with a weak
    # reference, removed when on_pass is collected. A forgotten handle, or an fn whose globals
    # hold the tensors, then neither keeps the tensors alive nor keeps descent.compile eager.
    for t in tensors:
        t.__dict__.setdefault("_multi_grad_hooks", []).append(on_pass)
    holder: list = []

    def trampoline(event, a, b, c) -> None:
        f = ref()
        if f is not None:
            f(event, a, b, c)

    def collected(_ref) -> None:
        for h in holder:
            h.remove()

    ref = _weakref.ref(on_pass, collected)
    pass_handle = _hooks.add_pass_hook(trampoline)
    holder.append(pass_handle)
    handles = [pass_handle]
    for i, t in enumerate(tensors):
        if t._node is not None:
            handles.append(t.register_hook(node_hook(i)))
    handle = _MultiGradHandle(handles)
    return handle


# ---------------------------------------------------------------------------------------------
# Gradient edges (torch.autograd.graph.GradientEdge): where a tensor's gradient is computed


class _Edge(NamedTuple):
    node: Any
    output_nr: int
    ownership_token: Any = None


class GradientEdge(_Edge):
    """(node, output_nr): the place in the graph where a tensor's gradient arrives; usable as
    an input of `autograd.grad` (`grad(loss, get_gradient_edge(h))` is `grad(loss, h)`).

    `node` is the tensor's `grad_fn`, or an `AccumulateGrad` whose `.variable` is the leaf;
    `output_nr` is 0 (a descent node has one output). An edge from `get_gradient_edge` also
    remembers its tensor, so the gradient keeps the tensor's shape."""

    __slots__ = ()

    @property
    def _tensor(self):
        token = self.ownership_token
        return token if isinstance(token, _autograd._tensor_class) else None


def get_gradient_edge(tensor) -> GradientEdge:
    """The gradient edge of `tensor` (torch.autograd.graph.get_gradient_edge).

    Raises:
        RuntimeError: the tensor does not require grad.
    """
    if not tensor.requires_grad:
        raise RuntimeError(
            "It is not possible to get the gradient edge for a Tensor that does not require "
            "gradients"
        )
    if tensor._node is None:
        from .grad_fn import accumulate_grad

        node = accumulate_grad(tensor)
    else:
        node = tensor.grad_fn
    # the token keeps the graph above the edge alive, as PyTorch's does (here: the tensor)
    return GradientEdge(node, 0, tensor)


def _edge_input(edge):
    """The tensor `autograd.grad` captures for `edge` (the engine captures by node or leaf)."""
    t = edge._tensor if isinstance(edge, GradientEdge) else None
    if t is not None:
        return t
    node = edge[0]
    variable = getattr(node, "variable", None)  # AccumulateGrad: the leaf itself
    if isinstance(variable, _autograd._tensor_class):
        return variable
    if isinstance(node, _autograd.Function):  # a stand-in output of the node, data unknown
        return _autograd._new_tensor(_np.zeros(0, _np.float32), True, node)
    raise TypeError(
        f"autograd.grad: a GradientEdge's node must be a graph node (a grad_fn or an "
        f"AccumulateGrad), got {type(node).__name__}"
    )


def _edge_output(edge, grad_output):
    """The root tensor `autograd.grad` starts from for an output `edge`: its tensor, or a
    stand-in output of the node shaped as `grad_output` (PyTorch's pipeline schedules seed an
    intermediate node with a gradient they kept)."""
    t = edge._tensor if isinstance(edge, GradientEdge) else None
    if t is not None:
        return t
    node = edge[0]
    variable = getattr(node, "variable", None)
    if isinstance(variable, _autograd._tensor_class):
        return variable
    if not isinstance(node, _autograd.Function):
        raise TypeError(
            f"autograd.grad: a GradientEdge's node must be a graph node (a grad_fn or an "
            f"AccumulateGrad), got {type(node).__name__}"
        )
    if grad_output is None:
        data = _np.zeros((), _np.float32)  # a scalar root, seeded with 1 as a scalar output is
    else:
        data = _np.zeros(grad_output.shape, grad_output._data.dtype)
    return _autograd._new_tensor(data, True, node)


_warn_on_accumulate_grad_stream_mismatch = True


def set_warn_on_accumulate_grad_stream_mismatch(enabled: bool) -> None:
    """Whether to warn when an AccumulateGrad node's stream differs from its gradient's
    producer's (a CUDA-stream setting; descent has one stream, so nothing ever warns)."""
    global _warn_on_accumulate_grad_stream_mismatch
    _warn_on_accumulate_grad_stream_mismatch = bool(enabled)


# ---------------------------------------------------------------------------------------------
# allow_mutation_on_saved_tensors

_mutation_enabled = False


class _AllowMutationOnSavedContext:
    """The state of one `allow_mutation_on_saved_tensors` block: the saved values by handle."""

    def __init__(self) -> None:
        self.original: dict = {}  # handle -> the value saved (a copy, see below)
        self.by_version: dict = {}  # (id(tensor), version) -> handle: one copy per value

    def clear(self) -> None:
        self.original.clear()
        self.by_version.clear()


class _Handle:
    __slots__ = ("__weakref__",)


class _CopyOnSave(saved_tensors_hooks):
    """The hooks of the block: pack keeps a copy of each saved tensor's value (one per
    tensor and version), unpack returns it, so an in-place change after saving does not reach
    backward. PyTorch copies lazily, just before a saved tensor is mutated; descent has no
    pre-mutation hook, so it copies at save time: the same gradients, more memory."""

    def __init__(self, ctx: _AllowMutationOnSavedContext) -> None:
        def pack(t):
            key = (id(t), t._version)
            handle = ctx.by_version.get(key)
            if handle is None:
                handle = ctx.by_version[key] = _Handle()
                ctx.original[handle] = (t, _autograd._new_tensor(t._data.copy()))
            return handle

        def unpack(handle):
            message = (
                "Trying to backward outside of the 'allow_mutation_on_saved_tensors' context"
                "in which the graph was originally recorded."
            )
            if not _mutation_enabled or handle not in ctx.original:
                raise AssertionError(message)
            return ctx.original[handle][1]

        super().__init__(pack, unpack)


@contextlib.contextmanager
def allow_mutation_on_saved_tensors():
    """Inside it, a tensor saved for backward may be modified in place: backward uses the
    value it had when saved (torch.autograd.graph.allow_mutation_on_saved_tensors). Run the
    forward and the backward inside the same block; outside, the version-counter error stays.

    Yields:
        The block's state object (cleared on exit).

    Raises:
        RuntimeError: blocks nested.
        AssertionError: (in backward) a graph recorded in the block used after it ended.
    """
    global _mutation_enabled
    ctx = _AllowMutationOnSavedContext()
    with _CopyOnSave(ctx):
        try:
            if _mutation_enabled:
                raise RuntimeError("allow_mutation_on_saved_tensors contexts cannot be nested")
            _mutation_enabled = True
            yield ctx
        finally:
            ctx.clear()
            _mutation_enabled = False
