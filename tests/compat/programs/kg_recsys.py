# Knowledge-graph embeddings and a recommender as the TransE / DistMult / ComplEx reference code
# and BPR tutorials write them: nn.Embedding(max_norm=1.0) renormed in place at each lookup,
# F.normalize, MarginRankingLoss over corrupted triples, 1-N ComplEx scoring through
# view_as_complex, BPR with F.logsigmoid; evaluation by tensor ops: filtered ranks, MRR, hits@k,
# argsort / searchsorted ranks, topk + isin, unique(return_inverse, return_counts), scatter_add_,
# index_add_; DistMult trains sparse tables (Embedding(sparse=True) + optim.SparseAdam).
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)
n_ent, n_rel, dim = 24, 3, 8

# triples (h, r, t) from a rule, with duplicates removed by unique(dim=0)
h_np = rng.integers(0, n_ent, 150)
r_np = rng.integers(0, n_rel, 150)
t_np = (h_np * (r_np + 2) + 3 * r_np + 1) % n_ent
triples = torch.unique(torch.from_numpy(np.stack([h_np, r_np, t_np], 1)), dim=0)
n_tri = triples.size(0)
test_sel = torch.from_numpy(rng.permutation(n_tri)[:12])
is_test = torch.zeros(n_tri, dtype=torch.bool).index_fill_(0, test_sel, True)
train, test = triples[~is_test], triples[is_test]

# degree of every entity: scatter_add_ over heads and tails
deg = torch.zeros(n_ent, dtype=torch.long)
deg.scatter_add_(0, train[:, 0], torch.ones_like(train[:, 0]))
deg.scatter_add_(0, train[:, 2], torch.ones(len(train), dtype=torch.long))


class TransE(nn.Module):
    def __init__(self, num_entities, num_relations, dim, p_norm=1):
        super().__init__()
        self.ent = nn.Embedding(num_entities, dim, max_norm=1.0)
        self.rel = nn.Embedding(num_relations, dim)
        self.p_norm = p_norm

    def forward(self, h, r, t):
        r_vec = F.normalize(self.rel(r), p=2, dim=-1)
        return -torch.norm(self.ent(h) + r_vec - self.ent(t), p=self.p_norm, dim=-1)

    def score_tails(self, h, r):  # (B, num_entities)
        q = self.ent(h) + F.normalize(self.rel(r), dim=-1)
        return -torch.cdist(q, self.ent.weight, p=1)


class DistMult(nn.Module):
    def __init__(self, num_entities, num_relations, dim):
        super().__init__()
        self.ent = nn.Embedding(num_entities, dim, sparse=True)
        self.rel = nn.Embedding(num_relations, dim, sparse=True)

    def forward(self, h, r, t):
        return (self.ent(h) * self.rel(r) * self.ent(t)).sum(dim=-1)

    def score_tails(self, h, r):
        return (self.ent(h) * self.rel(r)) @ self.ent.weight.t()


def load(model, scale=None):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.as_tensor(np.asarray(W[name])))
        if scale:
            model.ent.weight.mul_(scale)  # some rows above max_norm: lookups renorm them


def corrupt(batch, gen):
    neg = batch.clone()
    ents = torch.as_tensor(gen.integers(0, n_ent, len(batch)))
    head = torch.as_tensor(gen.random(len(batch)) < 0.5)
    neg[:, 0] = torch.where(head, ents, batch[:, 0])
    neg[:, 2] = torch.where(head, batch[:, 2], ents)
    return neg


