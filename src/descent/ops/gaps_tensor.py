"""PyTorch's shape, indexing and tensor-object functions that descent lacked until 2026-12-04
(docs/torch_gaps_tensor.md).

Every public function defined here is a top-level `descent.<name>` when `__all__` names it, and
an entry of Tensor's ops table (descent/ops/__init__.py), which the methods of
`descent.tensor_gap_methods_tensor.TensorGapMethods2` call.

The functions are compositions of differentiable primitives (getitem, SetItem, scatter_reduce,
where), so their gradients, to any order, come from those pieces. The strided views and the
`*_copy` functions live in `gaps_tensor_strided.py`, the in-place forms in
`gaps_tensor_inplace.py`; both export their top-level names through this module's `__all__`.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import DtypeError
from ..grad_fn import show_pieces
from ..grad_mode import check_inference_saved, is_grad_enabled
from ..tensor import Tensor
from . import complex as _complex
from ._common import as_tensor, shape_arg
from .elementwise import FixedWhere
from .gaps_tensor_inplace import resize_as_
from .gaps_tensor_strided import (
    alias_copy,
    as_strided,
    as_strided_,
    as_strided_copy,
    as_strided_scatter,
    detach_copy,
    diagonal_copy,
    expand_copy,
    narrow_copy,
    nonzero_static,
    permute_copy,
    select_copy,
    slice_copy,
    split_copy,
    split_with_sizes_copy,
    squeeze_copy,
    t_copy,
    transpose_copy,
    unbind_copy,
    unfold_copy,
    unsqueeze_copy,
    view_as_complex_copy,
    view_as_real_copy,
    view_copy,
)
from .indexing import ScatterCopy, SetItem, _index_tensor, getitem
from .inplace import fill_
from .inplace import zero_ as _inplace_zero
from .reduce import sum as _sum
from .selection import index_put_
from .shape import broadcast_to, reshape, split, swapaxes, transpose
from .shape_index import _axis, _diag_index, movedim, scatter_reduce
from .untracked import computed

__all__: list[str] = [
    "adjoint", "alias_copy", "as_strided", "as_strided_", "as_strided_copy",
    "as_strided_scatter", "conj",
    "conj_physical", "conj_physical_", "detach", "detach_", "detach_copy", "diagflat",
    "diagonal_copy", "diagonal_scatter", "expand_copy",
    "fill", "fill_", "get_device", "imag", "index_copy", "index_put_", "index_reduce",
    "is_complex", "is_conj", "is_distributed", "is_inference", "is_neg", "is_nonzero",
    "is_same_size", "is_signed", "masked_scatter", "narrow_copy", "nonzero_static",
    "permute_copy", "put", "real", "resize_as_", "resolve_conj", "resolve_neg", "select",
    "select_copy", "select_scatter", "slice_copy", "slice_scatter", "split_copy",
    "split_with_sizes", "split_with_sizes_copy", "squeeze_copy", "swapdims", "t_copy",
    "transpose_copy", "typename", "unbind", "unbind_copy", "unfold_copy", "unsafe_chunk",
    "unsafe_split", "unsafe_split_with_sizes", "unsqueeze_copy", "view_as_complex_copy",
    "view_as_real_copy", "view_copy", "zero_",
]  # fmt: skip


def _dim(x: Tensor, dim, op: str) -> int:
    # torch accepts dims -1 and 0 on a 0-d tensor for most ops; the callers that need a real
    # dimension check x.ndim themselves.
    return _axis(x, dim, op)


# ---------------------------------------------------------------------------------------------
# Selecting and scattering back: select / slice / diagonal and their *_scatter inverses


def select(input, dim: int, index: int) -> Tensor:
    """input[..., index, ...] along `dim`: a view with one dimension fewer (torch.select);
    writes into it reach input, and its gradient is put back in place."""
    x = as_tensor(input)
    if x._sparse_layout:  # torch.select(sparse, dim, i): the sparse method
        return x.select(dim, index)
    if x.ndim == 0:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _dim(x, dim, "select")
    n = x.shape[d]
    i = int(index)
    if not -n <= i < n:
        raise IndexError(
            f"select(): index {i} out of range for tensor of size {tuple(x.shape)} at dimension {d}"
        )
    return getitem(x, (slice(None),) * d + (i % n,))


def _scatter(x: Tensor, src, idx, op: str, want: tuple, saved: bool = False) -> Tensor:
    """x with x[idx] replaced by src (SetItem: the gradient of the overwritten entries goes to
    src, the rest to x). `want` is the shape src must have, as torch checks it; `saved`: the
    index is a user's tensor that PyTorch's node saves (a second backward raises)."""
    src = as_tensor(src, x)
    if tuple(src.shape) != tuple(want):
        raise RuntimeError(
            f"{op}: expected src to have a size equal to the slice of self, {tuple(want)}, but "
            f"got {tuple(src.shape)} (self has shape {tuple(x.shape)})"
        )
    if src.dtype != x.dtype:
        raise RuntimeError(
            f"{op}: expected src to have the dtype of self, {x.dtype}, but got {src.dtype}; "
            "convert it first, e.g. src.to(x.dtype)"
        )
    basic = all(not hasattr(i, "dtype") for i in idx)
    # (saved: index_copy / put, whose PyTorch nodes save the index; select_scatter,
    # slice_scatter, diagonal_scatter save nothing)
    if saved:
        return SetItem.apply(x, src, idx=idx, basic=basic)
    name = "".join(w.capitalize() for w in op.split("_")) + "Backward0"  # SelectScatterBackward0
    return ScatterCopy.apply(x, src, idx=idx, basic=basic, torch_name=name)


def select_scatter(input, src, dim: int, index: int) -> Tensor:
    """A copy of input with `input.select(dim, index)` replaced by src (torch.select_scatter);
    differentiable in both."""
    x = as_tensor(input)
    view = select(x, dim, index)  # checks dim and index
    d = _dim(x, dim, "select_scatter")
    idx = (slice(None),) * d + (int(index) % x.shape[d],)
    return _scatter(x, src, idx, "select_scatter", tuple(view.shape))


def slice_scatter(input, src, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """A copy of input with `input[..., start:end:step, ...]` (along dim) replaced by src
    (torch.slice_scatter); differentiable in both."""
    x = as_tensor(input)
    if step is None:
        step = 1
    if step <= 0:
        raise RuntimeError(f"slice_scatter: slice step must be positive, got {step}")
    d = _dim(x, dim, "slice_scatter")
    idx = (slice(None),) * d + (slice(start, end, step),)
    want = np.empty(x.shape, dtype=bool)[idx].shape
    return _scatter(x, src, idx, "slice_scatter", want)


def diagonal_scatter(input, src, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """A copy of input with its diagonal (`input.diagonal(offset, dim1, dim2)`, the diagonal
    as the last dimension) replaced by src (torch.diagonal_scatter); differentiable in both."""
    x = as_tensor(input)
    d1, d2 = _dim(x, dim1, "diagonal_scatter"), _dim(x, dim2, "diagonal_scatter")  # IndexError
    if d1 == d2:
        raise RuntimeError(f"diagonal_scatter: dim1 and dim2 are the same dimension ({d1})")
    # Move the two dims last, where the diagonal's advanced index keeps its place: the result of
    # x[..., i, j] then has torch's layout (the diagonal as the last dimension).
    xm = movedim(x, (d1, d2), (-2, -1))  # (..., n1, n2)
    xp = backend.get_array_module(x._data)
    i, j = _diag_index(xp, xm.shape[-2], xm.shape[-1], int(offset))
    idx = (Ellipsis, i, j)
    out = _scatter(xm, src, idx, "diagonal_scatter", tuple(xm.shape[:-2]) + (len(i),))
    return movedim(out, (-2, -1), (d1, d2))


def diagflat(input, offset: int = 0) -> Tensor:
    """A square matrix with input's elements (flattened) on diagonal `offset`, zeros elsewhere
    (torch.diagflat); the gradient reads the diagonal back."""
    x = as_tensor(input)
    v = reshape(x, -1)
    n = v.shape[0] + abs(int(offset))
    xp = backend.get_array_module(x._data)
    i, j = _diag_index(xp, n, n, int(offset))
    zeros = Tensor._wrap(xp.zeros((n, n), dtype=x._data.dtype))
    # (PyTorch's diagflat is a diag_embed, which saves nothing)
    return ScatterCopy.apply(zeros, v, idx=(i, j), basic=False, torch_name="DiagEmbedBackward0")


# ---------------------------------------------------------------------------------------------
# Index copies and reductions along a dimension


def _index_along(x: Tensor, dim, index, op: str, check=None):
    """(d, idx, index array): the advanced index that names `index` along dim d of x.
    check(d, ix) runs the op's own checks before the bounds check (PyTorch's order)."""
    xp = backend.get_array_module(x._data)
    ix = _index_tensor(index, xp, op)
    if ix.ndim > 1:
        raise IndexError(f"{op}: index must be a vector (0-d or 1-d), got shape {ix.shape}")
    ix = ix.reshape(-1)
    d = _dim(x, dim, op) if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    if check is not None:
        check(d, ix)
    if op == "index_copy" and n and 0 in x.shape:
        # PyTorch checks the indices in its kernel's loop over x's slices: with a dimension
        # other than dim of size 0 there are none and no index is checked (one of size n
        # writes nothing: a stand-in in range keeps the scatter's shapes)
        ix = xp.clip(ix, 0, n - 1)
        return d, (slice(None),) * d + (ix,), ix
    # PyTorch's index_copy and index_reduce refuse negative indices (IndexError).
    if ix.size and (int(ix.max()) >= n or int(ix.min()) < 0):
        raise IndexError(
            f"{op}: index out of range: indices must be in [0, {n}) for dimension {d} of "
            f"size {n} (shape {tuple(x.shape)})"
        )
    return d, (slice(None),) * d + (ix,), ix


def _check_inference_index(index, x, source) -> None:
    """PyTorch saves the index for backward when x or source needs a gradient: an inference
    tensor there raises (grad_mode.check_inference_saved)."""
    check_inference_saved(index, x)
    check_inference_saved(index, source)


def index_copy(input, dim: int, index, source) -> Tensor:
    """A copy of input with input[..., index[k], ...] = source[..., k, ...] along dim
    (torch.index_copy); with repeated indices the last write wins (PyTorch leaves it
    unspecified). Differentiable in input (zero at the copied slots) and source."""
    x = as_tensor(input)
    _check_inference_index(index, x, source)
    src = as_tensor(source, x)
    if x.ndim == 0:  # a 0-d tensor is one slot along dim 0
        _index_along(x, dim, index, "index_copy", lambda d, ix: _index_copy_check(x, src, d, ix))
        out = index_copy(reshape(x, (1,)), dim, index, reshape(src, (-1,)))
        return reshape(out, ())
    d, idx, ix = _index_along(x, dim, index, "index_copy",
                              lambda d, ix: _index_copy_check(x, src, d, ix))  # fmt: skip
    want = list(x.shape)
    want[d] = ix.size
    return _scatter(x, source, idx, "index_copy", tuple(want), saved=True)


def _index_copy_check(x: Tensor, src: Tensor, d: int, ix) -> None:
    """index_copy's shape checks in PyTorch's order and classes (index_copy_meta: the number
    of dimensions and of indices are IndexErrors, the dtype and the slices RuntimeErrors)."""
    where = f"(self {tuple(x.shape)}, source {tuple(src.shape)}, index of {ix.size})"
    if src.ndim == 0 and ix.size != 1:
        raise IndexError(
            f"index_copy_(): When source is scalar, index should have one element (got "
            f"{ix.size}) {where}"
        )
    if src.ndim != x.ndim and src.ndim and x.ndim:
        raise IndexError(
            f"index_copy_(): When source and destination are not scalars, their "
            f"dimensionality must match. Source dimensionality ({src.ndim}), destination "
            f"dimensionality ({x.ndim}) {where}"
        )
    if src.dtype != x.dtype:
        raise RuntimeError(
            f"index_copy_(): self and source expected to have the same dtype, but got (self) "
            f"{x.dtype} and (source) {src.dtype} {where}; convert it first, e.g. src.to(x.dtype)"
        )
    xs, ss = list(x.shape), list(src.shape)
    if xs:
        del xs[d]
    if ss:
        del ss[d]
    if xs != ss:
        raise RuntimeError(
            f"index_copy_(): Source/destination tensor must have same slice shapes {where}: "
            f"the sizes other than dim {d} must match"
        )
    if src.ndim and ix.size != src.shape[d]:
        raise IndexError(
            f"index_copy_(): Number of indices ({ix.size}) should be equal to source.size(dim) "
            f"({src.shape[d]}) {where}"
        )


def index_reduce(input, dim: int, index, source, reduce: str, *, include_self: bool = True):
    """input with source's slices reduced into the slots `index` names along dim
    (torch.index_reduce: reduce is 'prod', 'mean', 'amax' or 'amin'); scatter_reduce with the
    index spread along the other dimensions, so its gradients are scatter_reduce's."""
    if reduce not in ("prod", "mean", "amax", "amin"):
        raise RuntimeError(
            f"index_reduce: reduce argument must be one of 'prod', 'mean', 'amax', 'amin', got "
            f"{reduce!r}"
        )
    x = as_tensor(input)
    src = as_tensor(source, x)
    if x._data.dtype == np.bool_ and not include_self:  # (before the index checks, as there)
        raise DtypeError(
            f"index_reduce: include_self=False is not implemented for bool tensors (input "
            f"{tuple(x.shape)}), as in PyTorch (index_reduce_func_exclude_input_init); "
            "convert the tensors first, e.g. x.int()"
        )
    d, _, ix = _index_along(x, dim, index, "index_reduce")
    if src.ndim != x.ndim or (x.ndim and src.shape[d] != ix.size):
        raise RuntimeError(
            f"index_reduce: source {tuple(src.shape)} must have input's dimensions "
            f"{tuple(x.shape)} with index's length {ix.size} along dim {d}"
        )
    if x.ndim == 0:
        return scatter_reduce(x, 0, Tensor._wrap(ix.reshape(())), src, reduce,
                              include_self=include_self)  # fmt: skip
    shape = [1] * x.ndim
    shape[d] = ix.size
    # The index per source element, from the index's values through untracked.computed:
    # descent.compile replays it on each call's index (it was frozen when two calls agreed).
    it = index if isinstance(index, Tensor) and index._data.ndim <= 1 else Tensor._wrap(ix)
    full = computed(_spread_index, (it,), (tuple(shape), tuple(src.shape), ix.dtype))
    if not ix.size:  # nothing reduced: x's copy (a bool x too: scatter_reduce's mean of
        # bools raises for an empty index, index_reduce's does not); source gets PyTorch's zero
        # gradient (it was None): out - 0 keeps x's values and their zero signs
        out = x.clone()
        return out - src.sum() * 0 if src.requires_grad and src._data.dtype.kind in "fcV" else out
    out = scatter_reduce(x, d, full, src, reduce, include_self=include_self)
    if out.dtype != x.dtype and x._data.dtype.kind in "iub":
        # An integer mean is floor-divided, as PyTorch (-5 / 2 -> -3); no gradient on integers.
        out = computed(_floor_as, (out,), (x._data.dtype,))
    return out


