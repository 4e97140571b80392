"""Recording one eager call of a function as a flat program over array slots.

The recorder watches a call through the engine's hook points (STYLE.md: tools attach through
hooks, never by patching classes for the whole process):

* `autograd.add_op_hook(forward=...)`: every op's forward, with its op object, its input
  Tensors and its output Tensor -> one `Forward` instruction (the op object is kept: replay calls
  its `forward` again on new arrays, and its `backward` when it was a graph node);
* `autograd.add_op_hook(backward=...)`: the order in which the backward pass visits the nodes,
  and which inputs got a gradient;
* `hooks.add_pass_hook`: a backward pass's roots, seeds and options, and its leaf gradients ->
  one `Backward` instruction.

Work that is not an op is seen through the objects the function uses, for the duration of the
recording only (attributes replaced while any thread records; `attach.py` sends the recording
thread's calls to its recorder and passes other threads' through): an optimizer's `step` and
`zero_grad`, `clip_grad_norm_`/`clip_grad_value_`, and `dropout_mask` (the one place dropout
draws random numbers) become `Call` instructions that replay runs for real, so the optimizer's
state, step count and learning rate and the generator's order of draws stay eager's. The
sampling functions (`randn`, `rand_like`, `bernoulli`, the values of `x.normal_()`, ...) called
by the user's code become `Draw` ops (creation_random.draw_recorders), which a replay runs
again on the same generator in the same order. The default generator is watched while
recording: any other draw cannot be replayed and makes the function fall back to eager; so do
`.item()`/`bool()`/`float()` on a traced tensor (data-dependent control flow), a
`create_graph` or `autograd.grad` pass, tensor hooks, and an in-place change to a captured
tensor that is not an optimizer's update.

Arrays are named by identity: each array an instruction produces (or a function argument holds)
gets a slot. An array that no instruction produced is "foreign": the data of a tensor that
outlives the call (a parameter, a buffer) is read from that tensor at each replay (`live`);
anything else (a mask computed from shapes, the ones that seed backward) is a constant. A
foreign array that is a view of a slot's array (`targets.view(-1)` given to an op as a
parameter) is rebuilt as the same view of the slot at replay. An array a factory makes during
the call (descent.empty/zeros/full, watched through `creation._finish`) is a constant with its
value at creation; when the call writes it (`out=`, `z[mask] = 1`), each replay writes into a
copy of it (`Recording.copies`); so is one `descent.tensor` makes from Python numbers or a
NumPy array. A write into the caller's tensor (an argument, or a tensor the function reached
before the call: a module buffer, a global) is repeated into the same memory, as eager does.
"""

from __future__ import annotations

import sys
import types
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.array_utils import byte_bounds

from .. import autograd, creation_random
from ..autograd import Function
from ..autograd import _bump_family as bump_family
from ..backend import is_cupy_array
from ..creation_random import Draw, _Input
from ..grad_fn import pin_class
from ..nn.module import Module
from ..ops import view_write
from ..ops.out_arg import _family, redo_resized_assign
from ..ops.untracked import Guarded
from ..tensor import Tensor
from . import attach, closures
from .mask_read import MaskRead


class Unrecordable(Exception):
    """The call did something a replay cannot reproduce; the message names it."""


# --------------------------------------------------------------------------------------------
# Instructions. Slots are integers into the replay's environment list.


@dataclass
class Forward:
    """Run `op.forward(*env[ins])` into env[out]; rebind array parameters first."""

    op: Any
    ins: tuple
    out: int
    binds: list  # (attribute, slot, view spec or None): array parameters that follow a slot
    node: bool  # the op was recorded as a graph node (its backward may run)


@dataclass
class Backward:
    """One backward pass over recorded nodes (the engine's `run_backward`, without a heap)."""

    seeds: list  # (target node or leaf, seed slot)
    order: list  # (node, deliveries): deliveries = [(input position, parent, shape)]
    leaves: list  # leaf tensors in first-delivery order
    grad_slots: list  # per leaf: the slot that receives the stored `.grad` array
    retain_graph: bool = False
    # Per leaf: its .grad was None when the pass ran. The call's entry state is in the cache
    # key, so a True here with a .grad at replay means the function reset it in Python
    # (`p.grad = None`): replay stores instead of accumulating, as the recording did.
    was_none: tuple = ()


@dataclass
class Call:
    """Call a Python function for real (an optimizer step, clipping, a dropout mask)."""

    kind: str
    fn: Any
    args: tuple
    kwargs: dict
    out: int | None = None  # slot of the returned Tensor's array, if any
    fused: Any = None  # an optimizer step's fused update rule (decided at the first replay)


@dataclass
class View:
    """env[slot] = the view (shape, strides, byte offset) of env[base]'s memory."""

    slot: int
    base: int
    shape: tuple
    strides: tuple
    offset: int


@dataclass
class Write:
    """An unrecorded in-place write, repeated: `fn(env[dst], *operands)` (view_write's `redo`
    functions); each operand is ("s", slot), ("c", constant) or ("i", ((is_slot, slot or
    value), ...)): an index tuple holding arrays, rebuilt from env (recorder._items)."""

    dst: int
    fn: Any
    operands: tuple
    # the written memory is the call's own (computed by its ops or a factory's copy; no
    # argument's, captured tensor's or constant's): a replay stopped by a guard after it leaves
    # nothing behind (recorder._has_effects)
    local: bool = False


@dataclass
class Slot:
    kind: str  # "arg", "out", "live", "const", "view"
    arg: int = -1  # position among the argument tensors
    tensor: Any = None  # live: the tensor whose data is read at each replay
    value: Any = None  # const: the array; view: (base slot, shape, strides, offset)


@dataclass
class Recording:
    slots: list = field(default_factory=list)
    program: list = field(default_factory=list)
    result: Any = None  # the return value with Tensors replaced by _Out markers
    live: list = field(default_factory=list)  # (slot, tensor) read at each replay
    meta: dict = field(default_factory=dict)  # slot -> (shape, dtype) when recorded
    # (object, attribute, template): a captured module's attribute that the call set to tensors
    # it computed (Grok's `aux_losses`); replay sets it again from the replayed values.
    attrs: list = field(default_factory=list)
    # const slots of arrays a factory made inside the call (descent.zeros/empty/full...) that
    # the call then writes (out=, x[mask] = v): each replay starts from a copy of the recorded
    # initial value, so that no two calls share (or inherit) the written memory.
    copies: list = field(default_factory=list)
    # per recorded Write into an argument's memory (or a view of it), in program order: the
    # argument's position, whose version counter (its family's) each replay raises as eager's
    # write does (compiler/__init__ after the replay: the replay itself sees arrays only)
    arg_bumps: list = field(default_factory=list)
    # the counts of Trues of the call's `x[mask]` reads (mask_read.MaskRead), in order: a
    # replay checks each (GuardFailed), and recordings are compared among those of one count
    guards: tuple = ()
    # (argument position, new shape) per out= argument that the call resized: the replay
    # gets each new array as an argument after the call's own (slot kind "arg")
    resized: list = field(default_factory=list)
    # guarded ops after an optimizer's step (or clipping, a scheduler's step) that depend on
    # nothing it changes, with the ops they read that ran after it (in program order): the
    # program runs them just before `hoist_before`, the first such call (Recorder._hoist)
    hoisted: list = field(default_factory=list)
    hoist_before: Any = None


