# Accelerated MRI reconstruction as facebookresearch/fastMRI writes it (our own condensed
# rewrite of fastmri/fftc.py, math.py, coil_combine.py, losses.py, data/subsample.py and
# models/varnet.py, with a small CNN in place of the U-Net): centred orthonormal FFTs on real
# views of complex data (view_as_complex, ifftshift, fftn(dim=(-2, -1), norm="ortho"),
# fftshift, view_as_real), complex_mul / complex_conj / complex_abs on the trailing 2, the
# root-sum-of-squares coil combination, an equispaced Cartesian mask with a fully sampled
# centre, coil sensitivities expanded and reduced (sens_expand / sens_reduce), an unrolled
# end-to-end VarNet with learned soft data consistency (torch.where(mask, current - ref, zero)
# times a dc_weight Parameter), per-sample complex normalisation by view / mean / std, padding
# to a multiple of 8 and unpadding, and fastMRI's SSIMLoss (a uniform window by F.conv2d,
# data_range per image) plus an L1 term; also native complex tensors: torch.fft.fft2 / ifft2,
# abs / angle / torch.polar, and a k-space phase shift (a sub-pixel translation).
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(17)
torch.manual_seed(0)


def fft2c(data, norm="ortho"):
    if not data.shape[-1] == 2:
        raise ValueError("Tensor does not have separate complex dim.")
    data = torch.fft.ifftshift(data, dim=[-3, -2])
    data = torch.view_as_real(torch.fft.fftn(torch.view_as_complex(data), dim=(-2, -1), norm=norm))
    data = torch.fft.fftshift(data, dim=[-3, -2])
    return data


def ifft2c(data, norm="ortho"):
    if not data.shape[-1] == 2:
        raise ValueError("Tensor does not have separate complex dim.")
    data = torch.fft.ifftshift(data, dim=[-3, -2])
    data = torch.view_as_real(torch.fft.ifftn(torch.view_as_complex(data), dim=(-2, -1), norm=norm))
    data = torch.fft.fftshift(data, dim=[-3, -2])
    return data


def complex_mul(x, y):
    if not x.shape[-1] == y.shape[-1] == 2:
        raise ValueError("Tensors do not have separate complex dim.")
    re = x[..., 0] * y[..., 0] - x[..., 1] * y[..., 1]
    im = x[..., 0] * y[..., 1] + x[..., 1] * y[..., 0]
    return torch.stack((re, im), dim=-1)


def complex_conj(x):
    return torch.stack((x[..., 0], -x[..., 1]), dim=-1)


def complex_abs(data):
    return (data**2).sum(dim=-1).sqrt()


def rss(data, dim=0):
    return torch.sqrt((data**2).sum(dim))


def equispaced_mask(num_cols, center_fraction, acceleration, offset):
    num_low_frequencies = round(num_cols * center_fraction)
    mask = np.zeros(num_cols, dtype=np.float32)
    pad = (num_cols - num_low_frequencies + 1) // 2
    mask[pad : pad + num_low_frequencies] = 1
    mask[offset::acceleration] = 1
    shape = [1, 1, 1, num_cols, 1]
    return torch.from_numpy(mask.reshape(*shape)).bool(), num_low_frequencies


