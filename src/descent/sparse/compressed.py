"""Sparse CSC matrices and BSR block matrices (layouts `descent.sparse_csc`, `sparse_bsr`):
construction, conversions, to_dense, values() and the product with a dense matrix, each
differentiable in its values, as PyTorch's (CSR lives in csr.py).

* CSC is CSR of the columns: `ccol` (m + 1,) column pointers, `row` (nnz,) row indices,
  `values` (nnz,), the entries ordered by column.
* BSR stores (bh, bw) blocks: `crow` (n/bh + 1,) block-row pointers, `col` (nnzb,) block
  columns, `values` (nnzb, bh, bw); a block is stored when any of its entries is nonzero.

Every computation goes through the COO coordinates of the stored entries (`_coo_indices`, in
the storage's own order: column-major for CSC, block by block and row-major inside a block for
BSR, which is also the order of PyTorch's `to_sparse()`), so the kernels are the COO ones and a
gradient at the entries is a gather in that order. Nothing here forms a dense matrix except
`to_dense()` itself.
"""

from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..devices import device
from ..dtypes import as_dtype
from ..tensor import Tensor
from ..tensor_gap_methods_tensor import sparse_bsr, sparse_coo, sparse_csc, sparse_csr
from . import kernels
from .ops import _SparseFunction
from .storage import CooStorage, SparseUnsupportedError, _Storage, unsupported
from .tensor import compressed_repr, index_array, read_nnz


class CscStorage(_Storage):
    """A sparse CSC matrix's storage: column pointers `ccol` (m + 1,), row indices `row`
    (nnz,), `values` (nnz,)."""

    __slots__ = ("ccol", "row", "values", "shape")
    layout = sparse_csc

    def __init__(self, ccol, row, values, shape) -> None:
        self.ccol, self.row, self.values = ccol, row, values
        self.shape = tuple(int(s) for s in shape)

    compressed = property(lambda self: self.ccol)
    plain = property(lambda self: self.row)
    nnz = property(lambda self: self.row.shape[0])

    def with_values(self, values) -> CscStorage:
        return CscStorage(self.ccol, self.row, values, self.shape)

    def copy(self) -> CscStorage:
        return CscStorage(self.ccol.copy(), self.row.copy(), self.values.copy(), self.shape)

    def astype(self, dtype, copy: bool = True) -> CscStorage:
        return self.with_values(self.values.astype(dtype))


class BsrStorage(_Storage):
    """A sparse BSR matrix's storage: block-row pointers `crow`, block columns `col` (nnzb,),
    `values` (nnzb, bh, bw)."""

    __slots__ = ("crow", "col", "values", "shape")
    layout = sparse_bsr

    def __init__(self, crow, col, values, shape) -> None:
        self.crow, self.col, self.values = crow, col, values
        self.shape = tuple(int(s) for s in shape)

    compressed = property(lambda self: self.crow)
    plain = property(lambda self: self.col)
    nnz = property(lambda self: self.col.shape[0])  # stored blocks, as PyTorch's _nnz()

    def with_values(self, values) -> BsrStorage:
        return BsrStorage(self.crow, self.col, values, self.shape)

    def copy(self) -> BsrStorage:
        return BsrStorage(self.crow.copy(), self.col.copy(), self.values.copy(), self.shape)

    def astype(self, dtype, copy: bool = True) -> BsrStorage:
        return self.with_values(self.values.astype(dtype))


def _coo_indices(st):
    """(2, N) coordinates of every stored entry, in the storage's order (N = nnz for CSC,
    nnzb * bh * bw for BSR)."""
    xp = backend.get_array_module(st.plain)
    if st.layout is sparse_csc:
        cols = xp.repeat(xp.arange(st.shape[1], dtype=np.int64), xp.diff(st.ccol))
        return xp.stack([st.row, cols])
    nb, bh, bw = st.values.shape
    brows = xp.repeat(xp.arange(st.crow.shape[0] - 1, dtype=np.int64), xp.diff(st.crow))
    rows = brows[:, None, None] * bh + xp.arange(bh)[None, :, None]  # (nnzb, bh, 1)
    cols = st.col[:, None, None] * bw + xp.arange(bw)[None, None, :]  # (nnzb, 1, bw)
    rows, cols = xp.broadcast_arrays(rows, cols)
    return xp.stack([rows.reshape(-1), cols.reshape(-1)]).astype(np.int64)


