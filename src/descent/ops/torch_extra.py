"""PyTorch's remaining top-level array functions, composed of differentiable ops (no Function
classes of their own, so their gradients come from the primitives): cross, rot90, fliplr,
flipud, block_diag, cartesian_prod, vander, addbmm, renorm, cdist; and histc (a count, no
gradient).

Each follows the formula PyTorch's kernel evaluates, in the same order where that decides the
last bit (cross's a1 b2 - a2 b1, cdist's matrix-product form for many points, renorm's
maxnorm / (norm + 1e-7), histc's (x - min) * bins / (max - min)).
"""

from __future__ import annotations

import math

import numpy as np

from .. import amp, backend
from ..errors import DescentError, DtypeError
from ..grad_fn import show_as
from ..opmath import HALF
from ..tensor import Tensor
from ..tensor_methods import beta_alpha_first
from ._common import _one_axis, as_tensor, refuse_kinds, result_type
from .arithmetic import add, mul, sub
from .elementwise import _array_copy, cast, where
from .elementwise import abs as _abs
from .half import in_float32, rounds_once
from .indexing import index_select
from .linalg import bmm, integer_coefficients, matmul
from .reduce import amax, norm
from .reduce import sum as _sum
from .scan import cumprod
from .shape import broadcast_to, concatenate, flip, pad, reshape, stack, transpose, unsqueeze
from .shape_index import meshgrid
from .special import _promoted
from .untracked import computed

# ---------------------------------------------------------------------------------------------
# Vectors and matrices


def cross(input, other, dim=None) -> Tensor:
    """The cross product of 3-vectors along `dim` (torch.cross: the first dimension of size 3
    when dim is None; torch.linalg.cross uses -1). The operands broadcast; they must have one
    dtype, not bool (PyTorch's kernel)."""
    a, b = as_tensor(input), as_tensor(other)
    refuse_kinds("cross", a, "b")  # (a bool input first: PyTorch's missing kernel comes
    # before its dtype check, a NotImplementedError)
    if a._data.dtype != b._data.dtype:
        raise DescentError(
            f"cross: expected scalar type {a.dtype} but found {b.dtype} (shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}), as in PyTorch; convert one first"
        )
    refuse_kinds("cross", a, "b")
    a, b = _promoted(a, b)
    shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    if dim is None:
        sizes3 = [i for i, s in enumerate(shape) if s == 3]
        if not sizes3:
            raise RuntimeError(
                f"cross: no dimension of size 3 in shapes {tuple(a.shape)} and {tuple(b.shape)}; "
                "pass dim= or reshape the inputs to hold 3-vectors"
            )
        dim = sizes3[0]
    if not -len(shape) <= dim < len(shape) or shape[dim] != 3:
        raise RuntimeError(
            f"cross: dimension {dim} of the broadcast shape {shape} must have size 3 (shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)})"
        )
    a = a if tuple(a.shape) == shape else broadcast_to(a, shape)
    b = b if tuple(b.shape) == shape else broadcast_to(b, shape)
    # c_i = a_(i+1) b_(i+2) - a_(i+2) b_(i+1), indices mod 3: two rotations of each operand.
    r1, r2 = np.array([1, 2, 0]), np.array([2, 0, 1])
    return sub(
        mul(index_select(a, dim, r1), index_select(b, dim, r2)),
        mul(index_select(a, dim, r2), index_select(b, dim, r1)),
    )


