"""The differentiable sparse ops: construction from values, to_dense / to_sparse, coalesce,
values(), transposition, sparse sums and the sparse x dense product.

Each is a `Function` as in `descent.ops`: forward on raw storages and arrays, backward with one
gradient per input. The gradient of a sparse tensor is a `CooStorage` (a sparse gradient, as
PyTorch's) where PyTorch's is sparse, or a dense array where PyTorch's is dense (`torch.mm`'s
gradient for its sparse operand); the ops that consume a sparse tensor's gradient accept both.

In an ordinary backward pass the formulas run as array kernels (`kernels.py`). Under
`create_graph=True` (`ops.is_graph`: gy and the saved inputs are Tensors) the same formulas are
written with these ops themselves (`Gather`, the construction from values, `ToDense`, the
products) and the dense ops, so the gradient is recorded and can be differentiated again
(double backward, as PyTorch's). The few ops without such a form (softmax, CSR, sparse x
sparse with torch.sparse.mm's masked gradient) keep `differentiable_backward = False` and raise
under create_graph, naming the op.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from . import kernels
from .kernels import coalesce, gather, transpose_storage
from .storage import CooStorage


class _SparseFunction(Function):
    """Base of the sparse ops: array-kernel backward passes, no double backward unless the op
    writes its create_graph form and sets `differentiable_backward = True`."""

    differentiable_backward = False


def _is_tensor(x) -> bool:
    """A Tensor (the create_graph pass) rather than an array or a storage."""
    return isinstance(x, Tensor)


def _sparse(values, indices, shape, coalesced: bool):
    """A sparse tensor with `values` at `indices`: a storage in an array pass, the recorded
    construction from the values Tensor under create_graph (differentiable in the values)."""
    if not _is_tensor(values):
        return CooStorage(indices, values, shape, coalesced)
    return SparseCooTensorWithDimsAndTensors.apply(
        values, indices=indices, shape=tuple(shape), coalesced=coalesced
    )


def _gather(g, indices):
    """The entries of g (dense or sparse; an array/storage or a Tensor) at `indices`."""
    if not _is_tensor(g):
        return gather(g, indices)
    return Gather.apply(g, indices=indices)


class Gather(_SparseFunction):
    """g at the coordinates `indices` (sparse_dim, nnz) -> (nnz, *dense_dims), for a dense or
    sparse g: the lookup of the backward passes, recorded under create_graph. d/dg puts the
    gradient back at those coordinates (duplicates add up): sparse for a sparse g, dense for a
    dense one."""

    __slots__ = ("indices", "sparse_in")
    differentiable_backward = True

    def forward(self, g):
        self.sparse_in = isinstance(g, CooStorage)
        return gather(g, self.indices)

    def backward(self, gy, ops):
        s = _sparse(gy, self.indices, self.in_shapes[0], False)
        if self.sparse_in:
            return s
        return ToDense.apply(s) if ops.is_graph else kernels.to_dense(s)


class SparseCooTensorWithDimsAndTensors(_SparseFunction):
    """sparse_coo_tensor(indices, values): d/dvalues[k] = the gradient's entry at indices[:, k]
    (each duplicate coordinate gets the whole entry: the tensor is their sum). PyTorch's name."""

    __slots__ = ("indices", "shape", "coalesced")
    differentiable_backward = True

    def forward(self, values):
        return CooStorage(self.indices, values, self.shape, self.coalesced)

    def backward(self, gy, ops):
        return _gather(gy, self.indices)


class SparseMask(SparseCooTensorWithDimsAndTensors):
    """x.sparse_mask(mask): the values gathered from x at the mask's coordinates, made sparse
    (PyTorch's SparseMaskBackward0; the gradient reaches x through the gather)."""


