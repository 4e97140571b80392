# Long convolutions computed by FFT, as three reference implementations write them (our own
# condensed rewrites): HazyResearch's Hyena operator (safari's hyena.py: fftconv by
# torch.fft.rfft(n=2L) / irfft(n=2L, norm="forward") [..., :L] plus the D skip term, an implicit
# long filter from a positional embedding of complex exponentials (view_as_real of exp(-1j * f *
# t)), an FFN with a Sin activation whose frequencies are a Parameter, ExponentialModulation by
# exp(-t * |delta|) over a linspace of decays, short depthwise Conv1d(groups=) on the projected
# input, rearranged with einsum-free transposes and split into gating branches); GFNet's global
# filter layer (raoyongming/GFNet: rfft2 over the token grid with norm="ortho", a complex weight
# stored as a real Parameter (h, w // 2 + 1, dim, 2) read by torch.view_as_complex, irfft2 with
# s=(a, b)); and FNet's Fourier mixing (fft over the hidden then the sequence dimension, .real),
# with fftn / rfftn / irfftn checked against the composed 1-D transforms. A small classifier of
# each kind trains a few steps.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(9)
torch.manual_seed(0)


def fftconv(u, k, D):
    seqlen = u.shape[-1]
    fft_size = 2 * seqlen
    k_f = torch.fft.rfft(k, n=fft_size) / fft_size
    u_f = torch.fft.rfft(u.to(dtype=k.dtype), n=fft_size)
    if len(u.shape) > 3:
        k_f = k_f.unsqueeze(1)
    y = torch.fft.irfft(u_f * k_f, n=fft_size, norm="forward")[..., :seqlen]
    out = y + u * D.unsqueeze(-1)
    return out.to(dtype=u.dtype)


class Sin(nn.Module):
    def __init__(self, dim, w=10, train_freq=True):
        super().__init__()
        self.freq = nn.Parameter(w * torch.ones(1, dim)) if train_freq else w * torch.ones(1, dim)

    def forward(self, x):
        return torch.sin(self.freq * x)


class PositionalEmbedding(nn.Module):
    def __init__(self, emb_dim, seq_len):
        super().__init__()
        self.seq_len = seq_len
        t = torch.linspace(0, 1, self.seq_len)[None, :, None]  # 1, L, 1
        if emb_dim > 1:
            bands = (emb_dim - 1) // 2
        t_rescaled = torch.linspace(0, seq_len - 1, seq_len)[None, :, None]
        w = 2 * math.pi * t_rescaled / seq_len  # 1, L, 1
        f = torch.linspace(1e-4, bands - 1, bands)[None, None]
        z = torch.exp(-1j * f * w)
        z = torch.cat([t, z.real, z.imag], dim=-1)
        self.register_buffer("z", z)
        self.register_buffer("t", t)

    def forward(self, L):
        return self.z[:, :L], self.t[:, :L]


class ExponentialModulation(nn.Module):
    def __init__(self, d_model, fast_decay_pct=0.3, slow_decay_pct=1.5, target=1e-2, shift=0.0):
        super().__init__()
        self.shift = shift
        max_decay = math.log(target) / fast_decay_pct
        min_decay = math.log(target) / slow_decay_pct
        deltas = torch.linspace(min_decay, max_decay, d_model)[None, None]
        self.register_buffer("deltas", deltas)

    def forward(self, t, x):
        decay = torch.exp(-t * self.deltas.abs())
        return x * (decay + self.shift)


class HyenaFilter(nn.Module):
    def __init__(self, d_model, emb_dim=5, order=16, seq_len=32, w=1):
        super().__init__()
        self.d_model = d_model
        self.bias = nn.Parameter(torch.randn(self.d_model))
        self.pos_emb = PositionalEmbedding(emb_dim, seq_len)
        self.implicit_filter = nn.Sequential(
            nn.Linear(emb_dim, order), Sin(dim=order, w=w),
            nn.Linear(order, order), Sin(dim=order, w=w),
            nn.Linear(order, d_model, bias=False),
        )  # fmt: skip
        self.modulation = ExponentialModulation(d_model)

    def filter(self, L):
        z, t = self.pos_emb(L)
        h = self.implicit_filter(z)
        return self.modulation(t, h)

    def forward(self, x, L, k=None, bias=None):
        if k is None:
            k = self.filter(L)
        k = k[0] if type(k) is tuple else k
        return fftconv(x, k, bias)


