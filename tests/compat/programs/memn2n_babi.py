# End-to-end memory networks (Sukhbaatar et al. 2015) on a bAbI-style task, as the PyTorch
# re-implementations write them: stories of sentences tokenised into a vocabulary, padded into
# (B, memory, sentence) index tensors, position encoding weights l_kj, adjacent weight tying
# across 3 hops (A_{k+1} = C_k, nn.ModuleList of embeddings with padding_idx=0), temporal
# encodings as learned Parameters, softmax attention over memories with the padded memories
# masked, u_{k+1} = u_k + o_k, the answer through the last C's weight transposed, SGD with
# gradient clipping and an annealed learning rate by MultiStepLR; then the attention weights on
# the supporting fact and linear-start (softmax removed for the first epochs).
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(61)
people = ["mary", "john", "sandra", "daniel"]
places = ["kitchen", "garden", "office", "hallway", "bathroom"]


def make_story():
    sents, where = [], {}
    for _ in range(int(rng.integers(3, 7))):
        p, loc = rng.choice(people), rng.choice(places)
        sents.append(f"{p} went to the {loc}".split())
        where[p] = (loc, len(sents) - 1)
    q = rng.choice(list(where))
    return sents, f"where is {q}".split(), where[q][0], where[q][1]


data = [make_story() for _ in range(40)]
vocab = ["<pad>"] + sorted(
    {w for s, q, a, _ in data for sent in s + [q] for w in sent} | set(places)
)
w2i = {w: i for i, w in enumerate(vocab)}
M, J = 6, 5


def vectorize(batch):
    S = torch.zeros(len(batch), M, J, dtype=torch.long)
    Q = torch.zeros(len(batch), J, dtype=torch.long)
    A = torch.zeros(len(batch), dtype=torch.long)
    for b, (sents, q, a, _) in enumerate(batch):
        for m, sent in enumerate(sents[-M:]):
            S[b, m, : len(sent)] = torch.tensor([w2i[w] for w in sent])
        Q[b, : len(q)] = torch.tensor([w2i[w] for w in q])
        A[b] = w2i[a]
    return S, Q, A


def position_encoding(sentence_size, embedding_dim):
    encoding = np.ones((embedding_dim, sentence_size), dtype=np.float32)
    ls, le = sentence_size + 1, embedding_dim + 1
    for i in range(1, le):
        for j in range(1, ls):
            encoding[i - 1, j - 1] = (i - (embedding_dim + 1) / 2) * (j - (sentence_size + 1) / 2)
    encoding = 1 + 4 * encoding / embedding_dim / sentence_size
    return torch.from_numpy(np.transpose(encoding))


class MemN2N(nn.Module):
    def __init__(self, vocab_size, d=16, hops=3):
        super().__init__()
        self.hops = hops
        self.C = nn.ModuleList(
            [nn.Embedding(vocab_size, d, padding_idx=0) for _ in range(hops + 1)]
        )
        self.TA = nn.Parameter(torch.zeros(M, d))
        self.TC = nn.Parameter(torch.zeros(M, d))
        self.register_buffer("encoding", position_encoding(J, d))
        self.linear_start = False

    def forward(self, story, query):
        u = (self.C[0](query) * self.encoding).sum(1)  # B = A_1 (query embedding)
        mem_mask = story.sum(2) > 0
        attns = []
        for hop in range(self.hops):
            m = (self.C[hop](story) * self.encoding).sum(2) + self.TA
            c = (self.C[hop + 1](story) * self.encoding).sum(2) + self.TC
            scores = torch.einsum("bmd,bd->bm", m, u).masked_fill(~mem_mask, -1e9)
            p = scores.masked_fill(~mem_mask, 0) if self.linear_start else F.softmax(scores, -1)
            o = torch.einsum("bm,bmd->bd", p, c)
            u = u + o
            attns.append(p)
        return u @ self.C[self.hops].weight.t(), torch.stack(attns, 1)


model = MemN2N(len(vocab))
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]) * 0.3)
    for emb in model.C:
        emb.weight[0].zero_()
opt = torch.optim.SGD(model.parameters(), lr=0.05)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[4, 7], gamma=0.5)
S, Q, A = vectorize(data)
losses, lrs = [], []
for epoch in range(9):
    model.linear_start = epoch < 2
    for i in range(0, len(data), 10):
        logits, _ = model(S[i : i + 10], Q[i : i + 10])
        loss = F.cross_entropy(logits, A[i : i + 10], reduction="sum")
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 40.0)
        opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(sched.get_last_lr()[0])

model.eval()
with torch.no_grad():
    logits, attn = model(S, Q)
    acc = (logits.argmax(1) == A).float().mean().item()
    support = torch.tensor([min(d[3], M - 1) for d in data])
    on_support = attn[torch.arange(len(data)), -1, support].mean().item()
report(
    losses=losses,
    lrs=lrs,
    accuracy=acc,
    attention_on_support=on_support,
    attn0=attn[0, :, :4].flatten().tolist(),
    pad_grad_row=model.C[1].weight[0].abs().sum().item(),
)
