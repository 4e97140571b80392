"""Shape and index ops with PyTorch's names, composed from the primitives of shape.py and
indexing.py: diagonal, diag, trace, unfold, unflatten, repeat_interleave, meshgrid, narrow,
movedim, take, index_fill; and scatter_reduce, an op of its own.

The compositions need no backward: a diagonal is an advanced index (GetItem, whose gradient
scatter-adds back), diag of a vector places it with IndexGrad (whose gradient reads it back),
unfold's windows are one advanced index along the axis (overlapping windows accumulate), and
so on; each is differentiable to any order because its pieces are.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import amp, backend
from ..array_backward import along_axis_index
from ..autograd import _ZERO_GRAD as ZERO_GRAD
from ..autograd import Function
from ..autograd import _mark_unrecorded_view as mark_unrecorded_view
from ..autograd import _mark_view as mark_view
from ..errors import DescentError, DimensionError, DtypeError, RangeError
from ..grad_fn import show_as
from ..memory_layout import elem_strides
from ..tensor import Tensor
from . import view_rules as _view_rules
from ._common import as_tensor, shape_arg
from .elementwise import cast, check_fill_value, masked_fill, where
from .indexing import (
    IndexGrad,
    _index_tensor,
    check_index_bounds,
    check_src_dtype,
    getitem,
    take_index,
)
from .shape import broadcast_to, permute, reshape
from .untracked import computed, guarded


def _axis(x: Tensor, dim, name: str) -> int:
    nd = max(x.ndim, 1)
    if not -nd <= int(dim) < nd:
        raise IndexError(
            f"{name}: dimension out of range (expected to be in range of [{-nd}, {nd - 1}], but "
            f"got {dim})"
        )
    return int(dim) % nd


# ---------------------------------------------------------------------------------------------
# Diagonals


def movedim(x, source, destination) -> Tensor:
    """Move dimension(s) `source` to position(s) `destination`, the others keeping their order
    (torch.movedim / moveaxis)."""
    x = as_tensor(x)
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    if len(src) != len(dst):
        raise DescentError(
            f"movedim: {len(src)} source dims {list(src)} but {len(dst)} destinations "
            f"{list(dst)}; give one destination per source dim"
        )
    src = [_axis(x, s, "movedim") for s in src]
    dst = [_axis(x, d, "movedim") for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise DescentError(
            f"movedim: repeated dims in source {source} or destination {destination} of a "
            f"{x.ndim}-d tensor; each dim may appear once"
        )
    if x.ndim == 0:  # dims 0 and -1 of a 0-d tensor: nothing moves (an alias, as PyTorch's)
        return getitem(x, Ellipsis)
    order = [None] * x.ndim
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(a for a in range(x.ndim) if a not in src)
    order = [a if a is not None else next(rest) for a in order]
    return permute(x, order)


moveaxis = movedim


def _diag_index(xp, n1: int, n2: int, offset: int):
    """Row and column indices of diagonal `offset` of an (n1, n2) matrix."""
    n = max(0, min(n1 - max(-offset, 0), n2 - max(offset, 0)))
    i = xp.arange(n) + max(-offset, 0)
    return i, i + offset


def diagonal(x, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal `offset` of the matrices in dims (dim1, dim2), as a new last dimension
    (torch.diagonal); its gradient is scattered back onto the diagonal.

    The result is a view, as PyTorch's: an unrecorded in-place write (`K.diagonal().add_(eps)`
    under no_grad or outside any graph) changes x, as for descent's other views."""
    x = as_tensor(x)
    if x.ndim < 2:  # PyTorch's IndexError: dim1 or dim2 is out of range
        raise DimensionError(
            f"diagonal: Dimension out of range (expected to be in range of [{-max(x.ndim, 1)}, "
            f"{max(x.ndim, 1) - 1}], but got {dim2 if int(dim1) in (0, -1) else dim1}); "
            f"diagonal needs at least 2 dimensions, got shape {tuple(x.shape)}"
        )
    d1, d2 = _axis(x, dim1, "diagonal"), _axis(x, dim2, "diagonal")
    if d1 == d2:
        raise DescentError(
            f"diagonal: dim1 and dim2 are the same dimension ({d1}) of shape {tuple(x.shape)}; "
            f"give two different dims"
        )
    base, src = x._data, x
    x = movedim(x, (d1, d2), (-2, -1))  # (..., n1, n2)
    xp = backend.get_array_module(x._data)
    i, j = _diag_index(xp, x.shape[-2], x.shape[-1], int(offset))
    out = take_index(x, (Ellipsis, i, j))  # (..., n): adjacent advanced indices stay last
    # The advanced index copied; give the result the same values as a view of x's array (the
    # layout of xp.diagonal: the other dims in order, the diagonal last). GetItem's backward
    # uses only the index and the shape, never its output, so the swap is safe for autograd.
    view = xp.diagonal(base, int(offset), d1, d2)
    if not getattr(view.flags, "writeable", True):  # NumPy's diagonal is a read-only view
        try:
            view.flags.writeable = True
        except ValueError:  # a read-only source (a broadcast, a frozen array): a read-only
            pass  # view, as its slices are (PyTorch's version counter is shared)
    out._data = view
    if out._node is not None:  # a recorded view: in-place ops write through (view_write.py)
        mark_view(out, src)
        show_as(out, "DiagonalBackward0", (src,))  # (PyTorch's one view node)
    else:
        mark_unrecorded_view(out, src)
    return out


