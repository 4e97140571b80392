"""The engine: the tensor maker, graph nodes, the op hook point, and the reverse-mode backward.

How it works (STYLE.md, "The engine"):

* Every differentiable op is a `Function` subclass. `Op.apply(*tensors, **params)` runs `forward`
  on raw backend arrays and, when grad mode is on and an input requires grad, turns the op object
  itself into a graph node (`record_node`): it records its parents (the nodes that produced its
  inputs, or the leaf tensors themselves) and a creation index from a global counter.
* Creation order is a topological order: an op can only consume tensors that exist, so every parent
  was recorded before its child and has a smaller index. The backward pass therefore processes
  nodes by descending index from a heap, and a node is popped only after every consumer has
  delivered its gradient. Nothing recurses over the graph: a 100,000-deep chain works too.
* Two namespaces, one backward: `backward(self, gy, ops)` is written once per op against `ops`.
  In an ordinary pass the engine hands the op raw arrays and `ops` is the array namespace
  (`descent.array_backward`): the pass runs at NumPy speed and records nothing. Under
  `create_graph=True` it hands over Tensors and `ops` is the differentiable namespace that the
  ops layer registers (`descent.ops.graph_backward`), so the backward pass is itself recorded and
  can be differentiated again.
* Gradients live in a dict keyed by node while the pass runs and are popped when consumed; they
  accumulate out of place. After each op's backward the engine sums every gradient back to its
  input's shape (`sum_to`, the one unbroadcast) and checks the count of gradients against the
  inputs. Then it frees what the node saved unless `retain_graph=True` (the one release step,
  the same for the fast and the create_graph path); a second backward through a released node
  raises an error naming the op.

Layers: this module is the engine, with `grad_mode`, `hooks`, `grad_fn` and `array_backward`
below it and `backend` at the bottom; it never imports `tensor.py` or an op. The Tensor class
and the differentiable namespace register themselves here (`register_tensor_class`,
`register_graph_namespace`) when they are defined, and tools such as anomaly mode attach through
`add_op_hook` instead of patching classes. `pyproject.toml`'s import-linter contract keeps it so.
The view tracking (`mark_view`, `ViewTag`, ...) is in `autograd_views`, re-exported here.
"""

from __future__ import annotations

import itertools as _itertools
import sys as _sys
import threading as _threading
import weakref as _weakref
from typing import Any as _Any

import numpy as _np

from . import grad_fn as _gf
from . import meta as _meta
from .autograd_views import AliasRef as _AliasRef  # noqa: F401
from .autograd_views import DetachedView as _DetachedView  # noqa: F401 - view tracking, for ops
from .autograd_views import NoGradView as _NoGradView  # noqa: F401
from .autograd_views import ViewTag as _ViewTag  # noqa: F401
from .autograd_views import _getrefcount  # noqa: F401
from .autograd_views import bump_family as _bump_family  # noqa: F401
from .autograd_views import has_live_views as _has_live_views  # noqa: F401
from .autograd_views import mark_unrecorded_view as _mark_unrecorded_view  # noqa: F401
from .autograd_views import mark_view as _mark_view  # noqa: F401
from .autograd_views import register as _register_view  # noqa: F401
from .autograd_views import shared_view_base as _shared_view_base  # noqa: F401
from .autograd_views import view_source as _view_source  # noqa: F401
from .grad_fn import NodeName as _NodeName
from .grad_fn import next_functions as _next_functions
from .grad_fn import node_repr as _node_repr
from .grad_mode import INFERENCE_SAVED_MESSAGE as _INFERENCE_SAVED_MESSAGE
from .grad_mode import (  # noqa: F401 - torch.autograd's names
    _inference_seen,
    _state,
    enable_grad,
    inference_mode,
    no_grad,
    set_grad_enabled,
    set_multithreading_enabled,
)
from .grad_mode import is_grad_enabled as _is_grad_enabled  # noqa: F401 - for the ops
from .hooks import HookHandle as _HookHandle  # re-exported: Tensor.register_hook returns one
from .hooks import _backward_hooks as _backward_hooks  # re-exported: anomaly mode's tests
from .hooks import _forward_hooks, _run_forward_hooks
from .hooks import add_op_hook as _add_op_hook

# NumPy's floating-point warnings ("overflow encountered in exp", "divide by zero encountered
# in log", "invalid value encountered in subtract" for inf - inf) are silenced where ops compute,
# as PyTorch is silent there: the error state is set around every op's forward and once around
# a backward pass. In NumPy 2 it is a context variable: setting and resetting it directly costs
# ~0.25 us (np.errstate, which builds its state on every entry, ~1.5 us).
try:
    from numpy._core._ufunc_config import _extobj_contextvar, _make_extobj

    _QUIET = _make_extobj(all="ignore")
    _quiet_on, _quiet_off = _extobj_contextvar.set, _extobj_contextvar.reset
