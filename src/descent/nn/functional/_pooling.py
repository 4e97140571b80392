"""Pooling: max_pool1d/2d, avg_pool1d/2d and adaptive_avg_pool1d/2d, with PyTorch's semantics.

max_pool2d and avg_pool2d are fused ops (`descent.ops.conv`); the 1-D forms run them on a
height-1 image. This file handles the parts of PyTorch's contract that the ops do not:
ceil_mode (extra cells after the input), count_include_pad / divisor_override (the divisor of
each window) and return_indices (flat positions of each maximum).
"""

from __future__ import annotations

import functools

import numpy as np

from ... import backend
from ...errors import DescentError, DtypeError
from ...grad_fn import show_as
from ...opmath import HALF
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...ops.conv import (
    AvgPool2d,
    MaxPool2d,
    lowest,
    max_pool_winners,
    out_size,
    pool_kernel_ok,
    pool_kernel_winners,
)
from ...ops.half import in_float32
from ...ops.untracked import computed
from ...tensor import Tensor
from ._inputs import float_tensor, int_tuple, pool_tuple

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
]


def check_window(op: str, k: tuple, s: tuple, d: tuple, p: tuple) -> None:
    """PyTorch's checks of pooling arguments (per-dimension tuples), in its order: kernel,
    stride and dilation positive, padding non-negative and at most half the kernel."""
    if min(k) > 0 and min(s) > 0 and min(d) > 0 and min(p) >= 0:
        if all(pi <= ki // 2 for pi, ki in zip(p, k)):
            return
        raise DescentError(
            f"{op}: padding {p} must be at most half the kernel {k} (pad should be at most "
            f"half of effective kernel size); lower it to {tuple(ki // 2 for ki in k)}"
        )
    for name, v, lo in (("kernel_size", k, 1), ("stride", s, 1), ("dilation", d, 1)):
        if min(v) < lo:
            raise DescentError(f"{op}: {name} must be greater than zero, but got {v}")
    raise DescentError(f"{op}: pad must be non-negative, but got padding {p}")


def check_pool_input(x: Tensor, nd: int, op: str) -> None:
    """PyTorch refuses an empty non-batch dimension ((C, H, W) with C = 0, or (N, C, H, 0));
    x is already batched. Called only when x is empty."""
    if 0 in x.shape[1:]:
        raise DescentError(
            f"{op}: expected a non-empty {nd + 1}D or {nd + 2}D (batch mode) tensor with "
            f"optional 0 dim batch size for input, got shape {tuple(x.shape)}"
        )


def adaptive_out(output_size, sizes, op: str) -> list:
    """An adaptive pool's output_size as one int per spatial dim (None keeps the input's
    size), after PyTorch's checks: one entry per dim, none negative."""
    nd = len(sizes)
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size,) * nd
    output_size = tuple(output_size)
    if len(output_size) != nd:
        raise DescentError(
            f"{op}: output_size must be {nd} ints (or one int), got {list(output_size)} for "
            f"the spatial sizes {tuple(sizes)}"
        )
    if 0 in tuple(sizes):
        raise DescentError(
            f"{op}(): Expected input to have non-zero size for non-batch dimensions, but its "
            f"spatial sizes are {tuple(sizes)}"
        )
    out = [sz if o is None else int(o) for sz, o in zip(sizes, output_size)]
    if min(out) < 0:
        raise DescentError(
            f"{op}: elements of output_size must be greater than or equal to 0, got {tuple(out)}"
        )
    return out


def empty_pool(x: Tensor, out) -> Tensor:
    """An adaptive pool's empty result (N, C, *out) for an output size with a 0, still on x's
    graph (its gradient is zeros)."""
    n, c = x.shape[0], x.shape[1]
    rows = x.reshape(n, c, int(np.prod(x.shape[2:])))  # (N, C, S): a -1 is ambiguous if N = 0
    return rows[:, :, :0].reshape(n, c, *out)


_GEOM_CACHE: dict = {}
_PLAIN = (int, bool, str, type(None))


