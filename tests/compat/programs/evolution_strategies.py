# Gradient-free optimisation with tensors, as evolution-strategies code in PyTorch writes it:
# OpenAI-ES on a policy's flattened parameters (parameters_to_vector / vector_to_parameters
# under no_grad, antithetic NumPy noise, centred ranks by argsort of argsort, the gradient
# estimate by noise.t() @ ranks fed to Adam as p.grad), a hand-written CMA-ES in float64
# (weighted recombination, evolution paths, rank-one and rank-mu updates, eigh of the
# covariance, samples through its symmetric root B D B^T, step-size adaptation by the path
# length), the cross-entropy method for model-predictive control with elites by topk and a
# smoothed Gaussian, and a
# (1+1)-ES with the one-fifth rule; all on a cart-like point-mass task and the Rosenbrock
# function. Our own program.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.nn.utils import parameters_to_vector, vector_to_parameters

rng = np.random.default_rng(61)


def rollout(policy, horizon=12):
    """Point mass in 1-D: drive x to 0 with bounded force; return the negative cost."""
    state = torch.tensor([[1.0, 0.0], [-0.5, 0.3], [0.7, -0.4]])
    total = torch.zeros(())
    for _ in range(horizon):
        force = torch.tanh(policy(state)).squeeze(-1)
        vel = state[:, 1] + 0.1 * force
        pos = state[:, 0] + 0.1 * vel
        state = torch.stack([pos, vel], dim=1)
        total = total - (pos.pow(2) + 0.1 * force.pow(2)).sum()
    return total


def centered_ranks(x):
    ranks = torch.argsort(torch.argsort(x)).float()
    return ranks / (x.numel() - 1) - 0.5


policy = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
W = reference_weights(policy)
with torch.no_grad():
    for n, p in policy.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
