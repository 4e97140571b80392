# Classical image processing written in tensor ops, as kornia and the "computer vision in
# PyTorch" notebooks do it: RGB <-> HSV by max / min / where / fmod, grayscale weights, Gaussian
# kernels and separable depthwise convolution (groups=C) on reflect-padded images, Sobel
# gradients and atan2 orientations, Canny's non-maximum suppression by quantised directions and
# a gather over unfold neighbours, the median filter by unfold + median, a bilateral filter, grey
# morphology (max_pool2d dilation, erosion as -max_pool2d(-x), a structuring element through
# unfold), histogram equalisation by histc / cumsum / a look-up, integral images, Harris
# corners with max-pool NMS, a Gaussian pyramid with antialiased interpolate, connected
# components by iterated max pooling, and a small conv net trained to reproduce the Sobel
# magnitude and a learnable gamma / contrast curve.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(5)

B, C, H, W = 2, 3, 24, 24
yy, xx = np.mgrid[0:H, 0:W] / (H - 1)
disc = ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.1) * 0.7 + 0.2
base = np.stack([np.sin(3 * xx + 1) * 0.4 + 0.5, yy * 0.8 + 0.1, disc])
imgs = np.stack([base, base[:, ::-1, :]]) + rng.standard_normal((B, C, H, W)) * 0.03
img = torch.from_numpy(np.clip(imgs, 0, 1).astype(np.float32))


def rgb_to_hsv(image, eps=1e-8):
    maxc, max_idx = image.max(-3)
    minc = image.min(-3)[0]
    v = maxc
    deltac = maxc - minc
    s = deltac / (v + eps)
    deltac = torch.where(deltac == 0, torch.ones_like(deltac), deltac)
    rc, gc, bc = torch.unbind(maxc.unsqueeze(-3) - image, dim=-3)
    h1 = bc - gc
    h2 = (rc - bc) + 2.0 * deltac
    h3 = (gc - rc) + 4.0 * deltac
    h = torch.stack((h1, h2, h3), dim=-3) / deltac.unsqueeze(-3)
    h = torch.gather(h, dim=-3, index=max_idx[..., None, :, :])
    h = h.squeeze(-3)
    h = (h / 6.0) % 1.0
    h = 2 * math.pi * h
    return torch.stack((h, s, v), dim=-3)


def hsv_to_rgb(image):
    h = image[..., 0, :, :] / (2 * math.pi)
    s = image[..., 1, :, :]
    v = image[..., 2, :, :]
    hi = torch.floor(h * 6) % 6
    f = ((h * 6) % 6) - hi
    one = torch.tensor(1.0, device=image.device, dtype=image.dtype)
    p = v * (one - s)
    q = v * (one - f * s)
    t = v * (one - (one - f) * s)
    hi = hi.long()
    indices = torch.stack([hi, hi + 6, hi + 12], dim=-3)
    out = torch.stack((v, q, p, p, t, v, t, v, v, q, p, p, p, p, t, v, v, q), dim=-3)
    return torch.gather(out, -3, indices)


def gaussian_kernel1d(size, sigma):
    x = torch.arange(size, dtype=torch.float32) - size // 2
    if size % 2 == 0:
        x = x + 0.5
    gauss = torch.exp(-x.pow(2.0) / (2 * sigma ** 2))
    return gauss / gauss.sum()


