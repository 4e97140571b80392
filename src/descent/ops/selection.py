"""Ordering and selection with PyTorch's names: sort, argsort, topk, nonzero, masked_select,
scatter / scatter_, index_put / index_put_.

All are compositions of differentiable primitives (`take_along_axis`, `getitem`,
`scatter_add`, `index_add`, `where`), so their gradients (and higher-order gradients) come from
those: sort/topk values send their gradient to the selected positions, scatter's source gets
the gradient of the slots it wrote, and the overwritten slots of the input get none.

Duplicate indices: where PyTorch leaves the result unspecified (scatter / index_put without
accumulation, several writes to one slot), the last write wins, as on PyTorch's CPU, and only
that element gets the slot's gradient; `scatter_add`, `index_put(accumulate=True)` and
`scatter(reduce='add')` sum as PyTorch does.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from ..array_backward import along_axis_index
from ..autograd import Function
from ..autograd import _bump_family as bump_family
from ..autograd import _overwrote_saved_output as overwrote_saved_output
from ..errors import DescentError
from ..grad_fn_names import mark_masked_select
from ..grad_mode import check_inference_saved, is_grad_enabled
from ..tensor import Tensor
from ._common import as_tensor, fill_int, refuse_kinds, return_type
from .elementwise import nonzero_positions, saved_clone, where
from .indexing import (
    IndexAdd,
    SelectedValues,
    SetItem,
    check_index_bounds,
    check_index_fits,
    check_src_dtype,
    index_add,
    refuse_uint8_fill,
    scatter_add,
    setitem,
    warn_uint8_index,
)
from .shape import broadcast_to, reshape
from .shape_index import empty_scatter, scatter_reduce
from .tie_order import fix_sort, fix_topk, topk_order, torch_sort_order
from .untracked import computed, derived, derived_observers, guarded
from .view_rules import overlaps, writable_alias
from .view_write import redo_assign, write_base, written
from .view_write import write as write_view

# torch.return_types.sort / .topk: `values, indices = x.sort()`.
SortResult = return_type("sort", ["values", "indices"])
TopkResult = return_type("topk", ["values", "indices"])


def _dim(x: Tensor, dim: int, op: str) -> int:
    nd = max(x.ndim, 1)
    if not -nd <= int(dim) < nd:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but "
            f"got {dim})"
        )
    return int(dim) % nd


def _order(x: Tensor, dim: int, descending: bool):
    """Stable argsort along dim with PyTorch's NaN rule (NaN is the largest value)."""
    return _order_of(x._data, dim, descending)


def _order_of(a, dim: int, descending: bool):
    """`_order` of an array."""
    xp = backend.get_array_module(a)
    if a.dtype == np.bool_:
        a = a.astype(np.int8)
    if descending:
        if a.dtype.kind in "fV":
            # -a sorts descending; NaN must come first, so it becomes -inf (stable among NaNs),
            # and before +inf (also -inf as a key): then a second key puts the NaNs first.
            nan = xp.isnan(a)
            key = xp.where(nan, -xp.inf, -a)
            if nan.any():
                return xp.lexsort((~nan, key), axis=dim).astype(np.int64)
        else:  # ~a = -a - 1 reverses the order of any integer without overflow (-(-2^63) would)
            key = ~a
    else:
        key = a
    return xp.argsort(key, axis=dim, kind="stable").astype(np.int64)


def _layout_of(a, idx):
    """idx in a's memory layout (PyTorch allocates sort's outputs empty_like(self)): a copy
    only where the argsort or the tie replay left another one (a transposed input, a tied
    row sorted along a leading dim)."""
    if type(a) is not np.ndarray or type(idx) is not np.ndarray:
        return idx
    out = np.empty_like(a, dtype=idx.dtype)  # order='K'
    if out.strides == idx.strides:
        return idx  # (allocated, never written: no pages touched)
    out[...] = idx
    return out


def _zero_index(a):
    """sort's index of a 0-d tensor: 0, int64 (untracked.computed's kernel)."""
    return backend.get_array_module(a).zeros((), np.int64)


