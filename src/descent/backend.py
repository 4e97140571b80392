"""The array backend: the only module that knows CuPy exists.

Every difference between NumPy and CuPy that the rest of descent needs is a named helper here, so
ops stay written against one `xp` namespace (see STYLE.md, "Backend").
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from . import meta, settings
from .errors import DescentError

_cupy: Any = None
_cupy_checked = False


def cupy_module():
    """Return the cupy module, or None when CuPy (or a CUDA device) is unavailable."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            cp = importlib.import_module("cupy")
            if cp.cuda.runtime.getDeviceCount() > 0:
                _cupy = cp
        except Exception:  # ImportError, or CUDA driver/runtime errors on a machine without a GPU
            _cupy = None
    return _cupy


def cuda_available() -> bool:
    return cupy_module() is not None


def cuda_device_count() -> int:
    cp = cupy_module()
    return 0 if cp is None else int(cp.cuda.runtime.getDeviceCount())


def cuda_synchronize() -> None:
    cp = cupy_module()
    if cp is not None:
        cp.cuda.Stream.null.synchronize()
        if _deferred:
            check_deferred()


# Checks of device data that would cost a host synchronisation each if done at once (an index
# range in embedding, a target range in cross-entropy): on a GPU, the op queues a device flag
# and a function making the error, and the flags are read together at the next transfer to the
# host (`as_numpy`: `.item()`, `.numpy()`, printing), at `cuda.synchronize()`, or once
# _DEFERRED_MAX are pending. A bad value then raises there, as PyTorch's device-side asserts
# surface at its next synchronisation. NumPy arrays are checked at once by the ops themselves.
_deferred: list = []
_DEFERRED_MAX = 64


def defer_check(flag, make_error) -> None:
    """Queue a device boolean scalar `flag` (True = bad) and `make_error()` -> the exception."""
    _deferred.append((flag, make_error))
    if len(_deferred) >= _DEFERRED_MAX:
        check_deferred()


def check_deferred() -> None:
    """Read the queued flags (one transfer) and raise the first failed check's error."""
    if not _deferred:
        return
    items = list(_deferred)
    _deferred.clear()
    cp = cupy_module()
    try:
        flags = cp.stack([cp.asarray(f).reshape(()) for f, _ in items]).get()
    except Exception:  # flags on several devices: one transfer each
        flags = [bool(f) for f, _ in items]
    for bad, (_, make_error) in zip(flags, items):
        if bad:
            raise make_error()


def cuda_empty_cache() -> None:
    """Return the blocks CuPy's memory pools hold but no array uses to the driver (no-op
    without a GPU)."""
    cp = cupy_module()
    if cp is not None:
        cp.get_default_memory_pool().free_all_blocks()
        cp.get_default_pinned_memory_pool().free_all_blocks()


def cuda_memory_allocated() -> int:
    """Bytes of GPU memory held by live CuPy arrays (0 without a GPU)."""
    cp = cupy_module()
    return 0 if cp is None else int(cp.get_default_memory_pool().used_bytes())


def cuda_device_name(index: int) -> str:
    """The name of GPU `index` as the driver reports it (call only when cuda_available())."""
    name = cupy_module().cuda.runtime.getDeviceProperties(index)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def is_cupy_array(a) -> bool:
    # Checking the class's module avoids importing cupy just to answer "no".
    return type(a).__module__.startswith("cupy")


def get_array_module(*arrays):
    """The array namespace (numpy, cupy, or `meta.xp` for meta arrays) for these arrays; numpy
    when none is a CuPy or meta array."""
    for a in arrays:
        # NumPy arrays, the common case, are answered without looking at the class's module.
        if type(a) is not _ndarray:
            if is_cupy_array(a):
                return cupy_module()
            if type(a) is meta.MetaArray:  # NumPy's namespace whose new arrays are meta
                return meta.xp
    return np


_ndarray = np.ndarray


