# A Perceiver / Set-Transformer style model in the shape of lucidrains' perceiver-pytorch and the
# Set Transformer reference code: a learned latent array attends to a long input by
# nn.MultiheadAttention(batch_first=True, kdim=, vdim=) with a key_padding_mask and
# need_weights=True (head-averaged and per-head, average_attn_weights=False), latent
# self-attention blocks by nn.TransformerEncoderLayer(norm_first=True, activation="gelu"), a
# decoder by nn.TransformerDecoder with tgt_mask from generate_square_subsequent_mask and a
# memory_key_padding_mask, pooling by multi-head attention (PMA), a nn.Bilinear scoring head, and
# an AdamW + warmup/cosine LambdaLR loop with clip_grad_norm_.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(7)
B, N, D_in, D_ctx, D_lat, n_lat, heads = 4, 12, 5, 7, 16, 6, 4


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class CrossAttend(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm_q = nn.LayerNorm(D_lat)
        self.norm_kv = nn.LayerNorm(D_in)
        self.attn = nn.MultiheadAttention(
            D_lat, heads, batch_first=True, kdim=D_in, vdim=D_in, dropout=0.0
        )
        self.ff = nn.Sequential(
            nn.LayerNorm(D_lat), nn.Linear(D_lat, 2 * D_lat), nn.GELU(), nn.Linear(2 * D_lat, D_lat)
        )

    def forward(self, latents, x, pad_mask):
        kv = self.norm_kv(x)
        out, weights = self.attn(
            self.norm_q(latents), kv, kv, key_padding_mask=pad_mask, need_weights=True
        )
        latents = latents + out
        return latents + self.ff(latents), weights


class Perceiver(nn.Module):
    def __init__(self, n_classes=3):
        super().__init__()
        self.latents = nn.Parameter(torch.randn(n_lat, D_lat))
        self.cross = CrossAttend()
        layer = nn.TransformerEncoderLayer(
            D_lat,
            heads,
            dim_feedforward=32,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.self_attn = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.pma_seed = nn.Parameter(torch.randn(1, 1, D_lat))
        self.pma = nn.MultiheadAttention(D_lat, 2, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(D_lat), nn.Linear(D_lat, n_classes))

    def forward(self, x, pad_mask):
        lat = self.latents.unsqueeze(0).expand(x.shape[0], -1, -1)
        lat, cross_w = self.cross(lat, x, pad_mask)
        lat = self.self_attn(lat)
        seed = self.pma_seed.repeat(x.shape[0], 1, 1)
        pooled, _ = self.pma(seed, lat, lat, need_weights=False)
        return self.head(pooled.squeeze(1)), cross_w


x_np = rng.standard_normal((B, N, D_in)).astype(np.float32)
lengths = np.array([12, 9, 5, 10])
pad_np = np.arange(N)[None, :] >= lengths[:, None]
x_np[pad_np] = 0.0
y_np = np.array([0, 2, 1, 2])
x, pad, y = torch.from_numpy(x_np), torch.from_numpy(pad_np), torch.from_numpy(y_np)

model = load(Perceiver())
no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "latents" in n or "seed" in n]
decay = [
    p for n, p in model.named_parameters() if not (p.ndim < 2 or "latents" in n or "seed" in n)
]
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=3e-3
)
warmup, total = 3, 12
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer,
    lambda s: (
        (s + 1) / warmup
        if s < warmup
        else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
    ),
)
losses, grad_norms, lrs = [], [], []
for step in range(total):
    logits, cross_w = model(x, pad)
    loss = F.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norms.append(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0).item())
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    lrs.append(scheduler.get_last_lr()[0])

model.eval()
with torch.no_grad():
    logits, cross_w = model(x, pad)
    # per-head weights of the cross attention: (B, heads, n_lat, N), zero on padding
    lat = model.latents.unsqueeze(0).expand(B, -1, -1)
    c = model.cross
    kv = c.norm_kv(x)
    _, per_head = c.attn(c.norm_q(lat), kv, kv, key_padding_mask=pad, average_attn_weights=False)
    # a float additive mask gives the same result as the boolean one
    float_mask = torch.zeros(B, N).masked_fill(pad, float("-inf"))
    out_f, _ = c.attn(c.norm_q(lat), kv, kv, key_padding_mask=float_mask, need_weights=False)
    out_b, _ = c.attn(c.norm_q(lat), kv, kv, key_padding_mask=pad, need_weights=False)

# a causal decoder over the latents: nn.TransformerDecoder with tgt and memory masks
dec_layer = nn.TransformerDecoderLayer(
    D_lat, heads, dim_feedforward=24, dropout=0.0, batch_first=True
)
decoder = load(nn.TransformerDecoder(dec_layer, num_layers=2, norm=nn.LayerNorm(D_lat)))
tgt = torch.from_numpy(rng.standard_normal((B, 5, D_lat)).astype(np.float32))
memory = torch.from_numpy(rng.standard_normal((B, N, D_lat)).astype(np.float32))
tgt_mask = nn.Transformer.generate_square_subsequent_mask(5)
dec_opt = torch.optim.Adam(decoder.parameters(), lr=1e-2)
dec_losses = []
for step in range(5):
    out = decoder(tgt, memory, tgt_mask=tgt_mask, memory_key_padding_mask=pad, tgt_is_causal=True)
    loss = (out[:, :-1] - tgt[:, 1:]).pow(2).mean()
    dec_opt.zero_grad()
    loss.backward()
    dec_opt.step()
    dec_losses.append(loss.item())

# a bilinear compatibility score between two sets
bil = load(nn.Bilinear(D_lat, D_in, 2))
score = bil(memory[:, :3], torch.from_numpy(x_np[:, :3]))
score.sum().backward()

report(
    losses=losses,
    grad_norms=grad_norms,
    lrs=lrs,
    eval_logits=logits.flatten().tolist(),
    cross_weights=cross_w.flatten().tolist(),
    cross_weights_shape=list(cross_w.shape),
    per_head_shape=list(per_head.shape),
    per_head_sum=per_head.sum(-1).flatten().tolist(),
    per_head_pad_zero=bool((per_head[2, :, :, 5:] == 0).all()),
    per_head_mean_matches=torch.allclose(per_head.mean(1), cross_w, atol=1e-6),
    float_vs_bool_mask=torch.allclose(out_f, out_b, atol=1e-6),
    tgt_mask=tgt_mask.tolist(),
    dec_losses=dec_losses,
    bilinear=score.flatten().tolist(),
    bilinear_grad=bil.weight.grad.sum(dim=(1, 2)).tolist(),
)
