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

from .. import backend, grad_mode
from ..autograd import Function
from ..autograd import _new_tensor as new_tensor
from ..errors import RangeError
from ..grad_fn import show_as
from ..memory_layout import elem_strides
from ..tensor import Tensor
from ..tensor_methods import _ops
from ._common import as_tensor, shape_arg
from .elementwise import clone
from .indexing import ScatterCopy, getitem
from .untracked import seen
from .view_rules import address as _address
from .view_rules import storage as _storage
from .view_rules import storage_root as _storage_root

# ---------------------------------------------------------------------------------------------
# Strided views


class AsStrided(Function):
    """y[i] = storage[offset + sum_k i_k * stride_k], where storage is the memory x views;
    gx = gy scatter-added onto the storage, read back at x's own positions (overlapping
    windows accumulate; an x whose elements share memory (an expand) gets each shared
    position's gradient divided among them, as PyTorch's as_strided_backward)."""

    makes_view = True  # the output may view the input (autograd.mark_view)

    # flat: the output's storage positions; n: the storage's size; xpos: x's storage
    # positions (an int, the offset, when x is C-contiguous); all index data, no values.
    __slots__ = ("shape", "strides", "offset", "flat", "n", "xpos")

    def forward(self, x):
        xp = backend.get_array_module(x)
        storage, xoff = _storage(x)
        self.n = storage.shape[0]
        self.flat = _flat_positions(xp, self.shape, self.strides, self.offset)
        if x.flags.c_contiguous:
            self.xpos = xoff
        else:
            self.xpos = _flat_positions(xp, x.shape, elem_strides(x), xoff)
        # A view of the storage, writable where it is (PyTorch's as_strided is a view).
        return xp.lib.stride_tricks.as_strided(
            storage[self.offset :], self.shape, tuple(s * x.itemsize for s in self.strides)
        )

    def backward(self, gy, ops):
        g = ops.index_grad(gy, (self.n,), (self.flat,), False)  # onto the storage
        in_shape = self.in_shapes[0]
        if isinstance(self.xpos, int):  # x is the storage's elements xpos, xpos + 1, ...
            numel = 1
            for s in in_shape:
                numel *= s
            return g[self.xpos : self.xpos + numel].reshape(in_shape)
        gx = g[self.xpos]
        xp = backend.get_array_module(self.xpos)
        count = xp.bincount(self.xpos.reshape(-1), minlength=self.n)[self.xpos]
        if int(count.max(initial=1)) > 1:  # x's elements share memory: split the gradient
            if isinstance(gx, Tensor):  # (create_graph: a constant divisor in the graph)
                return gx / Tensor._wrap(count.astype(gx._data.dtype))
            return gx / count.astype(gx.dtype)
        return gx


def as_strided(input, size, stride, storage_offset=None) -> Tensor:
    """The elements of the memory `input` views at `storage_offset + sum_k i_k * stride[k]`
    as a tensor of shape `size` (torch.as_strided): a view, writes through it change input
    (and the reverse); storage_offset defaults to input's own. Its gradient scatter-adds
    back to input's elements.

    Raises:
        RuntimeError: a stride or size is negative, or the view reaches outside the memory
            (PyTorch's setStorage error).
    """
    x = as_tensor(input)
    size, stride, off = _geometry(x, size, stride, storage_offset, "as_strided")
    return AsStrided.apply(x, shape=size, strides=stride, offset=off)