def rot90(input, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees k times in the plane `dims`, from the first toward the second axis
    (torch.rot90)."""
    x = as_tensor(input)
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"rot90: expected two dims, got {dims}")
    if x.ndim < 2:
        raise RuntimeError(
            f"rot90: expected a tensor of at least 2 dims, got shape {tuple(x.shape)}"
        )
    d0, d1 = dims[0] % x.ndim, dims[1] % x.ndim
    if d0 == d1:
        raise RuntimeError(f"rot90: the two dims must differ, got {dims}")
    k %= 4
    if k == 1:
        return transpose(flip(x, d1), d0, d1)
    if k == 2:
        return flip(x, (d0, d1))
    if k == 3:
        return transpose(flip(x, d0), d0, d1)
    # (a bool copy through untracked.computed, so descent.compile replays it)
    return mul(x, 1) if x._data.dtype.kind != "b" else computed(_array_copy, (x,), ())


def fliplr(input) -> Tensor:
    """Reverse dimension 1 (left/right); at least 2-D."""
    x = as_tensor(input)
    if x.ndim < 2:
        raise RuntimeError(
            f"fliplr: expected a tensor of at least 2 dims, got shape {tuple(x.shape)}"
        )
    return flip(x, 1)


def flipud(input) -> Tensor:
    """Reverse dimension 0 (up/down); at least 1-D."""
    x = as_tensor(input)
    if x.ndim < 1:
        raise RuntimeError("flipud: expected a tensor of at least 1 dim, got a 0-d tensor")
    return flip(x, 0)


def block_diag(*tensors) -> Tensor:
    """A block-diagonal matrix of 0-, 1- or 2-D tensors (a 0-d tensor is 1x1, a 1-D one a
    row), in their promoted dtype."""
    ts = [as_tensor(t) for t in tensors]
    for i, t in enumerate(ts):
        if t.ndim > 2:
            raise RuntimeError(
                f"block_diag: input {i} has {t.ndim} dims (shape {tuple(t.shape)}); expected "
                "0, 1 or 2"
            )
    if not ts:
        return Tensor._wrap(np.zeros((1, 0), np.float32))
    dt = result_type(*ts)
    ts = [reshape(t, 1, -1) if t.ndim < 2 else t for t in ts]
    ts = [t if t._data.dtype == dt else cast(t, dt) for t in ts]
    width = sum(t.shape[1] for t in ts)
    rows, left = [], 0
    for t in ts:
        c = t.shape[1]
        rows.append(pad(t, (left, width - left - c)))  # zeros left and right of the block
        left += c
    return concatenate(rows, 0)


def cartesian_prod(*tensors) -> Tensor:
    """Every combination of one entry from each 1-D tensor, as rows (itertools.product order)."""
    ts = [as_tensor(t) for t in tensors]
    for t in ts:
        if t.ndim != 1:
            raise RuntimeError(f"cartesian_prod: expects 1-D tensors, got shape {tuple(t.shape)}")
    if len(ts) == 1:
        return ts[0]
    grids = meshgrid(*ts, indexing="ij")
    return stack([reshape(g, -1) for g in grids], 1)  # (prod of lengths, len(tensors))


def vander(x, N: int | None = None, increasing: bool = False) -> Tensor:
    """The Vandermonde matrix of a 1-D tensor: columns x^(N-1) ... x^0 (x^0 first with
    increasing=True); as PyTorch, a cumulative product (integers in int64)."""
    x = as_tensor(x)
    if x.ndim != 1:
        raise RuntimeError(f"vander: x must be a 1-D tensor, got shape {tuple(x.shape)}")
    n = x.shape[0] if N is None else int(N)
    if n < 0:
        raise RuntimeError(f"vander: N must be non-negative, got {N}")
    # bools and integers in int64; a floating or complex dtype is kept (NumPy's
    # promote_types(float32, int64) made float32 input float64)
    dt = np.dtype(np.int64) if x._data.dtype.kind in "biu" else x._data.dtype
    if x._data.dtype != dt:
        x = cast(x, dt)
    xp = backend.get_array_module(x._data)
    ones = Tensor._wrap(xp.ones((x.shape[0], 1 if n > 0 else 0), dt))
    if n <= 1:
        return ones
    # [1, x, x, ...] along the columns, then the running product: 1, x, x^2, ...
    powers = cumprod(concatenate([ones, broadcast_to(unsqueeze(x, 1), (x.shape[0], n - 1))], 1), 1)
    return powers if increasing else flip(powers, 1)


@beta_alpha_first(method=False)  # torch.addbmm(beta, input, [alpha,] b1, b2), deprecated
@rounds_once  # one kernel in PyTorch: float16/bfloat16 rounds the result once
def addbmm(input, batch1, batch2, *, beta=1, alpha=1) -> Tensor:
    """beta * input + alpha * sum_b batch1[b] @ batch2[b] (torch.addbmm; beta=0 ignores input,
    nan included)."""
    if amp._depth:  # on PyTorch's autocast list: the three inputs in the low dtype
        input, batch1, batch2 = amp._lower(as_tensor(input), as_tensor(batch1), as_tensor(batch2))
    prod = bmm(batch1, batch2)  # (b, n, p)
    if prod._data.dtype.kind in "iub":  # (checked before the sum turns bool into int64)
        beta, alpha = integer_coefficients("addbmm", prod, beta, alpha)
    # (n, p); integers keep their dtype (PyTorch's uint8 addbmm wraps in uint8; a sum alone is
    # int64)
    prod = _sum(prod, 0, dtype=prod.dtype if prod._data.dtype.kind in "iu" else None)
    if alpha != 1:
        prod = mul(prod, alpha)
    if beta == 0:
        # input ignored (nan included) but connected: PyTorch's zero gradient for it.
        out = where(True, prod, input)
    else:
        out = add(input if beta == 1 else mul(input, beta), prod)
    return show_as(out, "AddbmmBackward0", (input, batch1, batch2))  # (PyTorch's one node)


def renorm(input, p, dim: int, maxnorm) -> Tensor:
    """Scale each slice along `dim` whose p-norm exceeds maxnorm to norm maxnorm (PyTorch's
    factor maxnorm / (norm + 1e-7)); differentiable through the norm, as torch.renorm."""
    x = as_tensor(input)
    if x._data.dtype.kind not in "fcV":  # (complex: the norms of the moduli, real factors)
        raise RuntimeError(f"renorm: expected a floating point tensor, got {x.dtype}")
    if p <= 0:
        raise RuntimeError(f"renorm: p must be positive, got {p}")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: maxnorm must be non-negative, got {maxnorm}")
    if x.ndim < 2:  # PyTorch's check and words
        raise RuntimeError(f"renorm: input needs at least 2 dimensions, got {x.ndim} dimensions")
    d = _one_axis(dim, x.ndim)  # out of range: IndexError, as PyTorch (was wrapped)
    others = tuple(i for i in range(x.ndim) if i != d)
    def slice_norms(t):  # (1, .., size of dim, .., 1)
        return norm(t, p, others, True)

    # torch.renorm's own backward passes the gradient through where norm <= maxnorm (a nan norm
    # included: nan > maxnorm is false). The composite would give nan there (0 times the
    # derivative of maxnorm / nan), so the slices left alone enter the norm as zeros.
    clipped = slice_norms(x.detach()) > maxnorm
    n = slice_norms(where(clipped, x, 0.0))
    with np.errstate(divide="ignore"):
        factor = where(clipped, maxnorm / (n + 1e-7), 1.0)
    real_dt = x._data.real.dtype  # (float32 for complex64)
    if factor._data.dtype != real_dt:
        factor = cast(factor, real_dt)
    # contiguous as PyTorch's renorm whatever x's layout (NumPy's product keeps a transposed
    # x's order: renorm(x.t(), ...).view(-1) raised); a copy only then
    return mul(x, factor).contiguous()


# ---------------------------------------------------------------------------------------------
# Distances


def _safe_root(s, p: float):
    """s^(1/p) with gradient 0 at s = 0 (PyTorch's cdist gradient at coincident points)."""
    zero = s == 0
    r = where(zero, 1.0, s) ** (1.0 / p)
    return where(zero, 0.0, r)


def cdist(x1, x2, p: float = 2.0, compute_mode: str = "use_mm_for_euclid_dist_if_necessary"):
    """p-norm distances between the rows of x1 (..., P, M) and of x2 (..., R, M): (..., P, R).

    As torch.cdist: for p = 2 with more than 25 rows in either (or compute_mode
    'use_mm_for_euclid_dist'), the matrix-product form |a|^2 - 2 a.b + |b|^2, clamped at 1e-30
    before the square root; otherwise the differences, which hold a (..., P, R, M) temporary.
    """
    for name, t in (("X1", x1), ("X2", x2)):  # each input, before the promotion (a bool
        if isinstance(t, Tensor) and t._data.dtype.kind not in "fV":  # one beside a float
            raise RuntimeError(  # one computed), as PyTorch
                f"cdist only supports floating-point dtypes, {name} got: {t.dtype} (shape "
                f"{tuple(t.shape)})"
            )
    if amp._depth:  # on PyTorch's autocast float32 list: low-precision inputs in float32
        x1, x2 = amp._upper(as_tensor(x1)), amp._upper(as_tensor(x2))
    if isinstance(x1, Tensor) and isinstance(x2, Tensor) and x1.dtype != x2.dtype and \
            x1._data.dtype != HALF:  # (PyTorch's own check; float16: see below)
        raise RuntimeError(f"cdist: expected scalar type {x1.dtype} but found {x2.dtype} (x1 "
                           f"{tuple(x1.shape)}, x2 {tuple(x2.shape)}), as PyTorch; convert "
                           f"one of them")  # fmt: skip
    a, b = _promoted(x1, x2)
    if a._data.dtype == HALF:  # in float32, rounded once (ops/half.py): the float16 steps of
        # the differences' norms put the gradients 1.2x further from float64 than PyTorch's
        return in_float32(cdist, a, b, p, compute_mode)
    if a._data.dtype.kind not in "fV":
        raise RuntimeError(f"cdist: only floating point tensors are supported, got {a.dtype}")
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != b.shape[-1]:
        raise RuntimeError(
            f"cdist: x1 (..., P, M) and x2 (..., R, M) must share M, got shapes "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    if p < 0:
        raise RuntimeError(f"cdist: p must be non-negative, got {p}")
    modes = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
             "donot_use_mm_for_euclid_dist")  # fmt: skip
    if compute_mode not in modes:
        raise ValueError(f"cdist: compute_mode must be one of {modes}, got {compute_mode!r}")
    P, R = a.shape[-2], b.shape[-2]
    use_mm = p == 2 and (
        compute_mode == "use_mm_for_euclid_dist"
        or (compute_mode == modes[0] and (P > 25 or R > 25))
    )
    if use_mm:
        # PyTorch's _euclidean_dist: [-2a, |a|^2, 1] . [b, 1, |b|^2] in one product.
        an = _sum(a * a, -1, True)
        bn = _sum(b * b, -1, True)
        xp = backend.get_array_module(a._data)
        one_a = Tensor._wrap(xp.ones(tuple(a.shape[:-1]) + (1,), a._data.dtype))
        one_b = Tensor._wrap(xp.ones(tuple(b.shape[:-1]) + (1,), b._data.dtype))
        aa = concatenate([mul(a, -2.0), an, one_a], -1)
        bb = concatenate([b, one_b, bn], -1)
        s = matmul(aa, transpose(bb, -1, -2))
        return where(s > 1e-30, s, 1e-30) ** 0.5
    diff = sub(unsqueeze(a, -2), unsqueeze(b, -3))  # (..., P, R, M)
    if p == 0:
        # The count of differing coordinates: piecewise constant, so a zero gradient (a `where`
        # whose condition is all False: zeros for x1 and x2 even where diff is inf or nan).
        count = cast(_sum(diff.detach() != 0, -1), a._data.dtype)
        return where(count != count, _sum(diff, -1), count)
    if p == 1:
        return _sum(_abs(diff), -1)
    if p == 2:
        return _safe_root(_sum(diff * diff, -1), 2.0)
    if math.isinf(p):
        if diff.shape[-1] == 0:
            return _sum(diff, -1)
        return amax(_abs(diff), -1)
    ad = _abs(diff)
    if p < 1:
        # d|t|^p/dt = p |t|^(p-1) sign(t) is inf * 0 = nan at t = 0 for p < 1; PyTorch's
        # backward takes a coordinate that does not differ as contributing 0 (the inner `where`
        # keeps the masked branch finite, so its gradient is 0 rather than nan)
        zero = ad == 0
        terms = where(zero, 0.0, where(zero, 1.0, ad) ** float(p))
    else:
        terms = ad ** float(p)
    return _safe_root(_sum(terms, -1), float(p))


# ---------------------------------------------------------------------------------------------
# Histogram


def histc(input, bins: int = 100, min=0, max=0) -> Tensor:
    """Counts in `bins` equal-width bins over [min, max] (the data's range when min == max);
    entries outside, and nan, are not counted. Same dtype as the input; no gradient."""
    x = as_tensor(input)
    if x._data.dtype.kind not in "fV":
        # PyTorch: "histogram_cpu" not implemented for 'Long' (a NotImplementedError)
        raise DtypeError(
            f"histc: expected a floating point input, got {x.dtype} of shape "
            f"{tuple(x.shape)}; convert first with .float()"
        )
    if bins <= 0:
        raise RuntimeError(f"histc: bins must be > 0, got {bins}")
    # The counts are data computed from the values: `computed` shows descent.compile how
    # (ops/untracked.py); the range checks run in the kernel, on every call
    return computed(_histc, (x,), (int(bins), min, max))


def _histc(a, bins: int, min, max):  # noqa: A002 - torch's names
    """histc's counts of an array (see `histc`)."""
    data = backend.as_numpy(a).ravel()
    dt = data.dtype.type
    lo, hi = dt(min), dt(max)
    if lo > hi:
        raise RuntimeError(f"histc: max must be larger than min, got min={min}, max={max}")
    if lo == hi and data.size:
        lo, hi = data.min(), data.max()
    if lo == hi:
        lo, hi = lo - dt(1), hi + dt(1)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise RuntimeError(f"histc: range of [{lo}, {hi}] is not finite")
    keep = data[(data >= lo) & (data <= hi)]
    # PyTorch's linear bin position, in the input's dtype: (x - lo) * bins / (hi - lo); the
    # right edge goes to the last bin.
    with np.errstate(over="ignore", invalid="ignore"):
        pos = ((keep - lo) * dt(bins) / (hi - lo)).astype(np.int64)
    pos = np.minimum(pos, bins - 1)
    counts = np.bincount(pos, minlength=bins).astype(data.dtype)
    return backend.get_array_module(a).asarray(counts)
