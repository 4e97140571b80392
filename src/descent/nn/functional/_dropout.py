"""Dropout: zero random elements while training, scaled so the expected value is unchanged.

Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting" (2014);
the "inverted" form (scale at training time, identity at evaluation) as PyTorch. The mask is a
constant multiplier, so the gradient needs no op of its own: d(x * m)/dx = m.
"""

from __future__ import annotations

import warnings

from ...creation import rand
from ...creation_random import draws_through_ops
from ...ops._common import as_tensor
from ...ops.untracked import computed
from ...tensor import Tensor
from ._inplace_apply import apply_inplace

__all__ = [
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "alpha_dropout",
    "feature_alpha_dropout",
]


def dropout_mask(shape, p: float, dtype, device, generator):
    """Inverted-dropout mask: 0 with probability p, else 1/(1-p) (so E[mask] = 1).

    Shared with scaled_dot_product_attention's dropout on the attention probabilities. A raw
    array of `dtype` on `device`: the caller multiplies it in as a constant.
    """
    u = rand(*shape, dtype=dtype, device=device, generator=generator)._data
    keep = u >= dtype.type(p)
    return keep * dtype.type(1.0 / (1.0 - p))


def dropout(
    input,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    generator=None,
) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (when training).

    The mask is drawn from `generator` (a descent.Generator) or descent's default generator.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability must lie in [0, 1], got {p}")
    x = as_tensor(input)
    if not training or p == 0.0:
        return x
    if x._nested_layout:  # a jagged nested tensor: a mask over its values (in place: refused)
        from ...nested import functional as _nf  # noqa: PLC0415 - descent.nested is lazy

        return _nf.dropout(x, p, training, generator, inplace=inplace)
    if p == 1.0:  # all dropped: the 1/(1-p) scale would divide by zero
        mask = 0.0
    else:
        mask = Tensor._wrap(dropout_mask(x.shape, p, x._data.dtype, x.device, generator))
    if inplace:  # the masked values stored in the input, as PyTorch (one mask either way)
        return apply_inplace(input, lambda t: t * mask, "dropout_")
    return x * mask


def _feature_dropout(x: Tensor, p: float, batched: bool, inplace=False, op="") -> Tensor:
    """x times one inverted-dropout mask value per (sample, channel); stored in x when
    `inplace` (`op` names the function in errors)."""
    if p == 1.0:
        mask = 0.0
    else:
        lead = 2 if batched else 1
        shape = tuple(x.shape[:lead]) + (1,) * (x.ndim - lead)  # (N, C, 1, ...) or (C, 1, ...)
        mask = Tensor._wrap(dropout_mask(shape, p, x._data.dtype, x.device, None))
    if inplace:
        return apply_inplace(x, lambda t: t * mask, op)
    return x * mask


def _check_p(p: float, op: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, L) or (C, L) with probability p (scaled by 1/(1-p))."""
    _check_p(p, "dropout1d")
    x = as_tensor(input)
    if x.ndim not in (2, 3):
        raise RuntimeError(
            f"dropout1d: Expected 2D or 3D input, but received a {x.ndim}D input. Note that "
            "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension"
        )
    if not training or p == 0.0:
        return x
    return _feature_dropout(x, p, batched=x.ndim == 3, inplace=inplace, op="dropout1d_")


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, H, W) or (C, H, W); a 3-D input is taken as (N, C, L)
    with a warning, as PyTorch."""
    _check_p(p, "dropout2d")
    x = as_tensor(input)
    if x.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {x.ndim}-D input to dropout2d, which is deprecated and will "
            "result in an error in a future release (expected 3D or 4D)",
            stacklevel=2,
        )
    if x.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L)",
            stacklevel=2,
        )
    if not training or p == 0.0:
        return x
    return _feature_dropout(x, p, batched=x.ndim >= 2, inplace=inplace, op="dropout2d_")


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W)."""
    _check_p(p, "dropout3d")
    x = as_tensor(input)
    if x.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {x.ndim}-D input to dropout3d, which is deprecated and will "
            "result in an error in a future release (expected 4D or 5D)",
            stacklevel=2,
        )
    if not training or p == 0.0:
        return x
    return _feature_dropout(x, p, batched=x.ndim != 4, inplace=inplace, op="dropout3d_")


# SELU's fixed point (Klambauer et al. 2017): dropped units go to -alpha * scale, and the affine
# correction a, b keeps the mean 0 and variance 1 of a SELU network's activations.
_ALPHA_PRIME = 1.7580993408473766


@draws_through_ops  # (descent.compile replays its draw: the mask is computed through ops)
def _alpha_dropout(x: Tensor, p: float, training: bool, feature: bool, op: str, inplace=False):
    _check_p(p, op)
    if not training or p == 0.0:
        return x
    if inplace:  # one mask, drawn by the out-of-place call, its result stored in x
        return apply_inplace(x, lambda t: _alpha_dropout(t, p, training, feature, op), op + "_")
    if p == 1.0:
        return x * 0.0
    lead = min(2, x.ndim) if feature else x.ndim
    shape = tuple(x.shape[:lead]) + (1,) * (x.ndim - lead)
    u = rand(*shape, dtype=x._data.dtype, device=x.device)
    # PyTorch's form: x * (keep * a) + ((keep - 1) * alpha' a + alpha' a p)
    return x * computed(_alpha_scale, (u,), (float(p),)) + computed(_alpha_shift, (u,), (float(p),))


def _alpha_keep(u, p: float):
    """The kept positions (1) of alpha dropout's draw `u`, in u's dtype, and the scale a."""
    keep = (u >= p).astype(u.dtype)
    return keep, 1.0 / ((_ALPHA_PRIME**2 * p + 1) * (1 - p)) ** 0.5


def _alpha_scale(u, p: float):
    """keep * a (alpha dropout's factor; untracked.computed's kernel)."""
    keep, a = _alpha_keep(u, p)
    return keep * u.dtype.type(a)


def _alpha_shift(u, p: float):
    """(keep - 1) * alpha' a + alpha' a p (alpha dropout's shift; untracked.computed's kernel)."""
    keep, a = _alpha_keep(u, p)
    b = (keep - 1) * (_ALPHA_PRIME * a) + _ALPHA_PRIME * a * p
    return b.astype(u.dtype)


def alpha_dropout(input, p: float = 0.5, training: bool = False, inplace: bool = False) -> Tensor:
    """Dropout for SELU networks: dropped elements take SELU's negative saturation value and an
    affine correction keeps the mean and variance (default training=False, as PyTorch)."""
    return _alpha_dropout(as_tensor(input), p, training, False, "alpha_dropout", inplace)


def feature_alpha_dropout(
    input, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """alpha_dropout of whole channels (one mask value per (sample, channel))."""
    return _alpha_dropout(as_tensor(input), p, training, True, "feature_alpha_dropout", inplace)
