# Optical flow in the shape of princeton-vl/RAFT, shrunk to 16x16 frames: a stride-2 feature
# encoder (InstanceNorm / BatchNorm), the all-pairs correlation volume by matmul over flattened
# features, its pyramid by avg_pool2d, lookups around the current coordinates by a delta grid
# (meshgrid, linspace) and bilinear_sampler (split of coords, normalisation, grid_sample with
# align_corners=True), a separable ConvGRU update block with a motion encoder, coords_grid,
# convex upsampling (mask softmax over 9 neighbours, F.unfold of the scaled flow, permute and
# reshape), the sequence loss with exponentially growing weights and a validity mask, EPE and
# 1px / 3px metrics; a deformable convolution written out (predicted offsets, one grid_sample
# per kernel tap, einsum with the weight) and a modulated (DCNv2) variant trained on warping.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(17)
B, H, W = 2, 16, 16
R, LEVELS, ITERS = 2, 2, 3


def load(model):
    W_ = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W_[name]))
    return model


def bilinear_sampler(img, coords, mask=False):
    Hi, Wi = img.shape[-2:]
    xgrid, ygrid = coords.split([1, 1], dim=-1)
    xgrid = 2 * xgrid / (Wi - 1) - 1
    ygrid = 2 * ygrid / (Hi - 1) - 1
    grid = torch.cat([xgrid, ygrid], dim=-1)
    img = F.grid_sample(img, grid, align_corners=True)
    if mask:
        mask = (xgrid > -1) & (ygrid > -1) & (xgrid < 1) & (ygrid < 1)
        return img, mask.float()
    return img


def coords_grid(batch, ht, wd):
    coords = torch.meshgrid(torch.arange(ht), torch.arange(wd), indexing="ij")
    coords = torch.stack(coords[::-1], dim=0).float()
    return coords[None].repeat(batch, 1, 1, 1)


class CorrBlock:
    def __init__(self, fmap1, fmap2, num_levels=LEVELS, radius=R):
        self.num_levels, self.radius = num_levels, radius
        self.corr_pyramid = []
        corr = CorrBlock.corr(fmap1, fmap2)
        batch, h1, w1, dim, h2, w2 = corr.shape
        corr = corr.reshape(batch * h1 * w1, dim, h2, w2)
        self.corr_pyramid.append(corr)
        for _ in range(self.num_levels - 1):
            corr = F.avg_pool2d(corr, 2, stride=2)
            self.corr_pyramid.append(corr)

    def __call__(self, coords):
        r = self.radius
        coords = coords.permute(0, 2, 3, 1)
        batch, h1, w1, _ = coords.shape
        out_pyramid = []
        for i in range(self.num_levels):
            corr = self.corr_pyramid[i]
            dx = torch.linspace(-r, r, 2 * r + 1)
            dy = torch.linspace(-r, r, 2 * r + 1)
            delta = torch.stack(torch.meshgrid(dy, dx, indexing="ij"), dim=-1)
            centroid_lvl = coords.reshape(batch * h1 * w1, 1, 1, 2) / 2**i
            delta_lvl = delta.view(1, 2 * r + 1, 2 * r + 1, 2)
            coords_lvl = centroid_lvl + delta_lvl
            corr = bilinear_sampler(corr, coords_lvl)
            out_pyramid.append(corr.view(batch, h1, w1, -1))
        out = torch.cat(out_pyramid, dim=-1)
        return out.permute(0, 3, 1, 2).contiguous().float()

    @staticmethod
    def corr(fmap1, fmap2):
        batch, dim, ht, wd = fmap1.shape
        fmap1 = fmap1.view(batch, dim, ht * wd)
        fmap2 = fmap2.view(batch, dim, ht * wd)
        corr = torch.matmul(fmap1.transpose(1, 2), fmap2)
        corr = corr.view(batch, ht, wd, 1, ht, wd)
        return corr / torch.sqrt(torch.tensor(dim).float())


class Encoder(nn.Module):
    def __init__(self, out_dim, norm_fn="instance"):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, stride=2, padding=1, bias=False)
        self.norm1 = nn.InstanceNorm2d(8) if norm_fn == "instance" else nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, out_dim, kernel_size=1)

    def forward(self, x):
        is_list = isinstance(x, (tuple, list))
        if is_list:
            batch_dim = x[0].shape[0]
            x = torch.cat(x, dim=0)
        x = self.conv2(F.relu(self.norm1(self.conv1(x)), inplace=True))
        if is_list:
            x = torch.split(x, [batch_dim, batch_dim], dim=0)
        return x


