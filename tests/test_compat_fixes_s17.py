"""Fixes found while writing session 17's compat programs (tests/compat/programs), each
differential against PyTorch 2.13 (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")


# scatter_reduce / index_reduce with amax / amin and include_self=False: PyTorch's backward
# counts x's tie with the result in the number of inputs sharing a slot's gradient even when x
# is excluded (its share is then masked to 0), so two src values tied with a zero-initialised
# x that equals their min got 1/3 each in PyTorch and 1/2 in descent.
@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("include_self", [False, True])
def test_scatter_reduce_extreme_ties_with_excluded_self(reduce, include_self):
    sign = 1.0 if reduce == "amin" else -1.0

    def run(lib):
        x = lib.tensor([5.0, 7.0, 0.0, 3.0], requires_grad=True)
        src = lib.tensor([1.0, 1.0, 2.0 * sign, 0.0, 0.0, 4.0], requires_grad=True)
        idx = lib.tensor([0, 0, 2, 2, 2, 3])
        y = x.scatter_reduce(0, idx, src, reduce=reduce, include_self=include_self)
        y.backward(lib.tensor([1.0, 10.0, 100.0, 1000.0]))
        return y.tolist(), x.grad.tolist(), src.grad.tolist()

    ours, theirs = run(descent), run(torch)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o, t, rtol=1e-6)


@pytest.mark.parametrize("reduce", ["amax", "amin"])
@pytest.mark.parametrize("include_self", [False, True])
def test_index_reduce_extreme_ties_with_excluded_self(reduce, include_self):
    def run(lib):
        x = lib.zeros(3, 2, requires_grad=True)
        src = lib.tensor([[0.0, 1.0], [0.0, -1.0], [2.0, 0.0]], requires_grad=True)
        y = x.index_reduce(0, lib.tensor([0, 0, 2]), src, reduce, include_self=include_self)
        y.backward(lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
        return y.tolist(), x.grad.tolist(), src.grad.tolist()

    ours, theirs = run(descent), run(torch)
    for o, t in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o, t, rtol=1e-6)


def test_scatter_reduce_extreme_gradient_by_finite_differences():
    # Away from ties the gradient is unchanged: float64 finite differences, both include_self
    rng = np.random.default_rng(0)
    for reduce in ("amax", "amin"):
        for include_self in (False, True):
            x0 = rng.standard_normal(4)
            s0 = rng.standard_normal(6)
            def f(x, s, reduce=reduce, include_self=include_self):
                idx = descent.tensor([0, 0, 2, 2, 2, 3])
                return x.scatter_reduce(0, idx, s, reduce=reduce, include_self=include_self)

            assert descent.autograd.gradcheck(
                f, (descent.tensor(x0, requires_grad=True), descent.tensor(s0, requires_grad=True))
            )
