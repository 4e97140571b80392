"""In-place updates: x += y, x.add_(y), x.copy_(src), x.fill_(v), x.masked_fill_(m, v), ...

Two ways to run, chosen per call:

* Under no_grad (or on tensors outside any graph) they write into the existing array, so views
  and optimizer state see the change. This is how optimizers update parameters.
* When the result must be recorded (grad mode on, and the tensor or the operand requires grad),
  the out-of-place op runs on an alias of the tensor and the tensor is rebound to the result
  (`_rebind`): the old value stays available to the nodes that saved it, and the graph gets a
  node for the update, so gradients flow through it as through any op.

Either way the version counter goes up. Why: a node that saved the tensor for backward (Mul
saves both inputs) would otherwise use the new value in backward and silently produce a wrong
gradient; the engine compares the saved version with the current one and raises instead.
A leaf that requires grad may not be changed in place while grad mode is on (PyTorch's rule):
its gradient would no longer be the gradient of anything the user computed.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from .. import autograd as _autograd
from .. import backend
from ..autograd import _bump_family as bump_family
from ..autograd import _NoGradView as NoGradView
from ..autograd import _overwrote_saved_output as overwrote_saved_output
from ..errors import DescentError
from ..float8 import astype as float8_astype
from ..float8 import is_float8
from ..grad_fn import mark_edges, show_as
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor, get_default_dtype
from ._common import (
    as_tensor,
    check_devices,
    fill_int,
    half_value,
    refuse_bool_uint64,
    result_type,
    wrap_int,
)
from .arithmetic import _refuse_bool_sub, add, div, mul, sub
from .elementwise import (
    cast,
    check_bool_mask,
    check_clamp_bounds,
    check_fill_value,
    clamp,
    clip_array,
    clone,
    masked_fill,
)
from .out_arg import can_cast
from .overlap_rounds import internal_overlap
from .overlap_rounds import once as overlap_once
from .overlap_rounds import recorded as overlap_recorded
from .overlap_rounds import write as overlap_write
from .view_rules import overlaps, writable_alias
from .view_write import (
    StaleView,
    check_view_write,
    redo_assign,
    redo_masked_fill,
    redo_ufunc,
    unused_plain,
    write_base,
    write_data_alias,
    written,
)
from .view_write import write as write_view

# The version counter is what makes in-place changes safe: nodes record the versions of the
# inputs they saved (autograd.record_node) and backward compares them (run_backward).
#
# An unrecorded write into t's array (the array paths below): view_write.written (the version
# bump of t's family, and the check of outputs saved for backward)
_written = written


# In-place ops that PyTorch lets write into a tensor whose elements share memory (an expanded
# one): every element sharing a location gets the same value
_OVERLAP_OK = frozenset(["fill_", "zero_", "masked_fill_", "fill_diagonal_", "copy_ (from itself)"])


def _check_leaf_inplace(t: Tensor, op: str) -> None:
    # PyTorch's assert_no_internal_overlap: a tensor with a 0 stride over more than one element
    # (an expand or an as_strided view) cannot be written by most ops. (NumPy's broadcast
    # arrays are read-only and fail later with the same error; as_strided's are writable.)
    a = t._data
    if a.base is not None:  # t's array is a view of other memory (the checks of views)
        if (type(a) is np.ndarray and 0 in a.strides and a.size and op not in _OVERLAP_OK
                and any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape))):  # fmt: skip
            if is_grad_enabled():  # PyTorch's autograd checks of a view come first (an output
                check_view_write(t)  # of split, a view made under no_grad)
            raise DescentError(
                f"{op}: unsupported operation: more than one element of the written-to tensor "
                "refers to a single memory location. Please clone() the tensor before "
                f"performing the operation. (shape {tuple(t.shape)}, stride {t.stride()})"
            )
        vb = getattr(t, "_view_base", None)
        plain = t.__dict__.get("_plain_view")
        if (plain is not None and vb is not None and vb.__class__ is Tensor and is_grad_enabled()
                and sys.getrefcount(t._node) - 1 <= plain and unused_plain(t._node)):  # fmt: skip
            # a view taken of a tensor outside the graph, which joined it since by an in-place
            # op elsewhere, and that no op used since: PyTorch sees a leaf that requires grad
            # (ops/view_write._refresh_views)
            raise RuntimeError(
                f"{op}: a leaf Variable that requires grad is being used in an in-place "
                f"operation: this view (shape {tuple(t.shape)}) was taken of a tensor (shape "
                f"{tuple(vb.shape)}) before an in-place op made that tensor require grad "
                "(PyTorch's rule); take the view again after that op, or clone() it"
            )
        if (vb is not None and vb.__class__ is Tensor and vb._rg and vb._node is None
                and is_grad_enabled()):  # fmt: skip
            # (checked before the op runs, as PyTorch's check_inplace: other errors come after)
            raise RuntimeError(
                f"{op}: a view (shape {tuple(t.shape)}) of a leaf tensor that requires grad "
                f"(shape {tuple(vb.shape)}) is being used in an in-place operation (PyTorch's "
                "rule: the leaf's gradient would refer to a value that no longer exists); "
                "change the leaf under `with descent.no_grad():`, or work on a clone"
            )
    # A leaf that requires grad is a parameter: changing it under grad mode would make its
    # gradient refer to a value that no longer exists. Optimizers update under no_grad.
    if t._rg and t._node is None and is_grad_enabled():
        if type(getattr(t, "_view_base", None)) is NoGradView:
            return  # a view made under no_grad: ops/view_write.write raises PyTorch's error
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (shape {tuple(t.shape)}) is being "
            "modified in place "
            "while grad mode is on; wrap the update in `with descent.no_grad():`"
        )


def _records(t: Tensor, *others) -> bool:
    # Recorded when a gradient could flow through the update: grad mode on and t or an operand
    # requires grad. Otherwise the cheap path writes into the array.
    if not is_grad_enabled():
        return False
    return t._rg or any(isinstance(o, Tensor) and o._rg for o in others)


def _rebind(t: Tensor, result: Tensor, overlap_ok: bool | str = False, sel=None) -> Tensor:
    """Make t the result of a recorded in-place op. The op was applied to `t._alias()` (a
    second Tensor object holding t's old value and node), so what it saved for backward is not
    changed by rebinding t here."""
    if result._data.dtype != t._data.dtype:
        # An in-place op keeps t's dtype (float32 += float64 stays float32); a result of a higher
        # kind (float into int) raises, as in PyTorch. The cast is differentiable.
        result = cast(result, _castable(result._data.dtype, t, "in-place op"))
    if write_view(t, result, overlap_ok, sel):  # t views another tensor's memory: written through
        return t
    if write_base(t, result):  # t's memory is viewed by live views: they see the new value
        return t
    if t._data_alias and write_data_alias(t, result):  # t is a `.data`: its source sees it
        return t
    # Rebinding mutates t (the user's object), not the alias: every reference the user holds now
    # sees the new value and its node, as after PyTorch's in-place op. When t's old value is the
    # output its node saved for backward (exp, sigmoid, softmax), that node now raises in
    # backward, as PyTorch's does (its saved output was modified), though the alias kept it.
    overwrote_saved_output(t)
    data = result._data
    if type(data) is np.ndarray and type(t._data) is np.ndarray and data.strides != t._data.strides:
        data = _keep_layout(t._data, result)
    t._data = data
    t._node = result._node
    t._rg = result._rg
    bump_family(t)
    return t


def _keep_layout(old, result: Tensor):
    """result's values in the memory order of t's old array `old`: an in-place op keeps the
    tensor's strides in PyTorch (`y = x.mT.sin(); y.index_add_(...)`: index_add's result is
    C-ordered, and `y.view(4, -1)` must still raise). The result's node, if it saved its output
    array, saves the new one (its in-place check compares arrays)."""
    data = result._data
    if old.shape != data.shape or data.size < 2:  # (t_, transpose_: a new shape and layout)
        return data
    kept = backend.get_array_module(old).empty_like(old, dtype=data.dtype)
    if kept.strides == data.strides:
        return data
    kept[...] = data
    node = result._node
    if node is not None and node.out_data is data:
        node.out_data = kept
    return kept


def _unwritable(t: Tensor, op: str) -> None:
    """NumPy refused to write into t's array (a ValueError): raise PyTorch's error instead
    where the array is read-only, as an expanded tensor's is; an empty one takes the write
    (nothing to write, as in PyTorch). Only on the error path: no cost to a write."""
    a = t._data
    if getattr(a.flags, "writeable", True):
        return  # another ValueError: the caller's own message
    if a.size == 0:
        raise _NothingToWrite
    if any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape)):
        raise DescentError(
            f"{op}: unsupported operation: more than one element of the written-to tensor "
            "refers to a single memory location. Please clone() the tensor before performing "
            f"the operation. (shape {tuple(t.shape)}, stride {t.stride()}: an expanded tensor)"
        )
    raise DescentError(
        f"{op}: the tensor's memory is read-only (made from a read-only NumPy array or "
        f"buffer; shape {tuple(t.shape)}); clone() it first"
    )


class _NothingToWrite(Exception):
    """An empty read-only tensor: the write has nothing to do (caught by _set)."""


def _write_failed(t: Tensor, value, op: str) -> None:
    """`t._data[...] = value` raised NumPy's ValueError (called from the except clause, so
    a write that works costs nothing more): PyTorch's fill_ / zero_ write into an expanded
    tensor's memory (every element sharing a location gets the same value; NumPy's broadcast
    is read-only), and so do the other writes into a part of an expanded tensor whose
    elements do not share memory (e.expand(2, 2)[0, :1].copy_(v)); an empty one takes any
    write, the rest raise PyTorch's error."""
    a = t._data
    if not getattr(a.flags, "writeable", True) and (
        op == "fill_" or not any(st == 0 and n > 1 for st, n in zip(a.strides, a.shape))
    ):
        alias = writable_alias(a)
        if alias is not None:
            alias[...] = value
            return
    try:
        _unwritable(t, op)
    except _NothingToWrite:
        return  # (the caller bumps the version)
    raise  # noqa: PLE0704 - re-raises NumPy's error (the one being handled by the caller)


