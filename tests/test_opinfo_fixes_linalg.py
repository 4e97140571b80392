"""Regression tests for the linalg and special-function findings of PyTorch's OpInfo database
(tests/opinfo_harness.py): lstsq's and slogdet's outputs that require grad, matrix_rank and
pinv with Tensor tolerances, tensorsolve with dims, the float64 Bessel functions (checked
against mpmath), svd_lowrank / pca_lowrank. Differential against torch 2.13: values, dtypes,
shapes, requires_grad and the gradients of a random projection of the outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds
import descent.linalg as LA

TDT = {"float32": torch.float32, "float64": torch.float64, "complex64": torch.complex64,
       "complex128": torch.complex128}  # fmt: skip
TOL = {
    "float32": dict(rtol=2e-4, atol=2e-5),
    "complex64": dict(rtol=2e-4, atol=2e-5),
    "float64": dict(rtol=1e-9, atol=1e-11),
    "complex128": dict(rtol=1e-9, atol=1e-11),
}


def make(shape, dtype, seed=0, well=False):
    r = np.random.default_rng(seed)
    a = r.normal(size=shape)
    if dtype.startswith("complex"):
        a = a + 1j * r.normal(size=shape)
    if well and shape[-1] == shape[-2]:
        a = a + 3 * np.eye(shape[-1])
    return a.astype(dtype)


def check(fd, ft, arrays, dtype, seed=1):
    """fd(descent tensors) and ft(torch tensors) agree in values, dtypes, shapes and
    requires_grad, and in the gradients of sum(w_i * out_i) over the outputs that require grad
    (real w: for complex outputs the real part of the sum, as PyTorch's convention)."""
    tol = TOL[dtype]
    td = [ds.tensor(a.copy(), requires_grad=True) for a in arrays]
    tt = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    yd, yt = fd(*td), ft(*tt)
    yd = list(yd) if isinstance(yd, tuple) else [yd]
    yt = list(yt) if isinstance(yt, tuple) else [yt]
    assert len(yd) == len(yt)
    r = np.random.default_rng(seed)
    ld = lt = 0
    for a, b in zip(yd, yt):
        e = b.detach().numpy()
        assert a.shape == tuple(e.shape) and a.numpy().dtype == e.dtype, (a.shape, e.shape)
        assert a.requires_grad == b.requires_grad, (a.shape, b.requires_grad)
        np.testing.assert_allclose(a.detach().numpy(), e, **tol)
        if b.requires_grad:
            w = r.normal(size=e.shape)
            wd, wt = ds.tensor(w.astype(e.dtype)), torch.tensor(w.astype(e.dtype))
            pd, pt = (a * wd).sum(), (b * wt).sum()
            ld = ld + (pd.real if pd.is_complex() else pd)
            lt = lt + (pt.real if pt.is_complex() else pt)
    if isinstance(lt, torch.Tensor):
        ld.backward()
        lt.backward()
        for a, b in zip(td, tt):
            gb = b.grad.resolve_conj().numpy() if b.grad is not None else 0 * a.detach().numpy()
            ga = np.zeros_like(gb) if a.grad is None else a.grad.numpy()
            np.testing.assert_allclose(ga, gb, **tol)


DTYPES = ["float32", "complex64"]
# torch warns when matrix_rank resizes its result to the tolerances' batch: it is the oracle
pytestmark = pytest.mark.filterwarnings("ignore:An output with one or more elements")


# ---------------------------------------------------------------------------------------------
# lstsq: the residuals require grad (empty or not) for every driver, as PyTorch's


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("driver", ["gels", "gelsy", "gelsd", "gelss"])
@pytest.mark.parametrize("shape", [(2, 3), (3, 3), (4, 3), (2, 4, 3)])
def test_lstsq_outputs_require_grad_like_torch(dtype, driver, shape):
    a, b = make(shape, dtype, well=True), make(shape[:-1] + (2,), dtype, 1)

    def f(T):
        return lambda A, B: tuple(T.linalg.lstsq(A, B, driver=driver))

    check(f(ds), f(torch), [a, b], dtype)


def test_lstsq_without_grad_has_no_graph():
    a = ds.tensor(make((4, 3), "float32"))
    r = LA.lstsq(a, a, driver="gels")
    assert not r.residuals.requires_grad and not r.solution.requires_grad


# ---------------------------------------------------------------------------------------------
# slogdet: a real sign requires grad (zero gradient), as PyTorch's; (0, 0) matrices too


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (4, 4), (3, 0, 0), (0, 4, 4), (2, 4, 4)])
def test_slogdet_real_sign_requires_grad(shape):
    a = make(shape, "float32", well=True)
    check(lambda x: tuple(LA.slogdet(x)), lambda x: tuple(torch.linalg.slogdet(x)), [a],
          "float32")  # fmt: skip
    x = ds.tensor(a, requires_grad=True)
    sign, _ = LA.slogdet(x)
    assert sign.requires_grad
    if sign.numel():
        (g,) = ds.autograd.grad(sign.sum(), [x])
        assert not np.any(g.numpy())  # piecewise constant