except ImportError:  # pragma: no cover - another NumPy layout: the warnings are not silenced
    _QUIET = None

    def _quiet_on(state):
        return None

    def _quiet_off(token):
        return None


_new = object.__new__
_ndarray, _generic, _asarray = _np.ndarray, _np.generic, _np.asarray
_MetaArray = _meta.MetaArray
# Meta inputs give meta outputs: the check is an op hook, attached only while meta arrays exist.
_meta.register_hook_attacher(lambda fn: _add_op_hook(forward=fn))

# ---------------------------------------------------------------------------------------------
# The tensor maker

_tensor_class: _Any = None  # descent.tensor.Tensor, once it has registered itself


def _register_tensor_class(cls) -> None:
    """Tell the engine the class of the tensors it makes (called once, by `descent.tensor`).

    The engine creates every op's output but sits below `tensor.py` in the layers, so it never
    imports it; the Tensor class hands itself over here when it is defined instead.
    """
    global _tensor_class
    _tensor_class = cls


# Storage class -> Tensor subclass: a tensor made around such a storage (descent.sparse's COO
# and CSR storages) takes that class, wherever the engine makes it (op outputs, leaf gradients,
# detach). Filled by `register_storage_class`; NumPy arrays never reach the lookup.
_storage_classes: dict = {}


def _register_storage_class(storage_cls, tensor_cls) -> None:
    """Make every tensor whose `_data` is a `storage_cls` an instance of `tensor_cls` (a Tensor
    subclass with `__slots__ = ()`; called by descent.sparse at import)."""
    _storage_classes[storage_cls] = tensor_cls


# True while an inference_mode(True) context is open in any thread (grad_mode._sync_inference)
_inference_on = False


def _init_tensor(t, data, requires_grad: bool = False, node=None):
    """Set every field of the tensor `t` and return it: the ONE place tensor fields are written
    when a tensor is made (`Tensor.__init__`, `new_tensor` and every op output come here).

    `data` is a backend array (a 0-d array, never a NumPy scalar: NumPy returns scalars for
    0-d results, which have no `.reshape(...)` semantics of their own, so they are converted).
    """
    if type(data) is not _ndarray:  # (NumPy arrays, the common case, pass one type test)
        if isinstance(data, _generic):
            data = _asarray(data)
        elif type(data) in _storage_classes:  # a sparse storage: its Tensor subclass
            t.__class__ = _storage_classes[type(data)]
        elif type(data) is _MetaArray and any(data.strides):  # an op allocated a meta
            data = _meta.empty(data.shape, data.dtype)  # result: back to zero strides
    elif type(data.base) is _MetaArray:  # np.asarray(meta array): a plain view; meta again
        data = _meta.empty(data.shape, data.dtype)
    t._data = data
    t._rg = requires_grad
    t._grad = None  # the slot behind Tensor.grad (whose setter checks what users assign)
    t._node = node  # the Function that produced t (None for a leaf)
    t._version = 0  # bumped by in-place changes; see Function.apply, "saved values"
    t._hooks = None
    t.name = None
    # the view links (autograd_views), None until the tensor is or has a view: set here so that
    # reading them is a plain slot read (an unset slot's getattr(t, name, None) raises and
    # catches an AttributeError inside: 5x slower, and in-place ops read both)
    t._view_base = None
    t._views = None
    if _inference_on and _state.inference:  # made under inference_mode (grad_mode.py)
        t._inference = True
    return t


def _new_tensor(data, requires_grad: bool = False, node=None):
    """A new Tensor around the backend array `data` (no copy, no dtype conversion)."""
    return _init_tensor(_new(_tensor_class), data, requires_grad, node)


# ---------------------------------------------------------------------------------------------
# Low-precision dispatch: bfloat16 (docs/bfloat16.md)
#
# bfloat16 arrays (ml_dtypes' NumPy dtype, of kind "V") do not go into op kernels:
# `set_cast_dispatch` installs a function, once data has been given the bfloat16 dtype, that
# the three entry points below call when an input is bfloat16: it runs the op in float32
# between differentiable casts and rounds the result to bfloat16 (PyTorch's CPU arithmetic), or
# returns None for an op that handles bfloat16 itself. Until then it is None, and the whole cost
# of this feature for every other program is one global read per op (then, a dtype test).
_cast_dispatch: _Any = None


def _set_cast_dispatch(fn) -> None:
    """Install `fn(cls, entry, tensors, args, params)`, consulted by every `Function` entry
    point before its forward: it returns the op's output Tensor, or None to run as usual."""
    global _cast_dispatch
    _cast_dispatch = fn


