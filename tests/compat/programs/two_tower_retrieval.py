# A two-tower retrieval model as recommender code writes it (YouTube / TFRS style, in torch):
# hashed categorical features (the hashing trick by a large multiplier and remainder on int64),
# multi-hot history through EmbeddingBag(mode="mean") with offsets, L2-normalised towers with a
# learned temperature, in-batch softmax with the logQ sampling-bias correction, removal of
# accidental hits by masked_fill, Recall@k with already-seen items excluded by scatter_ of
# -inf, retrieval over the whole corpus in chunks (torch.split + topk + merge), and a
# per-user mean-reciprocal rank.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(23)
U, I, HB = 40, 60, 97
item_pop = rng.zipf(1.5, I).astype(np.float64)
item_pop = item_pop / item_pop.sum()
user_pref = rng.standard_normal((U, 4))
item_vec = rng.standard_normal((I, 4))
scores = user_pref @ item_vec.T
pairs = []
for u in range(U):
    for i in np.argsort(-scores[u])[:5]:
        pairs.append((u, int(i)))
pairs = np.array(pairs)
hist = [np.argsort(-scores[u])[5:8] for u in range(U)]
user_country = rng.integers(0, 1000, U)


def hash_ids(x, buckets, salt):
    return torch.remainder(x * 2654435761 + salt, buckets)


class UserTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.uid = nn.Embedding(HB, 16)
        self.country = nn.Embedding(HB, 8)
        self.hist = nn.EmbeddingBag(I, 16, mode="mean")
        self.mlp = nn.Sequential(nn.Linear(40, 32), nn.ReLU(), nn.Linear(32, 16))

    def forward(self, u, country, hist_flat, offsets):
        x = torch.cat(
            [
                self.uid(hash_ids(u, HB, 7)),
                self.country(hash_ids(country, HB, 11)),
                self.hist(hist_flat, offsets),
            ],
            1,
        )
        return F.normalize(self.mlp(x), dim=-1)


class ItemTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.iid = nn.Embedding(I, 16)
        self.mlp = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 16))

    def forward(self, i):
        return F.normalize(self.mlp(self.iid(i)), dim=-1)


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.user = UserTower()
        self.item = ItemTower()
        self.log_temp = nn.Parameter(torch.tensor([np.log(0.1)], dtype=torch.float32))


model = TwoTower()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]) if n != "log_temp" else p)
opt = torch.optim.Adagrad(model.parameters(), lr=0.1)
logq = torch.from_numpy(np.log(item_pop)).float()


def user_batch(us):
    hl = [torch.from_numpy(hist[u]) for u in us.tolist()]
    offsets = torch.tensor([0] + [len(h) for h in hl[:-1]]).cumsum(0)
    return model.user(us, torch.from_numpy(user_country)[us], torch.cat(hl), offsets)


order = np.random.default_rng(1).permutation(len(pairs))
losses = []
for epoch in range(2):
    for b in range(0, len(order), 50):
        idx = order[b : b + 50]
        us = torch.from_numpy(pairs[idx, 0])
        its = torch.from_numpy(pairs[idx, 1])
        qe, ie = user_batch(us), model.item(its)
        logits = qe @ ie.T / model.log_temp.exp()
        logits = logits - logq[its][None, :]
        same_item = its[:, None] == its[None, :]
        hits = same_item & ~torch.eye(len(idx), dtype=torch.bool)
        logits = logits.masked_fill(hits, -1e9)
        loss = F.cross_entropy(logits, torch.arange(len(idx)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())

with torch.no_grad():
    all_users = torch.arange(U)
    Q = user_batch(all_users)
    C = model.item(torch.arange(I))
    S = Q @ C.T
    seen = torch.zeros(U, I, dtype=torch.bool)
    for u in range(U):
        seen[u, torch.from_numpy(hist[u])] = True
    S = S.masked_fill(seen, float("-inf"))
    vals, ids = [], []
    for k, chunk in enumerate(torch.split(C, 16)):
        v, i = (
            (Q @ chunk.T)
            .masked_fill(seen[:, k * 16 : k * 16 + chunk.shape[0]], float("-inf"))
            .topk(5, dim=1)
        )
        vals.append(v)
        ids.append(i + k * 16)
    v, pos = torch.cat(vals, 1).topk(5, dim=1)
    chunk_top = torch.cat(ids, 1).gather(1, pos)
    top = S.topk(10, dim=1).indices
    truth = torch.zeros(U, I, dtype=torch.bool)
    truth[torch.from_numpy(pairs[:, 0]), torch.from_numpy(pairs[:, 1])] = True
    recall = truth.gather(1, top).float().sum(1) / truth.float().sum(1)
    first = truth.gather(1, S.argsort(1, descending=True)).float().argmax(1)
    mrr = (1.0 / (first + 1).float()).mean()

report(
    losses=losses,
    temp=model.log_temp.exp().item(),
    recall10=recall.mean().item(),
    mrr=mrr.item(),
    chunk_equal=bool(torch.equal(chunk_top, S.topk(5, dim=1).indices)),
    top=top[:5].tolist(),
)