def device_of(a) -> str:
    """'cpu' for NumPy arrays, 'cuda:N' for CuPy arrays, 'meta' for meta arrays."""
    if is_cupy_array(a):
        return f"cuda:{a.device.id}"
    if type(a) is meta.MetaArray:
        return "meta"
    return "cpu"


def is_meta(a) -> bool:
    """True for the arrays of the meta device (a shape and a dtype, no data; meta.py)."""
    return type(a) is meta.MetaArray


def creation_module(a):
    """The namespace that makes new arrays on `a`'s device (`xp.zeros(...)`): numpy, cupy, or
    `meta.xp` for a meta array (the same as `get_array_module(a)`; kept as the name that says
    why an allocating op asks)."""
    return get_array_module(a)


def normalize_device(device) -> str:
    """Canonical device string: 'cpu', 'cuda:N' or 'meta'. Accepts 'cuda', 'gpu', an int N
    (PyTorch's accelerator index: 'cuda:N'), objects with `.type`."""
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        if type(device) is int:  # PyTorch: an int is the accelerator's index (device=0)
            if device < 0:
                raise RuntimeError(f"Device index must not be negative, got {device}")
            device = f"cuda:{device}"
        device = str(device)
    device = device.lower()
    if device == "cpu" or device == "meta":
        return device
    if device in ("cuda", "gpu"):
        device = "cuda:0"
    if device.startswith("cuda"):
        if not cuda_available():
            raise RuntimeError(
                f"device {device!r} was requested but CUDA is not available: install CuPy "
                "(`pip install 'descent[gpu]'`) on a machine with an NVIDIA GPU, or use "
                "device='cpu'"
            )
        return device
    raise DescentError(  # PyTorch's RuntimeError; still the ValueError raised before
        f"unknown device {device!r}: use 'cpu', 'cuda' / 'cuda:N' or 'meta'"
    )


def xp_for_device(device: str):
    """The array namespace of a device: numpy, cupy, or `meta.xp` (meta arrays, no data)."""
    if device == "cpu":
        return np
    return meta.xp if device == "meta" else cupy_module()


def to_device(a, device: str):
    """Copy an array to `device` ('cpu', 'cuda:N' or 'meta'); returns `a` itself when already
    there. To 'meta' keeps the shape and dtype only; out of 'meta' raises as PyTorch (there is
    no data: `Module.to_empty` makes new storage instead)."""
    if type(a) is meta.MetaArray:
        if device == "meta":
            return a
        raise NotImplementedError(meta.NO_DATA)
    if device == "cpu":
        if is_cupy_array(a):
            return a.get()
        return a
    if device == "meta":
        return meta.empty(a.shape, a.dtype)
    cp = cupy_module()
    dev_id = int(device.split(":")[1]) if ":" in device else 0
    if is_cupy_array(a) and a.device.id == dev_id:
        return a
    with cp.cuda.Device(dev_id):
        return cp.asarray(a)


def as_numpy(a) -> np.ndarray:
    """A NumPy array with the values of `a` (a device-to-host copy for CuPy arrays)."""
    if is_cupy_array(a):
        if _deferred:
            check_deferred()
        return a.get()
    if type(a) is meta.MetaArray:
        raise NotImplementedError(meta.NO_DATA)
    return np.asarray(a)


def scatter_add(target, index, values) -> None:
    """target[index] += values with repeated indices accumulating (np.add.at / cupyx)."""
    if is_cupy_array(target):
        import cupyx  # only reached with CuPy arrays

        cupyx.scatter_add(target, index, values)
    elif values.size <= _ADD_AT_MAX or not _scatter_add_rows(target, index, values):
        # (a few values: np.add.at directly, in the row loop's order, so the same bits; the
        # loop's checks cost more than np.add.at's walk there)
        np.add.at(target, index, values)


_ADD_AT_MAX = 256  # scatter_add's values up to this many: np.add.at


