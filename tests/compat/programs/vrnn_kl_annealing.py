# A variational RNN (Chung et al. 2015) trained with KL annealing, as the VRNN reference code and
# the "cyclical annealing" paper write them: phi_x / phi_z feature extractors, a prior network
# and an encoder over [phi_x, h], a decoder over [phi_z, h], a GRUCell recurrence on
# [phi_x, phi_z], reparameterised samples with NumPy noise, the KL between two diagonal
# Gaussians written out (2 log sigma terms), a Gaussian decoder NLL with softplus std, the
# KL weight from a cyclical schedule (linear ramp over half of each cycle) and from a monotonic
# sigmoid schedule, free bits by clamp(min=) on the per-dimension KL, Adam with
# clip_grad_norm_; then ancestral sampling from the prior and an ELBO / KL-per-dimension report
# (active units by the variance of the posterior means across the batch).
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(53)
B, T, XD, HD, ZD = 8, 12, 3, 16, 4
tt = np.arange(T)
freq = rng.uniform(0.3, 0.8, (B, 1))
xs = np.stack([np.sin(freq * tt), np.cos(freq * tt), np.sin(2 * freq * tt)], -1)
X = torch.from_numpy((xs + 0.05 * rng.standard_normal(xs.shape)).astype(np.float32))


class VRNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.phi_x = nn.Sequential(nn.Linear(XD, HD), nn.ReLU())
        self.phi_z = nn.Sequential(nn.Linear(ZD, HD), nn.ReLU())
        self.enc = nn.Sequential(nn.Linear(2 * HD, HD), nn.ReLU())
        self.enc_mean = nn.Linear(HD, ZD)
        self.enc_std = nn.Sequential(nn.Linear(HD, ZD), nn.Softplus())
        self.prior = nn.Sequential(nn.Linear(HD, HD), nn.ReLU())
        self.prior_mean = nn.Linear(HD, ZD)
        self.prior_std = nn.Sequential(nn.Linear(HD, ZD), nn.Softplus())
        self.dec = nn.Sequential(nn.Linear(2 * HD, HD), nn.ReLU())
        self.dec_mean = nn.Linear(HD, XD)
        self.dec_std = nn.Sequential(nn.Linear(HD, XD), nn.Softplus())
        self.rnn = nn.GRUCell(2 * HD, HD)

    @staticmethod
    def kld_gauss(m1, s1, m2, s2):
        return 0.5 * (
            2 * torch.log(s2) - 2 * torch.log(s1) + (s1.pow(2) + (m1 - m2).pow(2)) / s2.pow(2) - 1
        )

    @staticmethod
    def nll_gauss(mean, std, x):
        return 0.5 * (math.log(2 * math.pi) + 2 * torch.log(std) + (x - mean).pow(2) / std.pow(2))

    def forward(self, x, eps):
        b = x.size(0)
        h = x.new_zeros(b, HD)
        kld_t, nll_t, means = [], [], []
        for t in range(x.size(1)):
            px = self.phi_x(x[:, t])
            e = self.enc(torch.cat([px, h], 1))
            em, es = self.enc_mean(e), self.enc_std(e) + 1e-4
            p = self.prior(h)
            pm, ps = self.prior_mean(p), self.prior_std(p) + 1e-4
            z = em + es * eps[t]
            pz = self.phi_z(z)
            d = self.dec(torch.cat([pz, h], 1))
            dm, ds = self.dec_mean(d), self.dec_std(d) + 1e-4
            h = self.rnn(torch.cat([px, pz], 1), h)
            kld_t.append(self.kld_gauss(em, es, pm, ps))
            nll_t.append(self.nll_gauss(dm, ds, x[:, t]).sum(1))
            means.append(em)
        return torch.stack(kld_t, 1), torch.stack(nll_t, 1), torch.stack(means, 1)

    @torch.no_grad()
    def sample(self, n, eps):
        h = torch.zeros(n, HD)
        out = []
        for t in range(len(eps)):
            p = self.prior(h)
            z = self.prior_mean(p) + (self.prior_std(p) + 1e-4) * eps[t]
            pz = self.phi_z(z)
            dm = self.dec_mean(self.dec(torch.cat([pz, h], 1)))
            h = self.rnn(torch.cat([self.phi_x(dm), pz], 1), h)
            out.append(dm)
        return torch.stack(out, 1)


def cyclical_beta(step, total, n_cycle=2, ratio=0.5):
    period = total / n_cycle
    tau = (step % period) / period
    return min(1.0, tau / ratio)


def sigmoid_beta(step, total, k=0.5):
    return 1 / (1 + math.exp(-k * (step - total / 2)))


results = {}
for schedule in ("cyclical", "sigmoid", "free_bits"):
    model = VRNN()
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    total = 12
    betas, elbos, kls = [], [], []
    for step in range(total):
        eps = torch.from_numpy(rng.standard_normal((T, B, ZD)).astype(np.float32))
        kld, nll, _ = model(X, eps)
        if schedule == "cyclical":
            beta = cyclical_beta(step, total)
            kl_term = kld.sum((1, 2)).mean()
        elif schedule == "sigmoid":
            beta = sigmoid_beta(step, total)
            kl_term = kld.sum((1, 2)).mean()
        else:
            beta = 1.0
            kl_term = kld.mean((0, 1)).clamp(min=0.05).sum() * T
        rec = nll.sum(1).mean()
        loss = rec + beta * kl_term
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        betas.append(beta)
        elbos.append(-(rec + kld.sum((1, 2)).mean()).item())
        kls.append(kld.sum((1, 2)).mean().item())
    with torch.no_grad():
        eps = torch.from_numpy(rng.standard_normal((T, B, ZD)).astype(np.float32))
        kld, nll, means = model(X, eps)
        active = (means.reshape(-1, ZD).var(0) > 1e-2).sum().item()
        sample = model.sample(
            2, torch.from_numpy(rng.standard_normal((T, 2, ZD)).astype(np.float32))
        )
    results[schedule] = dict(
        betas=betas,
        elbos=elbos,
        kls=kls,
        kl_per_dim=kld.mean((0, 1)).tolist(),
        active_units=active,
        sample=sample[0, :, 0].tolist(),
    )
report(**results)
