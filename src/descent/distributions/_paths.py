"""PyTorch's per-distribution import paths under descent.distributions:
`from torch.distributions.normal import Normal` (spinningup, CleanRL), `import
torch.distributions.categorical`, `torch.distributions.studentT.StudentT`.

PyTorch keeps one module per distribution; descent groups them by family (continuous.py,
discrete.py, ...), so each of PyTorch's module names is a small module object, registered in
sys.modules and as an attribute of the package, holding the same classes (one implementation)."""

from __future__ import annotations

import sys
import types

# PyTorch's module name -> the names it exports (its __all__).
TORCH_MODULES = {
    "bernoulli": ("Bernoulli",),
    "beta": ("Beta",),
    "binomial": ("Binomial",),
    "categorical": ("Categorical",),
    "cauchy": ("Cauchy",),
    "chi2": ("Chi2",),
    "continuous_bernoulli": ("ContinuousBernoulli",),
    "dirichlet": ("Dirichlet",),
    "exponential": ("Exponential",),
    "fishersnedecor": ("FisherSnedecor",),
    "gamma": ("Gamma",),
    "generalized_pareto": ("GeneralizedPareto",),
    "geometric": ("Geometric",),
    "gumbel": ("Gumbel",),
    "half_cauchy": ("HalfCauchy",),
    "half_normal": ("HalfNormal",),
    "independent": ("Independent",),
    "inverse_gamma": ("InverseGamma",),
    "kumaraswamy": ("Kumaraswamy",),
    "laplace": ("Laplace",),
    "lkj_cholesky": ("LKJCholesky",),
    "log_normal": ("LogNormal",),
    "logistic_normal": ("LogisticNormal",),
    "lowrank_multivariate_normal": ("LowRankMultivariateNormal",),
    "mixture_same_family": ("MixtureSameFamily",),
    "multinomial": ("Multinomial",),
    "negative_binomial": ("NegativeBinomial",),
    "normal": ("Normal",),
    "one_hot_categorical": ("OneHotCategorical", "OneHotCategoricalStraightThrough"),
    "pareto": ("Pareto",),
    "poisson": ("Poisson",),
    "relaxed_bernoulli": ("LogitRelaxedBernoulli", "RelaxedBernoulli"),
    "relaxed_categorical": ("ExpRelaxedCategorical", "RelaxedOneHotCategorical"),
    "studentT": ("StudentT",),
    "uniform": ("Uniform",),
    "von_mises": ("VonMises",),
    "weibull": ("Weibull",),
}


def register(package_name: str) -> None:
    """Make each of TORCH_MODULES importable as `<package>.<name>` (skipping names the package
    already has as real modules)."""
    package = sys.modules[package_name]
    for name, exports in TORCH_MODULES.items():
        qualified = f"{package.__name__}.{name}"
        if qualified in sys.modules or isinstance(getattr(package, name, None), types.ModuleType):
            continue
        module = types.ModuleType(qualified, f"PyTorch's torch.distributions.{name} path.")
        for export in exports:
            setattr(module, export, getattr(package, export))
        module.__all__ = list(exports)
        sys.modules[qualified] = module
        setattr(package, name, module)
