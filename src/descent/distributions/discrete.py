"""Discrete distributions: Bernoulli, Categorical, OneHotCategorical, Binomial, Poisson and
Geometric (PyTorch's formulas). `probs` or `logits` (exactly one) parameterise the first four;
the other is computed on first use (`lazy_property`). log_prob and entropy are differentiable
in the parameters; samples are not (no rsample: see relaxed.py for Gumbel-softmax draws).
"""

from __future__ import annotations

import math
from numbers import Number

import numpy as np

from .. import autograd, backend
from ..creation import arange, eye, full
from ..creation_random import _replayable
from ..creation_random import draws_through_ops as _draws_through_ops
from ..dtypes import finfo, scalar_type
from ..ops.activation import softplus
from ..ops.indexing import one_hot
from ..tensor import Size, Tensor
from ..torch_functions import broadcast_tensors
from . import constraints
from .distribution import Distribution, _all_hold
from .exp_family import ExponentialFamily
from .utils import (
    as_float_tensor,
    broadcast_all,
    lazy_property,
    logits_to_probs,
    numpy_rng,
    probs_to_logits,
    standard_uniform,
)

__all__ = ["Bernoulli", "Binomial", "Categorical", "Geometric", "OneHotCategorical", "Poisson"]


def bce_with_logits(logits: Tensor, target: Tensor) -> Tensor:
    """-(t log sigmoid(x) + (1 - t) log sigmoid(-x)) = softplus(x) - t x, elementwise, without
    overflow; its gradient sigmoid(x) - t is exact at x = 0 too (a max(x, 0) + log1p(e^-|x|)
    form would take one side's slope of the kinks there)."""
    return softplus(logits) - logits * target


def _one_of(probs, logits) -> None:
    if (probs is None) == (logits is None):
        raise ValueError("Either `probs` or `logits` must be specified, but not both.")


def _enumerate(values: Tensor, batch_shape: Size, expand: bool) -> Tensor:
    """values (n,) viewed as (n, 1, ..., 1) and optionally expanded to (n,) + batch_shape."""
    values = values.reshape((-1,) + (1,) * len(batch_shape))
    return values.expand((-1,) + tuple(batch_shape)) if expand else values


class Bernoulli(ExponentialFamily):
    """1 with probability `probs` (or sigmoid(`logits`)), else 0."""

    _mean_carrier_measure = 0

    @property
    def _natural_params(self) -> tuple:
        return (self.probs.logit(),)

    def _log_normalizer(self, x):
        return x.exp().log1p()

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True
    _expand_params = ("probs", "logits", "_param")

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        _one_of(probs, logits)
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
        else:
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        given = probs if probs is not None else logits
        shape = Size() if isinstance(given, Number) else self._param.size()
        super().__init__(shape, validate_args=validate_args)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> Size:
        return self._param.size()

    @property
    def mean(self) -> Tensor:
        return self.probs

    @property
    def mode(self) -> Tensor:
        mode = (self.probs >= 0.5).type_as(self.probs)
        return mode.where(self.probs != 0.5, math.nan)

    @property
    def variance(self) -> Tensor:
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        with autograd.no_grad():
            u = standard_uniform(shape, self.probs)
            return (u < self.probs.expand(shape)).type_as(self.probs)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self._param)
        logits, value = broadcast_all(self.logits, value)
        return -bce_with_logits(logits, value)

    def entropy(self) -> Tensor:
        return bce_with_logits(self.logits, self.probs)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = arange(2, dtype=self._param.dtype, device=self._param.device)
        return _enumerate(values, self._batch_shape, expand)


class Categorical(Distribution):
    """One of K categories (0 .. K-1), with probabilities `probs` (normalised over the last
    dimension) or `logits` (unnormalised log-probabilities); batch_shape = param.shape[:-1]."""

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}  # fmt: skip
    has_enumerate_support = True
    _expand_params = ("probs", "logits", "_param")

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        _one_of(probs, logits)
        if probs is not None:
            if probs.ndim < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.ndim < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        shape = self._param.size()[:-1] if self._param.ndim > 1 else Size()
        super().__init__(shape, validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> Size:
        return self._param.size()

    @property
    def mean(self) -> Tensor:
        p = self.probs
        return full(self._extended_shape(), math.nan, dtype=p.dtype, device=p.device)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(-1)

    @property
    def variance(self) -> Tensor:
        return self.mean

    @_draws_through_ops
    def sample(self, sample_shape=()) -> Tensor:
        """Inverse-CDF draws: one uniform per draw and row, located in the row's cumulative
        probabilities by one searchsorted over all rows (row r's CDF shifted by r), so memory
        is O(n R + R K), not the O(n R K) of comparing every draw with every category."""
        sample_shape = Size(sample_shape)
        shape = tuple(self._extended_shape(sample_shape))
        return _categorical_draws(self.probs.detach(), math.prod(sample_shape), shape)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = broadcast_tensors(value, self.logits)
        value = value[..., :1]
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self) -> Tensor:
        min_real = finfo(self.logits.dtype).min
        logits = self.logits.clamp(min=min_real)  # -inf logits: 0 * min_real, not 0 * -inf
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = arange(self._num_events, dtype=np.int64, device=self._param.device)
        return _enumerate(values, self._batch_shape, expand)