def _spread_index(ix, shape, src_shape, dtype):
    """index_reduce's index along one dim spread over source's shape (untracked.computed)."""
    xp = backend.get_array_module(ix)
    return xp.broadcast_to(ix.astype(dtype).reshape(shape), src_shape).copy()


def _floor_as(a, dtype):
    return backend.get_array_module(a).floor(a).astype(dtype)


def masked_scatter(input, mask, source) -> Tensor:
    """input with the entries where mask is True replaced, in order, by source's first elements
    (torch.masked_scatter); input and mask broadcast together, as PyTorch's out-of-place form
    does; differentiable in input and source (a broadcast input's gradient is summed back)."""
    x = as_tensor(input)
    m = as_tensor(mask)
    if m._data.dtype != np.bool_:
        raise RuntimeError(f"masked_scatter: expected a bool mask, got {m.dtype}")
    try:
        # The mask's own array where it has x's shape, else descent's broadcast_to (an op the
        # recorder keeps): NumPy's broadcast_to view of a transposed (F-ordered) mask was
        # frozen by descent.compile's recorder as a constant (session 19's fuzzer:
        # masked_scatter(x.t() > 0, ...) and masked_scatter((x.t() > 0)[:1], ...) wrong from
        # the third call).
        if m._data.shape != tuple(x.shape):
            if np.broadcast_shapes(tuple(m.shape), tuple(x.shape)) != tuple(x.shape):
                raise ValueError  # (also raised there when they do not broadcast)
            m = broadcast_to(m, tuple(x.shape))
        mb = m._data
    except ValueError:
        # The rare case: the mask has more (or longer) dimensions than input; PyTorch expands
        # input to the common shape (a recorded broadcast, so its gradient is summed back).
        try:
            shape = np.broadcast_shapes(tuple(m.shape), tuple(x.shape))
        except ValueError:
            raise RuntimeError(
                f"masked_scatter: mask of shape {tuple(m.shape)} does not broadcast with "
                f"input's {tuple(x.shape)}"
            ) from None
        x = broadcast_to(x, shape)
        m = broadcast_to(m, shape)
        mb = m._data
    src = as_tensor(source, x)
    if src.dtype != x.dtype:
        raise RuntimeError(
            f"masked_scatter: expected source to have input's dtype {x.dtype}, got {src.dtype}"
        )
    if not (is_grad_enabled() and (x._rg or src._rg)):
        # Nothing to differentiate: one kernel on the arrays, through untracked.computed, so
        # descent.compile recomputes the count and the places from each call's mask (a
        # replay of the recorded positions and source length froze them)
        if m._data.shape != x._data.shape:  # (the rare case above: mb's shape is x's)
            m = broadcast_to(m, tuple(x.shape))
        return computed(_masked_scatter_kernel, (x, m, src), ())
    # the mask is the op's parameter: a replay binds each call's (recorder.Forward's binds)
    return MaskedScatter.apply(x, src, mask=mb)


