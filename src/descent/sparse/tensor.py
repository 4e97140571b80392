"""SparseTensor: the Tensor subclass of sparse COO tensors, and their constructors.

A sparse tensor IS a `descent.Tensor` (isinstance holds, as in PyTorch): the same slots, the
same engine fields (`requires_grad`, `grad`, `grad_fn`), with a `CooStorage` as `_data`. The
engine gives every tensor made around such a storage this class (`autograd.register_storage_
class`), so op outputs, leaf gradients, `detach()` and `.data` of sparse tensors are sparse
tensors too. The methods here add PyTorch's sparse API and override the dense ones whose
meaning differs; the rest reach the storage, which computes what it can and raises otherwise.
"""

from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..devices import device
from ..dtypes import as_dtype, complex_of, get_default_dtype
from ..grad_mode import is_grad_enabled
from ..print_options import format_values
from ..tensor import Tensor
from ..tensor_gap_methods_tensor import sparse_bsr, sparse_coo, sparse_csc
from . import ops
from .storage import CooStorage, SparseUnsupportedError, unsupported


def _dims(dim, ndim: int, op: str) -> tuple:
    """dim (an int, a sequence, or None for all) as sorted non-negative dims."""
    dims = range(ndim) if dim is None else ((dim,) if isinstance(dim, int) else tuple(dim))
    out = []
    for d in dims:
        if not -ndim <= d < ndim:
            raise IndexError(f"{op}: Dimension out of range (expected to be in range of "
                             f"[{-ndim}, {ndim - 1}], but got {d})")  # fmt: skip
        out.append(d % ndim)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{op}: dim {tuple(dims)} lists a dimension twice")
    return tuple(sorted(out))