_diagonal = diagonal  # diag's parameter is named `diagonal` (PyTorch's), hiding the function


def diag(x, diagonal: int = 0) -> Tensor:
    """A 1-D tensor placed on diagonal `diagonal` of a square matrix, or the diagonal of a
    2-D tensor (torch.diag)."""
    x = as_tensor(x)
    xp = backend.get_array_module(x._data)
    if x.ndim == 1:
        k = int(diagonal)
        m = x.shape[0] + abs(k)
        i, j = _diag_index(xp, m, m, k)
        # IndexGrad puts x at (i, j) in zeros; its gradient reads the diagonal back.
        return IndexGrad.apply(x, shape=(m, m), idx=(i, j), basic=False)
    if x.ndim == 2:
        # torch.diag copies (torch.diagonal is the view): index without diagonal()'s view swap
        i, j = _diag_index(xp, x.shape[0], x.shape[1], int(diagonal))
        return take_index(x, (i, j))  # (DiagBackward0 saves no index: take_index)
    raise DescentError(
        f"diag: expects a 1-D or 2-D tensor, got shape {tuple(x.shape)}; use diagonal(x, "
        f"offset, dim1, dim2) for batched matrices or diag_embed to build them"
    )


@amp._float32_op  # on PyTorch's autocast float32 list
def trace(x) -> Tensor:
    """The sum of the main diagonal of a 2-D tensor."""
    x = as_tensor(x)
    if x._data.dtype == np.bool_:  # PyTorch: "trace" not implemented for 'Bool' (any shape)
        raise DtypeError(
            f"trace: not implemented for bool tensors (shape {tuple(x.shape)}), as in PyTorch; "
            "convert first with .int()"
        )
    if x.ndim != 2:
        raise DescentError(
            f"trace: expects a 2-D tensor (a matrix), got shape {tuple(x.shape)}; use "
            f"diagonal(x, dim1=-2, dim2=-1).sum(-1) for a batch of matrices"
        )
    return show_as(diagonal(x).sum(), "TraceBackward0", (x,))


# ---------------------------------------------------------------------------------------------
# Windows, splits and repeats


