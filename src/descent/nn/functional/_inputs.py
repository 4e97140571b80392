"""Argument checks and conversions shared by the files of `descent.nn.functional`.

Not part of the public API: the package's `__init__` exports only the torch.nn.functional
names. Errors name the function (`op`) so a user sees which call was wrong.
"""

from __future__ import annotations

import numpy as np

from ... import amp
from ...errors import DescentError, DtypeError
from ...ops._common import as_tensor
from ...tensor import Tensor


def autocast_f32(x: Tensor, cpu: bool = True) -> Tensor:
    """Inside descent.autocast: a float16/bfloat16 input cast up to float32 (losses, norms).

    Losses and normalisations sum many terms or divide by a variance: float16 would lose the
    small ones (PyTorch's autocast runs them in float32 for the same reason). Outside autocast
    the input is returned as is: no silent upcast.
    """
    # cpu=False: not on PyTorch's CPU float32 list (normalisations; see amp._upper)
    return amp._upper(x, cpu) if amp._depth else x


def check_weight_dtype(weight, x: Tensor, op: str) -> None:
    """PyTorch's class-weighted kernels (nll_loss, cross_entropy with class indices,
    multi_margin_loss) read a weight tensor of the input's dtype only ("expected scalar type
    Float but found Double"), where descent cast it; inside autocast both are cast first."""
    if amp._depth or not isinstance(weight, Tensor):
        return
    wd, xd = weight._data.dtype, x._data.dtype
    if wd != xd:
        raise DescentError(
            f"{op}: expected scalar type {x.dtype} but found {weight.dtype} (a class weight of "
            f"shape {tuple(weight.shape)} for an input of shape {tuple(x.shape)}), as in "
            "PyTorch; convert it with weight.to(input.dtype)"
        )


def float_tensor(x, op: str) -> Tensor:
    """`x` as a Tensor; a DtypeError (PyTorch's NotImplementedError, still a TypeError; naming
    `op`) unless its dtype is floating."""
    x = as_tensor(x)
    if x._data.dtype.kind not in "fV":
        raise DtypeError(f"{op}: expected a floating tensor, got dtype {x.dtype}; use .float()")
    return x


def check_index_target(t, x, op: str) -> None:
    """PyTorch's class-index targets are int64 or uint8 ("expected target dtype to be Long or
    Byte"): another integer, bool or float target raises, where descent read it as indices."""
    if t._data.dtype not in (np.int64, np.uint8):
        raise DescentError(
            f"{op}: expected target dtype to be Long or Byte (int64 or uint8 class indices), "
            f"but got {t.dtype} of shape {tuple(t.shape)} with input {tuple(x.shape)}; "
            "convert class indices with target.long() (a floating target is read as class "
            "probabilities only when it has the input's shape)"
        )


def pool_tuple(v, n: int, name: str, op: str) -> tuple:
    """A pooling argument as n ints: ATen's pooling ops take an int, one int in a sequence
    (`padding=[1]`, repeated for every dimension) or n ints."""
    if not isinstance(v, int) and len(v) == 1:
        v = int(v[0])
    return int_tuple(v, n, name, op)


def int_tuple(v, n: int, name: str, op: str) -> tuple:
    """`3` -> (3,) * n; a sequence of n ints stays (kernel_size, stride, padding, dilation)."""
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(a) for a in v)
    if len(v) != n:
        raise DescentError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v}")
    return v
