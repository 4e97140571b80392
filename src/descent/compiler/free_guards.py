"""Guarded ops whose result only leaves the call: a program for every size (session 25).

A guarded op (`untracked.Guarded`: nonzero, where(condition), unique, bincount, ...;
`mask_read.MaskRead`: x[mask]) keeps the shape it was recorded with, and a replay stops
(`GuardFailed`) on another, because every later instruction was recorded for that shape. A
result that no later instruction reads (no op, view, write, backward pass or recorded call takes
it, no module attribute holds it) and whose size the function's Python code did not read
(`Tensor.shape`, `size()`, `len()`, `numel()`, iteration, `nbytes`, `untyped_storage()`, ...:
watched while a call is recorded)
has no such dependents: the call only returns it (or drops it). Its size can then change freely
between calls: the program runs the op's kernel on each call's arrays (eager's code and bits)
and returns what it gives. Such a "free" guard is accepted once two recordings of the entry
with different sizes of it (the same sizes of every other guard) agree in everything else,
the signature with the free ops' recorded sizes left out: the comparison that two equal-size
recordings get, with the data-dependent size as the one allowed difference.
"""

from __future__ import annotations

import inspect
import sys
import threading

from ..ops.untracked import Guarded
from ..tensor import Tensor
from .mask_read import MaskRead
from .recorder import Call, Forward, Recording

__all__ = ["free_guards", "guard_sizes", "make_free", "watching"]


class _FreeGuarded(Guarded):
    """A Guarded op of a free guard: its result's shape is not checked."""

    __slots__ = ()

    def forward(self, *arrays):
        return self.kernel(*arrays, *self.args)[self.part]


class _FreeMaskRead(MaskRead):
    """x[mask] of a free guard: the count of Trues is not checked."""

    __slots__ = ()

    def forward(self, x, *index):
        self.count = None  # (MaskRead.forward then takes this call's counts)
        return MaskRead.forward(self, x, *index)


_GUARDS = (Guarded, MaskRead)


def guard_sizes(rec: Recording, free: frozenset) -> tuple[tuple, tuple]:
    """(the recorded sizes of the guards not in `free`, those of the guards in `free`), each in
    program order: a Guarded op's shape, a MaskRead's counts of Trues."""
    fixed, loose = [], []
    for k, ins in enumerate(rec.program):
        if type(ins) is Forward and type(ins.op) in _GUARDS:
            size = ins.op.shape if type(ins.op) is Guarded else ins.op.count
            (loose if k in free else fixed).append(size)
    return tuple(fixed), tuple(loose)


def free_guards(recorder, rec: Recording) -> frozenset:
    """The program positions of the guarded ops of `rec` whose result only leaves the call
    (module docstring): no graph node, read by no later instruction, held by no module attribute
    nor passed to a recorded call, and its size not read by the function's Python code."""
    from .program import _reads, _result_slots  # noqa: PLC0415 - program imports the recorder

    cands = {}
    for k, ins in enumerate(rec.program):
        if type(ins) is Forward and type(ins.op) in _GUARDS and not ins.node:
            cands[ins.out] = k
    if not cands:
        return frozenset()
    for ins in rec.program:
        for s in _reads(ins):
            cands.pop(s, None)
    for _, _, template in rec.attrs:
        for s in _result_slots(template):
            cands.pop(s, None)
    outs = recorder.guard_outs
    held: set = set()
    for ins in rec.program:
        if type(ins) is Call:
            _held(ins.args, outs, held)
            _held(ins.kwargs, outs, held)
    for s in held:
        cands.pop(s, None)
    for s in recorder.shape_read:
        cands.pop(s, None)
    return frozenset(cands.values())


def _held(v, outs: dict, held: set, depth: int = 0) -> None:
    """Add to `held` the slots of the guarded results (`outs`) that v is or holds."""
    if isinstance(v, Tensor):
        hit = outs.get(id(v))
        if hit is not None and hit[0]() is v:
            held.add(hit[1])
    elif depth < 3 and isinstance(v, (list, tuple)):
        for x in v:
            _held(x, outs, held, depth + 1)
    elif depth < 3 and isinstance(v, dict):
        for x in v.values():
            _held(x, outs, held, depth + 1)


