# Probabilistic count and proportion models in the shape of scVI's ZINB decoder, ProdLDA's
# Dirichlet prior and Bayesian-regression notebooks: scVI's log_zinb_positive / log_nb_positive
# written with torch.lgamma, softplus and torch.where, checked against
# distributions.NegativeBinomial; a Beta regression (Beta.log_prob, mean/variance, entropy), a
# Dirichlet topic prior (log_prob, entropy, kl_divergence between Dirichlets, concentration
# gradients), Gamma / Poisson / Binomial / Geometric / LogNormal / StudentT / Laplace / Cauchy /
# Weibull / Kumaraswamy / VonMises / ContinuousBernoulli log-probabilities, cdf / icdf, and the
# special functions the formulas need (digamma, polygamma, erfinv, xlogy, i0, logit, entr, ndtri).
# Adam fits each model's parameters by maximum likelihood.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions import (
    Beta,
    Binomial,
    Cauchy,
    ContinuousBernoulli,
    Dirichlet,
    Gamma,
    Geometric,
    Kumaraswamy,
    Laplace,
    LogNormal,
    NegativeBinomial,
    Poisson,
    StudentT,
    VonMises,
    Weibull,
    kl_divergence,
)

rng = np.random.default_rng(2024)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def log_nb_positive(x, mu, theta, eps=1e-8):
    log_theta_mu_eps = torch.log(theta + mu + eps)
    return (
        theta * (torch.log(theta + eps) - log_theta_mu_eps)
        + x * (torch.log(mu + eps) - log_theta_mu_eps)
        + torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
    )


def log_zinb_positive(x, mu, theta, pi, eps=1e-8):
    softplus_pi = F.softplus(-pi)
    log_theta_eps = torch.log(theta + eps)
    log_theta_mu_eps = torch.log(theta + mu + eps)
    pi_theta_log = -pi + theta * (log_theta_eps - log_theta_mu_eps)
    case_zero = F.softplus(pi_theta_log) - softplus_pi
    mul_case_zero = torch.mul((x < eps).type(torch.float32), case_zero)
    case_non_zero = (
        -softplus_pi
        + pi_theta_log
        + x * (torch.log(mu + eps) - log_theta_mu_eps)
        + torch.lgamma(x + theta)
        - torch.lgamma(theta)
        - torch.lgamma(x + 1)
    )
    mul_case_non_zero = torch.mul((x > eps).type(torch.float32), case_non_zero)
    return mul_case_zero + mul_case_non_zero


class ZINBDecoder(nn.Module):
    def __init__(self, n_latent=3, n_genes=7):
        super().__init__()
        self.px_decoder = nn.Sequential(nn.Linear(n_latent, 16), nn.ReLU())
        self.px_scale_decoder = nn.Sequential(nn.Linear(16, n_genes), nn.Softmax(dim=-1))
        self.px_dropout_decoder = nn.Linear(16, n_genes)
        self.px_r = nn.Parameter(torch.randn(n_genes))

    def forward(self, z, library):
        h = self.px_decoder(z)
        px_scale = self.px_scale_decoder(h)
        px_rate = torch.exp(library) * px_scale
        return px_rate, torch.exp(self.px_r), self.px_dropout_decoder(h)


z = torch.from_numpy(rng.standard_normal((12, 3)).astype(np.float32))
library = torch.from_numpy(np.log(rng.integers(20, 60, size=(12, 1))).astype(np.float32))
counts = rng.negative_binomial(2, 0.3, size=(12, 7)).astype(np.float32)
counts[rng.random((12, 7)) < 0.3] = 0.0
x = torch.from_numpy(counts)
dec = load(ZINBDecoder())
opt = torch.optim.Adam(dec.parameters(), lr=1e-2)
zinb_losses, nb_losses = [], []
for step in range(10):
    rate, theta, pi = dec(z, library)
    loss = -log_zinb_positive(x, rate, theta, pi).sum(-1).mean()
    nb = -log_nb_positive(x, rate, theta).sum(-1).mean()
    opt.zero_grad()
    (loss + 0.1 * nb).backward()
    opt.step()
    zinb_losses.append(loss.item())
    nb_losses.append(nb.item())
with torch.no_grad():
    rate, theta, pi = dec(z, library)
    # torch's NegativeBinomial parametrises by total_count and logits = log(mu / theta)
    nb_dist = NegativeBinomial(total_count=theta, logits=torch.log(rate) - torch.log(theta))
    nb_check = (nb_dist.log_prob(x) - log_nb_positive(x, rate, theta)).abs().max().item() < 1e-3
    nb_mean = nb_dist.mean.flatten().tolist()[:10]
    nb_var = nb_dist.variance.flatten().tolist()[:10]

# Beta regression: y in (0, 1), mean by sigmoid, precision by softplus
xb = torch.from_numpy(rng.standard_normal((30, 2)).astype(np.float32))
yb = torch.from_numpy(rng.beta(2.0, 5.0, size=30).astype(np.float32))
beta_reg = load(nn.Linear(2, 2))
opt = torch.optim.Adam(beta_reg.parameters(), lr=2e-2)
beta_losses = []
for step in range(10):
    out = beta_reg(xb)
    mu, phi = torch.sigmoid(out[:, 0]), F.softplus(out[:, 1]) + 1.0
    dist = Beta(mu * phi, (1 - mu) * phi)
    loss = -dist.log_prob(yb).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    beta_losses.append(loss.item())
beta_stats = [dist.mean[:4].tolist(), dist.variance[:4].tolist(), dist.entropy()[:4].tolist()]

