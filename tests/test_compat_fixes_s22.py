"""Fixes found while writing session 22's compat programs (tests/compat/programs, helper-158),
each differential against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import pytest

import descent

torch = pytest.importorskip("torch")

SOFTMAX_CALLS = {
    "F.softmax": lambda m, x: m.nn.functional.softmax(x, 1),
    "F.log_softmax": lambda m, x: m.nn.functional.log_softmax(x, 1),
    "F.softmin": lambda m, x: m.nn.functional.softmin(x, 1),
    "torch.softmax": lambda m, x: m.softmax(x, 1),
    "torch.log_softmax": lambda m, x: m.log_softmax(x, 1),
    "Tensor.softmax": lambda m, x: x.softmax(1),
    "Tensor.log_softmax": lambda m, x: x.log_softmax(-1),
}


# The edge probe beside the session's programs: PyTorch has no integer softmax kernel and raises
# NotImplementedError ('"softmax_lastdim_kernel_impl" not implemented for 'Long''); descent raised
# its DescentError (a RuntimeError and ValueError), which `except NotImplementedError` misses.
@pytest.mark.parametrize("dt", ["int64", "int32", "uint8", "bool"])
@pytest.mark.parametrize("call", list(SOFTMAX_CALLS))
def test_softmax_of_integers_raises_not_implemented(call, dt):
    fn = SOFTMAX_CALLS[call]
    with pytest.raises(RuntimeError) as theirs:
        fn(torch, torch.tensor([[1, 0], [0, 1]]).to(getattr(torch, dt)))
    # softmin of bools is softmax(-x), whose negation PyTorch refuses first (a RuntimeError)
    expected = NotImplementedError if call != "F.softmin" or dt != "bool" else RuntimeError
    assert isinstance(theirs.value, expected)
    with pytest.raises(expected):
        fn(descent, descent.tensor([[1, 0], [0, 1]]).to(getattr(descent, dt)))
    # with dtype= both compute
    x = descent.tensor([[1, 2], [3, 5]])
    t = torch.tensor([[1, 2], [3, 5]])
    ours = descent.softmax(x, 1, dtype=descent.float32).flatten().tolist()
    theirs = torch.softmax(t, 1, dtype=torch.float32).flatten().tolist()
    assert ours == pytest.approx(theirs, rel=1e-6)
