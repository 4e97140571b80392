"""NumPy numbers and arrays inside torch.save files, read without running code.

Training checkpoints often hold NumPy values (`best_acc = np.float64(...)`, an `np.int64`
epoch, a small array of class weights). Pickle writes them as

    numpy.dtype('f8', False, True) + BUILD (3, '<', None, None, None, -1, -1, 0)
    numpy._core.multiarray.scalar(<dtype>, <raw bytes>)
    numpy._core.multiarray._reconstruct(numpy.ndarray, (0,), b'b') + BUILD
        (1, shape, <dtype>, is_fortran, <raw bytes>)

(`numpy.core.multiarray` before NumPy 2). torch's weights_only refuses them unless the user
allow-lists them; descent reads them, because with the checks below they are data only: the
dtype must be a plain numeric type (bool, int, uint, float, complex: never `object`, whose
arrays hold pickled Python objects, nor structured or datetime types), each state is checked
field by field before NumPy's own `__setstate__` sees it, and the raw bytes must have exactly
the length the shape and dtype need.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .checkpoint_pickle import Builder

# bool, (u)int8-64, float16-64, complex64/128 in pickle's type strings ('f8', 'b1', 'c16')
_NUMERIC = re.compile(r"(b1|[iu][1248]|f[248]|c(8|16))")


class NumpyArrayType:
    """numpy.ndarray as _reconstruct's first argument (not callable by a pickle)."""


def _dtype(spec: Any, align: Any = False, copy: Any = True) -> np.dtype:
    """numpy.dtype(spec, align, copy) for a numeric type string; copy=True makes a fresh
    descriptor, so the BUILD that follows (its byte order) changes only this one."""
    if not isinstance(spec, str) or not _NUMERIC.fullmatch(spec):
        raise ValueError(f"numpy dtype {spec!r} is not a plain numeric type")
    return np.dtype(spec, bool(align), True)


def _scalar(dtype: Any, data: Any) -> np.generic:
    """numpy's scalar(dtype, raw bytes): one element of a numeric dtype."""
    if not isinstance(dtype, np.dtype) or not _is_numeric(dtype) or not isinstance(data, bytes):
        raise ValueError("numpy scalar needs a numeric dtype and its bytes")
    if len(data) != dtype.itemsize:
        raise ValueError(f"numpy scalar of {dtype} needs {dtype.itemsize} bytes, not {len(data)}")
    return np.frombuffer(data, dtype=dtype)[0]


def _reconstruct(cls: Any, shape: Any, typecode: Any) -> np.ndarray:
    """numpy's _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD then fills."""
    if not isinstance(cls, NumpyArrayType):
        raise ValueError("_reconstruct builds numpy.ndarray only")
    return np.ndarray((0,), np.uint8)


def _is_numeric(d: np.dtype) -> bool:
    return d.fields is None and d.subdtype is None and d.kind in "biufc"


def build_numpy(inst: Any, state: Any) -> bool:
    """BUILD on a NumPy dtype or array made by the builders above; False if inst is neither.

    Raises:
        ValueError: a state that is not the plain one NumPy writes for numeric data.
    """
    if isinstance(inst, np.dtype):
        # (version 3, byte order, subarray, names, fields, elsize, alignment, flags)
        ok = (
            isinstance(state, tuple)
            and len(state) == 8
            and state[0] == 3
            and state[1] in ("<", ">", "|", "=")
            and state[2:5] == (None, None, None)
            and all(type(v) is int for v in state[5:])
            and _is_numeric(inst)
        )
        if not ok:
            raise ValueError(f"numpy dtype state {state!r:.100} is not a plain numeric one")
        inst.__setstate__(state)
        return True
    if type(inst) is np.ndarray:
        # (version 1, shape, dtype, is_fortran, raw bytes)
        ok = (
            isinstance(state, tuple)
            and len(state) == 5
            and state[0] == 1
            and isinstance(state[1], tuple)
            and all(type(n) is int and n >= 0 for n in state[1])
            and isinstance(state[2], np.dtype)
            and _is_numeric(state[2])
            and type(state[3]) is bool
            and isinstance(state[4], bytes)
        )
        if not ok or len(state[4]) != math.prod(state[1]) * state[2].itemsize:
            raise ValueError(f"numpy array state {state!r:.100} is not a plain numeric one")
        inst.__setstate__(state)
        return True
    return False


def allowed() -> dict[str, Any]:
    """The NumPy entries of checkpoint_torch_objects' allow-list (same shape: reader -> value)."""
    table: dict[str, Any] = {"numpy.dtype": lambda r: Builder("numpy.dtype", _dtype)}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[f"{module}.scalar"] = lambda r: Builder("numpy scalar", _scalar)
        table[f"{module}._reconstruct"] = lambda r: Builder("numpy _reconstruct", _reconstruct)
    table["numpy.ndarray"] = lambda r: NumpyArrayType()
    return table
