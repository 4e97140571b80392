# Learning with noisy labels and long-tailed classes, the losses as their papers' code writes
# them: Co-teaching (two nets, each keeps its small-loss fraction by argsort of the per-sample
# cross-entropy, forget rate ramped up, cross-update), Generalized Cross Entropy ((1 - p_y^q) / q
# via gather), Symmetric CE (reverse CE on clamped one-hot labels), LDAM (margins
# C / n_j^(1/4) subtracted by a scatter of the true class, scale s = 30) with Deferred
# Re-Weighting (class-balanced weights (1 - beta) / (1 - beta^n) from an epoch on), logit
# adjustment (+ tau log prior), a class-balanced focal loss; a long-tailed imbalanced dataset with
# 20% symmetric label noise from NumPy, SGD with momentum and MultiStepLR, per-class accuracy.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(59)
NC, D = 4, 6
counts = np.array([60, 30, 14, 6])
centers = rng.normal(0, 2.0, (NC, D))
xs = np.concatenate([centers[c] + rng.standard_normal((n, D)) for c, n in enumerate(counts)])
ys = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
noisy = ys.copy()
flip = rng.uniform(size=len(ys)) < 0.2
noisy[flip] = rng.integers(0, NC, flip.sum())
X = torch.from_numpy(xs.astype(np.float32))
Y = torch.from_numpy(noisy)
Yclean = torch.from_numpy(ys)
cls_num = torch.bincount(Y, minlength=NC)


def make_net():
    net = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, NC))
    W = reference_weights(net)
    with torch.no_grad():
        for n, p in net.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return net


class GCELoss(nn.Module):
    def __init__(self, q=0.7):
        super().__init__()
        self.q = q

    def forward(self, logits, y):
        p = F.softmax(logits, 1).gather(1, y[:, None]).squeeze(1).clamp(min=1e-7)
        return ((1 - p**self.q) / self.q).mean()


class SCELoss(nn.Module):
    def __init__(self, alpha=0.1, beta=1.0):
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def forward(self, logits, y):
        ce = F.cross_entropy(logits, y)
        pred = F.softmax(logits, 1).clamp(min=1e-7, max=1.0)
        oh = F.one_hot(y, NC).float().clamp(min=1e-4, max=1.0)
        rce = -(pred * torch.log(oh)).sum(1)
        return self.alpha * ce + self.beta * rce.mean()


class LDAMLoss(nn.Module):
    def __init__(self, cls_num_list, max_m=0.5, weight=None, s=30):
        super().__init__()
        m_list = 1.0 / torch.sqrt(torch.sqrt(cls_num_list.float()))
        m_list = m_list * (max_m / m_list.max())
        self.register_buffer("m_list", m_list)
        self.s, self.weight = s, weight

    def forward(self, x, target):
        index = torch.zeros_like(x, dtype=torch.uint8)
        index.scatter_(1, target.data.view(-1, 1), 1)
        index_float = index.float()
        batch_m = torch.matmul(self.m_list[None, :], index_float.transpose(0, 1)).view((-1, 1))
        x_m = x - batch_m
        output = torch.where(index.bool(), x_m, x)
        return F.cross_entropy(self.s * output, target, weight=self.weight)


def cb_weights(beta):
    eff = 1.0 - torch.pow(beta, cls_num.float())
    w = (1.0 - beta) / eff
    return w / w.sum() * NC


def focal_cb(logits, y, gamma=2.0, beta=0.99):
    w = cb_weights(beta)
    logp = F.log_softmax(logits, 1).gather(1, y[:, None]).squeeze(1)
    return (-w[y] * (1 - logp.exp()) ** gamma * logp).mean()


prior = cls_num.float() / cls_num.sum()


def per_class_acc(net):
    with torch.no_grad():
        pred = net(X).argmax(1)
    return [
        ((pred == Yclean) & (Yclean == c)).sum().item() / (Yclean == c).sum().item()
        for c in range(NC)
    ]


out = {}
for name in ("gce", "sce", "ldam_drw", "logit_adj", "focal_cb"):
    net = make_net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[10, 15], gamma=0.1)
    losses = []
    for epoch in range(18):
        logits = net(X)
        if name == "gce":
            loss = GCELoss()(logits, Y)
        elif name == "sce":
            loss = SCELoss()(logits, Y)
        elif name == "ldam_drw":
            w = cb_weights(0.9999) if epoch >= 10 else None
            loss = LDAMLoss(cls_num, weight=w)(logits, Y)
        elif name == "logit_adj":
            loss = F.cross_entropy(logits + 1.0 * torch.log(prior + 1e-12), Y)
        else:
            loss = focal_cb(logits, Y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    out[name] = dict(losses=losses, acc=per_class_acc(net))

# co-teaching
net1, net2 = make_net(), make_net()
with torch.no_grad():
    for p in net2.parameters():
        p.mul_(-0.8)
o1 = torch.optim.Adam(net1.parameters(), lr=1e-2)
o2 = torch.optim.Adam(net2.parameters(), lr=1e-2)
forget = np.ones(15) * 0.2
forget[:5] = np.linspace(0, 0.2, 5)
kept_clean = []
for epoch in range(15):
    l1 = F.cross_entropy(net1(X), Y, reduction="none")
    l2 = F.cross_entropy(net2(X), Y, reduction="none")
    ind1 = torch.argsort(l1.data)
    ind2 = torch.argsort(l2.data)
    n_keep = int((1 - forget[epoch]) * len(Y))
    upd1, upd2 = ind2[:n_keep], ind1[:n_keep]  # each learns from the other's small-loss picks
    kept_clean.append((Y[upd1] == Yclean[upd1]).float().mean().item())
    loss1 = F.cross_entropy(net1(X[upd1]), Y[upd1])
    loss2 = F.cross_entropy(net2(X[upd2]), Y[upd2])
    o1.zero_grad()
    loss1.backward()
    o1.step()
    o2.zero_grad()
    loss2.backward()
    o2.step()
out["coteach"] = dict(kept_clean=kept_clean, acc1=per_class_acc(net1), acc2=per_class_acc(net2))
out["cb_w"] = cb_weights(0.9999).tolist()
report(**out)
