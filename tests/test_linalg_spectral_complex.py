"""Complex inputs for the spectral linear-algebra ops (eigh, eigvalsh, svd, svdvals, pinv and
what goes through them) and linalg.eig / linalg.eigvals, against torch 2.13 (complex64 values
and gradients of phase-invariant losses) and against central differences in complex128 /
float64 (docs/linalg.md, "Complex matrices")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(0)


def _c(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def _np(t):
    """NumPy values of a torch or descent tensor (torch's lazy conjugate resolved)."""
    if isinstance(t, torch.Tensor):
        return t.detach().resolve_conj().numpy()
    return t.detach().numpy()


# ---------------------------------------------------------------------------------------------
# x.mH / x.H / x.adjoint() conjugate complex tensors (they were plain transposes: wrong values
# and gradients, found while writing these tests)


@pytest.mark.parametrize("name", ["mH", "H", "adjoint"])
def test_conjugate_transpose_of_complex(name):
    a = _c(3, 3)

    def f(T, x):
        y = x.adjoint() if name == "adjoint" else getattr(x, name)
        return y, ((y * x).imag ** 2).sum() + (y @ x).real.sum()

    xt = torch.tensor(a, requires_grad=True)
    xd = ds.tensor(a, requires_grad=True)
    yt, lt = f(torch, xt)
    yd, ld = f(ds, xd)
    np.testing.assert_allclose(_np(yd), _np(yt), rtol=1e-12)
    lt.backward()
    ld.backward()
    np.testing.assert_allclose(_np(xd.grad), _np(xt.grad), rtol=1e-10, atol=1e-12)
