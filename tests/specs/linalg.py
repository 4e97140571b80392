"""Specs of descent.linalg's ops (descent.ops.linalg_decomp, linalg_spectral, linalg_norm): the
op table checks float64 values against NumPy, gradients and second derivatives against finite
differences, and float32 values and gradients against PyTorch.

Inputs are structured (`inputs=`): well-conditioned matrices (random + 3 I), symmetric
positive-definite ones for cholesky/eigh, and matrices with distinct singular values. Functions
that read one triangle (cholesky, eigh) are composed with A -> (A + A^T) / 2, so finite
differences see the symmetric gradient that PyTorch returns. Several outputs (qr, eigh, svd) are
concatenated into one tensor; eigenvectors and singular vectors enter squared, which is
invariant under the sign choice that LAPACK makes (NumPy's and PyTorch's signs may differ).
"""

from __future__ import annotations

import numpy as np
import torch

import descent as ds
import descent.linalg as LA

from . import Spec

SPECS: list[Spec] = []


def add(**kw) -> None:
    kw.setdefault("torch_fwd_atol", 1e-5)
    kw.setdefault("torch_grad_atol", 1e-3)
    kw.setdefault("torch_grad_rtol", 1e-2)
    SPECS.append(Spec(**kw))


def general(*shapes):
    """Well-conditioned square matrices: random + 3 I (then any other operands)."""

    def make(rng, dtype):
        out = []
        for s in shapes:
            a = rng.normal(size=s)
            if len(s) >= 2 and s[-1] == s[-2] and not out:
                a = a + 3 * np.eye(s[-1])
            out.append(a)
        return out

    return make


def spd(shape):
    def make(rng, dtype):
        x = rng.normal(size=shape)
        return [x @ np.swapaxes(x, -1, -2) / shape[-1] + np.eye(shape[-1])]

    return make


def rand(shape):
    return lambda rng, dtype: [rng.normal(size=shape)]


def away_from_zero(shape):
    """Entries with |x| in [0.5, 2] and random signs (norms with p < 1 or p > 2 and the sign
    of x are smooth there)."""
    return lambda rng, dtype: [rng.uniform(0.5, 2, size=shape) * rng.choice([-1, 1], size=shape)]


def sym(a):
    return (a + a.mT) / 2


def np_sym(a):
    return (a + np.swapaxes(a, -1, -2)) / 2


def flat_cat(*ts):
    """Concatenate tensors of any shapes into one flat vector (descent or torch)."""
    if isinstance(ts[0], torch.Tensor):
        return torch.cat([t.reshape(-1) for t in ts])
    if isinstance(ts[0], np.ndarray):
        return np.concatenate([t.reshape(-1) for t in ts])
    return ds.cat([t.reshape(-1) for t in ts])


B = (2, 3, 3)  # a batch of two 3 x 3 matrices

add(name="linalg_det", fn=LA.det, ref=np.linalg.det, torch_fn=torch.linalg.det, shapes=[B],
    inputs=general(B), covers=("Det",))
add(name="linalg_slogdet", fn=lambda a: LA.slogdet(a).logabsdet,
    ref=lambda a: np.linalg.slogdet(a)[1], torch_fn=lambda a: torch.linalg.slogdet(a)[1],
    shapes=[B], inputs=general(B), covers=("Slogdet",))
add(name="linalg_inv", fn=LA.inv, ref=np.linalg.inv, torch_fn=torch.linalg.inv, shapes=[B],
    inputs=general(B), covers=("Inv",))
add(name="linalg_solve", fn=LA.solve, ref=np.linalg.solve, torch_fn=torch.linalg.solve,
    shapes=[B, (2, 3, 2)], inputs=general(B, (2, 3, 2)), covers=("Solve",))
add(name="linalg_solve_broadcast_vector", fn=LA.solve,
    ref=lambda a, b: np.linalg.solve(a, b[..., None])[..., 0], torch_fn=torch.linalg.solve,
    shapes=[B, (2, 3)], inputs=general(B, (2, 3)), covers=("Solve",))
add(name="linalg_solve_left_false", fn=lambda a, b: LA.solve(a, b, left=False),
    ref=lambda a, b: np.swapaxes(np.linalg.solve(np.swapaxes(a, -1, -2), np.swapaxes(b, -1, -2)),
                                 -1, -2),
    torch_fn=lambda a, b: torch.linalg.solve(a, b, left=False),
    shapes=[B, (2, 4, 3)], inputs=general(B, (2, 4, 3)), covers=("Solve",))
add(name="linalg_cholesky", fn=lambda a: LA.cholesky(sym(a)),
    ref=lambda a: np.linalg.cholesky(np_sym(a)),
    torch_fn=lambda a: torch.linalg.cholesky(sym(a)), shapes=[B], inputs=spd(B),
    covers=("Cholesky",))
