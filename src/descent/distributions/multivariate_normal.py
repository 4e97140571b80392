"""MultivariateNormal(loc, covariance_matrix= | precision_matrix= | scale_tril=).

Everything runs through the lower Cholesky factor L of the covariance (Sigma = L L^T), kept
unbroadcast (`_unbroadcasted_scale_tril`) so a batch of means can share one factor:

* rsample:  loc + L eps,  eps ~ N(0, I)
* log_prob: -(n log(2 pi) + |L^{-1}(x - loc)|^2) / 2 - sum(log diag L)
* entropy:  n (1 + log(2 pi)) / 2 + sum(log diag L)

L comes from `utils.cholesky` (a node: covariance_matrix is differentiable) or, for a
precision matrix P, from the Cholesky factor of P flipped (PyTorch's way, no explicit inverse).
Gradients reach loc and every matrix parameter; the Cholesky and triangular-solve nodes
differentiate once (not twice: create_graph through them raises).
"""

from __future__ import annotations

import math

import numpy as np

from ..creation import eye
from ..ops.shape import flip
from ..tensor import Size, Tensor
from . import constraints
from .distribution import Distribution
from .utils import (
    as_float_tensor,
    batch_mahalanobis,
    cholesky,
    lazy_property,
    solve_lower,
    standard_normal,
)

__all__ = ["MultivariateNormal"]


def _precision_to_scale_tril(p: Tensor) -> Tensor:
    """L with L L^T = P^{-1}, PyTorch's recipe: flip(P) = Lf Lf^T (flip: both axes reversed)
    gives P = U U^T with U = flip(Lf) upper-triangular, so P^{-1} = U^{-T} U^{-1} and
    L = U^{-T} = (U^T)^{-1}, one lower-triangular solve against the identity."""
    lf = cholesky(flip(p, (-2, -1)))
    l_inv = flip(lf, (-2, -1)).mT  # U^T: lower-triangular
    ident = eye(p.shape[-1], dtype=p.dtype, device=p.device)
    return solve_lower(l_inv, ident.expand(tuple(l_inv.shape)))


class MultivariateNormal(Distribution):
    """N(loc, Sigma) over vectors of size n = loc.shape[-1], given by exactly one of the
    covariance Sigma, its inverse (precision) or its lower Cholesky factor scale_tril."""

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}  # fmt: skip
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None) -> None:  # fmt: skip
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        given = [m is not None for m in (covariance_matrix, precision_matrix, scale_tril)]
        if sum(given) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril "
                             "may be specified.")  # fmt: skip
        matrix = next(m for m in (covariance_matrix, precision_matrix, scale_tril)
                      if m is not None)  # fmt: skip
        if matrix.ndim < 2:
            name = ("covariance_matrix", "precision_matrix", "scale_tril")[given.index(True)]
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional "
                             "leading batch dimensions")  # fmt: skip
        batch_shape = tuple(np.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1])))
        n = loc.shape[-1]
        if matrix.shape[-2:] != (n, n):
            raise ValueError(
                f"MultivariateNormal: the matrix's shape {tuple(matrix.shape)} does not end in "
                f"({n}, {n}) for loc of shape {tuple(loc.shape)}"
            )
        if scale_tril is not None:
            self.scale_tril = scale_tril.expand(batch_shape + (-1, -1))
        elif covariance_matrix is not None:
            self.covariance_matrix = covariance_matrix.expand(batch_shape + (-1, -1))
        else:
            self.precision_matrix = precision_matrix.expand(batch_shape + (-1, -1))
        self.loc = loc.expand(batch_shape + (-1,))
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateNormal, _instance)
        batch_shape = Size(batch_shape)
        loc_shape = batch_shape + self.event_shape
        cov_shape = batch_shape + self.event_shape + self.event_shape
        new.loc = self.loc.expand(loc_shape)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(cov_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @lazy_property
    def scale_tril(self) -> Tensor:
        return self._unbroadcasted_scale_tril.expand(
            tuple(self._batch_shape) + tuple(self._event_shape) * 2
        )

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        lo = self._unbroadcasted_scale_tril
        return (lo @ lo.mT).expand(tuple(self._batch_shape) + tuple(self._event_shape) * 2)

    @lazy_property
    def precision_matrix(self) -> Tensor:
        lo = self._unbroadcasted_scale_tril
        ident = eye(lo.shape[-1], dtype=lo.dtype, device=lo.device)
        l_inv = solve_lower(lo, ident.expand(tuple(lo.shape)))  # L^{-1}
        return (l_inv.mT @ l_inv).expand(tuple(self._batch_shape) + tuple(self._event_shape) * 2)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return (self._unbroadcasted_scale_tril.pow(2).sum(-1)
                .expand(tuple(self._batch_shape) + tuple(self._event_shape)))  # fmt: skip

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        eps = standard_normal(shape, self.loc)  # (S..., B..., n)
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self) -> Tensor:
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self.loc)
        diff = value - self.loc
        m = batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + m) - self._half_log_det()

    def entropy(self) -> Tensor:
        n = self._event_shape[0]
        h = 0.5 * n * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        if len(self._batch_shape) == 0:
            return h
        return h.expand(tuple(self._batch_shape))
