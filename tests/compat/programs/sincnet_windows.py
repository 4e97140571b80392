# Learnable and designed FIR filters, as mravanelli/SincNet's SincConv_fast and DSP notebooks
# write them in PyTorch (our own condensed rewrite): band-pass filters from learned low / band
# cut-off frequencies in mel-spaced initialisation (to_mel / to_hz in NumPy), a Hamming window
# built with torch.cos over a linspace half, sinc by sin(x) / x on the half-axis mirrored with
# torch.flip and concatenated around the centre, filters normalised by their band and run with
# F.conv1d; windowed-sinc low-pass design with torch.sinc and each window of torch.signal.windows
# (hann, hamming, blackman, bartlett, kaiser with beta, gaussian with std, cosine, exponential,
# general_cosine, general_hamming, nuttall) checked against the legacy torch.*_window functions;
# the Kaiser window's own formula through torch.i0 and torch.special's Bessel functions (i0e,
# i1, i1e, bessel_j0, bessel_j1, modified_bessel_k0, spherical_bessel_j0); signals filtered
# with nn.CircularPad1d, nn.ZeroPad1d and nn.ReflectionPad1d; a SincNet front-end trained with
# RMSprop under a ChainedScheduler of MultiplicativeLR and ExponentialLR.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(23)
torch.manual_seed(0)


class SincConv_fast(nn.Module):
    @staticmethod
    def to_mel(hz):
        return 2595 * np.log10(1 + hz / 700)

    @staticmethod
    def to_hz(mel):
        return 700 * (10 ** (mel / 2595) - 1)

    def __init__(self, out_channels, kernel_size, sample_rate=16000, in_channels=1, stride=1,
                 padding=0, dilation=1, bias=False, groups=1, min_low_hz=50,
                 min_band_hz=50):  # fmt: skip
        super().__init__()
        if in_channels != 1:
            msg = "SincConv only support one input channel (here, in_channels = {%i})" % (
                in_channels
            )
            raise ValueError(msg)
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        if kernel_size % 2 == 0:
            self.kernel_size = self.kernel_size + 1
        self.stride, self.padding, self.dilation = stride, padding, dilation
        if bias:
            raise ValueError("SincConv does not support bias.")
        if groups > 1:
            raise ValueError("SincConv does not support groups.")
        self.sample_rate = sample_rate
        self.min_low_hz = min_low_hz
        self.min_band_hz = min_band_hz
        low_hz = 30
        high_hz = self.sample_rate / 2 - (self.min_low_hz + self.min_band_hz)
        mel = np.linspace(self.to_mel(low_hz), self.to_mel(high_hz), self.out_channels + 1)
        hz = self.to_hz(mel)
        self.low_hz_ = nn.Parameter(torch.Tensor(hz[:-1]).view(-1, 1))
        self.band_hz_ = nn.Parameter(torch.Tensor(np.diff(hz)).view(-1, 1))
        n_lin = torch.linspace(0, (self.kernel_size / 2) - 1, steps=int(self.kernel_size / 2))
        self.window_ = 0.54 - 0.46 * torch.cos(2 * math.pi * n_lin / self.kernel_size)
        n = (self.kernel_size - 1) / 2.0
        self.n_ = 2 * math.pi * torch.arange(-n, 0).view(1, -1) / self.sample_rate

    def forward(self, waveforms):
        self.n_ = self.n_.to(waveforms.device)
        self.window_ = self.window_.to(waveforms.device)
        low = self.min_low_hz + torch.abs(self.low_hz_)
        high = torch.clamp(low + self.min_band_hz + torch.abs(self.band_hz_), self.min_low_hz,
                           self.sample_rate / 2)  # fmt: skip
        band = (high - low)[:, 0]
        f_times_t_low = torch.matmul(low, self.n_)
        f_times_t_high = torch.matmul(high, self.n_)
        band_pass_left = (
            (torch.sin(f_times_t_high) - torch.sin(f_times_t_low)) / (self.n_ / 2)
        ) * self.window_
        band_pass_center = 2 * band.view(-1, 1)
        band_pass_right = torch.flip(band_pass_left, dims=[1])
        band_pass = torch.cat([band_pass_left, band_pass_center, band_pass_right], dim=1)
        band_pass = band_pass / (2 * band[:, None])
        self.filters = (band_pass).view(self.out_channels, 1, self.kernel_size)
        return F.conv1d(waveforms, self.filters, stride=self.stride, padding=self.padding,
                        dilation=self.dilation, bias=None, groups=1)  # fmt: skip


class SincNet(nn.Module):
    def __init__(self, n_cls=3):
        super().__init__()
        self.sinc = SincConv_fast(8, 25, sample_rate=8000)
        self.ln0 = nn.LayerNorm(400)
        self.pool = nn.MaxPool1d(3)
        self.conv = nn.Conv1d(8, 8, 5)
        self.bn = nn.BatchNorm1d(8, momentum=0.05)
        self.act = nn.LeakyReLU(0.2)
        self.fc = nn.Linear(8, n_cls)

    def forward(self, x):
        x = self.ln0(x)
        x = x.view(x.shape[0], 1, -1)
        x = self.act(self.pool(torch.abs(self.sinc(x))))
        x = self.act(self.bn(self.conv(x)))
        return self.fc(x.mean(-1))


