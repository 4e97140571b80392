"""The engine's hook points: where tools attach to every op without patching a class.

`add_op_hook(forward=..., backward=...)` registers functions that the engine calls after every
op's forward (`Function.apply` and its fast paths) and after every node's backward
(`autograd._engine_backward`). Anomaly mode (`descent.explain.anomaly`) is built on it; a profiler
or a tracer would be too. `HookHandle` is also what `Tensor.register_hook` returns.

Part of the engine layer; re-exported by `descent.autograd` (`autograd.add_op_hook`).
"""

from __future__ import annotations


class HookHandle:
    """Returned by the `register_hook`-style functions; `remove()` detaches the hook."""

    def __init__(self, hooks: list, hook) -> None:
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


class _Handles:
    def __init__(self, handles) -> None:
        self._handles = handles

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


# Process-wide (every thread) lists. The hot paths test each with one truthiness check, so a
# tool that is off costs one list read per op; the lists are only appended to and removed
# from, never rebound, so the engine may hold a reference across a backward pass.
_forward_hooks: list = []
_backward_hooks: list = []
_pass_hooks: list = []  # backward-pass observers (descent.compile records a pass's seeds)


def add_op_hook(forward=None, backward=None):
    """Observe every op: `forward(op, inputs, output)` runs after each op's forward (recorded or
    not; `output` is the Tensor it returns, `output.grad_fn` is `op` when it was recorded) and
    `backward(node, gy, gxs)` after each node's backward, before the engine unbroadcasts `gxs`.

    Hooks see every thread, which is what a debugging tool wants (anomaly mode uses this).
    A hook may raise to stop the pass. Returns a handle whose `remove()` detaches both.
    """
    handles = []
    for hooks, fn in ((_forward_hooks, forward), (_backward_hooks, backward)):
        if fn is not None:
            hooks.append(fn)
            handles.append(HookHandle(hooks, fn))
    return _Handles(handles)


def add_pass_hook(fn):
    """Observe every backward pass: `fn("begin", roots, root_grads, options)` before the first
    gradient is delivered (options: retain_graph, create_graph, capture, accumulate) and
    `fn("end", leaf_grads, None, None)` after the last node (leaf_grads: leaf tensor -> its
    gradient of this pass, in first-delivery order), before `.grad` is written.

    `descent.compile` records a training step's backward pass with it. Returns a handle.
    """
    _pass_hooks.append(fn)
    return HookHandle(_pass_hooks, fn)


def _run_pass_hooks(event, a, b, c) -> None:
    for hook in tuple(_pass_hooks):
        hook(event, a, b, c)


def _run_forward_hooks(op, inputs, out) -> None:
    for hook in tuple(_forward_hooks):  # a copy: a hook may remove itself
        hook(op, inputs, out)


# Tensor.register_post_accumulate_grad_hook: leaf -> hooks, keyed by id with a weak reference
# (Tensor's __eq__ is elementwise, so tensors cannot be WeakKeyDictionary keys). The engine
# tests the dict's truthiness once per backward pass.
_post_accumulate_hooks: dict = {}


def register_post_accumulate_grad_hook(leaf, hook):
    """Call `hook(leaf)` after a backward pass has accumulated `leaf.grad`. Returns a handle."""
    import weakref

    if leaf._node is not None:
        raise RuntimeError(
            "post accumulate grad hooks cannot be registered on non-leaf tensors; register "
            "them on the parameters (leaves) instead"
        )
    if not leaf._rg:
        raise RuntimeError(
            "cannot register a hook on a tensor that doesn't require gradient; call "
            "requires_grad_() first"
        )
    key = id(leaf)
    entry = _post_accumulate_hooks.get(key)
    if entry is None or entry[0]() is not leaf:
        entry = _post_accumulate_hooks[key] = (
            weakref.ref(leaf, lambda _r, k=key: _post_accumulate_hooks.pop(k, None)),
            [],
        )
    entry[1].append(hook)
    return HookHandle(entry[1], hook)


# Tensor.grad_dtype (PyTorch 2.13): leaf -> (weak reference, dtype or None) for the leaves whose
# gradient dtype differs from their own; the engine casts their incoming gradients (None: keeps
# any dtype). Keyed by id as above; the engine tests the dict's truthiness once per leaf.
_grad_dtypes: dict = {}


def get_grad_dtype(leaf):
    """The dtype leaf's gradients are cast to (its own dtype unless set; None: any)."""
    entry = _grad_dtypes.get(id(leaf))
    return entry[1] if entry is not None and entry[0]() is leaf else leaf.dtype


def set_grad_dtype(leaf, dtype) -> None:
    import weakref

    key = id(leaf)
    if dtype is not None and dtype == leaf.dtype:  # the default: nothing to remember
        _grad_dtypes.pop(key, None)
        return
    _grad_dtypes[key] = (weakref.ref(leaf, lambda _r, k=key: _grad_dtypes.pop(k, None)), dtype)


def run_post_accumulate_hooks(leaves) -> None:
    """The engine's call, after `.grad` of every leaf of the pass is written."""
    for leaf in leaves:
        entry = _post_accumulate_hooks.get(id(leaf))
        if entry is not None and entry[0]() is leaf:
            for hook in tuple(entry[1]):
                hook(leaf)


# Composite-function observers (descent.utils.flop_counter): PyTorch counts some functions as one
# ATen op (conv_transpose2d is one `aten.convolution`, addmm one `aten.addmm`) where descent runs
# several ops (a matrix product and col2im). Such a function is decorated with
# `composite(name)`; while an observer is registered, it reports its arguments and result
# around the call, so a tool can count the whole and ignore the inner ops. Off, the cost is one
# list truthiness test per call of the decorated function (none on the per-op hot path).
_composite_hooks: list = []


def composite(name: str):
    """Mark a function as one PyTorch-level op `name` (e.g. "aten.convolution") for observers:
    each gets `hook("enter", name, args, kwargs, None)` before the call and
    `hook("exit", name, args, kwargs, result)` after it (`result` None when it raised)."""
    import functools

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            if not _composite_hooks:
                return fn(*args, **kwargs)
            observers = tuple(_composite_hooks)
            for hook in observers:
                hook("enter", name, args, kwargs, None)
            out = None
            try:
                out = fn(*args, **kwargs)
            finally:
                for hook in observers:
                    hook("exit", name, args, kwargs, out)
            return out

        return wrapper

    return decorate


def add_composite_hook(fn):
    """Observe the `composite` functions (see above). Returns a handle whose `remove()`
    detaches it."""
    _composite_hooks.append(fn)
    return HookHandle(_composite_hooks, fn)
