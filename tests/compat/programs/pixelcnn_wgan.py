# Two classics whose training loops write through `.data`: a PixelCNN (van den Oord et al.) as
# the widely copied implementations write it -- a MaskedConv2d subclass of nn.Conv2d that
# registers its mask as a buffer cloned from `self.weight.data`, zeroes it by slice assignment
# with a bool in the index arithmetic (mask type 'A' / 'B'), and multiplies `self.weight.data *=
# self.mask` before calling `super().forward` -- trained with a 4-way cross-entropy over
# (N, C, H, W) logits and sampled pixel by pixel; and a WGAN (Arjovsky et al., the reference
# main.py): RMSprop, weight clipping by `p.data.clamp_(-c, c)`, `requires_grad = False` on the
# critic while the generator steps, backward(one) / backward(mone) on 1-element outputs, and
# `netG(noise).data` fakes. Our own program; the data and noise come from NumPy.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


class MaskedConv2d(nn.Conv2d):
    def __init__(self, mask_type, *args, **kwargs):
        super(MaskedConv2d, self).__init__(*args, **kwargs)
        assert mask_type in {"A", "B"}
        self.register_buffer("mask", self.weight.data.clone())
        _, _, kH, kW = self.weight.size()
        self.mask.fill_(1)
        self.mask[:, :, kH // 2, kW // 2 + (mask_type == "B"):] = 0
        self.mask[:, :, kH // 2 + 1:] = 0

    def forward(self, x):
        self.weight.data *= self.mask
        return super(MaskedConv2d, self).forward(x)


LEVELS = 4
fm = 8
pixel_cnn = nn.Sequential(
    MaskedConv2d("A", 1, fm, 5, 1, 2, bias=False), nn.BatchNorm2d(fm), nn.ReLU(True),
    MaskedConv2d("B", fm, fm, 3, 1, 1, bias=False), nn.BatchNorm2d(fm), nn.ReLU(True),
    MaskedConv2d("B", fm, fm, 3, 1, 1, bias=False), nn.BatchNorm2d(fm), nn.ReLU(True),
    nn.Conv2d(fm, LEVELS, 1),
)
load_reference(pixel_cnn)

# 8x8 images with LEVELS grey levels: smooth ramps plus a bright square
H = W = 8
imgs = np.zeros((64, 1, H, W), dtype=np.float32)
yy, xx = np.mgrid[0:H, 0:W]
for im in imgs:
    a, b = rng.uniform(-1, 1, size=2)
    ramp = (a * xx + b * yy) / 8.0 + 0.5
    r, c = rng.integers(0, 6, size=2)
    ramp[r:r + 2, c:c + 2] = 1.0
    im[0] = np.clip(np.floor(ramp * LEVELS), 0, LEVELS - 1)
data = torch.from_numpy(imgs)

optimizer = torch.optim.Adam(pixel_cnn.parameters(), lr=2e-3)
pcnn_losses = []
for step in range(10):
    batch = data[(step * 16) % 64:(step * 16) % 64 + 16]
    inp = batch / (LEVELS - 1)
    target = batch[:, 0].long()
    out = pixel_cnn(inp)
    loss = F.cross_entropy(out, target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    pcnn_losses.append(loss.item())

# masks really are causal: the gradient of one output pixel reaches no later input pixel
pixel_cnn.eval()
probe = data[:1].clone() / (LEVELS - 1)
probe.requires_grad_(True)
out = pixel_cnn(probe)
out[0, :, 4, 4].sum().backward()
g = probe.grad[0, 0]
causal = bool((g.flatten()[4 * W + 4:] == 0).all().item())
mask_sums = [m.mask.sum().item() for m in pixel_cnn if isinstance(m, MaskedConv2d)]
weights_masked = all(
    bool(((m.weight.data * (1 - m.mask)) == 0).all()) for m in pixel_cnn
    if isinstance(m, MaskedConv2d)
)

# sampling pixel by pixel with NumPy uniforms (inverse CDF)
u = rng.uniform(size=(4, H, W)).astype(np.float32)
sample = torch.zeros(4, 1, H, W)
with torch.no_grad():
    for i in range(H):
        for j in range(W):
            logits = pixel_cnn(sample / (LEVELS - 1))
            probs = F.softmax(logits[:, :, i, j], dim=1)
            cdf = probs.cumsum(1)
            uj = torch.from_numpy(u[:, i, j]).unsqueeze(1)
            sample[:, 0, i, j] = (cdf < uj).sum(1).clamp(max=LEVELS - 1).float()
sample_hist = torch.bincount(sample.long().flatten(), minlength=LEVELS).tolist()
nll_eval = F.cross_entropy(pixel_cnn(data[:16] / (LEVELS - 1)), data[:16, 0].long()).item()


# ---- WGAN with weight clipping -------------------------------------------------------------
nz, ndim = 4, 2


class MLP_G(nn.Module):
    def __init__(self, nz, ngf):
        super(MLP_G, self).__init__()
        main = nn.Sequential(
            nn.Linear(nz, ngf), nn.ReLU(True),
            nn.Linear(ngf, ngf), nn.ReLU(True),
            nn.Linear(ngf, ndim),
        )
        self.main = main

    def forward(self, input):
        input = input.view(input.size(0), input.size(1))
        return self.main(input)


class MLP_D(nn.Module):
    def __init__(self, ndf):
        super(MLP_D, self).__init__()
        self.main = nn.Sequential(
            nn.Linear(ndim, ndf), nn.ReLU(True),
            nn.Linear(ndf, ndf), nn.ReLU(True),
            nn.Linear(ndf, 1),
        )

    def forward(self, input):
        output = self.main(input)
        output = output.mean(0)
        return output.view(1)


netG, netD = MLP_G(nz, 16), MLP_D(16)
load_reference(netG)
load_reference(netD)
clamp_lower, clamp_upper = -0.05, 0.05
optimizerD = torch.optim.RMSprop(netD.parameters(), lr=5e-3)
optimizerG = torch.optim.RMSprop(netG.parameters(), lr=5e-3)
one = torch.FloatTensor([1])
mone = one * -1

centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]], dtype=np.float32)
real_pool = centers[rng.integers(0, 3, size=512)] + 0.1 * rng.standard_normal((512, 2))
real_pool = torch.from_numpy(real_pool.astype(np.float32))
noise_pool = torch.from_numpy(rng.standard_normal((64, 32, nz, 1, 1)).astype(np.float32))

