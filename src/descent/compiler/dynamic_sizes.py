"""Guarded sizes that later ops read: one program for every size of 2 or more (session 26).

A guarded op (`untracked.Guarded`: nonzero, where(condition), unique, bincount, ...;
`mask_read.MaskRead`: x[mask]) keeps the shape it was recorded with, and a replay stops
(`GuardFailed`) on another, because every later instruction was recorded for that shape: a
program per size, up to four (compiler/__init__), then eager. A masked loss
(`x[mask].mean()`, `cross_entropy(logits[keep], targets[keep])`) meets a new count at nearly
every call, so it recorded every call and then ran eagerly.

Most of what reads such a result does not depend on its size beyond the arrays themselves: an
elementwise op, a reduction, a loss, a product computes its output's shape from its inputs'
in `forward`, and its backward reads the saved arrays and `in_shapes`. Such a program can run at
another size when the replay gives each graph node the shapes of this call's inputs and each
delivery of the backward pass the shape of its node's input (`_DynamicProgram`). It is accepted
when two recordings of one input signature, with different sizes of some guards, agree in
everything but those sizes (`_normal`: the signature without the guards' sizes and the backward
pass's delivery shapes), and:

* every op that reads a slot computed from such a guard (a "tainted" slot) is of a family whose
  parameters do not hold a size (`_POLY_MODULES`: arithmetic, activations, comparisons,
  reductions, losses, products, indexing, shapes; what its Python computed from a size is then
  a parameter that the comparison sees differ; `Mean.n` is computed by forward), and no part
  view, write, recorded call or draw reads one. Two exceptions: a reshape (flatten, squeeze)
  whose target differs in one size keeps -1 there, which NumPy infers at each call as eager's
  wrapper computed it (`_inferred`); a view of the whole array (a loss's `target._data
  .reshape(-1)`) becomes an op that views the whole of each call's array (`_WholeView`);
* user code read no tainted tensor's size (`Tensor.shape`, `size()`, `len()`, ...: watched
  while a call is recorded, free_guards.watching; reads by descent's own op functions are
  theirs, and their effect on the program is what the comparison checks);
* each changing size was 2 or more in both recordings: a size of 0 or 1 can take other paths
  (an empty mean, broadcasting), and a replay at such a size stops at the guard (the usual
  program per size then runs or records), as torch.compile specializes 0 and 1.

The guards whose size was the same in both recordings keep their check. The program runs the
interpreter without the pool, fusion or generated code, whose plans are made for one shape.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..autograd import Function
from ..ops.reduce import Mean
from ..ops.shape import Reshape
from ..ops.untracked import Guarded, GuardFailed
from . import fusion
from .mask_read import MaskRead
from .program import Program, _undo_plan
from .recorder import Backward, Call, Forward, Recording, View, Write

__all__ = ["dynamic_program"]


class _DynGuarded(Guarded):
    """A Guarded op whose result's dimensions marked None in `shape` may take any size >= 2."""

    __slots__ = ()

    def forward(self, *arrays):
        out = self.kernel(*arrays, *self.args)[self.part]
        if not _fits(out.shape, self.shape):
            raise GuardFailed(out.shape)
        return out


class _DynMaskRead(MaskRead):
    """x[mask] whose counts of Trues marked None in `count` may be any count >= 2."""

    __slots__ = ()

    def forward(self, x, *index):
        want = self.count
        self.count = None  # (MaskRead.forward then takes this call's counts)
        try:
            out = MaskRead.forward(self, x, *index)
            got = self.count
        finally:
            self.count = want
        if not _fits(got, want):
            raise GuardFailed(got)
        return out


_BASE = {_DynGuarded: Guarded, _DynMaskRead: MaskRead}
# parameters that forward computes from its input on every call (a mean's count)
_COMPUTED = {Mean: frozenset({"n"})}


def _fits(got: tuple, want: tuple) -> bool:
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if w is None:
            if g < 2:
                return False
        elif g != w:
            return False
    return True


# Op families whose parameters do not hold an input's size (forward computes the output's
# shape, backward reads the saved arrays and in_shapes): they may read a slot whose size changes
_POLY_MODULES = frozenset(
    "descent.ops." + m
    for m in (
        "arithmetic activation comparison elementwise reduce softmax loss linear math "
        "division indexing shape selection embedding untracked"
    ).split()
) | {"descent.compiler.mask_read"}


