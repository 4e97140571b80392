# CenterNet (Zhou et al. 2019) as xingyizhou/CenterNet's utilities write it: gaussian_radius,
# draw_umich_gaussian into a heatmap through a sliced view and torch.maximum(out=) / max in
# place, the penalty-reduced focal loss (_neg_loss), _transpose_and_gather_feat (permute,
# view, gather with expand_as) for size / offset regression under RegL1Loss masks, decoding by
# 3x3 max_pool2d NMS + topk over the flattened heatmap, integer division and fmod for
# coordinates; and a keypoint head decoded by soft-argmax (integral regression).
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

H = W = 16
C = 2
rng = np.random.default_rng(6)


def gaussian_radius(det_size, min_overlap=0.7):
    height, width = det_size
    a1, b1 = 1, height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2 = 4, 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def gaussian2d(radius, sigma):
    m = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(m[:, None] ** 2 + m[None, :] ** 2) / (2 * sigma * sigma))
    g[g < torch.finfo(g.dtype).eps * g.max()] = 0
    return g


def draw_umich_gaussian(heatmap, center, radius):
    d = 2 * radius + 1
    gaussian = gaussian2d(radius, sigma=d / 6)
    x, y = center
    left, right = min(x, radius), min(W - x, radius + 1)
    top, bottom = min(y, radius), min(H - y, radius + 1)
    masked_heatmap = heatmap[y - top : y + bottom, x - left : x + right]
    masked_gaussian = gaussian[radius - top : radius + bottom, radius - left : radius + right]
    torch.maximum(masked_heatmap, masked_gaussian, out=masked_heatmap)


B, MAXOBJ = 4, 3
hm = torch.zeros(B, C, H, W)
wh = torch.zeros(B, MAXOBJ, 2)
reg = torch.zeros(B, MAXOBJ, 2)
ind = torch.zeros(B, MAXOBJ, dtype=torch.long)
reg_mask = torch.zeros(B, MAXOBJ)
images = torch.from_numpy(rng.standard_normal((B, 3, H, W)).astype(np.float32)) * 0.1
for b in range(B):
    for k in range(int(rng.integers(1, MAXOBJ + 1))):
        cx, cy = rng.uniform(2, W - 2), rng.uniform(2, H - 2)
        bw, bh = rng.uniform(2, 6), rng.uniform(2, 6)
        cls = int(rng.integers(C))
        r = max(0, int(gaussian_radius((math.ceil(bh), math.ceil(bw)))))
        ci = (int(cx), int(cy))
        draw_umich_gaussian(hm[b, cls], ci, r)
        images[b, cls, ci[1] - 1 : ci[1] + 2, ci[0] - 1 : ci[0] + 2] += 1.0
        wh[b, k] = torch.tensor([bw, bh])
        ind[b, k] = ci[1] * W + ci[0]
        reg[b, k] = torch.tensor([cx - ci[0], cy - ci[1]])
        reg_mask[b, k] = 1


def _neg_loss(pred, gt):
    pos_inds = gt.eq(1).float()
    neg_inds = gt.lt(1).float()
    neg_weights = torch.pow(1 - gt, 4)
    pos_loss = torch.log(pred) * torch.pow(1 - pred, 2) * pos_inds
    neg_loss = torch.log(1 - pred) * torch.pow(pred, 2) * neg_weights * neg_inds
    num_pos = pos_inds.float().sum()
    pos_loss, neg_loss = pos_loss.sum(), neg_loss.sum()
    return -neg_loss if num_pos == 0 else -(pos_loss + neg_loss) / num_pos


def _gather_feat(feat, ind):
    dim = feat.size(2)
    ind = ind.unsqueeze(2).expand(ind.size(0), ind.size(1), dim)
    return feat.gather(1, ind)


def _transpose_and_gather_feat(feat, ind):
    feat = feat.permute(0, 2, 3, 1).contiguous()
    feat = feat.view(feat.size(0), -1, feat.size(3))
    return _gather_feat(feat, ind)


def reg_l1(output, mask, ind, target):
    pred = _transpose_and_gather_feat(output, ind)
    mask = mask.unsqueeze(2).expand_as(pred).float()
    return F.l1_loss(pred * mask, target * mask, reduction="sum") / (mask.sum() + 1e-4)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(inplace=True),
        )
        self.hm = nn.Conv2d(16, C, 1)
        self.wh = nn.Conv2d(16, 2, 1)
        self.reg = nn.Conv2d(16, 2, 1)
        self.kp = nn.Conv2d(16, 1, 1)

    def forward(self, x):
        f = self.body(x)
        return self.hm(f), self.wh(f), self.reg(f), self.kp(f)


net = Net()
Wt = reference_weights(net)
with torch.no_grad():
    for n, p in net.named_parameters():
        p.copy_(torch.from_numpy(Wt[n]))
    net.hm.bias.fill_(-2.19)
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
kp_target = torch.tensor([[5.0, 9.0]]).expand(B, 2)
losses = []
for step in range(8):
    out_hm, out_wh, out_reg, out_kp = net(images)
    pred_hm = torch.clamp(out_hm.sigmoid_(), min=1e-4, max=1 - 1e-4)
    prob = F.softmax(out_kp.flatten(1), dim=1).view(B, H, W)
    xs = (prob.sum(1) * torch.arange(W, dtype=torch.float32)).sum(1)
    ys = (prob.sum(2) * torch.arange(H, dtype=torch.float32)).sum(1)
    kp_loss = F.smooth_l1_loss(torch.stack([xs, ys], 1), kp_target)
    loss = (
        _neg_loss(pred_hm, hm)
        + 0.1 * reg_l1(out_wh, reg_mask, ind, wh)
        + reg_l1(out_reg, reg_mask, ind, reg)
        + kp_loss
    )
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())


@torch.no_grad()
def decode(heat, wh, reg, K=5):
    hmax = F.max_pool2d(heat, 3, stride=1, padding=1)
    heat = heat * (hmax == heat).float()
    batch = heat.size(0)
    scores, inds = torch.topk(heat.view(batch, -1), K)
    clses = torch.div(inds, H * W, rounding_mode="floor")
    inds = inds % (H * W)
    ys = torch.div(inds, W, rounding_mode="floor").float()
    xs = torch.fmod(inds, W).float()
    r = _transpose_and_gather_feat(reg, inds)
    s = _transpose_and_gather_feat(wh, inds)
    xs, ys = xs + r[..., 0], ys + r[..., 1]
    boxes = torch.stack(
        [xs - s[..., 0] / 2, ys - s[..., 1] / 2, xs + s[..., 0] / 2, ys + s[..., 1] / 2], dim=2
    )
    return scores, clses, boxes


out_hm, out_wh, out_reg, _ = net(images)
scores, clses, boxes = decode(out_hm.sigmoid(), out_wh, out_reg)
report(
    hm_sum=hm.sum().item(),
    hm_peaks=int(hm.eq(1).sum()),
    losses=losses,
    scores=scores.tolist(),
    clses=clses.tolist(),
    boxes=boxes[:, :2].tolist(),
)
