# Listen, Attend and Spell (Chan et al. 2016) as the PyTorch reimplementations write it: a
# pyramidal BiLSTM listener that halves time by reshaping (B, T, D) -> (B, T/2, 2D) between
# layers on packed sequences (pack_padded_sequence / pad_packed_sequence(total_length=)), odd
# frames dropped by slicing, an MLP-projected dot-product attention over the listener with
# masked_fill of padded frames, an LSTMCell speller fed [embedding, context], teacher forcing
# decided per step from NumPy (scheduled sampling, the sampled token from argmax under detach),
# label-smoothed cross-entropy with ignore_index on padded targets, Adam with ReduceLROnPlateau,
# and a beam search (log_softmax + topk over the flattened beam x vocab, // and % to split the
# index, finished hypotheses by length-normalised scores); CER by edit distance on the decodes.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

rng = np.random.default_rng(97)
VOC, SOS, EOS, PAD = 8, 1, 2, 0
FEAT, B = 6, 6
protos = rng.standard_normal((VOC, FEAT)).astype(np.float32)


def utterance():
    n = int(rng.integers(2, 5))
    toks = rng.integers(3, VOC, n)
    frames = np.concatenate([np.repeat(protos[t][None], int(rng.integers(3, 6)), 0) for t in toks])
    frames = frames + 0.2 * rng.standard_normal(frames.shape).astype(np.float32)
    return frames, list(toks) + [EOS]


utts = [utterance() for _ in range(B)]
xlens = torch.tensor([u[0].shape[0] for u in utts])
T = int(xlens.max())
X = torch.zeros(B, T, FEAT)
for i, (f, _) in enumerate(utts):
    X[i, : len(f)] = torch.from_numpy(f)
ylens = [len(u[1]) for u in utts]
U = max(ylens)
Yt = torch.full((B, U), PAD, dtype=torch.long)
for i, (_, y) in enumerate(utts):
    Yt[i, : len(y)] = torch.tensor(y)


