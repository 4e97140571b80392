"""descent.sparse, PyTorch's torch.sparse: sparse COO tensors (and CSR matrices) that are
`descent.Tensor`s, with their products, sums and softmax (docs/sparse.md).

    adj = descent.sparse_coo_tensor(edge_index, edge_weight, (N, N))
    h = descent.sparse.mm(adj, x)               # dense (N, F); gradients reach x and the weights
    deg = descent.sparse.sum(adj, dim=1).to_dense()

Modules: `storage` (what a sparse tensor's `_data` holds, and the loud refusal of every op
that does not know sparse tensors), `kernels` (array kernels), `ops` (the differentiable ops),
`tensor` (the SparseTensor class and constructors), `softmax`, `csr`, `compressed` (CSC and
BSR), `spgemm` (sparse @ sparse), `masks` (comparison masks of backward formulas).
"""

from __future__ import annotations

from .. import tensor_methods as _tensor_methods
from .._namespace import hide_submodules as _hide_submodules
from .compressed import to_sparse_bsr as _to_sparse_bsr
from .compressed import to_sparse_csc as _to_sparse_csc
from .csr import sampled_addmm
from .diags import spdiags
from .mm_reduce import mm_reduce as _mm_reduce
from .softmax import log_softmax, softmax
from .storage import SparseUnsupportedError
from .tensor import SparseTensor
from .tensor import empty_sparse as _empty_sparse
from .tensor import mm as _mm
from .tensor import sparse_coo_tensor as _sparse_coo_tensor
from .tensor import sparse_mask as _sparse_mask
from .tensor import sparse_sum as sum  # noqa: A001 - torch.sparse.sum is its name
from .tensor import to_sparse as _to_sparse
from .tensor import to_sparse_csr as _to_sparse_csr

__all__ = ["SparseTensor", "SparseUnsupportedError", "addmm", "log_softmax", "mm", "softmax",
           "sampled_addmm", "spdiags", "sum", "FloatTensor", "DoubleTensor", "LongTensor",
           "check_sparse_tensor_invariants"]  # fmt: skip


def mm(mat1, mat2, reduce=None):
    """torch.sparse.mm: sparse (n, m) @ dense (m, k) -> dense (n, k). The gradient of the
    sparse operand is sparse, at its stored coordinates only (never an n x m product).

    `reduce=` ("sum", "mean", "amax", "amin"; CSR @ dense only): each output row reduces its
    products instead of summing them (sparse/mm_reduce.py).
    """
    if reduce is not None:
        return _mm_reduce(mat1, mat2, reduce)
    return _mm(mat1, mat2, "sparse.mm", sparse_grad=True)


def spmm(mat1, mat2):
    """torch.spmm: sparse @ dense, as torch.mm (the sparse operand's gradient is dense there)."""
    return _mm(mat1, mat2, "spmm")


def addmm(mat, mat1, mat2, *, beta=1.0, alpha=1.0):
    """torch.sparse.addmm: beta * mat + alpha * (mat1 @ mat2), mat1 sparse, mat and mat2
    dense (the product as torch.sparse.mm)."""
    prod = mm(mat1, mat2)
    if alpha != 1:
        prod = prod * alpha
    if beta == 0:
        return prod
    return (mat if beta == 1 else mat * beta) + prod


class _LegacySparse:
    """torch.sparse.FloatTensor(indices, values, size) and its kin: the legacy constructors,
    a sparse_coo_tensor of their dtype."""

    def __init__(self, name: str, dtype: str) -> None:
        self.__name__ = self.__qualname__ = name
        self._dtype = dtype

    def __call__(self, *args, device=None):
        if len(args) == 1 and isinstance(args[0], tuple):  # FloatTensor(Size([2, 3]))
            args = tuple(args[0])
        if all(type(n) is int for n in args):  # FloatTensor(2, 3): empty, of that size
            return _empty_sparse(args, self._dtype, device)
        if len(args) not in (2, 3):
            raise TypeError(f"torch.sparse.{self.__name__}: pass (indices, values, size) or a size")
        return _sparse_coo_tensor(*args, dtype=self._dtype, device=device)

    def __repr__(self) -> str:
        return f"<class 'torch.sparse.{self.__name__}'>"


FloatTensor = _LegacySparse("FloatTensor", "float32")
DoubleTensor = _LegacySparse("DoubleTensor", "float64")
LongTensor = _LegacySparse("LongTensor", "int64")


class check_sparse_tensor_invariants:
    """torch.sparse.check_sparse_tensor_invariants: descent always checks the invariants it
    relies on (indices in range, nnz agreement), so this context manager changes nothing."""

    def __init__(self, enable: bool = True) -> None:
        self._enable = enable

    @staticmethod
    def is_enabled() -> bool:
        return True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


# Dense tensors' x.to_sparse() / x.to_sparse_csr() / to_sparse_csc() / to_sparse_bsr() reach
# these through the ops table.
_tensor_methods.register_ops({
    "to_sparse": _to_sparse, "to_sparse_csr": _to_sparse_csr, "to_sparse_csc": _to_sparse_csc,
    "to_sparse_bsr": _to_sparse_bsr, "sparse_mask": _sparse_mask,
})  # fmt: skip

# descent.spmm (torch.spmm; torch.sparse has no spmm) is bound privately here; the files
# (tensor, storage, kernels, ...) are importable by path only, as torch.sparse's are.
_spmm = spmm
del spmm
_hide_submodules(globals())
