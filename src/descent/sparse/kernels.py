"""Array kernels of the sparse COO layout: coalescing, lookup, scatter to dense, the sparse x
dense product. Raw NumPy/CuPy arrays in, arrays or storages out; no autograd here (the ops in
`ops.py` call these from forward and backward).

Every kernel is a few vectorised array calls: a row-major linear index over the sparse dims
turns COO coordinates into one int64 key per entry, so coalescing is a stable sort plus a
segment sum, a lookup is a binary search, and the product sums `values * D[cols]` per row.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from .storage import CooStorage


def linear_index(indices, sparse_shape, xp):
    """The row-major position of each entry among the sparse dims: (sparse_dim, nnz) -> (nnz,)
    int64 (0 for every entry of a tensor without sparse dims)."""
    nnz = indices.shape[1]
    key = xp.zeros(nnz, dtype=np.int64)
    for d, n in enumerate(sparse_shape):
        key = key * n + indices[d]
    return key


def segment_sum(values, starts, seg, n_seg: int, xp):
    """Sums of consecutive runs of `values` (axis 0): the run r covers starts[r]:starts[r+1];
    `seg` gives each row's run (the CuPy path scatters with it)."""
    if values.shape[0] == 0:
        return xp.zeros((n_seg,) + values.shape[1:], dtype=values.dtype)
    if xp is np:
        if values.dtype.kind == "b":  # NumPy's add on bools is `or`: count, then test
            return np.add.reduceat(values.astype(np.int64), starts, axis=0) != 0
        return np.add.reduceat(values, starts, axis=0)
    out = xp.zeros((n_seg,) + values.shape[1:], dtype=values.dtype)
    backend.scatter_add(out, seg, values)
    return out


def coalesce(st: CooStorage) -> CooStorage:
    """Duplicates summed, indices sorted lexicographically (PyTorch's coalesce: the sort is
    stable, so equal keys sum in their stored order)."""
    if st.coalesced:
        return st
    xp = backend.get_array_module(st.values)
    sd = st.sparse_dim
    key = linear_index(st.indices, st.shape[:sd], xp)
    order = xp.argsort(key, kind="stable")
    key = key[order]
    first = xp.ones(key.shape[0], dtype=bool)
    if key.shape[0] > 1:
        first[1:] = key[1:] != key[:-1]
    starts = xp.flatnonzero(first)
    seg = xp.cumsum(first) - 1
    values = segment_sum(st.values[order], starts, seg, int(starts.shape[0]), xp)
    indices = st.indices[:, order[starts]]
    return CooStorage(xp.ascontiguousarray(indices), values, st.shape, True)


def add_coo(a: CooStorage, b: CooStorage) -> CooStorage:
    """a + b. Two coalesced operands give a coalesced result (PyTorch merges them); otherwise
    the entries are concatenated (an uncoalesced result, as PyTorch's may be)."""
    xp = backend.get_array_module(a.values, b.values)
    dt = np.result_type(a.values.dtype, b.values.dtype)
    both = CooStorage(
        xp.concatenate([a.indices, b.indices], axis=1),
        xp.concatenate([a.values.astype(dt, copy=False), b.values.astype(dt, copy=False)]),
        a.shape,
    )
    return coalesce(both) if a.coalesced and b.coalesced else both


def mul_sparse(a: CooStorage, b: CooStorage) -> CooStorage:
    """a * b elementwise (their dense forms): the coordinates both store, values multiplied."""
    if a.shape != b.shape or a.sparse_dim != b.sparse_dim:
        raise RuntimeError(
            f"mul: two sparse tensors must have the same shape and sparse_dim, got "
            f"{a.shape} ({a.sparse_dim} sparse dims) and {b.shape} ({b.sparse_dim})"
        )
    xp = backend.get_array_module(a.values, b.values)
    a, b = coalesce(a), coalesce(b)
    sd = a.sparse_dim
    ka = linear_index(a.indices, a.shape[:sd], xp)
    kb = linear_index(b.indices, b.shape[:sd], xp)
    both = xp.isin(ka, kb)  # sorted, unique keys: the matches line up in order
    ia = xp.flatnonzero(both)
    ib = xp.flatnonzero(xp.isin(kb, ka))
    return CooStorage(a.indices[:, ia], a.values[ia] * b.values[ib], a.shape, True)


def mul_dense(a: CooStorage, d) -> CooStorage:
    """a * d for a dense array d broadcasting to a's shape: a's pattern, each value times d's
    entry there (PyTorch's sparse * dense; unstored entries stay zero, even against inf)."""
    xp = backend.get_array_module(a.values, d)
    try:
        full = xp.broadcast_to(d, a.shape)
    except ValueError:
        raise RuntimeError(
            f"mul: a dense operand of shape {tuple(d.shape)} does not broadcast to the sparse "
            f"tensor's shape {a.shape} (the result keeps the sparse tensor's shape)"
        ) from None
    return CooStorage(a.indices, a.values * full[tuple(a.indices)], a.shape, a.coalesced)


