"""nn.init.orthogonal_, dirac_, sparse_ and PyTorch's deprecated spellings.

The random draws come from descent's generator, so values cannot match PyTorch's; the tests
check the construction against a NumPy reproduction from the same generator state, the
properties (orthogonality, the identity convolution, the zeros per column) and PyTorch's
deterministic results (dirac_) and errors.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import descent
import descent.nn as nn
import descent.nn.functional as F


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (8, 2, 3, 3), (3, 4, 5)])
def test_orthogonal_is_the_sign_fixed_q_of_a_gaussian(shape, dtype):
    w = descent.empty(*shape, dtype=dtype)
    out = nn.init.orthogonal_(w, gain=1.5, generator=descent.Generator(7))
    assert out is w and w.dtype == dtype
    rows, cols = shape[0], int(np.prod(shape[1:]))
    # The same draw, decomposed by NumPy: Q times the signs of R's diagonal.
    g = descent.randn(rows, cols, dtype=dtype, generator=descent.Generator(7)).numpy()
    a = g.T if rows < cols else g
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    q = q.T if rows < cols else q
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(w.numpy().reshape(rows, cols), 1.5 * q, rtol=tol, atol=tol)
    m = w.numpy().reshape(rows, cols).astype(np.float64) / 1.5
    gram = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(gram, np.eye(min(rows, cols)), atol=10 * tol)


def test_orthogonal_errors_and_seeding():
    with pytest.raises(ValueError, match="2 or more"):
        nn.init.orthogonal_(descent.empty(3))
    assert nn.init.orthogonal_(descent.empty(0, 3)).shape == (0, 3)  # no-op
    descent.manual_seed(3)
    a = nn.init.orthogonal_(descent.empty(4, 4)).numpy()
    descent.manual_seed(3)
    np.testing.assert_array_equal(a, nn.init.orthogonal_(descent.empty(4, 4)).numpy())
    # PyTorch's orthogonal_ has the same gram matrix (different random numbers).
    t = torch.nn.init.orthogonal_(torch.empty(4, 4), gain=2.0)
    np.testing.assert_allclose(t.numpy().T @ t.numpy(), a.T @ a * 4.0, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "groups"),
    [((4, 4, 3), 1), ((6, 4, 3, 3), 1), ((4, 6, 3, 2), 2), ((3, 2, 3, 3, 3), 1), ((6, 3, 5), 3)],
)
def test_dirac_matches_torch(shape, groups):
    w = nn.init.dirac_(descent.randn(*shape), groups)
    t = torch.nn.init.dirac_(torch.randn(*shape), groups)
    np.testing.assert_array_equal(w.numpy(), t.numpy())


def test_dirac_is_the_identity_convolution_and_errors():
    x = descent.randn(2, 4, 7, 7)
    w = nn.init.dirac_(descent.empty(4, 4, 3, 3))
    np.testing.assert_allclose(F.conv2d(x, w, padding=1).numpy(), x.numpy(), atol=1e-6)
    for shape, groups in (((4, 4), 1), ((2, 2, 2, 2, 2, 2), 1), ((5, 4, 3), 2)):
        with pytest.raises(ValueError):
            torch.nn.init.dirac_(torch.empty(*shape), groups)
        with pytest.raises(ValueError):
            nn.init.dirac_(descent.empty(*shape), groups)


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 1.0])
def test_sparse_zeros_per_column(sparsity):
    w = nn.init.sparse_(descent.empty(10, 40), sparsity, std=0.5, generator=descent.Generator(1))
    zeros = (w.numpy() == 0).sum(axis=0)
    np.testing.assert_array_equal(zeros, math.ceil(sparsity * 10))
    t = torch.nn.init.sparse_(torch.empty(10, 40), sparsity, std=0.5)
    np.testing.assert_array_equal((t.numpy() == 0).sum(axis=0), zeros)
    if sparsity < 1:
        nonzero = w.numpy()[w.numpy() != 0]
        assert 0.35 < nonzero.std() < 0.65
    with pytest.raises(ValueError, match="2 dimensions"):
        nn.init.sparse_(descent.empty(2, 2, 2), 0.1)


def test_deprecated_spellings_warn_and_work():
    names = ["uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
             "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse"]  # fmt: skip
    assert set(names) <= set(nn.init.__all__)
    assert set(torch.nn.init.__all__) <= set(nn.init.__all__)
    with pytest.warns(FutureWarning, match="uniform_"):
        w = nn.init.uniform(descent.empty(3, 3), 2.0, 3.0)
    assert w.numpy().min() >= 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(nn.init.constant(descent.empty(2), 4.0).numpy(), [4, 4])