# ---------------------------------------------------------------------------------------------
# matrix_rank and pinv: atol / rtol as Tensors (broadcast against the batch), empty batches


TOLS = [  # (A's shape, atol, rtol): tolerances as PyTorch's samples give them
    ((2, 5, 5), None, np.array([1.0, 1.0])),
    ((2, 5, 5), np.array([0.5, 100.0]), None),
    ((0, 5, 5), np.zeros(0), None),
    ((0, 0, 0), np.zeros(0), np.zeros(0)),
    ((2, 0, 0), np.array([1.0, 2.0]), np.array([0.1, 0.2])),
    ((5, 5), np.array([0.1, 100.0]), None),  # broadcast: the result has the tolerances' batch
    ((5, 5), np.array(-1.0), None),  # atol <= 0: rtol keeps its default, as PyTorch's
    ((3, 5, 5), None, np.array(0.3)),
]


def _tol_args(T, atol, rtol, dtype=np.float64):
    def conv(v):
        return None if v is None else T.tensor(np.asarray(v, dtype))

    return dict(atol=conv(atol), rtol=conv(rtol))


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
@pytest.mark.parametrize("shape,atol,rtol", TOLS)
def test_matrix_rank_tensor_tolerances(dtype, shape, atol, rtol):
    # singular values spread over [0.4, 2.5]: the tolerances cut between them
    a = make(shape, dtype) if 0 in shape else (make(shape, dtype) * 0.3 + np.eye(shape[-1]))
    a = a.astype(dtype)
    got = LA.matrix_rank(ds.tensor(a), **_tol_args(ds, atol, rtol))
    want = torch.linalg.matrix_rank(torch.tensor(a), **_tol_args(torch, atol, rtol))
    assert got.dtype == ds.int64 and got.shape == tuple(want.shape)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_matrix_rank_float_atol_below_zero_keeps_default_rtol():
    a = np.diag([1.0, 1e-20, 1.0])
    for atol in (-1.0, 0.0):
        assert int(LA.matrix_rank(ds.tensor(a), atol=atol)) == int(
            torch.linalg.matrix_rank(torch.tensor(a), atol=atol)) == 2  # fmt: skip


def test_tolerances_refuse_complex_tensors_like_torch():
    a = np.eye(3)
    tol = np.array(0.1 + 0j)
    with pytest.raises(RuntimeError, match="complex"):
        torch.linalg.matrix_rank(torch.tensor(a), atol=torch.tensor(tol))
    for f in (LA.matrix_rank, LA.pinv):
        with pytest.raises(RuntimeError, match="atol tensor of complex type"):
            f(ds.tensor(a), atol=ds.tensor(tol))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,atol,rtol", TOLS)
def test_pinv_tensor_tolerances(dtype, shape, atol, rtol):
    a = make(shape, dtype) * 0.3 + (np.eye(shape[-1]) if shape[-1] else 0)
    a = a.astype(dtype)

    def f(T):
        return lambda x: T.linalg.pinv(x, **_tol_args(T, atol, rtol))

    check(f(ds), f(torch), [a], dtype)


def test_pinv_hermitian_tensor_rtol():
    a = make((2, 4, 4), "float32")
    a = (a + np.swapaxes(a, -1, -2)).astype("float32")
    rtol = np.array([0.0, 0.5])

    def f(T):
        return lambda x: T.linalg.pinv(x, rtol=T.tensor(rtol), hermitian=True)

    check(f(ds), f(torch), [a], "float32")


