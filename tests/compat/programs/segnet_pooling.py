# Classic CNN building blocks in the shape of torchvision's AlexNet / ShuffleNetV2, SegNet's
# encoder-decoder and image-processing notebooks: LocalResponseNorm, MaxPool2d(return_indices=True)
# with MaxUnpool2d(output_size=) for SegNet's decoder, AdaptiveMaxPool2d(return_indices=True) and
# AdaptiveAvgPool2d to sizes that do not divide the input, LPPool2d, AvgPool2d(ceil_mode=True,
# count_include_pad=False, divisor_override=), MaxPool1d(dilation=, ceil_mode=), ChannelShuffle and
# ShuffleNet's channel split, nn.Unflatten, PixelUnshuffle, Dropout2d in eval, F.unfold/F.fold
# with stride, padding and dilation (patch overlap counts), F.interpolate down-sampling with
# antialias=True (bilinear, bicubic) and area / nearest-exact modes, F.pad modes. Trained with
# SGD(nesterov) + ReduceLROnPlateau on a pixel-wise segmentation loss.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def channel_shuffle(x, groups):
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(c // 2, c // 2, 1, bias=False),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c // 2, c // 2, 3, padding=1, groups=c // 2, bias=False),
            nn.BatchNorm2d(c // 2),
        )

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat((x1, self.branch(x2)), dim=1), 2)


class SegNetLite(nn.Module):
    def __init__(self, n_classes=3):
        super().__init__()
        self.enc1 = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.LocalResponseNorm(size=3, alpha=1e-2, beta=0.75, k=2.0),
        )
        self.pool1 = nn.MaxPool2d(2, 2, return_indices=True)
        self.enc2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), ShuffleUnit(8))
        self.pool2 = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool2 = nn.MaxUnpool2d(2, 2)
        self.dec2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.0))
        self.unpool1 = nn.MaxUnpool2d(2, 2)
        self.dec1 = nn.Conv2d(8, n_classes, 3, padding=1)

    def forward(self, x):
        x = self.enc1(x)
        size1 = x.size()
        x, idx1 = self.pool1(x)
        x = self.enc2(x)
        size2 = x.size()
        x, idx2 = self.pool2(x)
        x = self.unpool2(x, idx2, output_size=size2)
        x = self.dec2(x)
        x = self.unpool1(x, idx1, output_size=size1)
        return self.dec1(x)


