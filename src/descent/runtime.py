"""Process-wide switches with PyTorch's names: threads, deterministic algorithms and the float32
matmul precision. Each says here what it changes in descent, which is not always what it changes
in PyTorch.

* `set_num_threads(n)` sets the threads of the libraries descent computes with on the CPU: the
  BLAS behind NumPy's matmuls (through `threadpoolctl`, a core dependency) and numba's pool
  (descent's fused CPU kernels and `descent.compile`'s parallel loops). NumPy's elementwise
  ufuncs are single-threaded either way. Without threadpoolctl the BLAS keeps the threads it
  started with (set `OMP_NUM_THREADS` / `OPENBLAS_NUM_THREADS` before Python starts), and a
  warning says so.
* `use_deterministic_algorithms(True)` is recorded and changes nothing: on the CPU every descent
  op already gives the same bits run after run (NumPy, and numba kernels without atomics). On a
  GPU, CuPy's scatter-adds (the backward of indexing, embedding, index_add) use atomic adds whose
  order can vary in the last bits; descent does not swap them for deterministic kernels.
* `set_float32_matmul_precision('high' | 'medium')` is recorded and, as in PyTorch, sets
  `descent.backends.cuda.matmul.allow_tf32`; descent never lowers float32 matmuls to TF32 or
  bfloat16, so float32 products keep float32 precision ('highest') whatever is set.
"""

from __future__ import annotations

import os
import warnings

__all__ = [
    "are_deterministic_algorithms_enabled",
    "get_float32_matmul_precision",
    "get_num_interop_threads",
    "get_num_threads",
    "is_deterministic_algorithms_warn_only_enabled",
    "set_float32_matmul_precision",
    "set_num_interop_threads",
    "set_num_threads",
    "use_deterministic_algorithms",
]

_state = {
    "threads": None,  # what set_num_threads asked for (None: the libraries' own defaults)
    "blas_limiter": None,  # threadpoolctl's limiter, kept so the limit stays in force
    "interop": None,
    "deterministic": False,
    "warn_only": False,
    "precision": "highest",
}


def _threadpoolctl():
    try:
        import threadpoolctl
    except ImportError:
        return None
    return threadpoolctl


def _check_threads(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise RuntimeError(f"{name} expects an int, but got {type(n).__name__}")
    if n < 1:
        raise RuntimeError(f"{name} expects a positive integer")
    return n


def set_num_threads(n: int) -> None:
    """Use `n` threads for the CPU libraries descent computes with (torch.set_num_threads).

    Sets the BLAS's threads (NumPy's matmuls; needs the `threadpoolctl` package, else it warns
    and leaves them) and numba's (descent's fused kernels; numba's setting holds for the calling
    thread), capped at the threads numba started with (`NUMBA_NUM_THREADS`, every core by
    default).

    Raises:
        RuntimeError: n is not a positive int (PyTorch's message).
    """
    n = _check_threads(n, "set_num_threads")
    _state["threads"] = n
    tpc = _threadpoolctl()
    if tpc is None:
        warnings.warn(
            "set_num_threads: threadpoolctl is not installed, so the BLAS behind NumPy keeps its "
            "threads (set OMP_NUM_THREADS before starting Python, or pip install threadpoolctl); "
            "numba's threads are set",
            RuntimeWarning,
            stacklevel=2,
        )
    else:
        _state["blas_limiter"] = tpc.threadpool_limits(limits=n, user_api="blas")
    from . import blas  # noqa: PLC0415 - MKL's threads follow; OpenBLAS stays at one beside it

    blas.threads_changed(n)
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a core dependency
        return
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def get_num_threads() -> int:
    """The CPU threads descent's libraries use (torch.get_num_threads): what set_num_threads
    set, else the BLAS's current count (threadpoolctl), else the number of CPUs."""
    if _state["threads"] is not None:
        return _state["threads"]
    tpc = _threadpoolctl()
    if tpc is not None:
        counts = [i["num_threads"] for i in tpc.threadpool_info() if i["user_api"] == "blas"]
        if counts:
            return max(counts)
    return os.cpu_count() or 1


def set_num_interop_threads(n: int) -> None:
    """Recorded only (torch.set_num_interop_threads): descent runs no inter-op thread pool."""
    _state["interop"] = _check_threads(n, "set_num_interop_threads")


def get_num_interop_threads() -> int:
    return _state["interop"] or (os.cpu_count() or 1)


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded (torch.use_deterministic_algorithms); changes nothing in descent: CPU results
    are already deterministic, and GPU scatter-adds stay atomic (see the module docstring)."""
    _state["deterministic"] = bool(mode)
    _state["warn_only"] = bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _state["deterministic"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _state["warn_only"]


def set_float32_matmul_precision(precision: str) -> None:
    """Record the float32 matmul precision (torch.set_float32_matmul_precision).

    'highest', 'high' or 'medium'; as in PyTorch, anything else warns and changes nothing, and
    'high'/'medium' set `descent.backends.cuda.matmul.allow_tf32`. descent's float32 matmuls run
    in float32 whatever is set.
    """
    if precision not in ("highest", "high", "medium"):
        warnings.warn(
            f"{precision} is not one of 'highest', 'high', or 'medium'; the "
            "set_float32_matmul_precision call has no effect.",
            UserWarning,
            stacklevel=2,
        )
        return
    _state["precision"] = precision
    from .backends import cuda  # the backends flags are their own small package

    cuda.matmul.allow_tf32 = precision != "highest"


def get_float32_matmul_precision() -> str:
    return _state["precision"]
