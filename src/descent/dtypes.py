"""dtypes: descent's dtype objects, the default floating dtype, dtype spellings, and limits.

`descent.float32` & co. are `descent.dtype` objects: thin handles on NumPy dtypes that behave
as `torch.dtype` does where PyTorch programs look (`repr` is `descent.float32`;
`is_floating_point`, `is_signed`, `is_complex`, `itemsize`, `to_real()`, `to_complex()`) and as
the NumPy dtype everywhere else: NumPy reads them through their `dtype` attribute
(`np.zeros(3, dtype=descent.float32)`, `arr.astype(x.dtype)`), they compare equal (and hash
equal) to the NumPy dtype and its spellings (`x.dtype == np.float32`), and every other attribute
(`kind`, `char`, `type`, `name`, `str`) is the NumPy dtype's. `x.dtype` returns one; the arrays
behind tensors keep NumPy dtypes (`x._data.dtype`). This module also holds what PyTorch adds on
top: a settable default for floating data (`set_default_dtype`), one function that turns any
spelling into a NumPy dtype with a clear error (`as_dtype`), the dtype that data without one
gets (`default_dtype_for`), and `finfo` / `iinfo`. It sits below `tensor.py` and imports nothing
of descent but float8.py (a NumPy-only leaf).

bfloat16 is the `ml_dtypes` package's NumPy dtype (NumPy has none; docs/bfloat16.md). Importing
ml_dtypes costs about half a second, so it is loaded on first use (`bfloat16_dtype()`, called
when `descent.bfloat16` or the string 'bfloat16' is first read), never at `import descent`. The
ops layer's bfloat16 dispatch (one function call per op) is installed later still, when data is
first given the dtype (`as_dtype` resolving to bfloat16: `tensor(..., dtype=)`, `.to()`,
`zeros(..., dtype=)`, an ml_dtypes array): a program that only names `torch.bfloat16` (in a
dtype table, say) pays nothing per op.
Its NumPy kind is 'V' (void), not 'f': descent's internals test floating dtypes with
`kind in "fV"` (no tensor holds another void dtype: `as_dtype` refuses them).

The float8 dtypes (`float8_e4m3fn`, `float8_e5m2`, `float8_e4m3fnuz`, `float8_e5m2fnuz`,
`float8_e8m0fnu`) are ml_dtypes' too, loaded the same way, also of kind "V" (float8.py holds
their conversion rules, ops/float8.py the few ops PyTorch computes with them). uint16, uint32
and uint64 are NumPy's own. `SCALAR_TYPES` is PyTorch's ScalarType name of every dtype (its
error messages and legacy type names use them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .float8 import NAMES as _FLOAT8_NAMES  # a leaf: float8.py imports nothing of descent

# PyTorch's ScalarType names ('Float' in "not implemented for 'Float'", 'FloatTensor').
SCALAR_TYPES = {
    "float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16",
    "int64": "Long", "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
    "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64", "bool": "Bool",
    "complex64": "ComplexFloat", "complex128": "ComplexDouble",
    **{name: "F" + name[1:] for name in _FLOAT8_NAMES},  # 'Float8_e4m3fn'
}  # fmt: skip


def scalar_type(d) -> str:
    """PyTorch's ScalarType name of a dtype (any spelling): 'Float', 'UInt16', 'Float8_e5m2'."""
    name = getattr(getattr(d, "dtype", d), "name", None) or np.dtype(d).name
    return SCALAR_TYPES.get(name, name)