def _as_coo(st) -> CooStorage:
    """The COO storage of the same entries (explicit zeros of BSR blocks included)."""
    return CooStorage(_coo_indices(st), st.values.reshape(-1), st.shape)


def _at_entries(g, st):
    """A gradient (dense array, COO or compressed storage) at st's entries: st's values
    shape."""
    if isinstance(g, (CscStorage, BsrStorage)):
        g = _as_coo(g)
    return kernels.gather(g, _coo_indices(st)).reshape(st.values.shape)


class SparseCompressedTensor(_SparseFunction):
    """sparse_csc_tensor / sparse_bsr_tensor (compressed, plain, values): d/dvalues = the
    gradient at each stored entry."""

    __slots__ = ("compressed", "plain", "shape", "layout", "pattern")

    def forward(self, values):
        cls = CscStorage if self.layout is sparse_csc else BsrStorage
        self.pattern = cls(self.compressed, self.plain, values, self.shape)  # for backward
        return self.pattern

    def backward(self, gy, ops):
        return _at_entries(gy, self.pattern)


class CompressedToDense(_SparseFunction):
    """to_dense() of a CSC/BSR matrix: the gradient has its layout and pattern."""

    __slots__ = ("pattern",)  # the input storage (its index arrays), kept for backward
    # freed after backward, as PyTorch's ToDenseBackward0 / ValuesBackward0 free their saved
    # self: a second backward without retain_graph raises
    saved_slots = ("pattern",)

    def forward(self, st):
        self.pattern = st
        return kernels.to_dense(_as_coo(st))

    def backward(self, gy, ops):
        return self.pattern.with_values(_at_entries(gy, self.pattern))


class CompressedToCoo(CompressedToDense):
    """CSC/BSR -> COO (to_sparse()): the gradient at the entries, in the input's layout."""

    def forward(self, st):
        self.pattern = st
        return _as_coo(st)


class CompressedValues(CompressedToDense):
    """values() of a CSC/BSR matrix (differentiable, as PyTorch's): d/dS has S's layout and
    pattern and the values' gradient."""

    def forward(self, st):
        self.pattern = st
        return st.values

    def backward(self, gy, ops):
        return self.pattern.with_values(gy)


