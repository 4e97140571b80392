"""Continuous relaxations of discrete distributions with reparameterised draws (the concrete /
Gumbel-softmax distributions: Maddison et al. 2017, Jang et al. 2017).

* `RelaxedBernoulli(temperature, probs | logits)` on (0, 1): sigmoid((logit(u) + logits) / t),
  u ~ U(0, 1). PyTorch builds it as a sigmoid-transformed LogitRelaxedBernoulli; the change of
  variables is written out here with the same clamping.
* `RelaxedOneHotCategorical(temperature, probs | logits)` on the simplex:
  softmax((logits + g) / t), g ~ Gumbel(0, 1); PyTorch's exp-transformed ExpRelaxedCategorical.
* `LogitRelaxedBernoulli` and `ExpRelaxedCategorical`, the untransformed ones, are exported too.
"""

from __future__ import annotations

from numbers import Number

from ..dtypes import finfo
from ..ops.activation import softplus
from ..tensor import Size, Tensor
from . import constraints
from .discrete import Categorical
from .distribution import Distribution
from .utils import (
    as_float_tensor,
    broadcast_all,
    clamp_probs,
    lazy_property,
    logits_to_probs,
    probs_to_logits,
    standard_uniform,
)

__all__ = ["ExpRelaxedCategorical", "LogitRelaxedBernoulli", "RelaxedBernoulli",
           "RelaxedOneHotCategorical"]  # fmt: skip


class LogitRelaxedBernoulli(Distribution):
    """The logit of a RelaxedBernoulli draw: (logit(u) + logits) / temperature."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.real
    has_rsample = True
    _expand_params = ("temperature", "probs", "logits", "_param")

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
        else:
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        self.temperature = as_float_tensor(temperature, self._param)
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

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        probs = clamp_probs(self.probs.expand(shape))
        u = clamp_probs(standard_uniform(shape, probs))
        return (u.log() - (-u).log1p() + probs.log() - (-probs).log1p()) / self.temperature

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self._param)
        logits, value = broadcast_all(self.logits, value)
        diff = logits - value * self.temperature
        return self.temperature.log() + diff - 2 * diff.exp().log1p()


class RelaxedBernoulli(LogitRelaxedBernoulli):
    """sigmoid of a LogitRelaxedBernoulli draw, on (0, 1); differentiable draws (rsample)."""

    support = constraints.unit_interval

    @property
    def base_dist(self) -> LogitRelaxedBernoulli:
        base = LogitRelaxedBernoulli.__new__(LogitRelaxedBernoulli)
        base.__dict__.update({k: v for k, v in self.__dict__.items()})
        return base

    def rsample(self, sample_shape=()) -> Tensor:
        return clamp_probs(super().rsample(sample_shape).sigmoid())

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self._param)
        fi = finfo(value.dtype)
        y = value.clamp(min=fi.tiny, max=1.0 - fi.eps)
        x = y.log() - (-y).log1p()  # the sigmoid's inverse
        # log |d sigmoid(x) / dx| = -softplus(-x) - softplus(x)
        log_det = -softplus(-x) - softplus(x)
        return self.base_dist.log_prob(x) - log_det


class ExpRelaxedCategorical(Distribution):
    """The log of a RelaxedOneHotCategorical draw: log_softmax((logits + g) / temperature)."""

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}  # fmt: skip
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, temperature, probs=None, logits=None, validate_args=None) -> None:
        self._categorical = Categorical(probs, logits)
        self.temperature = as_float_tensor(temperature, self._categorical._param)
        super().__init__(self._categorical.batch_shape, self._categorical.param_shape[-1:],
                         validate_args=validate_args)  # fmt: skip

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

    def rsample(self, sample_shape=()) -> Tensor:
        shape = self._extended_shape(sample_shape)
        u = clamp_probs(standard_uniform(shape, self.logits))
        gumbels = -((-(u.log())).log())
        scores = (self.logits + gumbels) / self.temperature
        return scores - scores.logsumexp(dim=-1, keepdim=True)

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self.logits)
        k = self._categorical._num_events
        t = self.temperature
        log_scale = (t * 0 + float(k)).lgamma() - t.log() * (-(k - 1))
        score = self.logits - value * t
        score = (score - score.logsumexp(dim=-1, keepdim=True)).sum(-1)
        return score + log_scale


class RelaxedOneHotCategorical(ExpRelaxedCategorical):
    """exp of an ExpRelaxedCategorical draw: a point of the simplex that approaches a one-hot
    vector as temperature -> 0; differentiable draws (rsample)."""

    support = constraints.simplex

    @property
    def base_dist(self) -> ExpRelaxedCategorical:
        base = ExpRelaxedCategorical.__new__(ExpRelaxedCategorical)
        base.__dict__.update(self.__dict__)
        return base

    def rsample(self, sample_shape=()) -> Tensor:
        return super().rsample(sample_shape).exp()

    def log_prob(self, value) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = as_float_tensor(value, self.logits)
        x = value.log()
        return self.base_dist.log_prob(x) - x.sum(-1)
