"""Ops without a gradient that run on the arrays directly, made visible to op hooks.

Comparisons (`x > 0`, `x == y`), logic (`~m`, `logical_and`) and conversions to integer or bool
dtypes (`x.long()`, `x.to(torch.int64)`) are piecewise constant: no graph node is recorded, and
they run as NumPy calls on the arrays without an autograd Function. That left descent.compile's
recorder blind to them: their results looked like constants made outside the ops, the two
recordings differed, and a function with `torch.where(x > 0, ...)`, `F.hardtanh`, `F.relu6`
or an index computed with `.long()` ran eagerly.

`seen(kernel, inputs, args, out)` tells the op hooks (only when some are registered: the cost
elsewhere is one truth test) that `out` is `kernel(*arrays of inputs, *args)`, through an
`Untracked` op that a replay runs as any op's forward. `kernel` must be a module-level function
(the recorder compares it by identity between two recordings) and `args` plain constants
(scalars, dtypes, names), never arrays. `computed(kernel, inputs, args)` runs the kernel and
wraps its result: the ops whose indices or counts come from the data (sort, topk, kthvalue,
median, mode, cummax, searchsorted, histc, one_hot, scatter's and index_put's positions) compute
them once, through it, so eager and the replay run the same function. An index made this way
and handed to an autograd Function as a parameter is then a slot's array, which the recorder
rebinds at each replay instead of freezing it.

Where the SHAPE of a result depends on the values (nonzero, unique, argwhere, where(cond),
bincount, repeat_interleave with a tensor of counts, a mask's positions) a replay is right only
for the recorded shape. `guarded(kernel, inputs, args, op)` computes such results (nonzero,
where(cond), unique, unique_consecutive, bincount): the op hooks see one `Guarded` op per
result, whose replay runs the kernel again and raises `GuardFailed` when a result's shape is
not the recorded one (descent.compile then runs or records a program for the new shape, as for
`x[mask]`: compiler/mask_read.py). The others: `derived(*arrays, op=name)` marks those
arrays, and a recording that uses one falls back to eager with a warning naming the op.
"""

from __future__ import annotations

from ..autograd import Function
from ..hooks import _forward_hooks, _run_forward_hooks
from ..tensor import Tensor

__all__ = ["GuardFailed", "Guarded", "Untracked", "computed", "derived", "guarded", "seen"]

#: Called with arrays computed from tensors' values outside the ops and handed to an op as a
#: parameter (the positions of a boolean mask index: `x[mask]`) or returned as a result whose
#: shape depends on the values (`nonzero`): descent.compile's recorder listens, since a replay
#: would reuse them as constants, and runs such a function eagerly. Each is called as
#: `fn(arrays, op)`, `op` the name of the op that made them (None when not given).
derived_observers: list = []


def derived(*arrays, op: str | None = None) -> None:
    """Tell the listeners (above) that these arrays were computed from tensors' values."""
    for fn in derived_observers:
        fn(arrays, op)


class Untracked(Function):
    """`kernel(*arrays, *args)`: a recorded forward with no backward (no node is ever made)."""

    __slots__ = ("kernel", "args")

    def forward(self, *arrays):
        return self.kernel(*arrays, *self.args)

    def backward(self, gy, ops):  # pragma: no cover - never a graph node
        raise RuntimeError(f"{self.kernel.__name__}: an op without a gradient")


def seen(kernel, inputs: tuple, args: tuple, out):
    """Return `out` (a Tensor), after telling the op hooks how it was computed (see above)."""
    if _forward_hooks:
        op = object.__new__(Untracked)
        op.kernel = kernel
        op.args = args
        _run_forward_hooks(op, inputs, out)
    return out


def computed(kernel, inputs: tuple, args: tuple) -> Tensor:
    """`kernel(*arrays of inputs, *args)` wrapped as a Tensor without a node, and `seen`."""
    out = Tensor._wrap(kernel(*[t._data for t in inputs], *args))
    if _forward_hooks:
        seen(kernel, inputs, args, out)
    return out


class GuardFailed(Exception):
    """A replayed guarded op (x[mask]'s MaskRead, `Guarded`) met a data-dependent shape other
    than the recorded one."""


class Guarded(Function):
    """Result `part` of `kernel(*arrays, *args)`, a tuple of arrays whose shapes depend on the
    values, with the shape it had when recorded: forward raises GuardFailed on another shape.
    No backward (never a graph node: the results are indices, counts, distinct values)."""

    __slots__ = ("kernel", "args", "part", "shape")

    def forward(self, *arrays):
        out = self.kernel(*arrays, *self.args)[self.part]
        if out.shape != self.shape:
            raise GuardFailed(out.shape)
        return out

    def backward(self, gy, ops):  # pragma: no cover - never a graph node
        raise RuntimeError(f"{self.kernel.__name__}: an op without a gradient")


def guarded(kernel, inputs: tuple, args: tuple, op: str) -> tuple:
    """`kernel(*arrays of inputs, *args)` (a tuple of arrays whose shapes depend on the values)
    as a tuple of Tensors without nodes; the op hooks see one `Guarded` op per result (above).
    `kernel` a module-level function, `args` plain constants, as for `computed`."""
    arrays = kernel(*[t._data for t in inputs], *args)
    outs = tuple(Tensor._wrap(a) for a in arrays)
    if _forward_hooks:
        for k, o in enumerate(outs):
            g = object.__new__(Guarded)
            g.kernel, g.args, g.part, g.shape = kernel, args, k, o._data.shape
            _run_forward_hooks(g, inputs, o)
    elif derived_observers:  # (no hooks: nothing records the op, so a listener refuses them)
        derived(*arrays, op=op)
    return outs