class _Out:
    """A returned tensor in the result template: its slot and requires_grad flag."""

    __slots__ = ("slot", "requires_grad")

    def __init__(self, slot: int, requires_grad: bool) -> None:
        self.slot, self.requires_grad = slot, requires_grad


_NODE_FIELDS = set(Function.__slots__)
_PARAM_NAMES: dict = {}


def op_param_names(cls) -> tuple:
    """The op-specific slot names of an op class (its parameters and what forward saves)."""
    names = _PARAM_NAMES.get(cls)
    if names is None:
        seen: list = []
        for klass in cls.__mro__:
            for n in klass.__dict__.get("__slots__", ()):
                if n not in _NODE_FIELDS and n != "__weakref__" and n not in seen:
                    seen.append(n)
        names = _PARAM_NAMES[cls] = tuple(seen)
    return names


def op_params(op) -> dict:
    """The op's parameter values (slots and instance dict, without the node fields)."""
    out = {}
    for n in op_param_names(type(op)):
        v = getattr(op, n, _MISSING)
        if v is not _MISSING:
            out[n] = v
    d = getattr(op, "__dict__", None)
    if d:
        out.update(d)
    return out


_MISSING = object()


class Recorder:
    """Records one call of `fn(*args, **kwargs)`; see the module docstring."""

    def __init__(self, arg_tensors: list, watch: dict) -> None:
        self.rec = Recording()
        self.arr_slot: dict[int, int] = {}  # id(array) -> slot
        self.keep: list = []  # arrays kept alive so their ids stay unique while recording
        self.keep_index: dict[int, int] = {}  # slot -> position in keep
        self.by_owner: dict[int, list] = {}  # id(owning array) -> slots whose array it holds
        self.foreign: dict[int, tuple] = {}  # slot -> (weakref to tensor or None, array, version)
        self.watch = watch  # objects to intercept: optimizers, clip functions
        self.in_pass = 0  # inside a backward pass: forward-hook events belong to a backward
        self.in_dropout = False
        self.in_draw = 0  # inside a recorded Draw (its draws are the op's: `on_draw`)
        self.in_call = 0  # inside a recorded call: its ops and passes are the call's own
        self.stray_draws = 0
        self.reason: str | None = None
        self.pending: Backward | None = None  # a pass whose stored gradients are not mapped yet
        self.pass_nodes: list = []
        self.pass_info: dict = {}
        # ids of arrays computed from values outside the ops (untracked.derived) -> op name
        self.derived: dict = {}
        self.derived_keep: list = []
        # id(array) -> (array, its initial value): arrays made by creation's factories during
        # the call (a tensor the call made from shapes alone: its writes can be replayed)
        self.fresh: dict = {}
        # slots of the writes (recorded as Write) into the array of a tensor from
        # outside the call (a captured buffer, a global, an argument), and id(tensor) of each
        # tensor whose memory such a write changed (its family): its change is the Write's,
        # not an unseen one (`finish`; compiler/__init__'s state check reads `written_ids`)
        self.written_dst: set = set()
        self.written_ids: set = set()
        self.write_family: list = []  # (Write, weak refs to the written tensor's family)
        # id -> tensor the function reached before the call (held, so that no tensor made in
        # the call can take the id of one that died in it: `_write`'s test is by id)
        self.captured: dict = {}
        # Python state of the captured objects (a callable giving a comparable snapshot):
        # between the recorded calls it must not change, as replay runs no Python code.
        self.snapshot = None
        self.last_state = None
        # the ops' results (id -> (weak ref to the tensor, slot)) and the slots of those whose
        # size was read (compiler/free_guards.py), and of those whose size the function's Python
        # code read, not descent's op code (compiler/dynamic_sizes.py)
        self.guard_outs: dict = {}
        self.shape_read: set = set()
        self.user_shape_read: set = set()
        self.op_shape_read: dict = {}  # slot -> {(module, function) of descent's op code}
        # (node, inputs) of the pass's known-zero gradients (on_backward)
        self.zero_to: list = []
        # the arguments as the call got them (array, requires_grad): a call that rebinds one
        # (a recorded in-place op on it, x.data = ..., x.requires_grad_()) is refused (`finish`)
        self.args = [(t, t._data, t._rg) for t in arg_tensors]
        self.n_args = len(arg_tensors)
        self.arg_pos = {id(t): i for i, t in enumerate(arg_tensors)}
        for i, t in enumerate(arg_tensors):
            self._new_slot(Slot("arg", arg=i), t._data)

    # -- slots -------------------------------------------------------------------------------
    def _new_slot(self, slot: Slot, arr) -> int:
        s = len(self.rec.slots)
        self.rec.slots.append(slot)
        if arr is not None:
            shape, dtype = getattr(arr, "shape", None), getattr(arr, "dtype", None)
            if shape is not None and dtype is not None:
                self.rec.meta[s] = (tuple(shape), dtype)
            self.arr_slot[id(arr)] = s
            if _is_array(arr):
                self.by_owner.setdefault(id(_owner(arr)), []).append(s)
            self.keep_index[s] = len(self.keep)
            self.keep.append(arr)
        return s

    def slot_of(self, arr, tensor=None) -> int:
        """The slot of `arr`, making a foreign slot (live, const or view) when it is new."""
        s = self.arr_slot.get(id(arr))
        if s is not None:
            return s
        s = self._make_view(arr)
        if s is not None:
            return s
        if self.derived and self._is_derived(arr):  # (a result whose shape depends on the
            self._refuse_derived(arr)  # values: nonzero)
        made = self.fresh.get(id(arr))
        if made is not None:  # a factory's array made in this call: its initial value
            return self._new_slot(Slot("const", value=made[1]), arr)
        s = self._new_slot(Slot("const", value=arr), arr)
        ref = weakref.ref(tensor) if tensor is not None else None
        self.foreign[s] = (ref, arr, tensor._version if tensor is not None else 0)
        return s

    def _make_view(self, arr) -> int | None:
        """A view slot (and its View instruction) when `arr` views a slot's array."""
        view = self._view_of(arr)
        if view is None:
            return None
        s = self._new_slot(Slot("view"), arr)
        self.rec.program.append(View(s, *view))
        return s

    def _view_of(self, arr):
        """(base slot, shape, strides, offset) when `arr` lies inside a C-contiguous slot array
        of its dtype (the same memory: a view made outside the ops, e.g. `t._data.reshape`)."""
        if not _is_array(arr) or arr.base is None:
            return None
        lo, hi = _bounds(arr)
        for s in self.by_owner.get(id(_owner(arr)), ()):
            base = self.keep[self.keep_index[s]]
            if type(base) is not type(arr) or base.dtype != arr.dtype or \
                    not base.flags.c_contiguous:  # fmt: skip
                continue
            blo, bhi = _bounds(base)
            if blo <= lo and hi <= bhi:
                return (s, arr.shape, arr.strides, lo - blo)
        return None

    def fail(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    # -- hooks -------------------------------------------------------------------------------
    def on_forward(self, op, inputs, out) -> None:
        if self.in_pass or self.in_call or self.reason:
            return  # an op run by a backward, or inside a recorded call (which replay reruns)
        self._flush_pass()
        ins = tuple(self.slot_of(t._data, t) for t in inputs)
        binds = []
        saved = set(op.saved_slots).union(getattr(op, "computed_slots", ()))
        for name, v in op_params(op).items():
            if name in saved and type(v) is tuple:  # (forward computes it on every call)
                continue
            if type(v) is tuple and any([_is_array(e) for e in v]):
                # an advanced index (GetItem's idx): its arrays follow their slots, as below
                items = self._items(v)
                if items is None:
                    self._refuse_derived(next(e for e in v if self._is_derived(e)), op)
                    return
                binds.append((name, items))
                continue
            if not _is_array(v):
                continue
            # A parameter that is a slot's array (a dropout mask) follows the slot, also when
            # backward frees it (saved_slots); arrays forward computes are no slot's.
            s = self.arr_slot.get(id(v))
            if s is not None:
                binds.append((name, s))
                continue
            if self.derived and self._is_derived(v):  # (repeat_interleave's positions)
                self._refuse_derived(v, op)
                return
            if name in saved:
                continue
            s = self._make_view(v)
            if s is not None:
                binds.append((name, s))
        if type(op) is MaskRead or type(op) is Guarded:
            # a replay may stop at its guard (compiler/__init__ then runs another program or
            # records): what ran before it must be undoable (program._undo_plan: draws,
            # backward passes, writes), not an optimizer's step, clipping or a scheduler's
            hoist = None
            if self.pending is not None or _has_effects(self.rec.program):
                hoist = self._hoist(ins, binds)
            if hoist is None and (self.pending is not None or not _undoable(self.rec.program)):
                what = "x[mask] with a boolean mask tensor" if type(op) is MaskRead else \
                    _guarded_name(op)  # fmt: skip
                self.fail(
                    f"{what} after an optimizer's step, clipping, a scheduler's step or a GPU "
                    "dropout mask: its shape depends on the values, which a replay checks "
                    "before going on, and a replay stopped there could not undo what ran "
                    "before it; compute it first, or use a form of fixed shape "
                    "(torch.where(mask, x, 0), bincount's minlength)"
                )
                return
        if type(op) is Guarded:
            self.rec.guards = (*self.rec.guards, op.shape)
        elif type(op) is MaskRead:
            for ms in ins[1:]:  # the masks and index tensors: computed by the call's ops,
                # arguments, a factory's, a captured tensor's; not an array made from values
                # outside the ops (masked_select's broadcast copy): frozen
                ref = self.foreign.get(ms, (None,))[0]
                made = ref is None or ref() is None or id(ref()) not in self.captured
                if self.rec.slots[ms].kind == "const" and ms in self.foreign and made:
                    self.fail(
                        "an index computed from a tensor's values outside the ops (a boolean "
                        "mask's positions, op MaskRead; x[mask]'s shape is its count of "
                        "Trues): a replay would reuse it"
                    )
                    return
            self.rec.guards = (*self.rec.guards, op.count)
        o = self._new_slot(Slot("out"), out._data)
        fw = Forward(op, ins, o, binds, out._node is op)
        if fw.node:  # the program tells its ops apart by class: grad_fn must not rename them
            pin_class(op)
        self.rec.program.append(fw)
        # (compiler/free_guards.py, dynamic_sizes.py; weak: a result kept alive would keep the
        # tensors its node saved, which `finish` would then take as live)
        self.guard_outs[id(out)] = (weakref.ref(out), o)
        if type(op) in (MaskRead, Guarded) and hoist is not None:
            self.rec.hoisted.extend((*hoist, fw))

    def _hoist(self, ins: tuple, binds: list):
        """The instructions a guarded op over slots `ins` (and `binds`) reads that ran after the
        program's first step that a stopped replay cannot undo (an optimizer's step, clipping, a
        scheduler's step), when the op and they can run before that step with the same values:
        they are ops and views only, and what they read from before it is memory the steps
        after it do not change (no parameter, gradient, optimizer state or written array, no
        captured tensor); None otherwise. A training step's `acc = (pred.argmax(1) == y)
        .nonzero()` after `opt.step()` is the case."""
        prog = self.rec.program
        first = next((k for k, i in enumerate(prog) if _has_effects([i])), None)
        if first is None or self.pending is not None:
            return None
        if self.rec.hoist_before is not None and self.rec.hoist_before is not prog[first]:
            return None
        produced: dict = {}  # slot -> instruction index, for instructions from `first` on
        for k in range(first, len(prog)):
            for s in _made_slots(prog[k]):
                produced[s] = k
        done = {id(i) for i in self.rec.hoisted}
        stack = list(ins) + [v for _, b in binds for v in _bind_slots(b)]
        closure: set = set()
        outside: set = set()
        while stack:
            s = stack.pop()
            k = produced.get(s)
            if k is None or id(prog[k]) in done:
                outside.add(s)
                continue
            if k in closure:
                continue
            i = prog[k]
            if type(i) is View:
                stack.append(i.base)
            elif type(i) is Forward and type(i.op) is not Draw:
                stack.extend(i.ins)
                stack.extend(v for _, b in i.binds for v in _bind_slots(b))
            else:
                return None
            closure.add(k)
        # the memory the steps from `first` on change
        touched: set = set()
        params: set = set()
        for i in prog[first:]:
            if type(i) is Write:
                touched.add(id(_owner(self.keep[self.keep_index[i.dst]])))
            elif type(i) is Call:
                opt = getattr(i.fn, "__self__", None)
                groups = getattr(opt, "param_groups", None)
                if groups:  # an optimizer's step or zero_grad: its parameters
                    tensors = [p for g in groups for p in g["params"]]
                else:  # clipping: the tensors it was given
                    tensors = [a for a in i.args if isinstance(a, Tensor)]
                    for a in i.args:
                        if isinstance(a, (list, tuple)):
                            tensors += [t for t in a if isinstance(t, Tensor)]
                for t in tensors:
                    params.add(id(t))
                    arrays = [t._data] + ([t.grad._data] if t.grad is not None else [])
                    state = getattr(opt, "state", {}).get(t, {}) if groups else {}
                    arrays += [v._data for v in state.values() if isinstance(v, Tensor)]
                    touched.update(id(_owner(a)) for a in arrays)
        for k in closure:  # (a write after `first` into what the moved ops compute)
            out = self.keep[self.keep_index[prog[k].out if type(prog[k]) is Forward else
                                            prog[k].slot]]  # fmt: skip
            if _is_array(out) and id(_owner(out)) in touched:
                return None
        for s in outside:
            slot = self.rec.slots[s]
            if slot.kind not in ("out", "view", "const", "arg") or s in self.foreign:
                return None  # (a captured tensor's array: the step may change it)
            if slot.kind == "arg" and id(self.args[slot.arg][0]) in params:
                return None
            arr = self.keep[self.keep_index[s]] if s in self.keep_index else None
            if arr is None or (_is_array(arr) and id(_owner(arr)) in touched):
                return None
        self.rec.hoist_before = prog[first]
        return [prog[k] for k in sorted(closure)]

    def _items(self, v: tuple):
        """("items", ((is_slot, slot or value), ...)) for a tuple parameter holding arrays: an
        array that is a slot's (an index tensor the call took or computed) follows its slot;
        another is a constant (an index from a Python list, compared between the recordings);
        None when one was computed from tensors' values outside the ops (`derived`)."""
        out = []
        for e in v:
            if _is_array(e):
                if self.derived and self._is_derived(e):
                    return None
                s = self.arr_slot.get(id(e))
                if s is None:
                    s = self._make_view(e)
                out.append((True, s) if s is not None else (False, e))
            else:
                out.append((False, e))
        return ("items", tuple(out))

    def _derived(self, arrays, op=None) -> None:
        for a in arrays:
            self.derived[id(a)] = op
            self.derived_keep.append(a)  # (alive while recording: its id stays its own)

    def _is_derived(self, arr) -> bool:
        """Whether arr, or the array whose memory it views, was marked by untracked.derived."""
        return id(arr) in self.derived or id(_owner(arr)) in self.derived

    def _refuse_derived(self, arr, op=None) -> None:
        """Fall back: `arr` (untracked.derived) has a shape that depends on tensors' values."""
        name = self.derived.get(id(arr), self.derived.get(id(_owner(arr))))
        user = f", op {type(op).__name__}" if op is not None else ""
        if name is None:  # (a boolean mask index: ops/indexing.py)
            self.fail(
                f"an index computed from a tensor's values outside the ops (a boolean mask's "
                f"positions{user}; with a bool or uint8 mask tensor, x[mask]'s shape is its "
                "count of Trues): a replay would reuse it"
            )
        else:
            self.fail(
                f"{name}: its result's shape depends on a tensor's values (computed outside the "
                f"ops{user}); a replay would reuse the recorded one"
            )

    def on_backward(self, node, gy, gxs) -> None:
        if self.reason or self.in_call:
            return
        if node.hooks is not None or node.retained is not None:
            self.fail("a tensor hook or retain_grad() inside the function")
        if node.group is not None and node.group.hooks:  # split's shared node (grad_fn.py)
            self.fail("a hook on the node split's pieces share (grad_fn.register_hook)")
        zero = autograd._ZeroGradient
        if type(gy) is zero:
            self._fail_zero(node)
            return
        # sgn's known-zero gradient (PyTorch's zero tensor): the engine keeps it only where no
        # real gradient reaches the input; where one does (checked at the pass's end), the
        # real one replaces it, so the pass is the pass without it (since session 25)
        got = (gxs is not None,) if type(gxs) is not tuple else tuple(g is not None for g in gxs)
        if type(gxs) is zero or (type(gxs) is tuple and any(type(g) is zero for g in gxs)):
            gs = gxs if type(gxs) is tuple else (gxs,)
            got = tuple(g is not None and type(g) is not zero for g in gs)
            self.zero_to.append((node, [p for p, g in zip(node.parents, gs)
                                        if p is not None and type(g) is zero]))  # fmt: skip
        self.pass_nodes.append((node, got))

    def _fail_zero(self, node) -> None:
        # the engine passes a known-zero gradient through `zero_passes` ops unrun and gives
        # the leaves it alone reaches zeros; the replayed pass has arrays only
        self.fail(f"{type(node).__name__}'s known-zero gradient (sgn of a real tensor) in the "
                  "backward pass, reaching a tensor that no other gradient reaches")  # fmt: skip

    def on_pass(self, event, a, b, c) -> None:
        if self.reason or self.in_call:
            return  # a pass inside a recorded call (an optimizer's closure) reruns with it
        if event == "begin":
            if c["create_graph"] or c["capture"] or not c["accumulate"]:
                self.fail("a create_graph=True or autograd.grad() backward pass")
                return
            self._flush_pass()
            self.in_pass += 1
            seeds = []
            for root, g in zip(a, b):
                target = autograd._parent(root)
                if target is not None:
                    seeds.append((target, self.slot_of(g)))
            self.pass_info = {"seeds": seeds, "retain": c["retain_graph"]}
            self.pass_nodes = []
            self.zero_to = []
            return
        self.in_pass -= 1
        leaves = list(a)
        for leaf in leaves:
            if leaf._hooks:
                self.fail("a hook on a leaf tensor (register_hook)")
        order = []
        reached = {id(t) for t, _ in self.pass_info["seeds"]}
        for node, got in self.pass_nodes:
            deliveries = []
            for i, (parent, shape) in enumerate(zip(node.parents, node.in_shapes)):
                if parent is not None and i < len(got) and got[i]:
                    deliveries.append((i, parent, shape))
                    reached.add(id(parent))
            order.append((node, deliveries))
        for node, parents in self.zero_to:
            if any(id(p) not in reached for p in parents):
                self._fail_zero(node)
        info = self.pass_info
        was_none = tuple(leaf.grad is None for leaf in leaves)  # .grad is written after "end"
        self.pending = Backward(info["seeds"], order, leaves, [], info["retain"], was_none)
        self.rec.program.append(self.pending)

    def _flush_pass(self) -> None:
        """Name the `.grad` arrays the last pass stored (read by clipping or later ops)."""
        p = self.pending
        if p is None:
            return
        self.pending = None
        for leaf in p.leaves:
            g = leaf.grad
            p.grad_slots.append(self._new_slot(Slot("out"), g._data if g is not None else None))

    # -- intercepted calls -------------------------------------------------------------------
    def on_draw(self, draw, args, kwargs, frame):
        """A sampling function called while recording (creation_random.draw_recorders): run it
        and keep it as a `Draw` op over its tensor arguments, whose replay draws again from the
        same generator. Where that would not be eager's (a draw inside a recorded call or a
        backward pass, `out=`, `requires_grad=True`, arguments other than plain CPU tensors and
        Python values, a descent function that computes on the draw's array outside the ops),
        the draw runs as it is and the generator's watch counts it: the call runs eagerly."""
        if self.reason or self.in_pass or self.in_call or not _draw_caller(frame):
            return draw(*args, **kwargs)
        inputs: list = []

        def marked(v):
            if isinstance(v, Tensor):
                if type(v._data) is not np.ndarray or type(v).__name__ not in _DRAW_TENSORS:
                    return _MISSING
                inputs.append(v)
                return _Input(len(inputs) - 1)
            return v if _draw_constant(v) else _MISSING

        targs = tuple(marked(a) for a in args)
        tkw = {k: marked(v) for k, v in kwargs.items()}
        if (_MISSING in targs or _MISSING in tkw.values() or kwargs.get("out") is not None
                or kwargs.get("requires_grad")):  # fmt: skip
            return draw(*args, **kwargs)
        self._flush_pass()
        self.in_call += 1
        self.in_draw += 1
        try:
            out = draw(*args, **kwargs)
        finally:
            self.in_call -= 1
            self.in_draw -= 1
        if type(out) is not Tensor or type(out._data) is not np.ndarray or out._rg:
            self.fail(f"{draw.__name__}: a random draw whose result the replay cannot make")
            return out
        op = object.__new__(Draw)
        op.fn, op.args, op.kwargs = draw, targs, tkw
        self.on_forward(op, inputs, out)
        return out

    def on_call(self, kind: str, fn, args: tuple, kwargs: dict):
        """A captured call site (`attach.recording`'s sites: an optimizer's step, clipping,
        dropout_mask) called by the recording thread: run `fn` and record a Call."""
        if self.reason or self.in_pass or self.in_call:
            return fn(*args, **kwargs)
        self._flush_pass()
        # An iterator argument (model.parameters()) is used up by this call: keep a list,
        # so that the replay passes the same parameters again.
        args = tuple(list(a) if hasattr(a, "__next__") else a for a in args)
        if kind == "dropout_mask":
            self.in_dropout = True
            self.in_call += 1
            try:
                out = fn(*args, **kwargs)
            finally:
                self.in_dropout = False
                self.in_call -= 1
            self.rec.program.append(Call(kind, fn, args, kwargs, self._new_slot(Slot("out"), out)))
            return out
        if kind == "step" and getattr(fn, "__func__", None) in _closure_first_steps():
            closure, args, kwargs = _split_closure(args, kwargs)
            if closure is not None:
                # step(closure) of these optimizers is `closure()` with grad mode on, then
                # step(): the closure's ops and backward pass are the function's own (recorded
                # and replayed), the step a Call without it. A closure made anew at each call
                # (over the call's batch) was a new object in each recording: eager before.
                with autograd.enable_grad():
                    loss = closure()
                self.on_call(kind, fn, args, kwargs)
                return loss
        self._check_python_state()
        self.in_call += 1
        try:
            out = fn(*args, **kwargs)
        finally:
            self.in_call -= 1
        if self.snapshot is not None:
            self.last_state = self.snapshot()  # the call's own changes are replayed
        slot = None
        if isinstance(out, Tensor):
            slot = self._new_slot(Slot("out"), out._data)
        if kind == "step":  # LBFGS's closure made at each call (compiler/closures.py)
            args, kwargs = _rebound_closure(args, kwargs, self.arg_pos)
        self.rec.program.append(Call(kind, fn, args, kwargs, slot))
        return out

    def _check_python_state(self) -> None:
        if self.snapshot is not None and self.snapshot() != self.last_state:
            self.fail(
                "the function changes Python attributes of a captured module or an optimizer's "
                "hyperparameters itself (replay runs no Python code and would not repeat it); "
                "change them outside the function, or through a scheduler's step()"
            )

    def on_read(self, name: str) -> None:
        """Tensor.item() / bool() / ... in the recording thread (attach.READS). Inside a
        recorded call (an optimizer's step reading a tensor learning rate, clipping's
        error_if_nonfinite) it is the call's own: replay runs the call itself again. Not inside
        a recorded draw (`on_draw`): the value could set the draw's shape (`randn(t)`)."""
        if self.in_call and not self.in_draw:
            return
        self.fail(
            f"Tensor.{name}() on a tensor inside the function (data-dependent Python control "
            "flow or a value read); move it outside the compiled function"
        )

    def on_rng_use(self) -> None:
        """The default generator's NumPy generator used by the recording thread (attach's
        watch): a draw outside `dropout_mask` and the recorded `Draw`s cannot be replayed."""
        if not self.in_dropout and not self.in_draw:
            self.stray_draws += 1

    def _array_written(self, t, redo=None) -> None:
        if self.in_pass or self.in_call or self.reason:
            return  # a backward's or a recorded call's own write (replay reruns the call)
        ins = self._write(t, redo)
        if ins is not None:
            self._flush_pass()
            self.rec.program.append(ins)
            family = _family(t)
            self.written_ids.update(id(u) for u in family)
            self.write_family.append((ins, [weakref.ref(u) for u in family]))
            pos = [self.arg_pos[id(u)] for u in family if id(u) in self.arg_pos]
            if pos:  # (the caller's tensor: its version goes up at each replay too)
                self.rec.arg_bumps.append(min(pos))
            else:
                ins.local = self._local_memory(ins.dst, t, family)
            return
        if self.reason is not None:  # (_write named the reason)
            return
        self.fail(
            f"an in-place op on a tensor of shape {tuple(t.shape)} that autograd does not "
            "record (under no_grad, or on a tensor that does not require grad; x[i] = v, out=): "
            "replay would not repeat the write; use the out-of-place op (h = h + 1)"
        )

    def _local_memory(self, dst: int, t, family) -> bool:
        """Whether the memory of slot `dst` (t's array) is the call's own: an array its ops
        computed or a factory's copy (made anew at each replay), viewed by no argument, captured
        tensor or constant of the recording."""
        if self.rec.slots[dst].kind not in ("out", "view") and dst not in self.rec.copies:
            return False
        owner = _owner(t._data)
        for s in self.by_owner.get(id(owner), ()):
            kind = self.rec.slots[s].kind
            if kind == "arg" or s in self.foreign or (kind == "const" and s not in self.rec.copies):
                return False
        if any(id(u) in self.captured for u in family):
            return False
        return not any(_owner(u._data) is owner for u in self.captured.values())

    def _write(self, t, redo) -> Write | None:
        """The Write instruction that repeats a write into t's array, or None when a replay
        could not: no `redo`, or an operand array is none of the call's slots (made outside
        the ops: replay would freeze its value), or t is a tensor the call made outside the
        ops and factories. t may be one the call computed or a factory made, or the caller's
        (an argument, a tensor the function reached before the call: `captured`), whose
        memory the replay writes as eager does (since session 20)."""
        if redo is None:
            return None
        if redo[0] is redo_resized_assign:  # out= of another shape: out's array is a new one
            redo, old = redo[:3], redo[3]
            made = self._resized(t, old)
            if made is None:
                return None
            if not made:  # a captured tensor's: its later calls' write, a plain one
                redo = (view_write.redo_assign, redo[1])
        arr = t._data
        dst = self.arr_slot.get(id(arr))
        if dst is None and id(arr) in self.fresh:  # first use: a factory's array of this call
            dst = self._fresh_slot(arr, redo)
        if dst is None and _is_array(arr) and self._view_of(arr) is None:  # the array of a
            dst = self.slot_of(arr, t)  # tensor from outside the call, written first (out=
            # into a captured buffer or a global): live at `finish`, or refused there
        if dst is None:
            return None
        kind = self.rec.slots[dst].kind
        if kind == "const" and dst in self.foreign and self.foreign[dst][0] is not None:
            if id(t) not in self.captured:  # (it would be live, but it is the call's own)
                self.fail(
                    f"an in-place write into a tensor of shape {tuple(t.shape)} that the call "
                    "made outside descent's ops and factories (descent.tensor(t) of a tensor, "
                    "Tensor(...)), or one it reaches in a way the recorder does not follow "
                    "(from the function's arguments, closure, bound object, globals): a replay "
                    "would write the recorded tensor again; make it with an op or a factory, "
                    "or pass it as an argument"
                )
                return None
            self.written_dst.add(dst)  # (the caller's: the replay writes into its memory, as
            # eager does, and raises its version: `finish`)
        elif kind == "arg":  # (likewise: the caller's array, its memory written)
            pass
        elif kind not in ("out", "const"):
            return None
        elif kind == "const" and dst not in self.rec.copies:
            if id(arr) not in self.fresh:  # (a constant from outside the ops: frozen)
                return None
            self.rec.copies.append(dst)
        owner = self.fresh.get(id(_owner(arr)))
        if owner is not None and owner[0] is not arr:  # a view of a fresh array (o[1:3]): its
            base = self.slot_of(owner[0])  # owner is copied at each replay, as above
            if base not in self.rec.copies:
                self.rec.copies.append(base)
        operands = []
        for v in redo[1:]:
            if type(v) is tuple and any([_is_array(e) for e in v]):
                # an advanced index (x[idx] = v): its arrays follow their slots, as GetItem's
                items = self._items(v)
                if items is None:  # (a boolean mask's positions: refused, with the reason)
                    self._refuse_derived(next(e for e in v if _is_array(e)
                                              and self._is_derived(e)))  # fmt: skip
                    return None
                operands.append(("i", items[1]))
            elif _is_array(v):
                s = self.arr_slot.get(id(v))
                if s is None:
                    s = self._make_view(v)
                if s is None and id(v) in self.fresh:  # a factory's tensor made in the call
                    s = self.slot_of(v)
                if s is None:  # a captured tensor's array, first read here (clamp_(min=lo),
                    # an EMA's add_(param) before the forward): live at `finish`, as an op's
                    owner = self._captured_owner(v)
                    if owner is not None:
                        s = self.slot_of(v, owner)
                if s is None:
                    self.fail(
                        f"an operand of shape {tuple(np.shape(v))} of an in-place write into a "
                        f"tensor of shape {tuple(t.shape)} was made outside descent's ops and "
                        "factories (Tensor(list), as_tensor of a NumPy array, descent.tensor(t) "
                        "of a tensor's values): a replay would freeze its value; make it with "
                        "descent.tensor(list) or an op"
                    )
                    return None
                operands.append(("s", s))
            else:  # a Python or NumPy scalar, a ufunc's name, a casting rule
                operands.append(("c", v))
        return Write(dst, redo[0], tuple(operands))

    def _captured_owner(self, arr):
        """The tensor the function reached before the call whose array `arr` is, or None."""
        for t in self.captured.values():
            if isinstance(t, Tensor) and t._data is arr:
                return t
        return None

    def _resized(self, t, old) -> bool | None:
        """After out= resized t (`out_arg.redo_resized_assign`; `old` its array before): True
        when t is a tensor the call made or computed, whose new array gets a const slot of
        zeros copied at each replay (the write fills it whole), as a factory's array; False
        for a captured tensor, whose new array is the one its later calls find (only the first
        call resizes it), written as they write it; None (refused, with the reason) for an
        argument (a replay cannot resize the caller's tensor: it has its array only) and for
        new memory that other tensors of the call view."""
        arr = t._data
        s_old = self.arr_slot.get(id(old))
        kind = self.rec.slots[s_old].kind if s_old is not None else None
        if id(old) not in self.fresh and kind != "arg" and (kind is None or (
                kind == "const" and s_old in self.foreign)):  # fmt: skip
            return False  # (the caller's: `_write` takes the new array as live)
        if self.by_owner.get(id(_owner(arr))):
            self.fail(
                f"out= of shape {tuple(old.shape)} resized to {tuple(arr.shape)} in its own "
                "memory, which other tensors of the call view: a replay could not repeat that "
                "aliasing; pass an out of the result's shape"
            )
            return None
        if kind == "arg":  # the caller's tensor, grown into new memory: compiler/__init__
            # resizes it (out_arg's resize) before each replay and passes its new array as
            # one more argument, which this slot takes
            pos = self.rec.slots[s_old].arg
            if pos in [p for p, _ in self.rec.resized]:
                self.fail(f"out= resizes argument {pos} twice: a replay resizes it once")
                return None
            self.rec.resized.append((pos, tuple(arr.shape)))
            self._new_slot(Slot("arg", arg=self.n_args + len(self.rec.resized) - 1), arr)
            return True
        self.rec.copies.append(self._new_slot(Slot("const", value=np.zeros_like(arr)), arr))
        return True

    def _fresh_slot(self, arr, redo) -> int:
        """The const slot of a factory's array first used by a write: a write of the whole
        array (out=, copy_) reads nothing of it, so its value is a placeholder of zeros (an
        `empty`'s bytes would differ between the two recordings); else the value it was made
        with."""
        made = self.fresh[id(arr)][1]
        if redo[0] is view_write.redo_assign and np.shape(redo[1]) == arr.shape:
            made = np.zeros_like(made)
        return self._new_slot(Slot("const", value=made), arr)

    def on_made(self, out) -> None:
        """After creation._finish in the recording thread: note the array a factory made
        during the call (see `fresh`)."""
        a = out._data
        if _is_array(a) and not self.in_pass and not self.in_call:
            self.fresh[id(a)] = (a, a.copy())

    def on_data_made(self, out, data) -> None:
        """After creation._from_data_made in the recording thread: `descent.tensor(data)`
        inside the call, from Python numbers or a NumPy array that is no slot's memory, is a
        factory's tensor too (a constant, compared between the recordings); from a Tensor's
        values it is not."""
        a = out._data
        if self.in_pass or self.in_call:
            return
        if not self._plain(data):
            # descent.tensor(t), t.new_tensor(t), as_tensor(t, dtype=...): t's values
            # copied outside the ops, which a replay would keep as the first call's
            self.fail(
                "descent.tensor(t), t.new_tensor(t) or as_tensor(t, dtype=...) copies a "
                "tensor's values outside the ops (a replay would keep the first call's "
                "values); use t.detach().clone() or t.to(dtype) inside a compiled function"
            )
        elif _is_array(a):
            self.fresh[id(a)] = (a, a.copy())

    def _plain(self, data, depth: int = 0) -> bool:
        """Whether `data` holds no Tensor and no array of this call's slots (their values)."""
        if isinstance(data, Tensor):
            return False
        if _is_array(data):
            return id(data) not in self.arr_slot and id(_owner(data)) not in self.by_owner
        if isinstance(data, (list, tuple)):
            return depth < 32 and all(self._plain(e, depth + 1) for e in data)
        return True

    def _view_written(self) -> None:
        self.fail(
            "an in-place op on a view, written through to the tensor it views "
            "(ops/view_write.py): the write into that tensor's memory is not an op"
        )

    # -- the whole call ----------------------------------------------------------------------
    def run(self, fn, args, kwargs, optimizers: list, clip_modules: list):
        """Call fn eagerly under the hooks; returns its result (and fills self.rec).

        The hooks are process-wide; `attach.recording` sends this thread's events to this
        recorder (other threads' ops are not the call's), and the calls of `optimizers`'
        `step` / `zero_grad` and of the (object, name) `clip_modules` sites to `on_call`."""
        if self.snapshot is not None:
            self.last_state = self.snapshot()
        self.captured = _captured_tensors(fn, args, kwargs)
        sites = [(opt, meth) for opt in optimizers for meth in ("step", "zero_grad")
                 if hasattr(opt, meth)]  # fmt: skip
        from .free_guards import watching  # noqa: PLC0415 - it imports this module

        with attach.recording(self, [*sites, *clip_modules]), watching(self):
            out = fn(*args, **kwargs)
        self._flush_pass()
        if self.reason is None:
            self._check_python_state()
        if self.stray_draws:
            self.fail("random numbers drawn outside dropout and the sampling functions "
                      "(descent.randn, rand_like, bernoulli, x.normal_() ... called by the "
                      "function replay; nn.init, distributions, poisson and the like do not): "
                      "replay could not draw them in eager's order")  # fmt: skip
        self.rec.result = self._template(out)
        self.rec.attrs = self._attr_outputs(self.watch.get("modules", ()))
        return out

    def _computed(self, v, depth: int = 0) -> bool:
        """Whether v is, or holds (in lists, tuples, dicts), a tensor this call computed."""
        if isinstance(v, Tensor):
            s = self.arr_slot.get(id(v._data))  # (a factory's tensor the call wrote: a new
            # array on each replay, `Recording.copies`)
            return s is not None and (self.rec.slots[s].kind in ("out", "view")
                                      or s in self.rec.copies)  # fmt: skip
        if depth < 3 and isinstance(v, (list, tuple)):
            return any(self._computed(x, depth + 1) for x in v)
        if depth < 3 and isinstance(v, dict):
            return any(self._computed(x, depth + 1) for x in v.values())
        return False

    def _attr_outputs(self, modules) -> list:
        """(module, attribute, template) for each public attribute of a captured module that
        holds tensors the call computed: eager sets it on every call, so replay must too
        (tensors the call did not compute stay the same objects in the template)."""
        out = []
        for m in modules:
            for name, v in list(vars(m).items()):
                if not name.startswith("_") and self._computed(v):
                    out.append((m, name, self._attr_template(v)))
        return out

    def _attr_template(self, v):
        if isinstance(v, Tensor):
            return self._template(v) if self._computed(v) else v
        if isinstance(v, (list, tuple)):
            items = [self._attr_template(o) for o in v]
            return tuple(items) if isinstance(v, tuple) else items
        if isinstance(v, dict):
            return {k: self._attr_template(x) for k, x in v.items()}
        return v

    def _template(self, out):
        if isinstance(out, Tensor):
            return _Out(self.slot_of(out._data, out), out.requires_grad)
        if isinstance(out, (list, tuple)):
            items = [self._template(o) for o in out]
            return tuple(items) if isinstance(out, tuple) else items
        if isinstance(out, dict):
            return {k: self._template(v) for k, v in out.items()}
        return out

    def finish(self, touched_ok: set) -> Recording:
        """Decide live vs constant for foreign arrays; refuse unseen in-place changes."""
        rec = self.rec
        self.captured = {}  # (no longer needed: let the caller's tensors go)
        if rec.resized and rec.guards:  # (the resize runs before a replay, the guard in it)
            self.fail(
                "out= resizes an argument in a call with x[mask] reads: a replay would "
                "resize it before knowing whether x[mask]'s count is the recorded one"
            )
        resized = {p for p, _ in rec.resized}
        for i, (t, arr, rg) in enumerate(self.args):
            if (t._data is not arr and i not in resized) or t._rg != rg:
                self.fail(
                    f"the function rebinds its argument {i} (shape {tuple(arr.shape)}): an "
                    "in-place op autograd records on it (x.add_(w) with w requiring grad), "
                    "x.data = ..., x.requires_grad_() or a resizing out=; a replay has the "
                    "argument's array only and would leave the caller's tensor as it was; "
                    "return the new value instead (x = x + w)"
                )
                break
        self.args = []
        for s in self.written_dst:  # (a tensor made in the call outside ops and factories)
            if self.foreign[s][0]() is None:
                self.fail(
                    f"an in-place write into a tensor of shape {rec.meta.get(s, ('?',))[0]} "
                    "made inside the function outside descent's ops and factories (its array "
                    "would be a constant that each replay writes again); make it with "
                    "descent.zeros/empty/full/tensor or an op"
                )
        for s, (ref, _arr, version) in self.foreign.items():
            t = ref() if ref is not None else None
            if t is None:
                continue  # died with the call: a constant (checked by the second recording)
            if t._version != version and id(t) not in touched_ok and \
                    id(t) not in self.written_ids:  # fmt: skip
                self.fail(
                    f"an in-place change to a captured tensor of shape {tuple(t.shape)} that is "
                    "not an optimizer's update (e.g. a BatchNorm running statistic)"
                )
            rec.slots[s] = Slot("live", tensor=t)
            rec.live.append((s, t))
        if self.write_family and rec.live:  # a write into a captured tensor's memory: the
            live = {id(t) for _, t in rec.live}  # replay raises its version, as eager's write
            for ins, refs in self.write_family:
                hit = [u for u in (r() for r in refs) if u is not None and id(u) in live]
                if hit:
                    ins.fn = _Bumped(ins.fn, hit[0])
        return rec


class _Bumped:
    """A Write's function into a captured tensor's memory, then the tensor's version up (its
    family's: one counter), as eager's write does (a graph that saved it raises at backward).
    Equal to another of the same function and tensor (the recordings' comparison)."""

    __slots__ = ("fn", "tensor")

    def __init__(self, fn, tensor) -> None:
        self.fn, self.tensor = fn, tensor

    def __call__(self, dst, *operands) -> None:
        self.fn(dst, *operands)
        bump_family(self.tensor)

    def __eq__(self, other) -> bool:
        return type(other) is _Bumped and other.fn is self.fn and other.tensor is self.tensor

    def __hash__(self) -> int:
        return hash((self.fn, id(self.tensor)))


def _captured_tensors(fn, args, kwargs) -> dict:
    """The tensors `fn` reaches before its call, by id: through its arguments, bound object,
    closure and the globals its code names (and those of the functions it names), into lists,
    tuples, dicts, objects' attributes and modules' parameters and buffers (a bounded walk). A
    tensor written in place that is outside the call's slots must be one of these: the
    caller's state, which the replay writes as eager does; any other was made in the call."""
    found: dict = {}
    seen: set = set()  # (ids of objects reachable from fn: alive for the walk)

    def visit(obj, depth: int) -> None:
        if depth > 5 or id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, Tensor):
            found[id(obj)] = obj
        elif isinstance(obj, (list, tuple)):
            for o in obj[:256]:
                visit(o, depth + 1)
        elif isinstance(obj, dict):
            for o in list(obj.values())[:256]:
                visit(o, depth + 1)
        elif isinstance(obj, Module):
            for m in obj.modules():
                found.update((id(t), t) for t in m._parameters.values() if t is not None)
                found.update((id(t), t) for t in m._buffers.values() if t is not None)
                for name, o in list(vars(m).items())[:256]:
                    if not name.startswith("_"):
                        visit(o, depth + 1)
        elif isinstance(obj, types.FunctionType):
            function(obj, depth + 1)
        elif isinstance(obj, types.MethodType):
            visit(obj.__self__, depth + 1)
            function(obj.__func__, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, (type, types.ModuleType)) and \
                not callable(obj):  # fmt: skip
            try:
                items = list(vars(obj).values())[:256]
            except TypeError:  # (a __dict__ that is no mapping)
                return
            for o in items:
                visit(o, depth + 1)

    def function(f, depth: int) -> None:
        if (f.__module__ or "").startswith(("descent.", "numpy", "torch")):
            return  # (the library's own functions: no user state, and a long walk)
        for cell in f.__closure__ or ():
            try:
                visit(cell.cell_contents, depth)
            except ValueError:  # an empty cell
                pass
        glob = f.__globals__
        for name in f.__code__.co_names:
            if name in glob:
                visit(glob[name], depth)

    for a in (*args, *kwargs.values()):
        visit(a, 0)
    visit(fn, 0)
    return found


