# Research code from 2018-2021 that still calls torch's pre-torch.linalg functions (as
# repositories for point-cloud registration, Gaussian processes and normalising flows wrote
# them): orthogonal Procrustes / Kabsch by torch.svd (which returns V, not Vh) with the
# reflection fix by torch.det, trained through the SVD's gradient; a GP whose marginal
# likelihood uses torch.cholesky, torch.triangular_solve (returning (solution,
# cloned_coefficient)) and torch.cholesky_solve, hyperparameters fitted by Adam; torch.qr for an
# orthogonal initialisation; torch.lu / torch.lu_unpack / torch.lu_solve for a 1x1
# invertible convolution's log-determinant; torch.ger, torch.chain_matmul, torch.pinverse,
# torch.matrix_rank's replacement, torch.logdet, and torch.symeig's removal error.
import warnings

import numpy as np
import torch
from compat_helpers import report

warnings.simplefilter("ignore")
rng = np.random.default_rng(606)

# Kabsch: the rotation aligning P onto Q, learned end to end through torch.svd
P0 = torch.from_numpy(rng.standard_normal((20, 3)))
angle = 0.7
R_true = torch.tensor(
    [[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]],
    dtype=torch.float64,
)
Q = P0 @ R_true.t() + 0.01 * torch.from_numpy(rng.standard_normal((20, 3)))


def kabsch(P, Q):
    Pc = P - P.mean(0, keepdim=True)
    Qc = Q - Q.mean(0, keepdim=True)
    H = Pc.t() @ Qc
    U, S, V = torch.svd(H)
    d = torch.sign(torch.det(V @ U.t()))
    D = torch.diag(torch.stack([torch.ones_like(d), torch.ones_like(d), d]))
    return V @ D @ U.t(), S


R, S = kabsch(P0, Q)
kabsch_R = R.tolist()
offset = torch.zeros(20, 3, dtype=torch.float64, requires_grad=True)
opt = torch.optim.Adam([offset], lr=0.02)
kabsch_losses = []
for step in range(8):
    opt.zero_grad()
    R, S = kabsch(P0 + offset, Q)
    loss = ((P0 + offset) @ R.t() - Q).pow(2).sum() + 0.1 * offset.pow(2).sum()
    loss.backward()
    opt.step()
    kabsch_losses.append(loss.item())
svd_grad = offset.grad[:3].tolist()
U, S, V = torch.svd(torch.from_numpy(rng.standard_normal((5, 3))), some=True)
U2, S2, V2 = torch.svd(torch.from_numpy(rng.standard_normal((3, 5))), some=False)
svd_shapes = [list(U.shape), list(V.shape), list(U2.shape), list(V2.shape)]

# GP marginal likelihood with the legacy calls
X = torch.from_numpy(np.sort(rng.uniform(-3, 3, 15))).unsqueeze(1)
y = torch.sin(X).squeeze(1) + 0.05 * torch.from_numpy(rng.standard_normal(15))
log_ls = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
log_sf = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
log_sn = torch.tensor(-2.0, dtype=torch.float64, requires_grad=True)
opt = torch.optim.Adam([log_ls, log_sf, log_sn], lr=0.05)


def kernel(A, B):
    d2 = (A - B.t()).pow(2)
    return log_sf.exp().pow(2) * torch.exp(-0.5 * d2 / log_ls.exp().pow(2))


gp_losses = []
for step in range(10):
    opt.zero_grad()
    K = kernel(X, X) + (log_sn.exp().pow(2) + 1e-6) * torch.eye(15, dtype=torch.float64)
    L = torch.cholesky(K)
    alpha_half, _ = torch.triangular_solve(y.unsqueeze(1), L, upper=False)
    nll = 0.5 * alpha_half.pow(2).sum() + torch.log(torch.diagonal(L)).sum()
    nll = nll + 0.5 * 15 * np.log(2 * np.pi)
    nll.backward()
    opt.step()
    gp_losses.append(nll.item())
with torch.no_grad():
    K = kernel(X, X) + log_sn.exp().pow(2) * torch.eye(15, dtype=torch.float64)
    L = torch.cholesky(K)
    alpha = torch.cholesky_solve(y.unsqueeze(1), L)
    Xs = torch.linspace(-3, 3, 5, dtype=torch.float64).unsqueeze(1)
    mean = kernel(Xs, X) @ alpha
    Lu = torch.cholesky(K, upper=True)
    sol, coeff = torch.triangular_solve(y.unsqueeze(1), Lu, upper=True, transpose=True)
gp = {
    "mean": mean.squeeze(1).tolist(),
    "upper_agrees": torch.allclose(Lu.t(), L),
    "coeff_is_copy": bool((coeff == Lu).all()),
    "hyper": [log_ls.item(), log_sf.item(), log_sn.item()],
}

# torch.qr orthogonal init and a Glow-style 1x1 conv log-det by torch.lu
w = torch.from_numpy(rng.standard_normal((4, 4)).astype(np.float32))
q, r = torch.qr(w)
q = q * torch.sign(torch.diag(r)).unsqueeze(0)
weight = torch.nn.Parameter(q.clone())
A_LU, pivots = torch.lu(weight.detach())
P, L, U = torch.lu_unpack(A_LU, pivots)
logdet_lu = torch.sum(torch.log(torch.abs(torch.diag(U)))).item()
x = torch.from_numpy(rng.standard_normal((2, 4, 3, 3)).astype(np.float32))
opt = torch.optim.SGD([weight], lr=0.1)
glow = []
for step in range(4):
    opt.zero_grad()
    z = torch.nn.functional.conv2d(x, weight.view(4, 4, 1, 1))
    logdet = 9 * torch.slogdet(weight)[1]
    loss = 0.5 * z.pow(2).sum() / 2 - logdet / 2
    loss.backward()
    opt.step()
    glow.append([loss.item(), logdet.item()])
b = torch.from_numpy(rng.standard_normal((4, 2)).astype(np.float32))
A_LU, pivots = torch.lu(weight.detach())
lu_sol = torch.lu_solve(b, A_LU, pivots)
misc = {
    "orthogonal": (q.t() @ q - torch.eye(4)).abs().max().item() < 1e-5,
    "logdet_lu": logdet_lu,
    "lu_residual_small": (weight.detach() @ lu_sol - b).abs().max().item() < 1e-4,
    "plu": (P @ L @ U - A_LU.new_tensor(weight.detach())).abs().max().item() < 1e-5,
    "ger": torch.ger(torch.arange(3.0), torch.arange(2.0)).tolist(),
    "chain": torch.chain_matmul(w, w.t(), w)[0].tolist(),
    "pinverse": torch.pinverse(w[:, :3])[0].tolist(),
    "logdet_spd": torch.logdet(w @ w.t() + torch.eye(4)).item(),
    "rank": torch.linalg.matrix_rank(torch.ger(torch.arange(3.0), torch.arange(2.0))).item(),
}
try:
    torch.symeig(w @ w.t())
    symeig = "ran"
except (RuntimeError, AttributeError) as e:
    symeig = type(e).__name__
report(
    kabsch_R=kabsch_R,
    kabsch_losses=kabsch_losses,
    svd_grad=svd_grad,
    svd_shapes=svd_shapes,
    gp_losses=gp_losses,
    gp=gp,
    glow=glow,
    misc=misc,
    symeig=symeig,
)
