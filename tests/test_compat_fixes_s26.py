"""Differences session 26's real programs found (helper-188, tests/compat/programs): each test
runs the PyTorch line and the descent line side by side and fails on the old behaviour."""

from __future__ import annotations

import pytest

import descent

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["float16", "float32", "float64", "complex64"])
def test_finfo_prints_as_torch(name):
    # PyTorch prints the limits with C's %g and lists smallest_normal; descent printed full
    # Python reprs without it
    assert repr(descent.finfo(getattr(descent, name))) == repr(torch.finfo(getattr(torch, name)))


@pytest.mark.parametrize("name", ["int8", "uint8", "int16", "int32", "int64"])
def test_iinfo_is_torch_iinfo(name):
    # descent returned NumPy's iinfo: another repr, and dtype a NumPy dtype, not a str
    ours, theirs = descent.iinfo(getattr(descent, name)), torch.iinfo(getattr(torch, name))
    assert repr(ours) == repr(theirs)
    assert (ours.bits, ours.min, ours.max, ours.dtype) == (
        theirs.bits,
        theirs.min,
        theirs.max,
        theirs.dtype,
    )
    assert type(ours.max) is int and type(ours.dtype) is str


def _named_results(lib):
    A = lib.tensor([[2.0, 1.0], [1.0, 3.0]])
    return [
        lib.histogram(lib.tensor([3.0, 1.0, 2.0]), 2),
        lib.geqrf(A),
        lib.slogdet(A),
        lib.svd(A),
        A.qr(),
        lib.linalg.cholesky_ex(A),
        lib.linalg.inv_ex(A),
        lib.linalg.solve_ex(A, A),
        lib.linalg.ldl_factor(A),
        lib.linalg.ldl_factor_ex(A),
    ]


@pytest.mark.filterwarnings("ignore:torch.qr is deprecated")
def test_named_tuples_print_as_torch_return_types():
    # these printed as `LUFactorResult(LU=..., pivots=...)` (histogram: a bare pair), where
    # PyTorch prints `torch.return_types.linalg_lu_factor(\nLU=...,\npivots=...)`
    for ours, theirs in zip(_named_results(descent), _named_results(torch), strict=True):
        assert type(ours).__name__ == type(theirs).__name__
        assert repr(ours).replace("descent", "torch") == repr(theirs)
        assert ours._fields == tuple(f for f in ours._fields if hasattr(theirs, f))