def sort(x, dim: int = -1, descending: bool = False, stable: bool = False, *,
         axis: int | None = None) -> SortResult:  # fmt: skip
    """Values sorted along `dim` and their indices (torch.sort). `axis` is NumPy's name for
    `dim`, which PyTorch accepts too (`torch.argsort(x, axis=1)`). stable=True keeps equal
    values in their order; stable=False (the default) orders them as PyTorch's std::sort does
    (tie_order.fix_sort), which differs once a row of more than 16 holds ties."""
    if axis is not None:
        dim = axis
    x = as_tensor(x)
    refuse_kinds("sort", x, "c", "Sort does not support complex dtypes on CPU")  # (PyTorch's)
    if x.ndim == 0:
        _dim(x, dim, "sort")
        # (SortBackward0 saves the index 0 even here: a second backward raises)
        # The index 0 through untracked.computed: a constant made here, returned by the
        # function, was a captured tensor to descent.compile's recorder, named by identity (a
        # new one on each call), so two recordings never agreed (fuzz seed 20143063)
        zero = computed(_zero_index, (x,), ())
        return SortResult(saved_clone(x, "SortBackward0"), zero)
    d = _dim(x, dim, "sort")
    # The indices are data computed from x's values: `computed` shows descent.compile how
    # (ops/untracked.py), and the values' op takes them as its parameter (a replay rebinds it).
    idx = computed(_sort_index, (x,), (d, bool(descending), bool(stable)))
    return SortResult(Sort.apply(x, idx=idx._data, axis=d, keep=True), idx)


def _sort_index(a, d: int, descending: bool, stable: bool):
    """sort's int64 indices of an array along d (see `sort`)."""
    # stable=False: PyTorch's std::sort order straight from its replay where a kernel runs;
    # else the stable order with the tied rows replayed
    idx = None if stable else torch_sort_order(a, d, descending)
    if idx is None:
        idx = _order_of(a, d, descending)
        if not stable:
            idx = fix_sort(a, idx, d, descending)
        idx = _layout_of(a, idx)
    return idx


def argsort(x, dim: int = -1, descending: bool = False, stable: bool = False, *,
            axis: int | None = None) -> Tensor:  # fmt: skip
    """The indices that sort `x` along `dim` (`axis`: NumPy's name, which PyTorch accepts)
    (torch.argsort; int64; ties ordered as `sort`'s)."""
    return sort(x, dim, descending, stable, axis=axis).indices


def topk(x, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> TopkResult:
    """The k largest (or smallest) values along `dim` and their indices (torch.topk)."""
    x = as_tensor(x)
    refuse_kinds("topk", x, "c", "topk does not support complex dtypes on CPU")
    if x._data.dtype.kind == "b":
        raise DescentError(
            f"topk: bool tensors (shape {tuple(x.shape)}) are not supported, as in PyTorch; "
            "convert with .int() first"
        )
    d = _dim(x, dim, "topk")
    n = x.shape[d] if x.ndim else 1
    if not 0 <= int(k) <= n:
        raise RuntimeError(f"topk: k ({k}) is out of range for dimension {d} of size {n}")
    if x.ndim == 0:
        return sort(x)
    idx = computed(_topk_index, (x,), (d, int(k), bool(largest), bool(sorted)))  # (see sort)
    return TopkResult(Topk.apply(x, idx=idx._data, axis=d, keep=True), idx)


def _topk_index(a, d: int, k: int, largest: bool, sorted: bool):  # noqa: A002 - torch's name
    """topk's int64 indices of an array along d (see `topk`)."""
    idx = _topk_select(a, d, k, largest)
    if idx is None:
        # numba: PyTorch's partial_sort / nth_element replayed on every row, no full sort
        idx = topk_order(a, d, k, largest, sorted)
        if idx is not None:
            return backend.get_array_module(idx).ascontiguousarray(idx)  # see below
        order = _order_of(a, d, largest)  # (..., n, ...) the full order along d
        xp = backend.get_array_module(order)
        idx = xp.take(order, xp.arange(k), axis=d)  # its first k
    # Rows with ties, and sorted=False's order: what PyTorch's partial_sort / nth_element give
    idx = fix_topk(a, idx, d, k, largest, sorted)
    # contiguous as PyTorch's values and indices along any dim (.view works on them)
    return backend.get_array_module(idx).ascontiguousarray(idx)


_TOPK_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32),
                np.dtype(np.int64))  # fmt: skip


