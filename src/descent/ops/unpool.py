"""max_unpool's scatter: values written back to flat positions of each (N, C) plane.

The op behind `nn.functional.max_unpool1d/2d/3d` (which turn PyTorch's arguments into the flat
positions): forward writes, backward gathers.
"""

from __future__ import annotations

from .. import backend
from ..array_backward import along_axis_index
from ..autograd import Function
from ..tensor import Tensor

__all__ = ["MaxUnpool", "max_unpool_flat"]


class MaxUnpool(Function):
    """y[n, c, idx[n, c, i]] = x[n, c, i] in zeros (N, C, S); dy/dx = gy gathered at idx.

    As PyTorch's CPU kernel, a position named twice keeps the last value written (not the
    sum); the gradient still gathers gy for every input, the overwritten ones included
    (PyTorch's derivative, max_pool_double_backward, is that gather).
    """

    __slots__ = ("idx", "size")  # idx: (N, C, L) int64 flat positions, kept for backward
    saves_params = True  # PyTorch's MaxUnpoolBackward0 saves the indices (a 2nd backward raises)

    def forward(self, x):
        xp = backend.get_array_module(x)
        out = xp.zeros((*x.shape[:2], self.size), dtype=x.dtype)
        # A plain fancy assignment: repeated positions keep the last write (a scatter-add
        # would sum them).
        out[along_axis_index(xp, self.idx, 2)] = x
        return out

    def backward(self, gy, ops):
        # The gather closes under differentiation (its own backward is a scatter-add).
        return ops.take_along_axis(gy, self.idx, 2)


def max_unpool_flat(x: Tensor, idx, size: int) -> Tensor:
    """x (N, C, L) written at the int64 positions idx (N, C, L) of zeros (N, C, size)."""
    return MaxUnpool.apply(x, idx=idx, size=int(size))
