"""descent.ao.nn.quantized.dynamic: torch.ao.nn.quantized.dynamic (`Linear`, the dynamically
quantized nn.Linear; descent.quantization.dynamic)."""

from .....quantization.dynamic import DynamicQuantizedLinear as Linear

__all__ = ["Linear"]
