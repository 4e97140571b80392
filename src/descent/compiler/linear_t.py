"""Linear's forward on replay as y^T = W @ x^T: OpenBLAS's NN product instead of eager's NT.

Eager computes y = x @ W.T (+ b). NumPy hands OpenBLAS 0.3.31 W.T as a transposed operand, and
with the SkylakeX kernels it picks on this AVX-512 host (Zen 4) that product runs slower than
the NN product on the same numbers: the MLP's 784 -> 256 at 128 rows, pinned, hot, 572 us for
x @ W.T against 496 for W @ xT (xT a C-contiguous copy of x.T), 256 -> 256 190 against 164,
256 -> 10 15 against 7. Copying W instead (session 15, docs/compile.md) costs what it saves,
since W is cold after the optimizer's update; x is smaller and, between two Linear layers,
free: the replay keeps the layer's output in the transposed layout (its "twin") and the next
Linear reads that.

So a replayed Linear site in this mode runs:

  xT  = x^T: the previous site's twin; else x.T itself, a transposed operand OpenBLAS packs
        (where that gives the bits too: x is cold in a step, and the product hides its read
        better than a copy does); else OpenBLAS's `?omatcopy` of x (~0.16 ns an element hot)
  yT  = W @ xT                  (NN, into a pool buffer, (out, M))
  yT += b (and ReLU's select)   (the same IEEE add and select per element as eager's y += b and
                                 maximum(0, y), in yT's layout: one numba pass over rows)
  y   = yT^T                    (`?omatcopy` again: the C-order output the backward reads)

The values are eager's as long as W @ xT sums each dot product in the order x @ W.T does. On
the shapes measured they do (same K blocking; the transposition only changes how OpenBLAS
packs its panels), but OpenBLAS does not promise it for every shape and kernel family (session
15 found 8 x 64 x 32 differ with the SkylakeX kernels), so `same_bits` checks each
(M, in, out, dtype, x.T or its copy) once per process on random values and the site's own
arrays, and a site whose check fails runs eager's NT product. A site without a twin also
times its path against eager's on its first replays (`Site`): at two threads the NT product
can win there. (With OPENBLAS_CORETYPE=Haswell no float32 shape
tried passes, float64 ones do; with the SkylakeX kernels the MLP's three layers pass, and
small shapes such as 16 x 48 -> 40 do not.) `?omatcopy` with alpha 1 copies values (x * 1.0);
it is applied to x (whose product then has eager's bits) and to results of arithmetic (never a
signalling NaN), so the bits it writes are its input's.
"""

from __future__ import annotations

import numpy as np

from .. import blas
from . import fusion

_f32, _f64 = np.dtype(np.float32), np.dtype(np.float64)
_OMAT: dict = {}  # dtype -> OpenBLAS's ?omatcopy (ctypes) or None
_SAME: dict = {}  # (M, in, out, dtype, view) -> W @ xT gives x @ W.T's bits on random values
MIN_WORK = 1 << 15  # M * in * out below it: the copies' calls cost more than NN saves


def omatcopy(dtype):
    """OpenBLAS's `cblas_somatcopy` / `cblas_domatcopy` from the library NumPy loaded (found in
    /proc/self/maps; the wheels prefix it `scipy_`), or None."""
    dtype = np.dtype(dtype)
    if dtype in _OMAT:
        return _OMAT[dtype]
    fn = None
    if dtype in (_f32, _f64):
        letter = "s" if dtype == _f32 else "d"
        try:
            import ctypes  # noqa: PLC0415 - only a replay that plans a Linear loads it

            with open("/proc/self/maps") as f:
                paths = sorted({ln.split()[-1] for ln in f
                                if "openblas" in ln.lower() and "/" in ln})  # fmt: skip
            for path in paths:
                lib = ctypes.CDLL(path)
                for name, wide in ((f"scipy_cblas_{letter}omatcopy64_", True),
                                   (f"cblas_{letter}omatcopy64_", True),
                                   (f"scipy_cblas_{letter}omatcopy", False),
                                   (f"cblas_{letter}omatcopy", False)):  # fmt: skip
                    sym = getattr(lib, name, None)
                    if sym is None:
                        continue
                    n = ctypes.c_int64 if wide else ctypes.c_int
                    real = ctypes.c_float if dtype == _f32 else ctypes.c_double
                    sym.restype = None
                    sym.argtypes = [ctypes.c_int, ctypes.c_int, n, n, real, ctypes.c_void_p, n,
                                    ctypes.c_void_p, n]  # fmt: skip
                    fn = sym
                    break
                if fn is not None:
                    break
        except (OSError, AttributeError, ValueError):
            fn = None
    _OMAT[dtype] = fn
    return fn


