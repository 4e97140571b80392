"""Differences from PyTorch found by its OpInfo database (tests/opinfo_harness.py), core ops."""

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")

GROWING = [
    ("add_", lambda x, y: x.add_(y)),
    ("sub_", lambda x, y: x.sub_(y)),
    ("mul_", lambda x, y: x.mul_(y)),
    ("div_", lambda x, y: x.div_(y)),
    ("div_floor", lambda x, y: x.div_(y, rounding_mode="floor")),
    ("div_trunc", lambda x, y: x.div_(y, rounding_mode="trunc")),
    ("clamp_min_", lambda x, y: x.clamp_min_(y)),
    ("clamp_max_", lambda x, y: x.clamp_max_(y)),
    ("clamp_", lambda x, y: x.clamp_(min=y)),
    ("masked_fill_", lambda x, y: x.masked_fill_(y > 1, 2.0)),
    ("iadd", lambda x, y: x.__iadd__(y)),
]


@pytest.mark.parametrize("graph", ["plain", "graph", "operand_requires_grad"])
@pytest.mark.parametrize(("name", "fn"), GROWING, ids=[g[0] for g in GROWING])
def test_inplace_op_never_grows_its_tensor(name, fn, graph):
    """x (5, 1) op_ y (5,): PyTorch raises (the result would be (5, 5)). descent used to rebind
    x to the (5, 5) result when the op was recorded in the graph: a silent change of shape."""
    xs = np.arange(5, dtype=np.float32).reshape(5, 1)
    ys = np.arange(5, dtype=np.float32) + 1

    def make(lib):
        x = lib.tensor(xs, requires_grad=graph == "graph")
        x = x.clone() if graph == "graph" else x
        y = lib.tensor(ys, requires_grad=graph == "operand_requires_grad")
        return x, y

    tx, ty = make(torch)
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        fn(tx, ty)
    dx, dy = make(descent)
    with pytest.raises(RuntimeError, match=r"doesn't match the broadcast shape \[5, 5\]"):
        fn(dx, dy)
    assert tuple(dx.shape) == (5, 1)


@pytest.mark.parametrize("graph", [False, True])
def test_inplace_broadcasting_into_its_shape_still_works(graph):
    """The check only refuses growth: x (5, 5) op_ y (5,) broadcasts y, as in PyTorch."""
    xs = np.arange(25, dtype=np.float32).reshape(5, 5)
    ys = np.arange(5, dtype=np.float32) + 1
    out = []
    for lib in (torch, descent):
        x = lib.tensor(xs, requires_grad=graph)
        x2 = x.clone()
        x2.mul_(lib.tensor(ys)).add_(1.0).clamp_(max=lib.tensor(ys) * 4)
        x2.masked_fill_(lib.tensor(ys) > 3, 0.0)
        if graph:
            x2.sum().backward()
            out.append((x2.detach().numpy(), x.grad.numpy()))
        else:
            out.append((x2.numpy(),))
    for a, b in zip(*out):
        np.testing.assert_allclose(b, a, rtol=1e-6)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("dtype", ["float64", "complex128", "float32"])
def test_cholesky_inverse_of_a_non_triangular_factor_is_pytorchs(upper, dtype):
    """PyTorch (LAPACK's potri) reads only the factor's triangle; descent used the whole matrix
    (values 4.2 apart on a random 3 x 3). The gradient is PyTorch's -R (G + G^H) R L."""
    g = torch.Generator().manual_seed(0)
    tdt = getattr(torch, dtype)
    a = torch.randn(2, 3, 3, generator=g, dtype=tdt) * 0.3
    if a.is_complex():  # a Cholesky factor's diagonal is real
        a = a - torch.diag_embed(a.diagonal(dim1=-2, dim2=-1).imag * 1j)
    a = (a + 3 * torch.eye(3, dtype=tdt)).requires_grad_()
    w = torch.randn(2, 3, 3, generator=g, dtype=tdt)
    r = torch.cholesky_inverse(a, upper=upper)
    (ga,) = torch.autograd.grad((r * w).real.sum(), a)
    d = descent.tensor(a.detach().numpy(), requires_grad=True)
    rd = descent.cholesky_inverse(d, upper=upper)
    (gd,) = descent.autograd.grad((rd * descent.tensor(w.numpy())).real.sum(), d)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(rd.detach().numpy(), r.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(gd.numpy(), ga.numpy(), rtol=tol, atol=tol)
    with descent.no_grad():  # no graph: the triangle's value alone
        np.testing.assert_allclose(descent.cholesky_inverse(d, upper=upper).numpy(),
                                   r.detach().numpy(), rtol=tol, atol=tol)


def test_triangular_solve_method():
    """b.triangular_solve(A) (PyTorch's deprecated method form) was missing (OpInfo method run)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 3, generator=g).triu() + 3 * torch.eye(3)
    b = torch.randn(3, 2, generator=g)
    for kw in ({}, {"upper": True, "transpose": True}, {"unitriangular": True}):
        want = b.triangular_solve(a, **kw)
        got = descent.tensor(b.numpy()).triangular_solve(descent.tensor(a.numpy()), **kw)
        np.testing.assert_allclose(got.solution.numpy(), want.solution.numpy(), rtol=1e-5)
        np.testing.assert_allclose(got.cloned_coefficient.numpy(), want.cloned_coefficient.numpy())
