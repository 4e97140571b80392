"""Quantized tensors: PyTorch's quint8 / qint8 / qint32 dtypes, the quantization schemes, and
`quantize_per_tensor`, `quantize_per_channel`, `quantize_per_tensor_dynamic`, `dequantize`.

A quantized tensor IS a `descent.Tensor` (a `QuantizedTensor`, as sparse tensors are
`SparseTensor`s) whose `_data` is a `QuantizedStorage`: the integer representation (a NumPy
uint8 / int8 / int32 array, `int_repr()`) and the affine parameters (a float64 scale and an int
zero point per tensor, or per channel along `axis`). The value of an element is
`(int_repr - zero_point) * scale`.

What PyTorch computes on quantized tensors without dequantizing (quantized kernels: add,
relu, conv, ...) descent does not: any op other than the inspection and shape methods below
reaches the storage, which raises `QuantizedUnsupportedError` (a NotImplementedError, as
PyTorch's "Could not run 'aten::add' with arguments from the 'QuantizedCPU' backend") naming
the op and the fix: `.dequantize()` first. The rounding of every kernel is PyTorch's, bit for
bit (kernels.py; docs/quantization.md).
"""

from __future__ import annotations

import sys

import numpy as np

from .. import autograd
from ..dtypes import dtype as _dtype
from ..print_options import add_suffixes, format_values
from ..tensor import Size, Tensor
from . import kernels

__all__ = [
    "QuantizedTensor", "QuantizedUnsupportedError", "dequantize", "per_channel_affine",
    "per_channel_affine_float_qparams", "per_channel_symmetric", "per_tensor_affine",
    "per_tensor_symmetric", "qint32", "qint8", "qscheme", "quantize_per_channel",
    "quantize_per_tensor", "quantize_per_tensor_dynamic", "quint8",
]  # fmt: skip


# -- dtypes and schemes -----------------------------------------------------------------------
class QuantizedDType(_dtype):
    """torch.quint8 / qint8 / qint32: a `descent.dtype` (isinstance holds) that is no NumPy
    dtype. Its `dtype` slot stays unset, so NumPy's `np.dtype(descent.quint8)` and descent's
    `as_dtype` refuse it (`zeros(3, dtype=descent.quint8)` raises instead of making uint8);
    `storage_dtype` is the NumPy dtype of its integer representation."""

    __slots__ = ("name", "storage_dtype")

    def __init__(self, name: str, storage) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "storage_dtype", np.dtype(storage))
        object.__setattr__(self, "is_floating_point", False)
        object.__setattr__(self, "is_complex", False)
        object.__setattr__(self, "is_signed", name != "quint8")

    def __getattr__(self, name: str):
        # An op reading `x._data.dtype.kind` (every op but the quantized ones) ends here: the
        # loud error, which is also an AttributeError so that hasattr() probes answer False.
        raise QuantizedDTypeError(
            f"{_op_name()}: not supported for a quantized tensor (dtype=descent.{self.name}; the "
            f"op asked for the dtype's {name!r}). Dequantize first: x.dequantize() gives the "
            "float32 values (quantize the result again with descent.quantize_per_tensor if "
            "needed)"
        )

    def __eq__(self, other) -> bool:
        return self is other

    def __ne__(self, other) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return hash(("quantized", self.name))

    def __repr__(self) -> str:
        return f"descent.{self.name}"

    __str__ = __repr__

    def __reduce__(self):  # one object per dtype: pickle and deepcopy find it by name
        return (_qdtype_named, (self.name,))

    @property
    def itemsize(self) -> int:
        return self.storage_dtype.itemsize

    def to_real(self):
        return self

    def to_complex(self):
        raise TypeError(f"{self!r}.to_complex(): a quantized dtype has no complex form")


quint8 = QuantizedDType("quint8", np.uint8)
qint8 = QuantizedDType("qint8", np.int8)
qint32 = QuantizedDType("qint32", np.int32)
_QDTYPES = {"quint8": quint8, "qint8": qint8, "qint32": qint32}


