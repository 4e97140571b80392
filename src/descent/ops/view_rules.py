"""PyTorch's rules for views that may refuse: when `x.view(shape)` can be made without a copy.

descent's tensors are NumPy (CuPy) arrays, and their views are the arrays' views, so aliasing
follows from the memory: a write through a view is seen by its base and the reverse. The one
place NumPy and PyTorch part is a reshape that cannot view: NumPy's `reshape` (and PyTorch's)
copies there, but PyTorch's `view` refuses, and a silent copy would lose every write made
through the "view". `view_strides` is PyTorch's `computeStride` (aten/src/ATen/TensorUtils.cpp):
the strides of the view, or None where the shape would need a copy; `view` (ops/shape.py) asks
it only for a non-contiguous input (a C-contiguous one can always be viewed), so the common
path pays one flag test.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import DescentError


def infer_size(shape: tuple, numel: int, op: str = "view") -> tuple:
    """`shape` with its -1 resolved against `numel` elements (PyTorch's infer_size); the
    RuntimeError PyTorch raises (a DescentError: also a ValueError, descent's contract) when
    the sizes do not multiply up to numel."""
    known, unknown = 1, None
    for i, n in enumerate(shape):
        if n == -1:
            if unknown is not None:
                raise DescentError(f"{op}: only one dimension can be inferred, got {shape}")
            unknown = i
        elif n < 0:
            raise DescentError(f"{op}: invalid shape dimension {n} in {shape}")
        else:
            known *= n
    if unknown is None:
        if known == numel:
            return shape
    elif known != 0 and numel % known == 0:
        return shape[:unknown] + (numel // known,) + shape[unknown + 1 :]
    raise DescentError(
        f"shape '{list(shape)}' is invalid for input of size {numel} ({op}: the sizes must "
        "multiply up to the element count)"
    )


# view_strides' results by (oldshape, oldstride, newshape): a pure function of its arguments,
# asked with the same few layouts at every step of a model (the view of each non-contiguous
# split piece, the size-1 strides of a batch of one); cleared when it reaches _MEMO_MAX entries
_MEMO: dict = {}
_MEMO_MAX = 4096


def view_strides(oldshape: tuple, oldstride: tuple, newshape: tuple):
    """The strides (in elements) of `newshape` viewing memory laid out as (oldshape,
    oldstride), or None when no strides can (the view would need a copy). PyTorch's
    computeStride: the old dims are cut into chunks that are contiguous among themselves
    (stride[d-1] == size[d] * stride[d], size-1 dims ignored); every new dim must fall inside
    one chunk. Memoized (_MEMO)."""
    try:
        key = (oldshape, oldstride, newshape)
        return _MEMO[key]
    except KeyError:
        pass
    except TypeError:  # (an unhashable shape: a list)
        return _view_strides(oldshape, oldstride, newshape)
    out = _view_strides(oldshape, oldstride, newshape)
    if len(_MEMO) >= _MEMO_MAX:
        _MEMO.clear()
    _MEMO[key] = out
    return out


def _view_strides(oldshape: tuple, oldstride: tuple, newshape: tuple):
    """view_strides, computed."""
    if not oldshape:  # a 0-d tensor: any shape of one element
        return (1,) * len(newshape)
    numel = 1
    for n in oldshape:
        numel *= n
    if numel == 0:  # strides are arbitrary: the old ones for the same shape, else contiguous
        if tuple(oldshape) == tuple(newshape):
            return tuple(oldstride)
        out, s = [0] * len(newshape), 1
        for d in range(len(newshape) - 1, -1, -1):
            out[d] = s
            s *= max(newshape[d], 1)
        return tuple(out)
    newstride = [0] * len(newshape)
    view_d = len(newshape) - 1
    chunk_base_stride = oldstride[-1]  # the stride of the innermost dim of the current chunk
    tensor_numel = view_numel = 1
    for tensor_d in range(len(oldshape) - 1, -1, -1):
        tensor_numel *= oldshape[tensor_d]
        # A chunk ends at dim 0 or where the next outer dim (of size > 1) is not contiguous
        # with this one.
        if tensor_d == 0 or (
            oldshape[tensor_d - 1] != 1
            and oldstride[tensor_d - 1] != tensor_numel * chunk_base_stride
        ):
            while view_d >= 0 and (view_numel < tensor_numel or newshape[view_d] == 1):
                newstride[view_d] = view_numel * chunk_base_stride
                view_numel *= newshape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:  # a new dim spans two chunks
                return None
            if tensor_d > 0:
                chunk_base_stride = oldstride[tensor_d - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(newstride)


def with_strides(a, strides, in_bytes: bool = False):
    """`a` with the strides `strides` (elements, or bytes with `in_bytes`), which differ from
    a's own on size-1 dims only (where no element's address depends on them): PyTorch's there,
    which `stride()` shows and its overlap check (get_overlap_status) compares. `a` itself
    when they already agree, or when `strides` is None (no view: a fresh, C-contiguous copy)
    or `a` is empty."""
    if strides is None or not a.size:
        return a
    if not in_bytes:
        item = a.itemsize
        strides = tuple(s * item for s in strides)
    if strides == a.strides:
        return a
    if type(a) is np.ndarray and a.dtype.num < 256:
        # an ndarray over a's buffer (a contiguous a: x[None] of a contiguous x) or its owning
        # array's (~0.5 / 2 us; NumPy's as_strided ~15)
        if a.flags.c_contiguous or a.flags.f_contiguous:
            root, off = a, 0
        else:
            root = storage_root(a)
            if type(root) is not np.ndarray or not (root.flags.c_contiguous
                                                    or root.flags.f_contiguous):  # fmt: skip
                root = None
            else:
                off = a.ctypes.data - root.ctypes.data
        if root is not None:
            out = np.ndarray(a.shape, a.dtype, root, off, strides)
            if not a.flags.writeable and out.flags.writeable:
                out.setflags(write=False)  # (an expanded view stays read-only)
            return out
    return backend.get_array_module(a).lib.stride_tricks.as_strided(a, a.shape, strides)


def view_error(shape: tuple, strides: tuple, newshape: tuple, op: str = "view") -> DescentError:
    """PyTorch's error (its text first, so code matching it still does), with the sizes."""
    return DescentError(
        "view size is not compatible with input tensor's size and stride (at least one "
        "dimension spans across two contiguous subspaces). Use .reshape(...) instead. "
        f"({op}: a tensor of size {tuple(shape)} and stride {tuple(strides)} cannot be seen as "
        f"{tuple(newshape)} without a copy; .reshape(...) or .contiguous().view(...) copies)"
    )


def strided_view(a, shape: tuple, strides: tuple):
    """A view of the array `a`'s memory: element i at `sum(i_k * strides[k])` elements from
    a's first one (strides in elements). Writable where `a` is, as PyTorch's strided views
    are; the caller checks that it stays inside the memory."""
    xp = backend.get_array_module(a)
    item = a.itemsize
    return xp.lib.stride_tricks.as_strided(a, tuple(shape), tuple(s * item for s in strides))


def storage_root(a):
    """The array owning the memory `a` views: the last array on a's `.base` chain (NumPy's
    as_strided puts a non-array holder on it, whose `.base` leads on)."""
    root, b = a, a.base
    while b is not None:
        if isinstance(b, type(a)):
            root = b
        b = getattr(b, "base", None)
    return root


def address(a) -> int:
    if backend.is_cupy_array(a):
        return int(a.data.ptr)
    return int(a.__array_interface__["data"][0])


def storage(a, op: str = "as_strided"):
    """(storage, offset): the memory a views as a flat array in memory order, and the
    position of a's first element in it (torch's untyped storage and storage_offset())."""
    root = storage_root(a)
    if not (root.flags.c_contiguous or root.flags.f_contiguous):
        raise RuntimeError(
            f"{op}: the memory this tensor views is not one contiguous block (a "
            f"{tuple(root.shape)} array with strides {root.strides}); call .contiguous() first"
        )
    xp = backend.get_array_module(a)
    flat = xp.lib.stride_tricks.as_strided(root, (root.size,), (root.itemsize,))
    if flat.dtype != a.dtype and flat.itemsize % a.itemsize == 0:
        # a views its memory as another dtype (view_as_real or .real of a complex tensor): the
        # storage in a's elements, as PyTorch's as_strided of such a view reads it
        flat = flat.view(a.dtype)
    return flat, (address(a) - address(root)) // a.itemsize


def writable_alias(a):
    """A writable array over the same memory and layout as the read-only array `a` (a
    broadcast one: PyTorch's fill_ and zero_ write into an expanded tensor), or None where
    the memory itself is read-only."""
    root = storage_root(a)
    if not getattr(root.flags, "writeable", True) or a.base is None:
        return None
    flat, off = storage(a)
    return backend.get_array_module(a).lib.stride_tricks.as_strided(flat[off:], a.shape,
                                                                     a.strides)  # fmt: skip


# Overlap of two arrays in memory, as PyTorch's get_overlap_status (ops/inplace.check_overlap,
# ops/indexing.setitem)


def _dense_range(a):
    """(first byte, end byte) of an array whose elements fill one dense block in some order of
    its dimensions (PyTorch's is_non_overlapping_and_dense), else None."""
    expected = a.itemsize
    for st, n in sorted((st, n) for st, n in zip(a.strides, a.shape) if n > 1):
        if st != expected:
            return None
        expected *= n
    start = a.__array_interface__["data"][0]
    return start, start + a.size * a.itemsize


def _owner(a):
    """The object owning a's memory: up the `.base` links (an as_strided view's base is an
    adapter object whose base is the array it views)."""
    while True:
        b = getattr(a, "base", None)
        if b is None:
            return a
        a = b


def overlaps(a, b, full_ok: bool = True) -> bool:
    """Whether arrays a and b overlap as PyTorch's get_overlap_status says Partial (or Full
    when not `full_ok`): both fill a dense block, the blocks intersect, and they are not the
    same block with the same strides."""
    ra = a if a.base is None else a.base
    rb = b if b.base is None else b.base
    if (ra is not rb and _owner(ra) is not _owner(rb)) or not a.size or not b.size:
        return False
    ar, br = _dense_range(a), _dense_range(b)
    if ar is None or br is None or not (ar[0] < br[1] and br[0] < ar[1]):
        return False
    return not (full_ok and ar == br and a.strides == b.strides)
