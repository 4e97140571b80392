"""torch.cat / torch.stack (and hstack / vstack through them) of sparse COO tensors.

PyTorch's forwards: the result's entries are the inputs' stored entries one input after the
other (not coalesced, duplicates kept), at coordinates shifted along `dim`; along a dense dim
of hybrid tensors each input's values are placed in their slice of the wider dense block
(zeros elsewhere). The result is never marked coalesced, as PyTorch's is not.

The gradient of each input is sparse with that input's own pattern: the output gradient read
at the input's entries (through `_gather`, so it is recorded under create_graph and can be
differentiated again). PyTorch's CatBackward0 / StackBackward0 raise on sparse inputs
("Could not run 'aten::as_strided' with arguments from the 'SparseCPU' backend"); descent's
gradient is checked by finite differences.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import DescentError
from ..ops._common import promote_types
from .kernels import coalesce
from .ops import _gather, _sparse, _SparseFunction
from .storage import CooStorage


class Cat(_SparseFunction):
    """Sparse inputs joined along `dim` (CatBackward0); `new=True` joins along a new dim
    (stack). d/dx_k: the output gradient at x_k's entries, a sparse tensor of x_k's pattern."""

    __slots__ = ("dim", "new", "placed")
    differentiable_backward = True

    def forward(self, *sts):
        xp = backend.get_array_module(sts[0].values)
        dim, new = self.dim, self.new
        first = sts[0]
        shape = list(first.shape)
        if new:
            shape.insert(dim, 0)
        sd = first.sparse_dim + (1 if new and dim <= first.sparse_dim else 0)
        sizes = [1 if new else st.shape[dim] for st in sts]
        offsets = np.cumsum([0, *sizes])
        shape[dim] = int(offsets[-1])

        def place(idx, k):
            """Input k's coordinates in the output."""
            if dim >= sd:  # a dense dim: the entries keep their coordinates
                return idx
            if new:  # a new sparse dim: the entry's coordinate there is k
                row = xp.full((1, idx.shape[1]), k, dtype=np.int64)
                return xp.concatenate([idx[:dim], row, idx[dim:]])
            out = idx.copy()
            out[dim] += int(offsets[k])
            return out

        # per input, for the backward: its own (coalesced: one entry per coordinate, as the
        # gradient must be) coordinates, where they sit in the output, and the slice of the
        # output's dense block that holds its values (a dense dim) or None
        self.placed = placed = []
        blocks = []
        d = dim - sd + 1  # the axis of `values` along a dense dim (axis 0 counts entries)
        for k, st in enumerate(sts):
            src = coalesce(st).indices
            sl = None
            v = st.values
            if dim >= sd:
                if new:
                    v = xp.expand_dims(v, d)
                vshape = list(v.shape)
                vshape[d] = shape[dim]
                wide = xp.zeros(vshape, dtype=v.dtype)
                sl = (slice(None),) * d + (slice(int(offsets[k]), int(offsets[k + 1])),)
                wide[sl] = v
                v = wide
            blocks.append(v)
            placed.append((place(src, k), sl, src))
        indices = xp.concatenate([place(st.indices, k) for k, st in enumerate(sts)], axis=1)
        return CooStorage(indices, xp.concatenate(blocks), tuple(shape), False)

    def backward(self, gy, ops):
        grads = []
        for (idx, sl, src), in_shape in zip(self.placed, self.in_shapes, strict=False):
            g = _gather(gy, idx)  # (nnz_k, *dense dims of the output)
            if sl is not None:
                g = g[sl]
                if self.new:  # stacked along a dense dim: drop it
                    g = g.reshape(g.shape[:1] + tuple(in_shape[src.shape[0] :]))
            grads.append(_sparse(g, src, in_shape, True))
        return tuple(grads)


class Stack(Cat):
    """torch.stack of sparse tensors (StackBackward0)."""


def _check(tensors, op: str, dim: int, new: bool):
    for k, t in enumerate(tensors):
        if not t._sparse_layout:
            raise RuntimeError(f"Concatenating sparse tensors, but a dense tensor was found at "
                               f"position {k}.")  # fmt: skip
        if t.layout.name != "sparse_coo":
            raise DescentError(f"{op}: sparse {t.layout.name} tensors cannot be joined; "
                               "convert them with .to_sparse() (COO) first")  # fmt: skip
    first = tensors[0]._data
    n = first.ndim + (1 if new else 0)
    if not -n <= dim < n:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
                         f"but got {dim})")  # fmt: skip
    dim %= n
    for k, t in enumerate(tensors):
        st = t._data
        if new and tuple(st.shape) != tuple(first.shape):
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(first.shape)} at entry 0 and {list(st.shape)} at entry "
                               f"{k}")  # fmt: skip
        if not new and (st.ndim != first.ndim or any(
                a != b for i, (a, b) in enumerate(zip(st.shape, first.shape, strict=False))
                if i != dim)):  # fmt: skip
            raise RuntimeError(f"All tensors must have the same shape: {list(first.shape)} "
                               f"(except in the concatenating dimension), but found shape: "
                               f"{list(st.shape)} at position {k}.")  # fmt: skip
        if st.sparse_dim != first.sparse_dim:
            raise RuntimeError(f"{op}: sparse tensors with {first.sparse_dim} and "
                               f"{st.sparse_dim} sparse dims cannot be joined (PyTorch: "
                               "the sparse_dim must match)")  # fmt: skip
    return dim


def cat(tensors, dim: int = 0):
    """torch.cat of sparse COO tensors (called by descent.cat when an input is sparse)."""
    return _join(tensors, dim, False, "cat")


def stack(tensors, dim: int = 0):
    """torch.stack of sparse COO tensors."""
    return _join(tensors, dim, True, "stack")


def _join(tensors, dim, new, op):
    tensors = list(tensors)
    dim = _check(tensors, op, int(dim), new)
    dt = tensors[0]._data.dtype
    for t in tensors[1:]:
        dt = promote_types(dt, t._data.dtype)
    tensors = [t if t._data.dtype == dt else t.to(dt) for t in tensors]
    fn = Stack if new else Cat
    return fn.apply(*tensors, dim=dim, new=new)
