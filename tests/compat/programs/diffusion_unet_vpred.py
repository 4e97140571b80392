# A class-conditional diffusion model as the improved-DDPM / diffusers-era training scripts write
# it (our own condensed rewrite): the cosine noise schedule (alphas_cumprod from cos((t/T + s) /
# (1 + s) * pi / 2)^2, betas clipped at 0.999 by torch.clip), a sinusoidal timestep embedding
# (half-dimension exponentials, torch.cat of sin and cos, an odd-dimension zero pad by F.pad), a
# small U-Net: ResBlocks with GroupNorm + SiLU and the time embedding as FiLM scale-shift
# (emb_out.chunk(2, dim=1), norm(h) * (1 + scale) + shift), a zero-initialised output conv
# (nn.init.zeros_ via a zero_module helper over .parameters()), a self-attention block at the
# lowest resolution (qkv by a 1x1 Conv1d over flattened pixels, torch.einsum("bct,bcs->bts")),
# Downsample by a strided conv and Upsample by F.interpolate(scale_factor=2, mode="nearest"),
# skip connections by torch.cat; v-prediction targets (sqrt(acp) * eps - sqrt(1 - acp) * x0),
# Min-SNR-gamma loss weights (torch.stack([snr, gamma * ones]).min(dim=0)[0] / (snr + 1)),
# classifier-free guidance training by replacing labels with a null class from a NumPy mask,
# AdamW with EMA weights kept by torch._foreach_mul_ / torch._foreach_add_ under no_grad; then
# deterministic DDIM sampling (eta = 0) from the EMA model with guidance (uncond + w * (cond -
# uncond) on a doubled batch made by torch.cat), converting v to x0 and eps, clamping x0.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2206)
T_STEPS, N_CLASSES = 100, 3