add(name="linalg_cholesky_upper", fn=lambda a: LA.cholesky(sym(a), upper=True),
    ref=lambda a: np.swapaxes(np.linalg.cholesky(np_sym(a)), -1, -2),
    torch_fn=lambda a: torch.linalg.cholesky(sym(a), upper=True), shapes=[(4, 4)],
    inputs=spd((4, 4)), covers=("Cholesky",))
for shape in [(2, 5, 3), (3, 3), (2, 3, 5)]:
    add(name=f"linalg_qr_{'x'.join(map(str, shape))}", fn=lambda a: flat_cat(*LA.qr(a)),
        ref=lambda a: flat_cat(*np.linalg.qr(a)), torch_fn=lambda a: flat_cat(*torch.linalg.qr(a)),
        shapes=[shape], inputs=rand(shape), covers=("QR",))
add(name="linalg_qr_complete_wide", fn=lambda a: flat_cat(*LA.qr(a, "complete")),
    ref=lambda a: flat_cat(*np.linalg.qr(a, "complete")),
    torch_fn=lambda a: flat_cat(*torch.linalg.qr(a, "complete")), shapes=[(3, 4)],
    inputs=rand((3, 4)), covers=("QR",))
add(name="linalg_eigh",
    fn=lambda a: flat_cat(*[t**2 if t.ndim == 3 else t for t in LA.eigh(sym(a))]),
    ref=lambda a: flat_cat(*[t**2 if t.ndim == 3 else t for t in np.linalg.eigh(np_sym(a))]),
    torch_fn=lambda a: flat_cat(*[t**2 if t.ndim == 3 else t
                                  for t in torch.linalg.eigh(sym(a))]),
    shapes=[B], inputs=rand(B), covers=("Eigh",))
add(name="linalg_eigh_upper", fn=lambda a: LA.eigh(sym(a), UPLO="U").eigenvectors ** 2,
    ref=lambda a: np.linalg.eigh(np_sym(a), UPLO="U")[1] ** 2,
    torch_fn=lambda a: torch.linalg.eigh(sym(a), UPLO="U").eigenvectors ** 2,
    shapes=[(4, 4)], inputs=rand((4, 4)), covers=("Eigh",))
add(name="linalg_eigvalsh", fn=lambda a: LA.eigvalsh(sym(a)),
    ref=lambda a: np.linalg.eigvalsh(np_sym(a)), torch_fn=lambda a: torch.linalg.eigvalsh(sym(a)),
    shapes=[B], inputs=rand(B), covers=("Eigvalsh",))
for shape in [(2, 5, 3), (3, 3), (2, 3, 5)]:
    add(name=f"linalg_svd_{'x'.join(map(str, shape))}",
        fn=lambda a: flat_cat(*[t**2 if t.ndim == a.ndim else t
                                for t in LA.svd(a, full_matrices=False)]),
        ref=lambda a: flat_cat(*[t**2 if t.ndim == a.ndim else t
                                 for t in np.linalg.svd(a, full_matrices=False)]),
        torch_fn=lambda a: flat_cat(*[t**2 if t.ndim == a.ndim else t
                                      for t in torch.linalg.svd(a, full_matrices=False)]),
        shapes=[shape], inputs=rand(shape), covers=("SVD",))
    add(name=f"linalg_svdvals_{'x'.join(map(str, shape))}", fn=LA.svdvals,
        ref=lambda a: np.linalg.svd(a, compute_uv=False), torch_fn=torch.linalg.svdvals,
        shapes=[shape], inputs=rand(shape), covers=("Svdvals",))
    add(name=f"linalg_pinv_{'x'.join(map(str, shape))}", fn=LA.pinv, ref=np.linalg.pinv,
        torch_fn=torch.linalg.pinv, shapes=[shape], inputs=rand(shape), covers=("Pinv",))
add(name="linalg_svd_full_square", fn=lambda a: LA.svd(a).S * LA.svd(a).U[..., 0, :] ** 2,
    ref=lambda a: np.linalg.svd(a)[1] * np.linalg.svd(a)[0][..., 0, :] ** 2,
    torch_fn=lambda a: torch.linalg.svd(a).S * torch.linalg.svd(a).U[..., 0, :] ** 2,
    shapes=[(4, 4)], inputs=rand((4, 4)), covers=("SVD",))
add(name="linalg_pinv_hermitian", fn=lambda a: LA.pinv(sym(a), hermitian=True),
    ref=lambda a: np.linalg.pinv(np_sym(a), hermitian=True),
    torch_fn=lambda a: torch.linalg.pinv(sym(a), hermitian=True), shapes=[(4, 4)],
    inputs=spd((4, 4)), covers=("Pinv",))