_ROW_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def scatter_add_along_axis(target, index, values, axis: int) -> bool:
    """target[..., index[..., i, ...], ...] += values along `axis` (torch.scatter_add) by the
    numba loop (kernels._cpu_extra.scatter_add_along) when index and values have target's
    shape except along `axis`: np.add.at over the full index tuple is 3x PyTorch's time, and
    the loop adds in its order (the same bits). False: not that case, the kernels are off, or
    an index is out of range; the caller then uses `scatter_add` with the full index.
    """
    if type(target) is not np.ndarray or type(values) is not np.ndarray:
        return False
    if type(index) is not np.ndarray or index.dtype.kind not in "iu" or not index.size:
        return False
    if target.dtype not in _ROW_DTYPES or values.dtype != target.dtype:
        return False
    if not target.flags.c_contiguous or values.shape != index.shape:
        return False
    if not target.size:  # a zero-size axis elsewhere: reshape(-1) cannot infer; nothing to add
        return False
    if index.ndim != target.ndim or any(
        a != b for k, (a, b) in enumerate(zip(index.shape, target.shape)) if k != axis
    ):
        return False
    n = target.shape[axis]
    if int(index.min()) < -n or int(index.max()) >= n:
        return False
    if not _kernels_on():
        return False
    lead = math.prod(target.shape[:axis])  # (np.prod of a tuple: ~10x the cost)
    m = index.shape[axis]
    _SCATTER_MODULES[1].scatter_add_along(
        target.reshape(lead, n, -1),  # (P, N, Q) view
        np.ascontiguousarray(index, dtype=np.int64).reshape(lead, m, -1),  # (P, M, Q)
        np.ascontiguousarray(values).reshape(lead, m, -1),
    )
    return True


def _kernels_on() -> bool:
    """kernels.cpu.enabled() (read at every call), with kernels.cpu and kernels._cpu_extra
    (numba) imported once into _SCATTER_MODULES when on: two import statements per call cost
    ~3 us of a small max pool's backward."""
    if not _SCATTER_MODULES:
        from .kernels import cpu as _kcpu  # noqa: PLC0415 - kernels.cpu imports no numba

        _SCATTER_MODULES.append(_kcpu)
    if not _SCATTER_MODULES[0].enabled():
        return False
    if len(_SCATTER_MODULES) < 2:
        from .kernels import _cpu_extra  # noqa: PLC0415 - numba, on first use

        _SCATTER_MODULES.append(_cpu_extra)
    return True


_SCATTER_MODULES: list = []  # [kernels.cpu, kernels._cpu_extra], on first use


def _scatter_add_rows(target, index, values) -> bool:
    """target[index] += values by the numba row loop (kernels._cpu_extra) when `index` picks
    along ONE axis with a 1-D integer array (`idx`, or `(:, ..., :, idx)` with full slices
    around it): the backward of index_select, x[idx] and embedding, and index_add's forward.
    np.add.at walks such an index element by element (8 ms for 2048 rows of 256 floats; the
    loop 0.3 ms) and adds in the same order, so the sums are bit-identical. False: not that
    case (or the kernels are off, or an index is out of range): the caller uses np.add.at.
    """
    if type(target) is not np.ndarray or type(values) is not np.ndarray:
        return False
    if target.dtype not in _ROW_DTYPES or values.dtype != target.dtype:
        return False
    if not target.flags.c_contiguous:
        return False
    parts = index if type(index) is tuple else (index,)
    axis = -1
    for k, part in enumerate(parts):
        if type(part) is np.ndarray:
            if axis >= 0 or part.ndim != 1 or part.dtype.kind not in "iu":
                return False
            axis = k
        elif part != slice(None):
            return False
    if axis < 0 or len(parts) > target.ndim:
        return False
    idx = parts[axis]
    n = target.shape[axis]
    expect = target.shape[:axis] + (idx.shape[0],) + target.shape[axis + 1:]
    if values.shape != expect or idx.size == 0 or not target.size or not values.size:
        return False  # empty: np.add.at (reshape(-1) cannot infer a zero-size axis)
    if int(idx.min()) < -n or int(idx.max()) >= n:  # np.add.at raises its IndexError
        return False
    if not _kernels_on():
        return False
    lead = math.prod(target.shape[:axis])  # (np.prod of a tuple: ~10x the cost)
    t3 = target.reshape(lead, n, -1)  # (P, N, Q): a view (target is contiguous)
    v3 = np.ascontiguousarray(values).reshape(lead, idx.shape[0], -1)  # (P, M, Q)
    _SCATTER_MODULES[1].scatter_add_rows(t3, idx.astype(np.int64, copy=False), v3)
    return True