class NormCNN(nn.Module):
    """fastMRI's NormUnet with a small CNN for the U-Net."""

    def __init__(self, chans=8, in_chans=2, out_chans=2):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_chans, chans, 3, padding=1),
            nn.InstanceNorm2d(chans),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(chans, chans, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(chans, out_chans, 1),
        )

    def complex_to_chan_dim(self, x):
        b, c, h, w, two = x.shape
        assert two == 2
        return x.permute(0, 4, 1, 2, 3).reshape(b, 2 * c, h, w)

    def chan_complex_to_last_dim(self, x):
        b, c2, h, w = x.shape
        assert c2 % 2 == 0
        c = c2 // 2
        return x.view(b, 2, c, h, w).permute(0, 2, 3, 4, 1).contiguous()

    def norm(self, x):
        # group norm
        b, c, h, w = x.shape
        x = x.view(b, 2, c // 2 * h * w)
        mean = x.mean(dim=2).view(b, 2, 1, 1)
        std = x.std(dim=2).view(b, 2, 1, 1)
        x = x.view(b, c, h, w)
        return (x - mean) / std, mean, std

    def unnorm(self, x, mean, std):
        return x * std + mean

    def pad(self, x):
        _, _, h, w = x.shape
        w_mult = ((w - 1) | 7) + 1
        h_mult = ((h - 1) | 7) + 1
        w_pad = [math.floor((w_mult - w) / 2), math.ceil((w_mult - w) / 2)]
        h_pad = [math.floor((h_mult - h) / 2), math.ceil((h_mult - h) / 2)]
        x = F.pad(x, w_pad + h_pad)
        return x, (h_pad, w_pad, h_mult, w_mult)

    def unpad(self, x, h_pad, w_pad, h_mult, w_mult):
        return x[..., h_pad[0] : h_mult - h_pad[1], w_pad[0] : w_mult - w_pad[1]]

    def forward(self, x):
        if not x.shape[-1] == 2:
            raise ValueError("Last dimension must be 2 for complex.")
        x = self.complex_to_chan_dim(x)
        x, mean, std = self.norm(x)
        x, pad_sizes = self.pad(x)
        x = self.net(x)
        x = self.unpad(x, *pad_sizes)
        x = self.unnorm(x, mean, std)
        x = self.chan_complex_to_last_dim(x)
        return x


class VarNetBlock(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.dc_weight = nn.Parameter(torch.ones(1))

    def sens_expand(self, x, sens_maps):
        return fft2c(complex_mul(x, sens_maps))

    def sens_reduce(self, x, sens_maps):
        return complex_mul(ifft2c(x), complex_conj(sens_maps)).sum(dim=1, keepdim=True)

    def forward(self, current_kspace, ref_kspace, mask, sens_maps):
        zero = torch.zeros(1, 1, 1, 1, 1).to(current_kspace)
        soft_dc = torch.where(mask, current_kspace - ref_kspace, zero) * self.dc_weight
        model_term = self.sens_expand(
            self.model(self.sens_reduce(current_kspace, sens_maps)), sens_maps
        )
        return current_kspace - soft_dc - model_term


class VarNet(nn.Module):
    def __init__(self, num_cascades=3, chans=8):
        super().__init__()
        self.cascades = nn.ModuleList([VarNetBlock(NormCNN(chans)) for _ in range(num_cascades)])

    def forward(self, masked_kspace, mask, sens_maps):
        kspace_pred = masked_kspace.clone()
        for cascade in self.cascades:
            kspace_pred = cascade(kspace_pred, masked_kspace, mask, sens_maps)
        return rss(complex_abs(ifft2c(kspace_pred)), dim=1)


class SSIMLoss(nn.Module):
    def __init__(self, win_size=5, k1=0.01, k2=0.03):
        super().__init__()
        self.win_size = win_size
        self.k1, self.k2 = k1, k2
        self.register_buffer("w", torch.ones(1, 1, win_size, win_size) / win_size**2)
        NP = win_size**2
        self.cov_norm = NP / (NP - 1)

    def forward(self, X, Y, data_range, reduced=True):
        data_range = data_range[:, None, None, None]
        C1 = (self.k1 * data_range) ** 2
        C2 = (self.k2 * data_range) ** 2
        ux = F.conv2d(X, self.w)
        uy = F.conv2d(Y, self.w)
        uxx = F.conv2d(X * X, self.w)
        uyy = F.conv2d(Y * Y, self.w)
        uxy = F.conv2d(X * Y, self.w)
        vx = self.cov_norm * (uxx - ux * ux)
        vy = self.cov_norm * (uyy - uy * uy)
        vxy = self.cov_norm * (uxy - ux * uy)
        A1, A2, B1, B2 = (
            2 * ux * uy + C1,
            2 * vxy + C2,
            ux**2 + uy**2 + C1,
            vx + vy + C2,
        )
        D = B1 * B2
        S = (A1 * A2) / D
        if reduced:
            return 1 - S.mean()
        return 1 - S


# synthetic data: phantoms of ellipses, 4 coils with smooth complex sensitivities
H = W = 16
NC = 4
yy, xx = np.mgrid[-1 : 1 : H * 1j, -1 : 1 : W * 1j]


def phantom():
    img = np.zeros((H, W), np.complex64)
    for _ in range(3):
        cx, cy, a, b = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), *rng.uniform(0.2, 0.6, 2)
        inside = ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 < 1
        img[inside] += rng.uniform(0.3, 1.0) * np.exp(1j * rng.uniform(-0.5, 0.5))
    return img


coil_pos = [(-1, -1), (-1, 1), (1, -1), (1, 1)]
sens = np.stack(
    [
        np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 1.5) * np.exp(1j * (cx * xx + cy * yy))
        for cx, cy in coil_pos
    ]  # fmt: skip
)
sens = sens / np.sqrt((np.abs(sens) ** 2).sum(0, keepdims=True))
sens_maps = torch.view_as_real(torch.from_numpy(sens.astype(np.complex64)))[None]  # 1,C,H,W,2


