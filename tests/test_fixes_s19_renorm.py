"""renorm's gradient on slices whose norm is nan or inf, against torch 2.13.

torch.renorm has its own backward: where(norm > maxnorm, factor * (g - nb / (norm + 1e-7)), g),
so a slice with a nan norm (nan > maxnorm is false) passes the gradient through. descent's
composite gave nan there (the zero gradient of the unused branch times the derivative of
maxnorm / nan)."""

import numpy as np
import pytest
import torch

import descent

NAN, INF = float("nan"), float("inf")
CASES = [
    [[NAN, 1.0, 2.0], [3.0, 4.0, 5.0]],
    [[NAN, 0.01, 0.02], [3.0, 4.0, 5.0]],
    [[INF, 1.0, 2.0], [3.0, 4.0, 5.0]],
    [[INF, NAN, 2.0], [0.1, 0.2, 0.1]],
    [[-INF, 1.0, 2.0], [0.0, 0.0, 0.0]],
]


def _grads(a, g, p, dim, maxnorm):
    t = torch.tensor(a, requires_grad=True)
    torch.renorm(t, p, dim, maxnorm).backward(torch.tensor(g))
    d = descent.tensor(a, requires_grad=True)
    out = descent.renorm(d, p, dim, maxnorm)
    out.backward(descent.tensor(g))
    ref = torch.renorm(torch.tensor(a), p, dim, maxnorm).numpy()
    return t.grad.numpy(), d.grad.numpy(), ref, out.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [1, 2, 3, INF, 0.5])
@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_renorm_grad_nonfinite_slices(dtype, p, dim, case):
    a = np.array(CASES[case], dtype=dtype)
    g = np.arange(1, a.size + 1, dtype=dtype).reshape(a.shape)
    tg, dg, ref, out = _grads(a, g, p, dim, 1.0)
    # float32: torch's fused formula and the chain rule differ by rounding (terms that cancel)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out, ref, equal_nan=True, **tol)
    np.testing.assert_array_equal(np.isnan(dg), np.isnan(tg))
    np.testing.assert_allclose(dg, tg, equal_nan=True, **tol)


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_renorm_grad_nan_slice_3d(dim):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4) / 10
    a[1, 2, 3] = NAN
    a[0, 1, 0] = INF
    g = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4)
    tg, dg, ref, out = _grads(a, g, 2, dim, 0.7)
    np.testing.assert_allclose(out, ref, equal_nan=True, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.isnan(dg), np.isnan(tg))
    np.testing.assert_allclose(dg, tg, equal_nan=True, rtol=1e-4, atol=1e-6)


def test_renorm_finite_mixed_slices_second_order():
    # some slices clipped, some not; the gradient of the gradient still follows torch
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3)) * np.array([[0.1], [2.0], [0.3], [5.0]])
    g = rng.standard_normal((4, 3))
    t = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad(torch.renorm(t, 2, 0, 1.0), t, torch.tensor(g), create_graph=True)
    (gt * gt).sum().backward()
    d = descent.tensor(a, requires_grad=True)
    (gd,) = descent.autograd.grad(descent.renorm(d, 2, 0, 1.0), d, descent.tensor(g),
                                  create_graph=True)
    (gd * gd).sum().backward()
    np.testing.assert_allclose(gd.detach().numpy(), gt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)