def lookup(g: CooStorage, indices):
    """The entries of the sparse g at the coordinates `indices` (sparse_dim, n): (n, *dense),
    zero where g stores nothing (g's duplicates summed)."""
    xp = backend.get_array_module(g.values)
    g = coalesce(g)
    sd = g.sparse_dim
    keys = linear_index(g.indices, g.shape[:sd], xp)
    want = linear_index(indices, g.shape[:sd], xp)
    out = xp.zeros((want.shape[0],) + g.values.shape[1:], dtype=g.values.dtype)
    if keys.shape[0] == 0 or want.shape[0] == 0:
        return out
    pos = xp.minimum(xp.searchsorted(keys, want), keys.shape[0] - 1)
    hit = keys[pos] == want
    out[hit] = g.values[pos[hit]]
    return out


def gather(g, indices):
    """The gradient entries at a sparse tensor's coordinates: g dense (an array of the full
    shape) or sparse (a CooStorage); (nnz, *dense_dims)."""
    if isinstance(g, CooStorage):
        return lookup(g, indices)
    return g[tuple(indices)]


def to_dense(st: CooStorage):
    """The dense array (duplicates summed)."""
    xp = backend.get_array_module(st.values)
    sd = st.sparse_dim
    sparse_shape, dense_shape = st.shape[:sd], st.shape[sd:]
    out = xp.zeros((math.prod(sparse_shape),) + dense_shape, dtype=st.values.dtype)
    if st.nnz:
        if out.dtype.kind == "b":  # bools "add" as `or`: coalesce (which does), then assign
            st = coalesce(st)
        key = linear_index(st.indices, sparse_shape, xp)
        if st.coalesced:  # unique keys: a plain assignment
            out[key] = st.values
        else:
            backend.scatter_add(out, key, st.values)
    return out.reshape(st.shape)


def from_dense(x, sparse_dim: int) -> CooStorage:
    """The coalesced COO storage of a dense array: the nonzero positions of the first
    sparse_dim dims (a position whose dense slice is all zero is not stored)."""
    xp = backend.get_array_module(x)
    lead = x.shape[:sparse_dim]
    if sparse_dim == x.ndim:
        mask = x != 0
    else:
        mask = (x != 0).reshape(lead + (-1,)).any(axis=-1) if x.size else xp.zeros(lead, bool)
    if sparse_dim == 0:  # a tensor without sparse dims stores its whole value as one entry
        return CooStorage(xp.zeros((0, 1), dtype=np.int64), x[None].copy(), x.shape, True)
    idx = xp.stack(xp.nonzero(mask)).astype(np.int64).reshape(sparse_dim, -1)  # sorted
    return CooStorage(idx, x[tuple(idx)].copy(), x.shape, True)


def transpose_storage(st: CooStorage, d0: int, d1: int) -> CooStorage:
    """Swap two sparse dims: the coordinate rows trade places (no longer sorted)."""
    perm = list(range(st.sparse_dim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    shape = list(st.shape)
    shape[d0], shape[d1] = shape[d1], shape[d0]
    coalesced = st.coalesced and d0 == d1
    return CooStorage(st.indices[perm], st.values, shape, coalesced)


def spmm(st: CooStorage, d):
    """The dense product S @ D of a 2-d sparse S (n, m) and a dense D (m, k): each stored
    entry adds value * D[col] to its row; rows are summed as runs after a stable sort."""
    xp = backend.get_array_module(st.values, d)
    n = st.shape[0]
    out = xp.zeros((n, d.shape[1]), dtype=np.result_type(st.values.dtype, d.dtype))
    if st.nnz == 0 or d.shape[1] == 0:
        return out
    rows, cols = st.indices[0], st.indices[1]
    contrib = st.values[:, None] * d[cols]  # (nnz, k)
    if not st.coalesced:  # coalesced entries are sorted by row already
        order = xp.argsort(rows, kind="stable")
        rows, contrib = rows[order], contrib[order]
    first = xp.ones(rows.shape[0], dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    starts = xp.flatnonzero(first)
    sums = segment_sum(contrib, starts, xp.cumsum(first) - 1, int(starts.shape[0]), xp)
    out[rows[starts]] = sums
    return out


def sampled_rowdot(indices, a, b):
    """(a @ b^T) at the coordinates `indices` (2, nnz) only: sum_k a[i, k] b[j, k] (the
    gradient of S @ D with respect to S's stored values, never the dense n x m product)."""
    return (a[indices[0]] * b[indices[1]]).sum(axis=-1)
