"""Distributions over matrices: Wishart and LKJCholesky.

Wishart(df, covariance_matrix= | precision_matrix= | scale_tril=) over p x p
positive-definite matrices: the distribution of X X^T for df columns X ~ N(0, Sigma).

* rsample: Bartlett's decomposition, Sigma^1/2 A A^T Sigma^1/2 with A lower-triangular,
  A_ii = sqrt(Chi2(df - i)) and A_ij ~ N(0, 1) below the diagonal: differentiable in Sigma and
  (through Chi2's implicit Gamma gradient) in df.
* log_prob(V) = -df (p log 2 / 2 + log|L|) - log Gamma_p(df / 2)
  + (df - p - 1) / 2 log|V| - tr(Sigma^{-1} V) / 2, with Sigma = L L^T.

PyTorch's formulas; its resampling of numerically singular draws (only likely for
p - 1 < df < p) is not done here.

LKJCholesky(dim, concentration) over lower Cholesky factors L of dim x dim correlation
matrices, with density proportional to det(L L^T)^(concentration - 1) for L L^T: drawn by the
onion method (Lewandowski, Kurowicka & Joe 2009), as PyTorch.
"""

from __future__ import annotations

import math
import warnings
from numbers import Number

import numpy as np

from ..creation import arange, eye, tensor
from ..ops.shape import cat
from ..special_torch import mvlgamma
from ..tensor import Size, Tensor
from . import constraints
from .continuous import Beta, Chi2
from .distribution import Distribution
from .exp_family import ExponentialFamily
from .multivariate_normal import _precision_to_scale_tril
from .utils import broadcast_all, cholesky, lazy_property, solve_lower, standard_normal

__all__ = ["LKJCholesky", "Wishart"]

_LOG_2 = math.log(2)


def _mvdigamma(x: Tensor, p: int) -> Tensor:
    """The multivariate digamma: sum_{i<p} digamma(x - i/2)."""
    half = arange(p, dtype=x.dtype, device=x.device) / 2
    return (x.unsqueeze(-1) - half).digamma().sum(-1)


class Wishart(ExponentialFamily):
    """Wishart over p x p positive-definite matrices with df > p - 1 degrees of freedom."""

    support = constraints.positive_definite
    has_rsample = True

    @property
    def arg_constraints(self) -> dict:
        return {"covariance_matrix": constraints.positive_definite,
                "precision_matrix": constraints.positive_definite,
                "scale_tril": constraints.lower_cholesky,
                "df": constraints.greater_than(self.event_shape[-1] - 1)}  # fmt: skip

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None) -> None:  # fmt: skip
        given = [m for m in (covariance_matrix, precision_matrix, scale_tril) if m is not None]
        if len(given) != 1:  # PyTorch raises an AssertionError here
            raise AssertionError("Exactly one of covariance_matrix or precision_matrix or "
                                 "scale_tril may be specified.")  # fmt: skip
        param = given[0]
        if param.ndim < 2:
            raise ValueError("scale_tril must be at least two-dimensional, with optional "
                             "leading batch dimensions")  # fmt: skip
        if isinstance(df, Number):
            batch_shape = tuple(param.shape[:-2])
            self.df = tensor(df, dtype=param.dtype, device=param.device)
        else:
            batch_shape = tuple(np.broadcast_shapes(tuple(param.shape[:-2]), tuple(df.shape)))
            self.df = df.expand(batch_shape)
        event_shape = tuple(param.shape[-2:])
        p = event_shape[-1]
        if bool((self.df <= p - 1).any()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        if scale_tril is not None:
            self.scale_tril = param.expand(batch_shape + (-1, -1))
        elif covariance_matrix is not None:
            self.covariance_matrix = param.expand(batch_shape + (-1, -1))
        else:
            self.precision_matrix = param.expand(batch_shape + (-1, -1))
        if bool((self.df < p).any()):
            warnings.warn("Low df values detected. Singular samples are highly likely to occur "
                          "for ndim - 1 < df < ndim.", stacklevel=2)  # fmt: skip
        super().__init__(batch_shape, event_shape, validate_args=validate_args)
        if scale_tril is not None:
            self._unbroadcasted_scale_tril = scale_tril
        elif covariance_matrix is not None:
            self._unbroadcasted_scale_tril = cholesky(covariance_matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(precision_matrix)
        self._dist_chi2 = self._chi2()

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        p = self._event_shape[-1]
        return -self.precision_matrix / 2, (self.df - p - 1) / 2

    def _log_normalizer(self, x, y):
        p = self._event_shape[-1]
        log_det = 2 * cholesky(-2 * x).diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return (y + (p + 1) / 2) * (-log_det + _LOG_2 * p) + mvlgamma(y + (p + 1) / 2, p)

    def _chi2(self) -> Chi2:
        """Chi2(df - i) for the diagonal of Bartlett's factor, i = 0 .. p-1: batch + (p,)."""
        p = self._event_shape[-1]
        lo = self._unbroadcasted_scale_tril
        steps = arange(p, dtype=lo.dtype, device=lo.device)
        return Chi2(self.df.unsqueeze(-1) - steps.expand(tuple(self._batch_shape) + (p,)))

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Wishart, _instance)
        batch_shape = Size(batch_shape)
        cov_shape = batch_shape + self.event_shape
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril.expand(cov_shape)
        new.df = self.df.expand(batch_shape)
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name].expand(cov_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._dist_chi2 = new._chi2()
        new._validate_args = self._validate_args
        return new

    def _matrix_shape(self) -> tuple:
        return tuple(self._batch_shape) + tuple(self._event_shape)

    @lazy_property
    def scale_tril(self) -> Tensor:
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        lo = self._unbroadcasted_scale_tril
        return (lo @ lo.mT).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self) -> Tensor:
        lo = self._unbroadcasted_scale_tril
        ident = eye(lo.shape[-1], dtype=lo.dtype, device=lo.device)
        l_inv = solve_lower(lo, ident.expand(tuple(lo.shape)))
        return (l_inv.mT @ l_inv).expand(self._matrix_shape())

    def _df_matrix(self) -> Tensor:
        return self.df.reshape(tuple(self._batch_shape) + (1, 1))

    @property
    def mean(self) -> Tensor:
        return self._df_matrix() * self.covariance_matrix

    @property
    def mode(self) -> Tensor:
        factor = self.df - self.covariance_matrix.shape[-1] - 1
        factor = factor.where(factor > 0, math.nan)
        return factor.reshape(tuple(self._batch_shape) + (1, 1)) * self.covariance_matrix

    @property
    def variance(self) -> Tensor:
        v = self.covariance_matrix
        d = v.diagonal(dim1=-2, dim2=-1)
        return self._df_matrix() * (v.pow(2) + d.unsqueeze(-1) * d.unsqueeze(-2))

    def rsample(self, sample_shape=()) -> Tensor:
        sample_shape = tuple(sample_shape)
        eps = float(np.finfo(np.dtype(self.df.dtype)).eps)
        diag = self._dist_chi2.rsample(sample_shape).sqrt().clamp(min=eps)  # (S, B, p)
        lower = standard_normal(sample_shape + self._matrix_shape(), self.df).tril(-1)
        noise = lower + diag.diag_embed()  # Bartlett's A: (S, B, p, p)
        chol = self._unbroadcasted_scale_tril @ noise
        return chol @ chol.mT

    def _half_log_det_scale(self) -> Tensor:
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        nu = self.df
        p = self._event_shape[-1]
        lo = self._unbroadcasted_scale_tril
        log_det_v = 2 * cholesky(value).diagonal(dim1=-2, dim2=-1).log().sum(-1)
        # tr(Sigma^{-1} V) = tr(L^{-1} V L^{-T}) for symmetric V
        inner = solve_lower(lo, solve_lower(lo, value).mT)
        trace = inner.diagonal(dim1=-2, dim2=-1).sum(-1)
        return (-nu * (p * _LOG_2 / 2 + self._half_log_det_scale()) - mvlgamma(nu / 2, p)
                + (nu - p - 1) / 2 * log_det_v - trace / 2)  # fmt: skip

    def entropy(self) -> Tensor:
        nu = self.df
        p = self._event_shape[-1]
        return ((p + 1) * (p * _LOG_2 / 2 + self._half_log_det_scale())
                + mvlgamma(nu / 2, p) - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p)
                + nu * p / 2)  # fmt: skip


