# Probabilistic regression with torch.distributions, in the shape of Bishop's mixture density
# networks and of heteroscedastic-regression tutorials: (1) an MDN whose head gives mixture
# logits, means and softplus scales; its negative log-likelihood written by hand with
# torch.logsumexp and checked against MixtureSameFamily(Categorical(logits=), Normal);
# (2) a heteroscedastic Gaussian regressor trained with F.gaussian_nll_loss; (3) a bivariate
# output with a MultivariateNormal(scale_tril=) built from torch.tril and a softplus diagonal,
# with a LowRankMultivariateNormal beside it; (4) constraints, biject_to / transform_to,
# cdf / icdf, entropy, kl_divergence, and rsample for shapes only.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions import (
    Categorical,
    Independent,
    LowRankMultivariateNormal,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    biject_to,
    constraints,
    kl_divergence,
    transform_to,
)

rng = np.random.default_rng(23)

# Bishop's inverse problem: x as a multi-valued function of y
y_np = rng.uniform(-1.0, 1.0, (128, 1))
x_np = y_np + 0.3 * np.sin(2 * math.pi * y_np) + 0.05 * rng.standard_normal((128, 1))
X = torch.from_numpy(x_np.astype(np.float32))
Y = torch.from_numpy(y_np.astype(np.float32))


class MDN(nn.Module):
    def __init__(self, n_in=1, hidden=24, n_comp=3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh())
        self.pi = nn.Linear(hidden, n_comp)
        self.mu = nn.Linear(hidden, n_comp)
        self.sigma = nn.Linear(hidden, n_comp)

    def forward(self, x):
        h = self.body(x)
        sigma = torch.clamp_min(F.softplus(self.sigma(h)), 1e-3)
        return self.pi(h), self.mu(h), sigma


def mdn_nll(logits, mu, sigma, y):
    # log sum_k pi_k N(y | mu_k, sigma_k), by hand
    log_pi = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    z = (y - mu) / sigma
    log_n = -0.5 * z**2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return -torch.logsumexp(log_pi + log_n, dim=-1).mean()


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


mdn = load(MDN())
opt = torch.optim.Adam(mdn.parameters(), lr=1e-2)
mdn_losses, lib_losses = [], []
for step in range(25):
    logits, mu, sigma = mdn(X)
    loss = mdn_nll(logits, mu, sigma, Y)
    mix = MixtureSameFamily(Categorical(logits=logits), Normal(mu, sigma))
    lib_losses.append(-mix.log_prob(Y.squeeze(-1)).mean().item())
    opt.zero_grad()
    loss.backward()
    opt.step()
    mdn_losses.append(loss.item())

with torch.no_grad():
    logits, mu, sigma = mdn(torch.tensor([[-0.5], [0.0], [0.5]]))
    mix = MixtureSameFamily(Categorical(logits=logits), Normal(mu, sigma))
    mdn_eval = {
        "mean": mix.mean.tolist(),
        "variance": mix.variance.tolist(),
        "cdf": mix.cdf(torch.tensor([0.0, 0.1, -0.2])).tolist(),
        "probs": mix.mixture_distribution.probs.tolist(),
        "mode_comp": mix.mixture_distribution.probs.argmax(-1).tolist(),
    }
    draws = mix.sample((4,))

# (2) heteroscedastic regression: mean and variance heads, gaussian_nll_loss
xs = rng.uniform(-2.0, 2.0, (96, 1))
ys = np.sin(xs) + (0.1 + 0.2 * np.abs(xs)) * rng.standard_normal((96, 1))
Xh = torch.from_numpy(xs.astype(np.float32))
Yh = torch.from_numpy(ys.astype(np.float32))
het = load(nn.Sequential(nn.Linear(1, 16), nn.SiLU(), nn.Linear(16, 2)))
opt2 = torch.optim.Adam(het.parameters(), lr=2e-2)
het_losses = []
for step in range(20):
    out = het(Xh)
    mean, var = out[:, :1], F.softplus(out[:, 1:]) + 1e-4
    loss = F.gaussian_nll_loss(mean, Yh, var, full=True)
    opt2.zero_grad()
    loss.backward()
    opt2.step()
    het_losses.append(loss.item())
with torch.no_grad():
    out = het(Xh[:5])
    var = F.softplus(out[:, 1:]) + 1e-4
    pred = Normal(out[:, 0], var.squeeze(-1).sqrt())
    het_eval = {
        "sum_nll": F.gaussian_nll_loss(out[:, :1], Yh[:5], var, reduction="sum").item(),
        "none_nll": F.gaussian_nll_loss(out[:, :1], Yh[:5], var, reduction="none").tolist(),
        "interval": torch.stack(
            [pred.icdf(torch.tensor(0.05)), pred.icdf(torch.tensor(0.95))]
        ).T.tolist(),
        "cdf_at_y": pred.cdf(Yh[:5, 0]).tolist(),
        "entropy": pred.entropy().tolist(),
    }
