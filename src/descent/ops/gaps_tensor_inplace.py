"""PyTorch's in-place shape, index and random-fill methods that descent lacked until 2026-12-04:
`x.squeeze_()`, `x.t_()`, `x.index_add_(...)`, `x.fill_diagonal_(v)`, `x.resize_(n)`,
`x.log_normal_()`, ... (docs/torch_gaps_tensor.md). Tensor methods reach them through the ops
table; `resize_as_` is also a top-level `descent.resize_as_` (through `__all__`).

They follow the rules of `descent.ops.inplace` (`x += y`) with its pieces:

* recorded (grad mode on, and x or a tensor argument requires grad): the out-of-place op runs
  on an alias of x's old value and x is rebound to the result, so the graph gets one node for
  the update and gradients flow through it;
* otherwise the result is written into x's array, so views of x see it; the shape methods
  (`squeeze_`, `t_`, ...) instead give x a view of its own array with the new shape, so the
  memory stays shared with every other view;
* either way x's version counter goes up (a node that saved x then raises at backward);
* a leaf that requires grad may not be changed in place under grad mode (RuntimeError).
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import backend
from ..errors import DescentError
from ..grad_mode import check_inference_inplace
from ..tensor import Tensor
from ..tensor_methods import _ops
from ._common import as_tensor, shape_arg
from .inplace import (
    _check_leaf_inplace,
    _rebind,
    _records,
    _write_failed,
    _written,
    check_overlap,
)
from .overlap_rounds import internal_overlap
from .overlap_rounds import once as overlap_once
from .overlap_rounds import recorded as overlap_recorded
from .overlap_rounds import write as overlap_write
from .view_rules import writable_alias
from .view_write import check_view_write, redo_assign, redo_masked_fill

__all__: list[str] = []  # resize_as_ is exported by gaps_tensor


def _apply(t: Tensor, op: str, fn, *args, **kwargs) -> Tensor:
    """Replace t's values by `fn(t, *args, **kwargs)` (same shape and dtype), in place."""
    _check_leaf_inplace(t, op)
    # (an unfold's shared elements: ops/overlap_rounds)
    overlap = t._data.base is not None and internal_overlap(t._data)
    if _records(t, *args, *kwargs.values()):
        check_view_write(t)  # (PyTorch's view checks come before the op's argument checks)
        # The alias keeps t's old value and node for whatever the op saves for backward.
        if overlap:
            out = _fit(t, fn(overlap_once(t._alias(), t._data), *args, **kwargs), op)
            return _rebind(t, overlap_recorded(t, out, lambda: _fit(
                t, fn(t, *args, **kwargs), op)._data), overlap_ok="copy")  # fmt: skip
        out = fn(t._alias(), *args, **kwargs)
        return _rebind(t, _fit(t, out, op))
    if overlap:
        return overlap_write(t, lambda: _fit(t, fn(t, *args, **kwargs), op)._data)
    out = _fit(t, fn(t, *args, **kwargs), op)  # not recorded: nothing here requires grad
    redo = (redo_assign, out._data)  # (descent.compile repeats the copy: view_write.written)
    try:
        t._data[...] = out._data
    except ValueError:  # a read-only (expanded) array: PyTorch's error, or an empty no-op
        _write_failed(t, out._data, op)
        redo = None
    _written(t, redo)
    return t


def _fit(t: Tensor, out: Tensor, op: str) -> Tensor:
    if tuple(out.shape) != tuple(t.shape):  # pragma: no cover - the ops keep the shape
        raise RuntimeError(f"{op}: result shape {tuple(out.shape)} is not {tuple(t.shape)}")
    if out.dtype != t.dtype:
        src, dst = out.dtype.kind, t.dtype.kind  # PyTorch's canCast
        if (
            (src in "fV" and dst in "iub")
            or (src == "c" and dst != "c")
            or (dst == "b" and src != "b")
        ):
            raise RuntimeError(
                f"{op}: result type {out.dtype} can't be cast to the desired output type "
                f"{t.dtype}; convert the tensor first, e.g. x = x.float()"
            )
        out = out.to(t.dtype)
    return out


