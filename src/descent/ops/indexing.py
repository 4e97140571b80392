"""Indexing: slicing, advanced indexing, gather / scatter, and item assignment.

Gradients of advanced indexing scatter-add back into zeros, so repeated indices accumulate (as
`np.add.at`); basic slicing assigns into zeros (faster, indices cannot repeat).
"""

from __future__ import annotations

import builtins
import math
import operator
import warnings

import numpy as np

from .. import backend
from ..array_backward import along_axis_grad, along_axis_index
from ..autograd import Function
from ..autograd import _bump_family as bump_family
from ..autograd import _overwrote_saved_output as overwrote_saved_output
from ..errors import DescentError, DimensionError, DtypeError, RangeError
from ..float8 import astype as float8_astype
from ..float8 import is_float8
from ..grad_fn import show_as
from ..grad_fn_names import mark_name
from ..grad_mode import _inference_seen, check_inference_saved, is_grad_enabled
from ..opmath import HALF, in_float32
from ..tensor import Tensor
from ._common import (
    _one_axis,
    as_tensor,
    check_devices,
    check_float_fits,
    fill_int,
    user_stacklevel,
)
from .shape import broadcast_to, permute, reshape
from .untracked import computed, derived, derived_observers, guarded
from .view_rules import _dense_range, address, overlaps, with_strides, writable_alias
from .view_write import _writes_itself, redo_setitem, write_base, write_data_alias, written
from .view_write import write as write_view


def _convert_index(index, xp, shape):
    """Turn Tensors inside an index into arrays for indexing a tensor of `shape`.

    Returns (idx, basic, perm): `basic` says whether the index is basic (views only); `perm`
    is None, or the permutation that moves NumPy's placement of the advanced dimensions to
    PyTorch's (see `_torch_placement`). A boolean mask must match the dimensions it indexes
    (IndexError otherwise, as in PyTorch and NumPy; it was silently accepted once).
    """
    if not isinstance(index, tuple):
        index = (index,)
    # "basic" (slices, ints, None, Ellipsis) decides the backward: such an index names each element
    # at most once, so its gradient can be assigned; an array index may repeat elements and needs a
    # scatter-add. Tensors in the index are constants: they are unwrapped, never differentiated.
    items = []
    arrays = False
    tensors = set()  # positions of the entries that were Tensors (their values may be data's)
    ellipses = 0
    for k, i in enumerate(index):
        if i is Ellipsis:
            ellipses += 1
        elif isinstance(i, Tensor):
            tensors.add(k)
            t, i = i, i._data
            if i.ndim and i.dtype not in _SUBSCRIPT_DTYPES:  # (a 0-d integer one is an int)
                raise IndexError(
                    f"tensors used as indices must be long, int, byte or bool tensors, got "
                    f"{t.dtype} (shape {tuple(t.shape)}); convert it with .long()"
                )
            if i.dtype == np.uint8:  # PyTorch's legacy rule: a uint8 index is a mask
                if i.ndim:  # (a 0-d one is a bool scalar, without the warning, as in PyTorch)
                    warn_uint8_index()
                i = i.astype(bool)
            elif i.ndim == 0 and i.dtype.kind in "iu":
                # a Python int read from the tensor's value: while descent.compile records
                # (derived_observers), read through the Tensor, whose guard makes the call run
                # eagerly; a replay would keep the recorded int (x[t0] = v, x[t0, idx])
                i = operator.index(t) if derived_observers else int(i)
        if isinstance(i, (list, tuple)):
            # an empty list selects nothing (int64, not NumPy's float64, which cannot index);
            # a tuple inside the index is a sequence index too (PyTorch's, and NumPy's): an
            # advanced index, whose gradient accumulates (x[:, (0, 0)] was taken as basic)
            i = xp.asarray(i) if i else xp.zeros(0, dtype=np.int64)
        if hasattr(i, "ndim") and hasattr(i, "dtype"):
            arrays = True
            if xp is not np and type(i) is np.ndarray:
                i = xp.asarray(i)  # CPU indices for a GPU tensor, as PyTorch accepts them
        items.append(i)
    if ellipses > 1:
        items = _one_ellipsis(items, len(shape))
    if not arrays:  # the common case (slices, ints, None, Ellipsis): nothing to check or move
        return tuple(items), True, None
    # Where each entry starts in `shape`: the dimensions the entries before it consume (a mask
    # of k dims consumes k, None none, Ellipsis what the others leave).
    used = [0 if i is None or i is Ellipsis or isinstance(i, (bool, np.bool_))  # (a bool:
            else (i.ndim if _is_mask(i) else 1) for i in items]  # a new dim's mask) fmt: skip
    fill = len(shape) - builtins.sum(used)
    out = []
    basic = True
    pos = 0
    for k, (i, n) in enumerate(zip(items, used)):
        if i is Ellipsis:
            pos += fill
        elif _is_mask(i) and i.ndim:
            if tuple(i.shape) != tuple(shape[pos : pos + i.ndim]):
                raise IndexError(
                    f"the shape of the mask {tuple(i.shape)} at index {pos} does not match the "
                    f"shape of the indexed tensor {tuple(shape)}"
                )
            # Boolean masks become integer indices, so the gradient scatter works with add.at.
            positions = xp.nonzero(i)
            if derived_observers and k in tensors:  # (computed from a mask tensor's values:
                derived(*positions)  # ops/untracked.py; a NumPy array's or a list's are
                # constants, compared between descent.compile's two recordings)
            out.extend(positions)
            basic = False
            pos += n
            continue
        else:
            if (hasattr(i, "dtype") and i.dtype.kind in "iu" and i.size and 0 in shape
                    and shape[pos]):  # fmt: skip
                # x has no element and the axis has some: PyTorch checks the indices in its
                # kernel's loop, which then has nothing to visit (x[..., [9]] of a (3, 0, 3)
                # tensor is (3, 0, 1)); a stand-in in range selects the same nothing
                i = xp.clip(i, -shape[pos], shape[pos] - 1)
            pos += n
        if hasattr(i, "dtype") and hasattr(i, "ndim"):
            basic = False
        out.append(i)
    out = tuple(out)
    return out, basic, (None if basic else _torch_placement(out, len(shape)))


# PyTorch's dtypes for a tensor in x[...]: int64, int32, uint8 (its legacy mask) and bool
_SUBSCRIPT_DTYPES = frozenset(np.dtype(d) for d in (np.int64, np.int32, np.uint8, np.bool_))


def warn_uint8_index() -> None:
    """PyTorch's deprecation warning for a uint8 index tensor (of one dimension or more), which
    it still takes as a boolean mask: one per mask, on a read, a write and index_put."""
    warnings.warn(
        "indexing with dtype torch.uint8 is now deprecated, please use a dtype torch.bool "
        "instead.",
        UserWarning,
        stacklevel=user_stacklevel(),  # (the user's line)
    )


def refuse_uint8_fill(indices, value) -> None:
    """PyTorch's error for `x[mask] = v` (and index_put_ without accumulate) with one uint8
    mask as the only index tensor and a one-element `v`: its index_put_ dispatches that to
    masked_fill_ (canDispatchToMaskedFill), which takes bool masks only. Slices, ints, None and
    Ellipsis beside the mask do not count; a second index tensor makes it an index_put.

    Raises:
        DescentError: the fill with a uint8 mask.
    """
    arrays = [i for i in indices if (isinstance(i, Tensor) and i._data.ndim)
              or isinstance(i, (list, np.ndarray))]  # fmt: skip
    if len(arrays) != 1 or not isinstance(arrays[0], Tensor) or arrays[0]._data.dtype != np.uint8:
        return
    if (value._data.size if isinstance(value, Tensor) else np.size(value)) == 1:
        raise DescentError(
            "masked_fill_ only supports boolean masks, but got mask with dtype unsigned char "
            f"(a uint8 mask of shape {tuple(arrays[0].shape)} and one value, as in PyTorch); "
            "index with mask.bool()"
        )


