# Advantage actor-critic on CartPole with the environment itself written in torch (a batched
# vectorised env as in the "CartPole in PyTorch" tutorials and gymnax-style code): the
# classic-control equations of motion on a (N, 4) state tensor, termination by angle and
# position thresholds with automatic resets to NumPy-drawn states via torch.where, an actor
# and a critic sharing a trunk, actions sampled by comparing NumPy uniforms with the policy's
# cumulative probabilities (so both libraries act the same), n-step rollouts, generalised
# advantage estimation computed backwards with masks, the policy-gradient, value and entropy
# terms, RMSprop as in the A2C paper, clip_grad_norm_, and episode returns tracked per env.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(101)


class CartPoleVec:
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, n):
        self.n = n
        self.total_mass = self.masspole + self.masscart
        self.polemass_length = self.masspole * self.length
        self.state = self._reset_states()
        self.ep_return = torch.zeros(n)

    def _reset_states(self):
        return torch.from_numpy(rng.uniform(-0.05, 0.05, (self.n, 4)).astype(np.float32))

    def step(self, action):
        x, x_dot, theta, theta_dot = self.state.unbind(1)
        force = torch.where(action == 1, self.force_mag, -self.force_mag)
        costheta, sintheta = torch.cos(theta), torch.sin(theta)
        temp = (force + self.polemass_length * theta_dot**2 * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta**2 / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        x = x + self.tau * x_dot
        x_dot = x_dot + self.tau * xacc
        theta = theta + self.tau * theta_dot
        theta_dot = theta_dot + self.tau * thetaacc
        new_state = torch.stack([x, x_dot, theta, theta_dot], 1)
        done = (x.abs() > self.x_threshold) | (theta.abs() > self.theta_threshold)
        reward = torch.ones(self.n)
        self.ep_return += reward
        finished = self.ep_return[done].tolist()
        self.ep_return[done] = 0
        self.state = torch.where(done.unsqueeze(1), self._reset_states(), new_state)
        return self.state, reward, done.float(), finished


class ActorCritic(nn.Module):
    def __init__(self, hidden=32):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(4, hidden), nn.Tanh())
        self.pi = nn.Linear(hidden, 2)
        self.v = nn.Linear(hidden, 1)

    def forward(self, s):
        h = self.trunk(s)
        return self.pi(h), self.v(h).squeeze(-1)


model = ActorCritic()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
optimizer = torch.optim.RMSprop(model.parameters(), lr=7e-4, alpha=0.99, eps=1e-5)
env = CartPoleVec(8)
gamma, lam, n_steps = 0.99, 0.95, 5
log = {"policy": [], "value": [], "entropy": [], "returns": []}
state = env.state
for update in range(12):
    logps, values, rewards, masks, entropies = [], [], [], [], []
    for t in range(n_steps):
        logits, value = model(state)
        probs = F.softmax(logits, -1)
        u = torch.from_numpy(rng.uniform(size=env.n).astype(np.float32))
        action = (u > probs[:, 0]).long()
        logp = F.log_softmax(logits, -1).gather(1, action[:, None]).squeeze(1)
        entropies.append(-(probs * F.log_softmax(logits, -1)).sum(-1))
        state, reward, done, finished = env.step(action)
        log["returns"] += finished
        logps.append(logp), values.append(value), rewards.append(reward)
        masks.append(1 - done)
    with torch.no_grad():
        _, next_value = model(state)
    advantages, gae = [], torch.zeros(env.n)
    values_d = [v.detach() for v in values] + [next_value]
    for t in reversed(range(n_steps)):
        delta = rewards[t] + gamma * values_d[t + 1] * masks[t] - values_d[t]
        gae = delta + gamma * lam * masks[t] * gae
        advantages.insert(0, gae)
    adv = torch.stack(advantages)
    returns = adv + torch.stack(values_d[:-1])
    policy_loss = -(torch.stack(logps) * adv).mean()
    value_loss = F.mse_loss(torch.stack(values), returns)
    entropy = torch.stack(entropies).mean()
    loss = policy_loss + 0.5 * value_loss - 0.01 * entropy
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 0.5)
    optimizer.step()
    log["policy"].append(policy_loss.item())
    log["value"].append(value_loss.item())
    log["entropy"].append(entropy.item())
log["final_state"] = env.state[0].tolist()
report(**log)
