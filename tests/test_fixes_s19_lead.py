"""Session 19 lead's integration fixes, each against torch 2.13."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent


@pytest.mark.parametrize("eq", ["bix,iox->box", "ij,jk->ik", "i,i->"])
def test_complex_einsum_gradient_conjugates(eq):
    """einsum of complex operands: each operand's gradient uses the others conjugated (the
    holomorphic rule). A decorator moved onto another class (a6801bd) dropped it, and FNO's
    spectral layer trained differently from torch (tests/compat fno_spectral)."""
    rng = np.random.default_rng(0)
    shapes = {"bix,iox->box": [(2, 3, 4), (3, 5, 4)], "ij,jk->ik": [(3, 4), (4, 2)],
              "i,i->": [(5,), (5,)]}[eq]  # fmt: skip
    arrays = [(rng.standard_normal(s) + 1j * rng.standard_normal(s)).astype(np.complex64)
              for s in shapes]  # fmt: skip
    grads = {}
    for lib in (torch, descent):
        ts = [lib.tensor(a, requires_grad=True) for a in arrays]
        y = lib.einsum(eq, *ts)
        (y.abs() ** 2).sum().backward()
        grads[lib.__name__] = [t.grad.numpy() for t in ts]
    for ours, theirs in zip(grads["descent"], grads["torch"]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_embedding_freq_scaled_gradient_keeps_dtype(dtype):
    """F.embedding(scale_grad_by_freq=True): the weight's gradient keeps its dtype, as PyTorch's
    float scale does. descent's float64 scale made a float32 weight's gradient float64, and a
    retained non-leaf weight (w * 1 with retain_grad) raised 'cannot assign a gradient of dtype
    float64' (found by helper-139)."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((7, 5)).astype(dtype)
    idx = rng.integers(0, 7, (40,))
    c = rng.standard_normal((40, 5)).astype(dtype)
    got = {}
    for lib in (torch, descent):
        w = lib.tensor(w0, requires_grad=True)
        v = w * 1
        v.retain_grad()
        y = lib.nn.functional.embedding(lib.tensor(idx), v, scale_grad_by_freq=True)
        (y * lib.tensor(c)).sum().backward()
        got[lib.__name__] = (str(v.grad.dtype).split(".")[-1], v.grad.numpy(), w.grad.numpy())
    assert got["descent"][0] == got["torch"][0] == dtype
    for ours, theirs in zip(got["descent"][1:], got["torch"][1:]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(), (3,)])
def test_renorm_needs_two_dimensions(shape):
    """torch.renorm refuses a 0-d or 1-D input (RuntimeError naming the count); descent
    renormed a 1-D one element by element."""
    for lib in (torch, descent):
        with pytest.raises(RuntimeError, match="renorm: input needs at least 2 dimensions"):
            lib.renorm(lib.ones(shape), 2, 0, 1.0)
        with pytest.raises(RuntimeError, match=f"got {len(shape)} dimensions"):
            lib.ones(shape).renorm(2, 0, 1.0)


def test_compile_elementwise_on_a_strided_view_keeps_eager_layout():
    """A pooled elementwise replay wrote a ufunc's result on a transposed view (rot90) into a
    C-ordered buffer, where eager's result follows the view's memory order; the mean after it
    then summed in another order, 1 ulp off on 5 of 12 calls (found by helper-138's fuzz
    campaign, seed 138558). The pool now takes C-contiguous operands only."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((5, 7)).astype(np.float32) for _ in range(12)]

    def f(x):
        return (descent.rot90(x).exp() * 1.7).mean()

    cf = descent.compile(f)
    for a in xs:
        assert np.array_equal(f(descent.tensor(a)).numpy(), cf(descent.tensor(a)).numpy())
    assert cf.stats["replays"] == 10, cf.stats
