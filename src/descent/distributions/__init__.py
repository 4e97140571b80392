"""Probability distributions with PyTorch's API (torch.distributions): sampling, log-densities,
entropies, moments and KL divergences built from descent's differentiable ops, so log_prob,
entropy, kl_divergence and the reparameterised draws (`rsample`) carry gradients.

    >>> import descent as ds
    >>> from descent.distributions import Normal, kl_divergence
    >>> loc = ds.tensor(0.5, requires_grad=True)
    >>> p = Normal(loc, 1.0)
    >>> p.log_prob(ds.tensor(0.0)).backward()   # d/dloc = -(loc - x) / scale^2
    >>> loc.grad
    tensor(-0.5000)

Draws come from descent's default generator, so `descent.manual_seed` makes them repeat.
See docs/distributions.md for what exists and how it differs from PyTorch.
"""

from . import constraints, transforms
from . import kl_extra as _kl_extra  # noqa: F401 - registers the cross-family KL pairs
from .constraint_registry import biject_to, transform_to
from .continuous import (
    Beta,
    Cauchy,
    Chi2,
    Dirichlet,
    Exponential,
    Gamma,
    HalfNormal,
    Laplace,
    LogNormal,
    Normal,
    StudentT,
    Uniform,
)
from .discrete import Bernoulli, Binomial, Categorical, Geometric, OneHotCategorical, Poisson
from .distribution import Distribution, Independent
from .exp_family import ExponentialFamily
from .extra import (
    Gumbel,
    HalfCauchy,
    MixtureSameFamily,
    Multinomial,
    NegativeBinomial,
    OneHotCategoricalStraightThrough,
    Pareto,
    Weibull,
)
from .extra2 import (
    ContinuousBernoulli,
    FisherSnedecor,
    GeneralizedPareto,
    InverseGamma,
    Kumaraswamy,
    LogisticNormal,
    LowRankMultivariateNormal,
    VonMises,
)
from .kl import kl_divergence, register_kl
from .multivariate_normal import MultivariateNormal
from .relaxed import (
    ExpRelaxedCategorical,
    LogitRelaxedBernoulli,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
)
from .transformed_distribution import TransformedDistribution
from .transforms import (
    AbsTransform,
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    IndependentTransform,
    LowerCholeskyTransform,
    PositiveDefiniteTransform,
    PowerTransform,
    SigmoidTransform,
    SoftmaxTransform,
    SoftplusTransform,
    StickBreakingTransform,
    TanhTransform,
    Transform,
    identity_transform,
)
from .transforms_extra import (
    CatTransform,
    CorrCholeskyTransform,
    CumulativeDistributionTransform,
    ReshapeTransform,
    StackTransform,
)
from .wishart import LKJCholesky, Wishart

__all__ = [
    "AbsTransform", "AffineTransform", "Bernoulli", "Beta", "Binomial", "CatTransform",
    "Categorical", "Cauchy", "Chi2", "ComposeTransform", "ContinuousBernoulli",
    "CorrCholeskyTransform", "CumulativeDistributionTransform", "Dirichlet", "Distribution",
    "ExpRelaxedCategorical", "ExpTransform", "Exponential", "ExponentialFamily", "FisherSnedecor",
    "Gamma", "GeneralizedPareto", "Geometric", "Gumbel", "HalfCauchy", "HalfNormal", "Independent",
    "IndependentTransform", "InverseGamma", "Kumaraswamy", "LKJCholesky", "Laplace", "LogNormal",
    "LogisticNormal", "LogitRelaxedBernoulli", "LowRankMultivariateNormal",
    "LowerCholeskyTransform", "MixtureSameFamily", "Multinomial", "MultivariateNormal",
    "NegativeBinomial", "Normal", "OneHotCategorical", "OneHotCategoricalStraightThrough",
    "Pareto", "Poisson", "PositiveDefiniteTransform", "PowerTransform", "RelaxedBernoulli",
    "RelaxedOneHotCategorical", "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform",
    "SoftplusTransform", "StackTransform", "StickBreakingTransform", "StudentT", "TanhTransform",
    "Transform", "TransformedDistribution", "Uniform", "VonMises", "Weibull", "Wishart",
    "biject_to", "constraints", "identity_transform", "kl_divergence", "register_kl",
    "transform_to", "transforms",
]  # fmt: skip

# PyTorch's one-module-per-distribution paths (`from torch.distributions.normal import Normal`).
from . import _paths  # noqa: E402

_paths.register(__name__)
