# Frequency-domain training code as neural-vocoder and speech-enhancement repositories write it:
# ParallelWaveGAN's multi-resolution STFT loss (torch.stft with hann / hamming windows made per
# resolution and registered as buffers, spectral convergence by the Frobenius norm, log-magnitude
# L1, magnitudes clamped before sqrt), a learnable FIR denoiser (Conv1d) and a frequency-domain
# mask trained on it, FFT convolution by rfft / irfft(n=) checked against conv1d, the analytic
# signal (Hilbert transform) and its envelope, instantaneous frequency by phase unwrapping,
# window functions (blackman, bartlett, kaiser), fftfreq / rfftfreq / fftshift, Parseval's
# identity under the three norms, hfft / ihfft, istft round trips, and Wiener deconvolution of an
# image by fft2 / ifft2 with its noise-to-signal ratio learned by gradient descent through the
# complex division.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(19)

SR, L, B = 8000, 2048, 3
t = np.arange(L) / SR
clean_np = np.stack([
    0.6 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 660 * t),
    0.5 * np.sin(2 * np.pi * (200 + 300 * t) * t) * np.exp(-2 * t),
    0.4 * np.sign(np.sin(2 * np.pi * 150 * t)) * 0.5 + 0.2 * np.sin(2 * np.pi * 1200 * t),
])
noisy_np = clean_np + 0.15 * rng.standard_normal(clean_np.shape)
clean = torch.from_numpy(clean_np.astype(np.float32))
noisy = torch.from_numpy(noisy_np.astype(np.float32))


def stft(x, fft_size, hop_size, win_length, window):
    x_stft = torch.stft(x, fft_size, hop_size, win_length, window, return_complex=True)
    real = x_stft.real
    imag = x_stft.imag
    return torch.sqrt(torch.clamp(real ** 2 + imag ** 2, min=1e-7)).transpose(2, 1)


class SpectralConvergenceLoss(nn.Module):
    def forward(self, x_mag, y_mag):
        return torch.norm(y_mag - x_mag, p="fro") / torch.norm(y_mag, p="fro")


class LogSTFTMagnitudeLoss(nn.Module):
    def forward(self, x_mag, y_mag):
        return F.l1_loss(torch.log(y_mag), torch.log(x_mag))


class STFTLoss(nn.Module):
    def __init__(self, fft_size=1024, shift_size=120, win_length=600, window="hann_window"):
        super().__init__()
        self.fft_size = fft_size
        self.shift_size = shift_size
        self.win_length = win_length
        self.register_buffer("window", getattr(torch, window)(win_length))
        self.spectral_convergence_loss = SpectralConvergenceLoss()
        self.log_stft_magnitude_loss = LogSTFTMagnitudeLoss()

    def forward(self, x, y):
        x_mag = stft(x, self.fft_size, self.shift_size, self.win_length, self.window)
        y_mag = stft(y, self.fft_size, self.shift_size, self.win_length, self.window)
        return self.spectral_convergence_loss(x_mag, y_mag), self.log_stft_magnitude_loss(x_mag,
                                                                                          y_mag)


class MultiResolutionSTFTLoss(nn.Module):
    def __init__(self, fft_sizes=(256, 512, 128), hop_sizes=(32, 64, 16),
                 win_lengths=(120, 240, 60), window="hann_window"):
        super().__init__()
        self.stft_losses = nn.ModuleList()
        for fs, ss, wl in zip(fft_sizes, hop_sizes, win_lengths):
            self.stft_losses += [STFTLoss(fs, ss, wl, window)]

    def forward(self, x, y):
        sc_loss, mag_loss = 0.0, 0.0
        for f in self.stft_losses:
            sc_l, mag_l = f(x, y)
            sc_loss += sc_l
            mag_loss += mag_l
        return sc_loss / len(self.stft_losses), mag_loss / len(self.stft_losses)


mr_stft = MultiResolutionSTFTLoss()
mr_stft_hamming = MultiResolutionSTFTLoss(window="hamming_window")
baseline = [v.item() for v in mr_stft(noisy, clean)]
baseline_hamming = [v.item() for v in mr_stft_hamming(noisy, clean)]
buffer_names = [n for n, _ in mr_stft.named_buffers()]

# a learnable FIR denoiser trained with the MR-STFT loss + L1 waveform loss, in float64: the
# log-magnitude L1 has thousands of bins where sign(log y - log x) flips within float32 rounding
# (float32 gradients are 1e-4 from float64 ones in either library, and the runs part by step 5)
fir = nn.Conv1d(1, 1, 31, padding=15, bias=False)
with torch.no_grad():
    fir.weight.copy_(torch.from_numpy(reference_weights(fir)["weight"]))
fir.double()
mr_stft64 = MultiResolutionSTFTLoss().double()
opt = torch.optim.Adam(fir.parameters(), lr=3e-3)
fir_losses = []
for step in range(12):
    opt.zero_grad()
    out = fir(noisy.double().unsqueeze(1)).squeeze(1)
    sc, mag = mr_stft64(out, clean.double())
    loss = sc + mag + F.l1_loss(out, clean.double())
    loss.backward()
    opt.step()
    fir_losses.append([loss.item(), sc.item(), mag.item()])

