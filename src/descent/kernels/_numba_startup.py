"""numba's start-up cost in a process that only loads descent's cached kernels.

A process's first kernel call used to cost about a second of CPU before any arithmetic (every
`descent train`, MPI rank, DataLoader worker and subprocess test pays it once):

* numba's `Cache.load_overload` runs `target_context.refresh()` before loading machine code
  from the on-disk cache. The refresh imports and registers numba's whole library of typing
  and lowering implementations (numba.cpython.*, numba.np.*, numba.typed, ...: about 200
  modules), which only *compiling* needs: a cached kernel is machine code plus a pickled
  environment. Of the refresh, loading needs only the runtime's (NRT's) symbols
  (`rtsys.initialize`). `install()` makes the cache load of a CPU kernel (njit's
  `FunctionCache`) defined in descent's own modules do just that; numba's compiler still
  refreshes the contexts itself before any compilation (`CompilerBase.__init__`), so a cache
  miss, a new signature, a CUDA cache or any other library's function behaves as before.
  Should the quick load raise, numba's own path (refresh, then load) runs instead. All 233
  cached signatures of descent's kernels on the development machine load this way in one
  fresh process (notes/s25/h176/load_all.py), with the refresh never run.
* `numba.np.arraymath`, imported by that refresh, probes for BLAS at import time
  (`_HAVE_BLAS = _check_blas()`) by importing `scipy.linalg.cython_blas`, which imports all of
  `scipy.linalg` (about 0.3 s of CPU where SciPy is installed; numba's kernels here never call
  BLAS). `install()` answers that one probe by finding the extension module's file instead of
  importing it: the same True/False where SciPy is installed or absent. Every later BLAS
  check (numba typing `np.dot` and friends inside a compiled function) is numba's own and
  imports SciPy as before.

Same machine code, same results: only what is imported, and when, changes.
tests/test_startup.py checks, in a fresh process, that a first kernel call imports neither
numba's implementation registry nor scipy.linalg and gives the same bits, and that a later
compilation's BLAS probe imports no scipy.linalg and answers as numba's would.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys

_MARK = "_descent_quick_load"
_ARRAYMATH = "numba.np.arraymath"


def install() -> bool:
    """Install both start-up savings (once). True when the quick cache load is installed;
    nothing at all without numba."""
    if not _install_quick_load():
        return False
    _install_blas_probe()
    return True


# ---------------------------------------------------------------------------------------------
# Quick cache load: only the runtime's symbols, no registry refresh.


def _is_descent_function(py_func) -> bool:
    module = getattr(py_func, "__module__", None) or ""
    return module == "descent" or module.startswith("descent.")


def _install_quick_load() -> bool:
    try:
        from numba.core import caching  # noqa: PLC0415 - only where numba is used
        from numba.core.runtime import rtsys  # noqa: PLC0415
    except ImportError:
        return False
    cls = getattr(caching, "Cache", None)
    cpu_cache = getattr(caching, "FunctionCache", None)  # njit's (CPU) cache; CUDA has its own
    load = getattr(cls, "load_overload", None)
    if not callable(load) or not callable(getattr(cls, "_load_overload", None)):
        return False  # numba's class has changed: leave it alone
    if getattr(load, _MARK, False):
        return True

    def load_overload(self, sig, target_context):
        if type(self) is not cpu_cache or not _is_descent_function(getattr(self, "_py_func", None)):
            return load(self, sig, target_context)
        try:
            rtsys.initialize(target_context)  # the runtime's symbols: all machine code needs
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)
        except Exception:  # noqa: BLE001 - numba's own path (refresh, then load) decides
            return load(self, sig, target_context)

    load_overload.__doc__, load_overload.__wrapped__ = load.__doc__, load
    setattr(load_overload, _MARK, True)
    cls.load_overload = load_overload
    return True


# ---------------------------------------------------------------------------------------------
# numba.np.arraymath's import-time BLAS probe, answered without importing scipy.linalg.


def _scipy_blas_present() -> bool:
    """True when scipy.linalg.cython_blas can be found (without importing scipy.linalg)."""
    if "scipy.linalg.cython_blas" in sys.modules:
        return True
    scipy = sys.modules.get("scipy")  # numba's own import checked SciPy's version
    if scipy is None:
        if importlib.util.find_spec("scipy") is None:
            return False
        import scipy  # noqa: PLC0415 - cheap: the package only (numba imports it anyway)
    for folder in getattr(scipy, "__path__", ()):
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            if os.path.isfile(os.path.join(folder, "linalg", "cython_blas" + suffix)):
                return True
    return False


def _probe_blas():
    """Stands in for numba.np.linalg.ensure_blas while numba.np.arraymath is imported."""
    if not _scipy_blas_present():
        raise ImportError("scipy 0.16+ is required for linear algebra")


class _ArraymathLoader:
    """Runs numba.np.arraymath's module code with `ensure_blas` answered by `_probe_blas`,
    then puts numba's function back (in numba.np.linalg and in arraymath's namespace)."""

    def __init__(self, inner):
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        import numba.np.linalg as linalg  # noqa: PLC0415 - arraymath's first numba.np import

        real = linalg.ensure_blas
        linalg.ensure_blas = _probe_blas
        try:
            self.inner.exec_module(module)
        finally:
            linalg.ensure_blas = real
            if getattr(module, "ensure_blas", None) is _probe_blas:
                module.ensure_blas = real
            module.__loader__ = self.inner
            if module.__spec__ is not None:
                module.__spec__.loader = self.inner


class _ArraymathFinder:
    """A one-shot meta-path finder: wraps numba.np.arraymath's loader, then removes itself."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != _ARRAYMATH:
            return None
        _remove_finder()
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _ArraymathLoader(spec.loader)
        return spec


def _remove_finder():
    try:
        sys.meta_path.remove(_ArraymathFinder)
    except ValueError:
        pass


def _install_blas_probe() -> bool:
    """Put the finder in front of sys.meta_path unless arraymath is already imported."""
    if _ARRAYMATH in sys.modules:
        return False
    if _ArraymathFinder not in sys.meta_path:
        sys.meta_path.insert(0, _ArraymathFinder)
    return True