class MaskedScatter(Function):
    """y = x with y[mask] = src.flatten()[:k] (k = the count of Trues): the gradient to x is
    gy where mask is False (0 where it is set), to src gy[mask] in its first k places and 0
    after (SetItem's and the slice's rules, on the same arrays: eager's values). The mask (x's
    shape) is a parameter computed each call, so descent.compile replays the count and the
    places of each call's mask. Saves nothing but the mask (PyTorch's MaskedScatterBackward0)."""

    __slots__ = ("mask",)
    saves_params = True  # (the mask: a second backward without retain_graph raises, as there)

    def forward(self, x, src):
        k = _masked_count(self.mask, src.size)
        out = x.copy()  # never x itself: x's old value may be saved by another node
        out[self.mask] = src.reshape(-1)[:k]
        return out

    def backward(self, gy, ops):
        p = self.parents
        mask = self.mask
        gx = gsrc = None
        if p[0] is not None:
            arr = gy._data if ops.is_graph else gy
            keep = (~mask).astype(arr.dtype)  # (SetItem's 0/1 mask: the same products)
            gx = gy * (Tensor._wrap(keep) if ops.is_graph else keep)
        if p[1] is not None:
            shape = self.in_shapes[1]
            n = int(np.prod(shape, dtype=np.int64))
            gv = gy[Tensor._wrap(mask)] if ops.is_graph else gy[mask]  # (k,) in C order
            k = int(mask.sum())
            gsrc = ops.index_grad(gv, (n,), (slice(0, k, None),), True).reshape(shape)
        return gx, gsrc


