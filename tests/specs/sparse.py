"""Specs of descent.sparse's ops (docs/sparse.md): each builds a sparse tensor from a dense
input (its values, or the whole matrix), runs the op and returns a dense result, so the table's
forward, finite-difference and PyTorch checks apply. The construction, to_dense/to_sparse,
coalesce, values, transposes, sparse sums, products and selections have double backward
(second_order on); softmax and the CSR/CSC/BSR ops do not (off). tests/test_sparse.py and
tests/test_sparse_more.py have the sparse-specific checks (layouts, indices, uncoalesced
inputs, errors)."""

from __future__ import annotations

import numpy as np
import torch

import descent as ds

from . import Spec

SPECS: list[Spec] = []

# (0, 1) twice: an uncoalesced pattern, whose duplicates sum
IDX = np.array([[0, 2, 1, 0, 2], [1, 0, 2, 1, 1]])
N = 3


def _dense(v):
    """The dense (3, 3) matrix of the values v at IDX (duplicates summed)."""
    out = np.zeros((N, N), dtype=v.dtype)
    np.add.at(out, (IDX[0], IDX[1]), v)
    return out


def _ds_sp(v):
    return ds.sparse_coo_tensor(IDX, v, (N, N))


def _t_sp(v):
    return torch.sparse_coo_tensor(torch.tensor(IDX), v, (N, N), check_invariants=True)


def _np_sparse_softmax(v):
    """Softmax over each row's stored entries (coalesced), zero elsewhere (dense)."""
    d = _dense(v)
    mask = _dense(np.ones_like(v)) > 0
    z = np.where(mask, d, -np.inf)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def add(second_order=True, **kw) -> None:
    SPECS.append(Spec(second_order=second_order, **kw))


add(
    name="sparse_mm_to_sparse",
    fn=lambda a, x: ds.sparse.mm(a.to_sparse(), x),
    ref=lambda a, x: a @ x,
    torch_fn=lambda a, x: torch.sparse.mm(a.to_sparse(), x),
    shapes=[(4, 3), (3, 2)],
    domain=[(0.5, 2.0), (-2.0, 2.0)],  # no zeros: the whole matrix is stored
    covers=("ToSparse", "SparseAddmm"),
)
add(
    name="sparse_coo_to_dense",
    fn=lambda v: _ds_sp(v).to_dense(),
    ref=_dense,
    torch_fn=lambda v: _t_sp(v).to_dense(),
    shapes=[(5,)],
    covers=("SparseCooTensorWithDimsAndTensors", "ToDense"),
)
add(
    name="sparse_mm_dense_gradient",
    fn=lambda v, x: _ds_sp(v) @ x,
    ref=lambda v, x: _dense(v) @ x,
    torch_fn=lambda v, x: _t_sp(v) @ x,
    shapes=[(5,), (3, 4)],
    covers=("Mm",),
)
add(
    name="sparse_coalesce_t_sum",
    fn=lambda v: ds.sparse.sum(_ds_sp(v).coalesce().t(), 1).to_dense(),
    ref=lambda v: _dense(v).T.sum(axis=1),
    torch_fn=lambda v: torch.sparse.sum(_t_sp(v).coalesce().t(), 1).to_dense(),
    shapes=[(5,)],
    covers=("Coalesce", "T", "SparseSum"),
)
add(
    name="sparse_values_transpose",
    fn=lambda v: _ds_sp(v).coalesce().transpose(0, 1).coalesce().values() * 2.0,
    ref=lambda v: 2.0 * _dense(v).T[_dense(np.ones_like(v)).T > 0],
    torch_fn=lambda v: _t_sp(v).coalesce().transpose(0, 1).coalesce().values() * 2.0,
    shapes=[(5,)],
    covers=("Values", "Transpose"),
)
add(
    name="sparse_softmax",
    fn=lambda v: ds.sparse.softmax(_ds_sp(v), 1).to_dense(),
    ref=_np_sparse_softmax,
    torch_fn=lambda v: torch.sparse.softmax(_t_sp(v), 1).to_dense(),
    shapes=[(5,)],
    covers=("SparseSoftmax",),
    second_order=False,
)
add(
    name="sparse_csr_mm",
    fn=lambda v, x: _ds_sp(v).to_sparse_csr() @ x + _ds_sp(v).to_sparse_csr().to_dense().sum(),
    ref=lambda v, x: _dense(v) @ x + _dense(v).sum(),
    torch_fn=lambda v, x: _t_sp(v).to_sparse_csr() @ x + _t_sp(v).to_sparse_csr().to_dense().sum(),
    shapes=[(5,), (3, 2)],
    covers=("CooToCsr", "CsrMm", "CsrToDense"),
    second_order=False,
)
add(
    name="sparse_csr_values",
    fn=lambda v: ds.sparse_csr_tensor([0, 2, 2, 3], [0, 2, 1], v, (3, 3)).to_sparse().to_dense(),
    ref=lambda v: np.array([[v[0], 0, v[1]], [0, 0, 0], [0, v[2], 0]]),
    torch_fn=lambda v: torch.sparse_csr_tensor(
        torch.tensor([0, 2, 2, 3]), torch.tensor([0, 2, 1]), v, (3, 3)
    ).to_dense(),
    shapes=[(3,)],
    covers=("SparseCsrTensorCrowColValue", "CsrToCoo"),
    second_order=False,
)
add(
    name="sparse_sparse_mm",
    fn=lambda v, w: ds.sparse.mm(_ds_sp(v), _ds_sp(w)).to_dense(),
    ref=lambda v, w: _dense(v) @ _dense(w),
    torch_fn=lambda v, w: torch.sparse.mm(_t_sp(v), _t_sp(w)).to_dense(),
    shapes=[(5,), (5,)],
    covers=("SparseSparseMatmul",),
)
add(
    name="sparse_sparse_matmul",
    fn=lambda v, w: (_ds_sp(v) @ _ds_sp(w)).to_dense(),
    ref=lambda v, w: _dense(v) @ _dense(w),
    torch_fn=lambda v, w: (_t_sp(v) @ _t_sp(w)).to_dense(),
    shapes=[(5,), (5,)],
    covers=("Mm",),
)