# The functions of descent's op code whose reads of a size that changes are equality checks
# (batch sizes of a loss, a product's inner size, a concatenation's other sizes, a scalar
# loss's seed) or become op parameters (which the comparison of the recordings sees differ, or
# a flatten's -1). Another reader may check a bound (narrow's start + length <= size, topk's
# k <= size): eager raises at a small size where a replay would not, so it keeps the guards.
_SAFE_READERS = frozenset(
    [
        ("descent.autograd_backward", "_seed"),
        ("descent.nn.functional._linear", "linear"),
        ("descent.nn.functional._loss", "_refuse_integral"),
        ("descent.nn.functional._loss", "_same_shape"),
        ("descent.nn.functional._loss", "cross_entropy"),
        ("descent.nn.functional._loss", "nll_loss"),
        # gather: the index's emptiness (an empty result either way), its 0-d case (ndim) and
        # the bound check of x's size along dim (NumPy's take_along_axis raises IndexError
        # past it too); the sizes off dim are compared in _gather_fit, not reviewed
        ("descent.ops.indexing", "gather"),
        ("descent.ops.indexing", "index_select"),  # (its bound check: NumPy's read raises too)
        ("descent.ops.shape", "broadcast_to"),
        ("descent.ops.shape", "concatenate"),
        ("descent.ops.shape", "expand"),
        ("descent.ops.shape", "flatten"),
        ("descent.ops.shape", "squeeze"),
        ("descent.tensor_methods_shape", "index_select"),
        ("descent.tensor_methods_shape", "squeeze"),
    ]
)

# and single classes of other modules (not Pad: NumPy's reflect pads past a short input)
_POLY_CLASSES = {
    "descent.ops.shape_copy": frozenset({"Flip", "Roll", "Tile", "Tri"}),
    # (the values at a computed index: `idx` follows the index's slot, its wrapper's size
    # checks are in the index's kernel, e.g. kthvalue's k <= size)
    "descent.ops.order": frozenset({"Kthvalue", "MedianDim", "NanmedianDim", "Mode"}),
}


def _poly(cls) -> bool:
    mod = cls.__module__
    return mod in _POLY_MODULES or cls.__name__ in _POLY_CLASSES.get(mod, ()) or _no_params(cls)


def _no_params(cls) -> bool:
    """Whether the op has no parameters at all: each slot below Function is one that forward
    computes from the inputs (`saved_slots`, `computed_slots`: nextafter's masks), which the
    recordings' comparison skips; so none can hold a size."""
    own: set = set()
    for c in cls.__mro__:
        if c is Function:
            break
        if "__slots__" not in c.__dict__:  # (a __dict__: attributes unknown)
            return False
        slots = c.__dict__["__slots__"]
        own.update((slots,) if isinstance(slots, str) else slots)
    else:
        return False
    return own <= set(cls.saved_slots).union(getattr(cls, "computed_slots", ()))