def _same_shape(t: Tensor, result: Tensor, op: str) -> Tensor:
    """result, checked to have t's shape: an in-place op never grows its tensor (PyTorch)."""
    if result._data.shape != t._data.shape:
        _broadcast_error(t, result._data.shape, op)
    return result


def _broadcast_error(t: Tensor, shape, op: str):
    raise DescentError(
        f"{op}: output with shape {list(t.shape)} doesn't match the broadcast shape "
        f"{list(shape)}, as in PyTorch: an in-place op cannot grow its tensor; use the "
        "out-of-place op (x = x + y)"
    )


def _castable(dt, t: Tensor, op: str):
    """t's dtype, after PyTorch's check that a result of dtype `dt` may be written into t
    (torch.can_cast: no float into an integer tensor, but int16 into uint8 wraps as a cast)."""
    if not can_cast(np.dtype(dt), t._data.dtype):
        raise DescentError(
            f"{op}: result type {dt} can't be cast to the desired output type {t._data.dtype} "
            f"(shape {tuple(t.shape)}), as in PyTorch; use the out-of-place op or convert the "
            "tensor first, e.g. x = x.float()"
        )
    return t._data.dtype


_F16 = np.dtype(np.float16)


def check_overlap(t: Tensor, src, op: str, full_ok: bool = True) -> None:
    """PyTorch's overlap check of an in-place op (get_overlap_status): an operand whose memory
    overlaps the written-to tensor's in part (x.add_(x[0]), x.add_(x.mT), a copy_ between
    overlapping slices) raises, as the result would depend on the order of the writes; the very
    same elements (x.add_(x)) are fine when `full_ok` (elementwise ops), not for index_add_.
    As in PyTorch, only tensors whose elements fill a dense block are checked (the others are
    "too hard" and pass). Cheap when the arrays have different owners (the common case)."""
    if not isinstance(src, Tensor):
        return
    if t._data is src._data:  # the very same tensor (PyTorch's is_same: a full overlap, even
        if full_ok:  # when empty)
            return
        _overlap_raise(t, src, op)
    if overlaps(t._data, src._data, full_ok):
        _overlap_raise(t, src, op)