def transpose_into(a, out, omat) -> None:
    """out (c, r) = a.T for C-contiguous a (r, c) and out: ?omatcopy, row major, transposed,
    alpha 1."""
    r, c = a.shape
    omat(101, 112, r, c, 1.0, a.ctypes.data, c, out.ctypes.data, r)


def _nn_equal(x2, w, view: bool = False) -> bool:
    with np.errstate(all="ignore"):  # the site's own product warns (or not) when it runs
        nt = x2 @ w.T
        nn = w @ (x2.T if view else np.ascontiguousarray(x2.T))
    view = np.int32 if w.dtype == _f32 else np.int64
    return bool(np.array_equal(nt.view(view), np.ascontiguousarray(nn.T).view(view)))


def same_bits(x2, w, view: bool = False) -> bool:
    """Whether W @ x2^T (x2^T a C-contiguous copy, or with `view` x2.T itself, which OpenBLAS
    reads as a transposed operand) gives x2 @ W.T's bits: on random values of these shapes
    (once per process) and on these arrays."""
    key = (x2.shape[0], w.shape[1], w.shape[0], w.dtype, view)
    ok = _SAME.get(key)
    if ok is None:
        rng = np.random.default_rng(17)
        rx = rng.standard_normal(x2.shape).astype(w.dtype)
        rw = rng.standard_normal(w.shape).astype(w.dtype)
        ok = _SAME[key] = _nn_equal(rx, rw, view)
    return ok and _nn_equal(x2, w, view)


def _kernels_py(omat, one):
    """The numba kernels of a dtype: its ?omatcopy called from compiled code (a ctypes call
    from Python costs ~3.5 us: the pointers' `.ctypes.data` and the argument conversions)."""

    def transpose(a, out):  # pragma: no cover - compiled
        r, c = a.shape
        omat(101, 112, r, c, one, a.ctypes.data, c, out.ctypes.data, r)

    def bias_relu_t(yt, b, y):  # pragma: no cover - compiled
        n, m = yt.shape
        for j in range(n):
            bj = b[j]
            for i in range(m):
                t = yt[j, i] + bj
                yt[j, i] = 0 if t < 0 else t
        omat(101, 112, n, m, one, yt.ctypes.data, m, y.ctypes.data, n)

    def bias_t(yt, b, y):  # pragma: no cover - compiled
        n, m = yt.shape
        for j in range(n):
            bj = b[j]
            for i in range(m):
                yt[j, i] = yt[j, i] + bj
        omat(101, 112, n, m, one, yt.ctypes.data, m, y.ctypes.data, n)

    return transpose, bias_relu_t, bias_t


_KERNELS: dict = {}  # dtype -> (transpose, bias_relu_t, bias_t) compiled, or None


def kernels(dtype):
    """(transpose(a, out): out = a.T; bias_relu_t(yT, b, y): yT = relu(yT + b[:, None]) in
    place (fusion.bias_relu_kernel's add and select, in the transposed layout), then y = yT.T;
    bias_t(yT, b, y): the same without the ReLU) for float32/float64, or None without numba or
    ?omatcopy."""
    dtype = np.dtype(dtype)
    if dtype not in _KERNELS:
        ks = None
        omat = omatcopy(dtype)
        if omat is not None and fusion._HAVE_NUMBA:
            import numba  # noqa: PLC0415

            one = np.float32(1.0) if dtype == _f32 else np.float64(1.0)
            ks = tuple(numba.njit(nogil=True, error_model="numpy")(f)
                       for f in _kernels_py(omat, one))  # fmt: skip
        _KERNELS[dtype] = ks
    return _KERNELS[dtype]


