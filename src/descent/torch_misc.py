"""The last small top-level torch names: `rsub`, `binomial`, `frombuffer`, `to_dlpack`, `_assert`,
`triangular_solve`, `fork` / `wait`, the deterministic debug mode, and PyTorch's removed
functions (`solve`, `lstsq`, `symeig`, `eig`), which raise its own message pointing at
`torch.linalg`. (`cond` / `while_loop` are control_flow.py's, loaded on first use; the module
`__getattr__` below still answers them.)
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import numpy as np

from .creation import _rng, tensor
from .dtypes import as_dtype, get_default_dtype
from .grad_fn import show_as
from .ops._common import as_tensor, normalize_axis
from .ops.arithmetic import scale
from .tensor import Tensor

__all__ = [
    "OutOfMemoryError", "get_device_module", "has_lapack", "has_mkl", "has_openmp",
    "has_spectral", "sym_float", "sym_int", "sym_ite", "sym_max", "sym_min", "sym_not",
    "sym_sqrt", "sym_sum",
    "binomial", "compiled_with_cxx11_abi", "eig", "fork", "from_file", "frombuffer",
    "get_deterministic_debug_mode", "hash_tensor", "init_num_threads", "is_storage",
    "is_vulkan_available",
    "lstsq", "rsub", "set_deterministic_debug_mode", "solve", "symeig", "to_dlpack",
    "triangular_solve", "wait", "_assert",
]  # fmt: skip


def __getattr__(name: str):
    # torch.cond / torch.while_loop (run eagerly) live in control_flow.py, which descent's
    # __getattr__ loads on first use; descent.torch_misc.cond keeps working.
    if name in ("cond", "while_loop"):
        from . import control_flow  # noqa: PLC0415

        return getattr(control_flow, name)
    raise AttributeError(f"module 'descent.torch_misc' has no attribute {name!r}")


def rsub(input, other, *, alpha=1) -> Tensor:
    """other - alpha * input (torch.rsub)."""
    x = as_tensor(input)
    # alpha as PyTorch's RsubBackward0 keeps it: a number, nothing freed (arithmetic.Scale)
    out = other - (x if alpha == 1 else scale(x, alpha))
    # two tensors: PyTorch's one node over (input, other), descent's sub of other and x
    return show_as(out, "RsubBackward0", (x, other)) if isinstance(other, Tensor) else out


def binomial(count, prob, generator=None) -> Tensor:
    """Samples of Binomial(count, prob), elementwise, in count's dtype (torch.binomial)."""
    c, p = as_tensor(count), as_tensor(prob)
    rng = _rng(generator, c.device)
    n = np.asarray(c.detach().numpy(), dtype=np.int64)
    out = rng.binomial(n, np.asarray(p.detach().numpy(), dtype=np.float64))
    return tensor(out.astype(c._data.dtype), device=c.device)


def frombuffer(buffer, *, dtype, count: int = -1, offset: int = 0, requires_grad: bool = False):
    """A 1-D tensor over the bytes of `buffer` (shares its memory, as torch.frombuffer)."""
    arr = np.frombuffer(buffer, dtype=as_dtype(dtype), count=count, offset=offset)
    out = Tensor._wrap(arr)
    return out.requires_grad_() if requires_grad else out


def to_dlpack(t):
    """A DLPack capsule of the tensor's memory (torch.utils.dlpack.to_dlpack)."""
    return t.__dlpack__()


def triangular_solve(b, A, upper: bool = True, transpose: bool = False,
                     unitriangular: bool = False):  # fmt: skip
    """The deprecated torch.triangular_solve(B, A): (solution of A X = B, a copy of A)."""
    from .linalg_torch import triangular_solve as solve  # noqa: PLC0415

    warnings.warn("torch.triangular_solve is deprecated in favor of "
                  "torch.linalg.solve_triangular", UserWarning, stacklevel=2)  # fmt: skip
    return solve(b, A, upper, transpose, unitriangular)


def fork(func, *args, **kwargs):
    """torch.jit.fork's top-level name: run now, return a future."""
    from .jit import fork as _fork  # noqa: PLC0415

    return _fork(func, *args, **kwargs)


