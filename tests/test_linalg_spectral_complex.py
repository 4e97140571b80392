"""Complex inputs for the spectral linear-algebra ops (eigh, eigvalsh, svd, svdvals, pinv and
what goes through them) and linalg.eig / linalg.eigvals, against torch 2.13 (complex64 values
and gradients of phase-invariant losses) and against central differences in complex128 /
float64 (docs/linalg.md, "Complex matrices")."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import descent as ds

RNG = np.random.default_rng(0)


def _c(*shape):
    return RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)


def _np(t):
    """NumPy values of a torch or descent tensor (torch's lazy conjugate resolved)."""
    if isinstance(t, torch.Tensor):
        return t.detach().resolve_conj().numpy()
    return t.detach().numpy()


def _complex_solve_exists() -> bool:
    """Whether linalg.solve and linalg.inv take complex input (written in linalg_decomp.py by
    other work; eig's second derivatives and cond with p other than 2 / -2 go through them)."""
    a = ds.tensor(np.eye(2, dtype=complex), requires_grad=True)
    try:
        ds.linalg.solve(a, a)
        ds.linalg.inv(a)
    except RuntimeError:
        return False
    return True


NEEDS_COMPLEX_SOLVE = pytest.mark.skipif(
    not _complex_solve_exists(), reason="linalg.solve / inv of complex input not in this tree"
)


# ---------------------------------------------------------------------------------------------
# x.mH / x.H / x.adjoint() conjugate complex tensors (they were plain transposes: wrong values
# and gradients, found while writing these tests)


@pytest.mark.parametrize("name", ["mH", "H", "adjoint"])
def test_conjugate_transpose_of_complex(name):
    a = _c(3, 3)

    def f(T, x):
        y = x.adjoint() if name == "adjoint" else getattr(x, name)
        return y, ((y * x).imag ** 2).sum() + (y @ x).real.sum()

    xt = torch.tensor(a, requires_grad=True)
    xd = ds.tensor(a, requires_grad=True)
    yt, lt = f(torch, xt)
    yd, ld = f(ds, xd)
    np.testing.assert_allclose(_np(yd), _np(yt), rtol=1e-12)
    lt.backward()
    ld.backward()
    np.testing.assert_allclose(_np(xd.grad), _np(xt.grad), rtol=1e-10, atol=1e-12)


def test_h_of_a_complex_scalar_is_its_conjugate():
    assert ds.tensor(1 + 2j).H.item() == 1 - 2j  # torch: the same, with a deprecation warning


# ---------------------------------------------------------------------------------------------
# Helpers

TOL64 = dict(rtol=2e-4, atol=2e-4)  # complex64 vs torch: gradients of O(1..100) losses


def herm(a):
    """(A + A^H) / 2 for NumPy, torch or descent (eigh reads one triangle: finite differences
    and torch then see the Hermitian gradient)."""
    if isinstance(a, np.ndarray):
        return (a + np.conj(np.swapaxes(a, -1, -2))) / 2
    return (a + a.mH) / 2


def _pair(a, dtype):
    return (
        torch.tensor(a.astype(dtype), requires_grad=True),
        ds.tensor(a.astype(dtype), requires_grad=True),
    )


def _grads_vs_torch(loss, a, dtype=np.complex64, tol=TOL64):
    """loss(T, A) -> a real scalar, for T = torch and T = descent: equal values and gradients."""
    at, ad = _pair(a, dtype)
    lt, ld = loss(torch, at), loss(ds, ad)
    np.testing.assert_allclose(float(_np(ld)), float(_np(lt)), rtol=1e-4)
    lt.backward()
    ld.backward()
    assert ad.grad.dtype == ad.dtype
    np.testing.assert_allclose(_np(ad.grad), _np(at.grad), **tol)


def _gradcheck(loss, a):
    """descent's gradcheck (complex inputs as (real, imaginary) pairs) in double precision."""
    x = ds.tensor(a, requires_grad=True)
    assert ds.autograd.gradcheck(lambda x: loss(ds, x), (x,), atol=1e-6, rtol=1e-4)


def _mat(batch, m, n, complex_=True):
    a = RNG.standard_normal(batch + (m, n))
    return a + 1j * RNG.standard_normal(batch + (m, n)) if complex_ else a


# Phase-invariant losses (real scalars). Each uses the vectors through |.|, through products
# where the phases cancel (U diag(S) Vh, V V^H) or through the values alone.


def _eigh_losses():
    return {
        "values": lambda T, A: (T.linalg.eigh(herm(A))[0] ** 3).sum(),
        "abs_vectors": lambda T, A: (T.linalg.eigh(herm(A))[1].abs() ** 4).sum(),
        "projector": lambda T, A: _projector(T.linalg.eigh(herm(A))[1]),
        "both": lambda T, A: _weighted(*T.linalg.eigh(herm(A))),
    }


def _projector(v):
    """Re and Im of the projector onto the first two columns (phase-invariant)."""
    p = v[..., :, :2] @ v[..., :, :2].mH
    return (p.real**2).sum() + (p.imag * p.real).sum()


def _weighted(w, v):
    """sum_j f(w_j) |v_ij|^3: pairs each vector with its value (order- and phase-invariant)."""
    return (v.abs() ** 3 * w.real.unsqueeze(-2).tanh()).sum()


def _svd_losses(full):
    def low_rank(T, A):  # the best rank-2 approximation U[:, :2] diag(S[:2]) Vh[:2]
        U, S, Vh = T.linalg.svd(A, full_matrices=full)
        r = (U[..., :, :2] * S[..., None, :2].to(U.dtype)) @ Vh[..., :2, :]
        return (r.real**2).sum() + r.imag.sum()

    return {
        "values": lambda T, A: (T.linalg.svd(A, full_matrices=full)[1] ** 3).sum(),
        "abs_vectors": lambda T, A: _svd_abs(T, A, full),
        "low_rank": low_rank,
        "u_projector": lambda T, A: _projector(T.linalg.svd(A, full_matrices=full)[0]),
        "vh_projector": lambda T, A: _projector(T.linalg.svd(A, full_matrices=full)[2].mH),
    }


def _svd_abs(T, A, full):
    U, S, Vh = T.linalg.svd(A, full_matrices=full)
    k = S.shape[-1]
    return (U[..., :, :k].abs() ** 3 * S.unsqueeze(-2)).sum() + (Vh[..., :k, :].abs() ** 4).sum()


# ---------------------------------------------------------------------------------------------
# Forward values (complex64 vs torch): the phase-invariant quantities


@pytest.mark.parametrize("batch", [(), (2,)])
def test_eigh_values_match_torch(batch):
    a = herm(_mat(batch, 4, 4)).astype(np.complex64)
    wt, vt = torch.linalg.eigh(torch.tensor(a))
    wd, vd = ds.linalg.eigh(ds.tensor(a))
    assert wd.dtype == ds.float32 and vd.dtype == ds.complex64
    np.testing.assert_allclose(_np(wd), _np(wt), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(abs(_np(vd)), abs(_np(vt)), atol=1e-5)  # |V|: phase-free
    rebuilt = (vd * wd.unsqueeze(-2).to(ds.complex64)) @ vd.mH  # V diag(w) V^H = A
    np.testing.assert_allclose(_np(rebuilt), a, atol=1e-5)
    np.testing.assert_allclose(_np(ds.linalg.eigvalsh(ds.tensor(a))), _np(wt), atol=1e-5)
    wu = ds.linalg.eigh(ds.tensor(a), UPLO="U")[0]
    np.testing.assert_allclose(_np(wu), _np(torch.linalg.eigh(torch.tensor(a), UPLO="U")[0]),
                               atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 4, 3)])
