"""More transforms (torch.distributions.transforms): CorrCholeskyTransform (unconstrained
vectors of size D(D-1)/2 -> Cholesky factors of D x D correlation matrices, Stan's map: tanh,
then stick breaking on squared rows), CumulativeDistributionTransform (a distribution's cdf),
ReshapeTransform, and CatTransform / StackTransform (a transform per slice).
"""

from __future__ import annotations

import math

import numpy as np

from ..creation import eye
from ..ops.activation import softplus
from ..ops.shape import cat
from ..tensor import Size, Tensor
from . import constraints
from .transforms import Transform
from .utils import tril_matrix_to_vec, vec_to_tril_matrix

__all__ = ["CatTransform", "CorrCholeskyTransform", "CumulativeDistributionTransform",
           "ReshapeTransform", "StackTransform"]  # fmt: skip


def _select(z: Tensor, dim: int, i: int) -> Tensor:
    """z.select(dim, i): the slice at index i of dimension dim, that dimension removed."""
    return z[(slice(None),) * (dim % z.ndim) + (i,)]


def _pad_left_one(t: Tensor) -> Tensor:
    """t with a column of ones prepended on the last dimension, its last column dropped."""
    return cat([t[..., :1] * 0 + 1, t[..., :-1]], -1)


class CorrCholeskyTransform(Transform):
    """x (..., D(D-1)/2) -> L (..., D, D), lower-triangular with unit-norm rows and a positive
    diagonal (so L L^T is a correlation matrix): r = tanh(x) laid out below the diagonal, then
    each row scaled by the stick left over, sqrt(prod (1 - r_k^2)) of the earlier entries."""

    domain = constraints.real_vector
    codomain = constraints.corr_cholesky
    bijective = True

    def __eq__(self, other) -> bool:
        return isinstance(other, CorrCholeskyTransform)

    __hash__ = object.__hash__

    @staticmethod
    def _dim(n: int) -> int:
        d = round((0.25 + 2 * n) ** 0.5 + 0.5)
        if d * (d - 1) // 2 != n:
            raise ValueError("Input is not a flattend lower-diagonal number")
        return d

    def _call(self, x):
        eps = float(np.finfo(np.dtype(x.dtype)).eps)
        x = x.tanh().clamp(min=-1 + eps, max=1 - eps)
        d = self._dim(x.shape[-1])
        r = vec_to_tril_matrix(x, diag=-1)  # (..., D, D), zero on and above the diagonal
        stick = (1 - r**2).sqrt().cumprod(-1)  # what is left of each row's unit norm
        r = r + eye(d, dtype=r.dtype, device=r.device)  # diagonal 1 before the scaling
        return r * _pad_left_one(stick)

    def _inverse(self, y):
        # inverse stick breaking (Stan reference manual, "Cholesky factors of correlation
        # matrices"): t = y_ij / sqrt(1 - sum_{k<j} y_ik^2), x = atanh(t)
        left = _pad_left_one(1 - (y * y).cumsum(-1))
        t = tril_matrix_to_vec(y, diag=-1) / tril_matrix_to_vec(left, diag=-1).sqrt()
        return ((t).log1p() - (-t).log1p()) / 2

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        # of x and the flattened lower triangle of y (the spaces differ in dimension)
        y1m_cumsum = 1 - (y * y).cumsum(-1)
        stick_logdet = 0.5 * tril_matrix_to_vec(y1m_cumsum, diag=-2).log().sum(-1)
        tanh_logdet = -2 * (x + softplus(-2 * x) - math.log(2.0)).sum(-1)
        return stick_logdet + tanh_logdet

    def forward_shape(self, shape):
        d = self._dim(shape[-1])
        return tuple(shape[:-1]) + (d, d)

    def inverse_shape(self, shape):
        if len(shape) < 2:
            raise ValueError("Too few dimensions on input")
        if shape[-2] != shape[-1]:
            raise ValueError("Input is not square")
        d = shape[-1]
        return tuple(shape[:-2]) + (d * (d - 1) // 2,)


class CumulativeDistributionTransform(Transform):
    """y = distribution.cdf(x), onto [0, 1]; log|dy/dx| = distribution.log_prob(x)."""

    bijective = True
    codomain = constraints.unit_interval
    sign = 1

    def __init__(self, distribution, cache_size: int = 0) -> None:
        super().__init__(cache_size=cache_size)
        self.distribution = distribution

    @property
    def domain(self):
        return self.distribution.support

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return CumulativeDistributionTransform(self.distribution, cache_size=cache_size)

    def _call(self, x):
        return self.distribution.cdf(x)

    def _inverse(self, y):
        return self.distribution.icdf(y)

    def log_abs_det_jacobian(self, x, y):
        return self.distribution.log_prob(x)


class ReshapeTransform(Transform):
    """Reshapes the rightmost dims from in_shape to out_shape (same number of elements);
    log|det| = 0."""

    bijective = True

    def __init__(self, in_shape, out_shape, cache_size: int = 0) -> None:
        self.in_shape = Size(in_shape)
        self.out_shape = Size(out_shape)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError("in_shape, out_shape have different numbers of elements")
        super().__init__(cache_size=cache_size)

    @property
    def domain(self):
        return constraints.independent(constraints.real, len(self.in_shape))

    @property
    def codomain(self):
        return constraints.independent(constraints.real, len(self.out_shape))

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return ReshapeTransform(self.in_shape, self.out_shape, cache_size=cache_size)

    def _call(self, x):
        batch = tuple(x.shape[: x.ndim - len(self.in_shape)])
        return x.reshape(batch + tuple(self.out_shape))

    def _inverse(self, y):
        batch = tuple(y.shape[: y.ndim - len(self.out_shape)])
        return y.reshape(batch + tuple(self.in_shape))

    def log_abs_det_jacobian(self, x, y):
        batch = tuple(x.shape[: x.ndim - len(self.in_shape)])
        return (x * 0).reshape(batch + (-1,)).sum(-1)

    def forward_shape(self, shape):
        if len(shape) < len(self.in_shape):
            raise ValueError("Too few dimensions on input")
        cut = len(shape) - len(self.in_shape)
        if tuple(shape[cut:]) != tuple(self.in_shape):
            raise ValueError(f"Shape mismatch: expected {shape[cut:]} but got {self.in_shape}")
        return tuple(shape[:cut]) + tuple(self.out_shape)

    def inverse_shape(self, shape):
        if len(shape) < len(self.out_shape):
            raise ValueError("Too few dimensions on input")
        cut = len(shape) - len(self.out_shape)
        if tuple(shape[cut:]) != tuple(self.out_shape):
            raise ValueError(f"Shape mismatch: expected {shape[cut:]} but got {self.out_shape}")
        return tuple(shape[:cut]) + tuple(self.in_shape)


class CatTransform(Transform):
    """Applies tseq[i] to the i-th slice (of lengths[i]) of `dim` and concatenates."""

    def __init__(self, tseq, dim: int = 0, lengths=None, cache_size: int = 0) -> None:
        if not all(isinstance(t, Transform) for t in tseq):
            raise ValueError("CatTransform: every part must be a Transform")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = list(tseq)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.transforms)
        if len(self.lengths) != len(self.transforms):
            raise ValueError("CatTransform: lengths and transforms differ in number")
        self.dim = dim

    @property
    def event_dim(self) -> int:
        return max(t.event_dim for t in self.transforms)

    @property
    def length(self) -> int:
        return sum(self.lengths)

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return CatTransform(self.transforms, self.dim, self.lengths, cache_size)

    def _pieces(self, fn, x):
        out, start = [], 0
        for t, n in zip(self.transforms, self.lengths, strict=True):
            out.append(fn(t, x.narrow(self.dim, start, n)))
            start += n
        return cat(out, self.dim)

    def _call(self, x):
        return self._pieces(lambda t, s: t(s), x)

    def _inverse(self, y):
        return self._pieces(lambda t, s: t.inv(s), y)

    def log_abs_det_jacobian(self, x, y):
        from .utils import sum_rightmost

        terms, start = [], 0
        for t, n in zip(self.transforms, self.lengths, strict=True):
            term = t.log_abs_det_jacobian(
                x.narrow(self.dim, start, n), y.narrow(self.dim, start, n)
            )
            if t.event_dim < self.event_dim:
                term = sum_rightmost(term, self.event_dim - t.event_dim)
            terms.append(term)
            start += n
        dim = (self.dim - x.ndim if self.dim >= 0 else self.dim) + self.event_dim
        if dim < 0:  # the concatenated dim is still a batch dim of the log-det
            return cat(terms, dim)
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    @property
    def bijective(self) -> bool:
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self):
        return constraints.cat([t.domain for t in self.transforms], self.dim, self.lengths)

    @property
    def codomain(self):
        return constraints.cat([t.codomain for t in self.transforms], self.dim, self.lengths)


