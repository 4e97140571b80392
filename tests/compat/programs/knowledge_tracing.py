# Knowledge tracing as the EdNet / ASSISTments baselines write it: DKT (an LSTM over one-hot
# interactions q + n_skills * correct built by F.one_hot, the next question's probability picked
# by gathering the output row of the next skill, sequences padded to a max length with a mask,
# BCE on valid steps only) and SAKT (interaction embeddings as keys / values, exercise
# embeddings as queries, a future mask from torch.triu(..., diagonal=1).bool(),
# nn.MultiheadAttention with attn_mask, a position Embedding, LayerNorm + FFN residuals), both
# trained by Adam; AUC by rank statistics with ties (argsort of argsort is wrong on ties: average
# ranks through unique / inverse), accuracy, and the DKT knowledge-state matrix sigmoid(output)
# over every skill for one student.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(47)
NS, L, NSTU = 6, 14, 24
ability = rng.normal(0, 1, NSTU)
difficulty = rng.normal(0, 1, NS)
qs = np.zeros((NSTU, L), np.int64)
cs = np.zeros((NSTU, L), np.int64)
lens = rng.integers(8, L + 1, NSTU)
for s in range(NSTU):
    learned = np.zeros(NS)
    for t in range(lens[s]):
        q = int(rng.integers(NS))
        p = 1 / (1 + np.exp(-(ability[s] - difficulty[q] + learned[q])))
        c = int(rng.uniform() < p)
        learned[q] += 0.5
        qs[s, t], cs[s, t] = q, c
Q, Cr = torch.from_numpy(qs), torch.from_numpy(cs)
mask = torch.from_numpy(np.arange(L)[None] < lens[:, None])


def auc(scores, labels):
    scores, labels = scores.double(), labels.double()
    uniq, inv = torch.unique(scores, return_inverse=True)
    order = torch.argsort(scores)
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    avg = torch.zeros(len(uniq), dtype=torch.float64).index_add_(0, inv, ranks)
    cnt = torch.bincount(inv, minlength=len(uniq)).double()
    r = (avg / cnt)[inv]
    npos = labels.sum()
    nneg = len(labels) - npos
    return ((r[labels == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg)).item()


class DKT(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.lstm = nn.LSTM(2 * NS, hidden, batch_first=True)
        self.out = nn.Linear(hidden, NS)

    def forward(self, q, c):
        x = F.one_hot(q + NS * c, 2 * NS).float()
        h, _ = self.lstm(x)
        return self.out(h)  # logits for every skill at the next step


class SAKT(nn.Module):
    def __init__(self, d=16, heads=2):
        super().__init__()
        self.inter = nn.Embedding(2 * NS, d)
        self.exer = nn.Embedding(NS, d)
        self.pos = nn.Embedding(L, d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.ln2 = nn.LayerNorm(d)
        self.pred = nn.Linear(d, 1)

    def forward(self, q, c, qnext):
        n = q.shape[1]
        pos = torch.arange(n).unsqueeze(0)
        kv = self.inter(q + NS * c) + self.pos(pos)
        query = self.exer(qnext)
        future = torch.triu(torch.ones(n, n), diagonal=1).bool()
        a, w = self.attn(query, kv, kv, attn_mask=future)
        a = self.ln1(a + query)
        f = self.ln2(self.ffn(a) + a)
        return self.pred(f).squeeze(-1), w


def init(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))


valid_next = mask[:, 1:] & mask[:, :-1]
target = Cr[:, 1:].float()
out = {}
for name in ("dkt", "sakt"):
    model = DKT() if name == "dkt" else SAKT()
    init(model)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for epoch in range(12):
        if name == "dkt":
            logits = model(Q[:, :-1], Cr[:, :-1])
            logit = logits.gather(2, Q[:, 1:].unsqueeze(-1)).squeeze(-1)
        else:
            logit, _ = model(Q[:, :-1], Cr[:, :-1], Q[:, 1:])
        loss = F.binary_cross_entropy_with_logits(logit[valid_next], target[valid_next])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        if name == "dkt":
            logits = model(Q[:, :-1], Cr[:, :-1])
            logit = logits.gather(2, Q[:, 1:].unsqueeze(-1)).squeeze(-1)
            state = torch.sigmoid(logits[0, : lens[0] - 1])
            out["dkt_state"] = state.sum(1).tolist()
        else:
            logit, w = model(Q[:, :-1], Cr[:, :-1], Q[:, 1:])
            out["sakt_attn_row"] = w[0, 3].tolist()
            out["sakt_attn_causal"] = bool((w[0].triu(1) == 0).all())
    p = torch.sigmoid(logit[valid_next])
    y = target[valid_next]
    out[name] = dict(
        losses=losses,
        auc=auc(p, y),
        acc=((p > 0.5).float() == y).float().mean().item(),
    )
out["auc_ties"] = auc(torch.tensor([0.1, 0.4, 0.4, 0.8, 0.4]), torch.tensor([0, 0, 1, 1, 1]))
report(**out)