class dtype:  # lower case: PyTorch's name (torch.dtype)
    """A descent dtype: a NumPy dtype with torch.dtype's face (see the module docstring)."""

    __slots__ = ("dtype", "is_floating_point", "is_complex", "is_signed")

    def __init__(self, np_dtype) -> None:
        d = np.dtype(np_dtype)
        object.__setattr__(self, "dtype", d)  # NumPy's protocol: np.dtype(obj) reads .dtype
        object.__setattr__(self, "is_floating_point", d.kind in "fV")  # "V": bfloat16
        object.__setattr__(self, "is_complex", d.kind == "c")
        # float8_e8m0fnu (powers of two, no sign bit) is PyTorch's one unsigned floating dtype
        object.__setattr__(self, "is_signed", d.kind in "ficV" and d.name != "float8_e8m0fnu")

    def __setattr__(self, name, value) -> None:
        raise AttributeError("descent dtypes are immutable")

    def __getattr__(self, name: str):
        return getattr(object.__getattribute__(self, "dtype"), name)

    def __eq__(self, other) -> bool:
        if isinstance(other, dtype):
            return self.dtype == other.dtype
        try:
            return self.dtype == np.dtype(other)
        except (TypeError, ValueError):
            return NotImplemented

    def __ne__(self, other) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        return hash(self.dtype)

    def __repr__(self) -> str:
        return f"descent.{self.dtype.name}"

    __str__ = __repr__

    def __reduce__(self):
        # ml_dtypes' .str is '<V2' or '<f1' (not their dtype): pickle bfloat16, float8 by name
        return (wrap_dtype, (self.dtype.name if self.dtype.num >= 256 else self.dtype.str,))

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    def to_real(self):
        """The real dtype of this dtype: float32 for complex64, float64 for complex128, itself
        for a real dtype (torch.dtype.to_real)."""
        if self.dtype.kind != "c":
            return self
        return wrap_dtype(np.float32 if self.dtype == np.complex64 else np.float64)

    def to_complex(self):
        """The complex dtype of a floating dtype: complex64 for float32 and float16,
        complex128 for float64; itself for a complex dtype (torch.dtype.to_complex)."""
        kind = self.dtype.kind
        if kind == "c":
            return self
        if kind != "f":
            raise TypeError(f"{self!r}.to_complex(): only floating dtypes have a complex form")
        return wrap_dtype(complex_of(self.dtype))


_WRAPPED: dict = {}


def wrap_dtype(np_dtype) -> dtype:
    """The `descent.dtype` of a NumPy dtype (one object per dtype)."""
    d = as_dtype(np_dtype) if isinstance(np_dtype, str) else np.dtype(np_dtype)
    w = _WRAPPED.get(d)
    if w is None:
        w = _WRAPPED[d] = dtype(d)
    return w


# The dtype of floating data whose dtype was not given (Python floats, lists, `zeros(3)`):
# float32 unless `set_default_dtype` changed it. Read by creation functions and the ops'
# promotion rule (a Python float meeting an integer tensor gives this dtype).
_default_float = np.dtype(np.float32)


def set_default_dtype(dtype) -> None:
    """Set the dtype of new floating tensors (float32 at start), as torch.set_default_dtype.

    Args:
        dtype: a floating dtype (descent.float32, float64, float16 or bfloat16).

    Raises:
        TypeError: dtype is not a floating dtype.
    """
    global _default_float
    dt = as_dtype(dtype)
    if dt.kind not in "fV":  # "V": bfloat16, as torch.set_default_dtype(torch.bfloat16)
        raise TypeError(
            f"set_default_dtype: only floating dtypes can be the default, got {dt}; use "
            "descent.float32 or descent.float64"
        )
    if dt.name in FLOAT8_NAMES:  # storage only (PyTorch: "couldn't find storage object")
        raise TypeError(
            f"set_default_dtype: {dt.name} cannot be the default dtype (PyTorch refuses it too: "
            "float8 tensors are storage); use descent.float32, float64, float16 or bfloat16"
        )
    _default_float = dt


def get_default_dtype() -> dtype:
    """The dtype of new floating tensors (float32 unless `set_default_dtype` changed it)."""
    return wrap_dtype(_default_float)


_bfloat16 = None  # ml_dtypes' bfloat16 NumPy dtype, once loaded
_bfloat16_in_use = False  # whether data has been given the dtype (see the module docstring)
_bfloat16_callbacks: list = []  # called then (the ops layer's dispatch: ops/bfloat16.py)


