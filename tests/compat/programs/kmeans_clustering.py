# Clustering the way kmeans_pytorch, fast-pytorch-kmeans and the DEC re-implementations write it:
# k-means++ seeding (squared distances by torch.cdist, a NumPy uniform against the cumsum by
# torch.searchsorted), Lloyd iterations (argmin, one_hot / index_add_ / bincount(minlength) means,
# an empty cluster refilled with the farthest point, shift-based stopping), Sculley's mini-batch
# k-means with per-centre counts, soft k-means by softmax responsibilities and by gradient descent
# on a logsumexp objective, the silhouette score, NMI from a contingency table, spectral
# clustering (Gaussian affinity, normalised Laplacian, linalg.eigh, row-normalised eigenvectors),
# and Deep Embedded Clustering: Student-t soft assignments, the sharpened target distribution,
# KLDivLoss(reduction="batchmean") with cluster centres as an nn.Parameter under Adam.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(2024)

K, D, PER = 4, 2, 30
means = np.array([[0.0, 0.0], [4.0, 0.5], [0.5, 4.0], [4.5, 4.5]])
pts = np.concatenate([m + rng.standard_normal((PER, D)) * 0.6 for m in means])
truth = np.repeat(np.arange(K), PER)
perm = rng.permutation(len(pts))
X = torch.from_numpy(pts[perm].astype(np.float32))
labels_true = torch.from_numpy(truth[perm])
N = X.shape[0]
uniforms = rng.uniform(size=64)


def kmeans_plusplus(X, k, u):
    centers = [X[0]]
    for i in range(1, k):
        d2 = torch.cdist(X, torch.stack(centers)).pow(2).min(dim=1).values
        cdf = torch.cumsum(d2, 0) / d2.sum()
        idx = torch.searchsorted(cdf, torch.tensor([u[i]], dtype=cdf.dtype)).item()
        centers.append(X[min(idx, len(X) - 1)])
    return torch.stack(centers)


def lloyd(X, centers, iters=20, tol=1e-4):
    shifts = []
    for it in range(iters):
        dist = torch.cdist(X, centers)                  # (N, K)
        assign = dist.argmin(dim=1)
        one_hot = F.one_hot(assign, centers.shape[0]).float()
        counts = one_hot.sum(0)
        sums = one_hot.t() @ X
        new = sums / counts.clamp(min=1).unsqueeze(1)
        empty = counts == 0
        if empty.any():
            far = dist.min(dim=1).values.argmax()
            new[empty] = X[far]
        shift = (new - centers).norm(dim=1).sum().item()
        shifts.append(shift)
        centers = new
        if shift < tol:
            break
    inertia = (X - centers[assign]).pow(2).sum().item()
    return centers, assign, inertia, shifts


def silhouette(X, labels, k):
    d = torch.cdist(X, X)
    a = torch.zeros(len(X))
    b = torch.full((len(X),), float("inf"))
    for c in range(k):
        mask = labels == c
        n_c = mask.sum()
        mean_d = d[:, mask].sum(1) / torch.where(labels == c, n_c - 1, n_c).clamp(min=1)
        a = torch.where(labels == c, mean_d, a)
        b = torch.where(labels != c, torch.minimum(b, mean_d), b)
    s = (b - a) / torch.maximum(a, b)
    return s.mean().item()


def nmi(a, b):
    n = len(a)
    ka, kb = int(a.max()) + 1, int(b.max()) + 1
    table = torch.bincount(a * kb + b, minlength=ka * kb).view(ka, kb).double() / n
    pa, pb = table.sum(1, keepdim=True), table.sum(0, keepdim=True)
    nz = table > 0
    mi = (table[nz] * torch.log(table[nz] / (pa @ pb)[nz])).sum()
    ha = -(pa[pa > 0] * pa[pa > 0].log()).sum()
    hb = -(pb[pb > 0] * pb[pb > 0].log()).sum()
    return (2 * mi / (ha + hb)).item()


init = kmeans_plusplus(X, K, uniforms)
centers, assign, inertia, shifts = lloyd(X, init.clone())
counts = torch.bincount(assign, minlength=K).tolist()
sil = silhouette(X, assign, K)
score = nmi(labels_true, assign)

# Lloyd from a bad start (two centres on the same point): the empty cluster is refilled
bad_centers, bad_assign, bad_inertia, bad_shifts = lloyd(X, X[[0, 0, 1, 2]].clone())

# mini-batch k-means (Sculley 2010)
mb_centers = init.clone()
mb_counts = torch.zeros(K)
order = torch.from_numpy(rng.permutation(N))
for step in range(6):
    batch = X[order[(step * 20) % N:(step * 20) % N + 20]]
    nearest = torch.cdist(batch, mb_centers).argmin(1)
    for x, j in zip(batch, nearest.tolist()):
        mb_counts[j] += 1
        eta = 1.0 / mb_counts[j]
        mb_centers[j] = (1 - eta) * mb_centers[j] + eta * x
