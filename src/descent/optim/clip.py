"""Gradient clipping: rescale (or clamp) the gradients in place before an optimizer step."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import backend
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list:
    """The raw gradient arrays of the parameters that have one."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad._data for p in parameters if p.grad is not None]


def clip_grad_norm_(
    parameters: Iterable[Tensor] | Tensor,
    max_norm: float,
    norm_type: float | str = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    r"""Scale all gradients together so that their joint norm is at most `max_norm`.

    The norm is taken over all gradients as if concatenated into one vector,
    ‖g‖ₚ = (Σᵢ Σⱼ |gᵢⱼ|ᵖ)^(1/p), and every gradient is multiplied in place by
    min(1, max_norm / (‖g‖ₚ + 1e-6)), as `torch.nn.utils.clip_grad_norm_` does.

    Args:
        parameters: a Tensor or an iterable of Tensors; those without `.grad` are ignored.
        max_norm: the largest norm allowed.
        norm_type: p of the p-norm; `float('inf')` or `'inf'` for the largest absolute value.
        error_if_nonfinite: raise when the total norm is nan or inf (else the gradients are
            scaled by it anyway, as in PyTorch).
        foreach: accepted for PyTorch compatibility; ignored.

    Returns:
        The total norm of the gradients BEFORE clipping, a 0-d Tensor of the gradients' dtype.

    Raises:
        RuntimeError: `error_if_nonfinite` is set and the norm is nan or inf.
    """
    norm, grads, coef = _norm_and_coef(parameters, max_norm, norm_type, error_if_nonfinite)
    if coef is not None:
        scale(grads, coef)
    return norm


def _norm_and_coef(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                   foreach=None) -> tuple:
    """clip_grad_norm_ without its scaling: (the total norm as a 0-d Tensor, the gradient
    arrays, the coefficient to scale them by, or None where they stay as they are: coef >= 1,
    or a GPU, where the scaling has run). descent.compile's replay calls it directly and folds
    the scaling into the Adam/AdamW step that follows (compiler/fusion.AdamFastStep): the same
    float32 products g * coef, so the same bits."""
    del foreach
    grads = _grads(parameters)
    p = float(norm_type)
    max_norm = float(max_norm)
    if not grads:
        return Tensor(0.0), grads, None
    g0 = grads[0]
    xp = backend.get_array_module(g0)
    dtype = g0.dtype
    if dtype.kind == "c":  # complex gradients: the norm of the moduli, a real number
        dtype = g0.real.dtype
    if xp is not np and not error_if_nonfinite and backend.is_cupy_array(g0):
        return _clip_on_device(xp, grads, p, max_norm, dtype), grads, None
    # Each gradient's contribution is reduced in its own dtype (no float64 copies); the
    # contributions are summed as Python floats (on a GPU: on the device, then one transfer).
    if p == math.inf:
        maxima = [xp.abs(g).max() for g in grads if g.size]
        total = float(xp.stack(maxima).max()) if maxima else 0.0
    elif p == 2.0:
        flat = [g.ravel() for g in grads]
        total = math.sqrt(backend.host_sum([xp.vdot(f, f).real for f in flat]))
    elif p == 1.0:
        total = backend.host_sum(xp.abs(g).sum() for g in grads)
    else:
        total = backend.host_sum((xp.abs(g) ** p).sum() for g in grads) ** (1.0 / p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {p} of the gradients is {total}, so it "
            "cannot be clipped. Find where the gradient overflows (descent.explain can help), or "
            "pass error_if_nonfinite=False to scale by the non-finite norm anyway"
        )
    # The coefficient in the gradients' dtype, as PyTorch computes it from its float32 norm.
    norm = xp.asarray(total, dtype=dtype)
    coef = dtype.type(max_norm) / (norm + dtype.type(1e-6))
    # (not coef >= 1: also scales by a nan coefficient, as PyTorch does)
    return Tensor._wrap(norm), grads, None if coef >= 1.0 else coef


def scale(grads: list, coef) -> None:
    """g *= coef for each gradient array in place (clip_grad_norm_'s scaling; a nan
    coefficient scales too, as in PyTorch)."""
    with np.errstate(invalid="ignore"):  # inf * 0 = nan, silently as in PyTorch
        for g in grads:
            g *= coef


def _clip_on_device(xp, grads: list, p: float, max_norm: float, dtype) -> Tensor:
    """GPU path: the norm and the coefficient stay device scalars, so clipping costs no host
    synchronisation (the CPU path's `if coef < 1` would need one). Every gradient is multiplied
    by min(1, coef), as PyTorch's foreach implementation does."""
    f64 = xp.float64
    if p == math.inf:
        maxima = [xp.abs(g).max().astype(f64) for g in grads if g.size]
        total = xp.stack(maxima).max() if maxima else xp.zeros((), f64)
    elif p == 2.0:
        total = xp.sqrt(xp.stack([xp.vdot(g.ravel(), g.ravel()).astype(f64) for g in grads]).sum())
    elif p == 1.0:
        total = xp.stack([xp.abs(g).sum().astype(f64) for g in grads]).sum()
    else:
        total = xp.stack([(xp.abs(g) ** p).sum().astype(f64) for g in grads]).sum() ** (1.0 / p)
    norm = total.astype(dtype)
    coef = xp.minimum(dtype.type(max_norm) / (norm + dtype.type(1e-6)), dtype.type(1.0))
    for g in grads:
        g *= coef
    return Tensor._wrap(norm)


def clip_grad_value_(
    parameters: Iterable[Tensor] | Tensor, clip_value: float, foreach: bool | None = None
) -> None:
    """Clamp every gradient in place to [-clip_value, clip_value].

    Args:
        parameters: a Tensor or an iterable of Tensors; those without `.grad` are ignored.
        clip_value: the largest absolute value allowed (>= 0).
        foreach: accepted for PyTorch compatibility; ignored.
    """
    del foreach
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for g in _grads(parameters):
        xp = backend.get_array_module(g)
        xp.clip(g, -clip_value, clip_value, out=g)