def _reshape(t: Tensor, op: str, fn, *args) -> Tensor:
    """Give t the shape of `fn(t, *args)` (a view op: squeeze, transpose, ...), in place."""
    _check_leaf_inplace(t, op)
    if _records(t):
        return _rebind(t, fn(t._alias(), *args))
    # A view of t's own array: other views of it keep sharing the memory, as in PyTorch.
    t._data = fn(t.detach(), *args)._data
    t._version += 1
    if t._inference:  # outside inference_mode: PyTorch's error, after the change (grad_mode.py)
        check_inference_inplace(t)
    return t


# ---------------------------------------------------------------------------------------------
# Shapes in place


def squeeze_(t: Tensor, dim=None) -> Tensor:
    """x.squeeze_(dim=None): x.squeeze(dim), in place."""
    return _reshape(t, "squeeze_", _ops.squeeze, dim)


def unsqueeze_(t: Tensor, dim: int) -> Tensor:
    """x.unsqueeze_(dim): x.unsqueeze(dim), in place."""
    return _reshape(t, "unsqueeze_", _ops.unsqueeze, dim)


def t_(t: Tensor) -> Tensor:
    """x.t_(): x.t(), in place (0-d, 1-d and 2-d tensors)."""
    if t.ndim > 2:
        raise RuntimeError(f"t_() expects a tensor with <= 2 dimensions, but self is {t.ndim}D")
    return _reshape(t, "t_", lambda a: _ops.transpose(a) if a.ndim == 2 else a)


def transpose_(t: Tensor, dim0: int, dim1: int) -> Tensor:
    """x.transpose_(dim0, dim1): x.transpose(dim0, dim1), in place."""
    return _reshape(t, "transpose_", _ops.swapaxes, dim0, dim1)


def swapaxes_(t: Tensor, axis0: int, axis1: int) -> Tensor:
    """x.swapaxes_(a, b): the alias of transpose_."""
    return _reshape(t, "swapaxes_", _ops.swapaxes, axis0, axis1)


def swapdims_(t: Tensor, dim0: int, dim1: int) -> Tensor:
    """x.swapdims_(a, b): the alias of transpose_."""
    return _reshape(t, "swapdims_", _ops.swapaxes, dim0, dim1)


def tril_(t: Tensor, diagonal: int = 0) -> Tensor:
    """x.tril_(diagonal=0): x.tril(diagonal), in place."""
    return _apply(t, "tril_", _ops.tril, diagonal)


def triu_(t: Tensor, diagonal: int = 0) -> Tensor:
    """x.triu_(diagonal=0): x.triu(diagonal), in place."""
    return _apply(t, "triu_", _ops.triu, diagonal)


def resize_(t: Tensor, *sizes) -> Tensor:
    """x.resize_(*sizes): x becomes the contiguous `sizes` elements from its storage offset,
    as PyTorch's: the elements already in the storage keep their values in memory order (a
    transposed x reads its memory, not its logical order), x keeps sharing the memory with its
    views, and a size past the storage's end grows the storage (descent.storage.resize_tensor;
    the new elements are 0 where PyTorch leaves them uninitialised). The same shape changes
    nothing. Refused on a tensor that requires grad (grad mode on or off), as in PyTorch."""
    size = tuple(int(s) for s in shape_arg(sizes))
    if t._rg:
        raise RuntimeError(
            f"cannot resize variables that require grad (resize_ of a tensor of shape "
            f"{tuple(t.shape)} to {size}); resize a copy, t.detach().clone().resize_(...), "
            "or make a new tensor"
        )
    if any(s < 0 for s in size):
        raise RuntimeError(f"resize_: negative dimension in size {size} (tensor of shape "
                           f"{tuple(t.shape)}); every size must be >= 0")  # fmt: skip
    a = t._data
    if size == tuple(a.shape):  # PyTorch: nothing to do, the strides are kept
        return t
    if backend.is_meta(a):  # no memory: only the shape changes
        from ..meta import empty as meta_empty  # noqa: PLC0415

        t._data = meta_empty(size, a.dtype)
    else:
        from ..storage import resize_tensor  # noqa: PLC0415 - the storage API loads on use

        resize_tensor(t, size)
    t._version += 1
    if t._inference:  # outside inference_mode: PyTorch's error, after the change (grad_mode.py)
        check_inference_inplace(t)
    return t


def resize_as_(input: Tensor, the_template, *, memory_format=None) -> Tensor:
    """x.resize_as_(other): x.resize_(other.shape) (torch.resize_as_)."""
    return resize_(as_tensor(input), *tuple(as_tensor(the_template).shape))


