"""Helpers shared by the op modules: operand conversion and axis arguments."""

from __future__ import annotations

import math
import numbers
import operator
import os
import sys

import numpy as np

from .. import backend
from ..autograd_views import link_cast
from ..dtypes import complex_of, scalar_type
from ..errors import DescentError, DimensionError, DtypeError
from ..float8 import astype as float8_astype
from ..float8 import is_float8
from ..float8 import overflows as float8_overflows
from ..grad_mode import is_grad_enabled
from ..tensor import Tensor, get_default_dtype

# What counts as a Python-level scalar operand: it takes the tensor's dtype instead of
# becoming a tensor of its own dtype (descent's rule: a Python scalar never upcasts a tensor).
_SCALARS = (int, float, bool, np.generic)


def python_number(v):
    """A NumPy scalar (np.float64(0.5), np.log(...)'s result) as the Python number it holds;
    anything else unchanged. For hyperparameters that reach NumPy arithmetic directly: under
    NumPy 2's promotion (NEP 50) a np.float64 scalar upcasts a float32 array, a Python float
    does not, and PyTorch treats both as Python numbers."""
    return v.item() if isinstance(v, np.generic) else v


def is_scalar(x) -> bool:
    return isinstance(x, _SCALARS) and not isinstance(x, np.ndarray)


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Turn an operand into a Tensor. Python scalars take `like`'s dtype (no silent upcast)."""
    if isinstance(x, Tensor):
        return x
    # A scalar takes `like`'s dtype, except where that would lose it: a float meeting an integer
    # tensor computes in float32, and a number meeting a bool tensor in int64/float32 (PyTorch).
    if like is not None and isinstance(x, _SCALARS):
        dt = like._data.dtype
        if dt.kind not in "fVc" and isinstance(x, (float, np.floating)):  # "V": bfloat16
            dt = get_default_dtype()
        elif dt.kind == "b" and not isinstance(x, (bool, np.bool_)):
            dt = (
                np.dtype(np.int64) if isinstance(x, numbers.Integral)
                else get_default_dtype()
            )  # fmt: skip
        xp = backend.get_array_module(like._data)
        if dt.num >= 256 and is_float8(dt):  # PyTorch's conversion rules (float8.py)
            return Tensor._wrap(float8_astype(np.asarray(x, dtype=np.float64), dt))
        return Tensor._wrap(xp.asarray(x, dtype=dt))
    if like is not None and type(x) is complex:
        # A Python complex is a scalar too: the complex form of `like`'s float dtype, at full
        # precision (float64 + 0.9+0.06j is complex128 of the exact number, as PyTorch; a
        # complex64 tensor of it first lost 2e-8).
        dt = like._data.dtype
        if dt.kind != "c":
            dt = complex_of(dt if dt.kind == "f" and dt.itemsize >= 4 else get_default_dtype())
        xp = backend.get_array_module(like._data)
        return Tensor._wrap(xp.asarray(x, dtype=dt))
    # Array-likes (lists, NumPy arrays) meeting a GPU tensor are moved to its device: they are
    # constants the user wrote inline, unlike Tensors, whose devices must match explicitly.
    if like is not None and backend.is_cupy_array(like._data) and not backend.is_cupy_array(x):
        xp = backend.get_array_module(like._data)
        return Tensor._wrap(xp.asarray(Tensor._from_data(x)._data))
    return Tensor._from_data(x)


def check_devices(op: str, *tensors: Tensor) -> None:
    """Raise a clear error when tensors on two devices meet in one op."""
    # Never a silent copy between devices (STYLE.md, "Backend"): a clear error instead.
    dev = None
    for t in tensors:
        d = t.device
        if dev is None:
            dev = d
        elif d != dev:
            if _meta_with_cpu_scalars(tensors):
                return
            shapes = ", ".join(f"{tuple(x.shape)} on {x.device}" for x in tensors)
            raise RuntimeError(
                f"{op}: tensors on different devices ({shapes}); move them to one device with "
                ".to(device) first"
            )