def _owner(arr):
    """The array that owns `arr`'s memory (NumPy collapses view chains to it; as_strided puts
    a non-array holder on the chain, whose `.base` leads on: Tensor.unfold's view)."""
    while True:
        b = getattr(arr, "base", None)
        if b is not None and not _is_array(b):
            b = getattr(b, "base", None)
        if not _is_array(b):
            return arr
        arr = b


def _is_array(v) -> bool:
    """A NumPy or CuPy array (CuPy's arrays are no np.ndarray)."""
    return isinstance(v, np.ndarray) or (v is not None and is_cupy_array(v))


def _bounds(arr) -> tuple[int, int]:
    """The first and one-past-last byte addresses of `arr`'s elements."""
    if isinstance(arr, np.ndarray):
        return byte_bounds(arr)
    lo = hi = arr.data.ptr  # CuPy: the address of the first element
    for n, st in zip(arr.shape, arr.strides):
        if n == 0:
            return lo, lo
        if st < 0:
            lo += (n - 1) * st
        else:
            hi += (n - 1) * st
    return lo, hi + arr.itemsize


def _made_slots(ins) -> tuple:
    """The slots an instruction makes: a Forward's or Call's result, a View, a pass's grads."""
    if type(ins) in (Forward, Call):
        return (ins.out,)
    if type(ins) is View:
        return (ins.slot,)
    return tuple(getattr(ins, "grad_slots", ()))