_TOPK_SCAN_K = 64  # up to this k, topk_small_rows; past it, partition + topk_rows


def _topk_select(a, d: int, k: int, largest: bool):
    """The first k entries of `_order(x, d, largest)` without sorting whole rows, or None.

    A stable sort's first k are the keys below the k-th smallest key, plus the keys equal to
    it at the lowest positions. Small k: one scan per row keeps the k best in order
    (kernels._cpu_extra.topk_small_rows); larger k: NumPy's O(n) partition finds the k-th key,
    topk_rows the positions, then a stable sort of those k. topk(k=10) of 64 rows of 32k:
    400 ms for the full sort against 3.5 ms. None (the caller sorts) for CuPy/meta arrays,
    other dtypes, rows with a NaN (PyTorch's NaN order is `_order`'s business), k > n / 8
    (the full sort costs about the same), or without the numba kernels.
    """
    if type(a) is not np.ndarray or a.dtype not in _TOPK_DTYPES or a.ndim == 0:
        return None
    n = a.shape[d]
    if k == 0 or k * 8 > n:
        return None
    from ..kernels import cpu as _kcpu

    if not _kcpu.enabled():
        return None
    from ..kernels import _cpu_extra

    moved = np.moveaxis(a, d, -1)  # (..., n)
    lead = moved.shape[:-1]
    if largest:
        key = -moved if a.dtype.kind == "f" else ~moved  # ~a = -a - 1: no integer overflow
    else:
        key = moved
    key = np.ascontiguousarray(key).reshape(-1, n)  # (R, n)
    if k <= _TOPK_SCAN_K:  # one scan per row, already in order
        pos = np.empty((key.shape[0], k), dtype=np.int64)  # (R, k)
        if not _cpu_extra.topk_small_rows(key, k, pos):
            return None  # a NaN
        return np.moveaxis(pos.reshape(*lead, k), -1, d)
    if a.dtype.kind == "f" and np.isnan(key).any():
        return None
    kth = np.partition(key, k - 1, axis=1)[:, k - 1]  # (R,) each row's k-th smallest key
    pos = np.empty((key.shape[0], k), dtype=np.int64)  # (R, k) in increasing position
    _cpu_extra.topk_rows(key, np.ascontiguousarray(kth), k, pos)
    # A stable sort of the k chosen keys: equal keys keep their position order, as _order's.
    o = np.argsort(np.take_along_axis(key, pos, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(pos, o, axis=1).reshape(*lead, k)
    return np.moveaxis(idx, -1, d)


# sort's and topk's values: one SelectedValues node each, named as PyTorch's (grad_fn_names.py)
class Sort(SelectedValues):
    __slots__ = ()


class Topk(SelectedValues):
    __slots__ = ()


def nonzero(x, *, as_tuple: bool = False):
    """Indices of the nonzero elements: an (n, ndim) int64 tensor, or with `as_tuple=True` one
    1-D tensor per dimension (torch.nonzero)."""
    x = as_tensor(x)
    # (their shape depends on x's values: guarded for descent.compile, ops/untracked.py)
    if as_tuple:
        return guarded(nonzero_positions, (x,), (), "nonzero")
    return guarded(_nonzero_rows, (x,), (), "nonzero")[0]


def _nonzero_rows(a) -> tuple:
    """(the (n, ndim) int64 positions of a's nonzero elements,): nonzero's kernel."""
    xp = backend.get_array_module(a)
    idx = xp.nonzero(a if a.ndim else a.reshape(1))
    if a.ndim == 0:
        return (xp.zeros((int(idx[0].size), 0), dtype=np.int64),)
    # (n, ndim) with strides (1, n), as PyTorch's: it fills an (ndim, n) tensor and returns
    # its transpose
    return (xp.stack(idx, axis=0).astype(np.int64).T,)


def masked_select(x, mask) -> Tensor:
    """The elements of x where mask is True, as a 1-D tensor (both broadcast first)."""
    x, mask = as_tensor(x), as_tensor(mask)
    if mask.dtype != np.bool_:
        raise RuntimeError(f"masked_select: expected a bool mask, got dtype {mask.dtype}")
    check_inference_saved(mask, x)  # (saved for backward as a parameter: grad_mode.py)
    try:
        shape = np.broadcast_shapes(x.shape, mask.shape)
    except ValueError:  # PyTorch's RuntimeError (NumPy's ValueError leaked)
        raise DescentError(
            f"masked_select: the mask's shape {tuple(mask.shape)} cannot be broadcast with the "
            f"tensor's shape {tuple(x.shape)}"
        ) from None
    xb = x if x.shape == shape else broadcast_to(x, shape)
    mb = mask._data if mask.shape == shape else backend.get_array_module(mask._data) \
        .broadcast_to(mask._data, shape)
    y = reshape(xb, -1)[Tensor._wrap(mb.reshape(-1))]
    if y._node is not None:  # PyTorch's MaskedSelectBackward0 (a user's x[mask]: IndexBackward0)
        mark_masked_select(y._node)
    return y


def _src_tensor(x: Tensor, index: Tensor, src, value, op: str) -> Tensor:
    """The values scatter writes, at index's shape (src is cut to it, as in PyTorch)."""
    if (src is None) == (value is None):
        raise TypeError(f"{op}: pass exactly one of src (a tensor) or value (a number)")
    xp = backend.get_array_module(x._data)
    if src is None or not isinstance(src, Tensor):
        v = value if src is None else src
        # PyTorch's checked conversion of the value (uint8: -1 is 255, 300 an overflow error)
        return Tensor._wrap(xp.full(index.shape, fill_int(v, x._data.dtype), dtype=x.dtype))
    check_src_dtype(x, src, op)
    if src.ndim != index.ndim and src.ndim:
        raise RuntimeError(
            f"{op}: index (shape {tuple(index.shape)}) and src (shape {tuple(src.shape)}) must "
            "have the same number of dimensions"
        )
    if src.ndim == 0:
        return broadcast_to(src, index.shape)
    if any(i > s for i, s in zip(index.shape, src.shape)):
        raise RuntimeError(
            f"{op}: index (shape {tuple(index.shape)}) is larger than src (shape "
            f"{tuple(src.shape)}) in a dimension"
        )
    if tuple(src.shape) != tuple(index.shape):
        src = src[tuple(slice(0, n) for n in index.shape)]
    return src


_INT32_64 = (np.dtype(np.int64), np.dtype(np.int32))


def _index_tensor(index) -> Tensor:
    index = as_tensor(index)
    if index._data.dtype not in _INT32_64 and index._data.size:  # (PyTorch checks a non-empty
        # one; int8/int16/uint8 too: "scatter(): Expected dtype int32/int64 for index")
        raise RuntimeError(
            f"scatter: index must be an int64 or int32 tensor, got dtype {index.dtype} (shape "
            f"{tuple(index.shape)}); use index.long()"
        )
    return index


def scatter(x, dim: int, index, src=None, *, value=None, reduce: str | None = None) -> Tensor:
    """Out-of-place torch.scatter: out = x with out[..., index[i], ...] = src[i] along dim.

    `reduce='add'` sums into x (scatter_add); 'multiply' multiplies x's slots by every element
    written there (scatter_reduce 'prod' with x included, which also gives it a gradient that
    PyTorch does not implement).
    """
    x, index = as_tensor(x), _index_tensor(index)
    if not isinstance(src, Tensor) and src is not None and value is None:
        src, value = None, src  # scatter(x, dim, index, 2.0): a number as src
    d = _dim(x, dim, "scatter")
    if index._data.size == 0:  # PyTorch: nothing written, no shape checks (x's copy)
        if reduce not in (None, "add", "sum", "multiply"):
            raise RuntimeError(f"scatter: reduce argument must be either add or multiply, "
                               f"got {reduce!r}")  # fmt: skip
        # (with reduce PyTorch has no derivative: x's copy, as before)
        return x.clone() if reduce else empty_scatter(x, src, "ScatterBackward0")
    if (x.ndim == 0 or index.ndim == 0) and max(x.ndim, index.ndim) == 1:
        # PyTorch counts a 0-d tensor as 1-d of one element here: x (or index, or src) is
        # made 1-d and the result given x's shape (a 0-d index wrote every slot before)
        src1 = reshape(src, (1,)) if isinstance(src, Tensor) and src.ndim == 0 else src
        out = scatter(reshape(x, (-1,)), d, reshape(index, (-1,)), src1, value=value,
                      reduce=reduce)  # fmt: skip
        return reshape(out, x.shape)
    check_index_fits("scatter", x, index, d, src)
    s = _src_tensor(x, index, src, value, "scatter")
    if reduce in ("add", "sum"):
        return scatter_add(x, d, index, s)
    if reduce == "multiply":
        return scatter_reduce(x, d, index, s, "prod", include_self=True)
    if reduce is not None:  # PyTorch's RuntimeError and words
        raise RuntimeError(f"scatter: reduce argument must be either add or multiply, got "
                           f"{reduce!r}")  # fmt: skip
    check_index_bounds("scatter", index._data, x.shape[d] if x.ndim else 1, d)
    # Positions computed from the index's values: `computed` (ops/untracked.py) lets
    # descent.compile replay them from the index instead of freezing them.
    owner = computed(_scatter_owner, (index,), (tuple(x.shape), d))
    written = computed(_scatter_written, (owner,), ())
    picked = computed(_scatter_picked, (owner,), ())
    placed = reshape(reshape(s, -1)[picked], x.shape)  # the gradient flows back to src
    return where(written, placed, x)


def _scatter_owner(index, shape: tuple, d: int):
    """owner[slot] = the flat position in src of the element scatter writes there, -1 where
    nothing is; with repeated indices the last write wins, as on PyTorch's CPU."""
    xp = backend.get_array_module(index)
    ids = xp.arange(index.size, dtype=np.int64).reshape(index.shape)
    owner = xp.full(shape, -1, dtype=np.int64)
    # index may be smaller than x in the other dims: only its own positions are written (NumPy's
    # put_along_axis would broadcast it over the rest, as PyTorch does not)
    owner[along_axis_index(xp, index.astype(np.int64), d)] = ids
    return owner


def _scatter_written(owner):
    """The slots scatter writes (bool)."""
    return owner >= 0


def _scatter_picked(owner):
    """The flat src position each slot reads (0 where none is written: `where` drops it)."""
    return backend.get_array_module(owner).where(owner >= 0, owner, 0).reshape(-1)


def _zeros_like(x: Tensor) -> Tensor:
    return Tensor._wrap(backend.get_array_module(x._data).zeros(x.shape, dtype=x.dtype))


def _inplace_result(x: Tensor, result: Tensor, op: str) -> Tensor:
    """Write `result` into x in place: into its array when nothing is recorded, else rebind
    x to the recorded result (the two ways of the in-place ops in inplace.py)."""
    if x._rg and x._node is None and is_grad_enabled():
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {tuple(x.shape)}) is being modified "
            "in place while grad mode is on; wrap the update in `with descent.no_grad():`"
        )
    if is_grad_enabled() and result._rg:
        if not (write_view(x, result) or write_base(x, result)):  # views: written through
            overwrote_saved_output(x)  # (write_view/write_base bump the family's versions)
            x._data, x._node, x._rg = result._data, result._node, result._rg
            bump_family(x)
    else:
        x._data[...] = result._data
        # the version of x's family (its views and base: one counter); descent.compile repeats
        # the copy of the result, which the recorded out-of-place op computes again
        written(x, (redo_assign, result._data))
    return x


