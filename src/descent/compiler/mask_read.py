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
from ..tensor import Tensor


class GuardFailed(Exception):
    """A replayed MaskRead met a count of Trues other than the recorded one."""


class MaskRead(Function):
    """x[(*pre, mask, *post)]: d/dx = zeros with gy added at the mask's positions (IndexGetItem's
    backward); the mask gets no gradient."""

    saves_params = True  # the index counts as saved (IndexGetItem's: PyTorch's IndexBackward0)
    # forward computes idx from the mask on every call (the recorder and the signature skip it)
    computed_slots = ("idx",)
    __slots__ = ("pre", "post", "count", "idx")

    def forward(self, x, mask):
        positions = np.nonzero(mask)
        n = int(positions[0].shape[0])
        if self.count is None:  # (the eager call that records it)
            self.count = n
        elif n != self.count:
            raise GuardFailed(n)
        self.idx = (*self.pre, *positions, *self.post)
        out = x[self.idx]
        if not out.flags.c_contiguous:  # (GetItem.forward's copy for an advanced index)
            out = np.ascontiguousarray(out)
        return out

    def backward(self, gy, ops):
        return ops.index_grad(gy, self.in_shapes[0], self.idx, False), None


def _parts(x: Tensor, index):
    """(pre, mask, post) when `index` is one bool mask tensor of one dimension or more beside
    slices and None only, matching the dimensions it indexes on a plain NumPy float or int
    tensor; else None (eager's getitem then runs, with its checks and errors)."""
    items = index if type(index) is tuple else (index,)
    masks = [k for k, i in enumerate(items) if isinstance(i, Tensor)]
    if len(masks) != 1:
        return None
    k = masks[0]
    mask = items[k]
    m = mask._data
    if type(m) is not np.ndarray or m.dtype != np.bool_ or m.ndim == 0:
        return None
    a = x._data
    if type(a) is not np.ndarray or a.dtype.num >= 256 or a.dtype.kind not in "fciub":
        return None  # (bfloat16, float8: their dispatch; CuPy, meta)
    for i in items[:k] + items[k + 1 :]:
        if i is not None and type(i) is not slice:
            return None
    pos = sum(type(i) is slice for i in items[:k])
    rest = sum(type(i) is slice for i in items[k + 1 :])
    if tuple(m.shape) != tuple(a.shape[pos : pos + m.ndim]) or pos + m.ndim + rest > a.ndim:
        return None
    return tuple(items[:k]), mask, tuple(items[k + 1 :])


def _has_inference(x: Tensor, index) -> bool:
    items = index if type(index) is tuple else (index,)
    return any(getattr(t, "_inference", False) for t in (x, *items))


def recorded_getitem(orig):
    """The ops table's getitem while a call is recorded: `x[mask]` as a MaskRead (above)."""

    def getitem(x, index):
        # (an inference tensor read or indexing: eager's getitem, with its inference checks;
        # not every read once inference_mode ran anywhere in the process: that made the
        # replay depend on which code the process ran before)
        parts = None if _inference_seen[0] and _has_inference(x, index) else _parts(x, index)
        if parts is None:
            return orig(x, index)
        pre, mask, post = parts
        return MaskRead.apply(x, mask, pre=pre, post=post, count=None)

    return getitem
