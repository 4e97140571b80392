"""torch.segment_reduce: reduce consecutive segments of `data` along `axis`, the segments given
by their lengths (or offsets). Graph code uses it for per-graph pooling of sorted node batches.

A composite: each position's segment id comes from `searchsorted` on the cumulative lengths,
and the reduction is one `scatter_reduce` into a (..., S, ...) result, so gradients are
scatter_reduce's (sum: 1; mean: 1/length; max/min: the elements equal to their segment's
result; prod: the product of the others). PyTorch's `initial` takes part in every segment
(sum: initial + sum, mean: (initial + sum) / length, max/min/prod likewise) and is the value of
an empty segment; without it an empty segment is 0 (sum), nan (mean), -inf/inf (max/min), 1
(prod).
"""

from __future__ import annotations

import numpy as np

from .errors import DescentError
from .ops._common import as_tensor
from .tensor import Tensor
from .torch_functions import searchsorted

__all__ = ["segment_reduce"]

_SCATTER = {"sum": "sum", "mean": "sum", "max": "amax", "min": "amin", "prod": "prod"}
_EMPTY = {"sum": 0.0, "mean": float("nan"), "max": -np.inf, "min": np.inf, "prod": 1.0}


def segment_reduce(
    data,
    reduce: str,
    *,
    lengths=None,
    indices=None,
    offsets=None,
    axis: int = 0,
    unsafe: bool = False,
    initial=None,
) -> Tensor:
    """Reduce `data`'s segments along `axis` with 'sum', 'mean', 'max', 'min' or 'prod'.

    Args:
        data: the values; segments run along `axis`.
        reduce: the reduction.
        lengths: (..., S) integer lengths, the leading dims equal to data.shape[:axis]; each
            row sums to data.shape[axis].
        indices: not supported (as in PyTorch).
        offsets: (..., S + 1) segment boundaries, instead of lengths.
        axis: the segmented dimension: the last dimension of lengths.
        unsafe: skip the check that the lengths are non-negative and sum to the axis size.
        initial: a value included in every segment's reduction, and an empty segment's value.

    Returns:
        A tensor of data's shape with `axis` replaced by S.

    Raises:
        RuntimeError: an unknown reduce, no lengths/offsets, indices, or lengths that do not
            match data.
    """
    if reduce not in _SCATTER:
        raise DescentError(
            f"segment_reduce(): reduce must be one of {sorted(_SCATTER)}, got {reduce!r}"
        )
    if indices is not None:
        raise DescentError("segment_reduce(): indices based reduction is not supported yet.")
    x = as_tensor(data)
    if lengths is None and offsets is None:
        raise DescentError("segment_reduce(): Either lengths or offsets must be defined")
    if lengths is None:
        offsets = as_tensor(offsets)
        lengths = offsets[..., 1:] - offsets[..., :-1]
    lengths = as_tensor(lengths)
    if lengths._data.dtype.kind not in "iu":
        raise DescentError(
            f"segment_reduce(): lengths must be an integer tensor, got {lengths.dtype}"
        )
    axis = axis + x.ndim if axis < 0 else axis
    if lengths.ndim < 1 or axis != lengths.ndim - 1:
        raise DescentError(
            "segment_reduce(): Expected axis to be the last dimension of lengths but got "
            f"{axis} (lengths {tuple(lengths.shape)}, data {tuple(x.shape)})."
        )
    if tuple(lengths.shape[:-1]) != tuple(x.shape[:axis]):
        raise DescentError(
            f"segment_reduce(): lengths {tuple(lengths.shape)} must have data's leading "
            f"dimensions {tuple(x.shape[:axis])} before the segment dimension"
        )
    n = x.shape[axis]
    if not unsafe:
        lv = np.asarray(lengths.numpy())
        if (lv < 0).any() or (lv.sum(-1) != n).any():
            raise DescentError(
                "segment_reduce(): Expected all rows of lengths along axis to sum to "
                f"data.size(lengths.dim()-1) = {n} when !unsafe, with no negative length."
            )
    s = lengths.shape[-1]
    ends = lengths.cumsum(-1)  # (..., S)
    positions = Tensor._from_data(np.arange(n, dtype=np.int64), device=x.device)
    positions = positions.expand(*lengths.shape[:-1], n).contiguous()
    seg = searchsorted(ends.contiguous(), positions, right=True)  # (..., N): its segment
    seg = seg.reshape(tuple(seg.shape) + (1,) * (x.ndim - axis - 1)).expand(*x.shape)
    # unsafe=True lets the lengths sum to less than n: as PyTorch, the values after the last
    # segment are left out, here by reducing them into one more segment that is dropped.
    spare = 1 if unsafe else 0
    out_shape = tuple(x.shape[:axis]) + (s + spare,) + tuple(x.shape[axis + 1 :])
    fill = _EMPTY[reduce] if initial is None else initial
    base = Tensor._from_data(np.full(out_shape, fill), dtype=x.dtype, device=x.device)
    out = base.scatter_reduce(axis, seg, x, _SCATTER[reduce], include_self=initial is not None)
    if spare:
        out = out.narrow(axis, 0, s)
    if reduce == "mean":
        count = lengths.reshape(tuple(lengths.shape) + (1,) * (x.ndim - axis - 1))
        if initial is None:
            out = out / count.to(x.dtype)  # an empty segment: 0 / 0 = nan, as PyTorch
        else:
            out = out / count.clamp(min=1).to(x.dtype)  # an empty one keeps `initial`
    return out
