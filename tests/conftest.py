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


# torch.manual_seed (the oracle's; PyTorch's OpInfo samples call it once per sample, the harnesses
# once more) seeds every device: on a machine without CUDA/XPU/MTIA it queues each device's seed
# for a later initialisation with `traceback.format_stack()` for the error message, three stack
# walks that read every frame's source line: 1.2-2.2 ms per call at a test's stack depth (40-80
# frames) against 0.001 ms for the CPU generator's own manual_seed, 37% of a float16 max_pool2d
# OpInfo test (5,764 calls; profile in notes/s18h126). Where torch has no device besides the CPU
# (no CUDA, MPS, XPU, MTIA or custom backend), those queued seeds can never be used: the seed goes
# to the CPU generator only, which is all torch.manual_seed changes there (same streams, same
# returned generator). Anywhere else torch's function is left as it is.
_TORCH_SEED_CHECKED = False


def _seed_the_cpu_generator_only():
    global _TORCH_SEED_CHECKED
    random_mod = sys.modules.get("torch.random")
    if _TORCH_SEED_CHECKED or random_mod is None or "torch" not in sys.modules:
        return
    _TORCH_SEED_CHECKED = True
    torch = sys.modules["torch"]
    try:
        other_device = (
            torch.cuda.is_available()
            or torch._C._has_mps
            or torch.xpu.device_count() > 0
            or torch.mtia._is_compiled()
            or hasattr(torch, torch._C._get_privateuse1_backend_name())
        )
    except Exception:  # noqa: BLE001 - an unfamiliar torch: keep its own function
        other_device = True
    if other_device or not callable(getattr(random_mod, "_manual_seed_impl", None)):
        return

    def cpu_manual_seed(seed):
        return torch.default_generator.manual_seed(int(seed))

    random_mod._manual_seed_impl = cpu_manual_seed


def pytest_runtest_setup(item):
    """(Before each test, once torch is loaded: see `_seed_the_cpu_generator_only`.)"""
    _seed_the_cpu_generator_only()


def pytest_collectstart(collector):
    """(Before each module is collected, once an earlier one has loaded torch: test_opinfo's
    collection makes every operator's error inputs, 880 torch.manual_seed calls.)"""
    _seed_the_cpu_generator_only()