img = torch.from_numpy(rng.standard_normal((2, 3, 11, 10)).astype(np.float32))
seg = torch.from_numpy(rng.integers(0, 3, size=(2, 11, 10)))
model = load(SegNetLite())
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
    optimizer, mode="min", factor=0.5, patience=0, threshold=0.05
)
losses, lrs = [], []
for step in range(8):
    model.train()
    out = model(img)
    loss = F.cross_entropy(out, seg, weight=torch.tensor([1.0, 2.0, 0.5]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    plateau.step(loss.item())
    losses.append(loss.item())
    lrs.append(optimizer.param_groups[0]["lr"])
model.eval()
with torch.no_grad():
    pred = model(img).argmax(1)
    _, idx = model.pool1(model.enc1(img))
pixel_acc = (pred == seg).float().mean().item()

x = torch.from_numpy(rng.standard_normal((2, 4, 9, 7)).astype(np.float32)).requires_grad_()
pools = {}
amax, amax_idx = nn.AdaptiveMaxPool2d((4, 3), return_indices=True)(x)
pools["adaptive_max"] = amax.flatten().tolist()
pools["adaptive_max_idx"] = amax_idx.flatten().tolist()
pools["adaptive_avg"] = nn.AdaptiveAvgPool2d((5, None))(x).flatten().tolist()
pools["adaptive_avg_1d"] = F.adaptive_avg_pool1d(x[:, :, 0], 4).flatten().tolist()
pools["lp2"] = nn.LPPool2d(2, kernel_size=2, stride=2)(x.abs() + 0.1).flatten().tolist()
pools["lp3_1d"] = nn.LPPool1d(3, kernel_size=3, stride=2)(x[:, :, 0].abs()).flatten().tolist()
pools["avg_ceil"] = (
    nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)(x)
    .flatten()
    .tolist()
)
pools["avg_div"] = nn.AvgPool2d(2, divisor_override=3)(x).flatten().tolist()
mp1, mp1_idx = nn.MaxPool1d(3, stride=2, dilation=2, ceil_mode=True, return_indices=True)(
    x[:, :, 0]
)
pools["max1d_dil"] = mp1.flatten().tolist()
pools["max1d_dil_idx"] = mp1_idx.flatten().tolist()
mp2 = nn.MaxPool2d((3, 2), stride=(2, 1), padding=1, ceil_mode=True)(x)
pools["max2d_ceil_shape"] = list(mp2.shape)
total = sum(torch.as_tensor(v).sum() for v in (amax, mp1, mp2))
total = total + nn.LPPool2d(2, 2)(x.abs() + 0.1).sum() + nn.AvgPool2d(3, 2, 1, True, False)(x).sum()
total.backward()
pools["pool_grad"] = x.grad.flatten().tolist()

# layout ops
y = torch.arange(2 * 8 * 4 * 6, dtype=torch.float32).reshape(2, 8, 4, 6)
layout = {
    "channel_shuffle": nn.ChannelShuffle(4)(y)[0, :, 0, 0].tolist(),
    "pixel_unshuffle": list(nn.PixelUnshuffle(2)(y).shape),
    "pixel_unshuffle_vals": nn.PixelUnshuffle(2)(y)[1, :5, 0, 0].tolist(),
    "unflatten": list(nn.Unflatten(1, (2, 4))(y).shape),
    "unflatten_named": list(y.flatten(2).unflatten(-1, (4, -1)).shape),
}

# unfold / fold with stride, padding and dilation; the overlap count by folding ones
z = torch.from_numpy(rng.standard_normal((1, 2, 7, 8)).astype(np.float32)).requires_grad_()
cols = F.unfold(z, kernel_size=(3, 2), dilation=(1, 2), padding=1, stride=(2, 1))
back = F.fold(
    cols, output_size=(7, 8), kernel_size=(3, 2), dilation=(1, 2), padding=1, stride=(2, 1)
)
count = F.fold(F.unfold(torch.ones_like(z), 3, padding=1), (7, 8), 3, padding=1)
avg = F.fold(F.unfold(z, 3, padding=1), (7, 8), 3, padding=1) / count
(back.pow(2).sum() + avg.sum()).backward()
folds = {
    "cols_shape": list(cols.shape),
    "cols": cols.flatten().tolist()[:40],
    "back": back.flatten().tolist(),
    "count": count.flatten().tolist(),
    "avg_equals_input": torch.allclose(avg, z, atol=1e-6),
    "fold_grad": z.grad.flatten().tolist(),
}

# resizing: anti-aliased down-sampling and the other modes
im = torch.from_numpy(rng.random((1, 3, 16, 13)).astype(np.float32))
resize = {}
for mode in ("bilinear", "bicubic"):
    for aa in (False, True):
        r = F.interpolate(im, size=(7, 5), mode=mode, align_corners=False, antialias=aa)
        resize[f"{mode}_aa{int(aa)}"] = r.flatten().tolist()
resize["area"] = F.interpolate(im, size=(5, 4), mode="area").flatten().tolist()
resize["nearest_exact"] = (
    F.interpolate(im, scale_factor=0.6, mode="nearest-exact").flatten().tolist()
)
resize["nearest"] = F.interpolate(im, scale_factor=0.6, mode="nearest").flatten().tolist()
resize["up_aa"] = (
    F.interpolate(im, scale_factor=1.5, mode="bilinear", antialias=True).flatten().tolist()[:60]
)
for mode in ("reflect", "replicate", "circular"):
    resize[f"pad_{mode}"] = F.pad(im[:, :1, :4, :4], (2, 1, 1, 2), mode=mode).flatten().tolist()

report(
    losses=losses,
    lrs=lrs,
    pixel_acc=pixel_acc,
    pool_idx=idx.flatten().tolist()[:50],
    **pools,
    **layout,
    **folds,
    **resize,
)
