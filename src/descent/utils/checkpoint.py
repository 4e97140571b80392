"""Activation checkpointing (torch.utils.checkpoint): trade compute for memory.

`checkpoint(function, *args)` runs `function` under `no_grad`, so none of the activations inside
it are kept; one graph node (`CheckpointBackward`) stands for the whole segment and keeps only
what it needs to run the segment again: the function, its arguments and the random state. When
the backward pass reaches that node it

1. recomputes the segment with grad enabled, from the same inputs and with the default
   generator restored to its state at the forward (`preserve_rng_state=True`), so dropout draws
   the same masks and the recomputed values are the forward's bits;
2. runs an inner backward pass over the recomputed graph, seeded with the node's gradient, and
   hands the gradients of the segment's inputs to the outer pass.

The gradients are the uncheckpointed ones exactly: the same ops in the same order.

Which tensors are the node's inputs. The explicit tensor arguments, and every tensor that
requires grad and that the function reaches by other means (a module's parameters, a closure
over an activation): an op hook (`autograd.add_op_hook`) records each op's inputs during the
forward, and those that require grad there (under no_grad only tensors from outside the segment
do) become inputs too. Their gradients therefore flow through the outer pass like any op's,
which makes `descent.autograd.grad` and `backward(inputs=...)` work with either `use_reentrant`
value (PyTorch's reentrant variant refuses them).

How the inner pass stays inside the segment. Before the recompute, each input gets a stand-in
node (`CheckpointInputBackward`) recorded above its real producer, and the input's `_node` points
at the stand-in while the function runs again: every recomputed op records the stand-in as its
parent. The inner pass captures the stand-ins' gradients and stops there (a stand-in passes no
gradient on while the inner pass runs), so it never walks the outer graph, and the engine does
not recurse: nesting depth is the user's nesting of checkpoints, not the graph's depth. Under
`create_graph=True` the inner pass is recorded and the stand-ins then pass gradients through,
so the gradients are differentiable again (second derivatives through a checkpoint are exact).

Memory. The segment's activations are freed at the end of the forward and exist again only
while its node's backward runs (docs/torch_gaps.md has the measured effect).
"""

from __future__ import annotations

import threading as _threading
import warnings

import numpy as _np

from .. import amp as _amp
from .. import autograd as _autograd
from .. import backend as _backend
from ..creation import _default_generator
from ._pytree import tree_map  # noqa: F401 - torch.utils.checkpoint's namespace has it (not __all__)
from .checkpoint_selective import (  # selective checkpointing and PyTorch's small helpers
    SAC_IGNORED_OPS,
    CheckpointFunction,
    CheckpointPolicy,
    DefaultDeviceType,
    GraphExecGroup,
    SelectiveCheckpointContext,
    check_backward_validity,
    create_selective_checkpoint_contexts,
    detach_variable,
    get_device_states,
    set_checkpoint_debug_enabled,
    set_checkpoint_early_stop,
    set_device_states,
)

__all__ = [
    "SAC_IGNORED_OPS",
    "CheckpointError",
    "CheckpointFunction",
    "CheckpointPolicy",
    "DefaultDeviceType",
    "GraphExecGroup",
    "SelectiveCheckpointContext",
    "check_backward_validity",
    "checkpoint",
    "checkpoint_sequential",
    "create_selective_checkpoint_contexts",
    "detach_variable",
    "get_device_states",
    "noop_context_fn",
    "set_checkpoint_debug_enabled",
    "set_checkpoint_early_stop",
    "set_device_states",
]


class CheckpointError(RuntimeError):
    """The recomputation did not reproduce the forward (torch.utils.checkpoint.CheckpointError)."""


def noop_context_fn():
    """The default `context_fn`: no context around the forward or the recomputation."""
    return _Null(), _Null()


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# ---------------------------------------------------------------------------------------------
# Graph nodes


class CheckpointInput(_autograd.Function):
    """The stand-in for one input of a checkpointed segment during its recomputation: the
    recomputed ops record it as their parent. d/dx x = 1; while the inner pass runs (`cut`) it
    passes nothing on, so that pass ends at the segment's inputs."""

    __slots__ = ("cut",)

    def backward(self, gy, ops):
        return None if self.cut else gy


