# Deep Image Prior inpainting (Ulyanov et al. 2018) the way the authors' notebooks write it:
# a fixed noise input (NumPy, "noise" type 'u' scaled by 1/10) with reg_noise_std
# perturbations each step, a small skip network (reflection-padded convs, strided downsampling,
# bilinear nn.Upsample, skip branches concatenated with torch.cat, BatchNorm + LeakyReLU,
# sigmoid output), the masked MSE, an exponential moving average of outputs
# (out_avg = out_avg * 0.99 + out * 0.01), PSNR from the masked and full images, and the
# backtracking trick: reload the last good parameters when PSNR drops.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(13)
S = 16
yy, xx = np.mgrid[0:S, 0:S] / S
img = np.stack([np.sin(6 * xx) * 0.5 + 0.5, np.cos(5 * yy) * 0.5 + 0.5, (xx + yy) / 2]).astype(
    np.float32
)
mask = (rng.uniform(size=(1, S, S)) > 0.4).astype(np.float32)
img_t = torch.from_numpy(img)[None]
mask_t = torch.from_numpy(mask)[None]
img_masked = img_t * mask_t


def conv(cin, cout, k=3, stride=1, bias=False):
    # no bias (nor BatchNorm shift) in front of a BatchNorm: its gradient is 0 up to rounding,
    # which Adam would turn into full-size steps (and the running means would follow them)
    pad = (k - 1) // 2
    return nn.Sequential(nn.ReflectionPad2d(pad), nn.Conv2d(cin, cout, k, stride=stride, bias=bias))


def bn_act(c):
    return nn.Sequential(nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True))


class Skip(nn.Module):
    def __init__(self, cin=8, ch=8, skip=4):
        super().__init__()
        self.down1 = nn.Sequential(conv(cin, ch, 3, 2), bn_act(ch), conv(ch, ch), bn_act(ch))
        self.down2 = nn.Sequential(conv(ch, ch, 3, 2), bn_act(ch), conv(ch, ch), bn_act(ch))
        self.skip1 = nn.Sequential(conv(cin, skip, 1), bn_act(skip))
        self.skip2 = nn.Sequential(conv(ch, skip, 1), bn_act(skip))
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.dec2 = nn.Sequential(
            nn.BatchNorm2d(ch + skip, affine=False),
            conv(ch + skip, ch),
            bn_act(ch),
            conv(ch, ch, 1),
            bn_act(ch),
        )
        self.dec1 = nn.Sequential(
            nn.BatchNorm2d(ch + skip, affine=False),
            conv(ch + skip, ch),
            bn_act(ch),
            conv(ch, ch, 1),
            bn_act(ch),
        )
        self.out = nn.Sequential(conv(ch, 3, 1, bias=True), nn.Sigmoid())

    def forward(self, x):
        d1 = self.down1(x)
        d2 = self.down2(d1)
        u2 = self.dec2(torch.cat([self.up(d2), self.skip2(d1)], 1))
        u1 = self.dec1(torch.cat([self.up(u2), self.skip1(x)], 1))
        return self.out(u1)


net = Skip()
W = reference_weights(net)
with torch.no_grad():
    for n, p in net.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
net_input = torch.from_numpy(rng.uniform(size=(1, 8, S, S)).astype(np.float32)) * 0.1
net_input_saved = net_input.detach().clone()
noise = net_input.detach().clone()
reg_noise_std = 1.0 / 30
opt = torch.optim.Adam(net.parameters(), lr=0.01)
mse = nn.MSELoss()


def psnr(a, b):
    return 10 * math.log10(1.0 / torch.mean((a - b) ** 2).item())


out_avg = None
losses, psnrs, psnr_avgs, backtracks = [], [], [], 0
last_net, psnr_last = None, 0.0
nrng = np.random.default_rng(99)
for i in range(12):
    net_input = (
        net_input_saved
        + torch.from_numpy(nrng.standard_normal(noise.shape).astype(np.float32)) * reg_noise_std
    )
    out = net(net_input)
    out_avg = out.detach() if out_avg is None else out_avg * 0.99 + out.detach() * 0.01
    total_loss = mse(out * mask_t, img_masked)
    opt.zero_grad()
    total_loss.backward()
    psnr_masked = psnr(out.detach() * mask_t, img_masked)
    if i % 4 == 0:
        if psnr_masked - psnr_last < -1 and last_net is not None:
            backtracks += 1
            for new_p, net_p in zip(last_net, net.parameters()):
                net_p.data.copy_(new_p)
            continue
        last_net = [x.detach().clone() for x in net.parameters()]
        psnr_last = psnr_masked
    opt.step()
    losses.append(total_loss.item())
    psnrs.append(psnr(out.detach(), img_t))
    psnr_avgs.append(psnr(out_avg, img_t))

net.eval()
with torch.no_grad():
    final = net(net_input_saved)
report(
    losses=losses,
    psnrs=psnrs,
    psnr_avgs=psnr_avgs,
    backtracks=backtracks,
    final_psnr=psnr(final, img_t),
    hole_psnr=psnr(final * (1 - mask_t), img_t * (1 - mask_t)),
    running_mean=net.dec1[0].running_mean[:4].tolist(),
)
