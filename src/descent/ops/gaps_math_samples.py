"""PyTorch's functions of sampled values, part of the math gaps (docs/torch_gaps_math.md):
the trapezoidal rule (`trapezoid`, `trapz`, `cumulative_trapezoid`), finite-difference
derivatives (`gradient`) and the D-dimensional histogram (`histogramdd`). Top-level functions
only (no Tensor methods), exported through `descent.ops.gaps_math`.

The first four are compositions of descent's ops (narrow, cat, sums, products), so they are
differentiable to any order with respect to the samples and the sample points alike.
"""

from __future__ import annotations

import builtins

import numpy as np

from .. import backend
from ..errors import DescentError
from ..tensor import Tensor, get_default_dtype
from ._common import as_tensor, promote_types, return_type
from .arithmetic import scale, scale_div
from .elementwise import cast
from .reduce import cumsum, sum
from .selection import _dim
from .shape import cat, reshape
from .shape_index import narrow
from .torch_gaps import _linspace
from .untracked import computed

HistogramddResult = return_type("histogramdd", ["hist", "bin_edges"])


# ---------------------------------------------------------------------------------------------
# Integration and differentiation of samples


def _floating(v, x=None) -> Tensor:
    """v as a Tensor of a floating or complex dtype: integer samples integrate in the default
    float dtype, as PyTorch's, or in the dtype of floating sample points x (PyTorch promotes
    them: int y at float16 x is float16)."""
    v = as_tensor(v)
    if v.dtype.kind in "fVc":
        return v
    if isinstance(x, Tensor) and x._data.dtype.kind in "fV":
        return cast(v, x._data.dtype)
    return cast(v, get_default_dtype())


def _intervals(op: str, y: Tensor, x, dx, dim: int):
    """(d, left + right halves' sum per interval, interval widths) along dim."""
    d = _dim(y, dim, op)
    n = y.shape[d]
    if x is not None and dx is not None:
        raise TypeError(f"{op}: pass the sample points x or the spacing dx, not both")
    pair = narrow(y, d, 0, max(n - 1, 0)) + narrow(y, d, min(1, n), max(n - 1, 0))
    if x is None:
        return d, pair, 1 if dx is None else dx
    x = as_tensor(x, y)
    if x.ndim == 1 and y.ndim > 1:
        if x.shape[0] != n:
            raise RuntimeError(
                f"{op}: There must be one `x` value for each sample point (x {tuple(x.shape)}, "
                f"y {tuple(y.shape)} along dim {d})"
            )
        x = reshape(x, *[n if i == d else 1 for i in range(y.ndim)])
    dxs = narrow(x, d, min(1, n), max(n - 1, 0)) - narrow(x, d, 0, max(n - 1, 0))
    return d, pair, dxs


def _times(pair: Tensor, width):
    """pair * width: a number scales without freeing anything (arithmetic.Scale)."""
    return pair * width if isinstance(width, Tensor) else scale(pair, width)


def _refuse_bool(y, op: str) -> None:
    """PyTorch's trapezoid rules refuse a bool y ("received a bool input for `y`, but bool is
    not supported"); descent integrated it as 0/1."""
    if isinstance(y, Tensor) and y._data.dtype == np.bool_:
        raise DescentError(
            f"{op}: received a bool input for `y` (shape {tuple(y.shape)}), but bool is not "
            "supported, as in PyTorch; convert first with .float()"
        )