# ---------------------------------------------------------------------------------------------
# Graph nodes

_counter = _itertools.count()

# A class-level marker: saved values were released by a backward pass without retain_graph.
_FREED = object()

# Weak references to the nodes recorded with saved inputs (live or not): utils.swap_tensors
# asks which live node saved a tensor (PyTorch's use-count check) by walking these instead of
# the garbage collector's whole heap. record_node prunes the dead and freed ones whenever the
# list has doubled since the last pruning, so it stays proportional to the live graphs.
_savers: list = []
_savers_limit = [4096]


def _live_saving_nodes() -> list:
    """The live nodes whose saved inputs are still held (not yet freed by a backward)."""
    nodes = [n for r in _savers if (n := r()) is not None and type(n.saved) is tuple]
    _savers[:] = [_weakref.ref(n) for n in nodes]
    _savers_limit[0] = max(4096, 2 * len(nodes))
    return nodes

# saved_tensors_hooks (autograd_graph.py): its dispatcher while a context is open in any thread
# (it packs with the calling thread's innermost context), or None. record_node
# tests it once per recorded op; a set one packs what the node saved into PackedSaved tuples.
_saved_hooks = None


# An op that saved its output and was applied in place through a view (y[0].sigmoid_()): node ->
# a weak reference to the view's node after the write (ops/view_write.write). Under create_graph
# its saved output is that view, as PyTorch's (SavedVariable's is_inplace_on_view: the view's
# grad_fn, held weakly), so a second backward through it passes the base's node and its hooks;
# when the view's node is gone, the node itself (PyTorch's fallback to saved_for).
_view_outputs: _weakref.WeakKeyDictionary = _weakref.WeakKeyDictionary()


def _note_view_output(result, view) -> None:
    """ops/view_write.write: `result` (an op's output) was written into the view `view`."""
    node = result._node
    if node is not None and node.out_data is result._data and view._node is not None:
        _view_outputs[node] = _weakref.ref(view._node)


class _PackedSaved(tuple):
    """`node.saved` / `node.out_data` under saved_tensors_hooks: per saved tensor a slot with
    `_version` (the engine's in-place check) and `unpack(graph)` (autograd_graph._Slot)."""

    __slots__ = ()

    def unpack(self, graph: bool = False) -> tuple:
        return tuple([slot.unpack(graph) for slot in self])


class _ZeroGradient:
    """A gradient known to be zero, of a given shape and dtype (PyTorch's "zero tensor", which
    sgn's backward returns for real inputs). An op whose derivative is a product with its
    gradient in PyTorch (`zero_passes`: mul, sqrt, log, reshape, ...) passes it on without
    running its backward, so no 0 * inf of its derivative becomes nan; any other op gets real
    zeros (PyTorch materializes the zero tensor there: reciprocal at 0 then gives nan, and
    floor_divide raises). A real gradient meeting it replaces it; a leaf it reaches alone gets
    zeros as `.grad`. Ops return the shapeless ZERO_GRAD; the engine adds shape and dtype."""

    __slots__ = ("shape", "dtype", "xp")

    def __init__(self, shape=None, dtype=None, xp=None):
        self.shape, self.dtype, self.xp = shape, dtype, xp

    def materialize(self, create_graph: bool):
        z = self.xp.zeros(self.shape, self.dtype)
        return _new_tensor(z) if create_graph else z


_ZERO_GRAD = _ZeroGradient()


