"""More of torch's top-level array functions, composed of differentiable ops (gradients come from
the primitives they are made of): quantile/nanquantile, cov/corrcoef, pdist, combinations,
diag_embed, tensor_split/hsplit/vsplit/dsplit, dstack/atleast_3d; and the index or count
functions argwhere, bincount, histogram (no gradient).

Each follows the formula PyTorch's kernel evaluates, in its order where that decides the last bit:
quantile's ranks q * (n - 1) in the input's dtype and `lerp` between the neighbours (Sorting.cpp),
cov's weighted mean and `mm(x - avg, (x - avg) * w)^T / (w_sum - correction)` (Correlation.cpp),
corrcoef's two divisions by the standard deviations and clip to [-1, 1].
"""

from __future__ import annotations

import itertools
import warnings
from fractions import Fraction

import numpy as np

from .. import backend
from ..creation_integer import float_space
from ..dtypes import SCALAR_TYPES
from ..tensor import Tensor
from ._common import _one_axis, as_tensor, return_type
from .arithmetic import add, div, mul, sub
from .complex import complex as complex_from_parts
from .complex import conj, imag, real
from .elementwise import FixedWhere, clamp, sqrt, where
from .indexing import index_select, take_along_axis
from .linalg import mm
from .math import lerp
from .reduce import sum as _sum
from .selection import nonzero, sort
from .shape import concatenate, pad, permute, reshape, squeeze, transpose, unsqueeze
from .shape_index import diagonal, narrow
from .untracked import computed, guarded

# ---------------------------------------------------------------------------------------------
# Indices and counts (no gradient)


def argwhere(input) -> Tensor:
    """The (n, ndim) int64 indices of the nonzero elements (torch.argwhere = nonzero)."""
    return nonzero(as_tensor(input))


def bincount(input, weights=None, minlength: int = 0) -> Tensor:
    """Counts of each value of a 1-D non-negative integer tensor (torch.bincount): int64, or
    the sums of `weights` (float32 weights give float32, any other dtype float64). No gradient
    (PyTorch has no derivative for it either)."""
    x = as_tensor(input)
    if x._data.dtype.kind not in "iu":
        raise NotImplementedError(f'"bincount_cpu" not implemented for {_torch_name(x.dtype)}')
    if x.ndim != 1:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    if minlength < 0:
        raise RuntimeError("minlength should be >= 0")
    # (its length is the largest value + 1 when past minlength: guarded for descent.compile,
    # ops/untracked.py)
    if weights is None:
        return guarded(_bincount_kernel, (x,), (int(minlength),), "bincount")[0]
    w = as_tensor(weights)
    if w.shape != x.shape:
        raise RuntimeError(
            f"weights should be 1-d and have the same length as input (bincount: shapes "
            f"{tuple(w.shape)} and {tuple(x.shape)})"
        )
    return guarded(_bincount_kernel, (x, w), (int(minlength),), "bincount")[0]


def _bincount_kernel(data, *rest) -> tuple:
    """(bincount's counts,): int64, or the sums of the weights (float32 weights give float32,
    others float64); raises on a negative value (untracked.guarded's kernel: each call's)."""
    w, minlength = rest if len(rest) == 2 else (None, rest[0])
    if data.shape[0] and data.min() < 0:
        raise RuntimeError("bincount only supports 1-d non-negative integral inputs.")
    xp = backend.get_array_module(data)
    data = data.astype(np.int64)
    if w is None:
        return (xp.bincount(data, minlength=minlength).astype(np.int64),)
    dt = np.float32 if w.dtype == np.float32 else np.float64
    return (xp.bincount(data, weights=w.astype(np.float64), minlength=minlength).astype(dt),)


_TORCH_NAMES = SCALAR_TYPES  # PyTorch's ScalarType names: the one table (dtypes.py)


def _torch_name(dtype) -> str:
    """PyTorch's ScalarType name of a dtype ('Long'), as its kernels' dtype errors say it."""
    name = np.dtype(dtype).name
    return "'" + _TORCH_NAMES.get(name, name) + "'"


