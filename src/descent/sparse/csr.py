"""Sparse CSR matrices (layout `descent.sparse_csr`): construction, conversions to and from
COO and dense, and the CSR x dense product, each differentiable in its values.

A CSR matrix is 2-d with no dense dims: `crow` (n + 1,) row pointers, `col` (nnz,) column
indices, `values` (nnz,). The kernels reuse the COO ones: row r's entries are
crow[r]:crow[r + 1], so the COO row of every entry is `repeat(arange(n), diff(crow))`.
"""

from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..devices import device
from ..dtypes import as_dtype
from ..tensor import Tensor
from ..tensor_gap_methods_tensor import sparse_bsr, sparse_csc
from . import kernels
from .ops import _SparseFunction
from .storage import CooStorage, CsrStorage, SparseUnsupportedError, unsupported
from .tensor import compressed_repr, index_array, read_nnz


def _coo_indices(st: CsrStorage):
    """(2, nnz) COO coordinates of a CSR storage's entries, in its order (sorted by row)."""
    xp = backend.get_array_module(st.col)
    rows = xp.repeat(xp.arange(st.shape[0], dtype=np.int64), xp.diff(st.crow))
    return xp.stack([rows, st.col])


def _as_coo(st: CsrStorage) -> CooStorage:
    return CooStorage(_coo_indices(st), st.values, st.shape)


def _csr_values(g, st: CsrStorage):
    """A gradient (dense array, COO or CSR storage) at the CSR storage's entries."""
    if isinstance(g, CsrStorage):
        g = _as_coo(g)
    return kernels.gather(g, _coo_indices(st))


class SparseCsrTensorCrowColValue(_SparseFunction):
    """sparse_csr_tensor(crow, col, values): d/dvalues = the gradient at each entry."""

    __slots__ = ("crow", "col", "shape")

    def forward(self, values):
        return CsrStorage(self.crow, self.col, values, self.shape)

    def backward(self, gy, ops):
        return _csr_values(gy, CsrStorage(self.crow, self.col, None, self.shape))


class CsrToDense(_SparseFunction):
    """to_dense() of a CSR matrix: the gradient is CSR with its pattern."""

    __slots__ = ("crow", "col")
    # freed after backward, as PyTorch's ToDenseBackward0 frees its saved self
    saved_slots = ("crow", "col")

    def forward(self, st):
        self.crow, self.col = st.crow, st.col
        return kernels.to_dense(_as_coo(st))

    def backward(self, gy, ops):
        pattern = CsrStorage(self.crow, self.col, None, self.in_shapes[0])
        return CsrStorage(self.crow, self.col, _csr_values(gy, pattern), self.in_shapes[0])


class CooToCsr(_SparseFunction):
    """COO -> CSR (coalesced first): the gradient comes back as COO with the CSR entries."""

    def forward(self, st):
        c = kernels.coalesce(st)
        xp = backend.get_array_module(c.values)
        counts = xp.bincount(c.indices[0], minlength=st.shape[0])
        crow = xp.concatenate([xp.zeros(1, np.int64), xp.cumsum(counts)]).astype(np.int64)
        return CsrStorage(crow, c.indices[1].copy(), c.values, st.shape)

    def backward(self, gy, ops):
        if isinstance(gy, CsrStorage):
            return CooStorage(_coo_indices(gy), gy.values, gy.shape, True)
        return gy


class CsrToCoo(_SparseFunction):
    """CSR -> COO: the gradient at the CSR entries."""

    __slots__ = ("crow", "col")

    def forward(self, st):
        self.crow, self.col = st.crow, st.col
        return _as_coo(st)

    def backward(self, gy, ops):
        pattern = CsrStorage(self.crow, self.col, None, self.in_shapes[0])
        return CsrStorage(self.crow, self.col, _csr_values(gy, pattern), self.in_shapes[0])


class CsrMm(_SparseFunction):
    """A (CSR, n x m) @ D (m x k): d/dD = A^T @ gy; d/dA = gy @ D^T, dense as torch.mm gives
    it, or with `sparse_grad` (torch.sparse.mm) only at A's entries (CSR)."""

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
                ga = CsrStorage(st.crow, st.col, vals, st.shape)
            else:
                ga = (gy @ d.T).astype(st.dtype, copy=False)
        return ga, gd


