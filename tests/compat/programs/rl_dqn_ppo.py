# Reinforcement learning in the shape of the PyTorch DQN tutorial and of CleanRL's PPO, on a tiny
# deterministic chain environment written in NumPy (no gym): DQN with a replay buffer sampled by
# NumPy, a target network synced by load_state_dict and soft-updated by Polyak averaging
# (target.mul_(1 - tau).add_(tau * p) and torch.lerp), Q(s, a) by gather, max(1).values of the
# target, SmoothL1Loss, clip_grad_value_, AdamW with amsgrad; then PPO with a shared actor-critic,
# Categorical log_prob / entropy, GAE in a reversed loop, normalised advantages, the clipped
# surrogate with torch.clamp / torch.max, value clipping and minibatches from a NumPy permutation.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions import Categorical

rng = np.random.default_rng(31)
n_states, n_actions = 6, 2


def one_hot_state(s):
    return np.eye(n_states, dtype=np.float32)[s]


def env_step(s, a):
    # a chain: action 1 moves right, 0 moves left; the right end pays 1 and resets
    s2 = min(s + 1, n_states - 1) if a == 1 else max(s - 1, 0)
    done = s2 == n_states - 1
    return (0 if done else s2), (1.0 if done else -0.01), done


def load(model):
    W = reference_weights(model)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
    return model


class DQN(nn.Module):
    def __init__(self, n_observations, n_actions):
        super().__init__()
        self.layer1 = nn.Linear(n_observations, 16)
        self.layer2 = nn.Linear(16, 16)
        self.layer3 = nn.Linear(16, n_actions)

    def forward(self, x):
        x = F.relu(self.layer1(x))
        x = F.relu(self.layer2(x))
        return self.layer3(x)


policy_net = load(DQN(n_states, n_actions))
target_net = DQN(n_states, n_actions)
target_net.load_state_dict(policy_net.state_dict())
optimizer = torch.optim.AdamW(policy_net.parameters(), lr=1e-3, amsgrad=True)
GAMMA, TAU, BATCH = 0.9, 0.05, 16
memory = []
state, dqn_losses, q_snapshots, actions_taken = 0, [], [], []
for step in range(60):
    eps = max(0.05, 0.9 - step / 40)
    if rng.random() < eps:
        action = int(rng.integers(n_actions))
    else:
        with torch.no_grad():
            action = policy_net(torch.from_numpy(one_hot_state(state))[None]).max(1).indices.item()
    actions_taken.append(action)
    next_state, reward, done = env_step(state, action)
    memory.append((state, action, reward, next_state, done))
    state = next_state
    if len(memory) < BATCH:
        continue
    batch = [memory[i] for i in rng.choice(len(memory), BATCH, replace=False)]
    s, a, r, s2, d = zip(*batch)
    state_batch = torch.from_numpy(np.stack([one_hot_state(x) for x in s]))
    action_batch = torch.tensor(a).unsqueeze(1)
    reward_batch = torch.tensor(r, dtype=torch.float32)
    non_final_mask = torch.tensor([not x for x in d], dtype=torch.bool)
    non_final_next = torch.from_numpy(
        np.stack([one_hot_state(x) for x, fin in zip(s2, d) if not fin])
    )
    state_action_values = policy_net(state_batch).gather(1, action_batch)
    next_state_values = torch.zeros(BATCH)
    with torch.no_grad():
        next_state_values[non_final_mask] = target_net(non_final_next).max(1).values
    expected = (next_state_values * GAMMA) + reward_batch
    criterion = nn.SmoothL1Loss()
    loss = criterion(state_action_values, expected.unsqueeze(1))
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(policy_net.parameters(), 100)
    optimizer.step()
    # soft update: θ′ ← τ θ + (1 − τ) θ′
    target_net_state_dict = target_net.state_dict()
    policy_net_state_dict = policy_net.state_dict()
    for key in policy_net_state_dict:
        target_net_state_dict[key] = policy_net_state_dict[key] * TAU + target_net_state_dict[
            key
        ] * (1 - TAU)
    target_net.load_state_dict(target_net_state_dict)
    dqn_losses.append(loss.item())
    if step % 10 == 0:
        with torch.no_grad():
            q_snapshots.append(policy_net(torch.eye(n_states)).tolist())