def _linspace(lo, hi, steps: int, dtype):
    """PyTorch's CPU linspace in `dtype` (creation_integer.float_space, which
    descent.linspace computes with too): start + step * i for the first half, end - step *
    (steps - 1 - i) after, each a fused multiply-add."""
    return float_space(float(lo), float(hi), int(steps), np.dtype(dtype))


def histogram(input, bins=100, *, range=None, weight=None, density: bool = False):
    """Histogram of the values (torch.histogram): (hist, bin_edges), both in the input's
    floating dtype. `bins` is a count (equal widths over `range`, default the data's min and
    max, widened by 0.5 each side when they are equal) or a 1-D tensor of increasing edges.
    The last bin includes its right edge; values outside and NaN are not counted. `weight`
    sums weights instead of counting; `density` divides by the total and the bin widths."""
    x = as_tensor(input)
    if x._data.dtype.kind not in "fV":
        raise NotImplementedError(f'"histogramdd" not implemented for {_torch_name(x.dtype)}')
    dt = x._data.dtype
    xp = backend.get_array_module(x._data)
    if isinstance(bins, Tensor) or isinstance(bins, (list, tuple, np.ndarray)):
        edges_t = as_tensor(bins)
        edges = backend.as_numpy(edges_t._data)
        if edges.ndim != 1 or edges.size < 1:
            raise RuntimeError("torch.histogramdd: bins tensor should have one dimension, but got "
                               f"{edges.ndim} dimensions in the bins tensor for dimension 0 (at "
                               "least one edge is needed)")  # fmt: skip
        if edges.dtype != dt:
            raise RuntimeError(
                "torch.histogramdd: input tensor and bins tensors should have the same dtype, "
                f"but got input with dtype {dt} and bins for dimension 0 with dtype {edges.dtype}"
            )
        edges_out = Tensor._wrap(xp.asarray(edges))
    else:
        n = int(bins)
        if n <= 0:
            raise RuntimeError(
                f"torch.histogram(): bins must be > 0, but got {bins} for dimension 0"
            )
        # Edges and counts are data computed from the values: `computed` shows descent.compile
        # how (ops/untracked.py); the range checks run in the kernel, on every call
        rng = None if range is None else (float(range[0]), float(range[1]))
        edges_t = edges_out = computed(_histogram_edges, (x,), (n, rng))
    ws = (x, edges_t) if weight is None else (x, edges_t, as_tensor(weight))
    return _Histogram(computed(_histogram_counts, ws, (bool(density),)), edges_out)


def _histogram_edges(a, n: int, range):  # noqa: A002 - torch's name
    """histogram's n + 1 equal-width edges over range (default the data's min and max)."""
    data = backend.as_numpy(a).ravel()
    dt = data.dtype
    if range is not None:
        lo, hi = float(range[0]), float(range[1])
    elif data.size:
        lo, hi = float(data.min()), float(data.max())  # NaN makes the range not finite
    else:
        lo, hi = 0.0, 1.0
    if lo > hi:
        raise RuntimeError(f"torch.histogramdd: min should not exceed max, but got min {lo:g} "
                           f"max {hi:g} for dimension 0")  # fmt: skip
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RuntimeError(f"torch.histogramdd: dimension 0's range [{lo:g}, {hi:g}] is not "
                           "finite")  # fmt: skip
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return _linspace(lo, hi, n + 1, dt)


def _histogram_counts(a, edges, *rest):
    """histogram's counts (or summed weights; density-scaled) of a's values in edges' bins."""
    *weight, density = rest
    data = backend.as_numpy(a).ravel()
    dt = data.dtype
    edges = backend.as_numpy(edges)
    nb = edges.size - 1
    keep = data[(data >= edges[0]) & (data <= edges[-1])] if nb > 0 else data[:0]
    # The bin whose [left, right) holds the value; the right edge belongs to the last bin.
    pos = np.minimum(np.searchsorted(edges, keep, side="right") - 1, nb - 1)
    if weight:
        w = backend.as_numpy(weight[0]).ravel()
        w = w[(data >= edges[0]) & (data <= edges[-1])] if nb > 0 else w[:0]
        hist = np.bincount(pos, weights=w.astype(np.float64), minlength=max(nb, 0)).astype(dt)
    else:
        hist = np.bincount(pos, minlength=max(nb, 0)).astype(dt)
    hist = hist[: max(nb, 0)]
    if density:
        total = hist.sum(dtype=dt)
        with np.errstate(divide="ignore", invalid="ignore"):
            hist = (hist / total / np.diff(edges)).astype(dt)
    return backend.get_array_module(a).asarray(hist)


