"""Helpers shared by the distributions (torch.distributions.utils), and the few array-level
nodes they need that descent's ops lack:

* `StandardGamma`: Gamma(alpha, 1) samples drawn from descent's generator, with the implicit
  reparameterisation gradient dx/dalpha = -(dF(x; alpha)/dalpha) / f(x; alpha) (Figurnov et al.,
  "Implicit Reparameterization Gradients", 2018), F the regularised incomplete gamma function.
  The derivative of F comes from its power series (exact to float64 rounding) up to alpha =
  1000, and from the Wilson-Hilferty cube-root normal approximation above (relative error
  below 1e-4 there).
* `GammaInc`: the regularised lower incomplete gamma P(a, x) (torch.special.gammainc), for
  Gamma.cdf; differentiable in x only (PyTorch does not differentiate it in a either).
* `Cholesky` and `TriangularSolve`: the lower Cholesky factor and L^{-1} B, batched, for
  MultivariateNormal; differentiable to any order (their backward passes reuse the solve).
"""

from __future__ import annotations

import math
from numbers import Number

import numpy as np

from .. import backend
from ..autograd import Function
from ..autograd import _new_tensor as new_tensor
from ..creation import _rng, rand, randn, tensor
from ..creation_random import _replayable
from ..creation_random import draws_through_ops as _draws_through_ops
from ..dtypes import finfo, get_default_dtype
from ..ops.special import _digamma64, _lgamma64
from ..tensor import Tensor
from ..torch_functions import broadcast_tensors

__all__ = ["broadcast_all", "clamp_probs", "lazy_property", "logits_to_probs", "probs_to_logits",
           "tril_matrix_to_vec", "vec_to_tril_matrix"]  # fmt: skip


class lazy_property:  # noqa: N801 - PyTorch's name
    """A property computed on first access and then stored on the instance (so `probs` and
    `logits` are each computed from the other only when asked for)."""

    def __init__(self, wrapped) -> None:
        self.wrapped = wrapped
        self.__doc__ = wrapped.__doc__

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value


def broadcast_all(*values) -> tuple:
    """The values as tensors broadcast to one shape. Numbers take the dtype and device of the
    first tensor among the values, or the default float dtype when all are numbers (as
    torch.distributions.utils.broadcast_all); tensors keep their own dtypes."""
    like = next((v for v in values if isinstance(v, Tensor)), None)
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(v)
        elif isinstance(v, Number):
            if like is None:
                out.append(tensor(float(v), dtype=get_default_dtype()))
            else:
                out.append(tensor(v, dtype=like.dtype, device=like.device))
        else:
            raise ValueError("Input arguments must all be instances of numbers.Number, "
                             f"descent.Tensor or objects implementing __torch_function__, "
                             f"got {type(v).__name__}")  # fmt: skip
    return broadcast_tensors(*out)