class Checkpoint(_autograd.Function):
    """One node for a checkpointed segment: backward recomputes it and runs an inner pass.

    Saved (and released after backward unless retain_graph): the inputs that require grad
    (`saved`, version-checked by the engine), and in slots the function, its arguments, the
    random state and autocast state of the forward. Not saved: any activation or the output.
    """

    __slots__ = ("function", "args", "kwargs", "rng", "autocast_state", "recompute_context",
                 "layout", "determinism", "out_meta")  # fmt: skip
    save_inputs = True
    saved_slots = ("function", "args", "kwargs", "rng", "recompute_context")

    def backward(self, gy, ops):
        if self.function is None:
            raise RuntimeError(self._freed_message())
        inputs = self.saved  # the tensors requiring grad, in the node's parent order
        if type(inputs) is _autograd._PackedSaved:  # saved_tensors_hooks: at their graph places
            inputs = inputs.unpack(True)
        create_graph = ops.is_graph
        start = next(_autograd._counter)  # every node of the recomputation has a larger index
        stands = []
        for t in inputs:
            stand = _autograd._new(_CheckpointInput)
            stand.cut = True
            stands.append(
                _autograd._record_node(stand, (_autograd._parent(t),), (t._data.shape,), (),
                                       t._data)  # fmt: skip
            )
        outs = self._recompute(inputs, stands)
        flat = _flatten(outs)
        self._check(flat)
        roots, seeds, direct = [], [], {}
        for (i, _offset, _shape), g in zip(self.layout, _split(gy, self.layout)):
            o = flat[i]
            pos = _index_of(inputs, o)
            if pos is not None:  # the function returned one of its inputs as it is
                direct[pos] = g if pos not in direct else direct[pos] + g
            elif o.requires_grad:
                roots.append(o)
                seeds.append(g)
        _check_inside(roots, start, stands)
        gxs = [None] * len(inputs)
        if roots:
            with _autograd.enable_grad() if create_graph else _autograd.no_grad():
                got = _autograd._engine_backward(roots, seeds, create_graph, create_graph,
                                            capture=stands, accumulate=False)  # fmt: skip
            gxs = [None if g is None else (g if create_graph else g._data) for g in got]
        for s in stands:
            s._node.cut = False  # a later pass through the recorded gradient goes on upstream
        for pos, g in direct.items():
            gxs[pos] = g if gxs[pos] is None else gxs[pos] + g
        return tuple(gxs)

    def _recompute(self, inputs, stands):
        """Run the function again with grad enabled, the forward's random and autocast state,
        and each input's producer replaced by its stand-in."""
        saved_rng = _get_rng()
        swapped = [(t, t._node) for t in inputs]
        try:
            if self.rng is not None:
                _set_rng(self.rng)
            for t, s in zip(inputs, stands):
                t._node = s._node
            with _autograd.enable_grad(), _autocast(self.autocast_state), self.recompute_context:
                return self.function(*self.args, **self.kwargs)
        finally:
            for t, node in swapped:
                t._node = node
            if self.rng is not None:
                _set_rng(saved_rng)

    def _check(self, flat) -> None:
        """The recomputed outputs must be what the forward returned (determinism_check)."""
        meta = [(tuple(t.shape), t.dtype) if _is_tensor(t) else None for t in flat]
        if self.determinism != "none" and meta != self.out_meta:
            raise CheckpointError(
                "checkpoint: the recomputed outputs differ from the forward's: forward gave "
                f"{_describe(self.out_meta)}, recomputation {_describe(meta)}. The function must "
                "compute the same shapes and dtypes when run again (no dependence on global "
                "state that changes between forward and backward); determinism_check='none' "
                "skips this check"
            )


# ---------------------------------------------------------------------------------------------
# The public functions