# torch.return_types.histogram: a (hist, bin_edges) named tuple printed as PyTorch prints it
# (before 2026-12-07 a plain tuple subclass whose repr was a bare pair)
_Histogram = return_type("histogram", ["hist", "bin_edges"])


# ---------------------------------------------------------------------------------------------
# Quantiles

_MODES = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(name: str, input, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool):
    x = as_tensor(input)
    name = "quantile"  # PyTorch's messages say quantile() for nanquantile too
    if x._data.dtype not in (np.float32, np.float64):
        raise RuntimeError(f"{name}() input tensor must be either float or double dtype")
    if x._data.size == 0:
        raise RuntimeError(f"{name}() input tensor must be non-empty")
    if interpolation not in _MODES:
        raise RuntimeError(
            f"{name}() interpolation must be one of linear, lower, higher, midpoint or nearest, "
            f"but got {interpolation}"
        )
    dt = x._data.dtype
    xp = backend.get_array_module(x._data)
    if isinstance(q, Tensor):
        if q.ndim > 1:
            raise RuntimeError(f"{name}() q must be a scalar or 1D tensor")
        if q._data.dtype != dt:
            raise RuntimeError(f"{name}() q tensor must be same dtype as the input tensor")
        qa, q_dims = q._data, q.ndim
    else:
        qa, q_dims = xp.asarray(q, dtype=dt), 0
    qn = backend.as_numpy(qa)
    if qn.size and not ((qn >= 0) & (qn <= 1)).all():
        bad = qn[~((qn >= 0) & (qn <= 1))][0] if qn.ndim else qn
        raise RuntimeError(f"{name}() q must be in the range [0, 1] but got {float(bad):g}")
    # The values to rank: the flattened input, or `dim` moved last; sorted (NaN last).
    if dim is None:
        flat = reshape(x, -1)
        out_shape = (1,) * x.ndim if keepdim else ()
    else:
        nd = max(x.ndim, 1)
        if not -nd <= dim < nd:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, "
                             f"{nd - 1}], but got {dim})")  # fmt: skip
        d = dim % nd
        flat = x if x.ndim == 0 else _move_last(x, d)
        flat = reshape(flat, 1) if x.ndim == 0 else flat
        shape = list(x.shape)
        if shape:
            shape[d] = 1
        out_shape = tuple(shape) if keepdim else tuple(s for i, s in enumerate(x.shape) if i != d)
    values = sort(flat, -1).values  # (..., n)
    qs = qa.reshape(-1)  # (k,)
    # The ranks, their integer neighbours and the weights come from the values (NaN counts)
    # through untracked.computed: descent.compile replays them on each call's data (they were
    # frozen when the first two calls agreed). d rank / d q is `slope`, except where the rank
    # was overwritten (`fixed`, PyTorch's masked_fill): there it is 0, even against a NaN
    # gradient.
    qt = q if isinstance(q, Tensor) else Tensor._wrap(qa)
    ranks = computed(_q_ranks, (values, qt), (ignore_nan, interpolation))  # (..., k)
    below = computed(_to_int64, (ranks,), ())
    out = take_along_axis(values, below, -1)  # (..., k)
    if interpolation in ("linear", "midpoint"):
        weights = computed(_q_weights, (ranks,), (interpolation == "midpoint",))
        if interpolation == "linear" and isinstance(q, Tensor) and q.requires_grad:
            # d weight / d q = slope (rank = q * slope; the floor is piecewise constant), as
            # PyTorch's quantile differentiates its q tensor: add (q - q) * slope, 0 in value
            # (the weights keep their bits) and slope in gradient.
            qr = reshape(q, -1)  # (k,)
            slope = computed(_q_slope, (values,), (ignore_nan,))
            dq = mul(sub(qr, qr.detach()), slope)  # (..., k), zeros
            fixed = computed(_q_fixed, (values, qt), (ignore_nan,))
            weights = add(weights, where(fixed, 0, dq))
        above = take_along_axis(values, computed(_ceil_int64, (ranks,), ()), -1)
        low = out
        out = lerp(out, above, weights)
        # PyTorch's CPU lerp is one fused multiply-add; add the (exact, tiny) difference to its
        # rounding (recorded, as above), so the values are PyTorch's bits and the gradient
        # lerp's.
        if _fuses(out._data):
            out = add(out, computed(_lerp_delta, (low, above, weights, out), ()))
    # (..., k) -> (k, *out_shape), or out_shape for a scalar q.
    if out.ndim > 1:
        out = permute(out, out.ndim - 1, *range(out.ndim - 1))
    return reshape(out, (qs.shape[0],) + out_shape if q_dims else out_shape)