def owns_data(a) -> bool:
    """True when `a` is a fresh, writeable, contiguous array that no other array views."""
    if is_cupy_array(a):
        return a.base is None and a.flags.c_contiguous
    return a.base is None and a.flags.writeable and a.flags.c_contiguous


def erf(xp, x):
    """Elementwise error function (NumPy has none; SciPy is not a dependency).

    The C library's erf (float64) element by element: numba's loop over it (the CPU kernels,
    `kernels.cpu.erf_float64`, ~20 ms per million values) or, without them, `math.erf` per
    element (the same bits). float32/float16 are computed in float64 and rounded once, so they
    are within half an ulp or so of the true value (Abramowitz & Stegun 7.1.26 in float32, used
    before 2026-12-04 and still without numba, is off by up to 3e-7: 5 ulp at erf(0.5)).
    CuPy uses cupyx.scipy.special.erf.
    """
    if type(x) is meta.MetaArray:
        return meta.empty(x.shape, x.dtype)
    if xp is not np:
        import cupyx.scipy.special as sp  # only reached with CuPy arrays

        if x.dtype.kind == "V" or x.dtype.name == "bfloat16":  # cupyx has no bfloat16 loops
            return sp.erf(x.astype(np.float32)).astype(x.dtype)
        return sp.erf(x)
    k = fused("erf_float64", x)
    if k is not None and x.dtype.kind == "f":
        return k(x).astype(x.dtype, copy=False)
    if x.dtype == np.float64:
        return _np_erf_exact(x)
    return _erf_as(x)


_erf_ufunc = None


def _np_erf_exact(x):
    global _erf_ufunc
    if _erf_ufunc is None:
        import math

        _erf_ufunc = np.frompyfunc(math.erf, 1, 1)
    return np.asarray(_erf_ufunc(x), dtype=x.dtype)


# Abramowitz & Stegun (1964), formula 7.1.26.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf_as(x):
    dt = x.dtype
    ax = np.abs(x)
    t = 1.0 / (1.0 + dt.type(_AS_P) * ax)
    a1, a2, a3, a4, a5 = (dt.type(c) for c in _AS_A)
    poly = ((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t
    y = 1.0 - poly * np.exp(-ax * ax)
    return np.copysign(y, x).astype(dt, copy=False)


_MAX_KEEPS_X: dict = {}  # dtype -> NumPy's maximum(0, x) returns x on a tie (-0.0 kept)


def maximum_keeps_second(dtype) -> bool:
    """Whether NumPy's maximum(0, x) returns x on a tie for this dtype (x86's maxps does; NaN
    is propagated either way), so that maximum(0, x) keeps a -0.0 x: checked once per dtype on
    arrays that take its scalar and vector loops."""
    dt = np.dtype(dtype)
    ok = _MAX_KEEPS_X.get(dt)
    if ok is None:
        z = [np.full(n, -0.0, dt) for n in (1, 7, 16, 64, 1000)]
        z.append(z[-1][3:])  # an unaligned start
        ok = _MAX_KEEPS_X[dt] = all(
            np.signbit(np.maximum(0, a).astype(np.float64)).all() for a in z)  # fmt: skip
    return ok


def clamp_min_zero(x):
    """ReLU's values, PyTorch's clamp_min(x, 0): x where x >= 0 or NaN (so -0.0 stays -0.0,
    NaN keeps its bits), else +0.0. NumPy: maximum(0, x) at maximum's speed where it keeps
    the second operand on a tie (`maximum_keeps_second`); elsewhere (CuPy, float16) the tie
    is settled after maximum: where y equals x, y is x (only zeros are equal with other bits).
    Other arrays (meta, a sparse tensor's storage) take their own maximum(x, 0)."""
    if type(x) is _ndarray:
        if maximum_keeps_second(x.dtype):
            return np.maximum(0, x)
        y = np.maximum(x, 0)
        return np.where(y == x, x, y)
    if is_cupy_array(x):
        cp = cupy_module()
        y = cp.maximum(x, 0)
        return cp.where(y == x, x, y)
    return get_array_module(x).maximum(x, 0)


def random_permutation(rng, n: int):
    """A random permutation of range(n) as int64 from a NumPy or CuPy Generator (CuPy's
    Generator has no `permutation`: the order of n uniform draws gives one)."""
    if hasattr(rng, "permutation"):
        return rng.permutation(n).astype(np.int64)
    return rng.random(n).argsort().astype(np.int64)


def default_generator_seed() -> int:
    return int(np.random.SeedSequence().entropy % (2**63))


# ---------------------------------------------------------------------------------------------
# Fused GPU kernels (descent.kernels.cuda) and mixed-precision helpers

_fused_enabled = settings.FUSED  # DESCENT_FUSED (descent.settings)
_fused_broken: set[str] = set()
_fused_ready: set[tuple] = set()  # (name, dtype) pairs whose kernels compiled
_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))


