"""Tensor creation and random numbers (seeded, reproducible).

`manual_seed(n)` seeds the default `Generator`; every random function also takes `generator=`.
Random floats are drawn directly in the requested dtype (float32 by default).
"""

from __future__ import annotations

import numpy as np

from . import autograd, backend, devices, memory_layout, tensor_methods
from .creation_integer import float_space, integer_arange, integer_space
from .dtypes import complex_of, is_bfloat16
from .errors import DescentError, DtypeError
from .ops._common import fill_int, promote_types
from .ops.out_arg import creation_out
from .tensor import Tensor, _check_grad_dtype, _flat, as_dtype, device, get_default_dtype

float16 = np.float16
float32 = np.float32
float64 = np.float64
bfloat16 = None  # not a NumPy dtype; see descent.autocast on the GPU
int8 = np.int8
int16 = np.int16
int32 = np.int32
int64 = np.int64
uint8 = np.uint8
bool_ = np.bool_



def _float_dtype(dtype):
    """`dtype` as a NumPy dtype; the default float dtype when None (see set_default_dtype)."""
    return get_default_dtype() if dtype is None else as_dtype(dtype)


def _finish(arr, dtype, requires_grad: bool, device) -> Tensor:
    if device is not None:
        arr = backend.to_device(arr, backend.normalize_device(device))
    if requires_grad:
        _check_grad_dtype(arr)
    return autograd._new_tensor(arr, bool(requires_grad))