def unfold(x, dimension: int, size: int, step: int) -> Tensor:
    """Tensor.unfold: every window of `size` elements along `dimension`, `step` apart, with the
    window as a new last dimension; overlapping windows share (and sum) gradients."""
    x = as_tensor(x)
    dimension_is_0d = x.ndim == 0
    if dimension_is_0d:
        d, n = _axis(x, dimension, "unfold"), 1  # (dim 0 or -1, as PyTorch)
        x = reshape(x, 1)
    else:
        d = _axis(x, dimension, "unfold")
        n = x.shape[d]
    if size > n or size < 0 or step <= 0:
        raise RuntimeError(
            f"unfold: size {size} with step {step} does not fit dimension {d} of size {n} "
            "(need 0 <= size <= the dimension and step > 0)"
        )
    if dimension_is_0d:
        # A 0-d input has one window of `size` (0 or 1) elements and no window dimension:
        # PyTorch's result is (size,), not (1, size).
        return getitem(x, slice(0, size))
    xp = backend.get_array_module(x._data)
    starts = xp.arange(0, n - size + 1, step)
    idx = starts[:, None] + xp.arange(size)[None, :]  # (windows, size)
    y = take_index(x, (slice(None),) * d + (idx,))  # (..., windows, size, rest...)
    out = movedim(y, d + 1, -1)  # (..., windows, rest..., size)
    # The advanced index copied: give the result the same values as a view of x's memory,
    # as PyTorch's unfold is (writes through it reach x), as diagonal does above.
    if size == 0:
        return out  # no elements to share
    a = x._data
    st = elem_strides(a)
    out._data = _view_rules.strided_view(
        a, out.shape, (*st[:d], st[d] * step, *st[d + 1 :], st[d])
    )  # (..., windows, rest..., size): window w, element k at x's index w * step + k
    if out._rg:  # a recorded view: in-place ops on it write through (ops/view_write.py)
        mark_view(out, x)
    else:
        mark_unrecorded_view(out, x)
    return out


def unflatten(x, dim: int, sizes) -> Tensor:
    """Split dimension `dim` into `sizes` (one of them may be -1), as torch.unflatten."""
    x = as_tensor(x)
    if x.ndim == 0:
        raise DescentError("unflatten: Dimension specified as 0 but tensor has no dimensions")
    d = _axis(x, dim, "unflatten")
    sizes = tuple(int(s) for s in shape_arg((sizes,)))
    if not sizes:
        raise DescentError("unflatten: sizes must be non-empty")
    known = 1
    for s in sizes:
        known *= s if s != -1 else 1
    n = x.shape[d]
    # PyTorch checks the sizes against the dimension (an empty tensor included: reshape would
    # accept any sizes holding 0 elements).
    if (n != known) if -1 not in sizes else (known == 0 or n % known):
        raise DescentError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {d} "
            f"({n}) in the input tensor"
        )
    if -1 in sizes:  # (from the dimension: reshape cannot infer it when x is empty)
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1 :])


def repeat_interleave(x, repeats=None, dim=None, *, output_size=None) -> Tensor:
    """Repeat each element `repeats` times (an int, or one count per element) along `dim` (the
    flattened tensor when None); the copies' gradients are summed. With `repeats` alone
    (repeat_interleave(tensor([2, 3]))) index i is repeated repeats[i] times, as in PyTorch."""
    del output_size  # a hint for devices where sizes must be known ahead; not needed here
    x = as_tensor(x)
    if repeats is None:  # torch.repeat_interleave(repeats): the counts of arange(len(repeats))
        xp = backend.get_array_module(x._data)
        if x.ndim != 1 or x._data.dtype.kind not in "iu":
            raise DescentError(
                f"repeat_interleave: repeats alone must be a 1-d integer tensor, got shape "
                f"{tuple(x.shape)} and dtype {x._data.dtype}"
            )
        # (its shape depends on the counts: a guarded op, ops/untracked.py)
        return guarded(_repeat_counts, (x,), (), "repeat_interleave with a tensor of counts")[0]
    if dim is None:
        x, d = reshape(x, -1), 0
    else:
        d = _axis(x, dim, "repeat_interleave")
    xp = backend.get_array_module(x._data)
    n = x.shape[d] if x.ndim else 1
    r = repeats._data if isinstance(repeats, Tensor) else repeats
    r = xp.asarray(r)
    if r.ndim and r.shape[0] not in (1, n):
        raise DescentError(
            f"repeat_interleave: {r.shape[0]} repeat counts for dimension {d} of size {n}"
        )
    if isinstance(repeats, Tensor):  # (see above: the positions, a guarded op's result)
        idx = guarded(_repeat_positions, (repeats,), (n,),
                      "repeat_interleave with a tensor of counts")[0]  # fmt: skip
    else:
        idx = _repeat_positions(r, n)[0]
    return take_index(x, (slice(None),) * d + (idx,))  # (PyTorch's node frees no index)