# per-pixel variances shared across an image's channels: var (N, 1, H, W) for (N, C, H, W)
img_mu = torch.from_numpy(rng.uniform(0, 1, (2, 3, 4, 4)).astype(np.float32))
img = torch.from_numpy(rng.uniform(0, 1, (2, 3, 4, 4)).astype(np.float32))
log_var = torch.zeros(2, 1, 4, 4, requires_grad=True)
img_nll = F.gaussian_nll_loss(img_mu, img, log_var.exp())
img_nll.backward()
het_eval["img_nll"] = [img_nll.item(), log_var.grad[0, 0, :2, :2].tolist()]

# (3) a bivariate output: Cholesky factor from torch.tril with a softplus diagonal
t = rng.uniform(-1.0, 1.0, (80, 2))
targets = np.stack([t[:, 0] + 0.3 * t[:, 1], 0.5 * t[:, 0] - t[:, 1]], 1)
targets = targets + rng.multivariate_normal([0, 0], [[0.05, 0.03], [0.03, 0.04]], 80)
T_in = torch.from_numpy(t.astype(np.float32))
T_out = torch.from_numpy(targets.astype(np.float32))
mvn_net = load(nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2 + 4)))
opt3 = torch.optim.Adam(mvn_net.parameters(), lr=1e-2)
mvn_losses = []
for step in range(20):
    out = mvn_net(T_in)
    loc, raw = out[:, :2], out[:, 2:].reshape(-1, 2, 2)
    diag = F.softplus(torch.diagonal(raw, dim1=-2, dim2=-1)) + 1e-3
    L = torch.tril(raw, diagonal=-1) + torch.diag_embed(diag)
    dist = MultivariateNormal(loc, scale_tril=L)
    loss = -dist.log_prob(T_out).mean()
    opt3.zero_grad()
    loss.backward()
    opt3.step()
    mvn_losses.append(loss.item())
with torch.no_grad():
    lowrank = LowRankMultivariateNormal(loc[:3], cov_factor=raw[:3, :, :1], cov_diag=diag[:3])
    full = MultivariateNormal(loc[:3], covariance_matrix=lowrank.covariance_matrix)
    mvn_eval = {
        "lowrank_lp": lowrank.log_prob(T_out[:3]).tolist(),
        "full_lp": full.log_prob(T_out[:3]).tolist(),
        "lowrank_entropy": lowrank.entropy().tolist(),
        "kl": kl_divergence(MultivariateNormal(loc[:3], scale_tril=L[:3]), full).tolist(),
        "precision": full.precision_matrix[0].tolist(),
        "indep_kl": kl_divergence(
            Independent(Normal(loc[:3], diag[:3]), 1), Independent(Normal(loc[3:6], 1.0), 1)
        ).tolist(),
    }

# (4) constraints and bijections: unconstrained parameters mapped onto their supports
pos = biject_to(constraints.positive)
simplex = transform_to(constraints.simplex)
unit = biject_to(constraints.interval(-1.0, 1.0))
chol = transform_to(constraints.lower_cholesky)
u = torch.tensor([[-1.0, 0.5, 2.0], [0.3, -0.7, 0.1]], requires_grad=True)
s = simplex(u)
(s[:, 0] * pos(u[:, 1]) + unit(u[:, 2]).sum()).sum().backward()
m = torch.tensor([[0.5, 0.0], [-0.3, -1.2]])
bij = {
    "pos": pos(u).tolist(),
    "pos_inv": pos.inv(pos(u)).tolist(),
    "pos_ladj": pos.log_abs_det_jacobian(u, pos(u)).tolist(),
    "simplex": s.tolist(),
    "simplex_ok": constraints.simplex.check(s).tolist(),
    "unit": unit(u).tolist(),
    "chol": chol(m).tolist(),
    "chol_ok": bool(constraints.lower_cholesky.check(chol(m))),
    "grad": u.grad.tolist(),
    "checks": [
        constraints.positive.check(torch.tensor([1.0, -1.0, 0.0])).tolist(),
        constraints.unit_interval.check(torch.tensor([0.0, 0.5, 1.5])).tolist(),
        Normal.arg_constraints["scale"] is constraints.positive,
        str(Categorical.support) != "",
    ],
}
# rsample for shapes only: the values come from the library's generator
g = torch.Generator().manual_seed(0)
eps = torch.randn(3, 2, generator=g)
rs = Normal(torch.zeros(2), torch.ones(2)).rsample((3,))
safe = torch.nan_to_num(torch.tensor([float("nan"), float("inf"), -float("inf"), 1.0]), posinf=9.0)
report(
    mdn_losses=mdn_losses,
    lib_losses=lib_losses,
    mdn_eval=mdn_eval,
    random_draws=draws.tolist(),
    draw_shape=list(draws.shape),
    het_losses=het_losses,
    het_eval=het_eval,
    mvn_losses=mvn_losses,
    mvn_eval=mvn_eval,
    bij=bij,
    random_eps=eps.tolist(),
    rs_shape=list(rs.shape),
    safe=safe.tolist(),
)
