"""Recorded in-place ops on a view write through to the tensor it views, as in PyTorch.

`y = x * 1; y.diagonal().add_(1.0)` must change y and give y a gradient path through the
update. A recorded in-place op (ops/inplace.py) computes the new value out of place and rebinds
the tensor it was called on; on a view that alone would leave the viewed tensor unchanged. So
recorded views remember the tensor owning their memory (`autograd._mark_view`, from ops marked
`makes_view`: reshape, transpose, basic indexing, expand, as_strided, diagonal), and `write`
here, called when such a view is rebound:

1. finds the flat positions of the view's elements in the base's memory (from the arrays'
   addresses and strides; the base must fill one dense block in some order of its
   dimensions, as tensors that own their memory do: C, F, or permuted, `x.mT * 1`);
2. makes the base's new value differentiably, `base.flatten()` with those positions replaced
   by the view's new value (SetItem: the gradient to the old base is zero there, the new
   value gets the gradient at those positions), writes it into the base's memory, so every
   view of it sees the change, and rebinds the base's node;
3. makes the view, and every other live recorded view of the base, a differentiable read of
   their positions of the new base (their data stay views of the base's memory).

The other direction too: a recorded in-place op on a tensor with live recorded views writes its
new value into the tensor's memory and refreshes the views the same way (`write_base`).

The base's version goes up, so a node that saved the old base (y * y) raises at backward, as
PyTorch's does ("modified by an inplace operation"). A base that saved its own output (exp,
tanh, sigmoid) raises the same way.

A view whose base no one else holds (a temporary) is rebound alone: nothing could see the
write (autograd._shared_view_base). Views of tensors outside the graph, made with grad mode on,
are marked the same way (autograd._mark_unrecorded_view): a graph value written into one
(`buf.select(1, t).copy_(h)` on a plain buffer) writes through and the base joins the graph.
A view made under no_grad carries an autograd._NoGradView: a recorded in-place op on it raises,
as PyTorch's does; `detach()`'s result a DetachedView: a recorded in-place op on it writes its
values into the shared memory (the graph stays its own). Not covered (the view alone
is rebound): a base that is not dense, or views with another dtype (view_as_real, .real).
"""

from __future__ import annotations

import sys
import weakref

import numpy as np

from .. import autograd as _autograd
from .. import autograd_views as _views_module
from .. import backend
from ..autograd import Function
from ..autograd import (
    _AliasRef as AliasRef,
)
from ..autograd import (
    _bump_family as bump_family,
)
from ..autograd import (
    _DetachedView as DetachedView,
)
from ..autograd import (
    _has_live_views as has_live_views,
)
from ..autograd import (
    _mark_overwritten as mark_overwritten,
)
from ..autograd import _new_tensor as new_tensor
from ..autograd import (
    _overwrote_saved_output as overwrote_saved_output,
)
from ..autograd import (
    _shared_view_base as shared_view_base,
)
from ..autograd import _view_source as view_source
from ..autograd import (
    _ViewTag as ViewTag,
)
from ..grad_fn import show_as, show_copy_slices
from ..grad_mode import enable_grad
from ..tensor import Tensor
from .view_rules import storage, writable_alias

_getrefcount = sys.getrefcount

#: Called (no arguments) before each write-through: descent.compile's recorder listens, since
#: replay cannot redo the write into the base's memory, and falls back to eager.
observers: list = []

#: Called with the tensor and the write's `redo` (see `written`) after each unrecorded write
#: into its array (the array paths of in-place ops under no_grad or on tensors that do not
#: require grad, `x[i] = v`, `out=`): descent.compile's recorder listens, and records the
#: write as an instruction when a `redo` describes it, else falls back to eager.
write_observers: list = []


# -- redo functions: how a replay repeats an unrecorded write (`written(t, redo=...)`) -----------
# Each takes the written array first, then the operands: what the eager path did, line for line,
# so a replayed write gives eager's bits.


def redo_assign(dst, values) -> None:
    """dst[...] = values (a copy with NumPy's assignment casting, broadcasting a scalar)."""
    dst[...] = values


def redo_setitem(dst, values, index) -> None:
    """dst[index] = values: x[i] = v, a basic index (ints, slices, None, Ellipsis) or an
    advanced one (arrays: the recorder follows them to their slots)."""
    dst[index] = values