class SparseTensor(Tensor):
    """A sparse COO tensor (layout `descent.sparse_coo`); make one with
    `descent.sparse_coo_tensor(indices, values, size)` or `x.to_sparse()` (docs/sparse.md)."""

    __slots__ = ()  # the same layout as Tensor: the engine assigns this class to a tensor
    _sparse_layout = True
    _csc, _bsr = sparse_csc, sparse_bsr

    # -- what a sparse tensor is -----------------------------------------------------------
    @property
    def layout(self):
        return self._data.layout

    @property
    def is_sparse(self) -> bool:
        return self._data.layout is sparse_coo

    @property
    def is_sparse_csr(self) -> bool:
        return self._data.layout is not sparse_coo

    @property
    def device(self):
        return device(self._data.device)

    @property
    def is_cuda(self) -> bool:
        return backend.is_cupy_array(self._data.values)

    def sparse_dim(self) -> int:
        return self._data.sparse_dim

    def dense_dim(self) -> int:
        return self._data.dense_dim

    def _nnz(self) -> int:
        return read_nnz(self)

    def is_coalesced(self) -> bool:
        return self._data.coalesced

    def is_contiguous(self, memory_format=None) -> bool:
        return False  # as PyTorch answers for a sparse tensor

    def zero_(self) -> Tensor:
        """No stored entry left (PyTorch's sparse zero_: nnz 0, coalesced), in place: what
        `zero_grad(set_to_none=False)` does to a sparse gradient."""
        if self._data.layout is not sparse_coo:
            return super().zero_()  # (refused: CSR/CSC/BSR have no in-place ops)
        st, empty = self._data, self._data.empty_like(self._data.dtype)
        st.indices, st.values, st.coalesced = empty.indices, empty.values, True
        self._version += 1
        return self

    # -- conversions -----------------------------------------------------------------------
    def coalesce(self) -> Tensor:
        """Duplicates summed, indices sorted (itself when already coalesced, as PyTorch)."""
        if self._data.coalesced:
            return self
        return ops.Coalesce.apply(self)

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        out = ops.ToDense.apply(self)
        return out if dtype is None else out.to(dtype)

    def to_sparse(self, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None):
        if layout is not None and layout is not sparse_coo:
            from .compressed import convert  # noqa: PLC0415 - CSC/BSR load on first use

            return convert(self, layout, blocksize)
        if sparse_dim is not None and sparse_dim != self._data.sparse_dim:
            raise RuntimeError(
                f"to_sparse: conversion from Sparse to Sparse with sparse_dim argument != "
                f"self.sparse_dim() is not supported (got {sparse_dim}, the tensor has "
                f"{self._data.sparse_dim}); use .to_dense().to_sparse({sparse_dim})"
            )
        return self

    to_sparse_coo = to_sparse

    def to_sparse_csr(self, dense_dim=None):
        from .csr import coo_to_csr  # noqa: PLC0415 - CSR loads on first use

        return coo_to_csr(self)

    def to_sparse_csc(self, dense_dim=None):
        from .compressed import convert  # noqa: PLC0415

        return convert(self, self._csc)

    def to_sparse_bsr(self, blocksize, dense_dim=None):
        from .compressed import convert  # noqa: PLC0415

        return convert(self, self._bsr, blocksize)

    def indices(self) -> Tensor:
        """The coordinates (sparse_dim, nnz) of a coalesced tensor (an uncoalesced one raises,
        as PyTorch: its coordinates are not canonical; call .coalesce() first)."""
        read_nnz(self)
        if not self._data.coalesced:
            raise RuntimeError(
                "Cannot get indices on an uncoalesced tensor, please call .coalesce() first"
            )
        return self._indices()

    def _indices(self) -> Tensor:
        """The stored coordinates as they are (duplicates and order kept); no gradient."""
        read_nnz(self)
        return autograd._new_tensor(self._data.indices)

    def values(self) -> Tensor:
        """The stored values of a coalesced tensor (nnz, *dense_dims); differentiable: the
        gradient reaches this tensor's values (ValuesBackward0)."""
        if not self._data.coalesced:
            raise RuntimeError(
                "Cannot get values on an uncoalesced tensor, please call .coalesce() first"
            )
        read_nnz(self)
        return ops.Values.apply(self)

    def _values(self) -> Tensor:
        """The stored values as they are; not recorded (PyTorch's _values has no grad_fn)."""
        read_nnz(self)
        return autograd._new_tensor(self._data.values)

    def numpy(self, *, force: bool = False):
        raise TypeError("can't convert Sparse layout tensor to numpy. Use Tensor.to_dense() first.")

    def tolist(self):
        raise unsupported(self._data, "its values as a Python list", "tolist")

    def item(self):
        return self.to_dense().item()

    # -- shape -----------------------------------------------------------------------------
    def transpose(self, dim0, dim1) -> Tensor:
        n = self._data.ndim
        d0, d1 = (_dims(d, n, "transpose")[0] for d in (dim0, dim1))
        sd = self._data.sparse_dim
        if (d0 < sd) != (d1 < sd):
            raise RuntimeError(
                f"transpose(): cannot swap a sparse dim and a dense dim of a hybrid sparse "
                f"tensor (shape {tuple(self.shape)}, sparse_dim {sd}); use .to_dense() first"
            )
        if d0 >= sd:
            raise unsupported(self._data, "a transpose of its dense dims")
        return ops.Transpose.apply(self, dim0=d0, dim1=d1)

    swapaxes = swapdims = transpose

    # Selections along sparse dims (select.py): PyTorch's forwards, sparse gradients
    def index_select(self, axis=None, index=None, *, dim=None) -> Tensor:
        from .select import index_select  # noqa: PLC0415 - select.py imports this module

        return index_select(self, axis if dim is None else dim, index)

    def select(self, dim, index) -> Tensor:
        from .select import select  # noqa: PLC0415

        return select(self, dim, index)

    def __getitem__(self, index):
        if type(index) is int:  # S[i]: select along the first dim, as PyTorch
            return self.select(0, index)
        return super().__getitem__(index)

    def narrow_copy(self, dim, start, length) -> Tensor:
        from .select import narrow_copy  # noqa: PLC0415

        return narrow_copy(self, dim, start, length)

    def unsqueeze(self, axis=None, *, dim=None) -> Tensor:
        from .select import unsqueeze  # noqa: PLC0415

        return unsqueeze(self, axis if dim is None else dim)

    def permute(self, *axes, dims=None) -> Tensor:
        from .select import permute  # noqa: PLC0415

        if dims is None:  # permute(1, 0) or permute((1, 0))
            dims = axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else axes
        return permute(self, tuple(dims))

    def t(self) -> Tensor:
        if self._data.ndim > 2:
            raise RuntimeError(
                f"t() expects a tensor with <= 2 sparse and 0 dense dimensions, but got "
                f"{self._data.sparse_dim} sparse and {self._data.dense_dim} dense dimensions"
            )
        if self._data.ndim < 2:
            return self
        return ops.T.apply(self, dim0=0, dim1=1)

    @property
    def T(self) -> Tensor:
        return self.t()

    @property
    def mT(self) -> Tensor:
        return self.transpose(-2, -1)

    # -- reductions and products -------------------------------------------------------
    def sum(self, dim=None, keepdim=False, dtype=None, **kwargs) -> Tensor:
        """The sum of every element (dense, 0-d) or over `dim` (sparse, as torch.sparse.sum)."""
        if kwargs or keepdim:
            raise unsupported(self._data, "sum with keepdim or NumPy's keywords", "sum")
        x = self if dtype is None else self.to(dtype)
        if dim is None:
            from ..ops.reduce import sum as dense_sum  # noqa: PLC0415 - the generic full sum

            return dense_sum(x)
        return sparse_sum(x, dim)

    def _matmul_sparse(self, a, b) -> Tensor:
        """a @ b, self being one of them, for ops.linalg.matmul (mm, matmul, @, addmm)."""
        return mm(a, b, "matmul")

    def _like(self, op: str, dtype=None, requires_grad=False, device=None) -> Tensor:
        """zeros_like / empty_like (descent.creation): an empty sparse tensor with this one's
        size and sparse_dim, as PyTorch's; a fill (ones_like, rand_like, ...) raises, as there."""
        if op not in ("zeros_like", "empty_like"):
            raise unsupported(self._data, "a tensor of its shape filled with values", op)
        st = self._data
        dt = st.dtype if dtype is None else as_dtype(dtype)
        return empty_sparse(st.shape, dt, device, requires_grad, st.sparse_dim)

    def _new_sparse(self, op, sizes, size, dtype, device, requires_grad) -> Tensor:
        if op not in ("new_zeros", "new_empty"):
            raise unsupported(self._data, "a new tensor filled with values", op)
        shape = size if size is not None else sizes
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        dt = self._data.dtype if dtype is None else as_dtype(dtype)
        return empty_sparse(tuple(shape), dt, device, requires_grad)

    # PyTorch's new_* of a sparse tensor: new_zeros/new_empty are empty sparse tensors, fills
    # raise (as there)
    def new_zeros(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        return self._new_sparse("new_zeros", sizes, size, dtype, device, requires_grad)

    def new_empty(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        return self._new_sparse("new_empty", sizes, size, dtype, device, requires_grad)

    def new_ones(self, *sizes, size=None, dtype=None, device=None, requires_grad=False):
        return self._new_sparse("new_ones", sizes, size, dtype, device, requires_grad)

    def new_full(self, size, fill_value, *, dtype=None, device=None, requires_grad=False):
        return self._new_sparse("new_full", (), size, dtype, device, requires_grad)

    def type(self, dtype=None, non_blocking=False):
        """'descent.sparse.FloatTensor' (PyTorch's 'torch.sparse.FloatTensor'), or a cast."""
        if dtype is None:
            return super().type().replace("descent.", "descent.sparse.", 1)
        return super().type(dtype, non_blocking)

    def data_ptr(self):
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage")

    def storage_offset(self) -> int:
        return 0  # as PyTorch answers for a sparse tensor

    # -- printing ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        # PyTorch's layout (torch/_tensor_str.py, the sparse branch): indices and values as
        # nested tensors, then size, nnz, dtype, layout and grad_fn, the first on a new line.
        st = self._data
        indent = " " * 7
        body = "tensor(" + _nested("indices=tensor(", st.indices, 7) + ",\n"
        body += indent + _nested("values=tensor(", st.values, 7)
        suffixes = [f"size={tuple(st.shape)}", f"nnz={st.nnz}"]
        dt, default = st.values.dtype, get_default_dtype()
        if dt != default and dt.kind != "b" and dt != np.int64 and dt != complex_of(default):
            suffixes.append(f"dtype=descent.{dt.name}")
        if self.device != "cpu":
            suffixes.append(f"device='{self.device}'")
        suffixes.append(f"layout={st.layout!r}")
        if self._node is not None:
            suffixes.append(f"grad_fn=<{self._node.name()}>")
        elif self._rg:
            suffixes.append("requires_grad=True")
        return suffixed(body, suffixes)

    __str__ = __repr__


def suffixed(body: str, suffixes: list, force: bool = True) -> str:
    """PyTorch's _add_suffixes with force_newline (the sparse repr): the first suffix on a new
    line, the rest joined with ", " and wrapped at the line width."""
    from ..print_options import _options  # noqa: PLC0415 - the current linewidth

    width = _options["linewidth"]
    parts, last = [body], len(body) - body.rfind("\n") + 1
    for suffix in suffixes:
        if force or last + len(suffix) + 2 > width:
            parts.append(",\n" + " " * 7 + suffix)
            last, force = 7 + len(suffix), False
        else:
            parts.append(", " + suffix)
            last += len(suffix) + 2
    return "".join(parts) + ")"


def _nested(prefix: str, arr, indent: int) -> str:
    """A nested tensor's text: prefix, its values aligned under the prefix, its size if empty."""
    values = backend.as_numpy(arr)
    text = prefix + format_values(values, " " * (indent + len(prefix)))
    if values.size == 0:  # PyTorch names an empty nested tensor's size, 1-d too
        text += f", size={tuple(values.shape)}"
    return text + ")"


def compressed_repr(t, first: str, compressed, second: str, plain) -> str:
    """PyTorch's repr of a CSR/CSC/BSR tensor: the compressed and plain index arrays under
    their names (`crow_indices`/`col_indices`, `ccol_indices`/`row_indices`), then the values."""
    st = t._data
    indent = " " * 7
    body = "tensor(" + _nested(f"{first}=tensor(", compressed, 7) + ",\n"
    body += indent + _nested(f"{second}=tensor(", plain, 7) + ",\n"
    body += indent + _nested("values=tensor(", st.values, 7)
    suffixes = [f"size={tuple(st.shape)}", f"nnz={st.nnz}"]
    if st.values.dtype != np.float32 and st.values.dtype != np.int64:
        suffixes.append(f"dtype=descent.{st.values.dtype.name}")
    suffixes.append(f"layout={st.layout!r}")
    if t._node is not None:
        suffixes.append(f"grad_fn=<{t._node.name()}>")
    elif t._rg:
        suffixes.append("requires_grad=True")
    return suffixed(body, suffixes, force=False)


def index_array(x, dtype=None):
    """The array of an index or values argument (a Tensor or array-like), cast if asked."""
    arr = x._data if isinstance(x, Tensor) else np.asarray(x)
    return arr if dtype is None else arr.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Construction


def _as_array(x):
    """A dense tensor's array, or a list / NumPy array as one."""
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def sparse_coo_tensor(indices=None, values=None, size=None, *, dtype=None, device=None,
                      requires_grad=False, check_invariants=None, is_coalesced=None):  # fmt: skip
    """A sparse COO tensor with `values` (nnz, *dense_dims) at `indices` (sparse_dim, nnz)
    (torch.sparse_coo_tensor).

    Without `size` the sparse sizes are max(indices) + 1 along each row, the dense sizes those
    of `values`. The gradient reaches `values` when it requires grad. Duplicate coordinates
    are allowed (their values add up); `coalesce()` sums and sorts them.

    Raises:
        RuntimeError: PyTorch's: nnz of indices and values differ, `size` has the wrong
            length or is too small for the indices (checked, as PyTorch's invariant check, when
            `check_invariants=True`; indices are always checked against size here, since an
            out-of-range index would corrupt to_dense), or a negative index.
    """
    if values is None:  # sparse_coo_tensor(size): an empty tensor of that size, as PyTorch
        size = size if indices is None else indices
        if size is None:
            raise TypeError("sparse_coo_tensor: pass indices and values, or a size")
        return empty_sparse(tuple(size), dtype, device, requires_grad)
    if isinstance(indices, Tensor) and indices.is_sparse:
        raise TypeError("sparse_coo_tensor: indices must be a dense tensor")
    idx = _as_array(indices).astype(np.int64, copy=False)  # PyTorch converts float ones too
    if isinstance(values, Tensor):
        vals = values
    else:
        vals = Tensor._from_data(values)  # a Python list: descent's dtype defaults
    if dtype is not None and as_dtype(dtype) != vals._data.dtype:
        vals = vals.to(as_dtype(dtype))
    if device is not None:
        vals = vals.to(device)
        idx = backend.to_device(idx, backend.normalize_device(device))
    if idx.ndim != 2:
        raise RuntimeError(f"indices must be sparse_dim x nnz, but got: {list(idx.shape)}")
    sd, nnz = idx.shape
    if vals.ndim == 0 or vals.shape[0] != nnz:
        got = vals.shape[0] if vals.ndim else "a 0-d tensor"
        raise RuntimeError(
            f"indices and values must have same nnz, but got nnz from indices: {nnz}, nnz "
            f"from values: {got}"
        )
    dense_shape = tuple(vals.shape[1:])
    if nnz and int(idx.min()) < 0:
        dim = int(np.argmax((backend.as_numpy(idx) < 0).any(axis=1)))
        raise RuntimeError(f"found negative index {int(idx.min())} for dim {dim}")
    bound = tuple(int(m) + 1 for m in backend.as_numpy(idx.max(axis=1))) if nnz else (0,) * sd
    if size is None:
        shape = bound + dense_shape
    else:
        shape = tuple(int(s) for s in size)
        if len(shape) != sd + len(dense_shape):
            raise RuntimeError(
                f"'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = "
                f"{len(shape)}, sparse_dim = {sd}, dense_dim = {len(dense_shape)}"
            )
        for d in range(sd):
            if bound[d] > shape[d]:
                raise RuntimeError(
                    f"size is inconsistent with indices: for dim {d}, size is {shape[d]} but "
                    f"found index {bound[d] - 1}"
                )
        if shape[sd:] != dense_shape:
            raise RuntimeError(
                f"values has incorrect size, expected {list((nnz,) + shape[sd:])}, got "
                f"{list(vals.shape)}"
            )
    out = ops.SparseCooTensorWithDimsAndTensors.apply(
        vals, indices=idx, shape=shape, coalesced=bool(is_coalesced) or nnz <= 1 and sd > 0
    )
    if requires_grad:
        if out._node is not None:
            raise RuntimeError("sparse_coo_tensor: requires_grad=True with values that have "
                               "a grad_fn; the gradient already reaches them")  # fmt: skip
        out.requires_grad_(True)
    return out


def empty_sparse(size, dtype=None, device=None, requires_grad=False, sparse_dim=None) -> Tensor:
    """A sparse COO tensor of `size` storing nothing (all its dims sparse by default)."""
    dt = get_default_dtype() if dtype is None else as_dtype(dtype)
    sd = len(size) if sparse_dim is None else sparse_dim
    idx = np.zeros((sd, 0), dtype=np.int64)
    vals = np.zeros((0,) + tuple(size[sd:]), dtype=dt)
    if device is not None:
        dev = backend.normalize_device(device)
        idx, vals = backend.to_device(idx, dev), backend.to_device(vals, dev)
    out = autograd._new_tensor(CooStorage(idx, vals, size, True))
    return out.requires_grad_(True) if requires_grad else out


def read_nnz(t) -> int:
    """The number of stored entries of the sparse tensor `t`, read through a Tensor. Its
    indices and values have nnz rows, and nnz depends on the values of the dense tensor it was
    made from (`x.relu().to_sparse()`), so a function that reads them must run eagerly under
    descent.compile, which replays fixed shapes: the Tensor read is what its read guard sees.
    Before, a replay returned the recording's indices (arrays inside a storage were constants)
    or raised on a broadcast of the new values."""
    return int(Tensor._wrap(np.asarray(t._data.nnz)))


def to_sparse(x, sparse_dim=None, *, layout=None, blocksize=None, dense_dim=None) -> Tensor:
    """Tensor.to_sparse for a dense tensor: the coalesced COO copy storing its nonzeros."""
    if layout is not None and layout is not sparse_coo:
        from .compressed import convert  # noqa: PLC0415 - CSC/BSR load on first use

        return convert(x, layout, blocksize)
    n = x._data.ndim
    sd = n if sparse_dim is None else int(sparse_dim)
    if not 0 <= sd <= n:
        raise RuntimeError(f"to_sparse: sparse_dim argument must be in [0, {n}], but got {sd}")
    if x._rg and x._data.dtype.kind == "c" and is_grad_enabled():
        raise RuntimeError(  # PyTorch's refusal, word for word
            "_to_sparse does not support automatic differentiation for outputs with complex dtype."
        )
    return ops.ToSparse.apply(x, sparse_dim=sd)


def to_sparse_csr(x, dense_dim=None) -> Tensor:
    from .csr import dense_to_csr  # noqa: PLC0415 - CSR loads on first use

    return dense_to_csr(x)


# ---------------------------------------------------------------------------------------------
# Products and sums


def mm(sparse, dense, op: str = "mm", sparse_grad: bool = False) -> Tensor:
    """sparse (n, m) @ dense (m, k) or (m,) -> dense; the gradient reaches both (see ops.Mm)."""
    if not isinstance(sparse, SparseTensor) and hasattr(type(sparse), "_matmul_sparse"):
        return sparse._matmul_sparse(sparse, dense, sparse_grad)  # CSR, CSC, BSR
    if not isinstance(sparse, SparseTensor):
        if hasattr(type(dense), "_matmul_sparse") and dense._data.layout is not sparse_coo:
            return dense._matmul_sparse(sparse, dense, sparse_grad)  # dense @ CSR/CSC/BSR
        if isinstance(dense, SparseTensor) and dense._data.layout is sparse_coo:
            # dense @ sparse = (sparse^T @ dense^T)^T, as PyTorch computes it
            if sparse.ndim != 2 or dense.ndim != 2:
                raise unsupported(dense._data, f"{op} with a {sparse.ndim}-d dense operand")
            return mm(dense.t(), sparse.t(), op, sparse_grad).t()
        raise TypeError(f"{op}: expects a sparse first operand, got a dense one")
    st = sparse._data
    if st.layout is not sparse_coo:
        from .csr import csr_mm  # noqa: PLC0415

        return csr_mm(sparse, dense, op, sparse_grad)
    if isinstance(dense, Tensor) and dense.is_sparse_csr:  # COO @ a compressed layout
        raise RuntimeError(f"{op}: computation on CPU is not implemented for Sparse @ "
                           f"{dense.layout.name} (convert with .to_sparse() or "
                           ".to_dense())")  # fmt: skip
    if isinstance(dense, SparseTensor):
        return _sparse_sparse(sparse, dense, op, sparse_grad)
    if st.ndim != 2 or st.dense_dim != 0:
        dims = f"{st.sparse_dim} sparse and {st.dense_dim} dense dims"
        raise unsupported(st, f"{op} of a sparse tensor with {dims} (2 sparse, 0 dense expected)")
    vec = dense.ndim == 1
    if dense.ndim not in (1, 2) or (vec and op != "matmul"):
        raise RuntimeError(f"{op}: expects a 2-D dense operand, got shape {tuple(dense.shape)}")
    m = dense.shape[0]
    if m != st.shape[1]:
        raise RuntimeError(
            f"{op}: shapes {tuple(st.shape)} (sparse) and {tuple(dense.shape)} do not align "
            f"(Expected dim 0 size {st.shape[1]}, got {m})"
        )
    if st.dtype != dense._data.dtype:
        raise RuntimeError(
            f"{op}: expected both operands to have the same dtype, but got {sparse.dtype} "
            f"(sparse) and {dense.dtype} (dense); convert one with .to(dtype)"
        )
    if vec:
        return mm(sparse, dense.reshape(m, 1), op, sparse_grad).reshape(st.shape[0])
    return (ops.SparseAddmm if sparse_grad else ops.Mm).apply(sparse, dense)


def _sparse_sparse(a, b, op: str, sparse_grad: bool) -> Tensor:
    """A @ B of two sparse COO matrices: sparse COO, PyTorch's checks and words."""
    sa, sb = a._data, b._data
    if sa.ndim != 2 or sb.ndim != 2:
        raise RuntimeError(f"{op}: expected 2-D sparse matrices, got shapes "
                           f"{tuple(sa.shape)} and {tuple(sb.shape)} (PyTorch: Expected "
                           "mat1_.dim() == 2)")  # fmt: skip
    if sa.dense_dim or sb.dense_dim:
        raise RuntimeError(f"sparse_sparse_matmul_cpu: scalar values expected, got "
                           f"{max(sa.dense_dim, sb.dense_dim)}D values")  # fmt: skip
    if sa.shape[1] != sb.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({sa.shape[0]}x"
                           f"{sa.shape[1]} and {sb.shape[0]}x{sb.shape[1]})")  # fmt: skip
    if sa.dtype != sb.dtype:
        raise RuntimeError(f"mat1 dtype {_torch_name(sa.dtype)} does not match mat2 dtype "
                           f"{_torch_name(sb.dtype)}")  # fmt: skip
    if sa.dtype.kind not in "fc":
        raise SparseUnsupportedError(f'"sparse_matmul" not implemented for '
                                     f"'{_torch_name(sa.dtype)}'")  # fmt: skip
    if sparse_grad:
        from .spgemm import SparseSparseMatmul  # noqa: PLC0415 - loads on first use

        return SparseSparseMatmul.apply(a, b)
    return ops.Mm.apply(a, b)


def _torch_name(dt) -> str:
    """PyTorch's scalar type name in its messages ("Float", "Double", "Long")."""
    names = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
             "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
             "complex64": "ComplexFloat", "complex128": "ComplexDouble"}  # fmt: skip
    return names.get(np.dtype(dt).name, str(dt))


def sparse_mask(x, mask) -> Tensor:
    """x.sparse_mask(mask): a sparse COO tensor with the mask's coordinates (as stored,
    duplicates kept, as PyTorch's) and x's entries there; x dense or sparse COO. The gradient
    reaches x (dense for a dense x)."""
    if not isinstance(mask, SparseTensor) or mask._data.layout is not sparse_coo:
        raise SparseUnsupportedError(
            f"sparse_mask: the mask must be a sparse COO tensor, got layout {mask.layout} "
            "(PyTorch: Could not run 'aten::sparse_mask' with arguments from the 'CPU' backend)"
        )
    st = mask._data
    if tuple(x.shape) != st.shape:
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size "
                           f"{list(x.shape)} but mask has size {list(st.shape)}")  # fmt: skip
    values = ops.Gather.apply(x, indices=st.indices)  # (nnz, *dense dims)
    return ops.SparseMask.apply(values, indices=st.indices, shape=st.shape,
                                coalesced=st.coalesced)  # fmt: skip


def sparse_sum(x, dim=None, dtype=None) -> Tensor:
    """torch.sparse.sum: over every dim (a dense 0-d tensor) or over `dim` (sparse, unless every
    sparse dim is summed, then dense); the gradient is sparse with x's coordinates."""
    if not isinstance(x, SparseTensor) or x._data.layout is not sparse_coo:
        raise TypeError(f"torch.sparse.sum expects a sparse COO tensor, got layout {x.layout}")
    if dtype is not None:
        x = x.to(dtype)
    elif x._data.dtype.kind in "biu":
        x = x.to(np.int64)  # PyTorch sums integers in int64
    return ops.SparseSum.apply(x, dims=_dims(dim, x._data.ndim, "sparse.sum"))


autograd._register_storage_class(CooStorage, SparseTensor)