def _meta_with_cpu_scalars(tensors) -> bool:
    """Meta tensors meeting 0-d CPU tensors only: PyTorch lets a CPU scalar join them."""
    devs = {t.device for t in tensors if t._data.ndim or t.device != "cpu"}
    return devs == {"meta"}


def axis_arg(axis, dim):
    """`dim` is PyTorch's name for NumPy's `axis`; accept either, not both."""
    if dim is not None:
        if axis is not None:
            raise TypeError("pass either axis= or dim=, not both")
        return dim
    return axis


def keepdims_arg(keepdims, keepdim) -> bool:
    return bool(keepdim) if keepdim is not None else bool(keepdims)


def normalize_axis(axis, ndim: int, op: str | None = None):
    """A sorted tuple of non-negative axes, or None for all axes; errors name `op` if given."""
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        axes = tuple(sorted(_one_axis(a, ndim, op) for a in axis))
        if len(axes) > 1 and len(set(axes)) < len(axes):  # NumPy: "duplicate value in 'axis'"
            dup = next(a for a, b in zip(axes, axes[1:]) if a == b)
            raise DescentError(
                f"{op + ': ' if op else ''}dim {dup} appears multiple times in the list of dims "
                f"{list(axis)} (for a {ndim}-d tensor); name each dimension once"
            )
        return axes
    return (_one_axis(axis, ndim, op),)


def _one_axis(a, ndim: int, op: str | None = None) -> int:
    try:
        a = operator.index(a)  # ints and integer scalars: a float or a name is PyTorch's TypeError
    except TypeError:
        raise TypeError(
            f"{op + ': ' if op else ''}dim must be an int or a tuple of ints, got {a!r} "
            f"({type(a).__name__}), as in PyTorch (named dimensions are not supported)"
        ) from None
    n = max(ndim, 1)
    if not -n <= a < n:
        raise DimensionError(
            f"{op + ': ' if op else ''}dim {a} is out of range for a tensor with {ndim} "
            f"dimensions (expected in [{-n}, {n - 1}])"
        )
    return a % n


def shape_arg(shape) -> tuple:
    """Accept reshape(2, 3) and reshape((2, 3))."""
    # Both spellings reach here as a tuple of arguments: unwrap the single sequence.
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        return tuple(shape[0])
    return tuple(shape)


# ---------------------------------------------------------------------------------------------
# Type promotion: PyTorch's rule (torch.result_type), the one implementation every op uses.
#
# dtypes fall in categories bool < integer < floating. Operands come in three kinds, by
# priority: tensors with dimensions, 0-d tensors, and Python (or NumPy) scalars. The result
# is the promotion of the dimensioned tensors, unless a lower-priority operand is of a HIGHER
# category, in which case that one decides the category: float32 with an int64 tensor stays
# float32 (NumPy gives float64), float32 with a float64 0-d tensor stays float32, int32 with a
# float32 0-d tensor is float32, an int tensor with a Python float gets the default float
# dtype, and a Python scalar never changes a tensor's dtype within its category.

# bfloat16 (ml_dtypes' NumPy dtype, of kind "V") is floating; NumPy's promotion of it is
# PyTorch's: with float16 or float32 float32, with float64 float64.
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "V": 2, "c": 3}


def promote_types(d1, d2) -> np.dtype:
    """torch.promote_types: the higher category wins outright (int64 with float16 is float16);
    within a category the wider type (NumPy's rule there is PyTorch's: uint8 + int8 = int16)."""
    d1, d2 = np.dtype(d1), np.dtype(d2)
    if d1 == d2:
        return d1
    # PyTorch's "limited support" dtypes promote with nothing (float8) or only with floating
    # dtypes (uint16/32/64); numbers >= 256 are ml_dtypes' (bfloat16 and float8)
    if (d1.num >= 256 or d2.num >= 256 or (d1.kind == "u" and d1.itemsize > 1)
            or (d2.kind == "u" and d2.itemsize > 1)):  # fmt: skip
        _check_limited(d1, d2)
    k1, k2 = _CATEGORY.get(d1.kind, 4), _CATEGORY.get(d2.kind, 4)
    if k1 != k2:
        if k1 + k2 == 5:  # floating with complex: NumPy's (float64 with complex64: complex128)
            f, c = (d1, d2) if k1 == 2 else (d2, d1)
            if f.kind == "V":  # bfloat16 with complex64: complex64 (NumPy has no such rule)
                f = np.dtype(np.float32)
            return complex_of(np.promote_types(f, c))
        return d1 if k1 > k2 else d2
    return np.promote_types(d1, d2)