def _shape(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = shape[0]
    return _nonnegative(tuple(shape))


def _nonnegative(shape: tuple) -> tuple:
    """PyTorch's RuntimeError for a negative size (NumPy's ValueError leaked before)."""
    for n in shape:
        if n < 0:
            raise DescentError(
                f"Trying to create tensor with negative dimension {n}: {list(shape)}"
            )
    return shape


# Where new tensors go when no device= is given (torch.set_default_device); None is the CPU.
_default_device = None


def set_default_device(device) -> None:
    """Make creation functions (`tensor`, `zeros`, `randn`, ...) put new tensors on `device`
    when they get no `device=` (torch.set_default_device; None restores the CPU)."""
    global _default_device
    _default_device = None if device is None else backend.normalize_device(device)
    if _default_device == "cpu":
        _default_device = None


def get_default_device():
    """The device new tensors go to (`device('cpu')` unless set_default_device changed it)."""
    return device(_default_device or "cpu")


devices.register_default_device_switch(lambda: _default_device, set_default_device)


def _xp(dev):
    if dev is None:
        dev = _default_device
        if dev is None:
            return np
    return backend.xp_for_device(backend.normalize_device(dev))


def tensor(data, dtype=None, requires_grad: bool = False, device=None) -> Tensor:
    """A new tensor from data (lists, scalars, arrays), as torch.tensor.

    dtype when not given: a NumPy array or NumPy scalar keeps its dtype (float64 stays
    float64, as in PyTorch); Python floats and lists of them get the default float dtype
    (float32, see `set_default_dtype`), Python ints int64, bools bool.

    Always copies, as torch.tensor does: changing `data` afterwards never changes the tensor
    (use `from_numpy` to share memory with a NumPy array).
    """
    if isinstance(data, (np.ndarray, np.generic)):
        _check_numpy_dtype(data)
    if dtype is None:
        dtype = _own_dtype(data)
    if device is None:
        device = _default_device
    values = _python_values(data, dtype)
    if dtype is None and values is data and isinstance(data, (list, tuple)):
        dtype = _sequence_dtype(data, tensors_inside=True)  # (Python numbers and tensors)
    t = Tensor._from_data(values, dtype, device)
    if requires_grad:
        t.requires_grad_(True)
    src = data._data if isinstance(data, Tensor) else data
    if t._data is src or (
        isinstance(src, np.ndarray)
        and isinstance(t._data, np.ndarray)
        and np.shares_memory(t._data, src)
    ):
        t._data = t._data.copy(order="K")  # (the array's layout, as PyTorch's copy: a
        # transposed array gives a tensor of transposed strides)
    elif backend.is_cupy_array(src) and t._data is src:
        t._data = t._data.copy()
    return _from_data_made(t, data)


def _from_data_made(t: Tensor, data) -> Tensor:
    """`tensor`'s result; descent.compile's recorder replaces this while it records, noting a
    tensor made from Python data or a NumPy array inside the call (a constant it may write)."""
    return t


def _tensor_data_made(t: Tensor, data) -> Tensor:
    """`Tensor.new_tensor(tensor)`'s way to `_from_data_made` (the ops table: the Tensor layer
    does not import this module), looked up at each call, so the recorder's replacement of it
    applies."""
    return _from_data_made(t, data)


tensor_methods.register_ops({"_tensor_data_made": _tensor_data_made})


def _full_like_new(x: Tensor, shape, fill_value, dtype) -> Tensor:
    """Tensor.new_full's values: `full`'s checks and conversions of the fill value (PyTorch's
    overflow errors: uint8 256, float32 1e40; uint8 -1 wraps), on x's device."""
    return full(shape, fill_value, dtype=dtype, device=x.device)


tensor_methods.register_ops({"_full_like_new": _full_like_new})


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """`data` as a tensor, without a copy where possible (torch.as_tensor): a Tensor is
    returned as it is; NumPy arrays keep their dtype (and share memory when no conversion is
    needed); lists follow `tensor`'s dtype rules."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    if isinstance(data, (np.ndarray, np.generic)):
        _check_numpy_dtype(data)
    if dtype is None:
        dtype = _own_dtype(data)
    values = _python_values(data, dtype)
    if dtype is None and values is data and isinstance(data, (list, tuple)):
        dtype = _sequence_dtype(data, tensors_inside=True)  # (Python numbers and tensors)
    t = Tensor._from_data(values, dtype, device if device is not None else _default_device)
    # (Python data: a new array, as tensor's; an array's memory is shared, no constant; a
    # Tensor converted to another dtype or device: its values copied, which descent.compile's
    # recorder must see)
    if isinstance(data, (list, tuple, int, float, Tensor)):
        return _from_data_made(t, data)
    return t


_PYTHON_NUMBERS = (int, float, bool)
_WIDE_INTS = (np.dtype(np.uint64), np.dtype(object))  # NumPy's dtypes for ints past int64's


def _python_values(data, dtype):
    """Python numbers (a scalar or a list of them) as a NumPy array with PyTorch's checked
    conversion (`tensor`, `as_tensor`); other data is returned as it is.

    An int past int64's range raises PyTorch's "Overflow when unpacking long long" unless the
    dtype is a floating, complex, bool or uint64 one (it wrapped: tensor([2**64 - 1]) was -1);
    an int or float outside an explicit integer dtype's range raises its "value cannot be
    converted to type int8 without overflow" (it wrapped: tensor([128], dtype=int8) was -128).
    Converting here, not in the Tensor layer, costs nothing more: the Tensor layer takes the
    array as it is.
    """
    first = data
    while isinstance(first, (list, tuple)) and first:
        first = first[0]
    if type(first) is complex and dtype is not None and np.dtype(as_dtype(dtype)).kind in "iufV":
        # PyTorch's parser reads the number as the dtype's C type: a complex one is a TypeError
        what = "must be real number" if np.dtype(as_dtype(dtype)).kind in "fV" else \
            "cannot be interpreted as an integer"  # fmt: skip
        raise TypeError(f"tensor: complex data for dtype {as_dtype(dtype)}: {what}, not "
                        f"complex, as in PyTorch; give a complex dtype or take .real")  # fmt: skip
    if first is None or isinstance(first, str):  # (PyTorch's errors: NumPy made an object
        # or string array, which a bool dtype took as truth values)
        if isinstance(data, str):
            raise TypeError(f"tensor: new(): invalid data type 'str' (got {data!r}), as in "
                            "PyTorch; strings are not numbers")  # fmt: skip
        if isinstance(first, str):
            raise ValueError(f"tensor: too many dimensions 'str' (got {data!r}): strings are "
                             f"not numbers, as in PyTorch")  # fmt: skip
        if dtype is None:
            raise DescentError("tensor: Could not infer dtype of NoneType (None in the data), "
                               "as in PyTorch; use float('nan') for a missing value")  # fmt: skip
        raise TypeError(f"tensor: None in the data for dtype {as_dtype(dtype)}: must be real "
                        f"number, not NoneType, as in PyTorch")  # fmt: skip
    if type(first) not in _PYTHON_NUMBERS:
        return data
    if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in _flat(data)):
        return data  # (tensors inside a list: the Tensor layer's conversion)
    dt = None if dtype is None else np.dtype(as_dtype(dtype))
    if dt is not None and dt.kind == "u" and dt.itemsize == 8:
        return data  # (uint64 takes ints up to 2**64 - 1 from the ints themselves)
    try:
        arr = np.asarray(data)
    except ValueError:
        raise _ragged_error(data) from None
    if arr.dtype.kind == "c" and dt is not None and dt.kind in "iufV":  # (a complex number
        # after the first element: PyTorch's parser reads each as the dtype's C type)
        raise TypeError(f"tensor: complex data for dtype {dt}: must be real number, not "
                        f"complex, as in PyTorch; give a complex dtype or take .real")  # fmt: skip
    if dt == np.int64 and arr.dtype.kind == "f" and arr.size and not _fits_int64(arr):
        # (a float outside int64's range, nan and inf: PyTorch's checked conversion of a
        # double, whose bound is int64's largest as a double, 2**63)
        bad = arr[~(np.isfinite(arr) & (arr >= -(2.0**63)) & (arr <= 2.0**63))]
        raise DescentError(
            f"tensor: value cannot be converted to type int64 without overflow (got "
            f"{bad.flat[0]!r} in data of shape {tuple(arr.shape)}), as in PyTorch"
        )
    if arr.dtype in _WIDE_INTS and (dt is None or dt.kind in "iu"):
        if arr.dtype == object:
            wide = [v for v in arr.flat if type(v) is int and not -(2**63) <= v < 2**63]
        else:
            wide = [int(arr.max())]  # uint64: NumPy's type for ints in [2**63, 2**64)
        if wide:
            raise DescentError(
                f"tensor: Overflow when unpacking long long: {wide[0]} is outside int64's range "
                f"[-2**63, 2**63) (as PyTorch); give dtype=descent.float64 (or uint64) to keep it"
            )
    elif dt is not None and dt.kind in "iu" and dt.itemsize < 8 and arr.size:
        if arr.dtype.kind in "iu" or (arr.dtype.kind == "f" and np.isfinite(arr).all()):
            info = np.iinfo(dt)
            # (an int -1 wraps to uint8 255; a float must lie in the range itself: -1.0 and
            # 127.9 for int8 raise, as PyTorch's checked conversion of a double)
            low = -info.max if dt.kind == "u" and arr.dtype.kind != "f" else info.min
            bad = arr[(arr < low) | (arr > info.max)]
        else:
            bad = arr[~np.isfinite(arr)] if arr.dtype.kind == "f" else arr.ravel()[:0]  # (a
            # 0-d bool: tensor(True, dtype=uint8) raised NumPy's IndexError)
        if bad.size:
            raise DescentError(
                f"tensor: value cannot be converted to type {dt} without overflow (got "
                f"{bad.flat[0]!r} in data of shape {tuple(arr.shape)}), as in PyTorch; give a "
                "wider dtype"
            )
    return arr


def _ragged_error(data):
    """PyTorch's error for a nested list NumPy cannot make an array of: a number beside a
    list at one level is a TypeError ("not a sequence"), lists of different lengths a
    ValueError."""
    level = [data]
    depth = 0
    while level:
        seqs = [isinstance(v, (list, tuple)) for v in level]
        if any(seqs) and not all(seqs):
            return TypeError(f"tensor: not a sequence: a number beside a list at dim {depth} "
                             "of the nested data (as PyTorch); make every row a list")  # fmt: skip
        if not any(seqs):
            break
        lengths = {len(v) for v in level}
        if len(lengths) > 1:
            return ValueError(f"tensor: expected sequences of one length at dim {depth} (got "
                              f"lengths {sorted(lengths)}), as PyTorch; pad the rows")  # fmt: skip
        level = [w for v in level for w in v]
        depth += 1
    return ValueError("tensor: the nested data has no rectangular shape, as PyTorch requires")


def _fits_int64(arr) -> bool:
    """Whether a float array's values all convert to int64 under PyTorch's check."""
    return bool(np.isfinite(arr).all()) and -(2.0**63) <= arr.min() <= arr.max() <= 2.0**63


_NUMPY_DTYPES = "float64, float32, float16, complex64, complex128, int64, int32, int16, int8, "\
    "uint64, uint32, uint16, uint8, and bool"  # fmt: skip
_NUMPY_TAKEN = frozenset(np.dtype(d) for d in _NUMPY_DTYPES.replace("and ", "").split(", "))


def _ml_dtype(dtype) -> bool:
    """Whether a NumPy dtype is one of ml_dtypes' (bfloat16, the float8s, int4, ...)."""
    return dtype.kind == "V" or dtype.type.__module__.split(".")[0] == "ml_dtypes"


def _check_numpy_dtype(arr) -> None:
    """PyTorch's TypeError for a NumPy array of a dtype no tensor holds (longdouble, object,
    strings, datetimes; descent made float128 tensors of longdouble, and from_numpy took any
    array); ml_dtypes' bfloat16 and float8 arrays are descent's own (their kinds vary: 'V' for
    bfloat16, 'f' for float8_e5m2, so they are told by the module that defines them)."""
    if arr.dtype not in _NUMPY_TAKEN and not _ml_dtype(arr.dtype):
        raise TypeError(
            f"can't convert np.ndarray of type numpy.{arr.dtype.type.__name__} (shape "
            f"{arr.shape}). The only supported types are: {_NUMPY_DTYPES} (as PyTorch)"
        )


def _own_dtype(data):
    """The dtype torch.tensor keeps: that of a NumPy/CuPy array or scalar (or a Tensor), or of
    the NumPy scalars and arrays in a list (see `_sequence_dtype`); None (descent's defaults)
    for Python data."""
    if isinstance(data, Tensor):
        return data.dtype
    if isinstance(data, (np.ndarray, np.generic)) or backend.is_cupy_array(data):
        if data.dtype.kind in "biufc":
            return data.dtype
    if isinstance(data, (list, tuple)):
        return _sequence_dtype(data)
    return None


def _first_leaf(data):
    """The first non-sequence element of a nested list/tuple (None when there is none)."""
    while isinstance(data, (list, tuple)):
        if not data:
            return None
        data = data[0]
    return data


def _sequence_dtype(data, tensors_inside: bool = False):
    """torch.tensor's inference over a list holding NumPy scalars or arrays, or tensors
    (`[arr.mean(), arr.std()]` is float64, `[np.int32(1), np.int32(2)]` int32,
    `[t.max(), 1.0]` of a float64 t float64, `[tensor(1, dtype=int8), 2]` int64): every element's
    own dtype, Python floats counting as the default float dtype, ints as int64, bools as bool,
    promoted as torch.promote_types. None when the first element is a Python number: such a
    list is taken as all Python numbers (descent's defaults), which spares a Python-level walk
    of long lists of floats, unless `tensors_inside` (`_python_values` found a tensor in it)."""
    if not tensors_inside and not isinstance(_first_leaf(data), (np.ndarray, np.generic, Tensor)):
        return None
    out = None
    stack = [data]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
            continue
        if isinstance(x, (np.ndarray, np.generic, Tensor)):
            d = x._data.dtype if isinstance(x, Tensor) else x.dtype
        elif isinstance(x, bool):
            d = np.dtype(np.bool_)
        elif isinstance(x, int):
            d = np.dtype(np.int64)
        elif isinstance(x, float):
            d = np.dtype(get_default_dtype())
        elif isinstance(x, complex):
            d = complex_of(np.dtype(get_default_dtype()))
        else:
            return None  # something else: leave it to the conversion to judge
        if d.kind not in "biufcV":
            return None
        out = d if out is None else promote_types(out, d)
    return out


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array, keeping its dtype (float64 stays float64)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    _check_numpy_dtype(array)
    return Tensor._wrap(array)


class _Capsule:
    """A bare DLPack capsule (of CPU memory) as the exporter object NumPy's from_dlpack wants:
    consumed once, as DLPack requires."""

    def __init__(self, capsule) -> None:
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU: descent's to_dlpack exports NumPy (CPU) memory


class _WritableView:
    """The memory of a read-only array as a writable one (NumPy's __array_interface__ with
    the read-only flag off); holds the array, so the exporter's memory stays alive."""

    def __init__(self, arr) -> None:
        self._keep = arr
        iface = dict(arr.__array_interface__)
        iface["data"] = (iface["data"][0], False)
        self.__array_interface__ = iface


def from_dlpack(ext_tensor) -> Tensor:
    """A tensor sharing memory with any DLPack exporter (a NumPy, CuPy or JAX array, a torch
    tensor on the CPU, a descent tensor), as torch.from_dlpack: CPU memory becomes a NumPy
    array, CUDA memory a CuPy one."""
    if isinstance(ext_tensor, Tensor):
        return Tensor._wrap(ext_tensor._data)
    if type(ext_tensor).__name__ == "PyCapsule":  # torch.utils.dlpack.to_dlpack's capsule
        # A legacy capsule carries no read-only flag and NumPy marks its array read-only;
        # PyTorch writes through it (its docstring shares memory between three tensors).
        arr = np.from_dlpack(_Capsule(ext_tensor))
        return Tensor._wrap(arr if arr.flags.writeable else np.asarray(_WritableView(arr)))
    has_device = hasattr(ext_tensor, "__dlpack_device__")
    device_type = ext_tensor.__dlpack_device__()[0] if has_device else 1
    if device_type == 1:  # kDLCPU
        return Tensor._wrap(np.from_dlpack(ext_tensor))
    cp = backend.cupy_module()
    if cp is None:
        raise RuntimeError(
            "from_dlpack: the array lives on a GPU (DLPack device type "
            f"{device_type}), and CuPy is not installed; pip install cupy-cuda12x"
        )
    return Tensor._wrap(cp.from_dlpack(ext_tensor))


def zeros(*shape, size=None, dtype=None, layout=None, requires_grad=False, device=None,
          out=None) -> Tensor:  # fmt: skip
    if layout is not None and _sparse_layout(layout, "zeros"):  # PyTorch's empty sparse tensor
        return _empty_sparse(_shape(shape if size is None else (size,)), dtype, requires_grad,
                             device)  # fmt: skip
    if out is not None:  # PyTorch's out= (ops/out_arg.py): made in out's dtype
        kw = dict(size=size, dtype=dtype, requires_grad=requires_grad, device=device)
        return creation_out(zeros, shape, kw, out, "zeros")
    arr = _xp(device).zeros(_shape(shape if size is None else (size,)), dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def ones(*shape, size=None, dtype=None, layout=None, requires_grad=False, device=None,
         out=None) -> Tensor:  # fmt: skip
    _check_layout(layout, "ones")
    if out is not None:  # PyTorch's out= (ops/out_arg.py): made in out's dtype
        kw = dict(size=size, dtype=dtype, requires_grad=requires_grad, device=device)
        return creation_out(ones, shape, kw, out, "ones")
    arr = _xp(device).ones(_shape(shape if size is None else (size,)), dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def empty(*shape, size=None, dtype=None, layout=None, requires_grad=False, device=None,
          out=None, memory_format=None, pin_memory=False) -> Tensor:  # fmt: skip
    if layout is not None and _sparse_layout(layout, "empty"):  # PyTorch's empty sparse tensor
        return _empty_sparse(_shape(shape if size is None else (size,)), dtype, requires_grad,
                             device)  # fmt: skip
    if out is not None:  # PyTorch's out= (ops/out_arg.py): made in out's dtype
        kw = dict(size=size, dtype=dtype, requires_grad=requires_grad, device=device)
        return creation_out(empty, shape, kw, out, "empty")
    arr = _xp(device).empty(_shape(shape if size is None else (size,)), dtype=_float_dtype(dtype))
    if memory_format is not None:
        arr = _empty_as(arr, memory_layout.format_name(memory_format))
    return _finish(arr, dtype, requires_grad, None)


def _empty_as(arr, name: str):
    """empty's memory_format=: channels_last(_3d) strides, as torch.empty's."""
    if name == "preserve_format":  # nothing to preserve: PyTorch refuses it too
        raise DescentError(
            "empty: unsupported memory format preserve_format (give "
            "contiguous_format, channels_last or channels_last_3d)"
        )
    if name != "contiguous_format":
        memory_layout.check_rank(arr, name)
        arr = memory_layout.copy_as(arr, name)
    return arr


def full(shape, fill_value, dtype=None, requires_grad=False, device=None, *, layout=None
         ) -> Tensor:  # fmt: skip
    _check_layout(layout, "full")
    if isinstance(shape, int):
        shape = (shape,)
    if dtype is None:
        dtype = (
            np.bool_ if isinstance(fill_value, bool)
            else np.int64 if isinstance(fill_value, (int, np.integer))
            else complex_of(get_default_dtype()) if isinstance(fill_value, complex)
            else get_default_dtype()
        )  # fmt: skip
    # PyTorch's range check; uint8 -1 wraps to 255, float16 refuses 1e9
    # (and any number for float8: c10's checked conversion, float8.py)
    big = type(fill_value) is float and not -65504 <= fill_value <= 65504
    npdt = np.dtype(as_dtype(dtype))
    if type(fill_value) in (int, complex) or big or npdt.num >= 256 or (
        type(fill_value) is float and npdt.kind in "iub"
    ):  # (nan, inf, 300.5 into int8; 1j into a real dtype: PyTorch's overflow error)
        fill_value = fill_int(fill_value, npdt)
        if npdt.kind == "b":  # (any number; 2**63 is True too, not NumPy's OverflowError)
            fill_value = bool(fill_value)
    arr = _xp(device).full(_nonnegative(tuple(shape)), fill_value, dtype=dtype)
    return _finish(arr, dtype, requires_grad, None)


def _like(x: Tensor, dtype, device):
    return (dtype or x.dtype), (device or x.device)


def _sparse_like(x, op: str, dtype, requires_grad, device):
    """A sparse x's own answer (descent.sparse: zeros_like/empty_like give an empty sparse
    tensor, a fill raises, as PyTorch's), or None for a dense x."""
    like = getattr(type(x), "_like", None)
    return None if like is None else like(x, op, dtype, requires_grad, device)


def zeros_like(x, dtype=None, requires_grad=False, device=None, *, layout=None,
               memory_format=None) -> Tensor:  # fmt: skip
    """Zeros of x's shape, and of x's dtype, device and memory format unless given (the
    `*_like` functions take PyTorch's layout= and memory_format=, preserve_format by default)."""
    if type(x) is not Tensor and (s := _sparse_like(x, "zeros_like", dtype, requires_grad,
                                                     device)) is not None:  # fmt: skip
        return s
    _check_layout(layout, "zeros_like")
    dt, dev = _like(x, dtype, device)
    out = zeros(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)
    return _layout_like(out, x, memory_format)


def ones_like(x, dtype=None, requires_grad=False, device=None, *, layout=None,
              memory_format=None) -> Tensor:  # fmt: skip
    if type(x) is not Tensor:
        _sparse_like(x, "ones_like", dtype, requires_grad, device)
    _check_layout(layout, "ones_like")
    dt, dev = _like(x, dtype, device)
    out = ones(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)
    return _layout_like(out, x, memory_format)


def empty_like(x, dtype=None, requires_grad=False, device=None, *, layout=None,
               memory_format=None) -> Tensor:  # fmt: skip
    if type(x) is not Tensor and (s := _sparse_like(x, "empty_like", dtype, requires_grad,
                                                     device)) is not None:  # fmt: skip
        return s
    _check_layout(layout, "empty_like")
    dt, dev = _like(x, dtype, device)
    out = empty(x.shape, dtype=dt, requires_grad=requires_grad, device=dev)
    return _layout_like(out, x, memory_format)


def full_like(x, fill_value, dtype=None, requires_grad=False, device=None, *, layout=None,
              memory_format=None) -> Tensor:  # fmt: skip
    if type(x) is not Tensor:
        _sparse_like(x, "full_like", dtype, requires_grad, device)
    _check_layout(layout, "full_like")
    dt, dev = _like(x, dtype, device)
    out = full(x.shape, fill_value, dtype=dt, requires_grad=requires_grad, device=dev)
    return _layout_like(out, x, memory_format)


_I64 = np.dtype(np.int64)


def arange(start=0, end=None, step=1, dtype=None, requires_grad=False, device=None, *,
           layout=None) -> Tensor:  # fmt: skip
    """Values from start (inclusive) to end (exclusive); int64 for integer arguments."""
    # The common call (Python int bounds, a positive int step, an int64 result on the CPU:
    # GPT's positions arange(0, T)) makes the array the checked path below makes (~8 us less)
    if (type(start) is int and type(end) is int and type(step) is int and step > 0
            and end >= start and not requires_grad and layout is None
            and (dtype is None or dtype is np.int64 or as_dtype(dtype) == _I64)
            and _xp(device) is np):  # fmt: skip
        return autograd._new_tensor(np.arange(start, end, step).astype(np.int64))
    _check_layout(layout, "arange")
    if end is None:
        start, end = 0, start
    # 0-d tensors as bounds (arange(t.max())) count as their Python numbers, as in PyTorch
    start, end, step = (v.item() if isinstance(v, Tensor) else v for v in (start, end, step))
    # PyTorch's checks (NumPy returns an empty range, or divides by zero)
    if step == 0:
        raise DescentError("arange: step must be nonzero")
    if not all(np.isfinite(v) for v in (start, end)):  # NumPy: "Maximum allowed size exceeded"
        raise DescentError(f"arange: unsupported range {start} to {end}; the bounds must be finite")
    if (end - start) * step < 0:
        raise DescentError(
            f"arange: upper bound {end} and lower bound {start} inconsistent with step sign "
            f"({step}), as PyTorch refuses"
        )
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else get_default_dtype()
    _no_bool_range("arange", dtype)
    dt = np.dtype(as_dtype(dtype))
    if dt.kind == "c":  # PyTorch's arange has no complex kernel (NumPy's would compute)
        raise DtypeError(f'"arange_cpu" not implemented for {dt} (arange({start}, {end}, '
                         f'{step})), as in PyTorch; make a real range and convert it')  # fmt: skip
    if dt.kind in "iu" and not all(isinstance(v, (int, np.integer)) for v in (start, end, step)):
        # Non-integer bounds for an integer dtype: PyTorch truncates them first
        arr = _xp(device).asarray(integer_arange(start, end, step, dt))
        return _finish(arr, dtype, requires_grad, None)
    arr = _xp(device).arange(start, end, step).astype(dtype)
    return _finish(arr, dtype, requires_grad, None)


def _no_bool_range(op: str, dtype) -> None:
    """PyTorch has no bool kernel for the ranges (NotImplementedError, a RuntimeError): NumPy
    would return a mask of nonzero values."""
    if dtype is not None and np.dtype(as_dtype(dtype)) == np.bool_:
        raise DtypeError(f'"{op}" not implemented for \'Bool\'')


def _check_space_args(op: str, start, end, steps) -> None:
    """PyTorch's argument checks of linspace/logspace: 0-d bounds, an integer step count."""
    for v in (start, end):
        if isinstance(v, Tensor) and v.ndim != 0:
            raise DescentError(
                f"{op}: only supports 0-dimensional start and end tensors, got shape "
                f"{tuple(v.shape)}; pass numbers or 0-d tensors"
            )
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool):
        if not (isinstance(steps, Tensor) and steps.ndim == 0 and steps._data.dtype.kind in "iu"):
            raise TypeError(f"{op}: steps must be an int, got {type(steps).__name__} {steps!r}")


def linspace(start, end, steps: int, dtype=None, requires_grad=False, device=None) -> Tensor:
    _check_space_args("linspace", start, end, steps)
    _no_bool_range("linspace", dtype)
    if steps < 0:
        raise DescentError(f"linspace: number of steps must be non-negative, got {steps}")
    # 0-d tensor bounds count as their Python numbers (a float32 one must not make NumPy
    # compute a float64 range in float32), as PyTorch's tensor overload (start.item())
    start, end = (v.item() if isinstance(v, Tensor) else v for v in (start, end))
    dt = _float_dtype(dtype)
    if isinstance(start, complex) or isinstance(end, complex):
        if dtype is not None and np.dtype(dt).kind != "c":
            raise DescentError(f"linspace: complex bounds ({start}, {end}) cannot be safely "
                               f"cast to the dtype {dtype} given, as in PyTorch")  # fmt: skip
        dt = complex_of(np.dtype(dt))  # (complex bounds: a complex range, as PyTorch's)
    if np.dtype(dt).kind in "iu":  # PyTorch's kernel: bounds truncated to the dtype first
        arr = _xp(device).asarray(integer_space(start, end, int(steps), np.dtype(dt)))
        return _finish(arr, dtype, requires_grad, None)
    if np.dtype(dt).kind == "f" or is_bfloat16(dt):  # PyTorch's kernel (creation_integer.py)
        arr = _xp(device).asarray(float_space(start, end, int(steps), np.dtype(dt)))
        return _finish(arr, dtype, requires_grad, None)
    arr = _xp(device).linspace(start, end, steps).astype(dt)
    return _finish(arr, dtype, requires_grad, None)


def eye(n: int, m: int | None = None, dtype=None, requires_grad=False, device=None) -> Tensor:
    for name, k in (("n", n), ("m", m)):
        if k is not None and k < 0:
            raise DescentError(f"eye: {name} must be greater or equal to 0, got {k}")
    arr = _xp(device).eye(n, m, dtype=_float_dtype(dtype))
    return _finish(arr, dtype, requires_grad, None)


def _check_layout(layout, op: str) -> None:
    """A factory that fills values makes strided tensors only: a sparse layout raises, naming
    the op (PyTorch has no sparse fill either; zeros and empty make sparse tensors)."""
    if layout is not None and str(layout).rpartition(".")[2] != "strided":
        raise NotImplementedError(
            f"{op}: makes tensors of only the strided layout (dense), got layout={layout}; build "
            "a sparse one with descent.sparse_coo_tensor, or x.to_sparse()"
        )


def _sparse_layout(layout, op: str) -> bool:
    """zeros/empty's layout=: True for sparse_coo (an empty sparse tensor), False for strided;
    another layout raises."""
    name = str(layout).rpartition(".")[2]
    if name == "strided":
        return False
    if name != "sparse_coo":
        raise NotImplementedError(f"{op}: layout={layout} is not supported by descent "
                                  "(strided and sparse_coo are)")  # fmt: skip
    return True


def _empty_sparse(shape, dtype, requires_grad, device) -> Tensor:
    from .sparse.tensor import empty_sparse  # noqa: PLC0415 - descent.sparse, on first use

    return empty_sparse(shape, dtype, device, requires_grad)


def _layout_like(out: Tensor, x: Tensor, memory_format) -> Tensor:
    """A fresh `*_like` result in x's memory format (preserve_format, PyTorch's default) or in
    the one asked for; relaid in place, as nothing else holds `out` yet."""
    name = "preserve_format" if memory_format is None else memory_layout.format_name(memory_format)
    if name == "preserve_format":  # x's strides where dense, as PyTorch (memory_layout.preserved)
        if not x._data.flags.c_contiguous:
            out._data = memory_layout.preserved(x._data, out._data)
        return out
    if name != "contiguous_format":
        memory_layout.check_rank(out._data, name)
        out._data = memory_layout.copy_as(out._data, name)
    return out


# The random numbers live in creation_random.py (the file grew past the style guide's ~700
# lines); every name is re-exported here, so `descent.creation.rand`, `from .creation import
# _rng` and `from .creation import *` keep working. Imported last: it takes helpers from above.
from .creation_random import *  # noqa: E402, F403
from .creation_random import (  # noqa: E402, F401
    _RNG_TAG,
    _check_random_float,
    _default_generator,
    _DefaultGenerator,
    _device_generator,
    _device_generators,
    _fill_inplace,
    _rng,
)
