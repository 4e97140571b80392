# beta-TCVAE (Chen et al. 2018) and the disentanglement-library losses as their PyTorch code
# writes them: a convolutional VAE on small synthetic shapes, the log-density of every sample
# under every posterior in the batch (a (B, B, D) matrix of Gaussian log-densities by
# broadcasting), minibatch-weighted sampling and minibatch stratified sampling estimators of
# log q(z) and prod_j log q(z_j) by logsumexp minus log(B * N), the index-code mutual
# information / total correlation / dimension-wise KL decomposition, beta-VAE's and
# Burgess's capacity-annealed objectives (|KL - C| with C growing linearly), DIP-VAE-II's
# covariance penalty; Adam; then the per-dimension KL and a latent traversal decoded.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(113)
N, B, D = 64, 16, 4


def make_shapes(n):
    imgs = np.zeros((n, 1, 12, 12), np.float32)
    for i in range(n):
        x, y = rng.integers(1, 7, 2)
        s = int(rng.integers(2, 5))
        imgs[i, 0, y : y + s, x : x + s] = 1.0
    return torch.from_numpy(imgs)


data = make_shapes(N)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(1, 8, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(8, 16, 4, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(16 * 9, 2 * D),
        )
        self.dec = nn.Sequential(
            nn.Linear(D, 16 * 9),
            nn.ReLU(),
            nn.Unflatten(1, (16, 3, 3)),
            nn.ConvTranspose2d(16, 8, 4, 2, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(8, 1, 4, 2, 1),
        )

    def forward(self, x, eps):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + eps * torch.exp(0.5 * logvar)
        return self.dec(z), mu, logvar, z


def log_density_gaussian(x, mu, logvar):
    norm = -0.5 * (math.log(2 * math.pi) + logvar)
    return norm - 0.5 * ((x - mu) ** 2 * torch.exp(-logvar))


def log_importance_weight_matrix(batch_size, dataset_size):
    n, m = dataset_size, batch_size - 1
    strat_weight = (n - m) / (n * m)
    W = torch.Tensor(batch_size, batch_size).fill_(1 / m)
    W.view(-1)[:: m + 1] = 1 / n
    W.view(-1)[1 :: m + 1] = strat_weight
    W[m - 1, 0] = strat_weight
    return W.log()


def decompose(z, mu, logvar, n_data, mss=False):
    batch_size = z.shape[0]
    log_pz = log_density_gaussian(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    log_qz_x = log_density_gaussian(z, mu, logvar).sum(1)
    mat = log_density_gaussian(
        z.view(batch_size, 1, D), mu.view(1, batch_size, D), logvar.view(1, batch_size, D)
    )
    if mss:
        w = log_importance_weight_matrix(batch_size, n_data)
        log_qz = torch.logsumexp(w + mat.sum(2), dim=1)
        log_prod_qzi = torch.logsumexp(w.view(batch_size, batch_size, 1) + mat, dim=1).sum(1)
    else:
        log_qz = torch.logsumexp(mat.sum(2), dim=1) - math.log(batch_size * n_data)
        log_prod_qzi = (torch.logsumexp(mat, dim=1) - math.log(batch_size * n_data)).sum(1)
    mi = (log_qz_x - log_qz).mean()
    tc = (log_qz - log_prod_qzi).mean()
    dw_kl = (log_prod_qzi - log_pz).mean()
    terms = [t.mean().item() for t in (log_qz_x, log_qz, log_prod_qzi, log_pz)]
    return mi, tc, dw_kl, terms


results = {}
for objective in ("tcvae", "tcvae_mss", "beta", "capacity", "dip"):
    model = VAE()
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    log = []
    for step in range(8):
        idx = torch.from_numpy(rng.permutation(N)[:B])
        x = data[idx]
        eps = torch.from_numpy(rng.standard_normal((B, D)).astype(np.float32))
        logits, mu, logvar, z = model(x, eps)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / B
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
        if objective.startswith("tcvae"):
            mi, tc, dw, terms = decompose(z, mu, logvar, N, mss=objective.endswith("mss"))
            loss = rec + mi + 6.0 * tc + dw
            # the four log-densities, not mi / tc / dw: those are differences of them that
            # cancel (the MSS index-code MI 5e-5 apart, relative, between the libraries)
            extra = terms
        elif objective == "beta":
            loss, extra = rec + 4.0 * kl, [kl.item()]
        elif objective == "capacity":
            C = min(5.0, 5.0 * step / 6)
            loss, extra = rec + 10.0 * (kl - C).abs(), [C]
        else:
            cov_mu = torch.cov(mu.T)
            cov_z = cov_mu + torch.diag(logvar.exp().mean(0))
            off = cov_z - torch.diag(torch.diagonal(cov_z))
            loss = rec + kl + 10.0 * (off**2).sum() + 5.0 * ((torch.diagonal(cov_z) - 1) ** 2).sum()
            extra = [off.abs().max().item()]
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.append([loss.item(), rec.item()] + extra)
    with torch.no_grad():
        _, mu, logvar, _ = model(data, torch.zeros(N, D))
        kl_dim = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean(0)
        trav = torch.zeros(5, D)
        trav[:, 0] = torch.linspace(-2, 2, 5)
        recon = torch.sigmoid(model.dec(trav))
    results[objective] = dict(
        log=log, kl_dim=kl_dim.tolist(), traversal=recon.mean((1, 2, 3)).tolist()
    )
report(**results)