def scatter_(x: Tensor, dim: int, index, src=None, *, value=None, reduce=None) -> Tensor:
    """In-place torch.Tensor.scatter_ (see `scatter`)."""
    alias = x._alias() if is_grad_enabled() and x._rg else x.detach()
    return _inplace_result(x, scatter(alias, dim, index, src, value=value, reduce=reduce),
                           "scatter_")  # fmt: skip


def _linear_index(x: Tensor, indices, check: bool | None = True):
    """(row numbers, k): the flat positions over x's first k dims named by a tuple of index
    tensors (broadcast together; bool masks count as their nonzero indices). check=False: where
    the slices are empty, indices out of range stand for any row (PyTorch's kernel, which
    checks them, has no element to loop over); None: only an indexed dimension of size 0 is
    checked (PyTorch's AdvancedIndex refuses any index there)."""
    if not isinstance(indices, (tuple, list)):
        indices = (indices,)
    xp = backend.get_array_module(x._data)
    tensors = tuple(i if isinstance(i, Tensor) else Tensor._wrap(xp.asarray(i)) for i in indices)
    # The rows come from the index's values: `computed` (ops/untracked.py) lets descent.compile
    # replay them; a mask's rows also have a data-dependent count, so that falls back.
    n_index = sum(int(t._data.ndim) if t._data.dtype == np.bool_ else 1 for t in tensors)
    if not n_index or n_index > x.ndim:
        raise IndexError(f"index_put: {n_index} indices for a tensor with {x.ndim} dimensions")
    lead = tuple(x.shape[:n_index])
    if 0 in lead or check or (check is False and 0 not in x.shape[n_index:]):
        rows = computed(_linear_rows, tensors, (lead,))._data
    else:
        rows = computed(_linear_rows_unchecked, tensors, (lead,))._data
    if derived_observers and any(t._data.dtype == np.bool_ for t in tensors):
        derived(rows, op="index_put with a boolean mask")
    return rows, n_index


