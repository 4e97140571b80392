"""The fused ReLU² op (descent.ops.relu_squared) against its composite and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import descent
from descent.explain import gradcheck, gradgradcheck
from descent.nn import functional as F
from descent.ops.relu_squared import relu_squared


def _composite(x):
    h = F.relu(x)
    return h * h


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_squared_is_bitwise_the_composite(dtype):
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((3, 5, 16)).astype(dtype)
    xa[0, 0, :4] = 0.0  # the kink
    ga = rng.standard_normal(xa.shape).astype(dtype)
    outs = []
    for f in (relu_squared, _composite):
        x = descent.tensor(xa, requires_grad=True)
        y = f(x)
        y.backward(descent.tensor(ga))
        outs.append((y.numpy(), x.grad.numpy()))
    assert outs[0][0].dtype == dtype and outs[0][1].dtype == dtype
    assert np.array_equal(outs[0][0], outs[1][0])
    assert np.array_equal(outs[0][1], outs[1][1])
    y = relu_squared(descent.tensor(xa, requires_grad=True))
    assert y.grad_fn.name == "ReluSquaredBackward"


def test_relu_squared_gradients_first_and_second_order():
    rng = np.random.default_rng(1)
    xa = rng.standard_normal((4, 7))
    xa[np.abs(xa) < 0.05] = 0.3  # finite differences need distance from the kink at 0
    x = descent.tensor(xa, dtype=np.float64, requires_grad=True)
    assert gradcheck(relu_squared, [x]).passed
    assert gradgradcheck(relu_squared, [x]).passed


def test_relu_squared_matches_torch_float32():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    xa = rng.standard_normal((2, 3, 32)).astype(np.float32)
    x = descent.tensor(xa, requires_grad=True)
    y = relu_squared(x)
    (y * y).sum().backward()
    tx = torch.tensor(xa, requires_grad=True)
    ty = torch.relu(tx).square()
    (ty * ty).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-6, atol=0)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_relu_squared_edge_values():
    x = descent.tensor(np.array([], dtype=np.float32), requires_grad=True)
    y = relu_squared(x)
    y.sum().backward()
    assert y.shape == (0,) and x.grad.shape == (0,)
    x0 = descent.tensor(np.float32(-2.0), requires_grad=True)  # 0-d, negative
    relu_squared(x0).backward()
    assert x0.grad.item() == 0.0 and x0.grad.shape == ()
    xn = descent.tensor(np.array([np.nan, np.inf, -np.inf], dtype=np.float32))
    np.testing.assert_array_equal(relu_squared(xn).numpy(), [np.nan, np.inf, 0.0])