# ---------------------------------------------------------------------------------------------
# Index updates in place


def _index_add(x: Tensor, dim: int, index, source, *, alpha=1) -> Tensor:
    # (a 0-d x: index_add applies PyTorch's rules, a 0-d source only)
    return _ops.index_add(x, dim, index, source, alpha=alpha)


def index_add_(t: Tensor, dim: int, index, source, *, alpha=1) -> Tensor:
    """x.index_add_(dim, index, source, alpha=1): x.index_add(...), in place."""
    try:
        _check_leaf_inplace(t, "index_add_")
    except DescentError as e:  # PyTorch checks the shapes before the internal overlap
        if "more than one element" in str(e):
            _ops.index_add(t.detach(), dim, index, as_tensor(source).detach(), alpha=alpha)
        raise
    check_overlap(t, source, "index_add_", full_ok=False)  # (PyTorch's assert_no_overlap)
    return _apply(t, "index_add_", _index_add, dim, index, source, alpha=alpha)


def index_copy_(t: Tensor, dim: int, index, source) -> Tensor:
    """x.index_copy_(dim, index, source): x.index_copy(...), in place."""
    return _apply(t, "index_copy_", _ops.index_copy, dim, index, source)


def index_fill_(t: Tensor, dim: int, index, value) -> Tensor:
    """x.index_fill_(dim, index, value): x.index_fill(...), in place."""
    return _apply(t, "index_fill_", _ops.index_fill, dim, index, value)


def index_reduce_(t: Tensor, dim: int, index, source, reduce: str, *, include_self=True):
    """x.index_reduce_(dim, index, source, reduce, include_self=True), in place."""
    return _apply(t, "index_reduce_", _ops.index_reduce, dim, index, source, reduce,
                  include_self=include_self)  # fmt: skip


def masked_scatter_(t: Tensor, mask, source) -> Tensor:
    """x.masked_scatter_(mask, source): x.masked_scatter(...), in place (mask broadcasts to x,
    never x to mask: a mask with more dimensions is a RuntimeError, as in PyTorch)."""
    shape = getattr(mask, "shape", None)
    if shape is not None and tuple(shape) != tuple(t.shape):
        try:
            fits = np.broadcast_shapes(tuple(shape), tuple(t.shape)) == tuple(t.shape)
        except ValueError:
            fits = False
        if not fits:
            raise RuntimeError(
                f"masked_scatter_: mask of shape {tuple(shape)} does not broadcast to the "
                f"tensor's {tuple(t.shape)} (the in-place form never expands the tensor)"
            )
    return _apply(t, "masked_scatter_", _ops.masked_scatter, mask, source)


def put_(t: Tensor, index, source, accumulate: bool = False) -> Tensor:
    """x.put_(index, source, accumulate=False): x.put(...), in place."""
    return _apply(t, "put_", _ops.put, index, source, accumulate)


def scatter_add_(t: Tensor, dim: int, index, src) -> Tensor:
    """x.scatter_add_(dim, index, src): x.scatter_add(...), in place."""
    return _apply(t, "scatter_add_", _ops.scatter_add, dim, index, src)


def scatter_reduce_(t: Tensor, dim: int, index, src, reduce: str, *, include_self=True):
    """x.scatter_reduce_(dim, index, src, reduce, include_self=True), in place."""
    return _apply(t, "scatter_reduce_", _ops.scatter_reduce, dim, index, src, reduce,
                  include_self=include_self)  # fmt: skip


def renorm_(t: Tensor, p, dim: int, maxnorm) -> Tensor:
    """x.renorm_(p, dim, maxnorm): x.renorm(...), in place."""
    return _apply(t, "renorm_", _ops.renorm, p, dim, maxnorm)


