"""sparse @ sparse: the product of two 2-d sparse COO matrices is a sparse COO matrix, as
PyTorch's (`torch.sparse.mm`, `torch.mm`, `matmul`, `@`).

The kernel is a join: every stored A[i, j] meets every stored B[j, k] of row j of B, and the
pair adds A[i, j] * B[j, k] to C[i, k]. With B's entries sorted by row and B's row pointers,
the pairs come from a repeat and an arange (no Python loop), and coalescing sums them. The
result stores every (i, k) that some pair reaches, explicit zeros included (PyTorch's
structural pattern). Its cost is the number of pairs, never n x k.

The gradients are PyTorch's (torch 2.13):
  * `torch.sparse.mm(A, B)` (SparseSparseMatmulBackward0): dA = (G @ B^T) at A's coordinates
    and dB = (A^T @ G) at B's, both sparse: `sampled` computes each stored entry's dot product
    from the join, without the unmasked product.
  * `torch.mm(A, B)`, `matmul`, `@` (MmBackward0): dA = G @ B^T and dB = A^T @ G unmasked,
    sparse when G is sparse (the product above) and dense when G is dense (a sparse x dense
    product).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from . import kernels
from .kernels import coalesce, gather, segment_sum, transpose_storage
from .ops import _SparseFunction
from .storage import CooStorage


def _join(rows, b: CooStorage, xp):
    """The pairs (e, s): entry s of the 2-d storage b sits in row rows[e]. Returns the two
    int64 index arrays (one entry per pair)."""
    n_rows = b.shape[0]
    order = xp.argsort(b.indices[0], kind="stable")  # b's entries grouped by row
    counts = xp.bincount(b.indices[0], minlength=n_rows)
    ptr = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(counts)])
    per = counts[rows]  # how many entries of b each query row holds
    total = int(per.sum())
    e = xp.repeat(xp.arange(rows.shape[0], dtype=np.int64), per)
    # position inside the query's run: 0, 1, ... per[e] - 1
    offset = xp.arange(total, dtype=np.int64) - xp.repeat(xp.cumsum(per) - per, per)
    s = order[xp.repeat(ptr[rows], per) + offset]
    return e, s


def spgemm(a: CooStorage, b: CooStorage) -> CooStorage:
    """The coalesced sparse product A (n, m) @ B (m, k), structural zeros kept."""
    xp = backend.get_array_module(a.values, b.values)
    a, b = coalesce(a), coalesce(b)
    n, k = a.shape[0], b.shape[1]
    e, s = _join(a.indices[1], b, xp)
    # each pair's row-major key in C; a stable sort groups them, a segment sum adds them
    key = a.indices[0][e] * k + b.indices[1][s]
    order = xp.argsort(key, kind="stable")
    key = key[order]
    first = xp.ones(key.shape[0], dtype=bool)
    first[1:] = key[1:] != key[:-1]
    starts = xp.flatnonzero(first)
    vals = (a.values[e] * b.values[s]).astype(np.result_type(a.dtype, b.dtype), copy=False)
    vals = segment_sum(vals[order], starts, xp.cumsum(first) - 1, int(starts.shape[0]), xp)
    keys = key[starts]
    return CooStorage(xp.stack([keys // k, keys % k]), vals, (n, k), True)


def sampled(pattern, s: CooStorage, x):
    """(S @ X)[i, j] at the coordinates `pattern` (2, P) only: for each one, the sum over the
    stored S[i, t] of S[i, t] * X[t, j]; X is dense or sparse (gathered at the pairs)."""
    xp = backend.get_array_module(s.values)
    s = coalesce(s)
    p = pattern.shape[1]
    out = xp.zeros(p, dtype=np.result_type(s.dtype, x.dtype))
    if p == 0 or s.nnz == 0:
        return out
    e, t = _join(pattern[0], s, xp)
    xv = gather(x, xp.stack([s.indices[1][t], pattern[1][e]]))  # X[t, j] per pair
    backend.scatter_add(out, e, s.values[t] * xv)
    return out


def _dense_times(g, st: CooStorage):
    """g @ S for a dense g (n, m) and a sparse S (m, k): (S^T @ g^T)^T (dense)."""
    return kernels.spmm(transpose_storage(st, 0, 1), g.T).T


def _product(x, y):
    """x @ y, one of them a 2-d sparse storage, the other sparse or dense: the layout PyTorch
    gives (sparse x sparse is sparse, with a dense operand dense)."""
    if isinstance(x, CooStorage) and isinstance(y, CooStorage):
        return spgemm(x, y)
    if isinstance(x, CooStorage):
        return kernels.spmm(x, y)
    return _dense_times(x, y)


class SparseSparseMatmul(_SparseFunction):
    """torch.sparse.mm(A, B), both sparse: d/dA = (G @ B^T) at A's coordinates, d/dB =
    (A^T @ G) at B's, each sparse (PyTorch's SparseSparseMatmulBackward0)."""

    save_inputs = True  # both: each gradient is a product with the other operand
    differentiable_backward = True

    def forward(self, a, b):
        return spgemm(a, b)

    def backward(self, gy, ops):
        if ops.is_graph:
            return self._graph_backward(gy, ops)
        a, b = (coalesce(t) for t in self.inputs(ops))
        if a.dtype.kind == "c":  # PyTorch's complex convention: products with the conjugates
            a, b = a.conj(), b.conj()
        ga = gb = None
        if self.parents[0] is not None:  # (G @ B^T)[i, j] = (B @ G^T)[j, i]
            gt = gy.T if not isinstance(gy, CooStorage) else transpose_storage(gy, 0, 1)
            vals = sampled(a.indices[::-1], b, gt).astype(a.dtype, copy=False)
            ga = CooStorage(a.indices, vals, a.shape, True)
        if self.parents[1] is not None:
            vals = sampled(b.indices, transpose_storage(a, 0, 1), gy).astype(b.dtype, copy=False)
            gb = CooStorage(b.indices, vals, b.shape, True)
        return ga, gb

    def _graph_backward(self, gy, ops):
        """The same gradients as recorded ops (create_graph=True), from the join's pairs (e, t):
        stored A[i, j] and B[j, k] meet, and the pair adds G[i, k] B[j, k] to dA's entry e and
        A[i, j] G[i, k] to dB's entry t; the sums per entry are a sparse construction made
        dense (duplicates add up), so nothing n x m appears in this pass either."""
        from .ops import ToDense, _gather, _sparse  # noqa: PLC0415

        a, b = (t.coalesce() for t in self.inputs(ops))  # Tensors (create_graph)
        sa, sb = a._data, b._data
        xp = backend.get_array_module(sa.values)
        e, t = _join(sa.indices[1], sb, xp)
        g = _gather(gy, xp.stack([sa.indices[0][e], sb.indices[1][t]]))  # G[i, k] per pair
        av, bv = a.values(), b.values()
        if sa.dtype.kind == "c":
            av, bv = av.conj(), bv.conj()

        def per_entry(contrib, entry, n):  # sum of the pairs' terms per stored entry
            return ToDense.apply(_sparse(contrib, entry[None], (n,), False))

        ga = gb = None
        if self.parents[0] is not None:
            vals = per_entry(g * bv[_index(t)], e, sa.nnz)
            ga = _sparse(vals, sa.indices, sa.shape, True)
        if self.parents[1] is not None:
            vals = per_entry(av[_index(e)] * g, t, sb.nnz)
            gb = _sparse(vals, sb.indices, sb.shape, True)
        return ga, gb


def _index(rows):
    """An index array as a Tensor, to select rows of a recorded Tensor."""
    from ..tensor import Tensor  # noqa: PLC0415

    return Tensor._from_data(rows)


def mm_grads(a: CooStorage, b: CooStorage, gy, need_a: bool, need_b: bool):
    """ops.Mm's gradients for two sparse operands (torch.mm, matmul, @): d/dA = G @ B^T,
    d/dB = A^T @ G, unmasked (sparse for a sparse G, dense for a dense one), as PyTorch's
    MmBackward0."""
    if a.dtype.kind == "c":
        a, b = a.conj(), b.conj()
    ga = _product(gy, transpose_storage(b, 0, 1)).astype(a.dtype, copy=False) if need_a else None
    gb = _product(transpose_storage(a, 0, 1), gy).astype(b.dtype, copy=False) if need_b else None
    return ga, gb
