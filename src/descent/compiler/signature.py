"""Comparing two recordings of the same call signature.

A replay freezes everything that is not recomputed by an instruction: the ops' parameters,
the constants (arrays made outside the ops), which calls run with which arguments. The first two
calls are both recorded; if anything of that differs between them, a value was computed from
the data outside descent's ops (or Python control flow depends on it) and replaying would be
wrong, so the function falls back to eager. `signature` reduces a recording to a comparable
form: graph nodes are named by the position of their Forward instruction (node objects differ
between recordings), captured tensors by identity (they are the same objects).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..backend import is_cupy_array
from .recorder import Backward, Call, Forward, Recording, View, Write, _Out, op_params


def signature(rec: Recording, free: frozenset = frozenset()) -> list:
    """A list of comparable items (arrays compared by value by `same`); the guarded ops at the
    program positions `free` without their recorded sizes (compiler/free_guards.py)."""
    where = {}
    for k, ins in enumerate(rec.program):
        if isinstance(ins, Forward):
            where[id(ins.op)] = k

    def name(obj):
        k = where.get(id(obj))
        return ("node", k) if k is not None else ("obj", id(obj))

    items: list = [len(rec.slots)]
    for s in rec.slots:
        if s.kind == "const":
            items.append(("const", s.value))
        elif s.kind == "live":
            items.append(("live", id(s.tensor)))
        else:
            items.append((s.kind, s.arg))
    for k, ins in enumerate(rec.program):
        if isinstance(ins, Forward):
            saved = set(ins.op.saved_slots).union(getattr(ins.op, "computed_slots", ()))
            if k in free:
                saved.update(("shape", "count"))
            bound = {n for n, _ in ins.binds}
            params = tuple(
                (n, v) for n, v in op_params(ins.op).items() if n not in saved and n not in bound
            )
            items.append(("F", type(ins.op), ins.ins, ins.out, tuple(ins.binds), ins.node))
            items.append(params)
        elif isinstance(ins, Backward):
            seeds = tuple((name(t), s) for t, s in ins.seeds)
            order = tuple(
                (name(n), tuple((i, name(p), sh) for i, p, sh in d)) for n, d in ins.order
            )
            leaves = tuple(id(t) for t in ins.leaves)
            items.append(("B", seeds, order, leaves, tuple(ins.grad_slots), ins.retain_graph,
                          ins.was_none))  # fmt: skip
        elif isinstance(ins, View):
            items.append(("V", ins.slot, ins.base, ins.shape, ins.strides, ins.offset))
        elif isinstance(ins, Write):
            items.append(("W", ins.dst, ins.fn, ins.operands))
        elif isinstance(ins, Call):
            fn = ins.fn
            items.append(("C", ins.kind, getattr(fn, "__func__", fn),
                          id(getattr(fn, "__self__", None)), ins.out))  # fmt: skip
            items.append((_args_key(ins.args), _args_key(tuple(ins.kwargs.items()))))
    items.append(("R", _result_key(rec.result)))
    items.append(("A", tuple((id(m), n, _result_key(t)) for m, n, t in rec.attrs)))
    items.append(("AB", tuple(rec.arg_bumps), tuple(rec.resized)))
    return items


def _args_key(args):
    out = []
    for a in args:
        if isinstance(a, (list, tuple)):
            out.append(tuple(x if _plain(x) else getattr(x, "_compile_key", None) or id(x)
                             for x in a))  # fmt: skip
        elif _plain(a):
            out.append(a)
        elif hasattr(a, "_compile_key"):  # (a closure over the call's arguments: closures.py)
            out.append(a._compile_key)
        elif callable(a) and hasattr(a, "__qualname__"):  # (named in the warning: an LBFGS
            # closure made anew at each call is a new object in each recording)
            out.append(("id", id(a), a.__qualname__))
        else:
            out.append(("id", id(a)))
    return tuple(out)


def _plain(x) -> bool:
    return x is None or isinstance(x, (bool, int, float, str, np.dtype, type))


def _result_key(r):
    if isinstance(r, _Out):
        return ("out", r.slot, r.requires_grad)
    if isinstance(r, (list, tuple)):
        return (type(r).__name__,) + tuple(_result_key(x) for x in r)
    if isinstance(r, dict):
        return ("dict",) + tuple((k, _result_key(v)) for k, v in r.items())
    return ("py", r if _plain(r) else id(r))  # a captured tensor in an attribute: by identity


def same(a: list, b: list) -> bool:
    """True when two signatures agree (arrays by shape, dtype and value)."""
    if len(a) != len(b):
        return False
    return all(_equal(x, y) for x, y in zip(a, b))


def _equal(x, y) -> bool:
    if is_cupy_array(x) or is_cupy_array(y):  # device arrays: same type, shape, dtype, values
        return (type(x) is type(y) and x.shape == y.shape and x.dtype == y.dtype
                and bool(backend.get_array_module(x).array_equal(x, y, equal_nan=True)))
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray)):
            return False
        return x.shape == y.shape and x.dtype == y.dtype and np.array_equal(x, y, equal_nan=True)
    if isinstance(x, (tuple, list)) and type(x) is type(y):  # (a list of arrays: ZeroGradient's
        # masks; `x == y` raised on the arrays, so the recordings never agreed)
        return len(x) == len(y) and all(_equal(p, q) for p, q in zip(x, y))
    try:
        return bool(x == y) or (x != x and y != y)  # noqa: PLR0124 - NaN parameters agree
    except (TypeError, ValueError):
        return x is y


def first_difference(a: list, b: list) -> str:
    """A short description of where two signatures first differ (for the warning)."""
    if len(a) != len(b):
        return f"the recordings have {len(a)} and {len(b)} items"
    for x, y in zip(a, b):
        if not _equal(x, y):
            return f"{_short(x)} vs {_short(y)}"
    return "no difference"


def _short(x) -> str:
    text = repr(x)
    return text if len(text) < 160 else text[:157] + "..."