class qscheme:  # lower case: PyTorch's name (torch.qscheme)
    """A quantization scheme: torch.per_tensor_affine & co. (one object per scheme)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"descent.{self.name}"

    __str__ = __repr__

    def __reduce__(self):  # one object per scheme: pickle and deepcopy find it by name
        return (_qscheme_named, (self.name,))


def _qdtype_named(name: str) -> QuantizedDType:
    return _QDTYPES[name]


def _qscheme_named(name: str) -> qscheme:
    return _QSCHEMES[name]


per_tensor_affine = qscheme("per_tensor_affine")
per_channel_affine = qscheme("per_channel_affine")
per_tensor_symmetric = qscheme("per_tensor_symmetric")
per_channel_symmetric = qscheme("per_channel_symmetric")
per_channel_affine_float_qparams = qscheme("per_channel_affine_float_qparams")
_QSCHEMES = {
    q.name: q
    for q in (per_tensor_affine, per_channel_affine, per_tensor_symmetric, per_channel_symmetric,
              per_channel_affine_float_qparams)
}  # fmt: skip


def as_qdtype(dt, op: str) -> QuantizedDType:
    """The quantized dtype `dt` names (a QuantizedDType or its name), else PyTorch's error."""
    if isinstance(dt, QuantizedDType):
        return dt
    if isinstance(dt, str) and dt.replace("torch.", "").replace("descent.", "") in _QDTYPES:
        return _QDTYPES[dt.replace("torch.", "").replace("descent.", "")]
    raise RuntimeError(f"{op}: dtype {dt!r} is not a quantized dtype (descent.quint8, "
                       "descent.qint8 or descent.qint32)")  # fmt: skip


# -- the storage ------------------------------------------------------------------------------
class QuantizedUnsupportedError(NotImplementedError):
    """An operation descent's quantized tensors do not support (PyTorch raises
    NotImplementedError for an op without a QuantizedCPU kernel, too)."""


class QuantizedDTypeError(QuantizedUnsupportedError, AttributeError):
    """A NumPy dtype attribute asked of a quantized dtype (`kind`, `itemsize` of the
    storage...): an op that does not know quantized tensors."""


_SUPPORTED = (
    "dequantize(), int_repr(), q_scale(), q_zero_point(), q_per_channel_scales(), "
    "q_per_channel_zero_points(), q_per_channel_axis(), qscheme(), clone(), detach(), and for "
    "per-tensor quantization view/reshape/flatten/transpose/t/permute/indexing"
)
# Frames of wrappers: never an op's name
_WRAPPERS = {"wrapper", "inner", "decorate_context", "_fn", "<lambda>", "<genexpr>",
             "<listcomp>", "<dictcomp>", "fn", "apply"}  # fmt: skip


def _op_name() -> str:
    """The descent op whose code reached the storage: the nearest running Function (its class
    name), else the outermost descent function outside this package. Error path only."""
    frame = sys._getframe(2)
    fallback = None
    while frame is not None:
        self = frame.f_locals.get("self")
        if isinstance(self, autograd.Function):
            return type(self).__name__
        module = frame.f_globals.get("__name__", "")
        name = frame.f_code.co_qualname
        if (module.startswith("descent.") and not module.startswith("descent.quantization")
                and name.rpartition(".")[2] not in _WRAPPERS):  # fmt: skip
            cls, _, meth = name.rpartition(".")
            # Tensor's method groups (TorchMethods, PythonProtocol, ...) are Tensor's methods
            mixin = cls.rstrip("0123456789").endswith(("Methods", "Protocol"))
            fallback = f"Tensor.{meth}" if mixin else name
        frame = frame.f_back
    return fallback or "this operation"


def unsupported(storage, what: str, op: str | None = None) -> QuantizedUnsupportedError:
    """The loud error: the op, what it asked of the storage, the tensor, and the fix."""
    op = op or _op_name()
    return QuantizedUnsupportedError(
        f"{op}: not supported for a quantized tensor (shape {tuple(storage.shape)}, "
        f"dtype=descent.{storage.qdtype.name}, {storage.qscheme.name}; the op asked for {what}). "
        f"descent's quantized tensors support {_SUPPORTED}. Dequantize first: x.dequantize() "
        "gives the float32 values (quantize the result again with descent.quantize_per_tensor "
        "if needed)"
    )