transe, distmult = TransE(n_ent, n_rel, dim), DistMult(n_ent, n_rel, dim)
load(transe, scale=2.5)
load(distmult)
norms_before = transe.ent.weight.norm(dim=1).gt(1.0).sum().item()
margin = nn.MarginRankingLoss(margin=1.0)
opt_te = torch.optim.Adagrad(transe.parameters(), lr=0.1)
opt_dm = torch.optim.SparseAdam(list(distmult.parameters()), lr=0.05)
neg_rng = np.random.default_rng(3)
te_losses, dm_losses = [], []
for step in range(20):
    batch = train[step * 8 % (len(train) - 32) :][:32]
    neg = corrupt(batch, neg_rng)
    pos_s = transe(*batch.unbind(1))
    neg_s = transe(neg[:, 0], neg[:, 1], neg[:, 2])
    loss = margin(pos_s, neg_s, torch.ones_like(pos_s))
    opt_te.zero_grad()
    loss.backward()
    opt_te.step()
    te_losses.append(loss.item())

    loss_d = F.softplus(-distmult(*batch.T)).mean() + F.softplus(distmult(*neg.T)).mean()
    # L2 on the rows looked up only: a penalty on the whole table would make the gradient dense
    loss_d = loss_d + 1e-3 * distmult.ent(batch[:, [0, 2]]).pow(2).sum()
    opt_dm.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_dm.step()
    dm_losses.append(float(loss_d))

max_row_norm = transe.ent.weight.detach().norm(dim=1).max().item()


@torch.no_grad()
def evaluate(model, known, queries, ks=(1, 3, 10)):
    h, r, t = queries[:, 0], queries[:, 1], queries[:, 2]
    scores = model.score_tails(h, r)  # (B, n_ent)
    # filtered setting: other true tails of (h, r) do not count against the answer
    same = (known[None, :, 0] == h[:, None]) & (known[None, :, 1] == r[:, None])  # (B, N)
    q_idx, k_idx = same.nonzero(as_tuple=True)
    other = known[k_idx, 2]
    keep = other != t[q_idx]
    filt = scores.clone()
    filt[q_idx[keep], other[keep]] = float("-inf")
    true = filt.gather(1, t.unsqueeze(1))  # (B, 1)
    rank = (filt > true).sum(dim=1) + 1
    rank_sort = (filt.argsort(dim=1, descending=True) == t[:, None]).int().argmax(dim=1) + 1
    srt, _ = torch.sort(filt, dim=1)
    rank_ss = n_ent - torch.searchsorted(srt, true, right=True).squeeze(1) + 1
    hits = {f"hits@{k}": (rank <= k).float().mean().item() for k in ks}
    return dict(mrr=(1.0 / rank.float()).mean().item(), **hits, ranks=rank.tolist(),
                ranks_sort=rank_sort.tolist(), ranks_ss=rank_ss.tolist())  # fmt: skip


eval_te = evaluate(transe, triples, test)
eval_dm = evaluate(distmult, triples, test)


class ComplEx(nn.Module):
    """Trouillon et al. 2016: Re(<h, r, conj(t)>) with complex embeddings stored as pairs."""

    def __init__(self, num_entities, num_relations, dim):
        super().__init__()
        self.ent = nn.Embedding(num_entities, 2 * dim)
        self.rel = nn.Embedding(num_relations, 2 * dim)

    def as_complex(self, x):
        return torch.view_as_complex(x.view(*x.shape[:-1], -1, 2).contiguous())

    def score_tails(self, h, r):  # 1-N scoring against every entity
        q = self.as_complex(self.ent(h)) * self.as_complex(self.rel(r))  # (B, dim) complex
        return (q @ self.as_complex(self.ent.weight).conj().T).real


