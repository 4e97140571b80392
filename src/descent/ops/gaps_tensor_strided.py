"""Strided views and copies added on 2026-12-04 (docs/torch_gaps_tensor.md): `as_strided`
(with its op `AsStrided`), `as_strided_scatter`, `storage_offset()`/`data_ptr()`,
`empty_strided`/`empty_permuted`, `nonzero_static`, and PyTorch's `*_copy` functions (the view
ops returning a fresh tensor: `torch.select_copy`, `torch.transpose_copy`, ...). The top-level
names are exported by `gaps_tensor` (its `__all__`); every public function here is an entry of
Tensor's ops table.

Each `*_copy` is the view op followed by `clone`, so its gradient is the view op's; the result
never shares memory with the input (PyTorch's contract for these functions).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import Function
from ..errors import RangeError
from ..tensor import Tensor
from ..tensor_methods import _ops
from ._common import as_tensor, shape_arg
from .elementwise import clone
from .indexing import SetItem, getitem

# ---------------------------------------------------------------------------------------------
# Strided views


class AsStrided(Function):
    """y[i] = x.flatten()[offset + sum_k i_k * stride_k]; gx = gy scatter-added back to those
    positions (overlapping windows accumulate), reshaped to x."""

    makes_view = True  # the output may view the input (autograd.mark_view)

    __slots__ = ("shape", "strides", "offset", "flat")  # flat: the index array, for backward

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.flat = flat = _flat_positions(xp, self.shape, self.strides, self.offset)
        src = x.reshape(-1)
        if isinstance(src, np.ndarray):
            # A read-only strided view of x's memory (PyTorch's is writable; see the docs).
            view = np.lib.stride_tricks.as_strided(
                src[self.offset :], self.shape,
                tuple(s * src.itemsize for s in self.strides), writeable=False,
            )  # fmt: skip
            return view
        return src[flat]

    def backward(self, gy, ops):
        n = 1
        for s in self.in_shapes[0]:
            n *= s
        g = ops.index_grad(gy, (n,), (self.flat,), False)
        return g.reshape(self.in_shapes[0])


def as_strided(input, size, stride, storage_offset=None) -> Tensor:
    """The elements of input at `storage_offset + sum_k i_k * stride[k]` as a tensor of shape
    `size` (torch.as_strided), for a contiguous input. The result is a read-only view of
    input's memory (PyTorch's is writable); its gradient scatter-adds back.

    Raises:
        RuntimeError: input is not contiguous (call .contiguous() first), a stride is
            negative, or the view reaches outside input's elements.
    """
    x = as_tensor(input)
    size, stride, rel = _geometry(x, size, stride, storage_offset, "as_strided")
    return AsStrided.apply(x, shape=size, strides=stride, offset=rel)


def storage_offset_of(x: Tensor) -> int:
    """x's offset in elements from the start of the array it views (0 for an array of its
    own), as torch's storage_offset()."""
    a = x._data
    base = a
    while getattr(base, "base", None) is not None:
        base = base.base
    if base is a or not hasattr(base, "__array_interface__"):
        if base is not a and backend.is_cupy_array(a):
            return int((a.data.ptr - base.data.ptr) // a.itemsize)
        return 0
    start = np.asarray(base).__array_interface__["data"][0]
    return int((a.__array_interface__["data"][0] - start) // a.itemsize)


def data_ptr_of(x: Tensor) -> int:
    """The address of x's first element (torch's data_ptr())."""
    a = x._data
    if backend.is_cupy_array(a):
        return int(a.data.ptr)
    return int(a.__array_interface__["data"][0])


def _flat_positions(xp, shape: tuple, strides: tuple, offset: int):
    """The flat index of each element of a (shape, strides, offset) view: an int64 array."""
    flat = xp.full(shape, offset, dtype=np.int64)
    for g, s in zip(xp.indices(shape, dtype=np.int64), strides):  # g: each element's index
        flat = flat + g * s
    return flat


def _geometry(x: Tensor, size, stride, storage_offset, op: str):
    """(size, stride, offset relative to x's first element), checked against x's elements."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(
            f"{op}: mismatch in length of strides and shape: size {size}, stride {stride}"
        )
    if any(s < 0 for s in stride) or any(s < 0 for s in size):
        raise RuntimeError(f"{op}: negative sizes or strides are not supported: {size}, "
                           f"{stride}")  # fmt: skip
    if not x._data.flags.c_contiguous:
        raise RuntimeError(
            f"{op}: descent reads a contiguous input's elements only (got a "
            f"non-contiguous tensor of shape {tuple(x.shape)}); call .contiguous() first"
        )
    base = storage_offset_of(x)
    off = base if storage_offset is None else int(storage_offset)
    rel = off - base
    last = rel + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else rel - 1
    if rel < 0 or last >= x.numel():
        raise RuntimeError(
            f"{op}: setStorage: sizes {list(size)}, strides {list(stride)}, storage "
            f"offset {off} reach outside the input's {x.numel()} elements (storage offset "
            f"{base}); descent views only the input's own elements"
        )
    return size, stride, rel


# ---------------------------------------------------------------------------------------------
# The *_copy functions: a view op, then clone


def _copy_of(view_name: str, x, *args, **kwargs) -> Tensor:
    x = as_tensor(x)
    if view_name == "t":  # torch.t's rule: 0-d and 1-d tensors are their own transpose
        if x.ndim > 2:
            raise RuntimeError(
                f"t_copy: expects a tensor with <= 2 dimensions, but self is {x.ndim}D"
            )
        return clone(_ops.transpose(x) if x.ndim == 2 else x)
    return clone(getattr(_ops, view_name)(x, *args, **kwargs))


def select_copy(input, dim: int, index: int) -> Tensor:
    """torch.select_copy: select(input, dim, index), copied."""
    return _copy_of("select", input, dim, index)


def slice_copy(input, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """torch.slice_copy: input[..., start:end:step, ...] along dim, copied."""
    x = as_tensor(input)
    d = int(dim) % max(x.ndim, 1)
    return clone(getitem(x, (slice(None),) * d + (slice(start, end, step),)))


def diagonal_copy(input, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """torch.diagonal_copy: diagonal(input, offset, dim1, dim2), copied."""
    return _copy_of("diagonal", input, offset, dim1, dim2)


def expand_copy(input, size, *, implicit: bool = False) -> Tensor:
    """torch.expand_copy: input.expand(size), copied (a full array, not a broadcast view)."""
    return _copy_of("expand", input, *shape_arg((size,)))


def permute_copy(input, dims) -> Tensor:
    """torch.permute_copy: input.permute(dims), copied."""
    return _copy_of("permute", input, *shape_arg((dims,)))


def t_copy(input) -> Tensor:
    """torch.t_copy: input.t(), copied."""
    return _copy_of("t", input)


def transpose_copy(input, dim0: int, dim1: int) -> Tensor:
    """torch.transpose_copy: input.transpose(dim0, dim1), copied."""
    return _copy_of("swapaxes", input, dim0, dim1)


def unsqueeze_copy(input, dim: int) -> Tensor:
    """torch.unsqueeze_copy: input.unsqueeze(dim), copied."""
    return _copy_of("unsqueeze", input, dim)


def squeeze_copy(input, dim=None) -> Tensor:
    """torch.squeeze_copy: input.squeeze(dim), copied."""
    return _copy_of("squeeze", input, dim)


def view_copy(input, size) -> Tensor:
    """torch.view_copy: input.view(size), copied."""
    return _copy_of("reshape", input, *shape_arg((size,)))


def unfold_copy(input, dimension: int, size: int, step: int) -> Tensor:
    """torch.unfold_copy: input.unfold(dimension, size, step), copied."""
    return _copy_of("unfold", input, dimension, size, step)


def narrow_copy(input, dim: int, start: int, length: int) -> Tensor:
    """torch.narrow_copy: input.narrow(dim, start, length), copied."""
    x = as_tensor(input)
    if x.ndim and not -x.ndim <= int(dim) < x.ndim:
        # PyTorch's narrow_copy raises RuntimeError for a dim past the end (IndexError below
        # -ndim); RangeError is both
        raise RangeError(
            f"narrow_copy: dimension out of range (expected to be in range of [{-x.ndim}, "
            f"{x.ndim - 1}], but got {dim}) for shape {tuple(x.shape)}"
        )
    return _copy_of("narrow", x, dim, start, length)


def as_strided_copy(input, size, stride, storage_offset=None) -> Tensor:
    """torch.as_strided_copy: as_strided(...), copied (writable, unlike the view)."""
    return _copy_of("as_strided", input, size, stride, storage_offset)


def detach_copy(input) -> Tensor:
    """torch.detach_copy: a copy of input without history."""
    return clone(as_tensor(input).detach())


def alias_copy(input) -> Tensor:
    """torch.alias_copy: a copy of input (differentiable)."""
    return clone(as_tensor(input))


def split_copy(input, split_size, dim: int = 0) -> tuple:
    """torch.split_copy: the pieces of split, copied."""
    return tuple(clone(p) for p in _ops.split(as_tensor(input), split_size, dim))


def split_with_sizes_copy(input, split_sizes, dim: int = 0) -> tuple:
    """torch.split_with_sizes_copy: the pieces of split_with_sizes, copied."""
    return tuple(clone(p) for p in _ops.split_with_sizes(as_tensor(input), split_sizes, dim))


def unbind_copy(input, dim: int = 0) -> tuple:
    """torch.unbind_copy: the slices of unbind, copied."""
    return tuple(clone(p) for p in _ops.unbind(as_tensor(input), dim))


# ---------------------------------------------------------------------------------------------
# Scatter through a strided view, static-size nonzero, permuted allocation


def as_strided_scatter(input, src, size, stride, storage_offset=None) -> Tensor:
    """A copy of input with the elements that `input.as_strided(size, stride, offset)` views
    replaced by src (torch.as_strided_scatter; a zero stride is refused, as in PyTorch, and
    where the view overlaps itself otherwise the last write wins). Differentiable in input and
    src; a contiguous input only, as as_strided."""
    x = as_tensor(input)
    size, stride, rel = _geometry(x, size, stride, storage_offset, "as_strided_scatter")
    src = as_tensor(src, x)
    if tuple(src.shape) != size:
        raise RuntimeError(
            f"as_strided_scatter: expected src to have the view's size {size}, got "
            f"{tuple(src.shape)}"
        )
    xp = backend.get_array_module(x._data)
    flat = _flat_positions(xp, size, stride, rel).reshape(-1)
    # PyTorch refuses a view with a zero stride (certain overlap); other overlaps are written in
    # order, the last write winning (as NumPy's assignment does).
    if any(st == 0 and n > 1 for n, st in zip(size, stride)):
        raise RuntimeError(
            "as_strided_scatter: unsupported operation: more than one element of the written-to "
            f"view (size {size}, stride {stride}) refers to a single memory location"
        )
    out = SetItem.apply(_ops.reshape(x, -1), _ops.reshape(src, -1), idx=(flat,), basic=False)
    return _ops.reshape(out, tuple(x.shape))


def nonzero_static(input, *, size: int, fill_value: int = -1) -> Tensor:
    """The indices of input's nonzero elements as nonzero() gives them, cut or padded with
    fill_value to exactly `size` rows (torch.nonzero_static)."""
    x = as_tensor(input)
    if size < 0:
        raise RuntimeError(f"nonzero_static: 'size' must be non-negative, got {size}")
    xp = backend.get_array_module(x._data)
    idx = xp.stack(xp.nonzero(x._data), axis=1) if x.ndim else xp.zeros((int(bool(x.item())), 0))
    idx = idx.astype(np.int64)[:size]
    pad = xp.full((size - idx.shape[0], idx.shape[1]), fill_value, dtype=np.int64)
    return Tensor._wrap(xp.concatenate([idx, pad], axis=0))