def _one_ellipsis(items, ndim):
    """An index with two or more Ellipsis (`x[..., 0, ...]`) as PyTorch reads it, which NumPy
    refuses: its applySlicing moves a cursor over the dims, each Ellipsis past the k dims the
    other entries leave (k = ndim - the dims they name). The first Ellipsis becomes k full
    slices; with k = 0 every Ellipsis names nothing; otherwise a later one moves the cursor past
    the last dim, where only further Ellipses and full slices (PyTorch returns x itself for
    those) leave the result alone: any other entry there raises, as PyTorch's IndexError."""
    named = builtins.sum(
        0 if i is None or i is Ellipsis or isinstance(i, (bool, np.bool_))
        else (i.ndim if _is_mask(i) else 1) if hasattr(i, "ndim") and hasattr(i, "dtype")
        else 1 for i in items)  # fmt: skip
    k = ndim - named
    if k < 0:
        raise IndexError(f"too many indices for tensor of dimension {ndim}")
    at = [n for n, i in enumerate(items) if i is Ellipsis]
    head = [*items[: at[0]], *(slice(None),) * k]
    if k == 0:
        return [*head, *(i for i in items[at[0] + 1 :] if i is not Ellipsis)]
    for i in items[at[1] + 1 :]:
        if not (i is Ellipsis or type(i) is slice and i.stop is None
                and (i.start is None or type(i.start) is int and i.start == 0)
                and (i.step is None or type(i.step) is int and i.step == 1)):  # fmt: skip
            raise IndexError(
                f"{i!r} after a second Ellipsis indexes past the last dimension: PyTorch's "
                f"second '...' skips again the {k} dim(s) the first one covers, so only '...' "
                f"and ':' may follow it (a tensor of dimension {ndim}); use one Ellipsis"
            )
    return [*head, *items[at[0] + 1 : at[1]]]


def _is_mask(i) -> bool:
    return getattr(i, "dtype", None) == np.bool_


def _torch_placement(idx, ndim):
    """The permutation from NumPy's result layout to PyTorch's, or None when they agree.

    Both put the advanced (array) dimensions in place when the arrays are adjacent in the
    index, and first otherwise. They differ on integers: NumPy counts an integer as an advanced
    index, PyTorch applies it first as a plain select. So `x[1, :, idx]` puts idx's dimensions
    first in NumPy (the advanced entries 1 and idx are not adjacent) and last in PyTorch.
    """
    kinds = []
    for i in idx:
        if (hasattr(i, "ndim") and hasattr(i, "dtype")) or isinstance(i, (bool, np.bool_)):
            kinds.append("adv")
        elif isinstance(i, (int, np.integer)):
            kinds.append("int")
        else:
            kinds.append("slice" if isinstance(i, slice) else ("ell" if i is Ellipsis else "new"))
    if "int" not in kinds or "adv" not in kinds:
        return None

    def adjacent(ks, wanted):
        pos = [j for j, k in enumerate(ks) if k in wanted]
        return pos[-1] - pos[0] + 1 == len(pos)

    if adjacent(kinds, ("adv", "int")) or not adjacent([k for k in kinds if k != "int"], ("adv",)):
        return None  # both libraries place the dimensions alike
    # NumPy: (broadcast dims, the basic dims in order). PyTorch: the basic dims before the
    # first array, the broadcast dims, the rest.
    nb = len(np.broadcast_shapes(*[i.shape for i, k in zip(idx, kinds) if k == "adv"]))
    fill = ndim - builtins.sum(1 for k in kinds if k in ("adv", "int", "slice"))
    p = 0
    for k in kinds[: kinds.index("adv")]:
        p += {"slice": 1, "new": 1, "ell": fill, "int": 0}[k]
    # The dimensions no entry names (under an Ellipsis or at the end) all stay in the result.
    n_out = nb + builtins.sum(1 for k in kinds if k in ("slice", "new")) + fill
    return tuple(range(nb, nb + p)) + tuple(range(nb)) + tuple(range(nb + p, n_out))


class GetItem(Function):
    """d x[idx] = zeros with the gradient added at idx (repeated indices accumulate)."""

    makes_view = True  # the output may view the input (autograd.mark_view)
    # A basic index moves values only: bfloat16 arrays as they are, so the result is a view
    # (ops/bfloat16.dispatch). An advanced one computes in float32 (its backward accumulates).
    native_bfloat16 = "basic"

    __slots__ = ("idx", "basic")

    def forward(self, x):
        out = x[self.idx]
        if type(out) is not np.ndarray and type(x) is np.ndarray and self.basic:
            # An index naming one element gives a NumPy scalar, a copy; with a trailing
            # Ellipsis NumPy returns the 0-d view PyTorch's x[i] is (writes go through it).
            out = x[(*self.idx, Ellipsis)]
        elif not self.basic and not out.flags.c_contiguous:
            # NumPy lays an advanced index on a later axis out first in memory; PyTorch's
            # result is contiguous (x[:, idx].view(N, -1) works there): one copy
            out = backend.get_array_module(out).ascontiguousarray(out)
        elif self.basic and type(self.idx) is tuple and None in self.idx:
            # NumPy gives a new dim stride 0, PyTorch's unsqueeze the extent of the dim it
            # goes before: stride() shows it, the overlap check of writes compares it
            out = with_strides(out, _none_strides(x, self.idx), in_bytes=True)
        return out

    def backward(self, gy, ops):
        # Nothing saved but the index: zeros of the input's shape with gy put where it was read.
        return ops.index_grad(gy, self.in_shapes[0], self.idx, self.basic)


def _none_strides(x, idx):
    """The strides (bytes) of x[idx] for a basic index holding None, as PyTorch's applySlicing
    makes them: the items in order, None an unsqueeze of the result so far (stride: the extent
    of the dim it goes before, the item size at the end); None where an item is not an int, a
    slice, None or Ellipsis (NumPy's strides are kept)."""
    if not (type(x) is np.ndarray or backend.is_cupy_array(x)):
        return None
    sizes, strides = list(x.shape), list(x.strides)
    d = 0
    for i in idx:
        if i is None:
            strides.insert(d, sizes[d] * strides[d] if d < len(sizes) else x.itemsize)
            sizes.insert(d, 1)
            d += 1
        elif i is Ellipsis:
            d += x.ndim - builtins.sum(1 for j in idx if j is not None and j is not Ellipsis)
        elif type(i) is slice:
            start, stop, step = i.indices(sizes[d])
            sizes[d] = len(range(start, stop, step))
            strides[d] *= step
            d += 1
        elif type(i) is int or isinstance(i, np.integer):  # the dim goes
            del sizes[d], strides[d]
        else:
            return None
    return tuple(strides)


class IndexGetItem(GetItem):
    """x[idx] for an advanced index given by the user (PyTorch's IndexBackward0, which saves
    the index tensors): the node counts as saving, so a second backward without retain_graph
    raises as PyTorch's. Composite ops' internal gathers (diagonal's) stay GetItem."""

    __slots__ = ()
    saves_params = True


class IndexGrad(Function):
    """y = zeros(shape) with g added at idx; dy/dg = y's gradient read back at idx."""

    zero_passes = True  # linear: a zero tensor reads back as one (PyTorch's diag, index_put)
    __slots__ = ("shape", "idx", "basic")

    def forward(self, g):
        out = backend.get_array_module(g).zeros(self.shape, dtype=g.dtype)
        if self.basic:
            out[self.idx] = g
        else:
            backend.scatter_add(out, self.idx, g)
        return out

    # IndexGrad is linear in g; its adjoint reads the gradient back at the same index. This pair
    # is what makes indexing differentiable to any order.
    def backward(self, gy, ops):
        return gy[self.idx]


def getitem(x: Tensor, index) -> Tensor:
    """x[index]: an advanced index records IndexGetItem (its index counts as saved)."""
    if type(index) is list:
        index = sequence_as_tuple(index)
    return _getitem(x, _bool_masks(index) if derived_observers else index, IndexGetItem)