def _repeat_counts(r):
    """(arange(len(r)) with element i repeated r[i] times,): repeat_interleave(repeats)."""
    xp = backend.get_array_module(r)
    r = r.reshape(-1)
    return (xp.repeat(xp.arange(r.shape[0], dtype=np.int64), r),)


def _repeat_positions(r, n: int):
    """(the positions along a dimension of size n, position i repeated r[i] times (or r
    times: an int or a 0-d count),): repeat_interleave's gather index."""
    xp = backend.get_array_module(r)
    r = xp.asarray(r)
    return (xp.repeat(xp.arange(n), r.reshape(-1) if r.ndim else int(r)),)


def narrow(x, dim: int, start: int, length: int) -> Tensor:
    """x[..., start:start + length, ...] along `dim` (torch.narrow; a negative start counts
    from the end)."""
    x = as_tensor(x)
    if x.ndim == 0:
        raise DescentError("narrow: cannot be applied to a 0-d tensor; reshape it to (1,) first")
    d = _axis(x, dim, "narrow")
    n = x.shape[d]
    if isinstance(start, Tensor):
        if start.ndim != 0 or start._data.dtype.kind not in "iu":
            raise DescentError(
                f"narrow: start must be a 0-d integer tensor, got shape {tuple(start.shape)} "
                f"of dtype {start.dtype}; pass an int or a 0-d int64 tensor"
            )
        start = int(start._data)
    else:
        start = int(start)
    if not -n <= start <= n:
        raise IndexError(
            f"narrow: start {start} out of range for dimension {d} of size {n} (expected to "
            f"be in range of [{-n}, {n}])"
        )
    if start < 0:
        start += n
    if length < 0:
        raise RangeError(f"narrow: length must be non-negative, got {length}")
    if start + length > n:
        raise RangeError(
            f"narrow: start {start} and length {length} exceed dimension {d} of size {n} "
            f"(shape {tuple(x.shape)}); shorten the length to at most {n - start}"
        )
    return getitem(x, (slice(None),) * d + (slice(start, start + length),))


def meshgrid(*tensors, indexing: str | None = None):
    """Coordinate grids from 1-D tensors (torch.meshgrid; 'ij' by default, 'xy' swaps the
    first two dimensions as NumPy's default). Without `indexing`, PyTorch's UserWarning that
    a coming release will require it, then 'ij'."""
    if indexing is None:
        warnings.warn(
            "torch.meshgrid: in an upcoming release, it will be required to pass the indexing "
            "argument (descent.meshgrid: pass indexing='ij', the default, or 'xy')",
            UserWarning,
            stacklevel=2,
        )
        indexing = "ij"
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    ts = [as_tensor(t) for t in tensors]
    if indexing not in ("ij", "xy"):
        raise DescentError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    for t in ts:
        if t.ndim > 1:
            raise ValueError(f"meshgrid: expects 0-D or 1-D tensors, got shape {tuple(t.shape)}")
        if t._data.dtype != ts[0]._data.dtype:  # (PyTorch's check; descent promoted)
            raise DescentError(f"meshgrid expects all tensors to have the same dtype, got "
                               f"{ts[0].dtype} and {t.dtype}; convert them first")  # fmt: skip
    ts = [reshape(t, -1) for t in ts]
    shape = [t.shape[0] for t in ts]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for k, t in enumerate(ts):
        pos = k
        if swap and k < 2:
            pos = 1 - k
        view = [1] * len(ts)
        view[pos] = t.shape[0]
        out.append(broadcast_to(reshape(t, view), tuple(shape)))
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Index-based selection and filling


