"""Observers (torch.ao.quantization.observer): modules that record a tensor's range as data
flows through them and turn it into a scale and zero point (`calculate_qparams`).

The arithmetic is PyTorch's, in float32 step by step (NumPy float32 arrays here, so that each
division and rounding lands on the same bits as torch's float32 tensor ops):

    affine:     scale = max((max+ - min-) / (qmax - qmin), eps)
                zero_point = clamp(qmin - round(min- / scale), qmin, qmax)      (int32)
    symmetric:  scale = max(max(-min-, max+) / ((qmax - qmin) / 2), eps)
                zero_point = 0, or 128 for quint8 (the midpoint with a custom range) (int64)

with min- = min(min_val, 0), max+ = max(max_val, 0), eps = float32's machine epsilon, and
round half to even. `reduce_range` takes one bit off the range (quint8 0..127, qint8 -64..63).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from .. import autograd
from ..nn.module import Module
from ..tensor import Tensor
from .qtensor import (
    QuantizedDType,
    per_channel_affine,
    per_channel_affine_float_qparams,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    qint32,
    quint8,
)

__all__ = [
    "MinMaxObserver", "MovingAverageMinMaxObserver", "ObserverBase", "PerChannelMinMaxObserver",
    "PlaceholderObserver", "default_dynamic_quant_observer", "default_observer",
    "default_per_channel_weight_observer", "default_weight_observer",
]  # fmt: skip

_EPS = float(np.finfo(np.float32).eps)


def _with_args(cls_or_self, **kwargs):
    """`Observer.with_args(...)`: a factory that makes the observer with these arguments (what
    a QConfig holds; PyTorch's _PartialWrapper, a functools.partial here)."""
    return functools.partial(cls_or_self, **kwargs)


def _array(t: Tensor) -> np.ndarray:
    return np.asarray(t._data)


def calculate_qmin_qmax(quant_min, quant_max, has_customized_qrange: bool, dtype,
                        reduce_range: bool) -> tuple[int, int]:  # fmt: skip
    """PyTorch's quantization range: a custom (quant_min, quant_max) (halved by reduce_range),
    else the dtype's 8-bit range, one bit less with reduce_range (qint32: its full range)."""
    if has_customized_qrange:
        length = quant_max - quant_min + 1
        if dtype is qint8 and not 0 < length <= 256:
            raise AssertionError("quantization range should be positive and not exceed the "
                                 "maximum bit range (=256).")  # fmt: skip
        if reduce_range:
            quant_min, quant_max = quant_min // 2, quant_max // 2
        return quant_min, quant_max
    if dtype is qint8:
        return (-64, 63) if reduce_range else (-128, 127)
    if dtype is quint8:
        return (0, 127) if reduce_range else (0, 255)
    if dtype is qint32:
        return -(2**31), 2**31 - 1
    return 0, 15  # PyTorch's fallback (quint4x2)


class ObserverBase(Module):
    """The base of observers: `forward(x)` records statistics and returns x unchanged,
    `calculate_qparams()` returns (scale, zero_point) tensors."""

    with_args = classmethod(_with_args)

    def __init__(self, dtype=quint8, is_dynamic: bool = False) -> None:
        super().__init__()
        self.dtype = dtype
        self.is_dynamic = is_dynamic


class UniformQuantizationObserverBase(ObserverBase):
    """Observers with a uniform (affine or symmetric) quantization: the qparams rule above."""

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range: bool = False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps: float = _EPS,
                 is_dynamic: bool = False, **kwargs) -> None:  # fmt: skip
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        if not isinstance(dtype, QuantizedDType):
            raise AssertionError(f"Default Observer only works for descent.quint8, qint8 and "
                                 f"qint32 data types here, got {dtype!r}")  # fmt: skip
        self.qscheme = qscheme
        if reduce_range:
            warnings.warn("Please use quant_min and quant_max to specify the range for "
                          "observers. reduce_range will be deprecated in a future release of "
                          "PyTorch.", stacklevel=2)  # fmt: skip
        self.reduce_range = reduce_range
        self.register_buffer("eps", autograd._new_tensor(np.array([eps], np.float32)))
        if qscheme not in (per_tensor_affine, per_tensor_symmetric, per_channel_affine,
                           per_channel_symmetric, per_channel_affine_float_qparams):  # fmt: skip
            raise AssertionError("Default Observer only works for per_tensor_affine, "
                                 "per_tensor_symmetric, per_channel_affine, per_channel_symmetric "
                                 "and per_channel_float_qparams quantization scheme")  # fmt: skip
        self.has_customized_qrange = quant_min is not None and quant_max is not None
        if self.has_customized_qrange:
            if not quant_min <= 0 <= quant_max:
                raise AssertionError("Used-specified quantization range must include 0.")
            if quant_min >= quant_max:
                raise AssertionError("qmin must be strictly less than qmax for user-specified "
                                     "quantization range.")  # fmt: skip
        self.quant_min, self.quant_max = calculate_qmin_qmax(
            quant_min, quant_max, self.has_customized_qrange, dtype, reduce_range
        )

    def calculate_qparams(self):
        """(scale, zero_point) from the observed min_val / max_val buffers: float32 and integer
        tensors of shape (1,) per tensor, (C,) per channel."""
        return self._calculate_qparams(_array(self.min_val), _array(self.max_val))

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def _calculate_qparams(self, min_val: np.ndarray, max_val: np.ndarray):
        """(scale float32, zero_point) tensors from float32 min/max arrays (per tensor: 0-d,
        returned with shape (1,); per channel: (C,))."""
        if (
            min_val.size == 0
            or max_val.size == 0
            or (min_val.ndim == 0 and min_val == np.inf and max_val == -np.inf)
        ):
            warnings.warn("must run observer before calling calculate_qparams. Returning "
                          "default values.", stacklevel=3)  # fmt: skip
            return (autograd._new_tensor(np.array([1.0], np.float32)),
                    autograd._new_tensor(np.array([0], np.int64)))  # fmt: skip
        if np.any(min_val > max_val):
            raise AssertionError(f"min {min_val} should be less than max {max_val}")
        qmin, qmax = self.quant_min, self.quant_max
        eps = _array(self.eps)
        f32 = np.float32
        min_neg = np.minimum(min_val, f32(0)).astype(np.float32)
        max_pos = np.maximum(max_val, f32(0)).astype(np.float32)
        zero_point = np.zeros(min_neg.shape, np.int64)
        if self.qscheme in (per_tensor_symmetric, per_channel_symmetric):
            max_pos = np.maximum(-min_neg, max_pos)
            scale = np.maximum(max_pos / f32((qmax - qmin) / 2), eps)
            if self.dtype is quint8:
                mid = (qmin + qmax) // 2 if self.has_customized_qrange else 128
                zero_point = np.full(zero_point.shape, mid, np.int64)
        elif self.qscheme is per_channel_affine_float_qparams:
            scale = ((max_val - min_val) / f32(qmax - qmin)).astype(np.float32)
            scale = np.where(scale > eps, scale, f32(1)).astype(np.float32)
            zero_point = (f32(-1) * min_val / scale).astype(np.float32)
        else:
            scale = np.maximum((max_pos - min_neg) / f32(qmax - qmin), eps)
            rounded = np.rint(min_neg / scale).astype(np.int32)  # half to even, float32 /
            zero_point = np.clip(np.int32(qmin) - rounded, qmin, qmax).astype(np.int32)
        scale = np.asarray(scale, np.float32).reshape(-1)
        zero_point = np.asarray(zero_point).reshape(-1)
        return autograd._new_tensor(scale), autograd._new_tensor(zero_point)


