# Recurrent layers as sequence-labelling and classification code uses them: nn.RNN (relu),
# nn.GRU and nn.LSTM (proj_size) with num_layers=2, bidirectional=True, batch_first, given h0 /
# c0; pack_padded_sequence(enforce_sorted=False) and pad_packed_sequence(total_length=),
# PackedSequence fields (batch_sizes, sorted_indices, unsorted_indices), pack_sequence /
# pad_sequence, the final states read from h_n.view(layers, directions, batch, hidden) checked
# against the outputs gathered at each length, a bidirectional GRU layer rebuilt by hand from
# weight_ih_l0 / weight_hh_l0_reverse (and by nn.GRUCell with copied weights), all_weights,
# flatten_parameters(); a tagger (CrossEntropyLoss(ignore_index) on the padded positions) and
# a classifier trained with Adam and clip_grad_norm_.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import (
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
)

torch.manual_seed(0)
rng = np.random.default_rng(77)

B, T, D, Hd, NTAG = 5, 9, 4, 6, 3
lengths = torch.tensor([9, 4, 7, 2, 6])
x = torch.from_numpy(rng.standard_normal((B, T, D)).astype(np.float32))
mask = torch.arange(T)[None, :] < lengths[:, None]
x = x * mask.unsqueeze(-1)
tags = torch.from_numpy(rng.integers(0, NTAG, (B, T)))
tags = tags.masked_fill(~mask, -100)
labels = torch.tensor([0, 1, 1, 0, 1])


def load(module):
    W = reference_weights(module)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return module


rnn = load(nn.RNN(D, Hd, num_layers=2, nonlinearity="relu", batch_first=True,
                  bidirectional=True))
gru = load(nn.GRU(D, Hd, num_layers=2, batch_first=True, bidirectional=True))
lstm = load(nn.LSTM(D, Hd, num_layers=2, batch_first=True, bidirectional=True, proj_size=4))
h0 = torch.from_numpy(rng.standard_normal((4, B, Hd)).astype(np.float32)) * 0.1

packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
packed_info = [packed.batch_sizes.tolist(), packed.sorted_indices.tolist(),
               packed.unsorted_indices.tolist(), list(packed.data.shape)]

out_rnn, h_rnn = rnn(packed, h0)
out_rnn, out_lens = pad_packed_sequence(out_rnn, batch_first=True, total_length=T)
out_gru, h_gru = gru(packed, h0)
out_gru, _ = pad_packed_sequence(out_gru, batch_first=True, total_length=T)
out_lstm, (h_lstm, c_lstm) = lstm(packed)
out_lstm, _ = pad_packed_sequence(out_lstm, batch_first=True, padding_value=-1.0)

# the last layer's final states from h_n and from the outputs
h_view = h_gru.view(2, 2, B, Hd)[-1]                               # (directions, B, Hd)
fwd_last = out_gru[torch.arange(B), lengths - 1, :Hd]
bwd_first = out_gru[:, 0, Hd:]
final_states_agree = [bool(torch.allclose(h_view[0], fwd_last, atol=1e-6)),
                      bool(torch.allclose(h_view[1], bwd_first, atol=1e-6))]
pad_zero = bool((out_gru[~mask] == 0).all())
pad_minus_one = bool((out_lstm[~mask[:, :out_lstm.shape[1]]] == -1).all())


# the first GRU layer by hand, both directions, over one unpadded sequence
def gru_cell(x_t, h, w_ih, w_hh, b_ih, b_hh):
    gi = x_t @ w_ih.t() + b_ih
    gh = h @ w_hh.t() + b_hh
    i_r, i_z, i_n = gi.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


seq = x[2, :lengths[2]]
hf, hb = h0[0, 2], h0[1, 2]
outs_f, outs_b = [], []
for t in range(seq.shape[0]):
    hf = gru_cell(seq[t], hf, gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)
    outs_f.append(hf)
