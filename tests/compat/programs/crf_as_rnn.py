# CRF-as-RNN (Zheng et al. 2015) on small images, as the PyTorch ports without the permutohedral
# lattice write it: unary logits from a small FCN, mean-field iterations with a spatial Gaussian
# kernel as a depthwise conv2d (weights from meshgrid distances, the centre zeroed), a bilateral
# kernel computed exactly from pixel features (positions / theta_alpha and colours / theta_beta,
# pairwise squared distances by torch.cdist ** 2, exp, the diagonal masked by
# fill_diagonal_), message passing by bmm, learned per-kernel weights and a label compatibility
# matrix as a 1x1 conv, softmax-normalised Q unrolled five times with gradients through every
# iteration; trained end to end with a Dice + CE loss under AdamW, against the FCN alone; mIoU by
# a confusion matrix from bincount.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(89)
B, HW, NC = 4, 10, 3


def scene():
    img = np.zeros((3, HW, HW), np.float32)
    lab = np.zeros((HW, HW), np.int64)
    for c in (1, 2):
        y0, x0 = rng.integers(0, HW - 4, 2)
        h, w = rng.integers(3, 6, 2)
        lab[y0 : y0 + h, x0 : x0 + w] = c
    palette = np.array([[0.1, 0.1, 0.1], [0.9, 0.2, 0.2], [0.2, 0.3, 0.9]], np.float32)
    img = palette[lab].transpose(2, 0, 1) + 0.25 * rng.standard_normal((3, HW, HW))
    return img.astype(np.float32), lab


data = [scene() for _ in range(B)]
imgs = torch.from_numpy(np.stack([d[0] for d in data]))
labs = torch.from_numpy(np.stack([d[1] for d in data]))


def gaussian_kernel(size, sigma):
    r = torch.arange(size, dtype=torch.float32) - size // 2
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    k = torch.exp(-(yy**2 + xx**2) / (2 * sigma**2))
    k[size // 2, size // 2] = 0.0
    return k


class MeanFieldCRF(nn.Module):
    def __init__(self, n_classes, iters=5, theta_alpha=3.0, theta_beta=0.5, theta_gamma=1.0):
        super().__init__()
        self.iters, self.n = iters, n_classes
        self.ta, self.tb = theta_alpha, theta_beta
        self.register_buffer(
            "spatial", gaussian_kernel(5, theta_gamma).expand(n_classes, 1, 5, 5).clone()
        )
        self.w_spatial = nn.Parameter(torch.ones(n_classes, 1, 1))
        self.w_bilateral = nn.Parameter(torch.ones(n_classes, 1, 1))
        self.compat = nn.Conv2d(n_classes, n_classes, 1, bias=False)

    def bilateral(self, img):
        b, _, h, w = img.shape
        yy, xx = torch.meshgrid(
            torch.arange(h, dtype=torch.float32),
            torch.arange(w, dtype=torch.float32),
            indexing="ij",
        )
        pos = torch.stack([yy, xx]).expand(b, -1, -1, -1) / self.ta
        feats = torch.cat([pos, img / self.tb], 1).flatten(2).transpose(1, 2)  # (B, HW, 5)
        k = torch.exp(-0.5 * torch.cdist(feats, feats) ** 2)
        for i in range(b):
            k[i].fill_diagonal_(0.0)
        return k

    def forward(self, unary, img):
        b, c, h, w = unary.shape
        kb = self.bilateral(img)
        q = F.softmax(unary, 1)
        for _ in range(self.iters):
            sp = F.conv2d(q, self.spatial, padding=2, groups=c)
            bl = torch.bmm(q.flatten(2), kb.transpose(1, 2)).view(b, c, h, w)
            msg = self.w_spatial * sp + self.w_bilateral * bl
            pairwise = self.compat(msg)
            q = F.softmax(unary - pairwise, 1)
        return torch.log(q.clamp_min(1e-8))


class FCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(8, NC, 1),
        )

    def forward(self, x):
        return self.net(x)


def dice_loss(logp, y, eps=1.0):
    p = logp.exp()
    oh = F.one_hot(y, NC).permute(0, 3, 1, 2).float()
    inter = (p * oh).sum((0, 2, 3))
    return 1 - ((2 * inter + eps) / (p.sum((0, 2, 3)) + oh.sum((0, 2, 3)) + eps)).mean()


def miou(pred, y):
    cm = torch.bincount(y.flatten() * NC + pred.flatten(), minlength=NC * NC).view(NC, NC).float()
    iou = cm.diag() / (cm.sum(0) + cm.sum(1) - cm.diag()).clamp_min(1)
    return iou.tolist(), iou.mean().item()


out = {}
for use_crf in (False, True):
    fcn = FCN()
    W = reference_weights(fcn)
    with torch.no_grad():
        for n, p in fcn.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    crf = MeanFieldCRF(NC)
    with torch.no_grad():
        crf.compat.weight.copy_((1 - torch.eye(NC)).view(NC, NC, 1, 1) * 0.5)  # Potts init
    params = list(fcn.parameters()) + (list(crf.parameters()) if use_crf else [])
    opt = torch.optim.AdamW(params, lr=1e-2, weight_decay=1e-3)
    losses = []
    for step in range(10):
        logits = fcn(imgs)
        logp = crf(logits, imgs) if use_crf else F.log_softmax(logits, 1)
        loss = F.nll_loss(logp, labs) + dice_loss(logp, labs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        logits = fcn(imgs)
        logp = crf(logits, imgs) if use_crf else F.log_softmax(logits, 1)
        ious, mean_iou = miou(logp.argmax(1), labs)
    out["crf" if use_crf else "fcn"] = dict(losses=losses, ious=ious, miou=mean_iou)
    if use_crf:
        out["crf"]["w"] = [crf.w_spatial.flatten().tolist(), crf.w_bilateral.flatten().tolist()]
        out["crf"]["compat_diag"] = crf.compat.weight.view(NC, NC).diag().tolist()
report(**out)
