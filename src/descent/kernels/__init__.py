"""Fused device kernels: the fast path of a few hot ops on the GPU.

`descent.kernels.cuda` holds CuPy kernels (GELU, softmax / log-softmax, softmax
cross-entropy, layer norm, the Adam/AdamW update). Ops never import it directly: they ask
`descent.backend.fused(name, *arrays)`, which returns the kernel function for CuPy arrays of
float32/float16 and None otherwise (NumPy arrays, float64, `DESCENT_FUSED=0`), so the CPU
path is untouched. Importing this package needs no GPU; `descent.kernels.cuda` compiles its
kernels on first use.
"""

from __future__ import annotations

__all__ = ["cuda"]