def tones(n, L=400, sr=8000):
    y = rng.integers(0, 3, size=n)
    t = np.arange(L) / sr
    freqs = np.array([300.0, 1200.0, 2800.0])
    x = np.sin(2 * np.pi * freqs[y][:, None] * t + rng.uniform(0, 6, size=(n, 1)))
    x = x + 0.5 * rng.standard_normal((n, L))
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


model = SincNet()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        if not name.startswith("sinc."):  # keep the mel-spaced initialisation
            p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.95, eps=1e-8)
sched = torch.optim.lr_scheduler.ChainedScheduler(
    [
        torch.optim.lr_scheduler.MultiplicativeLR(opt, lr_lambda=lambda e: 0.97),
        torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.99),
    ]
)
losses, lrs = [], []
for step in range(10):
    x, y = tones(8)
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(sched.get_last_lr()[0])
low_hz = (model.sinc.min_low_hz + model.sinc.low_hz_.abs()).flatten().tolist()
filters = model.sinc.filters.detach()

# windows: torch.signal.windows against the legacy functions and their formulas
Nw = 17
windows = torch.signal.windows
w = {
    "hann": windows.hann(Nw, sym=False),
    "hamming": windows.hamming(Nw),
    "blackman": windows.blackman(Nw),
    "bartlett": windows.bartlett(Nw),
    "kaiser": windows.kaiser(Nw, beta=8.0, sym=True),
    "gaussian": windows.gaussian(Nw, std=2.5),
    "cosine": windows.cosine(Nw),
    "exponential": windows.exponential(Nw, tau=3.0),
    "general_cosine": windows.general_cosine(Nw, a=[0.46, 0.23, 0.31]),
    "general_hamming": windows.general_hamming(Nw, alpha=0.6),
    "nuttall": windows.nuttall(Nw),
}
legacy_same = [
    torch.allclose(w["hann"], torch.hann_window(Nw)),
    torch.allclose(w["hamming"], torch.hamming_window(Nw, periodic=False)),
    torch.allclose(w["blackman"], torch.blackman_window(Nw, periodic=False), atol=1e-6),
    torch.allclose(w["bartlett"], torch.bartlett_window(Nw, periodic=False)),
    torch.allclose(w["kaiser"], torch.kaiser_window(Nw, periodic=False, beta=8.0), atol=1e-6),
]
nk = torch.arange(Nw, dtype=torch.float64)
beta = 8.0
kaiser_formula = torch.i0(beta * torch.sqrt(1 - (2 * nk / (Nw - 1) - 1) ** 2)) / torch.i0(
    torch.tensor(beta, dtype=torch.float64)
)
kaiser_ok = torch.allclose(kaiser_formula.float(), w["kaiser"], atol=1e-6)

# windowed-sinc low-pass filters, applied with three paddings
cutoff = 0.2
taps_n = torch.arange(Nw) - (Nw - 1) / 2
sinc_taps = 2 * cutoff * torch.sinc(2 * cutoff * taps_n)
designed = {}
for name in ("hamming", "blackman", "kaiser", "nuttall"):
    taps = sinc_taps * w[name]
    designed[name] = (taps / taps.sum()).tolist()
sig, _ = tones(2, L=64)
kernel = torch.tensor(designed["hamming"])[None, None]
pads = {"circular": nn.CircularPad1d(8), "zero": nn.ZeroPad1d((8, 8)),
        "reflect": nn.ReflectionPad1d(8)}  # fmt: skip
filtered = {k: F.conv1d(p(sig[:, None]), kernel)[:, 0] for k, p in pads.items()}
# the circular filter equals multiplication in the DFT domain
H = torch.fft.rfft(torch.roll(F.pad(kernel[0, 0], (0, 64 - Nw)), -8), n=64)
circ_fft = torch.fft.irfft(torch.fft.rfft(sig) * H, n=64)

z = torch.linspace(0.05, 12.0, 11, dtype=torch.float64)
bessel = {
    "i0e": torch.special.i0e(z).tolist(),
    "i1": torch.special.i1(z).tolist(),
    "i1e": torch.special.i1e(z).tolist(),
    "j0": torch.special.bessel_j0(z).tolist(),
    "j1": torch.special.bessel_j1(z).tolist(),
    "k0": torch.special.modified_bessel_k0(z).tolist(),
    "sph_j0": torch.special.spherical_bessel_j0(z).tolist(),
}
report(
    losses=losses,
    lrs=lrs,
    low_hz=low_hz,
    filter_row=filters[3, 0, ::3].tolist(),
    windows={k: v.tolist() for k, v in w.items()},
    legacy_same=legacy_same,
    kaiser_formula=kaiser_ok,
    designed=designed,
    filtered={k: v[0, ::4].tolist() for k, v in filtered.items()},
    circular_is_fft=torch.allclose(filtered["circular"], circ_fft, atol=1e-5),
    bessel=bessel,
)
