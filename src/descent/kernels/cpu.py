"""Fused CPU kernels (numba): one pass over memory where NumPy makes many.

NumPy evaluates an expression one operation at a time, each a full pass over memory with a
fresh temporary. GELU's exact form 0.5 x (1 + erf(x / sqrt 2)) takes about twenty such passes
in float32 (NumPy has no erf; `backend.erf` builds it from Abramowitz & Stegun 7.1.26), and its
derivative as many again. A numba kernel evaluates the whole expression per element in
registers, in ONE pass, and LLVM vectorises it: on the baby-gpt step GELU's forward and
backward drop from ~13 ms to ~0.5 ms per layer each (393k values), from 29% of the step's
CPU time to ~4%.

Optional: numba is the `fast` extra (`pip install 'descent[fast]'`). Ops never import this
module; they ask `backend.fused(name, *arrays)`, which returns these functions for NumPy arrays
of float32/float64 when numba is installed and the kernels are enabled, and None otherwise, so
the pure-NumPy path runs. `DESCENT_KERNELS=numpy` (environment) or `set_enabled(False)` turns
them off; the two paths agree to float32 rounding (tests/test_kernels_cpu.py compares them).

The names and signatures are those of `descent.kernels.cuda`'s table (`KERNELS`), so an op
wired for the GPU kernels gets the CPU ones for free. Each kernel compiles lazily on first use
and is cached on disk (`cache=True`): later processes load machine code instead of compiling.

Kernels run on one thread: a vectorised pass over a few hundred thousand values takes ~0.1 ms,
less than waking a thread pool costs, and on a shared 2-core machine a parallel (prange) loop
waits for its slowest thread (measured under load: 16 ms with prange vs 1.9 ms serial for the
same GELU). Set DESCENT_KERNEL_THREADS=N to compile them with prange over N threads instead.
"""

from __future__ import annotations

import importlib.util
import math
import os

import numpy as np

_MODE = os.environ.get("DESCENT_KERNELS", "auto").strip().lower()
if _MODE not in ("auto", "numba", "numpy"):
    raise ValueError(
        f"DESCENT_KERNELS={_MODE!r}: use 'numba' (compiled CPU kernels), 'numpy' (pure NumPy) "
        "or leave it unset (numba when installed)"
    )
_HAVE_NUMBA = importlib.util.find_spec("numba") is not None  # no import: numba loads lazily
if _MODE == "numba" and not _HAVE_NUMBA:
    raise ImportError(
        "DESCENT_KERNELS=numba but numba is not installed: pip install 'descent[fast]' "
        "(numba>=0.60), or unset DESCENT_KERNELS"
    )
_enabled = _HAVE_NUMBA and _MODE != "numpy"
_THREADS = int(os.environ.get("DESCENT_KERNEL_THREADS", "1") or 1)
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def available() -> bool:
    """True when numba is installed (the kernels can be used)."""
    return _HAVE_NUMBA


def enabled() -> bool:
    """True when ops use these kernels for NumPy arrays."""
    return _enabled


def set_enabled(flag: bool) -> bool:
    """Turn the CPU kernels on or off (tests, comparisons); returns the previous setting.

    Raises:
        ImportError: turning them on without numba installed.
    """
    global _enabled
    if flag and not _HAVE_NUMBA:
        raise ImportError("kernels.cpu.set_enabled(True): numba is not installed")
    previous, _enabled = _enabled, bool(flag)
    return previous


def kernel(name: str, arrays):
    """The kernel `name` for these NumPy arrays, or None (disabled, dtype, unknown name).

    Every floating array must share the first one's dtype, float32 or float64 (mixed dtypes
    take the generic path, which promotes).
    """
    if not _enabled:
        return None
    fn = KERNELS.get(name)
    if fn is None:
        return None
    dt = arrays[0].dtype
    if dt not in _DTYPES:
        return None
    for a in arrays[1:]:
        if a is not None and a.dtype.kind == "f" and a.dtype != dt:
            return None
    return fn


# ---------------------------------------------------------------------------------------------
# Compilation: lazily, once per kernel, cached on disk.

_compiled: dict[str, object] = {}


def _jit(name: str, pyfunc, fastmath=True):
    """numba.njit(pyfunc), compiled on first call (cache=True; parallel if threads > 1)."""
    fn = _compiled.get(name)
    if fn is None:
        import numba  # noqa: PLC0415 - imported on first kernel use only

        if _THREADS > 1:
            numba.set_num_threads(min(_THREADS, numba.config.NUMBA_NUM_THREADS))
        # error_model='numpy': a division by zero gives inf/NaN instead of raising, so the
        # loop has no branch and vectorises.
        fn = numba.njit(
            cache=True, fastmath=fastmath, parallel=_THREADS > 1, nogil=True,
            error_model="numpy",
        )(pyfunc)  # fmt: skip
        _compiled[name] = fn
    return fn


