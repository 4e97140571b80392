# A GFlowNet on the hypergrid (Bengio et al. 2021; Malkin et al. 2022's trajectory balance),
# the way the torchgfn tutorials and the original notebook write it: states one-hot encoded per
# coordinate, a forward policy with a stop action and masked_fill(-inf) of moves off the grid,
# a learned log Z, trajectories sampled by Gumbel-max with NumPy noise, trajectory balance
# (log Z + sum log P_F - log R - sum log P_B)^2 with a uniform backward policy, detailed
# balance as a second objective with a state-flow head, and the learned terminal distribution
# compared with the reward's by exact enumeration (L1 and KL).
import itertools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

H, D = 5, 2
rng = np.random.default_rng(7)


def reward(x):  # x: (B, D) integer coordinates
    ax = (x.float() / (H - 1) - 0.5).abs()
    return (
        0.01 + 0.5 * ((ax > 0.25).all(-1)).float() + 2.0 * ((ax > 0.3) & (ax < 0.4)).all(-1).float()
    )


def encode(x):
    return F.one_hot(x, H).float().view(x.shape[0], -1)


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(H * D, 32), nn.LeakyReLU(), nn.Linear(32, 32), nn.LeakyReLU()
        )
        self.pf = nn.Linear(32, D + 1)
        self.flow = nn.Linear(32, 1)
        self.logZ = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        h = self.body(encode(x))
        logits = self.pf(h)
        at_edge = x == H - 1
        mask = torch.cat([at_edge, torch.zeros(x.shape[0], 1, dtype=torch.bool)], 1)
        return logits.masked_fill(mask, float("-inf")).log_softmax(-1), self.flow(h).squeeze(-1)


def n_parents(x):
    return (x > 0).sum(-1).float()


def sample(model, B):
    x = torch.zeros(B, D, dtype=torch.long)
    done = torch.zeros(B, dtype=torch.bool)
    sum_pf = torch.zeros(B)
    sum_pb = torch.zeros(B)
    db_terms = []
    while not done.all():
        logp, logF = model(x)
        g = torch.from_numpy(rng.gumbel(size=(B, D + 1)).astype(np.float32))
        a = (logp.detach() + g).argmax(-1)
        a = torch.where(done, torch.full_like(a, D), a)
        lp = logp.gather(1, a[:, None]).squeeze(1)
        sum_pf = sum_pf + torch.where(done, torch.zeros_like(lp), lp)
        move = (a < D) & ~done
        x_new = x.clone()
        rows = torch.nonzero(move).squeeze(1)
        x_new[rows, a[rows]] += 1
        lpb = -torch.log(n_parents(x_new).clamp(min=1))
        sum_pb = sum_pb + torch.where(move, lpb, torch.zeros_like(lpb))
        if move.any():
            _, logF_new = model(x_new)
            db = (logF + lp - logF_new - lpb)[move]
            db_terms.append(db)
        stop = (a == D) & ~done
        if stop.any():
            db_terms.append((logF + lp - torch.log(reward(x)))[stop])
        done = done | stop
        x = x_new
    return x, sum_pf, sum_pb, torch.cat(db_terms)


def fresh():
    m = Policy()
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n != "logZ":
                p.copy_(torch.from_numpy(W[n]))
    return m


model = fresh()
opt = torch.optim.Adam(
    [
        {"params": [p for n, p in model.named_parameters() if n != "logZ"]},
        {"params": [model.logZ], "lr": 0.1},
    ],
    lr=3e-3,
)
tb_losses, logZs = [], []
for it in range(8):
    x, spf, spb, _ = sample(model, 16)
    loss = (model.logZ + spf - torch.log(reward(x)) - spb).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    tb_losses.append(loss.item())
    logZs.append(model.logZ.item())

model_db = fresh()
opt = torch.optim.Adam(model_db.parameters(), lr=3e-3)
db_losses = []
for it in range(4):
    _, _, _, terms = sample(model_db, 16)
    loss = terms.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    db_losses.append(loss.item())


@torch.no_grad()
def terminal_dist(model):
    states = torch.tensor(list(itertools.product(range(H), repeat=D)))
    index = {tuple(s.tolist()): i for i, s in enumerate(states)}
    logp_all, _ = model(states)
    # P(reach s) by dynamic programming in order of coordinate sum
    reach = torch.zeros(len(states))
    reach[index[(0,) * D]] = 1.0
    order = states.sum(1).argsort(stable=True)
    term = torch.zeros(len(states))
    for i in order.tolist():
        s = states[i]
        p = logp_all[i].exp()
        term[i] = reach[i] * p[D]
        for d in range(D):
            if s[d] < H - 1:
                t = s.clone()
                t[d] += 1
                reach[index[tuple(t.tolist())]] += reach[i] * p[d]
    R = reward(states)
    target = R / R.sum()
    return term, target


term, target = terminal_dist(model)
report(
    tb_losses=tb_losses,
    logZ=logZs,
    db_losses=db_losses,
    term_sum=term.sum().item(),
    l1=(term - target).abs().sum().item(),
    kl=(target * (target / term).log()).sum().item(),
    true_logZ=reward(torch.tensor(list(itertools.product(range(H), repeat=D)))).sum().log().item(),
)