class _Flags:
    """`flags` as NumPy's, for the engine's ownership checks: not writeable (never updated in
    place by the engine)."""

    __slots__ = ()
    writeable = False
    c_contiguous = True
    f_contiguous = False
    owndata = True


_FLAGS = _Flags()


class QuantizedStorage:
    """What a quantized tensor's `_data` holds (PyTorch's QTensorImpl + its Quantizer).

    Attributes:
        ints: the integer representation, a C-contiguous NumPy array of qdtype.storage_dtype.
        qdtype: descent.quint8 / qint8 / qint32.
        qscheme: per_tensor_affine or per_channel_affine.
        scale: the float64 scale (per tensor) or a float64 array (C,) (per channel).
        zero_point: the int zero point (per tensor) or an int64 array (C,) (per channel).
        axis: the channel dimension (per channel) or None.
    """

    __slots__ = ("ints", "qdtype", "qscheme", "scale", "zero_point", "axis")
    base = None  # never a view of another array (backend.owns_data, autograd.mark_view)
    flags = _FLAGS
    __hash__ = object.__hash__

    def __init__(self, ints, qdtype, scheme, scale, zero_point, axis=None) -> None:
        self.ints = np.ascontiguousarray(ints)
        self.qdtype, self.qscheme = qdtype, scheme
        self.scale, self.zero_point, self.axis = scale, zero_point, axis

    @property
    def shape(self) -> tuple:
        return self.ints.shape

    @property
    def ndim(self) -> int:
        return self.ints.ndim

    @property
    def size(self) -> int:
        return self.ints.size

    @property
    def dtype(self):
        return self.qdtype

    @property
    def strides(self) -> tuple:
        return self.ints.strides

    @property
    def itemsize(self) -> int:
        return self.ints.itemsize

    @property
    def nbytes(self) -> int:
        return self.ints.nbytes

    @property
    def device(self) -> str:
        return "cpu"

    def __repr__(self) -> str:
        return (f"QuantizedStorage(shape={self.shape}, dtype={self.qdtype!r}, "
                f"{self.qscheme.name})")  # fmt: skip

    def copy(self, order: str = "C") -> QuantizedStorage:
        scale, zp = self.scale, self.zero_point
        if self.axis is not None:  # per-channel parameters are arrays: copied too
            scale, zp = scale.copy(), zp.copy()
        return QuantizedStorage(self.ints.copy(), self.qdtype, self.qscheme, scale, zp, self.axis)

    def with_ints(self, ints) -> QuantizedStorage:
        """The same per-tensor parameters around other integers (a view/reshape/index)."""
        return QuantizedStorage(ints, self.qdtype, self.qscheme, self.scale, self.zero_point)

    def values(self) -> np.ndarray:
        """The float32 values (PyTorch's dequantize kernels' rounding: kernels.py)."""
        if self.axis is None:
            return kernels.dequantize_per_tensor(self.ints, self.scale, self.zero_point)
        return kernels.dequantize_per_channel(self.ints, self.scale, self.zero_point, self.axis)

    # -- the loud refusal -------------------------------------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("__"):  # protocol probes (NumPy's __array_interface__, ...)
            raise AttributeError(name)
        raise unsupported(self, f"the array attribute {name!r}")

    def __array__(self, *args, **kwargs):
        raise unsupported(self, "its values as a NumPy array")

    def __array_function__(self, func, types, args, kwargs):
        raise unsupported(self, f"NumPy's {func.__name__}")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        raise unsupported(self, f"NumPy's {ufunc.__name__}")

    def _refuse(self, *args, **kwargs):
        raise unsupported(self, "an elementwise, comparison or indexing operation")

    __getitem__ = __setitem__ = __iter__ = __len__ = _refuse
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse  # type: ignore[assignment]
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __mod__ = __pow__ = __rpow__ = _refuse
    __matmul__ = __rmatmul__ = __neg__ = __abs__ = __invert__ = _refuse
    __and__ = __or__ = __xor__ = _refuse
    __bool__ = __float__ = __int__ = __index__ = __complex__ = _refuse