class MinMaxObserver(UniformQuantizationObserverBase):
    """Records the running minimum and maximum of what passes through (per tensor).

    Args:
        dtype: descent.quint8 (default), qint8 or qint32.
        qscheme: per_tensor_affine (default) or per_tensor_symmetric.
        reduce_range: one bit less of range (see the module docstring).
        quant_min, quant_max: a custom integer range.
        eps: the smallest scale (float32's epsilon).
    """

    def __init__(self, dtype=quint8, qscheme=per_tensor_affine, reduce_range: bool = False,
                 quant_min=None, quant_max=None, factory_kwargs=None, eps: float = _EPS,
                 is_dynamic: bool = False, **kwargs) -> None:  # fmt: skip
        if qscheme not in (per_tensor_affine, per_tensor_symmetric):
            raise NotImplementedError(
                "MinMaxObserver's qscheme only support "
                "torch.per_tensor_symmetric and torch.per_tensor_affine."
            )
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps,
                         is_dynamic=is_dynamic, **kwargs)  # fmt: skip
        self.register_buffer("min_val", autograd._new_tensor(np.array(np.inf, np.float32)))
        self.register_buffer("max_val", autograd._new_tensor(np.array(-np.inf, np.float32)))
        if qscheme is per_tensor_symmetric and reduce_range and dtype is quint8:
            raise NotImplementedError("Cannot reduce range for symmetric quantization for quint8")

    def forward(self, x_orig):
        """Record min(x) and max(x) into min_val / max_val; returns x_orig."""
        if x_orig.numel() == 0:
            return x_orig
        x = np.asarray(x_orig.detach().float()._data, np.float32)
        min_val = np.minimum(x.min(), _array(self.min_val))
        max_val = np.maximum(x.max(), _array(self.max_val))
        self.min_val._data[...] = min_val
        self.max_val._data[...] = max_val
        return x_orig

    def reset_min_max_vals(self) -> None:
        self.min_val._data[...] = np.inf
        self.max_val._data[...] = -np.inf


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Records exponential moving averages of the minimum and maximum:
    min_val <- min_val + c * (min(x) - min_val) (c = averaging_constant, float32 steps); the
    first batch sets them."""

    def __init__(self, averaging_constant: float = 0.01, dtype=quint8,
                 qscheme=per_tensor_affine, reduce_range: bool = False, quant_min=None,
                 quant_max=None, eps: float = _EPS, is_dynamic: bool = False,
                 **kwargs) -> None:  # fmt: skip
        self.averaging_constant = averaging_constant
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps,
                         is_dynamic=is_dynamic, **kwargs)  # fmt: skip

    def forward(self, x_orig):
        if x_orig.numel() == 0:
            return x_orig
        x = np.asarray(x_orig.detach().float()._data, np.float32)
        min_val, max_val = _array(self.min_val), _array(self.max_val)
        if min_val == np.inf and max_val == -np.inf:
            new_min, new_max = x.min(), x.max()
        else:
            c = np.float32(self.averaging_constant)
            new_min = min_val + c * (x.min() - min_val)
            new_max = max_val + c * (x.max() - max_val)
        self.min_val._data[...] = new_min
        self.max_val._data[...] = new_max
        return x_orig


class PerChannelMinMaxObserver(UniformQuantizationObserverBase):
    """Records the running minimum and maximum of each slice along `ch_axis`; qparams per
    channel (the rule above, elementwise).

    Args:
        ch_axis: the channel dimension (0: a Linear weight's output rows).
        dtype: descent.quint8 (default), qint8 or qint32.
        qscheme: per_channel_affine (default), per_channel_symmetric or
            per_channel_affine_float_qparams.
    """

    def __init__(self, ch_axis: int = 0, dtype=quint8, qscheme=per_channel_affine,
                 reduce_range: bool = False, quant_min=None, quant_max=None,
                 factory_kwargs=None, eps: float = _EPS, is_dynamic: bool = False,
                 **kwargs) -> None:  # fmt: skip
        if qscheme not in (per_channel_affine, per_channel_symmetric,
                           per_channel_affine_float_qparams):  # fmt: skip
            raise NotImplementedError("PerChannelMinMaxObserver's qscheme only support "
                                      "torch.per_channel_symmetric, torch.per_channel_affine and "
                                      "torch.per_channel_affine_float_qparams.")  # fmt: skip
        super().__init__(dtype=dtype, qscheme=qscheme, reduce_range=reduce_range,
                         quant_min=quant_min, quant_max=quant_max, eps=eps,
                         is_dynamic=is_dynamic, **kwargs)  # fmt: skip
        self.ch_axis = ch_axis
        self.register_buffer("min_val", autograd._new_tensor(np.zeros(0, np.float32)))
        self.register_buffer("max_val", autograd._new_tensor(np.zeros(0, np.float32)))

    def forward(self, x_orig):
        """Record each channel's min and max; returns x_orig."""
        if x_orig.numel() == 0:
            return x_orig
        x = np.asarray(x_orig.detach().float()._data, np.float32)
        y = np.moveaxis(x, self.ch_axis, 0).reshape(x.shape[self.ch_axis], -1)  # (C, rest)
        cur_min, cur_max = y.min(axis=1), y.max(axis=1)
        min_val, max_val = _array(self.min_val), _array(self.max_val)
        if min_val.size:
            cur_min, cur_max = np.minimum(cur_min, min_val), np.maximum(cur_max, max_val)
        self.min_val._data = cur_min.astype(np.float32)
        self.max_val._data = cur_max.astype(np.float32)
        return x_orig

    def reset_min_max_vals(self) -> None:
        self.min_val._data = np.zeros(0, np.float32)
        self.max_val._data = np.zeros(0, np.float32)


class PlaceholderObserver(ObserverBase):
    """Records nothing: it carries the dtype (and is_dynamic) of a dynamic activation, whose
    qparams are chosen from each input at run time."""

    def __init__(self, dtype=quint8, custom_op_name: str = "", compute_dtype=None,
                 quant_min=None, quant_max=None, qscheme=None, eps=None,
                 is_dynamic: bool = False) -> None:  # fmt: skip
        super().__init__(dtype=dtype, is_dynamic=is_dynamic)
        self.qscheme = per_tensor_affine if qscheme is None else qscheme
        self.quant_min, self.quant_max, self.eps = quant_min, quant_max, eps

    def forward(self, x):
        return x

    def calculate_qparams(self):
        raise Exception("calculate_qparams should not be called for PlaceholderObserver")  # noqa: TRY002 - PyTorch's type

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, is_dynamic={self.is_dynamic}"


default_observer = MinMaxObserver.with_args(quant_min=0, quant_max=127)
default_weight_observer = MinMaxObserver.with_args(dtype=qint8, qscheme=per_tensor_symmetric)
default_per_channel_weight_observer = PerChannelMinMaxObserver.with_args(
    dtype=qint8, qscheme=per_channel_symmetric
)
default_dynamic_quant_observer = PlaceholderObserver.with_args(
    dtype=quint8, quant_min=0, quant_max=255, is_dynamic=True
)
