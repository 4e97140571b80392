# Large-vocabulary output layers for a word LSTM LM, as fairseq / the Transformer-XL and
# word_language_model code write them: nn.AdaptiveLogSoftmaxWithLoss (cutoffs, div_value,
# head_bias) returning (output, loss), its log_prob and predict checked against each other and
# a gather; a class-based two-level softmax by hand (word -> frequency class, class and
# within-class log-softmax over a padded class table); sampled softmax with a log-uniform
# (Zipfian) candidate sampler drawn in NumPy, logQ correction, accidental hits masked to -1e9 by
# scatter-free comparison; tied input / output embeddings for the full softmax baseline;
# detach()'ed hidden states carried across BPTT chunks (repackage_hidden), SGD with clip, a
# ReduceLROnPlateau on validation perplexity.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(43)
V, E, H, BPTT, B = 60, 16, 16, 8, 4
# Zipf-distributed corpus with a little structure: next token often = (tok * 7 + 3) % V
ranks = np.arange(1, V + 1)
zipf = 1 / ranks / (1 / ranks).sum()
seq = [int(rng.choice(V, p=zipf))]
for _ in range(B * BPTT * 6 + 1):
    nxt = (seq[-1] * 7 + 3) % V if rng.uniform() < 0.5 else int(rng.choice(V, p=zipf))
    seq.append(nxt)
data = torch.tensor(seq[: B * (len(seq) // B)]).view(B, -1).t().contiguous()  # (T, B)
train, valid = data[:40], data[40:]


def get_batch(src, i):
    n = min(BPTT, len(src) - 1 - i)
    return src[i : i + n], src[i + 1 : i + 1 + n].reshape(-1)


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


class RNNModel(nn.Module):
    def __init__(self, head):
        super().__init__()
        self.encoder = nn.Embedding(V, E)
        self.rnn = nn.LSTM(E, H)
        self.head_kind = head
        if head == "adaptive":
            self.crit = nn.AdaptiveLogSoftmaxWithLoss(
                H, V, cutoffs=[8, 24], div_value=2.0, head_bias=True
            )
        elif head == "classes":
            self.n_cls = 4
            self.cls_of = torch.arange(V) * self.n_cls // V  # frequency-sorted ids -> class
            self.pos_in = torch.arange(V) - self.cls_of * (V // self.n_cls)
            self.cls_head = nn.Linear(H, self.n_cls)
            self.word_heads = nn.Parameter(torch.empty(self.n_cls, V // self.n_cls, H))
        else:
            self.decoder = nn.Linear(H, V)
            self.decoder.weight = self.encoder.weight  # tied (E == H)

    def init_hidden(self, bsz):
        w = next(self.parameters())
        return (w.new_zeros(1, bsz, H), w.new_zeros(1, bsz, H))

    def forward(self, x, hidden):
        out, hidden = self.rnn(self.encoder(x), hidden)
        return out.reshape(-1, H), hidden

    def nll(self, h, y, sampled=None):
        if self.head_kind == "adaptive":
            return self.crit(h, y).loss
        if self.head_kind == "classes":
            c = self.cls_of[y]
            lp_c = F.log_softmax(self.cls_head(h), -1).gather(1, c[:, None]).squeeze(1)
            w = self.word_heads[c]  # (N, V / n_cls, H)
            lp_w = F.log_softmax(torch.bmm(w, h.unsqueeze(2)).squeeze(2), -1)
            lp_w = lp_w.gather(1, self.pos_in[y][:, None]).squeeze(1)
            return -(lp_c + lp_w).mean()
        logits = self.decoder(h)
        if sampled is None:
            return F.cross_entropy(logits, y)
        ids, logq = sampled
        true_logit = logits.gather(1, y[:, None]) - logq[y][:, None]
        samp_logit = logits[:, ids] - logq[ids][None]
        samp_logit = samp_logit.masked_fill(ids[None] == y[:, None], -1e9)
        lg = torch.cat([true_logit, samp_logit], 1)
        return F.cross_entropy(lg, torch.zeros(len(y), dtype=torch.long))


def log_uniform_sample(n):
    # P(k) = log((k + 2) / (k + 1)) / log(V + 1)
    u = rng.uniform(size=n)
    ids = np.minimum((np.exp(u * np.log(V + 1)) - 1).astype(np.int64), V - 1)
    ids = np.unique(ids)
    k = torch.arange(V, dtype=torch.float32)
    logq = torch.log(torch.log((k + 2) / (k + 1)) / math.log(V + 1) * n)
    return torch.from_numpy(ids), logq


def evaluate(model, src):
    model.eval()
    total, count = 0.0, 0
    hidden = model.init_hidden(B)
    with torch.no_grad():
        for i in range(0, src.size(0) - 1, BPTT):
            x, y = get_batch(src, i)
            h, hidden = model(x, hidden)
            total += model.nll(h, y).item() * len(y)
            count += len(y)
    return total / count


results = {}
for head in ("adaptive", "classes", "full", "sampled"):
    model = RNNModel("full" if head == "sampled" else head)
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    lr = 1.0
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    losses, val_ppl = [], []
    for epoch in range(3):
        model.train()
        hidden = model.init_hidden(B)
        for i in range(0, train.size(0) - 1, BPTT):
            x, y = get_batch(train, i)
            hidden = repackage_hidden(hidden)
            h, hidden = model(x, hidden)
            loss = model.nll(h, y, log_uniform_sample(20) if head == "sampled" else None)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            losses.append(loss.item())
        v = evaluate(model, valid)
        plateau.step(v)
        val_ppl.append(math.exp(v))
    results[head] = dict(losses=losses, val_ppl=val_ppl, lr=opt.param_groups[0]["lr"])
    if head == "adaptive":
        with torch.no_grad():
            x, y = get_batch(valid, 0)
            h, _ = model(x, model.init_hidden(B))
            out = model.crit(h, y)
            lp = model.crit.log_prob(h)
            results["adaptive_check"] = dict(
                out_vs_gather=(out.output - lp.gather(1, y[:, None]).squeeze(1)).abs().max().item()
                < 1e-5,
                prob_sum=lp.exp().sum(1).tolist(),
                predict=model.crit.predict(h).tolist(),
                argmax_same=bool((model.crit.predict(h) == lp.argmax(1)).all()),
                tail_shapes=[list(t[1].weight.shape) for t in model.crit.tail],
                head_shape=list(model.crit.head.weight.shape),
            )

report(**results)