def _masked_count(mb, n: int) -> int:
    """The number of places mask selects, checked against the source's n elements."""
    k = int(mb.sum())
    if n < k:
        raise RuntimeError(
            f"masked_scatter: source has {n} elements but the mask selects {k}; "
            "give a source with at least as many elements"
        )
    return k


def _masked_scatter_kernel(x, mb, src):
    """masked_scatter on arrays (mb of x's shape): x with its masked places taken, in order,
    by src's first elements (SetItem's forward: the same copies)."""
    k = _masked_count(mb, src.size)
    if x.ndim == 0:
        return src.reshape(-1)[:1].reshape(()).copy() if k else x.copy()
    out = x.copy()
    out[mb] = src.reshape(-1)[:k]
    return out


def put(input, index, source, accumulate: bool = False) -> Tensor:
    """A copy of input with input.flatten()[index] = source (or += with accumulate=True)
    (torch.put); differentiable in input and source."""
    x = as_tensor(input)
    _check_inference_index(index, x, source)
    xp = backend.get_array_module(x._data)
    ix = _index_tensor(index, xp, "put")  # (checks the dtype)
    n = x.numel()
    # The positions are data computed from the index's values: `computed` shows
    # descent.compile how (ops/untracked.py); the range check runs in the kernel, every call
    it = computed(_put_index, (index if isinstance(index, Tensor) else Tensor._wrap(ix),),
                  (n, tuple(x.shape)))  # fmt: skip
    ix = it._data
    src = reshape(as_tensor(source, x), -1)
    if src.shape[0] != ix.size:
        raise RuntimeError(
            f"put: source and index must have the same number of elements, got {src.shape[0]} "
            f"and {ix.size}"
        )
    flat = reshape(x, -1)
    if accumulate:
        from .indexing import index_add

        out = index_add(flat, 0, it, src)
    else:
        out = _scatter(flat, src, (ix,), "put", (ix.size,), saved=True)
    return reshape(out, tuple(x.shape))


