"""PyTorch's known-zero gradient (the zero tensor sgn's backward returns for real inputs) through
more ops, differential against torch 2.13 (tests/test_zero_grad_s15.py has the first set).

Found by tests/fuzz_extra_dtypes.py (`erfinv(x) + y > sgn`: descent's gradient was nan at x = 1,
PyTorch's 0) and a sweep of the ops around it: AddBackward passes its zero tensor, and so do
SubBackward to its first input, lerp, dot, complex and the special functions whose derivative
formula multiplies the gradient (i0e, i1, i1e, erfcx, ndtri, entr); but where an input was
broadcast, PyTorch's unbroadcast (sum_to) materializes the zero tensor, so outer(y, z) and
y * ones(3, 2) give nan through an infinite derivative below (descent gave 0 there), as does
z - y (-grad materializes it)."""

import math

import numpy as np
import pytest
import torch

import descent

THROUGH = {  # y = erfinv(x) with x = [1, 0.5]: its derivative is inf at 1
    "add": lambda m, y, z: y + z,
    "add to": lambda m, y, z: z + y,
    "sub": lambda m, y, z: y - z,
    "rsub": lambda m, y, z: z - y,
    "add alpha": lambda m, y, z: m.add(y, z, alpha=2.0),
    "lerp": lambda m, y, z: m.lerp(y, z, 0.3),
    "lerp far": lambda m, y, z: m.lerp(z, y, 0.8),
    "addcmul": lambda m, y, z: m.addcmul(y, z, z),
    "dot": lambda m, y, z: m.dot(y, z),
    "vector @ vector": lambda m, y, z: y @ z,
    "complex abs": lambda m, y, z: m.complex(y, z).abs(),
    "outer": lambda m, y, z: m.outer(y, z),
    "kron": lambda m, y, z: m.kron(y, z),
    "broadcast mul": lambda m, y, z: y * m.ones(3, 2),
    "broadcast column": lambda m, y, z: y.reshape(2, 1) * z,
    "broadcast add": lambda m, y, z: y + m.ones(3, 2),
    "broadcast atan2": lambda m, y, z: m.atan2(y, m.ones(3, 2)),
    "same-shape atan2": lambda m, y, z: m.atan2(y, z),
    "matrix product": lambda m, y, z: y.unsqueeze(0) @ z.unsqueeze(1),
}


def _grad(m, x):
    g = x.grad
    if g is None:
        return None
    if m is torch and g._is_zerotensor():  # PyTorch may leave its zero tensor as .grad
        return np.zeros(tuple(x.shape), str(x.dtype).split(".")[1])
    return g.detach().numpy()


@pytest.mark.parametrize("name", sorted(THROUGH))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_tensor_through_binary_ops_as_torch(name, dtype):
    got = []
    for m in (torch, descent):
        x = m.tensor(np.array([1.0, 0.5], dtype), requires_grad=True)
        z = m.tensor(np.array([0.7, 1.0], dtype), requires_grad=True)
        THROUGH[name](m, m.erfinv(x), z).sgn().sum().backward()
        got.append((_grad(m, x), _grad(m, z)))
    for a, b in zip(got[0], got[1]):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_array_equal(b, a)


VALUES = [0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 1e30, -1e30, 2.0, -0.0, 0.5]
UNARY = {
    "i0e": lambda m, x: m.special.i0e(x),
    "i1": lambda m, x: m.special.i1(x),
    "i1e": lambda m, x: m.special.i1e(x),
    "erfcx": lambda m, x: m.special.erfcx(x),
    "ndtri": lambda m, x: m.special.ndtri(x),
    "entr": lambda m, x: m.special.entr(x),
    "erfinv": lambda m, x: m.erfinv(x),
    "i0": lambda m, x: m.i0(x),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_tensor_through_special_functions_as_torch(name, dtype):
    """Where the derivative is inf or nan (erfcx(-inf), ndtri(0), entr(0), ...), sgn's zero
    tensor still gives 0: PyTorch's formulas multiply it."""
    got = []
    for m in (torch, descent):
        x = m.tensor(np.array(VALUES, dtype), requires_grad=True)
        UNARY[name](m, x).sgn().sum().backward()
        got.append(_grad(m, x))
    np.testing.assert_array_equal(got[1], got[0])
    assert not np.isnan(got[1]).any()


def test_real_gradients_unchanged():
    """The passes change nothing where the gradient is real: y + z and outer's gradients."""
    x = descent.tensor([1.0, 0.5], requires_grad=True)
    z = descent.tensor([0.7, 1.0], requires_grad=True)
    (descent.outer(x, z).sum() + (x - z).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.7, 2.7], rtol=1e-6)
    np.testing.assert_allclose(z.grad.numpy(), [0.5, 0.5], rtol=1e-6)


@pytest.mark.parametrize("shape", [(), (1,), (2,), (2, 3)])
@pytest.mark.parametrize("dim", [None, 0])
def test_norm_at_zero_keeps_a_nan_or_inf_gradient_as_torch(shape, dim):
    """torch.norm's 2-norm (descent's Norm2) at a zero norm: PyTorch multiplies gy by the
    masked x / ||x||, so an infinite gy (sqrt's derivative at 0) gives nan; descent gave 0 (found
    by tests/test_fuzz_differential.py seed 4160000: norm > sqrt). linalg.vector_norm already
    did this (session 15)."""
    if dim is not None and not shape:
        pytest.skip("no dim 0 in a 0-d tensor")
    got = []
    for m in (torch, descent):
        x = m.zeros(shape, dtype=m.float64, requires_grad=True)
        y = m.norm(x) if dim is None else m.norm(x, dim=dim)
        y.sqrt().sum().backward()
        got.append(x.grad.detach().numpy())
    np.testing.assert_array_equal(got[1], got[0])


def test_norm_gradient_elsewhere_unchanged():
    x = descent.tensor([[3.0, 4.0], [0.0, 0.0]], dtype=descent.float64, requires_grad=True)
    descent.norm(x, dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.6, 0.8], [0.0, 0.0]])
    t = descent.tensor([[3.0, 1.0], [-4.0, 2.0]], dtype=descent.float64, requires_grad=True)
    assert descent.autograd.gradcheck(lambda a: descent.norm(a, dim=0), (t,))
    assert descent.autograd.gradgradcheck(lambda a: descent.norm(a, dim=0), (t,))
