# Kernel methods in torch, as course notebooks and GPyTorch-free research code write them:
# an RBF kernel with the median heuristic (torch.median of pdist), kernel ridge regression by
# cholesky / cholesky_solve and by linalg.solve, random Fourier features (Rahimi & Recht) as a
# module trained by SGD, a Nystrom approximation with linalg.pinv(hermitian=True), kernel PCA
# by eigh of the centred Gram matrix (signs fixed), a linear SVM trained on the hinge loss,
# and an MMD two-sample test with a permutation null (NumPy permutations).
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(31)
Xn = rng.uniform(-3, 3, size=(60, 2))
yn = np.sin(Xn[:, 0]) * np.cos(Xn[:, 1]) + 0.05 * rng.standard_normal(60)
X = torch.from_numpy(Xn).float()
y = torch.from_numpy(yn).float()


def rbf(A, B, ls):
    return torch.exp(-torch.cdist(A, B).pow(2) / (2 * ls**2))


med = torch.median(torch.pdist(X))
ls = med / math.sqrt(2)
K = rbf(X, X, ls)
lam = 1e-2
L = torch.linalg.cholesky(K + lam * torch.eye(60))
alpha = torch.cholesky_solve(y[:, None], L)
alpha2 = torch.linalg.solve(K + lam * torch.eye(60), y)
Xt = torch.from_numpy(rng.uniform(-3, 3, size=(20, 2))).float()
yt = torch.sin(Xt[:, 0]) * torch.cos(Xt[:, 1])
pred = (rbf(Xt, X, ls) @ alpha).squeeze(1)
krr_mse = (pred - yt).pow(2).mean()


class RFF(nn.Module):
    def __init__(self, d, D, ls):
        super().__init__()
        g = np.random.default_rng(2)
        self.register_buffer("Om", torch.from_numpy(g.standard_normal((d, D))).float() / ls)
        self.register_buffer("b", torch.from_numpy(g.uniform(0, 2 * np.pi, D)).float())
        self.lin = nn.Linear(D, 1)
        self.D = D

    def features(self, x):
        return math.sqrt(2.0 / self.D) * torch.cos(x @ self.Om + self.b)

    def forward(self, x):
        return self.lin(self.features(x)).squeeze(-1)


rff = RFF(2, 64, ls.item())
W = reference_weights(rff)
with torch.no_grad():
    for n, p in rff.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.SGD(rff.parameters(), lr=0.5)
rff_losses = []
for _ in range(30):
    loss = (rff(X) - y).pow(2).mean() + 1e-3 * rff.lin.weight.pow(2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    rff_losses.append(loss.item())
Z = rff.features(X)
approx_err = (Z @ Z.T - K).abs().max()

idx = torch.from_numpy(np.random.default_rng(4).choice(60, 15, replace=False))
Kmm = K[idx][:, idx]
Knm = K[:, idx]
K_nys = Knm @ torch.linalg.pinv(Kmm + 1e-2 * torch.eye(15), hermitian=True) @ Knm.T
nys_err = torch.linalg.matrix_norm(K - K_nys) / torch.linalg.matrix_norm(K)

n = K.shape[0]
one = torch.full((n, n), 1.0 / n)
Kc = K - one @ K - K @ one + one @ K @ one
evals, evecs = torch.linalg.eigh(Kc)
evals, evecs = evals.flip(0)[:3], evecs.flip(1)[:, :3]
evecs = evecs * torch.sign(evecs[evecs.abs().argmax(0), torch.arange(3)])
proj = evecs * evals.clamp_min(0).sqrt()

lab = torch.where(X[:, 0] + 0.5 * X[:, 1] > 0.3, 1.0, -1.0)
svm = nn.Linear(2, 1)
with torch.no_grad():
    svm.weight.copy_(torch.tensor([[0.1, -0.2]]))
    svm.bias.zero_()
opt = torch.optim.SGD(svm.parameters(), lr=0.1)
svm_losses = []
for _ in range(25):
    margin = lab * svm(X).squeeze(1)
    loss = torch.clamp(1 - margin, min=0).mean() + 0.01 * svm.weight.pow(2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    svm_losses.append(loss.item())
support = (lab * svm(X).squeeze(1) <= 1 + 1e-6).sum().item()


def mmd2(A, B, ls):
    return rbf(A, A, ls).mean() + rbf(B, B, ls).mean() - 2 * rbf(A, B, ls).mean()


P = torch.from_numpy(rng.standard_normal((30, 2))).float()
Q = torch.from_numpy(rng.standard_normal((30, 2)) * 1.3 + 0.4).float()
stat = mmd2(P, Q, 1.0)
pool = torch.cat([P, Q])
prng = np.random.default_rng(9)
null = []
for _ in range(50):
    perm = torch.from_numpy(prng.permutation(60))
    null.append(mmd2(pool[perm[:30]], pool[perm[30:]], 1.0).item())
pval = (torch.tensor(null) >= stat).float().mean()

report(
    median=med.item(),
    krr_mse=krr_mse.item(),
    solve_agree=torch.allclose(alpha.squeeze(1), alpha2, atol=1e-3),
    rff_losses=rff_losses,
    approx_err=approx_err.item(),
    nys_err=nys_err.item(),
    kpca_evals=evals.tolist(),
    kpca_proj=proj[:5].tolist(),
    svm_losses=svm_losses,
    support=support,
    mmd=stat.item(),
    pval=pval.item(),
)