def _put_index(index, n: int, shape: tuple):
    """put's flat positions: the index as int64, checked, negatives counted from the end."""
    ix = index.astype(np.int64, copy=False).reshape(-1)
    if ix.size and (int(ix.max()) >= n or int(ix.min()) < -n):
        raise IndexError(
            f"put: index out of range: indices must be in [{-n}, {n}) for a tensor of "
            f"{n} elements (shape {shape})"
        )
    return ix % max(n, 1)


# ---------------------------------------------------------------------------------------------
# Shapes: aliases, splits and sums


def swapdims(input, dim0: int, dim1: int) -> Tensor:
    """torch.swapdims: the alias of transpose(dim0, dim1)."""
    return swapaxes(as_tensor(input), dim0, dim1)


def adjoint(input) -> Tensor:
    """The conjugate transpose of the last two dimensions (torch.adjoint): a view for real
    tensors (the transpose), a conjugated copy for complex ones."""
    x = as_tensor(input)
    if x.ndim == 0:  # PyTorch: x.conj(), with a deprecation warning
        _warn_0d("adjoint()")
        return _conj_if_complex(x)
    if x.ndim < 2:
        raise RuntimeError(
            "tensor.adjoint() is only supported on matrices or batches of matrices. Got "
            f"{x.ndim}-D tensor."
        )
    return _conj_if_complex(swapaxes(x, -2, -1))


