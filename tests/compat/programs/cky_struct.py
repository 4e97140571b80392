# Structured prediction in the torch-struct style: a CRF constituency parser whose inside
# algorithm runs CKY over span scores with logsumexp (a chart of per-width tensors filled by
# diagonal / unfold-free indexing, stack over split points), span marginals as the gradient of
# log Z by autograd.grad, a Viterbi CKY (max with argmax back-pointers) decoded by an explicit
# stack, the gold tree's score by a boolean span mask, and a BiLSTM span scorer (fencepost
# differences, scores placed by index_put over triu_indices) trained on the CRF likelihood,
# then a max-margin variant (Hamming cost added to the scores). Also a linear-chain
# semi-Markov CRF (segments up to length 3) whose partition function is checked against
# brute-force enumeration. The scorer's last Linear has no bias: every tree has 2N - 1 spans,
# so a constant cancels in both losses and its gradient is 0 up to rounding. Both phases run on
# SGD(lr 0.05, momentum 0.9): under Adam(lr 1e-2) a few of the ~3,000 gradient elements were
# 1e-6 of their tensor's largest at the first step, so their sign was float32 rounding and
# Adam's first (sign) step moved them by the full lr (log Z 9e-5 apart after 16 steps); at SGD
# lr 0.1 the scores grew 20-fold and each library's float32 log Z ended 7e-6 (relative) from the
# float64 run, on opposite sides. In float64 the two agree to 1e-14.
import itertools

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(23)
N, V, D = 6, 20, 12


def random_tree(i, j, spans):
    spans.append((i, j))
    if j - i > 1:
        k = int(rng.integers(i + 1, j))
        random_tree(i, k, spans)
        random_tree(k, j, spans)
    return spans


sents = [torch.from_numpy(rng.integers(0, V, N)) for _ in range(4)]
golds = [random_tree(0, N, []) for _ in range(4)]


def inside(scores):
    """scores: (N, N+1) span scores s[i, j] for i < j. Returns log Z."""
    n = scores.shape[0]
    beta = [[None] * (n + 1) for _ in range(n + 1)]
    for i in range(n):
        beta[i][i + 1] = scores[i, i + 1]
    for w in range(2, n + 1):
        for i in range(n - w + 1):
            j = i + w
            parts = torch.stack([beta[i][k] + beta[k][j] for k in range(i + 1, j)])
            beta[i][j] = torch.logsumexp(parts, 0) + scores[i, j]
    return beta[0][n]


def viterbi(scores):
    n = scores.shape[0]
    best = {}
    back = {}
    s = scores.detach()
    for i in range(n):
        best[i, i + 1] = s[i, i + 1]
    for w in range(2, n + 1):
        for i in range(n - w + 1):
            j = i + w
            cand = torch.stack([best[i, k] + best[k, j] for k in range(i + 1, j)])
            v, a = cand.max(0)
            best[i, j] = v + s[i, j]
            back[i, j] = i + 1 + int(a)
    spans, stack = [], [(0, n)]
    while stack:
        i, j = stack.pop()
        spans.append((i, j))
        if j - i > 1:
            k = back[i, j]
            stack.append((k, j))
            stack.append((i, k))
    return best[0, n].item(), sorted(spans)


def span_mask(spans, n):
    m = torch.zeros(n, n + 1, dtype=torch.bool)
    for i, j in spans:
        m[i, j] = True
    return m


class SpanScorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.lstm = nn.LSTM(D, D, bidirectional=True, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(2 * D, 16), nn.Tanh(), nn.Linear(16, 1, bias=False))

    def forward(self, words):
        h, _ = self.lstm(self.emb(words).unsqueeze(0))
        h = h[0]
        fwd, bwd = h[:, :D], h[:, D:]
        fwd = torch.cat([torch.zeros(1, D), fwd], 0)  # fenceposts 0..N
        bwd = torch.cat([bwd, torch.zeros(1, D)], 0)
        n = words.shape[0]
        i_idx, j_idx = torch.triu_indices(n + 1, n + 1, offset=1)
        keep = i_idx < n
        i_idx, j_idx = i_idx[keep], j_idx[keep]
        feats = torch.cat([fwd[j_idx] - fwd[i_idx], bwd[i_idx] - bwd[j_idx]], -1)
        s = self.mlp(feats).squeeze(-1)
        scores = torch.zeros(n, n + 1).index_put((i_idx, j_idx), s)
        return scores


model = SpanScorer()
Wt = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(Wt[n]))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
crf_losses, margin_losses = [], []
for epoch in range(4):
    for words, gold in zip(sents, golds):
        scores = model(words)
        gm = span_mask(gold, N)
        logz = inside(scores)
        loss = logz - scores[gm].sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        crf_losses.append(loss.item())
sgd = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for words, gold in zip(sents, golds):
    scores = model(words)
    gm = span_mask(gold, N)
    cost = (~gm).float()  # Hamming: +1 on every non-gold span
    cost[:, 0] = 0
    aug = scores + cost
    best, pred = viterbi(aug)
    loss = torch.clamp(aug[span_mask(pred, N)].sum() - scores[gm].sum(), min=0)
    sgd.zero_grad()
    loss.backward()
    sgd.step()
    margin_losses.append(loss.item())

# marginals = d log Z / d scores
scores = model(sents[0]).detach().requires_grad_(True)
logz = inside(scores)
(marg,) = torch.autograd.grad(logz, scores)
best, pred = viterbi(scores)
decoded = [viterbi(model(w))[1] for w in sents]
f1s = []
for d_, g in zip(decoded, golds):
    hit = len(set(d_) & set(g))
    f1s.append(2 * hit / (len(d_) + len(g)))


# semi-Markov CRF: segments of length 1..3 with a score per (start, length, label)
def semimarkov_logz(seg):  # seg: (T, Lmax, C)
    T_, Lmax, _ = seg.shape
    alpha = [torch.zeros(())]
    for j in range(1, T_ + 1):
        terms = [
            alpha[j - k] + torch.logsumexp(seg[j - k, k - 1], 0) for k in range(1, min(Lmax, j) + 1)
        ]
        alpha.append(torch.logsumexp(torch.stack(terms), 0))
    return alpha[T_]


seg = torch.from_numpy(rng.standard_normal((5, 3, 2))).requires_grad_(True)
lz = semimarkov_logz(seg)
brute = []
for cut in itertools.product([0, 1], repeat=4):
    bounds = [0] + [i + 1 for i, c in enumerate(cut) if c] + [5]
    lens = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    if max(lens) > 3:
        continue
    brute.append(
        sum(torch.logsumexp(seg[a, b - a - 1], 0) for a, b in zip(bounds[:-1], bounds[1:]))
    )
lz_brute = torch.logsumexp(torch.stack(brute), 0)
(gseg,) = torch.autograd.grad(lz, seg)

report(
    crf_losses=crf_losses,
    margin_losses=margin_losses,
    logz=logz.item(),
    marg_root=marg[0, N].item(),
    marg_width1=marg.diagonal(offset=1).tolist(),
    marg_total=marg.sum().item(),
    viterbi_best=best,
    pred=[list(s) for s in pred],
    f1s=f1s,
    semi_logz=lz.item(),
    semi_match=abs(lz.item() - lz_brute.item()) < 1e-9,
    semi_grad=gseg.sum((1, 2)).tolist(),
)