# Dirichlet topic prior: fit the concentration by maximum likelihood
props = torch.from_numpy(rng.dirichlet([0.5, 1.0, 2.0, 0.8], size=25).astype(np.float32))
log_alpha = nn.Parameter(torch.zeros(4))
opt = torch.optim.Adam([log_alpha], lr=0.1)
dir_losses = []
for step in range(12):
    d = Dirichlet(log_alpha.exp())
    prior = Dirichlet(torch.full((4,), 0.7))
    loss = -d.log_prob(props).mean() + 0.01 * kl_divergence(d, prior)
    opt.zero_grad()
    loss.backward()
    opt.step()
    dir_losses.append(loss.item())
dir_stats = [
    d.entropy().item(),
    d.mean.tolist(),
    d.variance.tolist(),
    kl_divergence(d, prior).item(),
    log_alpha.grad.tolist(),
]

# log-probabilities, cdf / icdf and their gradients for the other families
v = torch.tensor([0.3, 1.2, 2.5, 4.0])
k = torch.tensor([0.0, 1.0, 3.0, 6.0])
u = torch.tensor([0.1, 0.35, 0.6, 0.9])
a = torch.tensor(1.7, requires_grad=True)
b = torch.tensor(0.8, requires_grad=True)
dists = {
    "gamma": (Gamma(a, b), v),
    "poisson": (Poisson(a * 2), k),
    "binomial": (Binomial(total_count=8, probs=torch.sigmoid(b)), k),
    "binomial_logits": (Binomial(total_count=torch.tensor([6.0, 8, 10, 12]), logits=b - 1), k),
    "geometric": (Geometric(probs=torch.sigmoid(b - 1)), k),
    "lognormal": (LogNormal(b, a), v),
    "studentt": (StudentT(df=a * 2, loc=b, scale=a), v - 2),
    "laplace": (Laplace(b, a), v - 2),
    "cauchy": (Cauchy(b, a), v - 2),
    "weibull": (Weibull(a, b + 1), v),
    "kumaraswamy": (Kumaraswamy(a, b + 1), u),
    "vonmises": (VonMises(b, a), v - 2),
    "cont_bernoulli": (ContinuousBernoulli(probs=torch.sigmoid(b)), u),
}
logps, extras = {}, {}
for name, (dist, value) in dists.items():
    lp = dist.log_prob(value)
    logps[name] = lp.tolist()
    ga, gb = torch.autograd.grad(lp.sum(), (a, b), allow_unused=True, retain_graph=True)
    logps[name + "_grad"] = [0.0 if g is None else g.item() for g in (ga, gb)]
    try:
        mean = dist.mean
        extras[name + "_mean"] = "nan" if bool(mean.isnan().any()) else mean.tolist()
    except NotImplementedError:
        extras[name + "_mean"] = "none"
for name in ("gamma", "laplace", "cauchy", "weibull", "lognormal", "cont_bernoulli"):
    extras[name + "_cdf"] = dists[name][0].cdf(dists[name][1]).tolist()
for name in ("laplace", "cauchy", "cont_bernoulli"):
    extras[name + "_icdf"] = dists[name][0].icdf(u).tolist()
for name in ("gamma", "laplace", "cauchy", "weibull", "lognormal", "studentt", "geometric"):
    extras[name + "_entropy"] = dists[name][0].entropy().tolist()
extras["kl_gamma"] = kl_divergence(Gamma(a, b), Gamma(b + 1, a)).item()
extras["kl_beta"] = kl_divergence(Beta(a, b), Beta(b + 1, a)).item()
extras["kl_poisson"] = kl_divergence(Poisson(a), Poisson(b)).item()
extras["kl_laplace"] = kl_divergence(Laplace(a, b), Laplace(b, a)).item()

# special functions
s = torch.tensor([0.05, 0.3, 0.5, 0.8, 0.99], dtype=torch.float64, requires_grad=True)
special = {
    "digamma": torch.digamma(s * 4).tolist(),
    "polygamma1": torch.polygamma(1, s * 4).tolist(),
    "polygamma2": torch.special.polygamma(2, s * 4).tolist(),
    "erfinv": torch.erfinv(2 * s - 1).tolist(),
    "ndtri": torch.special.ndtri(s).tolist(),
    "logit": torch.logit(s).tolist(),
    "logit_eps": torch.logit(s, eps=0.1).tolist(),
    "xlogy": torch.xlogy(s, s * 3).tolist(),
    "xlog1py": torch.special.xlog1py(s, s).tolist(),
    "entr": torch.special.entr(s).tolist(),
    "i0": torch.i0(s * 5).tolist(),
    "i0e": torch.special.i0e(s * 5).tolist(),
    "i1": torch.special.i1(s * 5).tolist(),
    "log_ndtr": torch.special.log_ndtr(s * 6 - 3).tolist(),
    "erfcx": torch.special.erfcx(s * 3).tolist(),
    "multigammaln": torch.mvlgamma(s + 2, p=3).tolist(),
}
g = torch.autograd.grad(
    (
        torch.digamma(s * 4)
        + torch.erfinv(2 * s - 1)
        + torch.logit(s)
        + torch.xlogy(s, s * 3)
        + torch.special.entr(s)
        + torch.i0(s)
        + torch.lgamma(s)
        + torch.mvlgamma(s + 2, p=3)
    ).sum(),
    s,
)[0]
special["grad"] = g.tolist()

report(
    zinb_losses=zinb_losses,
    nb_losses=nb_losses,
    nb_check=nb_check,
    nb_mean=nb_mean,
    nb_var=nb_var,
    beta_losses=beta_losses,
    beta_stats=beta_stats,
    dir_losses=dir_losses,
    dir_stats=dir_stats,
    **logps,
    **extras,
    **special,
)