class Function:
    """Base class of differentiable operations; an applied instance is a graph node.

    Subclasses implement:
      * `forward(self, *arrays) -> array` on raw backend arrays (parameters were set as attributes
        from `apply`'s keyword arguments before it runs);
      * `backward(self, gy, ops) -> gradient or tuple of gradients`, one per input (None where an
        input gets no gradient), written with `ops` (the array namespace, or under
        create_graph the differentiable one: see the module docstring) so that one code path
        serves both the fast and the differentiable backward pass.

    Class attributes say what backward needs, so nothing else is kept alive:
      * `save_inputs = True` keeps the input tensors (their versions are checked at backward);
      * `save_output = True` keeps the output array (retrieved with `self.output(ops)`);
      * `saved_slots` names op-specific slots holding arrays that forward computed for backward
        (a fused kernel's statistics, the attention probabilities). All three are released
        after backward unless retain_graph (run_backward's release step).

    A node's name is its op's class name plus "Backward" (PyTorch's `grad_fn` names): the node
    for `LayerNorm` is "LayerNormBackward", never confused with the module `nn.LayerNorm`.
    """

    # Node fields, all set by `record_node`. Slots, not a __dict__: a node is made per op.
    __slots__ = (
        "parents",  # per input: the producing node, the leaf tensor itself, or None (no grad)
        "index",  # creation index: the backward pass runs in descending index order
        "saved",  # the saved input tensors, None, or _FREED after backward
        "versions",  # the inputs' versions when saved (an in-place change is detected)
        "out_data",  # the saved output array (save_output) or None
        "in_shapes",  # the inputs' shapes: the engine unbroadcasts each gradient to these
        "hooks",  # hooks registered on the output tensor (Tensor.register_hook) or None
        "retained",  # weakref to the output when it called retain_grad(), or None
        "group",  # the pieces of one split / chunk / unbind (grad_fn.PieceGroup), or None
        "__weakref__",
    )

    save_inputs = False
    save_output = False
    saved_slots: tuple = ()
    #: True where PyTorch's node saves a value that descent keeps as an op parameter: a Python
    #: scalar operand (x * 2 saves the wrapped number 2 as a tensor), an index (gather, sort's
    #: indices). PyTorch frees it with the rest, so a second backward without retain_graph
    #: raises there: the node counts as saving (the release marks it freed). The parameter
    #: itself stays (a scalar, or an index the caller holds anyway).
    saves_params = False
    #: The inputs whose gradients read the saved values, where only some do (fmod(a, b) reads
    #: a and b for b's gradient only): with none of them needing a gradient PyTorch saved
    #: nothing, so neither a second backward nor an in-place change of a saved input raises.
    #: None: every input's.
    saved_for: tuple | None = None
    #: True for ops whose output may be a view of their input's memory (reshape, transpose,
    #: basic indexing, ...): a recorded output remembers the tensor that owns that memory, so a
    #: recorded in-place op on it writes through (ops/view_write.py).
    makes_view = False

    #: True for ops that run on bfloat16 arrays as they are (casts, copies, moves): the low-
    #: precision dispatch leaves them alone (see set_cast_dispatch). "basic": only when the
    #: op's `basic` parameter is true (indexing: a basic index moves values only).
    native_bfloat16: _Any = False
    #: For a tensor-scalar op: how it runs on a float16 tensor when float16 cannot hold the
    #: Python scalar c exactly (x * 0.1, x * -1e9): `half_scalar_apply(x, c)`, PyTorch's float32
    #: "opmath" (ops/arithmetic.py); None: c is rounded to float16 first, as PyTorch's add does.
    half_scalar_apply: _Any = None
    #: False for ops whose backward cannot be differentiated again (raise under create_graph).
    differentiable_backward = True
    #: Which inputs a known-zero gradient passes to unchanged (True: all; a tuple per input;
    #: False: backward runs on real zeros). See _ZeroGradient.
    zero_passes: bool | tuple = False
    #: An elementwise op whose inputs broadcast to its output: a known-zero gradient passed to
    #: an input of another shape is materialized, as PyTorch's unbroadcast (sum_to) does.
    broadcasts = False

    def zero_backward(self, gy, ops):
        """backward for a known-zero gy, materialized: backward itself, unless PyTorch's formula
        passes its zero tensor through a part of it first (RDivScalar's scale by c)."""
        return self.backward(gy, ops)

    # Whether nodes of this op keep anything for backward: the release step tests this one
    # class attribute instead of three.
    _saves = False
    #: The op this node is a record of: the node's class, or, once `Tensor.grad_fn` or
    #: `next_functions` gave the node a subclass named as PyTorch names it (`SumBackward0`,
    #: grad_fn.torch_class), that subclass's base. descent's own code asks `node.op_class`,
    #: never `type(node)`, which op made a node.
    op_class: type
    #: True for nodes that keep their class when read through `grad_fn` (descent's own
    #: bookkeeping nodes that code elsewhere tells apart by `type(...) is`).
    keeps_class = False
    next_functions = property(lambda self: _next_functions(self, Function))  # grad_fn.py
    register_hook = lambda self, hook: _gf.register_hook(self, hook, _HookHandle)  # noqa: E731
    register_prehook = lambda self, hook: _gf.register_prehook(self, hook, _HookHandle)  # noqa: E731

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "op_class" not in cls.__dict__:  # (a renamed subclass names its op class itself)
            cls.op_class = cls
        clash = set(cls.__dict__.get("__slots__", ())) & set(Function.__slots__)
        if clash:
            raise TypeError(f"{cls.__name__}: op parameters {sorted(clash)} clash with Node fields")
        cls._saves = bool(cls.save_inputs or cls.save_output or cls.saved_slots or cls.saves_params)
        if isinstance(cls.__dict__.get("forward"), staticmethod) or "setup_context" in cls.__dict__:
            # PyTorch's custom function (forward(ctx, *tensors) as a staticmethod): its apply
            # records one node through descent.autograd_torch, which is loaded here only then.
            from .autograd_torch import ctx_apply

            cls.apply = classmethod(ctx_apply)

    # -- the entry points --------------------------------------------------------------------
    # Recording is the whole per-op cost of the graph, so there are three entry points, all
    # thin calls of the same two pieces, `record_node` (which makes the output tensor with
    # `init_tensor`) or `init_tensor` alone when nothing is recorded: `apply` (any arity, with
    # parameters), `apply2` (a parameterless binary op: the Tensor operators' path) and
    # `apply_scalar` (tensor-scalar ops). Their parents tuples are written out per arity (a
    # list comprehension costs more than the rest of the recording for a tiny tensor), and
    # each ends with the same one-line test for op hooks. `benchmarks/overhead.py` measures
    # the result against PyTorch.

    @classmethod
    def apply(cls, *inputs, **params):
        """Run the op on Tensors, recording a node when grad mode is on and an input needs grad."""
        if _cast_dispatch is not None and (
            inputs[0]._data.dtype.num >= 256 if len(inputs) == 1
            else any([t._data.dtype.num >= 256 for t in inputs])
        ):  # fmt: skip
            # a bfloat16 or float8 input (ml_dtypes' dtypes: NumPy numbers >= 256, kind "V" but
            # float8_e5m2's "f"): see set_cast_dispatch
            t = _cast_dispatch(cls, cls.apply, inputs, (), params)
            if t is not None:
                return t
        fn = _new(cls)
        if params:
            for k, v in params.items():
                setattr(fn, k, v)
        if len(inputs) == 1:  # the common unary case, without the general loops
            x = inputs[0]
            token = _quiet_on(_QUIET)
            try:
                out = fn.forward(x._data)
            finally:
                _quiet_off(token)
            if x._rg and _state.enabled:
                node = x._node
                t = _record_node(fn, (x if node is None else node,), (x._data.shape,), inputs, out)
                if fn.makes_view:
                    _mark_view(t, x)
            else:
                t = _init_tensor(_new(_tensor_class), out)
                if fn.makes_view:
                    _mark_unrecorded_view(t, x)
        elif len(inputs) == 2:  # (Linear, LayerNorm with a weight: apply2's parents, params)
            a, b = inputs
            token = _quiet_on(_QUIET)
            try:
                out = fn.forward(a._data, b._data)
            finally:
                _quiet_off(token)
            if (a._rg or b._rg) and _state.enabled:
                na, nb = a._node, b._node
                parents = (
                    na if na is not None else (a if a._rg else None),
                    nb if nb is not None else (b if b._rg else None),
                )
                t = _record_node(fn, parents, (a._data.shape, b._data.shape), inputs, out)
            else:
                t = _init_tensor(_new(_tensor_class), out)
        else:
            token = _quiet_on(_QUIET)
            try:
                out = fn.forward(*[t._data for t in inputs])
            finally:
                _quiet_off(token)
            if _state.enabled and any([t._rg for t in inputs]):
                parents = tuple([_parent(t) for t in inputs])
                shapes = tuple([t._data.shape for t in inputs])
                t = _record_node(fn, parents, shapes, inputs, out)
            else:
                t = _init_tensor(_new(_tensor_class), out)
        if _forward_hooks:
            _run_forward_hooks(fn, inputs, t)
        return t

    @classmethod
    def apply2(cls, a, b):
        """`apply` for a parameterless binary op on two Tensors (the operators' fast path)."""
        if _cast_dispatch is not None and (a._data.dtype.num >= 256 or b._data.dtype.num >= 256):
            t = _cast_dispatch(cls, cls.apply2, (a, b), (), None)
            if t is not None:
                return t
        fn = _new(cls)
        token = _quiet_on(_QUIET)
        try:
            out = fn.forward(a._data, b._data)
        finally:
            _quiet_off(token)
        if (a._rg or b._rg) and _state.enabled:
            na, nb = a._node, b._node
            parents = (
                na if na is not None else (a if a._rg else None),
                nb if nb is not None else (b if b._rg else None),
            )
            t = _record_node(fn, parents, (a._data.shape, b._data.shape), (a, b), out)
        else:
            t = _init_tensor(_new(_tensor_class), out)
        if _forward_hooks:
            _run_forward_hooks(fn, (a, b), t)
        return t

    @classmethod
    def apply_scalar(cls, x, c):
        """`apply` for a tensor-scalar op (an op with slots `c` and `ca`) on Tensor x and
        Python scalar c. On the CPU `ca` is c as a cached read-only 0-d array of x's dtype:
        NumPy combines an array with a same-dtype 0-d array about twice as fast as with a Python
        float, and NEP 50 makes the results identical (the float is cast to the dtype first)."""
        if _cast_dispatch is not None and x._data.dtype.num >= 256:
            t = _cast_dispatch(cls, cls.apply_scalar, (x,), (c,), None)
            if t is not None:
                return t
        d = x._data
        # Only floating NumPy arrays use the cached array: 0-d integer arrays are not "weak"
        # scalars in NumPy 2 and would promote int32 tensors to int64.
        if type(d) is _ndarray and d.dtype.kind == "f":
            ca = _SCALAR_ARRAYS.get((c, d.dtype))
            if ca is None:
                ca = _scalar_array(c, d.dtype)
                if ca is None:  # float16 and a c it cannot hold: PyTorch's float32 "opmath"
                    half = cls.half_scalar_apply
                    if half is not None:
                        return half(x, c)
                    with _np.errstate(over="ignore"):  # the op rounds c first, as PyTorch's
                        ca = _np.array(c, dtype=d.dtype)  # (x + 1e9 is inf, no warning)
        else:
            ca = c
        fn = _new(cls)
        fn.c = c
        fn.ca = ca
        token = _quiet_on(_QUIET)
        try:
            out = fn.forward(d)
        finally:
            _quiet_off(token)
        if x._rg and _state.enabled:
            node = x._node
            t = _record_node(fn, (x if node is None else node,), (d.shape,), (x,), out)
        else:
            t = _init_tensor(_new(_tensor_class), out)
        if _forward_hooks:
            _run_forward_hooks(fn, (x,), t)
        return t

    # -- what backward reads --------------------------------------------------------------
    def inputs(self, ops):
        """The saved inputs: arrays in a fast backward, Tensors (with graph) under create_graph."""
        saved = self.saved
        if saved is _FREED or saved is None:
            raise RuntimeError(self._freed_message())
        if type(saved) is _PackedSaved:  # saved_tensors_hooks: unpacked at each use
            saved = saved.unpack(ops.is_graph)
        if ops.is_graph:
            return saved
        if len(saved) == 1:  # the common arities without a generator expression
            return (saved[0]._data,)
        if len(saved) == 2:
            return (saved[0]._data, saved[1]._data)
        return tuple([t._data for t in saved])

    def output(self, ops):
        """The saved output: an array, or under create_graph a Tensor that is this node's output
        (a new Tensor object for the same value and graph position)."""
        out = self.out_data
        if out is None:
            raise RuntimeError(self._freed_message())
        if type(out) is _PackedSaved:  # saved_tensors_hooks: unpacked at each use
            out = out.unpack()[0]._data
        if _overwritten and self in _overwritten:
            raise RuntimeError(
                f"the output of '{self.name}' (shape {tuple(out.shape)}) was modified in place "
                "after the op saved it for backward. Clone it before the in-place change "
                "(y = y.clone()) or make the change out of place."
            )
        if ops.is_graph:
            if _view_outputs:  # applied in place through a view: the view's node after the write
                ref = _view_outputs.get(self)
                node = None if ref is None else ref()
                if node is not None:
                    return _new_tensor(out, True, node)
            return _new_tensor(out, True, self)
        return out

    @property
    def name(self) -> str:
        """The op's class name plus "Backward" (descent's name, in its messages): a str, also
        callable: `name()` gives PyTorch's name for the node ("MulBackward0", grad_fn.py)."""
        return _NodeName(self.op_class.__name__ + "Backward", self)

    # PyTorch's saved-value attributes (torchviz's show_saved reads them), as properties: a
    # class-level __getattr__ would keep CPython from specializing every node attribute read.
    _saved_self = property(lambda self: _gf.saved_attr(self, "_saved_self", _new_tensor))
    _saved_other = property(lambda self: _gf.saved_attr(self, "_saved_other", _new_tensor))
    _saved_result = property(lambda self: _gf.saved_attr(self, "_saved_result", _new_tensor))

    def __dir__(self):
        """dir() lists only the `_saved_*` attributes this node can give (as PyTorch's)."""
        return _gf.node_dir(self, super().__dir__())

    def _free_saved(self) -> None:
        """The one release after a backward without retain_graph: what the node saved (its
        inputs, its output, every saved_slots array) goes; a later backward finds _FREED."""
        self.saved = _FREED
        self.out_data = None
        for name in self.saved_slots:
            setattr(self, name, None)

    def _freed_message(self) -> str:
        return (
            f"backward through '{self.name}' a second time: its saved values were freed by the "
            "previous backward. Pass retain_graph=True to the first backward() to keep them."
        )

    def __repr__(self) -> str:
        return _node_repr(self)  # PyTorch's: <MulBackward0 object at 0x...>

    def forward(self, *arrays):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, gy, ops):  # pragma: no cover - abstract
        raise NotImplementedError


