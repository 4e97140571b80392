"""Which BLAS runs descent's float32/float64 matrix products: NumPy's OpenBLAS, or Intel MKL.

NumPy's OpenBLAS is the default and needs nothing. MKL is opt-in (`pip install 'descent[mkl]'`,
then `descent.backends.set_blas("mkl")` or `DESCENT_BLAS=mkl`): on Intel CPUs with AVX-512 its
sgemm runs the baby-gpt step's products ~10% faster, and one batched call does attention's
per-head products in ~0.55x OpenBLAS's time (docs/compile.md, sessions 27 and 28).

Every product site of the hot paths (ops/linear.py, ops/attention.py, the convolutions of
ops/conv.py, ops/conv_nd.py and ops/conv_winograd.py, and descent.compile's replay of them)
calls `matmul(a, b, out)` here. With OpenBLAS it is `np.matmul`. With MKL:

* 2-D operands whose matrices each have one unit-stride axis -> one `cblas_?gemm` call, the
  transposes read from the strides (no copy);
* stacks of such matrices with the same batch shape (no broadcasting) -> one
  `cblas_?gemm_batch_strided` call where each operand's matrices are equally spaced, else one
  grouped `cblas_?gemm_batch` call over their addresses (attention's heads, (B, T, nh, hs)
  viewed as (B, nh, T, hs): the whole batch in one call);
* batches that broadcast (a convolution's weight against its images) -> the same calls over
  both operands viewed at the common batch shape (a broadcast axis has stride 0);
* anything else (1-D, mixed dtypes, complex, float16, a matrix without a unit-stride axis,
  sizes beyond 32-bit ints) -> `np.matmul` (OpenBLAS).

Eager and `descent.compile`'s replay call the same function, so they keep giving the same bits
under either BLAS. MKL is set up once, when first switched on:

* `libmkl_rt.so.*` is found in the `mkl` wheel's files (or under `sys.prefix/lib`) and opened by
  its absolute path (no LD_LIBRARY_PATH);
* its GNU OpenMP threading layer (libgomp, which numba's `omp` layer already uses: one OpenMP
  runtime in the process; the `tbb` wheel stays off numba's library path);
* `MKL_CBWR` AUTO,STRICT: the same bits at one thread and at two (MKL's default lets large-K
  products differ between thread counts); it cost ~2% of the baby-gpt step's products here
  (docs/compile.md, session 28);
* its thread count follows `descent.set_num_threads` (else descent's current count), and NumPy's
  OpenBLAS is held at one thread while MKL is on: an idle OpenBLAS worker spins on the other
  core for a while after each of its products and made MKL's two-thread products 1.6-1.9x
  slower beside it (docs/compile.md, session 27). Switching back restores OpenBLAS's threads.

This module sits at the bottom of the package (NumPy, ctypes, the standard library and
descent.settings; threadpoolctl when switching).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

import numpy as np

from . import settings

__all__ = ["blas", "is_mkl_available", "matmul", "set_blas"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_ROW, _N, _T = 101, 111, 112  # CBLAS_LAYOUT RowMajor, CBLAS_TRANSPOSE NoTrans / Trans
_INT_MAX = 2**31 - 1  # MKL's LP64 interface (libmkl_rt's default): 32-bit MKL_INT
_MKL_THREADING_GNU = 3  # MKL_Set_Threading_Layer's MKL_THREADING_GNU
_MKL_CBWR_AUTO_STRICT = 2 | 0x10000  # MKL_CBWR_AUTO | MKL_CBWR_STRICT
CBWR_STRICT = {"on": True}  # MKL_CBWR AUTO,STRICT at load (a switch for measuring its cost)

# The MKL functions, once loaded: {"lib", "gemm": {dtype: fn}, "batch": {dtype: fn}, "path"}.
_MKL: dict = {}
# _ACTIVE[0]: the gemm table while MKL does the products, else None (`matmul`'s one test).
_ACTIVE: list = [None]
_STATE = {"name": "openblas", "held": None}  # held: (OpenBLAS controller, its threads before)


class BlasError(RuntimeError):
    """MKL was asked for and cannot be used (not installed, or not loadable here)."""


# --------------------------------------------------------------------------- finding MKL


def _candidates() -> list[str]:
    """Where the `mkl` wheel's libmkl_rt may be: its recorded files first, then the prefixes'
    lib/ directories (a venv, conda, a user install)."""
    found = []
    try:
        from importlib import metadata  # noqa: PLC0415

        dist = metadata.distribution("mkl")
        for f in dist.files or ():
            if os.path.basename(str(f)).startswith("libmkl_rt.so"):
                found.append(str(dist.locate_file(f)))
    except Exception:  # noqa: BLE001 - not installed, or metadata unreadable: search below
        pass
    import site  # noqa: PLC0415

    user = getattr(site, "USER_BASE", None) or ""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, user)):
        d = os.path.join(prefix, "lib")
        if prefix and os.path.isdir(d):
            found += [
                os.path.join(d, n) for n in sorted(os.listdir(d)) if n.startswith("libmkl_rt.so")
            ]
    return [os.path.realpath(p) for p in dict.fromkeys(found) if os.path.isfile(p)]


def _fix() -> str:
    return (
        "install it with pip install 'descent[mkl]' (the `mkl` wheel: ~286 MB download, "
        "~900 MB installed, Intel Simplified Software License), or use "
        "descent.backends.set_blas('openblas') / unset DESCENT_BLAS for NumPy's OpenBLAS"
    )


def _load() -> dict:
    """Open libmkl_rt by path and set it up (threading layer, CBWR), once."""
    if _MKL:
        return _MKL
    paths = _candidates()
    if not paths:
        raise BlasError(f"descent's MKL backend: libmkl_rt.so was not found; {_fix()}")
    errors = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
            break
        except OSError as e:
            errors.append(f"{path}: {e}")
    else:
        raise BlasError(
            f"descent's MKL backend: libmkl_rt could not be loaded ({errors}); {_fix()}"
        )
    # Before any other MKL call: the GNU OpenMP layer, bits independent of the thread count.
    lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
    lib.MKL_Set_Threading_Layer(_MKL_THREADING_GNU)
    if CBWR_STRICT["on"]:
        lib.MKL_CBWR_Set.argtypes = [ctypes.c_int]
        lib.MKL_CBWR_Set(_MKL_CBWR_AUTO_STRICT)
    lib.MKL_Set_Num_Threads.argtypes = [ctypes.c_int]
    lib.MKL_Set_Num_Threads_Local.argtypes = [ctypes.c_int]
    lib.MKL_Set_Num_Threads_Local.restype = ctypes.c_int
    lib.MKL_Get_Max_Threads.restype = ctypes.c_int
    i, p = ctypes.c_int, ctypes.c_void_p
    gemm, batch, ptrs = {}, {}, {}
    for dt, scalar, name in ((_F32, ctypes.c_float, "s"), (_F64, ctypes.c_double, "d")):
        g = getattr(lib, f"cblas_{name}gemm")
        g.argtypes = [i, i, i, i, i, i, scalar, p, i, p, i, scalar, p, i]
        g.restype = None
        b = getattr(lib, f"cblas_{name}gemm_batch_strided")
        b.argtypes = [i, i, i, i, i, i, scalar, p, i, i, p, i, i, scalar, p, i, i, i]
        b.restype = None
        # the grouped call over pointer arrays: one group, any spacing of the matrices
        q = getattr(lib, f"cblas_{name}gemm_batch")
        q.argtypes = [i] + [p] * 13 + [i, p]
        q.restype = None
        gemm[dt], batch[dt], ptrs[dt] = g, b, q
    _MKL.update(lib=lib, gemm=gemm, batch=batch, ptrs=ptrs, path=path, callers={})
    return _MKL


def is_mkl_available() -> bool:
    """Whether the `mkl` wheel's libmkl_rt is installed where descent looks (does not load it)."""
    return bool(_MKL) or bool(_candidates())