@pytest.mark.parametrize("full", [True, False])
def test_svd_values_match_torch(shape, full):
    a = RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)
    a = a.astype(np.complex64)
    ut, st, vht = torch.linalg.svd(torch.tensor(a), full_matrices=full)
    ud, sd, vhd = ds.linalg.svd(ds.tensor(a), full_matrices=full)
    assert sd.dtype == ds.float32 and ud.dtype == vhd.dtype == ds.complex64
    assert ud.shape == ut.shape and vhd.shape == vht.shape
    np.testing.assert_allclose(_np(sd), _np(st), rtol=1e-5, atol=1e-5)
    k = min(shape[-2:])
    np.testing.assert_allclose(abs(_np(ud))[..., :k], abs(_np(ut))[..., :k], atol=1e-5)
    np.testing.assert_allclose(abs(_np(vhd))[..., :k, :], abs(_np(vht))[..., :k, :], atol=1e-5)
    rebuilt = _np(ud)[..., :k] * _np(sd)[..., None, :] @ _np(vhd)[..., :k, :]
    np.testing.assert_allclose(rebuilt, a, atol=1e-5)
    # U and Vh unitary, the full ones too
    eye_u = np.broadcast_to(np.eye(ud.shape[-1]), ud.shape[:-2] + (ud.shape[-1],) * 2)
    np.testing.assert_allclose(_np(ud.mH @ ud), eye_u, atol=1e-5)
    np.testing.assert_allclose(_np(ds.linalg.svdvals(ds.tensor(a))), _np(st), atol=1e-5)


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 3, 4)])
def test_pinv_values_match_torch(shape):
    a = (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(np.complex64)
    pt = torch.linalg.pinv(torch.tensor(a))
    pd = ds.linalg.pinv(ds.tensor(a))
    assert pd.dtype == ds.complex64
    np.testing.assert_allclose(_np(pd), _np(pt), rtol=1e-4, atol=1e-5)
    h = herm(_mat((), 4, 4)).astype(np.complex64)
    np.testing.assert_allclose(_np(ds.linalg.pinv(ds.tensor(h), hermitian=True)),
                               _np(torch.linalg.pinv(torch.tensor(h), hermitian=True)),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    # a rank-deficient matrix: the cut singular value matches torch's rule
    r = (_mat((), 4, 2) @ _mat((), 2, 4)).astype(np.complex64)
    np.testing.assert_allclose(
        _np(ds.linalg.pinv(ds.tensor(r))),
        _np(torch.linalg.pinv(torch.tensor(r))),
        rtol=1e-3,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        _np(ds.pinverse(ds.tensor(r), 1e-3)),
        _np(torch.pinverse(torch.tensor(r), 1e-3)),
        rtol=1e-3,
        atol=1e-4,
    )


def _match_eigenvalues(ld, lt):
    """Eigenvalues in each matrix's order (geev's order may differ between LAPACK builds):
    the permutation of ld closest to lt, checked one-to-one."""
    ld, lt = np.atleast_2d(ld), np.atleast_2d(lt)
    perm = np.argmin(abs(lt[..., :, None] - ld[..., None, :]), axis=-1)
    for p in perm:
        assert sorted(p) == list(range(len(p)))
    return perm


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.float64, np.complex128])
@pytest.mark.parametrize("batch", [(), (3,)])
def test_eig_values_match_torch(dtype, batch):
    a = _mat(batch, 4, 4, complex_=np.dtype(dtype).kind == "c").astype(dtype)
    lt, vt = torch.linalg.eig(torch.tensor(a))
    ld, vd = ds.linalg.eig(ds.tensor(a))
    cdt = ds.complex128 if dtype in (np.float64, np.complex128) else ds.complex64
    assert ld.dtype == vd.dtype == cdt and ld.shape == lt.shape and vd.shape == vt.shape
    tol = dict(atol=2e-5, rtol=1e-4) if cdt == ds.complex64 else dict(atol=1e-12, rtol=1e-10)
    ldn, vdn = _np(ld).reshape(-1, 4), _np(vd).reshape(-1, 4, 4)
    ltn, vtn = _np(lt).reshape(-1, 4), _np(vt).reshape(-1, 4, 4)
    perm = _match_eigenvalues(ldn, ltn)
    for i, p in enumerate(perm):
        np.testing.assert_allclose(ldn[i][p], ltn[i], **tol)
        np.testing.assert_allclose(abs(vdn[i][:, p]), abs(vtn[i]), **tol)  # |V|: phase-free
    np.testing.assert_allclose(np.linalg.norm(vdn, axis=-2), 1, **tol)  # geev: norm-1 columns
    np.testing.assert_allclose(_np(ds.tensor(a).to(cdt) @ vd), _np(vd * ld.unsqueeze(-2)), **tol)
    np.testing.assert_allclose(_np(ds.linalg.eigvals(ds.tensor(a))), _np(ld), **tol)


