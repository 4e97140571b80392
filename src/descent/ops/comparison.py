"""Comparisons, logic and value tests: they return bool tensors and record no gradient.

`x == y`, `x < 0`, `~mask`, `isnan(x)`: piecewise-constant functions, whose derivative is zero
wherever it exists, so they are computed on the arrays and wrapped without a graph node (as in
PyTorch, where comparison results never require grad).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..errors import DescentError, DtypeError
from ..tensor import Tensor, get_default_dtype
from ._common import as_tensor, is_scalar, result_type, wrap_int
from .untracked import computed, seen


# One factory for the nine binary comparisons and logic ops: each is a NumPy/CuPy ufunc on the
# arrays, with descent's broadcast error (naming both shapes) instead of NumPy's.
def _compare(ufunc_name, promotes=True, ordered=False, logical=False):
    def fn(a, b) -> Tensor:
        ta = a if isinstance(a, Tensor) else None
        tb = b if isinstance(b, Tensor) else None
        if ordered:  # < <= > >= have no complex kernel in PyTorch
            _refuse_complex_order(ufunc_name, a, b)
        elif logical and (ta is None or tb is None) and (is_scalar(a) or is_scalar(b)):
            raise TypeError(  # torch.logical_and(x, 2.5): its argument parser's TypeError
                f"{ufunc_name}(): argument 'other' (position 2) must be Tensor, not "
                f"{type(b if ta is not None else a).__name__}"
            )
        # Python scalars and arrays are compared as they are, except where PyTorch's promotion
        # changes the values compared (below).
        av = a._data if ta is not None else a
        bv = b._data if tb is not None else b
        dta = dtb = None  # the dtypes the tensors' arrays are compared in, where converted
        # An int out of an integer tensor's range wraps to its dtype first, as in PyTorch
        # (uint8 == -2 is uint8 == 254); NumPy would compare the exact values.
        if type(bv) is int and ta is not None:
            bv = wrap_int(bv, av.dtype)
        elif type(av) is int and tb is not None:
            av = wrap_int(av, bv.dtype)
        elif promotes:
            # PyTorch compares in torch.result_type: a float32 tensor with a float64 0-d tensor
            # in float32 (x == tensor(0.1, float64) holds where x is 0.1), an int tensor with a
            # Python float in float32 (16777217 == 16777216.0); NumPy would widen both.
            if ta is not None and tb is not None:
                if av.dtype != bv.dtype:
                    dta = dtb = result_type(ta, tb)
            elif type(bv) is float and ta is not None and av.dtype.kind in "biu":
                dta = get_default_dtype()
            elif type(av) is float and tb is not None and bv.dtype.kind in "biu":
                dtb = get_default_dtype()
        if ta is not None and tb is not None:
            _check_shapes(ufunc_name, ta, tb)
        if ta is not None and tb is not None:
            inputs, side, scalar = (ta, tb), None, None
        elif ta is not None:
            inputs, side, scalar = (ta,), 1, bv
        elif tb is not None:
            inputs, side, scalar = (tb,), 0, av
        else:
            inputs = None
        out = Tensor._wrap(_compare_arrays(av, bv, ufunc_name, dta, dtb))
        if inputs is None:
            return out
        return seen(_compare_kernel, inputs, (ufunc_name, side, scalar, dta, dtb), out)

    fn.__name__ = ufunc_name
    return fn


def _compare_arrays(av, bv, ufunc_name, dta, dtb):
    if dta is not None:
        av = av.astype(dta, copy=False)
    if dtb is not None:
        bv = bv.astype(dtb, copy=False)
    return getattr(backend.get_array_module(av, bv), ufunc_name)(av, bv)


def _compare_kernel(*arrays_and_args):
    """A comparison on its tensors' arrays (ops/untracked.py): `side` is where the scalar
    operand goes (0: first, 1: second, None: both operands are arrays)."""
    *arrays, ufunc_name, side, scalar, dta, dtb = arrays_and_args
    if side is None:
        av, bv = arrays
    elif side == 0:
        av, bv = scalar, arrays[0]
    else:
        av, bv = arrays[0], scalar
    return _compare_arrays(av, bv, ufunc_name, dta, dtb)


def _unary_kernel(x, ufunc_name):
    """A one-operand ufunc with a bool or integer result (logical_not, isnan, ~x, ...)."""
    return getattr(backend.get_array_module(x), ufunc_name)(x)


def _unary(x: Tensor, ufunc_name: str) -> Tensor:
    out = Tensor._wrap(_unary_kernel(x._data, ufunc_name))
    return seen(_unary_kernel, (x,), (ufunc_name,), out)


def _refuse_complex_order(name, a, b) -> None:
    for v in (a, b):
        if v._data.dtype.kind == "c" if isinstance(v, Tensor) else isinstance(v, complex):
            raise DtypeError(
                f'"{name}": not implemented for complex operands (compare .real or .abs()), '
                "as in PyTorch"
            )


eq = _compare("equal")
ne = _compare("not_equal")
lt = _compare("less", ordered=True)
le = _compare("less_equal", ordered=True)
gt = _compare("greater", ordered=True)
ge = _compare("greater_equal", ordered=True)
# Logical ops take any dtype (nonzero is true) and return bool, as torch.logical_*; the other
# operand must be a tensor too (PyTorch's signature).
logical_and = _compare("logical_and", promotes=False, logical=True)
logical_or = _compare("logical_or", promotes=False, logical=True)
logical_xor = _compare("logical_xor", promotes=False, logical=True)


def logical_not(x) -> Tensor:
    """True where x is zero (any dtype; floats included), as torch.logical_not."""
    x = as_tensor(x)
    return _unary(x, "logical_not")


# ---------------------------------------------------------------------------------------------
# Bitwise ops: `& | ^ ~ << >>`. On integer tensors they work bit by bit and keep the integer
# dtype (PyTorch's promotion between the operands); on bool tensors `& | ^ ~` are the logical
# ops. Floating tensors have no bits to combine: an error names the op and the way out.


def _bitwise(name, ufunc_name, bool_ok=True):
    def fn(a, b) -> Tensor:
        if not isinstance(a, Tensor) and not isinstance(b, Tensor):
            a = as_tensor(a)
        # Lists and arrays become tensors; Python scalars stay weak (they never widen a tensor).
        if not isinstance(a, Tensor) and not is_scalar(a):
            a = as_tensor(a)
        if not isinstance(b, Tensor) and not is_scalar(b):
            b = as_tensor(b)
        dt = result_type(a, b)
        if dt.kind not in ("iub" if bool_ok else "iu"):
            raise DtypeError(
                f"{name}: defined for integer{' and bool' if bool_ok else ''} tensors, got "
                f"dtype {dt}; use logical_and/or/xor for truth values, or cast first "
                "(x.long())"
            )
        ta = a if isinstance(a, Tensor) else b
        xp = backend.get_array_module(ta._data)
        # astype(copy=False), not asarray: a meta array stays one (asarray makes a plain view)
        av = a._data.astype(dt, copy=False) if isinstance(a, Tensor) else xp.asarray(
            wrap_int(a, dt), dtype=dt)
        bv = b._data.astype(dt, copy=False) if isinstance(b, Tensor) else xp.asarray(
            wrap_int(b, dt), dtype=dt)
        try:
            np.broadcast_shapes(av.shape, bv.shape)
        except ValueError:
            raise DescentError(
                f"{name}: shapes {tuple(av.shape)} and {tuple(bv.shape)} cannot be "
                "broadcast together"
            ) from None
        out = Tensor._wrap(getattr(xp, ufunc_name)(av, bv))
        if isinstance(a, Tensor) and isinstance(b, Tensor):
            return seen(_bitwise_kernel, (a, b), (ufunc_name, dt, None, None), out)
        side, scalar = (1, wrap_int(b, dt)) if isinstance(a, Tensor) else (0, wrap_int(a, dt))
        return seen(_bitwise_kernel, (ta,), (ufunc_name, dt, side, scalar), out)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise {name} (integer and bool tensors; no gradient)."
    return fn


def _bitwise_kernel(*arrays_and_args):
    """A bitwise op on its tensors' arrays, as `_bitwise` computes it (ops/untracked.py)."""
    *arrays, ufunc_name, dt, side, scalar = arrays_and_args
    xp = backend.get_array_module(arrays[0])
    if side is None:
        av, bv = (v.astype(dt, copy=False) for v in arrays)
    elif side == 0:
        av, bv = xp.asarray(scalar, dtype=dt), arrays[0].astype(dt, copy=False)
    else:
        av, bv = arrays[0].astype(dt, copy=False), xp.asarray(scalar, dtype=dt)
    return getattr(xp, ufunc_name)(av, bv)


