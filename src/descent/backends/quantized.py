"""`torch.backends.quantized`: the quantized engine. descent's quantized kernels compute what
PyTorch's x86 engine (fbgemm) computes, bit for bit (docs/quantization.md), so `engine` is "x86"
and accepts "x86" or "fbgemm"; "qnnpack" / "onednn" (other kernels, other rounding, no
reduce_range) raise instead of being recorded and silently ignored."""

from __future__ import annotations

import sys
import types

__all__ = ["supported_engines"]  # and `engine`, the property below

supported_engines = ["x86", "fbgemm"]
_engine = "x86"


class _QuantizedModule(types.ModuleType):
    """The module with `engine` as a checked property (PyTorch's _QEngineProp)."""

    @property
    def engine(self) -> str:
        return _engine

    @engine.setter
    def engine(self, value: str) -> None:
        global _engine
        if value not in supported_engines:
            raise RuntimeError(
                f"quantized engine {value!r}: descent's quantized kernels are fbgemm's (x86 / "
                f"fbgemm, its {supported_engines}); {value}'s kernels and rounding are not "
                "implemented (docs/quantization.md)"
            )
        _engine = value


sys.modules[__name__].__class__ = _QuantizedModule
