# Offline reinforcement learning as the CORL-style single-file implementations write it: a
# fixed dataset of transitions from a behaviour policy on a small continuous environment
# (point mass, NumPy), a replay buffer of tensors sampled by NumPy indices; Implicit Q-Learning
# (Kostrikov et al. 2021): twin Q networks with a Polyak-averaged target (copy.deepcopy,
# requires_grad_(False), lerp_ under no_grad), a value network fitted by the asymmetric
# expectile loss |tau - 1(u < 0)| u^2, advantage-weighted regression for the actor (exp of a
# clamped scaled advantage) with a tanh-Gaussian policy's log_prob; TD3+BC's actor loss
# (lambda / mean |Q| normalisation, MSE to dataset actions) and CQL's conservative penalty
# (logsumexp over sampled actions minus dataset Q); CosineAnnealingLR on the actor.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(29)
S, A, N = 3, 2, 256


def env_step(s, a):
    pos, vel = s[:, :2], s[:, 2:3]
    new_pos = pos + 0.1 * a
    r = -np.linalg.norm(new_pos - np.array([1.0, 0.5]), axis=1)
    return np.concatenate([new_pos, vel * 0.9 + 0.1 * a[:, :1]], 1), r


states = rng.uniform(-1, 1, (N, S))
actions = np.clip(
    0.5 * (np.array([1.0, 0.5]) - states[:, :2]) + 0.3 * rng.standard_normal((N, A)), -1, 1
)
next_states, rewards = env_step(states, actions)
dones = (rng.uniform(size=N) < 0.05).astype(np.float32)
buf = [
    torch.tensor(v, dtype=torch.float32)
    for v in (states, actions, rewards[:, None], next_states, dones[:, None])
]


def sample(batch_size=32):
    idx = torch.from_numpy(rng.integers(0, N, batch_size))
    return [b[idx] for b in buf]


def mlp(i, o, h=32):
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, o))


class TwinQ(nn.Module):
    def __init__(self):
        super().__init__()
        self.q1, self.q2 = mlp(S + A, 1), mlp(S + A, 1)

    def both(self, s, a):
        sa = torch.cat([s, a], 1)
        return self.q1(sa), self.q2(sa)

    def forward(self, s, a):
        return torch.min(*self.both(s, a))


class GaussianPolicy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp(S, A)
        self.log_std = nn.Parameter(torch.zeros(A))

    def forward(self, s):
        mean = torch.tanh(self.net(s))
        std = torch.exp(self.log_std.clamp(-5.0, 2.0))
        return torch.distributions.Normal(mean, std)


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


def asymmetric_l2_loss(u, tau):
    return torch.mean(torch.abs(tau - (u < 0).float()) * u**2)


results = {}
# IQL
qf, vf, actor = load(TwinQ()), load(mlp(S, 1)), load(GaussianPolicy())
q_target = copy.deepcopy(qf).requires_grad_(False)
q_opt = torch.optim.Adam(qf.parameters(), lr=3e-3)
v_opt = torch.optim.Adam(vf.parameters(), lr=3e-3)
a_opt = torch.optim.Adam(actor.parameters(), lr=3e-3)
a_sched = torch.optim.lr_scheduler.CosineAnnealingLR(a_opt, 12)
gamma, tau, beta, alpha_ema = 0.99, 0.7, 3.0, 0.05
log = {"v": [], "q": [], "actor": []}
for step in range(12):
    s, a, r, s2, d = sample()
    with torch.no_grad():
        target_q = q_target(s, a)
    v = vf(s)
    adv = target_q - v
    v_loss = asymmetric_l2_loss(adv, tau)
    v_opt.zero_grad(set_to_none=True)
    v_loss.backward()
    v_opt.step()
    with torch.no_grad():
        targets = r + (1.0 - d) * gamma * vf(s2)
    qs = qf.both(s, a)
    q_loss = sum(F.mse_loss(q, targets) for q in qs) / len(qs)
    q_opt.zero_grad(set_to_none=True)
    q_loss.backward()
    q_opt.step()
    with torch.no_grad():
        for p, tp in zip(qf.parameters(), q_target.parameters()):
            tp.lerp_(p, alpha_ema)
    exp_adv = torch.exp(beta * adv.detach()).clamp(max=100.0)
    policy_out = actor(s)
    bc_losses = -policy_out.log_prob(a.clamp(-0.99, 0.99)).sum(-1, keepdim=True)
    policy_loss = torch.mean(exp_adv * bc_losses)
    a_opt.zero_grad(set_to_none=True)
    policy_loss.backward()
    a_opt.step()
    a_sched.step()
    log["v"].append(v_loss.item())
    log["q"].append(q_loss.item())
    log["actor"].append(policy_loss.item())
results["iql"] = log
results["iql_lr"] = a_sched.get_last_lr()[0]
with torch.no_grad():
    s0 = torch.tensor([[0.0, 0.0, 0.0], [0.5, -0.5, 0.1]])
    results["iql_action"] = actor(s0).mean.flatten().tolist()

# TD3+BC actor loss and CQL penalty on the same critic
det_actor = load(nn.Sequential(mlp(S, A), nn.Tanh()))
td3_opt = torch.optim.Adam(det_actor.parameters(), lr=3e-3)
td3 = []
for step in range(8):
    s, a, *_ = sample()
    pi = det_actor(s)
    q = qf.q1(torch.cat([s, pi], 1))
    lmbda = 2.5 / q.abs().mean().detach()
    actor_loss = -lmbda * q.mean() + F.mse_loss(pi, a)
    td3_opt.zero_grad()
    actor_loss.backward()
    td3_opt.step()
    td3.append(actor_loss.item())
results["td3bc"] = td3

s, a, r, s2, d = sample(16)
rand_a = torch.from_numpy(rng.uniform(-1, 1, (10, 16, A)).astype(np.float32))
q_rand = torch.stack([qf.q1(torch.cat([s, rand_a[i]], 1)) for i in range(10)], 1)
q_data = qf.q1(torch.cat([s, a], 1))
cql_penalty = (torch.logsumexp(q_rand - np.log(0.5**A), dim=1) - q_data).mean()
cql_penalty.backward()
results["cql_penalty"] = cql_penalty.item()
results["cql_grad"] = qf.q1[0].weight.grad[0].tolist()
report(**results)