def _overlap_raise(t: Tensor, src: Tensor, op: str):
    raise DescentError(
        f"{op}: unsupported operation: some elements of the input tensor (shape "
        f"{tuple(src.shape)}) and the written-to tensor (shape {tuple(t.shape)}) refer to a "
        "single memory location. Please clone() the tensor before performing the operation "
        "(PyTorch's rule: the result would depend on the order of the writes)"
    )


def _inplace(t: Tensor, other, outofplace, ufunc: str, op: str) -> Tensor:
    _check_leaf_inplace(t, op)
    check_overlap(t, other, op)
    if _records(t, other):
        if _autograd._stale_live and type(t._node) is StaleView:  # PyTorch's in-place message,
            check_view_write(t)  # before the op's use of the stale view raises
        # (an unfold's shared elements: ops/overlap_rounds)
        if t._data.base is not None and internal_overlap(t._data):
            out = _same_shape(t, outofplace(overlap_once(t._alias(), t._data), other), op)
            return _rebind(t, overlap_recorded(t, out, lambda: _overlap_value(
                t, outofplace(t, other), op), (other,)), overlap_ok="copy")  # fmt: skip
        return _rebind(t, _same_shape(t, outofplace(t._alias(), other), op))
    if t._data.base is not None and internal_overlap(t._data):
        return overlap_write(t, lambda: _overlap_value(t, outofplace(t, other), op), (other,))
    dt0 = t._data.dtype  # (NumPy's builtin dtypes are singletons: `is` is the cheap test)
    tensor_other = isinstance(other, Tensor)
    if (
        dt0.kind == "V"
        or (tensor_other and other._data.dtype.kind == "V")
        or (dt0 is _F16 and not tensor_other)
    ):
        # bfloat16, and float16 with a scalar: NumPy's ufunc would round a scalar to the
        # tensor's dtype first (PyTorch keeps mul's and div's in float32: x *= -1e9 on float16
        # is -0.0 at 0, not nan): the out-of-place op (ops/bfloat16.py, ops/arithmetic.py),
        # written back
        result = _same_shape(t, outofplace(t._alias(), other), op)
        dt = _castable(result._data.dtype, t, op)
        t._data[...] = result._data.astype(dt, copy=False)
        same = result._data.dtype == t._data.dtype  # (then the assignment is the whole write)
        _written(t, (redo_assign, result._data) if same else None)
        return t
    # The array path: one ufunc with out=t.data. casting="same_kind" refuses e.g. writing
    # float results into an int tensor instead of truncating silently; an integer result of
    # the other signedness (uint8 += int8: int16) is cast back as PyTorch does (it wraps).
    if tensor_other:
        o = other._data
    else:
        if dt0.kind == "b" and type(other) is int:
            refuse_bool_uint64(other)  # (x += 2**63: PyTorch's promotion error, not NumPy's)
        o = wrap_int(other, dt0)
    xp = backend.get_array_module(t._data)
    casting = "same_kind"
    if isinstance(other, Tensor):
        check_devices(op, t, other)
        if dt0.kind in "iu" and other._data.dtype.kind in "iub" and ufunc != "true_divide":
            casting = "unsafe"
    if tensor_other and o.dtype != dt0 and dt0.kind in "fc":
        with np.errstate(over="ignore"):  # float16 *= int32: in float16, as PyTorch (70000
            o = o.astype(result_type(t, other), copy=False)  # is inf); NumPy: in float64
    try:
        getattr(xp, ufunc)(t._data, o, out=t._data, casting=casting)
    except TypeError:  # NumPy's casting error: PyTorch's RuntimeError and message instead
        dt = result_type(t, other)
        _castable(get_default_dtype() if ufunc == "true_divide" and dt.kind not in "fcV"
                  else dt, t, op)  # fmt: skip
        raise
    except ValueError:  # NumPy's "non-broadcastable output operand", or a read-only array
        alias = _expanded_part(t._data)
        if alias is not None:  # a part of an expanded tensor whose elements do not share
            try:  # memory: PyTorch writes into its memory (as fill_/copy_: _write_failed)
                getattr(xp, ufunc)(alias, o, out=alias, casting=casting)
            except TypeError:
                dt = result_type(t, other)
                _castable(get_default_dtype() if ufunc == "true_divide" and dt.kind not in "fcV"
                          else dt, t, op)  # fmt: skip
                raise
            _written(t)
            return t
        try:
            _unwritable(t, op)
        except _NothingToWrite:
            # An empty expanded tensor: NumPy refused its read-only array before checking the
            # casting and the shapes; PyTorch checks both even with nothing to write
            # (torch.zeros(0, dtype=torch.long).expand(0).div_(2) raises)
            dt = result_type(t, other)
            _castable(get_default_dtype() if ufunc == "true_divide" and dt.kind not in "fcV"
                      else dt, t, op)  # fmt: skip
            try:
                shape = np.broadcast_shapes(t._data.shape, np.shape(o))
            except ValueError:
                shape = None
            if shape != t._data.shape:
                _broadcast_error(t, shape if shape is not None else np.shape(o), op)
            _written(t)  # PyTorch bumps the version of an empty tensor written in place too
            return t
        _broadcast_error(t, np.broadcast_shapes(t._data.shape, np.shape(o)), op)
    # (an operand converted above: the replay converts the operand's array again)
    _written(t, (redo_ufunc, o, ufunc, casting) if not tensor_other or o is other._data
             else (_redo_ufunc_cast, other._data, ufunc, casting, o.dtype))  # fmt: skip
    return t


