"""Shape operations: reshape, transpose, broadcast, squeeze, concatenate, stack, split, to_device.

pad, flip, roll, tile, repeat, tril and triu (ops that copy values to new places) are in
ops/shape_copy.py; their names are re-exported here.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..autograd import Function, _apply_view
from ..errors import DescentError, DimensionError
from ..grad_fn import show_pieces
from ..memory_layout import elem_strides
from ..tensor import Tensor
from . import view_rules as _view_rules
from ._common import as_tensor, check_devices, normalize_axis, promote_types, shape_arg
from .out_arg import can_cast, check_overlap, scalar_name, write_out
from .shape_copy import (  # noqa: F401 - moved to ops/shape_copy.py, re-exported from here
    _PAD_MODES,
    Flip,
    Pad,
    Roll,
    Tile,
    Tri,
    _matrices,
    flip,
    pad,
    repeat,
    roll,
    tile,
    tril,
    triu,
)


# Shape ops move no arithmetic: each backward is the inverse movement of the gradient
# (reshape back, transpose back, cut back into pieces). None saves an input: the shapes the
# engine records (`in_shapes`) are all they need, so they keep no array alive.
class Reshape(Function):
    """d reshape(x) = reshape of the gradient back to x's shape."""

    makes_view = True  # the output may view the input (autograd.mark_view)
    native_bfloat16 = True  # moves values only: bfloat16 arrays as they are (a view stays one)

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("shape",)
    keeps_strides = False  # (squeeze and unsqueeze keep x's strides on the other dims)

    def forward(self, x):
        y = x.reshape(self.shape)
        # PyTorch's strides on size-1 dims (computeStride for view/reshape/flatten,
        # inferUnsqueezeGeometry, inferSqueezeGeometry), where NumPy's reshape gives its own:
        # stride() shows them and the overlap check of in-place ops compares them
        # (`x.view(3, 1).permute(1, 0)` and its `.reshape(1, 3)` are a partial overlap there).
        # A reshape of a C-contiguous x whose last dim is not of size 1 (computeStride's
        # base stride) to another shape gets C strides in both.
        # (the cheap tests first: flags builds an object, _strided is a call)
        if 1 in y.shape and (
            self.keeps_strides or y.shape == x.shape or (x.ndim and x.shape[-1] == 1)
            or not x.flags.c_contiguous
        ) and _strided(y):  # fmt: skip
            y = _view_rules.with_strides(y, self.torch_strides(x, y.shape))
        return y

    def torch_strides(self, x, shape):
        """PyTorch's strides (elements) of the view of x as `shape` (the result's: a -1 in
        self.shape resolved), or None where it copies."""
        return _view_rules.view_strides(x.shape, elem_strides(x), shape)

    def backward(self, gy, ops):
        return gy.reshape(self.in_shapes[0])


_new = object.__new__


def _strided(a) -> bool:
    """Whether `a` has strides to set (a NumPy or CuPy array, not a meta one)."""
    return isinstance(a, np.ndarray) or backend.is_cupy_array(a)


# PyTorch's names for the reshapes that squeeze and unsqueeze make (grad_fn_names.py): the
# same op, a subclass each so that the name is looked up from the class, never recorded.
class Unsqueeze(Reshape):
    """d unsqueeze(x) = the gradient reshaped back (PyTorch's UnsqueezeBackward0)."""

    __slots__ = ("dim",)
    keeps_strides = True

    def forward(self, x):
        y = x.reshape(self.shape)
        d = getattr(self, "dim", None)
        if d is None or not y.size or not _strided(y):
            return y
        # (in bytes first: most often NumPy's strides already are PyTorch's)
        st = x.strides
        if y.strides == st[:d] + (x.shape[d] * st[d] if d < x.ndim else x.itemsize,) + st[d:]:
            return y
        return _view_rules.with_strides(y, self.torch_strides(x, y.shape))

    def torch_strides(self, x, shape):
        # inferUnsqueezeGeometry: the new dim's stride is the extent of the dim it goes
        # before (1 at the end)
        d, st = getattr(self, "dim", None), list(elem_strides(x))
        if d is None:  # (made without its dim: NumPy's strides)
            return None
        st.insert(d, x.shape[d] * st[d] if d < x.ndim else 1)
        return tuple(st)


