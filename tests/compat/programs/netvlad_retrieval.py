# Place recognition with NetVLAD (Arandjelovic et al. 2016) as Nanne/pytorch-NetVlad writes it:
# a small conv backbone, NetVLAD's soft assignment by a 1x1 conv initialised from k-means
# centroids (k-means in float64; alpha * 2c as weight, -alpha |c|^2 as bias, the descriptors
# normalised first), residuals to every centroid by broadcasting expand / permute,
# intra-normalisation then a global L2, PCA-whitening of the final vectors by an SVD; triplet
# training with the hardest of several negatives by torch.cdist,
# nn.TripletMarginLoss(margin=0.1 ** 0.5, p=2, reduction="sum") and
# TripletMarginWithDistanceLoss with a cosine distance; Adam with a PolynomialLR; recall@1/5 by
# topk over a database; GeM pooling (clamp(min=eps).pow(p) with a learned p) for comparison.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(71)
NPLACE, IMG = 10, 12
protos = rng.uniform(0, 1, (NPLACE, 3, IMG, IMG))


def view(place, jitter=0.15):
    img = protos[place] + jitter * rng.standard_normal((3, IMG, IMG))
    dx = int(rng.integers(-1, 2))
    return np.roll(img, dx, axis=2)


db = torch.from_numpy(np.stack([view(p) for p in range(NPLACE)]).astype(np.float32))
queries = torch.from_numpy(np.stack([view(p) for p in range(NPLACE)]).astype(np.float32))


class NetVLAD(nn.Module):
    def __init__(self, num_clusters=4, dim=8, alpha=10.0, normalize_input=True):
        super().__init__()
        self.num_clusters, self.dim, self.alpha = num_clusters, dim, alpha
        self.normalize_input = normalize_input
        self.conv = nn.Conv2d(dim, num_clusters, kernel_size=(1, 1), bias=True)
        self.centroids = nn.Parameter(torch.rand(num_clusters, dim))

    def init_params(self, clsts):
        self.centroids.data.copy_(clsts)
        self.conv.weight.data.copy_((2.0 * self.alpha * clsts).unsqueeze(-1).unsqueeze(-1))
        self.conv.bias.data.copy_(-self.alpha * clsts.norm(dim=1) ** 2)

    def forward(self, x):
        N, C = x.shape[:2]
        if self.normalize_input:
            x = F.normalize(x, p=2, dim=1)
        soft_assign = self.conv(x).view(N, self.num_clusters, -1)
        soft_assign = F.softmax(soft_assign, dim=1)
        x_flatten = x.view(N, C, -1)
        residual = x_flatten.expand(self.num_clusters, -1, -1, -1).permute(
            1, 0, 2, 3
        ) - self.centroids.expand(x_flatten.size(-1), -1, -1).permute(1, 2, 0).unsqueeze(0)
        residual = residual * soft_assign.unsqueeze(2)
        vlad = residual.sum(dim=-1)
        vlad = F.normalize(vlad, p=2, dim=2)  # intra-normalization
        vlad = vlad.view(x.size(0), -1)
        return F.normalize(vlad, p=2, dim=1)


class GeM(nn.Module):
    def __init__(self, p=3.0, eps=1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x):
        pooled = F.avg_pool2d(x.clamp(min=self.eps).pow(self.p), (x.size(-2), x.size(-1)))
        return F.normalize(pooled.pow(1.0 / self.p).flatten(1), dim=1)


backbone = nn.Sequential(
    nn.Conv2d(3, 8, 3, padding=1),
    nn.ReLU(),
    nn.MaxPool2d(2),
    nn.Conv2d(8, 8, 3, padding=1),
    nn.ReLU(),
)
vlad = NetVLAD()
model = nn.Sequential(backbone, vlad)
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))

# k-means initialisation of the centroids on normalised local descriptors, in float64 (as
# sklearn's): descriptors lie near their centroids, so the residuals x - c cancel and
# intra-normalisation scales their rounding up; float32 centroids 1e-7 apart between the
# libraries made the first loss 1.4e-6 apart and the eighth 2e-5 (float64 runs agree to 1e-14)
with torch.no_grad():
    desc = F.normalize(backbone(db), dim=1).permute(0, 2, 3, 1).reshape(-1, 8).double()
    cent = desc[torch.from_numpy(rng.choice(len(desc), 4, replace=False))].clone()
    for _ in range(10):
        assign = torch.cdist(desc, cent).argmin(1)
        for k in range(4):
            members = desc[assign == k]
            if len(members):
                cent[k] = members.mean(0)
vlad.init_params(cent.float())


def recall_at(qv, dv, ks=(1, 5)):
    d = torch.cdist(qv, dv)
    top = d.topk(max(ks), dim=1, largest=False).indices
    gt = torch.arange(len(qv)).unsqueeze(1)
    return [(top[:, :k] == gt).any(1).float().mean().item() for k in ks]


with torch.no_grad():
    recall_before = recall_at(model(queries), model(db))

crit = nn.TripletMarginLoss(margin=0.1**0.5, p=2, reduction="sum")
cos_crit = nn.TripletMarginWithDistanceLoss(
    distance_function=lambda a, b: 1.0 - F.cosine_similarity(a, b), margin=0.2
)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=8, power=2.0)
losses, lrs = [], []
for step in range(8):
    anchors = torch.from_numpy(np.stack([view(p) for p in range(NPLACE)]).astype(np.float32))
    a = model(anchors)
    pos = model(db)
    with torch.no_grad():
        d = torch.cdist(a, pos)
        d.fill_diagonal_(float("inf"))
        hard = d.argmin(1)
    neg = pos[hard]
    loss = crit(a, pos, neg) / NPLACE + cos_crit(a, pos, neg)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(sched.get_last_lr()[0])

model.eval()
with torch.no_grad():
    qv, dv = model(queries), model(db)
    recall_after = recall_at(qv, dv)
    # PCA whitening learned on the database
    mu = dv.mean(0, keepdim=True)
    U, Sv, Vh = torch.linalg.svd(dv - mu, full_matrices=False)
    k = 6
    Wpca = Vh[:k].T / (Sv[:k] + 1e-6)
    qw = F.normalize((qv - mu) @ Wpca, dim=1)
    dw = F.normalize((dv - mu) @ Wpca, dim=1)
    recall_white = recall_at(qw, dw)

gem = GeM()
feat = backbone(db)
g = gem(feat)
g.sum().backward()

report(
    vlad_dim=int(qv.shape[1]),
    norms=qv.norm(dim=1).tolist(),
    recall_before=recall_before,
    recall_after=recall_after,
    recall_white=recall_white,
    losses=losses,
    lrs=lrs,
    sv=Sv[:k].tolist(),
    gem_p_grad=gem.p.grad.item(),
    gem=g[0].tolist(),
)
