# Monocular depth losses as MiDaS / DPT, BTS and AdaBins-era code write them (our own condensed
# rewrite): a small encoder-decoder predicting disparity with a softplus head on a prior, MiDaS's
# scale-and-shift-invariant loss (per-image least squares for scale and shift by the 2x2 normal
# equations a_00, a_01, a_11, b_0, b_1 with masked sums over dims (1, 2), solved in float64, and the
# determinant guarded by det.nonzero()), the gradient-matching regulariser over four scales (masked
# finite differences of the residual by torch.mul and torch.abs, x[:, ::step, ::step]), batch-based
# reduction (division by the valid-pixel count, 0 when empty), Eigen's scale-invariant log loss
# (SILog: sqrt of the mean squared log difference minus lambda times its squared mean, times 10),
# the berHu loss with c = 0.2 max |residual| detached and torch.where, a median scale alignment by
# torch.median for evaluation, and the standard metrics (abs_rel, sq_rel, rmse, rmse_log, delta <
# 1.25^k by torch.max(gt / pred, pred / gt)); Adam with OneCycleLR.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2209)


def compute_scale_and_shift(prediction, target, mask):
    a_00 = torch.sum(mask * prediction * prediction, (1, 2))
    a_01 = torch.sum(mask * prediction, (1, 2))
    a_11 = torch.sum(mask, (1, 2))
    b_0 = torch.sum(mask * prediction * target, (1, 2))
    b_1 = torch.sum(mask * target, (1, 2))
    x_0 = torch.zeros_like(b_0)
    x_1 = torch.zeros_like(b_1)
    det = a_00 * a_11 - a_01 * a_01
    valid = det.nonzero()
    x_0[valid] = (a_11[valid] * b_0[valid] - a_01[valid] * b_1[valid]) / det[valid]
    x_1[valid] = (-a_01[valid] * b_0[valid] + a_00[valid] * b_1[valid]) / det[valid]
    return x_0, x_1


def reduction_batch_based(image_loss, M):
    divisor = torch.sum(M)
    if divisor == 0:
        return 0
    return torch.sum(image_loss) / divisor


def mse_loss(prediction, target, mask):
    M = torch.sum(mask, (1, 2))
    res = prediction - target
    image_loss = torch.sum(mask * res * res, (1, 2))
    return reduction_batch_based(image_loss, 2 * M)


def gradient_loss(prediction, target, mask):
    M = torch.sum(mask, (1, 2))
    diff = prediction - target
    diff = torch.mul(mask, diff)
    grad_x = torch.abs(diff[:, :, 1:] - diff[:, :, :-1])
    mask_x = torch.mul(mask[:, :, 1:], mask[:, :, :-1])
    grad_x = torch.mul(mask_x, grad_x)
    grad_y = torch.abs(diff[:, 1:, :] - diff[:, :-1, :])
    mask_y = torch.mul(mask[:, 1:, :], mask[:, :-1, :])
    grad_y = torch.mul(mask_y, grad_y)
    image_loss = torch.sum(grad_x, (1, 2)) + torch.sum(grad_y, (1, 2))
    return reduction_batch_based(image_loss, M)


class GradientLoss(nn.Module):
    def __init__(self, scales=4):
        super().__init__()
        self.__scales = scales

    def forward(self, prediction, target, mask):
        total = 0
        for scale in range(self.__scales):
            step = pow(2, scale)
            total += gradient_loss(
                prediction[:, ::step, ::step], target[:, ::step, ::step], mask[:, ::step, ::step]
            )
        return total


class ScaleAndShiftInvariantLoss(nn.Module):
    def __init__(self, alpha=0.5, scales=4):
        super().__init__()
        self.__regularization_loss = GradientLoss(scales=scales)
        self.__alpha = alpha
        self.__prediction_ssi = None

    def forward(self, prediction, target, mask):
        # the 2x2 normal equations in float64: their determinant cancels (var / mean^2 of the
        # prediction), and in float32 the libraries' sum orders put the first loss 1.9e-5 apart
        scale, shift = compute_scale_and_shift(prediction.double(), target.double(), mask.double())
        scale, shift = scale.float(), shift.float()
        self.__prediction_ssi = scale.view(-1, 1, 1) * prediction + shift.view(-1, 1, 1)
        total = mse_loss(self.__prediction_ssi, target, mask)
        if self.__alpha > 0:
            total += self.__alpha * self.__regularization_loss(self.__prediction_ssi, target, mask)
        return total

    def __get_prediction_ssi(self):
        return self.__prediction_ssi

    prediction_ssi = property(__get_prediction_ssi)