def cached_geom(fn):
    """fn(x, *args) (a pooling geometry: checked arguments and output sizes, a function of x's
    shape and the arguments only) remembered per (shape, args) when every argument is a plain
    int, bool, str, None or tuple of ints: the checks are a good part of a small pool's
    per-call cost. Other arguments (lists, floats, NumPy ints) and errors take fn every time."""

    def geom(x, *args):
        for a in args:
            if type(a) not in _PLAIN and not (type(a) is tuple and all(type(v) is int for v in a)):
                return fn(x, *args)
        key = (fn, x._data.shape, args)
        hit = _GEOM_CACHE.get(key)
        if hit is None:
            hit = fn(x, *args)
            if len(_GEOM_CACHE) >= 1024:  # a bound, for programs that vary shapes forever
                _GEOM_CACHE.clear()
            _GEOM_CACHE[key] = hit
        return hit

    geom.__wrapped__ = fn
    geom.__doc__ = fn.__doc__
    return geom


@cached_geom
def _pool_geom(x: Tensor, kernel_size, stride, padding, dilation, op: str, ceil_mode=False):
    """PyTorch's pooling arguments checked and packed into the ops' geometry tuple
    (kh, kw, sh, sw, dh, dw, ph, pw); stride defaults to the kernel."""
    kh, kw = pool_tuple(kernel_size, 2, "kernel_size", op)
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        sh, sw = kh, kw
    else:
        sh, sw = pool_tuple(stride, 2, "stride", op)
    ph, pw = pool_tuple(padding, 2, "padding", op)
    dh, dw = pool_tuple(dilation, 2, "dilation", op)
    # PyTorch's rule: more padding would let a window see only padding (an -inf maximum).
    check_window(op, (kh, kw), (sh, sw), (dh, dw), (ph, pw))
    if x._data.size == 0:
        check_pool_input(x, 2, op)
    # PyTorch's output size (ceil_mode's last window may run past the input: it pools the
    # cells inside, `_ceil_pad`) must be at least 1
    # (the plain shape tuple: a Tensor's .shape makes a Size per read)
    h, w = x._data.shape[2:4]
    if ceil_mode:
        rows = out_size(h, kh, sh, dh, ph) + (_ceil_extra(h, kh, sh, dh, ph) > 0)
        cols = out_size(w, kw, sw, dw, pw) + (_ceil_extra(w, kw, sw, dw, pw) > 0)
    else:
        rows, cols = out_size(h, kh, sh, dh, ph), out_size(w, kw, sw, dw, pw)
    if rows < 1 or cols < 1:
        raise DescentError(
            f"{op}: kernel {kh, kw} (dilation {dh, dw}, padding {ph, pw}) is larger than the "
            f"input {tuple(x.shape)}; use a smaller kernel or pad the input"
        )
    return (kh, kw, sh, sw, dh, dw, ph, pw)