class Site:
    """One Linear site replayed in the transposed layout (see the module docstring)."""

    TRIALS = 5  # timed replays of each path where x has no twin

    __slots__ = ("transpose", "finish", "n", "k", "m", "dtype", "has_b", "copy_ok", "times",
                 "view")  # fmt: skip

    def __init__(self, ks, w, m: int, relu: bool, has_b: bool, view: bool = False) -> None:
        self.transpose = ks[0]
        self.finish = ks[1] if relu else ks[2]
        self.n, self.k = w.shape
        self.m = m
        self.dtype = w.dtype
        self.has_b = has_b  # without a bias (and so without ReLU: `plan`) y is yT's copy
        # Without a twin, reading or copying x may cost more than the NN product saves
        # (LeNet's 400 -> 120 at 64 rows: 117 us eager's way, 120 with the copy, in the step;
        # the MLP's first layer at two threads: 328 against 341): the first
        # replays time both paths in turn, in the step, and the faster minimum is kept; they
        # start once the program's ThreadPlan has chosen (its trials alternate one thread and
        # every core: at two threads those first calls took 8-370 ms and chose at random).
        self.copy_ok: bool | None = None if self.TRIALS else True  # None: timing
        self.times: tuple = ([], [])  # (this path without a twin, eager's product)
        # Without a twin, W @ x.T (OpenBLAS packs the transposed operand itself) where it
        # gives the bits, instead of copying x: in the MLP step, pinned, 681 us median (565
        # min) against 736 (581) for the copy and W @ xT, alternating in one process (x is
        # cold there: the copy's median 104 us against ~16 hot).
        self.view = view

    def copies(self) -> bool:
        """Whether this call, without a twin of x, runs transposed (x.T or its copy)."""
        ok = self.copy_ok
        if ok is not None:
            return ok
        mine, eager = self.times
        return len(mine) <= len(eager)

    def timed(self, transposed: bool, seconds: float) -> None:
        """One timed call of a path while `copy_ok` is undecided."""
        if self.copy_ok is None:
            mine, eager = self.times
            (mine if transposed else eager).append(seconds)
            if min(len(mine), len(eager)) >= self.TRIALS:
                self.copy_ok = min(mine) < min(eager)

    def run(self, x2, w, b, xt, pool):
        """(y, yT) for x2 (M, in) C-contiguous, xT its transposed twin or None."""
        n, m = self.n, self.m
        if xt is None:
            if self.view:
                xt = x2.T
            else:
                xt = pool.get((self.k, m), self.dtype)
                self.transpose(x2, xt)
        yt = blas.matmul(w, xt, out=pool.get((n, m), self.dtype))
        xt = None
        y = pool.get((m, n), self.dtype)
        if self.has_b:
            self.finish(yt, b, y)
        else:
            self.transpose(yt, y)
        return y, yt


def plan(x, w, b, relu: bool, pool):
    """A `Site` for this Linear (relu: its ReLU computed too), or None where the transposed
    path does not apply or does not give eager's bits."""
    if pool is None or type(x) is not np.ndarray or type(w) is not np.ndarray:
        return None
    if blas.blas() != "openblas":  # MKL runs x @ W.T as fast as W @ xT: eager's product
        return None
    dt = w.dtype
    if dt not in (_f32, _f64) or x.dtype != dt or w.ndim != 2 or x.ndim < 1:
        return None
    n, k = w.shape
    if x.shape[-1] != k or not x.flags.c_contiguous or not w.flags.c_contiguous:
        return None
    m = x.size // k if k else 0
    if not m or not n or m * n * k < MIN_WORK:
        return None
    if b is not None and (type(b) is not np.ndarray or b.dtype != dt or b.shape != (n,)):
        return None
    if relu and b is None:
        return None
    ks = kernels(dt)
    x2 = x.reshape(m, k)
    if ks is None or not same_bits(x2, w):
        return None
    return Site(ks, w, m, relu, b is not None, same_bits(x2, w, True))
