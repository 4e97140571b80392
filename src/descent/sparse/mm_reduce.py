"""torch.sparse.mm(csr, dense, reduce): each output row reduces (sum, mean, amax, amin) the
products of the row's stored values with the matching rows of the dense operand."""

from __future__ import annotations

import numpy as np

from .. import creation
from ..ops._common import as_tensor
from ..tensor import Tensor
from .storage import SparseUnsupportedError

# PyTorch's names, "max"/"min" accepted as its kernel does.
_REDUCTIONS = {"sum": "sum", "mean": "mean", "amax": "amax", "amin": "amin", "max": "amax",
               "min": "amin"}  # fmt: skip


def mm_reduce(mat1, mat2, reduce: str) -> Tensor:
    """z[i, j] = reduce over the stored k of row i of mat1[i, k] * mat2[k, j]; rows with no
    stored value give 0 (PyTorch's `_sparse_mm_reduce_impl`). mat1: a 2-d CSR tensor, mat2: a
    dense (K, N) one. Gradients reach mat2 (for amax/amin through the first product reaching
    the extreme, as PyTorch's) and to mat1's stored entries.

    Raises:
        RuntimeError: an unknown reduction (PyTorch's message).
        SparseUnsupportedError: mat1 not CSR (PyTorch has no kernel either).
    """
    if reduce not in _REDUCTIONS:
        raise RuntimeError(f"sparse_mm_reduce: reduce type of {reduce} has not been enabled.")
    if getattr(getattr(mat1, "layout", None), "name", None) != "sparse_csr":
        raise SparseUnsupportedError(
            "torch.sparse.mm: reduce= needs a CSR first operand (as PyTorch's kernel); "
            "convert it with .to_sparse_csr()"
        )
    b = as_tensor(mat2)
    n = mat1.shape[0]
    crow = mat1.crow_indices().numpy()
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(crow))  # (nnz,) row of each value
    if mat1.requires_grad:
        # values() is not recorded: read the stored values through the recorded to_dense, so
        # the gradient reaches mat1 at its stored entries (a CSR gradient, as PyTorch's), at
        # the cost of one dense (M, K) matrix while the graph lives
        vals = mat1.to_dense()[as_tensor(rows), mat1.col_indices()]  # (nnz,)
    else:
        vals = mat1.values()  # (nnz,)
    prod = vals.unsqueeze(1) * b[mat1.col_indices()]  # (nnz, N)
    how = _REDUCTIONS[reduce]
    if how in ("amax", "amin"):
        return _first_extreme(prod, rows, n, how)
    index = as_tensor(rows).unsqueeze(1).expand(prod.shape[0], b.shape[1])
    out = creation.zeros(n, b.shape[1], dtype=prod.dtype)
    return out.scatter_reduce(0, index, prod, reduce=how, include_self=False)


def _first_extreme(prod: Tensor, rows: np.ndarray, n: int, how: str) -> Tensor:
    """Per row and column, the first stored product reaching the row's max (min), gathered so
    that the gradient goes to that one product, as PyTorch's kernel (which keeps the arg of
    the extreme); scatter_reduce would share it among ties. Rows without values give 0."""
    p = prod.detach().numpy()  # (nnz, N)
    nnz, width = p.shape
    extreme = np.full((n, width), -np.inf if how == "amax" else np.inf, dtype=p.dtype)
    (np.maximum if how == "amax" else np.minimum).at(extreme, rows, p)
    kk, jj = np.nonzero(p == extreme[rows])  # the products that reach their row's extreme
    first = np.full((n, width), nnz, dtype=np.int64)  # nnz: none (an empty row)
    np.minimum.at(first, (rows[kk], jj), kk)
    found = first < nnz
    picked = prod[as_tensor(np.where(found, first, 0)), as_tensor(np.arange(width))[None, :]]
    return picked * as_tensor(found.astype(p.dtype)) if not found.all() else picked
