"""descent.backends: the switches PyTorch scripts set or probe (`torch.backends.*`).

    descent.backends.cuda.matmul.allow_tf32 = True     # accepted
    descent.backends.cudnn.benchmark = True            # accepted
    descent.backends.mps.is_available()                # False

What they mean in descent: its GPU arithmetic is CuPy's, in the tensor's own precision; it does
not call cuDNN and never lowers float32 matmuls to TF32. So the flags are recorded (a script
reads back what it set) but change no result, and `cudnn.is_available()` answers False. The
modules are real submodules, so `import descent.backends.cudnn as cudnn` works as in PyTorch.

descent's own switch (no PyTorch counterpart): which BLAS runs its float32/float64 matrix
products on the CPU (descent/blas.py; README "Intel MKL for the products"):

    descent.backends.set_blas("mkl")   # needs pip install 'descent[mkl]'; 'openblas', 'auto'
    descent.backends.blas()            # 'mkl' or 'openblas'
    descent.backends.is_mkl_available()
"""

from ..blas import BlasError, blas, is_mkl_available, set_blas
from . import cpu, cuda, cudnn, mha, mkldnn, mps, openmp, opt_einsum, quantized

__all__ = [
    "cpu", "cuda", "cudnn", "mha", "mkldnn", "mps", "openmp", "opt_einsum", "quantized",
    "BlasError", "blas", "is_mkl_available", "set_blas",
]  # fmt: skip