def take(x, index) -> Tensor:
    """Elements of x as if it were 1-D, at `index` (the result has the index's shape)."""
    x = as_tensor(x)
    xp = backend.get_array_module(x._data)
    idx = _index_tensor(index, xp, "take")
    n = x.numel()
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"take: an index is out of range for a tensor of {n} elements")
    return show_as(getitem(reshape(x, -1), (idx,)), "TakeBackward0", (x,))


def index_fill(x, dim: int, index, value) -> Tensor:
    """x with the entries at `index` along `dim` set to `value` (a number, or a 0-d tensor
    that gets the gradient of every entry it fills)."""
    x = as_tensor(x)
    xp = backend.get_array_module(x._data)
    idx = _index_tensor(index, xp, "index_fill")  # (checks the dtype)
    d = _axis(x, dim, "index_fill") if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    view = [1] * x.ndim
    if x.ndim:
        view[d] = n
    # The mask is data computed from the index's values: `computed` shows descent.compile how
    # (ops/untracked.py)
    it = index if isinstance(index, Tensor) else Tensor._wrap(idx)
    # PyTorch checks the indices in its kernel's loop over x's slices: with another dimension
    # of size 0 there are none and no index is checked (check=False: any index fills nothing)
    mask = computed(_fill_mask, (it,), (n, tuple(view), not (n and 0 in x.shape)))
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise DescentError(f"index_fill_ only supports a 0-dimensional value tensor, but got "
                               f"tensor with {value.ndim} dimension(s) (shape "
                               f"{tuple(value.shape)})")  # fmt: skip
        if value._data.dtype.kind == "c" and x._data.dtype.kind != "c":
            raise DescentError(f"index_fill_(): Converting complex Scalar to non-complex type "
                               f"is not supported ({value.dtype} value into a {x.dtype} "
                               f"tensor), as in PyTorch; pass value.real")  # fmt: skip
        if value._data.dtype != x._data.dtype:  # x's dtype, as PyTorch (where() promoted:
            check_fill_value(x, value, "index_fill")  # a bool x filled from a uint8 value
            value = cast(value, x._data.dtype)  # was uint8); the cast is differentiable
        return show_as(where(mask, value, x), "IndexFillBackward1", (x, value))
    return show_as(masked_fill(x, mask, value), "IndexFillBackward0", (x,))


def _fill_mask(idx, n: int, view: tuple, check: bool = True):
    """index_fill's mask (True at the indices along the dim), of shape `view`; check=False
    takes any index (x has no element: the mask selects nothing that exists)."""
    xp = backend.get_array_module(idx)
    mask = xp.zeros(n, dtype=bool)
    idx = idx.astype(np.int64, copy=False).reshape(-1)
    if not check:
        idx = xp.clip(idx, -n, n - 1)
    mask[idx] = True  # (negative: from the end)
    return mask.reshape(view)


# ---------------------------------------------------------------------------------------------
# scatter_reduce


_IDENTITY = {"sum": 0.0, "mean": 0.0, "prod": 1.0, "amax": -np.inf, "amin": np.inf}


def _identity(reduce: str, dtype):
    """The reduction's identity in `dtype`: an integer amax starts from the dtype's minimum
    (-inf cannot be stored: int64 scatter_reduce(amax, include_self=False) raised
    OverflowError), bool from False / True."""
    if reduce in ("amax", "amin") and dtype.kind in "iub":
        if dtype.kind == "b":
            return reduce == "amin"
        info = np.iinfo(dtype)
        return info.min if reduce == "amax" else info.max
    return _IDENTITY[reduce]


