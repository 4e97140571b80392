# Word embeddings as the word2vec / GloVe / fastText re-implementations in PyTorch write them,
# on a toy corpus: a Counter vocabulary, subsampling and a unigram ** 0.75 noise table in NumPy,
# skip-gram with negative sampling (two nn.Embedding(sparse=True) tables, torch.bmm of the
# negatives against the centre vectors, F.logsigmoid, clamp of the scores, the input table
# initialised by weight.data.uniform_-style values and the output table zeroed) trained by
# SGD on sparse gradients with a linearly decayed lr written into param_groups, CBOW by
# nn.EmbeddingBag(mode="mean") with offsets, fastText's subword vectors (FNV-1a hashed
# character n-grams, an EmbeddingBag(mode="sum") over cumsum'ed offsets), GloVe (a
# co-occurrence matrix by index_put_(accumulate=True) with 1 / distance weights, the
# (x / x_max) ** alpha weighting by torch.where, word and context biases, Adagrad), and the
# evaluation tools: cosine neighbours by F.normalize and topk, F.cosine_similarity against a
# broadcast row, analogies by b - a + c with the query words masked, from_pretrained(freeze=True).
from collections import Counter

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(8)

corpus = (
    "the king rules the land . the queen rules the land . a man walks in the city . "
    "a woman walks in the city . the king is a man . the queen is a woman . "
    "the prince is a young man . the princess is a young woman . the city has a king . "
    "dogs chase cats . cats chase mice . the dog sleeps in the land . the cat sleeps ."
).split()
counts = Counter(corpus)
itos = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
stoi = {w: i for i, w in enumerate(itos)}
V, DIM, WINDOW, NEG = len(itos), 12, 2, 4
ids = np.array([stoi[w] for w in corpus])

# subsampling of frequent words (Mikolov et al. 2013), with NumPy uniforms
freq = np.array([counts[w] for w in itos], dtype=np.float64) / len(corpus)
t = 0.05
p_keep = np.minimum(1.0, np.sqrt(t / freq) + t / freq)
kept = ids[rng.uniform(size=len(ids)) < p_keep[ids]]
# noise distribution: unigram ** 0.75
noise_dist = freq ** 0.75
noise_dist /= noise_dist.sum()

pairs = []
for i, c in enumerate(kept):
    for j in range(max(0, i - WINDOW), min(len(kept), i + WINDOW + 1)):
        if j != i:
            pairs.append((c, kept[j]))
pairs = np.array(pairs)
negatives = rng.choice(V, size=(len(pairs), NEG), p=noise_dist)


class SkipGramModel(nn.Module):
    def __init__(self, emb_size, emb_dimension):
        super(SkipGramModel, self).__init__()
        self.emb_size = emb_size
        self.emb_dimension = emb_dimension
        self.u_embeddings = nn.Embedding(emb_size, emb_dimension, sparse=True)
        self.v_embeddings = nn.Embedding(emb_size, emb_dimension, sparse=True)
        initrange = 1.0 / self.emb_dimension
        W = reference_weights(self)["u_embeddings.weight"]  # uniform in +-initrange
        self.u_embeddings.weight.data.copy_(torch.from_numpy(W * initrange * DIM ** 0.5))
        nn.init.constant_(self.v_embeddings.weight.data, 0)

    def forward(self, pos_u, pos_v, neg_v):
        emb_u = self.u_embeddings(pos_u)
        emb_v = self.v_embeddings(pos_v)
        emb_neg_v = self.v_embeddings(neg_v)
        score = torch.sum(torch.mul(emb_u, emb_v), dim=1)
        score = torch.clamp(score, max=10, min=-10)
        score = -F.logsigmoid(score)
        neg_score = torch.bmm(emb_neg_v, emb_u.unsqueeze(2)).squeeze()
        neg_score = torch.clamp(neg_score, max=10, min=-10)
        neg_score = -torch.sum(F.logsigmoid(-neg_score), dim=1)
        return torch.mean(score + neg_score)


results = {}
sg = SkipGramModel(V, DIM)
optimizer = torch.optim.SGD(sg.parameters(), lr=0.5)
batch, n_batches = 32, (len(pairs) + 31) // 32
losses = []
for epoch in range(2):
    for b in range(n_batches):
        lr = 0.5 * (1 - (epoch * n_batches + b) / (2 * n_batches))
        for g in optimizer.param_groups:
            g["lr"] = lr
        sl = slice(b * batch, (b + 1) * batch)
        pos_u = torch.from_numpy(pairs[sl, 0])
        pos_v = torch.from_numpy(pairs[sl, 1])
        neg_v = torch.from_numpy(negatives[sl])
        optimizer.zero_grad()
        loss = sg(pos_u, pos_v, neg_v)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
results["sgns"] = losses[::3]
results["sgns_grad_sparse"] = sg.u_embeddings.weight.grad.is_sparse
results["sgns_grad_nnz"] = sg.u_embeddings.weight.grad.coalesce()._nnz()

# CBOW: the context bag averaged by EmbeddingBag, scored against an output Linear
contexts, centres = [], []
for i in range(WINDOW, len(ids) - WINDOW):
    contexts.append(np.concatenate([ids[i - WINDOW:i], ids[i + 1:i + WINDOW + 1]]))
    centres.append(ids[i])
contexts, centres = np.array(contexts), np.array(centres)


