# Traffic forecasting on a sensor graph as DCRNN (Li et al. 2018) and T-GCN write it: a
# distance-based Gaussian-kernel adjacency with a threshold, forward and backward random-walk
# transition matrices (D^-1 A and D^-1 A^T), diffusion convolution by Chebyshev-like powers
# stacked on a new axis (x, P x, P^2 x, ... for both directions, then one Linear), a DCGRU
# cell whose gates are diffusion convolutions over [x, h], an encoder-decoder with scheduled
# sampling (inverse sigmoid decay, coins from NumPy), masked MAE on readings with missing
# values (zeros), Adam with MultiStepLR and clip_grad_norm_; MAE / RMSE / MAPE per horizon, and
# a T-GCN cell (a GCN on the symmetric normalised adjacency inside a GRU) for comparison.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(131)
Nn, T_in, T_out, B = 8, 6, 3, 6
coords = rng.uniform(0, 1, (Nn, 2))
dist = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
sigma = dist.std()
adj = np.exp(-((dist / sigma) ** 2))
adj[adj < 0.3] = 0
A = torch.from_numpy(adj.astype(np.float32))
t = np.arange(40)
speeds = (
    50 + 10 * np.sin(2 * np.pi * t[:, None] / 12 + coords[:, 0] * 3) + rng.standard_normal((40, Nn))
)
speeds[rng.uniform(size=speeds.shape) < 0.05] = 0.0  # missing readings
series = torch.from_numpy(speeds.astype(np.float32))
mean, std = series[series > 0].mean(), series[series > 0].std()


def random_walk(adj):
    d = adj.sum(1)
    d_inv = torch.where(d > 0, 1.0 / d, torch.zeros_like(d))
    return d_inv[:, None] * adj


supports = [random_walk(A).T, random_walk(A.T).T]


class DiffusionConv(nn.Module):
    def __init__(self, in_dim, out_dim, K=2):
        super().__init__()
        self.K = K
        self.lin = nn.Linear(in_dim * (2 * K + 1), out_dim)

    def forward(self, x):  # x: (B, N, F)
        xs = [x]
        for P in supports:
            x1 = torch.einsum("nm,bmf->bnf", P, x)
            xs.append(x1)
            for k in range(2, self.K + 1):
                x2 = 2 * torch.einsum("nm,bmf->bnf", P, x1) - x
                xs.append(x2)
                x1 = x2
        return self.lin(torch.stack(xs, -1).flatten(2))


class DCGRUCell(nn.Module):
    def __init__(self, in_dim, hidden):
        super().__init__()
        self.hidden = hidden
        self.gates = DiffusionConv(in_dim + hidden, 2 * hidden)
        self.cand = DiffusionConv(in_dim + hidden, hidden)

    def forward(self, x, h):
        r, u = torch.sigmoid(self.gates(torch.cat([x, h], -1))).chunk(2, -1)
        c = torch.tanh(self.cand(torch.cat([x, r * h], -1)))
        return u * h + (1 - u) * c


class Seq2Seq(nn.Module):
    def __init__(self, hidden=12):
        super().__init__()
        self.hidden = hidden
        self.encoder = DCGRUCell(1, hidden)
        self.decoder = DCGRUCell(1, hidden)
        self.proj = nn.Linear(hidden, 1)

    def forward(self, x, y=None, teacher_prob=0.0, coins=None):
        b = x.shape[0]
        h = x.new_zeros(b, Nn, self.hidden)
        for t in range(x.shape[1]):
            h = self.encoder(x[:, t], h)
        go = x.new_zeros(b, Nn, 1)
        outs = []
        for t in range(T_out):
            h = self.decoder(go, h)
            out = self.proj(h)
            outs.append(out)
            go = y[:, t] if y is not None and coins[t] < teacher_prob else out
        return torch.stack(outs, 1)


class TGCNCell(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        a = A + torch.eye(Nn)
        d = a.sum(1).pow(-0.5)
        self.register_buffer("lap", d[:, None] * a * d[None])
        self.gc1 = nn.Linear(1 + hidden, 2 * hidden)
        self.gc2 = nn.Linear(1 + hidden, hidden)

    def forward(self, x, h):
        ru = torch.sigmoid(self.lap @ self.gc1(torch.cat([x, h], -1)))
        r, u = ru.chunk(2, -1)
        c = torch.tanh(self.lap @ self.gc2(torch.cat([x, r * h], -1)))
        return u * h + (1 - u) * c


def windows():
    xs, ys = [], []
    for s in range(0, 40 - T_in - T_out):
        xs.append(series[s : s + T_in])
        ys.append(series[s + T_in : s + T_in + T_out])
    return torch.stack(xs).unsqueeze(-1), torch.stack(ys).unsqueeze(-1)


X, Y = windows()
Xn = torch.where(X > 0, (X - mean) / std, torch.zeros_like(X))
Yn = (Y - mean) / std


def masked_mae(pred, target):
    mask = (target != 0).float()
    mask /= mask.mean()
    loss = torch.abs(pred - target) * mask
    return torch.where(torch.isnan(loss), torch.zeros_like(loss), loss).mean()


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return m


model = load(Seq2Seq())
opt = torch.optim.Adam(model.parameters(), lr=1e-2, eps=1e-3)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[4], gamma=0.3)
results = {"losses": [], "teacher": []}
step = 0
for epoch in range(6):
    for i in range(0, len(X), B):
        xb, yb = Xn[i : i + B], Y[i : i + B]
        k = 10.0
        teacher_prob = k / (k + math.exp(step / k))
        coins = rng.uniform(size=T_out)
        pred = model(xb, Yn[i : i + B], teacher_prob, coins) * std + mean
        loss = masked_mae(pred, yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
    sched.step()
    results["losses"].append(loss.item())
    results["teacher"].append(teacher_prob)

with torch.no_grad():
    pred = model(Xn) * std + mean
    mask = Y != 0
    for h in range(T_out):
        p, y = pred[:, h][mask[:, h]], Y[:, h][mask[:, h]]
        results[f"h{h}"] = [
            (p - y).abs().mean().item(),
            ((p - y) ** 2).mean().sqrt().item(),
            ((p - y).abs() / y).mean().item(),
        ]

cell = load(TGCNCell(12))
head = load(nn.Linear(12, T_out))
opt = torch.optim.Adam(list(cell.parameters()) + list(head.parameters()), lr=1e-2)
tg = []
for epoch in range(6):
    h = torch.zeros(len(X), Nn, 12)
    for t in range(T_in):
        h = cell(Xn[:, t], h)
    pred = head(h).permute(0, 2, 1).unsqueeze(-1) * std + mean
    loss = masked_mae(pred, Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    tg.append(loss.item())
results["tgcn"] = tg
report(**results)
