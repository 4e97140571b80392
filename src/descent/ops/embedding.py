"""Embedding lookup: rows of a weight matrix gathered by integer indices.

`descent.nn.functional.embedding` (and so `nn.Embedding`) calls it after checking the indices.
It is an op of its own rather than `weight[idx]` through the general indexing op because its
backward adds the gradient's rows in input order (PyTorch's order and bits; a one-hot matrix
product on CuPy) and because `padding_idx` rows must get no gradient.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor


class Embedding(Function):
    """y = weight[idx]; d weight = gy rows added at idx (rows of padding_idx get none; with
    scale_grad_by_freq each row's sum is divided by how often its index occurs in idx)."""

    # idx: the integer index array (any shape, already made non-negative by the caller), a
    # constant of the op rather than an input, since indices have no gradient. padding_idx: the
    # row that receives no gradient, or None. freq_scale: None, or 1 / (count of each position's
    # index in idx) with shape (*idx.shape, 1), PyTorch's scale_grad_by_freq. sparse: the
    # weight's gradient is a sparse COO tensor (PyTorch's sparse=True).
    __slots__ = ("idx", "padding_idx", "freq_scale", "sparse")
    saves_params = True  # PyTorch's EmbeddingBackward0 saves the indices

    def forward(self, w):
        idx = self.idx
        if type(w) is np.ndarray and type(idx) is np.ndarray and idx.ndim:
            # NumPy's take along the rows: the rows w[idx] copies (the same C-contiguous array,
            # the same IndexError out of range), ~25% faster at baby-gpt's (12, 64) tokens
            return np.take(w, idx, axis=0)
        return w[idx]  # (*idx.shape, D), one gather

    def backward(self, gy, ops):
        # gy: (*idx.shape, D). `ops` is the backward namespace (arrays, or Tensors under
        # create_graph); the gradient of the weight is gy's rows summed into (n_rows, D).
        if getattr(self, "sparse", False):
            return _sparse_grad(gy, ops, self.idx, self.padding_idx, self.in_shapes[0])
        if self.padding_idx is not None:
            keep = (self.idx != self.padding_idx)[..., None]
            gy = gy * (Tensor._wrap(keep.astype(gy._data.dtype)) if ops.is_graph else keep)
        scale = getattr(self, "freq_scale", None)
        if scale is not None:
            if ops.is_graph:
                # PyTorch's double backward of the scaled rule is the unscaled lookup (its
                # embedding_dense_double_backward ignores scale_grad_by_freq): the scaled
                # values, with an identity derivative with respect to gy.
                s = Tensor._wrap(scale.astype(gy._data.dtype) - 1)
                gy = gy + (gy * s).detach()
            else:  # in gy's dtype, as PyTorch's float scale (a float64 scale made it float64)
                gy = gy * scale.astype(gy.dtype, copy=False)
        if ops.is_graph:  # differentiable scatter-add, so the gradient can be differentiated again
            return ops.index_grad(gy, self.in_shapes[0], self.idx, False)
        xp = backend.get_array_module(gy)
        n_rows, dim = self.in_shapes[0]
        idx = self.idx.reshape(-1)
        g2 = gy.reshape(-1, dim)
        if backend.is_cupy_array(g2) and n_rows * idx.size <= 1 << 22:
            # CuPy, small vocabularies: a one-hot matrix product (deterministic, where the
            # scatter-add's atomics sum in any order). The one-hot matrix is capped at 4M cells
            # (16 MB in float32); past that the scatter-add saves memory.
            onehot = xp.zeros((n_rows, idx.size), dtype=gy.dtype)
            onehot[idx, xp.arange(idx.size)] = 1
            return onehot @ g2
        # NumPy: the rows added in input order (numba's row loop: O(len(idx) * D), where the
        # one-hot product used before 2026-12-07 cost O(n_rows * len(idx) * D)); PyTorch's CPU
        # embedding backward adds in that order too: the same bits as PyTorch's
        # (tests/test_overhead_s26.py), where the product's blocked BLAS sums were not
        gw = xp.zeros((n_rows, dim), dtype=gy.dtype)
        backend.scatter_add(gw, idx, g2)
        return gw


def _sparse_grad(gy, ops, idx, padding_idx, w_shape):
    """PyTorch's embedding_sparse_backward: a sparse COO gradient, uncoalesced, with one entry
    per looked-up position in input order (padding_idx positions dropped): indices (1, n) the
    ids, values (n, dim) gy's rows. Under create_graph it is built with sparse_coo_tensor from
    gy's rows, so it is differentiable again (as PyTorch's composite backward)."""
    from ..sparse.storage import CooStorage  # noqa: PLC0415 - descent.sparse is lazy

    xp = backend.get_array_module(idx)
    n_rows, dim = w_shape
    flat = idx.reshape(-1)
    pos = None
    if padding_idx is not None:
        keep = flat != padding_idx
        if not bool(keep.all()):
            pos = xp.flatnonzero(keep)
            flat = flat[pos]
    indices = flat.astype("int64").reshape(1, -1)
    coalesced = flat.size <= 1  # PyTorch marks a tensor of one entry (or none) coalesced
    if ops.is_graph:
        from ..sparse.tensor import sparse_coo_tensor  # noqa: PLC0415 - lazy, as above

        rows = gy.reshape(-1, dim)
        if pos is not None:
            rows = rows[pos]
        return sparse_coo_tensor(Tensor._wrap(indices), rows, (n_rows, dim),
                                 is_coalesced=coalesced)  # fmt: skip
    rows = gy.reshape(-1, dim)
    rows = rows[pos] if pos is not None else rows.copy()
    return CooStorage(indices, rows, (n_rows, dim), coalesced)