class CBOW(nn.Module):
    def __init__(self):
        super().__init__()
        self.bag = nn.EmbeddingBag(V, DIM, mode="mean")
        self.out = nn.Linear(DIM, V)

    def forward(self, flat, offsets):
        return self.out(self.bag(flat, offsets))


cbow = CBOW()
W = reference_weights(cbow)
with torch.no_grad():
    for n, p in cbow.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.Adam(cbow.parameters(), lr=0.05)
losses = []
for step in range(8):
    sl = slice((step % 3) * 16, (step % 3) * 16 + 16)
    flat = torch.from_numpy(contexts[sl].reshape(-1))
    offsets = torch.arange(0, flat.numel(), 2 * WINDOW)
    opt.zero_grad()
    loss = F.cross_entropy(cbow(flat, offsets), torch.from_numpy(centres[sl]))
    loss.backward()
    opt.step()
    losses.append(loss.item())
results["cbow"] = losses


# fastText subwords: FNV-1a hashes of character n-grams (3..4) in "<word>"
def fnv1a(s):
    h = 2166136261
    for byte in s.encode("utf-8"):
        h = ((h ^ byte) * 16777619) % (1 << 32)
    return h


BUCKETS = 64


def subword_ids(word):
    w = "<" + word + ">"
    grams = [w[i:i + n] for n in (3, 4) for i in range(len(w) - n + 1)]
    return [stoi[word]] + [V + fnv1a(g) % BUCKETS for g in grams]


sub = [subword_ids(w) for w in itos]
flat = torch.tensor([i for s in sub for i in s])
offsets = torch.tensor([0] + [len(s) for s in sub[:-1]]).cumsum(dim=0)
ft_bag = nn.EmbeddingBag(V + BUCKETS, DIM, mode="sum")
W = reference_weights(ft_bag)
with torch.no_grad():
    ft_bag.weight.copy_(torch.from_numpy(W["weight"]))
    word_vecs = ft_bag(flat, offsets) / torch.tensor([len(s) for s in sub]).unsqueeze(1)
results["fasttext_vec"] = word_vecs[:3].sum(dim=1).tolist()
results["fasttext_offsets"] = offsets[:6].tolist()

# GloVe on a distance-weighted co-occurrence matrix
rows, cols, vals = [], [], []
for i in range(len(ids)):
    for d in range(1, WINDOW + 1):
        if i + d < len(ids):
            rows += [ids[i], ids[i + d]]
            cols += [ids[i + d], ids[i]]
            vals += [1.0 / d, 1.0 / d]
cooc = torch.zeros(V, V)
cooc.index_put_((torch.tensor(rows), torch.tensor(cols)), torch.tensor(vals),
                accumulate=True)
nz_i, nz_j = cooc.nonzero(as_tuple=True)
x_ij = cooc[nz_i, nz_j]


class GloVe(nn.Module):
    def __init__(self):
        super().__init__()
        self.wi = nn.Embedding(V, DIM)
        self.wj = nn.Embedding(V, DIM)
        self.bi = nn.Embedding(V, 1)
        self.bj = nn.Embedding(V, 1)

    def forward(self, i, j):
        dot = (self.wi(i) * self.wj(j)).sum(dim=1)
        return dot + self.bi(i).squeeze(1) + self.bj(j).squeeze(1)


glove = GloVe()
W = reference_weights(glove)
with torch.no_grad():
    for n, p in glove.named_parameters():
        p.copy_(torch.from_numpy(W[n]) * 0.5)
x_max, alpha = 5.0, 0.75
weights = torch.where(x_ij < x_max, (x_ij / x_max) ** alpha, torch.ones_like(x_ij))
opt = torch.optim.Adagrad(glove.parameters(), lr=0.1)
losses = []
for step in range(10):
    opt.zero_grad()
    loss = (weights * (glove(nz_i, nz_j) - torch.log(x_ij)) ** 2).sum() / x_ij.numel()
    loss.backward()
    opt.step()
    losses.append(loss.item())
results["glove"] = losses
results["cooc_total"] = cooc.sum().item()
results["cooc_nnz"] = int(nz_i.numel())

# evaluation: neighbours and analogies on W_in + W_out (GloVe's habit)
emb = (glove.wi.weight + glove.wj.weight).detach()
frozen = nn.Embedding.from_pretrained(emb, freeze=True)
results["frozen_requires_grad"] = frozen.weight.requires_grad
normed = F.normalize(emb, dim=1)
sims = normed @ normed[stoi["king"]]
top = sims.topk(4)
results["king_neighbours"] = [itos[i] for i in top.indices.tolist()]
results["king_sims"] = top.values.tolist()
cos = F.cosine_similarity(emb[stoi["queen"]].unsqueeze(0), emb, dim=1)
results["queen_cos"] = cos[:6].tolist()
query = normed[stoi["king"]] - normed[stoi["man"]] + normed[stoi["woman"]]
scores = normed @ F.normalize(query, dim=0)
scores[[stoi["king"], stoi["man"], stoi["woman"]]] = -float("inf")
results["analogy_scores"] = scores.topk(3).values.tolist()
sg_norm = F.normalize(sg.u_embeddings.weight.detach(), dim=1)
results["sgns_sims"] = (sg_norm[:4] @ sg_norm[:4].t()).tolist()

report(**results)
