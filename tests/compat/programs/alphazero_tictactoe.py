# AlphaZero on tic-tac-toe, in the shape of the many "alpha-zero-general" style tutorials:
# a policy-value network (shared trunk, log_softmax policy head over legal moves by
# masked_fill, tanh value head), MCTS with PUCT written over Python dicts and the net's
# priors, Dirichlet root noise and move sampling from NumPy, self-play games producing
# (board, visit distribution, outcome) examples with board symmetries by torch.rot90 /
# torch.flip, and the loss -pi.log p + (z - v)^2 with L2 by weight_decay.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]


def winner(b):
    for a, c, d in LINES:
        if b[a] != 0 and b[a] == b[c] == b[d]:
            return b[a]
    return 0 if 0 in b else 2  # 2: draw


class PVNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 9, 32)
        self.pi = nn.Linear(32, 9)
        self.v = nn.Linear(32, 1)

    def forward(self, x, legal):
        h = F.relu(self.conv(x)).flatten(1)
        h = F.relu(self.fc(h))
        logits = self.pi(h).masked_fill(~legal, float("-inf"))
        return F.log_softmax(logits, dim=1), torch.tanh(self.v(h)).squeeze(1)


def encode(b, player):
    t = torch.tensor(b, dtype=torch.float32).view(3, 3) * player
    return torch.stack([(t == 1).float(), (t == -1).float(), torch.ones(3, 3)])


net = PVNet()
W = reference_weights(net)
with torch.no_grad():
    for n, p in net.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
rng = np.random.default_rng(0)


@torch.no_grad()
def evaluate(b, player):
    legal = torch.tensor([c == 0 for c in b])
    logp, v = net(encode(b, player)[None], legal[None])
    return logp[0].exp().tolist(), v.item()


def mcts(root_b, player, sims=12, c_puct=1.5):
    N, Wsum, P = {}, {}, {}

    def search(b, pl):
        w = winner(b)
        if w == 2:
            return 0.0
        if w != 0:
            return -1.0  # the player to move has lost
        key = (tuple(b), pl)
        if key not in P:
            pri, v = evaluate(b, pl)
            if key == (tuple(root_b), player):
                noise = rng.dirichlet([0.3] * 9)
                pri = [
                    0.75 * p + 0.25 * e if b[i] == 0 else 0.0
                    for i, (p, e) in enumerate(zip(pri, noise))
                ]
            P[key] = pri
            N[key] = [0] * 9
            Wsum[key] = [0.0] * 9
            return -v
        tot = sum(N[key])
        best, best_u = None, -1e9
        for a in range(9):
            if b[a] != 0:
                continue
            q = Wsum[key][a] / N[key][a] if N[key][a] else 0.0
            u = q + c_puct * P[key][a] * math.sqrt(tot + 1) / (1 + N[key][a])
            if u > best_u + 1e-9:
                best, best_u = a, u
        nb = list(b)
        nb[best] = pl
        v = search(nb, -pl)
        N[key][best] += 1
        Wsum[key][best] += v
        return -v

    for _ in range(sims):
        search(list(root_b), player)
    counts = np.array(N[(tuple(root_b), player)], dtype=np.float64)
    return counts / counts.sum()


def self_play():
    b, player, hist = [0] * 9, 1, []
    while winner(b) == 0:
        pi = mcts(b, player)
        hist.append((list(b), player, pi))
        a = int(rng.choice(9, p=pi))
        b[a] = player
        player = -player
    w = winner(b)
    return [(hb, hp, pi, 0.0 if w == 2 else (1.0 if w == hp else -1.0)) for hb, hp, pi in hist], w


examples, results, losses = [], [], []
for it in range(2):
    for _ in range(2):
        ex, w = self_play()
        examples += ex
        results.append(w)
    boards = torch.stack([encode(b, p) for b, p, _, _ in examples])
    pis = torch.tensor(np.array([pi for _, _, pi, _ in examples]), dtype=torch.float32)
    zs = torch.tensor([z for *_, z in examples])
    # augment with the 8 symmetries of the board
    aug_b, aug_pi = [], []
    for k in range(4):
        for flip in (False, True):
            bb = torch.rot90(boards, k, dims=(2, 3))
            pp = torch.rot90(pis.view(-1, 3, 3), k, dims=(1, 2))
            if flip:
                bb, pp = torch.flip(bb, dims=[3]), torch.flip(pp, dims=[2])
            aug_b.append(bb)
            aug_pi.append(pp.reshape(-1, 9))
    B, PI, Z = torch.cat(aug_b), torch.cat(aug_pi), zs.repeat(8)
    legal = B[:, :2].sum(1).flatten(1) == 0
    for _ in range(4):
        logp, v = net(B, legal)
        loss = -(PI * logp.masked_fill(~legal, 0.0)).sum(1).mean() + F.mse_loss(v, Z)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())

pri, val = evaluate([1, 1, 0, -1, -1, 0, 0, 0, 0], 1)
report(
    n_examples=len(examples),
    results=results,
    losses=losses,
    priors=pri,
    value=val,
    best_move=int(np.argmax(pri)),
)
