"""Fused kernels: the fast path of a few hot ops, one module per device.

`descent.kernels.cuda` holds CuPy kernels (GELU, softmax / log-softmax, softmax
cross-entropy, layer norm, the Adam/AdamW update); `descent.kernels.cpu` holds numba kernels
with the same names and signatures for NumPy arrays (numba: a core dependency). Ops never
import either directly: they ask `descent.backend.fused(name, *arrays)`, which returns the
CUDA kernel for CuPy arrays of float32/float16, the CPU kernel (when installed and enabled)
for NumPy arrays, and None otherwise (float64 on the GPU, mixed dtypes, `DESCENT_FUSED=0`), in
which case the op runs its generic `xp` code. Importing this package needs no GPU;
`descent.kernels.cuda` compiles its kernels on first use. The signatures are those of
`descent.kernels.cuda`. Importing the package makes numba's on-disk cache safe for several
processes at once and keyed on the sibling modules a kernel file inlines (`_numba_cache`),
lets a process load descent's cached kernels without numba's compile-time set-up
(`_numba_startup`: no registry refresh, no scipy.linalg import), and
on an AVX-512 core has descent's kernels use 512-bit vectors where LLVM's tuning prefers 256
(`_numba_width`).
"""

from __future__ import annotations

from ._numba_cache import install as _install_cache_lock
from ._numba_cache import install_source_stamps as _install_source_stamps
from ._numba_startup import install as _install_quick_start
from ._numba_width import install as _install_vector_width

# numba's on-disk cache is not safe for several processes compiling at once: lock it before any
# kernel of this package compiles or loads (see _numba_cache).
_install_cache_lock()
_install_source_stamps()  # a kernel's cache also keys on the sibling modules it inlines
_install_quick_start()
_install_vector_width()

__all__ = ["cuda"]