def _bind_slots(b) -> tuple:
    """The slots a Forward's bound parameter reads: a slot, or an index tuple's slots."""
    if type(b) is int:
        return (b,)
    return tuple(v for is_slot, v in b[1] if is_slot)


_CLOSURE_FIRST: list = []


def _closure_first_steps() -> frozenset:
    """The `step` functions that run their closure once, first, with grad mode on, and then
    the update, which the closure does not otherwise change: Optimizer.step (SGD, Adam, Muon,
    ...), Adafactor's and MuonWithAdamW's. Not LBFGS (the closure runs several times, with
    Python control flow on its values), nor SparseAdam (it checks the gradients before)."""
    if not _CLOSURE_FIRST:
        from ..optim.adafactor import Adafactor  # noqa: PLC0415 - optim imports nn, not this
        from ..optim.muon import MuonWithAdamW  # noqa: PLC0415
        from ..optim.optimizer import Optimizer  # noqa: PLC0415

        _CLOSURE_FIRST.append(frozenset((Optimizer.step, Adafactor.step, MuonWithAdamW.step)))
    return _CLOSURE_FIRST[0]


def _split_closure(args: tuple, kwargs: dict):
    """(closure, the other positional arguments, the other keywords) of a step(...) call."""
    if "closure" in kwargs:
        kwargs = dict(kwargs)
        return kwargs.pop("closure"), args, kwargs
    if args:
        return args[0], args[1:], kwargs
    return None, args, kwargs


