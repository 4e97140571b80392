# Non-contrastive self-supervised learning as the official repositories write it:
# facebookresearch/barlowtwins (off_diagonal by flatten()[:-1].view(n - 1, n + 1)[:, 1:],
# BatchNorm1d(affine=False) on the embeddings, the cross-correlation c.div_(batch_size),
# torch.diagonal(c).add_(-1).pow_(2) written into c's diagonal in place before the off-diagonal
# term reads c, the backbone's fc swapped for nn.Identity, a projector built from a "-"-joined
# size string, its LARS optimizer with exclude_bias_and_norm filters and torch.where trust
# ratios, weight / bias param groups and the cosine adjust_learning_rate writing
# param_groups[i]["lr"]); facebookresearch/vicreg's variance / invariance / covariance loss
# (x.var(dim=0), F.relu(1 - std), the covariance's off-diagonal); SimSiam's negative cosine
# with stop-gradient and its predictor; BYOL's EMA target network updated through .data.
import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn, optim

torch.manual_seed(0)
rng = np.random.default_rng(17)


def off_diagonal(x):
    # return a flattened view of the off-diagonal elements of a square matrix
    n, m = x.shape
    assert n == m
    return x.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


class TinyResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(x + self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class BarlowTwins(nn.Module):
    def __init__(self, projector="16-16", lambd=0.0051, batch_size=8):
        super().__init__()
        self.lambd = lambd
        self.batch_size = batch_size
        self.backbone = TinyResNet()
        self.backbone.fc = nn.Identity()
        sizes = [8] + list(map(int, projector.split("-")))
        layers = []
        for i in range(len(sizes) - 2):
            layers.append(nn.Linear(sizes[i], sizes[i + 1], bias=False))
            layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Linear(sizes[-2], sizes[-1], bias=False))
        self.projector = nn.Sequential(*layers)
        self.bn = nn.BatchNorm1d(sizes[-1], affine=False)

    def forward(self, y1, y2):
        z1 = self.projector(self.backbone(y1))
        z2 = self.projector(self.backbone(y2))
        c = self.bn(z1).T @ self.bn(z2)
        c.div_(self.batch_size)
        on_diag = torch.diagonal(c).add_(-1).pow_(2).sum()
        off_diag = off_diagonal(c).pow_(2).sum()
        loss = on_diag + self.lambd * off_diag
        return loss


class LARS(optim.Optimizer):
    def __init__(self, params, lr, weight_decay=0, momentum=0.9, eta=0.001,
                 weight_decay_filter=None, lars_adaptation_filter=None):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        eta=eta, weight_decay_filter=weight_decay_filter,
                        lars_adaptation_filter=lars_adaptation_filter)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                dp = p.grad
                if dp is None:
                    continue
                if g["weight_decay_filter"] is None or not g["weight_decay_filter"](p):
                    dp = dp.add(p, alpha=g["weight_decay"])
                if g["lars_adaptation_filter"] is None or not g["lars_adaptation_filter"](p):
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(param_norm > 0.,
                                    torch.where(update_norm > 0,
                                                (g["eta"] * param_norm / update_norm), one), one)
                    dp = dp.mul(q)
                param_state = self.state[p]
                if "mu" not in param_state:
                    param_state["mu"] = torch.zeros_like(p)
                mu = param_state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])


def exclude_bias_and_norm(p):
    return p.ndim == 1


def adjust_learning_rate(optimizer, step, epochs=3, steps_per_epoch=4, batch_size=8,
                         learning_rate_weights=0.2, learning_rate_biases=0.0048):
    max_steps = epochs * steps_per_epoch
    warmup_steps = 2
    base_lr = batch_size / 256
    if step < warmup_steps:
        lr = base_lr * step / warmup_steps
    else:
        step -= warmup_steps
        max_steps -= warmup_steps
        q = 0.5 * (1 + math.cos(math.pi * step / max_steps))
        end_lr = base_lr * 0.001
        lr = base_lr * q + end_lr * (1 - q)
    optimizer.param_groups[0]["lr"] = lr * learning_rate_weights
    optimizer.param_groups[1]["lr"] = lr * learning_rate_biases


