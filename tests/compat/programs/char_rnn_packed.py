# Character-level RNNs in the shape of the PyTorch tutorials "Classifying Names with a
# Character-Level RNN" / "Generating Names" and common packed-sequence notebooks: names as
# one-hot / index tensors, pad_sequence + pack_padded_sequence(enforce_sorted=False) into a
# 2-layer bidirectional nn.GRU, h_n reshaped to (num_layers, directions, B, H) for the last
# layer's two directions, pad_packed_sequence(total_length=) with masked mean pooling, the
# PackedSequence's fields (batch_sizes, sorted/unsorted indices), pack_sequence, an
# nn.LSTM(proj_size=) and nn.RNN(nonlinearity="relu") on the same batch, GRU(dropout=) in eval,
# an AdaptiveLogSoftmaxWithLoss character LM head (cutoffs, log_prob, predict), greedy
# generation with nn.GRUCell, RMSprop and StepLR.
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import (
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
)

letters = "abcdefghijklmnopqrstuvwxyz'"
n_letters = len(letters) + 1  # 0 is padding
names = [
    "nakamura",
    "ito",
    "schmidt",
    "muller",
    "rossi",
    "bianchi",
    "o'brien",
    "kelly",
    "tanaka",
    "weber",
]
labels = [0, 0, 1, 1, 2, 2, 3, 3, 0, 1]


def name_to_tensor(s):
    return torch.tensor([letters.index(c) + 1 for c in s], dtype=torch.long)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class NameClassifier(nn.Module):
    def __init__(self, hidden=12, n_classes=4):
        super().__init__()
        self.embed = nn.Embedding(n_letters, 8, padding_idx=0)
        self.rnn = nn.GRU(8, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(4 * hidden, n_classes)
        self.hidden = hidden

    def forward(self, seqs, lengths):
        packed = pack_padded_sequence(
            self.embed(seqs), lengths, batch_first=True, enforce_sorted=False
        )
        out, h_n = self.rnn(packed)
        h_n = h_n.view(2, 2, seqs.shape[0], self.hidden)  # (layers, directions, B, H)
        last = torch.cat([h_n[-1, 0], h_n[-1, 1]], dim=1)
        padded, out_lengths = pad_packed_sequence(out, batch_first=True, total_length=seqs.shape[1])
        mask = (torch.arange(seqs.shape[1])[None, :] < out_lengths[:, None]).unsqueeze(-1)
        mean = (padded * mask).sum(1) / out_lengths.unsqueeze(1).to(padded.dtype)
        return self.fc(torch.cat([last, mean], dim=1)), packed


seqs = [name_to_tensor(s) for s in names]
lengths = torch.tensor([len(s) for s in seqs])
batch = pad_sequence(seqs, batch_first=True, padding_value=0)
target = torch.tensor(labels)

model = load(NameClassifier())
optimizer = torch.optim.RMSprop(model.parameters(), lr=5e-3, alpha=0.9, momentum=0.5)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.5)
losses = []
for epoch in range(10):
    logits, packed = model(batch, lengths)
    loss = F.cross_entropy(logits, target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
with torch.no_grad():
    pred = model(batch, lengths)[0].argmax(1).tolist()

# the PackedSequence itself
packed_fields = {
    "batch_sizes": packed.batch_sizes.tolist(),
    "sorted_indices": packed.sorted_indices.tolist(),
    "unsorted_indices": packed.unsorted_indices.tolist(),
    "data_shape": list(packed.data.shape),
}
ps = pack_sequence([seqs[0], seqs[2], seqs[1]], enforce_sorted=True)
packed_fields["pack_sequence_sizes"] = ps.batch_sizes.tolist()
packed_fields["pack_sequence_data"] = ps.data.tolist()

# LSTM with projections and a ReLU Elman RNN on the same packed batch
emb = model.embed(batch).detach()
lstm = load(nn.LSTM(8, 10, proj_size=4, batch_first=True))
relu_rnn = load(nn.RNN(8, 6, nonlinearity="relu", batch_first=True))
p_in = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
lstm_out, (h, c) = lstm(p_in)
lstm_pad, _ = pad_packed_sequence(lstm_out, batch_first=True)
rnn_out, h_r = relu_rnn(p_in)
(lstm_pad.sum() + c.sum() + h_r.sum()).backward()
rnn_fields = {
    "lstm_h": h.flatten().tolist(),
    "lstm_c_shape": list(c.shape),
    "lstm_pad_shape": list(lstm_pad.shape),
    "lstm_w_hr_grad": lstm.weight_hr_l0.grad.flatten().tolist(),
    "relu_h": h_r.flatten().tolist(),
    "relu_grad": relu_rnn.weight_hh_l0.grad.flatten().tolist(),
}
gru_drop = load(nn.GRU(8, 6, num_layers=2, dropout=0.5, batch_first=True)).eval()
with torch.no_grad():
    o1, _ = gru_drop(emb)
    o2, _ = gru_drop(emb)
rnn_fields["gru_dropout_eval_deterministic"] = torch.equal(o1, o2)
rnn_fields["gru_dropout_eval"] = o1[:, -1].flatten().tolist()


# a character LM with an adaptive softmax head and GRUCell generation
class CharLM(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.embed = nn.Embedding(n_letters, 8)
        self.cell = nn.GRUCell(8, hidden)
        self.head = nn.AdaptiveLogSoftmaxWithLoss(hidden, n_letters, cutoffs=[6, 14], div_value=2.0)

    def forward(self, tokens, h=None):
        hs = []
        for t in range(tokens.shape[1]):
            h = self.cell(self.embed(tokens[:, t]), h)
            hs.append(h)
        return torch.stack(hs, 1), h


lm = load(CharLM())
lm_opt = torch.optim.Adam(lm.parameters(), lr=1e-2)
inp, tgt = batch[:, :-1], batch[:, 1:]
lm_losses = []
for step in range(6):
    hs, _ = lm(inp)
    keep = tgt.reshape(-1) != 0
    out = lm.head(hs.reshape(-1, hs.shape[-1])[keep], tgt.reshape(-1)[keep])
    lm_opt.zero_grad()
    out.loss.backward()
    lm_opt.step()
    lm_losses.append(out.loss.item())
with torch.no_grad():
    tok = torch.tensor([letters.index("k") + 1])
    h, generated, logp_rows = None, [], []
    for _ in range(6):
        h = lm.cell(lm.embed(tok), h)
        logp = lm.head.log_prob(h)
        logp_rows.append(logp.logsumexp(1).item())
        tok = lm.head.predict(h)
        generated.append(int(tok.item()))
    out_eval = lm.head(hs.reshape(-1, hs.shape[-1])[keep][:5], tgt.reshape(-1)[keep][:5])

report(
    losses=losses,
    pred=pred,
    **packed_fields,
    **rnn_fields,
    lm_losses=lm_losses,
    generated=generated,
    logp_norm=logp_rows,
    adaptive_output=out_eval.output.tolist(),
)
