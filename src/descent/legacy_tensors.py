"""PyTorch's legacy tensor types: `FloatTensor(data)`, `LongTensor(2, 3)`, ...

Each is a constructor for a `Tensor` of one dtype, and `isinstance(x, FloatTensor)` is true
for any float32 CPU tensor, as in PyTorch. They are not subclasses: every tensor descent makes
is a plain `Tensor`.
"""

from __future__ import annotations

import numpy as np

from .tensor import Size, Tensor


class _LegacyTensorType(type):
    # isinstance(x, FloatTensor) is True for any float32 CPU tensor, as in PyTorch.
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls._dtype and obj.device == "cpu"


def _legacy_type(name: str, dtype):
    def __new__(cls, *args, device=None, requires_grad: bool = False):
        if args and all(type(a) is int for a in args):
            # FloatTensor(16) is a shape, as in PyTorch (pygcn's Parameter(FloatTensor(out))),
            # not the value 16: Tensor(16, dtype=...) reads a lone int with a dtype as data
            args = (Size(args),)
        return Tensor(*args, dtype=dtype, device=device, requires_grad=requires_grad)

    doc = f"""Legacy constructor `{name}(data)` / `{name}(2, 3)`: a {np.dtype(dtype)} Tensor."""
    return _LegacyTensorType(name, (), {"__new__": __new__, "_dtype": np.dtype(dtype),
                                        "__doc__": doc})  # fmt: skip


FloatTensor = _legacy_type("FloatTensor", np.float32)
DoubleTensor = _legacy_type("DoubleTensor", np.float64)
HalfTensor = _legacy_type("HalfTensor", np.float16)
LongTensor = _legacy_type("LongTensor", np.int64)
IntTensor = _legacy_type("IntTensor", np.int32)
BoolTensor = _legacy_type("BoolTensor", np.bool_)
ByteTensor = _legacy_type("ByteTensor", np.uint8)
CharTensor = _legacy_type("CharTensor", np.int8)
ShortTensor = _legacy_type("ShortTensor", np.int16)


class _CudaLegacyTensorType(type):
    # isinstance(x, torch.cuda.FloatTensor) is True for a float32 tensor on a CUDA device.
    def __instancecheck__(cls, obj) -> bool:
        return (isinstance(obj, Tensor) and obj.device.type == "cuda"
                and str(obj.dtype).rsplit(".", 1)[-1] == cls._dtype_name)  # fmt: skip


def _cuda_legacy_type(name: str, dtype_name: str):
    """`torch.cuda.FloatTensor` & co.: old GPU scripts name them (`Tensor = torch.cuda.FloatTensor
    if cuda else torch.FloatTensor`, `isinstance(x, torch.cuda.FloatTensor)`); they build a
    tensor on the GPU, and without one raise PyTorch's TypeError. The dtype is kept by name, so
    that naming BFloat16Tensor does not load ml_dtypes."""

    def __new__(cls, *args, device=None, requires_grad: bool = False):
        from . import backend  # noqa: PLC0415 - asked only when one is built

        if not backend.cuda_available():
            raise TypeError(
                f"type torch.cuda.{name} not available: descent sees no CUDA GPU (it needs "
                f"CuPy and a device); use torch.{name} on the CPU"
            )
        if args and all(type(a) is int for a in args):
            args = (Size(args),)
        return Tensor(*args, dtype=dtype_name, device="cuda" if device is None else device,
                      requires_grad=requires_grad)  # fmt: skip

    doc = f"""Legacy constructor `torch.cuda.{name}(data)`: a {dtype_name} Tensor on the GPU."""
    return _CudaLegacyTensorType(name, (), {"__new__": __new__, "_dtype_name": dtype_name,
                                            "__doc__": doc})  # fmt: skip


_CUDA_LEGACY_TYPES = {
    name: _cuda_legacy_type(name, dtype_name)
    for name, dtype_name in [
        ("FloatTensor", "float32"), ("DoubleTensor", "float64"), ("HalfTensor", "float16"),
        ("BFloat16Tensor", "bfloat16"), ("LongTensor", "int64"), ("IntTensor", "int32"),
        ("BoolTensor", "bool"), ("ByteTensor", "uint8"), ("CharTensor", "int8"),
        ("ShortTensor", "int16"),
    ]
}  # fmt: skip
