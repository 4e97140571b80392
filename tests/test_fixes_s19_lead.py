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
