"""descent.ao.nn: torch.ao.nn (its quantized modules: `quantized.dynamic.Linear`)."""

from . import quantized

__all__ = ["quantized"]
