"""Constraints: the sets a distribution's parameters and samples live in (torch.distributions.
constraints). `constraint.check(value)` returns a bool tensor over the batch dimensions (the
event dimensions, `event_dim` of them, are reduced with `all`), never raising for bad values:
`Distribution` turns a False into PyTorch's ValueError when `validate_args` is on.

The names are PyTorch's: `real`, `positive`, `unit_interval`, `simplex`, `integer_interval(lo,
hi)`, `independent(real, 1)`, ... and `dependent` / `dependent_property` for supports that
depend on a distribution's parameters (Uniform's support is `interval(low, high)`).
"""

from __future__ import annotations

import numpy as _np

from .. import backend as _backend
from ..autograd import no_grad as _no_grad
from ..ops.untracked import computed as _computed
from ..ops.untracked import guarded as _guarded
from ..tensor import Tensor as _Tensor

__all__ = [
    "Constraint", "MixtureSameFamilyConstraint", "boolean", "cat", "corr_cholesky", "dependent",
    "dependent_property", "greater_than", "greater_than_eq", "half_open_interval", "independent",
    "integer_interval", "interval", "is_dependent", "less_than", "lower_cholesky",
    "lower_triangular", "multinomial", "nonnegative", "nonnegative_integer", "one_hot", "positive",
    "positive_definite", "positive_integer", "positive_semidefinite", "real", "real_vector",
    "simplex", "square", "stack", "symmetric", "unit_interval",
]  # fmt: skip


class Constraint:
    """A set of valid values. `is_discrete` marks integer-valued sets, `event_dim` the number of
    rightmost dimensions that together make one point of the set (1 for a simplex)."""

    is_discrete = False
    event_dim = 0

    def check(self, value):
        """A bool tensor of shape value.shape[:value.ndim - event_dim]: True where valid."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__[1:] + "()"


class _Dependent(Constraint):
    """A placeholder for a set that depends on other parameters (it cannot be checked)."""

    def __init__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented) -> None:
        self._is_discrete = is_discrete
        self._event_dim = event_dim

    @property
    def is_discrete(self) -> bool:
        if self._is_discrete is NotImplemented:
            raise NotImplementedError(".is_discrete cannot be determined statically")
        return self._is_discrete

    @property
    def event_dim(self) -> int:
        if self._event_dim is NotImplemented:
            raise NotImplementedError(".event_dim cannot be determined statically")
        return self._event_dim

    def __call__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        if is_discrete is NotImplemented:
            is_discrete = self._is_discrete
        if event_dim is NotImplemented:
            event_dim = self._event_dim
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, value):
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint) -> bool:
    """Whether `constraint` is a `dependent` placeholder (skipped by argument validation)."""
    return isinstance(constraint, _Dependent)


class _DependentProperty(property, _Dependent):
    """A property whose value is a constraint computed from the instance (a support such as
    `interval(self.low, self.high)`); on the class it acts as a `dependent` placeholder."""

    def __init__(self, fn=None, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        property.__init__(self, fn)
        _Dependent.__init__(self, is_discrete=is_discrete, event_dim=event_dim)

    def __call__(self, fn):
        return _DependentProperty(fn, is_discrete=self._is_discrete, event_dim=self._event_dim)


dependent_property = _DependentProperty


def _all_hold(ok) -> bool:
    """bool(ok.all()) for validate_args' checks (`ok` a bool tensor, or a bool). The read is a
    guarded op's shape, not a value read: descent.compile replays a function that validates,
    and a replay whose values fail the check stops at the guard and runs the call eagerly,
    which raises eager's error."""
    if not isinstance(ok, _Tensor):
        return bool(ok)
    (flag,) = _guarded(_validate_args_kernel, (ok,), (), "validate_args")
    return flag.shape[0] == 0


def _validate_args_kernel(ok) -> tuple:
    """An empty array where every entry of `ok` holds, else one of length 1."""
    xp = _backend.get_array_module(ok)
    return (xp.empty(0 if bool(ok.all()) else 1, _np.int8),)


def _as_array(value):
    return value._data if isinstance(value, _Tensor) else value


def _reduce_all(t: _Tensor, n: int) -> _Tensor:
    """`all` over the n rightmost dimensions of the bool tensor t."""
    for _ in range(n):
        t = t.all(-1)
    return t