Function.op_class = Function


def _parent(t):
    """What a node records for input t: its producer, t itself for a leaf that requires grad,
    or None (no gradient flows there)."""
    node = t._node
    if node is not None:
        return node
    return t if t._rg else None


#: The number of live StaleView nodes (ops/view_write.py, which sets `_stale_check`). While
#: there are any, recording an op checks its parents, so that an op using a stale view raises
#: at once, as PyTorch's; otherwise the cost is this one test per recorded op.
_stale_live = 0
_stale_check = None


class _BackwardState(_threading.local):
    """`on`: a backward pass runs in this thread (create_graph records ops; the engine sets it).
    Per thread: another thread's pass must not switch off this thread's stale-view check (a
    process-wide flag, before session 22, could also stay set after two passes overlapped).

    `consume`: the running pass frees each node's saved values right after its backward (no
    retain_graph) and nothing watches it (no create_graph, backward op hooks or pass hooks:
    descent.compile's recorder, anomaly mode). A backward may then write its result into an
    array its own forward made and saved for it alone (GELU's derivative `d`), instead of a
    fresh one."""

    on = False
    consume = False


_backward_state = _BackwardState()


def _record_node(node, parents, in_shapes, inputs=(), out=None, index=None):
    """Make the op object `node` a graph node: the ONE place node fields are set.

    Args:
        node: a Function instance (from `apply`, or built by hand as DDP does).
        parents: per input, the producing node, the leaf tensor, or None.
        in_shapes: per input, its shape (each gradient is summed back to it).
        inputs: the input Tensors; kept when the op has `save_inputs`.
        out: the output array, or None for a node without an output tensor (DDP's).
        index: the creation index; the next one of the global counter by default. A tool that
            re-records a node at another place in the order (DDP) must keep it above every
            parent's index and below every consumer's, or the backward order breaks.

    Returns:
        The output Tensor (`init_tensor`, requiring grad, made by this node), or None without
        `out`.
    """
    if _stale_live and not _backward_state.on:  # a stale view is alive: using one as an operand
        _stale_check(parents)  # raises (ops/view_write)
    node.parents = parents
    node.index = next(_counter) if index is None else index
    node.in_shapes = in_shapes
    node.hooks = None
    node.retained = None
    node.group = None
    if node.save_inputs:
        node.saved = inputs
        _savers.append(_weakref.ref(node))
        if len(_savers) > _savers_limit[0]:
            _live_saving_nodes()
        # Saved values are versioned: an in-place change to a saved input after the op ran
        # would silently give a wrong gradient, so backward compares these with the
        # inputs' versions then and raises on a mismatch. (Once an inference_mode was
        # entered, an inference tensor among them raises: PyTorch's SavedVariable check.)
        n = len(inputs)
        if n == 1:
            a = inputs[0]
            node.versions = (a._version,)
            if _inference_seen[0] and a._inference:
                _check_inference_saved(node, inputs)
        elif n == 2:
            a, b = inputs
            node.versions = (a._version, b._version)
            if _inference_seen[0] and (a._inference or b._inference):
                _check_inference_saved(node, inputs)
        else:
            node.versions = tuple([t._version for t in inputs])
            if _inference_seen[0] and any([t._inference for t in inputs]):
                _check_inference_saved(node, inputs)
    else:
        node.saved = None
        node.versions = ()
    if out is None:
        node.out_data = None
        if _saved_hooks is not None:
            _saved_hooks.pack_node(node, None)
        return None
    t = _init_tensor(_new(_tensor_class), out, True, node)
    node.out_data = t._data if node.save_output else None  # t.data: a 0-d array, not a scalar
    if _saved_hooks is not None:  # saved_tensors_hooks: pack what was saved (autograd_graph)
        _saved_hooks.pack_node(node, t)
    return t


