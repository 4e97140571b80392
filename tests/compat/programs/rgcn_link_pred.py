# Relational GCN link prediction (Schlichtkrull et al. 2018) as the DGL / PyG examples write
# it without the libraries: a knowledge graph as (head, relation, tail) index tensors with
# inverse relations added by torch.cat, per-relation messages with basis decomposition
# (einsum of coefficients and bases), degree normalisation per (node, relation) by
# scatter_add_ counts, aggregation by index_add_, a self-loop weight, a DistMult decoder,
# negative sampling by corrupting heads or tails with NumPy draws, BCE-with-logits, edge
# dropout by a NumPy mask, and filtered MRR / Hits@k by ranking all entities.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(53)
E, R = 30, 3
triples = set()
while len(triples) < 90:
    h, r = int(rng.integers(E)), int(rng.integers(R))
    t = (h * (r + 2) + int(rng.integers(3))) % E
    if h != t:
        triples.add((h, r, t))
triples = np.array(sorted(triples))
train, test = triples[:75], triples[75:]


class RGCNLayer(nn.Module):
    def __init__(self, din, dout, n_rel, n_bases):
        super().__init__()
        self.bases = nn.Parameter(torch.empty(n_bases, din, dout))
        self.coef = nn.Parameter(torch.empty(n_rel, n_bases))
        self.self_loop = nn.Linear(din, dout, bias=False)
        self.n_rel = n_rel

    def forward(self, x, src, dst, rel):
        W = torch.einsum("rb,bio->rio", self.coef, self.bases)
        msg = torch.bmm(x[src].unsqueeze(1), W[rel]).squeeze(1)
        key = dst * self.n_rel + rel
        cnt = torch.zeros(x.shape[0] * self.n_rel).scatter_add_(
            0, key, torch.ones_like(key, dtype=torch.float32)
        )
        msg = msg / cnt[key].unsqueeze(1)
        out = torch.zeros(x.shape[0], W.shape[2]).index_add_(0, dst, msg)
        return out + self.self_loop(x)


class Model(nn.Module):
    def __init__(self, d=16):
        super().__init__()
        self.emb = nn.Embedding(E, d)
        self.l1 = RGCNLayer(d, d, 2 * R, 2)
        self.l2 = RGCNLayer(d, d, 2 * R, 2)
        self.rel = nn.Parameter(torch.empty(R, d))

    def encode(self, src, dst, rel):
        h = F.relu(self.l1(self.emb.weight, src, dst, rel))
        return self.l2(h, src, dst, rel)

    def score(self, h, s, r, o):
        return (h[s] * self.rel[r] * h[o]).sum(-1)


model = Model()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.Adam(model.parameters(), lr=0.01)
tr = torch.from_numpy(train)
losses = []
for epoch in range(10):
    keep = torch.from_numpy(rng.uniform(size=len(train)) > 0.2)
    g = tr[keep]
    src = torch.cat([g[:, 0], g[:, 2]])
    dst = torch.cat([g[:, 2], g[:, 0]])
    rel = torch.cat([g[:, 1], g[:, 1] + R])
    h = model.encode(src, dst, rel)
    neg = tr.repeat(2, 1).clone()
    corrupt_head = torch.from_numpy(rng.uniform(size=len(neg)) < 0.5)
    rand_ent = torch.from_numpy(rng.integers(0, E, len(neg)))
    neg[:, 0] = torch.where(corrupt_head, rand_ent, neg[:, 0])
    neg[:, 2] = torch.where(corrupt_head, neg[:, 2], rand_ent)
    all_t = torch.cat([tr, neg])
    labels = torch.cat([torch.ones(len(tr)), torch.zeros(len(neg))])
    logits = model.score(h, all_t[:, 0], all_t[:, 1], all_t[:, 2])
    loss = F.binary_cross_entropy_with_logits(logits, labels) + 0.01 * model.rel.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

with torch.no_grad():
    src = torch.cat([tr[:, 0], tr[:, 2]])
    dst = torch.cat([tr[:, 2], tr[:, 0]])
    rel = torch.cat([tr[:, 1], tr[:, 1] + R])
    h = model.encode(src, dst, rel)
    known = torch.zeros(E, R, E, dtype=torch.bool)
    allt = torch.from_numpy(triples)
    known[allt[:, 0], allt[:, 1], allt[:, 2]] = True
    ranks = []
    for s, r, o in test.tolist():
        sc = model.score(h, torch.full((E,), s), torch.full((E,), r), torch.arange(E))
        filt = known[s, r].clone()
        filt[o] = False
        sc = sc.masked_fill(filt, float("-inf"))
        ranks.append(int((sc > sc[o]).sum()) + 1)
    ranks = torch.tensor(ranks, dtype=torch.float32)

report(
    losses=losses,
    mrr=(1.0 / ranks).mean().item(),
    hits3=(ranks <= 3).float().mean().item(),
    ranks=ranks.tolist(),
)
