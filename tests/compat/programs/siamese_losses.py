# A siamese / metric-learning script in the shape of the "Siamese network" and "triplet loss"
# tutorials (Koch et al.'s one-shot model, FaceNet), plus the less common criteria of
# torch.nn that such notebooks reach for: a shared embedding net, F.pairwise_distance and the
# contrastive loss of Hadsell et al., nn.TripletMarginLoss(p=2, swap=True) and
# nn.TripletMarginWithDistanceLoss with a cosine distance function, HingeEmbeddingLoss,
# CosineEmbeddingLoss, SoftMarginLoss, MultiMarginLoss(p=1/2, weight=), MultiLabelMarginLoss,
# MultiLabelSoftMarginLoss, PoissonNLLLoss (log_input both ways, full=True), GaussianNLLLoss,
# HuberLoss / SmoothL1Loss(beta=), L1Loss(reduction="none"); each at every reduction, with
# gradients. An Adam loop trains the embedding on the sum of the metric losses.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(123)
n, d_in, d_emb = 10, 8, 4


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class SiameseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(d_in, 16), nn.PReLU(), nn.Linear(16, d_emb))

    def forward_once(self, x):
        return self.embed(x)

    def forward(self, a, b):
        return self.forward_once(a), self.forward_once(b)


def contrastive_loss(o1, o2, label, margin=2.0):
    d = F.pairwise_distance(o1, o2, keepdim=True)
    return torch.mean(
        (1 - label) * torch.pow(d, 2) + label * torch.pow(torch.clamp(margin - d, min=0.0), 2)
    )


def cosine_distance(a, b):
    return 1.0 - F.cosine_similarity(a, b)


anchor_np = rng.standard_normal((n, d_in)).astype(np.float32)
pos_np = anchor_np + 0.3 * rng.standard_normal((n, d_in)).astype(np.float32)
neg_np = rng.standard_normal((n, d_in)).astype(np.float32)
same = torch.from_numpy(rng.integers(0, 2, size=(n, 1)).astype(np.float32))
A, P, Ng = (torch.from_numpy(a) for a in (anchor_np, pos_np, neg_np))

net = load(SiameseNet())
triplet = nn.TripletMarginLoss(margin=1.0, p=2, swap=True)
triplet_cos = nn.TripletMarginWithDistanceLoss(distance_function=cosine_distance, margin=0.5)
triplet_pd = nn.TripletMarginWithDistanceLoss(
    distance_function=nn.PairwiseDistance(p=1.5), swap=True, reduction="sum"
)
optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
train = {"contrastive": [], "triplet": [], "triplet_cos": [], "triplet_pd": []}
for step in range(8):
    ea, ep = net(A, P)
    en = net.forward_once(Ng)
    l1 = contrastive_loss(*net(A, Ng), same)
    l2 = triplet(ea, ep, en)
    l3 = triplet_cos(ea, ep, en)
    l4 = triplet_pd(ea, ep, en)
    loss = l1 + l2 + l3 + 0.1 * l4
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    for k, v in zip(train, (l1, l2, l3, l4)):
        train[k].append(v.item())

# one-shot evaluation: nearest support by pairwise distance
with torch.no_grad():
    support = net.forward_once(A)
    query = net.forward_once(P)
    dists = torch.stack(
        [F.pairwise_distance(query, support[i].expand_as(query)) for i in range(n)], dim=1
    )
    pd_eps = F.pairwise_distance(query, query, eps=1e-3).tolist()
    pd_p1 = F.pairwise_distance(query, support, p=1.0).tolist()
    pd_inf = F.pairwise_distance(query, support, p=float("inf")).tolist()
one_shot = (dists.argmin(dim=1) == torch.arange(n)).float().mean().item()

# the criteria zoo: every reduction, with the gradient of the input
x_np = rng.standard_normal((6, 5)).astype(np.float32)
x2_np = rng.standard_normal((6, 5)).astype(np.float32)
sign_np = np.where(rng.random(6) > 0.5, 1.0, -1.0).astype(np.float32)
cls_np = rng.integers(0, 5, size=6)
multi_np = np.full((6, 5), -1, dtype=np.int64)
for i in range(6):
    k = rng.integers(1, 4)
    multi_np[i, :k] = rng.choice(5, size=k, replace=False)
