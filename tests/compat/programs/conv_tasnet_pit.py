# Speech separation as Conv-TasNet / asteroid-style code writes it, shrunk: a learned Conv1d
# encoder (stride L // 2) and ConvTranspose1d decoder, global and cumulative layer norms (cLN by
# cumsum over time of sums and power sums, an arange entry count), a temporal convolution
# network of dilated depthwise-separable blocks with PReLU, skip and residual 1x1 convs, mask
# estimation by sigmoid / softmax over sources, SI-SNR computed with zero-mean signals and the
# projection <s', s> s / ||s||^2 (torch.sum(..., keepdim=True), log10 with eps), utterance-level
# permutation invariant training by itertools.permutations with torch.stack over permutations
# and min / argmin, reordering estimates by the best permutation through gather, and an
# overlap-add check of the decoder against F.fold. Our own program.
import itertools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(91)
N_SRC, N_FILT, L_WIN, T = 2, 16, 8, 160
EPS = 1e-8


class GlobalLayerNorm(nn.Module):
    def __init__(self, channel_size):
        super().__init__()
        self.gamma = nn.Parameter(torch.Tensor(1, channel_size, 1))
        self.beta = nn.Parameter(torch.Tensor(1, channel_size, 1))

    def forward(self, y):
        mean = y.mean(dim=1, keepdim=True).mean(dim=2, keepdim=True)
        var = (torch.pow(y - mean, 2)).mean(dim=1, keepdim=True).mean(dim=2, keepdim=True)
        return self.gamma * (y - mean) / torch.pow(var + EPS, 0.5) + self.beta


class CumulativeLayerNorm(nn.Module):
    def __init__(self, channel_size):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, channel_size, 1))
        self.bias = nn.Parameter(torch.zeros(1, channel_size, 1))

    def forward(self, x):
        b, c, t = x.size()
        step_sum = x.sum(1)
        step_pow_sum = x.pow(2).sum(1)
        cum_sum = torch.cumsum(step_sum, dim=1)
        cum_pow_sum = torch.cumsum(step_pow_sum, dim=1)
        entry_cnt = torch.arange(c, c * (t + 1), c, dtype=x.dtype).view(1, -1)
        cum_mean = cum_sum / entry_cnt
        cum_var = (cum_pow_sum - 2 * cum_mean * cum_sum) / entry_cnt + cum_mean.pow(2)
        cum_std = (cum_var + EPS).sqrt()
        x = (x - cum_mean.unsqueeze(1)) / cum_std.unsqueeze(1)
        return x * self.gain + self.bias


class TemporalBlock(nn.Module):
    def __init__(self, in_ch, hid_ch, kernel, dilation, norm):
        super().__init__()
        self.conv1x1 = nn.Conv1d(in_ch, hid_ch, 1, bias=False)
        self.prelu1 = nn.PReLU()
        self.norm1 = norm(hid_ch)
        padding = (kernel - 1) * dilation // 2
        self.depthwise = nn.Conv1d(
            hid_ch, hid_ch, kernel, padding=padding, dilation=dilation, groups=hid_ch, bias=False
        )
        self.prelu2 = nn.PReLU()
        self.norm2 = norm(hid_ch)
        self.res_conv = nn.Conv1d(hid_ch, in_ch, 1, bias=False)
        self.skip_conv = nn.Conv1d(hid_ch, in_ch, 1, bias=False)

    def forward(self, x):
        y = self.norm1(self.prelu1(self.conv1x1(x)))
        y = self.norm2(self.prelu2(self.depthwise(y)))
        return x + self.res_conv(y), self.skip_conv(y)