def _q_ranks(values, q, ignore_nan: bool, interpolation: str):
    """quantile's ranks (..., k) in the values' dtype, as PyTorch: q * (count - 1) with count
    the non-NaN values (nanquantile) or n with a NaN slice ranked at its end (quantile),
    rounded as `interpolation` asks (untracked.computed's kernel)."""
    xp = backend.get_array_module(values)
    dt = values.dtype
    qs = q.reshape(-1)
    n = values.shape[-1]
    nan_mask = xp.isnan(values)
    if ignore_nan:
        count = (~nan_mask).sum(-1, keepdims=True).astype(dt)  # (..., 1)
        ranks = qs * (count - dt.type(1))  # (..., k)
        ranks = xp.where(ranks < 0, dt.type(0), ranks)
    else:
        ranks = xp.broadcast_to(qs * dt.type(n - 1), values.shape[:-1] + qs.shape)
        ranks = xp.where(nan_mask.any(-1, keepdims=True), dt.type(n - 1), ranks)
    if interpolation == "lower":
        ranks = xp.floor(ranks)
    elif interpolation == "higher":
        ranks = xp.ceil(ranks)
    elif interpolation == "nearest":
        ranks = xp.round(ranks)  # half to even, as torch.round
    return ranks


def _q_fixed(values, q, ignore_nan: bool):
    """Where quantile's rank was overwritten (no gradient to q there) (untracked.computed)."""
    xp = backend.get_array_module(values)
    if ignore_nan:
        count = (~xp.isnan(values)).sum(-1, keepdims=True).astype(values.dtype)
        return q.reshape(-1) * (count - values.dtype.type(1)) < 0
    return xp.isnan(values).any(-1, keepdims=True)


def _q_slope(values, ignore_nan: bool):
    """d rank / d q: the non-NaN count - 1 (nanquantile) or n - 1 (untracked.computed)."""
    xp = backend.get_array_module(values)
    dt = values.dtype
    if ignore_nan:
        return (~xp.isnan(values)).sum(-1, keepdims=True).astype(dt) - dt.type(1)
    return xp.asarray(values.shape[-1] - 1, dtype=dt)


def _to_int64(a):
    return a.astype(np.int64)


def _ceil_int64(a):
    return backend.get_array_module(a).ceil(a).astype(np.int64)


def _q_weights(ranks, midpoint: bool):
    """The interpolation weights: 0.5 (midpoint) or rank - floor(rank) (untracked.computed)."""
    xp = backend.get_array_module(ranks)
    if midpoint:
        return xp.full_like(ranks, 0.5)
    return (ranks - ranks.astype(np.int64)).astype(ranks.dtype)


def _fuses(a) -> bool:
    """Whether _fused_lerp gives values for arrays like `a` (not None)."""
    return backend.get_array_module(a) is np and (a.dtype.itemsize < 8 or a.size <= 4096)


