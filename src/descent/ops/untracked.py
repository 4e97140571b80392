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
(scalars, dtypes, names), never arrays.
"""

from __future__ import annotations

from ..autograd import Function
from ..hooks import _forward_hooks, _run_forward_hooks

__all__ = ["Untracked", "derived", "seen"]

#: Called with arrays computed from tensors' values outside the ops and handed to an op as a
#: parameter (the positions of a boolean mask index: `x[mask]`): descent.compile's recorder
#: listens, since a replay would reuse them as constants, and runs such a function eagerly.
derived_observers: list = []


def derived(*arrays) -> None:
    """Tell the listeners (above) that these arrays were computed from tensors' values."""
    for fn in derived_observers:
        fn(arrays)


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