def _intel_avx512() -> bool:
    """A GenuineIntel CPU with AVX-512F (where MKL's bits were measured equal to OpenBLAS's)."""
    if platform.system() != "Linux":
        return False
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read(1 << 16)
    except OSError:
        return False
    return "GenuineIntel" in text and " avx512f" in text


# --------------------------------------------------------------------------- switching


def _openblas_controllers():
    """threadpoolctl's controllers of the OpenBLAS libraries loaded now (NumPy's, SciPy's)."""
    import threadpoolctl  # noqa: PLC0415 - a core dependency, loaded when switching

    return [c for c in threadpoolctl.ThreadpoolController().lib_controllers
            if c.internal_api == "openblas"]  # fmt: skip


def _threads_wanted() -> int:
    from . import runtime  # noqa: PLC0415 - runtime is above this module

    return runtime.get_num_threads()


def _hold_openblas() -> None:
    if _STATE["held"] is None:
        _STATE["held"] = [(c, c.num_threads) for c in _openblas_controllers()]
    for c, _ in _STATE["held"]:
        c.set_num_threads(1)


def _release_openblas(threads: int | None) -> None:
    for c, before in _STATE["held"] or ():
        c.set_num_threads(threads or before)
    _STATE["held"] = None


def set_blas(name: str) -> None:
    """Use `name` for descent's float32/float64 matrix products: 'openblas' (NumPy's, the
    default), 'mkl' (needs `pip install 'descent[mkl]'`) or 'auto' (MKL where it is installed and
    the CPU is an Intel one with AVX-512, else OpenBLAS). Process-wide; eager ops and
    descent.compile's replays both follow it at their next call.

    Raises:
        ValueError: `name` is not one of the three.
        BlasError: 'mkl' and MKL is not installed or cannot be loaded (the message says how to
            install it).
    """
    key = str(name).strip().lower()
    if key not in ("openblas", "mkl", "auto"):
        raise ValueError(f"set_blas: {name!r} is not 'openblas', 'mkl' or 'auto'")
    if key == "auto":
        key = "mkl" if _intel_avx512() and is_mkl_available() else "openblas"
    if key == "mkl":
        mkl = _load()
        threads = _threads_wanted()
        mkl["lib"].MKL_Set_Num_Threads(int(threads))
        _hold_openblas()
        _ACTIVE[0] = mkl["gemm"]
    else:
        if _STATE["name"] == "mkl":
            _ACTIVE[0] = None
            from . import runtime  # noqa: PLC0415

            _release_openblas(runtime._state["threads"])
    _STATE["name"] = key


