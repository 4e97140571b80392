# A keyword-spotting front end and model as speech notebooks write them without torchaudio:
# pre-emphasis, framing by Tensor.unfold with a Hamming window, |rfft|^2 power spectra, an
# HTK mel filterbank built with torch.linspace / torch.floor and triangle slopes, log-mel with a
# floor, the DCT-II matrix (torchaudio's create_dct, ortho), MFCCs, delta features by conv1d
# with replicate padding, per-utterance CMVN, SpecAugment time / frequency masks from NumPy
# draws (masked_fill), a depthwise-separable CNN (DS-CNN) trained a few steps, and a Griffin-Lim
# reconstruction by torch.stft / torch.istft iterations with momentum.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

SR, N_FFT, HOP, N_MELS, N_MFCC = 8000, 128, 64, 20, 10
rng = np.random.default_rng(41)


def make_wave(k, n=2048):
    t = np.arange(n) / SR
    f0 = [300, 550, 800][k]
    w = np.sin(2 * np.pi * f0 * t * (1 + 0.1 * np.sin(2 * np.pi * 3 * t))) * np.hanning(n)
    return (w + 0.05 * rng.standard_normal(n)).astype(np.float32)


labels = rng.integers(0, 3, 12)
waves = torch.from_numpy(np.stack([make_wave(k) for k in labels]))
y = torch.from_numpy(labels)


def hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_filterbank():
    mels = torch.linspace(hz_to_mel(0.0), hz_to_mel(SR / 2), N_MELS + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1)
    bins = torch.floor((N_FFT + 1) * hz / SR).long()
    fb = torch.zeros(N_MELS, N_FFT // 2 + 1)
    for m in range(1, N_MELS + 1):
        lo, c, hi = bins[m - 1].item(), bins[m].item(), bins[m + 1].item()
        for k in range(lo, c):
            fb[m - 1, k] = (k - lo) / max(c - lo, 1)
        for k in range(c, hi):
            fb[m - 1, k] = (hi - k) / max(hi - c, 1)
    return fb


def create_dct(n_mfcc, n_mels):
    n = torch.arange(float(n_mels))
    k = torch.arange(float(n_mfcc)).unsqueeze(1)
    dct = torch.cos(math.pi / float(n_mels) * (n + 0.5) * k)
    dct[0] *= 1.0 / math.sqrt(2.0)
    dct *= math.sqrt(2.0 / float(n_mels))
    return dct.t()


FB = mel_filterbank()
DCT = create_dct(N_MFCC, N_MELS)


def mfcc(x):
    x = torch.cat([x[:, :1], x[:, 1:] - 0.97 * x[:, :-1]], 1)
    frames = x.unfold(1, N_FFT, HOP) * torch.hamming_window(N_FFT, periodic=False)
    power = torch.fft.rfft(frames).abs() ** 2 / N_FFT
    logmel = torch.log(torch.clamp(power @ FB.T, min=1e-10))
    return (logmel @ DCT).transpose(1, 2), logmel  # (B, n_mfcc, T)


def deltas(feat, N=2):
    denom = 2 * sum(n * n for n in range(1, N + 1))
    kernel = torch.arange(-N, N + 1, dtype=torch.float32).view(1, 1, -1).repeat(feat.shape[1], 1, 1)
    padded = F.pad(feat, (N, N), mode="replicate")
    return F.conv1d(padded, kernel, groups=feat.shape[1]) / denom


feats, logmel = mfcc(waves)
d1 = deltas(feats)
d2 = deltas(d1)
full = torch.cat([feats, d1, d2], 1)
full = (full - full.mean(2, keepdim=True)) / (full.std(2, keepdim=True) + 1e-5)


def spec_augment(x, arng, F_=4, T_=5):
    x = x.clone()
    B, Fd, Td = x.shape
    for b in range(B):
        f = int(arng.integers(0, F_ + 1))
        f0 = int(arng.integers(0, Fd - f + 1))
        t = int(arng.integers(0, T_ + 1))
        t0 = int(arng.integers(0, Td - t + 1))
        fmask = (torch.arange(Fd) >= f0) & (torch.arange(Fd) < f0 + f)
        tmask = (torch.arange(Td) >= t0) & (torch.arange(Td) < t0 + t)
        x[b] = x[b].masked_fill(fmask[:, None] | tmask[None, :], 0.0)
    return x


class DSCNN(nn.Module):
    def __init__(self, cin=3 * N_MFCC, ch=16, n_cls=3):
        super().__init__()
        self.stem = nn.Conv1d(cin, ch, 3, padding=1)
        self.dw = nn.Conv1d(ch, ch, 3, padding=1, groups=ch)
        self.pw = nn.Conv1d(ch, ch, 1)
        self.bn1, self.bn2 = nn.BatchNorm1d(ch), nn.BatchNorm1d(ch)
        self.fc = nn.Linear(ch, n_cls)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(self.bn1(self.dw(x)))
        x = F.relu(self.bn2(self.pw(x)))
        return self.fc(x.mean(-1))


net = DSCNN()
W = reference_weights(net)
with torch.no_grad():
    for n, p in net.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
arng = np.random.default_rng(5)
losses = []
for step in range(8):
    loss = F.cross_entropy(net(spec_augment(full, arng)), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
net.eval()
with torch.no_grad():
    acc = (net(full).argmax(1) == y).float().mean()

# Griffin-Lim on one utterance's magnitude
win = torch.hann_window(N_FFT)
spec = torch.stft(waves[0], N_FFT, HOP, window=win, return_complex=True)
mag = spec.abs()
angles = torch.exp(
    2j * math.pi * torch.from_numpy(np.random.default_rng(0).uniform(size=mag.shape)).float()
)
tprev = torch.zeros_like(spec)
errs = []
for it in range(8):
    inverse = torch.istft(mag * angles, N_FFT, HOP, window=win, length=waves.shape[1])
    rebuilt = torch.stft(inverse, N_FFT, HOP, window=win, return_complex=True)
    angles = rebuilt - 0.99 / (1 + 0.99) * tprev
    tprev = rebuilt
    angles = angles / (angles.abs() + 1e-16)
    errs.append(((rebuilt.abs() - mag).norm() / mag.norm()).item())

report(
    fb_sums=FB.sum(1).tolist(),
    dct_orth=(DCT.T @ DCT - torch.eye(N_MFCC)).abs().max().item() < 1e-5,
    mfcc0=feats[0, :, :3].tolist(),
    delta=d1[0, :3, :4].tolist(),
    logmel_mean=logmel.mean().item(),
    losses=losses,
    acc=acc.item(),
    gl_errs=errs,
)