def _linear_rows(*operands):
    """`_linear_index`'s row numbers from the index arrays (then the leading dims' sizes)."""
    *indices, lead = operands
    xp = backend.get_array_module(indices[0])
    arrs = []
    for a in indices:
        if a.dtype == np.bool_:
            arrs.extend(xp.nonzero(a))
        else:
            arrs.append(a.astype(np.int64))
    try:
        arrs = xp.broadcast_arrays(*arrs)
    except ValueError:  # (PyTorch's IndexError and words; two masks' counts may differ)
        shapes = ", ".join(str(list(a.shape)) for a in arrs)
        raise IndexError(f"index_put: shape mismatch: indexing tensors could not be broadcast "
                         f"together with shapes {shapes}") from None  # fmt: skip
    for k, (a, n) in enumerate(zip(arrs, lead)):
        if a.size and (a.max() >= n or a.min() < -n):
            bad = int(a.max()) if a.max() >= n else int(a.min())
            raise IndexError(f"index_put: index {bad} is out of bounds for dimension {k} with "
                             f"size {n}")  # fmt: skip
    arrs = [a % n for a, n in zip(arrs, lead)]
    return xp.ravel_multi_index(arrs, lead)


def _linear_rows_unchecked(*operands):
    """`_linear_rows` for empty slices: each index clipped into [-n, n) first (the rows hold
    no element, so which row an index names does not matter)."""
    *indices, lead = operands
    xp = backend.get_array_module(indices[0])
    clipped = [a if a.dtype == np.bool_ else xp.clip(a.astype(np.int64), -n, n - 1)
               for a, n in zip(indices, lead)]  # fmt: skip
    return _linear_rows(*clipped, lead)


