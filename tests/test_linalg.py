"""Differential tests of descent.linalg against PyTorch (torch.linalg): values and gradients in
float32 and float64, batched and empty shapes, dtypes kept, PyTorch's errors (integer input,
singular matrices: LinAlgError), the norms' dispatch and their gradients at zero, the named
tuples, torch's top-level names (torch.det, torch.svd's V, ...) and the Tensor methods.
The op table (tests/specs/linalg.py) adds finite differences and second derivatives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import descent as ds
import descent.linalg as LA

F32, F64 = np.float32, np.float64
TDT = {F32: torch.float32, F64: torch.float64}
TOL = {F32: dict(rtol=2e-4, atol=2e-5), F64: dict(rtol=1e-9, atol=1e-11)}


def rng(seed=0):
    return np.random.default_rng(seed)


def general(shape, seed=0):
    a = rng(seed).normal(size=shape)
    return a + 3 * np.eye(shape[-1]) if shape[-1] == shape[-2] else a


def spd(shape, seed=0):
    x = rng(seed).normal(size=shape)
    return x @ np.swapaxes(x, -1, -2) / shape[-1] + np.eye(shape[-1])


def as_list(y):
    return list(y) if isinstance(y, (tuple, list)) else [y]


def svd_invariants(u, s, vh):
    """What the SVD determines: the singular values and the squares of the first k singular
    vectors (LAPACK's sign choices differ between libraries; the extra columns of a full SVD
    are any orthonormal basis of the complement)."""
    k = s.shape[-1]
    return [u[..., :k] ** 2, s, vh[..., :k, :] ** 2]


def check(fd, ft, arrays, dtype, grad=True, tol=None, seed=1):
    """fd(descent tensors) and ft(torch tensors) agree in values, dtypes, shapes and in the
    gradients of a random projection of every output that requires grad."""
    tol = tol or TOL[dtype]
    td = [ds.tensor(np.asarray(a, dtype), requires_grad=grad) for a in arrays]
    tt = [torch.tensor(np.asarray(a, dtype), requires_grad=grad) for a in arrays]
    yd, yt = as_list(fd(*td)), as_list(ft(*tt))
    assert len(yd) == len(yt)
    loss_d, loss_t = None, None
    r = rng(seed)
    for a, b in zip(yd, yt):
        e = b.detach().numpy()
        assert a.shape == tuple(e.shape), (a.shape, e.shape)
        assert a.numpy().dtype == e.dtype, (a.numpy().dtype, e.dtype)
        np.testing.assert_allclose(a.numpy(), e, **tol)
        if grad and b.requires_grad:
            w = r.normal(size=e.shape).astype(dtype)
            ld, lt = (a * ds.tensor(w)).sum(), (b * torch.tensor(w)).sum()
            loss_d = ld if loss_d is None else loss_d + ld
            loss_t = lt if loss_t is None else loss_t + lt
    if loss_d is not None:
        loss_d.backward()
        loss_t.backward()
        for a, b in zip(td, tt):
            if b.grad is None:
                assert a.grad is None or not np.any(a.grad.numpy())
                continue
            assert a.grad.dtype == a.dtype
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)


DTYPES = [F32, F64]
# torch.cholesky and torch.qr warn that they are deprecated: they are the oracle here.
pytestmark = pytest.mark.filterwarnings(r"ignore:torch\.(cholesky|qr) is deprecated")
BATCHES = [(), (2,), (2, 3), (0,)]


# ---------------------------------------------------------------------------------------------
# Decompositions and solvers: values and gradients against torch, batched and empty


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", BATCHES)
def test_square_matrix_functions_match_torch(dtype, batch):
    a = general(batch + (4, 4))
    b = rng(1).normal(size=batch + (4, 2))
    check(LA.det, torch.linalg.det, [a], dtype)
    check(lambda x: tuple(LA.slogdet(x)), lambda x: tuple(torch.linalg.slogdet(x)), [a], dtype)
    check(LA.inv, torch.linalg.inv, [a], dtype)
    check(LA.solve, torch.linalg.solve, [a, b], dtype)
    check(lambda x, y: LA.solve(x, y[..., 0]), lambda x, y: torch.linalg.solve(x, y[..., 0]),
          [a, b], dtype)  # fmt: skip
    check(lambda x, y: LA.solve(x, y.mT, left=False),
          lambda x, y: torch.linalg.solve(x, y.mT, left=False), [a, b], dtype)  # fmt: skip
    s = spd(batch + (4, 4))
    check(LA.cholesky, torch.linalg.cholesky, [s], dtype)
    check(lambda x: LA.cholesky(x, upper=True), lambda x: torch.linalg.cholesky(x, upper=True),
          [s], dtype)  # fmt: skip
    # eigh: eigenvalues and the sign-invariant squares of the eigenvectors
    check(lambda x: [LA.eigh(x)[0], LA.eigh(x)[1] ** 2],
          lambda x: [torch.linalg.eigh(x)[0], torch.linalg.eigh(x)[1] ** 2], [s], dtype)
    check(LA.eigvalsh, torch.linalg.eigvalsh, [s], dtype)
    for n in (0, 1, 2, 3, -1, -2):
        check(lambda x, n=n: LA.matrix_power(x, n), lambda x, n=n: torch.linalg.matrix_power(x, n),
              [a], dtype)  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (3, 3), (3, 5), (2, 5, 3), (2, 3, 5), (0, 4, 3)])
def test_rectangular_matrix_functions_match_torch(dtype, shape):
    a = rng(2).normal(size=shape)
    check(lambda x: tuple(LA.qr(x)), lambda x: tuple(torch.linalg.qr(x)), [a], dtype)
    if shape[-2] <= shape[-1]:
        check(lambda x: tuple(LA.qr(x, "complete")),
              lambda x: tuple(torch.linalg.qr(x, "complete")), [a], dtype)  # fmt: skip
    for full in (False, True):
        check(lambda x, f=full: svd_invariants(*LA.svd(x, f)),
              lambda x, f=full: svd_invariants(*torch.linalg.svd(x, full_matrices=f)), [a],
              dtype)  # fmt: skip
    u, s, vh = LA.svd(ds.tensor(a))
    assert u.shape == shape[:-1] + (shape[-2],) and vh.shape == shape[:-2] + (shape[-1],) * 2
    check(LA.svdvals, torch.linalg.svdvals, [a], dtype)
    check(LA.pinv, torch.linalg.pinv, [a], dtype)
    b = rng(3).normal(size=shape[:-1] + (2,))
    check(lambda x, y: LA.lstsq(x, y).solution, lambda x, y: torch.linalg.lstsq(x, y).solution,
          [a, b], dtype, tol=dict(rtol=1e-3, atol=1e-4) if dtype == F32 else None)  # fmt: skip


def test_empty_matrices_follow_numpy_and_torch():
    for fd, ft in [(LA.det, torch.linalg.det), (LA.inv, torch.linalg.inv),
                   (LA.cholesky, torch.linalg.cholesky), (LA.eigvalsh, torch.linalg.eigvalsh),
                   (LA.svdvals, torch.linalg.svdvals)]:  # fmt: skip
        check(fd, ft, [np.zeros((2, 0, 0))], F64)
    check(lambda x: tuple(LA.svd(x)), lambda x: tuple(torch.linalg.svd(x)), [np.zeros((0, 3))],
          F64, grad=False)  # fmt: skip
    check(lambda x: tuple(LA.qr(x)), lambda x: tuple(torch.linalg.qr(x)), [np.zeros((0, 3))],
          F64, grad=False)  # fmt: skip


def test_float32_stays_float32_and_float64_stays_float64():
    for dtype in (np.float32, np.float64):
        a = ds.tensor(spd((3, 3)).astype(dtype))
        outs = [LA.det(a), LA.inv(a), LA.cholesky(a), *LA.slogdet(a), *LA.qr(a), *LA.eigh(a),
                LA.eigvalsh(a), *LA.svd(a), LA.svdvals(a), LA.pinv(a), LA.matrix_power(a, -2),
                LA.solve(a, a), LA.vector_norm(a), LA.matrix_norm(a, "nuc"), LA.norm(a),
                LA.cond(a), LA.lstsq(a, a).solution, LA.multi_dot([a, a, a]),
                LA.vecdot(a, a), ds.logdet(a), ds.pinverse(a)]  # fmt: skip
        assert all(o.dtype == dtype for o in outs), [o.dtype for o in outs]
    assert LA.matrix_rank(ds.tensor(np.eye(3, dtype=np.float32))).dtype == np.int64


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("name", ["det", "slogdet", "inv", "cholesky", "qr", "eigh", "eigvalsh",
                                  "svd", "svdvals", "pinv", "matrix_rank", "vector_norm",
                                  "matrix_norm"])  # fmt: skip
def test_integer_input_raises_like_torch(name):
    a = np.array([[2, 1], [1, 3]])
    with pytest.raises(RuntimeError):
        getattr(torch.linalg, name)(torch.tensor(a))
    with pytest.raises(RuntimeError, match=r"linalg\.\w+: Expected a floating point"):
        getattr(LA, name)(ds.tensor(a))


def test_singular_and_indefinite_matrices_raise_linalg_error():
    assert issubclass(LA.LinAlgError, RuntimeError) and issubclass(LA.LinAlgError,
                                                                   ds.DescentError)
    z = np.zeros((3, 2, 2))
    z[0] = np.eye(2)
    with pytest.raises(torch.linalg.LinAlgError, match="singular"):
        torch.linalg.inv(torch.tensor(z))
    with pytest.raises(LA.LinAlgError, match=r"linalg\.inv \(batch element 1\).*\(3, 2, 2\)"):
        LA.inv(ds.tensor(z))
    with pytest.raises(LA.LinAlgError, match=r"linalg\.solve.*singular.*pinv"):
        LA.solve(ds.tensor(np.zeros((2, 2))), ds.tensor(np.ones(2)))
    with pytest.raises(torch.linalg.LinAlgError, match="positive-definite"):
        torch.linalg.cholesky(-torch.eye(2))
    with pytest.raises(LA.LinAlgError, match=r"linalg\.cholesky.*positive-definite"):
        LA.cholesky(-ds.eye(2))
    with pytest.raises(RuntimeError, match="square"):
        LA.det(ds.zeros(2, 3))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        LA.inv(ds.zeros(3))
    with pytest.raises(RuntimeError, match="(?i)incompatible shapes"):
        LA.solve(ds.eye(3), ds.ones(2, 3))
    with pytest.raises(RuntimeError, match="Incompatible shapes"):  # a vector with left=False
        torch.linalg.solve(torch.eye(3), torch.ones(3), left=False)
    with pytest.raises(RuntimeError, match="Incompatible shapes.*XA = B"):
        LA.solve(ds.eye(3), ds.ones(3), left=False)
    with pytest.raises(RuntimeError, match="mode"):
        LA.qr(ds.eye(2), mode="full")


@pytest.mark.parametrize("name", ["svd", "svdvals", "pinv"])
def test_svd_of_nan_raises_linalg_error_like_torch(name):
    nan = np.full((2, 3, 3), np.nan)
    with pytest.raises(torch.linalg.LinAlgError, match="Batch element 0"):
        getattr(torch.linalg, name)(torch.tensor(nan))
    with pytest.raises(LA.LinAlgError, match=rf"linalg\.{name} \(batch element 0\).*nan"):
        getattr(LA, name)(ds.tensor(nan))


def test_qr_modes_that_torch_cannot_differentiate_raise():
    a = ds.tensor(rng().normal(size=(4, 3)), requires_grad=True)
    q, r = LA.qr(a, mode="r")
    assert q.shape == (0,) and r.shape == (3, 3)
    with pytest.raises(RuntimeError, match="mode='r'"):
        r.sum().backward()
    q, r = LA.qr(a, mode="complete")
    with pytest.raises(RuntimeError, match="complete"):
        (q.sum() + r.sum()).backward()


# ---------------------------------------------------------------------------------------------
# Norms: dispatch, values and gradients (also at zero and at ties)

ORDS = [2, 1, 3, 0.5, 1.5, -1, 0, math.inf, -math.inf]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ord", ORDS)
def test_vector_norm_matches_torch(dtype, ord):
    x = rng(4).normal(size=(3, 4, 5))
    for dim, kd in [(None, False), (1, False), ((0, 2), True), (-1, True), ((), False)]:
        check(lambda t, dim=dim, kd=kd: LA.vector_norm(t, ord, dim, kd),
              lambda t, dim=dim, kd=kd: torch.linalg.vector_norm(t, ord, dim, kd), [x], dtype)


@pytest.mark.parametrize("ord", ORDS)
def test_vector_norm_gradient_at_zero_ties_and_nan_is_torchs(ord):
    for x in [np.zeros(4), np.array([0.0, 2.0, -2.0, 1.0]), np.array([0.0, -3.0, 3.0, 3.0]),
              np.array([[0.0, 0.0], [1.0, -1.0]])]:  # fmt: skip
        check(lambda t: LA.vector_norm(t, ord, -1), lambda t: torch.linalg.vector_norm(t, ord, -1),
              [x], F64)  # fmt: skip


def test_vector_norm_options_and_errors():
    x = np.arange(6.0).reshape(2, 3)
    check(lambda t: LA.vector_norm(t, dtype=ds.float64),
          lambda t: torch.linalg.vector_norm(t, dtype=torch.float64), [x], F32)  # fmt: skip
    check(lambda t: LA.vector_norm(t), lambda t: torch.linalg.vector_norm(t), [np.zeros((0, 3))],
          F64)  # fmt: skip
    with pytest.raises(RuntimeError, match="empty"):
        LA.vector_norm(ds.zeros(0), math.inf)
    with pytest.raises(TypeError):
        LA.vector_norm(ds.zeros(3), "fro")
    with pytest.raises(IndexError):
        LA.vector_norm(ds.zeros(3), 2, dim=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ord", ["fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf])
def test_matrix_norm_matches_torch(dtype, ord):
    a = rng(5).normal(size=(2, 4, 3))
    for dim, kd in [((-2, -1), False), ((2, 0), True), ((0, 1), False)]:
        check(lambda t, dim=dim, kd=kd: LA.matrix_norm(t, ord, dim, kd),
              lambda t, dim=dim, kd=kd: torch.linalg.matrix_norm(t, ord, dim, kd), [a], dtype)
    for empty in [np.zeros((2, 0, 3)), np.zeros((3, 0))]:
        try:
            torch.linalg.matrix_norm(torch.tensor(empty), ord)
        except (RuntimeError, IndexError) as e:  # a minimum over nothing: descent raises too
            with pytest.raises(type(e)):
                LA.matrix_norm(ds.tensor(empty), ord)
            continue
        check(lambda t: LA.matrix_norm(t, ord), lambda t: torch.linalg.matrix_norm(t, ord),
              [empty], dtype)  # fmt: skip


def test_norm_dispatch_matches_torch():
    v, m, t3 = rng(6).normal(size=5), rng(7).normal(size=(3, 4)), rng(8).normal(size=(2, 3, 4))
    cases = [(v, {}), (v, dict(ord=1)), (v, dict(ord=math.inf)), (m, {}), (m, dict(ord="nuc")),
             (m, dict(ord=2)), (m, dict(ord=-math.inf)), (t3, {}), (t3, dict(dim=1)),
             (t3, dict(ord=3, dim=-1, keepdim=True)), (t3, dict(dim=(0, 2))),
             (t3, dict(ord=1, dim=(2, 1))), (t3, dict(ord="fro", dim=(0, 1)))]  # fmt: skip
    for x, kw in cases:
        check(lambda t, kw=kw: LA.norm(t, **kw), lambda t, kw=kw: torch.linalg.norm(t, **kw),
              [x], F64)  # fmt: skip
    with pytest.raises(RuntimeError, match="1D or 2D"):
        torch.linalg.norm(torch.zeros(2, 2, 2), ord=2)
    with pytest.raises(RuntimeError, match="1D or 2D"):
        LA.norm(ds.zeros(2, 2, 2), ord=2)


# ---------------------------------------------------------------------------------------------
# Gradients where the formula has choices


def test_det_gradient_at_singular_matrices_is_the_cofactor_matrix():
    # PyTorch's first-order backward returns 0 where det(A) is exactly 0 (its LU shortcut:
    # det(A) A^{-T} with the zero pivots nudged); its create_graph path, and descent always,
    # return the cofactor matrix from the SVD, the derivative (docs/linalg.md).
    a = np.array([[[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]],
                  [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                  [[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]])  # fmt: skip
    xt = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad(torch.linalg.det(xt).sum(), [xt], create_graph=True)
    xd = ds.tensor(a, requires_grad=True)
    LA.det(xd).sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), gt.detach().numpy(), atol=1e-12)
    assert xd.grad.numpy()[1, 0, 0] == pytest.approx(1.0)  # the minor of the zero entry


def test_slogdet_gradient_at_a_singular_matrix_is_not_finite_like_torchs():
    z = np.zeros((2, 2, 2))
    z[1] = [[2.0, 1.0], [1.0, 1.0]]
    xt = torch.tensor(z, requires_grad=True)
    torch.linalg.slogdet(xt).logabsdet.sum().backward()
    xd = ds.tensor(z, requires_grad=True)
    sign, logabs = LA.slogdet(xd)
    assert sign.numpy().tolist() == [0.0, 1.0] and logabs.numpy()[0] == -np.inf
    logabs.sum().backward()
    assert not np.isfinite(xt.grad.numpy()[0]).all() and np.isnan(xd.grad.numpy()[0]).all()
    np.testing.assert_allclose(xd.grad.numpy()[1], xt.grad.numpy()[1], rtol=1e-12)


def test_eigenvalue_gradients_are_finite_at_repeated_eigenvalues():
    a = np.diag([1.0, 1.0, 2.0])
    check(LA.eigvalsh, torch.linalg.eigvalsh, [a], F64)
    check(LA.svdvals, torch.linalg.svdvals, [np.eye(3)], F64)
    # the eigenvalues of eigh alone use no eigenvalue gaps either (as PyTorch)
    check(lambda t: LA.eigh(t).eigenvalues, lambda t: torch.linalg.eigh(t).eigenvalues, [a], F64)


def test_create_graph_gives_second_derivatives():
    # d/dA of <grad det(A), W> through the recorded backward (solve / inv ops)
    a = general((3, 3))
    w = rng(9).normal(size=(3, 3))
    for fd, ft in [(LA.det, torch.linalg.det), (lambda x: LA.inv(x).sum(),
                                                 lambda x: torch.linalg.inv(x).sum()),
                   (lambda x: LA.svdvals(x).sum(), lambda x: torch.linalg.svdvals(x).sum()),
                   (lambda x: LA.eigvalsh(x @ x.mT)[-1], lambda x: torch.linalg.eigvalsh(x @ x.mT)[-1])]:  # noqa: E501
        xd = ds.tensor(a, requires_grad=True)
        (g,) = ds.autograd.grad(fd(xd), [xd], create_graph=True)
        (g * ds.tensor(w)).sum().backward()
        xt = torch.tensor(a, requires_grad=True)
        (gt,) = torch.autograd.grad(ft(xt), [xt], create_graph=True)
        (gt * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-9)
        np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# The rest of torch.linalg, named tuples, torch's top-level names and Tensor methods


def test_named_tuples_have_torchs_fields():
    a = ds.tensor(spd((3, 3)))
    assert LA.slogdet(a).sign.shape == () and LA.slogdet(a).logabsdet.shape == ()
    assert LA.eigh(a).eigenvalues.shape == (3,) and LA.eigh(a).eigenvectors.shape == (3, 3)
    assert LA.qr(a).Q.shape == (3, 3) and LA.svd(a).Vh.shape == (3, 3)
    r = LA.lstsq(a, a)
    assert r.solution.shape == (3, 3)
    sign, logabsdet = ds.slogdet(a)
    assert not sign.requires_grad


@pytest.mark.parametrize("driver", [None, "gels", "gelsy", "gelsd", "gelss"])
def test_lstsq_outputs_follow_torchs_drivers(driver):
    a, b = rng(10).normal(size=(2, 6, 3)), rng(11).normal(size=(2, 6, 2))
    rd = LA.lstsq(ds.tensor(a), ds.tensor(b), driver=driver)
    rt = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
    for x, y in zip(rd, rt):
        assert x.shape == tuple(y.shape) and x.numpy().dtype == y.numpy().dtype
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-8, atol=1e-10)


def test_products_and_small_functions_match_torch():
    r = rng(12)
    vs = [r.normal(size=4), r.normal(size=(4, 6)), r.normal(size=(6, 2)), r.normal(size=(2, 5)),
          r.normal(size=5)]  # fmt: skip
    check(lambda *t: LA.multi_dot(t), lambda *t: torch.linalg.multi_dot(t), vs, F64)
    check(lambda *t: LA.multi_dot(t), lambda *t: torch.linalg.multi_dot(t), vs[1:4], F32)
    x, y = r.normal(size=(1, 2, 3)), r.normal(size=(4, 2, 3))
    check(lambda a, b: LA.vecdot(a, b), lambda a, b: torch.linalg.vecdot(a, b), [x, y], F64)
    check(lambda a, b: LA.vecdot(a, b, dim=1), lambda a, b: torch.linalg.vecdot(a, b, dim=1),
          [x, y], F64)  # fmt: skip
    check(LA.cross, torch.linalg.cross, [x, y], F64)
    check(lambda a: LA.diagonal(a, offset=1), lambda a: torch.linalg.diagonal(a, offset=1),
          [y], F64)  # fmt: skip
    check(LA.cond, torch.linalg.cond, [general((2, 3, 3))], F64)
    # torch.linalg.cond(A, 'fro') cannot backpropagate (an in-place write in PyTorch 2.13):
    # the gradient is compared with its definition, norm(A) norm(inv(A)).
    check(lambda a: LA.cond(a, "fro"), lambda a: torch.linalg.cond(a, "fro"),
          [general((3, 3))], F64, grad=False)  # fmt: skip
    check(lambda a: LA.cond(a, "fro"),
          lambda a: torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(torch.linalg.inv(a)),
          [general((3, 3))], F64)  # fmt: skip
    check(LA.matmul, torch.linalg.matmul, [x, y.swapaxes(-1, -2)], F64)
    for a in [np.eye(3), np.array([[1.0, 2.0], [2.0, 4.0]]), np.zeros((2, 3, 4)),
              r.normal(size=(2, 5, 3))]:  # fmt: skip
        for kw in [{}, dict(atol=0.5), dict(rtol=0.9)]:
            np.testing.assert_array_equal(LA.matrix_rank(ds.tensor(a), **kw).numpy(),
                                          torch.linalg.matrix_rank(torch.tensor(a), **kw))
        np.testing.assert_array_equal(
            LA.matrix_rank(ds.tensor(a @ np.swapaxes(a, -1, -2)), hermitian=True).numpy(),
            torch.linalg.matrix_rank(torch.tensor(a @ np.swapaxes(a, -1, -2)), hermitian=True))


@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_top_level_names_and_tensor_methods(dtype):
    a, s = general((2, 3, 3)), spd((2, 3, 3))
    neg = np.diag([-1.0, 2.0, 3.0])  # det < 0: logdet is nan
    check(ds.det, torch.det, [a], dtype)
    check(lambda t: t.det(), lambda t: t.det(), [a], dtype)
    check(ds.logdet, torch.logdet, [s], dtype)
    check(lambda t: t.logdet(), lambda t: t.logdet(), [neg], dtype)
    check(lambda t: tuple(ds.slogdet(t)), lambda t: tuple(torch.slogdet(t)), [a], dtype)
    check(lambda t: tuple(t.slogdet()), lambda t: tuple(t.slogdet()), [a], dtype)
    check(ds.inverse, torch.inverse, [a], dtype)
    check(lambda t: t.inverse(), lambda t: t.inverse(), [a], dtype)
    check(ds.pinverse, torch.pinverse, [a[..., :2]], dtype)
    check(lambda t: t.pinverse(), lambda t: t.pinverse(), [a], dtype)
    check(lambda t: ds.matrix_power(t, 3), lambda t: torch.matrix_power(t, 3), [a], dtype)
    check(ds.matrix_exp, torch.matrix_exp, [a / 4], dtype)
    check(lambda t: t.matrix_exp(), lambda t: t.matrix_exp(), [a / 4], dtype)
    check(lambda t: t.matrix_power(-2), lambda t: t.matrix_power(-2), [a], dtype)
    check(ds.cholesky, torch.cholesky, [s], dtype)
    check(lambda t: t.cholesky(upper=True), lambda t: t.cholesky(upper=True), [s], dtype)
    low = np.linalg.cholesky(s)
    b = rng(13).normal(size=(2, 3, 2))
    check(ds.cholesky_solve, torch.cholesky_solve, [b, low], dtype)
    check(lambda x, y: x.cholesky_solve(y, upper=True),
          lambda x, y: x.cholesky_solve(y, upper=True), [b, np.swapaxes(low, -1, -2)], dtype)
    check(ds.cholesky_inverse, torch.cholesky_inverse, [low], dtype)
    check(lambda t: t.cholesky_inverse(upper=True), lambda t: t.cholesky_inverse(upper=True),
          [np.swapaxes(low, -1, -2)], dtype)  # fmt: skip
    # torch.svd: V, not Vh (squared: sign-invariant); some=False is the full SVD
    for x in [a, rng(14).normal(size=(4, 2))]:
        for some in (True, False):
            check(lambda t, sm=some: svd_invariants(*ds.svd(t, sm)[:2], ds.svd(t, sm)[2].mT),
                  lambda t, sm=some: svd_invariants(*torch.svd(t, sm)[:2], torch.svd(t, sm)[2].mT),
                  [x], dtype)  # fmt: skip
        check(lambda t: tuple(t.svd(compute_uv=False)),
              lambda t: tuple(t.svd(compute_uv=False)), [x], dtype)  # fmt: skip
        check(lambda t: tuple(ds.qr(t)), lambda t: tuple(torch.qr(t)), [x], dtype)
        check(lambda t: tuple(t.qr(some=False)), lambda t: tuple(t.qr(some=False)), [x], dtype,
              grad=x.shape[-2] <= x.shape[-1])  # fmt: skip
    assert ds.svd(ds.tensor(a)).V.shape == (2, 3, 3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_triangular_tensor_exp_and_vander_match_torch(dtype):
    a, b = general((2, 4, 4)), rng(1).normal(size=(2, 4, 3))
    for upper in (True, False):
        for left in (True, False):
            for unit in (True, False):
                kw = dict(upper=upper, left=left, unitriangular=unit)
                check(lambda x, y, kw=kw: LA.solve_triangular(x, y, **kw),
                      lambda x, y, kw=kw: torch.linalg.solve_triangular(x, y, **kw),
                      [a, b if left else np.swapaxes(b, -1, -2)], dtype)  # fmt: skip
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == F32 else dict(rtol=1e-10, atol=1e-12)
    for scale in (0.1, 1, 5, 30) if dtype == F64 else (0.1, 1, 5):  # float32 overflows at 30
        check(LA.matrix_exp, torch.linalg.matrix_exp, [rng(2).normal(size=(2, 3, 3)) * scale],
              dtype, tol=tol)  # fmt: skip
    check(LA.matrix_exp, torch.linalg.matrix_exp, [np.zeros((0, 3, 3))], dtype)
    check(LA.vander, torch.linalg.vander, [rng(3).normal(size=(2, 4))], dtype)
    check(lambda x: LA.vander(x, N=3), lambda x: torch.linalg.vander(x, N=3),
          [np.array([0.0, 1.0, -2.0])], dtype)  # fmt: skip
    check(lambda x: LA.tensorinv(x, ind=2), lambda x: torch.linalg.tensorinv(x, ind=2),
          [general((6, 6)).reshape(2, 3, 6)], dtype)  # fmt: skip
    a6, b6 = general((6, 6)).reshape(2, 3, 6), rng(4).normal(size=(2, 3))
    check(LA.tensorsolve, torch.linalg.tensorsolve, [a6, b6], dtype)
    check(lambda x, y: LA.tensorsolve(x, y, dims=(0,)),
          lambda x, y: torch.linalg.tensorsolve(x, y, dims=(0,)), [np.moveaxis(a6, 2, 0), b6],
          dtype)  # fmt: skip
    np.testing.assert_array_equal(LA.vander(ds.tensor([1, 2, 3])).numpy(),
                                  torch.linalg.vander(torch.tensor([1, 2, 3])).numpy())


def test_compositions_pass_finite_difference_checks():
    from descent.explain import gradcheck

    a = ds.tensor(rng(5).normal(size=(3, 3)), requires_grad=True)
    x = ds.tensor(rng(6).normal(size=4), requires_grad=True)
    b = ds.tensor(rng(7).normal(size=(3, 2)), requires_grad=True)
    for fn, args in [(LA.matrix_exp, [a]), (lambda t: LA.vander(t, N=4), [x]),
                     (lambda t, y: LA.solve_triangular(t + 3 * ds.eye(3, dtype=ds.float64), y,
                                                       upper=True), [a, b]),
                     (lambda t: LA.multi_dot([t, t.mT, t]), [a]),
                     (lambda t: LA.norm(t, "nuc"), [a]), (lambda t: LA.cond(t), [a]),
                     # the factor's triangle (the value reads only it, as PyTorch's)
                     (lambda t: ds.cholesky_inverse((t + 3 * ds.eye(3, dtype=ds.float64))
                                                    .tril()), [a]),
                     (lambda t: LA.tensorinv(t.reshape(3, 3, 1) + 3 * ds.eye(3, dtype=ds.float64)
                                             .reshape(3, 3, 1), ind=1), [a]),
                     (lambda t, y: LA.tensorsolve(t + 3 * ds.eye(3, dtype=ds.float64), y[:, 0]),
                      [a, b]),
                     (lambda t, y: LA.vecdot(t[:, :2], y), [a, b]),
                     (lambda t: LA.matrix_power(t, -2), [a])]:  # fmt: skip
        gradcheck(fn, args, raise_on_failure=True)


# ---------------------------------------------------------------------------------------------
# On a GPU (skipped without one): the same values and gradients through CuPy's cupy.linalg

GPU_CASES = [
    ("det", lambda a: LA.det(a), general((2, 3, 3))),
    ("slogdet", lambda a: LA.slogdet(a).logabsdet, general((2, 3, 3))),
    ("inv", LA.inv, general((2, 3, 3))),
    ("solve", lambda a: LA.solve(a, a[..., :2]), general((2, 3, 3))),
    ("cholesky", LA.cholesky, spd((2, 3, 3))),
    ("qr", lambda a: LA.qr(a).R, rng(1).normal(size=(2, 4, 3))),
    ("eigh", lambda a: LA.eigh(a).eigenvectors ** 2, spd((2, 3, 3))),
    ("eigvalsh", LA.eigvalsh, spd((2, 3, 3))),
    ("svd", lambda a: LA.svd(a, full_matrices=False).U ** 2, rng(2).normal(size=(2, 4, 3))),
    ("svdvals", LA.svdvals, rng(2).normal(size=(2, 4, 3))),
    ("pinv", LA.pinv, rng(3).normal(size=(2, 4, 3))),
    ("vector_norm", lambda a: LA.vector_norm(a, 3, dim=-1), rng(4).normal(size=(2, 4, 3))),
    ("matrix_norm", lambda a: LA.matrix_norm(a, "nuc"), rng(4).normal(size=(2, 4, 3))),
    ("matrix_exp", LA.matrix_exp, general((2, 3, 3)) / 4),
]


@pytest.mark.skipif(not ds.backend.cuda_available(), reason="no CUDA GPU / CuPy")
@pytest.mark.parametrize("name,fn,a", GPU_CASES, ids=[c[0] for c in GPU_CASES])
def test_gpu_matches_cpu(name, fn, a):
    cpu = ds.tensor(a, requires_grad=True)
    gpu = ds.tensor(a).to("cuda").detach().requires_grad_()
    y_cpu, y_gpu = fn(cpu), fn(gpu)
    assert y_gpu.device != y_cpu.device
    np.testing.assert_allclose(y_gpu.detach().to("cpu").numpy(), y_cpu.detach().numpy(),
                               rtol=1e-9, atol=1e-11)  # fmt: skip
    w = rng(5).normal(size=y_cpu.shape)
    (y_cpu * ds.tensor(w)).sum().backward()
    (y_gpu * ds.tensor(w).to("cuda")).sum().backward()
    np.testing.assert_allclose(gpu.grad.to("cpu").numpy(), cpu.grad.numpy(), rtol=1e-8,
                               atol=1e-10)  # fmt: skip


def test_einsum_sublist_form_as_torch():
    """torch.einsum(a, [0, 1], b, [1, 2], [0, 2]): PyTorch's sublist form (ints 0..51 and
    Ellipsis), explicit and implicit output; values and gradients vs torch, and its errors."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b_np = rng.standard_normal((4, 5)).astype(np.float32)
    forms = [
        lambda a, b, lib: lib.einsum(a, [0, 1, 2], b, [2, 3], [0, 1, 3]),
        lambda a, b, lib: lib.einsum(a, [0, 1, 2], b, [2, 3]),  # implicit output: 0, 1, 3
        lambda a, b, lib: lib.einsum(a, [Ellipsis, 30], b, [30, 51], [Ellipsis, 51]),
        lambda a, b, lib: lib.einsum(a, [27, 5, 1]),  # implicit: 'B' 'F' 'b' ascii order
        lambda a, b, lib: lib.einsum(a, [0, 1, 2], [2, 0]),
    ]
    for form in forms:
        results = []
        for lib in (ds, torch):
            a = lib.tensor(a_np, requires_grad=True)
            b = lib.tensor(b_np, requires_grad=True)
            y = form(a, b, lib)
            (y * y).sum().backward()
            grads = [t.grad.numpy() if t.grad is not None else None for t in (a, b)]
            results.append((y.detach().numpy(), grads))
        (y0, g0), (y1, g1) = results
        np.testing.assert_allclose(y0, y1, rtol=1e-5, atol=1e-5)
        for x0, x1 in zip(g0, g1, strict=True):
            assert (x0 is None) == (x1 is None)
            if x0 is not None:
                np.testing.assert_allclose(x0, x1, rtol=1e-5, atol=1e-5)
    a = ds.tensor(a_np)
    with pytest.raises(ValueError, match="sublist"):
        ds.einsum(a, [0, 1, 52])
    with pytest.raises(ValueError, match="sublist"):
        ds.einsum(a, [0, 1, "x"])
