# HiFi-GAN's training losses and discriminators (Kong et al. 2020) at toy scale, as the
# official repository writes them: a generator of ConvTranspose1d upsampling with
# multi-receptive-field ResBlocks (dilated Conv1d, leaky_relu(0.1), get_padding), weight_norm
# on every conv through torch.nn.utils.parametrizations.weight_norm, init_weights by
# apply(normal_(0, 0.01)); the multi-period discriminator (reflect padding to a multiple of
# the period, view(b, c, t // p, p), Conv2d with (k, 1) kernels) and the multi-scale
# discriminator (spectral_norm on the first scale, AvgPool1d between scales); the mel
# spectrogram by torch.stft(return_complex=True) with a hann window buffer and a triangular
# mel filterbank built in torch; LSGAN discriminator / generator losses, feature-matching
# L1 over every intermediate map, mel L1 * 45; AdamW(betas=(0.8, 0.99)) with ExponentialLR
# for both nets; remove_parametrizations for inference.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils import parametrize, spectral_norm
from torch.nn.utils.parametrizations import weight_norm

LRELU_SLOPE = 0.1
rng = np.random.default_rng(107)


def get_padding(kernel_size, dilation=1):
    return int((kernel_size * dilation - dilation) / 2)


def init_weights(m, mean=0.0, std=0.01):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        m.weight.data.normal_(mean, std)


class ResBlock(nn.Module):
    def __init__(self, channels, kernel_size=3, dilation=(1, 3)):
        super().__init__()
        self.convs1 = nn.ModuleList(
            [
                weight_norm(
                    nn.Conv1d(
                        channels,
                        channels,
                        kernel_size,
                        1,
                        dilation=d,
                        padding=get_padding(kernel_size, d),
                    )
                )
                for d in dilation
            ]
        )
        self.convs2 = nn.ModuleList(
            [
                weight_norm(
                    nn.Conv1d(
                        channels,
                        channels,
                        kernel_size,
                        1,
                        dilation=1,
                        padding=get_padding(kernel_size, 1),
                    )
                )
                for _ in dilation
            ]
        )

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = F.leaky_relu(x, LRELU_SLOPE)
            xt = c1(xt)
            xt = F.leaky_relu(xt, LRELU_SLOPE)
            xt = c2(xt)
            x = xt + x
        return x