class _DynamicProgram(Program):
    """A Program whose graph nodes take this call's input shapes (module docstring).

    `pinned`: slot -> shape, the results computed from a changing guard whose shape was the
    same in both recordings and whose size descent's op code read (a loss's target cut to
    `[:2]`, an `index_copy` into a fixed-size selection): checked after the op that makes
    them, a GuardFailed on another shape (the op code's reads were of the recorded size)."""

    def __init__(self, rec: Recording, n_args: int, pinned: dict | None = None,
                 tainted: frozenset | None = None, fuse: bool = True) -> None:  # fmt: skip
        super().__init__(rec, n_args, use_pool=False, fuse=False)
        self.fused_step = fuse and fusion._HAVE_NUMBA  # (compile's fuse: not "eager")
        self.codegen = False  # (the generated replay is made for one shape)
        self.pinned = pinned or {}
        # The graph nodes with an input whose shape may change (None: every node): only
        # theirs are set at each call, the others' in_shapes stay the recorded ones.
        tainted = None if tainted is None else frozenset(tainted)
        self._resized = frozenset(
            id(ins.op) for ins in self.rec.program if type(ins) is Forward and ins.node
            and (tainted is None or not tainted.isdisjoint(ins.ins)))  # fmt: skip
        self._fix = {}  # id(Backward) -> positions in its order of those nodes
        if self.pinned:  # (what a replay stopped at the last check or guard puts back)
            prog = self.rec.program
            last = max((k for k, ins in enumerate(prog) if type(ins) is Forward and (
                ins.out in self.pinned or isinstance(ins.op, (Guarded, MaskRead)))),
                default=0)  # fmt: skip
            marker = Forward(object.__new__(Guarded), (), -1, [], False)
            self.undo = _undo_plan([*prog[: last + 1], marker])

    def _forward(self, ins: Forward, extra, env, pool) -> None:
        if ins.node and id(ins.op) in self._resized:
            # what the engine records at apply: each gradient is summed to these
            ins.op.in_shapes = tuple([np.shape(env[s]) for s in ins.ins])
        Program._forward(self, ins, extra, env, pool)
        pinned = self.pinned
        if pinned and ins.out in pinned and env[ins.out].shape != pinned[ins.out]:
            raise GuardFailed(env[ins.out].shape)

    def _backward(self, ins: Backward, env, pool) -> None:
        fix = self._fix.get(id(ins))
        if fix is None:
            fix = self._fix[id(ins)] = [
                k for k, (node, _) in enumerate(ins.order) if id(node) in self._resized
            ]
        order = ins.order
        for k in fix:  # (each delivery: its node's input shape at this call)
            node, d = order[k]
            order[k] = (node, [(i, p, node.in_shapes[i]) for i, p, _ in d])
        Program._backward(self, ins, env, pool)

    def _call(self, ins: Call, env) -> None:
        # An optimizer's step as the fixed-size program's: one kernel for Adam/AdamW/SGD's
        # rule (fusion.fused_update; the parameters' and gradients' shapes never change)
        if ins.kind == "step" and ins.fused is None and self.fused_step:
            ins.fused = fusion.fused_update(getattr(ins.fn, "__self__", None)) or False
        Program._call(self, ins, env)


def _guards(rec: Recording) -> dict:
    """Program position -> the guard's recorded size (a Guarded op's shape, x[mask]'s counts)."""
    out = {}
    for k, ins in enumerate(rec.program):
        if type(ins) is Forward and type(ins.op) in (Guarded, MaskRead):
            out[k] = ins.op.shape if type(ins.op) is Guarded else ins.op.count
    return out


def _tainted(rec: Recording, dyn: dict):
    """(the slots computed from the changing guards' results, the positions of the views that
    hold the whole of such a slot, the slots of which a view holds a part); the reason, a str,
    when an instruction that must not read one does (an op outside `_POLY_MODULES`, a write,
    a recorded call)."""
    from .program import _reads  # noqa: PLC0415 - program imports the recorder

    tainted: set = set()
    whole: set = set()
    part: set = set()
    for k, ins in enumerate(rec.program):
        kind = type(ins)
        if kind is Forward:
            if k in dyn or set(_reads(ins)) & tainted:
                if k not in dyn and not _poly(type(ins.op)):
                    name = type(ins.op).__name__
                    return f"{name} (its parameters may hold a size) reads a changing size"
                tainted.add(ins.out)
        elif kind is View:
            if ins.base in tainted:
                # (a loss's `target._data.reshape(-1)` of a 1-d target: the whole array; a
                # part: its base's shape must not change, dynamic_program pins it)
                shape, dtype = rec.meta[ins.base]
                if ins.shape != shape or ins.offset or ins.strides != _c_strides(shape, dtype):
                    part.add(ins.base)
                else:
                    whole.add(k)
                tainted.add(ins.slot)
        elif kind in (Write, Call) and set(_reads(ins)) & tainted:
            return f"a {'write' if kind is Write else 'recorded call'} reads a changing size"
        # (a Backward: its seeds are the losses' constants, its gradients go to leaves)
    return tainted, whole, part


def _no(entry, why: str) -> bool:
    """Refuse (the reason goes into the fallback's warning: compiler/__init__._count_reason)."""
    entry.dyn_why = why
    return False


def _c_strides(shape: tuple, dtype) -> tuple:
    strides, step = [], np.dtype(dtype).itemsize
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