def _rebound_closure(args: tuple, kwargs: dict, arg_pos: dict) -> tuple[tuple, dict]:
    """A step's arguments with its closure as a `closures.Rebound` where it is a Python closure
    (over the call's argument tensors): the replay calls it over each call's arguments."""
    closure, rest, kw = _split_closure(args, kwargs)
    made = closures.rebound(closure, arg_pos) if callable(closure) else None
    if made is None:
        return args, kwargs
    if "closure" in kwargs:
        return args, {**kw, "closure": made}
    return (made, *rest), kwargs


def _has_effects(program) -> bool:
    """Whether an instruction of `program` acts outside the replay's own arrays in a way that a
    replay stopped by a later guard cannot put back: an optimizer's step, clipping, a
    scheduler's step. What it can put back (program._undo_plan) does not count: a random draw
    (a Draw, dropout's mask: the generators' states), a backward pass (the leaves' `.grad`), a
    write (the old values of the memory written); nor does an optimizer's `zero_grad`, which is
    idempotent (the call run again after the stop sets the same gradients to None or zero)."""
    for ins in program:
        if type(ins) is Call and ins.kind not in ("zero_grad", "dropout_mask"):
            return True
        if type(ins) is Call and ins.kind == "dropout_mask" and str(ins.args[3]) != "cpu":
            return True  # (a GPU generator's state is not put back: CPU generators only)
    return False


