# Meta-learning functions and irregular time series, as the Neural Processes notebooks and
# latent_ode (Rubanova et al.) write them: a Conditional NP (mean-aggregated context encodings,
# Normal predictive with 0.1 + 0.9 * softplus scale), a latent NP with a deterministic and a
# latent path (rsample with NumPy noise through a Normal's loc / scale, kl_divergence between
# posterior q(z | context + target) and prior q(z | context), Independent over the latent),
# random context / target splits from NumPy index permutations, an attentive NP cross-attention
# (MultiheadAttention over context points); ODE-RNN on irregularly sampled series: fixed-step
# RK4 between observation times (torch.diff of the times, per-sample step sizes), GRU updates
# only where a mask says a sequence has an observation (torch.where), a GRU-D style exponential
# decay of the hidden state by the time gaps; all trained with Adam.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions import Independent, Normal, kl_divergence

rng = np.random.default_rng(23)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def sample_tasks(n_tasks, n_points):
    xs, ys = [], []
    for _ in range(n_tasks):
        a, ph = rng.uniform(0.5, 1.5), rng.uniform(0, math.pi)
        x = np.sort(rng.uniform(-2, 2, size=n_points))
        xs.append(x)
        ys.append(a * np.sin(x + ph))
    x = torch.tensor(np.stack(xs), dtype=torch.float32).unsqueeze(-1)
    y = torch.tensor(np.stack(ys), dtype=torch.float32).unsqueeze(-1)
    return x, y


def context_target_split(x, y, n_context):
    idx = torch.from_numpy(rng.permutation(x.shape[1]))
    c = idx[:n_context]
    return x[:, c], y[:, c], x, y


class DeterministicEncoder(nn.Module):
    def __init__(self, h=16):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, h)
        )

    def forward(self, xc, yc):
        return self.mlp(torch.cat([xc, yc], dim=-1)).mean(dim=1)


class LatentEncoder(nn.Module):
    def __init__(self, h=16, z=4):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2, h), nn.ReLU(), nn.Linear(h, h))
        self.mu = nn.Linear(h, z)
        self.log_sigma = nn.Linear(h, z)

    def forward(self, x, y):
        s = self.mlp(torch.cat([x, y], dim=-1)).mean(dim=1)
        sigma = 0.1 + 0.9 * torch.sigmoid(self.log_sigma(s))
        return Independent(Normal(self.mu(s), sigma), 1)


class Decoder(nn.Module):
    def __init__(self, r_dim, h=16):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(r_dim + 1, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, 2)
        )

    def forward(self, r, xt):
        r = r.unsqueeze(1).expand(-1, xt.shape[1], -1)
        out = self.mlp(torch.cat([r, xt], dim=-1))
        mu, log_sigma = out.chunk(2, dim=-1)
        sigma = 0.1 + 0.9 * F.softplus(log_sigma)
        return Normal(mu, sigma)


class CNP(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = DeterministicEncoder()
        self.decoder = Decoder(16)

    def forward(self, xc, yc, xt):
        return self.decoder(self.encoder(xc, yc), xt)


class LatentNP(nn.Module):
    def __init__(self):
        super().__init__()
        self.det = DeterministicEncoder()
        self.lat = LatentEncoder()
        self.decoder = Decoder(16 + 4)

    def forward(self, xc, yc, xt, yt=None, eps=None):
        prior = self.lat(xc, yc)
        post = self.lat(xt, yt) if yt is not None else prior
        z = post.base_dist.loc + post.base_dist.scale * eps
        r = torch.cat([self.det(xc, yc), z], dim=-1)
        dist = self.decoder(r, xt)
        kl = kl_divergence(post, prior) if yt is not None else None
        return dist, kl


class AttnNP(nn.Module):
    def __init__(self, h=16):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(2, h), nn.ReLU(), nn.Linear(h, h))
        self.qk = nn.Linear(1, h)
        self.attn = nn.MultiheadAttention(h, 2, batch_first=True)
        self.decoder = nn.Sequential(nn.Linear(h + 1, h), nn.ReLU(), nn.Linear(h, 2))

    def forward(self, xc, yc, xt):
        v = self.enc(torch.cat([xc, yc], -1))
        r, w = self.attn(self.qk(xt), self.qk(xc), v, need_weights=True)
        mu, ls = self.decoder(torch.cat([r, xt], -1)).chunk(2, -1)
        return Normal(mu, 0.1 + 0.9 * F.softplus(ls)), w