@_replayable
def _categorical_draws(probs: Tensor, n: int, shape: tuple) -> Tensor:
    """n draws per row of `probs` (.., K), as int64 of `shape` (Categorical.sample); a
    sampling function that descent.compile keeps as a Draw (creation_random._replayable)."""
    k = probs.shape[-1]
    w = probs._data.reshape(-1, k)  # (R, K)
    xp = backend.get_array_module(w)
    cdf = xp.cumsum(w.astype(np.float64), axis=-1)  # (R, K)
    cdf = cdf / cdf[:, -1:]
    rows = cdf.shape[0]
    u = numpy_rng(probs).random((n, rows))  # (n, R) in [0, 1)
    shift = xp.arange(rows, dtype=np.float64)
    idx = xp.searchsorted((cdf + shift[:, None]).ravel(), (u + shift).ravel(), side="right")
    idx = idx.reshape(n, rows) - (shift * k).astype(np.int64)  # index within each row
    idx = xp.minimum(idx, k - 1).astype(np.int64)  # u rounding up to the row's last 1.0
    return autograd._new_tensor(idx.reshape(shape))


class OneHotCategorical(Distribution):
    """Categorical draws as one-hot vectors (event_shape = (K,))."""

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}  # fmt: skip
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        self._categorical = Categorical(probs, logits)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    @property
    def _param(self) -> Tensor:
        return self._categorical._param

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def param_shape(self) -> Size:
        return self._categorical.param_shape

    @property
    def mean(self) -> Tensor:
        return self._categorical.probs

    @property
    def mode(self) -> Tensor:
        probs = self._categorical.probs
        return one_hot(probs.argmax(-1), probs.shape[-1]).type_as(probs)

    @property
    def variance(self) -> Tensor:
        return self._categorical.probs * (1 - self._categorical.probs)

    def sample(self, sample_shape=()) -> Tensor:
        probs = self._categorical.probs
        indices = self._categorical.sample(sample_shape)
        return one_hot(indices, self._categorical._num_events).type_as(probs)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        indices = value.max(-1)[1]
        return self._categorical.log_prob(indices)

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = self.event_shape[0]
        values = eye(n, dtype=self._param.dtype, device=self._param.device)
        values = values.reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        if expand:
            values = values.expand((n,) + tuple(self.batch_shape) + (n,))
        return values

    def __repr__(self) -> str:
        return repr(self._categorical).replace("Categorical", type(self).__name__, 1)


def _clamp_by_zero(x: Tensor) -> Tensor:
    # x.clamp(min=0) whose gradient at 0 is 1/2 (PyTorch's helper for the Binomial)
    return (x.clamp(min=0) + x - x.clamp(max=0)) / 2


def _draw(like: Tensor, fn) -> Tensor:
    """Samples that NumPy's generator draws from float64 parameters, in like's dtype."""
    xp = backend.get_array_module(like._data)
    out = fn(numpy_rng(like))
    return autograd._new_tensor(xp.asarray(out).astype(like.dtype))


# (the samplers that draw on NumPy's generator: `_replayable` functions of their parameters'
# tensors, which descent.compile keeps as Draw ops, replayed in eager's order)
@_replayable
def _binomial_draws(total_count: Tensor, probs: Tensor) -> Tensor:
    """Binomial(total_count, probs) draws in probs' dtype (Binomial.sample)."""
    n = backend.as_numpy(total_count._data).astype(np.int64)
    p = backend.as_numpy(probs._data).astype(np.float64)
    return _draw(probs, lambda rng: rng.binomial(n, p))


@_replayable
def _poisson_sample_draws(rate: Tensor) -> Tensor:
    """Poisson(rate) draws in rate's dtype (Poisson.sample)."""
    lam = backend.as_numpy(rate._data).astype(np.float64)
    return _draw(rate, lambda rng: rng.poisson(lam))


