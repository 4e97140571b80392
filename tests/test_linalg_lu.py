"""LU factorisations (descent.linalg.lu_factor / lu_factor_ex / lu / lu_solve, descent.lu_unpack
and the older descent.lu / lu_solve / Tensor methods) against torch 2.13: values and pivots,
gradients in float32, finite differences in float64 (gradcheck and gradgradcheck), singular
matrices, batch and empty shapes, errors."""

from __future__ import annotations

import descent.autograd.forward_ad as fwAD
import numpy as np
import pytest
import torch

import descent as ds
from descent.linalg import LinAlgError

SHAPES = [(1, 1), (4, 4), (3, 5, 5), (2, 3, 4, 4), (3, 5), (5, 3), (2, 4, 6), (2, 6, 4), (30, 30)]
EMPTY = [(0, 0), (2, 0, 0), (3, 0), (0, 3), (0, 3, 3), (2, 0, 4)]


def _rand(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES + EMPTY, ids=str)
def test_values_and_pivots_match_torch(shape, dtype):
    a = _rand(shape, dtype)
    LU, piv, info = ds.linalg.lu_factor_ex(ds.tensor(a))
    tLU, tpiv, tinfo = torch.linalg.lu_factor_ex(torch.tensor(a))
    assert piv.dtype == ds.int32 and info.dtype == ds.int32 and LU.dtype == ds.tensor(a).dtype
    np.testing.assert_array_equal(piv.numpy(), tpiv.numpy())
    np.testing.assert_array_equal(info.numpy(), tinfo.numpy())
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(LU.numpy(), tLU.numpy(), rtol=tol, atol=tol)
    P, L, U = ds.linalg.lu(ds.tensor(a))
    tP, tL, tU = torch.linalg.lu(torch.tensor(a))
    for got, want in ((P, tP), (L, tL), (U, tU)):
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose((P @ L @ U).numpy(), a, rtol=tol, atol=tol)
    uP, uL, uU = ds.lu_unpack(LU, piv)
    np.testing.assert_array_equal(uP.numpy(), P.numpy())
    np.testing.assert_array_equal(uL.numpy(), L.numpy())


def test_pivot_ties_and_named_tuples():
    a = np.array([[1.0, 2.0, 0.5], [-1.0, 3.0, 1.0], [1.0, -1.0, 2.0]], np.float32)
    res = ds.linalg.lu_factor(ds.tensor(a))
    assert res._fields == ("LU", "pivots")
    np.testing.assert_array_equal(res.pivots.numpy(), torch.linalg.lu_factor(torch.tensor(a))[1])
    assert ds.linalg.lu_factor_ex(ds.tensor(a))._fields == ("LU", "pivots", "info")
    assert ds.linalg.lu(ds.tensor(a))._fields == ("P", "L", "U")
    assert ds.lu_unpack(*res)._fields == ("P", "L", "U")


def test_singular_matrices_info_and_errors_like_torch():
    z = np.zeros((2, 3, 3), np.float64)
    z[1] = np.eye(3)
    cases = [np.array([[1.0, 2.0], [2.0, 4.0]]), np.array([[0.0, 1.0], [0.0, 1.0]]),
             np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]), z]  # fmt: skip
    for a in cases:
        LU, piv, info = ds.linalg.lu_factor_ex(ds.tensor(a))
        tLU, tpiv, tinfo = torch.linalg.lu_factor_ex(torch.tensor(a))
        np.testing.assert_array_equal(info.numpy(), tinfo.numpy())
        np.testing.assert_array_equal(piv.numpy(), tpiv.numpy())
        np.testing.assert_allclose(LU.numpy(), tLU.numpy(), atol=1e-12)
        P, L, U = ds.linalg.lu(ds.tensor(a))  # factorised anyway
        np.testing.assert_allclose((P @ L @ U).numpy(), a, atol=1e-12)
    with pytest.raises(LinAlgError, match=r"lu_factor: U\[2,2\] is zero"):
        ds.linalg.lu_factor(ds.tensor(cases[0]))
    with pytest.raises(RuntimeError, match=r"\(Batch element 0\): U\[1,1\] is zero"):
        ds.linalg.lu_factor(ds.tensor(z))
    with pytest.raises(LinAlgError, match="is zero"):
        ds.linalg.lu_factor_ex(ds.tensor(cases[0]), check_errors=True)
    # torch.lu factorises a singular matrix without an error
    assert ds.lu(ds.tensor(cases[0]), get_infos=True).info.item() == 2