class PBLSTM(nn.Module):
    def __init__(self, d_in, h):
        super().__init__()
        self.lstm = nn.LSTM(d_in * 2, h, batch_first=True, bidirectional=True)

    def forward(self, x, lens):
        b, t, d = x.shape
        if t % 2:
            x = x[:, :-1]
            t -= 1
        x = x.contiguous().view(b, t // 2, d * 2)
        lens = torch.div(lens, 2, rounding_mode="floor")
        packed = pack_padded_sequence(x, lens.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=t // 2)
        return out, lens


class Listener(nn.Module):
    def __init__(self, h=12):
        super().__init__()
        self.base = nn.LSTM(FEAT, h, batch_first=True, bidirectional=True)
        self.p1 = PBLSTM(2 * h, h)
        self.p2 = PBLSTM(2 * h, h)

    def forward(self, x, lens):
        packed = pack_padded_sequence(x, lens, batch_first=True, enforce_sorted=False)
        out, _ = self.base(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
        out, lens = self.p1(out, lens)
        out, lens = self.p2(out, lens)
        return out, lens


class Speller(nn.Module):
    def __init__(self, enc_dim=24, h=24, emb=8, att=16):
        super().__init__()
        self.emb = nn.Embedding(VOC, emb, padding_idx=PAD)
        self.cell = nn.LSTMCell(emb + enc_dim, h)
        self.phi = nn.Linear(h, att)
        self.psi = nn.Linear(enc_dim, att)
        self.out = nn.Linear(h + enc_dim, VOC)
        self.h = h

    def attend(self, s, keys, values, mask):
        e = torch.bmm(keys, self.phi(s).unsqueeze(2)).squeeze(2)
        e = e.masked_fill(~mask, float("-inf"))
        a = F.softmax(e, dim=1)
        return torch.bmm(a.unsqueeze(1), values).squeeze(1), a

    def step(self, tok, state, ctx, keys, values, mask):
        h, c = self.cell(torch.cat([self.emb(tok), ctx], 1), state)
        ctx, a = self.attend(h, keys, values, mask)
        return self.out(torch.cat([h, ctx], 1)), (h, c), ctx, a


class LAS(nn.Module):
    def __init__(self):
        super().__init__()
        self.listener = Listener()
        self.speller = Speller()

    def encode(self, x, lens):
        enc, elens = self.listener(x, lens)
        mask = torch.arange(enc.size(1)).unsqueeze(0) < elens.unsqueeze(1)
        return enc, self.speller.psi(enc), mask

    def forward(self, x, lens, y, tf_flags):
        enc, keys, mask = self.encode(x, lens)
        b = x.size(0)
        state = (enc.new_zeros(b, self.speller.h), enc.new_zeros(b, self.speller.h))
        ctx = enc.new_zeros(b, enc.size(2))
        tok = torch.full((b,), SOS, dtype=torch.long)
        logits = []
        for t in range(y.size(1)):
            lg, state, ctx, _ = self.speller.step(tok, state, ctx, keys, enc, mask)
            logits.append(lg)
            tok = y[:, t] if tf_flags[t] else lg.detach().argmax(1)
        return torch.stack(logits, 1)

    @torch.no_grad()
    def beam_search(self, x, lens, beam=3, max_len=8):
        enc, keys, mask = self.encode(x, lens)
        hyps = [
            (
                [SOS],
                0.0,
                (enc.new_zeros(1, self.speller.h), enc.new_zeros(1, self.speller.h)),
                enc.new_zeros(1, enc.size(2)),
            )
        ]
        finished = []
        for _ in range(max_len):
            cand_scores, cand_states = [], []
            for seq, score, state, ctx in hyps:
                lg, st, cx, _ = self.speller.step(
                    torch.tensor([seq[-1]]), state, ctx, keys, enc, mask
                )
                cand_scores.append(score + F.log_softmax(lg, -1)[0])
                cand_states.append((st, cx))
            flat = torch.stack(cand_scores).view(-1)
            top, idx = flat.topk(min(beam, flat.numel()))
            new = []
            for s, i in zip(top.tolist(), idx.tolist()):
                h_i, tok = i // VOC, i % VOC
                seq = hyps[h_i][0] + [tok]
                if tok == EOS:
                    finished.append((seq, s / (len(seq) - 1)))
                else:
                    new.append((seq, s, *cand_states[h_i]))
            hyps = new
            if not hyps:
                break
        best = max(finished, key=lambda f: f[1]) if finished else (hyps[0][0], hyps[0][1])
        return best[0][1:], best[1]


def edit_distance(a, b):
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1]


model = LAS()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=1)
losses, tf_rates = [], []
for epoch in range(12):
    tf_rate = max(0.6, 1.0 - 0.05 * epoch)
    flags = (rng.uniform(size=U) < tf_rate).tolist()
    logits = model(X, xlens, Yt, flags)
    loss = F.cross_entropy(
        logits.reshape(-1, VOC), Yt.reshape(-1), ignore_index=PAD, label_smoothing=0.1
    )
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    plateau.step(loss.item())
    losses.append(loss.item())
    tf_rates.append(sum(flags))

model.eval()
decodes, scores, errs = [], [], 0
for i in range(B):
    seq, sc = model.beam_search(X[i : i + 1, : int(xlens[i])], xlens[i : i + 1])
    decodes.append(seq)
    scores.append(sc)
    errs += edit_distance(seq, utts[i][1])
report(
    enc_lens=[
        int(v)
        for v in torch.div(torch.div(xlens, 2, rounding_mode="floor"), 2, rounding_mode="floor")
    ],
    losses=losses,
    tf=tf_rates,
    lr=opt.param_groups[0]["lr"],
    decodes=decodes,
    scores=scores,
    cer=errs / sum(ylens),
)