results = {}
for name in ("cnp", "lnp", "anp"):
    model = load({"cnp": CNP, "lnp": LatentNP, "anp": AttnNP}[name]())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(8):
        x, y = sample_tasks(4, 12)
        xc, yc, xt, yt = context_target_split(x, y, int(rng.integers(3, 8)))
        if name == "lnp":
            eps = torch.from_numpy(rng.standard_normal((4, 4)).astype(np.float32))
            dist, kl = model(xc, yc, xt, yt, eps)
            loss = -dist.log_prob(yt).sum(dim=(1, 2)).mean() + kl.mean()
        elif name == "anp":
            dist, w = model(xc, yc, xt)
            loss = -dist.log_prob(yt).mean()
        else:
            dist = model(xc, yc, xt)
            loss = -dist.log_prob(yt).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    x, y = sample_tasks(2, 10)
    with torch.no_grad():
        if name == "lnp":
            d, _ = model(x[:, :4], y[:, :4], x, eps=torch.zeros(2, 4))
        elif name == "anp":
            d, w = model(x[:, :4], y[:, :4], x)
            results["anp_weights"] = w[0, :2].flatten().tolist()
        else:
            d = model(x[:, :4], y[:, :4], x)
    results[name] = {
        "losses": losses,
        "mean": d.mean[0, :, 0].tolist(),
        "std": d.stddev[1, :3, 0].tolist(),
    }


# ---- ODE-RNN on irregular samples
class ODEFunc(nn.Module):
    def __init__(self, h):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(h, 16), nn.Tanh(), nn.Linear(16, h))

    def forward(self, t, h):
        return self.net(h)


def rk4_step(func, t, h, dt):
    k1 = func(t, h)
    k2 = func(t + dt / 2, h + dt * k1 / 2)
    k3 = func(t + dt / 2, h + dt * k2 / 2)
    k4 = func(t + dt, h + dt * k3)
    return h + dt * (k1 + 2 * k2 + 2 * k3 + k4) / 6


class ODERNN(nn.Module):
    def __init__(self, h=8, n_sub=2, decay=False):
        super().__init__()
        self.h, self.n_sub, self.decay = h, n_sub, decay
        self.func = ODEFunc(h)
        self.cell = nn.GRUCell(2, h)
        self.out = nn.Linear(h, 1)
        if decay:
            self.gamma = nn.Linear(1, h)

    def forward(self, times, values, mask):
        Bn, T = values.shape
        h = torch.zeros(Bn, self.h)
        gaps = torch.diff(times, dim=1, prepend=times[:, :1])
        for i in range(T):
            dt = gaps[:, i : i + 1] / self.n_sub
            if self.decay:
                h = h * torch.exp(-F.relu(self.gamma(gaps[:, i : i + 1])))
            else:
                for _ in range(self.n_sub):
                    h = rk4_step(self.func, times[:, i : i + 1], h, dt)
            x = torch.stack([values[:, i], mask[:, i]], dim=-1)
            h_new = self.cell(x, h)
            h = torch.where(mask[:, i : i + 1] > 0, h_new, h)
        return self.out(h).squeeze(-1)


def irregular_batch(n, T=8):
    times = np.sort(rng.uniform(0, 4, size=(n, T)), axis=1).astype(np.float32)
    freq = rng.uniform(0.5, 2.0, size=(n, 1)).astype(np.float32)
    vals = np.sin(freq * times).astype(np.float32)
    mask = (rng.uniform(size=(n, T)) < 0.7).astype(np.float32)
    mask[:, 0] = 1.0
    target = np.sin(freq[:, 0] * 4.5).astype(np.float32)
    return (
        torch.from_numpy(times),
        torch.from_numpy(vals * mask),
        torch.from_numpy(mask),
        torch.from_numpy(target),
    )


for decay in (False, True):
    model = load(ODERNN(decay=decay))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    ls = []
    for step in range(6):
        t, v, m, y = irregular_batch(5)
        loss = F.mse_loss(model(t, v, m), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ls.append(loss.item())
    results["gru_d" if decay else "ode_rnn"] = ls

report(**results)
