# Matrix and tensor factorisations as tensorly's PyTorch backend, NMF libraries and
# recommender notebooks write them: Lee-Seung multiplicative-update NMF (Frobenius and KL, the
# eps in the denominators), CP decomposition by alternating least squares (mode-n unfolding by
# movedim + reshape, the Khatri-Rao product by einsum, the Hadamard product of Gram matrices and
# linalg.solve, column normalisation into weights), Tucker by HOSVD (linalg.svd of each
# unfolding, a core by tensordot / mode products) with its reconstruction error, robust PCA by
# ADMM (singular value thresholding, soft thresholding by sign * clamp), low-rank matrix
# completion by gradient descent on observed entries (masked MSE, Adam) and by soft-impute, and
# truncated SVD of a rating matrix by torch.svd_lowrank-free power iteration with QR. Reported
# values are invariant to singular vectors' signs.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import report

torch.manual_seed(0)
rng = np.random.default_rng(42)
torch.set_default_dtype(torch.float64)

# ---- NMF ------------------------------------------------------------------------------------
M, N, R = 30, 20, 4
V = torch.from_numpy(rng.uniform(0, 1, (M, R)) @ rng.uniform(0, 1, (R, N)) + 0.01)
W0 = torch.from_numpy(rng.uniform(0.1, 1, (M, R)))
H0 = torch.from_numpy(rng.uniform(0.1, 1, (R, N)))
eps = 1e-10


def nmf_frobenius(V, W, H, iters):
    errs = []
    for _ in range(iters):
        H = H * (W.T @ V) / (W.T @ W @ H + eps)
        W = W * (V @ H.T) / (W @ H @ H.T + eps)
        errs.append(torch.linalg.norm(V - W @ H, "fro").item())
    return W, H, errs


def nmf_kl(V, W, H, iters):
    errs = []
    for _ in range(iters):
        WH = W @ H + eps
        H = H * (W.T @ (V / WH)) / (W.sum(0, keepdim=True).T + eps)
        WH = W @ H + eps
        W = W * ((V / WH) @ H.T) / (H.sum(1, keepdim=True).T + eps)
        WH = W @ H + eps
        errs.append((V * torch.log(V / WH) - V + WH).sum().item())
    return W, H, errs


_, _, fro_errs = nmf_frobenius(V, W0, H0, 25)
Wk, Hk, kl_errs = nmf_kl(V, W0, H0, 25)
kl_monotone = all(b <= a + 1e-9 for a, b in zip(kl_errs, kl_errs[1:]))


# ---- CP-ALS ---------------------------------------------------------------------------------
def unfold(tensor, mode):
    return torch.movedim(tensor, mode, 0).reshape(tensor.shape[mode], -1)


def khatri_rao(matrices):
    out = matrices[0]
    for m in matrices[1:]:
        out = torch.einsum("ir,jr->ijr", out, m).reshape(-1, m.shape[1])
    return out


def cp_to_tensor(weights, factors):
    return torch.einsum("r,ir,jr,kr->ijk", weights, *factors)


I, J, K, RANK = 6, 5, 4, 3
true_factors = [torch.from_numpy(rng.standard_normal((d, RANK))) for d in (I, J, K)]
X = cp_to_tensor(torch.ones(RANK), true_factors) + 0.01 * torch.from_numpy(
    rng.standard_normal((I, J, K)))
factors = [torch.from_numpy(rng.standard_normal((d, RANK))) for d in (I, J, K)]
weights = torch.ones(RANK)
cp_errs = []
for it in range(15):
    for mode in range(3):
        others = [factors[m] for m in range(3) if m != mode]
        gram = torch.ones(RANK, RANK)
        for f in others:
            gram = gram * (f.T @ f)
        mttkrp = unfold(X, mode) @ khatri_rao(others)
        factors[mode] = torch.linalg.solve(gram, mttkrp.T).T
        weights = torch.linalg.norm(factors[mode], dim=0)
        factors[mode] = factors[mode] / weights
    rec = cp_to_tensor(weights, factors)
    cp_errs.append((torch.linalg.norm(X - rec) / torch.linalg.norm(X)).item())
unfold_check = bool(torch.equal(unfold(X, 1)[:, 0], X[0, :, 0]))


# ---- Tucker by HOSVD ----------------------------------------------------------------------
def mode_dot(tensor, matrix, mode):
    moved = torch.movedim(tensor, mode, 0)
    out = torch.tensordot(matrix, moved, dims=([1], [0]))
    return torch.movedim(out, 0, mode)


ranks = (3, 3, 2)
Us = []
for mode, r in enumerate(ranks):
    U, S, Vh = torch.linalg.svd(unfold(X, mode), full_matrices=False)
    Us.append(U[:, :r])
core = X
for mode, U in enumerate(Us):
    core = mode_dot(core, U.T, mode)