def _check_limited(d1, d2) -> None:
    """PyTorch's refusal to promote float8 with any other dtype, and uint16/32/64 with anything
    but float16, bfloat16, float32 and float64 (docs/dtypes.md)."""
    names = (d1.name, d2.name)
    if any(n.startswith("float8_") for n in names):
        kind = "Float8 Types"
    elif any(n in ("uint16", "uint32", "uint64") for n in names) and not any(
        d.kind in "fV" for d in (d1, d2)
    ):
        kind = "uint16, uint32, uint64 types"
    else:
        return
    raise DescentError(
        f"Promotion for {kind} is not supported, attempted to promote {scalar_type(d1)} and "
        f"{scalar_type(d2)}; convert one operand with .to(dtype) first"
    )


def check_int_range(c) -> None:
    """PyTorch's argument parser takes a Python int in [-2**63, 2**64) only (OverflowError
    before any op runs: x + 2**64, x == 2**64, x & 2**64)."""
    if not -(2**63) <= c < 2**64:
        raise OverflowError(
            f"int too big to convert ({c} is outside [-2**63, 2**64), as PyTorch's argument "
            "parser checks); use a float"
        )


def _scalar_dtype(x) -> np.dtype:
    """The dtype a Python/NumPy scalar operand stands for (a 'wrapped number' in PyTorch)."""
    if isinstance(x, (bool, np.bool_)):
        return np.dtype(np.bool_)
    if isinstance(x, numbers.Integral):
        check_int_range(x)
        return np.dtype(np.int64)
    if isinstance(x, numbers.Real):
        return get_default_dtype()
    if isinstance(x, numbers.Complex):
        return complex_of(get_default_dtype())
    raise TypeError(f"unsupported operand type {type(x).__name__}")


def _combine(higher, lower):
    # torch's combine_categories: `higher` is the higher-priority group's dtype.
    if higher is None:
        return lower
    if lower is not None and lower.kind == "c" and higher.kind != "c":
        # a complex operand of lower priority makes the result complex: float32 tensor with a
        # complex 0-d tensor or 1j is complex64 (the complex form of the tensor's float dtype)
        return complex_of(higher) if higher.kind in "fV" else lower
    if lower is None or higher.kind in "fcV":
        return higher
    if higher.kind == "b" or lower.kind in "fV":
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> np.dtype:
    """torch.result_type over tensors and scalars (see the rule above).

    Args:
        operands: Tensors, Python numbers or NumPy scalars.
    """
    dim = zero = wrapped = None
    unsigned = False  # a Python int in [2**63, 2**64): PyTorch's wrapped number is uint64
    for o in operands:
        if isinstance(o, Tensor):
            d = o._data.dtype
            if o._data.ndim:
                dim = d if dim is None else promote_types(dim, d)
            else:
                zero = d if zero is None else promote_types(zero, d)
        elif o is not None:
            d = _scalar_dtype(o)
            wrapped = d if wrapped is None else promote_types(wrapped, d)
            unsigned = unsigned or (type(o) is int and o >= 2**63)
    out = _combine(dim, _combine(zero, wrapped))
    if out is None:
        raise TypeError("result_type: no operands")
    if unsigned and out.kind == "i" and all(d is None or d.kind == "b" for d in (dim, zero)):
        # (an integer tensor keeps its dtype and wraps; a bool one would promote with uint64)
        refuse_bool_uint64(2**63)
    return out


def refuse_bool_uint64(c) -> None:
    """PyTorch's error for a bool tensor meeting a Python int in [2**63, 2**64) (`x + 2**63`,
    `x += 2**63`): the number is a uint64 scalar, and PyTorch promotes no unsigned type wider
    than uint8 (an integer tensor keeps its own dtype and wraps, a float one converts).

    Raises:
        DescentError: c >= 2**63.
    """
    if c >= 2**63:
        raise DescentError(
            "Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
            f"Bool and UInt64 (a bool tensor with the Python int {c} >= 2**63), as in PyTorch; "
            "convert the tensor with .long() or the number to a float"
        )


