"""The engine: graph nodes, grad mode, and the reverse-mode backward pass.

How it works (STYLE.md, "The engine"):

* Every differentiable op is a `Function` subclass. Calling `Op.apply(*tensors, **params)` runs
  `forward` on raw backend arrays and, when grad mode is on and an input requires grad, turns the
  op object itself into a graph node: it records its parents (the nodes that produced its inputs,
  or the leaf tensors themselves) and a creation index from a global counter. Creation order is a
  topological order, so the backward pass processes nodes by descending index from a heap.
  Nothing recurses over the graph: a 100,000-deep chain backpropagates like a short one.
* `backward` is written ONCE per op against a namespace `F` and saved values obtained through
  `self.inputs(F)` / `self.output(F)`. With `create_graph=False` the engine hands the op raw
  arrays and `F` is the array namespace: the pass runs at NumPy speed and records nothing. With
  `create_graph=True` it hands over Tensors and `F` is descent itself, so the backward pass is
  recorded and can be differentiated again (higher-order gradients for every op written this way).
* Gradients live in a dict keyed by node while the pass runs and are popped when consumed; they
  accumulate out of place. After each op's backward the engine sums every gradient back to its
  input's shape (`unbroadcast`) in one place and checks the count of gradients against the inputs.
* Saved values are released after backward unless `retain_graph=True`; a second backward through
  a released node raises an error naming the op.
* Speed: recording is the whole per-op cost of the graph, so `apply` has a unary path,
  `apply2` serves parameterless binary ops called by the Tensor operators, `apply_scalar` the
  tensor-scalar ops (all three are Function classmethods named `apply*`, so tools that
  instrument ops, such as anomaly mode, swap them and see every op), and the
  `_record*` helpers are written without generator expressions or keyword dicts. The backward
  loop has a single-input path. `benchmarks/overhead.py` measures the result against PyTorch.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import threading
from typing import Any

import numpy as np

from . import backend

# ---------------------------------------------------------------------------------------------
# Grad mode


class _GradState(threading.local):
    def __init__(self) -> None:
        self.enabled = True


_state = _GradState()


def is_grad_enabled() -> bool:
    """True when operations are being recorded for backward."""
    return _state.enabled


class _GradModeContext:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager and a decorator."""

    _mode = True

    def __enter__(self):
        self._prev = _state.enabled
        _state.enabled = self._mode
        return self

    def __exit__(self, *exc) -> None:
        _state.enabled = self._prev

    def _fresh(self) -> _GradModeContext:
        return type(self)()

    def __call__(self, func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self._fresh():  # a fresh context per call: decorated functions may recurse
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Disable graph recording: `with descent.no_grad(): ...` or `@descent.no_grad()`."""

    _mode = False


class enable_grad(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Re-enable graph recording inside a `no_grad` block (context manager or decorator)."""

    _mode = True


class set_grad_enabled(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Set grad mode to `mode` for a block (context manager or decorator)."""

    def __init__(self, mode: bool) -> None:
        self._mode = bool(mode)
        self._prev = _state.enabled

    def _fresh(self) -> _GradModeContext:
        return set_grad_enabled(self._mode)


# ---------------------------------------------------------------------------------------------
# Graph nodes

_counter = itertools.count()

# Set by tensor.py once the Tensor class exists (tensor.py imports this module, not the reverse).
Tensor: Any = None
_wrap: Any = None
_from_node: Any = None
_Tensor: Any = None
_new_tensor = object.__new__
_ndarray, _generic, _asarray = np.ndarray, np.generic, np.asarray

# A class-level marker: saved values were released by a backward pass without retain_graph.
_FREED = object()


class Function:
    """Base class of differentiable operations; an applied instance is a graph node.

    Subclasses implement:
      * `forward(self, *arrays) -> array` on raw backend arrays (parameters were set as attributes
        from `apply`'s keyword arguments before it runs);
      * `backward(self, gy, F) -> gradient or tuple of gradients`, one per input (None where an
        input gets no gradient), written with `F` (the array namespace or descent) so one code
        path serves both fast and differentiable backward passes.

    Class attributes say what backward needs, so nothing else is kept alive:
      * `save_inputs = True` keeps the input tensors (their versions are checked at backward);
      * `save_output = True` keeps the output array (retrieved with `self.output(F)`).
    """

    __slots__ = (
        "parents",
        "index",
        "saved",
        "versions",
        "out_data",
        "in_shapes",
        "hooks",
        "retained",
        "__weakref__",
    )

    save_inputs = False
    save_output = False
    #: Names of op-specific slots holding saved arrays (e.g. a fused kernel's statistics); the
    #: engine sets them to None after backward unless retain_graph, like the saved inputs.
    saved_slots: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        clash = set(cls.__dict__.get("__slots__", ())) & set(Function.__slots__)
        if clash:
            raise TypeError(f"{cls.__name__}: op parameters {sorted(clash)} clash with Node fields")

    #: False for ops whose backward cannot be differentiated again (raise under create_graph).
    differentiable_backward = True

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors, recording a node when grad mode is on and an input needs grad."""
        fn = object.__new__(cls)
        if params:
            for k, v in params.items():
                setattr(fn, k, v)
        if len(inputs) == 1:  # the common unary case, without the general loops
            x = inputs[0]
            out = fn.forward(x.data)
            if x._rg and _state.enabled:
                return fn._record1(x, out)
            return _wrap(out)
        arrays = [t.data for t in inputs]
        out = fn.forward(*arrays)
        if _state.enabled:
            for t in inputs:
                if t._rg:
                    break
            else:
                return _wrap(out)
            return fn._record(inputs, arrays, out)
        return _wrap(out)

    # The recording helpers below are the whole per-op cost of the graph: they are written out
    # plainly (no generator expressions, no kwargs) because they run once per op.
    def _record1(self, x, out):
        """Make this op a node with the single input `x` (which requires grad)."""
        node = x._node
        self.parents = (x if node is None else node,)
        self.index = next(_counter)
        self.in_shapes = (x.data.shape,)
        self.hooks = None
        self.retained = None
        if self.save_inputs:
            self.saved = (x,)
            self.versions = (x._version,)
        else:
            self.saved = None
        self.out_data = out if self.save_output else None
        if type(out) is not _ndarray and isinstance(out, _generic):
            out = _asarray(out)  # NumPy returns scalars for 0-d results: keep arrays
            self.out_data = out if self.save_output else None
        t = _new_tensor(_Tensor)  # Tensor._from_node(out, self), inlined: it runs once per op
        t.data = out
        t._rg = True
        t.grad = None
        t._node = self
        t._version = 0
        t._hooks = None
        t.name = None
        return t

    def _record2(self, a, b, out):
        """Make this op a node with inputs a and b (at least one requires grad)."""
        na, nb = a._node, b._node
        self.parents = (
            na if na is not None else (a if a._rg else None),
            nb if nb is not None else (b if b._rg else None),
        )
        self.index = next(_counter)
        self.in_shapes = (a.data.shape, b.data.shape)
        self.hooks = None
        self.retained = None
        if self.save_inputs:
            self.saved = (a, b)
            self.versions = (a._version, b._version)
        else:
            self.saved = None
        self.out_data = out if self.save_output else None
        if type(out) is not _ndarray and isinstance(out, _generic):
            out = _asarray(out)  # NumPy returns scalars for 0-d results: keep arrays
            self.out_data = out if self.save_output else None
        t = _new_tensor(_Tensor)  # Tensor._from_node(out, self), inlined: it runs once per op
        t.data = out
        t._rg = True
        t.grad = None
        t._node = self
        t._version = 0
        t._hooks = None
        t.name = None
        return t

    def _record(self, inputs, arrays, out):
        """Make this op a node with any number of inputs (at least one requires grad)."""
        parents = []
        for t in inputs:
            n = t._node
            parents.append(n if n is not None else (t if t._rg else None))
        self.parents = tuple(parents)
        self.index = next(_counter)
        self.in_shapes = tuple([a.shape for a in arrays])
        self.hooks = None
        self.retained = None
        if self.save_inputs:
            self.saved = inputs
            self.versions = tuple([t._version for t in inputs])
        else:
            self.saved = None
        if type(out) is not _ndarray and isinstance(out, _generic):
            out = _asarray(out)
        self.out_data = out if self.save_output else None
        return _from_node(out, self)

    @classmethod
    def apply_scalar(cls, x, c):
        """`apply` for a tensor-scalar op (an op with slots `c` and `ca`) on Tensor x and
        Python scalar c. On the CPU `ca` is c as a cached read-only 0-d array of x's dtype:
        NumPy combines an array with a same-dtype 0-d array about twice as fast as with a Python
        float, and NEP 50 makes the results identical (the float is cast to the dtype first)."""
        fn = object.__new__(cls)
        fn.c = c
        d = x.data
        # Only floating NumPy arrays use the cached array: 0-d integer arrays are not "weak"
        # scalars in NumPy 2 and would promote int32 tensors to int64.
        if type(d) is _ndarray and d.dtype.kind == "f":
            ca = _SCALAR_ARRAYS.get((c, d.dtype))
            fn.ca = ca if ca is not None else _scalar_array(c, d.dtype)
        else:
            fn.ca = c
        out = fn.forward(d)
        if x._rg and _state.enabled:
            return fn._record1(x, out)
        return _wrap(out)

    @classmethod
    def apply2(cls, a, b):
        """`apply` for a parameterless binary op on two Tensors (the operators' fast path)."""
        fn = object.__new__(cls)
        out = fn.forward(a.data, b.data)
        if (a._rg or b._rg) and _state.enabled:
            return fn._record2(a, b, out)
        return _wrap(out)

    # -- what backward reads --------------------------------------------------------------
    def inputs(self, F):
        """The saved inputs: arrays in a fast backward, Tensors (with graph) under create_graph."""
        saved = self.saved
        if saved is _FREED or saved is None:
            raise RuntimeError(self._freed_message())
        if F.is_graph:
            return saved
        if len(saved) == 1:  # the common arities without a generator expression
            return (saved[0].data,)
        if len(saved) == 2:
            return (saved[0].data, saved[1].data)
        return tuple([t.data for t in saved])

    def output(self, F):
        """The saved output: an array, or under create_graph a Tensor that is this node's output."""
        out = self.out_data
        if out is None:
            raise RuntimeError(self._freed_message())
        if F.is_graph:
            return _from_node(out, self)
        return out

    @property
    def name(self) -> str:
        return type(self).__name__

    def _freed_message(self) -> str:
        return (
            f"backward through '{self.name}' a second time: its saved values were freed by the "
            "previous backward. Pass retain_graph=True to the first backward() to keep them."
        )

    def __repr__(self) -> str:
        return f"<{self.name} node #{getattr(self, 'index', '?')}>"

    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, gy, F):  # pragma: no cover - abstract
        raise NotImplementedError


_SCALAR_ARRAYS: dict = {}


def _scalar_array(c, dtype):
    """A cached read-only 0-d NumPy array holding c in `dtype` (c itself when not cacheable)."""
    if not c:  # 0.0 and -0.0 compare equal but differ in sign: not cached
        return c
    key = (c, dtype)
    a = _SCALAR_ARRAYS.get(key)
    if a is None:
        if len(_SCALAR_ARRAYS) > 4096:  # NaN keys never match: keep the cache bounded
            _SCALAR_ARRAYS.clear()
        a = np.array(c, dtype=dtype)
        a.flags.writeable = False
        _SCALAR_ARRAYS[key] = a
    return a


# ---------------------------------------------------------------------------------------------
# The two namespaces backward code is written against


class _ArrayNamespace:
    """Backward namespace on raw arrays: NumPy/CuPy functions plus descent's shape helpers."""

    is_graph = False

    def __init__(self, xp) -> None:
        self.xp = xp

    def __getattr__(self, name: str):
        from . import _nsfuncs  # noqa: PLC0415

        fn = getattr(_nsfuncs, name, None)
        if fn is not None:
            bound = functools.partial(fn, self.xp)
        else:
            bound = getattr(self.xp, name)
        setattr(self, name, bound)  # cache: later lookups skip __getattr__
        return bound


_array_namespaces: dict[Any, _ArrayNamespace] = {}


def array_namespace(xp) -> _ArrayNamespace:
    ns = _array_namespaces.get(xp)
    if ns is None:
        ns = _array_namespaces[xp] = _ArrayNamespace(xp)
    return ns


def graph_namespace():
    from . import _graphns  # noqa: PLC0415

    return _graphns


# ---------------------------------------------------------------------------------------------
# The backward pass


def run_backward(
    roots,
    root_grads,
    retain_graph: bool = False,
    create_graph: bool = False,
    capture=None,
    accumulate: bool = True,
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

    Returns:
        A list with the captured gradients (None where no gradient reached a tensor).
    """
    F = graph_namespace() if create_graph else None
    grads: dict[Any, Any] = {}  # node -> gradient of its output
    leaf_grads: dict[Any, Any] = {}  # leaf tensor -> accumulated gradient
    heap: list = []

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

    def deliver(target, g) -> None:
        if isinstance(target, Function):
            prev = grads.get(target)
            if prev is None:
                grads[target] = g
                heapq.heappush(heap, (-target.index, target))
            else:
                grads[target] = prev + g
        else:
            prev = leaf_grads.get(target)
            leaf_grads[target] = g if prev is None else prev + g

    for root, g in zip(roots, root_grads):
        if root._node is not None:
            deliver(root._node, g)
        elif root.requires_grad:
            deliver(root, g)

    prev_mode = _state.enabled
    _state.enabled = create_graph
    np_ns = array_namespace(np)
    ndarray = np.ndarray
    heappop, heappush = heapq.heappop, heapq.heappush
    try:
        while heap:
            node = heappop(heap)[1]
            gy = grads.pop(node)
            if node.hooks is not None or node.retained is not None:
                gy = _run_node_hooks(node, gy, create_graph)
            if capture_nodes and node in capture_nodes:
                for i in capture_nodes[node]:
                    captured[i] = gy if create_graph else Tensor._wrap(gy)
                pending_nodes -= 1
                if pending_nodes == 0 and not capture_leaves and not accumulate:
                    break
            saved = node.saved
            if saved is not None:
                if saved is _FREED:
                    raise RuntimeError(node._freed_message())
                for t, v in zip(saved, node.versions):
                    if t._version != v:
                        raise RuntimeError(_modified_message(node, t, v))
            if create_graph:
                if not node.differentiable_backward:
                    raise RuntimeError(
                        f"'{node.name}' does not support create_graph=True (higher-order "
                        "gradients): its backward is a fused array kernel. Use the composite "
                        "form of the op for higher-order derivatives."
                    )
                ns = F
            elif type(gy) is ndarray:
                ns = np_ns
            else:
                ns = array_namespace(backend.get_array_module(gy))
            gxs = node.backward(gy, ns)
            parents = node.parents
            if type(gxs) is not tuple and len(parents) == 1:
                # One input (most ops): the same steps as the loop below, without the tuples.
                parent = parents[0]
                if parent is not None and gxs is not None:
                    shape = node.in_shapes[0]
                    if gxs.shape != shape:
                        gxs = _sum_to_checked(node, gxs, shape, ns)
                    if isinstance(parent, Function):
                        prev = grads.get(parent)
                        if prev is None:
                            grads[parent] = gxs
                            heappush(heap, (-parent.index, parent))
                        else:
                            grads[parent] = prev + gxs
                    else:
                        prev = leaf_grads.get(parent)
                        leaf_grads[parent] = gxs if prev is None else prev + gxs
                if not retain_graph:
                    _release(node)
                continue
            if type(gxs) is not tuple:
                gxs = (gxs,)
            if len(gxs) != len(parents):
                raise RuntimeError(
                    f"internal error in '{node.name}'.backward: returned {len(gxs)} gradients "
                    f"for {len(parents)} inputs with shapes {node.in_shapes}"
                )
            for parent, gx, shape in zip(parents, gxs, node.in_shapes):
                if parent is None or gx is None:
                    continue
                if gx.shape != shape:
                    gx = _sum_to_checked(node, gx, shape, ns)
                # Deliver gx: accumulate out of place (never += into a shared array).
                if isinstance(parent, Function):
                    prev = grads.get(parent)
                    if prev is None:
                        grads[parent] = gx
                        heappush(heap, (-parent.index, parent))
                    else:
                        grads[parent] = prev + gx
                else:
                    prev = leaf_grads.get(parent)
                    leaf_grads[parent] = gx if prev is None else prev + gx
            if not retain_graph:
                _release(node)
    finally:
        _state.enabled = prev_mode

    # Leaves: hooks see the total gradient of this pass, then it is stored or captured.
    seen: set[int] = set()
    for leaf, g in leaf_grads.items():
        if leaf._hooks:
            gt = g if create_graph else Tensor._wrap(g)
            for hook in leaf._hooks:
                r = hook(gt)
                if r is not None:
                    gt = r
            g = gt if create_graph else gt.data
        if leaf in capture_leaves:
            for i in capture_leaves[leaf]:
                captured[i] = g if create_graph else Tensor._wrap(g)
        if not accumulate:
            continue
        if create_graph:
            leaf.grad = g if leaf.grad is None else leaf.grad + g
            continue
        if g.dtype != leaf.data.dtype:
            g = g.astype(leaf.data.dtype)
        if leaf.grad is None:
            # Never store an array that another gradient (or a broadcast view) shares.
            if id(g) in seen or not backend.owns_data(g):
                g = g.copy()
            seen.add(id(g))
            leaf.grad = Tensor._wrap(g)
        else:
            leaf.grad = Tensor._wrap(leaf.grad.data + g)
    return captured


def _release(node) -> None:
    """Free everything `node` saved for its backward: the saved inputs, the saved output and
    every `saved_slots` array. The one release step of the backward pass (fast and
    create_graph alike); a later backward through the node finds `_FREED` and says so."""
    if node.saved is not None or node.save_output or node.saved_slots:
        node.saved = _FREED
    node.out_data = None
    for name in node.saved_slots:
        setattr(node, name, None)


def _sum_to_checked(node, gx, shape, ns):
    """The engine's one unbroadcast: sum gx back to its input's shape, or name the culprit."""
    try:
        return ns.sum_to(gx, shape)
    except ValueError:
        raise RuntimeError(
            f"'{node.name}'.backward produced a gradient of shape {tuple(gx.shape)} for an input "
            f"of shape {shape}"
        ) from None


def _modified_message(node, t, v) -> str:
    return (
        f"an input of '{node.name}' (shape {tuple(t.shape)}) was modified in place after the op "
        f"saved it for backward (version {v} -> {t._version}). Clone it before the in-place "
        "change (x = x.clone()) or do the in-place change before using it."
    )


def _run_node_hooks(node, gy, create_graph):
    gt = gy if create_graph else Tensor._wrap(gy)
    for hook in node.hooks or ():
        r = hook(gt)
        if r is not None:
            gt = r
    if node.retained is not None:
        t = node.retained()
        if t is not None:
            if t.grad is None:
                t.grad = gt if create_graph else Tensor._wrap(gt.data.copy())
            else:
                t.grad = t.grad + gt if create_graph else Tensor._wrap(t.grad.data + gt.data)
    return gt if create_graph else gt.data


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = True,
):
    """Gradients of `outputs` with respect to `inputs`, returned (never stored in `.grad`).

    The PyTorch `torch.autograd.grad` equivalent. Unused inputs get None unless
    `allow_unused=False`, which raises.
    """
    single = isinstance(inputs, Tensor)
    if single:
        inputs = [inputs]
    if isinstance(outputs, Tensor):
        outputs = [outputs]
        if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
            grad_outputs = [grad_outputs]
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError(
                f"grad(): an input of shape {t.shape} does not require grad; create it with "
                "requires_grad=True"
            )
    seeds = [_seed(o, g, create_graph, "grad") for o, g in zip(outputs, grad_outputs)]
    if retain_graph is None:
        retain_graph = create_graph
    res = run_backward(
        outputs, seeds, retain_graph, create_graph, capture=list(inputs), accumulate=False
    )
    if not allow_unused and any(r is None for r in res):
        raise RuntimeError("grad(): one of the inputs was not used to compute the outputs")
    return res[0] if single else tuple(res)


def _seed(out, gradient, create_graph: bool, where: str):
    """The initial gradient of an output: ones for a scalar, else the user's `gradient`."""
    if not out.requires_grad:
        raise RuntimeError(
            f"{where}(): the tensor of shape {out.shape} does not require grad and has no graph "
            "(was it computed under no_grad(), or from inputs without requires_grad=True?)"
        )
    if gradient is None:
        if out.size != 1:
            made_by = f" (made by '{out._node.name}')" if out._node is not None else ""
            raise RuntimeError(
                f"{where}() on a non-scalar tensor of shape {out.shape}{made_by}: pass "
                "gradient= (a tensor of that shape), or reduce it first (e.g. .sum())"
            )
        xp = backend.get_array_module(out.data)
        g = xp.ones_like(out.data)
    else:
        g = gradient.data if isinstance(gradient, Tensor) else np.asarray(gradient)
        if tuple(g.shape) != tuple(out.shape):
            raise RuntimeError(
                f"{where}(): gradient has shape {tuple(g.shape)} but the output has shape "
                f"{out.shape}"
            )
        if g.dtype != out.data.dtype:
            g = g.astype(out.data.dtype)
    if create_graph:
        if isinstance(gradient, Tensor):
            return gradient
        return Tensor._wrap(g)
    return g