class Squeeze(Reshape):
    """d squeeze(x, dim) = the gradient reshaped back (SqueezeBackward1; SqueezeBackward0 for
    squeeze() and SqueezeBackward2 for a tuple of dims are the subclasses below)."""

    __slots__ = ("dims",)
    keeps_strides = True

    def torch_strides(self, x, shape):
        # inferSqueezeGeometry: the kept dims keep their strides
        dims = getattr(self, "dims", None)
        if dims is None:
            return None
        return tuple(s for i, s in enumerate(elem_strides(x)) if i not in dims)


class SqueezeAll(Squeeze):
    __slots__ = ()


class SqueezeDims(Squeeze):
    __slots__ = ()


def reshape(x, *sizes, shape=None) -> Tensor:
    """x reshaped to `sizes` (ints or one tuple; PyTorch's keyword: shape=). The same shape
    gives a new view of x (PyTorch's: `y is x` is False, `y._base is x`, a ViewBackward0 node
    when x requires grad), not x itself."""
    x = as_tensor(x)
    shape = tuple(map(int, shape_arg(sizes if shape is None else (shape,))))
    if shape and min(shape) < -1:  # NumPy reads any negative size as -1
        _bad_size("reshape", x, shape)
    # NumPy's message does not name the sizes; ours says both shapes and the element count.
    try:
        return _reshape_view(x, shape)
    except ValueError:
        raise DescentError(
            f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} ({x.numel()} "
            "elements) into "
            f"{tuple(shape)}"
        ) from None


def _bad_size(op: str, x: Tensor, shape: tuple) -> None:
    i = next(i for i, n in enumerate(shape) if n < -1)
    raise DescentError(
        f"{op}: invalid size {shape[i]} at index {i} of {shape} (tensor of shape "
        f"{tuple(x.shape)}): sizes are >= 0, and -1 (once) infers one"
    )


def view(x, *sizes) -> Tensor:
    """x.view(sizes): x's memory seen as another shape, never a copy (PyTorch's view). Where
    x's strides cannot express the shape (`x.t().view(-1)`), RuntimeError, as in PyTorch: a
    silent copy would lose every write made through the "view" (ops/view_rules.py).

    Raises:
        RuntimeError: the sizes do not multiply up to x's element count, or the view would
            need a copy (use `.reshape(...)`, which copies where needed, or `.contiguous()`).
    """
    if type(x) is not Tensor:  # (a method call's self is one: no as_tensor call)
        x = as_tensor(x)
    shape = tuple(map(int, shape_arg(sizes)))  # (map: ~0.1 us less than a generator)
    if shape and min(shape) < -1:  # NumPy reads any negative size as -1
        _bad_size("view", x, shape)
    a = x._data
    # A C-contiguous array can take any shape of its size: only the others need the check,
    # whose passes are kept by layout (the views of a model's split pieces recur every step).
    if not a.flags.c_contiguous:
        key = (a.shape, a.strides, a.itemsize, shape)
        known = _VIEWABLE.get(key)
        if known is None:
            strides = elem_strides(a)
            known = _view_rules.infer_size(shape, a.size)
            if _view_rules.view_strides(a.shape, strides, known) is None:
                raise _view_rules.view_error(a.shape, strides, known)
            if len(_VIEWABLE) >= 1024:
                _VIEWABLE.clear()
            _VIEWABLE[key] = known
        shape = known
    try:
        return _reshape_view(x, shape)
    except ValueError:
        _view_rules.infer_size(shape, a.size)  # PyTorch's "shape '[...]' is invalid ..."
        raise


# (shape, byte strides, item size, asked shape) of a non-contiguous view that PyTorch's rule
# allows -> the shape with its -1 resolved (view's check above)
_VIEWABLE: dict = {}


def _reshape_view(x, shape) -> Tensor:
    """Reshape.apply(x, shape=shape) through the engine's view path (autograd.apply_view:
    no keyword dict, no error state; ~0.6 us a call less), `apply` for bfloat16/float8."""
    fn = _new(Reshape)
    fn.shape = shape
    t = _apply_view(fn, x)
    return Reshape.apply(x, shape=shape) if t is None else t


