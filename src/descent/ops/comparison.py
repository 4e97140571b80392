"""Comparisons, logic and value tests: they return bool tensors and record no gradient.

`x == y`, `x < 0`, `~mask`, `isnan(x)`: piecewise-constant functions, whose derivative is zero
wherever it exists, so they are computed on the arrays and wrapped without a graph node (as in
PyTorch, where comparison results never require grad).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..tensor import Tensor
from ._common import as_tensor


# One factory for the nine binary comparisons and logic ops: each is a NumPy/CuPy ufunc on the
# arrays, with descent's broadcast error (naming both shapes) instead of NumPy's.
def _compare(ufunc_name):
    def fn(a, b) -> Tensor:
        ta = a if isinstance(a, Tensor) else None
        tb = b if isinstance(b, Tensor) else None
        # Python scalars and arrays are compared as they are: no dtype decision is needed for a bool
        # result.
        av = a._data if ta is not None else a
        bv = b._data if tb is not None else b
        if ta is not None and tb is not None and ta._data.shape != tb._data.shape:
            try:
                np.broadcast_shapes(ta._data.shape, tb._data.shape)
            except ValueError:
                raise ValueError(
                    f"{ufunc_name}: shapes {ta.shape} and {tb.shape} cannot be broadcast together"
                ) from None
        xp = backend.get_array_module(av, bv)
        return Tensor._wrap(getattr(xp, ufunc_name)(av, bv))

    fn.__name__ = ufunc_name
    return fn


eq = _compare("equal")
ne = _compare("not_equal")
lt = _compare("less")
le = _compare("less_equal")
gt = _compare("greater")
ge = _compare("greater_equal")
logical_and = _compare("logical_and")
logical_or = _compare("logical_or")
logical_xor = _compare("logical_xor")


def logical_not(x) -> Tensor:
    x = as_tensor(x)
    xp = backend.get_array_module(x._data)
    # `~mask` negates a bool tensor; on integers `~` is the bitwise invert, as in NumPy/PyTorch.
    if x._data.dtype == np.bool_:
        return Tensor._wrap(xp.logical_not(x._data))
    return Tensor._wrap(xp.invert(x._data))


def isfinite(x) -> Tensor:
    x = as_tensor(x)
    return Tensor._wrap(backend.get_array_module(x._data).isfinite(x._data))


def isnan(x) -> Tensor:
    x = as_tensor(x)
    return Tensor._wrap(backend.get_array_module(x._data).isnan(x._data))


def isinf(x) -> Tensor:
    x = as_tensor(x)
    return Tensor._wrap(backend.get_array_module(x._data).isinf(x._data))


def allclose(a, b, rtol=1e-5, atol=1e-8) -> bool:
    a = as_tensor(a)
    b = as_tensor(b)
    # A Python bool (PyTorch's allclose returns one too): the arrays are compared on the host.
    return bool(np.allclose(backend.as_numpy(a._data), backend.as_numpy(b._data), rtol, atol))
