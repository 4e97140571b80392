"""dtypes: the default floating dtype, dtype spellings, and the limits of a dtype.

descent's dtypes are NumPy's (`descent.float32 is np.dtype('float32')`); this module holds what
PyTorch adds on top: a settable default for floating data (`set_default_dtype`), one function
that turns any spelling into a NumPy dtype with a clear error (`as_dtype`), the dtype that data
without one gets (`default_dtype_for`), and `finfo` / `iinfo`. It sits below `tensor.py` and
imports nothing of descent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The dtype of floating data whose dtype was not given (Python floats, lists, `zeros(3)`):
# float32 unless `set_default_dtype` changed it. Read by creation functions and the ops'
# promotion rule (a Python float meeting an integer tensor gives this dtype).
_default_float = np.dtype(np.float32)


def set_default_dtype(dtype) -> None:
    """Set the dtype of new floating tensors (float32 at start), as torch.set_default_dtype.

    Args:
        dtype: a floating dtype (descent.float32, float64 or float16).

    Raises:
        TypeError: dtype is not a floating dtype.
    """
    global _default_float
    dt = as_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(
            f"set_default_dtype: only floating dtypes can be the default, got {dt}; use "
            "descent.float32 or descent.float64"
        )
    _default_float = dt


def get_default_dtype():
    """The dtype of new floating tensors (float32 unless `set_default_dtype` changed it)."""
    return _default_float


def as_dtype(dtype) -> np.dtype:
    """A NumPy dtype for any descent dtype spelling (descent.float32, np.float32, 'float32',
    Python's float/int/bool as in PyTorch: float64, int64, bool) with a clear error for
    bfloat16, which NumPy lacks."""
    if isinstance(dtype, str) and dtype.replace("torch.", "") == "bfloat16":
        raise TypeError(
            "bfloat16: NumPy has no bfloat16 dtype, so descent tensors cannot hold it; use "
            "descent.float16 or descent.float32 (descent.autocast accepts bfloat16 on a GPU)"
        )
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{dtype!r} is not a dtype descent knows") from None


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
        raise TypeError("complex tensors are not supported by descent")
    raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}")


class finfo:  # lower case: PyTorch's name
    """Limits of a floating dtype as Python floats (torch.finfo): `bits`, `eps`, `max`, `min`,
    `tiny` (= `smallest_normal`), `resolution`; the default float dtype when None."""

    def __init__(self, dtype=None) -> None:
        info = np.finfo(_default_float if dtype is None else as_dtype(dtype))
        self.dtype = str(info.dtype)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.tiny)
        self.resolution = float(info.resolution)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, "
                f"eps={self.eps}, tiny={self.tiny}, dtype={self.dtype})")  # fmt: skip


def iinfo(dtype):
    """Limits of an integer dtype (`max`, `min`, `bits`), NumPy's iinfo (torch.iinfo)."""
    return np.iinfo(as_dtype(dtype))