class CooToCompressed(_SparseFunction):
    """COO (2-d) -> CSC or BSR: the gradient comes back as COO at the stored entries (a dense
    gradient passes as it is)."""

    __slots__ = ("layout", "blocksize")

    def forward(self, st):
        c = kernels.coalesce(st)
        xp = backend.get_array_module(c.values)
        n, m = st.shape
        if self.layout is sparse_csc:
            order = xp.argsort(c.indices[1] * n + c.indices[0], kind="stable")  # by column
            counts = xp.bincount(c.indices[1], minlength=m)
            ccol = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(counts)]).astype(np.int64)
            return CscStorage(ccol, c.indices[0][order], c.values[order], st.shape)
        bh, bw = self.blocksize
        brow, bcol = c.indices[0] // bh, c.indices[1] // bw
        key = brow * (m // bw) + bcol
        keys, block = xp.unique(key, return_inverse=True)  # sorted: block-row major
        values = xp.zeros((keys.shape[0], bh, bw), dtype=c.values.dtype)
        backend.scatter_add(values, (block, c.indices[0] % bh, c.indices[1] % bw), c.values)
        counts = xp.bincount(keys // (m // bw), minlength=n // bh)
        crow = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(counts)]).astype(np.int64)
        return BsrStorage(crow, (keys % (m // bw)).astype(np.int64), values, st.shape)

    def backward(self, gy, ops):
        if isinstance(gy, (CscStorage, BsrStorage)):
            return _as_coo(gy)
        return gy


class ToSparseCsc(CooToCompressed):
    """to_sparse_csc() (PyTorch's ToSparseCscBackward0)."""


class ToSparseBsr(CooToCompressed):
    """to_sparse_bsr(blocksize) (PyTorch's ToSparseBsrBackward0)."""


class CompressedMm(_SparseFunction):
    """A (CSC/BSR, n x m) @ D (m x k): d/dD = A^T @ gy; d/dA = gy @ D^T, dense as PyTorch's
    torch.mm gives it, or with `sparse_grad` (torch.sparse.mm) only at A's entries, in A's
    layout (never the dense n x m product)."""

    __slots__ = ("sparse_grad",)
    save_inputs = True

    def forward(self, st, d):
        return kernels.spmm(_as_coo(st), d)

    def backward(self, gy, ops):
        st, d = self.inputs(ops)
        coo = _as_coo(st)
        ga = gd = None
        if self.parents[1] is not None:
            gd = kernels.spmm(kernels.transpose_storage(coo, 0, 1), gy).astype(d.dtype)
        if self.parents[0] is not None:
            if self.sparse_grad:
                vals = kernels.sampled_rowdot(coo.indices, gy, d).astype(st.dtype, copy=False)
                ga = st.with_values(vals.reshape(st.values.shape))
            else:
                ga = (gy @ d.T).astype(st.dtype, copy=False)
        return ga, gd


class CsrTransposed(_SparseFunction):
    """A CSR matrix's transpose as the CSC matrix with the same three arrays (no copy): the
    gradient comes back transposed (CSC -> CSR with the same arrays, dense -> .T)."""

    def forward(self, st):
        return CscStorage(st.crow, st.col, st.values, st.shape[::-1])

    def backward(self, gy, ops):
        if isinstance(gy, CscStorage):
            from .storage import CsrStorage  # noqa: PLC0415

            return CsrStorage(gy.ccol, gy.row, gy.values, gy.shape[::-1])
        return gy.T


# ---------------------------------------------------------------------------------------------
# The Tensor class


_NAMES = {sparse_csc: ("ccol_indices", "row_indices"), sparse_bsr: ("crow_indices", "col_indices")}
_TORCH_LAYOUT = {sparse_csc: "SparseCsc", sparse_bsr: "SparseBsr", sparse_csr: "SparseCsr",
                 sparse_coo: "Sparse"}  # fmt: skip


class SparseCompressedMatrix(Tensor):
    """A sparse CSC or BSR matrix (layouts `descent.sparse_csc`, `descent.sparse_bsr`); see
    `sparse_csc_tensor`, `sparse_bsr_tensor`, `x.to_sparse_csc()`, `x.to_sparse_bsr(blocksize)`.
    """

    __slots__ = ()

    @property
    def layout(self):
        return self._data.layout

    is_sparse = False
    is_sparse_csr = False  # PyTorch's is_sparse_csr is True for CSR only

    @property
    def device(self):
        return device(self._data.device)

    def _index(self, name: str, which: int) -> Tensor:
        """One of the two index arrays, or PyTorch's error for the other layout's name."""
        names = _NAMES[self._data.layout]
        if names[which] != name:
            kind = "row" if name in ("crow_indices", "col_indices") else "column"
            raise RuntimeError(f"{name} expected sparse {kind} compressed tensor layout but got "
                               f"{_TORCH_LAYOUT[self._data.layout]}")  # fmt: skip
        read_nnz(self)
        return autograd._new_tensor(self._data.compressed if which == 0 else self._data.plain)

    def crow_indices(self) -> Tensor:
        return self._index("crow_indices", 0)

    def col_indices(self) -> Tensor:
        return self._index("col_indices", 1)

    def ccol_indices(self) -> Tensor:
        return self._index("ccol_indices", 0)

    def row_indices(self) -> Tensor:
        return self._index("row_indices", 1)

    def values(self) -> Tensor:
        """The stored values ((nnz,) for CSC, (nnzb, bh, bw) for BSR); differentiable."""
        read_nnz(self)
        return CompressedValues.apply(self)

    def _nnz(self) -> int:
        return read_nnz(self)

    def sparse_dim(self) -> int:
        return 2

    def dense_dim(self) -> int:
        return 0

    def is_contiguous(self, memory_format=None) -> bool:
        return False

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        out = CompressedToDense.apply(self)
        return out if dtype is None else out.to(dtype)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        if layout is None or layout is sparse_coo:
            return CompressedToCoo.apply(self)
        return convert(self, layout, blocksize)

    to_sparse_coo = to_sparse

    def to_sparse_csr(self, dense_dim=None):
        return convert(self, sparse_csr, None)

    def to_sparse_csc(self, dense_dim=None):
        return convert(self, sparse_csc, None)

    def to_sparse_bsr(self, blocksize, dense_dim=None):
        return convert(self, sparse_bsr, blocksize)

    def numpy(self, *, force: bool = False):
        name = _TORCH_LAYOUT[self._data.layout]
        raise TypeError(f"can't convert {name} layout tensor to numpy. Use Tensor.to_dense() "
                        "first.")  # fmt: skip

    def _like(self, op: str, dtype=None, requires_grad=False, device=None) -> Tensor:
        raise unsupported(self._data, "a tensor of its shape and layout", op)

    def _matmul_sparse(self, a, b, sparse_grad: bool = False) -> Tensor:
        return compressed_mm(a, b, "matmul", sparse_grad)

    def __repr__(self) -> str:
        st = self._data
        first, second = _NAMES[st.layout]
        return compressed_repr(self, first, st.compressed, second, st.plain)

    __str__ = __repr__


# ---------------------------------------------------------------------------------------------
# Construction, conversion, products


def _values_tensor(values, dtype, device):
    vals = values if isinstance(values, Tensor) else Tensor._from_data(values)
    if dtype is not None:
        vals = vals.to(as_dtype(dtype))
    if device is not None:
        vals = vals.to(device)
    return vals


def _check_compressed(ptr, plain, nnz: int, n_major: int, bound: int, names) -> None:
    """PyTorch's invariants of the compressed and plain index arrays."""
    c = backend.as_numpy(ptr)
    if c.shape[0] != n_major + 1 or c[0] != 0 or c[-1] != nnz or (np.diff(c) < 0).any():
        raise RuntimeError(
            f"{names[0]} must have {n_major + 1} entries, start at 0, end at nnz ({nnz}) and "
            f"never decrease, got {c.tolist()}"
        )
    p = backend.as_numpy(plain)
    if nnz and (p.min() < 0 or p.max() >= bound):
        raise RuntimeError(f"{names[1]} must be in [0, {bound}), got values up to {p.max()}")


def sparse_csc_tensor(ccol_indices, row_indices, values, size=None, *, dtype=None, device=None,
                      requires_grad=False, check_invariants=None) -> Tensor:  # fmt: skip
    """A sparse CSC matrix (torch.sparse_csc_tensor): column c's entries are
    values[ccol[c]:ccol[c + 1]] at rows row[ccol[c]:ccol[c + 1]]. Without `size`:
    (max(row) + 1, len(ccol) - 1). The gradient reaches `values`.

    Raises:
        RuntimeError: the invariants PyTorch checks (pointers from 0 to nnz, never
            decreasing; rows in range; lengths agree).
    """
    ccol, row = index_array(ccol_indices, np.int64), index_array(row_indices, np.int64)
    vals = _values_tensor(values, dtype, device)
    if ccol.ndim != 1 or row.ndim != 1 or vals.ndim != 1:
        raise SparseUnsupportedError(
            "sparse_csc_tensor: descent supports 2-d CSC matrices without batch or dense dims "
            f"(got ccol {tuple(ccol.shape)}, row {tuple(row.shape)}, values {tuple(vals.shape)})"
        )
    nnz = row.shape[0]
    if vals.shape[0] != nnz:
        raise RuntimeError(f"row_indices and values must have the same number of elements, but "
                           f"got {nnz} and {vals.shape[0]}")  # fmt: skip
    nrow = int(backend.as_numpy(row).max()) + 1 if nnz else 0
    shape = (nrow, ccol.shape[0] - 1) if size is None else tuple(int(s) for s in size)
    if len(shape) != 2:
        raise RuntimeError(f"sparse_csc_tensor: expected a 2-d size, got {shape}")
    _check_compressed(ccol, row, nnz, shape[1], shape[0], ("ccol_indices", "row_indices"))
    out = SparseCompressedTensor.apply(vals, compressed=ccol, plain=row, shape=shape,
                                       layout=sparse_csc)  # fmt: skip
    return out.requires_grad_(True) if requires_grad else out


def sparse_bsr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None, device=None,
                      requires_grad=False, check_invariants=None) -> Tensor:  # fmt: skip
    """A sparse BSR matrix (torch.sparse_bsr_tensor): block row r's blocks are
    values[crow[r]:crow[r + 1]] (each (bh, bw)) at block columns col[crow[r]:crow[r + 1]].
    Without `size`: ((len(crow) - 1) * bh, (max(col) + 1) * bw). The gradient reaches `values`.
    """
    crow, col = index_array(crow_indices, np.int64), index_array(col_indices, np.int64)
    vals = _values_tensor(values, dtype, device)
    if crow.ndim != 1 or col.ndim != 1 or vals.ndim != 3:
        raise SparseUnsupportedError(
            "sparse_bsr_tensor: descent supports 2-d BSR matrices without batch or dense dims "
            f"(values (nnzb, bh, bw); got crow {tuple(crow.shape)}, col {tuple(col.shape)}, "
            f"values {tuple(vals.shape)})"
        )
    nnzb, bh, bw = vals.shape
    if col.shape[0] != nnzb:
        raise RuntimeError(f"col_indices and values must have the same number of blocks, but "
                           f"got {col.shape[0]} and {nnzb}")  # fmt: skip
    ncol = int(backend.as_numpy(col).max()) + 1 if nnzb else 0
    if size is None:
        shape = ((crow.shape[0] - 1) * bh, ncol * bw)
    else:
        shape = tuple(int(s) for s in size)
    if len(shape) != 2 or shape[0] % bh or shape[1] % bw:
        raise RuntimeError(f"sparse_bsr_tensor: size {shape} must be 2-d and divisible by the "
                           f"blocksize ({bh}, {bw})")  # fmt: skip
    _check_compressed(crow, col, nnzb, shape[0] // bh, shape[1] // bw,
                      ("crow_indices", "col_indices"))  # fmt: skip
    out = SparseCompressedTensor.apply(vals, compressed=crow, plain=col, shape=shape,
                                       layout=sparse_bsr)  # fmt: skip
    return out.requires_grad_(True) if requires_grad else out


def sparse_compressed_tensor(compressed_indices, plain_indices, values, size=None, *,
                             dtype=None, layout=None, device=None, requires_grad=False,
                             check_invariants=None) -> Tensor:  # fmt: skip
    """torch.sparse_compressed_tensor: CSR, CSC or BSR by `layout` (BSC raises)."""
    if layout is sparse_csc:
        fn = sparse_csc_tensor
    elif layout is sparse_bsr:
        fn = sparse_bsr_tensor
    elif layout is sparse_csr:
        from .csr import sparse_csr_tensor as fn  # noqa: PLC0415
    else:
        raise SparseUnsupportedError(f"sparse_compressed_tensor: layout {layout} is not "
                                     "supported by descent (CSR, CSC and BSR are)")  # fmt: skip
    return fn(compressed_indices, plain_indices, values, size, dtype=dtype, device=device,
              requires_grad=requires_grad)  # fmt: skip


def _blocksize(blocksize, shape, where: str):
    if blocksize is None:
        src = "Strided" if where.startswith("dense") else "Sparse"
        raise RuntimeError(f"{where.rsplit('_', 1)[0]}: conversion from {src} to SparseBsr "
                           "without blocksize argument given is not supported")  # fmt: skip
    bh, bw = (int(b) for b in blocksize)
    if shape[0] % bh or shape[1] % bw:
        raise RuntimeError(f"{where}: tensor sparse size ({shape[0]},{shape[1]}) must be "
                           f"divisible by given blocksize ({bh},{bw})")  # fmt: skip
    return bh, bw


def convert(x, layout, blocksize=None) -> Tensor:
    """x (dense, COO, CSR, CSC or BSR) in `layout` (CSR, CSC or BSR), PyTorch's conversions:
    through COO, differentiable; BSR to CSR/CSC raises, as in torch 2.13."""
    src = x.layout
    if blocksize is not None and layout is not sparse_bsr:  # PyTorch refuses, whatever x is
        def kind(lay) -> str:
            return {"strided": "Strided", "sparse_coo": "Sparse"}.get(
                lay.name, "Sparse" + lay.name[7:].capitalize()
            )

        where = "dense_to_sparse" if src.name == "strided" else "sparse_to_sparse"
        raise RuntimeError(f"{where}: conversion from {kind(src)} to {kind(layout)} with "
                           "blocksize argument given is not supported")  # fmt: skip
    if src is layout and layout is not sparse_bsr:
        return x
    if x.ndim != 2:
        raise RuntimeError(f"to_sparse_{layout.name[7:]}: expected a 2-d tensor, got shape "
                           f"{tuple(x.shape)} (descent has no batched compressed "
                           "layouts)")  # fmt: skip
    if src is sparse_bsr and layout is not sparse_bsr:
        raise RuntimeError(f"sparse_compressed_to_sparse_{layout.name[7:]}: expected SparseCsr "
                           f"or SparseCsc layout but got SparseBsr")  # fmt: skip
    if layout is sparse_bsr:
        where = "dense_to_sparse_bsr" if src.name == "strided" else "sparse_to_sparse_bsr"
        bs = _blocksize(blocksize, x.shape, where)
        if src is sparse_bsr:
            if tuple(x._data.values.shape[1:]) == bs:
                return x
            x = x.to_sparse()
    else:
        bs = None
    coo = x.to_sparse() if src is not sparse_coo else x
    if coo._data.dense_dim:
        raise unsupported(coo._data, f"a {layout.name} copy of a hybrid tensor")
    if layout is sparse_csr:
        from .csr import coo_to_csr  # noqa: PLC0415

        return coo_to_csr(coo)
    op = ToSparseCsc if layout is sparse_csc else ToSparseBsr
    return op.apply(coo, layout=layout, blocksize=bs)


def to_sparse_csc(x, dense_dim=None) -> Tensor:
    """Tensor.to_sparse_csc for a dense tensor."""
    return convert(x, sparse_csc)


def to_sparse_bsr(x, blocksize, dense_dim=None) -> Tensor:
    """Tensor.to_sparse_bsr(blocksize) for a dense tensor."""
    return convert(x, sparse_bsr, blocksize)


def compressed_mm(a, b, op: str = "mm", sparse_grad: bool = False) -> Tensor:
    """A CSC/BSR matrix @ a dense matrix or vector (dense result), or dense @ CSC/CSR. PyTorch's
    CPU kernels have no dense @ BSR, nor integer products."""
    if not isinstance(a, SparseCompressedMatrix):
        if b._data.layout is sparse_bsr:
            raise RuntimeError("addmm: computation on CPU is not implemented for Strided + "
                               "Strided @ SparseBsr")  # fmt: skip
        if b._data.layout is sparse_csr:  # dense @ CSR = (CSR^T @ dense^T)^T, CSR^T a CSC
            return compressed_mm(CsrTransposed.apply(b), a.t(), op, sparse_grad).t()
        # dense @ CSC = (CSC^T @ dense^T)^T, and CSC^T is the CSR with the same arrays
        from .csr import csr_mm, sparse_csr_tensor  # noqa: PLC0415

        st = b._data
        csr_t = sparse_csr_tensor(st.ccol, st.row, CompressedValues.apply(b), st.shape[::-1])
        return csr_mm(csr_t, a.t(), op, sparse_grad).t()
    if b.is_sparse or isinstance(b, SparseCompressedMatrix) or b.is_sparse_csr:
        raise SparseUnsupportedError(
            f"{op}: descent multiplies a {a.layout.name} matrix by a dense one only (shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}); use .to_dense() on the other operand"
        )
    vec = b.ndim == 1
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[1]:
        raise RuntimeError(f"{op}: shapes {tuple(a.shape)} ({a.layout.name}) and "
                           f"{tuple(b.shape)} do not align")  # fmt: skip
    if a.dtype != b.dtype:
        raise RuntimeError(f"{op}: expected both operands to have the same dtype, got {a.dtype} "
                           f"and {b.dtype}")  # fmt: skip
    if a._data.dtype.kind not in "fc":
        from .tensor import _torch_name  # noqa: PLC0415

        raise SparseUnsupportedError(f'"addmm_out_sparse_csr_impl_mkl" not implemented for '
                                     f"'{_torch_name(a._data.dtype)}'")  # fmt: skip
    if vec:
        return CompressedMm.apply(a, b.reshape(b.shape[0], 1),
                                  sparse_grad=sparse_grad).reshape(a.shape[0])  # fmt: skip
    return CompressedMm.apply(a, b, sparse_grad=sparse_grad)


autograd._register_storage_class(CscStorage, SparseCompressedMatrix)
autograd._register_storage_class(BsrStorage, SparseCompressedMatrix)