theta = parameters_to_vector(policy.parameters()).detach().clone().requires_grad_(True)
opt = torch.optim.Adam([theta], lr=0.05)
POP, SIGMA = 10, 0.1
es_log = []
with torch.no_grad():
    for gen in range(8):
        eps = torch.from_numpy(rng.standard_normal((POP // 2, theta.numel())).astype(np.float32))
        eps = torch.cat([eps, -eps])
        fitness = torch.empty(POP)
        for i in range(POP):
            vector_to_parameters(theta + SIGMA * eps[i], policy.parameters())
            fitness[i] = rollout(policy)
        ranks = centered_ranks(fitness)
        grad = -(eps.t() @ ranks) / (POP * SIGMA)
        theta.grad = grad + 0.005 * theta  # l2 as in the OpenAI code
        opt.step()
        vector_to_parameters(theta, policy.parameters())
        es_log.append([fitness.mean().item(), fitness.max().item(), rollout(policy).item()])


# ---- CMA-ES on Rosenbrock (float64)
def rosenbrock(x):
    return (100 * (x[..., 1:] - x[..., :-1] ** 2) ** 2 + (1 - x[..., :-1]) ** 2).sum(-1)


n = 4
lam = 4 + int(3 * math.log(n))
mu = lam // 2
weights = torch.log(torch.tensor(mu + 0.5, dtype=torch.float64)) - torch.log(
    torch.arange(1, mu + 1, dtype=torch.float64)
)
weights = weights / weights.sum()
mueff = (weights.sum() ** 2 / (weights**2).sum()).item()
cc = (4 + mueff / n) / (n + 4 + 2 * mueff / n)
cs = (mueff + 2) / (n + mueff + 5)
c1 = 2 / ((n + 1.3) ** 2 + mueff)
cmu = min(1 - c1, 2 * (mueff - 2 + 1 / mueff) / ((n + 2) ** 2 + mueff))
damps = 1 + 2 * max(0, math.sqrt((mueff - 1) / (n + 1)) - 1) + cs
chiN = n**0.5 * (1 - 1 / (4 * n) + 1 / (21 * n**2))
mean = torch.full((n,), -0.5, dtype=torch.float64)
sigma = 0.3
C = torch.eye(n, dtype=torch.float64)
pc = torch.zeros(n, dtype=torch.float64)
ps = torch.zeros(n, dtype=torch.float64)
cma_log = []
for gen in range(25):
    evals, B = torch.linalg.eigh(C)
    D = evals.clamp(min=1e-20).sqrt()
    z = torch.from_numpy(rng.standard_normal((lam, n)))
    # y = C^(1/2) z by the symmetric root B D B^T: eigh's eigenvectors are fixed only up to sign
    # (pycma's B (D z) samples differently for each sign choice a LAPACK makes)
    y = z @ (B @ torch.diag(D) @ B.T)
    x = mean + sigma * y
    f = rosenbrock(x)
    order = torch.argsort(f)
    y_sel = y[order[:mu]]
    old_mean = mean
    mean = mean + sigma * (weights @ y_sel)
    invsqrtC = B @ torch.diag(1 / D) @ B.T
    ps = (1 - cs) * ps + math.sqrt(cs * (2 - cs) * mueff) * (invsqrtC @ (mean - old_mean)) / sigma
    hsig = float(ps.norm() / math.sqrt(1 - (1 - cs) ** (2 * (gen + 1))) / chiN < 1.4 + 2 / (n + 1))
    pc = (1 - cc) * pc + hsig * math.sqrt(cc * (2 - cc) * mueff) * (mean - old_mean) / sigma
    rank_mu = (weights[:, None, None] * y_sel[:, :, None] * y_sel[:, None, :]).sum(0)
    C = (
        (1 - c1 - cmu) * C
        + c1 * (torch.outer(pc, pc) + (1 - hsig) * cc * (2 - cc) * C)
        + cmu * rank_mu
    )
    C = torch.triu(C) + torch.triu(C, 1).T
    sigma = sigma * math.exp((cs / damps) * (ps.norm().item() / chiN - 1))
    cma_log.append([f.min().item(), sigma])
cma_mean = mean.tolist()
cond = (evals.max() / evals.min()).item()


# ---- CEM for MPC on the point mass: plan 8 force steps from a state
def plan_cost(actions, state):  # actions (P, H)
    pos, vel = state[0].expand(actions.shape[0]), state[1].expand(actions.shape[0])
    cost = torch.zeros(actions.shape[0])
    for t in range(actions.shape[1]):
        vel = vel + 0.1 * actions[:, t]
        pos = pos + 0.1 * vel
        cost = cost + pos**2 + 0.01 * actions[:, t] ** 2
    return cost


state = torch.tensor([1.0, 0.0])
mu_a, std_a = torch.zeros(8), torch.ones(8)
cem_log = []
for it in range(6):
    samples = mu_a + std_a * torch.from_numpy(rng.standard_normal((40, 8)).astype(np.float32))
    samples = samples.clamp(-2, 2)
    costs = plan_cost(samples, state)
    elite_idx = torch.topk(-costs, 6).indices
    elites = samples[elite_idx]
    mu_a = 0.1 * mu_a + 0.9 * elites.mean(0)
    std_a = 0.1 * std_a + 0.9 * elites.std(0, unbiased=True)
    cem_log.append([costs.min().item(), plan_cost(mu_a[None], state).item()])

# ---- (1+1)-ES with the one-fifth success rule
x = torch.tensor([-1.0, 1.5], dtype=torch.float64)
s, fx, one_fifth = 0.5, rosenbrock(torch.tensor([-1.0, 1.5], dtype=torch.float64)).item(), []
for it in range(30):
    cand = x + s * torch.from_numpy(rng.standard_normal(2))
    fc = rosenbrock(cand).item()
    if fc <= fx:
        x, fx = cand, fc
        s *= math.exp(1 / 3)
    else:
        s *= math.exp(-1 / 12)
    one_fifth.append(fx)
report(
    es=es_log,
    cma=cma_log,
    cma_mean=cma_mean,
    cma_cond=cond,
    cem=cem_log,
    cem_plan=mu_a.tolist(),
    one_fifth=one_fifth,
    final_x=x.tolist(),
)