def test_eig_of_a_rotation_has_a_conjugate_pair_and_of_hermitian_real_eigenvalues():
    rot = np.array([[0.0, -1.0], [1.0, 0.0]], dtype=np.float32)
    lam = _np(ds.linalg.eigvals(ds.tensor(rot)))
    assert lam.dtype == np.complex64
    np.testing.assert_allclose(np.sort_complex(lam), [-1j, 1j], atol=1e-6)
    h = herm(_mat((), 4, 4))
    lam = np.sort(_np(ds.linalg.eigvals(ds.tensor(h))).real)
    np.testing.assert_allclose(lam, _np(ds.linalg.eigvalsh(ds.tensor(h))), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# Gradients: complex64 vs torch, complex128 vs finite differences


@pytest.mark.parametrize("name", list(_eigh_losses()))
@pytest.mark.parametrize("batch", [(), (2,)])
def test_eigh_gradients_match_torch(name, batch):
    _grads_vs_torch(_eigh_losses()[name], _mat(batch, 4, 4))


@pytest.mark.parametrize("name", list(_eigh_losses()))
def test_eigh_gradients_match_finite_differences(name):
    _gradcheck(_eigh_losses()[name], _mat((), 3, 3))


@pytest.mark.parametrize("uplo", ["L", "U"])
def test_eigvalsh_gradients(uplo):
    def loss(T, A):
        return (T.linalg.eigvalsh(herm(A), UPLO=uplo) ** 3).sum()

    _grads_vs_torch(loss, _mat((2,), 4, 4))
    _gradcheck(loss, _mat((), 3, 3))


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 4, 3)])
@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("name", ["values", "abs_vectors", "low_rank", "u_projector",
                                  "vh_projector"])  # fmt: skip
