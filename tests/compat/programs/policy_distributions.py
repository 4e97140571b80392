# torch.distributions in the shapes people use them: a REINFORCE policy over a small bandit
# (Categorical from logits: log_prob and an entropy bonus), a Gaussian policy head (Normal with a
# learned log std: log_prob, entropy), a VAE-style KL term (kl_divergence of a diagonal Normal
# against the standard normal, through Independent), and a Bernoulli likelihood. Actions are drawn
# with NumPy from the policy's own probabilities, so both libraries take the same actions.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.distributions import Bernoulli, Categorical, Independent, Normal, kl_divergence

rng = np.random.default_rng(8)
true_means = np.array([0.2, 0.5, 0.9, 0.1], dtype=np.float32)


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 32), nn.Tanh())
        self.logits = nn.Linear(32, 4)
        self.mu = nn.Linear(32, 2)
        self.log_std = nn.Parameter(torch.zeros(2))

    def forward(self, s):
        h = self.body(s)
        return self.logits(h), self.mu(h), self.log_std


policy = Policy()
W = reference_weights(policy)
with torch.no_grad():
    for name, p in policy.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.Adam(policy.parameters(), lr=0.02)

losses, entropies, kls = [], [], []
for episode in range(25):
    s = torch.from_numpy(rng.standard_normal((16, 4)).astype(np.float32))
    logits, mu, log_std = policy(s)
    pi = Categorical(logits=logits)
    probs = pi.probs.detach().numpy().astype(np.float64)
    u = rng.random((16, 1))
    a = torch.from_numpy((u > probs.cumsum(-1)).sum(-1).clip(0, 3))
    r = torch.from_numpy((rng.random(16) < true_means[a.numpy()]).astype(np.float32))
    gauss = Normal(mu, log_std.exp())
    act = torch.from_numpy(rng.standard_normal((16, 2)).astype(np.float32))
    post = Independent(Normal(mu, log_std.exp()), 1)
    prior = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    kl = kl_divergence(post, prior).mean()
    loss = (
        -(pi.log_prob(a) * (r - r.mean())).mean()
        - 0.01 * pi.entropy().mean()
        - 0.1 * gauss.log_prob(act).sum(-1).mean()
        + 0.05 * kl
    )
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    entropies.append(pi.entropy().mean().item())
    kls.append(kl.item())

b = Bernoulli(logits=torch.tensor([-1.0, 0.0, 2.0]))
obs = torch.tensor([1.0, 0.0, 1.0])
n = Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]))
report(
    losses=losses,
    entropies=entropies,
    kls=kls,
    bernoulli_log_prob=b.log_prob(obs).tolist(),
    bernoulli_mean=b.mean.tolist(),
    normal_cdf=n.cdf(torch.tensor([0.5, 0.5])).tolist(),
    normal_icdf=n.icdf(torch.tensor([0.25, 0.9])).tolist(),
    normal_entropy=n.entropy().tolist(),
    batch_shape=list(post.batch_shape),
    event_shape=list(post.event_shape),
    sample_shape=list(n.sample((3,)).shape),
    log_std=policy.log_std.tolist(),
)