class LKJCholesky(Distribution):
    """LKJ distribution of correlation matrices, over their lower Cholesky factors."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim: int, concentration=1.0, validate_args=None) -> None:
        if dim < 2:
            raise ValueError(
                f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}."
            )
        self.dim = dim
        (self.concentration,) = broadcast_all(concentration)
        c = self.concentration
        # row i >= 1 of L: its squared off-diagonal norm y_i ~ Beta(i/2, conc + (dim-1-i)/2)
        # (the onion method, LKJ 2009 section 3.2); row 0 has none (a dummy draw, unused).
        # PyTorch passes (i - 1) + 1/2 as the first concentration, which is i/2 only for
        # i = 1: its draws of dim >= 3 do not follow its own log_prob (off-diagonal
        # correlations beyond the first row come out too spread; see docs/distributions.md).
        marginal = c + 0.5 * (dim - 2)
        offset = arange(dim - 1, dtype=c.dtype, device=c.device)
        offset = cat([offset[:1] * 0, offset])  # (dim,): 0, 0, 1, ..., dim - 2
        self._beta = Beta(0.5 * (offset + 1), marginal.unsqueeze(-1) - 0.5 * offset)
        super().__init__(c.size(), (dim, dim), validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LKJCholesky, _instance)
        batch_shape = Size(batch_shape)
        new.dim = self.dim
        new.concentration = self.concentration.expand(batch_shape)
        new._beta = self._beta.expand(batch_shape + (self.dim,))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=()) -> Tensor:
        from .. import autograd

        with autograd.no_grad():
            y = self._beta.sample(sample_shape).unsqueeze(-1)  # (S, B, dim, 1)
            u = standard_normal(self._extended_shape(sample_shape), y).tril(-1)
            norm = (u**2).sum(-1, keepdim=True).sqrt()
            first = arange(self.dim, device=u.device).reshape(-1, 1) == 0
            u_sphere = (u / norm.where(~first, 1.0)).where(~first, 0.0)  # row 0: zeros
            w = y.sqrt() * u_sphere
            tiny = float(np.finfo(np.dtype(w.dtype)).tiny)
            diag = (1 - (w**2).sum(-1)).clamp(min=tiny).sqrt()
            return w + diag.diag_embed()

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        diag = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = arange(2, self.dim + 1, dtype=self.concentration.dtype,
                       device=self.concentration.device)  # fmt: skip
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized = (order * diag.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        normalize = (
            0.5 * dm1 * math.log(math.pi) + mvlgamma(alpha - 0.5, dm1) - alpha.lgamma() * dm1
        )
        return unnormalized - normalize