# -- the tensor -------------------------------------------------------------------------------
class QuantizedTensor(Tensor):
    """A quantized tensor (`x.is_quantized`); make one with `descent.quantize_per_tensor`,
    `quantize_per_channel` or `quantize_per_tensor_dynamic` (docs/quantization.md)."""

    __slots__ = ()  # Tensor's layout: the engine assigns this class around a QuantizedStorage

    @property
    def is_quantized(self) -> bool:
        return True

    @property
    def dtype(self):
        return self._data.qdtype

    @property
    def requires_grad(self) -> bool:
        return False

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value:
            raise RuntimeError("only Tensors of floating point dtype can require gradients "
                               f"(this one is descent.{self._data.qdtype.name}; "
                               "x.dequantize() is float32)")  # fmt: skip

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    # -- the inspection API ------------------------------------------------------------------
    def dequantize(self) -> Tensor:
        """The float32 values, (int_repr - zero_point) * scale (a new dense tensor)."""
        return autograd._new_tensor(self._data.values())

    def int_repr(self) -> Tensor:
        """The integer representation: a uint8 (quint8), int8 (qint8) or int32 (qint32) copy."""
        return autograd._new_tensor(self._data.ints.copy())

    def qscheme(self):
        return self._data.qscheme

    def q_scale(self) -> float:
        self._need_per_tensor("q_scale")
        return float(self._data.scale)

    def q_zero_point(self) -> int:
        self._need_per_tensor("q_zero_point")
        return int(self._data.zero_point)

    def q_per_channel_scales(self) -> Tensor:
        self._need_per_channel("q_per_channel_scales")
        return autograd._new_tensor(self._data.scale.astype(np.float64))

    def q_per_channel_zero_points(self) -> Tensor:
        self._need_per_channel("q_per_channel_zero_points")
        return autograd._new_tensor(self._data.zero_point.astype(np.int64))

    def q_per_channel_axis(self) -> int:
        self._need_per_channel("q_per_channel_axis")
        return int(self._data.axis)

    def _need_per_tensor(self, op: str) -> None:
        if self._data.axis is not None:
            raise RuntimeError(f"{op}: the tensor is quantized {self._data.qscheme.name} "
                               f"(axis {self._data.axis}); use q_per_channel_scales() / "
                               "q_per_channel_zero_points()")  # fmt: skip

    def _need_per_channel(self, op: str) -> None:
        if self._data.axis is None:
            raise RuntimeError(f"{op}: the tensor is quantized {self._data.qscheme.name}; "
                               "use q_scale() / q_zero_point()")  # fmt: skip

    # -- copies and shape ---------------------------------------------------------------------
    def clone(self, *, memory_format=None) -> Tensor:
        return autograd._new_tensor(self._data.copy())

    def contiguous(self, memory_format=None) -> Tensor:
        return self

    def is_contiguous(self, memory_format=None) -> bool:
        return True

    def element_size(self) -> int:
        return self._data.itemsize

    def numpy(self, *, force: bool = False):
        raise TypeError(f"can't convert a quantized tensor (descent.{self._data.qdtype.name}) to "
                        "numpy: use x.int_repr().numpy() or x.dequantize().numpy()")  # fmt: skip

    def tolist(self):
        raise unsupported(self._data, "its values as a Python list", "tolist")

    def item(self):
        raise unsupported(self._data, "its value as a Python number", "item")

    def _reshaped(self, op: str, fn) -> Tensor:
        """A per-tensor quantized tensor around `fn(int_repr)` (a copy: descent's quantized
        tensors own their integers)."""
        st = self._data
        if st.axis is not None:
            raise unsupported(st, "a shape change of a per-channel quantized tensor", op)
        return autograd._new_tensor(st.with_ints(np.ascontiguousarray(fn(st.ints))))

    def view(self, *shape) -> Tensor:
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) \
            else shape  # fmt: skip
        return self._reshaped("view", lambda a: a.reshape(shape))

    reshape = view

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        def flat(a):
            if a.ndim == 0:
                return a.reshape(1)
            s, e = start_dim % a.ndim, end_dim % a.ndim
            return a.reshape(a.shape[:s] + (-1,) + a.shape[e + 1 :])

        return self._reshaped("flatten", flat)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        return self._reshaped("transpose", lambda a: np.swapaxes(a, dim0, dim1))

    def t(self) -> Tensor:
        return self._reshaped("t", lambda a: a.T)

    def permute(self, *dims) -> Tensor:
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        return self._reshaped("permute", lambda a: np.transpose(a, dims))

    def __getitem__(self, index) -> Tensor:
        if isinstance(index, Tensor):
            index = index.numpy()
        return self._reshaped("__getitem__", lambda a: a[index])

    def size(self, dim: int | None = None):
        return Size(self._data.shape) if dim is None else self._data.shape[dim]

    # -- printing -----------------------------------------------------------------------------
    def __repr__(self) -> str:
        # PyTorch's layout (torch/_tensor_str.py, the quantized branch): the dequantized
        # values, then size, dtype, the scheme and its parameters.
        st = self._data
        body = format_values(st.values(), "tensor(")
        suffixes = [f"size={tuple(st.shape)}", f"dtype={st.qdtype!r}",
                    f"quantization_scheme={st.qscheme!r}"]  # fmt: skip
        if st.axis is None:
            suffixes += [f"scale={float(st.scale)!r}", f"zero_point={int(st.zero_point)}"]
        else:
            suffixes += [
                f"scale={self.q_per_channel_scales()!r}",
                f"zero_point={self.q_per_channel_zero_points()!r}",
                f"axis={st.axis}",
            ]
        return add_suffixes("tensor(" + body, suffixes, len("tensor("))

    __str__ = __repr__