def _overlap_value(t: Tensor, result: Tensor, op: str):
    """An in-place op's result (computed out of place) as the array written into t."""
    r = _same_shape(t, result, op)._data
    return r.astype(_castable(r.dtype, t, op), copy=False)


def _expanded_part(a):
    """A writable alias of a read-only (broadcast) array whose elements do not share memory,
    else None (only on the error path)."""
    if getattr(a.flags, "writeable", True) or not a.size or any(
        st == 0 and n > 1 for st, n in zip(a.strides, a.shape)
    ):
        return None
    return writable_alias(a)


def _redo_ufunc_cast(dst, values, name: str, casting: str, dtype) -> None:
    """The arithmetic's array path with an operand of another dtype converted first (float16
    *= int32: in float16), for descent.compile's replay of the write (view_write.written)."""
    with np.errstate(over="ignore"):
        o = values.astype(dtype, copy=False)
    getattr(backend.get_array_module(dst), name)(dst, o, out=dst, casting=casting)


def add_(t: Tensor, other, alpha=1) -> Tensor:
    if alpha != 1:  # (Tensor.add_(other, alpha=) with a tensor operand)
        _check_leaf_inplace(t, "add_")  # (before the product uses other: it may be t)
        check_overlap(t, other, "add_")  # (other itself, before the product)
        # other * alpha read at each visit (ops/overlap_rounds)
        if t._data.base is not None and internal_overlap(t._data):
            return _inplace(t, other, lambda a, o: add(a, o * alpha), "add", "add_")
        other = other * alpha
    return _inplace(t, other, add, "add", "add_")


