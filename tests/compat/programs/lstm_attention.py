# An LSTM encoder-decoder with attention, in the shape of the PyTorch seq2seq translation tutorial
# and of Bahdanau-style models: a bidirectional LSTM encoder over padded, unsorted batches
# (pack_padded_sequence(enforce_sorted=False) / pad_packed_sequence), its final states bridged
# into a decoder LSTMCell, additive (Bahdanau) attention with masked_fill on padding, Luong
# "general" scores for comparison, teacher forcing on a fixed schedule, CrossEntropyLoss with
# ignore_index, nn.utils.clip_grad_norm_, Adam, then greedy decoding. The task: reverse a sequence.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

rng = np.random.default_rng(5)
PAD, SOS, EOS = 0, 1, 2
vocab, emb, hid, max_len = 10, 8, 12, 6


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb, padding_idx=PAD)
        self.rnn = nn.LSTM(emb, hid, batch_first=True, bidirectional=True)
        self.fc_h = nn.Linear(2 * hid, hid)
        self.fc_c = nn.Linear(2 * hid, hid)

    def forward(self, src, lengths):
        embedded = self.embedding(src)  # (B, T, E)
        packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
        packed_out, (h, c) = self.rnn(packed)
        outputs, out_lengths = pad_packed_sequence(packed_out, batch_first=True)  # (B, T, 2H)
        # h: (2, B, H) -> concatenate the last forward and backward states
        h = torch.tanh(self.fc_h(torch.cat((h[-2, :, :], h[-1, :, :]), dim=1)))
        c = torch.tanh(self.fc_c(torch.cat((c[-2], c[-1]), dim=1)))
        return outputs, (h, c), out_lengths


class BahdanauAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.W = nn.Linear(hid, hid, bias=False)
        self.U = nn.Linear(2 * hid, hid)
        self.v = nn.Linear(hid, 1, bias=False)

    def forward(self, hidden, enc_out, mask):
        # hidden (B, H), enc_out (B, T, 2H), mask (B, T)
        energy = torch.tanh(self.W(hidden).unsqueeze(1) + self.U(enc_out))  # (B, T, H)
        scores = self.v(energy).squeeze(2)  # (B, T)
        scores = scores.masked_fill(mask == 0, -1e10)
        return F.softmax(scores, dim=1)


class LuongAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.Wa = nn.Linear(2 * hid, hid, bias=False)

    def forward(self, hidden, enc_out, mask):
        scores = torch.bmm(self.Wa(enc_out), hidden.unsqueeze(2)).squeeze(2)  # (B, T)
        scores = scores.masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=-1)


class Decoder(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.attention = attention
        self.embedding = nn.Embedding(vocab, emb)
        self.cell = nn.LSTMCell(emb + 2 * hid, hid)
        self.out = nn.Linear(hid + 2 * hid + emb, vocab)
        self.dropout = nn.Dropout(0.0)

    def forward(self, token, state, enc_out, mask):
        embedded = self.dropout(self.embedding(token))  # (B, E)
        a = self.attention(state[0], enc_out, mask)  # (B, T)
        weighted = torch.bmm(a.unsqueeze(1), enc_out).squeeze(1)  # (B, 2H)
        h, c = self.cell(torch.cat((embedded, weighted), dim=1), state)
        prediction = self.out(torch.cat((h, weighted, embedded), dim=1))
        return prediction, (h, c), a


class Seq2Seq(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder(attention)

    def forward(self, src, lengths, trg, teacher_forcing):
        batch_size, trg_len = trg.shape
        outputs = torch.zeros(batch_size, trg_len, vocab)
        enc_out, state, _ = self.encoder(src, lengths)
        mask = src[:, : enc_out.size(1)] != PAD
        token = trg[:, 0]
        for t in range(1, trg_len):
            output, state, _ = self.decoder(token, state, enc_out, mask)
            outputs[:, t] = output
            top1 = output.argmax(1)
            token = trg[:, t] if teacher_forcing[t] else top1
        return outputs


def make_batch(n):
    seqs, targets = [], []
    for _ in range(n):
        L = int(rng.integers(2, max_len - 1))
        s = rng.integers(3, vocab, size=L)
        seqs.append(torch.tensor(s.tolist() + [EOS]))
        targets.append(torch.tensor([SOS] + s[::-1].tolist() + [EOS]))
    lengths = torch.tensor([len(s) for s in seqs])
    src = pad_sequence(seqs, batch_first=True, padding_value=PAD)
    trg = pad_sequence(targets, batch_first=True, padding_value=PAD)
    return src, lengths, trg


results = {}
for name, attention in (("bahdanau", BahdanauAttention), ("luong", LuongAttention)):
    model = Seq2Seq(attention())
    W = reference_weights(model)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[pname]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    criterion = nn.CrossEntropyLoss(ignore_index=PAD)
    losses, norms = [], []
    for step in range(15):
        model.train()
        src, lengths, trg = make_batch(6)
        forcing = [(t + step) % 3 != 0 for t in range(trg.size(1))]  # a fixed schedule
        output = model(src, lengths, trg, forcing)
        output_dim = output.shape[-1]
        loss = criterion(output[:, 1:].reshape(-1, output_dim), trg[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)))
        optimizer.step()
        losses.append(loss.item())

    model.eval()
    src, lengths, trg = make_batch(4)
    with torch.no_grad():
        enc_out, state, out_lengths = model.encoder(src, lengths)
        mask = src[:, : enc_out.size(1)] != PAD
        token = torch.full((src.size(0),), SOS, dtype=torch.long)
        decoded, attn = [], []
        for t in range(max_len):
            out, state, a = model.decoder(token, state, enc_out, mask)
            token = out.argmax(-1)
            decoded.append(token.tolist())
            attn.append(a[0].tolist())
    results[name] = {
        "losses": losses,
        "norms": norms,
        "decoded": decoded,
        "attn": attn,
        "out_lengths": out_lengths.tolist(),
        "enc_out_pad_zero": bool((enc_out[lengths == lengths.min()][:, -1] == 0).all()),
    }
report(**results)