multihot_np = (rng.random((6, 5)) > 0.5).astype(np.float32)
counts_np = rng.poisson(2.0, size=(6, 5)).astype(np.float32)
var_np = (0.5 + rng.random((6, 5))).astype(np.float32)

zoo = {}
for reduction in ("mean", "sum", "none"):
    cases = {
        "hinge": lambda x, r=reduction: nn.HingeEmbeddingLoss(margin=0.8, reduction=r)(
            x, torch.from_numpy(np.sign(x2_np).astype(np.float32))
        ),
        "cosine_emb": lambda x, r=reduction: nn.CosineEmbeddingLoss(margin=0.2, reduction=r)(
            x, torch.from_numpy(x2_np), torch.from_numpy(sign_np)
        ),
        "soft_margin": lambda x, r=reduction: nn.SoftMarginLoss(reduction=r)(
            x, torch.from_numpy(np.sign(x2_np).astype(np.float32))
        ),
        "multi_margin": lambda x, r=reduction: nn.MultiMarginLoss(reduction=r)(
            x, torch.from_numpy(cls_np)
        ),
        "multi_margin_p2w": lambda x, r=reduction: nn.MultiMarginLoss(
            p=2, margin=0.7, weight=torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0]), reduction=r
        )(x, torch.from_numpy(cls_np)),
        "multilabel_margin": lambda x, r=reduction: nn.MultiLabelMarginLoss(reduction=r)(
            x, torch.from_numpy(multi_np)
        ),
        "multilabel_soft": lambda x, r=reduction: nn.MultiLabelSoftMarginLoss(
            weight=torch.tensor([1.0, 0.5, 2.0, 1.0, 1.0]), reduction=r
        )(x, torch.from_numpy(multihot_np)),
        "poisson_log": lambda x, r=reduction: nn.PoissonNLLLoss(reduction=r)(
            x, torch.from_numpy(counts_np)
        ),
        "poisson_full": lambda x, r=reduction: nn.PoissonNLLLoss(
            log_input=False, full=True, reduction=r
        )(x.abs() + 0.1, torch.from_numpy(counts_np)),
        "gaussian_nll": lambda x, r=reduction: nn.GaussianNLLLoss(full=True, reduction=r)(
            x, torch.from_numpy(x2_np), torch.from_numpy(var_np)
        ),
        "gaussian_nll_vec": lambda x, r=reduction: F.gaussian_nll_loss(
            x, torch.from_numpy(x2_np), torch.from_numpy(var_np[:, :1]), reduction=r
        ),
        "huber": lambda x, r=reduction: nn.HuberLoss(delta=0.5, reduction=r)(
            x, torch.from_numpy(x2_np)
        ),
        "smooth_l1": lambda x, r=reduction: nn.SmoothL1Loss(beta=0.3, reduction=r)(
            x, torch.from_numpy(x2_np)
        ),
        "l1": lambda x, r=reduction: nn.L1Loss(reduction=r)(x, torch.from_numpy(x2_np)),
        "kl_log_target": lambda x, r=reduction: nn.KLDivLoss(reduction=r, log_target=True)(
            F.log_softmax(x, 1), F.log_softmax(torch.from_numpy(x2_np), 1)
        ),
    }
    for name, fn in cases.items():
        x = torch.from_numpy(x_np.copy()).requires_grad_()
        out = fn(x)
        out.sum().backward()
        zoo[f"{name}_{reduction}"] = out.flatten().tolist()
        zoo[f"{name}_{reduction}_grad"] = x.grad.flatten().tolist()

report(
    train=train,
    one_shot=one_shot,
    dists=dists.flatten().tolist(),
    pd_eps=pd_eps,
    pd_p1=pd_p1,
    pd_inf=pd_inf,
    **zoo,
)
