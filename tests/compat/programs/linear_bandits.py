# Contextual bandits in float64 as tutorials write them with torch tensors: disjoint LinUCB
# (Li et al. 2010) with per-arm A matrices updated by outer products and their inverses kept by
# Sherman-Morrison (checked against torch.linalg.inv), upper confidence bounds by a quadratic
# form through einsum; linear Thompson sampling with a Bayesian posterior sampled through
# cholesky and NumPy normals; epsilon-greedy with NumPy uniforms; a neural-linear bandit (an MLP
# feature extractor trained by Adam on the observed rewards, a Bayesian last layer through
# torch.linalg.solve); cumulative regret for each.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(37)
K, d, T = 4, 5, 60
theta_true = torch.from_numpy(rng.standard_normal((K, d)) / np.sqrt(d))
contexts = torch.from_numpy(rng.standard_normal((T, d)))
noise = torch.from_numpy(rng.standard_normal((T, K)) * 0.1)


def reward(t, arm):
    return (contexts[t] @ theta_true[arm] + noise[t, arm]).item()


def best(t):
    return (theta_true @ contexts[t]).max().item()


results = {}

# LinUCB with Sherman-Morrison inverses
alpha = 0.5
A_inv = torch.eye(d).repeat(K, 1, 1)
b = torch.zeros(K, d)
regret, arms = [], []
for t in range(T):
    x = contexts[t]
    theta = torch.einsum("kij,kj->ki", A_inv, b)
    ucb = theta @ x + alpha * torch.sqrt(torch.einsum("i,kij,j->k", x, A_inv, x))
    arm = int(torch.argmax(ucb))
    r = reward(t, arm)
    Ax = A_inv[arm] @ x
    A_inv[arm] -= torch.outer(Ax, Ax) / (1 + x @ Ax)
    b[arm] += r * x
    regret.append(best(t) - (theta_true[arm] @ x).item())
    arms.append(arm)
A_direct = torch.eye(d) + sum(
    torch.outer(contexts[t], contexts[t]) for t in range(T) if arms[t] == arms[-1]
)
results["sm_vs_inv"] = (A_inv[arms[-1]] - torch.linalg.inv(A_direct)).abs().max().item() < 1e-10
results["linucb_regret"] = np.cumsum(regret)[::10].tolist()
results["linucb_arms"] = arms

# linear Thompson sampling (Gaussian prior, known noise)
v2 = 0.1
prec = torch.eye(d).repeat(K, 1, 1)
f = torch.zeros(K, d)
z = torch.from_numpy(rng.standard_normal((T, K, d)))
ts_regret, ts_arms = [], []
for t in range(T):
    x = contexts[t]
    cov = torch.linalg.inv(prec)
    mean = torch.einsum("kij,kj->ki", cov, f)
    L = torch.linalg.cholesky(v2 * cov)
    samples = mean + torch.einsum("kij,kj->ki", L, z[t])
    arm = int(torch.argmax(samples @ x))
    r = reward(t, arm)
    prec[arm] += torch.outer(x, x)
    f[arm] += r * x
    ts_regret.append(best(t) - (theta_true[arm] @ x).item())
    ts_arms.append(arm)
results["ts_regret"] = np.cumsum(ts_regret)[::10].tolist()
results["ts_arms"] = ts_arms

# epsilon-greedy on running means
u = rng.uniform(size=T)
choice = rng.integers(0, K, T)
counts, sums = torch.zeros(K), torch.zeros(K)
eg = []
for t in range(T):
    arm = int(choice[t]) if u[t] < 0.2 else int(torch.argmax(sums / counts.clamp(min=1)))
    counts[arm] += 1
    sums[arm] += reward(t, arm)
    eg.append(arm)
results["eg_counts"] = counts.tolist()


# neural-linear: features from an MLP, a Bayesian linear head per arm
class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh())
        self.heads = nn.Linear(8, K)

    def forward(self, x):
        return self.net(x)


model = Features()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]).double())
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
hist_x, hist_a, hist_r = [], [], []
nl_regret = []
for t in range(T):
    x = contexts[t]
    with torch.no_grad():
        phi = model(x)
        scores = []
        for k in range(K):
            idx = [i for i, a in enumerate(hist_a) if a == k]
            if idx:
                P = model(torch.stack([hist_x[i] for i in idx]))
                y = torch.tensor([hist_r[i] for i in idx])
                w = torch.linalg.solve(P.T @ P + torch.eye(8), P.T @ y)
            else:
                w = torch.zeros(8)
            scores.append(phi @ w)
    arm = int(torch.argmax(torch.stack(scores))) if t >= K else t
    r = reward(t, arm)
    hist_x.append(x), hist_a.append(arm), hist_r.append(r)
    nl_regret.append(best(t) - (theta_true[arm] @ x).item())
    if t % 10 == 9:
        X = torch.stack(hist_x)
        a_idx = torch.tensor(hist_a)
        y = torch.tensor(hist_r)
        for _ in range(5):
            pred = model.heads(model(X)).gather(1, a_idx[:, None]).squeeze(1)
            loss = ((pred - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
results["neural_linear_regret"] = np.cumsum(nl_regret)[::10].tolist()
results["neural_linear_loss"] = loss.item()
report(**results)
