# Speculative decoding (Leviathan et al. 2023; Chen et al. 2023) as minimal reference code
# writes it: a small draft LM and a larger target LM (GRU LMs trained a few steps on a
# synthetic grammar), the draft proposing gamma tokens, the target scoring them in one forward,
# acceptance by min(1, p/q) against uniforms, the residual distribution max(p - q, 0)
# renormalised, a bonus token; greedy speculative decoding that must equal the target's own
# greedy output; acceptance rates. Uniforms and categorical draws come from NumPy so that both
# libraries take the same decisions.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

V = 12
rng = np.random.default_rng(8)
trans = rng.dirichlet(np.full(V, 0.3), size=V)
seqs = np.zeros((32, 20), dtype=np.int64)
for b in range(32):
    t = rng.integers(V)
    for i in range(20):
        seqs[b, i] = t
        t = rng.choice(V, p=trans[t])
data = torch.from_numpy(seqs)


class GRULM(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.emb = nn.Embedding(V, d)
        self.rnn = nn.GRU(d, d, batch_first=True)
        self.out = nn.Linear(d, V)

    def forward(self, x, h=None):
        y, h = self.rnn(self.emb(x), h)
        return self.out(y), h


def train(model, steps, lr):
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        logits, _ = model(data[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, V), data[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


draft, target = GRULM(8), GRULM(24)
draft_losses = train(draft, 8, 3e-2)
target_losses = train(target, 8, 3e-2)
draft.eval()
target.eval()


@torch.no_grad()
def probs_of(model, prefix):
    logits, _ = model(prefix[None])
    return F.softmax(logits[0], dim=-1)


def sample(p, u):
    c = np.cumsum(p.double().numpy())
    return int(min(np.searchsorted(c, u * c[-1], side="right"), V - 1))


@torch.no_grad()
def speculative(prefix, n_new, gamma, urng):
    seq = prefix.clone()
    accepted = proposed = 0
    while seq.numel() < prefix.numel() + n_new:
        q_list, draft_tok = [], seq.clone()
        for _ in range(gamma):
            q = probs_of(draft, draft_tok)[-1]
            tok = sample(q, urng.uniform())
            q_list.append(q)
            draft_tok = torch.cat([draft_tok, torch.tensor([tok])])
        p_all = probs_of(target, draft_tok)[seq.numel() - 1 :]
        n_ok = 0
        for i in range(gamma):
            tok = int(draft_tok[seq.numel() + i])
            ratio = (p_all[i, tok] / q_list[i][tok]).item()
            proposed += 1
            if urng.uniform() < min(1.0, ratio):
                n_ok += 1
            else:
                break
        accepted += n_ok
        seq = draft_tok[: seq.numel() + n_ok]
        if n_ok < gamma:
            resid = (p_all[n_ok] - q_list[n_ok]).clamp(min=0)
            resid = resid / resid.sum()
            nxt = sample(resid, urng.uniform())
        else:
            nxt = sample(p_all[gamma], urng.uniform())
        seq = torch.cat([seq, torch.tensor([nxt])])
    return seq[: prefix.numel() + n_new], accepted / proposed


@torch.no_grad()
def greedy(model, prefix, n_new):
    seq = prefix.clone()
    for _ in range(n_new):
        seq = torch.cat([seq, probs_of(model, seq)[-1].argmax().view(1)])
    return seq


@torch.no_grad()
def greedy_speculative(prefix, n_new, gamma):
    seq = prefix.clone()
    calls = 0
    while seq.numel() < prefix.numel() + n_new:
        cand = greedy(draft, seq, gamma)
        tgt = probs_of(target, cand).argmax(-1)[seq.numel() - 1 :]
        calls += 1
        match = (tgt[:gamma] == cand[seq.numel() :]).long()
        n_ok = int(match.cumprod(0).sum())
        seq = torch.cat([cand[: seq.numel() + n_ok], tgt[n_ok].view(1)])
    return seq[: prefix.numel() + n_new], calls


prefix = data[0, :4]
urng = np.random.default_rng(0)
samples, rates = [], []
for k in range(2):
    s, r = speculative(data[k, :3], 12, 3, urng)
    samples.append(s.tolist())
    rates.append(r)
g_target = greedy(target, prefix, 12)
g_spec, calls = greedy_speculative(prefix, 12, 4)

report(
    draft_losses=draft_losses,
    target_losses=target_losses,
    samples=samples,
    rates=rates,
    greedy=g_target.tolist(),
    greedy_spec_equal=bool(torch.equal(g_target, g_spec)),
    calls=calls,
)