def checkpoint(
    function,
    *args,
    use_reentrant: bool | None = None,
    context_fn=noop_context_fn,
    determinism_check: str = "default",
    debug: bool = False,
    early_stop: bool = True,
    **kwargs,
):
    """Run `function(*args, **kwargs)` without keeping its activations; recompute them in
    backward (torch.utils.checkpoint.checkpoint).

    Args:
        function: the segment: any function of Tensors (a Module, a block, a lambda).
        *args: its positional arguments (Tensors or anything else).
        use_reentrant: PyTorch's choice of implementation. Pass it explicitly, as PyTorch asks
            (None warns and means True). descent has one implementation for both; the
            differences kept are PyTorch's visible ones: with True, keyword arguments are
            refused and, when no positional Tensor argument requires grad, the output does not
            require grad either (PyTorch's warning: "Gradients will be None", parameters
            included); with False, parameters get gradients in every case.
        context_fn: (use_reentrant=False) a function returning two context managers, entered
            around the forward and around the recomputation.
        determinism_check: "default" compares the recomputed outputs' shapes and dtypes with
            the forward's and raises `CheckpointError` on a difference; "none" does not.
        debug, early_stop: accepted for PyTorch compatibility (descent's recomputation always
            runs the whole function, its inner pass always stops at the segment's inputs).
        preserve_rng_state: (keyword, default True) restore the default generator's state for
            the recomputation, so random ops (dropout) draw what the forward drew.
        **kwargs: keyword arguments of `function` (use_reentrant=False only).

    Returns:
        What `function` returns: its Tensors (in tuples, lists and dicts) require grad when an
        input of the segment does, through one `CheckpointBackward` node.

    Raises:
        ValueError: keyword arguments with use_reentrant=True, context_fn or debug with
            use_reentrant=True, an unknown determinism_check.
        CheckpointError: in backward, when the recomputation's outputs differ in shape/dtype.
    """
    if use_reentrant is None:
        warnings.warn(
            "descent.utils.checkpoint: the use_reentrant parameter should be passed explicitly "
            "(as PyTorch asks: use_reentrant=False is recommended; None means True). descent "
            "computes the same gradients either way; see docs/torch_gaps.md",
            stacklevel=2,
        )
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs and use_reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if use_reentrant and (context_fn is not noop_context_fn or debug is not False):
        raise ValueError(
            "Passing `context_fn` or `debug` is only supported when use_reentrant=False."
        )
    if determinism_check not in ("default", "none"):
        raise ValueError(
            f"determinism_check should be one of ['default', 'none'], got {determinism_check!r}"
        )
    if not _autograd._is_grad_enabled():  # nothing to differentiate: an ordinary call
        return function(*args, **kwargs)
    explicit = [a for a in args if _is_tensor(a) and a.requires_grad]
    if use_reentrant and not explicit:
        warnings.warn("None of the inputs have requires_grad=True. Gradients will be None",
                      stacklevel=2)  # fmt: skip
        with _autograd.no_grad():
            return function(*args, **kwargs)

    rng = _get_rng() if preserve else None
    autocast_state = _amp._current()
    forward_context, recompute_context = context_fn()
    found = _Found()
    handle = _autograd._add_op_hook(forward=found.hook)
    try:
        with _autograd.no_grad(), forward_context:
            out = function(*args, **kwargs)
    finally:
        handle.remove()
    inputs = _unique(explicit + found.tensors)
    flat = _flatten(out)
    floating = [i for i, t in enumerate(flat) if _is_tensor(t) and t._data.dtype.kind in "fV"]
    if not inputs or not floating:
        return out
    node = _autograd._new(_Checkpoint)
    node.function, node.args, node.kwargs, node.rng = function, args, kwargs, rng
    node.autocast_state, node.recompute_context = autocast_state, recompute_context
    node.determinism = determinism_check
    node.out_meta = [(tuple(t.shape), t.dtype) if _is_tensor(t) else None for t in flat]
    dtypes = {flat[i]._data.dtype for i in floating}
    if len(dtypes) > 1:
        raise NotImplementedError(
            "checkpoint: the function returned floating tensors of different dtypes "
            f"({sorted(str(d) for d in dtypes)}); cast them to one dtype, or checkpoint "
            "separately"
        )
    layout, offset = [], 0
    for i in floating:
        layout.append((i, offset, tuple(flat[i].shape)))
        offset += flat[i]._data.size
    node.layout = tuple(layout)
    parents = tuple(_autograd._parent(t) for t in inputs)
    shapes = tuple(t._data.shape for t in inputs)
    if len(floating) == 1 and not isinstance(out, (tuple, list, dict)):
        packed = flat[floating[0]]._data
    else:
        xp = _backend.get_array_module(flat[floating[0]]._data)
        packed = xp.concatenate([flat[i]._data.ravel() for i in floating])
    t = _autograd._record_node(node, parents, shapes, tuple(inputs), packed)
    if _autograd._forward_hooks:  # tools (anomaly mode, an outer checkpoint) see one op
        _autograd._run_forward_hooks(node, tuple(inputs), t)
    if _is_tensor(out):
        return t
    results = list(flat)
    for i, start, shape in node.layout:
        results[i] = t[start : start + flat[i]._data.size].reshape(shape)
    return _unflatten(out, results)


def checkpoint_sequential(functions, segments: int, input, use_reentrant: bool | None = None,
                          **kwargs):  # fmt: skip
    """Run a sequence of functions (an `nn.Sequential` or a list) in `segments` checkpointed
    pieces; the last piece runs normally (torch.utils.checkpoint.checkpoint_sequential).

    Args:
        functions: an nn.Sequential (its children) or a list of functions, run in order.
        segments: how many pieces; each of the first segments - 1 is checkpointed.
        input: the first function's input.
        use_reentrant: as in `checkpoint` (None warns and means True).
        preserve_rng_state: (keyword) as in `checkpoint`.

    Returns:
        The last function's output.
    """
    if use_reentrant is None:
        warnings.warn(
            "descent.utils.checkpoint.checkpoint_sequential: the use_reentrant parameter should "
            "be passed explicitly (use_reentrant=False is recommended; None means True)",
            stacklevel=2,
        )
        use_reentrant = True
    preserve = kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    children = getattr(functions, "children", None)
    functions = list(children()) if callable(children) else list(functions)

    def run(start: int, end: int):
        def forward(x):
            for j in range(start, end + 1):
                x = functions[j](x)
            return x

        return forward

    size = len(functions) // segments
    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run(start, end), input, use_reentrant=use_reentrant,
                           preserve_rng_state=preserve)  # fmt: skip
    return run(end + 1, len(functions) - 1)(input)