def eig_summary(a):
    """Symmetric functions of eig's outputs (independent of the eigenvalue order, which may
    differ between LAPACK builds, and of the eigenvector phases): sum Re(L^2), sum |L|^3 and
    sum_j Re(L_j) |V_:j|^4, per matrix (descent, NumPy or torch)."""
    if isinstance(a, np.ndarray):
        w, v = np.linalg.eig(a.astype(np.complex128))
        parts = [(w * w).real.sum(-1), (abs(w) ** 3).sum(-1),
                 (abs(v) ** 4 * w.real[..., None, :]).sum((-2, -1))]  # fmt: skip
        return np.concatenate(parts)
    w, v = (torch.linalg if isinstance(a, torch.Tensor) else LA).eig(a)
    parts = [(w * w).real.sum(-1), (w.abs() ** 3).sum(-1),
             (v.abs() ** 4 * w.real.unsqueeze(-2)).sum((-2, -1))]  # fmt: skip
    return flat_cat(*parts)


add(name="linalg_eig", fn=eig_summary, ref=eig_summary, torch_fn=eig_summary, shapes=[B],
    inputs=general(B), covers=("Eig",))

X = (3, 4, 5)
for p in [2, 1, 3, 0.5, 1.5, -1, float("inf"), -float("inf")]:
    add(name=f"linalg_vector_norm_{p}", fn=lambda x, p=p: LA.vector_norm(x, p, dim=(0, 2)),
        ref=lambda x, p=p: np.linalg.norm(np.moveaxis(x, 1, 0).reshape(4, -1), p, axis=1),
        torch_fn=lambda x, p=p: torch.linalg.vector_norm(x, p, dim=(0, 2)), shapes=[X],
        # away from 0 and without ties (distinct |x|): every order is smooth there
        inputs=away_from_zero(X), covers=("VectorNorm",))
add(name="linalg_vector_norm_all_keepdim", fn=lambda x: LA.vector_norm(x, 2, keepdim=True),
    ref=lambda x: np.sqrt((x * x).sum(keepdims=True)),
    torch_fn=lambda x: torch.linalg.vector_norm(x, 2, keepdim=True), shapes=[X],
    inputs=rand(X), covers=("VectorNorm",))
for o in ["fro", "nuc", 2, -2, 1, -1, float("inf"), -float("inf")]:
    add(name=f"linalg_matrix_norm_{o}", fn=lambda a, o=o: LA.matrix_norm(a, o),
        ref=lambda a, o=o: np.linalg.norm(a, o, axis=(-2, -1)),
        torch_fn=lambda a, o=o: torch.linalg.matrix_norm(a, o), shapes=[(2, 4, 3)],
        inputs=away_from_zero((2, 4, 3)),
        covers=("Svdvals",) if o in ("nuc", 2, -2) else ("VectorNorm",))
add(name="linalg_matrix_power_neg", fn=lambda a: LA.matrix_power(a, -3),
    ref=lambda a: np.linalg.matrix_power(np.linalg.inv(a), 3),
    torch_fn=lambda a: torch.linalg.matrix_power(a, -3), shapes=[B], inputs=general(B),
    covers=("Inv",))
add(name="linalg_lstsq", fn=lambda a, b: LA.lstsq(a, b).solution,
    ref=lambda a, b: np.linalg.lstsq(a, b, rcond=None)[0],
    torch_fn=lambda a, b: torch.linalg.lstsq(a, b).solution, shapes=[(6, 3), (6, 2)],
    inputs=lambda rng, dtype: [rng.normal(size=(6, 3)), rng.normal(size=(6, 2))],
    covers=("Pinv",))
add(name="logdet", fn=ds.logdet, ref=lambda a: np.log(np.linalg.det(a)), torch_fn=torch.logdet,
    shapes=[B], inputs=spd(B), covers=("Slogdet",))
add(name="cholesky_solve", fn=lambda b, low: ds.cholesky_solve(b, low),
    ref=lambda b, low: np.linalg.solve(low @ np.swapaxes(low, -1, -2), b),
    torch_fn=torch.cholesky_solve, shapes=[(3, 2), (3, 3)],
    inputs=lambda rng, dtype: [rng.normal(size=(3, 2)),
                               np.tril(rng.normal(size=(3, 3))) + 2 * np.eye(3)],
    covers=("Solve",))
add(name="linalg_matrix_exp", fn=LA.matrix_exp,
    ref=lambda a: torch.linalg.matrix_exp(torch.from_numpy(a)).numpy(),
    torch_fn=torch.linalg.matrix_exp, shapes=[B], inputs=lambda rng, dtype: [rng.normal(size=B)],
    covers=("Solve",))
add(name="linalg_solve_triangular", fn=lambda a, b: LA.solve_triangular(a, b, upper=False),
    ref=lambda a, b: np.linalg.solve(np.tril(a), b),
    torch_fn=lambda a, b: torch.linalg.solve_triangular(a, b, upper=False), shapes=[B, (2, 3, 2)],
    inputs=general(B, (2, 3, 2)), covers=("Solve",))
add(name="linalg_vander", fn=lambda x: LA.vander(x, N=4),
    ref=lambda x: np.vander(x, 4, increasing=True), torch_fn=lambda x: torch.linalg.vander(x, N=4),
    shapes=[(5,)], covers=("CumProd",))