def index_put(x, indices, values, accumulate: bool = False) -> Tensor:
    """Out-of-place torch.index_put: out[indices] = values (or += with accumulate)."""
    x = as_tensor(x)
    for i in indices if isinstance(indices, (tuple, list)) else ():
        if isinstance(i, Tensor) and i._data.dtype.kind not in "iub" or (
            isinstance(i, Tensor) and i._data.ndim and i._data.dtype.kind in "iu"
            and i._data.dtype not in (np.int64, np.int32, np.uint8)
        ):  # fmt: skip
            raise IndexError(
                f"index_put: tensors used as indices must be long, int, byte or bool tensors, "
                f"got {i.dtype} (shape {tuple(i.shape)}); convert it with .long()"
            )
    indices = _uint8_masks(indices, values, accumulate)
    if _with_masks(x, indices, values):
        return _mask_index_put(x, indices, values, accumulate)
    if isinstance(values, Tensor) and values.dtype != x.dtype:  # PyTorch's check (x[i] = v casts)
        _linear_index(x, indices, check=None)  # (after AdvancedIndex's refusal of an index
        raise DescentError(  # into a 0-size dimension, before the bounds its kernel checks)
            "Index put requires the source and destination dtypes match, got "
            f"{x.dtype} for the destination and {values.dtype} for the source."
        )
    rows, k = _linear_index(x, indices, check=False)
    tail = tuple(x.shape[k:])
    inner = int(np.prod(tail, dtype=np.int64))
    n_rows = int(np.prod(x.shape[:k], dtype=np.int64))
    flat = reshape(x, (n_rows, inner))  # (rows, the trailing dims flattened)
    v = as_tensor(values, x)
    v = v if v.dtype == x.dtype else v.to(x.dtype)  # (a number or a list: x's dtype)
    v = reshape(broadcast_to(v, tuple(rows.shape) + tail), (int(rows.size), inner))
    r = Tensor._wrap(rows.reshape(-1))
    if accumulate:
        return reshape(index_add(flat, 0, r, v), x.shape)
    # repeated rows: the last value wins, and every value gets the gradient of its row (PyTorch's
    # index_put backward, values: grad[indices])
    return reshape(SetItem.apply(flat, v, idx=(rows.reshape(-1),), basic=False), x.shape)