# ---------------------------------------------------------------------------------------------
# Helpers


# Private bindings that keep the class names (the grad_fn names CheckpointBackward, ...)
_Checkpoint, _CheckpointInput = Checkpoint, CheckpointInput
del Checkpoint, CheckpointInput


class _Found:
    """The forward's op hook: every op input that requires grad (under no_grad, only tensors
    from outside the segment do), in first-use order; other threads' ops are ignored."""

    def __init__(self) -> None:
        self.tensors: list = []
        self.seen: set = set()
        self.thread = _threading.get_ident()

    def hook(self, op, inputs, out) -> None:
        if _threading.get_ident() != self.thread:
            return
        for t in inputs:
            if _is_tensor(t) and t._rg and id(t) not in self.seen:
                self.seen.add(id(t))
                self.tensors.append(t)


def _is_tensor(x) -> bool:
    return isinstance(x, _autograd._tensor_class)


def _unique(tensors) -> list:
    out, seen = [], set()
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _index_of(tensors, t):
    for i, x in enumerate(tensors):
        if x is t:
            return i
    return None


def _flatten(out) -> list:
    """The leaves of a (nested) tuple/list/dict output, in order."""
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in _flatten(item)]
    if isinstance(out, dict):
        return [leaf for v in out.values() for leaf in _flatten(v)]
    return [out]


def _unflatten(out, leaves: list):
    """`out`'s structure with its leaves replaced, in `_flatten`'s order."""
    it = iter(leaves)

    def build(x):
        if isinstance(x, (tuple, list)):
            items = [build(v) for v in x]
            if isinstance(x, list):
                return items
            return type(x)(*items) if hasattr(x, "_fields") else tuple(items)
        if isinstance(x, dict):
            return type(x)((k, build(v)) for k, v in x.items())
        return next(it)

    return build(out)


def _split(gy, layout) -> list:
    """The node's gradient cut back into one gradient per floating output."""
    if len(layout) == 1 and tuple(gy.shape) == layout[0][2]:
        return [gy]
    out = []
    for _i, offset, shape in layout:
        n = int(_np.prod(shape, dtype=_np.int64))
        out.append(gy[offset : offset + n].reshape(shape))
    return out


def _check_inside(roots, start: int, stands) -> None:
    """Every path from the recomputed outputs must end at a stand-in: a tensor that requires
    grad and that the forward's op hook did not see would make the inner pass leave the segment
    (and its gradient would be lost), so it is an error, found by an explicit-stack walk."""
    allowed = {id(s._node) for s in stands}
    stack = [r._node for r in roots if r._node is not None]
    seen = set()
    for r in roots:
        if r._node is None:
            raise CheckpointError(_outside_message(r.shape))
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for p, shape in zip(node.parents, node.in_shapes):
            if p is None or id(p) in allowed:
                continue
            if not isinstance(p, _autograd.Function) or p.index < start:
                raise CheckpointError(_outside_message(shape, node.name))
            stack.append(p)


def _outside_message(shape, op: str | None = None) -> str:
    where = f" (an input of '{op}')" if op else ""
    return (
        f"checkpoint: the recomputation used a tensor of shape {tuple(shape)}{where} that "
        "requires grad but was not used by any op during the forward; its gradient cannot be "
        "delivered. Pass it to checkpoint as an argument"
    )


def _describe(meta) -> str:
    return "[" + ", ".join("non-tensor" if m is None else f"{m[0]} {m[1]}" for m in meta) + "]"


def _get_rng():
    """The default CPU generator's state (a copy of NumPy's dict)."""
    st = _default_generator._rng.bit_generator.state
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in st.items()}


def _set_rng(state) -> None:
    _default_generator._rng.bit_generator.state = state


def _autocast(state):
    """The autocast region the forward ran in (or none) for the recomputation."""
    if state is None:
        cur = _amp._current()
        return _amp.autocast(cur[0], enabled=False) if cur is not None else _Null()
    return _amp.autocast(state[0], dtype=state[1])
