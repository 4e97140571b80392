"""Tensor's shape, indexing and in-place method groups (mixins of `Tensor`).

Split from `tensor_methods.py`, which keeps the ops table `_ops` these methods call and the math
and reduction groups; the layering is the same (see that module's docstring).
"""

from __future__ import annotations

import numpy as np

from .tensor_methods import _ops, _view_as_dtype, legacy_scalar_first


class ShapeMethods:
    """Reshaping, transposing, broadcasting, splitting and the triangles."""

    __slots__ = ()

    def reshape(self, *sizes, shape=None):
        if shape is not None:  # PyTorch's keyword: x.reshape(shape=(2, 3))
            sizes = (shape,)
        return _ops.reshape(self, *sizes)

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
            return _view_as_dtype(self, shape[0])  # x.view(torch.int32): the bits reinterpreted
        return _ops.view(self, *shape)  # never a copy: raises where PyTorch's view does

    def flatten(self, start_dim=0, end_dim=-1):
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, *axes, dim0=None, dim1=None):
        if dim0 is None and dim1 is None:
            return _ops.transpose(self, *axes)
        return _ops.transpose(self, *axes, dim0=dim0, dim1=dim1)  # PyTorch's keywords

    def permute(self, *axes, dims=None):
        if dims is not None:  # PyTorch's keyword: x.permute(dims=(1, 0))
            axes = (dims,)
        return _ops.permute(self, *axes)

    def swapaxes(self, axis0, axis1):
        return _ops.swapaxes(self, axis0, axis1)

    def expand(self, *sizes, size=None):
        if size is not None:  # PyTorch's keyword: x.expand(size=(3, 4))
            sizes = (size,)
        elif not sizes:  # PyTorch's TypeError (x.expand() of a 0-d x is no no-op there)
            raise TypeError('expand() missing 1 required positional arguments: "size" (give '
                            "the sizes, e.g. x.expand(3, 4); x.expand(()) keeps a 0-d x)")
        return _ops.expand(self, *sizes)

    def broadcast_to(self, shape):
        return _ops.broadcast_to(self, shape)

    def expand_as(self, other):
        return _ops.expand(self, *other.shape)

    def squeeze(self, axis=None, *, dim=None):
        return _ops.squeeze(self, axis if dim is None else dim)

    def unsqueeze(self, axis=None, *, dim=None):
        return _ops.unsqueeze(self, axis if dim is None else dim)

    def split(self, split_size, axis=0, *, dim=None):  # PyTorch's name: split_size
        return _ops.split(self, split_size, axis if dim is None else dim)

    def chunk(self, chunks, axis=0, *, dim=None):
        return _ops.chunk(self, chunks, axis if dim is None else dim)

    def flip(self, *axis, dims=None):
        # PyTorch's Tensor.flip(*dims): x.flip(0, 1), x.flip([0, 1]) and x.flip(dims=...)
        if dims is not None and axis:
            raise TypeError("flip() got multiple values for argument 'dims'")
        if dims is None and axis:
            dims = axis[0] if len(axis) == 1 else axis
        return _ops.flip(self, dims)

    def roll(self, shifts, axis=None, *, dims=None):
        return _ops.roll(self, shifts, axis if dims is None else dims)

    def repeat(self, *reps):
        return _ops.repeat(self, *reps)

    def tile(self, *reps, dims=None):
        if dims is not None:  # PyTorch's keyword: x.tile(dims=(2, 1))
            reps = (dims,)
        return _ops.tile(self, *reps)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return _ops.diagonal(self, offset, dim1, dim2)

    def diag(self, diagonal=0):
        return _ops.diag(self, diagonal)

    def trace(self):
        return _ops.trace(self)

    def unfold(self, dimension, size, step):
        return _ops.unfold(self, dimension, size, step)

    def unflatten(self, dim, sizes):
        return _ops.unflatten(self, dim, sizes)

    def repeat_interleave(self, repeats, dim=None, *, output_size=None):
        return _ops.repeat_interleave(self, repeats, dim, output_size=output_size)

    def narrow(self, dim, start, length):
        return _ops.narrow(self, dim, start, length)

    def movedim(self, source, destination):
        return _ops.movedim(self, source, destination)

    moveaxis = movedim

    def tril(self, k=0, *, diagonal=None):
        return _ops.tril(self, k if diagonal is None else diagonal)

    def triu(self, k=0, *, diagonal=None):
        return _ops.triu(self, k if diagonal is None else diagonal)