def on_bfloat16(callback) -> None:
    """Call `callback()` when data is first given the bfloat16 dtype (at once if it has)."""
    if _bfloat16_in_use:
        callback()
    else:
        _bfloat16_callbacks.append(callback)


def _use_bfloat16() -> np.dtype:
    """bfloat16, requested for data: loads it and, the first time, runs the callbacks."""
    global _bfloat16_in_use
    d = bfloat16_dtype()
    if not _bfloat16_in_use:
        _bfloat16_in_use = True
        for callback in _bfloat16_callbacks:
            callback()
    return d


def bfloat16_dtype() -> np.dtype:
    """ml_dtypes' bfloat16 as a NumPy dtype, importing ml_dtypes on the first call (~0.5 s).

    Raises:
        TypeError: ml_dtypes is not installed (it is a core dependency of descent).
    """
    global _bfloat16
    if _bfloat16 is None:
        try:
            import ml_dtypes  # noqa: PLC0415 - lazy: its import costs ~0.5 s
        except ImportError:  # pragma: no cover - a core dependency
            raise TypeError(
                "bfloat16 needs the ml_dtypes package (a dependency of descent): "
                "pip install ml-dtypes"
            ) from None
        _bfloat16 = np.dtype(ml_dtypes.bfloat16)
    return _bfloat16


def is_bfloat16(d) -> bool:
    """True for bfloat16 (any spelling: a NumPy or descent dtype, an array's dtype); never
    imports ml_dtypes (no tensor can hold bfloat16 before it is loaded)."""
    d = getattr(d, "dtype", d)
    return getattr(d, "kind", None) == "V" and getattr(d, "name", None) == "bfloat16"


FLOAT8_NAMES = _FLOAT8_NAMES  # PyTorch's (and ml_dtypes') names: float8.NAMES
_float8: dict = {}  # name -> ml_dtypes' NumPy dtype, once loaded


def float8_dtype(name: str) -> np.dtype:
    """ml_dtypes' float8 dtype of a PyTorch name ('float8_e4m3fn'), loading it on first use."""
    d = _float8.get(name)
    if d is None:
        bfloat16_dtype()  # imports ml_dtypes, with bfloat16's clear error when it is missing
        from .float8 import numpy_dtype  # noqa: PLC0415 - float8.py imports nothing of descent

        d = _float8[name] = numpy_dtype(name)
    return d


def as_dtype(dtype) -> np.dtype:
    """A NumPy dtype for any descent dtype spelling (descent.float32, np.float32, 'float32',
    'bfloat16', 'float8_e4m3fn', Python's float/int/bool as in PyTorch: float64, int64, bool)."""
    if type(dtype) is globals()["dtype"]:
        d = dtype.dtype
        if d.kind == "V" and not _bfloat16_in_use:  # descent.bfloat16, first given to data
            _use_bfloat16()  # (or a float8 dtype: the same low-precision dispatch serves it)
        return d
    if isinstance(dtype, str):
        name = dtype.replace("torch.", "")
        if name in ("bfloat16", "bf16"):
            return _use_bfloat16()
        if name in FLOAT8_NAMES:
            _use_bfloat16()
            return float8_dtype(name)
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{dtype!r} is not a dtype descent knows") from None
    if d.kind == "V":
        if d.name in FLOAT8_NAMES:  # ml_dtypes' float8, from the user's own import
            _use_bfloat16()
            return d
        if d.name != "bfloat16":  # structured, float4, ...: no tensor holds it
            raise TypeError(f"{dtype!r} is not a dtype descent tensors can hold")
        return _use_bfloat16()  # also when the user's own ml_dtypes import made it
    return d