def test_input_errors():
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        ds.linalg.lu_factor(ds.ones(3))
    with pytest.raises(RuntimeError, match="floating point"):
        ds.linalg.lu_factor(ds.ones(2, 2, dtype=ds.int64))
    with pytest.raises(NotImplementedError):  # torch refuses integers too
        torch.linalg.lu_factor(torch.ones(2, 2, dtype=torch.int64))
    LU, piv = ds.linalg.lu_factor(ds.eye(3))
    with pytest.raises(RuntimeError, match="pivots of shape"):
        ds.linalg.lu_solve(LU, piv[:2], ds.ones(3, 1))
    with pytest.raises(RuntimeError, match="1-based"):
        ds.linalg.lu_solve(LU, piv - 1, ds.ones(3, 1))
    with pytest.raises(RuntimeError, match="does not fit A"):
        ds.linalg.lu_solve(LU, piv, ds.ones(2, 1))
    with pytest.raises(RuntimeError, match="same dtype"):
        ds.linalg.lu_solve(LU, piv, ds.ones(3, 1, dtype=ds.float64))


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
@pytest.mark.parametrize("shapes", [((4, 4), (4, 2)), ((2, 3, 3), (2, 3, 3)), ((3, 3), (2, 3, 1)),
                                    ((0, 0), (0, 2))], ids=str)  # fmt: skip
def test_lu_solve_values_match_torch(shapes, left, adjoint):
    a = _rand(shapes[0]) + 3 * np.eye(shapes[0][-1], dtype=np.float32)
    b = _rand(shapes[1], seed=1)
    if not left:
        b = np.swapaxes(b, -1, -2).copy()
    LU, piv = ds.linalg.lu_factor(ds.tensor(a))
    x = ds.linalg.lu_solve(LU, piv, ds.tensor(b), left=left, adjoint=adjoint)
    tx = torch.linalg.lu_solve(*torch.linalg.lu_factor(torch.tensor(a)), torch.tensor(b),
                               left=left, adjoint=adjoint)  # fmt: skip
    assert tuple(x.shape) == tuple(tx.shape) and x.dtype == ds.float32
    np.testing.assert_allclose(x.numpy(), tx.numpy(), rtol=1e-4, atol=1e-5)


def _grads_vs_torch(f, arrays, seed=5):
    """Gradients of sum(w_i * out_i) from descent and torch (float32) for a function f(lib,
    *tensors) returning a tuple of outputs; random weights w_i."""
    xs = [ds.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    outs, touts = f(ds, *xs), f(torch, *ts)
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in touts]
    sum((o * ds.tensor(w)).sum() for o, w in zip(outs, ws)).backward()
    sum((o * torch.tensor(w)).sum() for o, w in zip(touts, ws)).backward()
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=2e-3, atol=2e-4)


GRAD_SHAPES = [(4, 4), (2, 3, 3), (3, 5), (5, 3), (2, 3, 6), (2, 6, 3)]


@pytest.mark.parametrize("shape", GRAD_SHAPES, ids=str)
def test_lu_and_lu_factor_gradients_match_torch(shape):
    a = _rand(shape, seed=2)
    _grads_vs_torch(lambda lib, A: tuple(lib.linalg.lu(A))[1:], [a])
    _grads_vs_torch(lambda lib, A: (lib.linalg.lu_factor(A)[0],), [a])
    _grads_vs_torch(lambda lib, A: tuple(lib.lu_unpack(*lib.linalg.lu_factor(A)))[1:], [a])


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("adjoint", [False, True])
def test_lu_solve_gradients_match_torch(left, adjoint):
    a = _rand((2, 4, 4), seed=3) + 3 * np.eye(4, dtype=np.float32)
    b = _rand((2, 4, 3) if left else (2, 3, 4), seed=4)

    def f(lib, A, B):  # gradients reach A through LU, and B
        LU, piv = lib.linalg.lu_factor(A)
        return (lib.linalg.lu_solve(LU, piv, B, left=left, adjoint=adjoint),)

    _grads_vs_torch(f, [a, b])

    def g(lib, LU, B):  # with respect to the packed LU itself
        piv = lib.tensor([[2, 3, 3, 4], [1, 2, 3, 4]], dtype=lib.int32)
        return (lib.linalg.lu_solve(LU, piv, B, left=left, adjoint=adjoint),)

    _grads_vs_torch(g, [a, b])


@pytest.mark.parametrize("shape", [(3, 3), (2, 3, 3), (3, 4), (4, 3)], ids=str)
def test_gradients_against_finite_differences_float64(shape):
    a = ds.tensor(_rand(shape, np.float64, seed=6), requires_grad=True)
    lu_lu = lambda A: tuple(ds.linalg.lu(A))[1:]  # noqa: E731
    lu_factor = lambda A: ds.linalg.lu_factor(A).LU  # noqa: E731
    assert ds.autograd.gradcheck(lu_lu, (a,))
    assert ds.autograd.gradcheck(lu_factor, (a,))
    assert ds.autograd.gradgradcheck(lu_lu, (a,))  # the backward under create_graph


def test_lu_solve_against_finite_differences_float64():
    a = ds.tensor(_rand((2, 3, 3), np.float64, 7) + 2 * np.eye(3), requires_grad=True)
    b = ds.tensor(_rand((2, 3, 2), np.float64, 8), requires_grad=True)
    for left, adjoint in ((True, False), (True, True), (False, False)):
        bb = b if left else ds.tensor(b.detach().numpy().swapaxes(-1, -2).copy(),
                                      requires_grad=True)  # fmt: skip

        def f(A, B, left=left, adjoint=adjoint):
            LU, piv = ds.linalg.lu_factor(A)
            return ds.linalg.lu_solve(LU, piv, B, left=left, adjoint=adjoint)

        assert ds.autograd.gradcheck(f, (a, bb))
        assert ds.autograd.gradgradcheck(f, (a, bb))


