"""The differentiable sparse ops: construction from values, to_dense / to_sparse, coalesce,
values(), transposition, sparse sums and the sparse x dense product.

Each is a `Function` as in `descent.ops`: forward on raw storages and arrays, backward with one
gradient per input. The gradient of a sparse tensor is a `CooStorage` (a sparse gradient, as
PyTorch's) where PyTorch's is sparse, or a dense array where PyTorch's is dense (`torch.mm`'s
gradient for its sparse operand); the ops that consume a sparse tensor's gradient accept both.
Their backward passes are array kernels (`kernels.py`): `create_graph=True` through them raises
(`differentiable_backward = False`), naming the op.
"""

from __future__ import annotations

from .. import backend
from ..autograd import Function
from . import kernels
from .kernels import coalesce, gather, transpose_storage
from .storage import CooStorage


class _SparseFunction(Function):
    """Base of the sparse ops: array-kernel backward passes (no double backward)."""

    differentiable_backward = False


class SparseCooTensorWithDimsAndTensors(_SparseFunction):
    """sparse_coo_tensor(indices, values): d/dvalues[k] = the gradient's entry at indices[:, k]
    (each duplicate coordinate gets the whole entry: the tensor is their sum). PyTorch's name."""

    __slots__ = ("indices", "shape", "coalesced")

    def forward(self, values):
        return CooStorage(self.indices, values, self.shape, self.coalesced)

    def backward(self, gy, ops):
        return gather(gy, self.indices)


class ToDense(_SparseFunction):
    """to_dense(): the gradient is the dense gradient at the input's (coalesced) coordinates,
    a sparse tensor with its pattern (PyTorch's grad.sparse_mask(input))."""

    __slots__ = ("pattern",)  # the input's coalesced coordinates, kept for backward

    def forward(self, st):
        self.pattern = coalesce(st).indices if not st.coalesced else st.indices
        return kernels.to_dense(st)

    def backward(self, gy, ops):
        idx = self.pattern
        return CooStorage(idx, gather(gy, idx), self.in_shapes[0], True)


class ToSparse(_SparseFunction):
    """to_sparse(sparse_dim): the gradient of the dense input is the gradient made dense."""

    __slots__ = ("sparse_dim",)

    def forward(self, x):
        return kernels.from_dense(x, self.sparse_dim)

    def backward(self, gy, ops):
        return kernels.to_dense(gy) if isinstance(gy, CooStorage) else gy


class Coalesce(_SparseFunction):
    """coalesce() is the identity as a function: the gradient passes unchanged."""

    def forward(self, st):
        return coalesce(st)

    def backward(self, gy, ops):
        return gy


class Values(_SparseFunction):
    """values(): d/dS = a sparse tensor with S's coordinates and the values' gradient."""

    __slots__ = ("indices", "coalesced")  # S's coordinates, kept for backward

    def forward(self, st):
        self.indices, self.coalesced = st.indices, st.coalesced
        return st.values

    def backward(self, gy, ops):
        return CooStorage(self.indices, gy, self.in_shapes[0], self.coalesced)


class Transpose(_SparseFunction):
    """Swapping two sparse dims: the gradient is swapped back."""

    __slots__ = ("dim0", "dim1")

    def forward(self, st):
        return transpose_storage(st, self.dim0, self.dim1)

    def backward(self, gy, ops):
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
        # lives on the input's coalesced pattern.
        st = coalesce(self.inputs(ops)[0])
        xp = backend.get_array_module(st.values)
        sd = st.sparse_dim
        keep = [d for d in range(sd) if d not in self.dims]
        if keep:
            g = gather(gy, st.indices[keep])  # (nnz, *kept dense dims)
        else:
            g = xp.broadcast_to(gy, (st.nnz,) + tuple(gy.shape))
        for d in self.dims:  # the reduced dense dims come back as broadcast axes
            if d >= sd:
                g = xp.expand_dims(g, d - sd + 1)
        g = xp.broadcast_to(g, st.values.shape).astype(st.values.dtype)
        return CooStorage(st.indices, g, st.shape, True)


class Mm(_SparseFunction):
    """S @ D for a 2-d sparse S and a dense D: d/dD = S^T @ gy; d/dS = gy @ D^T, dense, as
    PyTorch's mm/matmul/@ give (MmBackward0)."""

    save_inputs = True  # both: each gradient is a product with the other operand
    sparse_grad = False

    def forward(self, st, d):
        return kernels.spmm(st, d)

    def backward(self, gy, ops):
        st, d = self.inputs(ops)
        if st.dtype.kind == "c":  # PyTorch's complex convention: products with the conjugates
            st, d = st.conj(), d.conj()
        gs = gd = None
        if self.parents[1] is not None:
            gd = kernels.spmm(transpose_storage(st, 0, 1), gy).astype(d.dtype, copy=False)
        if self.parents[0] is not None:
            if self.sparse_grad:  # only at S's coordinates: never the dense n x m product
                idx = coalesce(st).indices
                vals = kernels.sampled_rowdot(idx, gy, d).astype(st.dtype, copy=False)
                gs = CooStorage(idx, vals, st.shape, True)
            else:
                gs = (gy @ d.T).astype(st.dtype, copy=False)
        return gs, gd


class SparseAddmm(Mm):
    """torch.sparse.mm(S, D), PyTorch's SparseAddmmBackward0: as `Mm`, but d/dS is sparse with
    S's coordinates, computed as sum_k gy[i, k] D[j, k] per stored (i, j).
    """

    sparse_grad = True