def trapezoid(y, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The trapezoidal rule along dim: sum over intervals of (y_i + y_{i+1}) / 2 * width,
    with the sample points x or a constant spacing dx (1 by default) (torch.trapezoid)."""
    _refuse_bool(y, "trapezoid")
    y = _floating(y, x)
    d, pair, width = _intervals("trapezoid", y, x, dx, dim)
    # PyTorch's composite scales by Scalars (MulBackward1, DivBackward1), which free nothing:
    # a second backward runs again (arithmetic.Scale)
    return scale_div(sum(_times(pair, width), d), 2)


trapz = trapezoid


def cumulative_trapezoid(y, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """The running trapezoidal integral along dim (one fewer element there)."""
    _refuse_bool(y, "cumulative_trapezoid")
    y = _floating(y, x)
    d, pair, width = _intervals("cumulative_trapezoid", y, x, dx, dim)
    return cumsum(scale_div(_times(pair, width), 2), d)


def _gradient_dims(op: str, f: Tensor, spacing, dim, edge_order: int):
    """[(axis, spacing of that axis)] for torch.gradient's arguments."""
    if edge_order not in (1, 2):
        raise RuntimeError(f"{op} only supports edge_order=1 and edge_order=2.")
    if spacing is None:  # PyTorch's default: unit spacing
        spacing = 1
    if dim is None:
        dims = list(range(f.ndim))
    elif isinstance(dim, (int, np.integer)):
        dims = [_dim(f, dim, op)]
    else:
        dims = [_dim(f, d, op) for d in dim]
        if len(set(dims)) < len(dims):
            dup = next(d for d in dims if dims.count(d) > 1)
            raise RuntimeError(
                f"{op}: dim {dup} appears multiple times in the list of dims {list(dim)}; name "
                f"each dimension once"
            )
    if isinstance(spacing, (list, tuple)):
        if len(spacing) != len(dims):
            raise RuntimeError(
                f"{op} expected spacing to be unspecified, a scalar or a list of length equal to "
                f"'self.dim() = {f.ndim}', since dim argument was not given, but got a list of "
                f"length {len(spacing)}"
            )
        spacings = list(spacing)
    else:
        spacings = [spacing] * len(dims)
    for d in dims:
        if f.shape[d] < edge_order + 1:
            raise RuntimeError(
                f"{op} expected each dimension size to be at least edge_order+1 (shape "
                f"{tuple(f.shape)}, edge_order {edge_order}, dim {d})"
            )
    return list(zip(dims, spacings))


def _along(t: Tensor, d: int, ndim: int) -> Tensor:
    """A 1-D tensor shaped to broadcast along axis d of an ndim tensor."""
    return reshape(t, *[-1 if i == d else 1 for i in range(ndim)])


def gradient(input, *, spacing=1, dim=None, edge_order: int = 1) -> tuple:
    """The derivative of sampled values along each dim by central differences in the
    interior and one-sided differences of order `edge_order` at the ends (torch.gradient,
    numpy.gradient's formulas). `spacing`: a number, one number per dim, or one coordinate
    tensor per dim. Returns a tuple, one tensor per dim; differentiable."""
    f = _floating(input)
    out = []
    for d, h in _gradient_dims("torch.gradient", f, spacing, dim, edge_order):
        n = f.shape[d]

        def sl(start, length, d=d, n=n):
            return narrow(f, d, start % n, length)

        if isinstance(h, Tensor) and h.ndim == 1:
            # the samples and coordinates promote (float32 values at float64 points: float64)
            dt = promote_types(f._data.dtype, h._data.dtype)
            fd = f if dt == f._data.dtype else cast(f, dt)

            def sl_d(start, length, d=d, n=n, fd=fd):
                return narrow(fd, d, start % n, length)

            out.append(_gradient_coordinates(fd, d, n, cast(h, dt), edge_order, sl_d))
            continue
        h = h.item() if isinstance(h, Tensor) else h
        # Scalars as PyTorch's composite's (MulBackward1, DivBackward1: nothing freed, so a
        # second backward runs again; arithmetic.Scale)
        interior = scale_div(sl(2, n - 2) - sl(0, n - 2), 2 * h)
        if edge_order == 1:
            first = scale_div(sl(1, 1) - sl(0, 1), h)
            last = scale_div(sl(-1, 1) - sl(-2, 1), h)
        else:
            first = scale_div(scale(sl(0, 1), -1.5) + scale(sl(1, 1), 2) - scale(sl(2, 1), 0.5), h)
            last = scale_div(scale(sl(-3, 1), 0.5) - scale(sl(-2, 1), 2) + scale(sl(-1, 1), 1.5), h)
        out.append(cat([first, interior, last], d))
    return tuple(out)


def _gradient_coordinates(f, d, n, x, edge_order, sl) -> Tensor:
    """torch.gradient along d with sample coordinates x (1-D, n values): the second-order
    formulas for uneven spacing (numpy.gradient's, after Fornberg 1988)."""
    if x.shape[0] != n:
        raise RuntimeError(
            f"torch.gradient expected each tensor to be on the same device and of size {n} "
            f"along dim {d}, got coordinates of shape {tuple(x.shape)}"
        )
    dx = narrow(x, 0, 1, n - 1) - narrow(x, 0, 0, n - 1)  # (n - 1,)
    h1, h2 = narrow(dx, 0, 0, n - 2), narrow(dx, 0, 1, n - 2)
    a = _along(-h2 / (h1 * (h1 + h2)), d, f.ndim)
    b = _along((h2 - h1) / (h1 * h2), d, f.ndim)
    c = _along(h1 / (h2 * (h1 + h2)), d, f.ndim)
    interior = a * sl(0, n - 2) + b * sl(1, n - 2) + c * sl(2, n - 2)
    if edge_order == 1:
        first = (sl(1, 1) - sl(0, 1)) / narrow(dx, 0, 0, 1)
        last = (sl(-1, 1) - sl(-2, 1)) / narrow(dx, 0, n - 2, 1)
    else:
        p, q = narrow(dx, 0, 0, 1), narrow(dx, 0, 1, 1)
        first = (
            sl(0, 1) * (-(2 * p + q) / (p * (p + q)))
            + sl(1, 1) * ((p + q) / (p * q))
            + sl(2, 1) * (-p / (q * (p + q)))
        )
        p, q = narrow(dx, 0, n - 3, 1), narrow(dx, 0, n - 2, 1)
        last = (
            sl(-3, 1) * (q / (p * (p + q)))
            + sl(-2, 1) * (-(q + p) / (p * q))
            + sl(-1, 1) * ((2 * q + p) / (q * (p + q)))
        )
    return cat([first, interior, last], d)


# ---------------------------------------------------------------------------------------------
# histogramdd


def _histogram_edges(d: int, data, bins, range, dt):
    """Dimension d's bin edges: given (a 1-D tensor), or `bins` equal widths over
    range[2d:2d+2] (the data's min and max by default, widened by 0.5 when equal), computed
    as PyTorch's linspace (torch_gaps._linspace, as descent.histogram)."""
    if isinstance(bins, (Tensor, np.ndarray)) or isinstance(bins, (list, tuple)):
        edges = backend.as_numpy(as_tensor(bins)._data)
        if edges.ndim != 1 or edges.size < 1:
            raise RuntimeError(
                f"torch.histogramdd: bins tensor should have one dimension, but got {edges.ndim} "
                f"dimensions in the bins tensor for dimension {d}"
            )
        if edges.dtype != dt:
            raise RuntimeError(
                "torch.histogramdd: input tensor and bins tensors should have the same dtype, "
                f"but got input with dtype {dt} and bins for dimension {d} with dtype "
                f"{edges.dtype}"
            )
        return edges
    n = int(bins)
    if n <= 0:
        raise RuntimeError(f"torch.histogramdd(): bins must be > 0, but got {n} for dimension {d}")
    if range is not None:
        lo, hi = float(range[2 * d]), float(range[2 * d + 1])
    elif data.size:
        lo, hi = float(data.min()), float(data.max())
    else:
        lo, hi = 0.0, 1.0
    if lo > hi:
        raise RuntimeError(
            f"torch.histogramdd: min should not exceed max, but got min {lo:g} max {hi:g} for "
            f"dimension {d}"
        )
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RuntimeError(
            f"torch.histogramdd: dimension {d}'s range [{lo:g}, {hi:g}] is not finite"
        )
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return _linspace(lo, hi, n + 1, dt)


def histogramdd(input, bins, *, range=None, weight=None, density: bool = False):
    """The D-dimensional histogram of the points input (..., D) (torch.histogramdd):
    `(hist, bin_edges)`, hist of shape (bins_0, ..., bins_{D-1}) and one edge tensor per
    dimension, in input's floating dtype. `bins`: a count for every dimension, one count per
    dimension, or one 1-D edge tensor per dimension; `range`: [min_0, max_0, min_1, ...].
    Each bin holds [left, right) and the last also its right edge; a point outside any
    dimension's edges (or nan) is not counted. Data only: no gradient.

    Raises:
        NotImplementedError: an integer or bool input, as PyTorch.
    """
    x = as_tensor(input)
    dt = x.dtype
    if dt.kind not in "fV":
        raise NotImplementedError(
            f'"histogramdd" not implemented for {dt} (shape {tuple(x.shape)}); use x.float()'
        )
    if x.ndim < 1:
        raise RuntimeError("torch.histogramdd: input tensor should have at least 1 dimension")
    pts = backend.as_numpy(x._data).reshape(-1, x.shape[-1])  # (N, D)
    n_dims = pts.shape[1]
    per_dim = list(bins) if isinstance(bins, (list, tuple)) else [bins] * n_dims
    if len(per_dim) != n_dims:
        raise RuntimeError(
            f"torch.histogramdd: expected {n_dims} sequences of bin edges for each of the "
            f"{n_dims} dimensions of the input, but got {len(per_dim)}"
        )
    if range is not None and len(range) != 2 * n_dims:
        raise RuntimeError(
            f"torch.histogramdd: for a {n_dims}-dimensional histogram range should have "
            f"{2 * n_dims} elements, but got {len(range)}"
        )
    # Counts and edges through untracked.computed: descent.compile replays the histogram and
    # the edges on each call's points and edge tensors (they were frozen when the first two
    # calls agreed). An edge tensor is an input of the kernel (`_EDGES` marks its place).
    ins = (x,) if weight is None else (x, as_tensor(weight))
    ins += tuple(b for b in per_dim if isinstance(b, Tensor))
    spec = tuple(_EDGES if isinstance(b, Tensor) else b for b in per_dim)
    args = (spec, None if range is None else tuple(range), density, dt, weight is not None)
    hist = computed(_histogramdd_kernel, ins, (*args, -1))
    edges = [computed(_histogramdd_kernel, ins, (*args, d)) for d in builtins.range(n_dims)]
    return HistogramddResult(hist, tuple(edges))


_EDGES = "<an edge tensor>"  # histogramdd's kernel: this dimension's edges are an input


def _given(b) -> bool:
    return isinstance(b, str) and b == _EDGES


def _histogramdd_kernel(*a):
    """histogramdd's counts (a[-1] = -1) or dimension a[-1]'s edges, from the points a[0], the
    weights a[1] when given and the edge arrays after them; a[-6:-1] = (bins, range, density,
    dtype, weighted) (untracked.computed)."""
    (bins, rng, density, dt, weighted, which), arrays = a[-6:], a[:-6]
    xp = backend.get_array_module(arrays[0])
    pts = backend.as_numpy(arrays[0]).reshape(-1, arrays[0].shape[-1])
    w = backend.as_numpy(arrays[1]) if weighted else None
    given = iter(arrays[1 + weighted:])
    per_dim = [Tensor._wrap(next(given)) if _given(b) else b for b in bins]
    hist, edges = _histogramdd_arrays(pts, w, per_dim, rng, density, dt)
    out = hist if which < 0 else edges[which]
    return xp.array(out) if which >= 0 and _given(bins[which]) else xp.asarray(out)  # (a copy)


def _histogramdd_arrays(pts, weight, per_dim, range, density, dt):
    """(hist, edges) of the points pts (N, D) on NumPy arrays (weight: an array or None)."""
    n_dims = pts.shape[1]
    edges = [_histogram_edges(d, pts[:, d], b, range, dt) for d, b in enumerate(per_dim)]
    sizes = tuple(max(e.size - 1, 0) for e in edges)
    keep = np.ones(pts.shape[0], bool)
    for d, e in enumerate(edges):
        keep &= (pts[:, d] >= e[0]) & (pts[:, d] <= e[-1]) if e.size > 1 else False
    # The bin whose [left, right) holds each coordinate; the right edge is the last bin's.
    pos = [
        np.minimum(np.searchsorted(e, pts[keep, d], side="right") - 1, sizes[d] - 1)
        for d, e in enumerate(edges)
    ]
    flat = np.ravel_multi_index(pos, sizes) if pts[keep].size else np.zeros(0, np.int64)
    w = None
    if weight is not None:
        w = weight.reshape(-1)[keep].astype(np.float64)
    count = int(np.prod(sizes, dtype=np.int64))
    hist = np.bincount(flat, weights=w, minlength=count)[:count].astype(dt).reshape(sizes)
    if density:
        # hist / total / (the product of each bin's widths), broadcast over the dimensions.
        volume = np.ones(sizes, np.float64)
        for d, e in enumerate(edges):
            shape = [-1 if i == d else 1 for i in builtins.range(n_dims)]
            volume = volume * np.diff(e).reshape(shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            hist = (hist / hist.sum(dtype=dt) / volume).astype(dt)
    return hist, edges
