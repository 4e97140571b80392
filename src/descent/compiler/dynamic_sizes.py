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
from .mask_read import MaskRead
from .program import Program
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
_POLY_CLASSES = {"descent.ops.shape_copy": frozenset({"Flip", "Roll", "Tile", "Tri"})}


def _poly(cls) -> bool:
    mod = cls.__module__
    return mod in _POLY_MODULES or cls.__name__ in _POLY_CLASSES.get(mod, ())


class _DynamicProgram(Program):
    """A Program whose graph nodes take this call's input shapes (module docstring)."""

    def __init__(self, rec: Recording, n_args: int) -> None:
        super().__init__(rec, n_args, use_pool=False, fuse=False)
        self.codegen = False  # (the generated replay is made for one shape)

    def _forward(self, ins: Forward, extra, env, pool) -> None:
        if ins.node:  # what the engine records at apply: each gradient is summed to these
            ins.op.in_shapes = tuple([np.shape(env[s]) for s in ins.ins])
        Program._forward(self, ins, extra, env, pool)

    def _backward(self, ins: Backward, env, pool) -> None:
        ins.order = [(node, [(i, p, node.in_shapes[i]) for i, p, _ in d]) for node, d in ins.order]
        Program._backward(self, ins, env, pool)


def _guards(rec: Recording) -> dict:
    """Program position -> the guard's recorded size (a Guarded op's shape, x[mask]'s counts)."""
    out = {}
    for k, ins in enumerate(rec.program):
        if type(ins) is Forward and type(ins.op) in (Guarded, MaskRead):
            out[k] = ins.op.shape if type(ins.op) is Guarded else ins.op.count
    return out


def _tainted(rec: Recording, dyn: dict):
    """(the slots computed from the changing guards' results, the positions of the views that
    hold the whole of such a slot); None when an instruction that must not read one does (an op
    outside `_POLY_MODULES`, a part view, a write, a recorded call)."""
    from .program import _reads  # noqa: PLC0415 - program imports the recorder

    tainted: set = set()
    whole: set = set()
    for k, ins in enumerate(rec.program):
        kind = type(ins)
        if kind is Forward:
            if k in dyn or set(_reads(ins)) & tainted:
                if k not in dyn and not _poly(type(ins.op)):
                    return None
                tainted.add(ins.out)
        elif kind is View:
            if ins.base in tainted:
                # (a loss's `target._data.reshape(-1)` of a 1-d target: the whole array)
                shape, dtype = rec.meta[ins.base]
                if ins.shape != shape or ins.offset or ins.strides != _c_strides(shape, dtype):
                    return None
                whole.add(k)
                tainted.add(ins.slot)
        elif kind in (Write, Call) and set(_reads(ins)) & tainted:
            return None
        # (a Backward: its seeds are the losses' constants, its gradients go to leaves)
    return tainted, whole


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
        return False
    dyn: dict = {}  # position -> its size with the changing entries as None
    for k, size in guards.items():
        was, before = old_guards[k], known.get(k)
        if len(was) != len(size):
            return False
        marked = tuple(None if a != b or (before and before[j] is None) else a
                       for j, (a, b) in enumerate(zip(was, size)))  # fmt: skip
        if any(m is None and (a < 2 or b < 2) for m, a, b in zip(marked, was, size)):
            return False
        if None in marked:
            dyn[k] = marked
    if not dyn or dyn == known:  # (no size changed beyond those the program lets change)
        return False
    got, got_old = _tainted(recording, dyn), _tainted(old, dyn)
    if got is None or got_old is None or got != got_old:
        return False
    tainted, whole = got
    if tainted & (reads | old_reads):  # (the function's Python read a size)
        return False
    meta, old_meta = recording.meta, old.meta
    if set(meta) != set(old_meta):
        return False
    for s, (shape, dtype) in meta.items():  # (a changed shape: one the changing guards made)
        o_shape, o_dtype = old_meta[s]
        if (
            o_dtype != dtype
            or len(o_shape) != len(shape)
            or (o_shape != shape and s not in tainted)
        ):
            return False
    infer = _inferred(old, recording, tainted)
    if infer is None:
        return False
    for s in tainted:  # (op code that read a size checks it: only the reviewed readers)
        if not _SAFE_READERS.issuperset(ops_read.get(s, ())) or \
                not _SAFE_READERS.issuperset(old_ops_read.get(s, ())):  # fmt: skip
            return False
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
        return False
    # The program's own list of instructions (Program may move hoisted guards in it; the whole
    # views become ops), so that `recording` stays comparable with the next one.
    program = list(recording.program)
    for k in whole:
        v = program[k]
        program[k] = Forward(object.__new__(_WholeView), (v.base,), v.slot, [], False)
    # (made before the guards take their forms: its undo plan counts them)
    prog = _DynamicProgram(dataclasses.replace(recording, program=program), len(rec.args))
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
