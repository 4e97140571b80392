"""A few of torch's top-level functions that are neither ops nor constructors of their own:
`asarray` (torch.asarray's aliasing rules over `as_tensor`), `poisson` (samples, with
PyTorch's zero gradient), `can_cast` (PyTorch's casting rule) and `set_printoptions` (from
`print_options`, which `Tensor.__repr__` reads).
"""

from __future__ import annotations

import warnings

import numpy as np

from . import backend
from .creation import _rng, as_tensor, tensor
from .creation_random import _replayable
from .creation_random import draws_through_ops as _draws_through_ops
from .dtypes import scalar_type
from .ops.elementwise import where
from .print_options import set_printoptions
from .tensor import Tensor

__all__ = ["asarray", "can_cast", "poisson", "set_printoptions"]

_UNSET = object()


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=_UNSET) -> Tensor:
    """`obj` as a tensor, sharing memory where it can (torch.asarray).

    A Tensor comes back as it is (the same object) when neither dtype nor device changes it,
    else converted with its graph kept; a NumPy array is shared when its dtype fits; anything
    else (lists, scalars) follows `descent.tensor`'s dtype rules.

    Args:
        obj: a Tensor, NumPy (or CuPy) array, Python scalar or nested sequence.
        dtype, device: the result's, when given.
        copy: True always copies; False raises when a copy would be needed; None copies only
            when needed.
        requires_grad: the result requires grad. Unset, a Tensor keeps its own (PyTorch 2.13's
            rule, with its warning when that is True); True on a Tensor with a history keeps it.

    Raises:
        ValueError: copy=False and a dtype or device conversion is needed.
    """
    dt = None if dtype is None else np.dtype(dtype)
    if isinstance(obj, Tensor):
        if requires_grad is _UNSET and obj.requires_grad:
            warnings.warn(
                "descent.asarray: unspecified requires_grad now defaults to obj.requires_grad "
                "instead of False. Pass requires_grad=False explicitly to get the old behavior "
                "and silence this warning.",
                UserWarning,
                stacklevel=2,
            )
        rg = obj.requires_grad if requires_grad is _UNSET else bool(requires_grad)
        needs = (dt is not None and dt != obj.dtype) or (
            device is not None and backend.normalize_device(device) != str(obj.device)
        )
        if needs and copy is False:
            raise ValueError(f"can't alias tensor with dtype {obj.dtype} into dtype {dt} "
                             f"(device {device}) without a copy")  # fmt: skip
        out = obj.detach() if obj.requires_grad and not rg else obj
        if needs:
            out = out.to(device=device, dtype=dt)
        elif copy:
            out = out.clone()
        if rg and not out.requires_grad:
            out.requires_grad_(True)
        return out
    rg = False if requires_grad is _UNSET else bool(requires_grad)
    if isinstance(obj, np.ndarray) or backend.is_cupy_array(obj):
        fits = dt is None or dt == obj.dtype
        if not fits and copy is False:
            raise ValueError(f"can't alias array with dtype {obj.dtype} into dtype {dt}")
        out = as_tensor(obj, dtype=dt, device=device)
        if copy and np.shares_memory(backend.as_numpy(out._data), backend.as_numpy(obj)):
            out = Tensor._wrap(out._data.copy())
    else:
        out = tensor(obj, dtype=dt, device=device)
    return out.requires_grad_(True) if rg else out


@_replayable
def _poisson_draws(x: Tensor, generator) -> Tensor:
    """Poisson samples with the rates in x, in x's dtype (checked: non-negative, not NaN); a
    sampling function that descent.compile keeps as a Draw (creation_random._replayable)."""
    rates = backend.as_numpy(x._data)
    if (rates < 0).any() or np.isnan(rates).any():
        raise RuntimeError("invalid Poisson rate, expected rate to be non-negative")
    rng = _rng(generator, str(x.device))
    xp = backend.get_array_module(x._data)
    draws = rng.poisson(x._data.astype(np.float64))
    return Tensor._wrap(xp.asarray(draws).astype(x._data.dtype))


@_draws_through_ops
def poisson(input, generator=None) -> Tensor:
    """Samples from Poisson distributions with the rates in `input` (torch.poisson), in the
    input's floating dtype. Its gradient is zero, as PyTorch's (the samples are constants that
    still connect to the input's graph)."""
    x = as_tensor(input)
    if x._data.dtype.kind not in "fV":
        name = scalar_type(x._data.dtype)  # PyTorch's ScalarType name ('Long')
        raise NotImplementedError(f"\"poisson_cpu\" not implemented for '{name}'")
    sample = _poisson_draws(x.detach(), generator)
    if not x.requires_grad:
        return sample
    xp = backend.get_array_module(x._data)
    # where(False, input, sample): the sample's values, and zeros as the input's gradient.
    return where(Tensor._wrap(xp.zeros(x._data.shape, bool)), x, sample)


# PyTorch's rule (c10::canCast): a floating type never casts to an integral one, nothing but
# bool to bool; everything else may.
def can_cast(from_, to) -> bool:
    """Whether PyTorch's type promotion may cast `from_` to `to` (torch.can_cast)."""
    f, t = np.dtype(from_), np.dtype(to)
    if f.kind in "fV" and t.kind in "iub":
        return False
    if f.kind == "c" and t.kind != "c":  # (complex to a real dtype: False, as PyTorch)
        return False
    return not (f.kind != "b" and t.kind == "b")
