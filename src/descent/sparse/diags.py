"""torch.sparse.spdiags: a sparse 2-d tensor from diagonals stored row-wise (SciPy's spdiags)."""

from __future__ import annotations

import numpy as np

from ..ops._common import as_tensor
from ..tensor import Tensor
from .tensor import sparse_coo_tensor


def spdiags(diagonals, offsets, shape, layout=None) -> Tensor:
    """A sparse (m, n) tensor with row i of `diagonals` along diagonal `offsets[i]` (0 the main
    one, > 0 above, < 0 below). As in SciPy and PyTorch, the index into a row of `diagonals`
    is the output's column: diagonal k holds diagonals[i, c] at (c - k, c). Entries come
    diagonal by diagonal in `offsets` order, uncoalesced (PyTorch's order); an offset outside
    the matrix places nothing. The gradient reaches `diagonals` at the placed entries.

    Args:
        diagonals: (D, L) tensor (a 1-d one is one diagonal).
        offsets: int64 scalar or (D,) tensor of distinct offsets.
        shape: the output's (m, n).
        layout: descent.sparse_coo (default), sparse_csr or sparse_csc.

    Raises:
        RuntimeError: PyTorch's: a non-2-d shape, 2-d or non-int64 offsets, a count of
            offsets other than of diagonals, repeated offsets, another layout.
    """
    d = as_tensor(diagonals)
    off = as_tensor(offsets)
    if len(tuple(shape)) != 2:
        raise RuntimeError("Output shape must be 2d")
    if off.ndim > 1:
        raise RuntimeError("Offsets must be scalar or vector")
    if str(off.dtype).split(".")[-1] != "int64":
        raise RuntimeError(f"Offset Tensor must have dtype Long but got {off.dtype}")
    name = "sparse_coo" if layout is None else getattr(layout, "name", str(layout))
    if name not in ("sparse_coo", "sparse_csr", "sparse_csc"):
        raise RuntimeError(
            f"Only output layouts (Sparse, SparseCsc, SparseCsr) are supported, got {name}"
        )
    ks = [int(k) for k in np.atleast_1d(off.numpy())]
    d2 = d.reshape(1, -1) if d.ndim == 1 else d  # (D, L)
    if d2.shape[0] != len(ks):
        raise RuntimeError(
            f"Number of diagonals ({d2.shape[0]}) does not match the number of offsets ({len(ks)})"
        )
    if len(set(ks)) != len(ks):
        raise RuntimeError("Offset tensor contains duplicate values")
    m, n = (int(s) for s in shape)
    rows, cols, which = [], [], []
    for i, k in enumerate(ks):
        # columns c with 0 <= c - k < m, 0 <= c < n and c < L (the row's length)
        c = np.arange(max(0, k), max(max(0, k), min(n, m + k, d2.shape[1])), dtype=np.int64)
        rows.append(c - k)
        cols.append(c)
        which.append(np.full(c.shape, i, dtype=np.int64))
    r, c, w = (np.concatenate(a) if a else np.zeros(0, np.int64) for a in (rows, cols, which))
    values = d2[as_tensor(w), as_tensor(c)]  # (nnz,), differentiable gather
    out = sparse_coo_tensor(as_tensor(np.stack([r, c])), values, (m, n))
    if name == "sparse_csr":
        return out.to_sparse_csr()
    if name == "sparse_csc":
        return out.to_sparse_csc()
    return out
