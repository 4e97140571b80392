"""Backward namespace under `create_graph=True`: differentiable descent functions.

Mirrors `descent._nsfuncs` plus the NumPy names that backward code uses, so the same backward
code records a graph when given Tensors (see autograd.py).
"""

from __future__ import annotations

from . import _nsfuncs
from .ops.activation import erf, sigmoid, tanh  # noqa: F401
from .ops.elementwise import cast, cos, exp, log, maximum, minimum, sign, sin, sqrt, where  # noqa: F401
from .ops.indexing import AlongAxisGrad, IndexGrad
from .ops.indexing import take_along_axis as _take_along_axis
from .ops.linalg import einsum as _einsum
from .ops.linalg import matmul  # noqa: F401
from .ops.reduce import cumsum, softmax  # noqa: F401
from .ops.reduce import sum as _sum
from .ops.shape import broadcast_to, flip, roll, swapaxes, to_device, transpose, tril, triu  # noqa: F401
from .ops.shape import unsqueeze as expand_dims  # noqa: F401

is_graph = True


def sum(x, axis=None, keepdims=False):  # noqa: A001 - NumPy's name
    return _sum(x, axis, keepdims)


# These helpers only use methods that Tensors share with arrays (sum, reshape, slicing).
def sum_to(x, shape):
    return _nsfuncs.sum_to(None, x, shape)


def tile_grad(g, in_shape, reps):
    return _nsfuncs.tile_grad(None, g, in_shape, reps)


def pad_grad(g, pad_width):
    return _nsfuncs.pad_grad(None, g, pad_width)


def expand_reduced(g, shape, axis, keepdims):
    if not keepdims and axis is not None:
        g = g.reshape(_kept_shape(g.shape, axis, len(shape)))
    return broadcast_to(g, shape)


def _kept_shape(shape, axis, ndim):
    out, it = [], iter(shape)
    for i in range(ndim):
        out.append(1 if i in axis else next(it))
    return tuple(out)


def index_grad(g, shape, index, basic):
    return IndexGrad.apply(g, shape=shape, idx=index, basic=basic)


def along_axis_grad(g, shape, index, axis):
    return AlongAxisGrad.apply(g, shape=shape, idx=index, axis=axis)


def take_along_axis(x, index, axis):
    return _take_along_axis(x, index, axis)


def einsum(spec, *ops):
    return _einsum(spec, *ops)