cx = ComplEx(n_ent, n_rel, dim // 2)
load(cx)
opt_cx = torch.optim.Adam(cx.parameters(), lr=0.02)
cx_losses = []
for step in range(12):
    batch = train[(step * 11) % len(train) :][:16]
    target = torch.zeros(len(batch), n_ent).scatter_(1, batch[:, 2:3], 1.0)
    target = (1.0 - 0.1) * target + 0.1 / n_ent  # label smoothing, as in ConvE's code
    logits = cx.score_tails(batch[:, 0], batch[:, 1])
    loss = F.binary_cross_entropy_with_logits(logits, target)
    opt_cx.zero_grad()
    loss.backward()
    opt_cx.step()
    cx_losses.append(loss.item())
cx.eval()
eval_cx = evaluate(cx, triples, test)

# the functional form with a norm_type, on a copy (the lookup renorms the rows it touches)
table = transe.rel.weight.detach().clone() * 3
looked = F.embedding(torch.tensor([[0, 2], [2, 2]]), table, max_norm=1.5, norm_type=1.0)
renormed_rows = table.abs().sum(1).tolist()
g = torch.Generator().manual_seed(0)
draw = torch.randint(0, n_ent, (2, 5), generator=g)
draw_ok = bool(((draw >= 0) & (draw < n_ent)).all()) and draw.dtype == torch.int64

# ---- BPR matrix factorisation on implicit feedback ----
n_users, n_items, k = 16, 20, 6
pref = rng.normal(size=(n_users, 2)) @ rng.normal(size=(2, n_items))
inter = [(u, i) for u in range(n_users) for i in np.argsort(-pref[u])[:5]]
inter = torch.tensor(inter)  # (n_users * 5, 2)
users, items = inter[:, 0], inter[:, 1]
item_ids, inverse, counts = torch.unique(items, return_inverse=True, return_counts=True)
popularity = torch.zeros(n_items).index_put_((item_ids,), counts.float())
assert torch.equal(item_ids[inverse], items)
seen = torch.zeros(n_users, n_items, dtype=torch.bool)
seen[users, items] = True


class BPRMF(nn.Module):
    def __init__(self):
        super().__init__()
        self.user = nn.Embedding(n_users, k, scale_grad_by_freq=True)
        self.item = nn.Embedding(n_items + 1, k, padding_idx=n_items)  # a padding row at the end
        self.item_bias = nn.Embedding(n_items, 1)

    def forward(self, u, i):
        return (self.user(u) * self.item(i)).sum(-1) + self.item_bias(i).squeeze(-1)


mf = BPRMF()
load(mf)
opt_mf = torch.optim.Adam(mf.parameters(), lr=0.03, weight_decay=1e-4)
bpr_losses = []
for step in range(25):
    j = torch.as_tensor(neg_rng.integers(0, n_items, len(users)))
    j = torch.where(seen[users, j], (j + 7) % n_items, j)  # usually unseen: fine for BPR
    x_uij = mf(users, items) - mf(users, j)
    loss = -F.logsigmoid(x_uij).mean()
    opt_mf.zero_grad()
    loss.backward()
    opt_mf.step()
    bpr_losses.append(loss.item())

with torch.no_grad():
    all_scores = mf.user.weight @ mf.item.weight[:-1].T + mf.item_bias.weight.view(1, -1)
    all_scores.masked_fill_(seen, -1e9)
    top_vals, top_items = all_scores.topk(3, dim=1)
    held_out = torch.from_numpy(np.argsort(-pref, axis=1)[:, 5:8].copy())
    hit = torch.isin(top_items, held_out.flatten()[:20])
    per_user_hit = (top_items.unsqueeze(-1) == held_out.unsqueeze(1)).any(-1).float().mean(1)
    profile = torch.zeros(n_users, k).index_add_(0, users, mf.item(items))
    profile /= torch.bincount(users, minlength=n_users).unsqueeze(1)
    cos = F.cosine_similarity(profile, mf.user.weight, dim=1)
    # popularity buckets and ranks among unsorted counts (searchsorted with a sorter)
    buckets = torch.bucketize(popularity, torch.tensor([2.0, 4.0, 6.0]), right=True)
    order = torch.argsort(popularity, stable=True)
    pos_in = torch.searchsorted(popularity, torch.tensor([3.0, 5.0]), side="right", sorter=order)
    runs = torch.unique_consecutive(popularity[order], return_counts=True)[1]
    cold = torch.isin(torch.arange(n_items), items, invert=True).nonzero().flatten()

report(te_losses=te_losses, dm_losses=dm_losses, bpr_losses=bpr_losses, n_triples=n_tri,
       deg=deg.tolist(), norms_before=norms_before, max_row_norm=max_row_norm,
       transe=eval_te, distmult=eval_dm, popularity=popularity.tolist(),
       top_items=top_items.tolist(), top_vals=top_vals.tolist(), isin=hit.tolist(),
       per_user_hit=per_user_hit.tolist(), cos=cos.tolist(), cx_losses=cx_losses,
       complex=eval_cx, looked=looked.tolist(), renormed_rows=renormed_rows,
       random_draw=draw.tolist(), draw_ok=draw_ok, buckets=buckets.tolist(),
       pos_in=pos_in.tolist(), runs=runs.tolist(), cold=cold.tolist())  # fmt: skip