errD_hist, errG_hist, wdist = [], [], []
gen_iterations, k = 0, 0
for it in range(6):
    for p in netD.parameters():
        p.requires_grad = True
    Diters = 5
    for _ in range(Diters):
        for p in netD.parameters():
            p.data.clamp_(clamp_lower, clamp_upper)
        netD.zero_grad()
        real = real_pool[(k * 32) % 512:(k * 32) % 512 + 32]
        errD_real = netD(real)
        errD_real.backward(one)
        noise = noise_pool[k % 64]
        with torch.no_grad():
            fake = netG(noise).data
        errD_fake = netD(fake)
        errD_fake.backward(mone)
        errD = errD_real - errD_fake
        optimizerD.step()
        k += 1
    for p in netD.parameters():
        p.requires_grad = False
    netG.zero_grad()
    noise = noise_pool[k % 64]
    fake = netG(noise)
    errG = netD(fake)
    errG.backward(one)
    optimizerG.step()
    gen_iterations += 1
    errD_hist.append(errD.data[0].item())
    errG_hist.append(errG.data[0].item())
    wdist.append(-errD.item())

clipped = all(bool((p.abs() <= clamp_upper).all()) for p in netD.parameters())
critic_frozen = [p.requires_grad for p in netD.parameters()]
critic_grads_none = [p.grad is None for p in netD.parameters()]
gen_out = netG(noise_pool[0]).detach()

report(
    pcnn_losses=pcnn_losses,
    causal=causal,
    mask_sums=mask_sums,
    weights_masked=weights_masked,
    sample_hist=sample_hist,
    nll_eval=nll_eval,
    errD=errD_hist,
    errG=errG_hist,
    wdist=wdist,
    clipped=clipped,
    critic_frozen=critic_frozen,
    critic_grads_none=critic_grads_none,
    gen_mean=gen_out.mean(0).tolist(),
    gen_std=gen_out.std(0).tolist(),
    gen_iterations=gen_iterations,
)