def sub_(t: Tensor, other, alpha=1) -> Tensor:
    _refuse_bool_sub(t, other)  # PyTorch refuses `-` with a bool operand, in place too
    if alpha != 1:  # (Tensor.sub_(other, alpha=) with a tensor operand)
        _check_leaf_inplace(t, "sub_")
        check_overlap(t, other, "sub_")
        if t._data.base is not None and internal_overlap(t._data):
            return _inplace(t, other, lambda a, o: sub(a, o * alpha), "subtract", "sub_")
        other = other * alpha
    return _inplace(t, other, sub, "subtract", "sub_")


def mul_(t: Tensor, other) -> Tensor:
    return _inplace(t, other, mul, "multiply", "mul_")


def div_(t: Tensor, other, *, rounding_mode=None) -> Tensor:
    if rounding_mode is not None:  # div_(y, rounding_mode='floor'|'trunc'): keeps t's dtype
        _check_leaf_inplace(t, "div_")
        check_overlap(t, other, "div_")
        if _records(t, other):
            if t._data.base is not None and internal_overlap(t._data):
                out = _same_shape(t, div(overlap_once(t._alias(), t._data), other,
                                         rounding_mode=rounding_mode), "div_")  # fmt: skip
                return _rebind(t, overlap_recorded(t, out, lambda: _overlap_value(
                    t, div(t, other, rounding_mode=rounding_mode), "div_"), (other,)),
                    overlap_ok="copy")  # fmt: skip
            return _rebind(t, _same_shape(
                t, div(t._alias(), other, rounding_mode=rounding_mode), "div_"))  # fmt: skip
        if t._data.base is not None and internal_overlap(t._data):
            return overlap_write(t, lambda: _overlap_value(
                t, div(t, other, rounding_mode=rounding_mode), "div_"), (other,))  # fmt: skip
        r = _same_shape(t, div(t, other, rounding_mode=rounding_mode), "div_")
        _castable(r._data.dtype, t, "div_")  # (bool // 2 is int64: not into a bool tensor)
        return copy_(t, r)
    return _inplace(t, other, div, "true_divide", "div_")