def wait(future):
    from .jit import wait as _wait  # noqa: PLC0415

    return _wait(future)


_debug_mode = 0


def get_deterministic_debug_mode() -> int:
    return _debug_mode


def set_deterministic_debug_mode(debug_mode) -> None:
    """0 / "default", 1 / "warn", 2 / "error" (recorded: descent's ops are deterministic)."""
    global _debug_mode
    names = {"default": 0, "warn": 1, "error": 2}
    mode = names.get(debug_mode, debug_mode) if isinstance(debug_mode, str) else debug_mode
    if mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {mode}")
    _debug_mode = int(mode)


def init_num_threads() -> None:
    """Accepted (descent's thread pools are NumPy's BLAS and numba's)."""


def is_vulkan_available() -> bool:
    return False


def is_storage(obj) -> bool:
    """True for an UntypedStorage or TypedStorage (descent/storage.py), as torch.is_storage."""
    mod = sys.modules.get("descent.storage")  # no storage exists before that module loads
    return mod is not None and isinstance(obj, (mod.UntypedStorage, mod.TypedStorage))


def compiled_with_cxx11_abi() -> bool:
    return True


def _assert(condition, message) -> None:
    """torch._assert: Python's assert as a function (timm's shape checks call it; PyTorch's
    version is the one fx can trace). A tensor condition is its truth value."""
    assert condition, message


def _removed(name: str, replacement: str):
    def fn(*args, **kwargs):
        raise RuntimeError(
            "This function was deprecated since version 1.9 and is now removed. "
            f"`torch.{name}` is deprecated in favor of `torch.linalg.{replacement}`."
        )

    fn.__name__ = name
    fn.__doc__ = f"Removed in PyTorch 1.9 (raises, as torch.{name}): use linalg.{replacement}."
    return fn


solve = _removed("solve", "solve")
lstsq = _removed("lstsq", "lstsq")
symeig = _removed("symeig", "eigh")
eig = _removed("eig", "eig")


# -- device-agnostic helpers, build flags, symbolic-shape arithmetic -------------------------

class OutOfMemoryError(RuntimeError):
    """torch.OutOfMemoryError (also torch.cuda.OutOfMemoryError): raised by PyTorch when an
    allocation fails. descent's CPU arrays are NumPy's, whose failed allocations raise Python's
    MemoryError; scripts that catch this class to shrink a batch also need `except
    MemoryError` on descent (docs/pytorch.md)."""


def get_device_module(device=None):
    """The module of a device type: `descent.cpu`, `descent.cuda`, `descent.mps` or `descent.xpu`
    (torch.get_device_module). None: the current accelerator's (CUDA when usable), else cpu."""
    import importlib  # noqa: PLC0415

    if device is None:
        from . import cuda  # noqa: PLC0415

        kind = "cuda" if cuda.is_available() else "cpu"
    else:
        kind = getattr(device, "type", None) or str(device).split(":")[0]
    if kind not in ("cpu", "cuda", "mps", "xpu"):
        raise RuntimeError(f"Device '{kind}' does not have a corresponding module registered "
                           f"as 'descent.{kind}'.")  # fmt: skip
    return importlib.import_module(f"descent.{kind}")


has_lapack = True  # NumPy's LAPACK (descent.linalg)
has_spectral = True  # NumPy's FFT (descent.fft)
has_mkl = False  # NumPy's wheels use OpenBLAS; descent never calls MKL
has_openmp = False  # descent's parallel kernels use numba's threads, not OpenMP


def sym_int(a):
    """torch.sym_int: int(a), truncating toward zero (plain Python numbers here)."""
    return math.trunc(a) if isinstance(a, float) else int(a)


def sym_float(a):
    return float(a)


def sym_max(a, b):
    return max(a, b)


def sym_min(a, b):
    return min(a, b)


def sym_not(a):
    return not a


def sym_ite(b, t, f):
    """torch.sym_ite: t if b else f."""
    return t if b else f


def sym_sqrt(a):
    return math.sqrt(a)