def _warn_0d(what: str) -> None:
    """PyTorch's deprecation warning of a conjugate transpose of a 0-d tensor."""
    import warnings  # noqa: PLC0415

    warnings.warn(
        f"{what} is deprecated on 0-D tensors. Consider using x.conj().", UserWarning, stacklevel=3
    )


def _conj_if_complex(x) -> Tensor:
    """conj(x) for a complex x (a copy: descent has no lazy conjugate bit, so unlike PyTorch's
    x.mH it is not a view), x itself for a real one."""
    return _complex.conj(x) if x._data.dtype.kind == "c" else x


def matrix_h(input) -> Tensor:
    """x.H: the conjugate transpose of a matrix (0-d and 2-d tensors; PyTorch's rule)."""
    x = as_tensor(input)
    if x.ndim == 0:  # PyTorch: x.conj() (with a deprecation warning, not repeated here)
        return _conj_if_complex(x)
    if x.ndim != 2:
        raise RuntimeError(
            f"tensor.H is only supported on matrices (2-D tensors). Got {x.ndim}-D tensor."
        )
    return _conj_if_complex(transpose(x))


def matrix_mh(input) -> Tensor:
    """x.mH: the conjugate transpose of the last two dimensions (at least 2-d)."""
    x = as_tensor(input)
    if x.ndim == 0:  # PyTorch: x.conj(), with a deprecation warning
        _warn_0d("Tensor.mH")
        return _conj_if_complex(x)
    if x.ndim < 2:
        raise RuntimeError(
            "tensor.mH is only supported on matrices or batches of matrices. Got "
            f"{x.ndim}-D tensor."
        )
    return _conj_if_complex(swapaxes(x, -2, -1))