def test_svd_gradients_match_torch(shape, full, name):
    _grads_vs_torch(_svd_losses(full)[name], _mat(shape[:-2], *shape[-2:]))


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4)])
@pytest.mark.parametrize("name", ["values", "abs_vectors", "low_rank", "u_projector",
                                  "vh_projector"])  # fmt: skip
def test_svd_gradients_match_finite_differences(shape, name):
    _gradcheck(_svd_losses(False)[name], _mat((), *shape))


def test_svd_phase_term_is_needed():
    """The complex-only diagonal term i Im diag(U^H gU) / S matters for a loss through U and Vh
    together (U diag(S) Vh: U's and V's phases cancel, each alone does not): Im diag(U^H gU)
    is far from 0 there, and the gradient still equals the finite differences'."""
    x = ds.tensor(_mat((), 3, 3), requires_grad=True)
    u, s, vh = ds.linalg.svd(x, full_matrices=False)
    u.retain_grad()
    r = (u[:, :2] * s[:2].to(u.dtype)) @ vh[:2]
    ((r.real**2).sum() + r.imag.sum()).backward()
    assert np.abs(np.diagonal(_np(u).conj().T @ _np(u.grad)).imag).max() > 1e-2
    _gradcheck(_svd_losses(False)["low_rank"], _mat((), 3, 3))