def clamp_(t: Tensor, min=None, max=None) -> Tensor:
    try:
        _check_leaf_inplace(t, "clamp_")
    except DescentError:  # an expanded t: PyTorch's clamp checks its dtypes before the overlap
        if min is not None or max is not None:
            check_clamp_bounds("clamp_", t, min, max)  # (complex: its NotImplementedError)
        raise
    if min is None and max is None:  # as clamp (PyTorch raises for clamp_() too)
        raise DescentError("clamp_: give at least one of min= and max=")
    check_clamp_bounds("clamp_", t, min, max)
    if t._data.dtype.kind in "biu":  # a float bound makes a float result, an int bound an
        for b in (min, max):  # int64 one: neither fits a bool tensor (PyTorch's cast check)
            if b is not None:
                _castable(result_type(t, b), t, "clamp_")
    if _records(t, min, max):
        # (an unfold's shared elements: ops/overlap_rounds)
        if t._data.base is not None and internal_overlap(t._data):
            out = _same_shape(t, clamp(overlap_once(t._alias(), t._data), min, max), "clamp_")
            return _rebind(t, overlap_recorded(t, out, lambda: _overlap_value(
                t, clamp(t, min, max), "clamp_"), (min, max)), overlap_ok="copy")  # fmt: skip
        return _rebind(t, _same_shape(t, clamp(t._alias(), min, max), "clamp_"))
    nan_bound = any(isinstance(b, float) and b != b for b in (min, max))
    if t._data.dtype == _F16 and not nan_bound:  # PyTorch's overflow error for a bound beyond
        min, max = half_value(min), half_value(max)  # 65504, as clamp (not beside a nan one)
    elif t._data.dtype.kind in "iu":  # int bounds take t's dtype: the range check, uint8 wraps
        min, max = fill_int(min, t._data.dtype), fill_int(max, t._data.dtype)
    # A tensor bound's own array (np.clip read it through Tensor.__array__, the same array,
    # which descent.compile's read guard refused: h.clamp_(min=b) under no_grad ran eagerly);
    # the replay's write takes it as a slot operand.
    # A tensor bound whose dtype the result type does not take (a 0-d int64 bound of a uint8
    # t) is cast to it first, wrapping as PyTorch's clamp (clamp_(min=tensor(-2)) of uint8
    # fills 254, as clamp does; it was compared as -2)
    min, max = (b if not isinstance(b, Tensor) else b._data.astype(t._data.dtype)
                if b._data.dtype != t._data.dtype and result_type(t, b) == t._data.dtype
                else b._data for b in (min, max))  # fmt: skip
    with np.errstate(over="ignore"):  # (a float16 bound beside a nan one)
        clipped = clip_array(t._data, min, max)
    if clipped.shape != t._data.shape:
        _broadcast_error(t, clipped.shape, "clamp_")
    try:
        t._data[...] = clipped
    except ValueError:
        _write_failed(t, clipped, "clamp_")
    _written(t, (_redo_clamp, min, max))
    return t


def _redo_clamp(dst, lo, hi) -> None:
    """clamp_'s array path with its bounds already converted (a replayed write)."""
    with np.errstate(over="ignore"):
        dst[...] = clip_array(dst, lo, hi)