class HyenaOperator(nn.Module):
    def __init__(self, d_model, l_max, order=2, filter_order=16):
        super().__init__()
        self.d_model, self.l_max, self.order = d_model, l_max, order
        inner_width = d_model * (order + 1)
        self.in_proj = nn.Linear(d_model, inner_width)
        self.out_proj = nn.Linear(d_model, d_model)
        self.short_filter = nn.Conv1d(inner_width, inner_width, 3, padding=2, groups=inner_width)
        self.filter_fn = HyenaFilter(d_model * (order - 1), order=filter_order, seq_len=l_max)

    def forward(self, u):
        l = u.size(-2)
        l_filter = min(l, self.l_max)
        u = self.in_proj(u).transpose(1, 2)  # b d l
        uc = self.short_filter(u)[..., :l_filter]
        *x, v = uc.split(self.d_model, dim=1)
        k = self.filter_fn.filter(l_filter)[0]  # l d
        k = k.transpose(0, 1).reshape(self.order - 1, self.d_model, l_filter)
        bias = self.filter_fn.bias.reshape(self.order - 1, self.d_model)
        for o, x_i in enumerate(reversed(x[1:])):
            v = v * x_i
            v = self.filter_fn(v, l_filter, k=k[o], bias=bias[o])
        y = (v * x[0]).transpose(1, 2)
        return self.out_proj(y)


class GlobalFilter(nn.Module):
    def __init__(self, dim, h=4, w=3):
        super().__init__()
        self.complex_weight = nn.Parameter(torch.randn(h, w, dim, 2, dtype=torch.float32) * 0.02)
        self.w, self.h = w, h

    def forward(self, x, spatial_size=None):
        B, N, C = x.shape
        if spatial_size is None:
            a = b = int(math.sqrt(N))
        else:
            a, b = spatial_size
        x = x.view(B, a, b, C)
        x = x.to(torch.float32)
        x = torch.fft.rfft2(x, dim=(1, 2), norm="ortho")
        weight = torch.view_as_complex(self.complex_weight)
        x = x * weight
        x = torch.fft.irfft2(x, s=(a, b), dim=(1, 2), norm="ortho")
        return x.reshape(B, N, C)


class FNetBlock(nn.Module):
    def forward(self, x):
        return torch.fft.fft(torch.fft.fft(x, dim=-1), dim=-2).real


class Classifier(nn.Module):
    def __init__(self, kind, d=8, L=16, n_cls=3):
        super().__init__()
        self.embed = nn.Linear(1, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        if kind == "hyena":
            self.mix = HyenaOperator(d, L)
        elif kind == "gfnet":
            self.mix = GlobalFilter(d, h=4, w=3)
        else:
            self.mix = FNetBlock()
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.head = nn.Linear(d, n_cls)

    def forward(self, x):
        h = self.embed(x[..., None])
        h = h + self.mix(self.norm1(h))
        h = h + self.mlp(self.norm2(h))
        return self.head(h.mean(1))


def data(n, L=16):
    y = rng.integers(0, 3, size=n)
    t = np.arange(L)
    x = np.stack([np.sin(2 * np.pi * (c + 1) * t / L + rng.uniform(0, 6)) for c in y])
    x = x + 0.3 * rng.standard_normal(x.shape)
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


results = {}
for kind in ("hyena", "gfnet", "fnet"):
    model = Classifier(kind)
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]) * (0.1 if "complex_weight" in name else 1.0))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for step in range(8):
        x, y = data(12)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    results[f"{kind}_losses"] = losses
    results[f"{kind}_grad"] = sum(
        p.grad.norm().item() for p in model.parameters() if p.grad is not None
    )

# the transforms agree with each other
x = torch.from_numpy(rng.standard_normal((2, 6, 5, 4)).astype(np.float32))
a = torch.fft.rfftn(x, dim=(1, 2))
b = torch.fft.fft(torch.fft.rfft(x, dim=2), dim=1)
c = torch.fft.fftn(x, dim=(1, 2))[:, :, :3]
back = torch.fft.irfftn(a, s=(6, 5), dim=(1, 2))
results["rfftn_matches"] = [torch.allclose(a, b, atol=1e-5), torch.allclose(a, c, atol=1e-5)]
results["irfftn_roundtrip"] = (back - x).abs().max().item() < 1e-5
results["rfftn_values"] = torch.view_as_real(a)[0, :2, :2].flatten().tolist()
u = torch.from_numpy(rng.standard_normal((1, 3, 10)).astype(np.float32))
k = torch.from_numpy(rng.standard_normal((3, 10)).astype(np.float32))
direct = torch.stack(
    [F.conv1d(F.pad(u[:, i : i + 1], (9, 0)), k[i].flip(-1)[None, None]) for i in range(3)], 1
).squeeze(2)
results["fftconv_is_causal_conv"] = torch.allclose(fftconv(u, k, torch.zeros(3)), direct, atol=1e-4)
results["fftconv_values"] = fftconv(u, k, torch.ones(3))[0, 0].tolist()
report(**results)
