# Goal-conditioned DDPG with hindsight experience replay as the OpenAI-baselines-style PyTorch
# ports write it (our own condensed rewrite): a 2-D point-mass "reach" environment in NumPy, the
# observation / goal normaliser with running sums and clip ranges (np.clip of (x - mean) / std),
# an actor with tanh outputs scaled by max_action and a critic on cat([obs, goal, action /
# max_action]), target networks made by load_state_dict and soft-updated with
# target_param.data.copy_((1 - polyak) * param.data + polyak * target_param.data), episode
# buffers of shape (T + 1, dim), HER's "future" relabelling (future offsets from NumPy, rewards
# recomputed by -(distance > threshold)), target Q clipped by torch.clamp(target_q, -clip_return,
# 0), actor loss -Q plus an action L2 penalty, the critic by (target - q).pow(2).mean(), Adam for
# both, gradient clipping by value, exploration noise and random actions from NumPy, and the
# success rate of a deterministic evaluation rollout.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2208)
T, MAX_ACTION, THRESH = 10, 1.0, 0.15
OBS, GOAL, ACT = 4, 2, 2


def env_reset():
    pos = rng.uniform(-1, 1, 2)
    goal = rng.uniform(-1, 1, 2)
    return np.concatenate([pos, np.zeros(2)]), goal


def env_step(obs, a):
    vel = 0.5 * obs[2:] + 0.2 * np.clip(a, -1, 1)
    pos = np.clip(obs[:2] + vel, -1.2, 1.2)
    return np.concatenate([pos, vel])


def compute_reward(achieved, goal):
    d = np.linalg.norm(achieved - goal, axis=-1)
    return -(d > THRESH).astype(np.float32)


class Normalizer:
    def __init__(self, size, eps=1e-2, clip_range=5.0):
        self.size, self.eps, self.clip_range = size, eps, clip_range
        self.total_sum = np.zeros(size, np.float32)
        self.total_sumsq = np.zeros(size, np.float32)
        self.total_count = np.ones(1, np.float32)
        self.mean = np.zeros(size, np.float32)
        self.std = np.ones(size, np.float32)

    def update(self, v):
        v = v.reshape(-1, self.size)
        self.total_sum += v.sum(axis=0)
        self.total_sumsq += np.square(v).sum(axis=0)
        self.total_count[0] += v.shape[0]
        self.mean = self.total_sum / self.total_count
        self.std = np.sqrt(
            np.maximum(
                np.square(self.eps),
                self.total_sumsq / self.total_count - np.square(self.total_sum / self.total_count),
            )
        )

    def normalize(self, v):
        return np.clip((v - self.mean) / self.std, -self.clip_range, self.clip_range)


