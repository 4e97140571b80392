# Treatment-effect estimation as the Dragonnet / TARNet / CFR reference ports write it
# (condensed; a synthetic observational study made by NumPy): a shared representation,
# two outcome heads and a propensity head (sigmoid), the loss
# sum((1 - t) * (y0 - y)^2 + t * (y1 - y)^2) + alpha * BCE(g, t), Dragonnet's targeted
# regularisation with a learnable epsilon (`h = t / g - (1 - t) / (1 - g)`, y_pert = y_pred +
# eps * h), propensity clipping by clamp(0.01, 0.99), CFR's IPM term as a linear MMD between
# the treated and control representations selected by boolean masks, ATE / ATT estimates
# (plug-in, IPW, AIPW / doubly robust), PEHE against the known effects, an S-learner and a
# T-learner baseline, and SGD with momentum + nesterov and a ReduceLROnPlateau.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(3434)
N, D = 200, 6
Xn = rng.standard_normal((N, D)).astype(np.float32)
logit = 0.8 * Xn[:, 0] - 0.5 * Xn[:, 1]
Tn = (rng.uniform(size=N) < 1 / (1 + np.exp(-logit))).astype(np.float32)
tau = 1.0 + 0.5 * Xn[:, 2]
mu0 = Xn[:, 0] + 0.5 * Xn[:, 3] ** 2
Yn = (mu0 + Tn * tau + 0.3 * rng.standard_normal(N)).astype(np.float32)
X, T, Y = torch.from_numpy(Xn), torch.from_numpy(Tn), torch.from_numpy(Yn)
true_tau = torch.from_numpy(tau.astype(np.float32))


class DragonNet(nn.Module):
    def __init__(self, d, h=16):
        super().__init__()
        self.rep = nn.Sequential(nn.Linear(d, h), nn.ELU(), nn.Linear(h, h), nn.ELU())
        self.y0 = nn.Sequential(nn.Linear(h, h // 2), nn.ELU(), nn.Linear(h // 2, 1))
        self.y1 = nn.Sequential(nn.Linear(h, h // 2), nn.ELU(), nn.Linear(h // 2, 1))
        self.t = nn.Linear(h, 1)
        self.epsilon = nn.Linear(1, 1, bias=False)

    def forward(self, x):
        z = self.rep(x)
        g = torch.sigmoid(self.t(z)).squeeze(1)
        return self.y0(z).squeeze(1), self.y1(z).squeeze(1), g, z


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def dragonnet_loss(y, t, y0, y1, g, alpha=1.0):
    outcome = torch.sum((1.0 - t) * (y0 - y) ** 2 + t * (y1 - y) ** 2)
    treat = F.binary_cross_entropy(g, t, reduction="sum")
    return outcome + alpha * treat


def targeted_reg(y, t, y0, y1, g, eps):
    g = g.clamp(0.01, 0.99)
    y_pred = t * y1 + (1 - t) * y0
    h = t / g - (1 - t) / (1 - g)
    y_pert = y_pred + eps.squeeze() * h
    return torch.sum((y - y_pert) ** 2)


def mmd_lin(z, t):
    zt, zc = z[t.bool()], z[~t.bool()]
    return ((zt.mean(0) - zc.mean(0)) ** 2).sum()


results = {}
for variant in ("dragonnet", "tarnet", "cfr"):
    model = load(DragonNet(D))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    losses = []
    for epoch in range(12):
        y0, y1, g, z = model(X)
        loss = dragonnet_loss(Y, T, y0, y1, g, alpha=1.0 if variant == "dragonnet" else 0.0)
        if variant == "dragonnet":
            loss = loss + 1.0 * targeted_reg(Y, T, y0, y1, g, model.epsilon.weight)
        if variant == "cfr":
            loss = loss + 10.0 * mmd_lin(z, T)
        loss = loss / N
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step(loss.item())
        losses.append(loss.item())
    with torch.no_grad():
        y0, y1, g, z = model(X)
        g = g.clamp(0.01, 0.99)
        ite = y1 - y0
        ate_plugin = ite.mean().item()
        att = ite[T.bool()].mean().item()
        ipw = (T * Y / g - (1 - T) * Y / (1 - g)).mean().item()
        aipw = (ite + T * (Y - y1) / g - (1 - T) * (Y - y0) / (1 - g)).mean().item()
        pehe = torch.sqrt(((ite - true_tau) ** 2).mean()).item()
    results[variant] = {
        "losses": losses,
        "ate": [ate_plugin, att, ipw, aipw],
        "pehe": pehe,
        "lr": opt.param_groups[0]["lr"],
        "eps": model.epsilon.weight.item(),
    }

# S- and T-learners
s = load(nn.Sequential(nn.Linear(D + 1, 16), nn.Tanh(), nn.Linear(16, 1)))
opt = torch.optim.Adam(s.parameters(), lr=1e-2)
for step in range(20):
    pred = s(torch.cat([X, T.unsqueeze(1)], 1)).squeeze(1)
    loss = F.mse_loss(pred, Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
with torch.no_grad():
    s_ate = (
        (s(torch.cat([X, torch.ones(N, 1)], 1)) - s(torch.cat([X, torch.zeros(N, 1)], 1)))
        .mean()
        .item()
    )
heads = [load(nn.Sequential(nn.Linear(D, 16), nn.Tanh(), nn.Linear(16, 1))) for _ in range(2)]
t_losses = []
for arm, m in enumerate(heads):
    mask = T == arm
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for step in range(20):
        loss = F.mse_loss(m(X[mask]).squeeze(1), Y[mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
    t_losses.append(loss.item())
with torch.no_grad():
    t_ate = (heads[1](X) - heads[0](X)).mean().item()
report(results=results, s_ate=s_ate, t_ate=t_ate, t_losses=t_losses, n_treated=int(T.sum().item()))
