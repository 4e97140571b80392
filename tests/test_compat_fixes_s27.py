"""Differences session 27's real-program probes found (helper-196, tests/compat/programs and
/work/notes/s27/h196/probe*.py): each test runs the PyTorch line and the descent line side by
side and fails on the old behaviour."""

from __future__ import annotations

import pytest

import descent

torch = pytest.importorskip("torch")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (("float32", [3.0, 1.0]), ("float64", [3.0, 1.0])),
        (("float32", [3.0, 1.0]), ("int64", [3, 1])),
        (("int32", [3, 1]), ("int64", [3, 1])),
    ],
)
def test_allclose_of_two_dtypes_raises_as_torch(a, b):
    # PyTorch's allclose compares one dtype only ("Float did not match Double"), as its isclose
    # and Tensor.allclose; descent's function form compared the values and answered True
    def make(lib, spec):
        return lib.tensor(spec[1], dtype=getattr(lib, spec[0]))

    with pytest.raises(RuntimeError, match="did not match"):
        torch.allclose(make(torch, a), make(torch, b))
    with pytest.raises(RuntimeError, match="allclose: .* did not match"):
        descent.allclose(make(descent, a), make(descent, b))
    with pytest.raises(RuntimeError, match="did not match"):
        make(descent, a).allclose(make(descent, b))


def test_allclose_of_one_dtype_still_compares():
    for lib in (torch, descent):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64)
        assert lib.allclose(x, x + 1e-9) and not lib.allclose(x, x + 1e-3)
        assert lib.allclose(x.float(), x.float() + 1e-7)
    # a Python number against a tensor keeps descent's leniency (PyTorch wants a tensor): it is
    # read at the tensor's dtype, so a float64 tensor is compared at float64 (the number was
    # read as float32, where 1 + 1e-9 is 1.0 and compared equal)
    x = descent.tensor([1.0], dtype=descent.float64)
    assert not descent.allclose(x, 1.0 + 1e-9, rtol=0, atol=1e-12)
    assert descent.allclose(x, 1.0 + 1e-13, rtol=0, atol=1e-12)
