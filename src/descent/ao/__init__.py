"""descent.ao: PyTorch's torch.ao ("architecture optimization") namespace: `ao.quantization`
and `ao.nn.quantized.dynamic` (implemented in descent.quantization; docs/quantization.md)."""

from . import nn, quantization

__all__ = ["nn", "quantization"]
