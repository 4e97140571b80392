# Single-image super-resolution, in the shape of ESPCN / EDSR training scripts: low-resolution
# inputs made by F.avg_pool2d from NumPy-made "images", a bicubic F.interpolate baseline, an
# EDSR-style network (reflect- and replicate-padded convolutions, residual blocks with residual
# scaling and per-channel nn.PReLU, an nn.PixelShuffle upsampler) trained with L1 + (1 - SSIM),
# where SSIM is written by hand with a Gaussian window and grouped F.conv2d(groups=C); PSNR by
# torch.log10; channels_last inputs; MultiStepLR; and test-time augmentation over torch.flip /
# torch.rot90, averaged after undoing each transform; sub-pixel shifts by affine_grid and a
# bicubic, reflection-padded grid_sample; 8-bit outputs.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(31)
SCALE = 2


def make_images(n, size=16):
    # smooth blobs plus stripes: structure for SSIM to see, values in [0, 1]
    yy, xx = np.mgrid[0:size, 0:size] / size
    imgs = []
    for _ in range(n):
        c = rng.uniform(0.2, 0.8, (3, 1, 1))
        fx, fy = rng.uniform(1.0, 3.0, 2)
        cx, cy = rng.uniform(0.2, 0.8, 2)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05)
        stripes = 0.5 + 0.5 * np.sin(2 * math.pi * (fx * xx + fy * yy))
        img = 0.5 * c * blob + 0.3 * stripes + 0.1 * rng.uniform(0, 1, (3, size, size))
        imgs.append(np.clip(img, 0.0, 1.0))
    return torch.from_numpy(np.stack(imgs).astype(np.float32))