def sample(n):
    imgs = np.stack([phantom() for _ in range(n)])
    coil_imgs = torch.view_as_real(torch.from_numpy((imgs[:, None] * sens).astype(np.complex64)))
    kspace = fft2c(coil_imgs)
    kspace = kspace + 0.01 * torch.from_numpy(rng.standard_normal(kspace.shape).astype(np.float32))
    target = rss(complex_abs(ifft2c(kspace)), dim=1)
    return kspace, target


mask, n_low = equispaced_mask(W, 0.25, 4, offset=1)
model = VarNet()
W_ = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W_[name]))
ssim = SSIMLoss()
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=4, gamma=0.5)
losses, zf_ssim = [], []
for step in range(8):
    kspace, target = sample(3)
    masked = kspace * mask + 0.0
    out = model(masked, mask.expand(3, 1, H, W, 1), sens_maps.expand(3, -1, -1, -1, -1))
    data_range = target.flatten(1).max(1).values
    loss = ssim(out[:, None], target[:, None], data_range) + 0.1 * F.l1_loss(out, target)
    opt.zero_grad()
    loss.backward()
    opt.step()
    scheduler.step()
    losses.append(loss.item())
    with torch.no_grad():
        zero_filled = rss(complex_abs(ifft2c(masked)), dim=1)
        zf_ssim.append(1 - ssim(zero_filled[:, None], target[:, None], data_range).item())

dc_weights = [c.dc_weight.item() for c in model.cascades]
grad_norm = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in model.parameters()]))

# native complex: fft2 round trip, magnitude / phase, polar, a sub-pixel shift in k-space
img = torch.from_numpy(phantom())
k = torch.fft.fft2(img, norm="ortho")
back = torch.fft.ifft2(k, norm="ortho")
mag, phase = k.abs(), k.angle()
rebuilt = torch.polar(mag, phase)
fy = torch.fft.fftfreq(H)[:, None]
fx = torch.fft.fftfreq(W)[None, :]
shift = torch.exp(-2j * math.pi * (fy * 0.5 + fx * 1.25))
shifted = torch.fft.ifft2(torch.fft.fft2(img) * shift)
centred = torch.fft.fftshift(k)
report(
    losses=losses,
    zero_filled_ssim=zf_ssim,
    dc_weights=dc_weights,
    grad_norm=grad_norm.item(),
    mask=mask.flatten().tolist(),
    n_low=n_low,
    roundtrip_err=(back - img).abs().max().item() < 1e-6,
    polar_err=(rebuilt - k).abs().max().item() < 1e-5,
    energy=[img.abs().pow(2).sum().item(), k.abs().pow(2).sum().item()],
    shifted=torch.view_as_real(shifted)[4:8, 4:8].flatten().tolist(),
    centre_is_dc=torch.allclose(centred[H // 2, W // 2], k[0, 0]),
    phase_row=phase[1, :6].tolist(),
)