class ToDense(_SparseFunction):
    """to_dense(): the gradient is the dense gradient at the input's (coalesced) coordinates,
    a sparse tensor with its pattern (PyTorch's grad.sparse_mask(input))."""

    __slots__ = ("pattern",)  # the input's coalesced coordinates, kept for backward
    # freed after backward, as PyTorch's ToDenseBackward0 frees its saved self: a second
    # backward without retain_graph raises
    saved_slots = ("pattern",)
    differentiable_backward = True

    def forward(self, st):
        self.pattern = coalesce(st).indices if not st.coalesced else st.indices
        return kernels.to_dense(st)

    def backward(self, gy, ops):
        idx = self.pattern
        return _sparse(_gather(gy, idx), idx, self.in_shapes[0], True)


class ToSparse(_SparseFunction):
    """to_sparse(sparse_dim): the gradient of the dense input is the gradient made dense."""

    __slots__ = ("sparse_dim",)
    differentiable_backward = True

    def forward(self, x):
        return kernels.from_dense(x, self.sparse_dim)

    def backward(self, gy, ops):
        if ops.is_graph:
            return ToDense.apply(gy) if gy.is_sparse else gy
        return kernels.to_dense(gy) if isinstance(gy, CooStorage) else gy


class Coalesce(_SparseFunction):
    """coalesce() is the identity as a function: the gradient passes unchanged."""

    differentiable_backward = True

    def forward(self, st):
        return coalesce(st)

    def backward(self, gy, ops):
        return gy


class Values(_SparseFunction):
    """values(): d/dS = a sparse tensor with S's coordinates and the values' gradient."""

    __slots__ = ("indices", "coalesced")  # S's coordinates, kept for backward
    saved_slots = ("indices",)  # (PyTorch's ValuesBackward0 saves self: freed after backward)
    differentiable_backward = True

    def forward(self, st):
        self.indices, self.coalesced = st.indices, st.coalesced
        return st.values

    def backward(self, gy, ops):
        return _sparse(gy, self.indices, self.in_shapes[0], self.coalesced)


class Transpose(_SparseFunction):
    """Swapping two sparse dims: the gradient is swapped back."""

    __slots__ = ("dim0", "dim1")
    differentiable_backward = True

    def forward(self, st):
        return transpose_storage(st, self.dim0, self.dim1)

    def backward(self, gy, ops):
        if ops.is_graph:
            if gy.is_sparse:
                return Transpose.apply(gy, dim0=self.dim0, dim1=self.dim1)
            return ops.swapaxes(gy, self.dim0, self.dim1)
        if isinstance(gy, CooStorage):
            return transpose_storage(gy, self.dim0, self.dim1)
        return backend.get_array_module(gy).swapaxes(gy, self.dim0, self.dim1)


class T(Transpose):
    """x.t() of a 2-d sparse tensor (PyTorch's TBackward0)."""


class SparseSum(_SparseFunction):
    """torch.sparse.sum(S, dims): d/dS = the gradient entry each stored value was summed into,
    with S's coordinates (a sparse gradient). Summing every sparse dim gives a dense result."""

    __slots__ = ("dims",)  # sorted, non-negative
    save_inputs = True
    differentiable_backward = True

    def forward(self, st):
        sd = st.sparse_dim
        dense_axes = tuple(d - sd + 1 for d in self.dims if d >= sd)  # axes of `values`
        values = st.values.sum(axis=dense_axes) if dense_axes else st.values
        keep = [d for d in range(sd) if d not in self.dims]
        if not keep:  # every sparse dim reduced: a dense result
            return values.sum(axis=0)
        shape = [st.shape[d] for d in keep]
        shape += [n for d, n in enumerate(st.shape) if d >= sd and d not in self.dims]
        return coalesce(CooStorage(st.indices[keep], values, shape))

    def backward(self, gy, ops):
        # A sparse gradient has unique coordinates (its dense meaning sums duplicates): it
        # lives on the input's coalesced pattern (constant indices: only the values are
        # differentiable, so under create_graph the pattern comes from the input's data).
        x = self.inputs(ops)[0]
        st = coalesce(x._data if ops.is_graph else x)
        sd = st.sparse_dim
        keep = [d for d in range(sd) if d not in self.dims]
        if keep:
            g = _gather(gy, st.indices[keep])  # (nnz, *kept dense dims)
        else:  # a dense result: every stored value gets its entry
            g = ops.broadcast_to(gy, (st.nnz,) + tuple(gy.shape))
        for d in self.dims:  # the reduced dense dims come back as broadcast axes
            if d >= sd:
                g = ops.expand_dims(g, d - sd + 1)
        g = ops.cast(ops.broadcast_to(g, st.values.shape), st.values.dtype)
        if not ops.is_graph:
            g = g.copy()  # a broadcast view: the gradient gets its own values
        return _sparse(g, st.indices, st.shape, True)


