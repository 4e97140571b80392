"""Helpers shared by the op modules: operand conversion and axis arguments."""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor

_SCALARS = (int, float, bool, np.generic)


def is_scalar(x) -> bool:
    return isinstance(x, _SCALARS) and not isinstance(x, np.ndarray)


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Turn an operand into a Tensor. Python scalars take `like`'s dtype (no silent upcast)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, _SCALARS):
        dt = like.data.dtype
        if dt.kind != "f" and isinstance(x, (float, np.floating)):
            dt = np.dtype(np.float32)
        elif dt.kind == "b" and not isinstance(x, (bool, np.bool_)):
            dt = np.dtype(np.int64) if isinstance(x, numbers.Integral) else np.dtype(np.float32)
        xp = backend.get_array_module(like.data)
        return Tensor._wrap(xp.asarray(x, dtype=dt))
    if like is not None and backend.is_cupy_array(like.data) and not backend.is_cupy_array(x):
        xp = backend.get_array_module(like.data)
        return Tensor._wrap(xp.asarray(Tensor(x).data))
    return Tensor(x)


def check_devices(op: str, *tensors: Tensor) -> None:
    """Raise a clear error when tensors on two devices meet in one op."""
    dev = None
    for t in tensors:
        d = t.device
        if dev is None:
            dev = d
        elif d != dev:
            shapes = ", ".join(f"{tuple(x.shape)} on {x.device}" for x in tensors)
            raise RuntimeError(
                f"{op}: tensors on different devices ({shapes}); move them to one device with "
                ".to(device) first"
            )


def axis_arg(axis, dim):
    """`dim` is PyTorch's name for NumPy's `axis`; accept either, not both."""
    if dim is not None:
        if axis is not None:
            raise TypeError("pass either axis= or dim=, not both")
        return dim
    return axis


def keepdims_arg(keepdims, keepdim) -> bool:
    return bool(keepdim) if keepdim is not None else bool(keepdims)


def normalize_axis(axis, ndim: int):
    """A sorted tuple of non-negative axes, or None for all axes."""
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        axes = tuple(sorted(_one_axis(a, ndim) for a in axis))
        return axes
    return (_one_axis(axis, ndim),)


def _one_axis(a, ndim: int) -> int:
    a = int(a)
    if not -max(ndim, 1) <= a < max(ndim, 1):
        raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
    return a % max(ndim, 1)


def shape_arg(shape) -> tuple:
    """Accept reshape(2, 3) and reshape((2, 3))."""
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        return tuple(shape[0])
    return tuple(shape)


def apply_binary(op, a, b):
    """Apply a binary op after converting scalars (in the other operand's dtype)."""
    if not isinstance(a, Tensor):
        a = as_tensor(a, b if isinstance(b, Tensor) else None)
    if not isinstance(b, Tensor):
        b = as_tensor(b, a)
    if a.data.shape != b.data.shape:
        check_broadcast(op, a, b)
    return op.apply(a, b)


def check_broadcast(op, a, b) -> None:
    try:
        np.broadcast_shapes(a.data.shape, b.data.shape)
    except ValueError:
        raise ValueError(
            f"{op.__name__.lower()}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
            "broadcast together (trailing dimensions must be equal or 1); reshape or unsqueeze "
            "one operand"
        ) from None
    if type(a.data) is not type(b.data):
        check_devices(op.__name__.lower(), a, b)
