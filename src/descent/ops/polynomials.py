"""The orthogonal polynomials of torch.special: Chebyshev T, U, V, W (and their shifted forms
on [0, 1]), Hermite H and He, Laguerre L, Legendre P, each evaluated at x for a degree n.

As PyTorch's: `fn(input, n)` with input and n tensors or numbers (broadcast, promoted to one
floating dtype), n truncated to an integer (2.9 -> 2, -0.5 -> 0), 0 for n < 0 (and for a nan
n); no gradient (PyTorch's results never require grad). Values by the three-term recurrences
(A&S 22.7) in float64, rounded once to the result dtype; Chebyshev T of degree > 6 inside
(-1, 1) as cos(n arccos x), as PyTorch does (the recurrence's rounding grows with n there).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor, get_default_dtype
from ._common import as_tensor, is_scalar, result_type
from .nested_values import on_values
from .untracked import computed

# name -> (p0, p1, step): p1(x) and step(k, x, p_k, p_(k-1)) = p_(k+1), for the polynomial in t
# (t = 2x - 1 for the shifted ones).
_RECURRENCES = {
    "chebyshev_t": (lambda t: t, lambda k, t, p, q: 2.0 * t * p - q),
    "chebyshev_u": (lambda t: 2.0 * t, lambda k, t, p, q: 2.0 * t * p - q),
    "chebyshev_v": (lambda t: 2.0 * t - 1.0, lambda k, t, p, q: 2.0 * t * p - q),
    "chebyshev_w": (lambda t: 2.0 * t + 1.0, lambda k, t, p, q: 2.0 * t * p - q),
    "hermite_h": (lambda t: 2.0 * t, lambda k, t, p, q: 2.0 * t * p - 2.0 * k * q),
    "hermite_he": (lambda t: t, lambda k, t, p, q: t * p - k * q),
    "laguerre_l": (lambda t: 1.0 - t, lambda k, t, p, q: ((2 * k + 1 - t) * p - k * q) / (k + 1)),
    "legendre_p": (lambda t: t, lambda k, t, p, q: ((2 * k + 1) * t * p - k * q) / (k + 1)),
}


def _evaluate(kind: str, x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The polynomial of degree n(i) at x(i), float64 (x, n broadcast to one shape)."""
    x, nf = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(n, np.float64))
    with np.errstate(invalid="ignore"):
        deg = np.where(np.isnan(nf), -1, np.trunc(np.nan_to_num(nf, posinf=2**31, neginf=-1)))
    deg = deg.astype(np.int64)
    p1_fn, step = _RECURRENCES[kind]
    out = np.zeros(x.shape)  # n < 0: 0
    out = np.where(deg == 0, 1.0, out)
    top = int(deg.max(initial=0))
    if top >= 1:
        with np.errstate(over="ignore", invalid="ignore"):
            prev, cur = np.ones_like(x), p1_fn(x)
            out = np.where(deg == 1, cur, out)
            for k in range(1, top):
                prev, cur = cur, step(k, x, cur, prev)
                out = np.where(deg == k + 1, cur, out)
    if kind == "chebyshev_t":
        inside = (deg > 6) & (np.abs(x) < 1)
        with np.errstate(invalid="ignore"):
            out = np.where(inside, np.cos(deg * np.arccos(np.clip(x, -1, 1))), out)
    return out


def _polynomial(kind: str, shifted: bool, input, n) -> Tensor:
    """Broadcast and promote (input, n) as PyTorch's binary special ops, evaluate, wrap."""
    a = input if isinstance(input, Tensor) or is_scalar(input) else as_tensor(input)
    b = n if isinstance(n, Tensor) or is_scalar(n) else as_tensor(n)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = as_tensor(a)
    dt = result_type(a, b)
    if dt.kind not in "fV":
        dt = get_default_dtype()
    # Through untracked.computed (the tensors as inputs, a scalar as an argument): descent.
    # compile replays it on each call's values (it was frozen when the first two agreed).
    ins = tuple(v for v in (a, b) if isinstance(v, Tensor))
    scalars = tuple(None if isinstance(v, Tensor) else v for v in (a, b))
    return computed(_polynomial_kernel, ins, (kind, shifted, dt, *scalars))


def _polynomial_kernel(*args):
    """_evaluate on the arrays (args[:-5]) and scalars (args[-2:], None for an array's place);
    args[-5:-2] = (kind, shifted, dtype) (untracked.computed's kernel)."""
    (kind, shifted, dt, xs, ns), arrays = args[-5:], list(args[:-5])
    xp = backend.get_array_module(arrays[0])
    xa = backend.as_numpy(arrays.pop(0)) if xs is None else np.asarray(xs)
    na = backend.as_numpy(arrays.pop(0)) if ns is None else np.asarray(ns)
    t = 2.0 * np.asarray(xa, np.float64) - 1.0 if shifted else xa
    return xp.asarray(_evaluate(kind, t, na).astype(dt))


@on_values
def chebyshev_polynomial_t(input, n) -> Tensor:
    """Chebyshev polynomial of the first kind T_n(x)."""
    return _polynomial("chebyshev_t", False, input, n)


@on_values
def chebyshev_polynomial_u(input, n) -> Tensor:
    """Chebyshev polynomial of the second kind U_n(x)."""
    return _polynomial("chebyshev_u", False, input, n)


@on_values
def chebyshev_polynomial_v(input, n) -> Tensor:
    """Chebyshev polynomial of the third kind V_n(x)."""
    return _polynomial("chebyshev_v", False, input, n)


@on_values
def chebyshev_polynomial_w(input, n) -> Tensor:
    """Chebyshev polynomial of the fourth kind W_n(x)."""
    return _polynomial("chebyshev_w", False, input, n)


@on_values
def shifted_chebyshev_polynomial_t(input, n) -> Tensor:
    """T_n(2x - 1), the first-kind Chebyshev polynomial on [0, 1]."""
    return _polynomial("chebyshev_t", True, input, n)


@on_values
def shifted_chebyshev_polynomial_u(input, n) -> Tensor:
    """U_n(2x - 1)."""
    return _polynomial("chebyshev_u", True, input, n)


@on_values
def shifted_chebyshev_polynomial_v(input, n) -> Tensor:
    """V_n(2x - 1)."""
    return _polynomial("chebyshev_v", True, input, n)


@on_values
def shifted_chebyshev_polynomial_w(input, n) -> Tensor:
    """W_n(2x - 1)."""
    return _polynomial("chebyshev_w", True, input, n)


@on_values
def hermite_polynomial_h(input, n) -> Tensor:
    """The physicists' Hermite polynomial H_n(x)."""
    return _polynomial("hermite_h", False, input, n)


@on_values
def hermite_polynomial_he(input, n) -> Tensor:
    """The probabilists' Hermite polynomial He_n(x)."""
    return _polynomial("hermite_he", False, input, n)


@on_values
def laguerre_polynomial_l(input, n) -> Tensor:
    """The Laguerre polynomial L_n(x)."""
    return _polynomial("laguerre_l", False, input, n)


@on_values
def legendre_polynomial_p(input, n) -> Tensor:
    """The Legendre polynomial P_n(x)."""
    return _polynomial("legendre_p", False, input, n)