def redo_masked_fill(dst, values, mask) -> None:
    """masked_fill_'s array path: values into dst where mask is set."""
    backend.get_array_module(dst).copyto(dst, values, where=mask, casting="unsafe")


def redo_ufunc(dst, values, name: str, casting: str) -> None:
    """ufunc(dst, values, out=dst): the in-place arithmetic's array path (ops/inplace.py)."""
    getattr(backend.get_array_module(dst), name)(dst, values, out=dst, casting=casting)


def _address(a) -> int:
    if backend.is_cupy_array(a):
        return a.data.ptr
    return a.__array_interface__["data"][0]


def positions(view, base):
    """The flat (C-order) positions in `base` of the elements of `view`, an integer array of
    view's shape, or None when they cannot be worked out from the memory layout."""
    if view.dtype != base.dtype:
        return None
    if base.size == 0:  # an empty view of an empty base: no positions (the writes still count)
        return backend.get_array_module(base).zeros(view.shape, dtype=np.int64)
    c_order = base.flags.c_contiguous
    order = None
    if not (c_order or base.flags.f_contiguous):
        order = _dense_order(base)  # (x.mT * 1 keeps x.mT's strides, as PyTorch's)
        if order is None:
            return None
    item = base.itemsize
    delta = _address(view) - _address(base)
    if delta % item or any(s % item for s in view.strides):
        return None
    xp = backend.get_array_module(base)
    pos = xp.full(view.shape, delta // item, dtype=np.int64)
    for k, (n, s) in enumerate(zip(view.shape, view.strides)):
        shape = [1] * view.ndim
        shape[k] = n
        pos = pos + (xp.arange(n, dtype=np.int64) * (s // item)).reshape(shape)
    if pos.size and (int(pos.min()) < 0 or int(pos.max()) >= base.size):
        return None
    if order is not None:  # a permuted dense base: from its memory order to C order
        multi = xp.unravel_index(pos, tuple(base.shape[d] for d in order))
        index = [None] * base.ndim
        for k, d in enumerate(order):
            index[d] = multi[k]
        pos = xp.ravel_multi_index(tuple(index), base.shape)
    elif not c_order:  # memory order is F: convert to the C-order positions of the same elements
        pos = xp.ravel_multi_index(xp.unravel_index(pos, base.shape, order="F"), base.shape)
    return pos


def _dense_order(a):
    """The dimensions of an array whose elements fill one dense block in a permuted order
    (outermost first), else None."""
    order = sorted(range(a.ndim), key=lambda d: -a.strides[d])
    expected = a.itemsize
    for d in reversed(order):
        if a.shape[d] > 1:
            if a.strides[d] != expected:
                return None
            expected *= a.shape[d]
    return order


def _overlap_error(t: Tensor, base: Tensor) -> RuntimeError:
    return RuntimeError(
        f"unsupported operation: more than one element of the written-to tensor (shape "
        f"{tuple(t.shape)}, a view of shape {tuple(base.shape)}) refers to a single memory "
        "location. Please clone() the tensor before performing the operation (PyTorch's rule: "
        "an expanded tensor cannot be written in place)"
    )


def check_view_write(t: Tensor) -> None:
    """PyTorch's check of a recorded in-place op on a view (before the op's own argument
    checks): a view made under no_grad, or one output of split/unbind, refuses it."""
    vb = getattr(t, "_view_base", None)
    if isinstance(vb, ViewTag) and type(vb) is not DetachedView:  # (a NoGradView)
        raise RuntimeError(
            f"a view (shape {tuple(t.shape)}) was created in no_grad mode and is being modified "
            "in place with grad mode enabled (PyTorch forbids it: whether the write should be "
            "tracked is ambiguous). Make the view and the in-place op both inside the no_grad "
            "block (not tracked) or both outside it (tracked)"
        )
    multi = t.__dict__.get("_multi_output") if vb is not None else None
    if multi is not None:
        raise RuntimeError(
            f"Output {multi[1]} of {multi[0]} (shape {tuple(t.shape)}) is a view and is being "
            "modified inplace. This view is the output of a function that returns multiple "
            "views. Such functions do not allow the output views to be modified inplace "
            "(PyTorch's rule). You should replace the inplace operation by an out-of-place one, "
            f"or clone() the output of {multi[0]} first"
        )


def write(t: Tensor, result: Tensor, overlap_ok: bool | str = False, sel=None) -> bool:
    """Make `result` (a recorded op's output, t's shape and dtype) the new value of the view t
    and write it through to the tensor t views. False (nothing done) when t is not a recorded
    view, or its positions in the base cannot be worked out: the caller then rebinds t alone.

    Views whose elements share memory, as PyTorch (assert_no_internal_overlap, CopySlices):
    a written-to tensor with a 0 stride over more than one element raises, except for
    `overlap_ok=True` (fill_, zero_, masked_fill_: each location takes the last value, and a
    backward through the write raises, as PyTorch's); elements sharing memory otherwise (an
    as_strided or unfold view) are written by the ops that only write (`overlap_ok="copy"`:
    copy_, x[i] = v, and True's): each location takes the last value in C order and every
    element gets its location's gradient; an op that reads them (mul_) raises, its result being
    the order of the writes. `sel` (a NumPy index of t: setitem's basic index as a tuple, whose
    view t[sel] is then the written-to tensor; masked_fill_'s mask; fill_diagonal_'s diagonal,
    with "copy"): only those elements of t are written."""
    if getattr(t, "_view_base", None) is None:
        return False
    if type(t._view_base) is DetachedView:
        return _write_detached(t, result, sel, overlap_ok)
    check_view_write(t)
    view = t._data
    target = view  # (the fills' written-to tensor is t, masked or not: PyTorch's masked_fill_)
    if type(sel) is tuple:  # a basic index: the written-to tensor is that view of t
        target = view[sel if Ellipsis in sel else (*sel, Ellipsis)]  # (an array, even 0-d)
    elif sel is not None and overlap_ok is not True:  # (fill_diagonal_: its elements' memory)
        target = view[sel]
    zero_stride = target.size > 1 and any(s == 0 and n > 1 for n, s in zip(target.shape,
                                                                          target.strides))
    if zero_stride and overlap_ok is not True:
        raise _overlap_error(t, t._view_base)
    base = shared_view_base(t)  # (no local reference before: it counts the base's holders)
    if base is None:  # a temporary base: see autograd._shared_view_base
        return False
    barr = base._data
    # (an empty view shares no memory with anything, but is still a view of the base: PyTorch's
    # leaf rule and version counter apply to it)
    if view is barr or (view.size and not backend.get_array_module(barr).may_share_memory(
            view, barr)):  # fmt: skip
        t._view_base = None  # the base was rebound since (its memory is no longer t's)
        return False
    if base._rg and base._node is None:
        raise RuntimeError(
            f"a view (shape {tuple(t.shape)}) of a leaf tensor that requires grad (shape "
            f"{tuple(base.shape)}) is being used in an in-place operation (PyTorch's rule: the "
            "leaf's gradient would refer to a value that no longer exists); change the leaf "
            "under `with descent.no_grad():`, or work on a clone"
        )
    src = _memory_source(barr, view.dtype)
    pos = None if src is None else positions(view, src)
    if pos is None:
        return False
    xp = backend.get_array_module(barr)
    flat = pos.reshape(-1)
    from .indexing import SetItem, getitem  # noqa: PLC0415 - indexing imports this module
    from .shape import reshape  # noqa: PLC0415

    values, where = reshape(result, (-1,)), flat
    if sel is not None:  # only the selected elements of t are written
        chosen = xp.arange(view.size, dtype=np.int64).reshape(view.shape)[sel].reshape(-1)
        where, values = flat[chosen], getitem(values, Tensor._wrap(chosen))
    overlapped = zero_stride  # (a fill of an expanded view: its backward raises, masked too)
    # (with overlap_ok: written with the repeated positions, SetItem's last value and gathered
    # gradients: a fill's value gets every element's gradient, as PyTorch's CopySlices gives it)
    if where.size and not overlap_ok and xp.unique(where).size != where.size:
        raise _overlap_error(t, base)
    if not getattr(barr.flags, "writeable", True):
        return False
    for fn in observers:
        fn()

    # 2. the base's new value, differentiable in the old base and in the view's new value
    old_base = base._node if base._node is not None else (base if base._rg else None)
    new_flat = SetItem.apply(_flat(base._alias(), view.dtype), values, idx=(where,), basic=False)
    new_base = _unflat(new_flat, base)
    if overlapped and base._rg:  # PyTorch's backward of such a write raises when the old base
        # needs its gradient (CopySlices' copy into the expanded gradient; a fill's value alone
        # gets its gradient)
        new_base = OverlapWrite.apply(new_base, message=str(_overlap_error(t, base)))
    overwrote_saved_output(base)  # (before the rebinding: it looks at the base's old node)
    barr[...] = new_base._data  # every view of the base sees the new values
    base._node, base._rg = new_base._node, new_base._rg
    if base._node is not None:  # shown as PyTorch's CopySlices over the old base and the op's
        # other inputs (descent's flat write and reshapes between are not shown)
        show_copy_slices(base._node, old_base, result._node)
    # 3. t, and every other live recorded view of the base, read their positions of the new
    # base (their data: the updated views of the memory). The versions of the base and of all
    # its views go up: PyTorch's views share one version counter with their base.
    plain = not t._rg
    _refresh(t, base, flat)
    if t._node is not None and base._node is not None:  # PyTorch's view of the new base
        show_as(t, "AsStridedBackward0", (base,))
    _autograd._note_view_output(result, t)
    if plain and t._rg and type(sel) is tuple and not _writes_itself(sel, view.shape):
        # x[i] = v: PyTorch wrote through a view of t (x[...] = v: into t itself), so t is as
        _mark_plain(t)  # its base's other views
    elif "_plain_view" in t.__dict__:  # written in place through itself: a view in the graph
        del t.__dict__["_plain_view"]  # (PyTorch's later in-place ops on it run)
    _refresh_views(base, skip=t)
    bump_family(base)
    _note_saved_output(base, result)  # (after the bump: it is the write that saves it)
    return True


def _writes_itself(sel: tuple, shape) -> bool:
    """Whether PyTorch's `t[sel] = v` copies into t itself rather than into a view of t: every
    item is an Ellipsis or a slice its applySlice skips (start 0, step 1, stop at least the
    dimension's length: `t[:] = v`, `t[:3, ...] = v` on 2 rows); an int, None or any other
    slice makes a view."""
    k = len(sel)
    for n, i in enumerate(sel):
        if i is Ellipsis:
            k = n
        elif type(i) is not slice:
            return False
    dims = list(range(k)) + list(range(len(shape) - (len(sel) - k - 1), len(shape)))
    items = sel[:k] + sel[k + 1 :]
    for i, d in zip(items, dims):
        if not (i.start in (None, 0) and i.step in (None, 1)
                and (i.stop is None or i.stop >= shape[d])):  # fmt: skip
            return False
    return True


# A real view of a complex base (view_as_real, .real, .imag) addresses the base's memory as
# (real, imaginary) pairs: its positions are taken in the base seen as a flat real array, and
# the base's new value is made from that array (view_as_complex), differentiably.


def _memory_source(barr, dtype):
    """The array that a view of `dtype` into barr's memory is positioned in: barr itself, or
    for a real view of a C-contiguous complex barr, barr's memory as a flat real array; None
    when neither."""
    if dtype == barr.dtype:
        return barr
    if barr.dtype.kind == "c" and dtype.kind == "f" and 2 * dtype.itemsize == barr.itemsize:
        if barr.flags.c_contiguous:
            return barr.reshape(-1).view(dtype)
    return None


def _flat(base: Tensor, dtype) -> Tensor:
    """base as the flat (differentiable) Tensor that positions from _memory_source index."""
    from .complex import view_as_real  # noqa: PLC0415
    from .shape import reshape  # noqa: PLC0415

    if dtype == base._data.dtype:
        return reshape(base, (-1,))
    return reshape(view_as_real(base), (-1,))


def _unflat(new_flat: Tensor, base: Tensor) -> Tensor:
    """The inverse of _flat: a Tensor of base's shape and dtype."""
    from .complex import view_as_complex  # noqa: PLC0415
    from .shape import reshape  # noqa: PLC0415

    if new_flat._data.dtype == base._data.dtype:
        return reshape(new_flat, tuple(base.shape))
    return view_as_complex(reshape(new_flat, (*base.shape, 2)))


class StaleView(Function):
    """The node of a view PyTorch no longer lets into the graph: one made under no_grad, or one
    output of split/unbind, whose memory was written in place since while its base requires
    grad. Identity forward; recording an op on it raises PyTorch's error, as there (autograd's
    `_stale_live` counts the live ones; `_stale_check`), and so does a backward reaching it."""

    __slots__ = ("message",)
    keeps_class = True  # (told apart by `type(node) is StaleView` here and in ops/inplace)

    def forward(self, x):
        return x

    def backward(self, gy, ops):
        raise RuntimeError(self.message)

    def __del__(self):
        if type(self) is StaleView and _autograd is not None:  # (None at interpreter exit)
            _autograd._stale_live -= 1


class OverlapWrite(StaleView):
    """The node of a tensor written through a view with a 0 stride (fill_, zero_ or masked_fill_
    on an expanded view): backward raises PyTorch's overlap error; views of it may be taken."""

    __slots__ = ()


def _stale_message(u: Tensor) -> str:
    multi = getattr(u, "_multi_output", None)
    if multi is not None:
        return (
            f"Output {multi[1]} of {multi[0]} (shape {tuple(u.shape)}) is a view and its base or "
            "another view of its base has been modified inplace. This view is the output of a "
            "function that returns multiple views. Such functions do not allow the output views "
            "to be modified inplace (PyTorch's rule). You should replace the inplace operation "
            f"by an out-of-place one, or clone() the outputs of {multi[0]}"
        )
    return _views_module.no_grad_view_message(u.shape)


def stale_view(u: Tensor) -> None:
    """autograd_views.stale_view: u's memory was written; when its base requires grad, u now
    requires grad through a StaleView node (its grad_fn), which raises in backward."""
    src = view_source(u)
    if not (u._rg or (src is not None and src._rg)) or type(u._node) is StaleView:
        return
    with enable_grad():
        stale = StaleView.apply(new_tensor(u._data, True), message=_stale_message(u))
    _autograd._stale_live += 1
    u._node, u._rg = stale._node, True


def _stale_check(parents) -> None:
    """autograd._stale_check: an op is being recorded on a stale view (its node a StaleView):
    PyTorch raises as the op reads the view's grad_fn. An unused plain view's node among the
    parents is used from now on (`_unused_plain`)."""
    for p in parents:
        if type(p) is StaleView:
            raise RuntimeError(p.message)
        if _unused_plain and id(p) in _unused_plain:
            _forget_plain(id(p))


# The nodes of views of a plain tensor that joined the graph by an in-place op elsewhere, that
# no op has used since (id -> weak reference): PyTorch makes such a view's grad_fn when an op
# first reads it, and until then check_inplace sees a leaf that requires grad. The mark outlives
# the consumer (`v.view(())` discarded still used v), so it is kept here, not read from the
# node's reference count alone: while one is alive it counts in autograd's `_stale_live`, and
# `_stale_check` (run per recorded op then) forgets those it meets as a parent.
_unused_plain: dict[int, weakref.ref] = {}


def _forget_plain(key: int) -> None:
    if _unused_plain.pop(key, None) is not None and _autograd is not None:
        _autograd._stale_live -= 1  # (None at interpreter exit)


def _mark_plain(u: Tensor) -> None:
    """u (a view just refreshed into the graph) is unused: noted on its tensor as the count of
    references to its new node (each consumer's parents tuple raises it) and in _unused_plain."""
    node = u._node
    u.__dict__["_plain_view"] = _getrefcount(node) - 1
    key = id(node)
    if key not in _unused_plain:
        _unused_plain[key] = weakref.ref(node, lambda _ref, key=key: _forget_plain(key))
        _autograd._stale_live += 1


def unused_plain(node) -> bool:
    """Whether no op has used the plain view whose node this is since it joined the graph."""
    return id(node) in _unused_plain


_views_module.stale_view = stale_view
_autograd._stale_check = _stale_check


# An op applied in place through a view (y[0].sigmoid_()) or to a tensor with live views saved
# its output for backward, and that output now lives in the family's memory (written there):
# PyTorch's node saved that memory, so a later write into it makes backward raise. The node is
# noted on the tensor owning the memory (`_saved_outputs`, weak) and marked overwritten at the
# next write into the family (autograd_views.bump_family calls family_written).


def _note_saved_output(base: Tensor, result: Tensor) -> None:
    node = result._node
    if node is None or node.out_data is None or node.out_data is not result._data:
        return
    top = base
    while True:  # the tensor owning the memory (autograd_views.bump_family's walk up)
        up = view_source(top)
        if up is None or up is top:
            break
        top = up
    saved = top.__dict__.get("_saved_outputs")
    if saved is None:
        saved = top.__dict__["_saved_outputs"] = weakref.WeakSet()
    saved.add(node)


def family_written(top: Tensor) -> None:
    saved = top.__dict__.get("_saved_outputs") if hasattr(top, "__dict__") else None
    if saved:
        for node in list(saved):
            mark_overwritten(node)
        saved.clear()


_views_module.family_written = family_written


def written(t: Tensor, redo: tuple | None = None) -> None:
    """After an unrecorded write into t's array (the array paths of ops/inplace.py, x[i] = v):
    the version of t and of its family goes up (bump_family); when that array is the output its
    op saved for backward (Exp, Tanh, Sigmoid...), backward through the op must raise as
    PyTorch's does, not read the new values as the op's output, and so for the tensor t views.

    `redo` is `(fn, *operands)` when the write is `fn(t's array, *operands)` (a `redo_*`
    function above; operands are arrays or constants): descent.compile records it and replays
    the write; without one a compiled function that makes the write runs eagerly."""
    bump_family(t)
    for fn in write_observers:
        fn(t, redo)
    overwrote_saved_output(t)
    if getattr(t, "_view_base", None) is not None:  # (a slot read: autograd.init_tensor sets it)
        src, seen = view_source(t), t
        while src is not None and src is not seen:  # up to the memory's owner: a view of a
            overwrote_saved_output(src)  # detach() of y.sigmoid_()'s output writes y's too
            seen, src = src, view_source(src)


def _overlapped_positions(arr):
    """(flat, positions): the writable flat memory of the read-only array arr (an expanded
    one) and its elements' positions in it in C order, or None where the memory is read-only
    or not one block of arr's dtype."""
    if writable_alias(arr) is None:
        return None
    try:
        flat, off = storage(arr)
    except RuntimeError:
        return None
    if flat.dtype != arr.dtype or not getattr(flat.flags, "writeable", True):
        return None
    xp = backend.get_array_module(arr)
    ids = xp.arange(flat.size, dtype=np.int64)[off:]
    pos = xp.lib.stride_tricks.as_strided(
        ids, arr.shape, tuple(st // arr.itemsize * ids.itemsize for st in arr.strides))
    return flat, pos.reshape(-1)


def _write_detached(t: Tensor, result: Tensor, sel=None, overlap_ok: bool | str = False) -> bool:
    """A recorded in-place op on `x.detach()`: its values go into the memory it shares with x
    (x sees them, as in PyTorch), its graph is t's alone, and x's version goes up. A detached
    expanded tensor (read-only) takes `x[i] = v` into a selection whose elements do not share
    memory (`sel`, a basic index), as PyTorch's copy_ into that view."""
    arr = t._data
    if result._data.shape != arr.shape:
        return False
    dst, values = arr, result._data
    if type(sel) is tuple:  # x[i] = v: only the selection (an expanded x's other elements
        idx = sel if Ellipsis in sel else (*sel, Ellipsis)  # share its memory)
        if not getattr(arr.flags, "writeable", True):
            dst = writable_alias(arr)
            if dst is None:
                return False
        dst, values = dst[idx], values[idx]
        if any(st == 0 and n > 1 for st, n in zip(dst.strides, dst.shape)):
            return False
    elif not getattr(arr.flags, "writeable", True) and arr.size:  # (an empty one: nothing
        # to write, but its views join the graph). An expanded x's detach() written by an op
        # that lets elements share memory (copy_ from itself, fill_, zero_, masked_fill_:
        # `overlap_ok` True): PyTorch writes its memory, each location taking the last value
        # in C order, and t's views are regenerated as as_strided views of t (below); before,
        # t alone was rebound and its views stayed outside the graph (view fuzz 28100085311724)
        if overlap_ok is not True:
            return False
        dst = _overlapped_positions(arr)
        if dst is None:
            return False
    src = t._view_base()
    for fn in observers:
        fn()
    if src is not None and backend.get_array_module(arr).may_share_memory(arr, src._data):
        overwrote_saved_output(src)
    if type(dst) is tuple:  # (the flat memory, the C-order positions of arr's elements)
        dst[0][dst[1]] = values.reshape(-1)  # repeated positions: the last value
    elif dst.size:
        dst[...] = values
    t._node, t._rg = result._node, result._rg
    _refresh_views(t)  # t's own views read its new value (they require grad if it does)
    bump_family(t)  # t's, x's and their views' (one counter, as in PyTorch)
    _note_saved_output(t, result)
    return True


def write_data_alias(t: Tensor, result: Tensor) -> bool:
    """A recorded in-place op on `p.data` (`p.data.copy_(w)`, w requiring grad): the values go
    into the memory t shares with p, so p sees them, as PyTorch's `.data` shares p's storage; t
    joins the graph. Rebinding t alone lost the write (p kept its old values). t keeps its own
    version counter (PyTorch's `.data` does not share p's). False where the memory cannot take
    the result (another shape, read-only): the caller rebinds t."""
    arr = t._data
    data = result._data
    if data.shape != arr.shape or not getattr(arr.flags, "writeable", True):
        return False
    overwrote_saved_output(t)
    arr[...] = data
    node = result._node
    if node is not None and node.out_data is data:  # (its in-place check compares arrays)
        node.out_data = arr
    t._node = node
    t._rg = result._rg
    bump_family(t)
    return True


def write_base(t: Tensor, result: Tensor) -> bool:
    """Make `result` t's new value when t has live recorded views: written into t's memory, so
    the views see it, and each view made a read of the new t. False (nothing done) when t has
    none: the caller rebinds t, as for any tensor."""
    if not has_live_views(t):
        return False
    arr = t._data
    if not getattr(arr.flags, "writeable", True) or result._data.shape != arr.shape:
        return False
    for fn in observers:
        fn()
    overwrote_saved_output(t)  # (before the rebinding: it looks at t's old node)
    arr[...] = result._data
    t._node, t._rg = result._node, result._rg
    _refresh_views(t)
    bump_family(t)
    _note_saved_output(t, result)
    return True


def _refresh_views(base: Tensor, skip: Tensor | None = None) -> None:
    """Make every live recorded view of base (but `skip`) a read of base's new value."""
    arr = base._data
    xp = backend.get_array_module(arr)
    for ref in list((getattr(base, "_views", None) or {}).values()):
        u = ref()
        if u is None or u is skip or isinstance(ref, AliasRef) or (
                u._data.size and not xp.may_share_memory(u._data, arr)):  # fmt: skip
            continue  # (an alias, a detach() or a no_grad view, stays out of the graph)
        src = _memory_source(arr, u._data.dtype)
        pos_u = None if src is None else positions(u._data, src)
        if pos_u is not None or src is arr:
            plain = not u._rg
            if pos_u is not None:
                _refresh(u, base, pos_u.reshape(-1))
            else:  # base's elements share memory (an expand): no unique positions. PyTorch
                _refresh_strided(u, base)  # regenerates the view as an as_strided of base
            if plain and u._rg:  # a view of a tensor that just joined the graph: PyTorch
                # refuses an in-place op on it (a "leaf") until an op uses it (which makes its
                # grad_fn): _mark_plain (ops/inplace._check_leaf_inplace)
                _mark_plain(u)


def _refresh_strided(u: Tensor, base: Tensor) -> None:
    """Make u a differentiable as_strided view of base with u's own geometry (PyTorch's
    regenerated view of a base whose positions are not unique: AsStridedBackward0)."""
    from .gaps_tensor_strided import as_strided, storage_offset_of  # noqa: PLC0415

    new_u = as_strided(base, tuple(u.shape), u.stride(), storage_offset_of(u))
    old = u._node
    u._node, u._rg = new_u._node, new_u._rg
    if _unused_plain and id(old) in _unused_plain:
        _forget_plain(id(old))
        if "_plain_view" in u.__dict__:
            _mark_plain(u)


def _refresh(u: Tensor, base: Tensor, flat) -> None:
    """Make u a differentiable read of the flat positions `flat` of base (u's data unchanged)."""
    from .indexing import getitem  # noqa: PLC0415
    from .shape import reshape  # noqa: PLC0415

    new_u = reshape(getitem(_flat(base, u._data.dtype), Tensor._wrap(flat)), tuple(u.shape))
    old = u._node
    u._node, u._rg = new_u._node, new_u._rg  # (its version: the caller's bump_family)
    if _unused_plain and id(old) in _unused_plain:  # (still unused, its grad_fn unread: the
        _forget_plain(id(old))  # mark moves along)
        if "_plain_view" in u.__dict__:
            _mark_plain(u)
