"""Selections and shape changes of sparse COO tensors along their sparse dims: index_select,
select / S[i], narrow_copy, unsqueeze, permute (PyTorch's forwards, values equal to torch's).

Each one maps stored entries to stored entries: output entry e takes the value of the input's
coalesced entry src[e] at new coordinates. One op (`EntryMap`) computes every such map, and its
gradient sums the output gradient's entries back into their sources: a sparse gradient with
the input's pattern, never a dense one. (PyTorch's backward raises for all of these but
permute: aten::index_add_ / select_backward / as_strided have no sparse kernel; descent's is
checked by finite differences.) Subclasses give the nodes PyTorch's names.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from .kernels import coalesce
from .ops import _gather, _sparse, _SparseFunction
from .spgemm import _join
from .storage import CooStorage, unsupported


class EntryMap(_SparseFunction):
    """out.values[e] = coalesce(x).values[src[e]] at `indices`: d/dx puts each output entry's
    gradient back at its source's coordinates (a sparse tensor whose duplicates add up, as a
    source read twice must; recorded under create_graph, so double backward works)."""

    __slots__ = ("src", "indices", "shape", "coalesced", "in_indices")
    differentiable_backward = True

    def forward(self, st):
        c = coalesce(st)
        self.in_indices = c.indices  # the input's pattern: the gradient's
        return CooStorage(self.indices, c.values[self.src], self.shape, self.coalesced)

    def backward(self, gy, ops):
        g = _gather(gy, self.indices)  # (nnz_out, *dense)
        return _sparse(g, self.in_indices[:, self.src], self.in_shapes[0], False)


class IndexSelect(EntryMap):
    """index_select along a sparse dim (IndexSelectBackward0)."""


class Select(EntryMap):
    """select / S[i] along a sparse dim (SelectBackward0)."""


class NarrowCopy(EntryMap):
    """narrow_copy along a sparse dim (NarrowCopyBackward0)."""


class Unsqueeze(EntryMap):
    """unsqueeze among the sparse dims (UnsqueezeBackward0)."""


class Permute(EntryMap):
    """permute of the sparse dims (PermuteBackward0)."""


def _sparse_dim(x, dim: int, op: str) -> int:
    """dim as a non-negative sparse dim of x, or the loud error."""
    st = x._data
    n = st.ndim
    if not -n <= dim < n:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of [{-n}, "
                         f"{n - 1}], but got {dim})")  # fmt: skip
    dim %= n
    if dim >= st.sparse_dim:
        raise unsupported(st, f"{op} along a dense dim of a hybrid tensor", op)
    return dim


def _apply(op, x, src, indices, shape, coalesced=False):
    xp = backend.get_array_module(x._data.values)
    src = xp.asarray(src, dtype=np.int64)
    return op.apply(x, src=src, indices=xp.ascontiguousarray(indices), shape=tuple(shape),
                    coalesced=coalesced)  # fmt: skip


def index_select(x, dim: int, index) -> object:
    """x.index_select(dim, index) along a sparse dim: output position p holds the slice
    index[p] (repeats allowed)."""
    dim = _sparse_dim(x, dim, "index_select")
    st = coalesce(x._data)
    idx = backend.as_numpy(index._data if hasattr(index, "_data") else np.asarray(index))
    if idx.ndim != 1 or idx.dtype != np.int64:  # PyTorch: int64 only
        raise IndexError("index_select() argument index must be 1-D strided (non-sparse) "
                         "long-tensor.")  # fmt: skip
    idx = idx.astype(np.int64)
    n = st.shape[dim]
    bad = idx[(idx < -n) | (idx >= n)]
    if bad.size:  # PyTorch's words
        raise IndexError(f"index_select(): index contains {bad[0]} that is out of range for "
                         f"tensor of size {list(st.shape)} at dimension {dim}")  # fmt: skip
    idx = idx % n if idx.size else idx
    xp = backend.get_array_module(st.values)
    rows = CooStorage(st.indices[dim][None], st.values, (n,))  # entries keyed by their dim row
    p, e = _join(xp.asarray(idx), rows, xp)
    indices = st.indices[:, e].copy()
    indices[dim] = p
    shape = list(st.shape)
    shape[dim] = idx.shape[0]
    return _apply(IndexSelect, x, e, indices, shape)


def select(x, dim: int, i: int):
    """x.select(dim, i) / x[i] along a sparse dim (the dim is dropped)."""
    dim = _sparse_dim(x, dim, "select")
    st = coalesce(x._data)
    if st.sparse_dim < 2:
        raise unsupported(st, "select of the only sparse dim (a dense result)", "select")
    n = st.shape[dim]
    if not -n <= i < n:
        raise IndexError(f"select(): index {i} out of range for tensor of size "
                         f"{list(st.shape)} at dimension {dim}")  # fmt: skip
    xp = backend.get_array_module(st.values)
    e = xp.flatnonzero(st.indices[dim] == i % n)
    keep = [d for d in range(st.sparse_dim) if d != dim]
    shape = [s for d, s in enumerate(st.shape) if d != dim]
    return _apply(Select, x, e, st.indices[keep][:, e], shape, coalesced=True)


def narrow_copy(x, dim: int, start: int, length: int):
    """x.narrow_copy(dim, start, length) along a sparse dim."""
    dim = _sparse_dim(x, dim, "narrow_copy")
    st = coalesce(x._data)
    n = st.shape[dim]
    start = start + n if start < 0 else start
    if not (0 <= start <= n and 0 <= length <= n - start):
        raise RuntimeError(f"Invalid range to narrow. range(start, start+length) must be a "
                           f"subset of range(0, {n}).")  # fmt: skip
    xp = backend.get_array_module(st.values)
    row = st.indices[dim]
    e = xp.flatnonzero((row >= start) & (row < start + length))
    indices = st.indices[:, e].copy()
    indices[dim] -= start
    shape = list(st.shape)
    shape[dim] = length
    return _apply(NarrowCopy, x, e, indices, shape, coalesced=True)


def unsqueeze(x, dim: int):
    """x.unsqueeze(dim) at a position among the sparse dims (a new sparse dim of size 1)."""
    st = coalesce(x._data)
    n = st.ndim + 1
    if not -n <= dim < n:
        raise IndexError(f"unsqueeze: Dimension out of range (expected to be in range of [{-n}, "
                         f"{n - 1}], but got {dim})")  # fmt: skip
    dim %= n
    if dim > st.sparse_dim:
        raise unsupported(st, "unsqueeze among the dense dims of a hybrid tensor", "unsqueeze")
    xp = backend.get_array_module(st.values)
    zeros = xp.zeros((1, st.nnz), dtype=np.int64)
    indices = xp.concatenate([st.indices[:dim], zeros, st.indices[dim:]])
    shape = st.shape[:dim] + (1,) + st.shape[dim:]
    return _apply(Unsqueeze, x, xp.arange(st.nnz), indices, shape, coalesced=True)


def permute(x, dims):
    """x.permute(dims) of the sparse dims (the dense dims must stay in place)."""
    st = coalesce(x._data)
    n = st.ndim
    perm = [d % n if -n <= d < n else d for d in dims]
    if sorted(perm) != list(range(n)):
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input "
                           f"does not match the length of the desired ordering of dimensions "
                           f"i.e. input.dim() = {n} is not equal to len(dims) = "
                           f"{len(dims)}")  # fmt: skip
    sd = st.sparse_dim
    if perm[sd:] != list(range(sd, n)):
        raise unsupported(st, "permute moving a dense dim of a hybrid tensor", "permute")
    xp = backend.get_array_module(st.values)
    shape = [st.shape[d] for d in perm]
    same = perm == list(range(n))
    return _apply(Permute, x, xp.arange(st.nnz), st.indices[perm[:sd]], shape, coalesced=same)