class ScatterReduce(Function):
    """out = x, then out[index[i] along axis] (reduce)= src[i] (torch.scatter_reduce).

    Gradients (PyTorch's): sum: gy to x (where it is included) and gy gathered to src; mean:
    the same divided by each slot's count; amax/amin: the gradient of a slot is shared evenly
    by the inputs equal to its result (x, counted even where not included, and src); prod:
    the product of the slot's other factors (y / factor without zeros; with zeros, formed
    without division)."""

    __slots__ = ("idx", "axis", "reduce", "include_self", "count", "touched")
    save_inputs = True
    save_output = True
    saved_slots = ("count", "touched")  # per slot: how many values met there; which were hit

    def forward(self, x, src):
        # On the host: the reductions other than sum use ufunc.at, which CuPy lacks; the
        # result, counts and mask go back to x's device.
        dev_xp, xp = backend.get_array_module(x), np
        x, src = backend.as_numpy(x), backend.as_numpy(src)
        ix = along_axis_index(xp, backend.as_numpy(self.idx), self.axis)
        out = x.copy()
        touched = xp.zeros(x.shape, dtype=bool)
        touched[ix] = True
        if not self.include_self:
            out[touched] = _identity(self.reduce, x.dtype)
        # (A count in bool would saturate at True: bool inputs count in int64.)
        cdt = x.dtype if x.dtype.kind != "b" else np.int64
        count = xp.zeros(x.shape, dtype=cdt)
        backend.scatter_add(count, ix, xp.ones(src.shape, dtype=cdt))
        if self.include_self:
            count += 1
        ufunc = {"sum": xp.add, "mean": xp.add, "prod": xp.multiply, "amax": xp.maximum,
                 "amin": xp.minimum}[self.reduce]  # fmt: skip
        ufunc.at(out, ix, src)
        if self.reduce == "mean":
            if out.dtype.kind in "fVc":
                out = xp.where(touched, out / xp.maximum(count.real, 1), out)
            else:  # PyTorch keeps the integer dtype and floor-divides ((-3 - 6) / 2 -> -5)
                out = xp.where(touched, xp.floor_divide(out, xp.maximum(count, 1)), out)
        self.count = dev_xp.asarray(xp.maximum(count.real, 1))
        self.touched = dev_xp.asarray(touched)
        return dev_xp.asarray(out)

    def backward(self, gy, ops):
        x, src = self.inputs(ops)
        xp = backend.get_array_module(self.idx)
        ix = along_axis_index(xp, self.idx, self.axis)
        keep = ~self.touched if not self.include_self else None  # x's slots that survive
        r = self.reduce
        if r in ("sum", "mean"):
            g = gy / self.count if r == "mean" else gy
            gx = g if keep is None else ops.where(keep, gy, 0)
            return gx, g[ix]
        y = self.output(ops)
        if r in ("amax", "amin"):
            yd = y._data if ops.is_graph else y
            xd = x._data if ops.is_graph else x
            sd = src._data if ops.is_graph else src
            # A slot's gradient is shared by x where it equals the result and by the src
            # values equal to it. PyTorch's count includes x's tie even without include_self
            # (N_to_distribute = (self == result).scatter_add(...)), where x's share is then
            # masked to 0 in the slots an index hit: a src tied with an excluded x that happens
            # to equal the result gets 1/(n + 1), as there (torch 2.13).
            # (a slot no index hit is x's value passed through, nan too: its gradient is gy;
            # PyTorch's (self == result) * gy / N makes it 0 * gy / 0 = nan there)
            x_eq = (xd == yd) | ~self.touched
            s_tie = sd == yd[ix]
            n = xp.array(x_eq, dtype=yd.dtype)  # (an array even for 0-d, for add.at)
            backend.scatter_add(n, ix, s_tie.astype(yd.dtype))
            g = gy / xp.maximum(n, 1)
            x_tie = x_eq if keep is None else x_eq & keep
            return ops.where(x_tie, g, 0), ops.where(s_tie, g[ix], 0)
        return self._prod_backward(gy, x, src, y, ix, keep, ops)

    def _prod_backward(self, gy, x, src, y, ix, keep, ops):
        xd = x._data if ops.is_graph else x
        sd = src._data if ops.is_graph else src
        xp = backend.get_array_module(xd)
        has_zero = (sd == 0).any() or (self.include_self and (xd == 0).any())
        if not has_zero:
            # y / factor: every factor's co-product (differentiable, so higher orders follow)
            gx = gy * y / x if keep is None else ops.where(keep, gy, 0)
            return gx, (gy * y)[ix] / src
        # With zeros: per slot, the product of its nonzero factors and the number of zeros;
        # a factor's co-product is 0 if another factor is 0, else that product over itself
        # (or the whole nonzero product when it is the one zero). Computed on the host arrays
        # (multiply.at): exact first-order gradients.
        dev_xp, xp = xp, np
        xd, sd = backend.as_numpy(xd), backend.as_numpy(sd)
        hix = tuple(backend.as_numpy(i) for i in ix)
        nzp = xp.ones(xd.shape, dtype=xd.dtype)
        zeros = xp.zeros(xd.shape, dtype=xd.dtype)
        if self.include_self:
            nzp = xp.where(xd == 0, 1, xd).astype(xd.dtype)
            zeros = (xd == 0).astype(xd.dtype)
        xp.multiply.at(nzp, hix, xp.where(sd == 0, 1, sd).astype(xd.dtype))
        backend.scatter_add(zeros, hix, (sd == 0).astype(xd.dtype))

        def coproduct(v, p, z):
            safe = xp.where(v == 0, 1, v)
            return xp.where(v == 0, xp.where(z > 1, 0, p), xp.where(z > 0, 0, p / safe))

        if ops.is_graph:  # create_graph: co-products as functions of x and src
            cx, cs = self._prod_coproducts_graph(x, src, dev_xp.asarray(zeros), ix)
        else:
            cx = dev_xp.asarray(coproduct(xd, nzp, zeros))
            cs = dev_xp.asarray(coproduct(sd, nzp[hix], zeros[hix]))
        gx = gy * cx if keep is None else ops.where(keep, gy, 0)
        return gx, gy[ix] * cs

    def _prod_coproducts_graph(self, x, src, zeros, ix):
        """The co-products of 'prod' with zero factors as differentiable Tensors of x and src,
        exact in value and first derivative (so the second derivative is exact, PyTorch's).

        A factor f_j's co-product is C_j = (P / f'_j) Q_j: P the product of the slot's nonzero
        factors (f' = f with zeros read as 1: a zero-free 'prod', whose backward is the
        differentiable y / factor), and Q_j the product of the slot's other zero factors e_k.
        With z_j such factors Q_j is 1 (z_j = 0), e_m itself (z_j = 1: linear), or 0 with a
        zero derivative (z_j >= 2); e_m = 0 in value, so Q_j = sum of the others' e for z_j = 1.
        (Before, the co-products were constants: d2/dx2 was missing, torch's OpInfo gradgrad.)
        """
        kw = {"idx": self.idx, "axis": self.axis, "include_self": self.include_self}
        xz, sz = x == 0, src == 0  # (bool Tensors)
        xf, sf = where(xz, 1.0, x), where(sz, 1.0, src)  # f'
        p = ScatterReduce.apply(xf, sf, reduce="prod", **kw)  # (x's shape) nonzero products
        xe, se = where(xz, x, 0.0), where(sz, src, 0.0)  # the zero factors e (value 0)
        e = ScatterReduce.apply(xe, se, reduce="sum", **kw)  # per slot: the sum of its e
        xzd, szd = xz._data.astype(zeros.dtype), sz._data.astype(zeros.dtype)
        zx = zeros - xzd if self.include_self else zeros  # z_j: the other zeros in the slot
        zs = zeros[ix] - szd

        def q(z, others_e):
            return where(Tensor._wrap(z == 0), 1.0, where(Tensor._wrap(z == 1), others_e, 0.0))

        cx = p / xf * q(zx, e - xe)
        cs = p[ix] / sf * q(zs, e[ix] - se)
        return cx, cs