def _csc_dense(v):
    """The (3, 3) matrix of CSC ([0, 2, 2, 3], [0, 2, 1], v): column 0 holds rows 0 and 2,
    column 2 row 1."""
    return np.array([[v[0], 0, 0], [0, 0, v[2]], [v[1], 0, 0]])


def _csc(lib, v):
    return lib.sparse_csc_tensor(lib.tensor([0, 2, 2, 3]), lib.tensor([0, 2, 1]), v, (3, 3))


add(
    name="sparse_csc_mm",
    fn=lambda v, x: _csc(ds, v) @ x + _csc(ds, v).to_dense(),
    ref=lambda v, x: _csc_dense(v) @ x + _csc_dense(v),
    torch_fn=lambda v, x: _csc(torch, v) @ x + _csc(torch, v).to_dense(),
    shapes=[(3,), (3, 3)],
    covers=("SparseCompressedTensor", "CompressedMm", "CompressedToDense"),
    second_order=False,
)


def _bsr_program(a):
    """BSR conversions of a (4, 2) tensor in either library (a dense (2, 2) result)."""
    return (
        a.to_sparse_bsr((2, 1)).values().sum(0) + a.to_sparse_bsr((1, 2)).to_sparse().to_dense()[:2]
    )


add(
    name="sparse_bsr_conversions",
    # (2, 1) blocks summed: the four quarters' columns; (1, 2) blocks back to COO: the rows
    fn=lambda a: _bsr_program(a),
    ref=lambda a: (a[:2] + a[2:]).sum(1, keepdims=True) + a[:2],
    torch_fn=lambda a: _bsr_program(a),
    shapes=[(4, 2)],
    domain=(0.5, 2.0),  # no zeros: every block is stored
    covers=("ToSparseBsr", "CompressedValues", "CompressedToCoo"),
    second_order=False,
)
add(
    name="sparse_mask",
    fn=lambda a: a.sparse_mask(_ds_sp(np.ones(5))).to_dense(),
    ref=lambda a: a * _dense(np.ones(5)),  # duplicates: each stored copy takes a's entry
    torch_fn=lambda a: a.sparse_mask(_t_sp(torch.ones(5, dtype=a.dtype))).to_dense(),
    shapes=[(3, 3)],
    covers=("SparseMask", "Gather"),
)
add(
    name="sparse_selections",
    # rows 2, 0, 2 of the (3, 3) matrix; its row 1; all its columns under a new leading dim; its
    # transpose
    fn=lambda v: (
        _ds_sp(v).index_select(0, ds.tensor([2, 0, 2])).to_dense()
        + _ds_sp(v)[1].to_dense()
        + _ds_sp(v).narrow_copy(1, 0, 3).unsqueeze(0).to_dense()[0]
        + _ds_sp(v).permute(1, 0).to_dense()
    ),
    ref=lambda v: _dense(v)[[2, 0, 2]] + _dense(v)[1] + _dense(v) + _dense(v).T,
    torch_fn=lambda v: (
        _t_sp(v).coalesce().to_dense()[[2, 0, 2]]
        + _t_sp(v).coalesce().to_dense()[1]
        + _t_sp(v).to_dense()
        + _t_sp(v).permute(1, 0).to_dense()
    ),  # torch's backward of the selections raises
    shapes=[(5,)],
    covers=("IndexSelect", "Select", "NarrowCopy", "Unsqueeze", "Permute"),
)