def vicreg_loss(x, y, batch_size, num_features, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    cov_loss = off_diagonal(cov_x).pow_(2).sum().div(num_features) + off_diagonal(
        cov_y).pow_(2).sum().div(num_features)
    loss = sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss
    return loss, [repr_loss.item(), std_loss.item(), cov_loss.item()]


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


images = rng.uniform(0, 1, size=(4, 8, 3, 8, 8)).astype(np.float32)


def views(step):
    x = images[step % 4]
    y1 = x + 0.1 * rng.standard_normal(x.shape).astype(np.float32)
    y2 = x[..., ::-1] * rng.uniform(0.8, 1.2, size=(8, 1, 1, 1)).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(y1)), torch.from_numpy(np.ascontiguousarray(y2))


c_check = torch.arange(16.).view(4, 4)
out = {"off_diagonal": off_diagonal(c_check).tolist()}

# -------------------------------------------------------------------- Barlow Twins + LARS
model = load(BarlowTwins())
param_weights, param_biases = [], []
for param in model.parameters():
    if param.ndim == 1:
        param_biases.append(param)
    else:
        param_weights.append(param)
parameters = [{"params": param_weights}, {"params": param_biases}]
optimizer = LARS(parameters, lr=0, weight_decay=1e-6,
                 weight_decay_filter=exclude_bias_and_norm,
                 lars_adaptation_filter=exclude_bias_and_norm)
bt = []
for step in range(8):
    y1, y2 = views(step)
    adjust_learning_rate(optimizer, step)
    optimizer.zero_grad()
    loss = model.forward(y1, y2)
    loss.backward()
    optimizer.step()
    bt.append([loss.item(), optimizer.param_groups[0]["lr"]])
out["barlow"] = bt
out["barlow_mu"] = [optimizer.state[p]["mu"].norm().item() for p in param_weights]
out["running_var"] = model.bn.running_var.tolist()

# ----------------------------------------------------------------------------- VICReg
backbone = load(TinyResNet())
backbone.fc = nn.Identity()
projector = load(nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(True),
                               nn.Linear(16, 16)))
opt = optim.SGD(list(backbone.parameters()) + list(projector.parameters()), lr=0.01,
                momentum=0.9, weight_decay=1e-5)
vic = []
for step in range(6):
    y1, y2 = views(step)
    loss, parts = vicreg_loss(projector(backbone(y1)), projector(backbone(y2)), 8, 16)
    opt.zero_grad()
    loss.backward()
    opt.step()
    vic.append([loss.item()] + parts)
out["vicreg"] = vic

# ------------------------------------------------------------------- SimSiam and BYOL


def D(p, z):
    return -F.cosine_similarity(p, z.detach(), dim=-1).mean()


encoder = nn.Sequential(load(TinyResNet(num_classes=16)), nn.BatchNorm1d(16))
predictor = load(nn.Sequential(nn.Linear(16, 8, bias=False), nn.BatchNorm1d(8),
                               nn.ReLU(inplace=True), nn.Linear(8, 16)))
opt = optim.SGD([{"params": encoder.parameters(), "fix_lr": False},
                 {"params": predictor.parameters(), "fix_lr": True}], lr=0.05, momentum=0.9)
sims = []
for step in range(5):
    x1, x2 = views(step)
    z1, z2 = encoder(x1), encoder(x2)
    p1, p2 = predictor(z1), predictor(z2)
    loss = D(p1, z2) / 2 + D(p2, z1) / 2
    opt.zero_grad()
    loss.backward()
    opt.step()
    sims.append([loss.item(), F.normalize(z1, dim=1).std(dim=0).mean().item()])
out["simsiam"] = sims

online = load(TinyResNet(num_classes=16))
online_pred = load(nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16)))
target = copy.deepcopy(online)
for p in target.parameters():
    p.requires_grad = False
opt = optim.Adam(list(online.parameters()) + list(online_pred.parameters()), lr=1e-3)


def byol_loss(x, y):
    x = F.normalize(x, dim=-1, p=2)
    y = F.normalize(y, dim=-1, p=2)
    return 2 - 2 * (x * y).sum(dim=-1)


byol = []
for step in range(5):
    x1, x2 = views(step)
    with torch.no_grad():
        t1, t2 = target(x1), target(x2)
    loss = (byol_loss(online_pred(online(x1)), t2) + byol_loss(online_pred(online(x2)), t1)).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    tau = 1 - (1 - 0.99) * (math.cos(math.pi * step / 5) + 1) / 2
    for online_p, target_p in zip(online.parameters(), target.parameters()):
        target_p.data = target_p.data * tau + online_p.data * (1 - tau)
    byol.append(loss.item())
out["byol"] = byol
out["target_bn_var"] = target.bn1.running_var.tolist()

report(**out)
