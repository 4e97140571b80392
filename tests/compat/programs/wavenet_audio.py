# A small WaveNet in the shape of the many PyTorch re-implementations (r9y9/wavenet_vocoder,
# vincentherrmann/pytorch-wavenet): mu-law companding of a waveform (torch.sign, log1p, abs) and
# its quantisation to 256 classes ((y + 1) / 2 * 255 + 0.5).long(), one-hot inputs through
# F.one_hot, dilated causal Conv1d layers padded on the left with F.pad(x, (pad, 0)), gated
# activations tanh(a) * sigmoid(b) after chunk(2, dim=1), residual and skip connections, weight
# norm by nn.utils.parametrizations.weight_norm (started from a checkpoint saved with the older
# nn.utils.weight_norm), F.cross_entropy over (B, C, T) logits,
# clip_grad_value_, AdamW(amsgrad=True) with OneCycleLR; then the weight norm removed for
# inference (parametrize.remove_parametrizations) and fast autoregressive generation with
# per-layer queues of past activations, checked against the full convolution, with
# torch.multinomial under no_grad and a seeded torch.Generator.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

rng = np.random.default_rng(11)
MU = 255
B, T = 4, 48
CH, SKIP = 12, 16
DILATIONS = [1, 2, 4, 8]

# sines of a few frequencies and amplitudes plus a little noise, in (-1, 1)
t = np.arange(T + 1)
freqs = rng.uniform(0.03, 0.12, size=(B, 1))
amps = rng.uniform(0.3, 0.9, size=(B, 1))
wave = amps * np.sin(2 * np.pi * freqs * t + rng.uniform(0, 6, size=(B, 1)))
wave = np.clip(wave + 0.02 * rng.standard_normal(wave.shape), -0.99, 0.99).astype(np.float32)


def mu_law_encode(x, mu=MU):
    y = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return ((y + 1) / 2 * mu + 0.5).long()


def mu_law_decode(q, mu=MU):
    y = 2 * q.to(torch.float32) / mu - 1
    return y.sign() * (torch.pow(1.0 + mu, y.abs()) - 1.0) / mu


class ResidualLayer(nn.Module):
    def __init__(self, dilation, wn=weight_norm):
        super().__init__()
        self.dilation = dilation
        self.conv = wn(nn.Conv1d(CH, 2 * CH, kernel_size=2, dilation=dilation))
        self.res = nn.Conv1d(CH, CH, 1)
        self.skip = nn.Conv1d(CH, SKIP, kernel_size=1)

    def forward(self, x):
        h = self.conv(F.pad(x, (self.dilation, 0)))  # causal: only the past is seen
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        return x + self.res(z), self.skip(z)


class WaveNet(nn.Module):
    def __init__(self, wn=weight_norm):
        super().__init__()
        self.inp = nn.Conv1d(MU + 1, CH, kernel_size=1)
        self.layers = nn.ModuleList(ResidualLayer(d, wn) for d in DILATIONS)
        self.out1 = nn.Conv1d(SKIP, SKIP, 1)
        self.out2 = nn.Conv1d(SKIP, MU + 1, 1)

    def forward(self, q):  # q: (B, T) int64 codes -> (B, 256, T) logits
        x = self.inp(F.one_hot(q, num_classes=MU + 1).float().permute(0, 2, 1))
        skips = 0
        for layer in self.layers:
            x, s = layer(x)
            skips = skips + s
        return self.out2(F.relu(self.out1(F.relu(skips))))


# the starting weights come from a checkpoint of an older version of the code, which used the
# deprecated nn.utils.weight_norm (keys weight_g / weight_v): they load into the new model
legacy = WaveNet(wn=nn.utils.weight_norm)
W = reference_weights(legacy)
with torch.no_grad():
    for name, p in legacy.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
model = WaveNet()
loaded = model.load_state_dict(legacy.state_dict())
legacy_keys = sorted(k for k in legacy.state_dict() if k.startswith("layers.0.conv"))
n_params = sum(p.numel() for p in model.parameters())

