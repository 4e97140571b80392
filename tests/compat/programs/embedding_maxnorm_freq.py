# nn.Embedding's rarely read options as recommendation and word-vector repositories use them:
# max_norm (rows looked up are renormalised in place during forward, under no_grad, before the
# lookup; the weight's version moves), norm_type=1, scale_grad_by_freq (gradients divided by
# each index's count in the batch), padding_idx with a non-zero row, Embedding.from_pretrained
# (freeze=False, max_norm=), F.embedding with max_norm on a plain tensor, EmbeddingBag with
# max_norm; a TransE-style knowledge-graph model whose entity embeddings are kept on the unit
# ball by max_norm=1 while training with a margin ranking loss.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import report

rng = np.random.default_rng(2424)
W0 = rng.standard_normal((8, 4)).astype(np.float32)

emb = nn.Embedding(8, 4, max_norm=1.0)
with torch.no_grad():
    emb.weight.copy_(torch.from_numpy(W0))
idx = torch.tensor([[1, 2, 2], [5, 1, 7]])
out = emb(idx)
renormed_rows = emb.weight.norm(dim=1).tolist()
out.pow(2).sum().backward()
maxnorm = {"out": out[0].tolist(), "row_norms": renormed_rows, "grad": emb.weight.grad.tolist()}

emb1 = nn.Embedding(8, 4, max_norm=2.0, norm_type=1.0)
with torch.no_grad():
    emb1.weight.copy_(torch.from_numpy(W0))
emb1(torch.tensor([0, 3, 3]))
l1_norms = emb1.weight.abs().sum(1).tolist()

embf = nn.Embedding(8, 4, scale_grad_by_freq=True, padding_idx=0)
with torch.no_grad():
    embf.weight.copy_(torch.from_numpy(W0))
(embf(torch.tensor([0, 3, 3, 3, 4, 0])) * torch.arange(24.0).view(6, 4)).sum().backward()
freq = {"grad": embf.weight.grad.tolist(), "pad_row": embf.weight[0].tolist()}

pre = nn.Embedding.from_pretrained(torch.from_numpy(W0), freeze=False, max_norm=1.5)
pre(torch.tensor([6]))
pretrained = {"rg": pre.weight.requires_grad, "norm6": pre.weight[6].norm().item()}

w_plain = torch.from_numpy(W0.copy())
F.embedding(torch.tensor([2, 4]), w_plain, max_norm=0.5)
functional = w_plain.norm(dim=1).tolist()

bag = nn.EmbeddingBag(8, 4, mode="mean", max_norm=1.0)
with torch.no_grad():
    bag.weight.copy_(torch.from_numpy(W0))
bag_out = bag(torch.tensor([1, 2, 4, 5]), torch.tensor([0, 2]))
bag_res = {"out": bag_out.tolist(), "norms": bag.weight.norm(dim=1).tolist()}


class TransE(nn.Module):
    def __init__(self, n_ent, n_rel, dim):
        super().__init__()
        self.ent = nn.Embedding(n_ent, dim, max_norm=1.0)
        self.rel = nn.Embedding(n_rel, dim)

    def score(self, h, r, t):
        return (self.ent(h) + self.rel(r) - self.ent(t)).norm(p=1, dim=-1)


model = TransE(10, 3, 5)
with torch.no_grad():
    model.ent.weight.copy_(torch.from_numpy(rng.uniform(-1, 1, (10, 5)).astype(np.float32)))
    model.rel.weight.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, (3, 5)).astype(np.float32)))
triples = torch.from_numpy(rng.integers(0, [10, 3, 10], (12, 3)))
corrupt = torch.from_numpy(rng.integers(0, 10, (6, 12)))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
crit = nn.MarginRankingLoss(margin=1.0)
transe = []
for step in range(6):
    h, r, t = triples.unbind(1)
    pos = model.score(h, r, t)
    neg = model.score(h, r, corrupt[step])
    loss = crit(neg, pos, torch.ones_like(pos))
    opt.zero_grad()
    loss.backward()
    opt.step()
    transe.append(loss.item())
report(
    maxnorm=maxnorm,
    l1_norms=l1_norms,
    freq=freq,
    pretrained=pretrained,
    functional=functional,
    bag=bag_res,
    transe=transe,
    ent_norms=model.ent.weight.norm(dim=1).tolist(),
)