bitwise_and = _bitwise("bitwise_and", "bitwise_and")
bitwise_or = _bitwise("bitwise_or", "bitwise_or")
bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor")
bitwise_left_shift = _bitwise("bitwise_left_shift", "left_shift", bool_ok=False)
bitwise_right_shift = _bitwise("bitwise_right_shift", "right_shift", bool_ok=False)


def bitwise_not(x) -> Tensor:
    """~x: the bitwise complement of an integer tensor, logical not of a bool tensor."""
    x = as_tensor(x)
    if x._data.dtype.kind not in "iub":
        raise DtypeError(
            f"bitwise_not (~): defined for integer and bool tensors, got dtype {x.dtype}; use "
            "logical_not for truth values"
        )
    return _unary(x, "invert")


def isfinite(x) -> Tensor:
    x = as_tensor(x)
    return _unary(x, "isfinite")


def isnan(x) -> Tensor:
    x = as_tensor(x)
    return _unary(x, "isnan")


def isinf(x) -> Tensor:
    x = as_tensor(x)
    return _unary(x, "isinf")


def isposinf(x) -> Tensor:
    """True where x is +inf."""
    x = as_tensor(x)
    _refuse_complex_order("isposinf", x, 0)
    return _unary(x, "isposinf")


def isneginf(x) -> Tensor:
    """True where x is -inf."""
    x = as_tensor(x)
    _refuse_complex_order("isneginf", x, 0)
    return _unary(x, "isneginf")


def isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False) -> Tensor:
    """|a - b| <= atol + rtol |b| elementwise (infinities equal only to themselves), a bool
    tensor, as torch.isclose."""
    if rtol < 0 or atol < 0:
        name, v = ("rtol", rtol) if rtol < 0 else ("atol", atol)
        raise DescentError(f"isclose: {name} must be greater than or equal to zero, got {v}")
    ta = as_tensor(a)
    tb = as_tensor(b, ta)
    if ta._data.dtype != tb._data.dtype:  # PyTorch compares one dtype only
        raise DescentError(
            f"isclose: {ta.dtype} did not match {tb.dtype} (shapes {tuple(ta.shape)} and "
            f"{tuple(tb.shape)}), as in PyTorch; convert one first"
        )
    _check_shapes("isclose", ta, tb)
    # (through untracked.computed: descent.compile replays it; it was frozen as a constant)
    return computed(_isclose, (ta, tb), (rtol, atol, equal_nan))


def _isclose(a, b, rtol, atol, equal_nan):
    return backend.get_array_module(a, b).isclose(a, b, rtol, atol, equal_nan)


def _check_shapes(name, ta, tb) -> None:
    """descent's broadcast error (a RuntimeError, as PyTorch's) instead of NumPy's ValueError."""
    if ta._data.shape != tb._data.shape:
        try:
            np.broadcast_shapes(ta._data.shape, tb._data.shape)
        except ValueError:
            raise DescentError(
                f"{name}: shapes {tuple(ta.shape)} and {tuple(tb.shape)} cannot be broadcast "
                "together (trailing dimensions must be equal or 1)"
            ) from None


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    """torch.allclose: |a - b| <= atol + rtol |b| everywhere (nan equal to nan with equal_nan).
    Two tensors of different dtypes raise, as PyTorch's (and isclose) do."""
    a = as_tensor(a)
    b_is_tensor = isinstance(b, Tensor)
    b = as_tensor(b, a)
    if b_is_tensor and a._data.dtype != b._data.dtype:
        raise DescentError(
            f"allclose: {a.dtype} did not match {b.dtype} (shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}), as in PyTorch; convert one first"
        )
    _check_shapes("allclose", a, b)
    # A Python bool (PyTorch's allclose returns one too): the arrays are compared on the host.
    return bool(np.allclose(backend.as_numpy(a._data), backend.as_numpy(b._data), rtol, atol,
                            equal_nan=bool(equal_nan)))  # fmt: skip