codes = mu_law_encode(torch.from_numpy(wave))  # (B, T + 1)
recon = mu_law_decode(codes)
inputs, targets = codes[:, :-1], codes[:, 1:]

opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01, amsgrad=True)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=20, pct_start=0.25)
losses, lrs = [], []
for step in range(20):
    logits = model(inputs)
    loss = F.cross_entropy(logits, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(sched.get_last_lr()[0])

# inference: fold the weight norm into plain weights
model.eval()
for layer in model.layers:
    parametrize.remove_parametrizations(layer.conv, "weight", leave_parametrized=True)
plain_keys = [k for k in model.state_dict() if k.startswith("layers.0.")]


@torch.no_grad()
def fast_step(q_t, queues):
    """One sample through the net, keeping each layer's last `dilation` inputs in a queue."""
    x = model.inp(F.one_hot(q_t, MU + 1).float().unsqueeze(-1))  # (B, CH, 1)
    skips = torch.zeros(q_t.shape[0], SKIP, 1)
    for layer, queue in zip(model.layers, queues):
        past = queue.pop(0)
        queue.append(x)
        w = layer.conv.weight  # (2CH, CH, 2): tap 0 sees t - d, tap 1 sees t
        h = torch.einsum("oc,bct->bot", w[:, :, 0], past) + torch.einsum(
            "oc,bct->bot", w[:, :, 1], x
        )
        h += layer.conv.bias.view(1, -1, 1)
        a, b = h.chunk(2, dim=1)
        z = a.tanh() * b.sigmoid()
        skips.add_(layer.skip(z))
        x = x + layer.res(z)
    return model.out2(F.relu(model.out1(F.relu(skips)))).squeeze(-1)  # (B, 256)


def fresh_queues(batch):
    return [[torch.zeros(batch, CH, 1) for _ in range(d)] for d in DILATIONS]


# teacher-forced log-probs of the training codes: fast path against the full convolution
with torch.no_grad():
    full = F.log_softmax(model(inputs), dim=1)  # (B, 256, T)
    full_lp = full.gather(1, targets.unsqueeze(1)).squeeze(1)  # (B, T)
    queues = fresh_queues(B)
    fast_lp = torch.empty(B, T)
    for i in range(T):
        lp = torch.log_softmax(fast_step(inputs[:, i], queues), dim=-1)
        fast_lp[:, i] = lp.gather(-1, targets[:, i : i + 1]).squeeze(-1)

# sampling: 16 new samples after a 16-sample prompt, from a seeded generator
gen = torch.Generator().manual_seed(1234)
with torch.no_grad():
    queues = fresh_queues(2)
    prompt = codes[:2, :16]
    for i in range(prompt.shape[1] - 1):
        fast_step(prompt[:, i], queues)
    cur, sampled = prompt[:, -1], []
    for _ in range(16):
        probs = F.softmax(fast_step(cur, queues) / 0.8, dim=-1)
        cur = torch.multinomial(probs, num_samples=1, generator=gen).squeeze(1)
        sampled.append(cur)
    sampled = torch.stack(sampled, dim=1)  # (2, 16)
    audio = mu_law_decode(sampled)

report(
    n_params=n_params,
    legacy_keys=legacy_keys,
    loaded_clean=not loaded.missing_keys and not loaded.unexpected_keys,
    codes=codes[0].tolist(),
    recon_err=(recon - torch.from_numpy(wave)).abs().max().item(),
    losses=losses,
    lrs=lrs,
    plain_keys=plain_keys,
    full_lp=full_lp.sum(dim=1).tolist(),
    fast_matches=bool(torch.allclose(fast_lp, full_lp, atol=1e-4)),
    fast_gap_small=(fast_lp - full_lp).abs().max().item() < 1e-4,
    random_samples=sampled.tolist(),
    sample_dtype=str(sampled.dtype).split(".")[-1],
    audio_in_range=bool(((audio >= -1) & (audio <= 1)).all()),
)
