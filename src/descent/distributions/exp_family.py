"""ExponentialFamily (torch.distributions.ExponentialFamily): densities of the form
exp(<t(x), theta> - F(theta) + k(x)) with natural parameters theta, log-normaliser F and
carrier measure k. Subclasses give `_natural_params`, `_log_normalizer(*theta)` and
`_mean_carrier_measure`; from them this class computes the entropy as a Bregman divergence of
F (Nielsen & Nock, "Entropies and cross-entropies of exponential families", 2010), with the
gradient of F taken by descent's autograd. kl_extra.py registers the matching generic KL.
"""

from __future__ import annotations

from .. import autograd
from ..tensor import Tensor
from .distribution import Distribution

__all__ = ["ExponentialFamily"]


def _bregman_point(params):
    """Detached copies of the natural parameters that require grad, and F's gradient at them
    comes later from `autograd.grad(..., create_graph=True)`."""
    return [p.detach().requires_grad_() for p in params]


class ExponentialFamily(Distribution):
    """Base class of the exponential-family distributions (Normal, Bernoulli, Poisson,
    Exponential, Gamma, Beta, Dirichlet, ContinuousBernoulli, Wishart)."""

    @property
    def _natural_params(self) -> tuple:
        raise NotImplementedError

    def _log_normalizer(self, *natural_params):
        raise NotImplementedError

    @property
    def _mean_carrier_measure(self) -> float:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        """H = F(theta) - <theta, grad F(theta)> - E[k(x)]."""
        nparams = _bregman_point(self._natural_params)
        with autograd.enable_grad():
            lg_normal = self._log_normalizer(*nparams)
            grads = autograd.grad(lg_normal.sum(), nparams, create_graph=True)
        result = lg_normal - self._mean_carrier_measure
        for p, g in zip(nparams, grads, strict=True):
            result = result - (p * g).reshape(tuple(self._batch_shape) + (-1,)).sum(-1)
        return result
