# Density models with torch.distributions, in the shape of RealNVP tutorials and of Gaussian
# mixture fitting: (1) a RealNVP flow of affine coupling layers (masks as buffers, tanh-scaled
# log-scales) on two moons, trained by maximum likelihood against a MultivariateNormal base,
# log-determinants summed by hand; (2) a learned invertible linear map checked with
# torch.linalg.slogdet; (3) a Gaussian mixture whose log-likelihood is torch.logsumexp over
# Normal(...).log_prob, with Categorical mixture logits; (4) TransformedDistribution with
# AffineTransform / ExpTransform and rsample gradients, Independent, kl_divergence.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch import distributions as D

rng = np.random.default_rng(17)


def moons(n):
    t = rng.uniform(0, math.pi, n)
    upper = rng.random(n) < 0.5
    xs = np.where(upper, np.cos(t), 1 - np.cos(t))
    ys = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([xs, ys], 1) + 0.05 * rng.standard_normal((n, 2))
    return torch.from_numpy(pts.astype(np.float32))


class Coupling(nn.Module):
    def __init__(self, mask, hidden=16):
        super().__init__()
        self.register_buffer("mask", mask)
        self.s = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2), nn.Tanh())
        self.t = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def forward(self, x):  # data -> latent
        x_masked = x * self.mask
        s = self.s(x_masked) * (1 - self.mask)
        t = self.t(x_masked) * (1 - self.mask)
        z = x_masked + (1 - self.mask) * (x * torch.exp(s) + t)
        return z, s.sum(dim=1)

    def inverse(self, z):
        z_masked = z * self.mask
        s = self.s(z_masked) * (1 - self.mask)
        t = self.t(z_masked) * (1 - self.mask)
        return z_masked + (1 - self.mask) * ((z - t) * torch.exp(-s))


class RealNVP(nn.Module):
    def __init__(self, n_layers=4):
        super().__init__()
        masks = [
            torch.tensor([1.0, 0.0]) if i % 2 == 0 else torch.tensor([0.0, 1.0])
            for i in range(n_layers)
        ]
        self.layers = nn.ModuleList([Coupling(m) for m in masks])
        self.prior = D.MultivariateNormal(torch.zeros(2), torch.eye(2))

    def forward(self, x):
        log_det = torch.zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def log_prob(self, x):
        z, log_det = self(x)
        return self.prior.log_prob(z) + log_det

    def sample_from(self, z):
        for layer in reversed(self.layers):
            z = layer.inverse(z)
        return z


flow = RealNVP()
W = reference_weights(flow)
flow.load_state_dict({**flow.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})
opt = torch.optim.Adam(flow.parameters(), lr=5e-3)
flow_losses = []
for step in range(25):
    x = moons(64)
    loss = -flow.log_prob(x).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    flow_losses.append(loss.item())
with torch.no_grad():
    z = torch.from_numpy(rng.standard_normal((5, 2)).astype(np.float32))
    x_back = flow.sample_from(z)
    z_again, _ = flow(x_back)
    roundtrip = (z_again - z).abs().max().item()
    grid_lp = flow.log_prob(torch.tensor([[0.0, 0.5], [1.0, -0.5], [-1.0, 0.0]])).tolist()

# (2) a learned invertible 2x2 map: log|det| via slogdet, gradient through it
A = nn.Parameter(torch.tensor([[1.0, 0.3], [-0.2, 0.8]]))
b = nn.Parameter(torch.zeros(2))
opt2 = torch.optim.SGD([A, b], lr=0.05)
base = D.Normal(torch.zeros(2), torch.ones(2))
lin_losses = []
for step in range(15):
    x = moons(64)
    z = (x - b) @ A.T
    sign, logabsdet = torch.linalg.slogdet(A)
    loss = -(base.log_prob(z).sum(-1) + logabsdet).mean()
    opt2.zero_grad()
    loss.backward()
    opt2.step()
    lin_losses.append(loss.item())
det_check = [
    sign.item(),
    logabsdet.item(),
    torch.logdet(A.detach()).item(),
    torch.det(A.detach()).log().item(),
]

# (3) a 1-D Gaussian mixture by gradient descent on the logsumexp likelihood
data = torch.from_numpy(
    np.concatenate([rng.normal(-2, 0.5, 60), rng.normal(1.5, 0.8, 40)]).astype(np.float32)
)
logits = nn.Parameter(torch.zeros(2))
means = nn.Parameter(torch.tensor([-1.0, 1.0]))
log_stds = nn.Parameter(torch.zeros(2))
opt3 = torch.optim.Adam([logits, means, log_stds], lr=0.05)
gmm_losses = []
for step in range(30):
    comp = D.Normal(means, log_stds.exp())
    log_mix = torch.log_softmax(logits, dim=0)
    ll = torch.logsumexp(comp.log_prob(data.unsqueeze(-1)) + log_mix, dim=-1)
    loss = -ll.mean()
    opt3.zero_grad()
    loss.backward()
    opt3.step()
    gmm_losses.append(loss.item())
with torch.no_grad():
    mix = D.MixtureSameFamily(D.Categorical(logits=logits), D.Normal(means, log_stds.exp()))
    mix_lp = mix.log_prob(torch.tensor([-2.0, 0.0, 1.5])).tolist()
    resp = torch.softmax(D.Normal(means, log_stds.exp()).log_prob(data[:4, None]) + logits, -1)

# (4) TransformedDistribution: a log-normal built from transforms, reparameterised gradients
loc = torch.tensor([0.2, -0.1], requires_grad=True)
scale = torch.tensor([0.5, 1.2], requires_grad=True)
lognormal = D.TransformedDistribution(
    D.Normal(loc, scale), [D.transforms.AffineTransform(0.0, 2.0), D.transforms.ExpTransform()]
)
eps_values = torch.tensor([[1.5, 0.7], [2.0, 3.0]])
lp = lognormal.log_prob(eps_values)
lp.sum().backward()
indep = D.Independent(D.Normal(loc.detach(), scale.detach()), 1)
mvn = D.MultivariateNormal(torch.zeros(2), scale_tril=torch.tensor([[1.0, 0.0], [0.5, 0.8]]))
other = D.MultivariateNormal(
    torch.ones(2), covariance_matrix=torch.tensor([[2.0, 0.3], [0.3, 1.0]])
)
sample = lognormal.rsample((3,))
report(
    flow_losses=flow_losses,
    roundtrip_small=roundtrip < 1e-5,
    grid_lp=grid_lp,
    lin_losses=lin_losses,
    det_check=det_check,
    gmm_losses=gmm_losses,
    mix_lp=mix_lp,
    resp=resp.tolist(),
    lognormal_lp=lp.tolist(),
    loc_grad=loc.grad.tolist(),
    scale_grad=scale.grad.tolist(),
    indep=[
        indep.log_prob(torch.tensor([0.0, 1.0])).item(),
        indep.entropy().item(),
        list(indep.batch_shape),
        list(indep.event_shape),
    ],
    mvn=[
        mvn.log_prob(torch.tensor([0.3, -0.4])).item(),
        mvn.entropy().item(),
        D.kl_divergence(mvn, other).item(),
        mvn.covariance_matrix.tolist(),
    ],
    random_sample=sample.tolist(),
    sample_shape=list(sample.shape),
    sample_positive=bool((sample > 0).all()),
)