class StackTransform(Transform):
    """Applies tseq[i] to x.select(dim, i) and stacks the results along dim."""

    def __init__(self, tseq, dim: int = 0, cache_size: int = 0) -> None:
        if not all(isinstance(t, Transform) for t in tseq):
            raise ValueError("StackTransform: every part must be a Transform")
        if cache_size:
            tseq = [t.with_cache(cache_size) for t in tseq]
        super().__init__(cache_size=cache_size)
        self.transforms = list(tseq)
        self.dim = dim

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return StackTransform(self.transforms, self.dim, cache_size)

    def _slices(self, z):
        return [_select(z, self.dim, i) for i in range(z.shape[self.dim])]

    def _call(self, x):
        from ..ops.shape import stack

        pieces = self._slices(x)
        return stack([t(s) for t, s in zip(self.transforms, pieces, strict=True)], self.dim)

    def _inverse(self, y):
        from ..ops.shape import stack

        pieces = self._slices(y)
        return stack([t.inv(s) for t, s in zip(self.transforms, pieces, strict=True)], self.dim)

    def log_abs_det_jacobian(self, x, y):
        from ..ops.shape import stack

        terms = [t.log_abs_det_jacobian(a, b) for t, a, b in
                 zip(self.transforms, self._slices(x), self._slices(y), strict=True)]  # fmt: skip
        return stack(terms, self.dim)

    @property
    def bijective(self) -> bool:
        return all(t.bijective for t in self.transforms)

    @property
    def domain(self):
        return constraints.stack([t.domain for t in self.transforms], self.dim)

    @property
    def codomain(self):
        return constraints.stack([t.codomain for t in self.transforms], self.dim)
