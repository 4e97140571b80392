"""Uniform sampling in float16/bfloat16 against PyTorch: samples lie in [0, 1), with PyTorch's
distribution (a float32 sample rounded to the dtype, the draws that round up to 1.0 given 0:
mass 2**-bits at 0, 3/4 of a step's mass at 0.5, where bits = 12 for float16, 9 for bfloat16).
Found by a peer distribution suite: descent's float16 rand returned 1.0 about once in 4,000."""

import numpy as np
import pytest
import torch

import descent

N = 400_000
BITS = {"float16": 11, "bfloat16": 8}  # the significand's bits


def _values(t):
    return t.float().numpy().astype(np.float64)


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    "make",
    [
        lambda n, dt: descent.rand(n, dtype=dt),
        lambda n, dt: descent.rand_like(descent.empty(n, dtype=dt)),
        lambda n, dt: descent.empty(n, dtype=dt).uniform_(),
        lambda n, dt: descent.nn.init.uniform_(descent.empty(n, dtype=dt)),
    ],
    ids=["rand", "rand_like", "uniform_", "init.uniform_"],
)
def test_low_precision_uniform_stays_below_one_on_torchs_grid(name, make):
    descent.manual_seed(0)
    d = make(N, getattr(descent, name))
    assert d.dtype == getattr(descent, name)
    v = _values(d)
    t = _values(torch.rand(N, dtype=getattr(torch, name)))
    step = 2.0 ** -BITS[name]  # the spacing just below 1
    for x in (v, t):
        assert x.min() >= 0.0 and x.max() < 1.0
        assert x.max() == 1.0 - step
        # the draws in [1 - step/2, 1) land on 0: about N * step / 2 zeros (98 for float16)
        zeros = (x == 0).sum()
        assert 0.6 * N * step / 2 < zeros < 1.4 * N * step / 2, zeros
        # round to nearest: 0.5 collects [0.5 - step/4, 0.5 + step/2), 3/4 of a step
        halves = (x == 0.5).sum()
        assert 0.6 * 0.75 * N * step < halves < 1.4 * 0.75 * N * step, halves
    assert abs(v.mean() - 0.5) < 0.005
    assert abs((v < 0.25).mean() - (t < 0.25).mean()) < 0.01


def test_float32_and_float64_rand_unchanged_and_empty_shapes():
    descent.manual_seed(3)
    a = descent.rand(1000)
    descent.manual_seed(3)
    b = descent.rand(1000, dtype=descent.float32)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.dtype == descent.float32 and a.numpy().max() < 1.0
    assert descent.rand(1000, dtype=descent.float64).numpy().max() < 1.0
    for name in BITS:
        e = descent.rand(0, 3, dtype=getattr(descent, name))
        assert tuple(e.shape) == tuple(torch.rand(0, 3).shape) == (0, 3)
        s = descent.rand((), dtype=getattr(descent, name))
        assert s.shape == () and 0.0 <= s.float().item() < 1.0


def test_half_rand_is_reproducible_under_manual_seed():
    descent.manual_seed(11)
    a = _values(descent.rand(64, dtype=descent.float16))
    descent.manual_seed(11)
    b = _values(descent.rand(64, dtype=descent.float16))
    np.testing.assert_array_equal(a, b)
