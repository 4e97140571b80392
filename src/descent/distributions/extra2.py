"""ContinuousBernoulli; InverseGamma, Kumaraswamy and LogisticNormal (transformed
distributions, as PyTorch builds them); FisherSnedecor; LowRankMultivariateNormal (Woodbury
identity and matrix determinant lemma: only an m x m "capacitance" matrix is factorised for a
rank-m covariance factor). PyTorch's formulas throughout.
"""

from __future__ import annotations

import math
from numbers import Number

from ..creation import eye, full_like
from ..creation_random import draws_through_ops as _draws_through_ops
from ..dtypes import finfo
from ..tensor import Size, Tensor
from ..torch_functions import broadcast_tensors
from . import constraints
from .continuous import Gamma, Normal, Uniform
from .distribution import Distribution, _all_hold
from .exp_family import ExponentialFamily
from .extra import _EULER_GAMMA, _Transformed
from .transformed_distribution import TransformedDistribution
from .transforms import AffineTransform, PowerTransform, StickBreakingTransform
from .utils import (
    batch_mahalanobis,
    broadcast_all,
    cholesky,
    clamp_probs,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
    solve_lower,
    standard_normal,
)

__all__ = ["ContinuousBernoulli", "FisherSnedecor", "GeneralizedPareto", "InverseGamma",
           "Kumaraswamy", "LogisticNormal", "LowRankMultivariateNormal", "VonMises"]  # fmt: skip


class InverseGamma(_Transformed):
    """1 / Gamma(concentration, rate)."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None) -> None:
        base = Gamma(concentration, rate, validate_args=validate_args)
        neg_one = -base.rate.new_ones(())  # a tensor: its sign makes cdf monotone
        super().__init__(base, PowerTransform(neg_one), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(InverseGamma, _instance)
        return TransformedDistribution.expand(self, batch_shape, _instance=new)

    @property
    def concentration(self) -> Tensor:
        return self.base_dist.concentration

    @property
    def rate(self) -> Tensor:
        return self.base_dist.rate

    @property
    def mean(self) -> Tensor:
        a = self.concentration
        return (self.rate / (a - 1)).where(a > 1, math.inf)

    @property
    def mode(self) -> Tensor:
        return self.rate / (self.concentration + 1)

    @property
    def variance(self) -> Tensor:
        a = self.concentration
        return (self.rate.square() / ((a - 1).square() * (a - 2))).where(a > 2, math.inf)

    def entropy(self) -> Tensor:
        a = self.concentration
        return a + self.rate.log() + a.lgamma() - (1 + a) * a.digamma()


def _kumaraswamy_moment(a: Tensor, b: Tensor, n: int) -> Tensor:
    """E[x^n] = b B(1 + n/a, b) for Kumaraswamy(a, b)."""
    arg1 = 1 + n / a
    return b * (arg1.lgamma() + b.lgamma() - (arg1 + b).lgamma()).exp()


class Kumaraswamy(_Transformed):
    """Kumaraswamy(a = concentration1, b = concentration0) on (0, 1): density
    a b x^(a-1) (1 - x^a)^(b-1); x = (1 - u^(1/b))^(1/a), u ~ U(0, 1)."""

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}  # fmt: skip
    support = constraints.unit_interval
    has_rsample = True
    _params = ("concentration1", "concentration0")

    def __init__(self, concentration1, concentration0, validate_args=None) -> None:
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        c0 = self.concentration0
        base = Uniform(full_like(c0, 0), full_like(c0, 1), validate_args=validate_args)
        transforms = [PowerTransform(exponent=c0.reciprocal()),
                      AffineTransform(loc=1.0, scale=-1.0),
                      PowerTransform(exponent=self.concentration1.reciprocal())]  # fmt: skip
        super().__init__(base, transforms, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return _kumaraswamy_moment(self.concentration1, self.concentration0, 1)

    @property
    def mode(self) -> Tensor:
        # ((a - 1) / (a b - 1))^(1/a) where a, b >= 1 (PyTorch's formula gives nan there:
        # see docs/distributions.md), nan otherwise
        a, b = self.concentration1, self.concentration0
        log_mode = ((a - 1).log() - (a * b - 1).log()) / a
        return log_mode.exp().where((a >= 1) & (b >= 1), math.nan)

    @property
    def variance(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        return _kumaraswamy_moment(a, b, 2) - self.mean.pow(2)

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        t1 = 1 - a.reciprocal()
        t0 = 1 - b.reciprocal()
        h0 = (b + 1).digamma() + _EULER_GAMMA
        return t0 + t1 * h0 - a.log() - b.log()


class LogisticNormal(TransformedDistribution):
    """StickBreakingTransform(Normal(loc, scale)): a point of the simplex with K = n + 1
    coordinates from n normal logits."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None) -> None:
        base = Normal(loc, scale, validate_args=validate_args)
        if not base.batch_shape:
            base = base.expand([1])
        super().__init__(base, StickBreakingTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogisticNormal, _instance)
        return TransformedDistribution.expand(self, batch_shape, _instance=new)

    @property
    def loc(self) -> Tensor:
        return self.base_dist.base_dist.loc

    @property
    def scale(self) -> Tensor:
        return self.base_dist.base_dist.scale