class _IndependentConstraint(Constraint):
    """`base_constraint` with `reinterpreted_batch_ndims` more dimensions counted as one event."""

    def __init__(self, base_constraint: Constraint, reinterpreted_batch_ndims: int) -> None:
        if not isinstance(base_constraint, Constraint):
            raise TypeError(f"independent: expected a Constraint, got {type(base_constraint)}")
        if not isinstance(reinterpreted_batch_ndims, int) or reinterpreted_batch_ndims < 0:
            raise ValueError("independent: reinterpreted_batch_ndims must be an int >= 0, got "
                             f"{reinterpreted_batch_ndims!r}")  # fmt: skip
        self.base_constraint = base_constraint
        self.reinterpreted_batch_ndims = reinterpreted_batch_ndims

    @property
    def is_discrete(self) -> bool:
        return self.base_constraint.is_discrete

    @property
    def event_dim(self) -> int:
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value):
        result = self.base_constraint.check(value)
        if result.ndim < self.reinterpreted_batch_ndims:
            expected = self.base_constraint.event_dim + self.reinterpreted_batch_ndims
            raise ValueError(f"Expected value.dim() >= {expected} but got {value.ndim}")
        return _reduce_all(result, self.reinterpreted_batch_ndims)

    def __repr__(self) -> str:
        return f"IndependentConstraint({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


independent = _IndependentConstraint


class _Boolean(Constraint):
    is_discrete = True

    def check(self, value):
        with _no_grad():
            return (value == 0) | (value == 1)


class _OneHot(Constraint):
    is_discrete = True
    event_dim = 1

    def check(self, value):
        with _no_grad():
            is_boolean = ((value == 0) | (value == 1)).all(-1)
            return is_boolean & (value.sum(-1) == 1)


class _IntegerInterval(Constraint):
    is_discrete = True

    def __init__(self, lower_bound, upper_bound) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        with _no_grad():
            return (value % 1 == 0) & (value >= self.lower_bound) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return (f"IntegerInterval(lower_bound={self.lower_bound}, "
                f"upper_bound={self.upper_bound})")  # fmt: skip


class _IntegerGreaterThan(Constraint):
    is_discrete = True

    def __init__(self, lower_bound) -> None:
        self.lower_bound = lower_bound

    def check(self, value):
        with _no_grad():
            return (value % 1 == 0) & (value >= self.lower_bound)

    def __repr__(self) -> str:
        return f"IntegerGreaterThan(lower_bound={self.lower_bound})"


class _Real(Constraint):
    def check(self, value):
        with _no_grad():
            return value == value  # False at nan


class _GreaterThan(Constraint):
    def __init__(self, lower_bound) -> None:
        self.lower_bound = lower_bound

    def check(self, value):
        with _no_grad():
            return value > self.lower_bound

    def __repr__(self) -> str:
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _GreaterThanEq(_GreaterThan):
    def check(self, value):
        with _no_grad():
            return value >= self.lower_bound

    def __repr__(self) -> str:
        return f"GreaterThanEq(lower_bound={self.lower_bound})"


class _LessThan(Constraint):
    def __init__(self, upper_bound) -> None:
        self.upper_bound = upper_bound

    def check(self, value):
        with _no_grad():
            return value < self.upper_bound

    def __repr__(self) -> str:
        return f"LessThan(upper_bound={self.upper_bound})"


class _Interval(Constraint):
    def __init__(self, lower_bound, upper_bound) -> None:
        self.lower_bound, self.upper_bound = lower_bound, upper_bound

    def check(self, value):
        with _no_grad():
            return (value >= self.lower_bound) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _HalfOpenInterval(_Interval):
    def check(self, value):
        with _no_grad():
            return (value >= self.lower_bound) & (value < self.upper_bound)

    def __repr__(self) -> str:
        return (f"HalfOpenInterval(lower_bound={self.lower_bound}, "
                f"upper_bound={self.upper_bound})")  # fmt: skip


class _Simplex(Constraint):
    """Non-negative vectors summing to 1 within 1e-6 (PyTorch's tolerance)."""

    event_dim = 1

    def check(self, value):
        with _no_grad():
            return (value >= 0).all(-1) & ((value.sum(-1) - 1).abs() < 1e-6)


class _Square(Constraint):
    event_dim = 2

    def check(self, value):
        from ..creation import full

        ok = value.shape[-2] == value.shape[-1]
        return full(tuple(value.shape[:-2]), ok, dtype=_np.bool_, device=value.device)


class _Symmetric(_Square):
    def check(self, value):
        square = super().check(value)
        if not _all_hold(square):
            return square
        with _no_grad():
            return value.isclose(value.mT, atol=1e-6).all(-2).all(-1)


class _LowerTriangular(Constraint):
    event_dim = 2

    def check(self, value):
        with _no_grad():
            return (value.tril() == value).all(-1).all(-1)


class _LowerCholesky(Constraint):
    event_dim = 2

    def check(self, value):
        with _no_grad():
            lower = (value.tril() == value).all(-1).all(-1)
            return lower & (value.diagonal(dim1=-2, dim2=-1) > 0).all(-1)