def _undoable(program) -> bool:
    """Whether a replay of `program` stopped by a later guard can put back what its steps did:
    `_has_effects` aside, an optimizer's step (no closure; its state tensors and plain numbers,
    restored in place with the parameters, their gradients and the groups' hyperparameters),
    a scheduler's step (its attributes and its optimizer's groups) and clipping (the gradients'
    values): program._undo_plan snapshots them at the start of each replay (since session 24).
    An optimizer whose state holds other objects (LBFGS's lists) or a GPU dropout mask: no."""
    for ins in program:
        if not _has_effects([ins]):
            continue
        if type(ins) is not Call:
            return False
        if ins.kind in ("clip_grad_norm_", "clip_grad_value_"):
            continue
        obj = getattr(ins.fn, "__self__", None)
        if ins.kind != "step" or obj is None or ins.args or ins.kwargs:
            return False  # (a closure, a GPU dropout mask, a call of another kind)
        opt = obj if hasattr(obj, "param_groups") else getattr(obj, "optimizer", None)
        if opt is None or not _plain_state(opt):
            return False
    return True


def _plain_state(opt) -> bool:
    """Whether every value of the optimizer's state is a CPU tensor or a plain number."""
    for st in opt.state.values():
        for v in st.values():
            if isinstance(v, Tensor):
                if type(v._data) is not np.ndarray:
                    return False
            elif type(v) not in (int, float, bool):
                return False
    return True


