# t-SNE written in tensor ops, as notebooks and small repos (e.g. the "tsne-pytorch" port of
# van der Maaten's tsne.py) do it: squared distances by the norm expansion, a per-point binary
# search for the Gaussian precision that meets a target perplexity (vectorised over points,
# torch.where updates of lo / hi bounds), symmetrised P with early exaggeration, Student-t Q,
# float64 as the NumPy original, the KL gradient by autograd compared with the closed form,
# momentum + gains updates in place, a PCA initialisation by torch.pca_lowrank / svd (signs
# fixed), trustworthiness by ranks.
import numpy as np
import torch
from compat_helpers import report

torch.set_default_dtype(torch.float64)  # as the NumPy original computes

rng = np.random.default_rng(5)
centers = rng.standard_normal((3, 10)) * 4.0
X = np.concatenate([c + rng.standard_normal((20, 10)) for c in centers])
X = torch.from_numpy(X)
labels = torch.arange(3).repeat_interleave(20)
N = X.shape[0]


def sq_dists(Z):
    s = (Z * Z).sum(1)
    D = s[:, None] - 2 * Z @ Z.T + s[None, :]
    return D.clamp_min(0.0).fill_diagonal_(0.0)


def binary_search_beta(D, perplexity=10.0, tol=1e-9, iters=30):
    logU = torch.log(torch.tensor(perplexity))
    beta = torch.ones(N)
    lo = torch.full((N,), -float("inf"))
    hi = torch.full((N,), float("inf"))
    eye = torch.eye(N, dtype=torch.bool)
    for _ in range(iters):
        P = torch.exp(-D * beta[:, None]).masked_fill(eye, 0.0)
        sumP = P.sum(1).clamp_min(1e-12)
        H = torch.log(sumP) + beta * (D * P).sum(1) / sumP
        diff = H - logU
        if diff.abs().max() < tol:
            break
        up = diff > 0
        lo = torch.where(up, beta, lo)
        hi = torch.where(up, hi, beta)
        beta = torch.where(
            up,
            torch.where(torch.isinf(hi), beta * 2, (beta + hi) / 2),
            torch.where(torch.isinf(lo), beta / 2, (beta + lo) / 2),
        )
    return P / sumP[:, None], beta


Xs = (X - X.mean(0)) / X.std(0)
D = sq_dists(Xs)
Pcond, beta = binary_search_beta(D)
P = (Pcond + Pcond.T) / (2 * N)
P = P.clamp_min(1e-12)

# PCA init, sign-fixed so both libraries agree
U, S, V = torch.pca_lowrank(Xs, q=10, center=True, niter=4)
Xc = Xs - Xs.mean(0)
_, S2, Vh = torch.linalg.svd(Xc, full_matrices=False)
comp = Vh[:2].T
comp = comp * torch.sign(comp[comp.abs().argmax(0), torch.arange(2)])
Y0 = Xc @ comp
Y0 = Y0 / Y0[:, 0].std()

Y = Y0.clone().requires_grad_(True)
iY = torch.zeros_like(Y)
gains = torch.ones_like(Y)
kls = []
grad_check = None
for it in range(30):
    exag = 4.0 if it < 20 else 1.0
    num = 1.0 / (1.0 + sq_dists(Y))
    num = num * (1 - torch.eye(N))
    Q = (num / num.sum()).clamp_min(1e-12)
    kl = (exag * P * torch.log(exag * P / Q)).sum()
    (g,) = torch.autograd.grad(kl, Y)
    if it == 0:
        with torch.no_grad():
            PQ = exag * P - Q
            closed = 4 * ((PQ * num)[:, :, None] * (Y[:, None, :] - Y[None, :, :])).sum(1)
            grad_check = (g - closed).abs().max().item() / closed.abs().max().item()
    with torch.no_grad():
        momentum = 0.5 if it < 20 else 0.8
        same = (g > 0) == (iY > 0)
        gains = torch.where(same, gains * 0.8, gains + 0.2).clamp_(min=0.01)
        iY.mul_(momentum).sub_(5.0 * gains * g)
        Y.add_(iY)
        Y.sub_(Y.mean(0))
    kls.append((P * torch.log(P / Q)).sum().item())

with torch.no_grad():
    Dy = sq_dists(Y)
    rank_x = D.argsort(1).argsort(1)
    nn_y = Dy.fill_diagonal_(float("inf")).topk(5, largest=False).indices
    r = rank_x.gather(1, nn_y) - 5
    trust = 1 - 2.0 / (N * 5 * (2 * N - 3 * 5 - 1)) * r.clamp_min(0).sum().float()
    cent = torch.stack([Y[labels == k].mean(0) for k in range(3)])
    knn_acc = (labels[nn_y[:, 0]] == labels).float().mean()

report(
    beta=beta.tolist()[:10],
    entropy_ok=bool(torch.isfinite(beta).all()),
    pca_singular=S[:4].tolist(),
    svd_singular=S2[:4].tolist(),
    pca_resid=(S[:4] - S2[:4]).abs().max().item() < 1e-3,
    Y0=Y0[:5].tolist(),
    kls=kls,
    grad_check=grad_check < 1e-4,
    trust=trust.item(),
    knn_acc=knn_acc.item(),
    cent_spread=torch.pdist(cent).tolist(),
)
