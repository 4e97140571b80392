"""The differentiable backward namespace: what op backward code calls under create_graph=True.

An op's `backward(self, gy, ops)` is written once (see autograd.py, "Two namespaces, one
backward"). Under `create_graph=True` the engine hands it Tensors and this module as `ops`, so
every operation of the backward is a recorded, differentiable op and the gradient can be
differentiated again. It offers exactly the names of the array namespace
(`descent.array_backward`): each helper there has a twin here with the same name and the same
parameters after the array module `xp`, and the array-module names that backward code uses
(`array_backward.ARRAY_MODULE_NAMES`) are descent's ops of the same name.
`tests/test_engine.py::test_backward_namespaces_offer_the_same_names` checks it.

`descent.ops` registers this module with the engine at import
(`autograd._register_graph_namespace`).
"""

from __future__ import annotations

# Names whose op has the array function's signature are re-exported as they are (`x as x`):
# the array module's own names that backward code uses (where, exp, ...) and a few helpers'
# twins (cast, erf, sigmoid, to_device). The rest are defined below.
import numpy as _np

from .. import array_backward, backend
from ..autograd import _new_tensor
from . import reduce as _reduce
from . import shape as _shape
from . import softmax as _softmax
from .activation import erf as erf
from .activation import sigmoid as sigmoid
from .activation import tanh as tanh
from .elementwise import cast as cast
from .elementwise import cos as cos
from .elementwise import exp as exp
from .elementwise import log as log
from .elementwise import maximum as maximum
from .elementwise import minimum as minimum
from .elementwise import sign as sign
from .elementwise import sin as sin
from .elementwise import where as where
from .indexing import AlongAxisGrad, IndexGrad
from .indexing import take_along_axis as _take_along_axis
from .linalg import einsum as _einsum
from .shape import broadcast_to as broadcast_to
from .shape import swapaxes as swapaxes
from .shape import to_device as to_device
from .shape import transpose as transpose

# Backward code tests `ops.is_graph` where the array and Tensor forms must differ (a fused
# kernel that only exists for arrays, a constant mask that must be wrapped as a Tensor).
is_graph = True


# Helpers whose array code uses only methods that Tensors share with arrays (sum, reshape,
# slicing) run that very code on Tensors: one implementation, recorded when given Tensors.
def sum_to(x, shape):
    return array_backward.sum_to(None, x, shape)


def tile_grad(g, in_shape, reps):
    return array_backward.tile_grad(None, g, in_shape, reps)


def pad_grad(g, pad_width):
    return array_backward.pad_grad(None, g, pad_width)


# np.expand_dims takes a tuple of axes; descent's unsqueeze takes one, so the reduced axes
# are put back with one reshape instead.
def expand_reduced(g, shape, axis, keepdims):
    if not keepdims and axis is not None:
        g = g.reshape(_kept_shape(g.shape, axis, len(shape)))
    return broadcast_to(g, shape)


def _kept_shape(shape, axis, ndim):
    """`shape` with size-1 dimensions re-inserted at the reduced `axis` positions."""
    out, it = [], iter(shape)
    for i in range(ndim):
        out.append(1 if i in axis else next(it))
    return tuple(out)


# The scatter helpers are ops of their own (IndexGrad, AlongAxisGrad): their backward is the
# matching gather, so gradients of gradients flow through them.
def index_grad(g, shape, index, basic):
    return IndexGrad.apply(g, shape=shape, idx=index, basic=basic)


def pieces_grad(gs, shape, indices):
    """array_backward.pieces_grad as recorded ops: the pieces' gradients (an int index's
    unsqueezed) concatenated along their axis, constant zeros for a piece that got none; the
    cat's backward reads each piece's part back (create_graph through split)."""
    got = [g for g in gs if g is not None]
    dtype = _np.result_type(*[g._data.dtype for g in got]) if len(got) > 1 else None
    xp = backend.get_array_module(got[0]._data)
    parts = []
    axis = len(indices[0]) - 1
    for g, idx in zip(gs, indices):
        last = idx[-1]
        if g is None:
            region = list(shape)
            region[axis] = 1 if type(last) is not slice else len(range(*last.indices(shape[axis])))
            g = _new_tensor(xp.zeros(region, dtype=dtype or got[0]._data.dtype))
        elif type(last) is not slice:
            g = _shape.unsqueeze(g, axis)
        if dtype is not None and g._data.dtype != dtype:
            g = cast(g, dtype)
        parts.append(g)
    return _shape.concatenate(parts, axis)


def along_axis_grad(g, shape, index, axis):
    return AlongAxisGrad.apply(g, shape=shape, idx=index, axis=axis)


def along_axis_index(index, axis):
    # An index is a constant of the graph (an array), not a Tensor: the array helper serves.
    return array_backward.along_axis_index(backend.get_array_module(index), index, axis)


def take_along_axis(x, index, axis):
    return _take_along_axis(x, index, axis)


def einsum(subscripts, *operands):
    return _einsum(subscripts, *operands)


def cumsum(x, axis):
    return _reduce.cumsum(x, axis)


def softmax(x, axis):
    return _softmax.softmax(x, axis)


def flip(x, axis):
    return _shape.flip(x, axis)


def roll(x, shift, axis):
    return _shape.roll(x, shift, axis)


def tril(x, k=0):
    return _shape.tril(x, k)


def triu(x, k=0):
    return _shape.triu(x, k)


def expand_dims(x, axis):
    return _shape.unsqueeze(x, axis)
