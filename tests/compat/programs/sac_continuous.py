# Soft Actor-Critic (Haarnoja et al. 2018) on a 1-D point-mass task, in the shape of
# spinningup's and CleanRL's sac_continuous_action.py: constants computed with NumPy
# (LOG_STD_MIN = np.log(...) style bounds, target_entropy = -np.prod(action_shape)), a squashed
# Gaussian actor (tanh, log-prob correction with F.softplus, Normal(...).log_prob on rsample-style
# reparameterised draws whose noise comes from NumPy), twin Q networks with torch.min, target
# networks updated in place by Polyak averaging (p_targ.data.mul_(polyak).add_((1 - polyak) * p)),
# a learned temperature log_alpha, and three Adam optimizers.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions.normal import Normal

rng = np.random.default_rng(79)
obs_dim, act_dim = 2, 1
action_shape = (act_dim,)
LOG_STD_MAX = np.log(np.exp(2.0))  # np.float64 constants, as configs computed with NumPy give
LOG_STD_MIN = np.log(np.exp(-5.0))
act_limit = np.float32(1.5)


def mlp(sizes, activation=nn.ReLU, output_activation=nn.Identity):
    layers = []
    for j in range(len(sizes) - 1):
        act = activation if j < len(sizes) - 2 else output_activation
        layers += [nn.Linear(sizes[j], sizes[j + 1]), act()]
    return nn.Sequential(*layers)


class SquashedGaussianMLPActor(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp([obs_dim, 16, 16], nn.ReLU, nn.ReLU)
        self.mu_layer = nn.Linear(16, act_dim)
        self.log_std_layer = nn.Linear(16, act_dim)

    def forward(self, obs, eps, deterministic=False, with_logprob=True):
        net_out = self.net(obs)
        mu = self.mu_layer(net_out)
        log_std = self.log_std_layer(net_out)
        log_std = torch.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX)
        std = torch.exp(log_std)
        pi_distribution = Normal(mu, std)
        pi_action = mu if deterministic else mu + std * eps  # rsample with NumPy noise
        if with_logprob:
            logp_pi = pi_distribution.log_prob(pi_action).sum(axis=-1)
            logp_pi -= (2 * (np.log(2) - pi_action - F.softplus(-2 * pi_action))).sum(axis=1)
        else:
            logp_pi = None
        pi_action = torch.tanh(pi_action)
        return act_limit * pi_action, logp_pi


class MLPQFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = mlp([obs_dim + act_dim, 16, 16, 1], nn.ReLU)

    def forward(self, obs, act):
        q = self.q(torch.cat([obs, act], dim=-1))
        return torch.squeeze(q, -1)


def load(model):
    W = reference_weights(model)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
    return model


pi = load(SquashedGaussianMLPActor())
q1, q2 = load(MLPQFunction()), load(MLPQFunction())
q1_targ, q2_targ = load(MLPQFunction()), load(MLPQFunction())
q1_targ.load_state_dict(q1.state_dict())
q2_targ.load_state_dict(q2.state_dict())
for p in list(q1_targ.parameters()) + list(q2_targ.parameters()):
    p.requires_grad = False
log_alpha = torch.zeros(1, requires_grad=True)
target_entropy = -np.prod(action_shape)  # a NumPy int64, as in spinningup
pi_optimizer = torch.optim.Adam(pi.parameters(), lr=3e-3)
q_optimizer = torch.optim.Adam(list(q1.parameters()) + list(q2.parameters()), lr=3e-3)
a_optimizer = torch.optim.Adam([log_alpha], lr=3e-3)
gamma, polyak = 0.9, 0.95


def env_step(o, a):
    # a point on a line pushed by the action; reward for staying near 1.0
    o2 = np.array([np.clip(o[0] + 0.3 * a[0], -2, 2), o[0]], dtype=np.float32)
    return o2, float(-abs(o2[0] - 1.0)), False


buffer, o = [], np.zeros(obs_dim, dtype=np.float32)
stats = []
for t in range(40):
    with torch.no_grad():
        eps = torch.from_numpy(rng.standard_normal((1, act_dim)).astype(np.float32))
        a = pi(torch.as_tensor(o, dtype=torch.float32)[None], eps)[0][0].numpy()
    o2, r, d = env_step(o, a)
    buffer.append((o, a, r, o2, d))
    o = o2
    if len(buffer) < 8:
        continue
    idx = rng.choice(len(buffer), 8, replace=False)
    data = {
        "obs": torch.as_tensor(np.stack([buffer[i][0] for i in idx])),
        "act": torch.as_tensor(np.stack([buffer[i][1] for i in idx])),
        "rew": torch.as_tensor(np.array([buffer[i][2] for i in idx], dtype=np.float32)),
        "obs2": torch.as_tensor(np.stack([buffer[i][3] for i in idx])),
        "done": torch.as_tensor(np.array([buffer[i][4] for i in idx], dtype=np.float32)),
    }
    alpha = log_alpha.exp().detach()
    # Q update
    q1_v, q2_v = q1(data["obs"], data["act"]), q2(data["obs"], data["act"])
    with torch.no_grad():
        eps2 = torch.from_numpy(rng.standard_normal((8, act_dim)).astype(np.float32))
        a2, logp_a2 = pi(data["obs2"], eps2)
        q_pi_targ = torch.min(q1_targ(data["obs2"], a2), q2_targ(data["obs2"], a2))
        backup = data["rew"] + gamma * (1 - data["done"]) * (q_pi_targ - alpha * logp_a2)
    loss_q = ((q1_v - backup) ** 2).mean() + ((q2_v - backup) ** 2).mean()
    q_optimizer.zero_grad()
    loss_q.backward()
    q_optimizer.step()
    # policy update, Q networks frozen
    for p in list(q1.parameters()) + list(q2.parameters()):
        p.requires_grad = False
    eps3 = torch.from_numpy(rng.standard_normal((8, act_dim)).astype(np.float32))
    pi_a, logp_pi = pi(data["obs"], eps3)
    q_pi = torch.min(q1(data["obs"], pi_a), q2(data["obs"], pi_a))
    loss_pi = (alpha * logp_pi - q_pi).mean()
    pi_optimizer.zero_grad()
    loss_pi.backward()
    pi_optimizer.step()
    for p in list(q1.parameters()) + list(q2.parameters()):
        p.requires_grad = True
    # temperature
    alpha_loss = (-log_alpha.exp() * (logp_pi.detach() + target_entropy)).mean()
    a_optimizer.zero_grad()
    alpha_loss.backward()
    a_optimizer.step()
    with torch.no_grad():
        for net, targ in ((q1, q1_targ), (q2, q2_targ)):
            for p, p_targ in zip(net.parameters(), targ.parameters()):
                p_targ.data.mul_(polyak)
                p_targ.data.add_((1 - polyak) * p.data)
    stats.append([loss_q.item(), loss_pi.item(), alpha_loss.item(), log_alpha.item()])

with torch.no_grad():
    det, _ = pi(
        torch.tensor([[0.0, 0.0], [1.0, 1.0]]), None, deterministic=True, with_logprob=False
    )
report(
    stats=stats,
    det=det.flatten().tolist(),
    det_dtype=str(det.dtype).split(".")[-1],
    logp_dtype=str(logp_pi.dtype).split(".")[-1],
    target_q=q1_targ(torch.zeros(1, 2), torch.zeros(1, 1)).item(),
)
