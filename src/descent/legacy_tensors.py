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