def _lerp_delta(start, end, weight, out):
    """_fused_lerp's values - lerp's (non-finite differences 0) (untracked.computed)."""
    xp = backend.get_array_module(out)
    delta = _fused_lerp(start, end, weight) - out
    return xp.where(xp.isfinite(delta), delta, out.dtype.type(0))


def _fused_lerp(start, end, weight):
    """PyTorch's vectorized CPU lerp, fma(coeff, end - start, base) with (coeff, base) =
    (w, start) for |w| < 0.5 and (w - 1, end) otherwise, rounded once: through float64 for
    float32 (the product of two float32 values is exact there), in exact rationals for a
    float64 result of at most 4096 values (None beyond: lerp's own rounding stays)."""
    if backend.get_array_module(start) is not np:
        return None
    dt = start.dtype
    small = np.abs(weight) < 0.5
    coeff = np.where(small, weight, weight - dt.type(1))  # in dt, as PyTorch's vector
    base = np.where(small, start, end)
    diff = end - start
    with np.errstate(all="ignore"):
        if dt.itemsize < 8:
            return (coeff.astype(np.float64) * diff + base).astype(dt)
    if start.size > 4096:
        return None
    out = np.empty(start.shape, dt)
    flat, c, d, b = out.reshape(-1), coeff.ravel(), diff.ravel(), base.ravel()
    for i in range(flat.size):
        if np.isfinite(c[i]) and np.isfinite(d[i]) and np.isfinite(b[i]):
            flat[i] = float(Fraction(float(c[i])) * Fraction(float(d[i])) + Fraction(float(b[i])))
        else:
            flat[i] = c[i] * d[i] + b[i]
    return out


def _move_last(x, d: int):
    if d == x.ndim - 1:
        return x
    return permute(x, *[i for i in range(x.ndim) if i != d], d)


def quantile(input, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
    """The q-th quantiles along `dim` (of all values when None) (torch.quantile): a float or a
    0-d/1-D tensor q in [0, 1] (a 1-D q adds a leading dimension); `interpolation` between the
    two neighbouring sorted values: linear, lower, higher, midpoint or nearest. A slice holding
    NaN gives NaN. Differentiable (through sort and lerp), in a tensor q too (linear)."""
    return _quantile("quantile", input, q, dim, keepdim, interpolation, False)


def nanquantile(input, q, dim=None, keepdim: bool = False, *, interpolation: str = "linear"):
    """quantile ignoring NaN (torch.nanquantile); an all-NaN slice gives NaN."""
    return _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)


# ---------------------------------------------------------------------------------------------
# Covariance, correlation, distances


def cov(input, *, correction: int = 1, fweights=None, aweights=None) -> Tensor:
    """Covariance of the variables in the rows of `input` (observations in columns; a 1-D
    input is one variable), as torch.cov: frequency weights `fweights` (integers) and
    observation weights `aweights` (floats), `correction` subtracted from the normalizer
    (Bessel's 1 by default). Integer inputs give the default float dtype."""
    x = as_tensor(input)
    if x.ndim > 2:
        raise RuntimeError(
            "cov(): expected input to have two or fewer dimensions but got an input with "
            f"{x.ndim} dimensions"
        )
    if x._data.dtype.kind == "b":
        raise RuntimeError("cov(): bool dtype is not supported for input")
    x = reshape(x, 1, -1) if x.ndim < 2 else x  # (variables, observations)
    n_obs = x.shape[1]
    w = None
    if fweights is not None:
        w = as_tensor(fweights)
        _check_weights("fweights", w, n_obs, "iu", "integral")
        if n_obs and int(w._data.min()) < 0:
            raise RuntimeError("cov(): fweights cannot be negative")
    if aweights is not None:
        aw = as_tensor(aweights)
        _check_weights("aweights", aw, n_obs, "f", "floating point")
        if n_obs and float(aw._data.min()) < 0:
            raise RuntimeError("cov(): aweights cannot be negative")
        w = aw if w is None else mul(w, aw)
    if w is not None:
        w_sum = _sum(w)
        if float(w_sum._data) == 0:
            raise RuntimeError("cov(): weights sum to zero, can't be normalized")
        avg = div(_sum(mul(x, w), 1), w_sum)  # (variables,)
        if aweights is not None and correction != 0:
            norm = sub(w_sum, div(mul(_sum(mul(w, aw)), correction), w_sum))
        else:
            norm = sub(w_sum, correction)
        norm_value = float(norm._data)
    else:
        avg = div(_sum(x, 1), n_obs)
        norm = norm_value = n_obs - correction
    if norm_value <= 0:
        warnings.warn(
            "cov(): degrees of freedom is <= 0. Correction should be strictly less than the "
            "number of observations.",
            UserWarning,
            stacklevel=2,
        )
        norm = 0 if w is None else mul(norm, 0)
    xm = sub(x, unsqueeze(avg, 1))  # (variables, observations)
    c = mm(xm, conj(transpose(xm if w is None else mul(xm, w), 0, 1)))  # x x^H for complex
    with np.errstate(divide="ignore", invalid="ignore"):
        c = div(c, norm)
    return squeeze(c)