def _apply_view(fn, x):
    """`Function.apply`'s unary path for a view op object `fn` that its caller made with its
    parameters set (`fn = _new(Transpose); fn.axes = ...`): the op-table fast paths of view,
    reshape, transpose and split (ops/shape.py) come here instead of `apply(x, **params)`.
    The same steps (forward, node, view links, op hooks) without the keyword dict and the
    floating-point error state (a view computes nothing). Returns None for a bfloat16 or
    float8 input: the caller then takes `apply` (the low-precision dispatch)."""
    d = x._data
    if _cast_dispatch is not None and d.dtype.num >= 256:
        return None
    out = fn.forward(d)
    if x._rg and _state.enabled:
        node = x._node
        t = _record_node(fn, (x if node is None else node,), (d.shape,), (x,), out)
        _mark_view(t, x)
    else:
        t = _init_tensor(_new(_tensor_class), out)
        _mark_unrecorded_view(t, x)
    if _forward_hooks:
        _run_forward_hooks(fn, (x,), t)
    return t


def _check_inference_saved(node, inputs) -> None:
    """PyTorch's error for an inference tensor saved for backward (its SavedVariable check): the
    inputs that backward reads (`read_inputs`: where's condition, not its branches)."""
    read = getattr(node, "read_inputs", None)
    for i, t in enumerate(inputs):
        if t._inference and (read is None or i in read):
            raise RuntimeError(_INFERENCE_SAVED_MESSAGE)