def promote(a, b, floating: bool = False):
    """(a, b) as Tensors of dtype `result_type(a, b)` (the casts are differentiable).

    Args:
        a, b: Tensors or scalars (at least one a Tensor).
        floating: promote integer and bool results to the default float dtype (true division).
    """
    dt = result_type(a, b)
    if floating and dt.kind not in "fcV":
        dt = get_default_dtype()
    like = a if isinstance(a, Tensor) else b
    pa, pb = _operand_as(a, dt, like), _operand_as(b, dt, like)
    if (pa._rg or pb._rg) and is_grad_enabled():
        # PyTorch promotes inside the op's kernel and saves the uncast tensors: a cast copy
        # shares its source's version counter, so the op's backward sees a later in-place write
        for p, x in ((pa, a), (pb, b)):
            if p is not x and isinstance(x, Tensor):
                link_cast(p, x)
    return pa, pb


def _operand_as(x, dt, like: Tensor) -> Tensor:
    if isinstance(x, Tensor):
        return x if x._data.dtype == dt else x.to(dt)  # Tensor.to: the differentiable cast
    xp = backend.get_array_module(like._data)
    return Tensor._wrap(xp.asarray(wrap_int(x, dt), dtype=dt))


def wrap_int(c, dt):
    """A Python int scalar as PyTorch casts it to an integer dtype: out of the dtype's range it
    wraps modulo 2**bits (uint8 - 2 is uint8 + 254, int8 + 300 is int8 + 44), where NumPy 2
    raises OverflowError. Anything else is returned unchanged.

    Args:
        c: the scalar operand.
        dt: the NumPy dtype the operation computes in.
    """
    if type(c) is not int:
        return c
    check_int_range(c)
    if dt.kind not in "iu":
        return c
    info = np.iinfo(dt)
    if info.min <= c <= info.max:
        return c
    return (c - info.min) % (1 << (8 * dt.itemsize)) + info.min


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # src/descent