def flatten(x, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one (PyTorch's semantics: x itself when there
    is nothing to merge, start_dim == end_dim or a 1-D x; a new view otherwise)."""
    x = as_tensor(x)
    # Negative dims count from the end, as PyTorch (IndexError out of range).
    s = normalize_axis(start_dim, x.ndim, "flatten")[0]
    e = normalize_axis(end_dim, x.ndim, "flatten")[0]
    if x.ndim == 0:
        return reshape(x, 1)
    if s == e:
        return x
    if s > e:
        raise DescentError(
            f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim}) for shape "
            f"{tuple(x.shape)}"
        )
    merged = 1
    for n in x.shape[s : e + 1]:  # explicit: -1 cannot be inferred next to a 0 dimension
        merged *= n
    return reshape(x, x.shape[:s] + (merged,) + x.shape[e + 1 :])


class Transpose(Function):
    """d transpose(x, axes) = transpose of the gradient with the inverse permutation."""

    makes_view = True  # the output may view the input (autograd.mark_view)
    native_bfloat16 = True  # moves values only: bfloat16 arrays as they are

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("axes",)

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy, ops):
        # argsort of a permutation is its inverse: it puts every axis back where it came from
        # (sorted() on the few axes: np.argsort cost ~3.5 us more a call, 16 calls a GPT step).
        # The identity (x.permute(0, 1), a new view) passes gy: ops.transpose(gy, 0, 1) would
        # read two ints as PyTorch's swap.
        axes = self.axes
        inverse = tuple(sorted(range(len(axes)), key=axes.__getitem__))
        if inverse == tuple(range(len(inverse))):
            return gy
        return ops.transpose(gy, inverse)


# PyTorch's names for the permutations (grad_fn_names.py), one subclass each, looked up from
# the class: Transpose is transpose(dim0, dim1) and swapaxes (TransposeBackward0), Permute is
# permute, movedim and x.T (PermuteBackward0), MatrixT is x.t() (TBackward0).
class Permute(Transpose):
    __slots__ = ()


class MatrixT(Transpose):
    __slots__ = ()


def matrix_t(x) -> Tensor:
    """x.t(): the transpose of a matrix; of a 0-d or 1-D tensor a new view of it, as torch.t."""
    if x.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, got shape "
                           f"{tuple(x.shape)}; use transpose(dim0, dim1) or mT")  # fmt: skip
    return MatrixT.apply(x, axes=(1, 0) if x.ndim == 2 else tuple(range(x.ndim)))


# (ndim, dim0, dim1) -> the axes of transpose(dim0, dim1): PyTorch's swap of two int dims in
# range, ndim >= 2 (the common call, x.transpose(1, 2), skips the argument checks below)
_SWAPS: dict = {}


def _swap(n: int, a: int, b: int):
    """The permutation swapping dims a and b (ints) of an n-d tensor, or None where the checked
    path must decide (out of range, fewer than 2 dims)."""
    if n < 2 or not (-n <= a < n and -n <= b < n):
        return None
    axes = list(range(n))
    axes[a], axes[b] = axes[b], axes[a]
    perm = _SWAPS[(n, a, b)] = tuple(axes)
    return perm


def transpose(x, *axes, dim0=None, dim1=None) -> Tensor:
    """Permute axes; with no axes reverse them (NumPy); with two ints swap them (PyTorch, also
    as torch.transpose(input, dim0=, dim1=))."""
    if len(axes) == 2 and type(x) is Tensor and dim0 is None and dim1 is None:
        a, b = axes
        if type(a) is int and type(b) is int:  # (not bools, floats or NumPy ints)
            n = x._data.ndim
            perm = _SWAPS.get((n, a, b)) or _swap(n, a, b)
            if perm is not None:  # the same axes as swapaxes (or the 2-d case) below
                fn = _new(Transpose)
                fn.axes = perm
                t = _apply_view(fn, x)
                if t is not None:
                    return t
    x = as_tensor(x)
    if dim0 is not None or dim1 is not None:
        axes = (*axes, *(d for d in (dim0, dim1) if d is not None))
    if x._sparse_layout or x._nested_layout:  # torch.transpose(sparse, 0, 1): its method
        return x.transpose(*axes)
    axes = shape_arg(axes) if axes else ()
    # No axes reverse them (NumPy). Two ints mean PyTorch's transpose(dim0, dim1) (swap two
    # axes), except for a 2-D tensor, where NumPy's full permutation and PyTorch's swap agree.
    if not axes:
        axes = tuple(range(x.ndim - 1, -1, -1))
    elif len(axes) == 2 and x.ndim != 2:
        return swapaxes(x, axes[0], axes[1])
    elif len(axes) == 2 and x.ndim == 2:
        # each alone: transpose(x, 1, 1)
        a, b = (normalize_axis(d, 2, "transpose")[0] for d in axes)
        axes = (0, 1) if a == b else (1, 0)  # (a == b: a new view, as PyTorch's)
    if len(axes) != x.ndim:
        raise DescentError(
            f"transpose: axes {axes} do not match a tensor of shape {tuple(x.shape)}"
        )
    axes = tuple(int(a) % x.ndim for a in axes)
    return Transpose.apply(x, axes=axes)  # (the identity too: a new view, as PyTorch's)


def permute(x, *axes, dims=None) -> Tensor:
    """torch.permute(input, dims): `dims` may come as a keyword."""
    x = as_tensor(x)
    if dims is not None:
        axes = (tuple(dims),)
    if x._sparse_layout or x._nested_layout:
        return x.permute(*axes)
    axes = shape_arg(axes)
    if len(axes) != x.ndim:  # (checked first: a 0-d tensor has no dims to take a modulo by)
        raise DescentError(
            f"permute: number of dimensions in the tensor input does not match the length of "
            f"the desired ordering of dimensions i.e. input.dim() = {x.ndim} is not equal to "
            f"len(dims) = {len(axes)}"
        )
    for a in axes:
        if not -x.ndim <= int(a) < x.ndim:
            raise DimensionError(
                f"permute: dim {a} is out of range for a tensor of shape {tuple(x.shape)} "
                f"(expected in [{-x.ndim}, {x.ndim - 1}])"
            )
    axes = tuple(int(a) % x.ndim for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise DescentError(
            f"permute: {axes} is not a permutation of the axes of shape {tuple(x.shape)}"
        )
    return Permute.apply(x, axes=axes)  # (the identity too: a new view, as PyTorch's)


def swapaxes(x, a: int, b: int) -> Tensor:
    x = as_tensor(x)
    if x._sparse_layout or x._nested_layout:
        return x.transpose(a, b)
    axes = list(range(x.ndim))
    # In range or an IndexError (PyTorch's); a 0-d tensor takes dims 0 and -1 (a no-op).
    a = normalize_axis(a, x.ndim, "transpose")[0]
    b = normalize_axis(b, x.ndim, "transpose")[0]
    if x.ndim:  # (a == b: the identity, a new view as PyTorch's)
        axes[a], axes[b] = axes[b], axes[a]
    return Transpose.apply(x, axes=tuple(axes))


class BroadcastTo(Function):
    """d broadcast_to(x) = the gradient summed back to x's shape (done by the engine)."""

    makes_view = True  # the output may view the input (autograd.mark_view)

    __slots__ = ("shape",)

    def forward(self, x):
        shape = self.shape
        lead = len(shape) - x.ndim
        repeats = not (x.size and x.size == math.prod(shape))
        if type(x) is np.ndarray and x.size and x.dtype.num < 256 and (
                x.flags.c_contiguous or x.flags.f_contiguous):  # fmt: skip
            # an ndarray over x's buffer with PyTorch's strides (~1 us; broadcast_to ~4)
            out = np.ndarray(shape, x.dtype, x, 0, _expand_strides(x, shape, lead))
            if repeats:
                out.setflags(write=False)  # (as broadcast_to's: read-only)
            return out
        if not repeats:
            # Nothing repeats (only size-1 dims added): a writable view, as PyTorch's
            # x.expand_as(x) / x.expand(1, *x.shape), which in-place ops may write through.
            out = x[(None,) * lead + (Ellipsis,)]  # (Ellipsis: a 0-d x stays an array)
        else:
            # A read-only view: nothing is copied; ops that write into their result make
            # their own.
            out = backend.get_array_module(x).broadcast_to(x, shape)
        if not x.size or 1 not in shape:
            return out
        strides = _expand_strides(x, shape, lead)
        if strides == out.strides:
            return out
        return backend.get_array_module(out).lib.stride_tricks.as_strided(
            out, shape, strides, writeable=not repeats and out.flags.writeable
        )

    # Returned at the output's shape: the engine's one unbroadcast (sum_to) sums the copies.
    def backward(self, gy, ops):
        return gy


def _expand_strides(x, shape: tuple, lead: int) -> tuple:
    """The strides (bytes) of x expanded to `shape` (`lead` new leading dims), PyTorch's
    (inferExpandGeometry): an expanded dim 0; a kept one x's; a new one of size 1 the next dim's
    size times its stride. NumPy's broadcast_to gives every size-1 dim 0: the elements are the
    same, but PyTorch's overlap check compares strides (`x.reshape(1, -1).expand(2, 1, 3)[0] =
    x.reshape(1, -1)` is the same memory with the same strides there: no error) and so does
    stride()."""
    n = len(shape)
    strides = [0] * n
    if not x.ndim:  # (a 0-d x: every stride is 0, as there)
        return tuple(strides)
    xs, xn = x.strides, x.shape
    for i in range(n - 1, -1, -1):
        if i >= lead:
            size, st = xn[i - lead], xs[i - lead]
        else:
            size, st = 1, shape[i + 1] * strides[i + 1]
        strides[i] = st if size == shape[i] else 0
    return tuple(strides)


def broadcast_to(x, shape=None, size=None) -> Tensor:
    """torch.broadcast_to(input, size): `size` is PyTorch's keyword, `shape` NumPy's."""
    x = as_tensor(x)
    if shape is None:
        shape = size
    shape = tuple(shape)
    if shape == x.shape:
        return x
    try:
        # broadcast_shapes accepts (3, 1) with (3,) and (3, 1) with (1, 1), but broadcasting
        # never removes dimensions nor shrinks one (NumPy's own ValueError leaked for the latter).
        if len(shape) < x.ndim or np.broadcast_shapes(x.shape, shape) != shape:
            raise DescentError
    except ValueError:
        raise DescentError(
            f"broadcast_to: cannot broadcast shape {tuple(x.shape)} to {shape}"
        ) from None
    return BroadcastTo.apply(x, shape=shape)


def expand(x, *sizes, size=None) -> Tensor:
    """PyTorch's expand: -1 keeps a dimension's size (PyTorch's keyword: size=)."""
    x = as_tensor(x)
    shape = list(shape_arg(sizes if size is None else (size,)))
    lead = len(shape) - x.ndim
    if lead < 0:
        raise DescentError(
            f"expand: the number of sizes provided ({len(shape)}) must be at least the number "
            f"of dimensions of the tensor ({x.ndim}): shape {tuple(x.shape)} to {tuple(shape)}"
        )
    # PyTorch's -1 ("keep this size") is resolved against the trailing dims of x.
    for i in range(x.ndim):
        if shape[lead + i] == -1:
            shape[lead + i] = x.shape[i]
        elif shape[lead + i] != x.shape[i] and x.shape[i] != 1:
            raise DescentError(
                f"expand: the expanded size {shape[lead + i]} must match the existing size "
                f"{x.shape[i]} at non-singleton dimension {lead + i}: shape {tuple(x.shape)} to "
                f"{tuple(shape)} (only size-1 dimensions expand)"
            )
    if any(n < 0 for n in shape[:lead]):
        raise DescentError(
            f"expand: size {min(shape[:lead])} is not allowed in a new leading dimension: shape "
            f"{tuple(x.shape)} to {tuple(shape)}"
        )
    if len(shape) == x.ndim and tuple(shape) == x._data.shape:
        return BroadcastTo.apply(x, shape=x._data.shape)  # PyTorch's: a new view, not x
    return broadcast_to(x, tuple(shape))


def squeeze(x, axis=None, dim=None) -> Tensor:
    """torch.squeeze(input, dim=None): `dim` is PyTorch's keyword, `axis` NumPy's."""
    x = as_tensor(x)
    if dim is not None:
        axis = dim
    # squeeze is a reshape (the gradient only needs the old shape back); a new view even when
    # no dimension has size 1, as PyTorch's. The class gives PyTorch's name for the overload.
    if axis is None:
        op, axes = SqueezeAll, tuple(i for i, n in enumerate(x.shape) if n == 1)
    else:
        axes = normalize_axis(axis, x.ndim, "squeeze")
        op = SqueezeDims if isinstance(axis, (tuple, list)) else Squeeze
        if x.ndim == 0:  # dims 0 and -1 of a 0-d tensor: nothing to squeeze
            return op.apply(x, shape=(), dims=())
        axes = tuple(a for a in axes if x.shape[a] == 1)  # PyTorch: non-1 dims are left alone
    shape = tuple(n for i, n in enumerate(x.shape) if i not in axes)
    return op.apply(x, shape=shape, dims=axes)


def unsqueeze(x, axis=None, dim=None) -> Tensor:
    """torch.unsqueeze(input, dim): `dim` is PyTorch's keyword, `axis` NumPy's."""
    x = as_tensor(x)
    if dim is not None:
        axis = dim
    if axis is None:
        raise TypeError("unsqueeze: pass the axis (dim) where the new dimension goes")
    if x._sparse_layout:
        return x.unsqueeze(axis)
    nd = x.ndim + 1
    # The new axis may be at position ndim (the end): the valid range is that of the result.
    a = int(axis)
    if not -nd <= a < nd:
        raise DimensionError(f"unsqueeze: axis {a} out of range for {nd} dimensions")
    a %= nd
    return Unsqueeze.apply(x, shape=x.shape[:a] + (1,) + x.shape[a:], dim=a)


expand_dims = unsqueeze


class Concatenate(Function):
    """d cat(xs) = the gradient cut back into pieces along the axis."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("axis",)

    def forward(self, *xs):
        return backend.get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, gy, ops):
        # Each input's gradient is its slab of gy along the axis: basic slices, so views, no copies.
        out = []
        start = 0
        pre = (slice(None),) * self.axis
        for shape in self.in_shapes:
            n = shape[self.axis]
            out.append(gy[pre + (slice(start, start + n),)])
            start += n
        return tuple(out)


class Stack(Function):
    """d stack(xs) = the gradient's slices along the new axis, one per input (one node, as
    PyTorch's StackBackward0, where unsqueeze + cat would record one per input and a cat)."""

    zero_passes = True  # a known-zero gradient passes (PyTorch's formula multiplies it)

    __slots__ = ("axis",)

    def forward(self, *xs):
        return backend.get_array_module(*xs).stack(xs, axis=self.axis)

    def backward(self, gy, ops):
        # Basic indexes: views of gy, no copies.
        pre = (slice(None),) * self.axis
        return tuple(gy[pre + (i,)] for i in range(len(self.in_shapes)))


def concatenate(tensors, axis: int = 0, *, dim=None, out=None) -> Tensor:
    """Join tensors along an existing axis; `out=` as PyTorch's (ops/out_arg.py)."""
    if out is not None:
        if isinstance(tensors, Tensor):  # PyTorch's check (here only on the out= path: free)
            raise TypeError("cat(): argument 'tensors' must be tuple of Tensors, not Tensor")
        check_overlap(out, tensors)
        return cat_out(concatenate(tensors, axis, dim=dim), out, "cat")
    if dim is not None:
        axis = dim
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise DescentError("cat: needs at least one tensor")
    fast = _join_fast(tensors, axis, 0)
    if fast is not None:
        return Concatenate.apply(*tensors, axis=fast)
    if tensors[0]._nested_layout:  # jagged nested tensors: their values (descent.nested)
        return tensors[0]._nested_cat(tensors, axis)
    if any(t._sparse_layout for t in tensors):
        from ..sparse.join import cat as sparse_cat  # noqa: PLC0415 - descent.sparse is lazy

        return sparse_cat(tensors, axis)
    check_devices("cat", *tensors)
    # PyTorch's legacy rule: 1-d empty tensors (shape (0,)) are skipped in the shape checks,
    # whatever the others' shapes and the dim; they still take part in the dtype and in the
    # graph (one that requires grad makes the result require grad, as in PyTorch).
    dt = tensors[0]._data.dtype
    for t in tensors[1:]:
        dt = promote_types(dt, t._data.dtype)
    kept = [t for t in tensors if t.shape != (0,)]
    if not kept:
        return Concatenate.apply(*[t if t._data.dtype == dt else t.astype(dt) for t in tensors],
                                 axis=0)  # fmt: skip
    nd = kept[0].ndim
    if nd == 0:
        raise DescentError("cat: zero-dimensional tensors cannot be concatenated; use stack")
    axis = normalize_axis(axis, nd, "cat")[0]
    for t in kept:
        if t.ndim != nd or any(t.shape[i] != kept[0].shape[i] for i in range(nd) if i != axis):
            shapes = [tuple(u.shape) for u in kept]
            raise DescentError(f"cat: shapes {shapes} must match except along axis {axis}")
    # A skipped tensor that requires grad joins as an empty slab of the others' shape (its
    # gradient: an empty slab, reshaped back to (0,)); the others are dropped.
    empty = kept[0].shape[:axis] + (0,) + kept[0].shape[axis + 1 :]
    tensors = [t if t.shape != (0,) else t.reshape(empty) for t in tensors
               if t.shape != (0,) or t.requires_grad]  # fmt: skip
    # Mixed dtypes promote as torch.cat does (torch.promote_types: float32 with int64 is
    # float32, not NumPy's float64), by casting (recorded) before the join.
    tensors = [t if t._data.dtype == dt else t.astype(dt) for t in tensors]
    return Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def _join_fast(tensors, axis, extra: int):
    """cat's (extra 0) / stack's (extra 1) common case, checked on the arrays' plain shape
    tuples (a Tensor's `.shape` is a new Size per read, and Size's indexing is Python): NumPy
    arrays of one dtype and one shape apart from the axis (stack: one shape; cat: not the
    legacy empty (0,)), an int axis in range. Returns the axis (made non-negative), or None for
    the full path (which also raises the errors)."""
    t0 = tensors[0]._data
    if type(t0) is not np.ndarray or type(axis) is not int:
        return None
    dt, s0 = t0.dtype, t0.shape
    nd = len(s0) + extra
    if axis < 0:
        axis += nd
    if not 0 <= axis < nd or (extra == 0 and (nd == 0 or s0 == (0,))):
        return None
    pre, post = s0[:axis], s0[axis + 1 - extra :]
    for t in tensors:
        a = t._data
        if type(a) is not np.ndarray or a.dtype != dt or t._sparse_layout or t._nested_layout:
            return None
        s = a.shape
        if len(s) != nd - extra or s[:axis] != pre or s[axis + 1 - extra :] != post:
            return None
    return axis


def cat_out(result, out, op):
    # torch.cat/stack refuse an out dtype the inputs cannot be cast to with a TypeError (the
    # other ops' RuntimeError): checked here, then the shared writer.
    if isinstance(out, Tensor) and not can_cast(result._data.dtype, out._data.dtype):
        raise TypeError(
            f"torch.{op}(): input types can't be cast to the desired output type "
            f"{scalar_name(out._data.dtype)}"
        )
    return write_out(result, out, op)


def stack(tensors, axis: int = 0, *, dim=None, out=None) -> Tensor:
    """Join tensors of one shape along a new axis; `out=` as PyTorch's."""
    if out is not None:
        return cat_out(stack(tensors, axis, dim=dim), out, "stack")
    if dim is not None:
        axis = dim
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise DescentError("stack: needs at least one tensor")
    fast = _join_fast(tensors, axis, 1)
    if fast is not None:
        return Stack.apply(*tensors, axis=fast)
    if any(t._sparse_layout for t in tensors):
        from ..sparse.join import stack as sparse_stack  # noqa: PLC0415 - lazy, as in cat

        return sparse_stack(tensors, axis)
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) != 1:
        raise DescentError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    check_devices("stack", *tensors)
    nd = tensors[0].ndim + 1
    a = int(axis)
    if not -nd <= a < nd:
        raise DimensionError(f"stack: dim {a} out of range for {nd} dimensions")
    # Mixed dtypes promote as torch.stack does (cast, recorded, before the join), as in cat.
    dt = tensors[0]._data.dtype
    for t in tensors[1:]:
        dt = promote_types(dt, t._data.dtype)
    tensors = [t if t._data.dtype == dt else t.astype(dt) for t in tensors]
    return Stack.apply(*tensors, axis=a % nd)


