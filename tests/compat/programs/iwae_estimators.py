# Variational-autoencoder estimators as the IWAE / DReG / beta-VAE papers' PyTorch code writes
# them: an encoder producing Normal(mu, softplus scale), K importance samples by rsample-style
# mu + sigma * eps with NumPy eps (shape (K, B, Z)), log-weights from Normal.log_prob sums and
# a Bernoulli(logits=) decoder, the IWAE bound by logsumexp(0) - log K, the ELBO as its K = 1
# case, DReG's doubly-reparameterised encoder gradient (the posterior's parameters detached
# inside log q, normalised weights squared and detached, two backward passes routed to encoder
# and decoder parameter sets via autograd.grad and .grad assignment), a beta-VAE with a
# capacity-annealed KL (Burgess et al.: gamma * |KL - C|), KL by kl_divergence against
# Normal(0, 1) vs the analytic formula, free bits by clamp per dimension, and the marginal
# log-likelihood estimate with K = 64 under no_grad. Our own program.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions import Bernoulli, Normal, kl_divergence

rng = np.random.default_rng(41)
X_DIM, Z_DIM, H, B = 16, 3, 24, 12

protos = (rng.uniform(size=(4, X_DIM)) > 0.5).astype(np.float32)
data = np.abs(protos[rng.integers(0, 4, size=96)] - (rng.uniform(size=(96, X_DIM)) < 0.1)).astype(
    np.float32
)
data = torch.from_numpy(data)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(X_DIM, H), nn.Tanh(), nn.Linear(H, 2 * Z_DIM))
        self.dec = nn.Sequential(nn.Linear(Z_DIM, H), nn.Tanh(), nn.Linear(H, X_DIM))

    def encode(self, x):
        mu, pre = self.enc(x).chunk(2, dim=-1)
        return mu, F.softplus(pre) + 1e-4

    def log_weights(self, x, eps, stop_q=False):
        mu, sigma = self.encode(x)
        z = mu + sigma * eps  # (K, B, Z)
        q_mu, q_sigma = (mu.detach(), sigma.detach()) if stop_q else (mu, sigma)
        log_q = Normal(q_mu, q_sigma).log_prob(z).sum(-1)
        log_p_z = Normal(torch.zeros_like(z), torch.ones_like(z)).log_prob(z).sum(-1)
        log_p_x = Bernoulli(logits=self.dec(z)).log_prob(x.expand(z.shape[0], -1, -1)).sum(-1)
        return log_p_x + log_p_z - log_q, mu, sigma


def fresh():
    m = VAE()
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


def noise(K, n=B):
    return torch.from_numpy(rng.standard_normal((K, n, Z_DIM)).astype(np.float32))


def batch(step):
    idx = torch.from_numpy(rng.choice(96, B, replace=False))
    return data[idx]


results = {}
for method, K in (("elbo", 1), ("iwae", 5), ("dreg", 5)):
    model = fresh()
    enc_params, dec_params = list(model.enc.parameters()), list(model.dec.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    log = []
    for step in range(12):
        x = batch(step)
        eps = noise(K)
        if method != "dreg":
            lw, _, _ = model.log_weights(x, eps)
            bound = (torch.logsumexp(lw, dim=0) - math.log(K)).mean()
            opt.zero_grad()
            (-bound).backward()
        else:
            lw, _, _ = model.log_weights(x, eps, stop_q=True)
            bound = (torch.logsumexp(lw, dim=0) - math.log(K)).mean()
            with torch.no_grad():
                w_norm = torch.softmax(lw, dim=0)
            enc_surrogate = -(w_norm.pow(2) * lw).sum(0).mean()
            dec_surrogate = -(w_norm * lw).sum(0).mean()
            enc_grads = torch.autograd.grad(enc_surrogate, enc_params, retain_graph=True)
            dec_grads = torch.autograd.grad(dec_surrogate, dec_params)
            opt.zero_grad()
            for p, g in zip(enc_params + dec_params, enc_grads + dec_grads):
                p.grad = g
        opt.step()
        log.append(bound.item())
    with torch.no_grad():
        eval_x = data[:32]
        lw, mu, sigma = model.log_weights(eval_x, noise(64, 32))
        ll = (torch.logsumexp(lw, 0) - math.log(64)).mean()
        ess = (torch.softmax(lw, 0).pow(2).sum(0)).reciprocal().mean()
    results[method] = log
    results[f"{method}_ll64"] = ll.item()
    results[f"{method}_ess"] = ess.item()

# with K = 1 DReG's weights are 1 and its encoder gradient is the ELBO's path-derivative
# ("sticking the landing") gradient: the full estimator's minus the score term, compared here
model = fresh()
x, eps = batch(0), noise(1)
lw_stop, _, _ = model.log_weights(x, eps, stop_q=True)
g_stl = torch.autograd.grad(lw_stop.mean(), list(model.enc.parameters()))
lw_full, _, _ = model.log_weights(x, eps)
g_full = torch.autograd.grad(lw_full.mean(), list(model.enc.parameters()))
results["stl_vs_full"] = [(a - b).norm().item() for a, b in zip(g_stl, g_full)]
results["stl_grad"] = [g.sum().item() for g in g_stl]

# beta-VAE with capacity annealing and free bits
model = fresh()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
beta_log = []
for step in range(12):
    x = batch(step)
    mu, sigma = model.encode(x)
    q = Normal(mu, sigma)
    z = mu + sigma * noise(1)[0]
    recon = F.binary_cross_entropy_with_logits(model.dec(z), x, reduction="sum") / B
    kl_dims = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(sigma))).mean(0)
    analytic = (-0.5 * (1 + 2 * torch.log(sigma) - mu.pow(2) - sigma.pow(2))).mean(0)
    C = min(2.0, 2.0 * step / 10)
    kl = kl_dims.sum()
    free_bits = torch.clamp(kl_dims, min=0.25).sum()
    loss = recon + 4.0 * (kl - C).abs() + 0.0 * free_bits
    opt.zero_grad()
    loss.backward()
    opt.step()
    beta_log.append(
        [recon.item(), kl.item(), free_bits.item(), (kl_dims - analytic).abs().max().item() < 1e-5]
    )
results["beta_vae"] = beta_log
report(**results)