def blas() -> str:
    """The BLAS doing descent's matrix products now: 'openblas' or 'mkl'."""
    return _STATE["name"]


def mkl_threads() -> int | None:
    """MKL's threads while MKL does descent's products, else None (OpenBLAS's are
    threadpoolctl's to tell)."""
    if _ACTIVE[0] is not None:
        return int(_MKL["lib"].MKL_Get_Max_Threads())
    return None


def set_mkl_threads(n: int) -> int | None:
    """MKL's threads set to n while MKL does descent's products (the convolutions' two-thread
    split: each half's products at one thread, as OpenBLAS's there); returns the calling
    thread's count before, None (and nothing done) under OpenBLAS. Both MKL's process-wide
    count (what the split's worker thread reads) and the calling thread's own are set:
    threadpoolctl (descent.set_num_threads' limit on every BLAS) gives the calling thread its
    own count (MKL_Set_Num_Threads_Local), which wins over the process-wide one there (the
    split's first half ran its products at two MKL threads beside the worker's)."""
    if _ACTIVE[0] is None:
        return None
    lib = _MKL["lib"]
    before = int(lib.MKL_Get_Max_Threads())
    lib.MKL_Set_Num_Threads(int(n))
    lib.MKL_Set_Num_Threads_Local(int(n))
    return before


def threads_changed(n: int) -> None:
    """descent.set_num_threads(n) calls this: MKL's threads follow; OpenBLAS stays held at one
    (threadpoolctl's limit on every BLAS just raised it)."""
    if _ACTIVE[0] is not None:
        _MKL["lib"].MKL_Set_Num_Threads(int(n))
        _hold_openblas()


# --------------------------------------------------------------------------- the products


def matmul(a, b, out=None):
    """a @ b (np.matmul's meaning, `out` included) on the BLAS chosen by `set_blas`."""
    if _ACTIVE[0] is None:
        return np.matmul(a, b, out=out)
    return _mkl_matmul(a, b, out)