def make_free(rec: Recording, free: frozenset) -> None:
    """Turn the guarded ops at `free` into their unchecked forms (before a Program is made)."""
    for k in free:
        op = rec.program[k].op
        op.__class__ = _FreeGuarded if type(op) is Guarded else _FreeMaskRead


# -- watching Python's reads of a guarded result's size while a call is recorded ---------------
_lock = threading.Lock()
# recorders whose call is running (each: guard_outs, shape_read); replaced, never changed in
# place, so that a reader in another thread iterates a whole list
_watchers: tuple = ()
_NAMES = (
    "shape",
    "size",
    "__len__",
    "numel",
    "nelement",
    "__iter__",
    "nbytes",
    "storage",
    "untyped_storage",
    "is_same_size",
)
_originals: dict = {}
_MIXIN = object()  # (in _originals: the name was a mixin's, not Tensor's own)


def _note(t, frame) -> None:
    for r in _watchers:
        hit = r.guard_outs.get(id(t))
        if hit is not None and hit[0]() is t:
            r.shape_read.add(hit[1])
            if not _op_code(frame):
                r.user_shape_read.add(hit[1])
            else:  # (dynamic_sizes.py: which op code read a size that changes)
                r.op_shape_read.setdefault(hit[1], set()).add(_where(frame))


# Modules whose functions read sizes to make ops (their parameters, which the comparison of two
# recordings sees) or to check them; `_SIZE_GIVERS` among them hand a size to their caller.
_OP_MODULES = ("descent.ops.", "descent.nn.", "descent.compiler.")
_OP_MODULE_NAMES = ("descent.tensor", "descent.tensor_methods_shape", "descent.autograd_backward")
_SIZE_GIVERS = frozenset({"numel", "__reversed__"})


def _where(frame) -> tuple:
    return (frame.f_globals.get("__name__"), frame.f_code.co_name)


def _op_code(frame) -> bool:
    """Whether a size read from `frame` is descent's own op code (compiler/dynamic_sizes.py),
    not the function's Python (or a descent function that gives the size to it)."""
    if frame is None:
        return False
    mod = frame.f_globals.get("__name__") or ""
    if not (mod.startswith(_OP_MODULES) or mod in _OP_MODULE_NAMES):
        return False
    return frame.f_code.co_name not in _SIZE_GIVERS


def _wrapped(name: str, orig):
    if isinstance(orig, property):
        get = orig.fget

        def read(self):
            _note(self, sys._getframe(1))
            return get(self)

        return property(read, doc=orig.__doc__)

    def method(self, *args, **kwargs):
        frame = sys._getframe(1)
        _note(self, frame)
        for a in args:  # (is_same_size(other): the other's size too)
            if isinstance(a, Tensor):
                _note(a, frame)
        return orig(self, *args, **kwargs)

    method.__name__, method.__doc__ = orig.__name__, orig.__doc__
    return method


class watching:  # noqa: N801 - a context manager, used as a function
    """While the recorded call runs: Tensor's size readers note the guarded results they are
    called on (`recorder.guard_outs`) in `recorder.shape_read`."""

    def __init__(self, recorder) -> None:
        self.recorder = recorder

    def __enter__(self):
        global _watchers  # noqa: PLW0603
        with _lock:
            if not _watchers:
                for name in _NAMES:  # (a mixin's method: shadowed on Tensor, then deleted)
                    orig = inspect.getattr_static(Tensor, name)
                    _originals[name] = Tensor.__dict__.get(name, _MIXIN)
                    setattr(Tensor, name, _wrapped(name, orig))
            _watchers = (*_watchers, self.recorder)
        return self

    def __exit__(self, *exc) -> None:
        global _watchers  # noqa: PLW0603
        with _lock:
            _watchers = tuple(r for r in _watchers if r is not self.recorder)
            if not _watchers:
                for name, orig in _originals.items():
                    if orig is _MIXIN:
                        delattr(Tensor, name)
                    else:
                        setattr(Tensor, name, orig)
                _originals.clear()
