"""In-place ops on a tensor whose elements share memory without a 0 stride (an unfold with a step
smaller than its size, an as_strided view), as PyTorch computes them.

PyTorch refuses to write a tensor in place only when one of its dimensions has stride 0 and
more than one element (`assert_no_internal_overlap`: `has_internal_overlap` says Yes only
then; unfold's and as_strided's overlaps are "too hard" and pass). Its kernel then visits the
elements one after another (TensorIterator's loop), each reading its location's *current*
value and writing the op's result there: `y.unfold(0, 2, 1).sigmoid_()` applies sigmoid twice
to each inner element of y, `add_(v)` adds every aliasing element's v, and the last visit to a
location decides `copy_`. descent does the same in rounds (`visit_rounds`): round r computes
the op from the current memory and writes the elements that are the r-th visit to their
location, so that each round writes distinct locations. The visits follow TensorIterator's
order (`_ti_order`: its dimensions sorted by the operands' strides, ties to the smaller size).
Within one row of that order the locations are distinct, so PyTorch's vectorized loop gives the
same values as its scalar one.

A recorded write (ops/view_write) is PyTorch's CopySlices: the view's new value is the one
above, and backward gives each location the gradient of one visit (the op's backward applied
once, with the saved output being the final value, as PyTorch's saved `result` is), not the sum
over the elements that alias it (`once`). PyTorch's own order picks which visit where the
gradients of the visits differ (mul_ by a tensor); descent takes the last visit of the same
order. The other operands get every element's gradient.
"""

from __future__ import annotations

import numpy as np

from .. import backend, memory_layout


def internal_overlap(a) -> bool:
    """Whether array a has two elements at one memory location with no 0 stride over more than
    one element (those are PyTorch's expanded tensors, refused elsewhere). Cheap for the common
    arrays: contiguous ones and views whose sorted strides clear each other."""
    if a.base is None or a.flags.c_contiguous or a.flags.f_contiguous or a.size < 2:
        return False
    dims = sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1)
    if not dims or dims[0][0] == 0:
        return False
    span = 0
    for s, n in dims:
        if s <= span:
            break
        span += (n - 1) * s
    else:
        return False  # each stride clears the span of the smaller ones: no two elements meet
    offsets = _offsets(a)
    return int(backend.get_array_module(a).unique(offsets).size) < a.size


def _offsets(a):
    xp = backend.get_array_module(a)
    off = xp.zeros(a.shape, dtype=np.int64)
    for k, (n, s) in enumerate(zip(a.shape, a.strides)):
        shape = [1] * a.ndim
        shape[k] = n
        off = off + (xp.arange(n, dtype=np.int64) * s).reshape(shape)
    return off


def _ti_order(shape, strides_list) -> list[int]:
    """TensorIterator's reorder_dimensions: the dimensions from innermost to outermost, sorted by
    the operands' strides (memory_layout.stride_order: the first operand decides, a 0 stride
    passes to the next; equal strides put the smaller size inside)."""
    return memory_layout.stride_order(shape, strides_list)


def _strides_in(shape, a) -> tuple:
    """An operand's strides over the written tensor's shape (a broadcast dimension: 0)."""
    if a is None:
        return (0,) * len(shape)
    a = np.asarray(a) if not hasattr(a, "strides") else a
    lead = len(shape) - a.ndim
    return tuple(0 if k < lead or a.shape[k - lead] != n else a.strides[k - lead]
                 for k, n in enumerate(shape))  # fmt: skip


def visit_rounds(a, operands=(), last: bool = False):
    """For each element of a (an int array of a's shape): how many earlier visits of
    TensorIterator's loop went to its location (round numbers). With `last`: instead a bool
    array, True at each location's last visit. `operands`: the op's other arrays (PyTorch's
    inputs after the written-to tensor, which is also the first input)."""
    xp = backend.get_array_module(a)
    shape = a.shape
    strides = [a.strides, a.strides] + [_strides_in(shape, o) for o in operands]
    perm = _ti_order(shape, strides)
    order = perm[::-1]  # outermost first: C order of the transposed offsets is the visit order
    offs = _offsets(a).transpose(order).reshape(-1)
    idx = xp.argsort(offs, kind="stable")
    srt = offs[idx]
    n = srt.size
    ar = xp.arange(n, dtype=np.int64)
    start = xp.ones(n, dtype=bool)
    start[1:] = srt[1:] != srt[:-1]
    if last:
        end = xp.ones(n, dtype=bool)
        end[:-1] = start[1:]
        flat = xp.empty(n, dtype=bool)
        flat[idx] = end
    else:
        first = xp.maximum.accumulate(xp.where(start, ar, 0))
        flat = xp.empty(n, dtype=np.int64)
        flat[idx] = ar - first
    inv = [0] * len(order)
    for i, d in enumerate(order):
        inv[d] = i
    return flat.reshape([shape[d] for d in order]).transpose(inv)


def write_rounds(a, compute, operands=()) -> None:
    """Write into array a (elements sharing memory) as PyTorch's loop does: `compute()` gives
    the op's result (broadcastable to a) from the current memory; round r writes the elements
    that are the r-th visit to their location."""
    xp = backend.get_array_module(a)
    rounds = visit_rounds(a, operands)
    for r in range(int(rounds.max()) + 1 if rounds.size else 0):
        values = xp.broadcast_to(xp.asarray(compute()), a.shape)
        m = rounds == r
        a[m] = values[m]


def once(alias, a):
    """alias (a recorded view's old value, elements sharing memory in array a) with the gradient
    of only one element per location (the last visit of PyTorch's CopySlices copy, whose
    source is contiguous): the others' values pass without a gradient."""
    from .elementwise import where  # noqa: PLC0415 - elementwise imports the ops above this

    keep = visit_rounds(a, (np.empty(a.shape, dtype=a.dtype),), last=True)
    return where(alias._wrap(keep), alias, alias.detach())


def _arrays(operands) -> tuple:
    return tuple(o._data for o in operands if hasattr(o, "_data"))


def write(t, compute, operands=()):
    """The unrecorded path of an in-place op on t (elements sharing memory): `compute()` is the
    op's result in t's dtype from t's current values; written in PyTorch's visits, t's version
    goes up once. Returns t."""
    from .view_write import written  # noqa: PLC0415 - view_write imports the ops above this

    write_rounds(t._data, compute, _arrays(operands))
    written(t)
    return t


def recorded(t, out, compute, operands=()):
    """The recorded path's new value: `out` (the op applied to `once(t._alias(), ...)`) takes
    the values of PyTorch's visits, computed by `compute()` unrecorded from t's memory, which
    is then restored: the write through the view (ops/view_write.write) stores them after its
    checks (a view made under no_grad raises with the memory unchanged). Returns out."""
    from ..grad_mode import no_grad  # noqa: PLC0415

    a = t._data
    old = a.copy()  # (the elements sharing a location hold the same value: restored exactly)
    try:
        with no_grad():
            write_rounds(a, compute, _arrays(operands))
        out._data[...] = a  # (the saved output of sigmoid_ and the like: the final value)
    finally:
        a[...] = old
    return out
