# Exact Gaussian-process regression and a Bayesian-optimisation step, in the shape of GPyTorch /
# BoTorch internals written out by hand: GPyTorch's psd_safe_cholesky (torch.linalg.cholesky_ex,
# jitter added in place on a diagonal view, Aprime.diagonal(dim1=-1, dim2=-2).add_, retried
# while info > 0), a Matern-5/2 kernel on torch.cdist, softplus-constrained hyperparameters
# (raw parameters + F.softplus, as GPyTorch's Positive constraint), the marginal likelihood
# through torch.cholesky_solve and the log-diagonal of L, Adam, then a posterior with
# torch.linalg.solve_triangular and expected improvement from Normal.cdf / log_prob over a
# candidate grid; torch.linalg.inv_ex / solve_ex on a singular design matrix.
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Normal

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(53)


def psd_safe_cholesky(A, upper=False, jitter=None, max_tries=4):
    L, info = torch.linalg.cholesky_ex(A)
    if not torch.any(info):
        return L, 0.0
    if torch.any(torch.isnan(A)):
        raise ValueError("cholesky_cpu: input matrix contains NaNs")
    if jitter is None:
        jitter = 1e-6 if A.dtype == torch.float32 else 1e-8
    Aprime = A.clone()
    jitter_prev = 0
    for i in range(max_tries):
        jitter_new = jitter * (10**i)
        # add jitter only where needed
        diag_add = (
            ((info > 0) * (jitter_new - jitter_prev)).unsqueeze(-1).expand(*Aprime.shape[:-1])
        )
        Aprime.diagonal(dim1=-1, dim2=-2).add_(diag_add)
        jitter_prev = jitter_new
        L, info = torch.linalg.cholesky_ex(Aprime)
        if not torch.any(info):
            return L, jitter_new
    raise RuntimeError(
        f"Matrix not positive definite after repeatedly adding jitter up to {jitter_new:.1e}."
    )


def matern52(x1, x2, lengthscale, outputscale):
    d = torch.cdist(x1 / lengthscale, x2 / lengthscale)
    sqrt5d = math.sqrt(5) * d
    return outputscale * (1 + sqrt5d + 5.0 / 3.0 * d**2) * torch.exp(-sqrt5d)


def objective(x):
    return torch.sin(3 * x) + 0.5 * x


# data: a repeated design point makes the noise-free kernel exactly singular
X = torch.from_numpy(np.concatenate([[-1.0, -1.0], rng.uniform(-2, 2, 8)]))[:, None]
y = objective(X).squeeze(-1) + 0.05 * torch.from_numpy(rng.standard_normal(10))

raw_lengthscale = torch.nn.Parameter(torch.tensor(0.0))
raw_outputscale = torch.nn.Parameter(torch.tensor(0.0))
raw_noise = torch.nn.Parameter(torch.tensor(-3.0))
opt = torch.optim.Adam([raw_lengthscale, raw_outputscale, raw_noise], lr=0.05)

K0 = matern52(X[:2], X[:2], 1.0, 1.0)  # the two identical points: [[1, 1], [1, 1]]
L0, jitter0 = psd_safe_cholesky(K0)
batch = torch.stack(
    [torch.eye(2) * 2, K0, torch.tensor([[1.0, 2.0], [2.0, 1.0]]) + 2.5 * torch.eye(2)]
)
Lb, jitter_b = psd_safe_cholesky(batch)
info0 = torch.linalg.cholesky_ex(K0).info.item()

mlls, jitters = [], []
for step in range(25):
    lengthscale = F.softplus(raw_lengthscale)
    outputscale = F.softplus(raw_outputscale)
    noise = F.softplus(raw_noise) + 1e-4
    K = matern52(X, X, lengthscale, outputscale) + noise * torch.eye(len(X))
    L, jitter = psd_safe_cholesky(K)
    alpha = torch.cholesky_solve(y.unsqueeze(-1), L)  # K^{-1} y
    mll = (
        -0.5 * (y.unsqueeze(-1) * alpha).sum()
        - torch.log(torch.diagonal(L)).sum()
        - 0.5 * len(X) * math.log(2 * math.pi)
    )
    loss = -mll / len(X)
    opt.zero_grad()
    loss.backward()
    opt.step()
    mlls.append(mll.item())
    jitters.append(jitter)

with torch.no_grad():
    lengthscale = F.softplus(raw_lengthscale)
    outputscale = F.softplus(raw_outputscale)
    noise = F.softplus(raw_noise) + 1e-4
    K = matern52(X, X, lengthscale, outputscale) + noise * torch.eye(len(X))
    L, _ = psd_safe_cholesky(K)
    Xc = torch.linspace(-2, 2, 41)[:, None]
    Ks = matern52(X, Xc, lengthscale, outputscale)  # (n, m)
    v = torch.linalg.solve_triangular(L, Ks, upper=False)
    alpha = torch.cholesky_solve(y.unsqueeze(-1), L)
    mean = (Ks.transpose(-1, -2) @ alpha).squeeze(-1)
    var = (outputscale - (v**2).sum(0)).clamp_min(1e-9)
    sigma = var.sqrt()
    best_f = y.max()
    u = (mean - best_f) / sigma
    normal = Normal(torch.zeros_like(u), torch.ones_like(u))
    ei = sigma * (normal.log_prob(u).exp() + u * normal.cdf(u))
    next_x = Xc[ei.argmax()].item()

# a singular design matrix: the _ex variants report it instead of raising
design = torch.cat([X[:4], X[:4]], dim=1)  # two equal columns
G = design.T @ design
inverse, inv_info = torch.linalg.inv_ex(G)
sol, solve_info = torch.linalg.solve_ex(torch.stack([G, G + torch.eye(2)]), torch.ones(2, 2))
from compat_helpers import report  # noqa: E402

report(
    info0=info0,
    jitter0=jitter0,
    L0=L0.tolist(),
    jitter_b=jitter_b,
    Lb_ok=Lb[[0, 2]].tolist(),
    mlls=mlls,
    jitters=jitters,
    hypers=[lengthscale.item(), outputscale.item(), noise.item()],
    mean=mean[::5].tolist(),
    sigma=sigma[::5].tolist(),
    ei_max=ei.max().item(),
    next_x=next_x,
    inv_info=inv_info.item(),
    solve_info=solve_info.tolist(),
    solve_ok=sol[1].tolist(),
)
