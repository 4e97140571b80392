# Volumetric and video models as medical-imaging and action-recognition code writes them: a 3-D
# U-Net (Conv3d + InstanceNorm3d + LeakyReLU blocks, MaxPool3d, ConvTranspose3d up-sampling,
# skips joined by torch.cat after F.pad to odd sizes, deep supervision by trilinear
# interpolate, a soft Dice + cross-entropy loss over one-hot labels permuted to NCDHW, sliding-
# window inference with overlapping patches averaged by a count map), and video classifiers: an
# R(2+1)D block ((1,3,3) spatial then (3,1,1) temporal convs with tuple strides and paddings),
# X3D's depthwise 3-D convs (groups=) with BatchNorm3d and SiLU, AvgPool3d / AdaptiveAvgPool3d /
# AdaptiveMaxPool3d heads, Dropout3d (evaluated in eval mode), channels_last_3d memory format,
# replicate F.pad of a 5-D clip, and a Conv1d / ConvTranspose1d temporal autoencoder on the
# per-frame features. Our own program; volumes and clips generated with NumPy.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(303)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


class ConvBlock3d(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv3d(cin, cout, kernel_size=3, padding=1, bias=False),
            nn.InstanceNorm3d(cout, affine=True),
            nn.LeakyReLU(negative_slope=0.01, inplace=True),
            nn.Conv3d(cout, cout, kernel_size=3, padding=1, bias=False),
            nn.InstanceNorm3d(cout, affine=True),
            nn.LeakyReLU(negative_slope=0.01, inplace=True),
        )

    def forward(self, x):
        return self.conv(x)


