"""Dynamic quantization: `quantize_dynamic(model, {nn.Linear}, dtype=qint8)` swaps each
nn.Linear for a `DynamicQuantizedLinear` (torch.ao.nn.quantized.dynamic.Linear), whose weight
is stored as int8 and whose input is quantized to uint8 at every call from its own min and max.

The forward is fbgemm's (PyTorch's x86 CPU engine), bit for bit: kernels.linear_dynamic_int8.
It computes on NumPy arrays and records no graph (PyTorch's quantized linear has no derivative
either): a dynamically quantized model is for inference.
"""

from __future__ import annotations

import copy
from collections import namedtuple

import numpy as np

from .. import autograd
from ..dtypes import wrap_dtype
from ..nn.linear import Linear as _FloatLinear
from ..nn.module import Module
from ..tensor import Tensor
from . import kernels
from .observer import (
    PlaceholderObserver,
    default_dynamic_quant_observer,
    default_per_channel_weight_observer,
    default_weight_observer,
)
from .qtensor import (
    QuantizedTensor,
    per_channel_affine,
    per_channel_symmetric,
    per_tensor_affine,
    per_tensor_symmetric,
    qint8,
    quantize_per_channel,
    quantize_per_tensor,
)

__all__ = [
    "DynamicQuantizedLinear", "LinearPackedParams", "QConfig", "default_dynamic_qconfig",
    "float16_dynamic_qconfig", "per_channel_dynamic_qconfig", "quantize_dynamic",
]  # fmt: skip

float16 = wrap_dtype(np.float16)  # descent.float16: fp16 weights, fp32 activations


class QConfig(namedtuple("QConfig", ["activation", "weight"])):
    """How to quantize a module: factories of its activation and weight observers
    (torch.ao.quantization.QConfig)."""

    __slots__ = ()

    def __new__(cls, activation, weight):
        if isinstance(activation, Module) or isinstance(weight, Module):
            raise ValueError("QConfig received observer instance, please pass observer class "
                             "instead. Use MyObserver.with_args(x=1) to override arguments to "
                             "constructor if needed")  # fmt: skip
        return super().__new__(cls, activation, weight)


default_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                  weight=default_weight_observer)  # fmt: skip
per_channel_dynamic_qconfig = QConfig(activation=default_dynamic_quant_observer,
                                      weight=default_per_channel_weight_observer)  # fmt: skip
float16_dynamic_qconfig = QConfig(
    activation=PlaceholderObserver.with_args(dtype=float16, is_dynamic=True),
    weight=PlaceholderObserver.with_args(dtype=float16),
)


def quantize_weight(weight: Tensor, observer) -> QuantizedTensor:
    """The weight quantized with the observer's qparams (PyTorch's _quantize_weight)."""
    scale, zero_point = observer.calculate_qparams()
    if observer.qscheme in (per_tensor_symmetric, per_tensor_affine):
        return quantize_per_tensor(weight.detach().float(), float(scale.item()),
                                   int(zero_point.item()), observer.dtype)  # fmt: skip
    if observer.qscheme in (per_channel_symmetric, per_channel_affine):
        return quantize_per_channel(weight.detach().float(), scale.double(), zero_point.long(),
                                    observer.ch_axis, observer.dtype)  # fmt: skip
    raise NotImplementedError(f"quantize_dynamic: a weight qscheme {observer.qscheme!r} is not "
                              "supported (per_tensor_symmetric/affine, per_channel_symmetric/"
                              "affine)")  # fmt: skip