def gaussian_window(size=5, sigma=1.5, channels=3):
    g = torch.exp(-((torch.arange(size, dtype=torch.float32) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    w2 = torch.outer(g, g)  # (size, size)
    return w2.expand(channels, 1, size, size).contiguous()


def ssim(x, y, window, c1=0.01**2, c2=0.03**2):
    C = x.shape[1]
    pad = window.shape[-1] // 2
    mu_x = F.conv2d(x, window, padding=pad, groups=C)
    mu_y = F.conv2d(y, window, padding=pad, groups=C)
    sxx = F.conv2d(x * x, window, padding=pad, groups=C) - mu_x.pow(2)
    syy = F.conv2d(y * y, window, padding=pad, groups=C) - mu_y.pow(2)
    sxy = F.conv2d(x * y, window, padding=pad, groups=C) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x.pow(2) + mu_y.pow(2) + c1) * (sxx + syy + c2)
    return (num / den).mean()


def psnr(x, y):
    mse = F.mse_loss(x, y)
    return 10 * torch.log10(1.0 / mse)


class ResBlock(nn.Module):
    def __init__(self, ch, res_scale=0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1, padding_mode="reflect")
        self.act = nn.PReLU(num_parameters=ch, init=0.2)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, padding_mode="replicate")
        self.res_scale = res_scale

    def forward(self, x):
        return x + self.res_scale * self.conv2(self.act(self.conv1(x)))


class EDSR(nn.Module):
    def __init__(self, ch=8, n_blocks=2, scale=SCALE):
        super().__init__()
        self.head = nn.Conv2d(3, ch, 3, padding=1, padding_mode="reflect")
        self.body = nn.Sequential(*[ResBlock(ch) for _ in range(n_blocks)])
        self.tail = nn.Sequential(
            nn.Conv2d(ch, 3 * scale**2, 3, padding=1, padding_mode="replicate"),
            nn.PixelShuffle(scale),
        )

    def forward(self, lr):
        base = F.interpolate(lr, scale_factor=SCALE, mode="bicubic", align_corners=False)
        h = self.head(lr)
        h = h + self.body(h)
        return base + self.tail(h)


model = EDSR()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("act.weight"):
            continue  # keep PReLU's init (0.2)
        p.copy_(torch.from_numpy(W[name]) * (0.5 if p.dim() == 4 else 1.0))
model = model.to(memory_format=torch.channels_last)

hr = make_images(6)
# sub-pixel shifts as augmentation: an affine grid sampled bicubically with reflection padding
theta = torch.tensor([[1.0, 0.0, 0.05], [0.0, 1.0, -0.03]]).repeat(6, 1, 1)
grid = F.affine_grid(theta, list(hr.shape), align_corners=False)
hr = F.grid_sample(hr, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
hr = hr.clamp(0.0, 1.0)
lr = F.avg_pool2d(hr, kernel_size=SCALE)
val_hr = make_images(2)
val_lr = F.avg_pool2d(val_hr, SCALE)
window = gaussian_window()

with torch.no_grad():
    bicubic = F.interpolate(val_lr, scale_factor=SCALE, mode="bicubic", align_corners=False)
    bicubic_psnr = psnr(torch.clamp(bicubic, 0.0, 1.0), val_hr).item()
    bicubic_ssim = ssim(bicubic, val_hr, window).item()
    bilinear_ac = F.interpolate(val_lr, size=(12, 12), mode="bicubic", align_corners=True)

opt = torch.optim.Adam(model.parameters(), lr=3e-3)
sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[8, 14], gamma=0.5)
losses, lrs = [], []
for step in range(18):
    idx = torch.from_numpy(rng.permutation(6)[:4])
    x = lr[idx].contiguous(memory_format=torch.channels_last)
    y = hr[idx]
    sr = model(x)
    l1 = F.l1_loss(sr, y)
    loss = l1 + 0.5 * (1 - ssim(sr, y, window))
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(sched.get_last_lr()[0])

model.eval()
with torch.no_grad():
    sr = torch.clamp(model(val_lr), 0.0, 1.0)
    sr_psnr = psnr(sr, val_hr).item()
    sr_ssim = ssim(sr, val_hr, window).item()
    # test-time augmentation: four rotations x optional horizontal flip, undone and averaged
    outs = []
    for k in range(4):
        for flip in (False, True):
            x = torch.rot90(val_lr, k, dims=(2, 3))
            if flip:
                x = torch.flip(x, dims=[3])
            y = model(x)
            if flip:
                y = torch.flip(y, dims=[3])
            outs.append(torch.rot90(y, -k, dims=(2, 3)))
    tta = torch.stack(outs).mean(0).clamp(0, 1)
    tta_psnr = psnr(tta, val_hr).item()
    cl = val_lr.contiguous(memory_format=torch.channels_last)
    layout = [
        cl.is_contiguous(),
        cl.is_contiguous(memory_format=torch.channels_last),
        list(cl.stride()),
        model.head.weight.is_contiguous(memory_format=torch.channels_last),
    ]
    # 8-bit output, as saved to disk (a corner only: over a whole image, some pixel may sit
    # on a .5 rounding boundary, where float32 summation order decides)
    sr8 = (sr[0, :, :2, :2] * 255.0).round().to(torch.uint8)
    frac = (sr[0, :, :2, :2] * 255.0) % 1.0
    margin = (frac - 0.5).abs().min().item()
    shuffled = nn.PixelShuffle(2)(torch.arange(16.0).reshape(1, 4, 2, 2))
    unshuffled = nn.PixelUnshuffle(2)(shuffled)

report(
    bicubic=[bicubic_psnr, bicubic_ssim],
    bicubic_ac=bilinear_ac[0, 0].tolist(),
    losses=losses,
    lrs=lrs,
    milestones=sorted(sched.milestones.elements()),
    sr8_corner=sr8.tolist(),
    sr8_margin=margin > 1e-3,
    sr=[sr_psnr, sr_ssim, tta_psnr],
    tta_corner=tta[0, :, :2, :2].tolist(),
    prelu=model.body[0].act.weight.tolist(),
    layout=layout,
    arch=repr(model),
    aug=repr(
        nn.Sequential(nn.Upsample(scale_factor=(2, 2), mode="bicubic"), nn.L1Loss(reduction="sum"))
    ),
    shuffle=[shuffled.flatten().tolist(), unshuffled.flatten().tolist()],
)