def _guarded_name(op) -> str:
    """The user's name of a Guarded op's function (nonzero, unique, bincount, ...)."""
    name = op.kernel.__name__.strip("_")
    return {"nonzero_positions": "nonzero(as_tuple=True) / where(condition)",
            "nonzero_rows": "nonzero", "one_hot_width": "one_hot without num_classes",
            "repeat_counts": "repeat_interleave with a tensor of counts",
            "repeat_positions": "repeat_interleave with a tensor of counts",
            }.get(name, name.removesuffix("_kernel"))  # fmt: skip


# The tensor types a recorded draw takes as arguments (rebuilt as plain Tensors at replay).
_DRAW_TENSORS = ("Tensor", "Parameter", "Buffer")


# Modules whose functions forward a draw's call unchanged (out= and keyword wrappers, Tensor's
# methods): the caller that decides is the one above them.
_FORWARDERS = ("descent.out_functions", "descent.ops.out_arg", "descent.torch_keywords",
               "descent.tensor_torch_methods")  # fmt: skip


def _draw_caller(frame) -> bool:
    """Whether a draw made from `frame` may be recorded: from user code, or from a descent
    function marked `creation_random.draws_through_ops` (through forwarding wrappers)."""
    for _ in range(6):
        if frame is None:
            return True
        if frame.f_code in creation_random.ops_callers:
            return True
        mod = frame.f_globals.get("__name__") or ""
        if mod not in _FORWARDERS:
            return not mod.startswith("descent.")
        frame = frame.f_back
    return False


_DRAW_CONSTANT_MODULES = ("descent.dtypes", "descent.devices", "descent.memory_layout")


def _draw_constant(v, depth: int = 0) -> bool:
    """A draw's argument that a replay may pass again as it is: Python numbers, strings, None,
    dtypes, devices, generators, and tuples/lists of them (no arrays, no tensors)."""
    if v is None or isinstance(v, (bool, int, float, str, np.dtype, np.generic, type)):
        return True
    if isinstance(v, (tuple, list)):
        return depth < 3 and all(_draw_constant(e, depth + 1) for e in v)
    mod = type(v).__module__
    return isinstance(v, creation_random.Generator) or mod.startswith(_DRAW_CONSTANT_MODULES)


def _find_dropout_modules(orig) -> list:
    """The descent modules that call `dropout_mask` through a module-level name."""
    found = []
    for name, mod in list(sys.modules.items()):
        if not name.startswith("descent."):
            continue
        # (unpatched: a recording in another thread may have put its dispatcher there)
        if attach.unpatched(getattr(mod, "dropout_mask", None)) is orig:
            found.append((mod, "dropout_mask"))
    return found
