"""Differences that PyTorch's OpInfo samples showed once tests/opinfo_harness.py translated
them (session 23: sparse CSR arguments, module arguments, torch.segment_reduce under its
ATen name): each case against torch."""

import numpy as np
import pytest

import descent

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")


def _t(a, **kw):
    return torch.tensor(np.asarray(a), **kw)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "prod"])
def test_segment_reduce_unsafe_lengths_short_of_the_axis(reduce):
    # unsafe=True: the lengths sum to 9 of 10 rows; the last row is left out (descent raised
    # an index error from its scatter)
    x = np.random.default_rng(0).standard_normal((10, 3))
    lengths = np.array([1, 2, 0, 6])
    tx = _t(x, requires_grad=True)
    ty = torch.segment_reduce(tx, reduce, lengths=_t(lengths), unsafe=True, initial=1.0)
    dx = descent.tensor(x, requires_grad=True)
    dy = descent.segment_reduce(dx, reduce, lengths=descent.tensor(lengths), unsafe=True,
                                initial=1.0)  # fmt: skip
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    w = np.random.default_rng(1).standard_normal(ty.shape)
    ty.backward(_t(w))
    dy.backward(descent.tensor(w))
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def _csr_pair(dense, dtype):
    t = _t(dense).to(dtype).to_sparse_csr().requires_grad_()
    d = descent.sparse_csr_tensor(descent.tensor(t.crow_indices().numpy()),
                                  descent.tensor(t.col_indices().numpy()),
                                  descent.tensor(t.values().detach().numpy()), tuple(t.shape),
                                  requires_grad=True)  # fmt: skip
    return t, d


def test_sampled_addmm_complex_gradients_conjugate_alpha_beta_and_factors():
    # the gradients of beta * input + alpha * mat1 @ mat2 are conj(beta) g, conj(alpha) G
    # mat2^H and conj(alpha) mat1^H G (descent used beta, alpha and the factors unconjugated)
    rng = np.random.default_rng(2)
    pattern = np.eye(4) + np.eye(4, k=1)
    tin, din = _csr_pair(pattern * (1 + 2j), torch.complex128)
    a = rng.standard_normal((4, 3)) + 1j * rng.standard_normal((4, 3))
    b = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    ta, tb = _t(a, requires_grad=True), _t(b, requires_grad=True)
    da, db = descent.tensor(a, requires_grad=True), descent.tensor(b, requires_grad=True)
    w = rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))
    kw = {"alpha": 2 + 3j, "beta": 1 - 2j}
    tg = torch.autograd.grad(torch.sparse.sampled_addmm(tin, ta, tb, **kw).to_dense(),
                             (tin, ta, tb), _t(w))  # fmt: skip
    dg = descent.autograd.grad(descent.sparse.sampled_addmm(din, da, db, **kw).to_dense(),
                               (din, da, db), descent.tensor(w))  # fmt: skip
    for t, d in zip(tg, dg):
        t = t.to_dense() if t.layout == torch.sparse_csr else t
        d = d.to_dense() if d.is_sparse_csr else d
        np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reduce", ["sum", "mean", "amax", "amin"])
def test_sparse_mm_reduce_gradient_reaches_the_csr_operand(reduce):
    # descent refused a CSR operand that requires grad; its gradient is at the stored entries
    rng = np.random.default_rng(3)
    dense = rng.standard_normal((5, 4)) * (rng.random((5, 4)) < 0.5)
    dense[2] = 0  # an empty row
    ts, ds = _csr_pair(dense, torch.float64)
    b = rng.standard_normal((4, 3))
    tb, db = _t(b, requires_grad=True), descent.tensor(b, requires_grad=True)
    w = rng.standard_normal((5, 3))
    ty = torch.sparse.mm(ts, tb, reduce)
    dy = descent.sparse.mm(ds, db, reduce)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    tgs, tgb = torch.autograd.grad(ty, (ts, tb), _t(w))
    dgs, dgb = descent.autograd.grad(dy, (ds, db), descent.tensor(w))
    assert dgs.is_sparse_csr
    np.testing.assert_allclose(dgs.to_dense().numpy(), tgs.to_dense().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dgb.numpy(), tgb.numpy(), rtol=1e-12)


def test_cat_out_that_is_an_empty_input_raises_as_torch():
    # PyTorch's overlap check compares the tensors first: out=x with x among the inputs
    # raises even when x is empty (descent compared memory only: an empty x shared none)
    for lib in (torch, descent):
        x, y = lib.zeros(0), lib.ones(4, 6)
        with pytest.raises(RuntimeError, match="refer to a single memory location"):
            lib.cat([x, y], dim=0, out=x)


@pytest.mark.parametrize(("mode", "padding"), [(0, 0), (0, 2), (1, 1)])
def test_grid_sampler_3d_as_torch(mode, padding):
    # torch.grid_sampler_3d was missing (op_db's grid_sampler_3d entry had no function)
    rng = np.random.default_rng(4)
    x, g = rng.standard_normal((2, 2, 3, 4, 5)), rng.uniform(-1.1, 1.1, (2, 3, 2, 4, 3))
    w = rng.standard_normal((2, 2, 3, 2, 4))
    tx, tg = _t(x, requires_grad=True), _t(g, requires_grad=True)
    dx, dg = descent.tensor(x, requires_grad=True), descent.tensor(g, requires_grad=True)
    ty = torch.grid_sampler_3d(tx, tg, mode, padding, True)
    dy = descent.grid_sampler_3d(dx, dg, mode, padding, True)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    for t, d in zip(torch.autograd.grad(ty, (tx, tg), _t(w)),
                    descent.autograd.grad(dy, (dx, dg), descent.tensor(w))):  # fmt: skip
        np.testing.assert_allclose(d.numpy(), t.numpy(), rtol=1e-12, atol=1e-13)


def test_grid_sampler_2d_3d_take_their_dimensions_only():
    image, grid2 = np.zeros((1, 1, 3, 3)), np.zeros((1, 2, 2, 2))
    volume, grid3 = np.zeros((1, 1, 3, 3, 3)), np.zeros((1, 2, 2, 2, 3))
    for lib in (torch, descent):
        t = lib.tensor
        with pytest.raises(RuntimeError, match="expected 5D input and grid"):
            lib.grid_sampler_3d(t(image), t(grid2), 0, 0, False)
        with pytest.raises(RuntimeError, match="expected 4D input and grid"):
            lib.grid_sampler_2d(t(volume), t(grid3), 0, 0, False)
        with pytest.raises(RuntimeError, match="bicubic interpolation only supports 4D"):
            lib.grid_sampler_3d(t(volume), t(grid3), 2, 0, False)