# Nodes whose saved output was overwritten by an unrecorded in-place write: the version check
# covers saved inputs only and a node cannot hold its output Tensor (a cycle), so mark it here.
_overwritten: _weakref.WeakSet = _weakref.WeakSet()


def _mark_overwritten(node) -> None:
    """Backward through `node` raises: the output it saved was changed in place since."""
    _overwritten.add(node)


def _overwrote_saved_output(t) -> None:
    """Called by in-place writes that are not recorded: if t's array is the output its node
    saved for backward, backward through that node raises instead of using the new values."""
    node = t._node
    if node is not None and node.out_data is not None and node.out_data is t._data:
        _overwritten.add(node)


_SCALAR_ARRAYS: dict = {}


def _scalar_array(c, dtype):
    """A cached read-only 0-d NumPy array holding c in `dtype` (c itself when not cacheable);
    None for a float16 dtype and a c that float16 cannot hold exactly (0.1, 1e-8, -1e9): such
    ops compute as PyTorch's, in float32 (see `Function.half_scalar_apply`)."""
    if not c:  # 0.0 and -0.0 compare equal but differ in sign: not cached
        return c
    key = (c, dtype)
    a = _SCALAR_ARRAYS.get(key)
    if a is None:
        if len(_SCALAR_ARRAYS) > 4096:  # NaN keys never match: keep the cache bounded
            _SCALAR_ARRAYS.clear()
        with _np.errstate(over="ignore"):  # 1e9 in float16 is inf (an overflow warning)
            a = _np.array(c, dtype=dtype)
        if dtype.itemsize == 2 and float(a) != c and c == c:  # float16 rounded c (nan kept)
            return None
        a.flags.writeable = False
        _SCALAR_ARRAYS[key] = a
    return a