def sequence_as_tuple(index: list):
    """PyTorch's treatSequenceAsTuple: a list of fewer than 32 entries holding a tensor, an
    array, a list, a tuple, a slice, None or Ellipsis is the tuple of its entries
    (`x[[t0, t1]]` is `x[t0, t1]`, `x[[[1, 0], [2, 1]]]` is `x[[1, 0], [2, 1]]`), with its
    deprecation warning; a list of numbers stays one index (NumPy reads the first kind as one
    array index: another shape, or an IndexError)."""
    if len(index) >= 32 or not any(
            isinstance(i, (Tensor, np.ndarray, list, tuple, slice)) or i is None
            or i is Ellipsis for i in index):  # fmt: skip
        return index
    warnings.warn(
        "Using a non-tuple sequence for multidimensional indexing is deprecated and will be "
        "changed in pytorch 2.9; use x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will "
        "be interpreted as tensor index, x[torch.tensor(seq)], which will result either in an "
        "error or a different result",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return tuple(index)


def _bool_masks(index):
    """While descent.compile records: each uint8 mask tensor in `index` as a bool tensor
    computed through untracked.computed (PyTorch's legacy rule: a uint8 index is a mask), so
    that the mask is a recorded slot and its writes replay as a bool mask's; `_convert_index`
    makes the same conversion on arrays otherwise."""
    items = index if type(index) is tuple else (index,)
    if not any(isinstance(i, Tensor) and i._data.dtype == np.uint8 for i in items):
        return index
    for i in items:
        if isinstance(i, Tensor) and i._data.dtype == np.uint8 and i._data.ndim:
            warn_uint8_index()
    out = tuple(computed(_uint8_mask, (i,), ()) if isinstance(i, Tensor)
                and i._data.dtype == np.uint8 else i for i in items)  # fmt: skip
    return out if type(index) is tuple else out[0]


def _uint8_mask(a):
    return a.astype(bool)


def take_index(x: Tensor, index) -> Tensor:
    """x[index] as a step of a composite op (diagonal, unfold, repeat_interleave, nearest
    interpolation): PyTorch's node for those saves no index, so nothing is freed (GetItem)."""
    return _getitem(x, index, GetItem)


def _getitem(x: Tensor, index, advanced_op) -> Tensor:
    if _inference_seen[0] and x._rg:  # an index tensor saved for backward (grad_mode.py)
        for i in index if type(index) is tuple else (index,):
            check_inference_saved(i, x)
    xp = backend.get_array_module(x._data)
    try:
        idx, basic, perm = _convert_index(index, xp, x._data.shape)
        y = (GetItem if basic else advanced_op).apply(x, idx=idx, basic=basic)
    except IndexError as e:
        raise IndexError(
            f"indexing a tensor of shape {tuple(x.shape)} with {index!r}: {e}"
        ) from None
    # PyTorch's placement of the advanced dimensions (a recorded transpose when it differs),
    # contiguous as PyTorch's result (x[1, :, idx].view(-1) works there; the transpose alone
    # was a strided view that view() refused)
    return y if perm is None else permute(y, perm).contiguous()


def _check_index_put_dtype(x: Tensor, index, value: Tensor) -> None:
    """PyTorch's index_put_ check: with an integer index tensor (1-d or more) or a list in the
    index, the value tensor must have x's dtype, and so with a bool mask unless the value has
    one element (a masked fill); a slice or an int casts it."""
    for i in index if isinstance(index, tuple) else (index,):
        if (isinstance(i, Tensor) and i.ndim and (i._data.dtype.kind in "iu" and i._data.dtype
                != np.uint8 or (i._data.dtype in _MASK_DTYPES and value._data.size != 1))) or (
            isinstance(i, list) and i and not isinstance(i[0], bool)
        ):  # fmt: skip
            raise DescentError(
                "Index put requires the source and destination dtypes match, got "
                f"{x.dtype} for the destination and {value.dtype} for the source."
            )


_MASK_DTYPES = (np.dtype(np.bool_), np.dtype(np.uint8))  # (uint8: PyTorch's legacy masks)


def _one_mask(index) -> bool:
    """Whether the index is one bool mask (a tensor, or a list of bools): PyTorch's setitem
    then fills (masked_fill_)."""
    one = index[0] if type(index) is tuple and len(index) == 1 else index
    if isinstance(one, Tensor):
        return one._data.dtype == np.bool_
    return type(one) is list and bool(one) and all(type(b) is bool for b in one)


def setitem(x: Tensor, index, value) -> None:
    """x[index] = value. Recorded (differentiable in x and value) when either needs grad."""
    if index is False:  # PyTorch's setitem returns at once: nothing selected, the value unread
        return
    if type(index) is list:
        index = sequence_as_tuple(index)
    if isinstance(value, Tensor):
        if value._data.dtype != x._data.dtype:
            _check_index_put_dtype(x, index, value)
            if (value._data.dtype.kind == "c" and x._data.dtype.kind != "c"
                    and value._data.size == 1 and _one_mask(index)):  # fmt: skip
                # PyTorch's masked_fill_ reads the value's number with its checked conversion:
                # a nonzero imaginary part raises (NumPy's cast dropped it with a warning)
                fill_int(complex(value._data.reshape(-1)[0]), x._data.dtype)
    elif type(value) is int and not -(2**63) <= value < 2**63:
        # PyTorch's setitem unpacks a Python int as a C long long, whatever x's dtype
        raise ValueError(
            f"Overflow when unpacking long long: x[...] = {value} (outside [-2**63, 2**63)) "
            f"into a {x.dtype} tensor of shape {tuple(x.shape)}, as in PyTorch; use a float"
        )
    elif type(value) is float and x._data.dtype.itemsize == 4 and x._data.dtype.kind == "f":
        check_float_fits(value, x._data.dtype)  # (float32: 1e40 raises, as in PyTorch; its
        # setitem lets float16 and bfloat16 make inf)
    xp = backend.get_array_module(x._data)
    items = index if type(index) is tuple else (index,)
    if derived_observers:  # (descent.compile records: a uint8 mask as a computed bool one)
        index = _bool_masks(index)
    idx, basic, perm = _convert_index(index, xp, x._data.shape)
    if not basic:  # (after the mask's shape check: PyTorch's IndexError comes first)
        refuse_uint8_fill(items, value)
    if isinstance(value, Tensor):
        check_devices("setitem", x, value)
    if perm is not None:
        # The value is laid out in PyTorch's order: broadcast it to that shape and move its
        # dimensions to NumPy's order, which the assignment below uses.
        np_shape = xp.broadcast_to(xp.zeros((), np.int8), x._data.shape)[idx].shape
        value = as_tensor(value, x)
        value = permute(
            broadcast_to(value, tuple(np_shape[a] for a in perm)), tuple(np.argsort(perm))
        )
    if isinstance(value, Tensor) and (value._data.base is not None or x._data.base is not None
                                      or value._data is x._data):  # fmt: skip
        # copy_'s check against the value (a basic index: a view of the same memory and shape
        # overlapping in part; PyTorch's copy_to fills from a 0-d value into a selection with
        # dimensions (a 0-d one copies, checked) and expands one of another shape, which is
        # then too hard to check), index_put_'s (an array index: any overlap with x,
        # the same tensor too, but a one-element value with a single mask: a masked fill)
        one = index
        if type(index) is tuple:  # PyTorch's canDispatchToMaskedFill: one tensor index among
            rest = [i for i in index if i is not None and i is not Ellipsis  # basic ones
                    and not isinstance(i, (slice, int))]  # fmt: skip
            one = rest[0] if len(rest) == 1 else None
        sel = x._data[idx if Ellipsis in idx else (*idx, Ellipsis)] if basic else None
        if ((value._data.ndim or not sel.ndim) and _partial_overlap(x._data, sel, value._data,
                                                                    idx)
                if basic else not (value._data.size == 1 and isinstance(one, Tensor)
                                   and one._data.dtype == np.bool_)  # (a fill: masked_fill_)
                and (value is x or (value._data is x._data and x._data.size)  # (PyTorch:
                     or overlaps(x._data, value._data, False))):  # an empty alias is no overlap
            raise DescentError(
                "setitem: unsupported operation: some elements of the input tensor and the "
                "written-to tensor refer to a single memory location. Please clone() the tensor "
                "before performing the operation"
            )
        if basic and not (is_grad_enabled() and (x._rg or value._rg)):
            if basic and sel.shape == value._data.shape and sel.strides == value._data.strides \
                    and sel.dtype == value._data.dtype and address(sel) == address(value._data):
                written(x)  # x[i] = x[i]: PyTorch's copy_ of the same data, nothing to write
                return
    one = index[0] if type(index) is tuple and len(index) == 1 else index
    fill = (not basic and isinstance(one, Tensor) and one._data.dtype == np.bool_
            and np.size(value._data if isinstance(value, Tensor) else value) == 1)
    # Recorded only when a gradient can flow (like the in-place ops, see ops/inplace.py): the
    # SetItem op runs on an alias of x's old value and x is rebound to the result, so the nodes
    # that saved x before keep their value and see its version change.
    if is_grad_enabled() and (x._rg or (isinstance(value, Tensor) and value._rg)):
        if x._rg and x._node is None:
            raise RuntimeError(
                f"x[...] = value: x (shape {tuple(x.shape)}) is a leaf that requires grad; do the "
                "assignment under `with descent.no_grad():` or on a clone"
            )
        v = as_tensor(value, x)
        if _inference_seen[0]:  # an index tensor saved for backward (index_put_, grad_mode.py)
            for i in index if type(index) is tuple else (index,):
                check_inference_saved(i, x)
                check_inference_saved(i, v)
        if v._data.dtype != x._data.dtype:
            v = v.astype(x._data.dtype)
        # An index of full slices and Ellipsis (x[:] = v, x[...] = v) is PyTorch's copy_ into
        # x itself (its slicing returns x, no view: CopyBackwards, which saves nothing);
        # anything else saves (CopySlices, index_put_: SetItem)
        # (PyTorch's applySlice returns x itself for a slice from None or 0, step 1, to None
        # or at least the length: x[-2:] = v on 2 rows writes through a slice view, and so
        # does e[-1:-1] = e on an empty e)
        whole = basic and _writes_itself(idx, x._data.shape) and _whole(x._data, idx)
        if whole and isinstance(value, Tensor) and (value is x or _same_view(x, value)):
            # x[:] = x: PyTorch's copy_ of x from itself (is_same: nothing written, no overlap
            # check for an expanded x), as copy_'s own path
            from .inplace import copy_  # noqa: PLC0415 - ops/inplace imports this module

            before = x._node
            copy_(x, value)
            if x._node is not None and x._node is not before:  # (its node: PyTorch's name)
                mark_name(x._node, "torch::autograd::CopyBackwards")
            return
        sidx = idx
        if not basic and derived_observers:  # descent.compile records: SetItem holds the mask
            # itself (a parameter the replay binds to each call's mask), not its positions
            sidx = _mask_index(index, xp) or idx
        try:
            if whole:
                res = ScatterCopy.apply(x._alias(), v, idx=idx, basic=basic,
                                        torch_name="torch::autograd::CopyBackwards")  # fmt: skip
            else:
                res = SetItem.apply(x._alias(), v, idx=sidx, basic=basic)
        except ValueError as exc:
            _setitem_error(x, idx, v, exc)
        # (x views another tensor: the selection alone is written through, PyTorch's copy_
        # into x[index]; an array index: index_put_ into x)
        if fill:  # x[mask] = one value: PyTorch's masked_fill_ (an expanded x too)
            m = xp.zeros(x._data.shape, dtype=bool)
            m[idx] = True
        if (write_view(x, res, True, m) if fill
                else write_view(x, res, "copy", idx if basic else None)) or write_base(x, res) or (
                    x._data_alias and write_data_alias(x, res)):  # fmt: skip
            return
        overwrote_saved_output(x)  # x's old value was its op's saved output: backward raises
        x._data = res._data
        x._node = res._node
        x._rg = True
        bump_family(x)
        return
    # Outside the graph: write into the array (views see it); the version still goes up.
    # (fill_int's range check for ints; a float16 tensor takes 1e9 as inf, as PyTorch's x[i] = v)
    v = (value._data if isinstance(value, Tensor) else value
         if (x._data.dtype.kind == "f" or x._data.dtype.num >= 256) and type(value) is not complex
         else fill_int(value, x._data.dtype))  # fmt: skip
    if x._data.dtype.num >= 256 and is_float8(x._data.dtype):  # float8: PyTorch's conversion,
        v = float8_astype(np.asarray(v), x._data.dtype)  # saturating, without fill_'s check
    # PyTorch's copy_ into x[index] refuses a selection with a 0 stride (x an as_strided view;
    # an expanded one is read-only, below); its index_put_ (an array index) does not check
    a = x._data
    if basic and a.base is not None and 0 in a.strides and a.flags.writeable:
        sel = a[idx if Ellipsis in idx else (*idx, Ellipsis)]
        if sel.size > 1 and any(st == 0 and n > 1 for st, n in zip(sel.strides, sel.shape)):
            _overlap_raise(x, sel)
    direct = True  # (a replay repeats the write into x's own array, an advanced index too:
    # the recorder rebinds the index's arrays to their slots and refuses a mask's positions)
    try:
        x._data[idx] = v
    except ValueError:
        direct = False
        # An expanded tensor's NumPy array is read-only; PyTorch writes into its memory
        # (x.expand(2, 3)[0] = 5 sets x's elements): through a writable alias of it
        alias = None if x._data.flags.writeable else writable_alias(x._data)
        if alias is None:
            if not x._data.flags.writeable:
                raise
            lead = np.ndim(v) - np.ndim(x._data[idx])  # PyTorch drops a value's leading size-1
            if lead > 0 and all(s == 1 for s in np.shape(v)[:lead]):  # dims (x[0] = t([2]))
                try:
                    x._data[idx] = np.reshape(v, np.shape(v)[lead:])
                    written(x)  # (the version goes up; descent.compile runs it eagerly:
                    return  # no redo describes the reshaped value)
                except ValueError:
                    pass
            _setitem_error(x, idx, v, None)
        sel = alias[idx]
        if isinstance(sel, np.ndarray) and sel.size > 1 and sel.base is not None and any(
                st == 0 and n > 1 for st, n in zip(sel.strides, sel.shape)):  # fmt: skip
            # PyTorch's copy_ into the selection: its elements share memory (x.expand(2, 3)[:, 0])
            _overlap_raise(x, sel)
        alias[idx] = v
    # x's version, and its views' and base's (one counter, as in PyTorch)
    if not direct:
        written(x)
    elif basic or not derived_observers:
        written(x, (redo_setitem, v, idx))
    else:  # (descent.compile records: a boolean mask is repeated as the mask, not its positions)
        mask_idx = _mask_index(index, xp)
        written(x, (redo_setitem, v, idx) if mask_idx is None else (redo_mask_setitem, v,
                                                                   mask_idx))  # fmt: skip


def _mask_index(index, xp):
    """The index of x[index] = v with each boolean mask tensor as its array, for descent.compile
    (None when it holds none, or an entry a replay could not follow: a list, an array from
    outside descent, a uint8 mask). NumPy takes a mask as its nonzero positions, in place, so
    `a[mask_index] = v` writes what `a[idx] = v` did, at the places of each call's mask."""
    items = index if type(index) is tuple else (index,)
    out = []
    masks = False
    for i in items:
        if isinstance(i, Tensor):
            a = i._data
            if type(a) is not np.ndarray or xp is not np or a.dtype == np.uint8:
                return None
            masks = masks or (a.dtype == np.bool_ and a.ndim > 0)
            out.append(a)
        elif i is None or i is Ellipsis or isinstance(i, (slice, int, np.integer)):
            out.append(i)
        else:
            return None
    if builtins.sum(1 for i in out if i is Ellipsis) > 1:  # (NumPy refuses it: the positions)
        return None
    return tuple(out) if masks else None


def redo_mask_setitem(dst, values, index) -> None:
    """dst[index] = values with boolean masks in the index (`_mask_index`): a value whose shape
    does not fit this call's selection raises eager's error (the count of Trues may change)."""
    try:
        dst[index] = values
    except ValueError:
        target, shape = tuple(dst[index].shape), tuple(np.shape(values))
        raise DescentError(
            f"setitem: a value of shape {shape} cannot be broadcast to the indexed selection of "
            f"shape {target} (x of shape {tuple(dst.shape)}); reshape the value or change the "
            "index"
        ) from None


def _broadcast_or_none(a, shape):
    """a broadcast to shape (a 0 stride over more than one element is then too hard for the
    overlap check, as PyTorch's expanded source), or a itself where it does not broadcast."""
    if a.shape == tuple(shape):
        return a
    try:
        return backend.get_array_module(a).broadcast_to(a, shape)
    except ValueError:
        return a


def _partial_overlap(xa, sel, v, idx) -> bool:
    """PyTorch's copy_ check of x[idx] = v for a basic index (`sel` is NumPy's xa[idx]):
    whether the selection and v overlap in part. A full overlap (no error) is the same memory
    with the same strides, PyTorch's strides of v as its setitem copies it: v as it is when the
    shapes are equal, else v with its leading 1s dropped and expanded (x[None, -1] = x of one
    element: the very same view, no error; x[None, None] = x: a 0-d v expanded, stride 0:
    partial, an error). The selection's strides are PyTorch's (a dimension None made: the
    extent of the one it went before when it was made, _none_strides)."""
    vb = _broadcast_or_none(v, sel.shape)
    if vb.shape != sel.shape:  # (no broadcast: the assignment raises the shape error)
        return overlaps(sel, vb)
    if not overlaps(sel, vb, False):  # apart, empty, or not dense ("too hard": no check)
        return False
    if _dense_range(sel) != _dense_range(vb):
        return True
    st = _none_strides(xa, idx) if type(idx) is tuple and None in idx else None
    st = list(sel.strides if st is None else st)
    return st != _setitem_source_strides(v, sel.shape)


def _setitem_source_strides(v, shape) -> list:
    """PyTorch's strides of value v as x[i] = v copies it into a selection of `shape`
    (copy_to: v itself for equal shapes, else v's leading 1s dropped, then expand: a new
    dimension takes the next one's extent, a 0-d v all zeros, an expanded one 0)."""
    st = list(v.strides)
    if tuple(v.shape) == tuple(shape):
        return st
    dims = list(v.shape)
    while dims and dims[0] == 1:  # copy_to's slicePrefix1sSize
        dims.pop(0)
        st.pop(0)
    n, lead = len(shape), len(shape) - len(dims)
    out = [0] * n
    for i in range(n - 1, -1, -1):
        if i >= lead:
            size, stride = dims[i - lead], st[i - lead]
        else:
            size, stride = 1, (shape[i + 1] * out[i + 1] if i + 1 < n and dims else 0)
        out[i] = 0 if size != shape[i] else stride
    return out


def _overlap_raise(x: Tensor, sel) -> None:
    raise DescentError(
        "setitem: unsupported operation: more than one element of the written-to tensor "
        "refers to a single memory location. Please clone() the tensor before "
        f"performing the operation. (the selection of shape {sel.shape} of an expanded "
        f"tensor of shape {tuple(x.shape)})"
    ) from None


def _setitem_error(x: Tensor, idx, v, exc) -> None:
    """x[index] = value with a value that does not broadcast to the selection: PyTorch's
    RuntimeError (NumPy's ValueError leaked), naming both shapes."""
    try:
        target = tuple(x._data[idx].shape)
    except (IndexError, ValueError):
        target = None
    shape = tuple(np.shape(v._data if isinstance(v, Tensor) else v))
    if target is None or shape == target:
        raise exc if exc is not None else DescentError(f"setitem: cannot write into {x!r}")
    raise DescentError(
        f"setitem: a value of shape {shape} cannot be broadcast to the indexed selection of "
        f"shape {target} (x of shape {tuple(x.shape)}); reshape the value or change the index"
    ) from None


class SetItem(Function):
    """y = x with y[idx] = v: gradient to x is zero at idx; to v, the gradient read at idx.

    The node counts as saving: PyTorch records x[i] = v as CopySlices (a write through a
    view: x[1] = v, x[:, 0] = v), which releases its copy function after backward, or as
    index_put_ / masked_fill_ / index_copy / put, which save their index or mask. A second
    backward without retain_graph raises there. (ScatterCopy: the ops whose PyTorch node
    saves nothing.)"""

    __slots__ = ("idx", "basic")
    saves_params = True

    def forward(self, x, v):
        # A copy, never x itself: x's old value may be saved by another node.
        out = x.copy()
        out[self.idx] = v
        return out

    def backward(self, gy, ops):
        p = self.parents
        gx = None
        if p[0] is not None:
            # The overwritten entries of x get no gradient: zeros there by a constant mask,
            # also where gy is inf or nan (PyTorch's CopySlices zero_() / index_put of zeros;
            # a product with a 0/1 mask gave nan)
            arr = gy._data if ops.is_graph else gy
            keep = backend.get_array_module(arr).ones(self.in_shapes[0], dtype=bool)
            keep[self.idx] = False
            gx = ops.where(Tensor._wrap(keep) if ops.is_graph else keep, gy, 0)
        gv = None
        if p[1] is not None:
            gv = gy[self.idx]
            vs = self.in_shapes[1]
            if len(vs) > gv.ndim:  # a value with more leading 1s than the selection has dims
                gv = gv.reshape((1,) * (len(vs) - gv.ndim) + tuple(gv.shape))  # (x[0:1] = v)
            if gv.shape != vs:
                gv = ops.sum_to(gv, vs)
        return gx, gv


def _as_int64(index):
    """An int32 (or other integer) index as int64: `_index_tensor`'s kernel."""
    return index.astype(np.int64)


def _whole(a, idx) -> bool:
    """Whether the basic index idx selects all of array a as it is (full slices, Ellipsis)."""
    sel = a[idx]
    return sel.shape == a.shape and sel.strides == a.strides and (
        a.size == 0 or sel.__array_interface__["data"][0] == a.__array_interface__["data"][0])


class ScatterCopy(SetItem):
    """SetItem for the composites whose PyTorch node saves nothing (select_scatter,
    slice_scatter, diagonal_scatter, as_strided_scatter, diagflat: their index is a constant
    of the op, not a saved tensor; x[:] = v, PyTorch's copy_): a second backward runs again."""

    __slots__ = ("torch_name",)  # PyTorch's node name: "SelectScatterBackward0"
    saves_params = False


_INT32_64 = (np.dtype(np.int64), np.dtype(np.int32))
_INDEX_DTYPES = {  # PyTorch's int64-only index ops (the others: int64 or int32)
    name: (np.dtype(np.int64),) for name in ("take", "put", "index_copy", "index_fill")
}


def _index_tensor(index, xp, name):
    tensor = index if isinstance(index, Tensor) else None
    if tensor is not None:
        index = index._data
    # Index tensors are int64 constants on x's device; a float index is a user error, not cast.
    index = xp.asarray(index)
    if index.dtype.kind not in "iu":  # PyTorch's RuntimeError; a TypeError as before too
        raise DtypeError(f"{name}: the index must be an integer tensor, got dtype {index.dtype} "
                         "(Expected dtype int32/int64 for index)")  # fmt: skip
    if tensor is not None and index.dtype not in _INDEX_DTYPES.get(name, _INT32_64):
        # PyTorch's index ops take int64 or int32 indices ("index_select(): Expected dtype
        # int32 or int64 for index"; take, put, index_copy, index_fill int64 only), where descent
        # read int8/int16/uint8
        allowed = " or ".join(str(d) for d in _INDEX_DTYPES.get(name, _INT32_64))
        raise DtypeError(
            f"{name}: expected an index of dtype {allowed}, got {index.dtype} (shape "
            f"{tuple(index.shape)}), as PyTorch; convert with index.long()"
        )
    if index.dtype != np.int64 and tensor is not None:
        # The int64 copy of a tensor's int32 index is computed from its values: through
        # untracked.computed, so descent.compile replays the cast on each call's index (a
        # plain astype was a new array, a constant the replay froze: session 19's fuzzer).
        return computed(_as_int64, (tensor,), ())._data
    return index.astype(np.int64, copy=False)


class TakeAlongAxis(Function):
    """d take_along_axis(x, i, axis) = zeros with the gradient scatter-added at i."""

    __slots__ = ("idx", "axis")
    saves_params = True  # PyTorch's GatherBackward0 saves the index: a 2nd backward raises

    def forward(self, x):
        return backend.get_array_module(x).take_along_axis(x, self.idx, axis=self.axis)

    def backward(self, gy, ops):
        # The adjoint of gathering: scatter-add gy back (repeated indices accumulate).
        return ops.along_axis_grad(gy, self.in_shapes[0], self.idx, self.axis)


class PoolGather(Function):
    """Max pooling's gather (max_pool3d, adaptive_max_pool1d/2d/3d): y (N, C, *O) holds x
    (N, C, *S) at the winners' flat positions `idx` (N, C, *O) in each input plane;
    d/dx = zeros with gy scatter-added at idx (windows may share a winner). One node, as
    PyTorch's MaxPool3DWithIndicesBackward0 / AdaptiveMaxPool2DBackward0..., where the
    composite recorded a reshape, TakeAlongAxis and a reshape: the same NumPy calls (the
    gather on the (N, C, prod S) view, backward's scatter-add into zeros), the same bits, to
    any order (backward is written with `ops`)."""

    __slots__ = ("idx", "kind")  # idx: (N, C, *O) int64; kind: PyTorch's node name
    saves_params = True  # PyTorch saves the indices (a second backward raises there)

    def forward(self, x):
        n, c = x.shape[:2]
        if type(x) is np.ndarray:
            # take_along_axis's gather as one fancy index over the (N C, prod S) rows: the
            # same elements without its index building (~5 us of a small pool)
            nc = n * c
            rows = np.arange(nc).reshape(nc, 1)
            idx = self.idx.reshape(nc, math.prod(self.idx.shape[2:]))
            return x.reshape(nc, math.prod(x.shape[2:]))[rows, idx].reshape(self.idx.shape)
        idx = self.idx.reshape(n, c, math.prod(self.idx.shape[2:]))
        y = backend.get_array_module(x).take_along_axis(
            x.reshape(n, c, math.prod(x.shape[2:])), idx, axis=2
        )  # (N, C, prod O)
        return y.reshape(self.idx.shape)

    def backward(self, gy, ops):
        shape = self.in_shapes[0]
        n, c = shape[:2]
        idx = self.idx.reshape(n, c, math.prod(self.idx.shape[2:]))
        gy = gy.reshape(idx.shape)
        if (
            not ops.is_graph
            and type(gy) is np.ndarray
            and gy.dtype in backend._ROW_DTYPES
            and gy.size
            and backend._kernels_on()
        ):
            # along_axis_grad's scatter-add loop (the same kernel, the same order: its bits)
            # without its checks: the winners' positions lie in each plane by construction
            gx = np.zeros((n * c, math.prod(shape[2:]), 1), gy.dtype)
            backend._SCATTER_MODULES[1].scatter_add_along(
                gx,
                np.ascontiguousarray(idx, dtype=np.int64).reshape(n * c, -1, 1),
                np.ascontiguousarray(gy).reshape(n * c, -1, 1),
            )
            return gx.reshape(shape)
        gx = ops.along_axis_grad(gy, (n, c, math.prod(shape[2:])), idx, 2)
        return gx.reshape(shape)


class SelectedValues(Function):
    """x's values at one index per slice along `axis` (max/min/kthvalue/median/mode over a dim,
    sort, topk): d/dx = zeros with the gradient scatter-added back at the indices (PyTorch's
    value_selecting_reduction_backward). One node, as PyTorch's MaxBackward0, SortBackward0...:
    the gather and, without keep, the squeeze in one. Subclasses only give the name."""

    __slots__ = ("idx", "axis", "keep")  # idx: the index array, keepdim's shape
    saves_params = True  # PyTorch saves the indices (a second backward raises there)

    def forward(self, x):
        if _one_per_row(x, self.idx, self.axis):
            # NumPy (N, C), one index per row or column: the fancy-index gather of the same
            # values, without take_along_axis's index building (~5 us of a small max(x, dim))
            rows = np.arange(x.shape[1 - self.axis])
            y = x[rows, self.idx[:, 0]] if self.axis == 1 else x[self.idx[0], rows]
            return y.reshape(self.idx.shape) if self.keep else y
        y = backend.get_array_module(x).take_along_axis(x, self.idx, axis=self.axis)
        return y if self.keep else y.squeeze(self.axis)

    def backward(self, gy, ops):
        if not self.keep:
            gy = gy.reshape(self.idx.shape)
        if not ops.is_graph and _one_per_row(gy, self.idx, self.axis):
            # The scatter-add into zeros adds each value once, to 0.0: a put of gy + 0.0 is
            # the same bits (-0.0 becomes +0.0 there too), in one fancy-index assignment
            gx = np.zeros(self.in_shapes[0], gy.dtype)
            rows = np.arange(gx.shape[1 - self.axis])
            if self.axis == 1:
                gx[rows, self.idx[:, 0]] = gy[:, 0] + 0.0
            else:
                gx[self.idx[0], rows] = gy[0] + 0.0
            return gx
        return ops.along_axis_grad(gy, self.in_shapes[0], self.idx, self.axis)


_ONE_PER_ROW_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _one_per_row(a, idx, axis) -> bool:
    """SelectedValues' 2-D NumPy path: a float32/float64 (N, C) array (x, or gy in keepdim's
    shape) and an integer index with one entry per row (axis 1) or per column (axis 0): the
    gather and the put read and write what take_along_axis and the scatter-add would (a
    negative entry wraps, an out-of-range one raises IndexError, in both). Half precision
    accumulates in float32 there: not here."""
    if type(a) is not np.ndarray or a.ndim != 2 or a.dtype not in _ONE_PER_ROW_DTYPES:
        return False
    if type(idx) is not np.ndarray or idx.ndim != 2 or idx.dtype.kind not in "iu":
        return False
    return idx.shape[axis] == 1 and idx.shape[1 - axis] == a.shape[1 - axis] and a.size > 0


class AlongAxisGrad(Function):
    """y = zeros(shape) scatter-added with g at index along axis; dy/dg = take_along_axis."""

    __slots__ = ("shape", "idx", "axis")

    def forward(self, g):
        return along_axis_grad(backend.get_array_module(g), g, self.shape, self.idx, self.axis)

    def backward(self, gy, ops):
        # The adjoint of the scatter-add is the gather again: the pair closes under differentiation.
        return ops.take_along_axis(gy, self.idx, self.axis)


def take_along_axis(x, index, axis: int) -> Tensor:
    """NumPy's take_along_axis: out[..., i, ...] = x[..., index[..., i, ...], ...]."""
    x = as_tensor(x)
    xp = backend.get_array_module(x._data)
    index = _index_tensor(index, xp, "take_along_axis")
    # out of range: IndexError (a modulo wrapped it silently)
    axis = _one_axis(axis, x.ndim, "take_along_axis")
    if index.ndim != x.ndim:
        raise DescentError(
            f"take_along_axis/gather: index has {index.ndim} dims but x has {x.ndim} "
            f"(shapes {tuple(index.shape)} and {tuple(x.shape)}); unsqueeze the index"
        )
    return TakeAlongAxis.apply(x, idx=index, axis=axis)


def gather(x, dim=None, index=None, *, axis=None, sparse_grad: bool = False) -> Tensor:
    """PyTorch's gather(input, dim, index): out[i][j] = x[index[i][j]][j] along `dim`.

    As in PyTorch the index may be smaller than x in the dimensions other than `dim`; `dim`
    and `index` may be passed by keyword (`axis` is NumPy's name for `dim`)."""
    del sparse_grad  # gradients are dense arrays here
    x = as_tensor(x)
    if dim is None:
        dim = axis
    if dim is None or index is None:
        raise TypeError("gather: pass the dimension (dim=) and the index (index=)")
    check_inference_saved(index, x)  # (saved for backward as a parameter: grad_mode.py)
    axis = _one_axis(dim, x.ndim, "gather")  # out of range: IndexError, as PyTorch (was wrapped)
    shape = index.shape if isinstance(index, Tensor) else np.shape(index)
    if 0 in tuple(shape):
        # PyTorch skips the index's dtype, dimension and size checks for an empty index (op_db's
        # empty uint8 index): the result is empty, of the index's shape (a recorded slice, so
        # x's gradient is zeros).
        return reshape(reshape(x, -1)[0:0], tuple(shape))
    if isinstance(index, Tensor) and index._data.dtype.kind not in "iu":
        raise DtypeError(
            f"gather: the index must be an int64 (or int32) tensor, got dtype {index.dtype} "
            f"(shape {tuple(shape)}); use index.long()"
        )
    if x.ndim == 1 and len(shape) == 0:  # a 0-d index counts as 1-d: a 0-d result
        return reshape(gather(x, 0, reshape(as_tensor(index), (1,))), ())
    _check_gather_bounds(index, x.shape[axis] if x.ndim else 1, axis)
    if x.ndim == 0:  # a 0-d input (dim 0 or -1): gather from it as from a 1-element vector
        index = index if isinstance(index, Tensor) else Tensor._from_data(np.asarray(index))
        return reshape(take_along_axis(reshape(x, 1), reshape(index, -1), 0), tuple(shape))
    if x.ndim > 1:
        x = _gather_fit(x, index, axis)
    return take_along_axis(x, index, axis)


def _gather_fit(x: Tensor, index, axis: int) -> Tensor:
    """PyTorch lets gather's index be smaller than x off the gather axis: x cut down to it (a
    recorded slice; the NumPy-style take_along_axis does the rest); larger raises. (Its own
    function: descent.compile's replay at another size takes gather's other size reads as
    reviewed, compiler/dynamic_sizes.py, and not these.)"""
    shape = index.shape if isinstance(index, Tensor) else np.shape(index)
    big = [d for d, (n, m) in enumerate(zip(shape, x.shape)) if d != axis and n > m]
    if big and len(shape) == x.ndim:
        raise DescentError(
            f"gather: index of shape {tuple(shape)} is larger than the input {tuple(x.shape)} "
            f"at dimension {big[0]}; only dimension {axis} (dim) may be larger"
        )
    if len(shape) == x.ndim and any(
        n < m for d, (n, m) in enumerate(zip(shape, x.shape)) if d != axis
    ):
        x = x[tuple(slice(0, n) if d != axis else slice(None) for d, n in enumerate(shape))]
    return x


class IndexOutOfBounds(IndexError, RuntimeError):
    """An index outside its dimension: an IndexError, and a RuntimeError as PyTorch raises for
    gather, so code written for either catches it."""


def _check_gather_bounds(index, size: int, axis: int) -> None:
    """PyTorch's gather refuses indices outside [0, size): unlike NumPy's take_along_axis, a
    negative index is an error there, not a count from the end (and silently wrapping it would
    hide a bug in the caller's indices)."""
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.size == 0 or backend.is_meta(idx):  # meta indices: no values to check
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= size:
        bad = lo if lo < 0 else hi
        raise IndexOutOfBounds(
            f"gather: index {bad} is out of bounds for dimension {axis} with size {size} "
            f"(indices must be in [0, {size}))"
        )


def check_src_dtype(x: Tensor, src: Tensor, op: str) -> None:
    """PyTorch's scatter family writes src into x without converting it: a src of another dtype
    is refused (RuntimeError), where a silent cast would hide a float16/float32 mix-up."""
    if src.dtype != x.dtype:
        raise DescentError(
            f"{op}(): expected self.dtype to be equal to src.dtype, got {x.dtype} and "
            f"{src.dtype}; convert src with .to({x.dtype})"
        )


def check_index_fits(op: str, x: Tensor, index: Tensor, dim: int, src=None) -> None:
    """PyTorch's scatter needs index with as many dims as x (and src), and no larger than x in
    every dimension but `dim` (NumPy would fail with an unrelated error, or broadcast). An
    empty index skips the checks, as in PyTorch; a 0-d tensor counts as 1-d."""
    if index.ndim != x.ndim or (isinstance(src, Tensor) and src.ndim != index.ndim):
        if index._data.size == 0:
            return
        for name, t in (("self", x), ("src", src)):
            if isinstance(t, Tensor) and max(t.ndim, 1) != max(index.ndim, 1):
                raise DescentError(
                    f"{op}(): Index tensor must have the same number of dimensions as {name} "
                    f"tensor: index {tuple(index.shape)}, {name} {tuple(t.shape)}"
                )
        return
    if any(i > s for k, (i, s) in enumerate(zip(index.shape, x.shape)) if k != dim):
        raise DescentError(
            f"{op}(): expected index {tuple(index.shape)} to be smaller than self "
            f"{tuple(x.shape)} apart from dimension {dim}"
        )


def check_index_bounds(op: str, idx, size: int, axis: int) -> None:
    """PyTorch's scatter, scatter_add, scatter_reduce and index_add refuse indices outside
    [0, size) (IndexOutOfBounds, both its IndexError and its RuntimeError): NumPy would count a
    negative one from the end and write the wrong slot silently. On a GPU the check is
    deferred (backend.defer_check), so it does not wait for the device."""
    if idx.size == 0:
        return

    def error(lo, hi):
        bad = lo if lo < 0 else hi
        return IndexOutOfBounds(
            f"{op}: index {bad} is out of bounds for dimension {axis} with size {size} "
            f"(indices must be in [0, {size}))"
        )

    if backend.is_cupy_array(idx):
        backend.defer_check(((idx < 0) | (idx >= size)).any(),
                            lambda: error(int(idx.min()), int(idx.max())))  # fmt: skip
        return
    lo, hi = int(idx.min()), int(idx.max())
    if lo < 0 or hi >= size:
        raise error(lo, hi)


def index_select(x, axis: int | None = None, index=None, *, dim=None) -> Tensor:
    """Select entries along `axis` with a 1-D integer index (repeats accumulate gradients)."""
    if dim is not None:
        axis = dim
    x = as_tensor(x)
    if x._sparse_layout:  # torch.index_select(sparse, ...): the sparse method
        return x.index_select(axis, index)
    check_inference_saved(index, x)  # (saved for backward as a parameter: grad_mode.py)
    xp = backend.get_array_module(x._data)
    index = _index_tensor(index, xp, "index_select")
    if index.ndim > 1:
        raise IndexError(
            f"index_select: the index must be a vector (0-d or 1-d), got shape {index.shape}"
        )
    if index.size and index.min() < 0:  # torch's index_select counts no index from the end
        raise IndexOutOfBounds(  # (PyTorch's RuntimeError; an IndexError too)
            f"index_select: index {int(index.min())} is out of range for dimension {axis} of "
            f"size {x.shape[axis] if x.ndim else 1} (indices must be in [0, size)), as in PyTorch"
        )
    # out of range: IndexError, as PyTorch (was wrapped)
    axis = _one_axis(axis, x.ndim, "index_select")
    if x.ndim == 0:
        # A 0-d input: PyTorch takes exactly one index, 0, and returns a 0-d result.
        if index.size != 1:
            raise RuntimeError(
                f"index_select: a 0-d input takes one index, got {index.size} values"
            )
        if int(index.reshape(-1)[0]) != 0:
            raise IndexOutOfBounds(
                f"index_select: index {int(index.reshape(-1)[0])} is out of range for a 0-d "
                "input (the only index is 0)"
            )
        out = reshape(getitem(reshape(x, 1), index.reshape(-1)), ())
        return show_as(out, "IndexSelectBackward0", (x,))  # (PyTorch's one node)
    if index.size and int(index.max()) >= x.shape[axis]:  # PyTorch's RuntimeError
        raise IndexOutOfBounds(
            f"index_select: index {int(index.max())} is out of range for dimension {axis} of "
            f"size {x.shape[axis]} (indices must be in [0, size)), as in PyTorch"
        )
    # A plain advanced index along one axis: GetItem's backward already accumulates repeats.
    # (A 0-d index selects a length-1 dimension, as PyTorch's.)
    out = getitem(x, (slice(None),) * axis + (index.reshape(-1),))
    return show_as(out, "IndexSelectBackward0", (x,))  # (PyTorch's one node)


class ScatterAdd(Function):
    """y = x.scatter_add(axis, index, src): dy/dx = 1; dy/dsrc = gy gathered at index."""

    __slots__ = ("idx", "axis")
    saves_params = True  # PyTorch's ScatterAddBackward0 saves the index

    def forward(self, x, src):
        if x.dtype == HALF:  # accumulated in float32, rounded once, as PyTorch's (NumPy's
            return in_float32(self.forward, x, src)  # float16 add.at: 4x PyTorch's error)
        xp = backend.get_array_module(x)
        # Into a copy of x (x may be saved elsewhere); repeated indices add up, as torch's.
        out = x.copy()
        if not backend.scatter_add_along_axis(out, self.idx, src, self.axis):
            backend.scatter_add(out, along_axis_index(xp, self.idx, self.axis), src)
        return out

    def backward(self, gy, ops):
        gsrc = None
        if self.parents[1] is not None:
            # Read gy where src was added; the index may be smaller than x in the other
            # dimensions (PyTorch allows it), so spell the full index out instead of
            # take_along_axis, which would demand equal (broadcastable) shapes.
            ix = along_axis_index(backend.get_array_module(self.idx), self.idx, self.axis)
            gsrc = gy[ix]
        # d out / d x is the identity: every element of x is still in out, once.
        return gy, gsrc


def scatter_add(x, axis: int | None = None, index=None, src=None, *, dim=None) -> Tensor:
    """PyTorch's scatter_add: out = x; out[... index[i] ...] += src[i] along `axis`."""
    if dim is not None:
        axis = dim
    x = as_tensor(x)
    if isinstance(src, Tensor):
        check_src_dtype(x, src, "scatter_add")
    src = as_tensor(src, x)
    check_inference_saved(index, src)  # (src's gradient reads it: grad_mode.py)
    xp = backend.get_array_module(x._data)
    index = _index_tensor(index, xp, "scatter_add")
    if min(x.ndim, index.ndim, src.ndim) == 0 and max(x.ndim, index.ndim, src.ndim) <= 1:
        # PyTorch counts a 0-d tensor as 1-d of one element (a 0-d index added src into
        # every slot before): all made 1-d, the result given x's shape
        out = scatter_add(reshape(x, (-1,)), axis, index.reshape(-1), reshape(src, (-1,)))
        return reshape(out, x.shape)
    if index.ndim != x.ndim or index.ndim != src.ndim:
        check_index_fits("scatter_add", x, Tensor._wrap(index), 0, src)
    # Only the part of src that the index covers is used (PyTorch's rule).
    if index.shape != src.shape:
        src = src[tuple(slice(0, n) for n in index.shape)]
    axis = _one_axis(axis, x.ndim, "scatter_add")
    check_index_bounds("scatter_add", index, x.shape[axis] if x.ndim else 1, axis)
    return ScatterAdd.apply(x, src, idx=index, axis=axis)


class IndexAdd(Function):
    """y = x.index_add(axis, index, source): dy/dx = 1; dy/dsource = index_select(gy)."""

    __slots__ = ("idx", "axis", "alpha", "source")
    saves_params = True  # PyTorch's IndexAddBackward0 saves the index,
    saved_for = (1,)  # for source's gradient only: with a constant source it runs again
    # and source (for expand_as(source): its shape only) when source needs a gradient: a later
    # in-place write into source makes backward raise there. (source Tensor, its version) or
    # None; no array of it is read
    saved_slots = ("source",)

    def forward(self, x, src):
        if x.dtype == HALF:  # accumulated in float32, rounded once, as PyTorch's (NumPy's
            return in_float32(self.forward, x, src)  # float16 add.at: 4x PyTorch's error)
        out = x.copy()
        # alpha scales src before the scatter; alpha = 1 skips the multiply (a temporary of src's
        # size).
        idx = (slice(None),) * self.axis + (self.idx,)
        alpha = self.alpha
        if src.dtype.kind == "u" and isinstance(alpha, int):  # PyTorch wraps: -1 is 255 in uint8
            alpha = np.array(alpha).astype(src.dtype)
        backend.scatter_add(out, idx, src * alpha if self.alpha != 1 else src)
        return out

    def backward(self, gy, ops):
        gs = None
        if self.parents[1] is not None:
            if self.source is not None and self.source[0]._version != self.source[1]:
                t, v = self.source
                raise RuntimeError(
                    f"an input of 'IndexAddBackward0' (source, shape {tuple(t.shape)}) was "
                    f"modified in place after the op saved it for backward (version {v} -> "
                    f"{t._version}; PyTorch saves source for its shape). Clone it before the "
                    "in-place change (x = x.clone()) or do the in-place change before using it."
                )
            gs = gy[(slice(None),) * self.axis + (self.idx,)]
            if self.alpha != 1 and not ops.is_graph and gs.dtype == HALF:
                gs = in_float32(operator.mul, gs, self.alpha)  # alpha in float32, as PyTorch's
            elif self.alpha != 1:
                gs = gs * self.alpha
        return gy, gs


def _check_index_add_source(x: Tensor, source: Tensor, index, axis: int) -> None:
    """PyTorch's index_add: source has x's shape except along `axis`, where it has one slice
    per index."""
    xs, ss = tuple(x.shape), tuple(source.shape)
    # PyTorch reads source.size(dim) of a 0-d source first (for some index counts)
    if not ss and xs and index.size != 1 and (len(xs) == 1 or not index.size):
        raise IndexError(
            f"index_add: Dimension specified as {axis} but tensor has no dimensions (a 0-d "
            f"source for {index.size} indices into a tensor of shape {xs}; give the source a "
            "dimension per index)"
        )
    if len(ss) != len(xs) or any(a != b for k, (a, b) in enumerate(zip(xs, ss)) if k != axis):
        # (a 0-d x against a 1-d source: PyTorch compares the dims as they are)
        raise DescentError(
            f"index_add: source tensor shape must match self tensor shape, excluding the "
            f"specified dimension {axis}. Got self.shape = {xs} source.shape = "
            f"{tuple(source.shape)}"
        )
    if ss[axis] != index.size:
        raise DescentError(
            f"index_add: number of indices ({index.size}) should be equal to source.size(dim) "
            f"({ss[axis]}) for dim {axis}"
        )


def index_add(x, axis: int | None = None, index=None, source=None, *, dim=None, alpha=1) -> Tensor:
    """PyTorch's index_add: out = x; out[..., index[i], ...] += alpha * source[..., i, ...]."""
    if dim is not None:
        axis = dim
    x = as_tensor(x)
    check_inference_saved(index, source)  # (source's gradient reads it: grad_mode.py)
    if isinstance(source, Tensor) and source._data.dtype != x._data.dtype:
        raise DescentError(  # PyTorch's RuntimeError: no silent cast of the source
            f"index_add_(): self ({x.dtype}) and source ({source.dtype}) must have the same "
            "scalar type; convert the source with .to(self.dtype)"
        )
    source = as_tensor(source, x)
    xp = backend.get_array_module(x._data)
    index = _index_tensor(index, xp, "index_add")
    if index.ndim > 1:
        raise DimensionError(
            f"index_add_(): Index is supposed to be a vector, but got dim: {index.ndim} "
            f"(shape {tuple(index.shape)})"
        )
    index = index.reshape(-1)  # a 0-d index is one index, as in PyTorch
    if x.ndim == 0:  # PyTorch treats a 0-d tensor as one element along dim 0 (or -1)
        if int(axis) not in (0, -1):
            raise DimensionError(
                f"index_add: Dimension out of range (expected to be in range of [-1, 0], but "
                f"got {axis}): a 0-d tensor takes dim 0"
            )
        if source.ndim != 0:  # PyTorch: the same number of dims (no 0-d as 1-d here)
            _check_index_add_source(x, source, index, 0)
        if index.size != 1:
            raise RangeError(
                f"index_add: number of indices ({index.size}) should be 1 for a 0-d source "
                "(Dimension specified as 0 but tensor has no dimensions)"
            )
        out = index_add(reshape(x, (1,)), 0, index, reshape(source, (1,)), alpha=alpha)
        return reshape(out, ())
    axis = _one_axis(axis, x.ndim, "index_add")
    if source.shape != x.shape or index.size != x.shape[axis]:
        _check_index_add_source(x, source, index, axis)
    n = x.shape[axis]
    if x.ndim > 1 and n and 0 in x.shape:
        # PyTorch's index_add_cpu_ returns before its index checks when self has no element
        # and more than one dimension: the slices are empty, so any index writes nothing (a
        # stand-in in range keeps the shapes)
        index = backend.get_array_module(index).clip(index, 0, n - 1)
    elif x.ndim > 1 and not n and index.size:  # (dim of size 0: no index is in range, none
        index = index[:0]  # is read; the source's slices are left out, its gradient zeros)
        source = getitem(source, (slice(None),) * axis + (slice(0, 0),))
    check_index_bounds("index_add", index, n, axis)
    if x._data.dtype == np.bool_:  # PyTorch takes alpha as a bool: self | (alpha & source)
        alpha = int(bool(alpha))
    saved = (source, source._version) if source._rg and is_grad_enabled() else None
    return IndexAdd.apply(x, source, idx=index, axis=axis, alpha=alpha, source=saved)


def one_hot(index, num_classes: int = -1, dtype=np.int64) -> Tensor:
    """One-hot encoding of an integer tensor (last axis of size num_classes)."""
    index = as_tensor(index)
    if num_classes >= 0:  # data computed from the values: descent.compile replays the kernel
        return computed(_one_hot_kernel, (index,), (int(num_classes), np.dtype(dtype)))
    # (its width is the largest index + 1: a guarded op, ops/untracked.py)
    return guarded(_one_hot_width, (index,), (np.dtype(dtype),), "one_hot without num_classes")[0]


def _one_hot_width(a, dtype):
    """(one_hot of `a` with the largest index + 1 classes,)."""
    return (_one_hot_kernel(a, int(a.max()) + 1, dtype),)


def _one_hot_kernel(a, num_classes: int, dtype):
    xp = backend.creation_module(a)  # (meta indices: a meta result)
    out = xp.zeros(a.shape + (num_classes,), dtype=dtype)
    # Integer output (PyTorch's): one-hot vectors are data, not something to differentiate.
    xp.put_along_axis(out, a[..., None].astype(np.int64), 1, axis=-1)
    return out


def _same_view(x: Tensor, v: Tensor) -> bool:
    """Whether v views exactly x's elements (the same memory, shape, strides and dtype)."""
    a, b = x._data, v._data
    return (type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape
            and a.strides == b.strides and a.dtype == b.dtype
            and address(a) == address(b))  # fmt: skip
