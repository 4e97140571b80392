# Gaussian-process regression the way people write it in PyTorch: an RBF kernel whose
# hyperparameters (log length scale, log signal and noise variances) are fitted by Adam on the
# negative log marginal likelihood through torch.linalg (cholesky, solve, slogdet), in float64;
# then a posterior mean and variance, and a little linear algebra around it (eigh, svd, norm,
# inv, det). Our own program; data made with NumPy.
import numpy as np
import torch

rng = np.random.default_rng(11)
X = torch.from_numpy(np.sort(rng.uniform(-3.0, 3.0, size=(40, 1)), axis=0))
y = torch.from_numpy(np.sin(2.0 * X.numpy()[:, 0]) + 0.1 * rng.standard_normal(40))
Xs = torch.from_numpy(np.linspace(-3.5, 3.5, 25)[:, None])


def rbf(a, b, log_ls, log_sf):
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return torch.exp(2 * log_sf) * torch.exp(-0.5 * d2 / torch.exp(2 * log_ls))


params = {
    "log_ls": torch.tensor(0.3, dtype=torch.float64, requires_grad=True),
    "log_sf": torch.tensor(0.0, dtype=torch.float64, requires_grad=True),
    "log_sn": torch.tensor(-1.0, dtype=torch.float64, requires_grad=True),
}
opt = torch.optim.Adam(params.values(), lr=0.05)
eye = torch.eye(40, dtype=torch.float64)
losses = []
for step in range(40):
    opt.zero_grad()
    K = rbf(X, X, params["log_ls"], params["log_sf"]) + torch.exp(2 * params["log_sn"]) * eye
    alpha = torch.linalg.solve(K, y.unsqueeze(-1)).squeeze(-1)
    sign, logdet = torch.linalg.slogdet(K)
    nll = 0.5 * (y @ alpha) + 0.5 * logdet + 0.5 * 40 * np.log(2 * np.pi)
    nll.backward()
    opt.step()
    losses.append(nll.item())

with torch.no_grad():
    K = rbf(X, X, params["log_ls"], params["log_sf"]) + torch.exp(2 * params["log_sn"]) * eye
    L = torch.linalg.cholesky(K)
    Ks = rbf(Xs, X, params["log_ls"], params["log_sf"])
    alpha = torch.linalg.solve(K, y.unsqueeze(-1))
    mean = (Ks @ alpha).squeeze(-1)
    v = torch.linalg.solve(L, Ks.T)  # L v = Ks^T (a general solve on the triangular factor)
    var = torch.exp(2 * params["log_sf"]) - (v * v).sum(0)
    evals, evecs = torch.linalg.eigh(K)
    svals = torch.linalg.svdvals(K[:10, :10])
    U, S, Vh = torch.linalg.svd(K[:6, :4], full_matrices=False)
    recon = torch.linalg.norm(U @ torch.diag(S) @ Vh - K[:6, :4])
    eye5 = torch.eye(5, dtype=torch.float64)
    inv_err = torch.linalg.norm(torch.linalg.inv(K[:5, :5]) @ K[:5, :5] - eye5)

# A gradient through eigh, svd and det (float64): a spectral penalty on a small matrix.
A = torch.tensor(np.random.default_rng(3).standard_normal((5, 5)), requires_grad=True)
S_ = A @ A.T + torch.eye(5, dtype=torch.float64)
pen = torch.linalg.eigh(S_)[0].max() + torch.linalg.svdvals(A).sum() + torch.linalg.det(S_).log()
pen = pen + torch.linalg.matrix_norm(A, ord="nuc") + torch.linalg.vector_norm(A, ord=3)
pen.backward()

from compat_helpers import report  # noqa: E402

report(
    losses=losses,
    hyper=[float(p.item()) for p in params.values()],
    mean=mean.tolist(),
    var=var.tolist(),
    eig_min=float(evals.min()),
    eig_max=float(evals.max()),
    evec_abs_first=[abs(float(v)) for v in evecs[:5, -1]],
    svals=svals.tolist(),
    recon=float(recon),
    inv_err_small=bool(float(inv_err) < 1e-8),
    penalty=pen.item(),
    penalty_grad=A.grad.flatten().tolist(),
    dtype=str(mean.dtype).split(".")[-1],
)
