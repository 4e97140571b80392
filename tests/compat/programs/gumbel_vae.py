# Discrete latent variables the way the research code writes them: the categorical VAE of Jang et
# al. (the widely copied "gumbel-softmax" notebook: sample_gumbel / gumbel_softmax_sample with a
# straight-through hard sample by scatter_, a KL to the uniform prior, temperature annealed by
# np.exp and np.maximum (a NumPy scalar temperature), BCE-with-logits summed over pixels), the
# Hard-Concrete L0 gates of Louizos et al. (stretched and clamped binary concrete, the expected
# L0 penalty, deterministic test-time gates), F.gumbel_softmax(hard=True) and the relaxed
# distributions (RelaxedOneHotCategorical / RelaxedBernoulli log_prob, OneHotCategorical,
# kl_divergence), and a REINFORCE estimator with a moving baseline. The Gumbel noise comes from
# NumPy so that both libraries draw the same samples. Our own program.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions import (
    Categorical,
    OneHotCategorical,
    RelaxedBernoulli,
    RelaxedOneHotCategorical,
    kl_divergence,
)

rng = np.random.default_rng(7)
N_LATENT, N_CAT = 4, 5
BATCH = 24
temp0, ANNEAL_RATE, MIN_TEMP = 1.0, 0.03, 0.5


def sample_gumbel(shape, U, eps=1e-20):
    return -torch.log(-torch.log(U + eps) + eps)


def gumbel_softmax_sample(logits, temperature, U):
    y = logits + sample_gumbel(logits.size(), U)
    return F.softmax(y / temperature, dim=-1)


def gumbel_softmax(logits, temperature, U, hard=False):
    y = gumbel_softmax_sample(logits, temperature, U)
    if not hard:
        return y.view(-1, N_LATENT * N_CAT)
    shape = y.size()
    _, ind = y.max(dim=-1)
    y_hard = torch.zeros_like(y).view(-1, shape[-1])
    y_hard.scatter_(1, ind.view(-1, 1), 1)
    y_hard = y_hard.view(*shape)
    y_hard = (y_hard - y).detach() + y
    return y_hard.view(-1, N_LATENT * N_CAT)


class VAE_gumbel(nn.Module):
    def __init__(self):
        super(VAE_gumbel, self).__init__()
        self.fc1 = nn.Linear(64, 48)
        self.fc2 = nn.Linear(48, 32)
        self.fc3 = nn.Linear(32, N_LATENT * N_CAT)
        self.fc4 = nn.Linear(N_LATENT * N_CAT, 32)
        self.fc5 = nn.Linear(32, 48)
        self.fc6 = nn.Linear(48, 64)
        self.relu = nn.ReLU()

    def encode(self, x):
        h1 = self.relu(self.fc1(x))
        h2 = self.relu(self.fc2(h1))
        return self.relu(self.fc3(h2))

    def decode(self, z):
        h4 = self.relu(self.fc4(z))
        h5 = self.relu(self.fc5(h4))
        return self.fc6(h5)

    def forward(self, x, temp, U, hard):
        q = self.encode(x.view(-1, 64))
        q_y = q.view(q.size(0), N_LATENT, N_CAT)
        z = gumbel_softmax(q_y, temp, U, hard)
        return self.decode(z), F.softmax(q_y, dim=-1).reshape(*q.size())


def loss_function(recon_logits, x, qy):
    BCE = F.binary_cross_entropy_with_logits(recon_logits, x.view(-1, 64), reduction="sum")
    BCE = BCE / x.shape[0]
    log_ratio = torch.log(qy * N_CAT + 1e-20)
    KLD = torch.sum(qy * log_ratio, dim=-1).mean()
    return BCE + KLD


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


# binary 8x8 "strokes": each image switches on a few rows / columns
imgs = np.zeros((96, 8, 8), dtype=np.float32)
for im in imgs:
    for r in rng.choice(8, size=2, replace=False):
        im[r, :] = 1.0
    im[:, rng.integers(8)] = 1.0
data = torch.from_numpy(imgs)
noise = rng.uniform(0.0, 1.0, size=(12, BATCH, N_LATENT, N_CAT)).astype(np.float32)

model = VAE_gumbel()
load_reference(model)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
temp = temp0
losses, temps = [], []
for step in range(12):
    x = data[(step * BATCH) % 96:(step * BATCH) % 96 + BATCH]
    U = torch.from_numpy(noise[step])
    optimizer.zero_grad()
    recon, qy = model(x, temp, U, hard=step % 2 == 1)
    loss = loss_function(recon, x, qy)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    if step % 3 == 2:
        temp = np.maximum(temp * np.exp(-ANNEAL_RATE * step), MIN_TEMP)
        temps.append(float(temp))
temp_type = type(temp).__name__

# the codes of a few images (argmax of q(y|x)) and a decoded sample from fixed codes
model.eval()
with torch.no_grad():
    _, qy = model(data[:6], 0.5, torch.from_numpy(noise[0][:6]), hard=True)
    codes = qy.view(-1, N_LATENT, N_CAT).argmax(-1).tolist()
    ind = torch.tensor([[0, 1, 2, 3], [4, 4, 0, 0]])
    z = F.one_hot(ind, N_CAT).float().view(2, -1)
    sample = torch.sigmoid(model.decode(z))
    sample_mean = sample.mean(1).tolist()