def copy_(t: Tensor, src) -> Tensor:
    """Copy `src`'s values into t (broadcasting); differentiable with respect to src."""
    # (PyTorch's autograd checks come first; then is_same: nothing to copy, the version still
    # goes up, and no internal-overlap check for an expanded t)
    same = src is t or _same_data(t, src)
    _check_leaf_inplace(t, "copy_ (from itself)" if same else "copy_")
    if same and not _records(t, src):  # (recorded: the view checks of ops/view_write apply)
        _written(t)
        return t
    src = as_tensor(src, t)
    check_overlap(t, src, "copy_")
    if src._data.shape != t._data.shape and (
        len(src.shape) > len(t.shape)
        or any(s not in (1, n) for s, n in zip(src.shape[::-1], t.shape[::-1]))
    ):  # PyTorch's RuntimeError (NumPy's ValueError otherwise)
        raise DescentError(
            f"copy_: the source's shape {tuple(src.shape)} cannot be broadcast to the tensor's "
            f"{tuple(t.shape)}, as in PyTorch (the sizes must match or be 1)"
        )
    # t's old value is overwritten entirely: the result is a copy of src in t's dtype and shape,
    # and t's old value stays connected with a zero gradient (PyTorch's CopyBackwards gives it
    # zeros, not None: an optimizer with momentum still steps a parameter behind it).
    if _records(t, src):
        b = src if src.shape == t.shape else src.broadcast_to(t.shape)
        # (from itself: no internal-overlap check, PyTorch's is_same returns first; a write
        # into an expanded view then raises in backward, as there: view_write's OverlapWrite)
        out = _zero_link(t) + clone(cast(b, t.dtype))
        # PyTorch's node for this is CopyBackwards, whose inputs are t's old node and src's
        # (its next_functions; descent's zero link and clone between are not shown)
        mark_edges(out._node, "torch::autograd::CopyBackwards",
                   (_autograd._parent(t), _autograd._parent(src)))  # fmt: skip
        # the last of PyTorch's visits decides
        if not same and t._data.base is not None and internal_overlap(t._data):
            out = overlap_recorded(t, out, lambda: src._data, (src,))
        return _rebind(t, out, overlap_ok=same or "copy")
    # copy_ moves data across devices (PyTorch's copy_ does), unlike arithmetic, which refuses.
    if src.device != t.device:
        v = backend.to_device(src._data, t.device)
    else:
        v = src._data
    if v.dtype != t._data.dtype and (v.dtype.num >= 256 or t._data.dtype.num >= 256):
        if v.dtype.kind == "V" and t._data.dtype.kind in "iu" and not is_float8(v.dtype):
            v = v.astype(np.float32)  # bfloat16 -> int through float32, as PyTorch (-2.5 -> 254)
        else:
            v = float8_astype(v, t._data.dtype)  # to or from float8: PyTorch's rules
    # the last of PyTorch's visits to a location decides
    if t._data.base is not None and internal_overlap(t._data):
        return overlap_write(t, lambda: v, (src,))
    try:
        t._data[...] = v
    except ValueError:
        _write_failed(t, v, "copy_")
    _written(t, (redo_assign, v) if v is src._data else None)
    return t