def _check_weights(name: str, w: Tensor, n_obs: int, kinds: str, what: str) -> None:
    if w.ndim > 1:
        raise RuntimeError(
            f"cov(): expected {name} to have one or fewer dimensions but got {name} with "
            f"{w.ndim} dimensions"
        )
    if w._data.dtype.kind not in kinds:
        raise RuntimeError(
            f"cov(): expected {name} to have {what} dtype but got {name} with {w.dtype} dtype"
        )
    if w._data.size != n_obs:
        raise RuntimeError(
            f"cov(): expected {name} to have the same numel as there are observations in the "
            f"input but got {w._data.size} != {n_obs}"
        )


def corrcoef(input) -> Tensor:
    """Pearson correlation coefficients of the rows (torch.corrcoef): cov divided by the
    standard deviations on both sides, clipped to [-1, 1] (complex: each part)."""
    c = cov(input)
    if c.ndim == 0:
        return div(c, c)  # PyTorch's 1 (or NaN) for a single variable
    d = diagonal(c)
    std = sqrt(real(d))  # a complex variance is real; its rounding's imaginary part is dropped
    c = div(c, unsqueeze(std, 1))
    c = div(c, unsqueeze(std, 0))
    if c._data.dtype.kind == "c":  # each part clipped, as PyTorch's
        return complex_from_parts(clamp(real(c), -1, 1), clamp(imag(c), -1, 1))
    return clamp(c, -1, 1)


def pdist(input, p: float = 2) -> Tensor:
    """The p-norm distances between every pair of rows i < j of an (N, M) tensor, in row-major
    order: N (N - 1) / 2 values (torch.pdist; gradient 0 where two rows coincide)."""
    x = as_tensor(input)
    if x.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {x.ndim}D")
    if x._data.dtype.kind not in "fV":
        raise RuntimeError("pdist only supports floating-point dtypes")
    if x._data.dtype == np.float16:
        raise NotImplementedError("\"pdist\" not implemented for 'Half'")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    from .torch_extra import cdist  # the distance formulas, shared

    n = x.shape[0]
    i, j = np.triu_indices(n, 1)
    a = unsqueeze(index_select(x, 0, i.astype(np.int64)), 1)  # (pairs, 1, M)
    b = unsqueeze(index_select(x, 0, j.astype(np.int64)), 1)
    # cdist on each pair with the difference form (never the matrix-product shortcut)
    d = cdist(a, b, p, compute_mode="donot_use_mm_for_euclid_dist")  # (pairs, 1, 1)
    return reshape(d, -1)


# ---------------------------------------------------------------------------------------------
# Shapes