# F.gumbel_softmax draws its own noise: compare what does not depend on it
logits = torch.from_numpy(rng.standard_normal((5, N_CAT)).astype(np.float32)).requires_grad_()
torch.manual_seed(0)
y_soft = F.gumbel_softmax(logits, tau=0.7)
y_hard = F.gumbel_softmax(logits, tau=0.7, hard=True)
(y_hard * torch.arange(N_CAT)).sum().backward()
soft_rows_sum_to_one = bool(torch.allclose(y_soft.sum(-1), torch.ones(5)))
hard_is_one_hot = bool(((y_hard == 0) | (y_hard == 1)).all() and (y_hard.sum(-1) == 1).all())
logits_grad_rows_sum_zero = bool(torch.allclose(logits.grad.sum(-1), torch.zeros(5), atol=1e-6))
random_hard_argmax = y_hard.argmax(-1).tolist()


class HardConcreteGate(nn.Module):
    """L0 gates (Louizos et al. 2018): a stretched binary concrete, clamped to [0, 1]."""

    def __init__(self, n, beta=2 / 3, gamma=-0.1, zeta=1.1):
        super().__init__()
        self.log_alpha = nn.Parameter(torch.zeros(n))
        self.beta, self.gamma, self.zeta = beta, gamma, zeta

    def forward(self, u=None):
        if self.training:
            s = torch.sigmoid((torch.log(u) - torch.log(1 - u) + self.log_alpha) / self.beta)
        else:
            s = torch.sigmoid(self.log_alpha)
        s = s * (self.zeta - self.gamma) + self.gamma
        return F.hardtanh(s, min_val=0, max_val=1)

    def l0_norm(self):
        return torch.sigmoid(self.log_alpha - self.beta * np.log(-self.gamma / self.zeta)).sum()


# a linear regression whose inputs pass through L0 gates: only 3 of 10 features matter
Xr = rng.standard_normal((64, 10)).astype(np.float32)
yr = Xr[:, :3] @ np.array([1.5, -2.0, 1.0], dtype=np.float32)
Xr, yr = torch.from_numpy(Xr), torch.from_numpy(yr.astype(np.float32))
gates = HardConcreteGate(10)
lin = nn.Linear(10, 1)
load_reference(lin)
with torch.no_grad():
    gates.log_alpha.copy_(torch.from_numpy(rng.normal(0.5, 0.1, size=10).astype(np.float32)))
u_noise = rng.uniform(1e-6, 1 - 1e-6, size=(30, 10)).astype(np.float32)
opt = torch.optim.Adam(list(gates.parameters()) + list(lin.parameters()), lr=0.05)
l0_losses = []
for step in range(30):
    g = gates(torch.from_numpy(u_noise[step]))
    pred = lin(Xr * g).squeeze(-1)
    loss = F.mse_loss(pred, yr) + 0.05 * gates.l0_norm()
    opt.zero_grad()
    loss.backward()
    opt.step()
    l0_losses.append(loss.item())
gates.eval()
test_gates = gates().tolist()
expected_l0 = gates.l0_norm().item()

# relaxed distributions: log densities and KLs are deterministic
probs = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], requires_grad=True)
relaxed = RelaxedOneHotCategorical(torch.tensor(0.6), probs=probs)
value = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
rlp = relaxed.log_prob(value)
rlp.sum().backward()
rb = RelaxedBernoulli(torch.tensor([0.5, 1.5]), logits=torch.tensor([0.3, -1.0]))
rb_lp = rb.log_prob(torch.tensor([0.2, 0.9])).tolist()
ohc = OneHotCategorical(logits=torch.tensor([1.0, 0.0, -1.0]))
ohc_lp = ohc.log_prob(torch.tensor([0.0, 1.0, 0.0])).item()
ohc_ent = ohc.entropy().item()
kl = kl_divergence(Categorical(probs=probs), Categorical(logits=torch.zeros(3))).tolist()
torch.manual_seed(0)
random_relaxed_sample = relaxed.rsample().tolist()

# REINFORCE over a categorical policy with a moving-average baseline
policy_logits = torch.zeros(4, requires_grad=True)
popt = torch.optim.SGD([policy_logits], lr=0.5)
rewards_table = torch.tensor([0.1, 0.9, 0.3, 0.5])
actions = rng.integers(0, 4, size=(10, 8))
baseline = 0.0
pg_losses = []
for step in range(10):
    a = torch.from_numpy(actions[step])
    dist = Categorical(logits=policy_logits)
    r = rewards_table[a]
    adv = r - baseline
    loss = -(dist.log_prob(a) * adv).mean() - 0.01 * dist.entropy()
    popt.zero_grad()
    loss.backward()
    popt.step()
    baseline = 0.9 * baseline + 0.1 * r.mean().item()
    pg_losses.append(loss.item())

report(
    losses=losses,
    temps=temps,
    temp_type=temp_type,
    codes=codes,
    sample_mean=sample_mean,
    soft_rows_sum_to_one=soft_rows_sum_to_one,
    hard_is_one_hot=hard_is_one_hot,
    logits_grad_rows_sum_zero=logits_grad_rows_sum_zero,
    random_hard_argmax=random_hard_argmax,
    l0_losses=l0_losses,
    test_gates=test_gates,
    expected_l0=expected_l0,
    relaxed_log_prob=rlp.tolist(),
    relaxed_probs_grad=probs.grad.tolist(),
    rb_log_prob=rb_lp,
    ohc_log_prob=ohc_lp,
    ohc_entropy=ohc_ent,
    kl_to_uniform=kl,
    random_relaxed_sample=random_relaxed_sample,
    policy_logits=policy_logits.tolist(),
    pg_losses=pg_losses,
)