def as_strided_(input, size, stride, storage_offset=None) -> Tensor:
    """Tensor.as_strided_: input itself becomes the view `as_strided(input, size, stride,
    storage_offset)` of its memory, and is returned (PyTorch's in-place restride). Recorded
    on a tensor with history (its node becomes as_strided's, as after PyTorch's); refused on
    a leaf that requires grad while grad mode is on, as in PyTorch."""
    x = as_tensor(input)
    size, stride, off = _geometry(x, size, stride, storage_offset, "as_strided_")
    if x._rg and grad_mode.is_grad_enabled():
        if x._node is None:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation "
                f"(as_strided_ on a leaf of shape {tuple(x.shape)}); restride it under "
                "no_grad, or use y = x.as_strided(...), which is differentiable"
            )
        # A second Tensor for x's old value (AsStrided saves positions only, never values),
        # then x takes the restrided view's array and node: a metadata change, no write.
        y = AsStrided.apply(new_tensor(x._data, True, x._node), shape=size, strides=stride,
                            offset=off)  # fmt: skip
        x._data, x._node = y._data, y._node
        if getattr(y, "_view_base", None) is not None:
            x._view_base = y._view_base
        x._version += 1
        return x
    a = x._data
    storage, _ = _storage(a)
    x._data = backend.get_array_module(a).lib.stride_tricks.as_strided(
        storage[off:], size, tuple(s * a.itemsize for s in stride)
    )
    return x


def _dtype_view(a, dt):
    """a's bytes read as dtype dt (a 0-d array stays 0-d): dtype_view_of's kernel."""
    return a.reshape(1).view(dt).reshape(()) if a.ndim == 0 else a.view(dt)


def dtype_view_of(t: Tensor, dt) -> Tensor:
    """t's bytes read as dtype dt, without a node (Tensor.view(dtype)'s step on the array),
    through untracked.seen: descent.compile replays the view on each call's t (made on the
    array alone, it was a constant frozen when the first two calls agreed)."""
    return seen(_dtype_view, (t,), (dt,), type(t)._wrap(_dtype_view(t._data, dt)))


def storage_offset_of(x: Tensor) -> int:
    """x's offset in elements from the start of the memory it views (0 for an array of its
    own), as torch's storage_offset()."""
    a = x._data
    return (_address(a) - _address(_storage_root(a))) // a.itemsize


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
    """(size, stride, storage offset), checked against the memory x views (PyTorch's rules)."""
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    if len(size) != len(stride):
        raise RuntimeError(
            f"{op}: mismatch in length of strides and shape: size {size}, stride {stride}"
        )
    if any(s < 0 for s in stride) or any(s < 0 for s in size):
        raise RuntimeError(f"{op}: negative sizes or strides are not supported: {size}, "
                           f"{stride}")  # fmt: skip
    storage, base = _storage(x._data)
    off = base if storage_offset is None else int(storage_offset)
    if off < 0:
        raise RuntimeError(f"{op}: Tensor: invalid storage offset {off}")
    need = off + 1 + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else 0
    if need > storage.shape[0]:
        item = x._data.itemsize
        raise RuntimeError(
            f"setStorage: sizes {list(size)}, strides {list(stride)}, storage offset {off}, "
            f"and itemsize {item} requiring a storage size of {need * item} are out of bounds "
            f"for storage of size {storage.shape[0] * item} ({op}: the view must stay inside "
            "the memory the tensor views)"
        )
    return size, stride, off


# ---------------------------------------------------------------------------------------------
# The *_copy functions: a view op, then clone


def _copy_of(view_name: str, x, *args, **kwargs) -> Tensor:
    x = as_tensor(x)
    if view_name == "t":  # torch.t's rule: 0-d and 1-d tensors are their own transpose
        if x.ndim > 2:
            raise RuntimeError(
                f"t_copy: expects a tensor with <= 2 dimensions, but self is {x.ndim}D"
            )
        return _shown_copy(clone(_ops.transpose(x) if x.ndim == 2 else x), x, "TBackward0_copy")
    v = getattr(_ops, view_name)(x, *args, **kwargs)
    return _shown_copy(clone(v), x, _COPY_NAMES.get(view_name), v)


# PyTorch's names where they are not the view's node name + "_copy"
_COPY_NAMES = {"unfold": "UnfoldBackward0_copy", "narrow": "NarrowCopyBackward0"}