def sym_sum(args):
    return sum(args)


def hash_tensor(input, dim=None, *, keepdim: bool = False, mode: int = 0) -> Tensor:
    """The xor of the elements' 64-bit patterns, over `dim` (all dimensions for None or []),
    as a uint64 tensor (torch.hash_tensor, mode 0): floats are widened to float64 and integers
    and bools to int64 before their bits are read, so equal values hash equally whatever
    their dtype. Not differentiable.

    Raises:
        RuntimeError: a mode other than 0, or no dim for an empty tensor (PyTorch's errors).
        NotImplementedError: complex and unsigned 16/32/64-bit inputs, which PyTorch's
            xor_sum refuses.
        IndexError: a reduced dimension of size 0, or a dim out of range.
    """
    if mode != 0:
        raise RuntimeError(f"Unknown hash_tensor mode: {mode}")
    x = as_tensor(input)
    if x.dtype.is_floating_point:  # bfloat16/float16/float32 widen exactly to float64
        wide = x.detach().double().numpy()
    else:
        a = x.detach().numpy()
        if a.dtype.kind == "c" or (a.dtype.kind == "u" and a.dtype.itemsize > 1):
            name = str(x.dtype).split(".")[-1]
            raise NotImplementedError(f'"xor_sum_cpu" not implemented for {name!r} (hash_tensor)')
        wide = a.astype(np.int64)  # bool, int8..int64, uint8: PyTorch's upcast to int64
    bits = np.array(wide, order="C").view(np.uint64)  # (ascontiguousarray makes 0-d 1-d)
    dims = None if dim is None or (isinstance(dim, (list, tuple)) and not dim) else dim
    axes = normalize_axis(dims, bits.ndim)
    if axes is None and bits.size == 0:
        raise RuntimeError(
            "hash_tensor: Expected reduction dim to be specified for input.numel() == 0. "
            "Specify the reduction dim with the 'dim' argument."
        )
    for ax in axes or ():
        if bits.ndim and bits.shape[ax] == 0:
            raise IndexError(f"hash_tensor: Expected reduction dim {ax} to have non-zero size.")
    if bits.ndim == 0:
        out = bits.copy()
    else:
        out = np.bitwise_xor.reduce(bits, axis=axes, keepdims=bool(keepdim))
    return tensor(np.asarray(out, dtype=np.uint64))


def from_file(filename, shared=None, size: int = 0, *, dtype=None, layout=None, device=None,
              pin_memory: bool = False, requires_grad: bool = False) -> Tensor:  # fmt: skip
    """A 1-d tensor of `size` elements of `dtype` (the default dtype if None) read from the
    raw bytes of `filename` (torch.from_file). With `shared=True` it is a memory map of the
    file (created or extended with zeros when too short, as PyTorch's MAP_SHARED): writes to
    the tensor reach the file. Otherwise the values are a private copy (MAP_PRIVATE).

    Raises:
        RuntimeError: the file is missing or shorter than size * itemsize bytes (not shared),
            PyTorch's messages.
    """
    dt = as_dtype(get_default_dtype() if dtype is None else dtype)
    size = int(size)
    nbytes = size * dt.itemsize
    name = os.fspath(filename)
    if shared:
        with open(name, "ab") as f:  # create it, or keep it as it is
            if f.tell() < nbytes:
                f.truncate(nbytes)
        arr = np.memmap(name, dtype=dt, mode="r+", shape=(size,)) if size else np.empty(0, dt)
        arr = arr.view(np.ndarray)  # a plain array over the map (its base keeps it open)
    else:
        if not os.path.exists(name):
            raise RuntimeError(f"unable to open file <{name}> in read-only mode: No such file or "
                               "directory (2)")  # fmt: skip
        have = os.path.getsize(name)
        if have < nbytes:
            raise RuntimeError(f"file <{name}> size <{have}> is smaller than the required "
                               f"mapping size <{nbytes}>")  # fmt: skip
        arr = np.fromfile(name, dtype=dt, count=size)
    out = Tensor._wrap(arr)
    return out.requires_grad_() if requires_grad else out