def unbind(input, dim: int = 0) -> tuple:
    """The slices along dim, as a tuple of views (torch.unbind)."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise IndexError("unbind: dimension specified as 0 but tensor has no dimensions")
    d = _dim(x, dim, "unbind")
    out = tuple(getitem(x, (slice(None),) * d + (i,)) for i in range(x.shape[d]))
    for k, piece in enumerate(out):  # see ops/shape.split
        if getattr(piece, "_view_base", None) is not None:
            piece._multi_output = ("unbind", k)
    show_pieces(out, "UnbindBackward0", x)  # (PyTorch's one node for the pieces)
    return out


def split_with_sizes(input, split_sizes, dim: int = 0) -> tuple:
    """Pieces of input along dim with the given sizes, which must add up to its size there
    (torch.split_with_sizes); each piece is a view."""
    x = as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("split_with_sizes: expected at least a 1-dimensional tensor")
    d = _dim(x, dim, "split_with_sizes")
    sizes = [int(s) for s in split_sizes]
    if any(s < 0 for s in sizes):
        raise RuntimeError(f"split_with_sizes expects split_sizes have only non-negative "
                           f"entries, but got split_sizes={sizes}")  # fmt: skip
    if sum(sizes) != x.shape[d]:
        raise RuntimeError(
            f"split_with_sizes expects split_sizes to sum exactly to {x.shape[d]} (input "
            f"tensor's size at dimension {d}), but got split_sizes={sizes}"
        )
    return split(x, sizes, d)


def _pieces(pieces: tuple, name: str, x) -> tuple:
    show_pieces(pieces, name, x)
    return pieces


def unsafe_split(input, split_size, dim: int = 0) -> tuple:
    """torch.unsafe_split: split (descent's pieces are safe views; nothing is unsafe here)."""
    x = as_tensor(input)
    return _pieces(split(x, split_size, dim), "UnsafeSplitBackward0", x)


def unsafe_split_with_sizes(input, split_sizes, dim: int = 0) -> tuple:
    """torch.unsafe_split_with_sizes: split_with_sizes."""
    x = as_tensor(input)
    return _pieces(split_with_sizes(x, split_sizes, dim), "UnsafeSplitWithSizesBackward0", x)


def unsafe_chunk(input, chunks: int, dim: int = 0) -> tuple:
    """torch.unsafe_chunk: chunk."""
    from .shape import chunk

    x = as_tensor(input)
    return _pieces(chunk(x, chunks, dim), "UnsafeSplitBackward0", x)


def sum_to_size(input, *size) -> Tensor:
    """input summed to `size`, which it must expand to (Tensor.sum_to_size): the dimensions
    that `size` has as 1 are summed with keepdim, the extra leading ones summed away."""
    x = as_tensor(input)
    if not size:  # PyTorch's binding: sum_to_size(()) is the full sum, no argument a TypeError
        raise TypeError('sum_to_size() missing 1 required positional arguments: "size"')
    size = tuple(shape_arg(size))
    lead = x.ndim - len(size)
    ok = lead >= 0 and all(s == n or s == 1 for s, n in zip(size, x.shape[lead:]))
    if not ok:
        raise RuntimeError(
            f"sum_to_size: size {list(size)} is not expandable to size {list(x.shape)}"
        )
    if not size:  # PyTorch's sum_to: an empty size is the full sum (bool -> int64), 0-d too
        return _sum(x)
    out = _sum(x, tuple(range(lead))) if lead else x
    axes = tuple(i for i, (s, n) in enumerate(zip(size, out.shape)) if s == 1 and n != 1)
    return _sum(out, axes, keepdims=True) if axes else out


# ---------------------------------------------------------------------------------------------
# Real tensors seen as complex ones, and tensor facts


def conj(input) -> Tensor:
    """torch.conj: the complex conjugate (a copy: descent has no lazy conjugate bit); a real
    tensor is its own conjugate (returned as is, as PyTorch does)."""
    return _complex.conj(input)


def conj_physical(input) -> Tensor:
    """torch.conj_physical: the conjugate; the input itself for a real tensor."""
    return _complex.conj(input)


def conj_physical_(input) -> Tensor:
    """torch.conj_physical_: conjugates a complex tensor in place (unrecorded, as x.data's
    changes); nothing to change in a real tensor. Returns it."""
    x = as_tensor(input)
    if x._data.dtype.kind == "c":
        backend.get_array_module(x._data).conjugate(x._data, out=x._data)
        x._version += 1
    return x


def resolve_conj(input) -> Tensor:
    """torch.resolve_conj: the input itself (descent has no lazy conjugate bit)."""
    return as_tensor(input)


def resolve_neg(input) -> Tensor:
    """torch.resolve_neg: the input itself (descent has no lazy negative bit)."""
    return as_tensor(input)


def real(input) -> Tensor:
    """torch.real: the real parts of a complex tensor (a view); a real tensor itself."""
    return _complex.real(input)


def imag(input) -> Tensor:
    """torch.imag: the imaginary parts of a complex tensor (a view); a real tensor has none
    (RuntimeError, as PyTorch)."""
    return _complex.imag(input)


def is_complex(input) -> bool:
    """True for complex64 / complex128 tensors."""
    return as_tensor(input)._data.dtype.kind == "c"


def is_conj(input) -> bool:
    """False: descent has no lazy conjugate bit."""
    as_tensor(input)
    return False


def is_neg(input) -> bool:
    """False: descent has no lazy negative bit."""
    as_tensor(input)
    return False


def is_inference(input) -> bool:
    """True for a tensor made under inference_mode, a view of one, or its detach() / .data."""
    return bool(as_tensor(input)._inference)


def is_distributed(input) -> bool:
    """False: descent's tensors are never distributed objects (torch.is_distributed)."""
    as_tensor(input)
    return False


def is_signed(input) -> bool:
    """True for floating and signed integer dtypes, False for unsigned integers, bool and
    float8_e8m0fnu (the dtype's own `is_signed`)."""
    return as_tensor(input).dtype.is_signed


def is_same_size(input, other) -> bool:
    """input.shape == other.shape."""
    return tuple(as_tensor(input).shape) == tuple(as_tensor(other).shape)


def is_nonzero(input) -> bool:
    """The truth of a one-element tensor (torch.is_nonzero); RuntimeError otherwise."""
    x = as_tensor(input)
    n = x.numel()
    if n == 0:
        raise RuntimeError("Boolean value of Tensor with no values is ambiguous")
    if n > 1:
        raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
    return bool(x._data.reshape(-1)[0])


def get_device(input) -> int:
    """-1 for a CPU tensor, the GPU index for a CUDA one (torch.get_device)."""
    return as_tensor(input).get_device()


def typename(obj) -> str:
    """The type name of obj: a tensor's legacy type ('descent.FloatTensor', PyTorch's
    'torch.FloatTensor'), otherwise the class's qualified name (torch.typename)."""
    if isinstance(obj, Tensor):
        return obj.type()
    module = getattr(type(obj), "__module__", "builtins")
    name = type(obj).__qualname__
    return name if module in ("builtins", None) else f"{module}.{name}"


def detach(input) -> Tensor:
    """torch.detach: input.detach()."""
    return as_tensor(input).detach()


def detach_(input) -> Tensor:
    """torch.detach_: input.detach_()."""
    return as_tensor(input).detach_()


def fill(input, value) -> Tensor:
    """A new tensor of input's shape and dtype filled with value (torch.fill); a tensor value
    (0-d) gets the gradient of every element, input a zero one."""
    x = as_tensor(input)
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"fill only supports 0-dimension value tensor but got tensor with {value.ndim} "
                "dimensions."
            )
        v = value if value.dtype == x.dtype else value.to(x.dtype)
    else:
        xp = backend.get_array_module(x._data)
        v = Tensor._wrap(xp.asarray(value).astype(x._data.dtype))
    ones = backend.get_array_module(x._data).ones(x.shape, dtype=bool)
    # (a constant condition: PyTorch's FillBackward saves nothing, a second backward runs)
    name = "FillBackward1" if isinstance(value, Tensor) else "FillBackward0"
    return FixedWhere.apply(v, x, cond=ones, torch_name=name)


def zero_(input) -> Tensor:
    """torch.zero_: input.zero_() (in place; returns input)."""
    return _inplace_zero(as_tensor(input))


def is_set_to(x, other) -> bool:
    """True when x and other view the same memory from the same first element with the same
    shape, strides and dtype (Tensor.is_set_to)."""
    from .gaps_tensor_strided import data_ptr_of

    x, other = as_tensor(x), as_tensor(other)
    a, b = x._data, other._data
    same_view = a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
    return same_view and type(a) is type(b) and data_ptr_of(x) == data_ptr_of(other)
