# Transformer tweaks from 2024 LLM papers and repositories, written as their reference code
# does: Differential attention (Ye et al. 2024: two softmax maps subtracted with a
# re-parameterised lambda from exp(lambda_q . lambda_k), a head-wise RMSNorm scaled by
# 1 - lambda_init), DeepSeek-V2's multi-head latent attention (a low-rank KV down-projection
# with a decoupled RoPE key shared by heads, the cache holding only the latent), YaRN's RoPE
# frequency interpolation (the ramp between high and low frequency dims, the mscale
# 0.1 ln(s) + 1), QK-norm (RMSNorm on queries and keys before RoPE), Gemma 2's attention and
# final logit soft-capping (cap * tanh(x / cap)), and the value-residual shortcut (the first
# layer's values mixed into later layers by a learned lambda); a small model with these pieces
# trained under AdamW with a cosine schedule, and an MLA decode step by step against the
# full causal forward.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(89)
D, H, V, T = 32, 4, 20, 12
hd = D // H


def yarn_inv_freq(dim, base=10000.0, scale=4.0, original_max=16, beta_fast=32, beta_slow=1):
    pos_freqs = base ** (torch.arange(0, dim, 2).float() / dim)
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (scale * pos_freqs)

    def find_correction_dim(num_rotations):
        return (dim * math.log(original_max / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    low = max(math.floor(find_correction_dim(beta_fast)), 0)
    high = min(math.ceil(find_correction_dim(beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    inv_freq_mask = 1 - ramp
    inv_freq = inv_freq_interpolation * (1 - inv_freq_mask) + (
        inv_freq_extrapolation * inv_freq_mask
    )
    mscale = 0.1 * math.log(scale) + 1.0
    return inv_freq, mscale


def rope_cache(dim, length):
    inv_freq, mscale = yarn_inv_freq(dim)
    t = torch.arange(length, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * mscale, emb.sin() * mscale


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin):
    return x * cos + rotate_half(x) * sin


def softcap(x, cap):
    return cap * torch.tanh(x / cap)


class DiffAttention(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.q_proj = nn.Linear(D, D, bias=False)
        self.k_proj = nn.Linear(D, D, bias=False)
        self.v_proj = nn.Linear(D, D, bias=False)
        self.out_proj = nn.Linear(D, D, bias=False)
        self.lambda_init = 0.8 - 0.6 * math.exp(-0.3 * depth)
        self.lambda_q1 = nn.Parameter(torch.zeros(hd // 2))
        self.lambda_k1 = nn.Parameter(torch.zeros(hd // 2))
        self.lambda_q2 = nn.Parameter(torch.zeros(hd // 2))
        self.lambda_k2 = nn.Parameter(torch.zeros(hd // 2))
        self.subln = nn.RMSNorm(hd, eps=1e-5, elementwise_affine=True)
        self.q_norm = nn.RMSNorm(hd // 2)
        self.k_norm = nn.RMSNorm(hd // 2)

    def forward(self, x, cos, sin, v_first=None, v_lambda=None):
        b, t, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(b, t, 2 * H, hd // 2))
        k = self.k_norm(self.k_proj(x).view(b, t, 2 * H, hd // 2))
        v = self.v_proj(x).view(b, t, H, hd)
        if v_first is not None:
            v = v_lambda * v + (1 - v_lambda) * v_first
        q = apply_rope(q.transpose(1, 2), cos[:t, : hd // 2], sin[:t, : hd // 2])
        k = apply_rope(k.transpose(1, 2), cos[:t, : hd // 2], sin[:t, : hd // 2])
        scores = softcap(q @ k.transpose(-1, -2) / math.sqrt(hd // 2), 50.0)
        mask = torch.triu(torch.full((t, t), float("-inf")), 1)
        attn = F.softmax(scores + mask, dim=-1).view(b, H, 2, t, t)
        lambda_1 = torch.exp(torch.sum(self.lambda_q1 * self.lambda_k1, dim=-1).float())
        lambda_2 = torch.exp(torch.sum(self.lambda_q2 * self.lambda_k2, dim=-1).float())
        lambda_full = lambda_1 - lambda_2 + self.lambda_init
        attn = attn[:, :, 0] - lambda_full * attn[:, :, 1]
        out = attn @ v.transpose(1, 2)
        out = self.subln(out) * (1 - self.lambda_init)
        return self.out_proj(out.transpose(1, 2).reshape(b, t, D)), v


class MLA(nn.Module):
    def __init__(self, kv_rank=8, rope_dim=4, nope_dim=8):
        super().__init__()
        self.rope_dim, self.nope_dim = rope_dim, nope_dim
        self.wq = nn.Linear(D, H * (nope_dim + rope_dim), bias=False)
        self.wkv_a = nn.Linear(D, kv_rank + rope_dim, bias=False)
        self.kv_norm = nn.RMSNorm(kv_rank)
        self.wkv_b = nn.Linear(kv_rank, H * (nope_dim + hd), bias=False)
        self.wo = nn.Linear(H * hd, D, bias=False)

    def forward(self, x, cos, sin, start=0, cache=None):
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, H, self.nope_dim + self.rope_dim)
        q_nope, q_pe = q.split([self.nope_dim, self.rope_dim], dim=-1)
        c = cos[start : start + t, : self.rope_dim]
        s = sin[start : start + t, : self.rope_dim]
        q_pe = apply_rope(q_pe.transpose(1, 2), c, s).transpose(1, 2)
        kv = self.wkv_a(x)
        latent, k_pe = kv.split([self.wkv_b.in_features, self.rope_dim], dim=-1)
        k_pe = apply_rope(k_pe.unsqueeze(1), c, s).squeeze(1)
        latent = self.kv_norm(latent)
        if cache is not None:
            latent = torch.cat([cache[0], latent], 1)
            k_pe = torch.cat([cache[1], k_pe], 1)
        new_cache = (latent, k_pe)
        kv = self.wkv_b(latent).view(b, latent.shape[1], H, self.nope_dim + hd)
        k_nope, v = kv.split([self.nope_dim, hd], dim=-1)
        k = torch.cat([k_nope, k_pe.unsqueeze(2).expand(-1, -1, H, -1)], dim=-1)
        qq = torch.cat([q_nope, q_pe], dim=-1)
        scores = torch.einsum("bshd,bthd->bsht", qq, k) / math.sqrt(self.nope_dim + self.rope_dim)
        tk = k.shape[1]
        mask = torch.ones(t, tk, dtype=torch.bool).tril(diagonal=tk - t)
        scores = scores.masked_fill(~mask[None, :, None, :], float("-inf"))
        out = torch.einsum("bsht,bthd->bshd", scores.softmax(dim=-1), v)
        return self.wo(out.flatten(2)), new_cache


class Block(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.n1, self.n2 = nn.RMSNorm(D), nn.RMSNorm(D)
        self.attn = DiffAttention(depth)
        self.mlp = nn.Sequential(
            nn.Linear(D, 2 * D, bias=False), nn.SiLU(), nn.Linear(2 * D, D, bias=False)
        )


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.blocks = nn.ModuleList([Block(i) for i in range(2)])
        self.v_lambdas = nn.Parameter(torch.full((2,), 0.5))
        self.mla = MLA()
        self.norm = nn.RMSNorm(D)
        self.head = nn.Linear(D, V, bias=False)
        cos, sin = rope_cache(hd, 64)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, idx):
        x = self.emb(idx)
        v_first = None
        for i, blk in enumerate(self.blocks):
            a, v = blk.attn(blk.n1(x), self.cos, self.sin, v_first, self.v_lambdas[i])
            v_first = v if v_first is None else v_first
            x = x + a
            x = x + blk.mlp(blk.n2(x))
        x = x + self.mla(x, self.cos, self.sin)[0]
        return softcap(self.head(self.norm(x)), 30.0)


model = Model()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
results = {}
inv_freq, mscale = yarn_inv_freq(hd)
results["yarn"] = inv_freq.tolist() + [mscale]
data = torch.from_numpy(rng.integers(0, V, (6, T + 1)))
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1, betas=(0.9, 0.95))
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=3e-4)
losses = []
for step in range(10):
    logits = model(data[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, V), data[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    losses.append(loss.item())
results["losses"] = losses
results["v_lambdas"] = model.v_lambdas.tolist()

# MLA decode with a latent cache equals the full causal forward
with torch.no_grad():
    x = model.emb(data[:2, :8])
    full, _ = model.mla(x, model.cos, model.sin)
    cache, steps = None, []
    for t in range(8):
        out, cache = model.mla(x[:, t : t + 1], model.cos, model.sin, start=t, cache=cache)
        steps.append(out)
    inc = torch.cat(steps, 1)
    results["mla_cache_shape"] = list(cache[0].shape) + list(cache[1].shape)
    results["mla_match"] = bool(torch.allclose(full, inc, atol=1e-5))
    results["mla_out"] = full[0, -1, :6].tolist()
report(**results)