def _uint8_masks(indices, values, accumulate: bool):
    """PyTorch's legacy rule: a uint8 index tensor (of one dimension or more) is a boolean
    mask, with a deprecation warning; without accumulate, a lone uint8 mask with one value is
    its masked_fill_'s error. The indices with those masks as bool tensors."""
    if not isinstance(indices, (tuple, list)) or not any(
            isinstance(i, Tensor) and i._data.dtype == np.uint8 and i._data.ndim
            for i in indices):  # fmt: skip
        return indices
    if not accumulate:
        refuse_uint8_fill(indices, values)
    out = []
    for i in indices:
        if isinstance(i, Tensor) and i._data.dtype == np.uint8 and i._data.ndim:
            warn_uint8_index()
            i = Tensor._wrap(i._data.astype(bool))
        out.append(i)
    return tuple(out)


def _with_masks(x: Tensor, indices, values) -> bool:
    """index_put with a boolean mask among its index tensors: one op (`MaskIndexPut`) instead
    of ops over the mask's rows, whose count depends on its values (descent.compile replays
    the op with each call's masks; the ops' recorded shapes were frozen, so it ran eagerly)."""
    if not isinstance(indices, (tuple, list)) or not indices or not all(
            isinstance(i, Tensor) for i in indices):  # fmt: skip
        return False
    if not any(i._data.dtype == np.bool_ for i in indices):
        return False
    return not isinstance(values, Tensor) or values.dtype == x.dtype  # (else: the dtype error)


def _mask_index_put(x: Tensor, indices, values, accumulate: bool) -> Tensor:
    v = as_tensor(values, x)
    v = v if v.dtype == x.dtype else v.to(x.dtype)  # (a number or a list: x's dtype)
    n_index = sum(int(t._data.ndim) if t._data.dtype == np.bool_ else 1 for t in indices)
    if n_index > x.ndim:
        raise IndexError(f"index_put: {n_index} indices for a tensor with {x.ndim} dimensions")
    return MaskIndexPut.apply(x, v, indices=tuple(t._data for t in indices), k=n_index,
                              accumulate=bool(accumulate))  # fmt: skip


class MaskIndexPut(Function):
    """y = index_put(x, indices, v, accumulate) with a boolean mask among the index tensors:
    `index_put`'s arrays step for step (`_index_put_kernel`: eager's bits), the rows taken from
    the index arrays, a parameter (descent.compile binds each call's). Gradient: to x, gy (with
    accumulate) or gy with 0 at the written rows (SetItem's); to v, gy at each of its rows,
    summed to v's shape (IndexAdd's / SetItem's and broadcast_to's). Saves the indices, as
    PyTorch's IndexPutBackward0."""

    __slots__ = ("indices", "k", "accumulate")
    saves_params = True

    def forward(self, x, v):
        return _index_put_kernel(x, v, *self.indices, self.k, self.accumulate)

    def backward(self, gy, ops):
        p = self.parents
        xs, vs = self.in_shapes
        lead, tail = tuple(xs[: self.k]), tuple(xs[self.k :])
        n_rows = int(np.prod(lead, dtype=np.int64))
        inner = int(np.prod(tail, dtype=np.int64))
        rows = _linear_rows(*self.indices, lead)
        flat_rows = rows.reshape(-1)
        gx = gv = None
        if p[0] is not None:
            if self.accumulate:
                gx = gy
            else:
                arr = gy._data if ops.is_graph else gy
                keep = backend.get_array_module(arr).ones((n_rows, inner), dtype=arr.dtype)
                keep[flat_rows] = 0
                keep = keep.reshape(xs)
                gx = gy * (Tensor._wrap(keep) if ops.is_graph else keep)
        if p[1] is not None:
            gv = gy.reshape(n_rows, inner)[flat_rows].reshape(tuple(rows.shape) + tail)
            if tuple(gv.shape) != tuple(vs):
                gv = ops.sum_to(gv, vs)
        return gx, gv