class Mm(_SparseFunction):
    """S @ D for a 2-d sparse S and a dense D: d/dD = S^T @ gy; d/dS = gy @ D^T, dense, as
    PyTorch's mm/matmul/@ give (MmBackward0). Two sparse operands: spgemm.py."""

    save_inputs = True  # both: each gradient is a product with the other operand
    sparse_grad = False
    differentiable_backward = True

    def forward(self, st, d):
        if isinstance(d, CooStorage):  # sparse @ sparse: a sparse product (spgemm.py)
            from .spgemm import spgemm  # noqa: PLC0415 - spgemm imports this module

            return spgemm(st, d)
        return kernels.spmm(st, d)

    def backward(self, gy, ops):
        if ops.is_graph:
            return self._graph_backward(gy, ops)
        st, d = self.inputs(ops)
        need_s, need_d = self.parents[0] is not None, self.parents[1] is not None
        if isinstance(d, CooStorage):
            from .spgemm import mm_grads  # noqa: PLC0415

            return mm_grads(st, d, gy, need_s, need_d)
        if st.dtype.kind == "c":  # PyTorch's complex convention: products with the conjugates
            st, d = st.conj(), d.conj()
        gs = gd = None
        if need_d:
            gd = kernels.spmm(transpose_storage(st, 0, 1), gy).astype(d.dtype, copy=False)
        if need_s:
            if self.sparse_grad:  # only at S's coordinates: never the dense n x m product
                idx = coalesce(st).indices
                vals = kernels.sampled_rowdot(idx, gy, d).astype(st.dtype, copy=False)
                gs = CooStorage(idx, vals, st.shape, True)
            else:
                gs = (gy @ d.T).astype(st.dtype, copy=False)
        return gs, gd

    def _graph_backward(self, gy, ops):
        """The same gradients as recorded Tensor ops (create_graph=True)."""
        from .tensor import mm  # noqa: PLC0415 - tensor.py imports this module

        s, d = self.inputs(ops)
        if s._data.dtype.kind == "c":
            s, d = s.conj(), d.conj()
        gs = gd = None
        if self.parents[1] is not None:  # S^T @ gy (sparse x dense or sparse x sparse)
            gd = mm(s.t(), gy, "mm", self.sparse_grad)
        if self.parents[0] is not None:
            if self.sparse_grad:  # (gy @ D^T) at S's coordinates: rows of gy times rows of D
                idx = coalesce(s._data).indices
                vals = (_rows(gy, idx[0]) * _rows(d, idx[1])).sum(-1)
                gs = _sparse(vals, idx, s.shape, True)
            elif gy.is_sparse or d.is_sparse:
                gs = mm(gy, d.t(), "mm")
            else:
                gs = gy @ d.t()
        return gs, gd


def _rows(x, rows):
    """x[rows] for a dense 2-d Tensor (recorded)."""
    return x[Tensor._from_data(rows)]


class SparseAddmm(Mm):
    """torch.sparse.mm(S, D), PyTorch's SparseAddmmBackward0: as `Mm`, but d/dS is sparse with
    S's coordinates, computed as sum_k gy[i, k] D[j, k] per stored (i, j).
    """

    sparse_grad = True
