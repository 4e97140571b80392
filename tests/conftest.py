"""Shared test fixtures: the `xp` array-module fixture and the tolerance table.

`tests/` is on sys.path (pytest's rootdir insertion, made explicit here), so test modules import
the op table as `from specs import all_specs`.
"""

from __future__ import annotations

import os
import sys

# Under pytest-xdist (`make test` runs `-n 2`) each worker is its own process, and each would
# start as many BLAS/OpenMP threads (NumPy's OpenBLAS, torch) as the machine has cores: two
# workers on two cores would run four. Before NumPy or torch loads, a worker takes its share of
# the cores (an explicit OMP_NUM_THREADS/OPENBLAS_NUM_THREADS/MKL_NUM_THREADS is kept). numba's
# threads are left alone: descent.compile's thread plan times and chooses them itself.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, str(_share))
    if "numpy" in sys.modules:  # loaded before this file (a plugin): limit it at run time
        import threadpoolctl

        _BLAS_LIMIT = threadpoolctl.threadpool_limits(limits=_share, user_api="blas")

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from descent import backend, settings

# Per-dtype tolerances for comparisons against references (STYLE.md, "Explain").
TOLERANCES = {
    np.dtype(np.float64): {"atol": 1e-10, "rtol": 1e-7},
    np.dtype(np.float32): {"atol": 1e-6, "rtol": 1e-3},  # the PyTorch forward tolerance
    np.dtype(np.float16): {"atol": 1e-3, "rtol": 1e-2},
}
GRAD_TOLERANCES = {
    np.dtype(np.float64): {"atol": 1e-5, "rtol": 1e-3},  # vs central finite differences
    np.dtype(np.float32): {"atol": 1e-4, "rtol": 1e-3},  # vs PyTorch
}


# DESCENT_TEST_DEVICE selects what the `xp` fixture runs on: unset, NumPy always and CuPy where
# a GPU exists (skipped with the reason otherwise); 'cuda', NumPy and CuPy, and a missing GPU is
# an error instead of a skip (the GPU machine's run must not pass by skipping); 'cpu', NumPy only.
# (descent.settings declares and checks it, with every other DESCENT_* variable.)
try:
    TEST_DEVICE = settings.get("DESCENT_TEST_DEVICE")
except settings.SettingError as e:
    raise pytest.UsageError(str(e)) from None
if TEST_DEVICE == "cuda" and backend.cupy_module() is None:
    raise pytest.UsageError(
        "DESCENT_TEST_DEVICE=cuda, but CuPy cannot see a CUDA GPU (is cupy installed, and does "
        "`python -c 'import cupy; cupy.cuda.runtime.getDeviceCount()'` work?)"
    )


def _xp_params():
    params = [pytest.param(np, id="numpy")]
    if TEST_DEVICE == "cpu":
        return params
    cp = backend.cupy_module()
    params.append(
        pytest.param(cp, id="cupy")
        if cp is not None
        else pytest.param(None, id="cupy", marks=pytest.mark.skip(reason="no CUDA GPU / CuPy"))
    )
    return params


@pytest.fixture(params=_xp_params())
def xp(request):
    """The array module under test: NumPy always, CuPy where a GPU exists."""
    return request.param


@pytest.fixture(autouse=True)
def _grad_mode_is_restored():
    """Every test starts in grad mode and must leave it so."""
    from descent import autograd

    autograd._state.enabled = True
    yield
    assert autograd._state.enabled, "a test left grad mode disabled"