def cosine_beta_schedule(timesteps, s=0.008):
    steps = timesteps + 1
    x = torch.linspace(0, timesteps, steps, dtype=torch.float64)
    alphas_cumprod = torch.cos(((x / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return torch.clip(betas, 0, 0.999)


def timestep_embedding(timesteps, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half
    )
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


def zero_module(module):
    for p in module.parameters():
        p.detach().zero_()
    return module


class ResBlock(nn.Module):
    def __init__(self, ch, out_ch, emb_dim):
        super().__init__()
        self.in_layers = nn.Sequential(
            nn.GroupNorm(4, ch), nn.SiLU(), nn.Conv2d(ch, out_ch, 3, padding=1)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_ch))
        self.out_norm = nn.GroupNorm(4, out_ch)
        self.out_layers = nn.Sequential(
            nn.SiLU(), zero_module(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        )
        self.skip = nn.Identity() if ch == out_ch else nn.Conv2d(ch, out_ch, 1)

    def forward(self, x, emb):
        h = self.in_layers(x)
        emb_out = self.emb_layers(emb)[..., None, None]
        scale, shift = emb_out.chunk(2, dim=1)
        h = self.out_norm(h) * (1 + scale) + shift
        h = self.out_layers(h)
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    def __init__(self, ch, heads=2):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(4, ch)
        self.qkv = nn.Conv1d(ch, ch * 3, 1)
        self.proj_out = zero_module(nn.Conv1d(ch, ch, 1))

    def forward(self, x):
        b, c, *spatial = x.shape
        x_flat = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x_flat))
        bs, width, length = qkv.shape
        ch = width // (3 * self.heads)
        q, k, v = qkv.reshape(bs * self.heads, ch * 3, length).split(ch, dim=1)
        scale = 1 / math.sqrt(math.sqrt(ch))
        weight = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weight = torch.softmax(weight.float(), dim=-1).type(weight.dtype)
        a = torch.einsum("bts,bcs->bct", weight, v).reshape(bs, -1, length)
        return (x_flat + self.proj_out(a)).reshape(b, c, *spatial)


class UNet(nn.Module):
    def __init__(self, ch=8, emb_dim=32):
        super().__init__()
        self.ch = ch
        self.time_embed = nn.Sequential(
            nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.label_emb = nn.Embedding(N_CLASSES + 1, emb_dim)
        self.inp = nn.Conv2d(1, ch, 3, padding=1)
        self.down1 = ResBlock(ch, ch, emb_dim)
        self.downsample = nn.Conv2d(ch, ch, 3, stride=2, padding=1)
        self.down2 = ResBlock(ch, 2 * ch, emb_dim)
        self.mid_attn = AttentionBlock(2 * ch)
        self.mid = ResBlock(2 * ch, 2 * ch, emb_dim)
        self.up2 = ResBlock(4 * ch, ch, emb_dim)
        self.up1 = ResBlock(2 * ch, ch, emb_dim)
        self.out = nn.Sequential(nn.GroupNorm(4, ch), nn.SiLU(), nn.Conv2d(ch, 1, 3, padding=1))

    def forward(self, x, t, y):
        emb = self.time_embed(timestep_embedding(t, self.ch)) + self.label_emb(y)
        h0 = self.inp(x)
        h1 = self.down1(h0, emb)
        h2 = self.down2(self.downsample(h1), emb)
        h = self.mid(self.mid_attn(h2), emb)
        h = self.up2(torch.cat([h, h2], 1), emb)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.up1(torch.cat([h, h1], 1), emb)
        return self.out(h)


betas = cosine_beta_schedule(T_STEPS).float()
alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
sqrt_acp = alphas_cumprod.sqrt()
sqrt_1m_acp = (1 - alphas_cumprod).sqrt()
snr = alphas_cumprod / (1 - alphas_cumprod)

yy, xx = np.mgrid[0:8, 0:8]
shapes = [
    ((xx - 3.5) ** 2 + (yy - 3.5) ** 2 < 9).astype(np.float32),
    (np.abs(xx - yy) < 2).astype(np.float32),
    ((xx > 1) & (xx < 6)).astype(np.float32),
]
labels_np = rng.integers(0, N_CLASSES, 32)
data = torch.from_numpy(np.stack([shapes[c] * 2 - 1 for c in labels_np])[:, None])
labels = torch.from_numpy(labels_np)

model = UNet()
zero_out = float(model.down1.out_layers[1].weight.abs().sum())
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
ema = UNet()
ema.load_state_dict(model.state_dict())
ema.requires_grad_(False)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
gamma = 5.0
losses = []
for step in range(8):
    b = slice((step % 4) * 8, (step % 4) * 8 + 8)
    x0, y = data[b], labels[b].clone()
    y[torch.from_numpy(rng.uniform(size=8) < 0.2)] = N_CLASSES  # null class for CFG
    t = torch.from_numpy(rng.integers(0, T_STEPS, 8))
    noise = torch.from_numpy(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))
    a, s = sqrt_acp[t].view(-1, 1, 1, 1), sqrt_1m_acp[t].view(-1, 1, 1, 1)
    x_t = a * x0 + s * noise
    v_target = a * noise - s * x0
    pred = model(x_t, t, y)
    mse = F.mse_loss(pred, v_target, reduction="none").mean(dim=list(range(1, 4)))
    msnr = torch.stack([snr[t], gamma * torch.ones_like(t, dtype=torch.float32)], dim=1).min(dim=1)[
        0
    ]
    weights = msnr / (snr[t] + 1)
    loss = (mse * weights).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        ema_params = list(ema.parameters())
        torch._foreach_mul_(ema_params, 0.9)
        torch._foreach_add_(ema_params, list(model.parameters()), alpha=0.1)
    losses.append(loss.item())


@torch.no_grad()
def ddim_sample(net, y, w=2.0, steps=10):
    x = torch.from_numpy(
        np.random.default_rng(7).standard_normal((y.shape[0], 1, 8, 8)).astype(np.float32)
    )
    ts = list(range(T_STEPS - 1, -1, -T_STEPS // steps))
    for i, t in enumerate(ts):
        tt = torch.full((y.shape[0],), t, dtype=torch.long)
        x_in = torch.cat([x, x])
        v = net(x_in, torch.cat([tt, tt]), torch.cat([y, torch.full_like(y, N_CLASSES)]))
        v_cond, v_uncond = v.chunk(2)
        v = v_uncond + w * (v_cond - v_uncond)
        a, s = sqrt_acp[t], sqrt_1m_acp[t]
        x0 = (a * x - s * v).clamp(-1, 1)
        eps = (x - a * x0) / s
        a_prev = sqrt_acp[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0)
        s_prev = (1 - a_prev**2).clamp(min=0).sqrt()
        x = a_prev * x0 + s_prev * eps
    return x


samples = ddim_sample(ema, torch.tensor([0, 1, 2]))
report(
    betas=betas[::10].tolist(),
    snr=snr[::20].tolist(),
    emb=timestep_embedding(torch.tensor([0, 5, 99]), 9).tolist(),
    zero_out=zero_out,
    losses=losses,
    sample_means=samples.mean(dim=(1, 2, 3)).tolist(),
    sample=samples[0, 0, 3].tolist(),
)