# ---------------------------------------------------------------------------------------------
# tensorsolve with dims: only the products of the sizes must agree, as PyTorch's


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ashape,bshape,dims", [((2, 3, 6), (2, 3), [0, 2]),
                                                ((3, 4, 4, 3), (3, 4), [0, 2]),
                                                ((6, 2, 3), (6,), None),
                                                ((2, 3, 6), (6,), [0, 1])])  # fmt: skip
def test_tensorsolve_dims(dtype, ashape, bshape, dims):
    a, b = make(ashape, dtype), make(bshape, dtype, 1)

    def f(T):
        return lambda x, y: T.linalg.tensorsolve(x, y, dims=dims)

    check(f(ds), f(torch), [a, b], dtype)


@pytest.mark.parametrize("ashape,bshape", [((2, 3, 5), (6,)), ((2, 3, 6), (2, 3, 6)),
                                           ((4, 3, 6), (2, 3))])  # fmt: skip
def test_tensorsolve_size_errors_like_torch(ashape, bshape):
    with pytest.raises(RuntimeError):
        torch.linalg.tensorsolve(torch.ones(ashape), torch.ones(bshape))
    with pytest.raises(RuntimeError, match="linalg.tensorsolve"):
        LA.tensorsolve(ds.ones(ashape), ds.ones(bshape))


# ---------------------------------------------------------------------------------------------
# Bessel functions in float64: descent agrees with mpmath where torch 2.13 is ~1e-6 off


# The points of op_db's float64 sample where the harness found torch and descent apart.
BESSEL = [("bessel_j0", 0, "j", [-5.42152807, 5.57605945, -5.43977718]),
          ("bessel_j1", 1, "j", [7.38083939]),
          ("bessel_y1", 1, "y", [5.57605945])]  # fmt: skip


@pytest.mark.parametrize("name,order,kind,xs", BESSEL)
def test_bessel_float64_is_accurate_against_mpmath(name, order, kind, xs):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    x = np.array(xs)
    f = mpmath.besselj if kind == "j" else mpmath.bessely
    exact = np.array([float(f(order, mpmath.mpf(float(v)))) for v in x])
    got = getattr(ds.special, name)(ds.tensor(x)).numpy()
    np.testing.assert_allclose(got, exact, rtol=1e-13, atol=0)
    # torch's own float64 kernel is off by > 1e-8 relative there: the harness's finding is
    # torch's inaccuracy, not descent's (if a later torch fixes it, this says so)
    tt = getattr(torch.special, name)(torch.tensor(x)).numpy()
    assert np.max(np.abs(tt - exact) / np.abs(exact)) > 1e-8


# ---------------------------------------------------------------------------------------------
# svd_lowrank / pca_lowrank: PyTorch's algorithm; with PyTorch's random draw injected the
# results (values and gradients) are PyTorch's


class _TorchDraw:
    """Stands in for descent.creation in linalg_lowrank: R is torch's draw after seed 42."""

    @staticmethod
    def randn(n, q, dtype=None, device=None):
        torch.manual_seed(42)
        return ds.tensor(torch.randn(n, q, dtype=TDT[str(dtype).split(".")[-1]]).numpy())


@pytest.fixture
def torch_draw(monkeypatch):
    import descent.linalg_lowrank as lowrank

    monkeypatch.setattr(lowrank, "creation", _TorchDraw)


LOWRANK = [((4, 2), (3, 2)), ((3, 2), (4, 2)), ((4, 2), (4, 2)), ((2, 5, 2), (2, 3, 2))]


def _outputs(usv):  # what the low-rank SVD determines: U V^H and S (op_db's output function)
    u, s, v = usv
    return u @ v.mH, s


@pytest.mark.parametrize("dtype", ["float32", "complex128"])
@pytest.mark.parametrize("ashape,bshape", LOWRANK)
@pytest.mark.parametrize("with_m", [False, True])
def test_svd_lowrank_matches_torch_with_torchs_draw(torch_draw, dtype, ashape, bshape, with_m):
    # complex128: complex64's gradient of this ill-conditioned composition is rounding-bound
    # (torch's own complex64 gradient is ~1e-4 off its complex128 one)
    a, b = make(ashape, dtype), make(bshape, dtype, 1)
    m = make(ashape[:-1] + (bshape[-2],), dtype, 2)
    arrays = [a, b, m] if with_m else [a, b]

    def f(T):
        def run(x, y, mm=None):
            torch.manual_seed(42)
            return _outputs(T.svd_lowrank(x @ y.mT, q=ashape[-1], M=mm))

        return run

    check(f(ds), f(torch), arrays, dtype)