def set_fused_enabled(enabled: bool) -> bool:
    """Turn the fused CUDA kernels on or off (for comparisons); returns the previous setting.

    The environment variable DESCENT_FUSED=0 turns them off from the start.
    """
    global _fused_enabled
    previous, _fused_enabled = _fused_enabled, bool(enabled)
    return previous


_kernels_cpu = None  # descent.kernels.cpu once `fused` has imported it


def _import_kernels_cpu():
    """descent.kernels.cpu (it loads numba: imported on first use), kept for `fused`, which
    eager ops call ~35 times a baby-gpt step: an import statement there cost 2.3 us a call
    against 0.8 with the module kept here."""
    global _kernels_cpu
    from .kernels import cpu as _kcpu

    _kernels_cpu = _kcpu
    return _kcpu


def fused(name: str, *arrays):
    """The fused CUDA kernel function `name` for these arrays, or None for the generic path.

    NumPy arrays get the CPU kernel of the same name from `descent.kernels.cpu` (numba, the
    `fast` extra) when it is installed and enabled, else None.

    None unless the first array is a CuPy array of float32 or float16 and every other floating
    array has that same dtype (mixed dtypes take the generic path, which promotes), fused
    kernels are enabled, and the kernel compiled. The function names and signatures are those
    of `descent.kernels.cuda`.
    """
    if not _fused_enabled or not arrays:
        return None
    if type(arrays[0]) is np.ndarray:  # (a meta array, a subclass, goes on: no kernel)
        # CPU: numba kernels with the same names (descent.kernels.cpu), when installed.
        kcpu = _kernels_cpu or _import_kernels_cpu()
        return kcpu.kernel(name, arrays)
    if not is_cupy_array(arrays[0]):
        return None
    dt = arrays[0].dtype
    if dt not in _FUSED_DTYPES:
        return None
    for a in arrays[1:]:
        if a is not None and a.dtype.kind == "f" and a.dtype != dt:
            return None
    if name in _fused_broken:
        return None
    from .kernels import cuda as _kc  # only reached with CuPy arrays

    if name not in _kc.KERNELS:  # a CPU-only kernel (e.g. the weighted RMS norm): generic path
        return None
    key = (name, dt)
    if key not in _fused_ready:
        try:
            _kc.prepare(name, dt)  # compile once per (kernel, dtype); errors fall back below
        except Exception as e:  # NVRTC/driver errors have many types
            fused_failed(name, e)
            return None
        _fused_ready.add(key)
    return _kc.KERNELS[name]


