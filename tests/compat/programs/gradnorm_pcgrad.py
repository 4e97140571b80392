# Multi-task gradient balancing as the papers' reference code writes it (our own small
# program): a shared trunk with three heads; GradNorm (Chen et al. 2018) with task weights as a
# Parameter, the gradient norms of each weighted loss w.r.t. the last shared layer by
# autograd.grad(create_graph=True), an L1 loss on the norms' targets, renormalisation of the
# weights in place; PCGrad (Yu et al. 2020) over flattened per-task gradients with a seeded
# task order, projections when the dot product is negative, written back into .grad; Kendall's
# uncertainty weighting with log-variances; the two-task MGDA min-norm closed form.
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(3)
X = torch.from_numpy(rng.standard_normal((48, 8)).astype(np.float32))
Wt = rng.standard_normal((8, 3)).astype(np.float32)
Yr = X.numpy() @ Wt
y_reg = torch.from_numpy(Yr[:, 0:1] + 0.1 * rng.standard_normal((48, 1)).astype(np.float32))
y_cls = torch.from_numpy((Yr[:, 1] > 0).astype(np.int64))
y_big = torch.from_numpy(5.0 * Yr[:, 2:3]).float()


class MTL(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(16, 1), nn.Linear(16, 2), nn.Linear(16, 1)])

    def forward(self, x):
        h = self.trunk(x)
        return [head(h) for head in self.heads]


def task_losses(outs):
    return torch.stack(
        [F.mse_loss(outs[0], y_reg), F.cross_entropy(outs[1], y_cls), F.mse_loss(outs[2], y_big)]
    )


def fresh():
    m = MTL()
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


# GradNorm
model = fresh()
weights = nn.Parameter(torch.ones(3))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
opt_w = torch.optim.Adam([weights], lr=2.5e-2)
alpha = 1.5
shared = model.trunk[2].weight
L0 = None
gn_losses, gn_weights = [], []
for step in range(12):
    losses = task_losses(model(X))
    if L0 is None:
        L0 = losses.detach()
    weighted = weights * losses
    total = weighted.sum()
    opt.zero_grad()
    opt_w.zero_grad()
    total.backward(retain_graph=True)
    weights.grad = None
    norms = torch.stack(
        [
            torch.autograd.grad(weighted[i], shared, retain_graph=True, create_graph=True)[0].norm()
            for i in range(3)
        ]
    )
    ratio = losses.detach() / L0
    inv_rate = ratio / ratio.mean()
    target = (norms.mean() * inv_rate**alpha).detach()
    gn_loss = (norms - target).abs().sum()
    weights.grad = torch.autograd.grad(gn_loss, weights)[0]
    opt.step()
    opt_w.step()
    with torch.no_grad():
        weights.data = weights.data * (3 / weights.data.sum())
    gn_losses.append(losses.tolist())
    gn_weights.append(weights.tolist())

# PCGrad
model = fresh()
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
random.seed(0)
params = [p for p in model.parameters()]
pc_losses, conflicts = [], 0
for step in range(10):
    losses = task_losses(model(X))
    grads = []
    for i in range(3):
        gs = torch.autograd.grad(losses[i], params, retain_graph=i < 2, allow_unused=True)
        grads.append(
            torch.cat(
                [
                    (g if g is not None else torch.zeros_like(p)).flatten()
                    for g, p in zip(gs, params)
                ]
            )
        )
    pc = [g.clone() for g in grads]
    for i in range(3):
        order = list(range(3))
        random.shuffle(order)
        for j in order:
            if j == i:
                continue
            dot = torch.dot(pc[i], grads[j])
            if dot < 0:
                conflicts += 1
                pc[i] -= dot * grads[j] / grads[j].norm() ** 2
    merged = torch.stack(pc).sum(0)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = merged[offset : offset + n].view_as(p).clone()
        offset += n
    opt.step()
    pc_losses.append(losses.tolist())

# uncertainty weighting (Kendall et al. 2018)
model = fresh()
log_vars = nn.Parameter(torch.zeros(3))
opt = torch.optim.Adam(
    [{"params": model.parameters()}, {"params": [log_vars], "lr": 0.05}], lr=1e-2
)
uw_losses = []
for step in range(10):
    losses = task_losses(model(X))
    total = (torch.exp(-log_vars) * losses + log_vars).sum()
    opt.zero_grad()
    total.backward()
    opt.step()
    uw_losses.append(total.item())

# MGDA for two tasks: min-norm point on the segment between the gradients
model = fresh()
params = list(model.trunk.parameters())
losses = task_losses(model(X))
g1 = torch.cat([g.flatten() for g in torch.autograd.grad(losses[0], params, retain_graph=True)])
g2 = torch.cat([g.flatten() for g in torch.autograd.grad(losses[2], params)])
a = ((g2 - g1) @ g2 / (g1 - g2).pow(2).sum()).clamp(0, 1)
d = a * g1 + (1 - a) * g2

report(
    gn_losses=gn_losses,
    gn_weights=gn_weights,
    pc_losses=pc_losses,
    conflicts=conflicts,
    uw_losses=uw_losses,
    log_vars=log_vars.tolist(),
    mgda_alpha=a.item(),
    mgda_norm=d.norm().item(),
)