def clamp_probs(probs: Tensor) -> Tensor:
    """probs clamped to [eps, 1 - eps] of its dtype."""
    eps = finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log p (categorical) or log(p / (1 - p)) (binary), from clamped probabilities."""
    p = clamp_probs(probs)
    if is_binary:
        return p.log() - (-p).log1p()
    return p.log()


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """sigmoid(logits) (binary) or softmax over the last dimension (categorical)."""
    if is_binary:
        return logits.sigmoid()
    return logits.softmax(-1)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """value summed over its `dim` rightmost dimensions."""
    if dim == 0:
        return value
    return value.reshape(tuple(value.shape[: value.ndim - dim]) + (-1,)).sum(-1)


# (draws_through_ops: the samples are used through ops only, so descent.compile replays them
# as draws on the same generator: Normal's rsample, Bernoulli's sample, ...)
@_draws_through_ops
def standard_normal(shape, like: Tensor) -> Tensor:
    """N(0, 1) draws of `like`'s dtype and device from descent's default generator."""
    return randn(tuple(shape), dtype=like.dtype, device=like.device)


@_draws_through_ops
def standard_uniform(shape, like: Tensor) -> Tensor:
    """U[0, 1) draws of `like`'s dtype and device from descent's default generator."""
    return rand(tuple(shape), dtype=like.dtype, device=like.device)


def numpy_rng(like: Tensor):
    """The default generator's array-level Generator for `like`'s device."""
    return _rng(None, like.device)


# ---------------------------------------------------------------------------------------------
# Gamma sampling with its implicit reparameterisation gradient


def _gamma_series(a: np.ndarray, x: np.ndarray):
    """S = sum_n x^n / ((a+1)...(a+n)) and dS/da, float64, summed until the terms stop
    counting (each element separately; the terms grow while n < x - a, then fall)."""
    s = np.ones_like(x)
    ds = np.zeros_like(x)
    term = np.ones_like(x)
    harmonic = np.zeros_like(x)  # H_n = sum_{k<=n} 1 / (a + k): d log(term_n) / da = -H_n
    active = np.arange(x.size)
    a_f, x_f, s_f, ds_f, t_f, h_f = (v.ravel() for v in (a, x, s, ds, term, harmonic))
    for n in range(1, 100_000):
        an = a_f[active] + n
        t_f[active] *= x_f[active] / an
        h_f[active] += 1.0 / an
        s_f[active] += t_f[active]
        ds_f[active] -= t_f[active] * h_f[active]
        # converged: the term is negligible and falling (n past x - a)
        done = (t_f[active] < 1e-17 * s_f[active]) & (an > x_f[active])
        active = active[~done]
        if active.size == 0:
            break
    return s_f.reshape(x.shape), ds_f.reshape(x.shape)


def standard_gamma_grad(alpha: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dx/dalpha of a Gamma(alpha, 1) sample x at fixed CDF value (float64 arrays).

    With P(a, x) = x^a e^-x / Gamma(a + 1) * S(a, x) and f = x^(a-1) e^-x / Gamma(a):
    dx/da = -(dP/da) / f = -(x / a) (S (log x - digamma(a + 1)) + dS/da).
    """
    a = np.asarray(alpha, dtype=np.float64)
    x = np.maximum(np.asarray(x, dtype=np.float64), np.finfo(np.float64).tiny)
    a, x = np.broadcast_arrays(a, x)
    out = np.empty(a.shape, dtype=np.float64)
    big = a > 1000.0
    small = ~big
    if small.any():
        aa, xx = a[small], x[small]
        s, ds = _gamma_series(aa, xx)
        out[small] = -(xx / aa) * (s * (np.log(xx) - _digamma64(aa + 1.0)) + ds)
    if big.any():
        # Wilson-Hilferty: x = a u^3, u = 1 - 1/(9a) + z / (3 sqrt(a)), z fixed (normal)
        aa, xx = a[big], x[big]
        u = np.cbrt(xx / aa)
        z = (u - 1.0 + 1.0 / (9.0 * aa)) * 3.0 * np.sqrt(aa)
        du = 1.0 / (9.0 * aa * aa) - z / (6.0 * aa**1.5)
        out[big] = u**3 + 3.0 * aa * u * u * du
    return out


class StandardGamma(Function):
    """x ~ Gamma(alpha, 1), the sample drawn before (`_gamma_draws`) and passed in as the
    second input, so that descent.compile replays the draw as a `Draw` op; dx/dalpha by
    implicit differentiation of the CDF (see the module docstring). Saves alpha and the sample
    for backward."""

    __slots__ = ()
    save_inputs = True
    save_output = True
    differentiable_backward = False

    def forward(self, alpha, sample):
        return sample.copy()

    def backward(self, gy, ops):
        alpha, _ = self.inputs(ops)
        x = self.output(ops)
        xp = backend.get_array_module(alpha)
        g = standard_gamma_grad(backend.as_numpy(alpha), backend.as_numpy(x))
        return gy * xp.asarray(g.astype(alpha.dtype)), None


@_replayable
def _gamma_draws(alpha: Tensor) -> Tensor:
    """Gamma(alpha, 1) draws (float64 on the generator, at least the dtype's smallest normal
    number) in alpha's dtype; bfloat16 through float32 as the op's float32 dispatch rounds. A
    sampling function that descent.compile keeps as a Draw (creation_random._replayable)."""
    a = alpha._data
    dt = a.dtype
    mid = np.dtype(np.float32) if dt.num >= 256 else dt  # (ml_dtypes' bfloat16, float8)
    x = numpy_rng(alpha).standard_gamma(a.astype(np.float64))
    out = np.maximum(x, finfo(mid).tiny).astype(mid)
    return new_tensor(out if mid == dt else out.astype(dt))


@_draws_through_ops
def standard_gamma(alpha: Tensor) -> Tensor:
    """Gamma(alpha, 1) draws (one per element of alpha) from descent's default generator,
    differentiable in alpha."""
    return StandardGamma.apply(alpha, _gamma_draws(alpha.detach()))


