# A user-written torch.distributions.Distribution subclass, as Pyro-adjacent and VAE
# repositories write them: a Kumaraswamy distribution (arg_constraints with
# constraints.positive, support = constraints.unit_interval, has_rsample, batch_shape by
# broadcast_all, _validate_args, rsample by its closed-form inverse CDF of NumPy-drawn
# uniforms, log_prob, entropy by the closed form with torch.digamma, mean by torch.lgamma /
# exp(Beta function), expand via _get_checked_instance and super().__init__ with
# validate_args=False), @register_kl(Kumaraswamy, Beta) with the series-truncated KL of
# Nalisnick & Smyth, a stick-breaking VAE prior sampled by Kumaraswamy rsample and
# cumprod, constraint checks (support.check, validate_args raising ValueError), and an
# ExpFamily-free custom TransformedDistribution via SigmoidTransform.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.distributions import Beta, Distribution, Normal, TransformedDistribution, constraints
from torch.distributions.kl import kl_divergence, register_kl
from torch.distributions.transforms import SigmoidTransform
from torch.distributions.utils import broadcast_all

rng = np.random.default_rng(909)


class Kumaraswamy(Distribution):
    arg_constraints = {
        "concentration1": constraints.positive,
        "concentration0": constraints.positive,
    }
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        batch_shape = self.concentration1.size()
        super(Kumaraswamy, self).__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Kumaraswamy, _instance)
        batch_shape = torch.Size(batch_shape)
        new.concentration1 = self.concentration1.expand(batch_shape)
        new.concentration0 = self.concentration0.expand(batch_shape)
        super(Kumaraswamy, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def rsample_from(self, u):
        # inverse CDF: (1 - (1 - u)^(1/b))^(1/a)
        return (1 - (1 - u).pow(1 / self.concentration0)).pow(1 / self.concentration1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        a, b = self.concentration1, self.concentration0
        return (
            torch.log(a)
            + torch.log(b)
            + (a - 1) * torch.log(value)
            + (b - 1) * torch.log1p(-value.pow(a))
        )

    def entropy(self):
        a, b = self.concentration1, self.concentration0
        euler = 0.57721566490153286060
        harmonic_b = torch.digamma(b + 1) + euler
        return (1 - 1 / b) + (1 - 1 / a) * harmonic_b - torch.log(a) - torch.log(b)

    @property
    def mean(self):
        a, b = self.concentration1, self.concentration0
        log_beta = torch.lgamma(1 + 1 / a) + torch.lgamma(b) - torch.lgamma(1 + 1 / a + b)
        return b * torch.exp(log_beta)


@register_kl(Kumaraswamy, Beta)
def _kl_kumaraswamy_beta(p, q, M=10):
    a, b = p.concentration1, p.concentration0
    alpha, beta = q.concentration1, q.concentration0
    euler = 0.57721566490153286060
    kl = (a - alpha) / a * (-euler - torch.digamma(b) - 1 / b)
    kl = (
        kl
        + torch.log(a * b)
        + torch.lgamma(alpha)
        + torch.lgamma(beta)
        - torch.lgamma(alpha + beta)
    )
    kl = kl - (b - 1) / b
    series = 0
    for m in range(1, M + 1):
        series = series + 1.0 / (m + a * b) * torch.exp(
            torch.lgamma(m / a) + torch.lgamma(b) - torch.lgamma(m / a + b)
        )
    kl = kl + (beta - 1) * b * series
    return kl


a = torch.tensor([0.5, 1.0, 2.0, 3.0], requires_grad=True)
b = torch.tensor([1.5, 1.0, 0.7, 4.0], requires_grad=True)
k = Kumaraswamy(a, b, validate_args=True)
v = torch.tensor([0.2, 0.4, 0.6, 0.8])
lp = k.log_prob(v)
ent = k.entropy()
mean = k.mean
kl = kl_divergence(k, Beta(torch.tensor(1.0), torch.tensor(2.0)))
(lp.sum() + ent.sum() + kl.sum() + mean.sum()).backward()
try:
    k.log_prob(torch.tensor([1.5, 0.5, 0.5, 0.5]))
    invalid = "none"
except ValueError:
    invalid = "ValueError"
try:
    Kumaraswamy(torch.tensor([-1.0]), torch.tensor([1.0]), validate_args=True)
    bad_param = "none"
except ValueError:
    bad_param = "ValueError"
ke = k.expand((3, 4))
u = torch.from_numpy(rng.uniform(size=(20000, 4)).astype(np.float32))
with torch.no_grad():
    mc_mean = k.rsample_from(u).mean(0)
dist_info = {
    "log_prob": lp.tolist(),
    "entropy": ent.tolist(),
    "mean": mean.tolist(),
    "mc_mean": mc_mean.tolist(),
    "kl": kl.tolist(),
    "grad_a": a.grad.tolist(),
    "grad_b": b.grad.tolist(),
    "invalid": invalid,
    "bad_param": bad_param,
    "expand": [list(ke.batch_shape), list(ke.event_shape), ke.concentration1[2].tolist()],
    "support_check": Kumaraswamy.support.check(torch.tensor([0.0, 0.5, 1.5])).tolist(),
    "batch_shape": list(k.batch_shape),
}


# stick-breaking VAE encoder: Kumaraswamy posteriors, Beta(1, alpha0) prior
class SBEncoder(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 2 * (k - 1)))
        self.dec = nn.Linear(k, d)

    def forward(self, x, u):
        h = self.net(x)
        a, b = nn.functional.softplus(h).chunk(2, dim=-1)
        q = Kumaraswamy(a + 1e-2, b + 1e-2)
        v = q.rsample_from(u).clamp(1e-5, 1 - 1e-5)
        rem = torch.cumprod(1 - v, dim=-1)
        pi = torch.cat([v, torch.ones_like(v[:, :1])], dim=-1) * torch.cat(
            [torch.ones_like(rem[:, :1]), rem], dim=-1
        )
        return self.dec(pi), q, pi


model = SBEncoder(6, 5)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
X = torch.from_numpy(rng.standard_normal((16, 6)).astype(np.float32))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
prior = Beta(torch.tensor(1.0), torch.tensor(3.0))
elbo = []
for step in range(8):
    u = torch.from_numpy(rng.uniform(0.01, 0.99, (16, 4)).astype(np.float32))
    rec, q, pi = model(X, u)
    loss = (rec - X).pow(2).sum(1).mean() + kl_divergence(q, prior).sum(1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    elbo.append(loss.item())
logit_normal = TransformedDistribution(
    Normal(torch.tensor(0.3), torch.tensor(0.8)), [SigmoidTransform()]
)
report(
    dist=dist_info,
    elbo=elbo,
    pi_sum=pi.sum(1).tolist()[:3],
    logit_normal=logit_normal.log_prob(torch.tensor([0.1, 0.5, 0.9])).tolist(),
    normal_mean=math.isclose(Normal(0.0, 1.0).mean.item(), 0.0),
)
