# CleanRL's ppo.py as written (condensed: a vectorised NumPy corridor environment instead of
# gym, actions drawn by NumPy from the policy's probabilities): layer_init with
# torch.nn.init.orthogonal_(layer.weight, std) and constant_(bias) (then overwritten by the
# shared weights), an Agent with get_value / get_action_and_value (Categorical(logits=...),
# log_prob, entropy), rollout storage by torch.zeros((num_steps, num_envs) + shape), the lr
# annealed by `optimizer.param_groups[0]["lr"] = lrnow`, GAE with nextnonterminal /
# nextvalues walked backwards, flattened batches, minibatches by a NumPy permutation, the
# ratio by logratio.exp(), approx_kl = ((ratio - 1) - logratio).mean() and clipfracs under
# no_grad, advantage normalisation, the clipped surrogate by torch.max(pg_loss1, pg_loss2),
# the clipped value loss, an entropy bonus, clip_grad_norm_(0.5), Adam(eps=1e-5), and the
# explained variance by np.var.
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim
from compat_helpers import reference_weights, report
from torch.distributions.categorical import Categorical

rng = np.random.default_rng(3838)
num_envs, num_steps, obs_dim, n_actions = 4, 16, 5, 3
num_minibatches, update_epochs, total_updates = 4, 2, 3
gamma, gae_lambda, clip_coef, ent_coef, vf_coef, max_grad_norm = 0.99, 0.95, 0.2, 0.01, 0.5, 0.5
learning_rate = 2.5e-3


class Corridor:
    def __init__(self, n):
        self.n = n
        self.pos = np.zeros(n, dtype=np.int64)
        self.t = np.zeros(n, dtype=np.int64)

    def obs(self):
        o = np.zeros((self.n, obs_dim), dtype=np.float32)
        o[np.arange(self.n), self.pos] = 1.0
        return o

    def step(self, a):
        self.pos = np.clip(self.pos + (a == 2) - (a == 0), 0, obs_dim - 1)
        self.t += 1
        reward = (self.pos == obs_dim - 1).astype(np.float32) - 0.01
        done = (self.pos == obs_dim - 1) | (self.t >= 12)
        self.pos[done] = 0
        self.t[done] = 0
        return self.obs(), reward, done


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):  # noqa: B008 - as CleanRL writes it
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 16)), nn.Tanh(),
            layer_init(nn.Linear(16, 16)), nn.Tanh(),
            layer_init(nn.Linear(16, 1), std=1.0),
        )  # fmt: skip
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, 16)), nn.Tanh(),
            layer_init(nn.Linear(16, 16)), nn.Tanh(),
            layer_init(nn.Linear(16, n_actions), std=0.01),
        )  # fmt: skip

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            p = probs.probs.detach().numpy().astype(np.float64)
            u = rng.uniform(size=(p.shape[0], 1))
            action = torch.from_numpy((u > np.cumsum(p, 1)).sum(1).clip(0, n_actions - 1))
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


agent = Agent()
W = reference_weights(agent)
with torch.no_grad():
    for name, p in agent.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
optimizer = optim.Adam(agent.parameters(), lr=learning_rate, eps=1e-5)
obs = torch.zeros((num_steps, num_envs) + (obs_dim,))
actions = torch.zeros((num_steps, num_envs))
logprobs = torch.zeros((num_steps, num_envs))
rewards = torch.zeros((num_steps, num_envs))
dones = torch.zeros((num_steps, num_envs))
values = torch.zeros((num_steps, num_envs))
envs = Corridor(num_envs)
next_obs = torch.Tensor(envs.obs())
next_done = torch.zeros(num_envs)
batch_size = num_envs * num_steps
minibatch_size = batch_size // num_minibatches
log = []
for update in range(1, total_updates + 1):
    frac = 1.0 - (update - 1.0) / total_updates
    lrnow = frac * learning_rate
    optimizer.param_groups[0]["lr"] = lrnow
    for step in range(0, num_steps):
        obs[step] = next_obs
        dones[step] = next_done
        with torch.no_grad():
            action, logprob, _, value = agent.get_action_and_value(next_obs)
            values[step] = value.flatten()
        actions[step] = action
        logprobs[step] = logprob
        next_obs, reward, done = envs.step(action.numpy())
        rewards[step] = torch.tensor(reward).view(-1)
        next_obs, next_done = torch.Tensor(next_obs), torch.Tensor(done)
    with torch.no_grad():
        next_value = agent.get_value(next_obs).reshape(1, -1)
        advantages = torch.zeros_like(rewards)
        lastgaelam = 0
        for t in reversed(range(num_steps)):
            if t == num_steps - 1:
                nextnonterminal = 1.0 - next_done
                nextvalues = next_value
            else:
                nextnonterminal = 1.0 - dones[t + 1]
                nextvalues = values[t + 1]
            delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
            advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        returns = advantages + values
    b_obs = obs.reshape((-1,) + (obs_dim,))
    b_logprobs = logprobs.reshape(-1)
    b_actions = actions.reshape(-1)
    b_advantages = advantages.reshape(-1)
    b_returns = returns.reshape(-1)
    b_values = values.reshape(-1)
    b_inds = np.arange(batch_size)
    clipfracs = []
    for epoch in range(update_epochs):
        b_inds = rng.permutation(b_inds)
        for start in range(0, batch_size, minibatch_size):
            end = start + minibatch_size
            mb_inds = b_inds[start:end]
            _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                b_obs[mb_inds], b_actions.long()[mb_inds]
            )
            logratio = newlogprob - b_logprobs[mb_inds]
            ratio = logratio.exp()
            with torch.no_grad():
                old_approx_kl = (-logratio).mean()
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfracs += [((ratio - 1.0).abs() > clip_coef).float().mean().item()]
            mb_advantages = b_advantages[mb_inds]
            mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
            pg_loss1 = -mb_advantages * ratio
            pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
            pg_loss = torch.max(pg_loss1, pg_loss2).mean()
            newvalue = newvalue.view(-1)
            v_loss_unclipped = (newvalue - b_returns[mb_inds]) ** 2
            v_clipped = b_values[mb_inds] + torch.clamp(
                newvalue - b_values[mb_inds], -clip_coef, clip_coef
            )
            v_loss_clipped = (v_clipped - b_returns[mb_inds]) ** 2
            v_loss_max = torch.max(v_loss_unclipped, v_loss_clipped)
            v_loss = 0.5 * v_loss_max.mean()
            entropy_loss = entropy.mean()
            loss = pg_loss - ent_coef * entropy_loss + v_loss * vf_coef
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), max_grad_norm)
            optimizer.step()
    y_pred, y_true = b_values.cpu().numpy(), b_returns.cpu().numpy()
    var_y = np.var(y_true)
    explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
    log.append({
        "lr": optimizer.param_groups[0]["lr"],
        "value_loss": v_loss.item(),
        "policy_loss": pg_loss.item(),
        "entropy": entropy_loss.item(),
        "old_approx_kl": old_approx_kl.item(),
        "approx_kl": approx_kl.item(),
        "clipfrac": float(np.mean(clipfracs)),
        "explained_variance": float(explained_var),
        "reward_sum": rewards.sum().item(),
    })  # fmt: skip
report(log=log)
