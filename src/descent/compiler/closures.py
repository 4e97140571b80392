"""A closure made anew at each call, over the call's arguments, replayed (session 26).

`LBFGS.step(closure)` runs its closure several times, with Python control flow on the losses
(its line search, its tolerances), so the step is a recorded call that the replay runs again
(recorder.on_call). A closure made in the function at each call (`def closure(): ...
loss_fn(model(x), y)` over that call's batch `x`, `y`) is a new object in each recording, so
the two recordings differed and the function ran eagerly; a replay that passed the recorded
closure would train on the first batch again.

The recording keeps such a closure as a `Rebound`: its code, globals and defaults, and each cell
either a position among the call's argument tensors (a cell that held one of them) or the object
it held. Calling it makes the function again over the current call's arguments
(`current.tensors`, set by compiler/__init__ before a replay): the closure eager's Python
makes at that call. Two recordings agree when the code, the defaults and the cells agree (the
objects by identity, Python numbers and strings by value): a cell holding a tensor the call
computed, or another object made at each call (a list, an inner function), is a new object in
each recording and the function runs eagerly as before.
"""

from __future__ import annotations

import threading
import types

from ..tensor import Tensor

__all__ = ["Rebound", "current", "rebound"]

# the argument tensors of the call being replayed (a thread's own)
current = threading.local()


class Rebound:
    """A closure recorded with the call's argument tensors as positions (module docstring)."""

    __slots__ = ("fn", "cells", "_compile_key")

    def __init__(self, fn: types.FunctionType, cells: tuple, key: tuple) -> None:
        self.fn = fn  # the recorded closure (its code, globals, defaults, name)
        self.cells = cells  # per cell: ("arg", position) or ("obj", the object)
        self._compile_key = key  # what compiler/signature.py compares

    def __call__(self, *args, **kwargs):
        tensors = current.tensors
        fn = self.fn
        cells = tuple(types.CellType(tensors[v] if kind == "arg" else v)
                      for kind, v in self.cells)  # fmt: skip
        made = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__,
                                  cells)  # fmt: skip
        made.__kwdefaults__ = fn.__kwdefaults__
        return made(*args, **kwargs)


def _plain(v) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def rebound(fn, arg_pos: dict) -> Rebound | None:
    """`fn` as a Rebound when it is a Python closure (`arg_pos`: id(argument tensor) ->
    position); None otherwise (then the call keeps `fn` itself)."""
    if type(fn) is not types.FunctionType or not fn.__closure__:
        return None
    cells, key = [], []
    for cell in fn.__closure__:
        try:
            v = cell.cell_contents
        except ValueError:  # (an empty cell: a name assigned after the closure was made)
            return None
        i = arg_pos.get(id(v)) if isinstance(v, Tensor) else None
        if i is not None:
            cells.append(("arg", i))
            key.append(("arg", i))
        else:
            cells.append(("obj", v))
            key.append(("val", type(v), v) if _plain(v) else ("id", id(v)))
    defaults = tuple(d if _plain(d) else ("id", id(d)) for d in fn.__defaults__ or ())
    kwdefaults = tuple((k, d if _plain(d) else ("id", id(d)))
                       for k, d in (fn.__kwdefaults__ or {}).items())  # fmt: skip
    return Rebound(fn, tuple(cells),
                   ("closure", fn.__code__, defaults, kwdefaults, tuple(key)))  # fmt: skip
