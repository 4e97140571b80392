"""descent.quantization: quantized tensors, observers and dynamic quantization, PyTorch's
torch.ao.quantization (also reachable as descent.ao.quantization, and as descent.quantization
as torch.quantization is). docs/quantization.md.

    qmodel = descent.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=descent.qint8)
    qmodel[0].weight().int_repr()       # the int8 weight

Modules: `kernels` (NumPy kernels with PyTorch's rounding), `qtensor` (the quantized dtypes,
QuantizedTensor, quantize_per_tensor & co.), `observer` (MinMaxObserver & co.), `dynamic`
(QConfig, DynamicQuantizedLinear, quantize_dynamic).
"""

from .._namespace import hide_submodules as _hide_submodules
from .dynamic import (
    QConfig,
    default_dynamic_qconfig,
    float16_dynamic_qconfig,
    per_channel_dynamic_qconfig,
    quantize_dynamic,
)
from .observer import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    ObserverBase,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
    default_dynamic_quant_observer,
    default_observer,
    default_per_channel_weight_observer,
    default_weight_observer,
)

__all__ = [
    "MinMaxObserver", "MovingAverageMinMaxObserver", "ObserverBase", "PerChannelMinMaxObserver",
    "PlaceholderObserver", "QConfig", "default_dynamic_qconfig", "default_dynamic_quant_observer",
    "default_observer", "default_per_channel_weight_observer", "default_weight_observer",
    "float16_dynamic_qconfig", "per_channel_dynamic_qconfig", "quantize_dynamic",
]  # fmt: skip

_hide_submodules(globals(), keep=("observer",))  # torch.ao.quantization.observer is public