class SparseCsrTensor(Tensor):
    """A sparse CSR matrix (layout `descent.sparse_csr`); see `sparse_csr_tensor`."""

    __slots__ = ()

    @property
    def layout(self):
        return self._data.layout

    is_sparse = False

    @property
    def is_sparse_csr(self) -> bool:
        return True

    @property
    def device(self):
        return device(self._data.device)

    def crow_indices(self) -> Tensor:
        read_nnz(self)  # (crow's values depend on the nonzeros: a read, see read_nnz)
        return autograd._new_tensor(self._data.crow)

    def col_indices(self) -> Tensor:
        read_nnz(self)
        return autograd._new_tensor(self._data.col)

    def values(self) -> Tensor:
        """The stored values, not recorded (use to_dense() or a product for gradients)."""
        read_nnz(self)
        return autograd._new_tensor(self._data.values)

    def _nnz(self) -> int:
        return read_nnz(self)

    def sparse_dim(self) -> int:
        return 2

    def dense_dim(self) -> int:
        return 0

    def is_contiguous(self, memory_format=None) -> bool:
        return False

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        out = CsrToDense.apply(self)
        return out if dtype is None else out.to(dtype)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        if layout is not None and layout.name == "sparse_csr":
            return self
        if layout is not None and layout.name != "sparse_coo":
            from .compressed import convert  # noqa: PLC0415 - CSC/BSR load on first use

            return convert(self, layout, blocksize)
        return CsrToCoo.apply(self)

    def to_sparse_csc(self, dense_dim=None):
        return self.to_sparse(layout=sparse_csc)

    def to_sparse_bsr(self, blocksize, dense_dim=None):
        return self.to_sparse(layout=sparse_bsr, blocksize=blocksize)

    to_sparse_coo = to_sparse

    def to_sparse_csr(self, dense_dim=None):
        return self

    def numpy(self, *, force: bool = False):
        raise TypeError("can't convert SparseCsr layout tensor to numpy. Use Tensor.to_dense() "
                        "first.")  # fmt: skip

    def _like(self, op: str, dtype=None, requires_grad=False, device=None) -> Tensor:
        raise unsupported(self._data, "a tensor of its shape and layout", op)

    def _matmul_sparse(self, a, b, sparse_grad: bool = False) -> Tensor:
        if not isinstance(a, SparseCsrTensor):  # dense @ CSR: through its transpose (a CSC)
            from .compressed import compressed_mm  # noqa: PLC0415

            return compressed_mm(a, b, "matmul", sparse_grad)
        return csr_mm(a, b, "matmul", sparse_grad)

    def __repr__(self) -> str:
        st = self._data
        return compressed_repr(self, "crow_indices", st.crow, "col_indices", st.col)

    __str__ = __repr__


