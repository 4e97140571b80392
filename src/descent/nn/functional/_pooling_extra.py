"""max_pool3d, avg_pool3d, max_unpool1d/2d/3d, adaptive_max_pool1d/2d/3d, adaptive_avg_pool3d,
lp_pool1d/2d/3d and PyTorch's *_with_indices spellings.

Max pooling here picks each window's winner on the arrays (the first maximum, as PyTorch;
a nan wins, as it propagates in PyTorch) and then gathers it with one differentiable
gather (ops/indexing.py's PoolGather node; take_along_axis for other dtypes): the gradient
goes to that element only, to any order, and
`return_indices` comes for free (flat positions in each input plane, PyTorch's format).
avg_pool3d is one `descent.ops.window.AvgPool3d` node (im2col, a sum, col2im in backward;
half precision and int64 keep the composite of Im2ColNd). max_unpool scatters values back
to those flat positions (its gradient gathers them).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ... import amp, backend
from ...errors import DescentError
from ...grad_fn import show_as
from ...opmath import HALF
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...ops.conv import lowest
from ...ops.half import in_float32
from ...ops.indexing import PoolGather, take_along_axis
from ...ops.unpool import max_unpool_flat
from ...ops.untracked import computed
from ...ops.window import AvgPool3d, count_windows, im2col, im2col_nd, window_out_size
from ...tensor import Tensor
from ._activation import relu
from ._inputs import float_tensor, int_tuple, pool_tuple
from ._pooling import (
    _avg_input,
    _ceil_extra,
    _window_matrices,
    _window_means,
    adaptive_out,
    avg_pool1d,
    avg_pool2d,
    cached_geom,
    check_pool_input,
    check_size_1d,
    check_window,
    empty_pool,
    integer_average,
    max_pool1d,
    max_pool2d,
)

__all__ = [
    "max_pool3d",
    "avg_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_avg_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "adaptive_max_pool1d_with_indices",
    "adaptive_max_pool2d_with_indices",
    "adaptive_max_pool3d_with_indices",
]


def _nc(a, n: int, c: int):
    """a (N, C, *S) as (N, C, prod(S)), the last size spelled out (a -1 is ambiguous when
    N = 0: an empty batch)."""
    return a.reshape(n, c, math.prod(a.shape[2:]))


def _batched(x: Tensor, nd: int, op: str) -> tuple[Tensor, bool]:
    if x.ndim == nd + 1:
        return _shape.unsqueeze(x, 0), True
    if x.ndim != nd + 2:
        raise DescentError(f"{op}: expected a non-empty {nd + 1}D or {nd + 2}D (batch mode) "
                           f"tensor, (N, C, ...) or (C, ...), got "
                         f"{tuple(x.shape)}")  # fmt: skip
    return x, False


@cached_geom
def _geom(x: Tensor, nd, kernel_size, stride, padding, dilation, ceil_mode, op):
    """PyTorch's pooling arguments checked: (k, s, d, p) and ceil_mode's extra trailing cells
    per dimension (they are never counted or chosen)."""
    k = pool_tuple(kernel_size, nd, "kernel_size", op)
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        s = k
    else:
        s = pool_tuple(stride, nd, "stride", op)
    p = pool_tuple(padding, nd, "padding", op)
    d = pool_tuple(dilation, nd, "dilation", op)
    check_window(op, k, s, d, p)
    if x._data.size == 0:
        check_pool_input(x, nd, op)
    sizes = x.shape[2:]
    extra = tuple(
        _ceil_extra(n, *g) if ceil_mode else 0 for n, g in zip(sizes, zip(k, s, d, p), strict=True)
    )
    out = [window_out_size(n + e, *g) for n, e, g in zip(sizes, extra, zip(k, s, d, p))]
    if any(o < 1 for o in out):
        raise DescentError(
            f"{op}: output size is too small: kernel {k} is larger than the padded input "
            f"{tuple(x.shape)} (padding {p})"
        )
    return (k, s, d, p), extra


def _last_nan(xp, a, axis: int):
    """The position of the last nan along `axis` (rows with a nan only)."""
    return a.shape[axis] - 1 - xp.flip(xp.isnan(a), axis=axis).argmax(axis=axis)


def _winner(xp, a, axis: int):
    """Per row along `axis`: the first maximum, or the last nan where the row holds one
    (PyTorch's kernels take any value `> max or nan`). argmax stops at a row's first nan, so
    the rows whose argmax is a nan are the rows with one: only then the last-nan pass."""
    arg = a.argmax(axis=axis)
    if a.dtype.kind == "f" and type(a) is np.ndarray and not np.isnan(a).any():
        # no nan anywhere: the argmax (one isnan pass, ~1 us on a small pool and 1/6 of the
        # gather below at 4x8x16^3, where a row max over the short window axis took 10x it)
        return arg
    if a.dtype.kind == "f" or a.dtype.kind == "V":
        found = xp.take_along_axis(a, xp.expand_dims(arg, axis), axis=axis)
        nan = xp.isnan(xp.squeeze(found, axis))
        if nan.any():
            arg = xp.where(nan, _last_nan(xp, a, axis), arg)
    return arg


def _max_pool_nd(x, nd, kernel_size, stride, padding, dilation, ceil_mode, return_indices, op):
    x = as_tensor(x)
    if x._data.dtype.kind not in "iu":  # integers pool too (no gradient), as in PyTorch
        x = float_tensor(x, op)
    x, unbatched = _batched(x, nd, op)
    geom, extra = _geom(x, nd, kernel_size, stride, padding, dilation, ceil_mode, op)
    n, c = x.shape[:2]
    # The winners' positions are data computed from the values: `computed` shows
    # descent.compile how (ops/untracked.py), and the gather's index follows them at a replay
    flat = computed(_max_pool_flat, (x,), (nd, tuple(geom), tuple(extra)))  # (N, C, *O)
    out = tuple(flat.shape[2:])
    if x._data.dtype in _FUSED_GATHER:  # one node, the composite's calls (its bits)
        y = PoolGather.apply(x, idx=flat._data, kind=f"MaxPool{nd}DWithIndicesBackward0")
    else:
        y = take_along_axis(_nc(x, n, c), _nc(flat._data, n, c), axis=2)
        y = y.reshape(n, c, *out)
    if unbatched:
        y, flat = y[0], flat[0]
    if return_indices:
        return y, flat
    return y


def _max_pool_flat(a, nd: int, geom, extra):
    """max_pool's winners (N, C, *O): flat positions in each input plane."""
    k, s, d, p = geom
    n, c, *sizes = a.shape
    xp = backend.get_array_module(a)
    # Winners on the arrays: -inf padding (and ceil_mode cells; an integer's minimum) never win.
    data = a
    if any(p) or any(extra):  # (a filled array: np.pad's per-call cost is ~10x this)
        data = xp.full((n, c, *(sz + 2 * pi + e for sz, pi, e in zip(sizes, p, extra))),
                       lowest(a.dtype), dtype=a.dtype)  # fmt: skip
        data[(slice(None), slice(None), *(slice(pi, pi + sz) for sz, pi in zip(sizes, p)))] = a
    padded = tuple(data.shape[2:])
    out = [window_out_size(sz, ki, si, di, 0) for sz, ki, si, di in zip(padded, k, s, d)]
    if xp is np and math.prod(out) * math.prod(k) <= _TABLE_MAX:
        # Every window in one take through a remembered table of positions: im2col's strided
        # copy, the winner along a strided axis and the flat index rebuilt from unravel_index
        # cost more (1.5x at 4x8x16^3, 1.4x at 2x3x4^3). The same window order, the same
        # winners.
        tab, flat_tab = _window_table(padded, tuple(sizes), geom)
        win = xp.take(data.reshape(n, c, math.prod(padded)), tab, axis=2)  # (N, C, P, K)
        arg = _winner(xp, win, -1)  # (N, C, P)
        return flat_tab[xp.arange(tab.shape[0]), arg].reshape(n, c, *out)
    cols = im2col_nd(xp, data, (k, s, d, (0,) * nd))  # (C, *k, N, *O)
    out = cols.shape[nd + 2 :]
    kk = int(np.prod(k))
    cols = cols.reshape(c, kk, n, *out)
    # nan wins, the last one in the window (PyTorch's kernel takes any value `> max or nan`);
    # otherwise the first maximum.
    win = _winner(xp, cols, 1)
    offs = xp.unravel_index(win, k)  # per dimension: the offset inside the window, (C, N, *O)
    flat = xp.zeros(win.shape, dtype=np.int64)
    for i in range(nd):
        # Window origin o * s - p plus the offset times the dilation: a coordinate in the input.
        shape = [1] * (2 + nd)
        shape[2 + i] = out[i]
        origin = (xp.arange(out[i]) * s[i] - p[i]).reshape(shape)
        flat = flat * sizes[i] + origin + offs[i] * d[i]
    return xp.ascontiguousarray(xp.swapaxes(flat, 0, 1))  # (N, C, *O)


#: max_pool's table path: tables up to this many entries (windows x kernel offsets; the two
#: tables take 16 bytes an entry, 512 KiB at most each, 64 remembered)
_TABLE_MAX = 1 << 15


@functools.lru_cache(maxsize=64)
def _window_table(padded: tuple, sizes: tuple, geom):
    """Two (prod(O), prod(k)) int64 tables of max_pool's windows, the kernel offsets in
    row-major order (im2col's): the positions in the flattened padded plane, and the flat
    index the winner reports (origin o * s - p plus offset * d per dimension, in the unpadded
    plane: _max_pool_flat's formula). A function of the shapes alone: remembered, read-only."""
    k, s, d, p = geom
    nd = len(k)
    out = [window_out_size(sz, ki, si, di, 0) for sz, ki, si, di in zip(padded, k, s, d)]
    tab = np.zeros((1,) * (2 * nd), dtype=np.int64)
    flat = np.zeros((1,) * (2 * nd), dtype=np.int64)
    for i in range(nd):
        o_shape, k_shape = [1] * (2 * nd), [1] * (2 * nd)
        o_shape[i], k_shape[nd + i] = out[i], k[i]
        origin = (np.arange(out[i]) * s[i]).reshape(o_shape)
        offset = (np.arange(k[i]) * d[i]).reshape(k_shape)
        tab = tab * padded[i] + origin + offset
        flat = flat * sizes[i] + (origin - p[i]) + offset
    tab = tab.reshape(math.prod(out), math.prod(k))
    flat = flat.reshape(math.prod(out), math.prod(k))
    tab.flags.writeable = flat.flags.writeable = False
    return tab, flat


@amp._float32_op  # on PyTorch's autocast float32 list
def max_pool3d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    """Maximum over kd x kh x kw windows of (N, C, D, H, W) (or (C, D, H, W)); stride defaults
    to the kernel; padding, dilation, ceil_mode and return_indices (flat indices into each
    D*H*W input volume) as PyTorch; the gradient goes to the first maximum."""
    return _max_pool_nd(input, 3, kernel_size, stride, padding, dilation, ceil_mode,
                        return_indices, "max_pool3d")  # fmt: skip


@amp._float32_op  # on PyTorch's autocast float32 list
def avg_pool3d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over kd x kh x kw windows of (N, C, D, H, W) (or (C, D, H, W)); ceil_mode,
    count_include_pad and divisor_override as PyTorch."""
    op = "avg_pool3d"
    x, integer = _avg_input(input, op)
    x, unbatched = _batched(x, 3, op)
    geom, extra = _geom(x, 3, kernel_size, stride, padding, 1, ceil_mode, op)
    k, s, d, p = geom
    n, c, *sizes = x.shape
    if any(sz < kk for sz, kk in zip(sizes, k, strict=True)):
        # ATen's pool3d_shape_check with check_input_size (avg_pool3d only): the input
        # itself, padding aside, must hold the kernel
        raise DescentError(
            f"{op}: input image (T: {sizes[0]} H: {sizes[1]} W: {sizes[2]}) smaller than kernel "
            f"size (kT: {k[0]} kH: {k[1]} kW: {k[2]}), as in PyTorch (padding does not count)"
        )
    if any(extra):  # ceil_mode's trailing cells: zeros, never counted in a divisor
        widths = []
        for e in reversed(extra):
            widths += [0, e]
        x = _shape.pad(x, tuple(widths))
    if not integer and x._data.dtype in _FUSED_AVG:
        # One node: the composite below's NumPy calls, in its order (its bits)
        if divisor_override is not None and divisor_override == 0:
            raise DescentError(f"{op}: divisor must be not zero (divisor_override=0)")
        override = None if divisor_override is None else float(divisor_override)
        div = _avg_div_array(tuple(sizes), geom, extra, bool(count_include_pad), override,
                             x._data.dtype)  # fmt: skip
        y = AvgPool3d.apply(x, geom=geom, div=backend.get_array_module(x._data).asarray(div))
        return y[0] if unbatched else y
    cols = im2col(x, geom)  # (C, *k, N, *O)
    out = tuple(cols.shape[5:])
    total = cols.reshape(c, math.prod(k), n, *out).sum(axis=1)  # (C, N, *O)
    # (N, C, *O) contiguous as PyTorch's, so that `.view(N, -1)` works on the result
    total = _shape.swapaxes(total, 0, 1).contiguous()
    if divisor_override is not None:
        if divisor_override == 0:
            raise DescentError(f"{op}: divisor must be not zero (divisor_override=0)")
        div = float(divisor_override)
    else:
        div = _avg_divisor(tuple(sizes), geom, extra, bool(count_include_pad))
        xp = backend.get_array_module(x._data)
        div = xp.asarray(div.astype(x._data.dtype))
    if integer:
        y = integer_average(total, div)
    else:
        y = total / (div if isinstance(div, float) else Tensor._wrap(div))
    return y[0] if unbatched else y


_FUSED_AVG = (np.dtype(np.float32), np.dtype(np.float64))
_FUSED_GATHER = _FUSED_AVG  # max pools' gather as one PoolGather node (else the composite)


@functools.lru_cache(maxsize=256)
def _avg_div_array(sizes, geom, extra, count_include_pad, override, dtype) -> np.ndarray:
    """AvgPool3d's divisor in x's dtype: the override as a 0-d array, else `_avg_divisor`'s
    counts. Read-only and remembered: the same array object at every call with these
    arguments, so that descent.compile's recordings of a function compare equal."""
    if override is not None:
        div = np.asarray(override, dtype)
    else:
        div = _avg_divisor(sizes, geom, extra, count_include_pad).astype(dtype)
    div.setflags(write=False)
    return div


@functools.lru_cache(maxsize=256)
def _avg_divisor(sizes: tuple, geom, extra: tuple, count_include_pad: bool) -> np.ndarray:
    """avg_pool3d's divisor per output (float64, read-only; remembered: a function of the
    shapes and arguments only). It counts the cells each window covers: the input, plus the
    padding when count_include_pad (never ceil_mode's extra cells)."""
    p = geom[3]
    full = [sz + 2 * pi + e for sz, pi, e in zip(sizes, p, extra)]
    counted = np.zeros(full, bool)
    if count_include_pad:
        counted[tuple(slice(0, sz + 2 * pi) for sz, pi in zip(sizes, p))] = True
    else:
        counted[tuple(slice(pi, pi + sz) for sz, pi in zip(sizes, p))] = True
    div = count_windows(sizes, geom, counted)
    div.setflags(write=False)
    return div


@amp._float32_op  # on PyTorch's autocast float32 list
def _max_unpool_nd(x, indices, nd, kernel_size, stride, padding, output_size, op) -> Tensor:
    x = float_tensor(x, op)
    idx = indices._data if isinstance(indices, Tensor) else np.asarray(indices)
    unbatched = x.ndim == nd + 1
    if unbatched:
        x, idx = _shape.unsqueeze(x, 0), idx[None]
    if x.ndim != nd + 2 or tuple(idx.shape) != tuple(x.shape):
        raise DescentError(f"{op}: input {tuple(x.shape)} and indices {tuple(idx.shape)} must "
                         f"have the same (N, C, ...) shape")  # fmt: skip
    k = int_tuple(kernel_size, nd, "kernel_size", op)
    s = k if stride is None else int_tuple(stride, nd, "stride", op)
    p = int_tuple(padding, nd, "padding", op)
    n, c, *sizes = x.shape
    default = [(sz - 1) * si - 2 * pi + ki for sz, si, pi, ki in zip(sizes, s, p, k)]
    if output_size is None:
        out = default
    else:
        given = tuple(int(v) for v in output_size)
        if len(given) not in (nd, nd + 2):
            raise ValueError(
                f"{op}: output_size should be a sequence containing {nd} or {nd + 2} "
                f"elements, but it has a length of '{len(given)}'"
            )
        out = list(given[-nd:])
        for d, (o, df, si) in enumerate(zip(out, default, s)):
            if not df - si < o < df + si:  # PyTorch's rule (a ValueError)
                raise ValueError(f'{op}: invalid output_size "{list(out)}" (dim {d} must be '
                                 f"between {df - si} and {df + si}, exclusive)")  # fmt: skip
    size = int(np.prod(out))
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= size):
        raise ValueError(
            f"{op}: indices must lie in [0, {size}) for the output {tuple(out)}, got "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    xp = backend.get_array_module(x._data)
    # (no copy of an int64 index: a view of the indices tensor's array, which descent.compile
    # follows at a replay, where a copy would be a frozen constant)
    flat_idx = _nc(xp.asarray(idx).astype(np.int64, copy=False), n, c)
    y = max_unpool_flat(_nc(x, n, c), flat_idx, size).reshape(n, c, *out)
    return y[0] if unbatched else y


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool1d: each value put back at its index, zeros elsewhere."""
    return _max_unpool_nd(input, indices, 1, kernel_size, stride, padding, output_size,
                          "max_unpool1d")  # fmt: skip


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool2d(return_indices=True): each value put back at its flat index in
    an (H_out, W_out) plane, zeros elsewhere; H_out = (H - 1) s - 2 p + k unless output_size
    is given."""
    return _max_unpool_nd(input, indices, 2, kernel_size, stride, padding, output_size,
                          "max_unpool2d")  # fmt: skip


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool3d(return_indices=True)."""
    return _max_unpool_nd(input, indices, 3, kernel_size, stride, padding, output_size,
                          "max_unpool3d")  # fmt: skip


def _adaptive_max_nd(x, output_size, return_indices, nd, op):
    x, unbatched = _batched(float_tensor(x, op), nd, op)
    n, c, *sizes = x.shape
    out = adaptive_out(output_size, sizes, op)
    if c == 0 and not unbatched:  # (an unbatched (0, *S) pools to an empty (0, *out))
        raise DescentError(
            f"{op}(): Expected input to have non-zero size for non-batch dimensions, but input "
            f"has sizes {list(x.shape)} with dimension 1 being empty"
        )
    if 0 in out and all(sz > 0 for sz in sizes):  # PyTorch returns empty values and indices
        y = empty_pool(x, out)
        flat = Tensor._wrap(backend.get_array_module(x._data).zeros(y.shape, dtype=np.int64))
        if unbatched:
            y, flat = y[0], flat[0]
        return (y, flat) if return_indices else y
    if any(o < 1 for o in out) or any(sz < 1 for sz in sizes):
        raise DescentError(f"{op}: output size {tuple(out)} and input {tuple(x.shape)} must be "
                         "non-empty")  # fmt: skip
    # The winners' positions are data: see _max_pool_nd
    flat = computed(_adaptive_flat, (x,), (nd, tuple(out)))
    if x._data.dtype in _FUSED_GATHER:  # one node, the composite's calls (its bits)
        # PyTorch's 1-d is its 2-d of x.unsqueeze(-2), squeezed: the node shows that chain
        # (SqueezeBackward1 over ShownNodes AdaptiveMaxPool2DBackward0 and UnsqueezeBackward0,
        # grad_fn._with_shown) at no cost a call; unbatched, x's unsqueeze and the select of
        # the result are nodes already: the select shows as the squeeze
        kind = ("SqueezeBackward1" if nd == 1 and not unbatched
                else f"AdaptiveMaxPool{max(nd, 2)}DBackward0")  # fmt: skip
        y = PoolGather.apply(x, idx=flat._data, kind=kind)
    else:
        y = take_along_axis(_nc(x, n, c), _nc(flat._data, n, c), axis=2).reshape(n, c, *out)
    if unbatched:
        y0, y, flat = y, y[0], flat[0]
        if nd == 1 and x._data.dtype in _FUSED_GATHER:
            show_as(y, "SqueezeBackward1", (y0,))
    return (y, flat) if return_indices else y


def _adaptive_flat(data, nd: int, out):
    """adaptive_max_pool's winners (N, C, *O): flat positions in each input plane."""
    n, c, *sizes = data.shape
    xp = backend.get_array_module(data)
    tab = _adaptive_table(tuple(sizes), tuple(out))  # (P, L) flat positions of each window
    if xp is not np:
        tab = xp.asarray(tab)
    # every window at once: (N, C, P, L), one take from the flattened planes
    win = xp.take(data.reshape(n, c, math.prod(sizes)), tab, axis=2)
    # the last nan wins, as in max pooling; otherwise the first maximum
    arg = _winner(xp, win, -1)  # (N, C, P)
    return tab[xp.arange(tab.shape[0]), arg].reshape(n, c, *out)


@functools.lru_cache(maxsize=256)
def _adaptive_table(sizes: tuple, out: tuple):
    """(prod(O), L) int64: row p lists the flat input positions of output cell p's window in
    row-major window order (cell i of a dimension covers [floor(i S / O), ceil((i + 1) S / O)),
    PyTorch's windows), padded to the longest window L by repeating the cell's last position
    per dimension. A repeat comes after its original in that order, so the first maximum is
    still the original; the last nan may be a repeat, which names the same element. A function
    of the shapes alone: remembered (read-only)."""
    pos = []
    for sz, o in zip(sizes, out):
        cell = np.arange(o)
        lo, hi = (cell * sz) // o, -((-(cell + 1) * sz) // o)
        pos.append(np.minimum(lo[:, None] + np.arange(int((hi - lo).max())), hi[:, None] - 1))
    # the flat position of (cell (o0, o1, ...), offset (l0, l1, ...)), axes (O0, O1, .., L0, ..)
    tab = np.zeros((1,) * (2 * len(sizes)), dtype=np.int64)
    nd = len(sizes)
    for i, (sz, p) in enumerate(zip(sizes, pos)):
        shape = [1] * (2 * nd)
        shape[i], shape[nd + i] = p.shape
        tab = tab * sz + p.reshape(shape)
    tab = tab.reshape(math.prod(out), -1)
    tab.flags.writeable = False
    return tab


def adaptive_max_pool1d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, L) to a fixed length (PyTorch's adaptive windows)."""
    check_size_1d(output_size, "adaptive_max_pool1d")
    return _adaptive_max_nd(input, output_size, return_indices, 1, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, H, W) to a fixed (oh, ow): cell (i, j) covers rows
    [floor(i H/oh), ceil((i+1) H/oh)) and the columns alike; the gradient goes to the first
    maximum, return_indices gives flat positions in each H x W plane."""
    return _adaptive_max_nd(input, output_size, return_indices, 2, "adaptive_max_pool2d")


@amp._float32_op  # on PyTorch's autocast float32 list
def adaptive_max_pool3d(input, output_size, return_indices: bool = False):
    """Max pooling of (N, C, D, H, W) to a fixed (od, oh, ow) (PyTorch's adaptive windows)."""
    return _adaptive_max_nd(input, output_size, return_indices, 3, "adaptive_max_pool3d")


@amp._float32_op  # on PyTorch's autocast float32 list
def adaptive_avg_pool3d(input, output_size) -> Tensor:
    """Average pooling of (N, C, D, H, W) (or (C, D, H, W)) to a fixed (od, oh, ow): cell i of
    a dimension averages [floor(i S / O), ceil((i + 1) S / O)). One avg_pool3d when the sizes
    divide evenly, else three products with the window matrices (adaptive_avg_pool2d's)."""
    op = "adaptive_avg_pool3d"
    x0 = float_tensor(input, op)
    x, unbatched = _batched(x0, 3, op)
    sizes = x.shape[2:]
    out = adaptive_out(output_size, sizes, op)
    if 0 in out or (unbatched and x.shape[1] == 0):  # PyTorch returns an empty (N, C, *out)
        y = empty_pool(x, out)
        return y[0] if unbatched else y
    if tuple(out) == (1, 1, 1):  # global pooling: PyTorch's mean (see adaptive_avg_pool2d)
        return x0.mean(axis=(-3, -2, -1), keepdims=True)
    if all(sz % o == 0 for sz, o in zip(sizes, out)):
        k = tuple(sz // o for sz, o in zip(sizes, out))
        if x._data.size and x._data.dtype in _FUSED_AVG:
            # avg_pool3d(x, k)'s AvgPool3d node without its argument checks (~4 us): its
            # geometry for stride = kernel, no padding, and its remembered divisor array
            geom = (k, k, (1, 1, 1), (0, 0, 0))
            div = _avg_div_array(tuple(sizes), geom, (0, 0, 0), True, None, x._data.dtype)
            y = AvgPool3d.apply(x, geom=geom, div=backend.get_array_module(x._data).asarray(div))
        else:
            y = avg_pool3d(x, k)
    elif x._data.dtype == HALF:  # the overlapping cells' gradients summed in float32, rounded
        y = in_float32(adaptive_avg_pool3d, x, out)  # once (as adaptive_avg_pool2d)
    elif not bool(backend.get_array_module(x._data).isfinite(x._data).all()):
        # an inf or nan: one mean per cell and dimension (0 * inf in the products made nan)
        y = _window_means(_window_means(_window_means(x, 2, out[0]), 3, out[1]), 4, out[2])
    else:
        # Separable and linear: one product with each dimension's window matrix A (out, in),
        # where a mean per output cell made od*oh*ow ops each way. (The matrices are saved by
        # the products: a second backward raises, as PyTorch's node saves self.)
        xp = backend.get_array_module(x._data)
        dt = x._data.dtype
        (d, h, w), (od, oh, ow) = sizes, out
        a_w = Tensor._wrap(xp.asarray(_window_matrices(w, ow, dt)[1]))  # (W, ow)
        a_h = Tensor._wrap(xp.asarray(_window_matrices(h, oh, dt)[0]))  # (oh, H)
        a_d = Tensor._wrap(xp.asarray(_window_matrices(d, od, dt)[0]))  # (od, D)
        y = a_h @ (x @ a_w)  # (N, C, D, H, ow) -> (N, C, D, oh, ow)
        y = (a_d @ y.reshape(*x.shape[:2], d, oh * ow)).reshape(*x.shape[:2], od, oh, ow)
    # PyTorch's one node, AdaptiveAvgPool3DBackward0 (its global pooling is the mean above)
    return show_as(y[0] if unbatched else y, "AdaptiveAvgPool3DBackward0", (x0,))


def _lp_finish(out: Tensor, norm_type: float, count: int) -> Tensor:
    """(sign(out) relu(|out|) count)^(1/p): PyTorch's form, so the gradients agree."""
    return ((out.sign() * relu(out.abs())) * float(count)) ** (1.0 / norm_type)


def _kernel_count(kernel_size, nd: int, op: str) -> int:
    return int(np.prod(int_tuple(kernel_size, nd, "kernel_size", op)))


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """The p-norm over windows: (sum of x^p over the window)^(1/p) (p = inf: the max of |x|)."""
    x = as_tensor(input)
    if norm_type == float("inf"):
        return max_pool1d(x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -max_pool1d(-x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    out = avg_pool1d(x**norm_type, kernel_size, stride, 0, ceil_mode)
    return _lp_finish(out, norm_type, _kernel_count(kernel_size, 1, "lp_pool1d"))


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """The p-norm over kh x kw windows."""
    x = as_tensor(input)
    if norm_type == float("inf"):
        return max_pool2d(x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -max_pool2d(-x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    out = avg_pool2d(x**norm_type, kernel_size, stride, 0, ceil_mode)
    return _lp_finish(out, norm_type, _kernel_count(kernel_size, 2, "lp_pool2d"))


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode: bool = False) -> Tensor:
    """The p-norm over kd x kh x kw windows."""
    x = as_tensor(input)
    if norm_type == float("inf"):
        return max_pool3d(x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -float("inf"):
        return -max_pool3d(-x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    out = avg_pool3d(x**norm_type, kernel_size, stride, 0, ceil_mode)
    return _lp_finish(out, norm_type, _kernel_count(kernel_size, 3, "lp_pool3d"))


# PyTorch's spellings that always return (output, indices).
def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):  # fmt: skip
    """max_pool1d(..., return_indices=True)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):  # fmt: skip
    """max_pool2d(..., return_indices=True)."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


@amp._float32_op  # on PyTorch's autocast float32 list
def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode: bool = False, return_indices: bool = False):  # fmt: skip
    """max_pool3d(..., return_indices=True)."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices: bool = False):
    """adaptive_max_pool1d(..., return_indices=True)."""
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices: bool = False):
    """adaptive_max_pool2d(..., return_indices=True)."""
    return adaptive_max_pool2d(input, output_size, True)


@amp._float32_op  # on PyTorch's autocast float32 list
def adaptive_max_pool3d_with_indices(input, output_size, return_indices: bool = False):
    """adaptive_max_pool3d(..., return_indices=True)."""
    return adaptive_max_pool3d(input, output_size, True)