def _mkl_matmul(a, b, out):
    # one dtype (float32 or float64), NumPy arrays, matrices on both sides, same batch shape
    if type(a) is not np.ndarray or type(b) is not np.ndarray:
        return np.matmul(a, b, out=out)
    dt = a.dtype
    nd = a.ndim
    fn = _MKL["callers"].get((dt.char, nd))
    if fn is None or b.dtype != dt or b.ndim != nd:
        if dt.char not in "fd" or b.dtype != dt or nd < 2 or b.ndim < 2:
            return np.matmul(a, b, out=out)
        if b.ndim != nd:
            return _broadcast(a, b, out)
        fn = _caller(dt, nd)
    sa, sb = a.shape, b.shape
    if sa[-1] != sb[-2]:
        return np.matmul(a, b, out=out)  # NumPy's error
    if nd > 2 and sa[:-2] != sb[:-2]:
        return _broadcast(a, b, out)
    shape = sa[:-1] + sb[-1:]
    c = out
    if c is None:
        c = np.empty(shape, dt)
    elif type(out) is not np.ndarray or out.dtype != dt or out.shape != shape:
        return np.matmul(a, b, out=out)  # NumPy's casting, or its error for a wrong out
    elif np.may_share_memory(out, a) or np.may_share_memory(out, b):
        c = np.empty(shape, dt)  # an out that overlaps an operand: computed aside, then copied
    if c.size == 0:
        pass
    elif sa[-1] == 0:
        c.fill(0)
    elif fn(a, b, c):
        if c is out:  # out's layout does not fit one call: a fresh array's call, then copied
            c = np.empty(shape, dt)
            if fn(a, b, c):
                _peel(a, b, c, dt)
        else:
            _peel(a, b, c, dt)
    if c is not out and out is not None:
        np.copyto(out, c)
        return out
    return c


def _broadcast(a, b, out):
    """a @ b for batches that broadcast (a convolution's weight (G, K, M) against its images'
    (N, G, M, P)): both viewed at the common batch shape, a broadcast axis as stride 0 (MKL's
    strided batch call then reads the one matrix for every product; the grouped call its
    address), then one call as for equal batches."""
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        return np.matmul(a, b, out=out)  # NumPy's error
    if a.shape[-1] != b.shape[-2]:
        return np.matmul(a, b, out=out)
    a = np.broadcast_to(a, batch + a.shape[-2:])
    return _mkl_matmul(a, np.broadcast_to(b, batch + b.shape[-2:]), out)


def _peel(a, b, c, dt) -> None:
    """c[...] = a[...] @ b[...] (c C-contiguous) where one MKL call does not fit a and b: per
    index of the leading axis (batch axes that do not collapse to one stride), down to one
    matrix; NumPy's product for a matrix without a unit-stride axis."""
    if a.ndim == 2 or _caller(dt, a.ndim - 1)(a[0], b[0], c[0]):
        np.matmul(a, b, out=c)
        return
    for i in range(1, a.shape[0]):
        if _caller(dt, a.ndim - 1)(a[i], b[i], c[i]):
            _peel(a[i], b[i], c[i], dt)


def _caller(dt, ndim):
    """A numba function that makes MKL's ?gemm (one matrix), ?gemm_batch_strided (equally
    spaced matrices) or ?gemm_batch (any other spacing) call for `ndim`-D arrays of `dt`,
    reading layouts and leading dimensions from the strides; it returns 1 where they do not
    fit (a matrix without a unit-stride axis, a C whose rows are not unit-stride, 32-bit
    overflow), having done nothing. Compiled on first use (~0.4 s; not cacheable: it holds
    libmkl_rt's addresses). Through numba the whole dispatch costs ~1 us, where a ctypes call
    that builds three `ndarray.ctypes` addresses costs 5-10 us."""
    key = (dt.char, ndim)
    fn = _MKL["callers"].get(key)
    if fn is None:
        import numba  # noqa: PLC0415 - a core dependency; loaded with MKL only

        fns = _MKL["gemm"][dt], _MKL["batch"][dt], _MKL["ptrs"][dt]
        fn = _MKL["callers"][key] = _compile(numba, *fns, dt, ndim)
    return fn