class SILogLoss(nn.Module):
    def __init__(self, variance_focus=0.85):
        super().__init__()
        self.name = "SILog"
        self.variance_focus = variance_focus

    def forward(self, depth_est, depth_gt, mask):
        d = torch.log(depth_est[mask]) - torch.log(depth_gt[mask])
        return torch.sqrt((d**2).mean() - self.variance_focus * (d.mean() ** 2)) * 10.0


def berhu(pred, target, mask):
    diff = torch.abs(pred - target)[mask]
    c = 0.2 * diff.max().detach()
    l2 = (diff**2 + c**2) / (2 * c)
    return torch.where(diff <= c, diff, l2).mean()


class DepthNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.GELU()
        )
        self.enc2 = nn.Sequential(
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.GELU()
        )
        self.dec = nn.Sequential(nn.Conv2d(16 + 8, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, 1, 1))

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        up = F.interpolate(e2, size=e1.shape[-2:], mode="bilinear", align_corners=True)
        # a residual on a coarse disparity prior (the input's first channel), as guided-depth
        # models add, so that the output is not near-constant at the start
        prior = x[:, :1].clamp(min=0.05)
        return (F.softplus(self.dec(torch.cat([up, e1], 1))) + prior).squeeze(1) + 1e-3


def compute_errors(gt, pred):
    thresh = torch.max(gt / pred, pred / gt)
    a1 = (thresh < 1.25).float().mean()
    a2 = (thresh < 1.25**2).float().mean()
    a3 = (thresh < 1.25**3).float().mean()
    rmse = torch.sqrt(((gt - pred) ** 2).mean())
    rmse_log = torch.sqrt(((torch.log(gt) - torch.log(pred)) ** 2).mean())
    abs_rel = torch.mean(torch.abs(gt - pred) / gt)
    sq_rel = torch.mean(((gt - pred) ** 2) / gt)
    return [
        abs_rel.item(),
        sq_rel.item(),
        rmse.item(),
        rmse_log.item(),
        a1.item(),
        a2.item(),
        a3.item(),
    ]


yy, xx = np.mgrid[0:16, 0:16] / 15.0
depths, imgs = [], []
for i in range(12):
    tilt = rng.uniform(0.5, 2.0)
    d = (
        1.0
        + tilt * yy
        + 0.5 * np.exp(-((xx - rng.uniform()) ** 2 + (yy - rng.uniform()) ** 2) / 0.05)
    )
    depths.append(d)
    imgs.append(np.stack([1 / d, xx * yy, np.sin(3 * d)]) + 0.05 * rng.standard_normal((3, 16, 16)))
depth = torch.from_numpy(np.stack(depths).astype(np.float32))
img = torch.from_numpy(np.stack(imgs).astype(np.float32))
valid = torch.from_numpy(rng.uniform(size=depth.shape) > 0.1)
valid[0] = False  # an image without valid pixels: det == 0, no scale / shift

model = DepthNet()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
ssi = ScaleAndShiftInvariantLoss()
silog = SILogLoss()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=8, pct_start=0.3)
log = []
for step in range(8):
    b = slice((step % 3) * 4, (step % 3) * 4 + 4)
    disp = model(img[b])
    mask = valid[b].float()
    l_ssi = ssi(disp, 1.0 / depth[b], mask)
    pred_depth = 1.0 / disp
    l_si = silog(pred_depth, depth[b], valid[b])
    l_bh = berhu(pred_depth, depth[b], valid[b])
    loss = l_ssi + 0.1 * l_si + 0.1 * l_bh
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    log.append([l_ssi.item(), l_si.item(), l_bh.item()])
model.eval()
with torch.no_grad():
    disp = model(img)
    scale, shift = compute_scale_and_shift(disp.double(), 1.0 / depth.double(), valid.double())
    scale, shift = scale.float(), shift.float()
    aligned = (1.0 / (scale.view(-1, 1, 1) * disp + shift.view(-1, 1, 1)).clamp(min=1e-3))[1:]
    pred = 1.0 / disp
    med = [torch.median(depth[i][valid[i]]) / torch.median(pred[i][valid[i]]) for i in range(1, 12)]
    pred_med = pred[1:] * torch.stack(med).view(-1, 1, 1)

report(
    log=log,
    scale=scale.tolist(),
    shift=shift.tolist(),
    errors_ssi=compute_errors(depth[1:][valid[1:]], aligned[valid[1:]]),
    errors_median=compute_errors(depth[1:][valid[1:]], pred_med[valid[1:]]),
    ssi_pred=ssi.prediction_ssi[1, 0, :4].tolist(),
)