class IndexingMethods:
    """`x[i]`, `x[i] = v`, and PyTorch's gather/scatter family."""

    __slots__ = ()

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    def __setitem__(self, index, value) -> None:
        _ops.setitem(self, index, value)

    def gather(self, dim=None, index=None, *, axis=None, sparse_grad=False):
        return _ops.gather(self, dim, index, axis=axis)

    def take(self, index):
        return _ops.take(self, index)

    def index_fill(self, dim, index, value):
        return _ops.index_fill(self, dim, index, value)

    def scatter_reduce(self, dim, index, src, reduce, *, include_self=True):
        return _ops.scatter_reduce(self, dim, index, src, reduce, include_self=include_self)

    def take_along_axis(self, index, axis):
        return _ops.take_along_axis(self, index, axis)

    def index_select(self, axis=None, index=None, *, dim=None):
        return _ops.index_select(self, axis if dim is None else dim, index)

    def scatter_add(self, axis=None, index=None, src=None, *, dim=None):
        return _ops.scatter_add(self, axis if dim is None else dim, index, src)

    def index_add(self, axis=None, index=None, source=None, *, dim=None, alpha=1):
        return _ops.index_add(self, axis if dim is None else dim, index, source, alpha=alpha)


class InPlaceMethods:
    """In-place updates (`x += y`, `x.add_(y)`, ...); see `descent.ops.inplace` for how they
    interact with the graph (version counters, rebinding)."""

    __slots__ = ()

    def __iadd__(self, other):
        return _ops.add_(self, other)

    def __isub__(self, other):
        return _ops.sub_(self, other)

    def __imul__(self, other):
        return _ops.mul_(self, other)

    def __itruediv__(self, other):
        return _ops.div_(self, other)

    __idiv__ = __itruediv__  # Python 2's name, which PyTorch's Tensor still has

    # The other augmented assignments run the in-place methods, as PyTorch's do (so `x **= 2`
    # keeps x's identity and its views see the change).
    def __ipow__(self, other):
        return self.pow_(other)

    def __imod__(self, other):
        return self.remainder_(other)

    def __ifloordiv__(self, other):
        return self.floor_divide_(other)

    def __iand__(self, other):
        return self.bitwise_and_(other)

    def __ior__(self, other):
        return self.bitwise_or_(other)

    def __ixor__(self, other):
        return self.bitwise_xor_(other)

    def __ilshift__(self, other):
        return self.bitwise_left_shift_(other)

    def __irshift__(self, other):
        return self.bitwise_right_shift_(other)

    def __reversed__(self):
        """reversed(x): x flipped along dim 0 (a 0-d tensor is returned as it is)."""
        return self if self._data.ndim == 0 else _ops.flip(self, (0,))

    def add_(self, other, *args, alpha=1):
        if args:
            alpha, (other,) = legacy_scalar_first("add_", other, args, 1)  # x.add_(alpha, other)
        if type(alpha) is int and self._data.dtype.kind == "b":
            alpha = bool(alpha)  # PyTorch casts alpha to the bool result (see descent.add)
        if not (type(alpha) is int and alpha == 1):  # PyTorch's checks of alpha (ops/_common)
            _ops._inplace_alpha(self, other, alpha, "add_")
        if alpha != 1 and hasattr(other, "_data"):  # (other read at each of the loop's visits
            return _ops.add_(self, other, alpha=alpha)  # to shared memory: ops/overlap_rounds)
        return _ops.add_(self, other if alpha == 1 else _times_alpha(self, other, alpha))

    def sub_(self, other, *args, alpha=1):
        if args:
            alpha, (other,) = legacy_scalar_first("sub_", other, args, 1)  # x.sub_(alpha, other)
        if not (type(alpha) is int and alpha == 1):  # PyTorch's checks of alpha (ops/_common)
            _ops._inplace_alpha(self, other, alpha, "sub_")
        if alpha != 1 and hasattr(other, "_data"):
            return _ops.sub_(self, other, alpha=alpha)
        return _ops.sub_(self, other if alpha == 1 else _times_alpha(self, other, alpha))

    def mul_(self, other):
        return _ops.mul_(self, other)

    def div_(self, other, *, rounding_mode=None):
        return _ops.div_(self, other, rounding_mode=rounding_mode)

    def clamp_(self, min=None, max=None):
        return _ops.clamp_(self, min, max)

    def copy_(self, src, non_blocking: bool = False):
        # non_blocking: PyTorch's asynchronous host-device copy; descent's copies are synchronous
        return _ops.copy_(self, src)

    def module_load(self, other, assign: bool = False):
        """What `nn.Module.load_state_dict` swaps into this parameter or buffer under
        `descent.__future__.set_swap_module_params_on_conversion(True)`: PyTorch's default,
        `other.detach()` with assign, else `self.copy_(other).detach()` (a subclass may
        override it)."""
        if assign:
            return other.detach()
        return self.copy_(other).detach()

    def fill_(self, value):
        return _ops.fill_(self, value)

    def zero_(self):
        return _ops.zero_(self)

    def masked_fill_(self, mask, value):
        return _ops.masked_fill_(self, mask, value)


def _times_alpha(t, other, alpha):
    """other * alpha for add_/sub_ (a Python int beyond int64: PyTorch's casts, scaled_int)."""
    if type(other) is int:
        return _ops._scaled_int(t._data.dtype, other, alpha)  # ops.arithmetic's, by the ops table
    return other * alpha
