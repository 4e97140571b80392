# A small U-Net for binary segmentation in the shape of milesial/Pytorch-UNet: DoubleConv blocks
# (Conv2d + BatchNorm2d + ReLU twice), Down (MaxPool2d then DoubleConv), Up with either bilinear
# F.interpolate-style nn.Upsample(align_corners=True) or ConvTranspose2d, padding with F.pad to
# the skip's size, skip connections by torch.cat, a 1x1 output conv; trained with BCE + Dice
# loss, sigmoid thresholds and an IoU metric. Masks are NumPy-drawn discs.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)


class DoubleConv(nn.Module):
    """(convolution => [BN] => ReLU) * 2"""

    def __init__(self, in_channels, out_channels, mid_channels=None):
        super().__init__()
        if not mid_channels:
            mid_channels = out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(mid_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class Down(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    def __init__(self, in_channels, out_channels, bilinear=True):
        super().__init__()
        if bilinear:
            self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
            self.conv = DoubleConv(in_channels, out_channels, in_channels // 2)
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
            self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        # input is CHW
        diffY = x2.size()[2] - x1.size()[2]
        diffX = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class UNet(nn.Module):
    def __init__(self, n_channels, n_classes, bilinear=False):
        super().__init__()
        self.inc = DoubleConv(n_channels, 8)
        self.down1 = Down(8, 16)
        factor = 2 if bilinear else 1
        self.down2 = Down(16, 32 // factor)
        self.up1 = Up(32, 16 // factor, bilinear)
        self.up2 = Up(16, 8, bilinear)
        self.outc = nn.Conv2d(8, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x = self.up1(x3, x2)
        x = self.up2(x, x1)
        return self.outc(x)


def dice_coeff(input, target, reduce_batch_first=False, epsilon=1e-6):
    sum_dim = (-1, -2) if input.dim() == 2 or not reduce_batch_first else (-1, -2, -3)
    inter = 2 * (input * target).sum(dim=sum_dim)
    sets_sum = input.sum(dim=sum_dim) + target.sum(dim=sum_dim)
    sets_sum = torch.where(sets_sum == 0, inter, sets_sum)
    dice = (inter + epsilon) / (sets_sum + epsilon)
    return dice.mean()


def dice_loss(input, target):
    return 1 - dice_coeff(input, target, reduce_batch_first=True)


def iou(pred, target):
    inter = (pred & target).float().sum(dim=(1, 2, 3))
    union = (pred | target).float().sum(dim=(1, 2, 3))
    return (inter / union.clamp(min=1)).mean()


def make_batch(n, size=12):
    yy, xx = np.mgrid[0:size, 0:size]
    imgs, masks = [], []
    for _ in range(n):
        cy, cx = rng.uniform(3, size - 3, size=2)
        r = rng.uniform(2, 4)
        m = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.float32)
        imgs.append(m + 0.3 * rng.standard_normal((size, size)))
        masks.append(m)
    x = np.stack(imgs)[:, None].astype(np.float32)
    y = np.stack(masks)[:, None].astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y)


results = {}
for bilinear in (False, True):
    model = UNet(n_channels=1, n_classes=1, bilinear=bilinear)
    W = reference_weights(model)
    model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})
    # SGD, not the repository's RMSprop: Up's ConvTranspose2d bias sits in front of a BatchNorm
    # (its gradient is 0 up to rounding), which a step-normalising optimizer would amplify.
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, weight_decay=1e-8, momentum=0.9)
    criterion = nn.BCEWithLogitsLoss()
    losses = []
    for step in range(8):
        model.train()
        images, true_masks = make_batch(4)
        masks_pred = model(images)
        loss = criterion(masks_pred.squeeze(1), true_masks.squeeze(1).float())
        loss += dice_loss(F.sigmoid(masks_pred.squeeze(1)), true_masks.squeeze(1).float())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    images, true_masks = make_batch(4)
    with torch.no_grad():
        logits = model(images)
        probs = torch.sigmoid(logits)
        pred = probs > 0.5
        dice = dice_coeff(pred.float().squeeze(1), true_masks.squeeze(1), reduce_batch_first=False)
        score = iou(pred, true_masks.bool())
        # upsample predictions back to a larger canvas, the way inference scripts do
        big = F.interpolate(logits, size=(18, 18), mode="bilinear", align_corners=False)
        big_nearest = F.interpolate(pred.float(), scale_factor=1.5, mode="nearest")
    results["bilinear" if bilinear else "transposed"] = {
        "losses": losses,
        "dice": dice.item(),
        "iou": score.item(),
        "big": big[0, 0, ::4, ::4].tolist(),
        "big_nearest_sum": big_nearest.sum().item(),
        "big_nearest_shape": list(big_nearest.shape),
        "n_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
report(**results)