def _same_data(t: Tensor, src) -> bool:
    """Whether src views exactly t's elements (PyTorch's is_same_data: the same memory, sizes,
    strides and dtype), so that a copy between them is nothing to do."""
    if not isinstance(src, Tensor):
        return False
    a, b = t._data, src._data
    return (type(a) is np.ndarray and type(b) is np.ndarray  # (a nested storage has no strides)
            and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _zero_link(t: Tensor) -> Tensor:
    """-0.0 everywhere in t's shape and dtype, computed from t's old value with derivative 0:
    adding it to a new value keeps that value exactly (-0.0 + v is v, also for v = +-0.0, nan,
    inf) and keeps t's old value in the graph with a zero gradient, as PyTorch's fill_/copy_ do
    (x * 0 + v gave nan where x was inf or nan)."""
    from .gaps_math_inplace import ZeroGradient  # noqa: PLC0415 - it imports this module

    xp = backend.get_array_module(t._data)
    return ZeroGradient.apply(t._alias(), value=xp.full(t.shape, -0.0, dtype=t._data.dtype))


def fill_(t: Tensor, value) -> Tensor:
    return _fill(t, value, "fill_")


def zero_(t: Tensor) -> Tensor:
    """t.zero_(): fill_ with 0 (PyTorch's node for it is ZeroBackward0)."""
    return _fill(t, 0, "zero_")


def _fill(t: Tensor, value, op: str) -> Tensor:
    _check_leaf_inplace(t, "fill_")
    if isinstance(value, Tensor) and value.ndim:
        raise DescentError(
            f"fill_: only supports a 0-dimensional value tensor, got a tensor of shape "
            f"{tuple(value.shape)} (filling {tuple(t.shape)}); use copy_ for a tensor of values"
        )
    if isinstance(value, Tensor) and any(s == 0 and n > 1 for n, s in zip(t._data.shape,
                                                                           t._data.strides)):
        # PyTorch's fill_ with a tensor value checks the internal overlap (a number does not)
        raise DescentError(
            "fill_: unsupported operation: more than one element of the written-to tensor "
            "refers to a single memory location. Please clone() the tensor before performing "
            f"the operation. (a 0-d tensor value into an expanded tensor of shape "
            f"{tuple(t.shape)}; fill_ with a Python number, or clone() first)"
        )
    if _records(t, value):
        if isinstance(value, Tensor):  # a 0-d tensor value gets its gradient (summed)
            v = value if value._data.dtype == t._data.dtype else cast(value, t._data.dtype)
            out = show_as(_zero_link(t) + v, "FillBackward3", (t, value))  # (PyTorch's node)
            # (a value that requires grad: PyTorch's copy into an expanded view refuses it)
            return _rebind(t, out, overlap_ok="copy" if value._rg else True)
        arr = backend.get_array_module(t._data).empty_like(t._data)
        arr[...] = fill_int(value, t._data.dtype)  # the array path's conversion and errors
        out = show_as(_zero_link(t) + Tensor._wrap(arr),
                      "ZeroBackward0" if op == "zero_" else "FillBackward2", (t,))  # fmt: skip
        return _rebind(t, out, overlap_ok=True)
    v = value._data if isinstance(value, Tensor) else fill_int(value, t._data.dtype)
    try:
        t._data[...] = v
    except ValueError:
        _write_failed(t, v, "fill_")
    _written(t, (redo_assign, v))
    return t


def masked_fill_(t: Tensor, mask, value) -> Tensor:
    _check_leaf_inplace(t, "masked_fill_")
    if isinstance(value, (Tensor, complex)):
        check_fill_value(t, value, "masked_fill_")
    if _records(t, value):
        # (an unfold's shared elements: ops/overlap_rounds; a location keeps its gradient
        # where its last visit is not masked, as PyTorch's)
        if t._data.base is not None and internal_overlap(t._data):
            out = _same_shape(t, masked_fill(overlap_once(t._alias(), t._data), mask, value),
                              "masked_fill_")  # fmt: skip
            out = overlap_recorded(t, out, lambda: _overlap_value(
                t, masked_fill(t, mask, value), "masked_fill_"), (mask,))  # fmt: skip
            return _rebind(t, out, overlap_ok="copy")
        result = _same_shape(t, masked_fill(t._alias(), mask, value), "masked_fill_")
        m = as_tensor(mask)._data  # (only the masked elements are written: ops/view_write)
        sel = backend.get_array_module(m).broadcast_to(m, t._data.shape)
        return _rebind(t, result, overlap_ok=True, sel=sel)
    mask = as_tensor(mask)
    check_bool_mask(t, mask, "masked_fill_")
    xp = backend.get_array_module(t._data)
    # copyto with where= writes only the masked entries, in place, with broadcasting.
    # "unsafe": the value takes t's dtype whatever it is (PyTorch's masked_fill_(int, m, 1.5)
    # writes 1), after fill_int's range check for ints.
    v = value._data if isinstance(value, Tensor) else fill_int(value, t._data.dtype)
    if mask._data.shape != t._data.shape:
        grown = np.broadcast_shapes(t._data.shape, mask._data.shape)
        if grown != t._data.shape:
            _broadcast_error(t, grown, "masked_fill_")
    dst = t._data
    if not dst.flags.writeable:  # an expanded tensor: PyTorch writes into its memory
        warnings.warn(  # (and warns, as here)
            "Use of masked_fill_ on expanded tensors is deprecated. Please clone() the tensor "
            "before performing this operation.",
            UserWarning,
            stacklevel=2,
        )
        dst = writable_alias(dst)
        if dst is None:
            if t._data.size == 0:
                _written(t)
                return t  # nothing to write
            _unwritable(t, "masked_fill_")
    xp.copyto(dst, v, where=mask._data, casting="unsafe")
    _written(t, (redo_masked_fill, v, mask._data) if dst is t._data else None)
    return t
