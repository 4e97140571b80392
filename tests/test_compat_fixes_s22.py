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


INT_INPUT_CALLS = {
    "F.gelu": lambda m, x: m.nn.functional.gelu(x),
    "F.gelu_tanh": lambda m, x: m.nn.functional.gelu(x, approximate="tanh"),
    "nn.GELU": lambda m, x: m.nn.GELU()(x),
    "F.silu": lambda m, x: m.nn.functional.silu(x),
    "F.silu_inplace": lambda m, x: m.nn.functional.silu(x, inplace=True),
    "nn.SiLU": lambda m, x: m.nn.SiLU()(x),
    "F.elu": lambda m, x: m.nn.functional.elu(x),
    "F.elu_": lambda m, x: m.nn.functional.elu_(x),
    "nn.ELU": lambda m, x: m.nn.ELU()(x),
    "F.selu": lambda m, x: m.nn.functional.selu(x),
    "F.leaky_relu": lambda m, x: m.nn.functional.leaky_relu(x),
    "F.leaky_relu_": lambda m, x: m.nn.functional.leaky_relu_(x),
    "nn.LeakyReLU": lambda m, x: m.nn.LeakyReLU()(x),
    "F.hardswish": lambda m, x: m.nn.functional.hardswish(x),
    "F.hardswish_inplace": lambda m, x: m.nn.functional.hardswish(x, inplace=True),
    "nn.Hardswish": lambda m, x: m.nn.Hardswish()(x),
    "F.hardsigmoid": lambda m, x: m.nn.functional.hardsigmoid(x),
    "F.mish": lambda m, x: m.nn.functional.mish(x),
    "F.mish_inplace": lambda m, x: m.nn.functional.mish(x, inplace=True),
    "nn.Mish": lambda m, x: m.nn.Mish()(x),
    "F.softplus": lambda m, x: m.nn.functional.softplus(x),
    "nn.Softplus": lambda m, x: m.nn.Softplus()(x),
    "F.logsigmoid": lambda m, x: m.nn.functional.logsigmoid(x),
    "F.glu": lambda m, x: m.nn.functional.glu(x),
    "nn.GLU": lambda m, x: m.nn.GLU()(x),
    "F.max_pool1d": lambda m, x: m.nn.functional.max_pool1d(x.reshape(1, 1, 4), 2),
    "nn.MaxPool1d": lambda m, x: m.nn.MaxPool1d(2)(x.reshape(1, 1, 4)),
    "torch.bernoulli": lambda m, x: m.bernoulli(x),
    "Tensor.bernoulli": lambda m, x: x.bernoulli(),
}


# The edge probe's second round (helper-161, /work/notes/s22/h161/probe.py): PyTorch has only
# floating kernels for these and raises NotImplementedError ('"GeluKernelImpl" not implemented
# for 'Long''); descent computed them in float32 (max_pool1d in the integer dtype, bernoulli of
# 0/1 integers; the in-place forms raised a RuntimeError on the float32 -> int cast).
@pytest.mark.parametrize("dt", ["int64", "int32", "int8", "uint8", "bool"])
@pytest.mark.parametrize("call", list(INT_INPUT_CALLS))
def test_float_only_ops_refuse_integers_as_pytorch(call, dt):
    fn = INT_INPUT_CALLS[call]
    with pytest.raises(Exception) as theirs:
        fn(torch, torch.tensor([1, 0, 1, 1]).to(getattr(torch, dt)))
    with pytest.raises(type(theirs.value)) as ours:
        fn(descent, descent.tensor([1, 0, 1, 1]).to(getattr(descent, dt)))
    if isinstance(theirs.value, NotImplementedError):
        assert ".float()" in str(ours.value)
    # a float input still computes, with PyTorch's values
    got = fn(descent, descent.tensor([1.0, 0.0, 0.5, 0.25])).detach().flatten().tolist()
    want = fn(torch, torch.tensor([1.0, 0.0, 0.5, 0.25])).detach().flatten().tolist()
    if call.endswith("bernoulli"):  # random draws: 0/1 values only
        assert set(got) <= {0.0, 1.0}
    else:
        assert got == pytest.approx(want, rel=1e-6)


def test_max_pool1d_with_indices_of_integers_still_pools():
    # PyTorch's return_indices path (its max_pool2d kernel) takes integers: so does descent's
    x = [[[3, 1, 4, 1, 5, 9]]]
    v, i = descent.nn.functional.max_pool1d(descent.tensor(x), 2, return_indices=True)
    tv, ti = torch.nn.functional.max_pool1d(torch.tensor(x), 2, return_indices=True)
    assert v.tolist() == tv.tolist() and i.tolist() == ti.tolist()
