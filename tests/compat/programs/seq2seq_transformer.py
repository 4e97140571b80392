# A sequence-to-sequence Transformer in the shape of PyTorch's "Language Translation with
# nn.Transformer" tutorial: token embeddings scaled by sqrt(d_model), a sin/cos positional
# encoding kept as a buffer, nn.Transformer (batch_first) with a causal target mask and key
# padding masks, cross-entropy with ignore_index on the padding, Adam with the paper's betas and
# eps, and greedy decoding with torch.cat. The task: reverse a sequence of tokens. Our own
# program; data made with NumPy.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

PAD, BOS, EOS = 0, 1, 2
VOCAB, D_MODEL, MAX_LEN = 12, 32, 12
rng = np.random.default_rng(5)


def make_batch(n):
    """Source: 3..7 random tokens then EOS and padding; target: BOS, the reversed tokens, EOS."""
    src = np.full((n, 9), PAD, np.int64)
    tgt = np.full((n, 10), PAD, np.int64)
    for i in range(n):
        k = int(rng.integers(3, 8))
        toks = rng.integers(3, VOCAB, k)
        src[i, :k], src[i, k] = toks, EOS
        tgt[i, 0], tgt[i, 1 : k + 1], tgt[i, k + 1] = BOS, toks[::-1], EOS
    return torch.from_numpy(src), torch.from_numpy(tgt)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, max_len=MAX_LEN):
        super().__init__()
        den = torch.exp(-torch.arange(0, d_model, 2) * math.log(10000) / d_model)
        pos = torch.arange(0, max_len).reshape(max_len, 1)
        pe = torch.zeros((max_len, d_model))
        pe[:, 0::2] = torch.sin(pos * den)
        pe[:, 1::2] = torch.cos(pos * den)
        self.register_buffer("pos_embedding", pe.unsqueeze(0))

    def forward(self, x):
        return x + self.pos_embedding[:, : x.size(1)]


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = nn.Transformer(
            d_model=D_MODEL, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
            dim_feedforward=64, dropout=0.0, batch_first=True,
        )  # fmt: skip
        self.src_tok = nn.Embedding(VOCAB, D_MODEL)
        self.tgt_tok = nn.Embedding(VOCAB, D_MODEL)
        self.pos = PositionalEncoding(D_MODEL)
        self.generator = nn.Linear(D_MODEL, VOCAB)

    def embed(self, table, tokens):
        return self.pos(table(tokens.long()) * math.sqrt(D_MODEL))

    def forward(self, src, tgt_in):
        tgt_mask = nn.Transformer.generate_square_subsequent_mask(tgt_in.size(1))
        out = self.transformer(
            self.embed(self.src_tok, src), self.embed(self.tgt_tok, tgt_in),
            tgt_mask=tgt_mask, src_key_padding_mask=src == PAD,
            tgt_key_padding_mask=tgt_in == PAD, memory_key_padding_mask=src == PAD,
        )  # fmt: skip
        return self.generator(out)

    def encode(self, src):
        return self.transformer.encoder(
            self.embed(self.src_tok, src), src_key_padding_mask=src == PAD
        )

    def decode(self, ys, memory, src):
        mask = nn.Transformer.generate_square_subsequent_mask(ys.size(1)).type(torch.bool)
        out = self.transformer.decoder(
            self.embed(self.tgt_tok, ys), memory, tgt_mask=mask,
            memory_key_padding_mask=src == PAD,
        )  # fmt: skip
        return self.generator(out[:, -1])


model = Seq2Seq()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))

loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.98), eps=1e-9)
batches = [make_batch(16) for _ in range(4)]

losses = []
for epoch in range(6):
    model.train()
    for src, tgt in batches:
        tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
        logits = model(src, tgt_in)
        optimizer.zero_grad()
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    print(f"epoch {epoch}  loss {losses[-1]:.4f}")


def greedy_decode(src, max_len=10):
    memory = model.encode(src)
    ys = torch.ones(src.size(0), 1).fill_(BOS).type(torch.long)
    for _ in range(max_len - 1):
        prob = model.decode(ys, memory, src).softmax(dim=-1)
        next_word = torch.argmax(prob, dim=1, keepdim=True)
        ys = torch.cat([ys, next_word], dim=1)
    return ys


model.eval()
with torch.no_grad():
    src, tgt = batches[0]
    decoded = greedy_decode(src[:4])
    val_logits = model(src, tgt[:, :-1])
    val_loss = loss_fn(val_logits.reshape(-1, VOCAB), tgt[:, 1:].reshape(-1)).item()

report(losses=losses, decoded=decoded.tolist(), val_loss=val_loss)