def _diagonal_mask(x: Tensor, wrap: bool):
    """The mask (an array of x's shape) of x's main diagonal, which fill_diagonal_ sets to
    fill_value (all dims of equal size, or a tall matrix; with wrap=True a tall matrix
    restarts the diagonal every ncols + 1 rows, as PyTorch)."""
    if x.ndim < 2:
        raise RuntimeError(f"fill_diagonal_: dimensions must larger than 1, got {x.ndim}")
    if x.ndim > 2 and len(set(x.shape)) != 1:
        raise RuntimeError(
            f"fill_diagonal_: all dimensions of input must be of equal length, got {tuple(x.shape)}"
        )
    xp = backend.get_array_module(x._data)
    n = x.numel()
    # The diagonal in the flattened tensor: every (sum of the C strides) elements.
    step = int(sum(np.cumprod((1,) + tuple(x.shape[:0:-1]))))
    end = n
    if x.ndim == 2 and not wrap:
        end = min(x.shape[1] * x.shape[1], n)  # stop after the square part
    pos = xp.arange(0, end, step)
    mask = xp.zeros(n, dtype=bool)
    mask[pos] = True
    return mask.reshape(x.shape)


def fill_diagonal_(t: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """x.fill_diagonal_(fill_value, wrap=False): the main diagonal set to fill_value. Only the
    diagonal is written (PyTorch's x.diagonal().fill_()): no overlap check for a view whose
    other elements share memory (an expanded or as_strided one)."""
    t.__dict__.pop("_plain_view", None)  # (the diagonal view taken makes t's grad_fn)
    _check_leaf_inplace(t, "fill_diagonal_")
    mask = _diagonal_mask(t, wrap)
    if _records(t, fill_value):
        out = _fit(t, _ops.masked_fill(t._alias(), Tensor._wrap(mask), fill_value),
                   "fill_diagonal_")  # fmt: skip
        return _rebind(t, out, overlap_ok="copy", sel=mask)
    out = _fit(t, _ops.masked_fill(t, Tensor._wrap(mask), fill_value), "fill_diagonal_")
    dst = t._data if t._data.flags.writeable else writable_alias(t._data)
    if dst is not None and mask.any():
        dst[mask] = out._data[mask]
    # descent.compile repeats it as a masked copy (the same values at the same places): the
    # mask comes from the shape alone, and masked_fill's result is recomputed on each call
    _written(t, (redo_masked_fill, out._data, mask) if dst is t._data else None)
    return t


# ---------------------------------------------------------------------------------------------
# Random fills (descent's generator; `generator=` as in PyTorch)


def resize(t: Tensor, *sizes) -> Tensor:
    """The deprecated x.resize(*sizes): x.reshape(sizes) when the element count is the same
    (a view, as PyTorch's), else a resized copy (x.clone().resize_(sizes))."""
    warnings.warn("non-inplace resize is deprecated", UserWarning, stacklevel=3)
    size = tuple(int(s) for s in shape_arg(sizes))
    if int(np.prod(size, dtype=np.int64)) == t.numel():
        return _ops.reshape(t, size)
    return resize_(t.detach().clone(), *size)


def resize_as(t: Tensor, the_template) -> Tensor:
    """The deprecated x.resize_as(other): x.resize(other.shape)."""
    return resize(t, *tuple(as_tensor(the_template).shape))


# ---------------------------------------------------------------------------------------------
# Python callables applied elementwise (PyTorch's CPU-only apply_/map_/map2_)


def _map_values(t: Tensor, op: str, fn, *others) -> Tensor:
    """t's elements replaced by fn(t_i, others_i...) (others broadcast to t), unrecorded."""
    _check_leaf_inplace(t, op)
    if backend.is_cupy_array(t._data):
        raise RuntimeError(f"{op}: only implemented on CPU tensors; move it with .cpu() first")
    arrays = [np.broadcast_to(as_tensor(o)._data, t._data.shape) for o in others]
    flat = [a.reshape(-1).tolist() for a in (t._data, *arrays)]
    values = [fn(*vals) for vals in zip(*flat)]
    t._data[...] = np.asarray(values, dtype=t._data.dtype).reshape(t._data.shape)
    _written(t)
    return t


def apply_(t: Tensor, callable) -> Tensor:
    """x.apply_(fn): each element replaced by fn(element), in place (CPU, slow, not recorded)."""
    return _map_values(t, "apply_", callable)


def map_(t: Tensor, tensor, callable) -> Tensor:
    """x.map_(y, fn): each element replaced by fn(x_i, y_i) (y broadcast to x), in place."""
    return _map_values(t, "map_", callable, tensor)


def map2_(t: Tensor, x, y, callable) -> Tensor:
    """x.map2_(a, b, fn): each element replaced by fn(x_i, a_i, b_i), in place."""
    return _map_values(t, "map2_", callable, x, y)