def _refuse_scatter_reduce(x, reduce: str):
    raise DtypeError(f"scatter_reduce: reduce={reduce!r} is not implemented for "
                     f"{x._data.dtype}, as in PyTorch; convert the tensors first, e.g. "
                     f"x.float()")  # fmt: skip


class EmptyScatter(Function):
    """scatter / scatter_reduce with an empty index: nothing is written, out is x's copy (no
    shape checks, as PyTorch's). d/dx = 1; d/dsrc is a known zero: src is an input of
    PyTorch's node, so autograd.grad gives it zeros, not None (index fuzz 29900166)."""

    __slots__ = ("torch_name",)
    zero_passes = True  # a known-zero gradient passes to x (and src's is zero anyway)

    def forward(self, x, src):
        return x.copy()

    def backward(self, gy, ops):
        return gy, ZERO_GRAD


def empty_scatter(x: Tensor, src, torch_name: str) -> Tensor:
    """x's copy for an empty index, recording a tensor src as an input with a zero gradient."""
    if isinstance(src, Tensor):
        return EmptyScatter.apply(x, src, torch_name=torch_name)
    return x.clone()


def scatter_reduce(x, dim: int, index, src, reduce: str, *, include_self: bool = True) -> Tensor:
    """out = x with src reduced into the slots `index` names along `dim` (torch.scatter_reduce;
    reduce 'sum', 'prod', 'mean', 'amax' or 'amin')."""
    if reduce not in _IDENTITY:
        raise DescentError(
            f"scatter_reduce: reduce must be one of {sorted(_IDENTITY)}, got {reduce!r}"
        )
    x = as_tensor(x)
    if isinstance(src, Tensor):
        check_src_dtype(x, src, "scatter_reduce")
    src = as_tensor(src, x)
    xp = backend.get_array_module(x._data)
    idx = _index_tensor(index, xp, "scatter_reduce")
    d = _axis(x, dim, "scatter_reduce")
    if reduce == "mean" and x._data.dtype == np.bool_ and (include_self or idx.size == 0):
        _refuse_scatter_reduce(x, reduce)  # (PyTorch's kernel raises before its index check
        # with include_self, and its mean's division by the counts with an empty index)
    if idx.size == 0:  # PyTorch: nothing written, no shape checks (x's copy)
        return empty_scatter(x, src, "ScatterReduceBackward0")
    if min(x.ndim, idx.ndim, src.ndim) == 0 and max(x.ndim, idx.ndim, src.ndim) <= 1:
        # PyTorch counts a 0-d tensor as 1-d of one element: all made 1-d, x's shape after
        out = scatter_reduce(reshape(x, (-1,)), d, Tensor._wrap(idx.reshape(-1)),
                             reshape(src, (-1,)), reduce, include_self=include_self)  # fmt: skip
        return reshape(out, x.shape)
    if idx.ndim != x.ndim or idx.ndim != src.ndim:
        raise DescentError(
            f"scatter_reduce: index {tuple(idx.shape)}, x {tuple(x.shape)} and src "
            f"{tuple(src.shape)} "
            "need the same number of dimensions"
        )
    if idx.shape != src.shape:  # only the part of src that the index covers is used
        src = src[tuple(slice(0, n) for n in idx.shape)]
    check_index_bounds("scatter_reduce", idx, x.shape[d] if x.ndim else 1, d)
    if src._data.dtype != x._data.dtype:
        src = src.to(x._data.dtype)
    if (reduce == "mean" and x._data.dtype == np.bool_) or (
        reduce in ("amax", "amin") and x._data.dtype.kind == "c"
    ):  # PyTorch's kernels are missing: its NotImplementedError (DtypeError is one)
        _refuse_scatter_reduce(x, reduce)
    return ScatterReduce.apply(x, src, idx=idx, axis=d, reduce=reduce,
                               include_self=bool(include_self))  # fmt: skip