def _gammainc64(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(a, x), float64: the series below x < a + 1, 1 - Q(a, x) by Lentz's continued fraction
    above (Numerical Recipes 6.2); 0 at x <= 0, nan for a <= 0 or nan inputs."""
    a, x = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(x, np.float64))
    out = np.full(a.shape, np.nan)
    ok = (a > 0) & (x >= 0)
    out[ok & (x == 0)] = 0.0
    out[ok & np.isposinf(x)] = 1.0
    ser = ok & (x > 0) & (x < a + 1) & np.isfinite(x)
    if ser.any():
        aa, xx = a[ser], x[ser]
        s, _ = _gamma_series(aa, xx)
        out[ser] = np.exp(aa * np.log(xx) - xx - _lgamma64(aa + 1.0)) * s
    cf = ok & (x >= a + 1) & np.isfinite(x)
    if cf.any():
        aa, xx = a[cf], x[cf]
        tiny = 1e-300
        b = xx + 1.0 - aa
        c = np.full_like(xx, 1.0 / tiny)
        d = 1.0 / b
        h = d.copy()
        for i in range(1, 10_000):
            an = -i * (i - aa)
            b = b + 2.0
            d = an * d + b
            d = np.where(np.abs(d) < tiny, tiny, d)
            c = b + an / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            d = 1.0 / d
            delta = d * c
            h = h * delta
            if np.all(np.abs(delta - 1.0) < 1e-16):
                break
        q = np.exp(aa * np.log(xx) - xx - _lgamma64(aa)) * h
        out[cf] = 1.0 - q
    return out


class GammaInc(Function):
    """P(a, x); d/dx P = x^(a-1) e^-x / Gamma(a); no gradient in a (as PyTorch)."""

    save_inputs = True
    differentiable_backward = False

    def forward(self, a, x):
        dt = np.result_type(a, x)
        y = _gammainc64(backend.as_numpy(a), backend.as_numpy(x)).astype(dt)
        return backend.get_array_module(a, x).asarray(y)

    def backward(self, gy, ops):
        a, x = self.inputs(ops)
        xp = backend.get_array_module(a, x)
        a64, x64 = a.astype(np.float64), x.astype(np.float64)
        dens = np.exp((a64 - 1.0) * np.log(x64) - x64 - _lgamma64(backend.as_numpy(a64)))
        return None, gy * xp.asarray(dens.astype(gy.dtype))


def gammainc(a: Tensor, x: Tensor) -> Tensor:
    """The regularised lower incomplete gamma function P(a, x) (torch.special.gammainc)."""
    return GammaInc.apply(*broadcast_all(a, x))


# ---------------------------------------------------------------------------------------------
# Cholesky factor and triangular solve (batched), for MultivariateNormal


def _mt(a):
    return a.swapaxes(-1, -2)


def _solve_tri(lo, b, transpose: bool):
    """Array-level L^{-1} B (or L^{-T} B) for the lower triangle L of lo, batch dims broadcast
    (NumPy has no batched triangular solve without SciPy: a general solve on tril(lo))."""
    xp = backend.get_array_module(lo, b)
    shape = np.broadcast_shapes(lo.shape[:-2], b.shape[:-2])
    lo = xp.tril(lo)
    if transpose:
        lo = _mt(lo)
    lo = xp.broadcast_to(lo, shape + lo.shape[-2:])
    b = xp.broadcast_to(b, shape + b.shape[-2:])
    return xp.linalg.solve(lo, b)


class Cholesky(Function):
    """L = cholesky(A) (lower). Backward (PyTorch's cholesky_backward, after Murray 2016,
    "Differentiation of the Cholesky decomposition"): with S = phi(L^T gL), phi keeping the
    lower triangle with half its diagonal, symmetrised, gA = L^{-T} S L^{-1}. Under
    create_graph the solves are TriangularSolve nodes, so it differentiates again."""

    save_output = True

    def forward(self, a):
        xp = backend.get_array_module(a)
        try:
            return xp.linalg.cholesky(a)
        except np.linalg.LinAlgError as e:
            raise RuntimeError(
                f"cholesky: the input of shape {tuple(a.shape)} is not positive-definite ({e}); "
                "pass a symmetric positive-definite matrix (or scale_tril=)"
            ) from None

    def backward(self, gy, ops):
        lo = self.output(ops)
        m = ops.tril(_mt(lo) @ gy)
        s = 0.5 * (m + _mt(ops.tril(m, -1)))  # symmetric: diagonal once, off-diagonal halved
        if ops.is_graph:
            y = TriangularSolve.apply(lo, s, transpose=True)  # L^{-T} S
            return _mt(TriangularSolve.apply(lo, _mt(y), transpose=True))  # Y L^{-1}
        y = _solve_tri(lo, s, True)
        return _mt(_solve_tri(lo, _mt(y), True))


class TriangularSolve(Function):
    """X = L^{-1} B (transpose=False) or L^{-T} B (transpose=True) for the lower triangle L of
    the first input (batched, broadcast); only that triangle is read. Backward:
    gB = L^{-T} gX and gL = -tril(gB X^T) (transpose=False), gB = L^{-1} gX and
    gL = -tril(X gB^T) (transpose=True): each solve is this op again, so under create_graph
    the backward is differentiable."""

    __slots__ = ("transpose",)
    save_inputs = True
    save_output = True

    def forward(self, lo, b):
        return _solve_tri(lo, b, self.transpose)

    def backward(self, gy, ops):
        lo, _ = self.inputs(ops)
        x = self.output(ops)
        if ops.is_graph:
            gb = TriangularSolve.apply(lo, gy, transpose=not self.transpose)
        else:
            gb = _solve_tri(lo, gy, not self.transpose)
        gl = -ops.tril(x @ _mt(gb) if self.transpose else gb @ _mt(x))
        return gl, gb


def cholesky(a: Tensor) -> Tensor:
    """The lower Cholesky factor of a symmetric positive-definite matrix (batched)."""
    return Cholesky.apply(a)


def solve_lower(lo: Tensor, b: Tensor) -> Tensor:
    """L^{-1} B for lower-triangular L (..., n, n) and B (..., n, k), batch dims broadcast."""
    return TriangularSolve.apply(lo, b, transpose=False)


def batch_mahalanobis(lo: Tensor, x: Tensor) -> Tensor:
    """|L^{-1} x|^2 over the last dimension, for L (B..., n, n) and x (S..., B..., n) whose
    batch dims broadcast against L's (torch.distributions.multivariate_normal's
    _batch_mahalanobis): x's leading dims become the right-hand sides' columns."""
    n = lo.shape[-1]
    lb = tuple(lo.shape[:-2])
    k = len(lb)
    xb = tuple(x.shape[:-1])
    if len(xb) < k:
        x = x.reshape((1,) * (k - len(xb)) + tuple(x.shape))
        xb = tuple(x.shape[:-1])
    lead, tail = xb[: len(xb) - k], xb[len(xb) - k :]
    common = tuple(np.broadcast_shapes(tail, lb))
    x = x.expand(lead + common + (n,))
    p = math.prod(lead)
    cols = x.reshape((p,) + common + (n,))  # (P, B..., n)
    cols = cols.permute(tuple(range(1, k + 2)) + (0,))  # (B..., n, P)
    m = solve_lower(lo, cols).square().sum(-2)  # (B..., P)
    m = m.permute((k,) + tuple(range(k)))  # (P, B...)
    return m.reshape(lead + common)


def as_float_tensor(value, like: Tensor) -> Tensor:
    """value as a tensor of like's dtype and device (numbers and arrays; tensors unchanged)."""
    if isinstance(value, Tensor):
        return value
    return new_tensor(backend.get_array_module(like._data).asarray(value, dtype=like.dtype))