def sparse_csr_tensor(crow_indices, col_indices, values, size=None, *, dtype=None, device=None,
                      requires_grad=False, check_invariants=None):  # fmt: skip
    """A sparse CSR matrix (torch.sparse_csr_tensor): row r's entries are
    values[crow[r]:crow[r + 1]] at columns col[crow[r]:crow[r + 1]]. Without `size`:
    (len(crow) - 1, max(col) + 1). The gradient reaches `values`.

    Raises:
        RuntimeError: the invariants PyTorch checks (crow starts at 0, ends at nnz and never
            decreases; columns in range; lengths agree).
    """
    crow, col = index_array(crow_indices, np.int64), index_array(col_indices, np.int64)
    vals = values if isinstance(values, Tensor) else Tensor._from_data(values)
    if dtype is not None:
        vals = vals.to(as_dtype(dtype))
    if device is not None:
        vals = vals.to(device)
        dev = backend.normalize_device(device)
        crow, col = backend.to_device(crow, dev), backend.to_device(col, dev)
    if crow.ndim != 1 or col.ndim != 1 or vals.ndim != 1:
        raise SparseUnsupportedError(
            "sparse_csr_tensor: descent supports 2-d CSR matrices without batch or dense dims "
            f"(got crow {tuple(crow.shape)}, col {tuple(col.shape)}, values {tuple(vals.shape)})"
        )
    nnz = col.shape[0]
    if vals.shape[0] != nnz:
        raise RuntimeError(f"col_indices and values must have the same number of elements, but "
                           f"got {nnz} and {vals.shape[0]}")  # fmt: skip
    c = backend.as_numpy(crow)
    if c.shape[0] < 1 or c[0] != 0 or c[-1] != nnz or (np.diff(c) < 0).any():
        raise RuntimeError(
            f"sparse_csr_tensor: crow_indices must start at 0, end at nnz ({nnz}) and never "
            f"decrease, got {c.tolist()}"
        )
    ncol = int(backend.as_numpy(col).max()) + 1 if nnz else 0
    shape = (c.shape[0] - 1, ncol) if size is None else tuple(int(s) for s in size)
    if len(shape) != 2 or shape[0] != c.shape[0] - 1:
        raise RuntimeError(
            f"sparse_csr_tensor: size {shape} does not fit crow_indices of "
            f"length {c.shape[0]} (a 2-d size with size[0] = len(crow) - 1)"
        )
    if nnz and (int(col.min()) < 0 or ncol > shape[1]):
        raise RuntimeError(f"sparse_csr_tensor: col_indices must be in [0, {shape[1]}), got "
                           f"values up to {ncol - 1}")  # fmt: skip
    out = SparseCsrTensorCrowColValue.apply(vals, crow=crow, col=col, shape=shape)
    if requires_grad:
        out.requires_grad_(True)
    return out


def coo_to_csr(x) -> Tensor:
    if x._data.ndim != 2 or x._data.dense_dim != 0:
        raise unsupported(x._data, "a CSR copy of a tensor that is not a 2-d sparse matrix")
    return CooToCsr.apply(x)


def dense_to_csr(x) -> Tensor:
    if x.ndim != 2:
        raise RuntimeError(f"to_sparse_csr: expected a 2-d tensor, got shape {tuple(x.shape)}")
    return coo_to_csr(x.to_sparse())


def csr_mm(a, b, op: str = "mm", sparse_grad: bool = False) -> Tensor:
    """A CSR matrix @ a dense matrix or vector (dense result); dense @ CSR goes through
    compressed.py (the transpose is a CSC matrix)."""
    if not isinstance(a, SparseCsrTensor) or hasattr(type(b), "_matmul_sparse"):
        raise SparseUnsupportedError(
            f"{op}: descent multiplies a CSR matrix by a dense one only (shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}); use .to_dense() on the other operand"
        )
    if b.ndim not in (1, 2) or b.shape[0] != a.shape[1]:
        raise RuntimeError(f"{op}: shapes {tuple(a.shape)} (CSR) and {tuple(b.shape)} do not "
                           "align")  # fmt: skip
    if a.dtype != b.dtype:
        raise RuntimeError(f"{op}: expected both operands to have the same dtype, got {a.dtype} "
                           f"and {b.dtype}")  # fmt: skip
    if a._data.dtype.kind not in "fc":  # PyTorch's CPU kernel is MKL's: floating only
        from .tensor import _torch_name  # noqa: PLC0415

        raise SparseUnsupportedError(f'"addmm_out_sparse_csr_impl_mkl" not implemented for '
                                     f"'{_torch_name(a._data.dtype)}'")  # fmt: skip
    if b.ndim == 1:  # CSR @ vector (torch.mv, matmul)
        out = CsrMm.apply(a, b.reshape(b.shape[0], 1), sparse_grad=sparse_grad)
        return out.reshape(a.shape[0])
    return CsrMm.apply(a, b, sparse_grad=sparse_grad)