class SepConvGRU(nn.Module):
    def __init__(self, hidden_dim, input_dim):
        super().__init__()
        c = hidden_dim + input_dim
        self.convz1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convr1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convq1 = nn.Conv2d(c, hidden_dim, (1, 5), padding=(0, 2))
        self.convz2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))
        self.convr2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))
        self.convq2 = nn.Conv2d(c, hidden_dim, (5, 1), padding=(2, 0))

    def forward(self, h, x):
        for cz, cr, cq in (
            (self.convz1, self.convr1, self.convq1),
            (self.convz2, self.convr2, self.convq2),
        ):
            hx = torch.cat([h, x], dim=1)
            z = torch.sigmoid(cz(hx))
            r = torch.sigmoid(cr(hx))
            q = torch.tanh(cq(torch.cat([r * h, x], dim=1)))
            h = (1 - z) * h + z * q
        return h


class UpdateBlock(nn.Module):
    def __init__(self, hidden_dim=8, up=2):
        super().__init__()
        cor_planes = LEVELS * (2 * R + 1) ** 2
        self.convc1 = nn.Conv2d(cor_planes, 16, 1)
        self.convf1 = nn.Conv2d(2, 8, 7, padding=3)
        self.conv = nn.Conv2d(24, 14, 3, padding=1)
        self.gru = SepConvGRU(hidden_dim, 16 + 8)
        self.flow_head = nn.Sequential(
            nn.Conv2d(hidden_dim, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 2, 3, padding=1)
        )
        self.mask = nn.Sequential(
            nn.Conv2d(hidden_dim, 16, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, up * up * 9, 1),
        )

    def forward(self, net, inp, corr, flow):
        cor = F.relu(self.convc1(corr))
        flo = F.relu(self.convf1(flow))
        motion = torch.cat([F.relu(self.conv(torch.cat([cor, flo], dim=1))), flow], dim=1)
        net = self.gru(net, torch.cat([inp, motion], dim=1))
        delta_flow = self.flow_head(net)
        mask = 0.25 * self.mask(net)
        return net, mask, delta_flow