def _tril_selector(d: int, diag: int, like: Tensor) -> Tensor:
    """(N, d*d) 0/1 matrix putting a vector's entries at the lower-triangle positions
    (j - i <= diag) in row-major order, PyTorch's order. Matmuls with it (and its transpose)
    scatter and gather differentiably."""
    rows, cols = np.tril_indices(d, diag)
    sel = np.zeros((len(rows), d * d))
    sel[np.arange(len(rows)), rows * d + cols] = 1.0
    return tensor(sel, dtype=like.dtype, device=like.device)


def vec_to_tril_matrix(vec: Tensor, diag: int = 0) -> Tensor:
    """(..., N) -> (..., n, n) with the entries at and below diagonal `diag` (row-major), zeros
    elsewhere (torch.distributions.utils.vec_to_tril_matrix)."""
    n_vec = vec.shape[-1]
    # N = n (n + 1) / 2 + diag n - ... : solve for n as PyTorch does
    n = -(1 + 2 * diag) + ((1 + 2 * diag) ** 2 + 8 * n_vec + 4 * abs(diag) * (diag + 1)) ** 0.5
    n = round(n / 2)
    if len(np.tril_indices(n, diag)[0]) != n_vec:
        raise ValueError("The size of last dimension is not a triangular number")
    flat = vec @ _tril_selector(n, diag, vec)  # (..., n*n)
    return flat.reshape(tuple(vec.shape[:-1]) + (n, n))


def tril_matrix_to_vec(mat: Tensor, diag: int = 0) -> Tensor:
    """The entries at and below diagonal `diag` of (..., n, n), row-major: (..., N)."""
    n = mat.shape[-1]
    flat = mat.reshape(tuple(mat.shape[:-2]) + (n * n,))
    return flat @ _tril_selector(n, diag, mat).mT