def _normal(rec: Recording, guards: dict, whole: set) -> list:
    """The recording's signature without the guards' sizes, the whole views' shapes and the
    backward passes' delivery shapes (which follow from the ops and the inputs' shapes)."""
    from . import signature as _sig  # noqa: PLC0415

    views = {rec.program[k].slot for k in whole}
    out = []
    computed = None
    for it in _sig.signature(rec, frozenset(guards)):
        if computed is not None:  # (the parameters after an op that computes some of them)
            it = tuple((n, v) for n, v in it if n not in computed)
            computed = None
        elif type(it) is tuple and it and it[0] == "F" and it[1] in _COMPUTED:
            computed = _COMPUTED[it[1]]
        if type(it) is tuple and it and it[0] == "B":
            order = tuple((n, tuple((i, p) for i, p, _ in d)) for n, d in it[2])
            it = (it[0], it[1], order, *it[3:])
        elif type(it) is tuple and it and it[0] == "V" and it[1] in views:
            it = ("V", it[1], it[2], "whole")
        elif type(it) is tuple and it and it[0] == "F" and it[1] in _BASE:
            it = ("F", _BASE[it[1]], *it[2:])
        out.append(it)
    return out


def _inferred(old: Recording, rec: Recording, tainted: set) -> dict | None:
    """{(the earlier recording's op, this one's): the target shape with -1 at the one size that
    differs} for each reshape (flatten, squeeze, ...) of a tainted slot whose target shapes
    differ: its wrapper computed that size from the input's, and -1 makes NumPy infer it on
    each call (eager's size, where the other sizes are the same). None where two sizes differ."""
    out = {}
    for k, ins in enumerate(rec.program):
        if type(ins) is not Forward or not isinstance(ins.op, Reshape) or \
                not set(ins.ins) & tainted:  # fmt: skip
            continue
        was = old.program[k] if k < len(old.program) else None
        if type(was) is not Forward or type(was.op) is not type(ins.op):
            return None
        a, b = tuple(was.op.shape), tuple(ins.op.shape)
        if a == b:
            continue
        diff = [i for i, (p, q) in enumerate(zip(a, b)) if p != q]
        if len(a) != len(b) or len(diff) != 1 or 0 in b or -1 in b:  # (-1: NumPy infers
            return None  # one size, and none next to a 0)
        out[(was.op, ins.op)] = tuple(-1 if i == diff[0] else n for i, n in enumerate(b))
    return out


class _WholeView(Function):
    """A view of the whole of a slot's array (a View instruction of a size that changes)."""

    __slots__ = ()

    def forward(self, x):
        return x.view()

    def backward(self, gy, ops):  # pragma: no cover - never a graph node
        raise RuntimeError("a whole view: never a graph node")