class FisherSnedecor(Distribution):
    """F(df1, df2) = (Chi2(df1) / df1) / (Chi2(df2) / df2), as a ratio of Gamma draws."""

    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True
    _expand_params = ("df1", "df2")

    def __init__(self, df1, df2, validate_args=None) -> None:
        self.df1, self.df2 = broadcast_all(df1, df2)
        self._gamma1 = Gamma(self.df1 * 0.5, self.df1)
        self._gamma2 = Gamma(self.df2 * 0.5, self.df2)
        numbers = isinstance(df1, Number) and isinstance(df2, Number)
        super().__init__(Size() if numbers else self.df1.size(), validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        df2 = self.df2.where(self.df2 > 2, math.nan)
        return df2 / (df2 - 2)

    @property
    def mode(self) -> Tensor:
        mode = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return mode.where(self.df1 > 2, math.nan)

    @property
    def variance(self) -> Tensor:
        df2 = self.df2.where(self.df2 > 4, math.nan)
        return (2 * df2.pow(2) * (self.df1 + df2 - 2)
                / (self.df1 * (df2 - 2).pow(2) * (df2 - 4)))  # fmt: skip

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        x1 = self._gamma1.rsample(sample_shape).reshape(shape)
        x2 = self._gamma2.rsample(sample_shape).reshape(shape)
        tiny = finfo(x2.dtype).tiny
        x2.detach().clamp_(min=tiny)
        y = x1 / x2
        y.detach().clamp_(min=tiny)
        return y

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        ct1, ct2 = self.df1 * 0.5, self.df2 * 0.5
        ct3 = self.df1 / self.df2
        t1 = (ct1 + ct2).lgamma() - ct1.lgamma() - ct2.lgamma()
        t2 = ct1 * ct3.log() + (ct1 - 1) * value.log()
        t3 = (ct1 + ct2) * (ct3 * value).log1p()
        return t1 + t2 - t3


def _mv(mat: Tensor, vec: Tensor) -> Tensor:
    return (mat @ vec.unsqueeze(-1)).squeeze(-1)


class LowRankMultivariateNormal(Distribution):
    """N(loc, W W^T + diag(D)) with W = cov_factor (..., n, m) and D = cov_diag (..., n).
    log_prob and entropy use the capacitance C = I + W^T D^{-1} W (m x m):
    |Sigma| = |C| |D| and Sigma^{-1} = D^{-1} - D^{-1} W C^{-1} W^T D^{-1}."""

    arg_constraints = {"loc": constraints.real_vector,
                       "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}  # fmt: skip
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None) -> None:
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        event_shape = tuple(loc.shape[-1:])
        if cov_factor.ndim < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional "
                             "leading batch dimensions")  # fmt: skip
        if tuple(cov_factor.shape[-2:-1]) != event_shape:
            raise ValueError(
                f"cov_factor must be a batch of matrices with shape {event_shape[0]} x m"
            )
        if tuple(cov_diag.shape[-1:]) != event_shape:
            raise ValueError(f"cov_diag must be a batch of vectors with shape {event_shape}")
        try:
            loc_, self.cov_factor, diag_ = broadcast_tensors(
                loc.unsqueeze(-1), cov_factor, cov_diag.unsqueeze(-1)
            )
        except Exception as e:
            raise ValueError(
                f"Incompatible batch shapes: loc {tuple(loc.shape)}, cov_factor "
                f"{tuple(cov_factor.shape)}, cov_diag {tuple(cov_diag.shape)}"
            ) from e
        self.loc = loc_[..., 0]
        self.cov_diag = diag_[..., 0]
        self._unbroadcasted_cov_factor = cov_factor
        self._unbroadcasted_cov_diag = cov_diag
        self._capacitance_tril = self._capacitance(cov_factor, cov_diag)
        super().__init__(self.loc.shape[:-1], event_shape, validate_args=validate_args)

    @staticmethod
    def _capacitance(w: Tensor, d: Tensor) -> Tensor:
        """cholesky(I + W^T D^{-1} W)."""
        m = w.shape[-1]
        k = (w.mT / d.unsqueeze(-2)) @ w
        return cholesky(k + eye(m, dtype=k.dtype, device=k.device))

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LowRankMultivariateNormal, _instance)
        batch_shape = Size(batch_shape)
        loc_shape = batch_shape + self.event_shape
        new.loc = self.loc.expand(loc_shape)
        new.cov_diag = self.cov_diag.expand(loc_shape)
        new.cov_factor = self.cov_factor.expand(loc_shape + tuple(self.cov_factor.shape[-1:]))
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    def _full(self, t: Tensor, matrix: bool = True) -> Tensor:
        tail = tuple(self._event_shape) * (2 if matrix else 1)
        return t.expand(tuple(self._batch_shape) + tail)

    @lazy_property
    def variance(self) -> Tensor:
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        return self._full(w.pow(2).sum(-1) + d, matrix=False)

    @lazy_property
    def scale_tril(self) -> Tensor:
        # W W^T + D = D^1/2 (I + D^-1/2 W W^T D^-1/2) D^1/2: the middle factor's eigenvalues
        # are >= 1, so its Cholesky factorisation is well conditioned (GPML, section 3.4.3)
        n = self._event_shape[0]
        d_sqrt = self._unbroadcasted_cov_diag.sqrt().unsqueeze(-1)
        dw = self._unbroadcasted_cov_factor / d_sqrt
        k = dw @ dw.mT + eye(n, dtype=dw.dtype, device=dw.device)
        return self._full(d_sqrt * cholesky(k))

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        n = self._event_shape[0]
        return self._full(w @ w.mT + d.unsqueeze(-1) * eye(n, dtype=d.dtype, device=d.device))

    @lazy_property
    def precision_matrix(self) -> Tensor:
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        n = self._event_shape[0]
        a = solve_lower(self._capacitance_tril, w.mT / d.unsqueeze(-2))  # C^{-1/2} W^T D^-1
        inv_d = d.reciprocal().unsqueeze(-1) * eye(n, dtype=d.dtype, device=d.device)
        return self._full(inv_d - a.mT @ a)

    def rsample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        eps_w = standard_normal(shape[:-1] + tuple(self.cov_factor.shape[-1:]), self.loc)
        eps_d = standard_normal(shape, self.loc)
        return (self.loc + _mv(self._unbroadcasted_cov_factor, eps_w)
                + self._unbroadcasted_cov_diag.sqrt() * eps_d)  # fmt: skip

    def _log_det(self) -> Tensor:
        diag = self._capacitance_tril.diagonal(dim1=-2, dim2=-1)
        return 2 * diag.log().sum(-1) + self._unbroadcasted_cov_diag.log().sum(-1)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        w, d = self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag
        diff = value - self.loc
        wt_dinv = w.mT / d.unsqueeze(-2)
        m = (diff.pow(2) / d).sum(-1) - batch_mahalanobis(self._capacitance_tril,
                                                          _mv(wt_dinv, diff))  # fmt: skip
        n = self._event_shape[0]
        return -0.5 * (n * math.log(2 * math.pi) + self._log_det() + m)

    def entropy(self) -> Tensor:
        n = self._event_shape[0]
        h = 0.5 * (n * (1.0 + math.log(2 * math.pi)) + self._log_det())
        return h if len(self._batch_shape) == 0 else h.expand(tuple(self._batch_shape))


