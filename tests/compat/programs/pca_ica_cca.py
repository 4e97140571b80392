# Classical linear unsupervised methods in torch, as scientific users write them: PCA by
# torch.pca_lowrank (center=True, q, niter) and by svd_lowrank against the exact SVD, the top
# eigenpairs of a covariance by torch.lobpcg (largest=True, a NumPy start block), explained
# variance ratios, ZCA whitening by eigh with an epsilon, FastICA (Hyvarinen) with logcosh and
# symmetric decorrelation W <- (W W^T)^{-1/2} W, the Amari distance to the mixing matrix, CCA
# by Cholesky whitening + SVD, probabilistic PCA's closed-form sigma^2. Subspaces are compared
# through sign-invariant quantities (absolute cosines, projector norms).
import numpy as np
import torch
from compat_helpers import report

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(44)
n = 400
t = np.linspace(0, 8, n)
S = np.stack([np.sin(2 * t), np.sign(np.sin(3 * t)), ((t * 1.7) % 2) - 1])
A = rng.standard_normal((4, 3))
Xn = (A @ S).T + 0.02 * rng.standard_normal((n, 4))
X = torch.from_numpy(Xn)

U, Sv, V = torch.pca_lowrank(X, q=3, center=True, niter=6)
Xc = X - X.mean(0)
_, S_exact, Vh = torch.linalg.svd(Xc, full_matrices=False)
cos_pca = (V.T @ Vh[:3].T).abs().max(1).values
U2, S2, V2 = torch.svd_lowrank(Xc, q=3, niter=6)
proj_err = torch.linalg.matrix_norm(V2 @ V2.T - Vh[:3].T @ Vh[:3])

cov = Xc.T @ Xc / (n - 1)
X0 = torch.from_numpy(np.random.default_rng(0).standard_normal((4, 1)))
evals_lob, evecs_lob = torch.lobpcg(cov, k=1, X=X0, largest=True, niter=50)
evals_full = torch.linalg.eigvalsh(cov).flip(0)
evr = evals_full / evals_full.sum()

eps = 1e-5
ev, E = torch.linalg.eigh(cov)
Wzca = E @ torch.diag(1.0 / torch.sqrt(ev + eps)) @ E.T
Xw = Xc @ Wzca
white_err = (Xw.T @ Xw / (n - 1) - torch.eye(4)).abs().max()

# FastICA on the first 3 PCA components (whitened)
Z = Xc @ Vh[:3].T / S_exact[:3] * np.sqrt(n - 1)


def sym_decorrelate(W):
    s, u = torch.linalg.eigh(W @ W.T)
    return u @ torch.diag(1.0 / torch.sqrt(s)) @ u.T @ W


Wica = sym_decorrelate(torch.from_numpy(np.random.default_rng(1).standard_normal((3, 3))))
lims = []
for it in range(40):
    WX = Z @ Wica.T
    g = torch.tanh(WX)
    g_prime = 1 - g**2
    W_new = (g.T @ Z) / n - torch.diag(g_prime.mean(0)) @ Wica
    W_new = sym_decorrelate(W_new)
    lim = (torch.abs(torch.einsum("ij,ij->i", W_new, Wica)) - 1).abs().max()
    Wica = W_new
    lims.append(lim.item())
    if lim < 1e-10:
        break
unmix = Wica @ torch.diag(np.sqrt(n - 1) / S_exact[:3]) @ Vh[:3]
P = (unmix @ torch.from_numpy(A)).abs()
amari = ((P / P.max(1, keepdim=True).values).sum(1) - 1).sum() + (
    (P / P.max(0, keepdim=True).values).sum(0) - 1
).sum()
src = Z @ Wica.T
corr = torch.corrcoef(torch.cat([src.T, torch.from_numpy(S)]))[:3, 3:].abs().max(1).values

# CCA between two views
Y = torch.from_numpy(S[:2].T @ rng.standard_normal((2, 3)) + 0.3 * rng.standard_normal((n, 3)))
Yc = Y - Y.mean(0)
Sxx = Xc.T @ Xc / (n - 1) + 1e-6 * torch.eye(4)
Syy = Yc.T @ Yc / (n - 1) + 1e-6 * torch.eye(3)
Sxy = Xc.T @ Yc / (n - 1)
Lx, Ly = torch.linalg.cholesky(Sxx), torch.linalg.cholesky(Syy)
M = torch.linalg.solve_triangular(Lx, Sxy, upper=False)
M = torch.linalg.solve_triangular(Ly, M.T, upper=False).T
canon = torch.linalg.svdvals(M)

# PPCA: sigma^2 is the mean of the discarded eigenvalues
sigma2 = evals_full[3:].mean()

report(
    pca_singular=Sv.tolist(),
    exact_singular=S_exact.tolist(),
    cos_pca=cos_pca.tolist(),
    lowrank_singular=S2.tolist(),
    proj_err=proj_err.item() < 1e-8,
    lobpcg=evals_lob.tolist(),
    lobpcg_cos=(evecs_lob.T @ torch.linalg.eigh(cov)[1][:, [3]]).abs().diagonal().tolist(),
    evr=evr.tolist(),
    white_err=white_err.item() < 1e-6,
    ica_iters=len(lims),
    amari=amari.item(),
    ica_corr=corr.tolist(),
    canon=canon.tolist(),
    sigma2=sigma2.item(),
)
