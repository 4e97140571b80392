"""`descent.cuda`: is a CUDA GPU usable through CuPy? (PyTorch's names.)

`descent.cuda.amp` holds PyTorch's older mixed-precision spellings (`torch.cuda.amp.autocast`,
`torch.cuda.amp.GradScaler`); see `cuda/amp.py`. Without a GPU the questions answer "no"
(`is_available()` is False, `device_count()` 0, `memory_allocated()` 0), the housekeeping
calls (`synchronize`, `empty_cache`, `manual_seed(_all)`) do nothing, and the calls that need a
device (`get_device_name`, `current_device`) raise `CudaUnavailableError`, as PyTorch raises
there.
"""

from __future__ import annotations

from .. import backend as _backend
from ..legacy_tensors import _CUDA_LEGACY_TYPES as _LEGACY
from ..torch_misc import OutOfMemoryError  # torch.cuda.OutOfMemoryError is torch's
from . import amp

# torch.cuda.FloatTensor & co. (legacy_tensors): GPU tensors, a TypeError without a GPU
BFloat16Tensor = _LEGACY["BFloat16Tensor"]
BoolTensor = _LEGACY["BoolTensor"]
ByteTensor = _LEGACY["ByteTensor"]
CharTensor = _LEGACY["CharTensor"]
DoubleTensor = _LEGACY["DoubleTensor"]
FloatTensor = _LEGACY["FloatTensor"]
HalfTensor = _LEGACY["HalfTensor"]
IntTensor = _LEGACY["IntTensor"]
LongTensor = _LEGACY["LongTensor"]
ShortTensor = _LEGACY["ShortTensor"]

__all__ = [
    "BFloat16Tensor",
    "BoolTensor",
    "ByteTensor",
    "CharTensor",
    "CudaUnavailableError",
    "DoubleTensor",
    "FloatTensor",
    "HalfTensor",
    "IntTensor",
    "LongTensor",
    "OutOfMemoryError",
    "ShortTensor",
    "amp",
    "current_device",
    "device_count",
    "empty_cache",
    "get_device_name",
    "is_available",
    "is_bf16_supported",
    "manual_seed",
    "manual_seed_all",
    "memory_allocated",
    "synchronize",
]


class CudaUnavailableError(RuntimeError, AssertionError):
    """A call that needs a CUDA GPU, made where there is none. PyTorch's CPU build raises an
    AssertionError there (a CUDA build without a GPU a RuntimeError); this is both."""


def is_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return _backend.cuda_available()


def device_count() -> int:
    """Number of CUDA devices CuPy sees (0 without CuPy or a GPU)."""
    return _backend.cuda_device_count()


def synchronize(device=None) -> None:
    """Wait for all queued GPU work to finish (a no-op without a GPU); use it around timings."""
    del device  # one stream per process: synchronising it covers every device descent uses
    _backend.cuda_synchronize()


def manual_seed(seed: int) -> None:
    """Seed the GPU generator used by descent's random functions on device='cuda'."""
    from ..creation import _device_generator

    for i in range(device_count()):
        _device_generator(f"cuda:{i}").manual_seed(seed)


def manual_seed_all(seed: int) -> None:
    """Seed every GPU's generator (torch.cuda.manual_seed_all); a no-op without a GPU.

    descent.manual_seed already seeds them too, as torch.manual_seed does.
    """
    manual_seed(seed)  # manual_seed covers every device descent sees


def empty_cache() -> None:
    """Release the GPU memory CuPy's pools keep cached for reuse (a no-op without a GPU).

    Like PyTorch's, it frees only blocks no tensor uses; live tensors keep their memory.
    """
    _backend.cuda_empty_cache()


def memory_allocated(device=None) -> int:
    """Bytes held by live GPU tensors (CuPy's memory pool); 0 without a GPU, as in PyTorch."""
    del device
    return _backend.cuda_memory_allocated()


def _index(device) -> int:
    """The GPU index of `device` (None: 0, an int, 'cuda:1' or a descent.device)."""
    if device is None:
        return 0
    if isinstance(device, int):
        return device
    index = getattr(device, "index", None)
    if index is None and isinstance(device, str) and ":" in device:
        index = int(device.rsplit(":", 1)[1])
    return int(index or 0)


def _require(what: str) -> None:
    if not _backend.cuda_available():
        raise CudaUnavailableError(
            f"descent.cuda.{what}: no CUDA GPU is usable here (CuPy is not installed or sees no "
            "device). Guard the call with descent.cuda.is_available()"
        )


def get_device_name(device=None) -> str:
    """The GPU's name, e.g. 'NVIDIA H100 80GB HBM3' (torch.cuda.get_device_name).

    Args:
        device: None (GPU 0), an index, 'cuda:1' or a descent.device.

    Raises:
        CudaUnavailableError: there is no usable GPU (a RuntimeError and an AssertionError).
    """
    _require("get_device_name")
    return _backend.cuda_device_name(_index(device))


def current_device() -> int:
    """The index of the GPU new tensors go to: always 0 (descent uses one device per process).

    Raises:
        CudaUnavailableError: there is no usable GPU.
    """
    _require("current_device")
    return 0


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """True when autocast(device_type='cuda', dtype=bfloat16) can run here: a GPU and the
    ml_dtypes package (CuPy's bfloat16). False without a GPU, as in PyTorch."""
    del including_emulation
    return _backend.cuda_available() and _backend.bfloat16_dtype() is not None