class ContinuousBernoulli(ExponentialFamily):
    """The continuous Bernoulli on [0, 1] (Loaiza-Ganem & Cunningham, NeurIPS 2019): density
    C(p) p^x (1 - p)^(1 - x). Near p = 1/2 (inside `lims`) the normaliser, mean and variance
    switch to their Taylor series, as PyTorch. rsample inverts the CDF of u ~ U(0, 1)."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    has_rsample = True
    _expand_params = ("probs", "logits", "_param")

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        given = probs if probs is not None else logits
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
            if validate_args is not None and not _all_hold(
                self.arg_constraints["probs"].check(self.probs)
            ):
                raise ValueError("The parameter probs has invalid values")
            self.probs = clamp_probs(self.probs)
        else:
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        self._lims = lims
        shape = Size() if isinstance(given, Number) else self._param.size()
        super().__init__(shape, validate_args=validate_args)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return (self.logits,)

    def _log_normalizer(self, x):
        """log((e^x - 1) / x), Taylor x/2 + x^2/24 - x^4/2880 near 0 (PyTorch's limits)."""
        lo, hi = self._lims[0] - 0.5, self._lims[1] - 0.5
        outside = (x <= lo) | (x > hi)
        cut = x.where(outside, lo)
        log_norm = cut.expm1().abs().log() - cut.abs().log()
        taylor = 0.5 * x + x.pow(2) / 24.0 - x.pow(4) / 2880.0
        return log_norm.where(outside, taylor)

    @property
    def param_shape(self) -> Size:
        return self._param.size()

    def _outside_unstable_region(self) -> Tensor:
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self) -> Tensor:
        # p moved off the unstable region (its value is then unused there)
        return self.probs.where(self._outside_unstable_region(), self._lims[0])

    def _cont_bern_log_norm(self) -> Tensor:
        """log C(p) = log(|log(1 - p) - log p| / |1 - 2p|), Taylor near p = 1/2."""
        p = self._cut_probs()
        below = p.where(p <= 0.5, 0.0)
        above = p.where(p >= 0.5, 1.0)
        log_norm = ((-p).log1p() - p.log()).abs().log() - (-2.0 * below).log1p().where(
            p <= 0.5, (2.0 * above - 1.0).log()
        )
        x = (self.probs - 0.5).pow(2)
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return log_norm.where(self._outside_unstable_region(), taylor)

    @property
    def mean(self) -> Tensor:
        p = self._cut_probs()
        mus = p / (2.0 * p - 1.0) + 1.0 / ((-p).log1p() - p.log())
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x.pow(2)) * x
        return mus.where(self._outside_unstable_region(), taylor)

    @property
    def variance(self) -> Tensor:
        p = self._cut_probs()
        var = p * (p - 1.0) / (1.0 - 2.0 * p).pow(2) + 1.0 / ((-p).log1p() - p.log()).pow(2)
        x = (self.probs - 0.5).pow(2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return var.where(self._outside_unstable_region(), taylor)

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def rsample(self, sample_shape=()) -> Tensor:
        from .utils import standard_uniform

        u = standard_uniform(self._extended_shape(sample_shape), self.probs)
        return self.icdf(u)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        from .discrete import bce_with_logits

        logits, value = broadcast_all(self.logits, value)
        return -bce_with_logits(logits, value) + self._cont_bern_log_norm()

    def cdf(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        p = self._cut_probs()
        cdfs = (p.pow(value) * (1.0 - p).pow(1.0 - value) + p - 1.0) / (2.0 * p - 1.0)
        unbounded = cdfs.where(self._outside_unstable_region(), value)
        return (value * 0).where(value <= 0.0, (value * 0 + 1).where(value >= 1.0, unbounded))

    def icdf(self, value) -> Tensor:
        p = self._cut_probs()
        inv = ((-p + value * (2.0 * p - 1.0)).log1p() - (-p).log1p()) / (p.log() - (-p).log1p())
        return inv.where(self._outside_unstable_region(), value)

    def entropy(self) -> Tensor:
        log_p0 = (-self.probs).log1p()
        log_p1 = self.probs.log()
        return self.mean * (log_p0 - log_p1) - self._cont_bern_log_norm() - log_p0


def _log_bessel_i(x: Tensor, order: int) -> Tensor:
    """log I_order(x) for x > 0 from the exponentially scaled Bessel functions (exact to
    rounding; PyTorch evaluates A&S 9.8.1-9.8.4's polynomial fits, ~1e-7 relative)."""
    from ..special import i0e, i1e

    return (i0e(x) if order == 0 else i1e(x)).log() + x


class VonMises(Distribution):
    """The circular von Mises distribution: density exp(k cos(x - loc)) / (2 pi I0(k)).
    `loc` and values are angles (any real, read modulo 2 pi); draws lie in [-pi, pi).
    Sampled by Best & Fisher's rejection method (Applied Statistics 1979) in float64."""

    arg_constraints = {"loc": constraints.real, "concentration": constraints.positive}
    support = constraints.real
    has_rsample = False
    _expand_params = ("loc", "concentration")

    def __init__(self, loc, concentration, validate_args=None) -> None:
        self.loc, self.concentration = broadcast_all(loc, concentration)
        super().__init__(self.loc.shape, (), validate_args)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        k = self.concentration
        return k * (value - self.loc).cos() - math.log(2 * math.pi) - _log_bessel_i(k, 0)

    @property
    def mean(self) -> Tensor:
        return self.loc  # the circular mean

    @property
    def mode(self) -> Tensor:
        return self.loc

    @lazy_property
    def variance(self) -> Tensor:
        """The circular variance 1 - I1(k) / I0(k)."""
        k = self.concentration
        return 1 - (_log_bessel_i(k, 1) - _log_bessel_i(k, 0)).exp()

    @_draws_through_ops  # (descent.compile replays its draws: the rounds are computed by ops)
    def sample(self, sample_shape=()) -> Tensor:
        from .. import autograd
        from ..creation import rand

        shape = tuple(self._extended_shape(sample_shape))
        with autograd.no_grad():
            loc = self.loc.double().expand(shape)
            kappa = self.concentration.double().expand(shape)
            tau = 1 + (1 + 4 * kappa**2).sqrt()
            rho = (tau - (2 * tau).sqrt()) / (2 * kappa)
            r = ((1 + rho**2) / (2 * rho)).where(kappa >= 1e-5, 1 / kappa + kappa)
            x = loc * 0
            done = x != x  # all False
            while not _all_hold(done):  # (a guarded shape: a program per count of rounds)
                # (three calls in sample's own frame: descent.compile takes draws from its code)
                u1 = rand(shape, dtype=loc.dtype, device=loc.device)
                u2 = rand(shape, dtype=loc.dtype, device=loc.device)
                u3 = rand(shape, dtype=loc.dtype, device=loc.device)
                z = (math.pi * u1).cos()
                f = (1 + r * z) / (r + z)
                c = kappa * (r - f)
                accept = ((c * (2 - c) - u2) > 0) | ((c / u2).log() + 1 - c >= 0)
                accept = accept & ~done  # keep the first accepted draw
                x = ((u3 - 0.5).sign() * f.acos()).where(accept, x)
                done = done | accept
            out = (x + math.pi + loc) % (2 * math.pi) - math.pi
            return out.type_as(self.loc)


class GeneralizedPareto(Distribution):
    """Generalized Pareto(loc, scale, concentration xi): survival (1 + xi z)^(-1/xi) with
    z = (x - loc) / scale (exp(-z) at xi = 0); support [loc, loc - scale/xi] for xi < 0, else
    [loc, inf). rsample inverts the CDF."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive,
                       "concentration": constraints.real}  # fmt: skip
    has_rsample = True
    _expand_params = ("loc", "scale", "concentration")

    def __init__(self, loc, scale, concentration, validate_args=None) -> None:
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        numbers = all(isinstance(v, Number) for v in (loc, scale, concentration))
        super().__init__(Size() if numbers else self.loc.size(), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        c = self.concentration
        upper = (self.loc - self.scale / c).where(c < 0, math.inf)
        return constraints.interval(self.loc, upper)

    def _zero_and_safe(self):
        """xi = 0 (PyTorch's isclose to 0: |xi| <= 1e-8) and xi with those entries set to 1."""
        c = self.concentration
        eq_zero = c.abs() <= 1e-8
        return eq_zero, c.where(~eq_zero, 1.0)

    def rsample(self, sample_shape=()) -> Tensor:
        from .utils import standard_uniform

        return self.icdf(standard_uniform(self._extended_shape(sample_shape), self.loc))

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        eq_zero, safe = self._zero_and_safe()
        y = 1 / safe + 1
        nonzero = y.where(y == 0, y * (safe * z).log1p())
        return -self.scale.log() - z.where(eq_zero, nonzero)

    def log_survival_function(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        z = (value - self.loc) / self.scale
        eq_zero, safe = self._zero_and_safe()
        return (-z).where(eq_zero, -(safe * z).log1p() / safe)

    def log_cdf(self, value) -> Tensor:
        return (-self.log_survival_function(value).exp()).log1p()

    def cdf(self, value) -> Tensor:
        return self.log_cdf(value).exp()

    def icdf(self, value) -> Tensor:
        eq_zero, safe = self._zero_and_safe()
        logu = (-value).log1p()
        nonzero = self.loc + self.scale / safe * (-safe * logu).expm1()
        return (self.loc - self.scale * logu).where(eq_zero, nonzero)

    @property
    def mean(self) -> Tensor:
        c = self.concentration
        valid = c < 1
        result = self.loc + self.scale / (1 - c.where(valid, 0.5))
        return result.where(valid, math.nan)

    @property
    def variance(self) -> Tensor:
        c = self.concentration
        valid = c < 0.5
        safe = c.where(valid, 0.25)
        result = self.scale**2 / ((1 - safe) ** 2 * (1 - 2 * safe))
        return result.where(valid, math.nan)

    @property
    def mode(self) -> Tensor:
        return self.loc

    def entropy(self) -> Tensor:
        return (self.scale.log() + self.concentration + 1).expand(tuple(self._batch_shape))