class Binomial(Distribution):
    """Successes in `total_count` Bernoulli(probs) trials."""

    arg_constraints = {"total_count": constraints.nonnegative_integer,
                       "probs": constraints.unit_interval, "logits": constraints.real}  # fmt: skip
    has_enumerate_support = True
    _expand_params = ("total_count", "probs", "logits", "_param")

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None) -> None:
        _one_of(probs, logits)
        if probs is not None:
            self.total_count, self.probs = broadcast_all(total_count, probs)
            self.total_count = self.total_count.type_as(self.probs)
        else:
            self.total_count, self.logits = broadcast_all(total_count, logits)
            self.total_count = self.total_count.type_as(self.logits)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(self._param.size(), validate_args=validate_args)

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self.total_count)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def param_shape(self) -> Size:
        return self._param.size()

    @property
    def mean(self) -> Tensor:
        return self.total_count * self.probs

    @property
    def mode(self) -> Tensor:
        return ((self.total_count + 1) * self.probs).floor().clamp(max=self.total_count)

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1 - self.probs)

    @_draws_through_ops
    def sample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        with autograd.no_grad():
            return _binomial_draws(self.total_count.expand(shape), self.probs.expand(shape))

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self._param)
        n = self.total_count
        log_factorial_n = (n + 1).lgamma()
        log_factorial_k = (value + 1).lgamma()
        log_factorial_nmk = (n - value + 1).lgamma()
        # n log(1 + e^logits) = n (max(logits, 0) + log1p(e^-|logits|)), without overflow
        normalize = (n * _clamp_by_zero(self.logits) + n * (-self.logits.abs()).exp().log1p()
                     - log_factorial_n)  # fmt: skip
        return value * self.logits - log_factorial_k - log_factorial_nmk - normalize

    def _homogeneous_count(self, what: str) -> int:
        total = int(self.total_count.max().item())
        if not bool((self.total_count.min() == total).item()):
            raise NotImplementedError(f"Inhomogeneous total count not supported by `{what}`.")
        return total

    def entropy(self) -> Tensor:
        self._homogeneous_count("entropy")
        log_prob = self.log_prob(self.enumerate_support(False))
        return -(log_prob.exp() * log_prob).sum(0)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        total = self._homogeneous_count("enumerate_support")
        values = arange(1 + total, dtype=self._param.dtype, device=self._param.device)
        return _enumerate(values, self._batch_shape, expand)


class Poisson(ExponentialFamily):
    """Counts with mean `rate`: P(k) = rate^k e^-rate / k!."""

    @property
    def _natural_params(self) -> tuple:
        return (self.rate.log(),)

    def _log_normalizer(self, x):
        return x.exp()

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer
    _expand_params = ("rate",)

    def __init__(self, rate, validate_args=None) -> None:
        (self.rate,) = broadcast_all(rate)
        shape = Size() if isinstance(rate, Number) else self.rate.size()
        super().__init__(shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.rate

    @property
    def mode(self) -> Tensor:
        return self.rate.floor()

    @property
    def variance(self) -> Tensor:
        return self.rate

    @_draws_through_ops
    def sample(self, sample_shape=()) -> Tensor:
        dtype = self.rate._data.dtype
        if dtype.kind not in "fV":
            # PyTorch samples with torch.poisson, whose CPU kernel takes floating rates only:
            # Poisson(torch.tensor([4])).sample() raises (before any random draw), as here.
            raise NotImplementedError(
                f"\"poisson_cpu\" not implemented for '{scalar_type(dtype)}' (Poisson.sample "
                f"with an integer rate of shape {tuple(self.rate.shape)}: pass a floating rate, "
                "e.g. Poisson(rate.float()))"
            )
        shape = tuple(self._extended_shape(sample_shape))
        with autograd.no_grad():
            return _poisson_sample_draws(self.rate.expand(shape))

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self.rate)
        rate, value = broadcast_all(self.rate, value)
        return value.xlogy(rate) - rate - (value + 1).lgamma()


class Geometric(Distribution):
    """Failures before the first success of Bernoulli(probs) trials: P(k) = (1 - p)^k p."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer
    _expand_params = ("probs", "logits")

    def __init__(self, probs=None, logits=None, validate_args=None) -> None:
        _one_of(probs, logits)
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
        else:
            (self.logits,) = broadcast_all(logits)
        given = probs if probs is not None else logits
        param = self.probs if probs is not None else self.logits
        super().__init__(Size() if isinstance(given, Number) else param.size(),
                         validate_args=validate_args)  # fmt: skip
        if self._validate_args and probs is not None and not _all_hold(self.probs > 0):
            value = self.probs
            raise ValueError(
                f"Expected parameter probs ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) of distribution {self!r} to be positive but found "
                f"invalid values:\n{value}"
            )

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits, is_binary=True)

    @property
    def mean(self) -> Tensor:
        return 1.0 / self.probs - 1.0

    @property
    def mode(self) -> Tensor:
        return self.probs * 0

    @property
    def variance(self) -> Tensor:
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        tiny = finfo(self.probs.dtype).tiny
        with autograd.no_grad():
            u = standard_uniform(shape, self.probs) * (1 - tiny) + tiny  # U(tiny, 1)
            return (u.log() / (-self.probs).log1p()).floor()

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self.probs)
        value, probs = broadcast_all(value, self.probs)
        # (1 - p)^0 = 1 at p = 1 (0 * log 0 would be nan)
        probs = probs.where(~((probs == 1) & (value == 0)), 0.0)
        return value * (-probs).log1p() + self.probs.log()

    def entropy(self) -> Tensor:
        return bce_with_logits(self.logits, self.probs) / self.probs