# the in-place Polyak idiom of SAC/TD3 implementations, and lerp_
with torch.no_grad():
    for p, p_targ in zip(policy_net.parameters(), target_net.parameters()):
        p_targ.data.mul_(0.5)
        p_targ.data.add_(0.5 * p.data)
    for p, p_targ in zip(policy_net.parameters(), target_net.parameters()):
        p_targ.lerp_(p, 0.25)
target_q = target_net(torch.eye(n_states)).tolist()


class ActorCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_states, 16), nn.Tanh())
        self.actor = nn.Linear(16, n_actions)
        self.critic = nn.Linear(16, 1)

    def get_action_and_value(self, x, action=None):
        h = self.body(x)
        probs = Categorical(logits=self.actor(h))
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(h).squeeze(-1)


agent = load(ActorCritic())
opt = torch.optim.Adam(agent.parameters(), lr=3e-3, eps=1e-5)
num_steps, gamma, gae_lambda, clip_coef = 24, 0.95, 0.9, 0.2
ppo_stats = []
state = 0
for update in range(4):
    obs = torch.zeros(num_steps, n_states)
    actions = torch.zeros(num_steps, dtype=torch.long)
    logprobs = torch.zeros(num_steps)
    rewards = torch.zeros(num_steps)
    dones = torch.zeros(num_steps)
    values = torch.zeros(num_steps)
    for t in range(num_steps):
        obs[t] = torch.from_numpy(one_hot_state(state))
        with torch.no_grad():
            h = agent.body(obs[t])
            p = torch.softmax(agent.actor(h), -1).numpy()
            a = int(rng.random() < p[1])  # sample with NumPy so both libraries act alike
            _, logprob, _, value = agent.get_action_and_value(obs[t], torch.tensor(a))
        actions[t], logprobs[t], values[t] = a, logprob, value
        state, r, d = env_step(state, a)
        rewards[t], dones[t] = r, float(d)
    with torch.no_grad():
        next_value = agent.get_action_and_value(torch.from_numpy(one_hot_state(state)))[3]
        advantages = torch.zeros_like(rewards)
        lastgaelam = 0
        for t in reversed(range(num_steps)):
            nextvalues = next_value if t == num_steps - 1 else values[t + 1]
            nextnonterminal = 1.0 - dones[t]
            delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
            advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        returns = advantages + values
    b_inds = np.arange(num_steps)
    for epoch in range(2):
        rng.shuffle(b_inds)
        for start in range(0, num_steps, 8):
            mb = torch.from_numpy(b_inds[start : start + 8])
            _, newlogprob, entropy, newvalue = agent.get_action_and_value(obs[mb], actions[mb])
            logratio = newlogprob - logprobs[mb]
            ratio = logratio.exp()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean().item()
            mb_adv = advantages[mb]
            mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            pg_loss1 = -mb_adv * ratio
            pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
            pg_loss = torch.max(pg_loss1, pg_loss2).mean()
            v_unclipped = (newvalue - returns[mb]) ** 2
            v_clipped = values[mb] + torch.clamp(newvalue - values[mb], -clip_coef, clip_coef)
            v_loss = 0.5 * torch.max(v_unclipped, (v_clipped - returns[mb]) ** 2).mean()
            loss = pg_loss - 0.01 * entropy.mean() + 0.5 * v_loss
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
            opt.step()
            ppo_stats.append([loss.item(), approx_kl.item(), clipfrac, entropy.mean().item()])
report(
    dqn_losses=dqn_losses,
    q_snapshots=q_snapshots,
    actions_taken=actions_taken,
    target_q=target_q,
    ppo_stats=ppo_stats,
    final_probs=torch.softmax(agent.actor(agent.body(torch.eye(n_states))), -1).tolist(),
)
