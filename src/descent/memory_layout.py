"""Memory layouts on backend arrays: torch.channels_last and channels_last_3d.

descent's arrays are NumPy/CuPy arrays, which carry strides, so a channels-last tensor is what it
is in PyTorch: an NHWC-contiguous block of memory seen as (N, C, H, W) through a transpose.
`stride()` then reads (H*W*C, 1, W*C, C) as PyTorch's, `is_contiguous()` is False and
`is_contiguous(memory_format=torch.channels_last)` True. Ops accept any layout; elementwise ops
keep their input's layout (NumPy's order="K"), others return C-contiguous arrays.
"""

from __future__ import annotations

# name -> (the rank it needs, the permutation from (N, C, *spatial) to its memory order)
_CHANNELS_LAST = {
    "channels_last": (4, (0, 2, 3, 1)),
    "channels_last_3d": (5, (0, 2, 3, 4, 1)),
}


def elem_strides(arr) -> tuple:
    """The array's strides in elements, not bytes (PyTorch's `Tensor.stride()`): a broadcast
    dimension has stride 0, a transposed view its base's strides permuted. The one place that
    converts NumPy/CuPy byte strides (Tensor.stride, view's check, as_strided, unfold)."""
    item = arr.itemsize
    return tuple(s // item for s in arr.strides)


def format_name(memory_format) -> str:
    """The name of a `descent.memory_format` ("contiguous_format" for None)."""
    if memory_format is None:
        return "contiguous_format"
    name = getattr(memory_format, "name", None)
    if type(memory_format).__name__ != "memory_format" or name is None:
        raise TypeError(
            f"memory_format must be a torch.memory_format (torch.channels_last, ...), "
            f"got {type(memory_format).__name__}"
        )
    return name


def is_channels_last(arr, name: str = "channels_last") -> bool:
    """PyTorch's test: strides grow along C, then W, (D,) H, N, skipping dimensions of size 1."""
    rank, perm = _CHANNELS_LAST[name]
    if arr.ndim != rank:
        return False
    expected, item = 1, arr.dtype.itemsize
    for d in reversed(perm):
        if arr.shape[d] != 1:
            if arr.strides[d] != expected * item:
                return False
            expected *= arr.shape[d]
    return True


def is_contiguous_as(arr, memory_format) -> bool:
    """`Tensor.is_contiguous(memory_format=...)` on a raw array."""
    name = format_name(memory_format)
    if name in _CHANNELS_LAST:
        return is_channels_last(arr, name)
    return bool(arr.flags.c_contiguous)


def check_rank(arr, name: str) -> None:
    """PyTorch refuses a channels-last request on a tensor of another rank."""
    rank, _ = _CHANNELS_LAST[name]
    if arr.ndim != rank:
        raise RuntimeError(
            f"required rank {rank} tensor to use {name} format (got shape {tuple(arr.shape)}); "
            f"channels_last is for (N, C, H, W) tensors, channels_last_3d for (N, C, D, H, W)"
        )


def copy_as(arr, name: str):
    """A copy of `arr` laid out in memory format `name` (same shape and values)."""
    if name not in _CHANNELS_LAST:
        return arr.copy()
    _, perm = _CHANNELS_LAST[name]
    inverse = tuple(perm.index(d) for d in range(len(perm)))
    return arr.transpose(perm).copy(order="C").transpose(inverse)


def layout_of(arr) -> str:
    """The memory format an array is in, for copies that preserve it (clone, optimizer views)."""
    if arr.flags.c_contiguous:
        return "contiguous_format"
    for name in _CHANNELS_LAST:
        if is_channels_last(arr, name):
            return name
    return "contiguous_format"


def shaped_as(flat, shape, name: str):
    """A 1-D buffer seen in `shape` with the memory order of format `name` (a view)."""
    if name not in _CHANNELS_LAST:
        return flat.reshape(shape)
    _, perm = _CHANNELS_LAST[name]
    inverse = tuple(perm.index(d) for d in range(len(perm)))
    return flat.reshape(tuple(shape[d] for d in perm)).transpose(inverse)


def stride_order(shape, strides_list) -> list[int]:
    """The dimensions from innermost to outermost, sorted by the operands' strides as PyTorch's
    stable insertion sort does it (TensorIterator's reorder_dimensions, infer_dense_strides):
    the first operand decides, a 0 stride passes to the next operand; equal strides put the
    longer dimension outside; undecided dimensions stay where C order has them."""
    n = len(shape)
    perm = list(range(n - 1, -1, -1))  # innermost first

    def swap(d0, d1) -> int:
        for st in strides_list:
            s0, s1 = st[d0], st[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 != s1:
                return -1 if s0 < s1 else 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    for i in range(1, n):  # (loops over a few dimensions)
        j = i
        for k in range(i - 1, -1, -1):
            c = swap(perm[k], perm[j])
            if c > 0:
                perm[k], perm[j] = perm[j], perm[k]
                j = k
            elif c < 0:
                break
    return perm


def dense_strides(shape, strides) -> list:
    """PyTorch's infer_dense_strides, in elements: the strides of a dense tensor whose memory
    order follows `strides` (outermost the largest; a tie puts the longer dimension outside; a
    0 stride leaves the dimension where C order has it). For a non-overlapping and dense input
    these are its own strides on every dimension longer than 1."""
    n = len(shape)
    perm = stride_order(shape, (strides,))
    out, step = [0] * n, 1
    for d in perm:
        out[d] = step
        if shape[d] > 1:
            step *= shape[d]
    return out


def preserved(src, out):
    """`out`, a copy of `src`'s values made in NumPy's order="K" (`copy(order="K")`, `astype`),
    laid out as PyTorch's preserve_format lays out a clone, a cast or an `empty_like`: src's
    own strides when it is non-overlapping and dense (a transpose stays transposed), else dense
    strides in src's memory order (`dense_strides`; NumPy's order K differs on broadcast and
    tied strides). Dimensions of length 1 keep NumPy's strides (PyTorch keeps src's there;
    NumPy can make a fresh array with any other strides only as a view, and a clone owns its
    memory). C-contiguous arrays, the common case, return at the first test. `out` may also
    be a fresh C-contiguous result of src's shape (`zeros_like`), relaid here."""
    if out.flags.c_contiguous and src.flags.c_contiguous:
        return out
    if not out.size or type(out) is not type(src):
        return out
    item = src.itemsize
    want = dense_strides(src.shape, [abs(s) // item for s in src.strides])
    item = out.itemsize
    if all(n < 2 or s == w * item for n, s, w in zip(out.shape, out.strides, want)):
        return out
    from .backend import get_array_module  # noqa: PLC0415 - backend imports this module

    xp = get_array_module(out)
    # empty_like(order="K") copies the memory order of a prototype's strides: a 1-element
    # buffer seen with the strides wanted (never read)
    proto = xp.lib.stride_tricks.as_strided(
        xp.empty(1, out.dtype), out.shape, [w * item for w in want]
    )
    fresh = xp.empty_like(proto)
    fresh[...] = out
    return fresh