def _shown_copy(out: Tensor, x: Tensor, name=None, view=None) -> Tensor:
    """out (a clone of a view of x) shown as PyTorch's one node for the *_copy op: `name`, or
    the view's node's name + "_copy" (ExpandBackward0_copy), over x."""
    if name is None and view is not None:
        node = view._node
        if node is None or node is x._node:
            return out
        name = node.name() + "_copy"
    return show_as(out, name, (x,)) if name else out


def select_copy(input, dim: int, index: int) -> Tensor:
    """torch.select_copy: select(input, dim, index), copied."""
    return _copy_of("select", input, dim, index)


def slice_copy(input, dim: int = 0, start=None, end=None, step: int = 1) -> Tensor:
    """torch.slice_copy: input[..., start:end:step, ...] along dim, copied."""
    x = as_tensor(input)
    d = int(dim) % max(x.ndim, 1)
    v = getitem(x, (slice(None),) * d + (slice(start, end, step),))
    return _shown_copy(clone(v), x, None, v)


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


def view_as_real_copy(input) -> Tensor:
    """torch.view_as_real_copy: view_as_real(input), copied."""
    return _copy_of("view_as_real", input)


def view_as_complex_copy(input) -> Tensor:
    """torch.view_as_complex_copy: view_as_complex(input), copied."""
    return _copy_of("view_as_complex", input)


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
    if x._sparse_layout:
        return x.narrow_copy(dim, start, length)
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
    x = as_tensor(input)
    return _shown_copy(clone(x), x, "AliasBackward0_copy")


def split_copy(input, split_size, dim: int = 0) -> tuple:
    """torch.split_copy: the pieces of split, copied."""
    x = as_tensor(input)
    return tuple(_shown_copy(clone(p), x, None, p) for p in _ops.split(x, split_size, dim))


def split_with_sizes_copy(input, split_sizes, dim: int = 0) -> tuple:
    """torch.split_with_sizes_copy: the pieces of split_with_sizes, copied."""
    x = as_tensor(input)
    return tuple(_shown_copy(clone(p), x, None, p)
                 for p in _ops.split_with_sizes(x, split_sizes, dim))  # fmt: skip


def unbind_copy(input, dim: int = 0) -> tuple:
    """torch.unbind_copy: the slices of unbind, copied."""
    x = as_tensor(input)
    return tuple(_shown_copy(clone(p), x, None, p) for p in _ops.unbind(x, dim))


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
    # (ScatterCopy: PyTorch's AsStridedScatterBackward0 saves no tensor)
    out = ScatterCopy.apply(_ops.reshape(x, -1), _ops.reshape(src, -1), idx=(flat,),
                            basic=False, torch_name="AsStridedScatterBackward0")  # fmt: skip
    return _ops.reshape(out, tuple(x.shape))


def nonzero_static(input, *, size: int, fill_value: int = -1) -> Tensor:
    """The indices of input's nonzero elements as nonzero() gives them, cut or padded with
    fill_value to exactly `size` rows (torch.nonzero_static)."""
    x = as_tensor(input)
    if size < 0:
        raise RuntimeError(f"nonzero_static: 'size' must be non-negative, got {size}")
    # (through untracked.seen: descent.compile replays it on each call's values; made on the
    # array, it was a constant frozen when the first two calls agreed)
    out = Tensor._wrap(_nonzero_static(x._data, int(size), fill_value))
    return seen(_nonzero_static, (x,), (int(size), fill_value), out)


def _nonzero_static(a, size, fill_value):
    """nonzero_static's kernel: (size, ndim) int64 positions of a's nonzeros, cut or padded."""
    xp = backend.get_array_module(a)
    idx = xp.stack(xp.nonzero(a), axis=1) if a.ndim else xp.zeros((int(bool(a)), 0))
    idx = idx.astype(np.int64)[:size]
    pad = xp.full((size - idx.shape[0], idx.shape[1]), fill_value, dtype=np.int64)
    return xp.concatenate([idx, pad], axis=0)