class Up3d(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose3d(cin, cin // 2, kernel_size=2, stride=2)
        self.conv = ConvBlock3d(cin, cout)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diffZ = x2.size()[2] - x1.size()[2]
        diffY = x2.size()[3] - x1.size()[3]
        diffX = x2.size()[4] - x1.size()[4]
        x1 = F.pad(x1, [diffX // 2, diffX - diffX // 2, diffY // 2, diffY - diffY // 2,
                        diffZ // 2, diffZ - diffZ // 2])
        return self.conv(torch.cat([x2, x1], dim=1))


class UNet3D(nn.Module):
    def __init__(self, in_channels=1, n_classes=3, f=4):
        super().__init__()
        self.inc = ConvBlock3d(in_channels, f)
        self.down1 = nn.Sequential(nn.MaxPool3d(2), ConvBlock3d(f, 2 * f))
        self.down2 = nn.Sequential(nn.MaxPool3d(2), ConvBlock3d(2 * f, 4 * f))
        self.up1 = Up3d(4 * f, 2 * f)
        self.up2 = Up3d(2 * f, f)
        self.outc = nn.Conv3d(f, n_classes, kernel_size=1)
        self.ds = nn.Conv3d(2 * f, n_classes, kernel_size=1)  # deep supervision head

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        y = self.up1(x3, x2)
        aux = self.ds(y)
        y = self.up2(y, x1)
        return self.outc(y), aux


def dice_loss(logits, target, n_classes, eps=1e-5):
    probs = F.softmax(logits, dim=1)
    one_hot = F.one_hot(target, n_classes).permute(0, 4, 1, 2, 3).float()
    dims = (0, 2, 3, 4)
    intersection = torch.sum(probs * one_hot, dims)
    cardinality = torch.sum(probs + one_hot, dims)
    dice = (2.0 * intersection + eps) / (cardinality + eps)
    return 1.0 - dice.mean(), dice


def make_volume(n, size=(10, 12, 12)):
    """Blobs in noise: label 1 inside a sphere, 2 inside a box."""
    D, H, W = size
    zz, yy, xx = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing="ij")
    vols = np.empty((n, 1, D, H, W), np.float32)
    labs = np.zeros((n, D, H, W), np.int64)
    for i in range(n):
        c = rng.uniform([3, 3, 3], [D - 3, H - 3, W - 3])
        sphere = (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < 6.0
        z0, y0, x0 = rng.integers(0, 4, size=3)
        box = np.zeros_like(sphere)
        box[z0:z0 + 4, y0:y0 + 4, x0:x0 + 4] = True
        labs[i][sphere] = 1
        labs[i][box & ~sphere] = 2
        vols[i, 0] = labs[i] * 0.8 + rng.normal(0, 0.4, size=size)
    return torch.from_numpy(vols), torch.from_numpy(labs)


vols, labels = make_volume(4)
unet = UNet3D()
load_reference(unet)
optimizer = torch.optim.AdamW(unet.parameters(), lr=3e-3, weight_decay=1e-4)
unet_losses, dice_scores = [], []
for step in range(5):
    xb, yb = vols[step % 2 * 2:step % 2 * 2 + 2], labels[step % 2 * 2:step % 2 * 2 + 2]
    out, aux = unet(xb)
    aux_up = F.interpolate(aux, size=out.shape[2:], mode="trilinear", align_corners=False)
    d_loss, dice = dice_loss(out, yb, 3)
    loss = F.cross_entropy(out, yb) + d_loss + 0.5 * F.cross_entropy(aux_up, yb)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    unet_losses.append(loss.item())
    dice_scores.append(dice.detach().tolist())


def sliding_window_inference(volume, model, roi=(8, 8, 8), overlap=0.5, n_classes=3):
    """MONAI's idea in a few lines: overlapping windows, outputs averaged by a count map."""
    _, _, D, H, W = volume.shape
    steps = [max(1, int(r * (1 - overlap))) for r in roi]

    def starts(size, r, s):
        pos = list(range(0, max(size - r, 0) + 1, s))
        if pos[-1] + r < size:
            pos.append(size - r)
        return pos

    out = torch.zeros(volume.shape[0], n_classes, D, H, W)
    count = torch.zeros(1, 1, D, H, W)
    for z in starts(D, roi[0], steps[0]):
        for y in starts(H, roi[1], steps[1]):
            for x in starts(W, roi[2], steps[2]):
                patch = volume[:, :, z:z + roi[0], y:y + roi[1], x:x + roi[2]]
                logits, _ = model(patch)
                out[:, :, z:z + roi[0], y:y + roi[1], x:x + roi[2]] += logits
                count[:, :, z:z + roi[0], y:y + roi[1], x:x + roi[2]] += 1
    return out / count


unet.eval()
with torch.no_grad():
    sw = sliding_window_inference(vols[:1], unet)
    seg = sw.argmax(1)
    sw_stats = [sw.mean().item(), sw.std().item()]
    seg_counts = torch.bincount(seg.flatten(), minlength=3).tolist()


class R2Plus1dBlock(nn.Module):
    def __init__(self, cin, cout, mid, stride=1):
        super().__init__()
        self.spatial = nn.Conv3d(cin, mid, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                                 padding=(0, 1, 1), bias=False)
        self.bn1 = nn.BatchNorm3d(mid)
        self.temporal = nn.Conv3d(mid, cout, kernel_size=(3, 1, 1), stride=(stride, 1, 1),
                                  padding=(1, 0, 0), bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False),
                                      nn.BatchNorm3d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.spatial(x)))
        out = self.bn2(self.temporal(out))
        identity = x if self.down is None else self.down(x)
        return F.relu(out + identity)


class X3DBlock(nn.Module):
    """X3D's bottleneck: 1x1x1 expand, 3x3x3 depthwise, SiLU, 1x1x1 project."""

    def __init__(self, c, expand=2):
        super().__init__()
        h = c * expand
        self.a = nn.Sequential(nn.Conv3d(c, h, 1, bias=False), nn.BatchNorm3d(h), nn.ReLU())
        self.b = nn.Sequential(nn.Conv3d(h, h, 3, padding=1, groups=h, bias=False),
                               nn.BatchNorm3d(h), nn.SiLU())
        self.c = nn.Sequential(nn.Conv3d(h, c, 1, bias=False), nn.BatchNorm3d(c))

    def forward(self, x):
        return F.relu(x + self.c(self.b(self.a(x))))


class VideoNet(nn.Module):
    def __init__(self, n_classes=4):
        super().__init__()
        self.stem = nn.Conv3d(3, 8, kernel_size=(3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2))
        self.block1 = R2Plus1dBlock(8, 12, 10, stride=2)
        self.block2 = X3DBlock(12)
        self.pool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.maxpool = nn.AdaptiveMaxPool3d((1, 2, 2))
        self.dropout = nn.Dropout3d(p=0.3)
        self.fc = nn.Linear(12 + 12 * 4, n_classes)

    def features(self, x):
        x = F.relu(self.stem(x))
        x = self.block1(x)
        return self.block2(self.dropout(x))

    def forward(self, x):
        f = self.features(x)
        pooled = torch.cat([self.pool(f).flatten(1), self.maxpool(f).flatten(1)], dim=1)
        return self.fc(pooled)


def make_clips(n, T=6, S=12):
    """Moving bars: the class is the direction of motion."""
    clips = np.zeros((n, 3, T, S, S), np.float32)
    ys = np.zeros(n, np.int64)
    for i in range(n):
        cls = int(rng.integers(0, 4))
        ys[i] = cls
        pos = int(rng.integers(0, S))
        for t in range(T):
            p = (pos + (t if cls % 2 == 0 else -t)) % S
            if cls < 2:
                clips[i, :, t, :, p] = 1.0
            else:
                clips[i, :, t, p, :] = 1.0
        clips[i] += rng.normal(0, 0.3, size=clips[i].shape)
    return torch.from_numpy(clips), torch.from_numpy(ys)


clips, ys = make_clips(12)
video = VideoNet()
load_reference(video)
video = video.to(memory_format=torch.channels_last_3d)
stem_is_cl3d = video.stem.weight.is_contiguous(memory_format=torch.channels_last_3d)
vopt = torch.optim.SGD(video.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
video.train()
video.dropout.eval()  # keep the run deterministic: no channel dropout
video_losses = []
for step in range(6):
    xb = clips[step % 3 * 4:step % 3 * 4 + 4].contiguous(memory_format=torch.channels_last_3d)
    yb = ys[step % 3 * 4:step % 3 * 4 + 4]
    loss = F.cross_entropy(video(xb), yb)
    vopt.zero_grad()
    loss.backward()
    vopt.step()
    video_losses.append(loss.item())
bn_running = video.block1.bn1.running_mean[:4].tolist() + video.block2.b[1].running_var[:4].tolist()
video.eval()
with torch.no_grad():
    logits = video(clips)
    eval_acc = (logits.argmax(1) == ys).float().mean().item()
    # test-time clip padding by replicate and average pooling over time
    padded = F.pad(clips[:2], (0, 0, 0, 0, 1, 1), mode="replicate")
    pooled = F.avg_pool3d(padded, kernel_size=(3, 2, 2), stride=(1, 2, 2))
    pooled_stats = [tuple(pooled.shape) == (2, 3, 6, 6, 6), pooled.sum().item()]
    pooled_flat = pooled.view(pooled.size(0), -1)[:, :4].tolist()
    up = F.interpolate(pooled, scale_factor=(1, 2, 2), mode="nearest")
    up_flat = up.view(2, 3, -1).mean(-1).tolist()
    feats = video.features(clips[:4])
    feat_sum = feats.abs().sum().item()


class TemporalAE(nn.Module):
    """A per-frame feature sequence squeezed by strided Conv1d and rebuilt by ConvTranspose1d."""

    def __init__(self, c=6, h=8):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv1d(c, h, 3, stride=2, padding=1), nn.GELU(),
                                 nn.Conv1d(h, h, 3, stride=2, padding=1))
        self.dec = nn.Sequential(nn.ConvTranspose1d(h, h, 4, stride=2, padding=1), nn.GELU(),
                                 nn.ConvTranspose1d(h, c, 3, stride=2, padding=1,
                                                    output_padding=1))

    def forward(self, x):
        return self.dec(self.enc(x))


seq = torch.from_numpy(np.sin(np.linspace(0, 6, 16)[None, None] * np.arange(1, 7)[None, :, None])
                       .astype(np.float32)).repeat(3, 1, 1)
tae = TemporalAE()
load_reference(tae)
topt = torch.optim.Adam(tae.parameters(), lr=1e-2)
tae_losses = []
for step in range(8):
    recon = tae(seq)
    loss = F.mse_loss(recon, seq)
    topt.zero_grad()
    loss.backward()
    topt.step()
    tae_losses.append(loss.item())

report(
    unet_losses=unet_losses,
    dice_scores=dice_scores,
    sw_stats=sw_stats,
    seg_counts=seg_counts,
    stem_is_cl3d=stem_is_cl3d,
    video_losses=video_losses,
    bn_running=bn_running,
    eval_acc=eval_acc,
    pooled_stats=pooled_stats,
    pooled_flat=pooled_flat,
    up_flat=up_flat,
    feat_sum=feat_sum,
    tae_losses=tae_losses,
    recon_shape=list(recon.shape),
)