def _prange():
    if _THREADS > 1:
        import numba  # noqa: PLC0415

        return numba.prange
    return range


def _flat(a):
    """A contiguous 1-D view (or copy) of `a`."""
    return np.ascontiguousarray(a).reshape(-1)


# ---------------------------------------------------------------------------------------------
# GELU, exact form (Hendrycks & Gimpel, 2016): y = x Phi(x), dy/dx = Phi(x) + x phi(x),
# Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
#
# float32: erfc(|z|) = poly(t) exp(-z^2), t = 1 / (1 + p |z|), z = x / sqrt 2 (Abramowitz &
# Stegun 7.1.26, |error| < 1.5e-7; the formula of the NumPy path, `backend.erf`). Phi is taken
# from erfc directly, Phi = erfc(|z|)/2 for x < 0 and 1 - erfc(|z|)/2 for x >= 0, so the
# negative tail keeps its relative accuracy (no 1 + erf cancellation). exp(-z^2) = exp(-x^2/2)
# is ALSO the density's exponential: computed once by NumPy's vectorised exp (libm's scalar
# expf inside the loop would stop LLVM vectorising it), then one branch-free, vectorised pass
# (AVX2/AVX-512) does the rest. float64: math.erf and math.exp (libm, as the NumPy float64 path)
# with strict IEEE semantics, for gradient checks.

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)
# Fast-math flags that allow vectorisation but keep NaN and inf semantics (no 'nnan'/'ninf':
# a NaN must come out of GELU as NaN for anomaly detection).
_FAST = {"contract", "arcp", "nsz", "afn"}


def _make_gelu(backward: bool, exact: bool):
    rng = _prange()
    inv_sqrt2, inv_sqrt_2pi = _INV_SQRT2, _INV_SQRT_2PI

    if exact:  # float64

        def gelu64(x, gy, out):
            for i in rng(x.size):
                v = x[i]
                cdf = 0.5 * (1.0 + math.erf(v * inv_sqrt2))
                if backward:
                    out[i] = gy[i] * (cdf + v * (math.exp(-0.5 * v * v) * inv_sqrt_2pi))
                else:
                    out[i] = v * cdf

        return gelu64

    f = np.float32
    p_ = f(_AS_P)
    a1, a2, a3, a4, a5 = (f(c) for c in _AS_A)
    one, half, zero = f(1.0), f(0.5), f(0.0)
    isq2, isq2pi = f(inv_sqrt2), f(inv_sqrt_2pi)

    def gelu32(x, gy, out):
        # out holds e = exp(-x^2/2) on entry (one buffer: a separate e that aliased out would
        # fail LLVM's runtime alias check and run the scalar loop, 10x slower).
        for i in rng(x.size):
            v = x[i]
            e = out[i]
            t = one / (one + p_ * abs(v * isq2))
            tail = half * (((((a5 * t + a4) * t + a3) * t + a2) * t + a1) * t) * e  # erfc/2
            cdf = tail if v < zero else one - tail
            if backward:
                out[i] = gy[i] * (cdf + v * (e * isq2pi))
            else:
                out[i] = v * cdf

    return gelu32


def _gelu_fn(backward: bool, dtype):
    exact = dtype == np.float64
    name = f"gelu_{'bwd' if backward else 'fwd'}_{'f64' if exact else 'f32'}"
    fn = _compiled.get(name)
    if fn is None:
        fn = _jit(name, _make_gelu(backward, exact), fastmath=False if exact else _FAST)
    return fn


def _gauss_exp(xf, out):
    """exp(-x^2 / 2) into `out` (float32), by NumPy's vectorised exp."""
    np.multiply(xf, xf, out=out)
    out *= np.float32(-0.5)
    return np.exp(out, out=out)


def _gelu(x, gy):
    xf = _flat(x)
    out = np.empty_like(xf)
    if xf.size:
        backward = gy is not None
        gf = _flat(np.broadcast_to(gy, x.shape).astype(x.dtype, copy=False)) if backward else xf
        if xf.dtype == np.float32:
            _gauss_exp(xf, out)  # the kernel reads out[i] = exp(-x^2/2) before writing it
        _gelu_fn(backward, xf.dtype)(xf, gf, out)
    return out.reshape(x.shape)


def gelu_forward(x):
    """y = x Phi(x) = x/2 (1 + erf(x / sqrt 2))."""
    return _gelu(x, None)


def gelu_backward(x, gy):
    """gx = gy (Phi(x) + x phi(x)) (x is the saved input)."""
    return _gelu(x, gy)


KERNELS = {
    "gelu_forward": gelu_forward,
    "gelu_backward": gelu_backward,
}
