"""Shared test fixtures: the `xp` array-module fixture and the tolerance table.

`tests/` is on sys.path (pytest's rootdir insertion, made explicit here), so test modules import
the op table as `from specs import all_specs`.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from descent import backend  # noqa: E402

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


def _xp_params():
    params = [pytest.param(np, id="numpy")]
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