# a spectral mask on the STFT, reconstructed by istft
n_fft, hop = 256, 64
window = torch.hann_window(n_fft)
spec = torch.stft(noisy, n_fft, hop, window=window, return_complex=True)   # (B, F, T)
mask_logits = nn.Parameter(torch.zeros(spec.shape[1], 1))
opt2 = torch.optim.SGD([mask_logits], lr=20.0)
mask_losses = []
for step in range(10):
    opt2.zero_grad()
    masked = spec * torch.sigmoid(mask_logits)
    wav = torch.istft(masked, n_fft, hop, window=window, length=L)
    loss = F.mse_loss(wav, clean)
    loss.backward()
    opt2.step()
    mask_losses.append(loss.item())
roundtrip = (torch.istft(spec, n_fft, hop, window=window, length=L) - noisy).abs().max().item()

# FFT convolution == conv1d (cross-correlation with a flipped kernel)
kernel = torch.from_numpy(rng.standard_normal(33).astype(np.float32)) / 6
n = L + 33 - 1
fft_conv = torch.fft.irfft(torch.fft.rfft(noisy, n=n) * torch.fft.rfft(kernel, n=n), n=n)
direct = F.conv1d(F.pad(noisy.unsqueeze(1), (32, 32)), kernel.flip(0).view(1, 1, -1)).squeeze(1)
fft_conv_err = (fft_conv - direct).abs().max().item()


def hilbert(x):
    N = x.shape[-1]
    Xf = torch.fft.fft(x, dim=-1)
    h = torch.zeros(N, dtype=x.dtype)
    if N % 2 == 0:
        h[0] = h[N // 2] = 1
        h[1:N // 2] = 2
    else:
        h[0] = 1
        h[1:(N + 1) // 2] = 2
    return torch.fft.ifft(Xf * h, dim=-1)


analytic = hilbert(clean.double())
envelope = analytic.abs()
phase = torch.angle(analytic)
dphase = torch.diff(phase, dim=-1)
dphase = torch.remainder(dphase + math.pi, 2 * math.pi) - math.pi
unwrapped = torch.cat([phase[..., :1], phase[..., :1] + torch.cumsum(dphase, -1)], -1)
inst_freq = dphase * SR / (2 * math.pi)

windows = {
    "blackman": torch.blackman_window(16, periodic=False),
    "bartlett": torch.bartlett_window(15),
    "kaiser": torch.kaiser_window(16, False, 8.0),
    "hamming": torch.hamming_window(16, periodic=False),
    "hann_f64": torch.hann_window(9, dtype=torch.float64),
}
freqs = torch.fft.fftshift(torch.fft.fftfreq(8, d=1 / SR))
rfreqs = torch.fft.rfftfreq(9, d=0.5)
x0 = clean[0, :64].double()
parseval = [
    (torch.fft.fft(x0).abs().pow(2).sum() / 64).item(),
    torch.fft.fft(x0, norm="ortho").abs().pow(2).sum().item(),
    (torch.fft.fft(x0, norm="forward").abs().pow(2).sum() * 64).item(),
    x0.pow(2).sum().item(),
]
half = torch.fft.ihfft(x0)
herm_back = torch.fft.hfft(half, n=64)
spectrum = torch.fft.rfft(clean, dim=-1).abs()
peak_bins = spectrum.argmax(-1).tolist()
centroid = ((torch.fft.rfftfreq(L, 1 / SR) * spectrum).sum(-1) / spectrum.sum(-1)).tolist()

# Wiener deconvolution of a blurred image, the noise-to-signal ratio learned
H = W = 32
yy, xx = np.mgrid[0:H, 0:W]
image = torch.from_numpy(((np.sin(xx / 3.0) * np.cos(yy / 5.0) > 0) * 1.0 + 0.2 * (xx / W))
                         .astype(np.float32))
psf = torch.exp(-((torch.arange(7) - 3.0) ** 2) / 4.0)
psf = (psf[:, None] * psf[None, :])
psf = psf / psf.sum()
psf_pad = F.pad(psf, (0, W - 7, 0, H - 7)).roll(shifts=(-3, -3), dims=(0, 1))
Hf = torch.fft.fft2(psf_pad)
blurred = torch.fft.ifft2(torch.fft.fft2(image) * Hf).real
blurred = blurred + torch.from_numpy(rng.standard_normal((H, W)).astype(np.float32)) * 0.02
log_nsr = torch.tensor(-2.0, requires_grad=True)
opt3 = torch.optim.Adam([log_nsr], lr=0.2)
wiener_losses = []
for step in range(15):
    opt3.zero_grad()
    G = Hf.conj() / (Hf.abs() ** 2 + torch.exp(log_nsr))
    restored = torch.fft.ifft2(torch.fft.fft2(blurred) * G).real
    loss = F.mse_loss(restored, image)
    loss.backward()
    opt3.step()
    wiener_losses.append(loss.item())

report(
    baseline=baseline,
    baseline_hamming=baseline_hamming,
    buffer_names=buffer_names,
    fir_losses=fir_losses,
    mask_losses=mask_losses,
    mask_mean=torch.sigmoid(mask_logits).mean().item(),
    roundtrip_small=roundtrip < 1e-5,
    fft_conv_small=fft_conv_err < 1e-4,
    envelope=envelope[:, ::256].tolist(),
    unwrapped_end=unwrapped[:, -1].tolist(),
    inst_freq_median=inst_freq[:, 10:-10].median(-1).values.tolist(),
    windows={k: v.tolist() for k, v in windows.items()},
    freqs=freqs.tolist(),
    rfreqs=rfreqs.tolist(),
    parseval=parseval,
    herm_err_small=(herm_back - x0).abs().max().item() < 1e-10,
    peak_bins=peak_bins,
    centroid=centroid,
    wiener_losses=wiener_losses,
    log_nsr=log_nsr.item(),
)