def split(x, split_size_or_sections, axis: int = 0, *, dim=None) -> tuple[Tensor, ...]:
    """PyTorch's split: an int is the size of each piece; a list gives the sizes."""
    if dim is not None:
        axis = dim
    nd = x._data.ndim if type(x) is Tensor else 0
    if nd and type(axis) is int and -nd <= axis < nd and type(split_size_or_sections) is int:
        axis %= nd  # the common call, qkv.split(C, dim=2): the checks below pass
        n = x._data.shape[axis]
    else:
        x = as_tensor(x)
        if x._nested_layout:
            return x.split(split_size_or_sections, axis)
        if x.ndim == 0:  # PyTorch's RuntimeError (NumPy's IndexError leaked before)
            raise DescentError("split expects at least a 1-dimensional tensor (got a 0-d one)")
        axis = normalize_axis(axis, x.ndim, "split")[0]
        n = x.shape[axis]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0 and (n or s < 0):
            raise DescentError(
                f"split: split_size must be positive (0 only for a dimension of size 0), got "
                f"{s} for dimension {axis} of size {n}"
            )
        sizes = [s] * (n // s) + ([n % s] if n % s else []) if n else [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins_sum(sizes) != n:
            raise DescentError(f"split: sizes {sizes} do not add up to {n} along axis {axis}")
    # Pieces are slices of x (GetItem nodes): each gets its gradient scattered back into place.
    # Each is shown as PyTorch's node for the pieces (one node there, shared by them)
    name = "SplitBackward0" if isinstance(split_size_or_sections, int) else \
        "SplitWithSizesBackward0"  # fmt: skip
    pre = (slice(None),) * axis
    out, start = [], 0
    # GetItem itself: x[...] would find nothing to convert in a tuple of slices and make this
    # same call (~1 us a piece of its index checks: split(x, 4, 1) of 512 columns, 128 views)
    if not _GETITEM:
        from .indexing import GetItem  # noqa: PLC0415 - ops/indexing imports this module

        _GETITEM.append(GetItem)
    get_item = _GETITEM[0]
    for k, s in enumerate(sizes):
        idx = pre + (slice(start, start + s),)
        fn = _new(get_item)  # GetItem.apply(x, idx=idx, basic=True) as the engine's view path
        fn.idx, fn.basic = idx, True
        piece = _apply_view(fn, x)
        if piece is None:  # bfloat16 / float8: apply's low-precision dispatch
            piece = get_item.apply(x, idx=idx, basic=True)
        if getattr(piece, "_view_base", None) is not None:
            # PyTorch refuses a tracked in-place op on an output of a function returning several
            # views (ops/view_write.write reads this): (op name, output index)
            piece._multi_output = ("split", k)
        out.append(piece)
        start += s
    show_pieces(out, name, x)
    return tuple(out)


_GETITEM: list = []  # [the indexing module's GetItem], on split's first call


# `sum` is shadowed in ops (descent's own reductions); this adds plain ints.
def builtins_sum(v):
    total = 0
    for a in v:
        total += a
    return total


def chunk(x, chunks: int, axis: int = 0, *, dim=None) -> tuple[Tensor, ...]:
    """Split into `chunks` pieces of equal size (the last may be smaller), as PyTorch."""
    if dim is not None:
        axis = dim
    x = as_tensor(x)
    if x._nested_layout:
        return x.chunk(chunks, axis)
    if chunks <= 0:
        raise DescentError(f"chunk: expects `chunks` to be greater than 0, got {chunks}")
    if x.ndim == 0:
        raise DescentError("chunk expects at least a 1-dimensional tensor (got a 0-d one)")
    n = x.shape[normalize_axis(axis, x.ndim, "chunk")[0]]
    if n == 0:  # PyTorch: `chunks` empty pieces
        return split(x, 0, axis) * chunks
    # ceil(n / chunks) with integers: PyTorch's chunk size (the last piece may be smaller).
    size = -(-n // chunks)
    return split(x, size, axis)


class ToDevice(Function):
    """d to(device)(x) = the gradient moved back to x's device."""

    __slots__ = ("device", "src")
    native_bfloat16 = True

    def forward(self, x):
        # The source device is remembered so the gradient goes back there (a CPU leaf gets a CPU
        # gradient even when the loss was computed on the GPU).
        self.src = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy, ops):
        return ops.to_device(gy, self.src)


def to_device(x, device) -> Tensor:
    x = as_tensor(x)
    device = backend.normalize_device(device)
    if x.device == device:
        return x
    return ToDevice.apply(x, device=device)