class RAFT(nn.Module):
    def __init__(self):
        super().__init__()
        self.fnet = Encoder(16, "instance")
        self.cnet = Encoder(16, "batch")
        self.update_block = UpdateBlock()
        self.up = 2

    def upsample_flow(self, flow, mask):
        N, _, Hh, Ww = flow.shape
        u = self.up
        mask = mask.view(N, 1, 9, u, u, Hh, Ww)
        mask = torch.softmax(mask, dim=2)
        up_flow = F.unfold(u * flow, [3, 3], padding=1)
        up_flow = up_flow.view(N, 2, 9, 1, 1, Hh, Ww)
        up_flow = torch.sum(mask * up_flow, dim=2)
        up_flow = up_flow.permute(0, 1, 4, 2, 5, 3)
        return up_flow.reshape(N, 2, u * Hh, u * Ww)

    def forward(self, image1, image2, iters=ITERS, flow_init=None):
        image1 = 2 * (image1 / 255.0) - 1.0
        image2 = 2 * (image2 / 255.0) - 1.0
        fmap1, fmap2 = self.fnet([image1, image2])
        corr_fn = CorrBlock(fmap1, fmap2)
        cnet = self.cnet(image1)
        net, inp = torch.split(cnet, [8, 8], dim=1)
        net, inp = torch.tanh(net), torch.relu(inp)
        N, _, Hh, Ww = image1.shape
        coords0 = coords_grid(N, Hh // 2, Ww // 2)
        coords1 = coords_grid(N, Hh // 2, Ww // 2)
        if flow_init is not None:
            coords1 = coords1 + flow_init
        flow_predictions = []
        for _ in range(iters):
            coords1 = coords1.detach()
            corr = corr_fn(coords1)
            flow = coords1 - coords0
            net, up_mask, delta_flow = self.update_block(net, inp, corr, flow)
            coords1 = coords1 + delta_flow
            flow_predictions.append(self.upsample_flow(coords1 - coords0, up_mask))
        return flow_predictions


def sequence_loss(flow_preds, flow_gt, valid, gamma=0.8, max_flow=400):
    n_predictions = len(flow_preds)
    flow_loss = 0.0
    mag = torch.sum(flow_gt**2, dim=1).sqrt()
    valid = (valid >= 0.5) & (mag < max_flow)
    for i in range(n_predictions):
        i_weight = gamma ** (n_predictions - i - 1)
        i_loss = (flow_preds[i] - flow_gt).abs()
        flow_loss += i_weight * (valid[:, None] * i_loss).mean()
    epe = torch.sum((flow_preds[-1] - flow_gt) ** 2, dim=1).sqrt()
    epe = epe.view(-1)[valid.view(-1)]
    metrics = {
        "epe": epe.mean().item(),
        "1px": (epe < 1).float().mean().item(),
        "3px": (epe < 3).float().mean().item(),
    }
    return flow_loss, metrics


class DeformConv2d(nn.Module):
    """3x3 deformable conv (DCNv1, or DCNv2 with modulation) by grid_sample per tap."""

    def __init__(self, cin, cout, modulated=False):
        super().__init__()
        self.k = 3
        self.weight = nn.Parameter(torch.empty(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.empty(cout))
        self.offset = nn.Conv2d(cin, 2 * 9, 3, padding=1)
        self.modulated = modulated
        if modulated:
            self.mod = nn.Conv2d(cin, 9, 3, padding=1)

    def forward(self, x):
        n, c, h, w = x.shape
        off = self.offset(x).view(n, 9, 2, h, w)
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij"
        )
        taps = torch.tensor([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=x.dtype)
        samples = []
        for t in range(9):
            py = ys + taps[t, 0] + off[:, t, 0]
            px = xs + taps[t, 1] + off[:, t, 1]
            grid = torch.stack([2 * px / (w - 1) - 1, 2 * py / (h - 1) - 1], dim=-1)
            s = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            if self.modulated:
                s = s * torch.sigmoid(self.mod(x))[:, t : t + 1]
            samples.append(s)
        cols = torch.stack(samples, dim=2)  # n, c, 9, h, w
        wt = self.weight.view(self.weight.shape[0], c, 9)
        return torch.einsum("nckhw,ock->nohw", cols, wt) + self.bias.view(1, -1, 1, 1)


def make_pair():
    base = rng.uniform(0, 255, size=(B, 3, H + 4, W + 4)).astype(np.float32)
    k = np.ones((3, 3), np.float32) / 9
    sm = np.zeros_like(base)
    for i in range(3):
        for j in range(3):
            sm += k[i, j] * np.roll(np.roll(base, i - 1, 2), j - 1, 3)
    shifts = [(1, 2), (2, 1)]
    img1 = sm[:, :, 2:-2, 2:-2]
    img2 = np.stack(
        [
            np.roll(np.roll(sm[b], -shifts[b][0], 1), -shifts[b][1], 2)[:, 2:-2, 2:-2]
            for b in range(B)
        ]
    )
    flow = np.zeros((B, 2, H, W), np.float32)
    valid = np.ones((B, H, W), np.float32)
    for b, (dy, dx) in enumerate(shifts):
        flow[b, 0], flow[b, 1] = dx, dy
    valid[:, :2], valid[:, -2:], valid[:, :, :2], valid[:, :, -2:] = 0, 0, 0, 0
    return (
        torch.from_numpy(img1.copy()),
        torch.from_numpy(img2),
        torch.from_numpy(flow),
        torch.from_numpy(valid),
    )


img1, img2, flow_gt, valid = make_pair()
model = load(RAFT())
opt = torch.optim.AdamW(model.parameters(), lr=4e-4, weight_decay=1e-5, eps=1e-8)
sched = torch.optim.lr_scheduler.OneCycleLR(
    opt, 4e-4, 8, pct_start=0.05, cycle_momentum=False, anneal_strategy="linear"
)
losses, epes = [], []
for step in range(6):
    preds = model(img1, img2)
    loss, metrics = sequence_loss(preds, flow_gt, valid)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    losses.append(loss.item())
    epes.append([metrics["epe"], metrics["1px"], metrics["3px"]])

model.eval()
with torch.no_grad():
    test_preds = model(img1, img2, iters=4)
    warm = model(img1, img2, iters=1, flow_init=F.avg_pool2d(flow_gt, 2))[-1]
    corr = CorrBlock.corr(*model.fnet([2 * (img1 / 255.0) - 1.0, 2 * (img2 / 255.0) - 1.0]))
    _, mask = bilinear_sampler(
        torch.ones(1, 1, 4, 4), torch.tensor([[[[-0.5, 1.0], [1.0, 3.5]]]]), mask=True
    )

dcn_out = {}
x = (img1[:, :, ::2, ::2] / 255.0).contiguous()
target = torch.roll(x, shifts=(1, -1), dims=(2, 3)).mean(1, keepdim=True)
for modulated in (False, True):
    dcn = load(DeformConv2d(3, 1, modulated))
    with torch.no_grad():
        dcn.offset.weight.mul_(0.1)
    o = torch.optim.Adam(dcn.parameters(), lr=1e-2)
    ls = []
    for step in range(6):
        loss = F.smooth_l1_loss(dcn(x), target, beta=0.5)
        o.zero_grad()
        loss.backward()
        o.step()
        ls.append(loss.item())
    dcn_out["modulated" if modulated else "plain"] = ls

report(
    losses=losses,
    epes=epes,
    test_flow=test_preds[-1][:, :, 4, 4].flatten().tolist(),
    test_epe=[sequence_loss(test_preds, flow_gt, valid)[1]["epe"]],
    warm_mean=warm.mean((2, 3)).flatten().tolist(),
    corr_stats=[corr.abs().mean().item(), corr.max().item(), list(corr.shape)],
    sampler_mask=mask.flatten().tolist(),
    dcn=dcn_out,
)