class LinearPackedParams(Module):
    """The quantized weight and float bias of a quantized Linear (PyTorch packs them for
    fbgemm; descent keeps the int8 weight as it is). state_dict: `dtype` and
    `_packed_params` = (weight, bias), PyTorch's keys."""

    _version = 3

    def __init__(self, dtype=qint8) -> None:
        super().__init__()
        self.dtype = dtype
        # a plain tuple (weight, bias): a Parameter bias must not register as this module's
        self._packed_params = (None, None)
        self._packed_weight = None  # kernels.PackedLinearWeight: the matmul's form of it

    def set_weight_bias(self, weight: QuantizedTensor, bias) -> None:
        if self.dtype is float16:
            # fbgemm packs fp16 values, saturating past fp16's range (PyTorch warns there);
            # weight() returns them as float32, and sgemm multiplies them as (K, M) float32
            w = np.asarray(weight.detach()._data, np.float32)
            w32 = np.clip(w, -65504.0, 65504.0).astype(np.float16).astype(np.float32)
            self._packed_params = (autograd._new_tensor(w32), bias)
            self._packed_weight = np.ascontiguousarray(w32.T)
            return
        self._packed_params = (weight, bias)
        st = weight._data
        self._packed_weight = kernels.PackedLinearWeight(st.ints, st.scale, st.zero_point)

    def _weight_bias(self):
        return self._packed_params

    _loads_per_module = True  # load_state_dict runs _load_from_state_dict below

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "dtype"] = self.dtype
        destination[prefix + "_packed_params"] = self._weight_bias()

    def _load_from_state_dict(self, state_dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:  # fmt: skip
        """`dtype` and `_packed_params` = (quantized weight, bias), as written above."""
        dtype_key, params_key = prefix + "dtype", prefix + "_packed_params"
        if dtype_key in state_dict:
            dtype = state_dict.pop(dtype_key)
            if dtype is not self.dtype:
                error_msgs.append(f"{dtype_key}: this dynamic quantized Linear is "
                                  f"{self.dtype!r}, the state_dict's {dtype!r}")  # fmt: skip
        elif strict:
            missing_keys.append(dtype_key)
        if params_key in state_dict:
            weight, bias = state_dict.pop(params_key)
            old = self._packed_params[0]
            want = Tensor if self.dtype is float16 else QuantizedTensor
            if not isinstance(weight, want) or weight.shape != old.shape:
                error_msgs.append(f"{params_key}: expected a quantized weight of shape "
                                  f"{tuple(old.shape)}, got {weight!r:.60}")  # fmt: skip
            else:
                self.set_weight_bias(weight, bias)
        elif strict:
            missing_keys.append(params_key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip

    def __repr__(self) -> str:
        return repr(self._weight_bias())


class DynamicQuantizedLinear(Module):
    """y = x @ W^T + b with an int8 W and x quantized to uint8 per call (dynamic quantization;
    torch.ao.nn.quantized.dynamic.Linear). Make one with `quantize_dynamic` or `from_float`.

    Args:
        in_features, out_features: as nn.Linear.
        bias_: whether there is a (float32) bias.
        dtype: descent.qint8, or descent.float16 (fp16 weights; the product in float32).
    """

    _version = 4

    def __init__(self, in_features: int, out_features: int, bias_: bool = True,
                 dtype=qint8) -> None:  # fmt: skip
        super().__init__()
        if dtype is not qint8 and dtype is not float16:
            raise NotImplementedError(
                f"DynamicQuantizedLinear: dtype {dtype!r} is not supported (qint8 or float16)"
            )
        self.in_features, self.out_features = in_features, out_features
        # PyTorch's placeholders: zero weights, zero bias, output scale 1 and zero point 0
        bias = autograd._new_tensor(np.zeros(out_features, np.float32)) if bias_ else None
        qweight = autograd._new_tensor(np.zeros((out_features, in_features), np.float32))
        if dtype is qint8:
            qweight = quantize_per_tensor(qweight, 1.0, 0, qint8)
        self._packed_params = LinearPackedParams(dtype)
        self._packed_params.set_weight_bias(qweight, bias)
        self.scale = 1.0
        self.zero_point = 0
        self.version = 4

    def forward(self, x: Tensor) -> Tensor:
        """fbgemm's dynamic quantized linear over the last dimension of x (float32)."""
        if x._data.dtype != np.float32:
            raise RuntimeError(
                f"DynamicQuantizedLinear: expected a float32 input, got "
                f"descent.{x._data.dtype.name} (convert with x.float())"
            )
        if x.shape[-1] != self.in_features:
            raise RuntimeError(f"DynamicQuantizedLinear: input shape {tuple(x.shape)} does not "
                               f"match in_features={self.in_features}")  # fmt: skip
        b = self._packed_params._packed_params[1]
        arr = np.asarray(x.detach()._data, np.float32)
        flat = arr.reshape(-1, self.in_features)  # (N, K)
        out_shape = arr.shape[:-1] + (self.out_features,)
        if self._packed_params.dtype is float16:
            # fbgemm's fp16 GEMM, then PyTorch adds the bias as a tensor op (so the output
            # carries the bias's gradient, as torch's does); summation order: see the docs
            y = autograd._new_tensor((flat @ self._packed_params._packed_weight).reshape(out_shape))
            return y if b is None else y + b
        bias = None if b is None else np.asarray(b.detach()._data, np.float32)
        y = kernels.linear_dynamic_int8(flat, self._packed_params._packed_weight, bias)
        return autograd._new_tensor(y.reshape(out_shape))

    def weight(self) -> QuantizedTensor:
        return self._packed_params._packed_params[0]

    def bias(self):
        return self._packed_params._packed_params[1]

    def set_weight_bias(self, w: QuantizedTensor, b) -> None:
        self._packed_params.set_weight_bias(w, b)

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "scale"] = autograd._new_tensor(np.array(self.scale, np.float32))
        destination[prefix + "zero_point"] = autograd._new_tensor(np.array(self.zero_point))

    def _load_from_state_dict(self, state_dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:  # fmt: skip
        """The output `scale` and `zero_point` (unused by the dynamic forward, kept as torch)."""
        for name, cast in (("scale", float), ("zero_point", int)):
            key = prefix + name
            if key in state_dict:
                setattr(self, name, cast(state_dict.pop(key).item()))
            elif strict:
                missing_keys.append(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)  # fmt: skip

    def _get_name(self) -> str:
        return "DynamicQuantizedLinear"

    def __repr__(self) -> str:  # PyTorch hides the packed parameters from the repr
        return f"{self._get_name()}({self.extra_repr()})"

    def extra_repr(self) -> str:
        out = (f"in_features={self.in_features}, out_features={self.out_features}, "
               f"dtype={self._packed_params.dtype}")  # fmt: skip
        if self._packed_params.dtype is qint8:
            out += f", qscheme={self.weight().qscheme()}"
        return out

    @classmethod
    def from_float(cls, mod, use_precomputed_fake_quant: bool = False):
        """The quantized copy of a float nn.Linear: its weight observed by mod.qconfig's weight
        observer (the per-tensor symmetric qint8 default) and quantized; its bias kept."""
        if not isinstance(mod, _FloatLinear):
            raise AssertionError(f"nn.quantized.dynamic.Linear.from_float only works for "
                                 f"nn.Linear, got {type(mod)}")  # fmt: skip
        qconfig = getattr(mod, "qconfig", None)
        if qconfig is not None and qconfig.weight is not None:
            observer = qconfig.weight()
        else:
            observer = default_dynamic_qconfig.weight()
        if observer.dtype is not qint8 and observer.dtype is not float16:
            raise NotImplementedError(f"The only supported dtypes for dynamic quantized "
                                      f"linear are qint8 and float16, got: "
                                      f"{observer.dtype!r}")  # fmt: skip
        observer(mod.weight)
        if observer.dtype is float16:
            qweight = autograd._new_tensor(np.array(mod.weight.detach()._data, np.float32))
        else:
            qweight = quantize_weight(mod.weight, observer)
        qlinear = cls(mod.in_features, mod.out_features, dtype=observer.dtype)
        qlinear.set_weight_bias(qweight, mod.bias)
        return qlinear


# PyTorch's default dynamic mapping quantizes these too; descent does not (yet): refused loudly
_UNSUPPORTED_DEFAULTS = ("LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell")


def _qconfig_dict(qconfig_spec, dtype) -> dict:
    if dtype is not qint8 and dtype is not float16:
        raise NotImplementedError(f"quantize_dynamic: dtype {dtype!r} is not supported "
                                  "(qint8 or float16)")  # fmt: skip
    default = default_dynamic_qconfig if dtype is qint8 else float16_dynamic_qconfig
    if qconfig_spec is None:
        return {_FloatLinear: default, "__defaults__": True}
    if isinstance(qconfig_spec, set):
        return dict.fromkeys(qconfig_spec, default)
    return dict(qconfig_spec)


def _propagate(module, qconfig_dict: dict, parent=None, prefix: str = "") -> None:
    """Give every module its qconfig: by module name, else by type, else the parent's
    (PyTorch's propagate_qconfig_)."""
    qconfig = qconfig_dict.get(type(module), parent)
    qconfig = qconfig_dict.get(prefix, qconfig)
    module.qconfig = qconfig
    for name, child in module.named_children():
        _propagate(child, qconfig_dict, qconfig, f"{prefix}.{name}" if prefix else name)


def _convert(module) -> None:
    """Swap each child nn.Linear that has a qconfig for its DynamicQuantizedLinear (PyTorch's
    convert: children only, so a bare nn.Linear passed as the model stays float)."""
    for name, child in list(module.named_children()):
        if isinstance(child, _FloatLinear) and getattr(child, "qconfig", None) is not None:
            setattr(module, name, DynamicQuantizedLinear.from_float(child))
        else:
            _convert(child)


def quantize_dynamic(model, qconfig_spec=None, dtype=qint8, mapping=None, inplace=False):
    """torch.ao.quantization.quantize_dynamic: every nn.Linear (chosen by `qconfig_spec`)
    replaced by a DynamicQuantizedLinear with an int8 weight.

    Args:
        model: the float model.
        qconfig_spec: None (every nn.Linear), a set of module types ({nn.Linear}), or a dict
            from module types or qualified submodule names ("encoder.0") to a QConfig
            (default_dynamic_qconfig, per_channel_dynamic_qconfig) or None (left float).
        dtype: descent.qint8, or descent.float16 (fp16 weights, float32 products).
        mapping: PyTorch's module mapping; only nn.Linear -> DynamicQuantizedLinear exists.
        inplace: modify `model` itself instead of a deep copy.

    Returns:
        The quantized model.

    Raises:
        NotImplementedError: dtype quint8 (or another), or qconfig_spec asks for a module kind
            descent cannot quantize (LSTM, GRU, Embedding, ...).
    """
    qconfig_dict = _qconfig_dict(qconfig_spec, dtype)
    defaults = qconfig_dict.pop("__defaults__", False)
    for key in qconfig_dict:
        if isinstance(key, type) and not issubclass(key, _FloatLinear):
            raise NotImplementedError(
                f"quantize_dynamic: descent quantizes nn.Linear only, "
                f"not {key.__name__} (leave it out of qconfig_spec)"
            )
    if not inplace:
        model = copy.deepcopy(model)
    if defaults:  # PyTorch's default spec would quantize these: never leave one float quietly
        for name, m in model.named_modules():
            if type(m).__name__ in _UNSUPPORTED_DEFAULTS:
                raise NotImplementedError(
                    f"quantize_dynamic: {name or 'the model'} is an nn.{type(m).__name__}, which "
                    "PyTorch's default qconfig_spec quantizes and descent cannot; pass "
                    "qconfig_spec={nn.Linear} to quantize the Linear layers only"
                )
    _propagate(model, qconfig_dict)
    _convert(model)
    return model