def combinations(input, r: int = 2, with_replacement: bool = False) -> Tensor:
    """Every combination of r entries of a 1-D tensor, as rows (itertools.combinations order,
    or combinations_with_replacement); differentiable (a gather)."""
    x = as_tensor(input)
    if x.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(x.shape)}")
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return Tensor._wrap(backend.get_array_module(x._data).empty((0,), x._data.dtype))
    pick = itertools.combinations_with_replacement if with_replacement else itertools.combinations
    idx = np.array(list(pick(range(x.shape[0]), r)), dtype=np.int64).reshape(-1)
    return reshape(index_select(x, 0, idx), -1, r)


def diag_embed(input, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices with the last dimension of `input` on their `offset` diagonal, in the output
    dimensions dim1 and dim2 (torch.diag_embed; inf and nan stay on the diagonal only)."""
    x = as_tensor(input)
    nd = x.ndim + 1
    d1, d2 = dim1 % nd, dim2 % nd
    for dim in (dim1, dim2):
        if not -nd <= dim < nd:
            raise IndexError(f"diag_embed: dimension out of range (expected to be in range of "
                             f"[{-nd}, {nd - 1}], but got {dim})")  # fmt: skip
    if d1 == d2:
        raise RuntimeError(f"diag_embed: diagonal dimensions cannot be identical {dim1}, {dim2}; "
                           "give two different output dims")  # fmt: skip
    if x.ndim == 0:
        x = reshape(x, 1)
    n = x.shape[-1]
    xp = backend.get_array_module(x._data)
    eye = xp.eye(n, dtype=bool)
    zero = Tensor._wrap(xp.zeros((), x._data.dtype))
    # (..., n, n): x[..., i] at (i, i); the eye is a constant that PyTorch's DiagEmbedBackward0
    # does not save (FixedWhere: a second backward runs again)
    m = FixedWhere.apply(unsqueeze(x, -1), zero, cond=eye, torch_name="DiagEmbedBackward0")
    k = abs(int(offset))
    if k:
        # row i, column i + offset: pad the columns on the left (offset > 0) or the rows on top
        m = pad(m, (k, 0, 0, k) if offset > 0 else (0, k, k, 0))
    # The two matrix dims (last two) go to d1 and d2 of the output.
    rest = list(range(m.ndim - 2))
    order: list = [None] * m.ndim
    order[d1], order[d2] = m.ndim - 2, m.ndim - 1
    it = iter(rest)
    order = [next(it) if o is None else o for o in order]
    # contiguous as PyTorch's (it writes the diagonal of a fresh zeros tensor): NumPy's where
    # keeps a transposed input's order and permute is a view, so .view(-1) raised; a copy
    # only then
    return (permute(m, *order) if order != list(range(m.ndim)) else m).contiguous()


def atleast_3d(*tensors):
    """Each tensor with at least three dimensions: () -> (1, 1, 1), (n,) -> (1, n, 1),
    (m, n) -> (m, n, 1) (torch.atleast_3d)."""
    ts = list(tensors[0]) if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) \
        else list(tensors)  # fmt: skip
    out = []
    for t in ts:
        t = as_tensor(t)
        if t.ndim == 0:
            t = reshape(t, 1, 1, 1)
        elif t.ndim == 1:  # PyTorch's unsqueeze(0).unsqueeze(-1) (two UnsqueezeBackward0)
            t = unsqueeze(unsqueeze(t, 0), -1)
        elif t.ndim == 2:
            t = unsqueeze(t, -1)
        out.append(t)
    return out[0] if len(out) == 1 else tuple(out)


def dstack(tensors) -> Tensor:
    """Concatenate along dim 2 after making every tensor at least 3-D (torch.dstack)."""
    if not len(tensors):
        raise RuntimeError("dstack expects a non-empty TensorList")
    ts = [atleast_3d(t) for t in tensors]
    return concatenate(ts, 2)


def _sections(name: str, ios, sections, indices, tensor_ios=None):
    """The one split argument of PyTorch's overloads: `indices_or_sections` positionally, or by
    keyword `sections=`, `indices=` or `tensor_indices_or_sections=`."""
    given = [v for v in (ios, sections, indices, tensor_ios) if v is not None]
    if len(given) != 1:
        raise TypeError(
            f"{name}() takes one of indices_or_sections, sections= or indices= (got {len(given)})"
        )
    v = given[0]
    if isinstance(v, (str, bytes)) or not isinstance(v, (int, np.integer, list, tuple, Tensor)):
        raise TypeError(
            f"{name}(): indices_or_sections must be an int, a list of ints or an integer tensor, "
            f"got {type(v).__name__} {v!r}"
        )
    return v


def tensor_split(
    input, indices_or_sections=None, dim: int = 0, *, sections=None, indices=None,
    tensor_indices_or_sections=None,
) -> tuple:  # fmt: skip
    """Split into views along `dim` (torch.tensor_split): an int n gives n parts, the first
    size % n of them one longer; a list (or 1-D int tensor) of indices cuts before each."""
    indices_or_sections = _sections(
        "tensor_split", indices_or_sections, sections, indices, tensor_indices_or_sections
    )
    x = as_tensor(input)
    if x.ndim == 0:
        raise RuntimeError("tensor_split expected at least a 1-dimensional tensor, but got a "
                           "tensor with 0 dims")  # fmt: skip
    d = _one_axis(dim, x.ndim)  # out of range: IndexError, as PyTorch (was wrapped)
    size = x.shape[d]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        if ios._data.dtype.kind not in "iu" or ios.ndim > 1:
            raise RuntimeError(
                "tensor_split expected tensor_indices_or_sections to have dtype of long, but got "
                f"{_torch_name(ios.dtype)[1:-1]} (and to be a zero or one-dimensional tensor, "
                f"got {ios.ndim} dims)"
            )
        ios = int(ios._data) if ios.ndim == 0 else [int(v) for v in backend.as_numpy(ios._data)]
    if isinstance(ios, (int, np.integer)):
        n = int(ios)
        if n <= 0:
            raise RuntimeError(f"number of sections must be larger than 0, got {n}")
        small, extra = divmod(size, n)
        bounds, start = [], 0
        for i in range(n):
            length = small + (1 if i < extra else 0)
            bounds.append((start, length))
            start += length
    else:
        cuts = [int(v) for v in ios]
        bounds, start = [], 0
        for c in cuts + [size]:
            # x[start:c] as Python slices it (empty when c < start); the next piece starts at c
            c = max(0, min(size, c + size if c < 0 else c))
            bounds.append((start, max(0, c - start)))
            start = c
    return tuple(narrow(x, d, s, n) for s, n in bounds)


def _split_like(name: str, x, ios, dim: int, min_dims: int) -> tuple:
    x = as_tensor(x)
    if x.ndim < min_dims:
        raise RuntimeError(
            f"torch.{name} requires a tensor with at least {min_dims} dimension, but got a "
            f"tensor with {x.ndim} dimensions!"
        )
    if isinstance(ios, (int, np.integer)):
        size = x.shape[dim]
        if ios == 0 or size % ios:
            raise RuntimeError(
                f"torch.{name} attempted to split along dimension {dim}, but the size of the "
                f"dimension {size} is not divisible by the split_size {ios}!"
            )
    return tensor_split(x, ios, dim)


def hsplit(input, indices_or_sections=None, *, sections=None, indices=None) -> tuple:
    """tensor_split along dim 1 (dim 0 for a 1-D tensor); an int must divide the size."""
    x = as_tensor(input)
    ios = _sections("hsplit", indices_or_sections, sections, indices)
    return _split_like("hsplit", x, ios, 1 if x.ndim > 1 else 0, 1)


def vsplit(input, indices_or_sections=None, *, sections=None, indices=None) -> tuple:
    """tensor_split along dim 0 of an at least 2-D tensor; an int must divide the size."""
    ios = _sections("vsplit", indices_or_sections, sections, indices)
    return _split_like("vsplit", input, ios, 0, 2)


def dsplit(input, indices_or_sections=None, *, sections=None, indices=None) -> tuple:
    """tensor_split along dim 2 of an at least 3-D tensor; an int must divide the size."""
    ios = _sections("dsplit", indices_or_sections, sections, indices)
    return _split_like("dsplit", input, ios, 2, 3)