class Generator(nn.Module):
    def __init__(self, n_mels=8, ch=16, rates=(4, 4)):
        super().__init__()
        self.conv_pre = weight_norm(nn.Conv1d(n_mels, ch, 7, 1, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, u in enumerate(rates):
            self.ups.append(
                weight_norm(
                    nn.ConvTranspose1d(
                        ch // 2**i, ch // 2 ** (i + 1), u * 2, u, padding=(u * 2 - u) // 2
                    )
                )
            )
            self.resblocks.append(ResBlock(ch // 2 ** (i + 1)))
        self.conv_post = weight_norm(nn.Conv1d(ch // 2 ** len(rates), 1, 7, 1, padding=3))
        self.ups.apply(init_weights)

    def forward(self, x):
        x = self.conv_pre(x)
        for up, rb in zip(self.ups, self.resblocks):
            x = F.leaky_relu(x, LRELU_SLOPE)
            x = rb(up(x))
        x = F.leaky_relu(x)
        return torch.tanh(self.conv_post(x))


class DiscriminatorP(nn.Module):
    def __init__(self, period):
        super().__init__()
        self.period = period
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(1, 8, (5, 1), (3, 1), padding=(get_padding(5), 0))),
                weight_norm(nn.Conv2d(8, 16, (5, 1), (3, 1), padding=(get_padding(5), 0))),
            ]
        )
        self.conv_post = weight_norm(nn.Conv2d(16, 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x):
        fmap = []
        b, c, t = x.shape
        if t % self.period != 0:
            n_pad = self.period - (t % self.period)
            x = F.pad(x, (0, n_pad), "reflect")
            t = t + n_pad
        x = x.view(b, c, t // self.period, self.period)
        for layer in self.convs:
            x = F.leaky_relu(layer(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class DiscriminatorS(nn.Module):
    def __init__(self, use_spectral_norm=False):
        super().__init__()
        norm_f = spectral_norm if use_spectral_norm else weight_norm
        self.convs = nn.ModuleList(
            [
                norm_f(nn.Conv1d(1, 8, 15, 1, padding=7)),
                norm_f(nn.Conv1d(8, 16, 41, 4, groups=4, padding=20)),
            ]
        )
        self.conv_post = norm_f(nn.Conv1d(16, 1, 3, 1, padding=1))

    def forward(self, x):
        fmap = []
        for layer in self.convs:
            x = F.leaky_relu(layer(x), LRELU_SLOPE)
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return torch.flatten(x, 1, -1), fmap


class MultiDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.mpd = nn.ModuleList([DiscriminatorP(p) for p in (2, 3)])
        self.msd = nn.ModuleList([DiscriminatorS(), DiscriminatorS()])
        self.meanpools = nn.ModuleList([nn.AvgPool1d(4, 2, padding=2)])

    def forward(self, y, y_hat):
        outs = []
        for d in self.mpd:
            outs.append((*d(y), *d(y_hat)))
        for i, d in enumerate(self.msd):
            if i != 0:
                y, y_hat = self.meanpools[i - 1](y), self.meanpools[i - 1](y_hat)
            outs.append((*d(y), *d(y_hat)))
        return outs


def feature_loss(fmap_r, fmap_g):
    loss = 0
    for dr, dg in zip(fmap_r, fmap_g):
        for rl, gl in zip(dr, dg):
            loss += torch.mean(torch.abs(rl - gl))
    return loss * 2


def discriminator_loss(disc_real_outputs, disc_generated_outputs):
    loss = 0
    for dr, dg in zip(disc_real_outputs, disc_generated_outputs):
        loss += torch.mean((1 - dr) ** 2) + torch.mean(dg**2)
    return loss


def generator_loss(disc_outputs):
    return sum(torch.mean((1 - dg) ** 2) for dg in disc_outputs)


def mel_filterbank(n_fft, n_mels, sr):
    def hz_to_mel(f):
        return 2595 * math.log10(1 + f / 700)

    mels = torch.linspace(hz_to_mel(0), hz_to_mel(sr / 2), n_mels + 2)
    hz = 700 * (10 ** (mels / 2595) - 1)
    bins = torch.floor((n_fft + 1) * hz / sr)
    fb = torch.zeros(n_mels, n_fft // 2 + 1)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float32)
    for m in range(1, n_mels + 1):
        lo, c, hi = bins[m - 1], bins[m], bins[m + 1]
        up = (k - lo) / (c - lo).clamp(min=1)
        down = (hi - k) / (hi - c).clamp(min=1)
        fb[m - 1] = torch.clamp(torch.minimum(up, down), min=0)
    return fb


class Mel(nn.Module):
    def __init__(self, n_fft=64, hop=16, n_mels=8, sr=4000):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft))
        self.register_buffer("fb", mel_filterbank(n_fft, n_mels, sr))

    def forward(self, y):
        y = F.pad(y.unsqueeze(1), ((self.n_fft - self.hop) // 2,) * 2, mode="reflect").squeeze(1)
        spec = torch.stft(
            y,
            self.n_fft,
            hop_length=self.hop,
            window=self.window,
            center=False,
            return_complex=True,
        )
        mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
        return torch.log(torch.clamp(self.fb @ mag, min=1e-5))


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            w = torch.from_numpy(W[name])
            p.copy_(w.abs() + 0.5 if name.endswith("original0") else w)
    return m


T = 256
t = torch.arange(T, dtype=torch.float32) / 4000
f0 = torch.from_numpy(rng.uniform(200, 600, (4, 1)).astype(np.float32))
audio = 0.5 * torch.sin(2 * math.pi * f0 * t) + 0.05 * torch.from_numpy(
    rng.standard_normal((4, T)).astype(np.float32)
)
mel_fn = Mel()
mel = mel_fn(audio)
generator, mpd_msd = load(Generator()), MultiDiscriminator()
torch.manual_seed(0)
load(mpd_msd)
for m in mpd_msd.modules():  # spectral norm's power iteration starts from a random u: fix it
    if hasattr(m, "weight_u"):
        m.weight_u.copy_(F.normalize(torch.ones_like(m.weight_u), dim=0))
optim_g = torch.optim.AdamW(generator.parameters(), 2e-4, betas=(0.8, 0.99))
optim_d = torch.optim.AdamW(mpd_msd.parameters(), 2e-4, betas=(0.8, 0.99))
sched_g = torch.optim.lr_scheduler.ExponentialLR(optim_g, gamma=0.999)
sched_d = torch.optim.lr_scheduler.ExponentialLR(optim_d, gamma=0.999)
log = {"d": [], "g": [], "fm": [], "mel": []}
for step in range(5):
    y_g_hat = generator(mel)[..., :T]
    y = audio.unsqueeze(1)
    optim_d.zero_grad()
    outs = mpd_msd(y, y_g_hat.detach())
    loss_disc = discriminator_loss([o[0] for o in outs], [o[2] for o in outs])
    loss_disc.backward()
    optim_d.step()
    optim_g.zero_grad()
    loss_mel = F.l1_loss(mel, mel_fn(y_g_hat.squeeze(1))) * 45
    outs = mpd_msd(y, y_g_hat)
    loss_fm = feature_loss([o[1] for o in outs], [o[3] for o in outs])
    loss_gen = generator_loss([o[2] for o in outs])
    loss_gen_all = loss_gen + loss_fm + loss_mel
    loss_gen_all.backward()
    optim_g.step()
    sched_g.step()
    sched_d.step()
    log["d"].append(loss_disc.item())
    log["g"].append(loss_gen.item())
    log["fm"].append(loss_fm.item())
    log["mel"].append(loss_mel.item())

generator.eval()
with torch.no_grad():
    before = generator(mel[:1])
    for m in generator.modules():
        if parametrize.is_parametrized(m):
            parametrize.remove_parametrizations(m, "weight")
    after = generator(mel[:1])
log["removed_close"] = bool(torch.allclose(before, after, atol=1e-6))
log["wav"] = after[0, 0, :8].tolist()
log["n_params_g"] = sum(p.numel() for p in generator.parameters())
report(**log)