def default_dtype_for(arr) -> Any:
    """descent's default dtype for list or scalar data whose dtype was not given."""
    kind = arr.dtype.kind
    if kind == "f":
        return _default_float
    if kind in "iu":
        return np.int64 if arr.dtype.itemsize >= 4 or kind == "i" else arr.dtype
    if kind == "b":
        return np.bool_
    if kind == "c":
        return complex_of(_default_float)  # Python complex numbers: complex64 by default
    if kind == "V":  # an ml_dtypes bfloat16/float8 array keeps its dtype (others: refused)
        return as_dtype(arr.dtype)
    raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}")


def complex_of(np_dtype) -> np.dtype:
    """The complex NumPy dtype that holds pairs of `np_dtype` (float64: complex128; float32 and
    float16: complex64, as descent has no complex32); a complex dtype is itself."""
    d = np.dtype(np_dtype)
    if d.kind == "c":
        return d
    return np.dtype(np.complex128 if d == np.float64 else np.complex64)


def get_default_complex_dtype() -> dtype:
    """The dtype of Python complex data: complex64, complex128 when the default float dtype is
    float64 (PyTorch's rule)."""
    return wrap_dtype(complex_of(_default_float))


class finfo:  # lower case: PyTorch's name
    """Limits of a floating dtype as Python floats (torch.finfo): `bits`, `eps`, `max`, `min`,
    `tiny` (= `smallest_normal`), `resolution`; the default float dtype when None."""

    def __init__(self, dtype=None) -> None:
        # a complex dtype reports the limits of its real parts, as torch.finfo
        d = _default_float if dtype is None else as_dtype(dtype)
        if d.kind not in "fcV":
            raise TypeError(
                "torch.finfo() requires a floating point input type. Use torch.iinfo to handle "
                "'torch.finfo'"
            )  # PyTorch's words (descent.finfo is torch.finfo)
        if d.name in FLOAT8_NAMES:  # float8.py: ml_dtypes' limits where PyTorch agrees
            from .float8 import finfo_fields  # noqa: PLC0415

            self.dtype = d.name
            for k, v in finfo_fields(d.name).items():
                setattr(self, k, v)
            self.smallest_normal = self.tiny
            return
        if d.kind == "V":  # bfloat16: ml_dtypes' finfo (NumPy's refuses it)
            import ml_dtypes  # noqa: PLC0415 - loaded already (d exists)

            info = ml_dtypes.finfo(d)
        else:
            info = np.finfo(d)
        self.dtype = str(info.dtype)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.tiny)
        # 10**-precision as a Python float, as torch.finfo (float(np.float32(1e-6)) is not 1e-6)
        self.resolution = 10.0 ** -int(info.precision)

    def __repr__(self) -> str:
        # PyTorch's C++ repr prints each limit with 6 significant digits (C's %g) and lists
        # smallest_normal: `finfo(resolution=1e-06, min=-3.40282e+38, ...)`
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, "
                f"eps={self.eps:g}, smallest_normal={self.smallest_normal:g}, "
                f"tiny={self.tiny:g}, dtype={self.dtype})")  # fmt: skip


class iinfo:  # lower case: PyTorch's name
    """Limits of an integer dtype as Python ints (torch.iinfo): `bits`, `max`, `min`, and
    `dtype`, the dtype's name as a string ('int8').

    Raises:
        TypeError: a floating, complex or bool dtype (PyTorch's words)."""

    def __init__(self, dtype) -> None:
        d = as_dtype(dtype)
        if d.kind == "b":
            raise TypeError("torch.bool is not supported by torch.iinfo")
        if d.kind not in "iu":
            raise TypeError(
                "torch.iinfo() requires an integer input type. Use torch.finfo to handle "
                "'torch.iinfo'"
            )  # PyTorch's words
        info = np.iinfo(d)
        self.dtype = str(d)
        self.bits = int(info.bits)
        self.min = int(info.min)
        self.max = int(info.max)

    def __repr__(self) -> str:
        # as finfo: PyTorch prints the limits with C's %g (`max=9.22337e+18` for int64)
        return f"iinfo(min={float(self.min):g}, max={float(self.max):g}, dtype={self.dtype})"
