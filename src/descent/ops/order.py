"""Order statistics with PyTorch's names: kthvalue, median, mode, msort, unique.

Like sort and topk (`selection.py`), each value is gathered from the input with
`take_along_axis` at an index computed on the arrays, so the gradient goes to the element
that was selected (PyTorch's rule for value-selecting reductions) and higher orders follow.
Ties are broken as PyTorch's CPU kernels break them: median by the earlier element (a stable
sort); kthvalue and mode by replaying PyTorch's quickselect / std::sort on the tied rows
(`tie_order.py`), which picks an index no stable rule gives.
`unique` returns data (no gradient), as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import RangeError
from ..tensor import Tensor
from ._common import as_tensor, axis_arg, refuse_kinds, return_type
from .elementwise import saved_clone
from .indexing import SelectedValues
from .selection import _dim, _order_of, sort
from .shape import reshape, squeeze
from .tie_order import fix_kthvalue, fix_mode, kthvalue_order, median_order, mode_order
from .untracked import computed, guarded

KthvalueResult = return_type("kthvalue", ["values", "indices"])
MedianResult = return_type("median", ["values", "indices"])
ModeResult = return_type("mode", ["values", "indices"])


# One SelectedValues node each, named as PyTorch's (grad_fn_names.py)
class Kthvalue(SelectedValues):
    __slots__ = ()


class MedianDim(SelectedValues):
    __slots__ = ()


class NanmedianDim(SelectedValues):
    __slots__ = ()


class Mode(SelectedValues):
    __slots__ = ()


_SELECT_OPS = {"kthvalue": Kthvalue, "median": MedianDim, "nanmedian": NanmedianDim, "mode": Mode}


def _select(x: Tensor, idx, d: int, keepdim: bool, result):
    """values = x gathered at idx (..., 1, ...) along d; both squeezed unless keepdim.

    idx (a Tensor) is computed from x's values through `computed` (ops/untracked.py):
    descent.compile replays it, and the values' op takes its array as a parameter that the
    replay rebinds. (An array idx is wrapped, a constant to descent.compile.)"""
    if not isinstance(idx, Tensor):
        idx = Tensor._wrap(idx)
    op = _SELECT_OPS.get(result.__name__, SelectedValues)
    values = op.apply(x, idx=idx._data, axis=d, keep=bool(keepdim))
    return result(values, idx if keepdim else squeeze(idx, d))


def _zero_d(x: Tensor, dim, name, result):
    _dim(x, dim, name)
    # (PyTorch's node saves the index 0 even here: a second backward raises)
    value = saved_clone(x, name.capitalize() + ("Backward1" if name == "median" else "Backward0"))
    return result(value, Tensor._wrap(backend.get_array_module(x._data).zeros((), np.int64)))


def refuse_no_kernel(name, x: Tensor, dim, kinds: str) -> None:
    """PyTorch's NotImplementedError for a dtype its median kernel lacks, raised where it
    raises it: not for an empty input reduced whole (nan) or over an empty dim (IndexError)."""
    # (the dtype first: a kind with a kernel reads no size, which descent.compile's replay at
    # another size relies on: compiler/dynamic_sizes.py)
    if x._data.dtype.kind in kinds and (
        x.numel() or (dim is not None and x.ndim and -x.ndim <= int(dim) < x.ndim
                      and x.shape[int(dim)])):  # fmt: skip
        refuse_kinds(name, x, kinds)


def kthvalue(x, k: int, dim: int = -1, keepdim: bool = False):
    """The k-th smallest value along `dim` (k counts from 1) and its index (torch.kthvalue)."""
    x = as_tensor(x)
    if x.ndim:  # (PyTorch returns a 0-d input as it is; an empty dim is its IndexError)
        refuse_no_kernel("kthvalue", x, dim, "bc")
    if x.ndim == 0:
        if int(k) != 1:
            raise RangeError(f"kthvalue: k ({k}) out of range for a 0-d tensor (only k=1)")
        return _zero_d(x, dim, "kthvalue", KthvalueResult)
    d = _dim(x, dim, "kthvalue")
    _check_k(x._data, d, int(k))
    return _select(x, computed(_kth_index, (x,), (d, int(k))), d, keepdim, KthvalueResult)


def _check_k(a, d: int, k: int) -> None:
    n = a.shape[d]
    if not 1 <= k <= n:
        raise RangeError(
            f"kthvalue: k ({k}) out of range for dimension {d} of shape {tuple(a.shape)}; "
            f"k counts from 1 to {n}"
        )


def _kth_index(a, d: int, k: int):
    """kthvalue's int64 index (..., 1, ...) along d of an array. k is checked here too: a
    replay at another size (descent.compile, compiler/dynamic_sizes.py) raises as eager."""
    _check_k(a, d, k)
    idx = kthvalue_order(a, d, k)  # numba: PyTorch's quickselect on every row
    if idx is None:
        xp = backend.get_array_module(a)
        order = _order_of(a, d, False)  # stable: among equal values the earlier index
        idx = xp.take(order, xp.asarray([k - 1]), axis=d)
        idx = fix_kthvalue(a, idx, d, k)  # tied rows: the index PyTorch's select picks
    return idx


def median(x, dim=None, keepdim: bool = False, *, axis=None):
    """The lower median (PyTorch's: no averaging of the two middle values).

    Without `dim`, a 0-d tensor (the median of all elements); with `dim`, `(values,
    indices)`. A NaN makes the median NaN (its index where one is), as torch.median.
    """
    x = as_tensor(x)
    dim = axis_arg(axis, dim)
    refuse_no_kernel("median", x, dim, "bc")
    if dim is None:
        xp = backend.get_array_module(x._data)
        if x.numel() == 0:  # the median of nothing is nan (PyTorch: nan cast to the dtype)
            with np.errstate(invalid="ignore"):
                nan = xp.asarray(np.nan).astype(x._data.dtype)
            return EvenlyShared.apply(x, value=nan, mask=xp.zeros(x.shape, bool))
        m = median(reshape(x, -1), 0).values
        # Every element equal to the median shares its gradient evenly (PyTorch's
        # deterministic subgradient); a nan median is shared by the nans.
        tie = computed(_median_tie, (x, m), ())
        return EvenlyShared.apply(x, value=m._data, mask=tie._data)
    if x.ndim == 0:
        return _zero_d(x, dim, "median", MedianResult)
    d = _dim(x, dim, "median")
    _check_nonempty(x._data, d)
    return _select(x, computed(_median_index, (x,), (d,)), d, keepdim, MedianResult)


def _check_nonempty(a, d: int) -> None:
    if a.shape[d] == 0:
        raise IndexError(f"median(): expected reduction dim {d} to have non-zero size")


def _median_index(a, d: int):
    """median's int64 index (..., 1, ...) along d of an array: a NaN's where one is. The
    size is checked here too: a replay at another size (descent.compile,
    compiler/dynamic_sizes.py) raises as eager."""
    _check_nonempty(a, d)
    xp = backend.get_array_module(a)
    n = a.shape[d]
    idx = median_order(a, d)  # numba: O(n) per row, the stable order's middle entry
    if idx is None:
        order = _order_of(a, d, False)  # NaN sorts last: the median is a NaN only if half are
        idx = xp.take(order, xp.asarray([(n - 1) // 2]), axis=d)
    if a.dtype.kind in "fV":
        nan = xp.isnan(a)
        has_nan = nan.any(axis=d, keepdims=True)
        idx = xp.where(has_nan, xp.argmax(nan, axis=d, keepdims=True), idx).astype(np.int64)
    return idx


def _median_tie(a, m):
    """The elements equal to the median m (the NaNs when it is NaN): median()'s mask."""
    tie = a == m
    if not tie.any():
        tie = backend.get_array_module(a).isnan(a)
    return tie


class EvenlyShared(Function):
    """A value computed from x by the caller (`value`) whose gradient is shared evenly by the
    elements of `mask` (PyTorch's evenly_distribute_backward for median()): the others get
    exactly 0, whatever gy is; with no element in the mask, or no mask (norm(p=0)), none at
    all."""

    __slots__ = ("value", "mask")
    saves_params = True  # PyTorch's MedianBackward0 / NormBackward saves self and the result

    def forward(self, x):
        return self.value

    def backward(self, gy, ops):
        if self.mask is None:  # norm(p=0): PyTorch's undefined gradient (x.grad stays None,
            return None  # an empty x's too)
        n = int(self.mask.sum())
        # With no element in the mask no gradient at all; an empty input of median() (gy 0-d)
        # still gets its empty gradient, but norm(p=0) over a dim of an empty input (gy of the
        # reduced shape, (0, 3) -> (0,)) gets none, as PyTorch's x.grad stays None.
        if n == 0 and (self.mask.size or gy.ndim):
            return None
        # gy / n in float32 for half precision, as PyTorch (a float16 n above 65,504 is inf)
        wide = np.dtype(np.float32) if gy.dtype.itemsize == 2 else gy.dtype
        return ops.where(self.mask, ops.cast(ops.cast(gy, wide) / n, gy.dtype), 0)


def mode(x, dim: int = -1, keepdim: bool = False):
    """The most frequent value along `dim` (the smallest among equally frequent ones) and the
    index of one occurrence: the one PyTorch's std::sort leaves last in its run (torch.mode)."""
    x = as_tensor(x)
    if x.ndim and x.numel():  # (PyTorch returns a 0-d or empty input)
        refuse_kinds("mode", x, "c")  # no PyTorch kernel
    if x.ndim == 0:
        return _zero_d(x, dim, "mode", ModeResult)
    d = _dim(x, dim, "mode")
    if x.shape[d] == 0:
        raise IndexError(f"mode(): expected reduction dim {d} to have non-zero size")
    return _select(x, computed(_mode_index, (x,), (d,)), d, keepdim, ModeResult)


def _mode_index(data, d: int):
    """mode's int64 index (..., 1, ...) along d of an array."""
    out_xp, xp = backend.get_array_module(data), np
    idx = mode_order(data, d)  # numba: PyTorch's std::sort on every row
    if idx is not None:
        return idx
    # The index is computed with NumPy on the host (it uses ufunc.accumulate, which CuPy lacks)
    # and moved to x's device for the gather.
    a = xp.moveaxis(backend.as_numpy(data), d, -1)  # (..., n)
    n = a.shape[-1]
    order = xp.argsort(a, axis=-1, kind="stable")
    s = xp.take_along_axis(a, order, axis=-1)
    # Runs of equal values in the sorted rows: each element's run spans [first, last] positions.
    pos = xp.arange(n)
    start = xp.ones(s.shape, dtype=bool)
    start[..., 1:] = s[..., 1:] != s[..., :-1]
    end = xp.ones(s.shape, dtype=bool)
    end[..., :-1] = start[..., 1:]
    first = xp.maximum.accumulate(xp.where(start, pos, 0), axis=-1)
    last = xp.flip(xp.minimum.accumulate(xp.flip(xp.where(end, pos, n), -1), axis=-1), -1)
    # The first element of the longest run is the smallest value among the most frequent ones
    # (argmax takes the first maximum); its last occurrence in x is the largest original index
    # within that run.
    best = xp.argmax(last - first, axis=-1)[..., None]  # (..., 1): a position in the sorted row
    in_run = first == xp.take_along_axis(first, best, axis=-1)
    idx = xp.max(xp.where(in_run, order, -1), axis=-1, keepdims=True)  # (..., 1)
    # Rows with ties or NaN: the index (and with NaN the value) of PyTorch's std::sort
    idx = fix_mode(backend.as_numpy(data), xp.moveaxis(idx.astype(np.int64), -1, d), d)
    return out_xp.asarray(idx)


def msort(x) -> Tensor:
    """x sorted along its first dimension (torch.msort)."""
    return sort(x, 0).values


def unique(x, sorted: bool = True, return_inverse: bool = False, return_counts: bool = False,
           dim=None):  # fmt: skip
    """The distinct values (sorted), with the inverse indices and counts on request
    (torch.unique). Along `dim`, the distinct slices. Data only: no gradient."""
    del sorted  # always sorted, which PyTorch allows for sorted=False too
    x = as_tensor(x)
    refuse_kinds("unique", x, "c")  # no PyTorch kernel
    d = None if dim is None else _dim(x, dim, "unique")
    if d is not None and 0 in x.shape:  # PyTorch's _unique_dim_cpu_impl checks
        zeros = tuple(x.shape).count(0)
        if x.shape[d] != 0:
            raise RuntimeError(
                "There are 0 sized dimensions, and they aren't selected, so unique cannot be "
                f"applied (unique: shape {tuple(x.shape)}, dim {d}); select a dim of size 0 or "
                "reshape"
            )
        if zeros > 1:
            raise RuntimeError(
                "Number of zero sized dimensions is more than one, so unique cannot be applied "
                f"(unique: shape {tuple(x.shape)}, dim {d}); reshape to one 0-size dimension"
            )
    # (their shapes depend on x's values: guarded for descent.compile, ops/untracked.py)
    res = guarded(_unique_kernel, (x,), (bool(return_inverse), bool(return_counts), d), "unique")
    return res[0] if len(res) == 1 else res


def _unique_kernel(data, return_inverse: bool, return_counts: bool, d) -> tuple:
    """unique's results as arrays: the distinct values (slices along d), then the inverse and
    the counts on request (untracked.guarded's kernel)."""
    a = backend.as_numpy(data)
    if d is None:
        # equal_nan=False: each nan is its own value, as in PyTorch (NumPy merges them)
        out = np.unique(a, return_inverse=return_inverse, return_counts=return_counts,
                        equal_nan=False)  # fmt: skip
    else:
        out = np.unique(a, return_inverse=return_inverse, return_counts=return_counts, axis=d)
    if not isinstance(out, tuple):
        out = (out,)
    xp = backend.get_array_module(data)
    res = [xp.asarray(out[0])]
    for extra in out[1:]:
        extra = np.asarray(extra, dtype=np.int64)
        if d is None and extra.shape != () and len(res) == 1 and return_inverse:
            extra = extra.reshape(a.shape)  # the inverse has x's shape (PyTorch)
        res.append(xp.asarray(extra))
    return tuple(res)