def fused_failed(name: str, error: BaseException) -> None:
    """Record that kernel `name` failed to compile or launch: warn once, use the generic path."""
    import warnings

    if settings.FUSED_STRICT:  # DESCENT_FUSED_STRICT=1: the GPU test run wants the error
        raise error
    if name not in _fused_broken:
        _fused_broken.add(name)
        warnings.warn(
            f"descent: fused CUDA kernel {name!r} failed ({type(error).__name__}: {error}); "
            "falling back to the generic CuPy path",
            RuntimeWarning,
            stacklevel=3,
        )


def host_sum(values) -> float:
    """sum(values) as one Python float: device scalars are added on the device first, so a GPU
    pays one synchronisation instead of one per value."""
    values = list(values)
    if not values:
        return 0.0
    if is_cupy_array(values[0]):
        cp = cupy_module()
        return float(cp.stack([cp.asarray(v, dtype=cp.float64).reshape(()) for v in values]).sum())
    return float(sum(float(v) for v in values))


def all_finite(arrays) -> bool:
    """True when no array holds an inf or nan (one synchronisation on a GPU)."""
    flags = [get_array_module(a).isfinite(a).all() for a in arrays if a.size]
    if not flags:
        return True
    if is_cupy_array(flags[0]):
        return bool(cupy_module().stack(flags).all())
    return all(bool(f) for f in flags)


def bfloat16_dtype():
    """The bfloat16 dtype (from the ml_dtypes package), or None when it is not installed.

    NumPy has no bfloat16 of its own; CuPy 14 and later compute with ml_dtypes' bfloat16.
    """
    try:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    except ImportError:
        return None


# ---------------------------------------------------------------------------------------------
# Process-wide tuning: explicit, never a side effect of an op
#
# glibc malloc tuning. A training step allocates and frees the same large temporaries (MBs)
# every step; by default glibc serves each from fresh mmap'd pages or trims the freed heap top
# back to the OS, so every step page-faults its memory in again: ~4,000 minor faults and
# 10-15 ms of a 70 ms baby-gpt step (measured, 1 thread). Keeping blocks below 32 MiB on the
# heap and trimming only beyond 256 MiB of free top removes those faults; the peak resident
# size does not change (measured: 233 vs 234 MB over 200 steps).
#
# It changes malloc for the whole process, including every other library in it, so descent
# applies it only when asked: the programs that own their process call `tune_malloc()` (the
# `descent` CLI, the benchmarks), a user's own script may call it too, and
# DESCENT_MALLOC_TUNE=1 applies it at import, DESCENT_MALLOC_TUNE=0 never (docs/settings.md).
# Ops never call it.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc <malloc.h>
_malloc_tuned: bool | None = None  # None: not tried yet; then whether it was applied


def tune_malloc() -> bool:
    """Tune glibc's malloc for training loops, for the whole process; True when applied.

    Keeps freed blocks below 32 MiB on the heap (M_MMAP_THRESHOLD) and trims the heap only past
    256 MiB of free memory at its top (M_TRIM_THRESHOLD), so the temporaries a training step
    frees are reused by the next step instead of being page-faulted in again (10-15 ms of a
    70 ms baby-gpt step on one thread). Idempotent: tried once per process. Returns False where
    it does nothing: DESCENT_MALLOC_TUNE=0, or a C library without `mallopt` (macOS, Windows,
    musl).
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    if settings.MALLOC_TUNE == "0":
        return False
    _malloc_tuned = False  # try once
    try:
        import ctypes  # here: only a process that asks for the tuning loads it
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    _malloc_tuned = (mallopt(_M_TRIM_THRESHOLD, 256 << 20) == 1) and ok
    return _malloc_tuned


def malloc_tuned() -> bool:
    """True when `tune_malloc()` has applied the tuning in this process."""
    return bool(_malloc_tuned)


if settings.MALLOC_TUNE == "1":  # the user asked for it for every process that imports descent
    tune_malloc()
