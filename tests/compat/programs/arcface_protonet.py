# Face-recognition margins and few-shot episodes the way insightface-style and protonet code
# writes them: ArcMarginProduct (F.linear of normalised features and weights, sine from
# (1 - cos^2).clamp(0, 1).sqrt(), cos(theta + m), the th / mm fallback and easy_margin by
# torch.where, one_hot by scatter_(1, label.view(-1, 1).long(), 1), scale s), AddMarginProduct
# (CosFace), SphereFace's cos(m theta) by a Chebyshev lambda list with k = floor(m theta / pi)
# and an annealed lambda; the center loss with its own SGD on the centres whose gradients are
# rescaled by 1 / alpha before the step; Prototypical Networks (episodes sampled with NumPy,
# prototypes by view(n_way, n_shot, -1).mean(1), squared euclidean distances by expand,
# log_softmax over -dist, gather), Matching Networks' cosine attention over the support set and
# Relation-style mean embeddings. Our own program.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(17)
N_ID, D_IN, EMB = 6, 10, 8


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


class ArcMarginProduct(nn.Module):
    def __init__(self, in_features, out_features, s=8.0, m=0.5, easy_margin=False):
        super(ArcMarginProduct, self).__init__()
        self.s, self.m = s, m
        self.weight = nn.Parameter(torch.FloatTensor(out_features, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.easy_margin = easy_margin
        self.cos_m = math.cos(m)
        self.sin_m = math.sin(m)
        self.th = math.cos(math.pi - m)
        self.mm = math.sin(math.pi - m) * m

    def forward(self, input, label):
        cosine = F.linear(F.normalize(input), F.normalize(self.weight))
        sine = torch.sqrt((1.0 - torch.pow(cosine, 2)).clamp(0, 1))
        phi = cosine * self.cos_m - sine * self.sin_m
        if self.easy_margin:
            phi = torch.where(cosine > 0, phi, cosine)
        else:
            phi = torch.where(cosine > self.th, phi, cosine - self.mm)
        one_hot = torch.zeros(cosine.size())
        one_hot.scatter_(1, label.view(-1, 1).long(), 1)
        output = (one_hot * phi) + ((1.0 - one_hot) * cosine)
        return output * self.s


class AddMarginProduct(nn.Module):
    def __init__(self, in_features, out_features, s=8.0, m=0.35):
        super(AddMarginProduct, self).__init__()
        self.s, self.m = s, m
        self.weight = nn.Parameter(torch.FloatTensor(out_features, in_features))

    def forward(self, input, label):
        cosine = F.linear(F.normalize(input), F.normalize(self.weight))
        phi = cosine - self.m
        one_hot = torch.zeros(cosine.size(), device="cpu")
        one_hot.scatter_(1, label.view(-1, 1).long(), 1)
        return self.s * ((one_hot * phi) + ((1.0 - one_hot) * cosine))


class SphereProduct(nn.Module):
    def __init__(self, in_features, out_features, m=4):
        super(SphereProduct, self).__init__()
        self.m = m
        self.base, self.gamma, self.power, self.LambdaMin, self.iter = 1000.0, 0.12, 1, 5.0, 0
        self.weight = nn.Parameter(torch.FloatTensor(out_features, in_features))
        self.mlambda = [
            lambda x: x**0,
            lambda x: x**1,
            lambda x: 2 * x**2 - 1,
            lambda x: 4 * x**3 - 3 * x,
            lambda x: 8 * x**4 - 8 * x**2 + 1,
        ]

    def forward(self, input, label):
        self.iter += 1
        self.lamb = max(
            self.LambdaMin, self.base * (1 + self.gamma * self.iter) ** (-1 * self.power)
        )
        cos_theta = F.linear(F.normalize(input), F.normalize(self.weight))
        cos_theta = cos_theta.clamp(-1, 1)
        cos_m_theta = self.mlambda[self.m](cos_theta)
        theta = cos_theta.data.acos()
        k = (self.m * theta / 3.14159265).floor()
        phi_theta = ((-1.0) ** k) * cos_m_theta - 2 * k
        NormOfFeature = torch.norm(input, 2, 1)
        one_hot = torch.zeros(cos_theta.size())
        one_hot.scatter_(1, label.view(-1, 1), 1)
        output = (one_hot * (phi_theta - cos_theta) / (1 + self.lamb)) + cos_theta
        return output * NormOfFeature.view(-1, 1)


class CenterLoss(nn.Module):
    def __init__(self, num_classes, feat_dim):
        super(CenterLoss, self).__init__()
        self.num_classes, self.feat_dim = num_classes, feat_dim
        self.centers = nn.Parameter(torch.zeros(num_classes, feat_dim))

    def forward(self, x, labels):
        batch_size = x.size(0)
        distmat = (
            torch.pow(x, 2).sum(dim=1, keepdim=True).expand(batch_size, self.num_classes)
            + torch.pow(self.centers, 2)
            .sum(dim=1, keepdim=True)
            .expand(self.num_classes, batch_size)
            .t()
        )
        distmat.addmm_(x, self.centers.t(), beta=1, alpha=-2)
        classes = torch.arange(self.num_classes).long()
        labels = labels.unsqueeze(1).expand(batch_size, self.num_classes)
        mask = labels.eq(classes.expand(batch_size, self.num_classes))
        dist = distmat * mask.float()
        return dist.clamp(min=1e-12, max=1e12).sum() / batch_size


ids = rng.normal(size=(N_ID, D_IN)).astype(np.float32) * 1.5


def faces(n):
    y = rng.integers(0, N_ID, size=n)
    return torch.from_numpy(
        ids[y] + rng.normal(scale=0.6, size=(n, D_IN)).astype(np.float32)
    ), torch.from_numpy(y)


results = {}
for head_name, head_cls in (
    ("arc", ArcMarginProduct),
    ("arc_easy", ArcMarginProduct),
    ("cos", AddMarginProduct),
    ("sphere", SphereProduct),
):
    backbone = load(
        nn.Sequential(nn.Linear(D_IN, 32), nn.PReLU(), nn.Linear(32, EMB), nn.BatchNorm1d(EMB))
    )
    head = head_cls(EMB, N_ID, easy_margin=True) if head_name == "arc_easy" else head_cls(EMB, N_ID)
    load(head)
    center_loss = CenterLoss(N_ID, EMB)
    optimizer = torch.optim.SGD(
        [{"params": backbone.parameters()}, {"params": head.parameters()}],
        lr=0.05,
        momentum=0.9,
        weight_decay=5e-4,
    )
    optimizer_centloss = torch.optim.SGD(center_loss.parameters(), lr=0.5)
    weight_cent, log = 0.01, []
    for step in range(10):
        x, y = faces(24)
        feats = backbone(x)
        logits = head(feats, y)
        loss = F.cross_entropy(logits, y) + weight_cent * center_loss(feats, y)
        optimizer.zero_grad()
        optimizer_centloss.zero_grad()
        loss.backward()
        optimizer.step()
        for param in center_loss.parameters():
            param.grad.data *= 1.0 / weight_cent
        optimizer_centloss.step()
        log.append(loss.item())
    backbone.eval()
    with torch.no_grad():
        gx, gy = faces(30)
        e = F.normalize(backbone(gx))
        sim = e @ e.t()
        same = gy.unsqueeze(0) == gy.unsqueeze(1)
        off = ~torch.eye(30, dtype=torch.bool)
        results[f"{head_name}_verif"] = [sim[same & off].mean().item(), sim[~same].mean().item()]
    results[f"{head_name}_losses"] = log
    results[f"{head_name}_centers"] = center_loss.centers.norm(dim=1).tolist()


# ---- Prototypical and Matching networks on episodes
def euclidean_dist(x, y):
    n, m, d = x.size(0), y.size(0), x.size(1)
    x = x.unsqueeze(1).expand(n, m, d)
    y = y.unsqueeze(0).expand(n, m, d)
    return torch.pow(x - y, 2).sum(2)


n_way, n_shot, n_query = 3, 2, 3
classes_bank = rng.normal(size=(12, D_IN)).astype(np.float32) * 1.5
encoder = load(nn.Sequential(nn.Linear(D_IN, 24), nn.ReLU(), nn.Linear(24, EMB)))
opt = torch.optim.Adam(encoder.parameters(), lr=2e-3)
proto_log, match_log = [], []
for episode in range(12):
    cls = rng.choice(12, n_way, replace=False)
    xs = np.stack(
        [classes_bank[c] + rng.normal(scale=0.7, size=(n_shot + n_query, D_IN)) for c in cls]
    ).astype(np.float32)
    xs = torch.from_numpy(xs)  # (n_way, n_shot + n_query, D)
    support = xs[:, :n_shot].contiguous().view(n_way * n_shot, D_IN)
    query = xs[:, n_shot:].contiguous().view(n_way * n_query, D_IN)
    target_inds = torch.arange(0, n_way).view(n_way, 1, 1).expand(n_way, n_query, 1).long()
    z = encoder(torch.cat([support, query], 0))
    z_proto = z[: n_way * n_shot].view(n_way, n_shot, -1).mean(1)
    zq = z[n_way * n_shot :]
    dists = euclidean_dist(zq, z_proto)
    log_p_y = F.log_softmax(-dists, dim=1).view(n_way, n_query, -1)
    loss_val = -log_p_y.gather(2, target_inds).squeeze().view(-1).mean()
    _, y_hat = log_p_y.max(2)
    acc_val = torch.eq(y_hat, target_inds.squeeze()).float().mean()
    # matching networks: cosine attention over the support embeddings
    zs = F.normalize(z[: n_way * n_shot], dim=1)
    att = F.softmax(F.normalize(zq, dim=1) @ zs.t() * 5.0, dim=1)
    support_y = F.one_hot(torch.arange(n_way).repeat_interleave(n_shot), n_way).float()
    probs = att @ support_y
    match_loss = F.nll_loss(torch.log(probs + 1e-8), target_inds.reshape(-1))
    opt.zero_grad()
    (loss_val + 0.5 * match_loss).backward()
    opt.step()
    proto_log.append([loss_val.item(), acc_val.item()])
    match_log.append(match_loss.item())
results["proto"] = proto_log
results["matching"] = match_log
report(**results)