mb_inertia = torch.cdist(X, mb_centers).min(1).values.pow(2).sum().item()

# soft k-means: EM-like responsibilities with stiffness beta
beta = 2.0
soft = init.clone()
for it in range(10):
    r = torch.softmax(-beta * torch.cdist(X, soft).pow(2), dim=1)   # (N, K)
    soft = (r.t() @ X) / r.sum(0).unsqueeze(1)
soft_entropy = -(r * r.clamp_min(1e-12).log()).sum(1).mean().item()

# soft k-means by gradient descent on -logsumexp(-beta d^2) / beta
mu = nn.Parameter(init.clone() + 0.3)
opt = torch.optim.Adam([mu], lr=0.1)
grad_losses = []
for step in range(15):
    opt.zero_grad()
    d2 = (X.unsqueeze(1) - mu.unsqueeze(0)).pow(2).sum(-1)
    loss = -(torch.logsumexp(-beta * d2, dim=1) / beta).mean()
    loss.backward()
    opt.step()
    grad_losses.append(loss.item())

# spectral clustering
with torch.no_grad():
    sigma = 1.0
    W = torch.exp(-torch.cdist(X, X).pow(2) / (2 * sigma ** 2))
    W.fill_diagonal_(0)
    deg = W.sum(1)
    d_inv_sqrt = deg.pow(-0.5)
    L_sym = torch.eye(N) - d_inv_sqrt[:, None] * W * d_inv_sqrt[None, :]
    evals, evecs = torch.linalg.eigh(L_sym.double())
    U = evecs[:, :K]
    U = U / U.norm(dim=1, keepdim=True)
    sc_centers, sc_assign, sc_inertia, _ = lloyd(U.float(), kmeans_plusplus(U.float(), K,
                                                                             uniforms))
spectral_evals = evals[:K + 2].tolist()
spectral_nmi = nmi(labels_true, sc_assign)


# Deep Embedded Clustering
class DEC(nn.Module):
    def __init__(self, d_in, d_z, k, alpha=1.0):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(d_in, 16), nn.ReLU(), nn.Linear(16, d_z))
        self.cluster_centers = nn.Parameter(torch.zeros(k, d_z))
        self.alpha = alpha

    def forward(self, x):
        z = self.encoder(x)
        norm_sq = torch.sum((z.unsqueeze(1) - self.cluster_centers) ** 2, 2)
        numerator = 1.0 / (1.0 + (norm_sq / self.alpha))
        power = float(self.alpha + 1) / 2
        numerator = numerator ** power
        return numerator / torch.sum(numerator, dim=1, keepdim=True)


def target_distribution(q):
    weight = (q ** 2) / torch.sum(q, 0)
    return (weight.t() / torch.sum(weight, 1)).t()


dec = DEC(D, 3, K)
Wd = reference_weights(dec)
with torch.no_grad():
    for name, p in dec.named_parameters():
        p.copy_(torch.from_numpy(Wd[name]))
    z = dec.encoder(X)
    zc, _, _, _ = lloyd(z, kmeans_plusplus(z, K, uniforms))
    dec.cluster_centers.copy_(zc)
optimizer = torch.optim.Adam(dec.parameters(), lr=0.01)
loss_fn = nn.KLDivLoss(reduction="batchmean")
dec_losses, dec_changes = [], []
prev = dec(X).argmax(1)
for epoch in range(4):
    with torch.no_grad():
        p_target = target_distribution(dec(X))
    for i in range(0, N, 40):
        q = dec(X[i:i + 40])
        loss = loss_fn(q.log(), p_target[i:i + 40])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        dec_losses.append(loss.item())
    cur = dec(X).argmax(1)
    dec_changes.append(int((cur != prev).sum()))
    prev = cur

report(
    init=init.tolist(),
    centers=centers.tolist(),
    inertia=inertia,
    shifts=shifts,
    counts=counts,
    silhouette=sil,
    nmi=score,
    bad_inertia=bad_inertia,
    bad_counts=torch.bincount(bad_assign, minlength=K).tolist(),
    mb_centers=mb_centers.tolist(),
    mb_inertia=mb_inertia,
    soft_centers=soft.tolist(),
    soft_entropy=soft_entropy,
    grad_losses=grad_losses,
    spectral_evals=spectral_evals,
    spectral_nmi=spectral_nmi,
    sc_inertia=sc_inertia,
    dec_losses=dec_losses,
    dec_changes=dec_changes,
    dec_centers=dec.cluster_centers.tolist(),
)