def _compile(numba, gemm, batch, ptrs, dt, ndim):
    size = dt.itemsize
    one = dt.type
    big = _INT_MAX

    @numba.njit(inline="always")
    def mat(r, c, s0, s1):  # pragma: no cover - compiled
        """(trans, ld) of a row-major call reading a (r, c) matrix of these byte strides, or
        (0, 0) where neither axis has unit stride (or a stride is odd, negative, too big)."""
        if s0 % size or s1 % size or s0 < 0 or s1 < 0:
            return 0, 0
        s0 //= size
        s1 //= size
        if c <= 1 or s1 == 1:
            ld = s0 if r > 1 else max(c, 1)
            if max(c, 1) <= ld <= big:
                return _N, ld
        if r <= 1 or s0 == 1:
            ld = s1 if c > 1 else max(r, 1)
            if max(r, 1) <= ld <= big:
                return _T, ld
        return 0, 0

    @numba.njit(inline="always")
    def step(x):  # pragma: no cover - compiled
        """The element stride walking x's batch axes as one, 0 for one matrix, -1 if none."""
        st = -1
        expect = 0
        for j in range(x.ndim - 3, -1, -1):
            d = x.shape[j]
            if d == 1:
                continue
            s = x.strides[j]
            if s < 0 or s % size:
                return -1
            if st == -1:
                st = s
            elif s != expect:
                return -1
            expect = s * d
        if st == -1:
            return 0
        st //= size
        return st if st <= big else -1

    def call(a, b, c):  # pragma: no cover - compiled
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        if m > big or n > big or k > big:
            return 1
        ta, lda = mat(m, k, a.strides[-2], a.strides[-1])
        tb, ldb = mat(k, n, b.strides[-2], b.strides[-1])
        tc, ldc = mat(m, n, c.strides[-2], c.strides[-1])
        if ta == 0 or tb == 0 or tc != _N:
            return 1
        count = 1
        for j in range(a.ndim - 2):
            count *= a.shape[j]
        if count == 1:
            gemm(_ROW, ta, tb, m, n, k, 1.0, a.ctypes, lda, b.ctypes, ldb, 0.0, c.ctypes, ldc)
            return 0
        if count > big:
            return 1
        sa, sb, sc = step(a), step(b), step(c)
        if sa >= 0 and sb >= 0 and sc >= m * ldc:  # equally spaced (MKL: C's matrices apart)
            batch(_ROW, ta, tb, m, n, k, 1.0, a.ctypes, lda, sa, b.ctypes, ldb, sb, 0.0,
                  c.ctypes, ldc, sc, count)  # fmt: skip
            return 0
        # any other spacing (attention's heads as (B, T, nh, hs) viewed (B, nh, T, hs), an out
        # in another layout): one grouped call over the matrices' addresses
        pa = np.empty(count, np.intp)
        pb = np.empty(count, np.intp)
        pc = np.empty(count, np.intp)
        a0, b0, c0 = a.ctypes.data, b.ctypes.data, c.ctypes.data
        i = 0
        for idx in np.ndindex(a.shape[:-2]):
            oa = ob = oc = 0
            for j in range(len(idx)):
                oa += idx[j] * a.strides[j]
                ob += idx[j] * b.strides[j]
                oc += idx[j] * c.strides[j]
            pa[i], pb[i], pc[i] = a0 + oa, b0 + ob, c0 + oc
            i += 1
        ints = np.empty(8, np.int32)  # transa, transb, m, n, k, lda, ldb, ldc
        ints[0], ints[1], ints[2], ints[3], ints[4] = ta, tb, m, n, k
        ints[5], ints[6], ints[7] = lda, ldb, ldc
        group = np.full(1, count, np.int32)
        alpha = np.ones(1, one)
        beta = np.zeros(1, one)
        ptrs(_ROW, ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes, ints[3:].ctypes,
             ints[4:].ctypes, alpha.ctypes, pa.ctypes, ints[5:].ctypes, pb.ctypes,
             ints[6:].ctypes, beta.ctypes, pc.ctypes, ints[7:].ctypes, 1, group.ctypes)  # fmt: skip
        return 0

    # a and b typed read-only (writable arrays convert to it; read-only ones need it)
    arr = numba.types.Array(numba.from_dtype(dt), ndim, "A")
    ro = numba.types.Array(numba.from_dtype(dt), ndim, "A", readonly=True)
    return numba.njit(numba.intp(ro, ro, arr), nogil=True)(call)


def _from_setting() -> None:
    """Apply DESCENT_BLAS at import ('openblas' does nothing)."""
    choice = settings.BLAS
    if choice == "mkl":
        set_blas("mkl")
    elif choice == "auto" and _intel_avx512() and is_mkl_available():
        set_blas("mkl")


_from_setting()