@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4), (2, 3, 3)])
def test_svdvals_gradients(shape):
    def loss(T, A):
        return (T.linalg.svdvals(A) ** 3).sum() + T.linalg.matrix_norm(A, "nuc").sum()

    _grads_vs_torch(loss, _mat(shape[:-2], *shape[-2:]))
    _gradcheck(loss, _mat(shape[:-2], *shape[-2:]))


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_pinv_gradients(shape):
    w = _mat((), shape[1], shape[0])

    def loss(T, A):
        p = T.linalg.pinv(A)
        return (p.real * T.tensor(w.real)).sum() + (p.imag * T.tensor(w.imag)).sum()

    _grads_vs_torch(loss, _mat((), *shape), tol=dict(rtol=1e-3, atol=1e-4))
    _gradcheck(loss, _mat((), *shape))


def test_pinv_hermitian_gradients():
    w = _mat((), 4, 4)

    def loss(T, A):
        p = T.linalg.pinv(herm(A), hermitian=True)
        return (p.real * T.tensor(w.real)[: A.shape[0], : A.shape[0]]).sum() + (p.imag**2).sum()

    _grads_vs_torch(loss, _mat((), 4, 4), tol=dict(rtol=1e-3, atol=1e-4))
    _gradcheck(loss, _mat((), 3, 3))


def _eig_losses():
    return {
        "values": lambda T, A: (
            (T.linalg.eigvals(A).abs() ** 3).sum() + (T.linalg.eigvals(A) ** 2).real.sum()
        ),
        "abs_vectors": lambda T, A: (T.linalg.eig(A)[1].abs() ** 4).sum(),
        "both": lambda T, A: _weighted(*T.linalg.eig(A)),
        "imag_values": lambda T, A: (T.linalg.eig(A)[0].imag ** 2).sum(),
    }


@pytest.mark.parametrize("name", list(_eig_losses()))
@pytest.mark.parametrize("dtype", [np.complex64, np.float32])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_eig_gradients_match_torch(name, dtype, batch):
    a = _mat(batch, 4, 4, complex_=dtype == np.complex64)
    _grads_vs_torch(_eig_losses()[name], a, dtype, tol=dict(rtol=1e-3, atol=1e-3))


@pytest.mark.parametrize("name", list(_eig_losses()))
@pytest.mark.parametrize("complex_", [True, False])
def test_eig_gradients_match_finite_differences(name, complex_):
    _gradcheck(_eig_losses()[name], _mat((), 3, 3, complex_))


def test_eig_gradient_of_real_input_is_real():
    x = ds.tensor(_mat((), 3, 3, complex_=False), requires_grad=True)
    (ds.linalg.eig(x)[0].abs() ** 2).sum().backward()
    assert x.grad.dtype == ds.float64


