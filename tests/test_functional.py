"""Functional transforms: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp (vs torch.func)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import func as tfunc

import descent as ds

RNG = np.random.default_rng(0)
XV = RNG.uniform(-1, 1, 4)
YV = RNG.uniform(-1, 1, 4)


def f_ds(x, y):
    return (ds.tanh(x) * y + x * x * ds.exp(y * 0.5)).sum()


def f_t(x, y):
    return (torch.tanh(x) * y + x * x * torch.exp(y * 0.5)).sum()


def vec_ds(x):
    return ds.sin(x) * x[::-1] + x.sum()


def vec_t(x):
    return torch.sin(x) * x.flip(0) + x.sum()


def d(v):
    return ds.tensor(v, dtype=ds.float64)


def t(v):
    return torch.tensor(v, dtype=torch.float64)


def test_grad_matches_torch_and_analytic():
    g = ds.grad(lambda x: (x**3).sum())(d([1.0, 2.0]))
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])
    gx = ds.grad(f_ds)(d(XV), d(YV))
    np.testing.assert_allclose(gx.numpy(), tfunc.grad(f_t)(t(XV), t(YV)).numpy(), rtol=1e-12)


def test_argnums_tuple_and_second_argument():
    gx, gy = ds.grad(f_ds, argnums=(0, 1))(d(XV), d(YV))
    tgx, tgy = tfunc.grad(f_t, argnums=(0, 1))(t(XV), t(YV))
    np.testing.assert_allclose(gx.numpy(), tgx.numpy(), rtol=1e-12)
    np.testing.assert_allclose(gy.numpy(), tgy.numpy(), rtol=1e-12)
    gy1 = ds.grad(f_ds, argnums=1)(d(XV), d(YV))
    np.testing.assert_allclose(gy1.numpy(), tgy.numpy(), rtol=1e-12)


def test_value_and_grad_and_has_aux():
    val, g = ds.value_and_grad(f_ds)(d(XV), d(YV))
    assert isinstance(val, ds.Tensor) and not val.requires_grad
    np.testing.assert_allclose(val.item(), f_t(t(XV), t(YV)).item(), rtol=1e-12)

    def with_aux(x):
        y = x * 2
        return (y * y).sum(), {"y": y}

    (val, aux), g = ds.value_and_grad(with_aux, has_aux=True)(d([1.0, 3.0]))
    assert val.item() == 40.0 and aux["y"].tolist() == [2.0, 6.0]
    np.testing.assert_allclose(g.numpy(), [8.0, 24.0])
    g2, aux2 = ds.grad(with_aux, has_aux=True)(d([1.0, 3.0]))
    np.testing.assert_allclose(g2.numpy(), [8.0, 24.0])
    with pytest.raises(TypeError, match="has_aux"):
        ds.grad(lambda x: x.sum(), has_aux=True)(d([1.0]))


def test_user_grad_is_never_touched():
    x = ds.tensor(XV, dtype=ds.float64, requires_grad=True)
    ds.grad(lambda a: (a * a).sum())(x)
    ds.value_and_grad(lambda a: (a * a).sum())(x)
    ds.vjp(lambda a: a * 2, x)[1](d(np.ones(4)))
    ds.hessian(lambda a: (a**3).sum())(x)
    assert x.grad is None


def test_python_and_numpy_inputs():
    assert ds.grad(lambda x: x * x)(3.0).item() == 6.0
    np.testing.assert_allclose(ds.grad(lambda x: (x * x).sum())(np.array([1.0, 2.0])).numpy(),
                               [2.0, 4.0])  # fmt: skip


def test_non_scalar_output_is_a_type_error_pointing_to_vjp():
    with pytest.raises(TypeError) as e:
        ds.grad(lambda x: x * 2)(d([1.0, 2.0]))
    assert "scalar" in str(e.value) and "vjp" in str(e.value) and "(2,)" in str(e.value)
    with pytest.raises(TypeError, match="integer|float"):
        ds.grad(lambda x: x.sum())(ds.tensor([1, 2]))


def test_nested_grad_gives_higher_derivatives():
    f = lambda x: ds.sin(x) * x  # noqa: E731
    x0 = 0.7
    g1 = ds.grad(f)(x0).item()
    g2 = ds.grad(ds.grad(f))(x0).item()
    g3 = ds.grad(ds.grad(ds.grad(f)))(x0).item()
    np.testing.assert_allclose(g1, np.cos(x0) * x0 + np.sin(x0), rtol=1e-6)
    np.testing.assert_allclose(g2, -np.sin(x0) * x0 + 2 * np.cos(x0), rtol=1e-6)
    np.testing.assert_allclose(g3, -np.cos(x0) * x0 - 3 * np.sin(x0), rtol=1e-5)


def test_grad_of_a_function_of_a_gradient():
    # d/dx sum(grad(f)(x)^2): a gradient used inside another differentiated function.
    inner = ds.grad(lambda x: (ds.tanh(x) * x).sum())
    outer = ds.grad(lambda x: (inner(x) ** 2).sum())(d(XV))
    tinner = tfunc.grad(lambda x: (torch.tanh(x) * x).sum())
    touter = tfunc.grad(lambda x: (tinner(x) ** 2).sum())(t(XV))
    np.testing.assert_allclose(outer.numpy(), touter.numpy(), rtol=1e-10)


def test_vjp_matches_torch():
    out, fn = ds.vjp(vec_ds, d(XV))
    tout, tfn = tfunc.vjp(vec_t, t(XV))
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-12)
    (g,) = fn(d(YV))
    (tg,) = tfn(t(YV))
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12)
    (g2,) = fn(d(XV))  # the vjp function can be called again
    np.testing.assert_allclose(g2.numpy(), tfn(t(XV))[0].numpy(), rtol=1e-12)


def test_vjp_with_two_primals():
    out, fn = ds.vjp(lambda a, b: a * ds.exp(b), d(XV), d(YV))
    ga, gb = fn(d(np.ones(4)))
    np.testing.assert_allclose(ga.numpy(), np.exp(YV))
    np.testing.assert_allclose(gb.numpy(), XV * np.exp(YV))


def test_jvp_matches_torch():
    out, jv = ds.jvp(vec_ds, (d(XV),), (d(YV),))
    tout, tjv = tfunc.jvp(vec_t, (t(XV),), (t(YV),))
    np.testing.assert_allclose(out.numpy(), tout.numpy(), rtol=1e-12)
    np.testing.assert_allclose(jv.numpy(), tjv.numpy(), rtol=1e-10)


def test_jacobian_matches_torch():
    J = ds.jacobian(vec_ds)(d(XV))
    tJ = tfunc.jacrev(vec_t)(t(XV))
    assert J.shape == (4, 4)
    np.testing.assert_allclose(J.numpy(), tJ.numpy(), rtol=1e-12)
    Ja, Jb = ds.jacobian(lambda a, b: a @ b, argnums=(0, 1))(d(np.ones((2, 3))), d(XV[:3]))
    assert Ja.shape == (2, 2, 3) and Jb.shape == (2, 3)
    np.testing.assert_allclose(Jb.numpy(), np.ones((2, 3)))


def test_hessian_matches_torch():
    f = lambda x: (ds.exp(x[:2] * x[1:3]) * ds.tanh(x[2:])).sum()  # noqa: E731
    tf = lambda x: (torch.exp(x[:2] * x[1:3]) * torch.tanh(x[2:])).sum()  # noqa: E731
    H = ds.hessian(f)(d(XV))
    tH = tfunc.hessian(tf)(t(XV))
    np.testing.assert_allclose(H.numpy(), tH.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(H.numpy(), H.numpy().T, rtol=1e-10)


def test_hvp_matches_hessian_times_vector():
    f = lambda x: (ds.sin(x) * x * x).sum()  # noqa: E731
    val, hv = ds.hvp(f, (d(XV),), (d(YV),))
    H = ds.hessian(f)(d(XV))
    np.testing.assert_allclose(hv.numpy(), H.numpy() @ YV, rtol=1e-10)
    tf = lambda x: (torch.sin(x) * x * x).sum()  # noqa: E731
    _, thv = tfunc.jvp(tfunc.grad(tf), (t(XV),), (t(YV),))
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-10)


def test_jacobian_of_grad_is_hessian_and_jvp_of_grad_is_hvp():
    f = lambda x: (ds.tanh(x) ** 2).sum()  # noqa: E731
    H1 = ds.jacobian(ds.grad(f))(d(XV))
    H2 = ds.hessian(f)(d(XV))
    np.testing.assert_allclose(H1.numpy(), H2.numpy(), rtol=1e-12)
    _, jv = ds.jvp(ds.grad(f), (d(XV),), (d(YV),))
    np.testing.assert_allclose(jv.numpy(), H2.numpy() @ YV, rtol=1e-10)


def test_functional_transforms_work_under_no_grad():
    with ds.no_grad():
        g = ds.grad(lambda x: (x * x).sum())(d([1.0, 2.0]))
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
