# ESIM (Chen et al. 2017) for natural language inference as the PyTorch re-implementations
# write it: padded premise / hypothesis batches with lengths, a shared BiLSTM encoder over
# pack_padded_sequence(enforce_sorted=False), soft alignment by a batched similarity matrix
# with masked softmaxes in both directions (masking by multiplying, renormalising with a
# 1e-13 guard, as the reference code's masked_softmax), enhancement [a; a~; a - a~; a * a~],
# a projection with ReLU, a composition BiLSTM, masked average and max pooling (replace_masked
# with -1e7), a tanh MLP classifier with dropout off, Adam with gradient clipping and
# ReduceLROnPlateau(mode="max") on accuracy; and the attention rows' sums.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

rng = np.random.default_rng(127)
V, E, Hd, C = 30, 12, 10, 3


def make_pair():
    lp, lh = int(rng.integers(3, 9)), int(rng.integers(2, 7))
    p = rng.integers(2, V, lp)
    label = int(rng.integers(0, C))
    if label == 0:  # entailment: hypothesis drawn from the premise
        h = rng.choice(p, lh)
    elif label == 1:  # contradiction: a negation token 1 then premise words
        h = np.concatenate([[1], rng.choice(p, lh - 1)])
    else:
        h = rng.integers(2, V, lh)
    return p, h, label


pairs = [make_pair() for _ in range(48)]


def batchify(ps):
    lp = torch.tensor([len(p) for p, _, _ in ps])
    lh = torch.tensor([len(h) for _, h, _ in ps])
    P = torch.zeros(len(ps), int(lp.max()), dtype=torch.long)
    Hh = torch.zeros(len(ps), int(lh.max()), dtype=torch.long)
    for i, (p, h, _) in enumerate(ps):
        P[i, : len(p)] = torch.from_numpy(p)
        Hh[i, : len(h)] = torch.from_numpy(h)
    return P, lp, Hh, lh, torch.tensor([lab for _, _, lab in ps])


def get_mask(lengths, max_len):
    return (torch.arange(max_len)[None] < lengths[:, None]).float()


def masked_softmax(tensor, mask):
    tensor_shape = tensor.size()
    reshaped_tensor = tensor.view(-1, tensor_shape[-1])
    while mask.dim() < tensor.dim():
        mask = mask.unsqueeze(1)
    mask = mask.expand_as(tensor).contiguous().float()
    reshaped_mask = mask.view(-1, mask.size()[-1])
    result = nn.functional.softmax(reshaped_tensor * reshaped_mask, dim=-1)
    result = result * reshaped_mask
    result = result / (result.sum(dim=-1, keepdim=True) + 1e-13)
    return result.view(*tensor_shape)


def weighted_sum(tensor, weights, mask):
    weighted = weights.bmm(tensor)
    mask = mask.unsqueeze(1).transpose(-1, -2).float()
    return weighted * mask


def replace_masked(tensor, mask, value):
    mask = mask.unsqueeze(1).transpose(2, 1)
    reverse_mask = 1.0 - mask
    return tensor * mask + reverse_mask * value


class Seq2SeqEncoder(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=True)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


class ESIM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, E, padding_idx=0)
        self.encoding = Seq2SeqEncoder(E, Hd)
        self.projection = nn.Sequential(nn.Linear(4 * 2 * Hd, Hd), nn.ReLU())
        self.composition = Seq2SeqEncoder(Hd, Hd)
        self.classification = nn.Sequential(
            nn.Dropout(p=0.0),
            nn.Linear(2 * 4 * Hd, Hd),
            nn.Tanh(),
            nn.Dropout(p=0.0),
            nn.Linear(Hd, C),
        )

    def forward(self, premises, premises_lengths, hypotheses, hypotheses_lengths):
        pm = get_mask(premises_lengths, premises.shape[1])
        hm = get_mask(hypotheses_lengths, hypotheses.shape[1])
        ep = self.encoding(self.emb(premises), premises_lengths)
        eh = self.encoding(self.emb(hypotheses), hypotheses_lengths)
        sim = ep.bmm(eh.transpose(2, 1).contiguous())
        prem_hyp_attn = masked_softmax(sim, hm)
        hyp_prem_attn = masked_softmax(sim.transpose(1, 2).contiguous(), pm)
        att_p = weighted_sum(eh, prem_hyp_attn, pm)
        att_h = weighted_sum(ep, hyp_prem_attn, hm)
        enh_p = torch.cat([ep, att_p, ep - att_p, ep * att_p], dim=-1)
        enh_h = torch.cat([eh, att_h, eh - att_h, eh * att_h], dim=-1)
        vp = self.composition(self.projection(enh_p), premises_lengths)
        vh = self.composition(self.projection(enh_h), hypotheses_lengths)
        vp_avg = torch.sum(vp * pm.unsqueeze(1).transpose(2, 1), dim=1) / torch.sum(
            pm, dim=1, keepdim=True
        )
        vh_avg = torch.sum(vh * hm.unsqueeze(1).transpose(2, 1), dim=1) / torch.sum(
            hm, dim=1, keepdim=True
        )
        vp_max, _ = replace_masked(vp, pm, -1e7).max(dim=1)
        vh_max, _ = replace_masked(vh, hm, -1e7).max(dim=1)
        v = torch.cat([vp_avg, vp_max, vh_avg, vh_max], dim=1)
        return self.classification(v), prem_hyp_attn


model = ESIM()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
    model.emb.weight[0].zero_()
opt = torch.optim.Adam(model.parameters(), lr=4e-3)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0)
losses, accs, lrs = [], [], []
for epoch in range(4):
    model.train()
    for i in range(0, 48, 12):
        P, lp, Hh, lh, y = batchify(pairs[i : i + 12])
        logits, _ = model(P, lp, Hh, lh)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        P, lp, Hh, lh, y = batchify(pairs)
        logits, attn = model(P, lp, Hh, lh)
        acc = (logits.argmax(1) == y).float().mean().item()
    sched.step(acc)
    accs.append(acc)
    lrs.append(opt.param_groups[0]["lr"])
report(
    losses=losses,
    accs=accs,
    lrs=lrs,
    attn_rows=attn[0].sum(-1).tolist(),
    logits=logits[:3].flatten().tolist(),
)