# ---------------------------------------------------------------------------------------------
# The differentiable namespace

_graph_namespace: _Any = None


def _register_graph_namespace(namespace) -> None:
    """Hand the engine the backward namespace for `create_graph=True` (called once, by
    `descent.ops` at import): the ops layer's differentiable functions under the names of
    `descent.array_backward`, with `is_graph = True`."""
    global _graph_namespace
    _graph_namespace = namespace


# torch.autograd's functions (`grad`, `backward(tensors, ...)`, anomaly mode, `functional`) live
# in descent.autograd_torch, loaded when first asked for: importing the engine never loads them.
_TORCH_NAMES = ("grad", "backward", "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled",
                "is_anomaly_check_nan_enabled", "Variable", "FunctionCtx", "functional",
                "enforce_grad_layout_policy", "is_tensor_like")  # fmt: skip


def __getattr__(name: str):
    if name in _TORCH_NAMES:
        from . import autograd_torch

        return getattr(autograd_torch, name)
    if name == "graph":  # torch.autograd.graph: saved_tensors_hooks, save_on_cpu
        from . import autograd_graph

        return autograd_graph
    if name == "profiler":  # torch.autograd.profiler: profile, record_function
        from . import autograd_profiler

        return autograd_profiler
    if name == "grad_mode":  # torch.autograd.grad_mode.no_grad, ...
        from . import grad_mode

        return grad_mode
    if name == "function" and f"{__name__}.function" in _sys.modules:
        # `@torch.autograd.function.once_differentiable` with no import: the module that
        # descent/__init__.py aliases (lazily) as descent.autograd.function
        return _sys.modules[f"{__name__}.function"]
    if name in ("gradcheck", "gradgradcheck", "GradcheckError"):  # in autograd_gradcheck.py
        from . import autograd_gradcheck

        return getattr(autograd_gradcheck, name)
    raise AttributeError(f"module 'descent.autograd' has no attribute {name!r}")


# The backward pass (its own module only to keep files short; the engine's layer). Imported last:
# it takes Function, new_tensor and the rest from this module, which are defined by now.
from .autograd_backward import _run_backward, _seed  # noqa: E402, F401
from .autograd_backward import run_backward as _engine_backward  # noqa: E402, F401
