# Human-pose estimation as the stacked-hourglass and SimpleBaselines / HRNet code bases write it
# (our own condensed rewrite): a recursive Hourglass module (upper branch, max-pool, lower
# recursion of depth n, nn.Upsample(scale_factor=2) nearest), pre-activation residual
# bottlenecks, two stacks with intermediate supervision (heatmaps re-injected through 1x1
# convs), Gaussian target heatmaps drawn in NumPy with target_weight for invisible joints,
# JointsMSELoss (split by joint, 0.5 * MSE weighted by target_weight) summed over stacks,
# get_max_preds by reshape + torch.max over flattened maps with maxvals masking (NumPy tile),
# the quarter-pixel shift towards the higher neighbour by sign of the difference, integral
# pose regression (soft-argmax by softmax over the flattened map and expectations over
# torch.arange grids), flip testing (flip(3) plus swapping left/right joint channels by an
# index list and a one-pixel shift), PCK@0.5 and OKS by hand, SGD with momentum, then a fresh
# nesterov SGD with weight decay under MultiStepLR. The convolutions have no bias where every
# path from them meets a BatchNorm (pre-activation blocks; bearpaw's have biases): such a bias's
# gradient is 0 up to rounding (measured: the conv3 biases' gradients differed between the
# libraries by more than their own size). The paper's RMSprop (lr 2.5e-4) and Adam make their
# first steps nearly sign steps, so gradients that are small next to float32 rounding moved
# by the full lr either way (losses 1.1e-5 apart at step 3, gradients 5% apart at step 2). SGD at
# lr 0.1: at 0.5 the losses went 1.4e-5 apart at step 5 (float32 rounding grown by large steps).
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2201)
J, H, W = 4, 16, 16
FLIP_PAIRS = [[0, 1], [2, 3]]


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 2, kernel_size=1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if self.downsample is not None:
            residual = self.downsample(x)
        return out + residual


class Hourglass(nn.Module):
    def __init__(self, block, num_blocks, planes, depth):
        super().__init__()
        self.depth = depth
        self.block = block
        self.hg = self._make_hour_glass(block, num_blocks, planes, depth)
        self.upsample = nn.Upsample(scale_factor=2)

    def _make_residual(self, block, num_blocks, planes):
        return nn.Sequential(*[block(planes * block.expansion, planes) for _ in range(num_blocks)])

    def _make_hour_glass(self, block, num_blocks, planes, depth):
        hg = []
        for i in range(depth):
            res = [self._make_residual(block, num_blocks, planes) for _ in range(3)]
            if i == 0:
                res.append(self._make_residual(block, num_blocks, planes))
            hg.append(nn.ModuleList(res))
        return nn.ModuleList(hg)

    def _hour_glass_forward(self, n, x):
        up1 = self.hg[n - 1][0](x)
        low1 = F.max_pool2d(x, 2, stride=2)
        low1 = self.hg[n - 1][1](low1)
        if n > 1:
            low2 = self._hour_glass_forward(n - 1, low1)
        else:
            low2 = self.hg[n - 1][3](low1)
        low3 = self.hg[n - 1][2](low2)
        up2 = self.upsample(low3)
        return up1 + up2

    def forward(self, x):
        return self._hour_glass_forward(self.depth, x)


class HourglassNet(nn.Module):
    def __init__(self, block=Bottleneck, num_stacks=2, num_blocks=1, num_classes=J, planes=8):
        super().__init__()
        self.num_stacks = num_stacks
        ch = planes * block.expansion
        self.conv1 = nn.Conv2d(3, ch, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)
        hg, res, fc, score, fc_, score_ = [], [], [], [], [], []
        for i in range(num_stacks):
            hg.append(Hourglass(block, num_blocks, planes, 2))
            res.append(nn.Sequential(block(ch, planes)))
            fc.append(
                nn.Sequential(
                    nn.Conv2d(ch, ch, kernel_size=1, bias=False),
                    nn.BatchNorm2d(ch),
                    nn.ReLU(inplace=True),
                )
            )
            score.append(nn.Conv2d(ch, num_classes, kernel_size=1, bias=True))
            if i < num_stacks - 1:
                fc_.append(nn.Conv2d(ch, ch, kernel_size=1, bias=False))
                score_.append(nn.Conv2d(num_classes, ch, kernel_size=1, bias=False))
        self.hg, self.res, self.fc = nn.ModuleList(hg), nn.ModuleList(res), nn.ModuleList(fc)
        self.score, self.fc_, self.score_ = (
            nn.ModuleList(score),
            nn.ModuleList(fc_),
            nn.ModuleList(score_),
        )

    def forward(self, x):
        out = []
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stacks):
            y = self.hg[i](x)
            y = self.res[i](y)
            y = self.fc[i](y)
            score = self.score[i](y)
            out.append(score)
            if i < self.num_stacks - 1:
                x = x + self.fc_[i](y) + self.score_[i](score)
        return out