autograd._register_storage_class(QuantizedStorage, QuantizedTensor)


# -- the functions ----------------------------------------------------------------------------
def _float_input(x, op: str) -> np.ndarray:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if isinstance(x, QuantizedTensor):
        raise RuntimeError(f"{op}: the input is already quantized; dequantize() it first")
    if x._data.dtype != np.float32:
        raise RuntimeError(
            f"{op}: Quantize only works on Float Tensor, got descent.{x._data.dtype.name} "
            "(convert with x.float() first)"
        )
    return np.asarray(x.detach().numpy(), dtype=np.float32)


def _number(v, op: str, what: str):
    if isinstance(v, Tensor):
        if v.numel() != 1:
            raise ValueError(
                f"{op}: {what} must be one number, got a tensor of shape "
                f"{tuple(v.shape)} (per-channel parameters: quantize_per_channel)"
            )
        return v.item()
    return v


def _check_zero_point(zp: int, qd: QuantizedDType, op: str) -> None:
    lo, hi = kernels.QRANGES[qd.name]
    if zp < lo:
        raise RuntimeError(f"{op}: zero_point {zp} is below lower bound {lo} of {qd!r}")
    if zp > hi:
        raise RuntimeError(f"{op}: zero_point {zp} is above upper bound {hi} of {qd!r}")