def test_forward_ad_through_lu_solve_matches_torch():
    import torch.autograd.forward_ad as tfw

    a = _rand((3, 3), seed=9) + 3 * np.eye(3, dtype=np.float32)
    v, b = _rand((3, 3), seed=10), _rand((3, 2), seed=11)
    with fwAD.dual_level():
        A = fwAD.make_dual(ds.tensor(a), ds.tensor(v))
        t = fwAD.unpack_dual(ds.linalg.lu_solve(*ds.linalg.lu_factor(A), ds.tensor(b))).tangent
    with tfw.dual_level():
        A = tfw.make_dual(torch.tensor(a), torch.tensor(v))
        tt = tfw.unpack_dual(torch.linalg.lu_solve(*torch.linalg.lu_factor(A), torch.tensor(b)))
    np.testing.assert_allclose(t.numpy(), tt.tangent.numpy(), rtol=1e-4, atol=1e-5)


def test_older_api_and_tensor_methods():
    a = _rand((2, 3, 3), seed=12)
    A, tA = ds.tensor(a), torch.tensor(a)
    from descent import linalg_torch

    linalg_torch._warned.clear()
    with pytest.warns(UserWarning, match="torch.lu is deprecated"):
        LU, piv = ds.lu(A)
    tLU, tpiv = torch.lu(tA)
    np.testing.assert_allclose(LU.numpy(), tLU.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(piv.numpy(), tpiv.numpy())
    res = A.lu(get_infos=True)
    assert res.info.numpy().tolist() == [0, 0] and len(res) == 3
    b = _rand((2, 3, 2), seed=13)
    want = torch.lu_solve(torch.tensor(b), tLU, tpiv).numpy()
    np.testing.assert_allclose(ds.lu_solve(ds.tensor(b), LU, piv).numpy(), want, rtol=1e-4)
    np.testing.assert_allclose(ds.tensor(b).lu_solve(LU, piv).numpy(), want, rtol=1e-4)
    P, L, U = ds.lu_unpack(LU, piv, unpack_data=False)
    tP, tL, tU = torch.lu_unpack(tLU, tpiv, unpack_data=False)
    np.testing.assert_array_equal(P.numpy(), tP.numpy())
    assert tuple(L.shape) == tuple(tL.shape) == (0,) and tuple(U.shape) == (0,)
    P, L, U = ds.lu_unpack(LU, piv, unpack_pivots=False)
    assert tuple(P.shape) == tuple(torch.lu_unpack(tLU, tpiv, unpack_pivots=False).P.shape)


def test_without_pivoting():
    """pivot=False (PyTorch: CUDA only, 'not implemented on the CPU'): A = L U, P empty."""
    a = _rand((2, 4, 4), np.float64, 14) + 4 * np.eye(4)
    P, L, U = ds.linalg.lu(ds.tensor(a), pivot=False)
    assert P.numel() == 0
    np.testing.assert_allclose((L @ U).numpy(), a, atol=1e-12)
    LU, piv = ds.linalg.lu_factor(ds.tensor(a), pivot=False)
    assert piv.numpy().tolist() == [[1, 2, 3, 4]] * 2
    x = ds.linalg.lu_solve(LU, piv, ds.ones(2, 4, 1, dtype=ds.float64))
    np.testing.assert_allclose((ds.tensor(a) @ x).numpy(), np.ones((2, 4, 1)), atol=1e-12)
    with pytest.raises(RuntimeError, match="not implemented on the CPU"):
        torch.linalg.lu_factor(torch.tensor(a), pivot=False)


def test_empty_gradients_and_no_graph_without_requires_grad():
    a = ds.zeros(2, 0, 0, requires_grad=True)
    P, L, U = ds.linalg.lu(a)
    (L.sum() + U.sum()).backward()
    assert tuple(a.grad.shape) == (2, 0, 0)
    LU, _ = ds.linalg.lu_factor(ds.eye(3))
    assert not LU.requires_grad and LU.grad_fn is None


def test_invariants_on_integer_matrices_with_ties():
    """Exact ties (where torch's pivots may differ by rounding): still P L U = A, |L| <= 1
    (partial pivoting), pivots in range, info = first zero of U's diagonal."""
    rng = np.random.default_rng(15)
    a = rng.integers(-3, 4, (200, 5, 5)).astype(np.float64)
    LU, piv, info = ds.linalg.lu_factor_ex(ds.tensor(a))
    P, L, U = ds.lu_unpack(LU, piv)
    np.testing.assert_allclose((P @ L @ U).numpy(), a, atol=1e-12)
    assert np.abs(L.numpy()).max() <= 1.0
    p = piv.numpy()
    assert ((p >= np.arange(1, 6)) & (p <= 5)).all()  # row i swaps with a row at or below it
    zero = np.diagonal(U.numpy(), axis1=-2, axis2=-1) == 0
    want = np.where(zero.any(-1), zero.argmax(-1) + 1, 0)
    np.testing.assert_array_equal(info.numpy(), want)
