# LLaMA-style rotary position embeddings in complex form (Meta's llama model.py:
# precompute_freqs_cis / reshape_for_broadcast / apply_rotary_emb, our own rewrite) inside a tiny
# causal attention language model, trained a few steps with AdamW. Also exercises torch.fft on
# the way out (a spectral feature of the logits) so that rfft/irfft gradients reach the weights.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

VOCAB, DIM, N_HEADS, SEQ, BATCH, STEPS = 16, 32, 4, 12, 3, 8
HEAD_DIM = DIM // N_HEADS


def precompute_freqs_cis(dim: int, end: int, theta: float = 10000.0):
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: (dim // 2)].float() / dim))
    t = torch.arange(end, device=freqs.device)
    freqs = torch.outer(t, freqs).float()
    freqs_cis = torch.polar(torch.ones_like(freqs), freqs)  # complex64
    return freqs_cis


def reshape_for_broadcast(freqs_cis, x):
    ndim = x.ndim
    assert 0 <= 1 < ndim
    assert freqs_cis.shape == (x.shape[1], x.shape[-1])
    shape = [d if i == 1 or i == ndim - 1 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq, xk, freqs_cis):
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.wq = nn.Linear(DIM, DIM, bias=False)
        self.wk = nn.Linear(DIM, DIM, bias=False)
        self.wv = nn.Linear(DIM, DIM, bias=False)
        self.wo = nn.Linear(DIM, DIM, bias=False)

    def forward(self, x, freqs_cis, mask):
        bsz, seqlen, _ = x.shape
        xq, xk, xv = self.wq(x), self.wk(x), self.wv(x)
        xq = xq.view(bsz, seqlen, N_HEADS, HEAD_DIM)
        xk = xk.view(bsz, seqlen, N_HEADS, HEAD_DIM)
        xv = xv.view(bsz, seqlen, N_HEADS, HEAD_DIM)
        xq, xk = apply_rotary_emb(xq, xk, freqs_cis=freqs_cis)
        xq, xk, xv = xq.transpose(1, 2), xk.transpose(1, 2), xv.transpose(1, 2)
        scores = torch.matmul(xq, xk.transpose(2, 3)) / math.sqrt(HEAD_DIM)
        scores = scores + mask
        scores = F.softmax(scores.float(), dim=-1).type_as(xq)
        output = torch.matmul(scores, xv)
        output = output.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(output)


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, DIM)
        self.norm = nn.LayerNorm(DIM)
        self.attn = Attention()
        self.out = nn.Linear(DIM, VOCAB, bias=False)
        self.freqs_cis = precompute_freqs_cis(HEAD_DIM, SEQ * 2)

    def forward(self, tokens):
        _, seqlen = tokens.shape
        h = self.tok(tokens)
        freqs_cis = self.freqs_cis[:seqlen]
        mask = torch.full((seqlen, seqlen), float("-inf"))
        mask = torch.triu(mask, diagonal=1)
        h = h + self.attn(self.norm(h), freqs_cis, mask)
        return self.out(h)


model = TinyLM()
weights = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(weights[name]))

rng = np.random.default_rng(0)
data = torch.from_numpy(rng.integers(0, VOCAB, size=(BATCH, SEQ + 1)).astype(np.int64))
x, y = data[:, :-1], data[:, 1:]

opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
losses, spectral = [], []
for step in range(STEPS):
    logits = model(x)
    ce = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
    # a smoothness penalty in the frequency domain: the high half of the logits' spectrum
    # along the sequence, and the signal rebuilt by irfft from the low half
    spec = torch.fft.rfft(logits, dim=1, norm="ortho")
    high = spec[:, SEQ // 4 :].abs().pow(2).mean()
    low = torch.fft.irfft(spec[:, : SEQ // 4], n=SEQ, dim=1, norm="ortho")
    loss = ce + 0.01 * high + 0.001 * (low - logits).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    spectral.append(high.item())

fc = model.freqs_cis
report(
    losses=losses,
    spectral=spectral,
    freqs_dtype=str(fc.dtype).split(".")[-1],
    freqs_shape=list(fc.shape),
    freqs_abs_mean=fc.abs().mean().item(),
    freqs_angle_sum=fc.angle().sum().item(),
    rotated=torch.view_as_real(fc[3] * fc[5]).flatten().tolist(),
    grad_norm=torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item(),
)