def quantize_per_tensor(input, scale, zero_point, dtype):
    """torch.quantize_per_tensor: q = clamp(round(x / scale) + zero_point) as PyTorch rounds
    (half to even, through the float32 reciprocal of the scale; kernels.py).

    Args:
        input: a float32 tensor, or a list of them (then `scale` and `zero_point` are tensors
            with one value per input, as PyTorch's list form).
        scale: the step between quantized values (a float, or a one-element tensor).
        zero_point: the integer that represents 0.0 (an int, or a one-element tensor).
        dtype: descent.quint8, qint8 or qint32.

    Returns:
        A QuantizedTensor (per_tensor_affine), or a list of them.

    Raises:
        RuntimeError: the input is not float32, or zero_point lies outside the dtype's range.
    """
    op = "quantize_per_tensor"
    if isinstance(input, (list, tuple)):
        scales = np.asarray(scale.numpy() if isinstance(scale, Tensor) else scale).reshape(-1)
        zps = np.asarray(zero_point.numpy() if isinstance(zero_point, Tensor)
                         else zero_point).reshape(-1)  # fmt: skip
        return [quantize_per_tensor(x, float(s), int(z), dtype)
                for x, s, z in zip(input, scales, zps, strict=True)]  # fmt: skip
    qd = as_qdtype(dtype, op)
    arr = _float_input(input, op)
    scale = float(_number(scale, op, "scale"))
    zp = int(_number(zero_point, op, "zero_point"))
    _check_zero_point(zp, qd, op)
    ints = kernels.quantize_per_tensor(arr, scale, zp, qd.name, qd.storage_dtype)
    return autograd._new_tensor(QuantizedStorage(ints, qd, per_tensor_affine, scale, zp))


def quantize_per_channel(input, scales, zero_points, axis: int, dtype):
    """torch.quantize_per_channel: channel c along `axis` quantized with scales[c] and
    zero_points[c] (stored as float64 and int64, as PyTorch).

    Raises:
        RuntimeError: the input is not float32, len(scales) differs from the channel count.
    """
    op = "quantize_per_channel"
    qd = as_qdtype(dtype, op)
    arr = _float_input(input, op)
    s = np.asarray(scales.numpy() if isinstance(scales, Tensor) else scales, np.float64)
    z = np.asarray(zero_points.numpy() if isinstance(zero_points, Tensor) else zero_points)
    z = z.astype(np.int64)
    if not -arr.ndim <= axis < max(arr.ndim, 1):
        raise IndexError(f"{op}: axis {axis} is out of range for a {arr.ndim}-d input")
    axis %= arr.ndim
    channels = arr.shape[axis]
    for what, v in (("scales", s), ("zero_points", z)):
        if v.ndim != 1 or v.shape[0] != channels:
            raise RuntimeError(f"{op}: length of {what} must equal to channel, expected "
                               f"{channels} (input shape {arr.shape}, axis {axis}) got "
                               f"{v.shape[0] if v.ndim else v.size}")  # fmt: skip
    for zp in z:
        _check_zero_point(int(zp), qd, op)
    ints = kernels.quantize_per_channel(arr, s, z, axis, qd.name, qd.storage_dtype)
    storage = QuantizedStorage(ints, qd, per_channel_affine, s.copy(), z.copy(), axis)
    return autograd._new_tensor(storage)


def quantize_per_tensor_dynamic(input, dtype, reduce_range: bool):
    """torch.quantize_per_tensor_dynamic: per-tensor quantization whose scale and zero point
    cover the input's min and max (and 0), chosen as fbgemm does (kernels.choose_qparams);
    `reduce_range` uses one bit less (0..127 for quint8, -64..63 for qint8). dtype float16
    returns the input cast to float16, as PyTorch."""
    op = "quantize_per_tensor_dynamic"
    if getattr(dtype, "name", None) == "float16" and not isinstance(dtype, QuantizedDType):
        return input.to(dtype)
    qd = as_qdtype(dtype, op)
    if qd is qint32:
        raise RuntimeError(f"{op}: dtype descent.qint32 not supported (quint8, qint8, float16)")
    arr = _float_input(input, op)
    lo, hi = kernels.QRANGES[qd.name]
    if arr.size == 0:
        raise RuntimeError(f"{op}: the input is empty (shape {arr.shape}): no min and max to "
                           "choose a scale from")  # fmt: skip
    x_min, x_max = float(arr.min()), float(arr.max())
    scale, zp = kernels.choose_qparams(x_min, x_max, lo, hi, reduce_range)
    return quantize_per_tensor(input, scale, zp, qd)


def dequantize(tensor):
    """torch.dequantize: the float32 values of a quantized tensor (a list: each); a float
    tensor is returned as it is."""
    if isinstance(tensor, (list, tuple)):
        return [dequantize(t) for t in tensor]
    if isinstance(tensor, QuantizedTensor):
        return tensor.dequantize()
    return tensor
