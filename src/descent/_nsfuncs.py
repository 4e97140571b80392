"""Array-level helpers for the fast backward namespace.

Backward code is written once against a namespace `F` (see autograd.py). On raw arrays `F` is
NumPy/CuPy itself plus the functions below, each taking the array module `xp` first (bound by
`autograd._ArrayNamespace`). Every function here has a differentiable twin of the same name and
signature in `descent._graphns`, used under `create_graph=True`.
"""

from __future__ import annotations

import numpy as np

from . import backend


def sum_to(xp, x, shape):
    """Sum `x` over the dimensions that broadcasting added or stretched, giving `shape`."""
    shape = tuple(shape)
    lead = x.ndim - len(shape)
    if lead < 0:
        raise ValueError(f"cannot sum shape {x.shape} to {shape}")
    axes = list(range(lead))
    for i, n in enumerate(shape):
        if n == 1 and x.shape[lead + i] != 1:
            axes.append(lead + i)
        elif n != x.shape[lead + i]:
            raise ValueError(f"cannot sum shape {x.shape} to {shape}")
    y = x.sum(axis=tuple(axes), keepdims=True) if axes else x
    if lead:
        y = y.reshape(shape)
    return y


def expand_reduced(xp, g, shape, axis, keepdims):
    """Broadcast a reduction's gradient `g` back to the input `shape` (a read-only view)."""
    if not keepdims and axis is not None:
        g = xp.expand_dims(g, axis)
    return xp.broadcast_to(g, shape)


def cumsum(xp, x, axis):
    return xp.cumsum(x, axis=axis)


def index_grad(xp, g, shape, index, basic):
    """zeros(shape) with `g` added at `index`; repeated advanced indices accumulate."""
    out = xp.zeros(shape, dtype=g.dtype)
    if basic:
        out[index] = g
    else:
        backend.scatter_add(out, index, g)
    return out


def sigmoid(xp, x):
    # Split by sign so that exp never overflows: sigmoid(x) = 1/(1+e^-x) = e^x/(1+e^x).
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


def erf(xp, x):
    return backend.erf(xp, x)


def softmax(xp, x, axis):
    m = x.max(axis=axis, keepdims=True)
    e = xp.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def cast(xp, x, dtype):
    return x.astype(dtype, copy=False)


def flip(xp, x, axis):
    return xp.flip(x, axis)


def roll(xp, x, shift, axis):
    return xp.roll(x, shift, axis)


def tile_grad(xp, g, in_shape, reps):
    """Sum the copies that np.tile made back onto the original block."""
    nd = g.ndim
    in_full = (1,) * (nd - len(in_shape)) + tuple(in_shape)
    reps_full = (1,) * (nd - len(reps)) + tuple(reps)
    split = []
    for r, n in zip(reps_full, in_full):
        split += [r, n]
    g = g.reshape(split).sum(axis=tuple(range(0, 2 * nd, 2)))
    return g.reshape(in_shape)


def along_axis_grad(xp, g, shape, index, axis):
    """Gradient of take_along_axis: scatter-add `g` into zeros(shape) at `index` along `axis`."""
    out = xp.zeros(shape, dtype=g.dtype)
    backend.scatter_add(out, along_axis_index(xp, index, axis), g)
    return out


def along_axis_index(xp, index, axis):
    """The full advanced-index tuple that take_along_axis(x, index, axis) reads."""
    nd = index.ndim
    idx = []
    for d in range(nd):
        if d == axis:
            idx.append(index)
        else:
            shp = [1] * nd
            shp[d] = index.shape[d]
            idx.append(xp.arange(index.shape[d]).reshape(shp))
    return tuple(idx)


def take_along_axis(xp, x, index, axis):
    return xp.take_along_axis(x, index, axis=axis)


def pad_grad(xp, g, pad_width):
    sl = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(pad_width))
    return g[sl]


def einsum(xp, subscripts, *ops):
    return xp.einsum(subscripts, *ops, optimize=len(ops) > 2)


def tril(xp, x, k=0):
    return xp.tril(x, k)


def triu(xp, x, k=0):
    return xp.triu(x, k)


def to_device(xp, x, device):
    return backend.to_device(x, device)


def is_float(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)