def gaussian_blur(x, size=5, sigma=1.0):
    c = x.shape[1]
    k = gaussian_kernel1d(size, sigma)
    x = F.pad(x, [size // 2] * 4, mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def sobel(gray):
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    kernel = torch.stack([kx, kx.t()]).unsqueeze(1) / 8.0          # (2, 1, 3, 3)
    g = F.conv2d(F.pad(gray, (1, 1, 1, 1), mode="replicate"), kernel)
    return g[:, :1], g[:, 1:]


def non_max_suppression(mag, angle):
    # neighbours along the quantised gradient direction from a 3x3 unfold
    b, _, h, w = mag.shape
    patches = F.unfold(F.pad(mag, (1, 1, 1, 1)), 3).view(b, 9, h, w)
    direction = (torch.round(angle * 4 / math.pi) % 4).long()       # 0: E-W, 1: NE, 2: N, 3: NW
    pos = torch.tensor([5, 2, 1, 0])[direction]
    neg = torch.tensor([3, 6, 7, 8])[direction]
    n1 = torch.gather(patches, 1, pos)
    n2 = torch.gather(patches, 1, neg)
    return mag * ((mag >= n1) & (mag >= n2)).float()


def median_blur(x, k=3):
    b, c, h, w = x.shape
    patches = F.unfold(F.pad(x, [k // 2] * 4, mode="reflect"), k).view(b, c, k * k, h, w)
    return patches.median(dim=2)[0]


def bilateral(x, k=5, sigma_space=1.5, sigma_color=0.1):
    b, c, h, w = x.shape
    patches = F.unfold(F.pad(x, [k // 2] * 4, mode="reflect"), k).view(b, c, k * k, h, w)
    space = gaussian_kernel1d(k, sigma_space)
    space = (space[:, None] * space[None, :]).reshape(1, 1, k * k, 1, 1)
    diff = (patches - x.unsqueeze(2)).abs().sum(1, keepdim=True)
    weight = space * torch.exp(-0.5 * (diff / sigma_color) ** 2)
    return (patches * weight).sum(2) / weight.sum(2)


def dilation(x, se):
    b, c, h, w = x.shape
    k = se.shape[0]
    patches = F.unfold(F.pad(x, [k // 2] * 4, value=-1e4), k).view(b, c, k * k, h, w)
    neigh = torch.where(se.view(1, 1, -1, 1, 1) > 0, patches, torch.full_like(patches, -1e4))
    return neigh.max(dim=2)[0]


def equalize(gray):
    out = []
    for g in gray:
        hist = torch.histc(g, bins=64, min=0.0, max=1.0)
        cdf = hist.cumsum(0)
        cdf = (cdf - cdf.min()) / (cdf.max() - cdf.min())
        idx = (g * 63).round().long().clamp(0, 63)
        out.append(cdf[idx])
    return torch.stack(out)


def box_filter(x, r):
    ii = F.pad(x, (1, 0, 1, 0)).cumsum(-1).cumsum(-2)              # integral image
    k = 2 * r + 1
    s = ii[..., k:, k:] - ii[..., :-k, k:] - ii[..., k:, :-k] + ii[..., :-k, :-k]
    return s / (k * k)


def harris(gray, k=0.04):
    gx, gy = sobel(gray)
    sxx = gaussian_blur(gx * gx, 5, 1.0)
    syy = gaussian_blur(gy * gy, 5, 1.0)
    sxy = gaussian_blur(gx * gy, 5, 1.0)
    r = sxx * syy - sxy ** 2 - k * (sxx + syy) ** 2
    peaks = (r == F.max_pool2d(r, 5, stride=1, padding=2)) & (r > 0.1 * r.max())
    return r, peaks


def connected_components(mask, iters=60):
    h, w = mask.shape[-2:]
    labels = torch.arange(1, h * w + 1, dtype=torch.float32).view(1, 1, h, w) * mask
    for _ in range(iters):
        labels = F.max_pool2d(labels, 3, stride=1, padding=1) * mask
    return labels


hsv = rgb_to_hsv(img)
rgb_back = hsv_to_rgb(hsv)
gray = (0.299 * img[:, 0:1] + 0.587 * img[:, 1:2] + 0.114 * img[:, 2:3])
blurred = gaussian_blur(img, 5, 1.2)
gx, gy = sobel(gaussian_blur(gray))
mag = torch.sqrt(gx ** 2 + gy ** 2 + 1e-12)
angle = torch.atan2(gy, gx)
thin = non_max_suppression(mag, angle)
med = median_blur(img)
bil = bilateral(img)
cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
dil = dilation(gray, cross)
ero = -F.max_pool2d(-gray, 3, stride=1, padding=1)
opening = F.max_pool2d(-F.max_pool2d(-gray, 3, 1, 1), 3, 1, 1)
eq = equalize(gray)
box = box_filter(gray, 2)
box_ref = F.avg_pool2d(gray, 5, stride=1)
r, peaks = harris(gray)
pyramid = [img]
for level in range(2):
    pyramid.append(F.interpolate(gaussian_blur(pyramid[-1], 5, 1.0), scale_factor=0.5,
                                 mode="bilinear", align_corners=False, antialias=True))
blob = (gray[0:1] > 0.55).float()
cc = connected_components(blob)
n_components = len(torch.unique(cc)) - 1

# a tiny conv net learns the Sobel magnitude; a gamma / contrast curve learns equalisation
net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 1, 3, padding=1))
Wn = reference_weights(net)
with torch.no_grad():
    for name, p in net.named_parameters():
        p.copy_(torch.from_numpy(Wn[name]))
opt = torch.optim.Adam(net.parameters(), lr=3e-3)
target = mag.detach()
edge_losses = []
for step in range(20):
    opt.zero_grad()
    loss = F.l1_loss(net(gaussian_blur(gray)), target)
    loss.backward()
    opt.step()
    edge_losses.append(loss.item())

log_gamma = torch.zeros(1, requires_grad=True)
gain = torch.ones(1, requires_grad=True)
opt2 = torch.optim.SGD([log_gamma, gain], lr=0.5, momentum=0.5)
curve_losses = []
for step in range(15):
    opt2.zero_grad()
    out = gain * gray.clamp_min(1e-4) ** torch.exp(log_gamma)
    loss = F.mse_loss(out, eq)
    loss.backward()
    opt2.step()
    curve_losses.append(loss.item())

report(
    hsv_sum=hsv.sum((0, 2, 3)).tolist(),
    hsv_roundtrip=(rgb_back - img).abs().max().item(),
    blurred=blurred.mean((2, 3)).tolist(),
    grad_energy=[gx.pow(2).sum().item(), gy.pow(2).sum().item()],
    angle_hist=torch.histc(angle[mag > 0.02], bins=8, min=-math.pi, max=math.pi).tolist(),
    thin_kept=int((thin > 0.02).sum()),
    thin_sum=thin.sum().item(),
    median=med[0, :, 10, :8].tolist(),
    bilateral=bil[1, :, 12, 4:12].tolist(),
    dilation_sum=dil.sum().item(),
    erosion_sum=ero.sum().item(),
    opening_sum=opening.sum().item(),
    equalized=eq[:, 0, ::6, ::6].tolist(),
    box_matches=bool(torch.allclose(box, box_ref, atol=1e-5)),
    harris_peaks=peaks.nonzero().tolist(),
    harris_max=r.max().item(),
    pyramid_shapes=[list(p.shape) for p in pyramid],
    pyramid_means=[p.mean().item() for p in pyramid],
    pyramid_corner=pyramid[2][0, :, :2, :2].tolist(),
    n_components=n_components,
    component_sizes=sorted(torch.unique(cc, return_counts=True)[1].tolist()),
    edge_losses=edge_losses,
    curve_losses=curve_losses,
    curve=[log_gamma.item(), gain.item()],
)
