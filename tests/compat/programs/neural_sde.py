# Stochastic differential equations in PyTorch without torchsde, as tutorials write them: an
# Ornstein-Uhlenbeck process simulated by Euler-Maruyama with Brownian increments from NumPy,
# its drift and volatility fitted by maximising the Euler transition likelihood (Normal
# log_prob, log-parameterised sigma) with Adam; a neural SDE (MLP drift, softplus diagonal
# diffusion, time as an input) trained through the solver by matching the marginal means and
# standard deviations of the data paths at every step; Milstein's scheme for a scalar diffusion
# with dsigma/dx from autograd.grad(create_graph=True), checked against Euler on geometric
# Brownian motion's exact solution; the Ito-to-Stratonovich drift correction; a latent SDE KL
# term (the drift difference divided by the diffusion, summed over the path).
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)
N, T, dt = 32, 20, 0.05
theta_true, mu_true, sigma_true = 1.5, 0.8, 0.4


def simulate_ou(x0, dW):
    xs = [x0]
    for k in range(dW.shape[1]):
        x = xs[-1]
        xs.append(x + theta_true * (mu_true - x) * dt + sigma_true * dW[:, k])
    return torch.stack(xs, 1)


dW = torch.from_numpy((rng.standard_normal((N, T)) * math.sqrt(dt)).astype(np.float32))
x0 = torch.from_numpy(rng.uniform(-1, 2, N).astype(np.float32))
paths = simulate_ou(x0, dW)
results = {"path_mean_end": paths[:, -1].mean().item()}

# 1. maximum likelihood of the Euler transitions
log_theta = nn.Parameter(torch.tensor(0.0))
mu = nn.Parameter(torch.tensor(0.0))
log_sigma = nn.Parameter(torch.tensor(-1.0))
opt = torch.optim.Adam([log_theta, mu, log_sigma], lr=0.05)
nll = []
for it in range(40):
    x, x_next = paths[:, :-1], paths[:, 1:]
    mean = x + log_theta.exp() * (mu - x) * dt
    std = log_sigma.exp() * math.sqrt(dt)
    loss = -torch.distributions.Normal(mean, std).log_prob(x_next).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    nll.append(loss.item())
results["mle_nll"] = nll[::4]
results["mle_params"] = [log_theta.exp().item(), mu.item(), log_sigma.exp().item()]


# 2. a neural SDE trained through the Euler-Maruyama solver
class NeuralSDE(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.drift = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.diffusion = nn.Sequential(
            nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1), nn.Softplus()
        )

    def f(self, t, x):
        return self.drift(torch.cat([x, t.expand_as(x)], -1))

    def g(self, t, x):
        return self.diffusion(torch.cat([x, t.expand_as(x)], -1))

    def sdeint(self, x0, bm):
        x, xs = x0, [x0]
        for k in range(bm.shape[1]):
            t = torch.full((1, 1), k * dt)
            x = x + self.f(t, x) * dt + self.g(t, x) * bm[:, k : k + 1]
            xs.append(x)
        return torch.cat(xs, 1)


sde = NeuralSDE()
W = reference_weights(sde)
with torch.no_grad():
    for n, p in sde.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.Adam(sde.parameters(), lr=1e-2)
bm = torch.from_numpy((rng.standard_normal((N, T)) * math.sqrt(dt)).astype(np.float32))
target_mean, target_std = paths.mean(0), paths.std(0)
mm = []
for it in range(15):
    gen = sde.sdeint(x0.unsqueeze(1), bm)
    loss = ((gen.mean(0) - target_mean) ** 2).mean() + ((gen.std(0) - target_std) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(sde.parameters(), 5.0)
    opt.step()
    mm.append(loss.item())
results["moment_losses"] = mm

# 3. Milstein vs Euler on geometric Brownian motion dX = a X dt + b X dW
a, b = 0.3, 0.6


def sigma_fn(x):
    return b * x


def milstein_step(x, dw):
    x = x.detach().requires_grad_(True)
    s = sigma_fn(x)
    (ds,) = torch.autograd.grad(s.sum(), x, create_graph=True)
    return (x + a * x * dt + s * dw + 0.5 * s * ds * (dw**2 - dt)).detach()


gbm_dw = torch.from_numpy((rng.standard_normal((64, 10)) * math.sqrt(dt)).astype(np.float32))
xe = xm = torch.ones(64)
for k in range(10):
    xe = xe + a * xe * dt + sigma_fn(xe) * gbm_dw[:, k]
    xm = milstein_step(xm, gbm_dw[:, k])
exact = torch.exp((a - 0.5 * b**2) * 10 * dt + b * gbm_dw.sum(1))
results["euler_err"] = (xe - exact).abs().mean().item()
results["milstein_err"] = (xm - exact).abs().mean().item()

# 4. Ito -> Stratonovich drift: f - 0.5 g dg/dx, and the latent SDE path KL
x = paths[:, :-1].reshape(-1, 1).clone().requires_grad_(True)
t0 = torch.zeros(1, 1)
g = sde.g(t0, x)
(dg,) = torch.autograd.grad(g.sum(), x, create_graph=True)
strat = sde.f(t0, x) - 0.5 * g * dg
results["strat_drift"] = strat[:5, 0].tolist()
prior_drift = theta_true * (mu_true - x)
u = (sde.f(t0, x) - prior_drift) / g
kl = 0.5 * (u**2).sum() * dt / N
kl.backward()
results["path_kl"] = kl.item()
results["kl_grad_norm"] = sum(p.grad.norm() ** 2 for p in sde.parameters()).sqrt().item()
report(**results)