for t in reversed(range(seq.shape[0])):
    hb = gru_cell(seq[t], hb, gru.weight_ih_l0_reverse, gru.weight_hh_l0_reverse,
                  gru.bias_ih_l0_reverse, gru.bias_hh_l0_reverse)
    outs_b.append(hb)
layer0 = torch.cat([torch.stack(outs_f), torch.stack(outs_b[::-1])], -1)
single = nn.GRU(D, Hd, batch_first=True, bidirectional=True)
with torch.no_grad():
    for name, p in single.named_parameters():
        p.copy_(getattr(gru, name))
ref0, _ = single(seq.unsqueeze(0), h0[:2, 2:3].contiguous())
cell = nn.GRUCell(D, Hd)
with torch.no_grad():
    cell.weight_ih.copy_(gru.weight_ih_l0)
    cell.weight_hh.copy_(gru.weight_hh_l0)
    cell.bias_ih.copy_(gru.bias_ih_l0)
    cell.bias_hh.copy_(gru.bias_hh_l0)
hc = h0[0, 2:3]
for t in range(seq.shape[0]):
    hc = cell(seq[t:t + 1], hc)
manual_agrees = [bool(torch.allclose(layer0, ref0[0], atol=1e-6)),
                 bool(torch.allclose(hc[0], outs_f[-1], atol=1e-6))]
weight_shapes = [[list(w.shape) for w in layer] for layer in lstm.all_weights]

# pack_sequence of a list, pad_sequence
seqs = [x[i, :lengths[i]] for i in range(B)]
order = sorted(range(B), key=lambda i: -int(lengths[i]))
packed2 = pack_sequence([seqs[i] for i in order])
padded = pad_sequence(seqs, batch_first=True)
packed_same = bool(torch.equal(packed2.data, pack_padded_sequence(
    padded[order], lengths[order], batch_first=True).data))


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(D, Hd, num_layers=2, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * Hd, NTAG)
        self.cls = nn.Linear(4 * Hd, 2)

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        self.lstm.flatten_parameters()
        out, (h_n, _) = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        h_n = h_n.view(2, 2, x.shape[0], Hd)
        summary = torch.cat([h_n[0].transpose(0, 1).reshape(x.shape[0], -1),
                             h_n[1].transpose(0, 1).reshape(x.shape[0], -1)], dim=-1)
        return self.head(out), self.cls(summary)


model = load(Tagger())
opt = torch.optim.Adam(model.parameters(), lr=0.01)
tag_loss_fn = nn.CrossEntropyLoss(ignore_index=-100)
losses, norms = [], []
for step in range(15):
    opt.zero_grad()
    tag_logits, cls_logits = model(x, lengths)
    loss = tag_loss_fn(tag_logits.reshape(-1, NTAG), tags.reshape(-1)) + \
        nn.functional.cross_entropy(cls_logits, labels)
    loss.backward()
    norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)))
    opt.step()
    losses.append(loss.item())
with torch.no_grad():
    tag_logits, cls_logits = model(x, lengths)
    accuracy = ((tag_logits.argmax(-1) == tags) & mask).sum().item() / mask.sum().item()

report(
    packed_info=packed_info,
    out_lens=out_lens.tolist(),
    rnn_out=out_rnn[1, :5].tolist(),
    rnn_h=h_rnn.sum((1, 2)).tolist(),
    gru_out=out_gru[3].sum(-1).tolist(),
    gru_h=h_gru[:, :, 0].tolist(),
    lstm_shape=list(out_lstm.shape),
    lstm_h=h_lstm.tolist(),
    lstm_c=c_lstm.sum(-1).tolist(),
    final_states_agree=final_states_agree,
    pad_zero=pad_zero,
    pad_minus_one=pad_minus_one,
    manual_agrees=manual_agrees,
    weight_shapes=weight_shapes,
    packed_same=packed_same,
    losses=losses,
    norms=norms,
    accuracy=accuracy,
    cls_probs=torch.softmax(cls_logits, -1).tolist(),
)