def dynamic_program(cf, entry, rec, recording: Recording, warm: bool) -> bool:
    """Whether `recording` became the entry's program with its changing guards free to take any
    size >= 2 (module docstring): the entry's previous recording with guards (`entry.dyn_ref`)
    agrees with it but for the sizes of some guards (and of those a dynamic program made from
    that recording already let change)."""
    guards = _guards(recording)
    ref = entry.dyn_ref
    entry.dyn_ref = None
    if warm or not guards:
        return False
    reads, ops_read = frozenset(rec.user_shape_read), dict(rec.op_shape_read)
    entry.dyn_ref = (recording, guards, reads, ops_read, {})
    if ref is None:
        return False
    old, old_guards, old_reads, old_ops_read, known = ref
    if set(old_guards) != set(guards) or len(old.slots) != len(recording.slots):
        return _no(entry, "two recordings with other guards or another number of values")
    dyn: dict = {}  # position -> its size with the changing entries as None
    for k, size in guards.items():
        was, before = old_guards[k], known.get(k)
        if len(was) != len(size):
            return _no(entry, "a guarded result's number of dimensions changed")
        marked = tuple(None if a != b or (before and before[j] is None) else a
                       for j, (a, b) in enumerate(zip(was, size)))  # fmt: skip
        if any(m is None and (a < 2 or b < 2) for m, a, b in zip(marked, was, size)):
            return _no(entry, "a changing size was 0 or 1 (those are specialized)")
        if None in marked:
            dyn[k] = marked
    if not dyn or dyn == known:  # (no size changed beyond those the program lets change)
        return False
    got, got_old = _tainted(recording, dyn), _tainted(old, dyn)
    if isinstance(got, str) or isinstance(got_old, str):
        return _no(entry, got if isinstance(got, str) else got_old)
    if got != got_old:
        return _no(entry, "the two recordings' values of a changing size differ")
    tainted, whole, part = got
    meta, old_meta = recording.meta, old.meta
    if set(meta) != set(old_meta):
        return _no(entry, "two recordings with other values")
    for s, (shape, dtype) in meta.items():  # (a changed shape: one the changing guards made)
        o_shape, o_dtype = old_meta[s]
        if (
            o_dtype != dtype
            or len(o_shape) != len(shape)
            or (o_shape != shape and s not in tainted)
        ):
            return _no(entry, "a shape that no changing guard made changed")
    infer = _inferred(old, recording, tainted)
    if infer is None:
        return _no(entry, "a reshape of a changing size whose target differs in two sizes")
    # A size read (by the function's Python or by op code) of a result whose shape was the
    # same in both recordings: the replay checks that shape (`pinned`), so every read gave
    # the recorded value. A changing size: the function's Python may not read it (`n =
    # y.shape[0]; x * min(n, 6)` would replay the recorded min), op code only in a reviewed
    # function (_SAFE_READERS).
    pinned = {}
    for s in part:  # (the base of a part view: the view's offset and strides are for its shape)
        if meta[s][0] != old_meta[s][0]:
            return _no(entry, "a view of a part of a result whose size changes")
        pinned[s] = meta[s][0]
    for s in tainted:
        readers = ops_read.get(s, set()) | old_ops_read.get(s, set())
        if (readers or s in reads or s in old_reads) and meta[s][0] == old_meta[s][0]:
            pinned[s] = meta[s][0]
            continue
        if s in reads or s in old_reads:
            return _no(entry, "the function's Python code read a changing size")
        other = readers - _SAFE_READERS
        if other:
            mod, fn = sorted(other)[0]
            return _no(entry, f"{mod}.{fn} read a changing size (a reader not reviewed)")
    from . import signature as _sig  # noqa: PLC0415

    # (the reshapes compared with their changing size as -1, which the program keeps)
    undo = [(op, op.shape) for pair in infer for op in pair]
    for (a, b), shape in infer.items():
        a.shape = b.shape = shape
    try:
        same = _sig.same(_normal(old, guards, whole), _normal(recording, guards, whole))
    finally:
        for op, shape in undo[::2]:  # (the earlier recording's ops as they were)
            op.shape = shape
    if not same:
        for op, shape in undo[1::2]:
            op.shape = shape
        return _no(
            entry,
            "the two recordings differ in more than the changing sizes (an op "
            "parameter computed from a size)",
        )
    # The program's own list of instructions (Program may move hoisted guards in it; the whole
    # views become ops), so that `recording` stays comparable with the next one.
    program = list(recording.program)
    for k in whole:
        v = program[k]
        program[k] = Forward(object.__new__(_WholeView), (v.base,), v.slot, [], False)
    # (made before the guards take their forms: its undo plan counts them)
    prog = _DynamicProgram(
        dataclasses.replace(recording, program=program), len(rec.args), pinned, tainted, cf.fuse
    )
    for k, marked in dyn.items():
        op = recording.program[k].op
        if type(op) is Guarded:
            op.__class__ = _DynGuarded
            op.shape = marked
        else:
            op.__class__ = _DynMaskRead
            op.count = marked
    entry.dyn_ref = (recording, guards, reads, ops_read, dyn)
    # the entry's programs for sizes this one covers go (compiler/__init__ keeps four)
    marks = [m for _, m in sorted(dyn.items())]
    keep = []
    for p, bumps in [(entry.program, entry.bumps), *entry.alts]:
        if p is not None and not _covered(p, marks):
            keep.append((p, bumps))
        elif p is not None:
            p.release()
    entry.alts = keep
    entry.program = prog
    entry.bumps = tuple(recording.arg_bumps)
    entry.resized = tuple(recording.resized)
    return True


def _covered(prog: Program, marks: list) -> bool:
    """Whether every guard of `prog` (a program for one size of each) fits `marks`."""
    sizes = [ins.op.shape if type(ins.op) is Guarded else ins.op.count
             for ins in prog.rec.program
             if type(ins) is Forward and type(ins.op) in (Guarded, MaskRead)]  # fmt: skip
    return len(sizes) == len(marks) and all(_fits(s, m) for s, m in zip(sizes, marks))