class CsrSampledAddmm(_SparseFunction):
    """SDDMM: beta * input + alpha * (mat1 @ mat2), computed at input's CSR entries only.
    d/dinput = conj(beta) * g at the entries (CSR); with G the gradient as a sparse matrix on
    the pattern, d/dmat1 = conj(alpha) * G @ mat2^H and d/dmat2 = conj(alpha) * mat1^H @ G."""

    __slots__ = ("alpha", "beta")
    save_inputs = True

    def forward(self, st, m1, m2):
        idx = _coo_indices(st)
        vals = kernels.sampled_rowdot(idx, m1, m2.T)
        if self.alpha != 1:
            vals = vals * self.alpha
        if self.beta != 0:  # beta = 0 ignores input's values (nan included), as PyTorch
            vals = vals + self.beta * st.values
        return CsrStorage(st.crow, st.col, vals.astype(st.values.dtype, copy=False), st.shape)

    def backward(self, gy, ops):
        st, m1, m2 = self.inputs(ops)
        pattern = CsrStorage(st.crow, st.col, None, st.shape)
        gvals = _csr_values(gy, pattern)
        # complex: the gradient of a product is the upstream gradient times the conjugate of
        # the other factor (PyTorch's convention), so conj(alpha), conj(beta), conj(mat)
        alpha, beta = self.alpha.conjugate(), self.beta.conjugate()  # (Python scalars)
        if np.iscomplexobj(m1):
            m1, m2 = m1.conj(), m2.conj()
        g = CooStorage(_coo_indices(st), gvals * alpha, st.shape)
        gi = g1 = g2 = None
        if self.parents[0] is not None:
            gi = CsrStorage(st.crow, st.col, (gvals * beta).astype(st.dtype), st.shape)
        if self.parents[1] is not None:
            g1 = kernels.spmm(g, m2.T).astype(m1.dtype, copy=False)
        if self.parents[2] is not None:
            g2t = kernels.spmm(kernels.transpose_storage(g, 0, 1), m1)
            g2 = g2t.T.astype(m2.dtype, copy=False)
        return gi, g1, g2


def sampled_addmm(input, mat1, mat2, *, beta=1.0, alpha=1.0, out=None) -> Tensor:
    """torch.sparse.sampled_addmm: beta * input + alpha * (mat1 @ mat2) at the entries of the
    CSR matrix `input` only (SDDMM: attention scores on a graph's edges without the dense
    n x m product). Returns a CSR matrix with input's pattern; gradients reach input's values,
    mat1 and mat2.

    Raises:
        RuntimeError: input not a 2-d CSR matrix, mat1 / mat2 not 2-d dense matrices whose
            product has input's shape, or mixed dtypes (PyTorch's conditions).
    """
    op = "sampled_addmm"
    if not isinstance(input, SparseCsrTensor):
        raise RuntimeError(f"{op}: Expected input to have sparse_csr layout, but got "
                           f"{getattr(input, 'layout', type(input).__name__)}; convert it with "
                           ".to_sparse_csr()")  # fmt: skip
    for name, m in (("mat1", mat1), ("mat2", mat2)):
        if not isinstance(m, Tensor) or getattr(type(m), "_matmul_sparse", None) is not None:
            raise RuntimeError(f"{op}: Expected {name} to be a strided (dense) tensor")
        if m.ndim != 2:
            raise RuntimeError(
                f"{op}: Expected {name} to be a matrix, got {m.ndim}-D tensor of shape "
                f"{tuple(m.shape)} (descent's CSR matrices are 2-d)"
            )
    n, m_ = input.shape
    if mat1.shape[1] != mat2.shape[0] or (mat1.shape[0], mat2.shape[1]) != (n, m_):
        raise RuntimeError(
            f"{op}: mat1 {tuple(mat1.shape)} @ mat2 {tuple(mat2.shape)} must give input's shape "
            f"{(n, m_)}"
        )
    if not (input.dtype == mat1.dtype == mat2.dtype):
        raise RuntimeError(f"{op}: Expected mat1, mat2 and input to have the same dtype, got "
                           f"{mat1.dtype}, {mat2.dtype} and {input.dtype}")  # fmt: skip
    if out is not None:
        raise RuntimeError(f"{op}: out= is not supported for sparse results in descent; use "
                           "the returned tensor")  # fmt: skip
    return CsrSampledAddmm.apply(input, mat1, mat2, alpha=alpha, beta=beta)


autograd._register_storage_class(CsrStorage, SparseCsrTensor)