def _index_put_kernel(x, v, *operands):
    """`index_put`'s arrays, step for step (the same reshapes and the same IndexAdd / SetItem
    forward: eager's bits), rows from this call's index arrays (`_linear_rows`)."""
    *indices, k, accumulate = operands
    lead = tuple(x.shape[:k])
    rows = _linear_rows(*indices, lead)
    tail = tuple(x.shape[k:])
    inner = int(np.prod(tail, dtype=np.int64))
    flat = x.reshape(int(np.prod(lead, dtype=np.int64)), inner)
    xp = backend.get_array_module(x)
    vv = xp.broadcast_to(v, tuple(rows.shape) + tail).reshape(-1, inner)
    if accumulate:
        op = object.__new__(IndexAdd)
        op.idx, op.axis, op.alpha = rows.reshape(-1), 0, 1
    else:
        op = object.__new__(SetItem)
        op.idx, op.basic = (rows.reshape(-1),), False
    return op.forward(flat, vv).reshape(x.shape)


def _mask_put(x: Tensor, indices, values, accumulate: bool) -> bool:
    """While descent.compile records: index_put_ with one boolean mask, unrecorded and without
    accumulate, as x[indices] = values (the same writes: a mask names each place once), whose
    write a replay repeats at each call's mask (indexing._mask_index); index_put's rows are
    the mask's positions, a count that depends on the values (its replay fell back). False
    (nothing done) for any other call."""
    if accumulate or not isinstance(indices, (tuple, list)) or len(indices) != 1:
        return False  # (two masks whose counts differ: index_put's own error)
    if not all(isinstance(i, Tensor) and i._data.dtype == np.bool_ for i in indices):
        return False
    if is_grad_enabled() and (x._rg or (isinstance(values, Tensor) and values._rg)):
        return False
    if not x._data.flags.writeable or (isinstance(values, Tensor) and values.dtype != x.dtype):
        return False  # (an expanded x, a dtype error: index_put_'s own path and messages)
    setitem(x, tuple(indices), values)
    return True


def index_put_(x: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """In-place torch.Tensor.index_put_ (see `index_put`)."""
    if isinstance(values, Tensor) and (values._data is x._data
                                       or overlaps(x._data, values._data, full_ok=False)):
        raise DescentError(
            "index_put_: unsupported operation: some elements of the input tensor and the "
            "written-to tensor refer to a single memory location. Please clone() the tensor "
            "before performing the operation"
        )
    indices = _uint8_masks(indices, values, accumulate)
    if derived_observers and _mask_put(x, indices, values, accumulate):
        return x
    alias = x._alias() if is_grad_enabled() and x._rg else x.detach()
    result = index_put(alias, indices, values, accumulate)
    a = x._data
    if a.size > 1 and 0 in a.strides and a.base is not None:  # (an expanded x: PyTorch writes
        # the indexed elements into its memory, each location the last value written)
        warnings.warn(
            "Use of index_put_ on expanded tensors is deprecated. Please clone() the tensor "
            "before performing this operation.",
            UserWarning,
            stacklevel=3,
        )
        rows, k = _linear_index(x, indices)
        xp = backend.get_array_module(a)
        mask = xp.zeros(int(np.prod(x.shape[:k], dtype=np.int64)), dtype=bool)
        mask[rows.reshape(-1)] = True
        mask = xp.broadcast_to(mask.reshape(x.shape[:k] + (1,) * (x.ndim - k)), x.shape)
        if is_grad_enabled() and result._rg:
            if write_view(x, result, True, mask):
                return x
        else:
            dst = a if a.flags.writeable else writable_alias(a)
            if dst is not None:
                dst[mask] = result._data[mask]
                written(x)
                return x
    return _inplace_result(x, result, "index_put_")
