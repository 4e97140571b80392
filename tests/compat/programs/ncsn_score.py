# Score-based generative modelling (Song & Ermon 2019) on 2-D data as the NCSN tutorials write
# it: a noise-conditional score network (sigma embedded by log sigma concatenated to the input,
# outputs divided by sigma), geometric noise levels by torch.exp(torch.linspace(log, log)),
# denoising score matching with a per-sample sigma index from NumPy and the lambda(sigma) =
# sigma^2 weighting, sliced score matching (the Jacobian-vector trace through
# autograd.grad(create_graph=True) with Rademacher projections), the exact score-matching
# objective (trace of the Jacobian by a loop of autograd.grad over the two dimensions), Adam
# with an EMA copy of the weights (an ema dict updated by mul_ / add_); then annealed Langevin
# dynamics from NumPy noise, and a check of the learned score against a Gaussian mixture's true
# score (autograd.grad of its logsumexp density).
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(79)
centers = np.array([[-1.5, 0.0], [1.5, 0.5]])
data = torch.from_numpy(
    (centers[rng.integers(0, 2, 256)] + 0.3 * rng.standard_normal((256, 2))).astype(np.float32)
)
sigmas = torch.exp(torch.linspace(math.log(1.0), math.log(0.05), 6))


class ScoreNet(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(3, hidden),
            nn.Softplus(),
            nn.Linear(hidden, hidden),
            nn.Softplus(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x, sigma):
        h = torch.cat([x, sigma.log().expand(x.shape[0], 1)], 1)
        return self.net(h) / sigma


def dsm_loss(model, x, labels):
    used = sigmas[labels].view(-1, 1)
    noise = torch.from_numpy(rng.standard_normal(tuple(x.shape)).astype(np.float32)) * used
    perturbed = x + noise
    target = -noise / used**2
    scores = torch.cat([model(perturbed[i : i + 1], used[i : i + 1]) for i in range(len(x))])
    return (0.5 * ((scores - target) ** 2).sum(1) * used.squeeze(1) ** 2).mean()


def sliced_sm_loss(model, x, sigma):
    x = x.clone().requires_grad_(True)
    v = torch.from_numpy(rng.choice([-1.0, 1.0], size=tuple(x.shape)).astype(np.float32))
    s = model(x, sigma)
    (gv,) = torch.autograd.grad((s * v).sum(), x, create_graph=True)
    return ((v * gv).sum(1) + 0.5 * (s * v).sum(1) ** 2).mean()


def exact_sm_loss(model, x, sigma):
    x = x.clone().requires_grad_(True)
    s = model(x, sigma)
    trace = 0
    for i in range(x.shape[1]):
        (g,) = torch.autograd.grad(s[:, i].sum(), x, create_graph=True)
        trace = trace + g[:, i]
    return (trace + 0.5 * (s**2).sum(1)).mean()


model = ScoreNet()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
ema = {name: p.detach().clone() for name, p in model.named_parameters()}
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
results = {"dsm": [], "ssm": [], "esm": []}
for step in range(12):
    idx = rng.integers(0, 256, 32)
    labels = torch.from_numpy(rng.integers(0, len(sigmas), 32))
    loss = dsm_loss(model, data[idx], labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        for name, p in model.named_parameters():
            ema[name].mul_(0.9).add_(p.detach(), alpha=0.1)
    results["dsm"].append(loss.item())
    s0 = sigmas[-2:-1].view(1, 1)
    results["ssm"].append(sliced_sm_loss(model, data[idx[:16]], s0).item())
    results["esm"].append(exact_sm_loss(model, data[idx[:16]], s0).item())

# load the EMA weights for sampling
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(ema[name])

# annealed Langevin dynamics
x = torch.from_numpy(rng.uniform(-3, 3, (64, 2)).astype(np.float32))
eps = 2e-4
with torch.no_grad():
    for sigma in sigmas:
        step_size = eps * (sigma / sigmas[-1]) ** 2
        for t in range(5):
            z = torch.from_numpy(rng.standard_normal((64, 2)).astype(np.float32))
            x = x + 0.5 * step_size * model(x, sigma.view(1, 1)) + step_size.sqrt() * z
results["samples_mean"] = x.mean(0).tolist()
results["samples_right"] = (x[:, 0] > 0).float().mean().item()


def mixture_log_density(x, s):
    c = torch.from_numpy(centers.astype(np.float32))
    var = 0.3**2 + s**2
    lp = -((x.unsqueeze(1) - c) ** 2).sum(-1) / (2 * var)
    return torch.logsumexp(lp, 1)


xq = torch.from_numpy(rng.standard_normal((8, 2)).astype(np.float32)).requires_grad_(True)
(true_score,) = torch.autograd.grad(mixture_log_density(xq, 0.5).sum(), xq)
with torch.no_grad():
    learned = model(xq, torch.tensor([[0.5]]))
results["score_cos"] = nn.functional.cosine_similarity(learned, true_score, dim=1).tolist()
report(**results)
