"""torch.sparse.softmax / log_softmax: a softmax over the STORED values only.

PyTorch's semantics: an unstored entry counts as -inf (it gets no probability and stays
unstored), so along `dim` each line of stored values is normalised on its own; the result has
the input's coalesced coordinates. A sparse dim groups the entries that share every other
coordinate (a segment softmax); a dense dim is an ordinary softmax inside each stored row.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .kernels import coalesce, gather, linear_index, segment_sum
from .ops import _SparseFunction
from .storage import CooStorage


def _groups(st: CooStorage, dim: int, xp):
    """For a sparse dim: the order that puts each line's entries together, the run starts,
    each sorted entry's run, and the run count."""
    keep = [d for d in range(st.sparse_dim) if d != dim]
    key = linear_index(st.indices[keep], [st.shape[d] for d in keep], xp)
    order = xp.argsort(key, kind="stable")
    key = key[order]
    first = xp.ones(key.shape[0], dtype=bool)
    if key.shape[0] > 1:
        first[1:] = key[1:] != key[:-1]
    return order, xp.flatnonzero(first), xp.cumsum(first) - 1


def _segment_max(v, starts, seg, n, xp):
    if xp is np:
        return np.maximum.reduceat(v, starts, axis=0)
    out = xp.full((n,) + v.shape[1:], -xp.inf, dtype=v.dtype)
    xp.maximum.at(out, seg, v)
    return out


class SparseSoftmax(_SparseFunction):
    """y = softmax over each line's stored values; dx = y * (g - sum_line(g * y)) at the
    stored coordinates (PyTorch's SparseSoftmaxBackward0). `log=True`: log_softmax, with
    dx = g - exp(y) * sum_line(g)."""

    __slots__ = ("dim", "log", "indices", "out_values")  # what backward needs
    saved_slots = ("out_values",)

    def forward(self, st):
        st = coalesce(st)
        xp = backend.get_array_module(st.values)
        v = st.values
        if st.nnz == 0:
            out = v.copy()
        elif self.dim >= st.sparse_dim:  # a dense dim: a softmax inside every stored row
            axis = self.dim - st.sparse_dim + 1
            z = v - v.max(axis=axis, keepdims=True)
            lse = xp.log(xp.exp(z).sum(axis=axis, keepdims=True))
            out = z - lse if self.log else xp.exp(z - lse)
        else:
            order, starts, seg = _groups(st, self.dim, xp)
            n = int(starts.shape[0])
            vs = v[order]
            z = vs - _segment_max(vs, starts, seg, n, xp)[seg]
            lse = xp.log(segment_sum(xp.exp(z), starts, seg, n, xp))[seg]
            ys = z - lse if self.log else xp.exp(z - lse)
            out = xp.empty_like(ys)
            out[order] = ys
        self.indices, self.out_values = st.indices, out
        return CooStorage(st.indices, out, st.shape, True)

    def backward(self, gy, ops):
        y = self.out_values
        if y is None:
            raise RuntimeError(self._freed_message())
        xp = backend.get_array_module(y)
        g = gather(gy, self.indices)
        p = xp.exp(y) if self.log else y
        gp = g if self.log else g * y
        shape = self.in_shapes[0]
        sd = self.indices.shape[0]
        if y.shape[0] == 0:
            gx = g
        elif self.dim >= sd:
            s = gp.sum(axis=self.dim - sd + 1, keepdims=True)
            gx = gp - p * s
        else:
            st = CooStorage(self.indices, y, shape, True)
            order, starts, seg = _groups(st, self.dim, xp)
            s = segment_sum(gp[order], starts, seg, int(starts.shape[0]), xp)[seg]
            line = xp.empty_like(s)
            line[order] = s
            gx = gp - p * line
        return CooStorage(self.indices, gx.astype(y.dtype, copy=False), shape, True)


def _softmax(x, dim: int, dtype, log: bool):
    from .tensor import SparseTensor, _dims  # noqa: PLC0415 - tensor imports this module's ops

    op = "sparse.log_softmax" if log else "sparse.softmax"
    if not isinstance(x, SparseTensor) or not x.is_sparse:
        raise TypeError(f"torch.{op} expects a sparse COO tensor, got layout {x.layout}")
    if dtype is not None:
        x = x.to(dtype)
    if x._data.dtype.kind not in "fc":
        raise RuntimeError(f"{op}: expected a floating-point tensor, got {x.dtype}")
    (d,) = _dims(dim, x._data.ndim, op)
    return SparseSoftmax.apply(x, dim=d, log=log)


def softmax(input, dim: int, *, dtype=None):
    """torch.sparse.softmax: softmax over the stored values along `dim` (unstored = -inf)."""
    return _softmax(input, dim, dtype, False)


def log_softmax(input, dim: int, *, dtype=None):
    """torch.sparse.log_softmax: log of torch.sparse.softmax, computed stably."""
    return _softmax(input, dim, dtype, True)