rec = core
for mode, U in enumerate(Us):
    rec = mode_dot(rec, U, mode)
tucker_err = (torch.linalg.norm(X - rec) / torch.linalg.norm(X)).item()
core_norm = torch.linalg.norm(core).item()
mode_svals = [torch.linalg.svdvals(unfold(X, m)).tolist() for m in range(3)]

# ---- robust PCA (principal component pursuit by ADMM) --------------------------------------
L_true = torch.from_numpy(rng.standard_normal((25, 2)) @ rng.standard_normal((2, 20)))
S_true = torch.zeros(25, 20)
spikes = rng.choice(500, 25, replace=False)
S_true.view(-1)[torch.from_numpy(spikes)] = torch.from_numpy(rng.uniform(-5, 5, 25))
D = L_true + S_true


def shrink(x, tau):
    return torch.sign(x) * torch.clamp(x.abs() - tau, min=0)


def svt(x, tau):
    U, S, Vh = torch.linalg.svd(x, full_matrices=False)
    return U @ torch.diag(shrink(S, tau)) @ Vh


lam = 1 / np.sqrt(max(D.shape))
mu = D.numel() / (4 * D.abs().sum())
S = torch.zeros_like(D)
Y = torch.zeros_like(D)
rpca_res = []
for it in range(30):
    L = svt(D - S + Y / mu, 1 / mu)
    S = shrink(D - L + Y / mu, lam / mu)
    Y = Y + mu * (D - L - S)
    rpca_res.append((torch.linalg.norm(D - L - S) / torch.linalg.norm(D)).item())
rpca_rank = int(torch.linalg.matrix_rank(L, atol=1e-3 * torch.linalg.matrix_norm(L, 2)))
rpca_L_err = (torch.linalg.norm(L - L_true) / torch.linalg.norm(L_true)).item()
rpca_support = int((S.abs() > 0.5).sum())

# ---- matrix completion -------------------------------------------------------------------
users, items, k = 20, 15, 3
ratings = torch.from_numpy(rng.standard_normal((users, k)) @ rng.standard_normal((k, items)))
observed = torch.from_numpy(rng.uniform(size=(users, items)) < 0.5)


class MF(nn.Module):
    def __init__(self):
        super().__init__()
        self.U = nn.Parameter(torch.from_numpy(rng.standard_normal((users, k)) * 0.3))
        self.V = nn.Parameter(torch.from_numpy(rng.standard_normal((items, k)) * 0.3))
        self.bu = nn.Parameter(torch.zeros(users))
        self.bi = nn.Parameter(torch.zeros(items))

    def forward(self):
        return self.U @ self.V.T + self.bu[:, None] + self.bi[None, :]


mf = MF()
opt = torch.optim.Adam(mf.parameters(), lr=0.05)
mf_losses = []
for step in range(40):
    opt.zero_grad()
    pred = mf()
    loss = ((pred - ratings)[observed] ** 2).mean() + 1e-3 * (mf.U.pow(2).sum() + mf.V.pow(2).sum())
    loss.backward()
    opt.step()
    mf_losses.append(loss.item())
with torch.no_grad():
    heldout_rmse = ((mf() - ratings)[~observed] ** 2).mean().sqrt().item()

# soft-impute (Mazumder et al.)
Z = torch.zeros_like(ratings)
soft_errs = []
for it in range(20):
    filled = torch.where(observed, ratings, Z)
    Z = svt(filled, 1.0)
    soft_errs.append(((Z - ratings)[~observed] ** 2).mean().sqrt().item())

# top-k SVD by subspace iteration with QR
Q = torch.linalg.qr(torch.from_numpy(rng.standard_normal((items, k))))[0]
for it in range(30):
    Q = torch.linalg.qr(ratings @ Q)[0]
    Q = torch.linalg.qr(ratings.T @ Q)[0]
top_svals = torch.linalg.svdvals(ratings @ Q).tolist()
true_svals = torch.linalg.svdvals(ratings)[:k].tolist()

report(
    fro_errs=fro_errs,
    kl_errs=kl_errs,
    kl_monotone=kl_monotone,
    nmf_nonneg=bool((Wk >= 0).all() and (Hk >= 0).all()),
    cp_errs=cp_errs,
    cp_weights=sorted(weights.tolist()),
    unfold_check=unfold_check,
    tucker_err=tucker_err,
    core_norm=core_norm,
    mode_svals=mode_svals,
    rpca_res=rpca_res,
    rpca_rank=rpca_rank,
    rpca_L_err=rpca_L_err,
    rpca_support=rpca_support,
    mf_losses=mf_losses,
    heldout_rmse=heldout_rmse,
    soft_errs=soft_errs,
    top_svals=top_svals,
    true_svals=true_svals,
)
