"""`x[mask]` with a boolean mask tensor, as one guarded op while descent.compile records.

The result's shape is the mask's count of Trues, a value of the data. Eager's getitem turns the
mask into positions on the arrays (`indexing._convert_index`), which the recorder refuses
(`untracked.derived`: a replay would reuse the recording's positions and shape). While a call
is recorded, `x[mask]` for a bool mask tensor (beside slices and None only) goes through
`MaskRead` instead (`recorded_getitem`, installed in the ops table by the recorder): the mask is
an input, and forward computes the positions from each call's mask, the same arrays as eager's
getitem (`x[positions]`, then a C-contiguous copy), so a replay reads each call's values.

A replay is only right while the count is the recorded one (every later instruction was recorded
for that shape), so forward compares it: a different count raises `GuardFailed`, and
compiler/__init__ runs the call with another program recorded for that count, or records one
(PyTorch's torch.compile recompiles on a new size the same way). The recorder accepts a
MaskRead only where no instruction before it has an effect outside the replay's own arrays (a
write into the caller's tensor, an optimizer step, a backward pass storing `.grad`, a random
draw): a replay stopped at the guard then leaves nothing behind.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..grad_mode import _inference_seen
from ..ops.indexing import _bool_masks, _convert_index
from ..ops.shape import permute
from ..ops.untracked import GuardFailed
from ..tensor import Tensor

__all__ = ["GuardFailed", "MaskRead", "recorded_getitem"]


class _Pos:
    """An index tensor's place in a MaskRead's index: the op's input `k` (x is input 0)."""

    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = k

    def __eq__(self, other) -> bool:
        return type(other) is _Pos and other.k == self.k

    def __hash__(self) -> int:
        return hash(("_Pos", self.k))

    def __repr__(self) -> str:
        return f"_Pos({self.k})"


class MaskRead(Function):
    """x[items] with bool masks among the items: d/dx = zeros with gy added at the positions
    read (IndexGetItem's backward); the index tensors get no gradient. `items` is the index with
    each tensor a `_Pos` (its arrays are the op's inputs after x), `count` the masks' counts
    of Trues when recorded."""

    saves_params = True  # the index counts as saved (IndexGetItem's: PyTorch's IndexBackward0)
    # forward computes idx from the masks on every call (the recorder and the signature skip it)
    computed_slots = ("idx",)
    __slots__ = ("items", "count", "idx")

    def forward(self, x, *index):
        items = tuple(index[i.k - 1] if type(i) is _Pos else i for i in self.items)
        counts = tuple(int(np.count_nonzero(i)) for i in items if _is_mask(i))
        if self.count is None:  # (the eager call that records it)
            self.count = counts
        elif counts != self.count:
            raise GuardFailed(counts)
        # eager getitem's positions (indexing._convert_index on the arrays: each mask's
        # np.nonzero in place, ints and slices as they are), then its read and copy
        self.idx = _convert_index(items, np, x.shape)[0]
        out = x[self.idx]
        if not out.flags.c_contiguous:  # (GetItem.forward's copy for an advanced index)
            out = np.ascontiguousarray(out)
        return out

    def backward(self, gy, ops):
        return (ops.index_grad(gy, self.in_shapes[0], self.idx, False),
                *[None] * (len(self.in_shapes) - 1))  # fmt: skip


def _is_mask(a) -> bool:
    return type(a) is np.ndarray and a.dtype == np.bool_ and a.ndim > 0


def _parts(x: Tensor, index):
    """(items with `_Pos` markers, index tensors, PyTorch's placement permutation or None) when
    `index` holds one or more bool mask tensors (of one dimension or more), beside slices, None,
    Ellipsis, Python ints and integer index tensors of one dimension or more, on a plain NumPy
    float, int, bool, complex or bfloat16 tensor, and eager's getitem takes it; else None
    (eager's getitem then runs, with its checks and errors: a 0-d integer tensor is read
    through its value, whose read guard makes the call run eagerly)."""
    items = index if type(index) is tuple else (index,)
    a = x._data
    if type(a) is not np.ndarray or (a.dtype.num >= 256 and a.dtype.name != "bfloat16") or \
            a.dtype.kind not in "fciubV":  # fmt: skip
        return None  # (float8: its dispatch; CuPy, meta)
    tensors: list = []
    out = []
    masks = 0
    for i in items:
        if isinstance(i, Tensor):
            m = i._data
            if type(m) is not np.ndarray or m.ndim == 0 or type(i) is not Tensor or \
                    m.dtype != np.bool_ and m.dtype.kind not in "iu":  # fmt: skip
                return None
            masks += m.dtype == np.bool_
            tensors.append(i)
            out.append(_Pos(len(tensors)))
        elif i is None or i is Ellipsis or type(i) in (slice, int, bool):
            out.append(i)
        else:
            return None  # (lists, NumPy arrays, other objects: eager's getitem)
    if not masks:
        return None
    arrays = tuple(tensors[i.k - 1]._data if type(i) is _Pos else i for i in out)
    try:
        _, basic, perm = _convert_index(arrays, np, a.shape)
    except (IndexError, TypeError, ValueError):
        return None  # (eager's getitem raises it with its message)
    return tuple(out), tensors, perm


def _has_inference(x: Tensor, index) -> bool:
    items = index if type(index) is tuple else (index,)
    return any(getattr(t, "_inference", False) for t in (x, *items))


def recorded_getitem(orig):
    """The ops table's getitem while a call is recorded: `x[mask]` as a MaskRead (above)."""

    def getitem(x, index):
        # (an inference tensor read or indexing: eager's getitem, with its inference checks;
        # not every read once inference_mode ran anywhere in the process: that made the
        # replay depend on which code the process ran before)
        if _inference_seen[0] and _has_inference(x, index):
            return orig(x, index)
        if type(index) is list:  # (PyTorch's sequence rule, with its warning: eager's)
            return orig(x, index)
        index = _bool_masks(index)  # (a uint8 mask: a bool one computed by an op, warned)
        parts = _parts(x, index)
        if parts is None:
            return orig(x, index)
        items, tensors, perm = parts
        y = MaskRead.apply(x, *tensors, items=items, count=None)
        return y if perm is None else permute(y, perm)  # (PyTorch's placement, as eager's)

    return getitem
