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
bincount, repeat_interleave with a tensor of counts, a mask's positions) no replay can be right:
`derived(*arrays, op=name)` marks those arrays, and a recording that uses one falls back to
eager with a warning naming the op.
"""

from __future__ import annotations

from ..autograd import Function
from ..hooks import _forward_hooks, _run_forward_hooks
from ..tensor import Tensor

__all__ = ["Untracked", "computed", "derived", "seen"]

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
