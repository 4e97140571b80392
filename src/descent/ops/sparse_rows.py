"""The rows a sparse embedding gradient names (`nn.Embedding(sparse=True)`).

PyTorch gives such a weight a sparse COO gradient: its indices are the rows looked up since the
gradient was last cleared (padding_idx excepted), coalesced. `optim.SparseAdam` updates exactly
those rows, and their moments, even a row whose gradient values are all zero (a looked-up row
whose positions the loss masks out). descent keeps gradients dense (same values); this module
remembers, per weight, which rows its current `.grad` covers, so that SparseAdam follows
PyTorch's rule. For SGD and Adagrad a sparse gradient and its dense form give the same update.

The Embedding op's backward calls `record` (the weight's `.grad` is still the one from before
the pass); a post-accumulate-grad hook then merges the pass's rows with the rows of the gradient
it was added to (gradient accumulation), or starts afresh when that gradient was cleared (None,
or zeroed in place by zero_grad(set_to_none=False)). `rows_of` answers only while `.grad` is the
object that hook saw, so a gradient the user replaced reads as dense.
"""

from __future__ import annotations

import weakref

from .. import backend
from ..hooks import register_post_accumulate_grad_hook

__all__ = ["record", "rows_of"]


class _Entry:
    """Per weight: the rows of its current .grad, and the rows this pass adds."""

    __slots__ = ("ref", "pending", "before", "grad_ref", "rows")

    def __init__(self, ref) -> None:
        self.ref = ref  # weak reference to the weight
        self.pending: list = []  # row arrays recorded by this backward pass
        self.before = None  # the weight's .grad when the pass began (it accumulates onto it)
        self.grad_ref = None  # weak reference to the .grad that `rows` describes
        self.rows = None  # sorted unique int64 rows of that gradient


# id(weight) -> _Entry (Tensor's __eq__ is elementwise, so no WeakKeyDictionary)
_entries: dict[int, _Entry] = {}


def record(weight, rows) -> None:
    """Rows (1-D, unique) of `weight` that the running backward pass gives a gradient."""
    key = id(weight)
    entry = _entries.get(key)
    if entry is None or entry.ref() is not weight:
        entry = _entries[key] = _Entry(weakref.ref(weight, lambda _r, k=key: _entries.pop(k, None)))
        register_post_accumulate_grad_hook(weight, _accumulated)
    if not entry.pending:
        entry.before = weight.grad
    entry.pending.append(rows)


def _accumulated(weight) -> None:
    """After the pass: the rows of the new .grad (the pass's, plus those of the gradient it was
    added to unless that was cleared)."""
    entry = _entries.get(id(weight))
    if entry is None or not entry.pending:
        return
    xp = backend.get_array_module(weight._data)
    parts = list(entry.pending)
    before = entry.before
    if (
        before is not None
        and entry.grad_ref is not None
        and entry.grad_ref() is before
        and bool(before._data.any())  # zero_grad(set_to_none=False) zeroes in place: no rows
    ):
        parts.append(entry.rows)
    entry.rows = xp.unique(xp.concatenate(parts))
    entry.grad_ref = weakref.ref(weight.grad) if weight.grad is not None else None
    entry.pending, entry.before = [], None


def rows_of(param):
    """The rows `param.grad` names if it is a sparse embedding gradient, else None."""
    entry = _entries.get(id(param))
    if entry is None or entry.ref() is not param or param.grad is None:
        return None
    if entry.grad_ref is None or entry.grad_ref() is not param.grad:
        return None
    return entry.rows