_SECOND_ORDER = {
    "eigh": lambda T, A: _eigh_losses()["both"](T, A),
    "eigvalsh": lambda T, A: (T.linalg.eigvalsh(herm(A)) ** 3).sum(),
    "svd_low_rank": lambda T, A: _svd_losses(False)["low_rank"](T, A),
    "svd_abs_u": lambda T, A: (T.linalg.svd(A)[0].abs() ** 3).sum(),
    "svdvals": lambda T, A: (T.linalg.svdvals(A) ** 3).sum(),
    "pinv": lambda T, A: (T.linalg.pinv(A).abs() ** 2).sum(),
    "pinv_hermitian": lambda T, A: (T.linalg.pinv(herm(A), hermitian=True).real ** 2).sum(),
    "eig": lambda T, A: _eig_losses()["both"](T, A),
    "eigvals": lambda T, A: (T.linalg.eigvals(A).abs() ** 3).sum(),
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=NEEDS_COMPLEX_SOLVE) if n.startswith("eig") and "h" not in n else n
     for n in _SECOND_ORDER],
)  # fmt: skip
def test_second_derivatives_match_torch(name):
    """create_graph through the complex backward formulas: d/dA |grad|^2."""

    def run(T, a):
        A = T.tensor(a, requires_grad=True)
        (g,) = T.autograd.grad(_SECOND_ORDER[name](T, A), A, create_graph=True)
        (g.abs() ** 2).sum().backward()
        return A.grad

    a = _mat((), 3, 3)
    np.testing.assert_allclose(_np(run(ds, a)), _np(run(torch, a)), rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------------------------------------
# The phase (gauge) check: a loss that depends on the vectors' phases is refused, as by torch


_PHASE_DEPENDENT = {
    "eigh": (lambda T, A: T.linalg.eigh(herm(A))[1].real.sum(), "linalg_eigh_backward"),
    "svd_U": (lambda T, A: T.linalg.svd(A)[0].real.sum(), "svd_backward"),
    "svd_Vh": (lambda T, A: T.linalg.svd(A, full_matrices=False)[2].imag.sum(), "svd_backward"),
    "svd_U_wide": (lambda T, A: T.linalg.svd(A[..., :2, :])[0].real.sum(), "svd_backward"),
    "torch_svd_V": (lambda T, A: T.svd(A)[2].real.sum(), "svd_backward"),
    "eig": (lambda T, A: T.linalg.eig(A)[1].real.sum(), "linalg_eig_backward"),
    "eig_real_input": (lambda T, A: T.linalg.eig(A.real)[1].imag.sum(), "linalg_eig_backward"),
}


@pytest.mark.parametrize("name", list(_PHASE_DEPENDENT))
def test_phase_dependent_losses_raise_like_torch(name):
    loss, op = _PHASE_DEPENDENT[name]
    a = _mat((2,), 3, 3)
    at, ad = _pair(a, np.complex64)
    with pytest.raises(RuntimeError, match="specified up to multiplication by e\\^{i phi}"):
        loss(torch, at).backward()
    with pytest.raises(RuntimeError, match="specified up to multiplication by e\\^{i phi}") as e:
        loss(ds, ad).backward()
    msg = str(e.value)
    assert msg.startswith(op) and "ill-defined" in msg
    assert "(2, 3, 3)" in msg or "(2, 2, 3)" in msg  # the input's shape
    assert "phase-invariant" in msg  # the fix


def test_phase_check_tolerance_is_torchs():
    """A loss whose phase dependence is below torch's tolerance (1e-2) passes, above it raises:
    Im diag(V^H gV) = c for the loss c * sum Im(V_00-like terms)."""
    a = herm(_mat((), 3, 3))

    def loss(T, A, c):
        v = T.linalg.eigh(A)[1]
        return (v.abs() ** 4).sum() + c * v[0].imag.sum()

    for c, raises in ((1e-4, False), (1.0, True)):
        for T in (torch, ds):
            x = T.tensor(a, requires_grad=True)
            if raises:
                with pytest.raises(RuntimeError, match="e\\^{i phi}"):
                    loss(T, x, c).backward()
            else:
                loss(T, x, c).backward()


# ---------------------------------------------------------------------------------------------
# Shapes: 1 x 1, empty, batched; repeated eigenvalues


def _everything(T, x):
    w, v = T.linalg.eigh(x)
    U, S, Vh = T.linalg.svd(x)
    L, V = T.linalg.eig(x)
    P = T.linalg.pinv(x)
    loss = (w.sum() + (v.abs() ** 2).sum() + S.sum() + (U.abs() ** 2).sum() + Vh.abs().sum()
            + L.abs().sum() + (V.abs() ** 2).sum() + P.real.sum() + T.linalg.svdvals(x).sum()
            + T.linalg.eigvalsh(x).sum() + T.linalg.eigvals(x).real.sum())  # fmt: skip
    return loss, (w, v, S, L, V, P)


@pytest.mark.parametrize("shape", [(0, 0), (1, 1), (2, 0, 0), (3, 1, 1)])
def test_one_by_one_and_empty_matrices_match_torch(shape):
    a = (np.ones(shape) * (1 + 2j) + RNG.standard_normal(shape)).astype(np.complex64)
    at, ad = _pair(a, np.complex64)
    lt, outs_t = _everything(torch, at)
    ld, outs_d = _everything(ds, ad)
    for t, d in zip(outs_t, outs_d, strict=True):
        assert tuple(d.shape) == tuple(t.shape)
        assert str(d.dtype).split(".")[-1] == str(t.dtype).split(".")[-1]
    lt.backward()
    ld.backward()
    np.testing.assert_allclose(_np(ad.grad), _np(at.grad), rtol=1e-5, atol=1e-5)


def _repeated(n=3):
    """A Hermitian matrix with eigenvalues (2, 2, 1) in a random unitary basis."""
    q = np.linalg.qr(_mat((), n, n))[0]
    return q @ np.diag([2.0] * (n - 1) + [1.0]) @ q.conj().T


@pytest.mark.parametrize("op", ["eigh", "svd", "eig"])
def test_repeated_eigenvalues_as_torch(op):
    """Values-only losses have finite gradients equal to torch's; losses of the vectors divide
    by the (rounding-level) gap, as torch's: huge or non-finite in both."""
    vals = {"eigh": lambda T, x: T.linalg.eigh(x)[0] ** 2,
            "svd": lambda T, x: T.linalg.svd(x)[1] ** 2,
            "eig": lambda T, x: T.linalg.eig(x)[0].abs() ** 2}[op]  # fmt: skip
    vecs = {"eigh": lambda T, x: T.linalg.eigh(x)[1].abs() ** 4,
            "svd": lambda T, x: T.linalg.svd(x)[0].abs() ** 4,
            "eig": lambda T, x: T.linalg.eig(x)[1].abs() ** 4}[op]  # fmt: skip
    for a in (_repeated(), np.eye(3, dtype=complex)):
        _grads_vs_torch(lambda T, x: vals(T, x).sum(), a, np.complex128,
                        tol=dict(rtol=1e-9, atol=1e-9))  # fmt: skip
        for T in (torch, ds):
            x = T.tensor(a, requires_grad=True)
            vecs(T, x).sum().backward()
            g = _np(x.grad)
            assert not np.isfinite(g).all() or np.abs(g).max() > 1e8, (T.__name__, g)


# ---------------------------------------------------------------------------------------------
# What goes through the spectral ops: norms, rank, cond, the older torch.svd, Tensor methods


@pytest.mark.parametrize("ord", ["fro", "nuc", 2, -2, 1, -1, float("inf"), -float("inf")])
def test_matrix_norm_of_complex_matches_torch(ord):
    def loss(T, A):
        return (T.linalg.matrix_norm(A, ord) ** 2).sum() + T.linalg.norm(A[0], ord)

    _grads_vs_torch(loss, _mat((2,), 4, 3))


@pytest.mark.parametrize(
    "p",
    [None, 2, -2] + [pytest.param(p, marks=NEEDS_COMPLEX_SOLVE)
                     for p in ("fro", "nuc", 1, float("inf"))],
)  # fmt: skip
def test_cond_of_complex_matches_torch(p):
    a = _mat((2,), 3, 3).astype(np.complex64)
    np.testing.assert_allclose(_np(ds.linalg.cond(ds.tensor(a), p)),
                               _np(torch.linalg.cond(torch.tensor(a), p)), rtol=1e-4)  # fmt: skip
    if p in (None, 2, -2):  # torch 2.13's backward of the other p fails on complex input
        _grads_vs_torch(lambda T, A: T.linalg.cond(A, p).sum(), a)


def test_matrix_rank_of_complex_matches_torch():
    low = _mat((2,), 5, 2) @ _mat((2,), 2, 4)  # rank 2
    for a in (low, _mat((2,), 4, 3), herm(low[..., :4, :])):
        for kw in ({}, {"atol": 3.0}, {"rtol": 0.3}, {"hermitian": True}):
            if kw.get("hermitian") and a.shape[-1] != a.shape[-2]:
                continue
            want = torch.linalg.matrix_rank(torch.tensor(a.astype(np.complex64)), **kw)
            got = ds.linalg.matrix_rank(ds.tensor(a.astype(np.complex64)), **kw)
            assert got.dtype == ds.int64
            np.testing.assert_array_equal(_np(got), _np(want))


@pytest.mark.parametrize("some", [True, False])
def test_torch_svd_v_is_the_conjugate_transpose(some):
    def loss(T, A):
        U, S, V = T.svd(A, some=some)
        r = (U[:, :3] * S.to(U.dtype)) @ V[:, :3].mH
        return (r.real**3).sum() + (U.abs() ** 3).sum() + (V.abs() ** 3).sum()

    a = _mat((), 4, 3)
    U, S, V = ds.tensor(a).svd(some=some)
    np.testing.assert_allclose(_np((U[:, :3] * S.to(U.dtype)) @ V[:, :3].mH), a, atol=1e-12)
    _grads_vs_torch(loss, a)


def test_eig_names_and_named_tuple():
    a = _mat((), 3, 3)
    res = ds.linalg.eig(ds.tensor(a))
    # torch's named tuple type: torch.return_types.linalg_eig (descent.return_types since 318d9f7)
    assert type(res).__name__ == type(torch.linalg.eig(torch.tensor(a))).__name__ == "linalg_eig"
    assert res.eigenvalues is res[0] and res.eigenvectors is res[1]
    assert "eig" in ds.linalg.__all__ and "eigvals" in ds.linalg.__all__
    with ds.no_grad():
        assert not ds.linalg.eigvals(ds.tensor(a, requires_grad=True)).requires_grad


@pytest.mark.parametrize("name", ["eig", "eigvals", "eigh", "svd", "pinv"])
def test_integer_and_non_square_input_raise_like_torch(name):
    ints = np.arange(9).reshape(3, 3)
    with pytest.raises(RuntimeError):
        getattr(torch.linalg, name)(torch.tensor(ints))
    with pytest.raises(RuntimeError):
        getattr(ds.linalg, name)(ds.tensor(ints))
    if name in ("eig", "eigvals", "eigh"):
        rect = _mat((), 2, 3)
        with pytest.raises(RuntimeError, match="square"):
            getattr(torch.linalg, name)(torch.tensor(rect))
        with pytest.raises(RuntimeError, match="square"):
            getattr(ds.linalg, name)(ds.tensor(rect))


def test_eig_of_nan_raises_linalg_error():
    a = np.full((2, 3, 3), np.nan + 0j)
    a[0] = _mat((), 3, 3)
    with pytest.raises(RuntimeError, match="NaN"):  # torch checks first; numpy's geev fails
        torch.linalg.eig(torch.tensor(a))
    with pytest.raises(ds.linalg.LinAlgError, match="batch element 1"):
        ds.linalg.eig(ds.tensor(a))


# ---------------------------------------------------------------------------------------------
# Programs: a spectral-radius regulariser on an RNN weight, a ground-state energy


def _train(T, w0, h0, x, y, steps=15):
    """An RNN-style weight fitted with a smooth spectral-radius penalty (the 6-norm of |eig|)
    and a complex Hermitian 'Hamiltonian' whose ground-state energy and gap are optimised; Adam."""
    w = T.tensor(w0, requires_grad=True)
    h = T.tensor(h0, requires_grad=True)
    opt = T.optim.Adam([w, h], lr=0.05)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        fit = ((T.tanh(x @ w) - y) ** 2).mean()
        radius = (T.linalg.eigvals(w).abs() ** 6).sum() ** (1 / 6)
        energies, states = T.linalg.eigh(h + h.mH)
        density = states[:, :1] @ states[:, :1].mH  # the ground state's projector
        loss = fit + 0.1 * radius + energies[0] - 0.5 * (energies[1] - energies[0]).log()
        loss = loss + (density.real**2).sum() * 0.01
        loss.backward()
        opt.step()
        history.append(float(loss.detach()))
    return history, _np(w), _np(h)


def test_spectral_programs_train_as_in_torch():
    w0 = RNG.standard_normal((4, 4)) * 0.7
    h0 = _mat((), 3, 3) * 0.5
    x, y = RNG.standard_normal((8, 4)), RNG.standard_normal((8, 4)) * 0.5
    got = _train(ds, w0, h0, ds.tensor(x), ds.tensor(y))
    want = _train(torch, w0, h0, torch.tensor(x), torch.tensor(y))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-9)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-8, atol=1e-10)