@pytest.mark.parametrize("dtype", ["float32", "complex128"])
@pytest.mark.parametrize("ashape,bshape", LOWRANK)
@pytest.mark.parametrize("center", [False, True])
def test_pca_lowrank_matches_torch_with_torchs_draw(torch_draw, dtype, ashape, bshape, center):
    a, b = make(ashape, dtype), make(bshape, dtype, 1)

    def f(T):
        def run(x, y):
            torch.manual_seed(42)
            return _outputs(T.pca_lowrank(x @ y.mT, q=ashape[-1], center=center))

        return run

    check(f(ds), f(torch), [a, b], dtype)


def test_svd_lowrank_recovers_a_low_rank_matrix_with_descents_draw():
    r = np.random.default_rng(3)
    a = (r.normal(size=(2, 30, 3)) @ r.normal(size=(2, 3, 20))).astype("float32")
    ds.manual_seed(0)
    u, s, v = ds.svd_lowrank(ds.tensor(a), q=5)
    assert u.shape == (2, 30, 5) and s.shape == (2, 5) and v.shape == (2, 20, 5)
    rec = (u * s.unsqueeze(-2)) @ v.mT
    np.testing.assert_allclose(rec.numpy(), a, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s.numpy()[:, :3], np.linalg.svd(a, compute_uv=False)[:, :3],
                               rtol=1e-4)  # fmt: skip
    ds.manual_seed(0)
    u2, _, _ = ds.svd_lowrank(ds.tensor(a), q=5)
    np.testing.assert_array_equal(u.numpy(), u2.numpy())  # the seed makes it repeatable


def test_pca_lowrank_errors_like_torch():
    a = np.ones((4, 3), "float32")
    for kwargs in (dict(q=4), dict(q=-1), dict(niter=-1)):
        with pytest.raises(ValueError) as te:
            torch.pca_lowrank(torch.tensor(a), **kwargs)
        with pytest.raises(ValueError) as de:
            ds.pca_lowrank(ds.tensor(a), **kwargs)
        assert str(te.value) == str(de.value)
    with pytest.raises(RuntimeError, match="svd_lowrank"):
        ds.svd_lowrank(ds.ones(3))


# ---------------------------------------------------------------------------------------------
# geqrf, linalg.householder_product (orgqr), ormqr: new, PyTorch's results and gradients


GEQRF_SHAPES = [(5, 5), (5, 2), (2, 5), (0, 3), (3, 0), (2, 4, 3), (0, 2, 2)]


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
@pytest.mark.parametrize("shape", GEQRF_SHAPES)
def test_geqrf_matches_torch(dtype, shape):
    a = make(shape, dtype)
    got, want = ds.geqrf(ds.tensor(a)), torch.geqrf(torch.tensor(a))
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape) and g.numpy().dtype == w.numpy().dtype
        np.testing.assert_allclose(g.numpy(), w.numpy(), **TOL[dtype])
    assert got.a is got[0] and got.tau is got[1]


def _hh_inputs(shape, k, dtype, seed=0):
    """A geqrf factor of a random matrix (realistic reflectors) and k of its scales."""
    a = make(shape, dtype, seed)
    h, tau = torch.geqrf(torch.tensor(a))
    return h.numpy().copy(), tau[..., :k].numpy().copy()