class JointsMSELoss(nn.Module):
    def __init__(self, use_target_weight):
        super().__init__()
        self.criterion = nn.MSELoss(reduction="mean")
        self.use_target_weight = use_target_weight

    def forward(self, output, target, target_weight):
        batch_size = output.size(0)
        num_joints = output.size(1)
        heatmaps_pred = output.reshape((batch_size, num_joints, -1)).split(1, 1)
        heatmaps_gt = target.reshape((batch_size, num_joints, -1)).split(1, 1)
        loss = 0
        for idx in range(num_joints):
            heatmap_pred = heatmaps_pred[idx].squeeze()
            heatmap_gt = heatmaps_gt[idx].squeeze()
            if self.use_target_weight:
                loss += 0.5 * self.criterion(
                    heatmap_pred.mul(target_weight[:, idx]), heatmap_gt.mul(target_weight[:, idx])
                )
            else:
                loss += 0.5 * self.criterion(heatmap_pred, heatmap_gt)
        return loss / num_joints


def get_max_preds(batch_heatmaps):
    batch_size, num_joints, _, width = batch_heatmaps.shape
    heatmaps_reshaped = batch_heatmaps.reshape((batch_size, num_joints, -1))
    maxvals, idx = torch.max(heatmaps_reshaped, 2)
    maxvals = maxvals.unsqueeze(2).numpy()
    idx = idx.unsqueeze(2).numpy()
    preds = np.tile(idx, (1, 1, 2)).astype(np.float32)
    preds[:, :, 0] = (preds[:, :, 0]) % width
    preds[:, :, 1] = np.floor((preds[:, :, 1]) / width)
    pred_mask = np.tile(np.greater(maxvals, 0.0), (1, 1, 2)).astype(np.float32)
    preds *= pred_mask
    return preds, maxvals


def soft_argmax(heatmaps, beta=10.0):
    b, j, h, w = heatmaps.shape
    prob = F.softmax(beta * heatmaps.reshape(b, j, -1), dim=-1).reshape(b, j, h, w)
    xs = (prob.sum(2) * torch.arange(w, dtype=prob.dtype)).sum(-1)
    ys = (prob.sum(3) * torch.arange(h, dtype=prob.dtype)).sum(-1)
    return torch.stack([xs, ys], -1)


def flip_back(output_flipped, matched_parts):
    output_flipped = output_flipped.flip(3)
    for pair in matched_parts:
        tmp = output_flipped[:, pair[0], :, :].clone()
        output_flipped[:, pair[0], :, :] = output_flipped[:, pair[1], :, :]
        output_flipped[:, pair[1], :, :] = tmp
    return output_flipped


def make_sample():
    img = 0.1 * rng.standard_normal((3, H, W))
    joints = rng.uniform(3, W - 4, (J, 2))
    vis = (rng.uniform(size=J) > 0.15).astype(np.float32)
    hm = np.zeros((J, H, W))
    yy, xx = np.mgrid[0:H, 0:W]
    for j, (x, y) in enumerate(joints):
        img[j % 3] += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 4.0) * (1 + j)
        hm[j] = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
    return img, hm, joints, vis


samples = [make_sample() for _ in range(16)]
imgs = torch.from_numpy(np.stack([s[0] for s in samples]).astype(np.float32))
hms = torch.from_numpy(np.stack([s[1] for s in samples]).astype(np.float32))
joints = np.stack([s[2] for s in samples])
tw = torch.from_numpy(np.stack([s[3] for s in samples])[:, :, None])

model = HourglassNet()
W_ = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W_[name]))
crit = JointsMSELoss(use_target_weight=True)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
losses = []
for step in range(6):
    if step == 3:
        opt = torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4
        )
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [2], 0.1)
    i = slice((step % 2) * 8, (step % 2) * 8 + 8)
    outputs = model(imgs[i])
    loss = sum(crit(o, hms[i], tw[i]) for o in outputs)
    integral = F.l1_loss(soft_argmax(outputs[-1]), torch.from_numpy(joints[i].astype(np.float32)))
    total = loss + 0.01 * integral
    opt.zero_grad()
    total.backward()
    opt.step()
    if step >= 3:
        sched.step()
    losses.append([loss.item(), integral.item()])

model.eval()
with torch.no_grad():
    out = model(imgs)[-1]
    out_flip = flip_back(model(imgs.flip(3))[-1], FLIP_PAIRS)
    out_flip[:, :, :, 1:] = out_flip.clone()[:, :, :, 0:-1]
    avg = (out + out_flip) * 0.5
preds, maxvals = get_max_preds(avg)
norm = 0.5 * W
dists = np.linalg.norm(preds - joints, axis=-1) / norm
vis = np.stack([s[3] for s in samples]) > 0
pck = float((dists[vis] < 0.5).mean())
soft = soft_argmax(avg).numpy()
d2 = ((soft - joints) ** 2).sum(-1)
oks = float((np.exp(-d2 / (2 * (W * 0.1) ** 2)) * vis).sum() / vis.sum())

report(
    losses=losses,
    maxvals=maxvals[:4].ravel().tolist(),
    soft=soft[:4].ravel().tolist(),
    pck=pck,
    oks=oks,
    flip_mean=out_flip.mean().item(),
    shapes=[list(o.shape) for o in model(imgs[:1])],
)
