"""The `Distribution` base class and `Independent` (torch.distributions.Distribution).

Shapes follow PyTorch: a distribution holds a batch of independent distributions
(`batch_shape`, from broadcasting its parameters), each over events of `event_shape`;
`sample(sample_shape)` returns sample_shape + batch_shape + event_shape, and `log_prob(value)`
returns value's shape less the event dimensions.

Validation (`validate_args`, on by default as in PyTorch under `__debug__`): the constructor
checks every parameter against `arg_constraints`, and `log_prob` / `cdf` check the value's
shape and support; both raise PyTorch's ValueError messages.
"""

from __future__ import annotations

import warnings

from .. import autograd
from ..tensor import Size, Tensor
from . import constraints
from .constraints import _all_hold
from .utils import lazy_property, sum_rightmost

__all__ = ["Distribution", "Independent"]


class Distribution:
    """Base class: subclasses set `arg_constraints`, `support` and implement the methods they
    have (the others raise NotImplementedError, as in PyTorch)."""

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__
    arg_constraints: dict = {}
    support = None

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn argument and sample validation on or off for every distribution made later."""
        if value not in (True, False):
            raise ValueError(f"set_default_validate_args: expected a bool, got {value!r}")
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args=None) -> None:
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            self._check_parameters()

    def _check_parameters(self) -> None:
        for param, constraint in self.arg_constraints.items():
            if constraints.is_dependent(constraint):
                continue  # a support-like set that depends on other parameters
            if param not in self.__dict__ and isinstance(getattr(type(self), param, None),
                                                         lazy_property):  # fmt: skip
                continue  # the other parameterisation (probs given, logits computed on demand)
            value = getattr(self, param)
            if not _all_hold(constraint.check(value)):
                raise ValueError(
                    f"Expected parameter {param} ({type(value).__name__} of shape "
                    f"{tuple(value.shape)}) of distribution {self!r} to satisfy the constraint "
                    f"{constraint!r}, but found invalid values:\n{value}"
                )

    # -- shapes ---------------------------------------------------------------------------
    @property
    def batch_shape(self) -> Size:
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        return self._event_shape

    def _extended_shape(self, sample_shape=()) -> Size:
        return Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def expand(self, batch_shape, _instance=None):
        """A new distribution with its parameters broadcast (as views) to `batch_shape`.

        The default works for distributions whose tensor parameters are listed in
        `_expand_params` (each keeps its dimensions right of the batch, such as Categorical's
        categories) and whose sub-distributions (attributes that are distributions) have this
        distribution's batch shape.
        """
        batch_shape = Size(batch_shape)
        new = self._get_checked_instance(type(self), _instance)
        nb = len(self._batch_shape)
        for name, value in self.__dict__.items():
            if isinstance(value, Tensor) and name in self._expand_params:
                new.__dict__[name] = value.expand(batch_shape + Size(value.shape[nb:]))
            elif isinstance(value, Distribution) and name != "base_dist":
                new.__dict__[name] = value.expand(batch_shape)
            elif name not in new.__dict__:
                new.__dict__[name] = value  # other fields (temperature, counts) as they are
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    _expand_params: tuple = ()

    def _get_checked_instance(self, cls, _instance=None):
        if _instance is None and type(self).__init__ != cls.__init__:
            raise NotImplementedError(
                f"Subclass {self.__class__.__name__} of {cls.__name__} that defines a custom "
                "__init__ method must also define a custom .expand() method."
            )
        return self.__new__(type(self)) if _instance is None else _instance

    # -- statistics -------------------------------------------------------------------------
    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no mean")

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no variance")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    # -- sampling and densities -------------------------------------------------------------
    def sample(self, sample_shape=()) -> Tensor:
        """Draws of shape sample_shape + batch_shape + event_shape, without gradient."""
        with autograd.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        """Reparameterised draws: differentiable in the parameters."""
        raise NotImplementedError(f"{type(self).__name__} has no rsample (not reparameterised)")

    def sample_n(self, n: int) -> Tensor:
        warnings.warn("sample_n will be deprecated. Use .sample((n,)) instead", UserWarning,
                      stacklevel=2)  # fmt: skip
        return self.sample(Size((n,)))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        raise NotImplementedError

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    def _validate_sample(self, value) -> None:
        """PyTorch's checks of a value given to log_prob/cdf: a tensor, the event shape on the
        right, broadcastable with batch_shape + event_shape, inside the support."""
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = value.ndim - len(self._event_shape)
        if Size(value.shape[event_dim_start:]) != self._event_shape:
            raise ValueError(
                "The right-most size of value must match event_shape: "
                f"{Size(value.shape)} vs {self._event_shape}."
            )
        actual = Size(value.shape)
        expected = self._batch_shape + self._event_shape
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(
                    "Value is not broadcastable with batch_shape+event_shape: "
                    f"{actual} vs {expected}."
                )
        support = self.support
        if support is None:
            return
        if not _all_hold(support.check(value)):
            raise ValueError(
                f"Expected value argument ({type(value).__name__} of shape "
                f"{tuple(value.shape)}) to be within the support ({support!r}) of the "
                f"distribution {self!r}, but found invalid values:\n{value}"
            )

    def __repr__(self) -> str:
        names = [k for k in self.arg_constraints if k in self.__dict__]
        parts = []
        for p in names:
            v = self.__dict__[p]
            parts.append(f"{p}: {v if v.numel() == 1 else v.size()}")
        return type(self).__name__ + "(" + ", ".join(parts) + ")"


class Independent(Distribution):
    """Reinterprets the rightmost `reinterpreted_batch_ndims` batch dimensions of
    `base_distribution` as event dimensions: log_prob and entropy sum over them (a diagonal
    Normal as one multivariate event: `Independent(Normal(loc, scale), 1)`)."""

    arg_constraints: dict = {}

    def __init__(self, base_distribution: Distribution, reinterpreted_batch_ndims: int,
                 validate_args=None) -> None:  # fmt: skip
        if reinterpreted_batch_ndims > len(base_distribution.batch_shape):
            raise ValueError(
                "Expected reinterpreted_batch_ndims <= len(base_distribution.batch_shape), "
                f"actual {reinterpreted_batch_ndims} vs {len(base_distribution.batch_shape)}"
            )
        shape = base_distribution.batch_shape + base_distribution.event_shape
        event_dim = reinterpreted_batch_ndims + len(base_distribution.event_shape)
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims
        super().__init__(shape[: len(shape) - event_dim], shape[len(shape) - event_dim :],
                         validate_args=validate_args)  # fmt: skip

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Independent, _instance)
        batch_shape = Size(batch_shape)
        extra = self.event_shape[: self.reinterpreted_batch_ndims]
        new.base_dist = self.base_dist.expand(batch_shape + extra)
        new.reinterpreted_batch_ndims = self.reinterpreted_batch_ndims
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    @property
    def has_enumerate_support(self) -> bool:
        if self.reinterpreted_batch_ndims > 0:
            return False
        return self.base_dist.has_enumerate_support

    @constraints.dependent_property
    def support(self):
        result = self.base_dist.support
        if self.reinterpreted_batch_ndims:
            result = constraints.independent(result, self.reinterpreted_batch_ndims)
        return result

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def mode(self) -> Tensor:
        return self.base_dist.mode

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def sample(self, sample_shape=()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value: Tensor) -> Tensor:
        return sum_rightmost(self.base_dist.log_prob(value), self.reinterpreted_batch_ndims)

    def entropy(self) -> Tensor:
        return sum_rightmost(self.base_dist.entropy(), self.reinterpreted_batch_ndims)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        if self.reinterpreted_batch_ndims > 0:
            raise NotImplementedError("Enumeration over cartesian product is not implemented")
        return self.base_dist.enumerate_support(expand=expand)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.base_dist}, "
                f"{self.reinterpreted_batch_ndims})")  # fmt: skip