class Actor(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(OBS + GOAL, 32)
        self.fc2 = nn.Linear(32, 32)
        self.action_out = nn.Linear(32, ACT)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return MAX_ACTION * torch.tanh(self.action_out(x))


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(OBS + GOAL + ACT, 32)
        self.fc2 = nn.Linear(32, 32)
        self.q_out = nn.Linear(32, 1)

    def forward(self, x, actions):
        x = torch.cat([x, actions / MAX_ACTION], dim=1)
        x = torch.tanh(self.fc1(x))
        x = torch.tanh(self.fc2(x))
        return self.q_out(x)


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


actor, critic = load(Actor()), load(Critic())
actor_target, critic_target = Actor(), Critic()
actor_target.load_state_dict(actor.state_dict())
critic_target.load_state_dict(critic.state_dict())
actor_optim = torch.optim.Adam(actor.parameters(), lr=1e-3)
critic_optim = torch.optim.Adam(critic.parameters(), lr=1e-3)
o_norm, g_norm = Normalizer(OBS), Normalizer(GOAL)
gamma, polyak, clip_return, action_l2 = 0.98, 0.95, 1.0 / (1.0 - 0.98), 1.0
buffers = {"obs": [], "ag": [], "g": [], "actions": []}


def preproc_inputs(obs, g):
    inputs = np.concatenate([o_norm.normalize(obs), g_norm.normalize(g)], axis=-1)
    return torch.tensor(inputs, dtype=torch.float32)


def rollout(explore=True):
    obs, g = env_reset()
    ep_obs, ep_ag, ep_actions = [], [], []
    for t in range(T):
        with torch.no_grad():
            action = actor(preproc_inputs(obs[None], g[None]))[0].numpy()
        if explore:
            action = np.clip(
                action + 0.2 * MAX_ACTION * rng.standard_normal(ACT), -MAX_ACTION, MAX_ACTION
            )
            if rng.uniform() < 0.3:
                action = rng.uniform(-MAX_ACTION, MAX_ACTION, ACT)
        ep_obs.append(obs)
        ep_ag.append(obs[:2])
        ep_actions.append(action)
        obs = env_step(obs, action)
    ep_obs.append(obs)
    ep_ag.append(obs[:2])
    return np.array(ep_obs), np.array(ep_ag), np.repeat(g[None], T, 0), np.array(ep_actions)


def sample_her_transitions(batch_size, future_p=0.8):
    n_eps = len(buffers["obs"])
    ep_idx = rng.integers(0, n_eps, batch_size)
    t_samples = rng.integers(0, T, batch_size)
    obs = np.stack([buffers["obs"][e][t] for e, t in zip(ep_idx, t_samples)])
    obs_next = np.stack([buffers["obs"][e][t + 1] for e, t in zip(ep_idx, t_samples)])
    ag_next = np.stack([buffers["ag"][e][t + 1] for e, t in zip(ep_idx, t_samples)])
    g = np.stack([buffers["g"][e][t] for e, t in zip(ep_idx, t_samples)])
    actions = np.stack([buffers["actions"][e][t] for e, t in zip(ep_idx, t_samples)])
    her_indexes = np.where(rng.uniform(size=batch_size) < future_p)[0]
    future_offset = (rng.uniform(size=batch_size) * (T - t_samples)).astype(int)
    future_t = (t_samples + 1 + future_offset)[her_indexes]
    g[her_indexes] = np.stack([buffers["ag"][e][t] for e, t in zip(ep_idx[her_indexes], future_t)])
    r = compute_reward(ag_next, g)[:, None]
    return obs, obs_next, g, actions, r


def update_network():
    obs, obs_next, g, actions, r = sample_her_transitions(32)
    inputs_norm_tensor = preproc_inputs(obs, g)
    inputs_next_norm_tensor = preproc_inputs(obs_next, g)
    actions_tensor = torch.tensor(actions, dtype=torch.float32)
    r_tensor = torch.tensor(r, dtype=torch.float32)
    with torch.no_grad():
        actions_next = actor_target(inputs_next_norm_tensor)
        q_next_value = critic_target(inputs_next_norm_tensor, actions_next).detach()
        target_q_value = r_tensor + gamma * q_next_value
        target_q_value = torch.clamp(target_q_value, -clip_return, 0)
    real_q_value = critic(inputs_norm_tensor, actions_tensor)
    critic_loss = (target_q_value - real_q_value).pow(2).mean()
    actions_real = actor(inputs_norm_tensor)
    actor_loss = -critic(inputs_norm_tensor, actions_real).mean()
    actor_loss = actor_loss + action_l2 * (actions_real / MAX_ACTION).pow(2).mean()
    actor_optim.zero_grad()
    actor_loss.backward()
    torch.nn.utils.clip_grad_value_(actor.parameters(), 1.0)
    actor_optim.step()
    critic_optim.zero_grad()
    critic_loss.backward()
    critic_optim.step()
    return actor_loss.item(), critic_loss.item()


def soft_update_target_network(target, source):
    for target_param, param in zip(target.parameters(), source.parameters()):
        target_param.data.copy_((1 - polyak) * param.data + polyak * target_param.data)


log = []
for epoch in range(3):
    for _ in range(2):
        ep_obs, ep_ag, ep_g, ep_actions = rollout()
        buffers["obs"].append(ep_obs)
        buffers["ag"].append(ep_ag)
        buffers["g"].append(ep_g)
        buffers["actions"].append(ep_actions)
        o_norm.update(ep_obs)
        g_norm.update(ep_g)
    for _ in range(4):
        log.append(update_network())
    soft_update_target_network(actor_target, actor)
    soft_update_target_network(critic_target, critic)

successes, final_d = [], []
for _ in range(4):
    ep_obs, ep_ag, ep_g, _ = rollout(explore=False)
    d = float(np.linalg.norm(ep_ag[-1] - ep_g[0]))
    final_d.append(d)
    successes.append(d < THRESH)
report(
    log=log,
    final_d=final_d,
    success_rate=float(np.mean(successes)),
    target_w=actor_target.action_out.weight.flatten()[:6].tolist(),
    o_mean=o_norm.mean.tolist(),
)
