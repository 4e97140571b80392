"""descent.ao.nn.quantized: torch.ao.nn.quantized (only its `dynamic` modules exist here:
descent has no statically quantized kernels; docs/quantization.md)."""

from . import dynamic

__all__ = ["dynamic"]