HH = [((5, 5), 5), ((6, 5), 5), ((5, 4), 3), ((5, 5), 0), ((0, 0), 0), ((2, 1, 6, 5), 5)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k", HH)
def test_householder_product_matches_torch(dtype, shape, k):
    a, tau = _hh_inputs(shape, k, dtype)
    check(LA.householder_product, torch.linalg.householder_product, [a, tau], dtype)
    np.testing.assert_allclose(ds.orgqr(ds.tensor(a), ds.tensor(tau)).numpy(),
                               torch.orgqr(torch.tensor(a), torch.tensor(tau)).numpy(),
                               **TOL[dtype])  # fmt: skip


def test_householder_product_gives_geqrfs_q():
    a = make((6, 4), "float64")
    h, tau = ds.geqrf(ds.tensor(a))
    q = LA.householder_product(h, tau).numpy()
    r = np.triu(h.numpy()[:4])
    np.testing.assert_allclose(q @ r, a, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(q.T @ q, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_householder_product_gradcheck_and_gradgradcheck(dtype):
    a, tau = _hh_inputs((5, 4), 3, dtype)
    ta = ds.tensor(a, requires_grad=True)
    tt = ds.tensor(tau, requires_grad=True)
    assert ds.autograd.gradcheck(LA.householder_product, (ta, tt))
    assert ds.autograd.gradgradcheck(LA.householder_product, (ta, tt))


ORMQR = [((5, 5), 5, (5, 3)), ((5, 2), 2, (5, 2)), ((2, 5), 2, (2, 5)), ((5, 0), 0, (5, 0)),
         ((2, 1, 5, 2), 2, (2, 1, 5, 2))]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k,cshape", ORMQR)
@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("transpose", [True, False])
def test_ormqr_matches_torch(dtype, shape, k, cshape, left, transpose):
    a, tau = _hh_inputs(shape, k, dtype)
    c = make(cshape if left else cshape[:-2] + cshape[-2:][::-1], dtype, 2)

    def f(T):
        return lambda x, t, y: T.ormqr(x, t, y, left=left, transpose=transpose)

    check(f(ds), f(torch), [a, tau, c], dtype)


@pytest.mark.parametrize("left", [True, False])
@pytest.mark.parametrize("transpose", [True, False])
def test_ormqr_gradcheck_and_gradgradcheck(left, transpose):
    a, tau = _hh_inputs((4, 3), 3, "complex128")
    c = make((4, 2) if left else (2, 4), "complex128", 2)
    ins = tuple(ds.tensor(x, requires_grad=True) for x in (a, tau, c))

    def f(x, t, y):
        return ds.ormqr(x, t, y, left=left, transpose=transpose)

    assert ds.autograd.gradcheck(f, ins)
    assert ds.autograd.gradgradcheck(f, ins)


def test_ormqr_is_q_times_other():
    a = make((5, 3), "float64")
    h, tau = ds.geqrf(ds.tensor(a))
    q_full = np.linalg.qr(a, mode="complete")[0]  # the same reflectors: LAPACK's Q
    c = make((5, 2), "float64", 1)
    np.testing.assert_allclose(ds.ormqr(h, tau, ds.tensor(c)).numpy(), q_full @ c, atol=1e-12)


HH_ERRORS = [  # (function name, shapes): torch raises, so must descent
    ("householder_product", [(3, 4), (3,)]), ("householder_product", [(4, 3), (4,)]),
    ("householder_product", [(4, 3), (2, 2)]), ("householder_product", [(2, 4, 3), (3, 2)]),
    ("ormqr", [(4, 3), (3,), (3, 2)]), ("ormqr", [(2, 4, 3), (2, 3), (4, 2)]),
    ("ormqr", [(4, 3), (4,), (4, 2)]), ("geqrf", [(3,)]),
]  # fmt: skip


@pytest.mark.parametrize("name,shapes", HH_ERRORS)
def test_householder_errors_like_torch(name, shapes):
    def fn(T):
        return getattr(T.linalg, name) if name == "householder_product" else getattr(T, name)

    with pytest.raises(RuntimeError):
        fn(torch)(*[torch.ones(s) for s in shapes])
    with pytest.raises(RuntimeError, match=name):
        fn(ds)(*[ds.ones(s) for s in shapes])


def test_householder_product_dtype_mismatch_and_integers_raise():
    with pytest.raises(RuntimeError, match="does not match"):
        LA.householder_product(ds.ones((3, 3), dtype=ds.float64), ds.ones(3))
    with pytest.raises(RuntimeError, match="floating point"):
        ds.geqrf(ds.ones((3, 3), dtype=ds.int64))


# ---------------------------------------------------------------------------------------------
# linalg.ldl_factor / ldl_factor_ex / ldl_solve: new, LAPACK's Bunch-Kaufman (sytrf / hetrf)


def _symmetric(n, dtype, hermitian, small_diagonal, seed):
    r = np.random.default_rng(seed)
    a = r.normal(size=(n, n)) + (1j * r.normal(size=(n, n)) if dtype.startswith("c") else 0)
    if small_diagonal:  # forces 2x2 pivot blocks and interchanges
        a[np.diag_indices(n)] *= 0.01
    return ((a + (a.conj().T if hermitian else a.T)) / 2).astype(dtype)


LDL_DTYPES = ("float64", "complex128", "float32", "complex64")
LDL_CASES = [
    (n, dt, herm, small)
    for n in (1, 2, 5, 8)
    for dt in LDL_DTYPES
    for herm in (False, True)
    for small in (False, True)
]


@pytest.mark.parametrize("n,dtype,hermitian,small", LDL_CASES)
def test_ldl_factor_and_solve_match_torch(n, dtype, hermitian, small):
    a = _symmetric(n, dtype, hermitian, small, seed=n)
    tol = TOL[dtype] if dtype in ("float64", "complex128") else dict(rtol=1e-3, atol=1e-4)
    t = torch.linalg.ldl_factor(torch.tensor(a), hermitian=hermitian)
    d = LA.ldl_factor(ds.tensor(a), hermitian=hermitian)
    np.testing.assert_array_equal(d.pivots.numpy(), t.pivots.numpy())  # same pivot choices
    assert d.pivots.dtype == ds.int32 and d.LD.numpy().dtype == a.dtype
    np.testing.assert_allclose(d.LD.numpy(), t.LD.numpy(), **tol)
    b = np.random.default_rng(1).normal(size=(n, 3)).astype(dtype)
    xt = torch.linalg.ldl_solve(t.LD, t.pivots, torch.tensor(b), hermitian=hermitian)
    xd = LA.ldl_solve(d.LD, d.pivots, ds.tensor(b), hermitian=hermitian)
    np.testing.assert_allclose(xd.numpy(), xt.numpy(), **tol)


def test_ldl_has_two_by_two_pivots_in_these_cases():
    # the table above is not all 1x1 pivots (which would leave half the algorithm untested)
    a = _symmetric(8, "float64", False, True, seed=8)
    assert (LA.ldl_factor(ds.tensor(a)).pivots.numpy() < 0).any()


def test_ldl_large_matrix_matches_torchs_blocked_sytrf():
    a = _symmetric(80, "float64", False, True, seed=3)  # n > 64: LAPACK's blocked dsytrf
    t, d = torch.linalg.ldl_factor(torch.tensor(a)), LA.ldl_factor(ds.tensor(a))
    np.testing.assert_array_equal(d.pivots.numpy(), t.pivots.numpy())
    np.testing.assert_allclose(d.LD.numpy(), t.LD.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("batch", [(), (2,), (0,), (2, 3)])
@pytest.mark.parametrize("n", [0, 4])
def test_ldl_batches_broadcast_and_empty(batch, n):
    r = np.random.default_rng(0)
    a = r.normal(size=batch + (n, n)).astype("float32")
    a = a + np.swapaxes(a, -1, -2)
    b = r.normal(size=(n, 2)).astype("float32")  # broadcast against the batch
    t = torch.linalg.ldl_factor_ex(torch.tensor(a))
    d = LA.ldl_factor_ex(ds.tensor(a))
    for x, y in zip(d, t):
        assert x.shape == tuple(y.shape) and x.numpy().dtype == y.numpy().dtype
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-4, atol=1e-5)
    xt = torch.linalg.ldl_solve(t.LD, t.pivots, torch.tensor(b))
    xd = LA.ldl_solve(d.LD, d.pivots, ds.tensor(b))
    assert xd.shape == tuple(xt.shape)
    np.testing.assert_allclose(xd.numpy(), xt.numpy(), rtol=1e-3, atol=1e-4)


def test_ldl_factor_reads_only_the_lower_triangle():
    a = _symmetric(5, "float64", False, False, seed=0)
    junk = a + np.triu(np.full((5, 5), 7.0), 1)
    np.testing.assert_array_equal(LA.ldl_factor(ds.tensor(junk)).LD.numpy(),
                                  LA.ldl_factor(ds.tensor(a)).LD.numpy())  # fmt: skip


def test_ldl_singular_matrix_info_and_error():
    z = np.zeros((2, 3, 3), "float32")
    z[0] = np.eye(3)
    t = torch.linalg.ldl_factor_ex(torch.tensor(z))
    d = LA.ldl_factor_ex(ds.tensor(z))
    np.testing.assert_array_equal(d.info.numpy(), t.info.numpy())  # [0, 1]
    np.testing.assert_array_equal(d.pivots.numpy(), t.pivots.numpy())
    # torch 2.13's ldl_factor hits an internal assert here ("Unknown error code: 1");
    # descent raises its LinAlgError naming the batch element
    with pytest.raises(LA.LinAlgError, match=r"Batch element \(1,\).*D\[0, 0\]"):
        LA.ldl_factor(ds.tensor(z))
    with pytest.raises(LA.LinAlgError):
        LA.ldl_factor_ex(ds.tensor(z), check_errors=True)


def test_ldl_errors():
    ld, piv = LA.ldl_factor(ds.eye(3))
    with pytest.raises(RuntimeError, match="Incompatible matrix sizes"):
        torch.linalg.ldl_solve(*torch.linalg.ldl_factor(torch.eye(3)), torch.ones(4, 1))
    with pytest.raises(RuntimeError, match="Incompatible matrix sizes"):
        LA.ldl_solve(ld, piv, ds.ones((4, 1)))
    with pytest.raises(RuntimeError, match="square"):
        LA.ldl_factor(ds.ones((3, 2)))
    with pytest.raises(RuntimeError, match="floating point"):
        LA.ldl_factor(ds.ones((3, 3), dtype=ds.int64))
    with pytest.raises(RuntimeError, match="same dtype"):
        LA.ldl_solve(ld, piv, ds.ones((3, 1), dtype=ds.float64))


def test_householder_tensor_methods_match_torch():
    a = make((5, 3), "float32")
    c = make((5, 2), "float32", 1)
    hd, td = ds.tensor(a).geqrf()
    ht, tt = torch.tensor(a).geqrf()
    np.testing.assert_allclose(hd.numpy(), ht.numpy(), **TOL["float32"])
    np.testing.assert_allclose(hd.orgqr(td).numpy(), ht.orgqr(tt).numpy(), **TOL["float32"])
    got = hd.ormqr(td, ds.tensor(c), left=True, transpose=True).numpy()
    want = ht.ormqr(tt, torch.tensor(c), left=True, transpose=True).numpy()
    np.testing.assert_allclose(got, want, **TOL["float32"])


# ---------------------------------------------------------------------------------------------
# linalg.norm / matrix_norm in float16 (and bfloat16): PyTorch takes them (not for the SVD
# norms 'nuc', 2, -2, which raise in both)


@pytest.mark.parametrize("ord", ["fro", 1, -1, float("inf"), -float("inf")])
def test_matrix_norm_float16_matches_torch(ord):
    a = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float16)
    xd = ds.tensor(a, requires_grad=True)
    xt = torch.tensor(a, requires_grad=True)
    yd, yt = LA.matrix_norm(xd, ord), torch.linalg.matrix_norm(xt, ord)
    assert yd.dtype == ds.float16
    np.testing.assert_allclose(yd.detach().numpy(), yt.detach().numpy(), rtol=2e-3)
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(xd.grad.numpy(), xt.grad.numpy(), rtol=1e-2, atol=1e-3)
    yd2, yt2 = LA.norm(ds.tensor(a[0]), ord), torch.linalg.norm(torch.tensor(a[0]), ord)
    np.testing.assert_allclose(yd2.numpy(), yt2.numpy(), rtol=2e-3)


def test_norm_low_precision_vector_and_svd_norms():
    a = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float16)
    got = LA.norm(ds.tensor(a), dim=1).numpy()
    np.testing.assert_allclose(got, torch.linalg.norm(torch.tensor(a), dim=1).numpy(), rtol=2e-3)
    bf = LA.norm(ds.tensor(a).to(ds.bfloat16)).float().item()
    assert bf == pytest.approx(torch.linalg.norm(torch.tensor(a).bfloat16()).float().item())
    for ord in ("nuc", 2, -2):
        with pytest.raises(RuntimeError, match="Low precision"):
            torch.linalg.matrix_norm(torch.tensor(a), ord)
        with pytest.raises(RuntimeError, match="Low precision"):
            LA.matrix_norm(ds.tensor(a), ord)