class _CorrCholesky(Constraint):
    """Lower Cholesky factors of correlation matrices: lower-triangular, positive diagonal,
    rows of unit norm (within 10 eps n, PyTorch's tolerance)."""

    event_dim = 2

    def check(self, value):
        with _no_grad():
            tol = float(_np.finfo(_np.dtype(value.dtype)).eps) * value.shape[-1] * 10
            row_norm = (value.detach() ** 2).sum(-1).sqrt()
            unit_rows = ((row_norm - 1.0).abs() <= tol).all(-1)
            return _LowerCholesky().check(value) & unit_rows


class _PositiveDefinite(_Symmetric):
    """Symmetric matrices whose Cholesky factorisation succeeds (checked matrix by matrix)."""

    def check(self, value):
        sym = super().check(value)
        if not _all_hold(sym):
            return sym
        # (computed: descent.compile replays the factorisations on each call's matrices)
        return _computed(_positive_definite_kernel, (value,), ())


class _PositiveSemidefinite(_Symmetric):
    """Symmetric matrices with no negative eigenvalue."""

    def check(self, value):
        sym = super().check(value)
        if not _all_hold(sym):
            return sym
        return _computed(_positive_semidefinite_kernel, (value,), ())


def _positive_definite_kernel(value):
    """Whether each matrix of `value` (..., n, n) has a Cholesky factor and finite entries."""
    a = _backend.as_numpy(value).astype(_np.float64)
    flat = a.reshape((-1,) + a.shape[-2:])
    ok = _np.empty(flat.shape[0], dtype=_np.bool_)
    for i, m in enumerate(flat):  # one factorisation per matrix: a failure is per matrix
        try:
            _np.linalg.cholesky(m)
            ok[i] = bool(_np.isfinite(m).all())
        except _np.linalg.LinAlgError:
            ok[i] = False
    return ok.reshape(a.shape[:-2])


def _positive_semidefinite_kernel(value):
    """Whether each matrix of `value` (..., n, n) has no negative eigenvalue."""
    a = _backend.as_numpy(value).astype(_np.float64)
    return (_np.linalg.eigvalsh(a) >= 0).all(-1)


class _Multinomial(Constraint):
    """Non-negative counts whose sum is at most upper_bound (PyTorch's weaker check)."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound) -> None:
        self.upper_bound = upper_bound

    def check(self, value):
        with _no_grad():
            return (value >= 0).all(-1) & (value.sum(-1) <= self.upper_bound)


class MixtureSameFamilyConstraint(Constraint):
    """A mixture's support: the components' constraint checked on the value broadcast over
    the component dimension, all components required to accept it."""

    def __init__(self, base_constraint: Constraint) -> None:
        self.base_constraint = base_constraint

    @property
    def is_discrete(self) -> bool:
        return self.base_constraint.is_discrete

    @property
    def event_dim(self) -> int:
        return self.base_constraint.event_dim

    def check(self, value):
        if value.ndim < self.event_dim:
            raise ValueError(f"Expected value.dim() >= {self.event_dim} but got {value.ndim}")
        result = self.base_constraint.check(value.unsqueeze(-1 - self.event_dim))
        keep = value.ndim - self.event_dim
        return result.reshape(tuple(result.shape[:keep]) + (-1,)).all(-1)

    def __repr__(self) -> str:
        return f"MixtureSameFamilyConstraint({self.base_constraint!r})"


class _Cat(Constraint):
    """Constraints applied to consecutive slices of `dim` (torch's constraints.cat)."""

    def __init__(self, cseq, dim: int = 0, lengths=None) -> None:
        self.cseq = list(cseq)
        self.lengths = list(lengths) if lengths is not None else [1] * len(self.cseq)
        self.dim = dim

    @property
    def is_discrete(self) -> bool:
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:
        return max(c.event_dim for c in self.cseq)

    def check(self, value):
        from ..ops.shape import cat as _cat

        checks, start = [], 0
        for constr, length in zip(self.cseq, self.lengths, strict=True):
            checks.append(constr.check(value.narrow(self.dim, start, length)))
            start += length
        return _cat(checks, self.dim)


class _Stack(Constraint):
    """Constraint cseq[i] on value.select(dim, i), stacked (torch's constraints.stack)."""

    def __init__(self, cseq, dim: int = 0) -> None:
        self.cseq = list(cseq)
        self.dim = dim

    @property
    def is_discrete(self) -> bool:
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:
        dim = max(c.event_dim for c in self.cseq)
        return dim + 1 if self.dim + dim < 0 else dim

    def check(self, value):
        from ..ops.shape import stack as _stack

        n = value.shape[self.dim]
        axis = self.dim % value.ndim
        checks = [c.check(value[(slice(None),) * axis + (i,)]) for i, c in zip(range(n), self.cseq)]
        return _stack(checks, self.dim)


dependent = _Dependent()
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = independent(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
unit_interval = _Interval(0.0, 1.0)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
positive_definite = _PositiveDefinite()
positive_semidefinite = _PositiveSemidefinite()
multinomial = _Multinomial
square = _Square()
symmetric = _Symmetric()
cat = _Cat
stack = _Stack