def user_stacklevel() -> int:
    """The `stacklevel` for a `warnings.warn` made by the caller of this function that names
    the user's line: the first frame outside descent (a PyTorch warning raised in C++ names
    the Python line that called torch)."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def refuse_complex(x: Tensor, op: str = "this op") -> None:
    """Raise for a complex tensor reaching an op that computes on real tensors only (instead
    of a cast to a real dtype, which would drop the imaginary parts silently)."""
    if x._data.dtype.kind == "c":
        raise DtypeError(
            f"{op}: complex input (dtype {x._data.dtype}, shape {tuple(x.shape)}) is not "
            "supported by descent's op; the ops that take complex tensors are listed in "
            "docs/complex.md (take .real, .imag, .abs() or .angle() first)"
        )


_KIND_WORDS = {"b": "bool", "i": "integer", "u": "integer", "c": "complex", "f": "floating"}


def refuse_kinds(op: str, x: Tensor, kinds: str, hint: str = "convert it first, e.g. .float()"):
    """PyTorch's NotImplementedError (descent's DtypeError) for a dtype its op has no kernel
    for: ceil of a bool tensor, max of a complex one, frac of an integer one. `kinds`: NumPy
    dtype kinds ("b" bool, "iu" integers, "c" complex). One attribute test when it passes."""
    kind = x._data.dtype.kind
    if kind in kinds:
        raise DtypeError(
            f"{op}: not implemented for {_KIND_WORDS.get(kind, kind)} tensors (dtype "
            f"{x._data.dtype}, shape {tuple(x.shape)}), as in PyTorch; {hint}"
        )


def check_real_value(op: str, x, value) -> None:
    """PyTorch's RuntimeError for a complex number as the `value`/`weight` of addcmul, addcdiv
    or lerp on a real tensor (it converts the number to the tensor's dtype; NumPy would make
    the result complex, or drop the imaginary part)."""
    if isinstance(value, complex) and value.imag != 0:
        dt = x._data.dtype if isinstance(x, Tensor) else None
        if dt is None or dt.kind != "c":
            raise DescentError(
                f"{op}: value cannot be converted to type {dt} without overflow (got {value!r} "
                "for a real tensor), as in PyTorch; convert the tensors to complex first"
            )


def conj_if_complex(ops, a):
    """conj(a) for a complex array or Tensor, a itself for a real one: the factor a
    holomorphic op's backward multiplies by (PyTorch's convention, ops/complex.py)."""
    if a.dtype.kind != "c":
        return a
    if ops.is_graph:
        from .complex import conj  # noqa: PLC0415 - complex.py imports this module

        return conj(a)
    return backend.get_array_module(a).conj(a)


def fill_int(c, dt):
    """A Python int written into an integer tensor (fill_, masked_fill, full, x[i] = c) with
    PyTorch's check: a signed dtype takes its range, an unsigned one also the negatives down
    to -max, which wrap (uint8 -1 is 255); beyond, PyTorch's overflow error. Anything else is
    returned unchanged.

    Args:
        c: the value written.
        dt: the tensor's NumPy dtype.

    Raises:
        DescentError: the value does not fit the dtype.
        OverflowError: an int beyond [-2**63, 2**64), whatever the dtype (PyTorch's parser).
    """
    if type(c) is int:
        check_int_range(c)
    if type(c) is complex and dt.kind != "c":  # a real tensor takes a real value only
        if dt.kind == "b":  # (a bool one: nonzero is True)
            return bool(c)
        if c.imag != 0:
            raise DescentError(
                f"value cannot be converted to type {dt} without overflow (got {c!r}: a "
                "nonzero imaginary part for a real tensor), as in PyTorch"
            )
        c = c.real
    if dt == _F16:
        return half_value(c)
    if dt.num >= 256 and is_float8(dt):  # c10's checked conversion, then float8.py's rules
        if float8_overflows(c, dt):
            raise DescentError(
                f"value cannot be converted to type c10::{scalar_type(dt)} without overflow "
                f"({c!r} is outside the dtype's finite range), as in PyTorch"
            )
        return float8_astype(np.asarray(c, dtype=np.float64), dt)  # a 0-d float8 array
    if type(c) is not int or dt.kind not in "iu":
        if dt.kind in "iu" and type(c) is float:
            _check_float_fits_int(c, dt)
        elif type(c) is float or (type(c) is complex and dt.kind == "c"):
            check_float_fits(c, dt)
        return c
    info = np.iinfo(dt)
    if info.min <= c <= info.max:
        return c
    check_int_range(c)  # (beyond int64/uint64: the argument parser's OverflowError first)
    if dt.kind == "u" and -info.max <= c < 0:
        return c + info.max + 1
    raise DescentError(
        f"value {c} cannot be converted to type {dt} without overflow (the range is "
        f"[{info.min}, {info.max}]), as in PyTorch"
    )


def check_alpha(input, other, alpha) -> None:
    """PyTorch converts alpha to the result's dtype with its checked conversion: a bool alpha
    needs a bool result, and a number must fit the dtype (int8 300, float32 1e300 raise its
    overflow error; an int beyond [-2**63, 2**64) is its parser's OverflowError)."""
    if not isinstance(alpha, (int, float, complex, np.number, np.bool_)):
        return
    dt = result_type(input, other)
    if isinstance(alpha, (bool, np.bool_)):
        if dt.kind != "b":
            raise RuntimeError(
                f"Boolean alpha only supported for Boolean results (alpha={alpha!r} with a "
                f"{dt} result)."
            )
        return
    fill_int(alpha, dt)


def check_inplace_alpha(t, other, alpha, op: str) -> None:
    """PyTorch's checks of an in-place add_/sub_'s alpha: check_alpha's, and a float alpha
    refused for integer operands."""
    if isinstance(alpha, float) and t._data.dtype.kind in "biu" and (
        isinstance(other, (bool, int)) or isinstance(other, Tensor)
        and other._data.dtype.kind in "biu"
    ):  # fmt: skip
        raise DescentError(
            f"{op}: For integral input tensors, argument alpha must not be a floating point "
            f"number (got alpha={alpha}); convert the tensors to a float dtype first"
        )
    check_alpha(t, other, alpha)


def _check_float_fits_int(c, dt) -> None:
    """PyTorch's checked conversion of a Python float (or complex) written into an integer
    tensor: nan, inf, a value outside the dtype's range (uint8 -1.5, int8 300.5) or a nonzero
    imaginary part raise; the rest truncate toward zero (NumPy raised ValueError for nan or
    wrapped silently)."""
    info = np.iinfo(dt)
    if not info.min <= c <= info.max:
        raise DescentError(
            f"value cannot be converted to type {dt} without overflow (got {c!r}; the range "
            f"is [{info.min}, {info.max}]), as in PyTorch"
        )


_F16 = np.dtype(np.float16)
_F32_MAX = float(np.finfo(np.float32).max)
_BF16_MAX = 3.3895313892515355e38  # (ml_dtypes' finfo(bfloat16).max, without the import)


def check_float_fits(c: float, dt) -> None:
    """c10's checked conversion of a Python float written into a float32 or bfloat16 tensor
    (fill_, full, new_full, masked_fill, x[i] = c, a clamp bound, where's number): a finite
    value beyond the dtype's largest raises PyTorch's overflow error instead of becoming inf
    (inf and nan pass). float16 has `half_value`; float64 holds every float.

    Raises:
        DescentError: c does not fit the dtype.
    """
    if dt.kind == "c" and dt.itemsize == 8:  # complex64: each part a float32
        for part in (c.real, c.imag):
            if not (-_F32_MAX <= part <= _F32_MAX or part != part or abs(part) == math.inf):
                name, top = "c10::complex<float>", _F32_MAX
                break
        else:
            return
    elif dt.kind == "f":
        if dt.itemsize != 4 or -_F32_MAX <= c <= _F32_MAX or c != c or abs(c) == math.inf:
            return
        name, top = "float", _F32_MAX
    elif dt.kind == "V" and dt.num >= 256 and dt.name == "bfloat16":
        if -_BF16_MAX <= c <= _BF16_MAX or c != c or abs(c) == math.inf:
            return
        name, top = "c10::BFloat16", _BF16_MAX
    else:
        return
    raise DescentError(
        f"value cannot be converted to type {name} without overflow (got {c!r}; the largest "
        f"{dt.name} is {top:.8g}), as in PyTorch; use float('inf') or a float64 tensor"
    )


def half_value(c):
    """A Python number that PyTorch converts to float16 (a value written into a float16 tensor,
    a clamp bound, an exponent, add's alpha): beyond float16's range (|c| > 65504, finite) it
    raises PyTorch's overflow error instead of becoming inf. Anything else is returned unchanged.

    Raises:
        DescentError: c does not fit float16.
    """
    if isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, (bool, np.bool_)):
        if math.isfinite(c) and abs(c) > 65504:
            raise DescentError(
                f"value {c} cannot be converted to type float16 without overflow (the largest "
                "float16 is 65504), as in PyTorch; use float('-inf'), "
                "finfo(float16).min or a float32 tensor"
            )
    return c


def holomorphic(cls):
    """Class decorator for an op whose backward is written for real inputs as a product of gy
    with the derivative (prod, cumprod, einsum): for a complex gy it returns
    conj(backward(conj(gy))) = gy * conj(f'(z)), PyTorch's complex convention, without touching
    the formula. The real path pays one dtype test."""
    real_backward = cls.backward

    def backward(self, gy, ops):
        if gy.dtype.kind != "c":
            return real_backward(self, gy, ops)
        gxs = real_backward(self, conj_if_complex(ops, gy), ops)
        if type(gxs) is tuple:
            return tuple(_conj_grad(ops, g) for g in gxs)
        return _conj_grad(ops, gxs)

    backward.__doc__ = real_backward.__doc__
    cls.backward = backward
    return cls


def _conj_grad(ops, g):
    """conj of one returned gradient (None and the engine's known-zero marker pass)."""
    if g is None or getattr(g, "dtype", None) is None:
        return g
    return conj_if_complex(ops, g)


def apply_binary(op, a, b):
    """Apply a binary op after PyTorch's type promotion (`promote`)."""
    # The slow path of a binary op (maximum, minimum, arithmetic with non-Python scalars):
    # lists and arrays become tensors of their own, scalars stay weak; then one promotion,
    # the broadcasting check, and the op.
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if not ta and not is_scalar(a):
        a, ta = as_tensor(a, b if tb else None), True
    if not tb and not is_scalar(b):
        b, tb = as_tensor(b, a if ta else None), True
    if not ta and not tb:
        a, ta = as_tensor(a), True
    if not (ta and tb and a._data.dtype == b._data.dtype):
        a, b = promote(a, b)
    if a._data.shape != b._data.shape:
        check_broadcast(op, a, b)
    return op.apply(a, b)


def check_broadcast(op, a, b) -> None:
    try:
        np.broadcast_shapes(a._data.shape, b._data.shape)
    except RuntimeError:  # a nested tensor's ragged size is not an int: its storage checks
        if not (a._nested_layout or b._nested_layout):
            raise
    except ValueError:
        raise DescentError(
            f"{op.__name__.lower()}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
            "broadcast together (trailing dimensions must be equal or 1); reshape or unsqueeze "
            "one operand"
        ) from None
    # Different array types (NumPy and CuPy) mean different devices: name them.
    if type(a._data) is not type(b._data):
        check_devices(op.__name__.lower(), a, b)


def return_type(name: str, fields: list[str]):
    """A named tuple class printed as PyTorch prints its `torch.return_types` (one field per
    line: `descent.return_types.max(\\nvalues=tensor(5),\\nindices=tensor(1))`)."""
    from collections import namedtuple  # noqa: PLC0415

    base = namedtuple(name, fields)

    def __repr__(self) -> str:
        body = ",\n".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
        return f"descent.return_types.{name}(\n{body})"

    cls = type(name, (base,), {"__slots__": (), "__repr__": __repr__, "__str__": __repr__})
    cls.__module__ = "descent.return_types"
    return cls


def input_ordered(out, x, copy: bool = False):
    """out laid out in x's memory order, as the result of PyTorch's elementwise ops (its
    TensorIterator allocates the output with the input's stride order: flip, sign, x ** 0.5 of
    a transposed x are transposed there; a NumPy copy or a kernel of ours can be C-ordered). An
    x with a broadcast (0-stride) dim gives C order, as PyTorch's. A copy only when out's order
    differs (`copy`: always a fresh array)."""
    xp = backend.get_array_module(out)
    if not (isinstance(out, xp.ndarray) and isinstance(x, xp.ndarray)):  # a nested tensor's
        return out.copy() if copy else out
    if out.ndim < 2 or out.shape != x.shape or any(
            s == 0 and n > 1 for s, n in zip(x.strides, x.shape)):  # fmt: skip
        perm = list(range(out.ndim))
    else:  # dims by the input's strides, outermost first (stable: ties keep their order)
        perm = sorted(range(x.ndim), key=lambda d: -abs(x.strides[d]) if x.shape[d] > 1 else 0)
        perm = [d for d in perm if x.shape[d] > 1] + [d for d in range(x.ndim) if x.shape[d] <= 1]
    moved = out.transpose(perm)
    if moved.flags.c_contiguous and not copy:
        return out
    inv = [0] * out.ndim
    for i, d in enumerate(perm):
        inv[d] = i
    return (moved.copy() if moved.flags.c_contiguous else xp.ascontiguousarray(moved)).transpose(
        inv
    )


def c_ordered(a):
    """a in C order (a copy only when it is not): a fresh result laid out as PyTorch's, whose
    scans, roll and pad return contiguous tensors whatever the input's order (NumPy keeps a
    transposed input's, so view() of the result raised where PyTorch's works). A 0-d array
    stays 0-d (NumPy's ascontiguousarray makes it 1-d)."""
    if a.flags.c_contiguous:
        return a
    return backend.get_array_module(a).ascontiguousarray(a)