def _as4d(x: Tensor, op: str) -> tuple[Tensor, bool]:
    """(C, H, W) -> (1, C, H, W) and True (unbatched, squeezed again on return), else x."""
    if x.ndim == 3:
        return _shape.unsqueeze(x, 0), True
    if x.ndim != 4:
        raise DescentError(f"{op}: expected (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    return x, False


def _ceil_extra(n: int, k: int, s: int, d: int, p: int) -> int:
    """Rows (or columns) to add after the input so that ceil_mode's last window fits.

    PyTorch: out = ceil((n + 2p - d(k-1) - 1) / s) + 1, minus one if the last window would
    start in the right padding; the extra cells never win a max and are not counted in a mean.
    """
    span = n + 2 * p - d * (k - 1) - 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return max(0, (out - 1) * s + d * (k - 1) + 1 - (n + 2 * p))


def _ceil_pad(x: Tensor, geom, ceil_mode: bool, value: float) -> tuple[Tensor, int, int]:
    """x with ceil_mode's extra bottom rows / right columns (filled with `value`)."""
    if not ceil_mode:
        return x, 0, 0
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    eh = _ceil_extra(x.shape[2], kh, sh, dh, ph)
    ew = _ceil_extra(x.shape[3], kw, sw, dw, pw)
    if eh or ew:
        x = _shape.pad(x, (0, ew, 0, eh), value=value)
    return x, eh, ew


def _max_indices(x: Tensor, y: Tensor, geom, h: int, w: int) -> Tensor:
    """PyTorch's return_indices: the flat index (row * W + col) in the input of each maximum.
    Data computed from the values: `computed` shows descent.compile how (ops/untracked.py)."""
    return computed(_max_indices_of, (x, y), (tuple(geom), h, w))


def _max_indices_of(xd, yd, geom, h: int, w: int):
    """`_max_indices` of the arrays of x and y."""
    xp = backend.get_array_module(xd)
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    if pool_kernel_ok(xd, geom):
        # The kernel's winners (its offsets in the window; the same winners as below), each
        # offset's flat input position read from a remembered table
        _y, off = pool_kernel_winners(xd, geom)
        n, c, ho, wo = off.shape
        tab = _index_table(tuple(geom), ho, wo, w)  # (Ho Wo, kh kw)
        flat = tab[np.arange(ho * wo), off.reshape(n * c, ho * wo)]
        return flat.reshape(n, c, ho, wo)
    if ph or pw:
        xd = xp.pad(xd, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=lowest(xd.dtype))
    ho, wo = yd.shape[2], yd.shape[3]
    rows = xp.arange(ho).reshape(-1, 1) * sh - ph  # (Ho, 1) window origin in the input
    cols = xp.arange(wo).reshape(1, -1) * sw - pw  # (1, Wo)
    idx = xp.zeros(yd.shape, dtype=np.int64)
    # The winners of the backward: the first maximum, or the last NaN of a window (PyTorch).
    for k, _sl, hit in max_pool_winners(xp, xd, yd, geom):
        i, j = divmod(k, kw)
        xp.copyto(idx, (rows + i * dh) * w + (cols + j * dw), where=hit)
    return idx


@functools.lru_cache(maxsize=64)
def _index_table(geom, ho: int, wo: int, w: int) -> np.ndarray:
    """(Ho Wo, kh kw) int64, read-only: the flat input position (row * W + col) of offset
    k = i * kw + j of output (oy, ox)'s window, (oy sh - ph + i dh) W + (ox sw - pw + j dw):
    the formula return_indices computed from the kernel's offsets at every call (~5 us). A
    function of the geometry and sizes alone: remembered."""
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    rows = np.arange(ho).reshape(-1, 1, 1, 1) * sh - ph + np.arange(kh).reshape(1, 1, -1, 1) * dh
    cols = np.arange(wo).reshape(1, -1, 1, 1) * sw - pw + np.arange(kw).reshape(1, 1, 1, -1) * dw
    tab = (rows * w + cols).reshape(ho * wo, kh * kw).astype(np.int64)
    tab.flags.writeable = False
    return tab


def max_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Maximum over kh x kw windows (stride defaults to the kernel), as PyTorch: padding with
    -inf, dilation, ceil_mode, and return_indices (flat indices into each H x W input plane;
    ties go to the first maximum)."""
    x = as_tensor(input)
    if x._data.dtype.kind not in "iu":  # integers pool too (no gradient), as in PyTorch
        x = float_tensor(x, "max_pool2d")
    x, unbatched = _as4d(x, "max_pool2d")
    h, w = x._data.shape[2:4]
    geom = _pool_geom(x, kernel_size, stride, padding, dilation, "max_pool2d", ceil_mode)
    x, _, _ = _ceil_pad(x, geom, ceil_mode, lowest(x.dtype))
    y = MaxPool2d.apply(x, geom=geom)
    if return_indices:
        idx = _max_indices(x, y, geom, h, w)
        return (y[0], idx[0]) if unbatched else (y, idx)
    return y[0] if unbatched else y


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over kh x kw windows; ceil_mode, count_include_pad and divisor_override as
    PyTorch."""
    x, integer = _avg_input(input, "avg_pool2d")
    x, unbatched = _as4d(x, "avg_pool2d")
    h, w = x._data.shape[2:4]
    geom = _pool_geom(x, kernel_size, stride, padding, 1, "avg_pool2d", ceil_mode)
    kh, kw, sh, sw, _, _, ph, pw = geom
    x, eh, ew = _ceil_pad(x, geom, ceil_mode, 0.0)
    if divisor_override is not None:
        if divisor_override == 0:
            raise DescentError("avg_pool2d: divisor must be not zero")
        div = float(divisor_override)
    elif (count_include_pad or (ph == 0 and pw == 0)) and not (eh or ew):
        div = float(kh * kw)
    else:
        # Count the cells each window averages: pool an image of ones over what counts (the
        # input, plus the padding when count_include_pad; never ceil_mode's extra cells).
        if count_include_pad:
            ones = np.pad(np.ones((h + 2 * ph, w + 2 * pw)), ((0, eh), (0, ew)))
        else:
            ones = np.pad(np.ones((h, w)), ((ph, ph + eh), (pw, pw + ew)))
        ho, wo = out_size(h + eh, kh, sh, 1, ph), out_size(w + ew, kw, sw, 1, pw)
        div = np.zeros((ho, wo))
        for i in range(kh):
            for j in range(kw):
                div += ones[i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
        xp = backend.get_array_module(x._data)
        div = xp.asarray(div.astype(x._data.dtype))
    if integer:
        y = integer_average(AvgPool2d.apply(x, geom=geom, div=1.0), div)
    else:
        y = AvgPool2d.apply(x, geom=geom, div=div)
    return y[0] if unbatched else y


def _avg_input(input, op: str) -> tuple[Tensor, bool]:
    """(x, integer): average pooling takes floats, and int64 as ATen (an integer average,
    computed here on a float64 copy: exact for sums below 2^53; no gradient)."""
    x = as_tensor(input)
    if x._data.dtype == np.int64:  # (through untracked.computed: replayed by descent.compile)
        return computed(_as_float64, (x,), ()), True
    return float_tensor(x, op), False


def integer_average(total: Tensor, div) -> Tensor:
    """ATen's average of int64 windows: the integer sum divided by the divisor with C++'s
    division (truncated toward zero: -5 / 2 = -2), as int64."""
    # Through untracked.computed, as the float64 copy above: made on the arrays, both were
    # constants that descent.compile froze (session 19)
    if isinstance(div, (int, float)):
        return computed(_trunc_div, (total,), (div,))
    return computed(_trunc_div, (total, Tensor._wrap(div)), ())


def _as_float64(a):
    """An int64 array as float64 (integer average pooling's input, untracked.computed)."""
    return a.astype(np.float64)


def _trunc_div(total, div):
    """total / div truncated toward zero, as int64 (integer_average's kernel)."""
    return backend.get_array_module(total).trunc(total / div).astype(np.int64)


def _input_1d(input, op: str) -> Tensor:
    """(N, C, L) or (C, L) as a height-1 image (N, C, 1, L) or (C, 1, L)."""
    x = as_tensor(input)
    if x.ndim not in (2, 3):
        raise DescentError(
            f"{op}: expected 2D or 3D (batch mode) tensor with optional 0 dim batch size for "
            f"input, (C, L) or (N, C, L), got shape {tuple(x.shape)}"
        )
    return _shape.unsqueeze(x, -2)


_GEOM_1D_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _geom_1d(x, k, s, p, d):
    """The 2-D pools' geometry (1, k, 1, s, 1, d, 0, p) of a 1-D pool's common call: a batched
    (N, C, L) non-empty float32/float64 Tensor, int arguments (stride None: the kernel) that
    pass PyTorch's checks (`check_window`: positive sizes, padding at most half the kernel;
    at least one output); None for everything else, which takes the checked path (and its
    errors). No ceil_mode: the caller's test."""
    if type(x) is not Tensor or type(k) is not int or type(p) is not int or type(d) is not int:
        return None
    if s is None:
        s = k
    elif type(s) is not int:
        return None
    a = x._data
    if a.ndim != 3 or a.dtype not in _GEOM_1D_DTYPES or not a.size:
        return None
    if k < 1 or s < 1 or d < 1 or p < 0 or p > k // 2 or out_size(a.shape[2], k, s, d, p) < 1:
        return None
    return (1, k, 1, s, 1, d, 0, p)


def max_pool1d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:
    """max_pool2d over (N, C, L) as a height-1 image (indices are positions along L)."""
    if not (ceil_mode or return_indices):
        geom = _geom_1d(input, kernel_size, stride, padding, dilation)
        if geom is not None:  # the same three nodes as below, without the checks it passed
            y = MaxPool2d.apply(_shape.unsqueeze(input, -2), geom=geom)
            return _shape.squeeze(y, -2)
    x = _input_1d(input, "max_pool1d")
    if x._data.dtype.kind in "iu" and x._data.size and not return_indices:
        # PyTorch: "max_pool1d_impl" not implemented for 'Long' (descent pooled integers); with
        # return_indices its max_pool2d kernel takes them, and bools are max_pool2d's refusal
        raise DtypeError(
            f"max_pool1d: not implemented for {x._data.dtype} tensors (shape "
            f"{tuple(input.shape)}), as in PyTorch; convert first with .float()"
        )
    k = int_tuple(kernel_size, 1, "kernel_size", "max_pool1d")[0]
    # (stride=[] is the kernel size, as None: PyTorch's default, as in the other poolings)
    no_stride = stride is None or (not isinstance(stride, int) and len(stride) == 0)
    s = k if no_stride else int_tuple(stride, 1, "stride", "max_pool1d")[0]
    p = int_tuple(padding, 1, "padding", "max_pool1d")[0]
    d = int_tuple(dilation, 1, "dilation", "max_pool1d")[0]
    y = max_pool2d(x, (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    if return_indices:
        return _shape.squeeze(y[0], -2), _shape.squeeze(y[1], -2)
    return _shape.squeeze(y, -2)


def avg_pool1d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """avg_pool2d over (N, C, L) as a height-1 image."""
    if not ceil_mode and (count_include_pad or padding == 0):
        geom = _geom_1d(input, kernel_size, stride, padding, 1)
        if geom is not None:  # the same three nodes as below, without the checks it passed
            k = geom[1]
            y = AvgPool2d.apply(_shape.unsqueeze(input, -2), geom=geom, div=float(k))
            return _shape.squeeze(y, -2)
    x = _input_1d(input, "avg_pool1d")
    k = int_tuple(kernel_size, 1, "kernel_size", "avg_pool1d")[0]
    s = k if stride is None or stride == [] else int_tuple(stride, 1, "stride", "avg_pool1d")[0]
    p = int_tuple(padding, 1, "padding", "avg_pool1d")[0]
    y = avg_pool2d(x, (1, k), (1, s), (0, p), ceil_mode, count_include_pad)
    return _shape.squeeze(y, -2)


def _window_matrix(n: int, out: int, dtype) -> np.ndarray:
    """(out, n): row i averages PyTorch's adaptive window [floor(i n/out), ceil((i+1) n/out))."""
    a = np.zeros((out, n), dtype=dtype)
    for i in range(out):
        lo, hi = (i * n) // out, -((-(i + 1) * n) // out)
        a[i, lo:hi] = 1.0 / (hi - lo)
    return a


@functools.lru_cache(maxsize=256)
def _window_matrices(n: int, out: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(`_window_matrix(n, out, dtype)`, its transpose, contiguous), read-only and remembered:
    a function of the sizes alone, which cost ~2 us a matrix to build at every call."""
    a = _window_matrix(n, out, dtype)
    a_t = np.ascontiguousarray(a.T)
    a.flags.writeable = a_t.flags.writeable = False
    return a, a_t


def _window_means(x: Tensor, dim: int, out: int) -> Tensor:
    """Cell i along `dim` averages PyTorch's window [floor(i n/out), ceil((i+1) n/out)): one
    mean per cell (for an input with inf or nan, where the window matrices' products give
    0 * inf = nan in the cells without it)."""
    n = x.shape[dim]
    cells = []
    for i in range(out):
        lo, hi = (i * n) // out, -((-(i + 1) * n) // out)
        cells.append(x.narrow(dim, lo, hi - lo).mean(axis=dim))
    return _shape.stack(cells, axis=dim)


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """Average pooling to a fixed (oh, ow): windows [floor(i H/oh), ceil((i+1) H/oh)) as
    PyTorch. One avg_pool2d when the sizes divide evenly, else a mean per output cell."""
    x0 = float_tensor(input, "adaptive_avg_pool2d")
    x, unbatched = _as4d(x0, "adaptive_avg_pool2d")
    h, w = x.shape[2], x.shape[3]
    oh, ow = adaptive_out(output_size, (h, w), "adaptive_avg_pool2d")
    if oh == 0 or ow == 0 or (unbatched and x.shape[1] == 0):
        # PyTorch returns an empty (N, C, oh, ow); an unbatched (0, H, W) pools to (0, oh, ow)
        y = empty_pool(x, (oh, ow))
        return y[0] if unbatched else y
    if (oh, ow) == (1, 1):
        # Global pooling: PyTorch's mean over (H, W) (its fast path, whose node saves nothing:
        # a second backward runs again; the values are mean's)
        # (of the input itself: an unbatched one's node is Mean too, as in PyTorch)
        return x0.mean(axis=(-2, -1), keepdims=True)
    if h % oh == 0 and w % ow == 0:
        kh, kw = h // oh, w // ow
        if x._data.size:  # avg_pool2d(x, (kh, kw))'s node without its argument checks (~3 us)
            y = AvgPool2d.apply(x, geom=(kh, kw, kh, kw, 1, 1, 0, 0), div=float(kh * kw))
        else:  # (its refusal of an empty channel dimension)
            y = avg_pool2d(x, (kh, kw))
    elif x._data.dtype == HALF:  # the overlapping cells' gradients summed in float32, rounded
        y = in_float32(adaptive_avg_pool2d, x, (oh, ow))  # once (ops/half.py; float16: 1.1x)
    elif type(x._data) is np.ndarray and np.isfinite(x._data).all():
        # (Not with an inf or nan: the products' 0 * inf made nan in the cells without it.)
        # The pooling is separable and linear: y = A_h x A_w^T with A (out, in) holding
        # 1/len on each (possibly overlapping) window. Two matrix products, forward and
        # backward, where a mean per output cell made oh*ow ops each way (7x7 cells of 32x32
        # images: 88 ms against PyTorch's 9 ms, forward + backward).
        dt = x._data.dtype
        a_w = Tensor._wrap(_window_matrices(w, ow, dt)[1])  # (W, ow)
        a_h = Tensor._wrap(_window_matrices(h, oh, dt)[0])  # (oh, H)
        y = a_h @ (x @ a_w)  # (N, C, H, ow) -> (N, C, oh, ow)
    else:
        rows = []
        for i in range(oh):
            r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)
            cells = []
            for j in range(ow):
                c0, c1 = (j * w) // ow, -((-(j + 1) * w) // ow)
                cells.append(x[:, :, r0:r1, c0:c1].mean(axis=(2, 3)))
            rows.append(_shape.stack(cells, axis=-1))
        y = _shape.stack(rows, axis=-2)
    # PyTorch's one node, AdaptiveAvgPool2DBackward0 (its global pooling is the mean above)
    return show_as(y[0] if unbatched else y, "AdaptiveAvgPool2DBackward0", (x0,))


def check_size_1d(output_size, op: str) -> None:
    """The 1-d adaptive poolings take an int (or one int in a sequence): PyTorch's argument
    parser refuses None, which the 2-d and 3-d ones read as 'keep this dimension'."""
    if output_size is None:
        raise TypeError(
            f"{op}(): argument 'output_size' (position 2) must be tuple of ints, not NoneType"
        )
    if isinstance(output_size, (tuple, list)) and any(o is None for o in output_size):
        raise TypeError(
            f"{op}(): argument 'output_size' (position 2) must be tuple of ints, but found "
            "element of type NoneType (the 1-d pooling has no size to keep)"
        )


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    """Average pooling of (N, C, L) or (C, L) to a fixed length: adaptive_avg_pool2d over a
    height-1 image (PyTorch's windows [floor(i L/o), ceil((i+1) L/o)))."""
    check_size_1d(output_size, "adaptive_avg_pool1d")
    x = float_tensor(input, "adaptive_avg_pool1d")
    if x.ndim not in (2, 3):
        raise ValueError(
            f"adaptive_avg_pool1d: expected 2 to 3 dimensions, (C, L) or (N, C, L), but got "
            f"input of shape {tuple(x.shape)}"
        )
    (out,) = adaptive_out(output_size, x.shape[-1:], "adaptive_avg_pool1d")
    if out == 0:  # PyTorch returns an empty (N, C, 0)
        return x[..., :0]
    y = adaptive_avg_pool2d(_shape.unsqueeze(x, -2), (1, out))
    return _shape.squeeze(y, -2)
