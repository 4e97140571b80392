# Distributional and Rainbow-style value learning as the DQN-zoo ports write it: NoisyLinear with
# factorised Gaussian noise (f(x) = sign(x) sqrt|x|, weight_epsilon.copy_(epsilon_out.ger(
# epsilon_in)), noise from NumPy so both libraries draw the same), a dueling C51 head
# (softmax over atoms, q = (p * support).sum(2)), the categorical projection of the n-step
# target distribution (clamp, floor / ceil, the offset trick by linspace + expand, index_add_ on
# the flattened distribution), QR-DQN's quantile Huber loss (tau_hat midpoints, |tau - 1{u < 0}|
# weights), IQN's cosine embedding of sampled taus, and a proportional prioritised replay with
# a sum tree, importance weights normalised by their max and priorities updated from the
# per-sample losses. Environment: a 5-state chain with NumPy transitions. Our own program.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)
N_STATES, N_ACT, ATOMS, VMIN, VMAX, GAMMA, NSTEP = 5, 2, 11, -2.0, 4.0, 0.9, 2
BATCH = 16


class NoisyLinear(nn.Module):
    def __init__(self, in_features, out_features, std_init=0.5):
        super(NoisyLinear, self).__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.std_init = std_init
        self.weight_mu = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_sigma = nn.Parameter(torch.empty(out_features, in_features))
        self.register_buffer("weight_epsilon", torch.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(torch.empty(out_features))
        self.bias_sigma = nn.Parameter(torch.empty(out_features))
        self.register_buffer("bias_epsilon", torch.empty(out_features))
        self.reset_parameters()

    def reset_parameters(self):
        mu_range = 1 / math.sqrt(self.in_features)
        self.weight_mu.data.fill_(0.0)
        self.weight_sigma.data.fill_(self.std_init / math.sqrt(self.in_features))
        self.bias_mu.data.fill_(0.0)
        self.bias_sigma.data.fill_(self.std_init / math.sqrt(self.out_features))
        self.mu_range = mu_range

    def _scale_noise(self, size):
        x = torch.from_numpy(rng.standard_normal(size).astype(np.float32))
        return x.sign().mul_(x.abs().sqrt_())

    def reset_noise(self):
        epsilon_in = self._scale_noise(self.in_features)
        epsilon_out = self._scale_noise(self.out_features)
        self.weight_epsilon.copy_(epsilon_out.ger(epsilon_in))
        self.bias_epsilon.copy_(epsilon_out)

    def forward(self, input):
        if self.training:
            return F.linear(
                input,
                self.weight_mu + self.weight_sigma * self.weight_epsilon,
                self.bias_mu + self.bias_sigma * self.bias_epsilon,
            )
        return F.linear(input, self.weight_mu, self.bias_mu)


class RainbowDQN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(N_STATES, 24)
        self.fc_v = NoisyLinear(24, ATOMS)
        self.fc_a = NoisyLinear(24, N_ACT * ATOMS)

    def forward(self, x, log=False):
        x = F.relu(self.fc(x))
        v = self.fc_v(x).view(-1, 1, ATOMS)
        a = self.fc_a(x).view(-1, N_ACT, ATOMS)
        q = v + a - a.mean(1, keepdim=True)
        return F.log_softmax(q, dim=2) if log else F.softmax(q, dim=2)

    def reset_noise(self):
        for name, module in self.named_children():
            if "fc_" in name:
                module.reset_noise()


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith("_sigma"):
                continue
            p.copy_(torch.from_numpy(W[n]))


class SumTree:
    def __init__(self, capacity):
        self.capacity = capacity
        self.tree = np.zeros(2 * capacity - 1)
        self.data = [None] * capacity
        self.write = 0
        self.n = 0

    def _propagate(self, idx, change):
        parent = (idx - 1) // 2
        self.tree[parent] += change
        if parent != 0:
            self._propagate(parent, change)

    def _retrieve(self, idx, s):
        left = 2 * idx + 1
        if left >= len(self.tree):
            return idx
        if s <= self.tree[left]:
            return self._retrieve(left, s)
        return self._retrieve(left + 1, s - self.tree[left])

    def total(self):
        return self.tree[0]

    def add(self, p, data):
        idx = self.write + self.capacity - 1
        self.data[self.write] = data
        self.update(idx, p)
        self.write = (self.write + 1) % self.capacity
        self.n = min(self.n + 1, self.capacity)

    def update(self, idx, p):
        change = p - self.tree[idx]
        self.tree[idx] = p
        self._propagate(idx, change)

    def get(self, s):
        idx = self._retrieve(0, s)
        return idx, self.tree[idx], self.data[idx - self.capacity + 1]


def one_hot_states(s):
    return F.one_hot(torch.as_tensor(s, dtype=torch.long), N_STATES).float()


# a chain: action 1 moves right (reward 1 at the end), action 0 moves left
tree = SumTree(64)
for _ in range(64):
    s = int(rng.integers(0, N_STATES))
    a = int(rng.integers(0, N_ACT))
    ret, s2, done = 0.0, s, False
    for k in range(NSTEP):
        s2 = min(s2 + 1, N_STATES - 1) if a == 1 else max(s2 - 1, 0)
        r = 1.0 if s2 == N_STATES - 1 else -0.1
        ret += (GAMMA**k) * r
        if s2 == N_STATES - 1:
            done = True
            break
    tree.add(1.0, (s, a, ret, s2, float(done)))

online, target = RainbowDQN(), RainbowDQN()
load(online)
target.load_state_dict(online.state_dict())
support = torch.linspace(VMIN, VMAX, ATOMS)
delta_z = (VMAX - VMIN) / (ATOMS - 1)
opt = torch.optim.Adam(online.parameters(), lr=5e-3, eps=1.5e-4)
c51_losses, priorities_hist = [], []
beta = 0.4
for step in range(12):
    online.reset_noise()
    target.reset_noise()
    segment = tree.total() / BATCH
    idxs, prios, batch = [], [], []
    for i in range(BATCH):
        s_ = rng.uniform(segment * i, segment * (i + 1))
        idx, p, data = tree.get(s_)
        idxs.append(idx)
        prios.append(p)
        batch.append(data)
    probs = np.array(prios) / tree.total()
    weights = (tree.n * probs) ** (-beta)
    weights = torch.tensor(weights / weights.max(), dtype=torch.float32)
    s, a, R, s2, d = zip(*batch)
    s, s2 = one_hot_states(s), one_hot_states(s2)
    a = torch.tensor(a)
    R = torch.tensor(R, dtype=torch.float32)
    d = torch.tensor(d)
    log_p = online(s, log=True)
    log_p_a = log_p[range(BATCH), a]
    with torch.no_grad():
        pns = online(s2)
        dns = support.expand_as(pns) * pns
        argmax_indices_ns = dns.sum(2).argmax(1)
        pns = target(s2)
        pns_a = pns[range(BATCH), argmax_indices_ns]
        Tz = R.unsqueeze(1) + (1 - d).unsqueeze(1) * (GAMMA**NSTEP) * support.unsqueeze(0)
        Tz = Tz.clamp(min=VMIN, max=VMAX)
        b = (Tz - VMIN) / delta_z
        l, u = b.floor().to(torch.int64), b.ceil().to(torch.int64)
        l[(u > 0) * (l == u)] -= 1
        u[(l < (ATOMS - 1)) * (l == u)] += 1
        m = s.new_zeros(BATCH, ATOMS)
        offset = (
            torch.linspace(0, ((BATCH - 1) * ATOMS), BATCH).unsqueeze(1).expand(BATCH, ATOMS).to(a)
        )
        m.view(-1).index_add_(0, (l + offset).view(-1), (pns_a * (u.float() - b)).view(-1))
        m.view(-1).index_add_(0, (u + offset).view(-1), (pns_a * (b - l.float())).view(-1))
    loss = -torch.sum(m * log_p_a, 1)
    opt.zero_grad()
    (weights * loss).mean().backward()
    torch.nn.utils.clip_grad_norm_(online.parameters(), 10.0)
    opt.step()
    for idx, l_ in zip(idxs, loss.detach().numpy()):
        tree.update(idx, float(l_) ** 0.5 + 1e-6)
    c51_losses.append(loss.mean().item())
    priorities_hist.append(float(tree.total()))
    if step % 4 == 3:
        target.load_state_dict(online.state_dict())
    beta = min(1.0, beta + 0.05)
online.eval()
with torch.no_grad():
    q_eval = (online(one_hot_states(list(range(N_STATES)))) * support).sum(2)


# ---- QR-DQN and IQN quantile Huber losses
def quantile_huber_loss(pred, target, taus, kappa=1.0):
    # pred: (B, N), target: (B, N'), taus: (B, N)
    u = target.unsqueeze(1) - pred.unsqueeze(2)
    huber = torch.where(u.abs() <= kappa, 0.5 * u.pow(2), kappa * (u.abs() - 0.5 * kappa))
    weight = torch.abs(taus.unsqueeze(2) - (u.detach() < 0).float())
    return (weight * huber / kappa).sum(1).mean(1)


class IQN(nn.Module):
    def __init__(self, n_cos=16):
        super().__init__()
        self.n_cos = n_cos
        self.register_buffer(
            "pis", torch.FloatTensor([np.pi * i for i in range(1, n_cos + 1)]).view(1, 1, n_cos)
        )
        self.body = nn.Linear(N_STATES, 24)
        self.cos_embedding = nn.Linear(n_cos, 24)
        self.head = nn.Linear(24, N_ACT)

    def forward(self, x, taus):
        h = F.relu(self.body(x))  # (B, H)
        cos = torch.cos(taus.unsqueeze(-1) * self.pis)  # (B, N, n_cos)
        phi = F.relu(self.cos_embedding(cos))
        return self.head(h.unsqueeze(1) * phi)  # (B, N, A)


NQ = 8
qr = nn.Sequential(nn.Linear(N_STATES, 24), nn.ReLU(), nn.Linear(24, N_ACT * NQ))
load(qr)
iqn = IQN()
load(iqn)
opt_q = torch.optim.Adam(list(qr.parameters()) + list(iqn.parameters()), lr=3e-3)
tau_hat = ((torch.arange(NQ, dtype=torch.float32) + 0.5) / NQ).unsqueeze(0).expand(BATCH, NQ)
qr_losses, iqn_losses = [], []
for step in range(10):
    sel = rng.integers(0, 64, size=BATCH)
    s, a, R, s2, d = zip(*[tree.data[i] for i in sel])
    s, s2 = one_hot_states(s), one_hot_states(s2)
    a = torch.tensor(a)
    R = torch.tensor(R, dtype=torch.float32).unsqueeze(1)
    d = torch.tensor(d, dtype=torch.float32).unsqueeze(1)
    theta = qr(s).view(BATCH, N_ACT, NQ)
    theta_a = theta.gather(1, a.view(-1, 1, 1).expand(BATCH, 1, NQ)).squeeze(1)
    with torch.no_grad():
        nxt = qr(s2).view(BATCH, N_ACT, NQ)
        a2 = nxt.mean(2).argmax(1)
        target_q = R + (1 - d) * GAMMA**NSTEP * nxt[torch.arange(BATCH), a2]
    l_qr = quantile_huber_loss(theta_a, target_q, tau_hat).mean()
    taus = torch.from_numpy(rng.uniform(size=(BATCH, NQ)).astype(np.float32))
    taus2 = torch.from_numpy(rng.uniform(size=(BATCH, NQ)).astype(np.float32))
    z = iqn(s, taus)  # (B, N, A)
    z_a = z.gather(2, a.view(-1, 1, 1).expand(BATCH, NQ, 1)).squeeze(2)
    with torch.no_grad():
        z2 = iqn(s2, taus2)
        a2 = z2.mean(1).argmax(1)
        tgt = R + (1 - d) * GAMMA**NSTEP * z2[torch.arange(BATCH), :, a2]
    l_iqn = quantile_huber_loss(z_a, tgt, taus).mean()
    opt_q.zero_grad()
    (l_qr + l_iqn).backward()
    opt_q.step()
    qr_losses.append(l_qr.item())
    iqn_losses.append(l_iqn.item())

report(
    c51_losses=c51_losses,
    priority_total=priorities_hist,
    q_eval=q_eval.tolist(),
    qr_losses=qr_losses,
    iqn_losses=iqn_losses,
    noisy_sigma=online.fc_a.weight_sigma.sum().item(),
    greedy=q_eval.argmax(1).tolist(),
)