class ConvTasNet(nn.Module):
    def __init__(self, norm, mask_act):
        super().__init__()
        self.encoder = nn.Conv1d(1, N_FILT, L_WIN, stride=L_WIN // 2, bias=False)
        self.bottleneck = nn.Sequential(norm(N_FILT), nn.Conv1d(N_FILT, 12, 1))
        self.blocks = nn.ModuleList([TemporalBlock(12, 24, 3, 2**d, norm) for d in range(3)])
        self.mask_conv = nn.Sequential(nn.PReLU(), nn.Conv1d(12, N_SRC * N_FILT, 1))
        self.decoder = nn.ConvTranspose1d(N_FILT, 1, L_WIN, stride=L_WIN // 2, bias=False)
        self.mask_act = mask_act

    def forward(self, mixture):
        w = F.relu(self.encoder(mixture.unsqueeze(1)))  # (B, N, K)
        x = self.bottleneck(w)
        skip_sum = 0.0
        for block in self.blocks:
            x, skip = block(x)
            skip_sum = skip_sum + skip
        score = self.mask_conv(skip_sum).view(w.size(0), N_SRC, N_FILT, -1)
        mask = torch.sigmoid(score) if self.mask_act == "sigmoid" else F.softmax(score, dim=1)
        masked = w.unsqueeze(1) * mask  # (B, C, N, K)
        est = self.decoder(masked.view(-1, N_FILT, masked.size(-1))).view(w.size(0), N_SRC, -1)
        return F.pad(est, (0, T - est.size(-1))), w


def si_snr(est, ref):  # (..., T)
    est = est - torch.mean(est, dim=-1, keepdim=True)
    ref = ref - torch.mean(ref, dim=-1, keepdim=True)
    s_target = (
        torch.sum(est * ref, dim=-1, keepdim=True)
        * ref
        / (torch.sum(ref**2, dim=-1, keepdim=True) + EPS)
    )
    e_noise = est - s_target
    return 10 * torch.log10(
        torch.sum(s_target**2, dim=-1) / (torch.sum(e_noise**2, dim=-1) + EPS) + EPS
    )


def pit_loss(est, ref):
    perms = list(itertools.permutations(range(N_SRC)))
    losses = torch.stack([-si_snr(est[:, list(p)], ref).mean(-1) for p in perms], dim=1)  # (B, P)
    min_loss, best = torch.min(losses, dim=1)
    perm_idx = torch.tensor(perms)[best]  # (B, C)
    reordered = torch.gather(est, 1, perm_idx.unsqueeze(-1).expand_as(est))
    return min_loss.mean(), reordered, best


def make_batch(n):
    t = np.arange(T)[None, :]
    f1 = rng.uniform(0.02, 0.08, size=(n, 1))
    f2 = rng.uniform(0.15, 0.3, size=(n, 1))
    s1 = np.sin(2 * np.pi * f1 * t + rng.uniform(0, 6, size=(n, 1)))
    s2 = np.sign(np.sin(2 * np.pi * f2 * t)) * 0.5 + 0.05 * rng.normal(size=(n, T))
    srcs = np.stack([s1, s2], 1).astype(np.float32)
    swap = rng.uniform(size=n) < 0.5
    srcs[swap] = srcs[swap][:, ::-1]
    return torch.from_numpy(srcs.sum(1)), torch.from_numpy(srcs.copy())


results = {}
for name, norm, act in (
    ("gln_sigmoid", GlobalLayerNorm, "sigmoid"),
    ("cln_softmax", CumulativeLayerNorm, "softmax"),
):
    model = ConvTasNet(norm, act)
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    log, bests = [], []
    for step in range(8):
        mix, srcs = make_batch(4)
        est, _ = model(mix)
        loss, reordered, best = pit_loss(est, srcs)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        log.append(loss.item())
        bests.append(best.tolist())
    results[name] = log
    results[f"{name}_perms"] = bests
    with torch.no_grad():
        mix, srcs = make_batch(3)
        est, w = model(mix)
        _, reordered, _ = pit_loss(est, srcs)
        sdr_i = (si_snr(reordered, srcs) - si_snr(mix.unsqueeze(1).expand_as(srcs), srcs)).mean()
        results[f"{name}_si_snri"] = sdr_i.item()
        # the decoder is overlap-add: ConvTranspose1d == per-frame matmul + F.fold
        frames = torch.einsum("bnk,nl->blk", w, model.decoder.weight[:, 0, :])
        K = w.size(-1)
        ola = F.fold(
            frames,
            output_size=(1, (K - 1) * (L_WIN // 2) + L_WIN),
            kernel_size=(1, L_WIN),
            stride=(1, L_WIN // 2),
        )
        results[f"{name}_ola"] = torch.allclose(
            ola.view(w.size(0), -1), model.decoder(w).squeeze(1), atol=1e-5
        )
report(**results)
