# Sampling-based vision ops written in plain PyTorch, as detection repositories ship them for
# CPU: Deformable DETR's ms_deform_attn_core_pytorch (value split per level by
# value.split([H_ * W_ ...], dim=1), sampling_grids = 2 * sampling_locations - 1,
# F.grid_sample(mode="bilinear", padding_mode="zeros", align_corners=False) per level, the
# weighted sum by stack / flatten / view) inside an MSDeformAttn module (sampling offsets
# normalised by the level shapes, softmax attention weights over levels x points, reference
# points from meshgrid(linspace(0.5, H - 0.5)) / valid ratios); a pure-PyTorch RoIAlign
# (bilinear sampling of each bin at sampling_ratio points through grid_sample with boxes turned
# into affine grids, aligned=True's half-pixel shift) checked against a gather-based
# implementation; and a CoordConv layer (AddCoords by torch.linspace and expand). A tiny
# detector head trains a few steps on top.

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(13)
torch.manual_seed(0)


def ms_deform_attn_core_pytorch(value, value_spatial_shapes, sampling_locations, attention_weights):
    N_, S_, M_, D_ = value.shape
    _, Lq_, M_, L_, P_, _ = sampling_locations.shape
    value_list = value.split([H_ * W_ for H_, W_ in value_spatial_shapes], dim=1)
    sampling_grids = 2 * sampling_locations - 1
    sampling_value_list = []
    for lid_, (H_, W_) in enumerate(value_spatial_shapes):
        # N_, H_*W_, M_, D_ -> N_, H_*W_, M_*D_ -> N_, M_*D_, H_*W_ -> N_*M_, D_, H_, W_
        value_l_ = value_list[lid_].flatten(2).transpose(1, 2).reshape(N_ * M_, D_, H_, W_)
        # N_, Lq_, M_, P_, 2 -> N_, M_, Lq_, P_, 2 -> N_*M_, Lq_, P_, 2
        sampling_grid_l_ = sampling_grids[:, :, :, lid_].transpose(1, 2).flatten(0, 1)
        # N_*M_, D_, Lq_, P_
        sampling_value_l_ = F.grid_sample(
            value_l_, sampling_grid_l_, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        sampling_value_list.append(sampling_value_l_)
    # (N_, Lq_, M_, L_, P_) -> (N_, M_, Lq_, L_, P_) -> (N_, M_, 1, Lq_, L_*P_)
    attention_weights = attention_weights.transpose(1, 2).reshape(N_ * M_, 1, Lq_, L_ * P_)
    output = (
        (torch.stack(sampling_value_list, dim=-2).flatten(-2) * attention_weights)
        .sum(-1)
        .view(N_, M_ * D_, Lq_)
    )
    return output.transpose(1, 2).contiguous()


class MSDeformAttn(nn.Module):
    def __init__(self, d_model=16, n_levels=2, n_heads=2, n_points=3):
        super().__init__()
        self.d_model, self.n_levels, self.n_heads, self.n_points = (
            d_model,
            n_levels,
            n_heads,
            n_points,
        )
        self.sampling_offsets = nn.Linear(d_model, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(d_model, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(d_model, d_model)
        self.output_proj = nn.Linear(d_model, d_model)

    def forward(
        self, query, reference_points, input_flatten, input_spatial_shapes, padding_mask=None
    ):
        N, Len_q, _ = query.shape
        N, Len_in, _ = input_flatten.shape
        value = self.value_proj(input_flatten)
        if padding_mask is not None:
            value = value.masked_fill(padding_mask[..., None], float(0))
        value = value.view(N, Len_in, self.n_heads, self.d_model // self.n_heads)
        sampling_offsets = self.sampling_offsets(query).view(
            N, Len_q, self.n_heads, self.n_levels, self.n_points, 2
        )
        attention_weights = self.attention_weights(query).view(
            N, Len_q, self.n_heads, self.n_levels * self.n_points
        )
        attention_weights = F.softmax(attention_weights, -1).view(
            N, Len_q, self.n_heads, self.n_levels, self.n_points
        )
        offset_normalizer = torch.stack(
            [input_spatial_shapes[..., 1], input_spatial_shapes[..., 0]], -1
        )
        sampling_locations = (
            reference_points[:, :, None, :, None, :]
            + sampling_offsets / offset_normalizer[None, None, None, :, None, :]
        )
        output = ms_deform_attn_core_pytorch(
            value, input_spatial_shapes.tolist(), sampling_locations, attention_weights
        )
        return self.output_proj(output), sampling_locations


def get_reference_points(spatial_shapes, valid_ratios):
    reference_points_list = []
    for lvl, (H_, W_) in enumerate(spatial_shapes):
        ref_y, ref_x = torch.meshgrid(
            torch.linspace(0.5, H_ - 0.5, H_, dtype=torch.float32),
            torch.linspace(0.5, W_ - 0.5, W_, dtype=torch.float32),
            indexing="ij",
        )
        ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * H_)
        ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * W_)
        ref = torch.stack((ref_x, ref_y), -1)
        reference_points_list.append(ref)
    reference_points = torch.cat(reference_points_list, 1)
    reference_points = reference_points[:, :, None] * valid_ratios[:, None]
    return reference_points


def roi_align_grid_sample(
    features, boxes, batch_idx, output_size, spatial_scale, sampling_ratio, aligned=True
):
    """RoIAlign by grid_sample: each bin averages sampling_ratio^2 bilinear samples."""
    N, C, H, W = features.shape
    ph, pw = output_size
    offset = 0.5 if aligned else 0.0
    x1 = boxes[:, 0] * spatial_scale - offset
    y1 = boxes[:, 1] * spatial_scale - offset
    x2 = boxes[:, 2] * spatial_scale - offset
    y2 = boxes[:, 3] * spatial_scale - offset
    bin_w = (x2 - x1) / pw
    bin_h = (y2 - y1) / ph
    s = sampling_ratio
    iy = (torch.arange(ph * s, dtype=torch.float32) + 0.5) / s  # in bins
    ix = (torch.arange(pw * s, dtype=torch.float32) + 0.5) / s
    ys = y1[:, None] + iy[None] * bin_h[:, None]  # R, ph*s
    xs = x1[:, None] + ix[None] * bin_w[:, None]
    # pixel coords -> [-1, 1] for align_corners=False: (x + 0.5) / W * 2 - 1
    gy = (ys + 0.5) / H * 2 - 1
    gx = (xs + 0.5) / W * 2 - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), -1)
    sampled = F.grid_sample(
        features[batch_idx], grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return F.avg_pool2d(sampled, kernel_size=s)


def bilinear_gather(feat, y, x):
    C, H, W = feat.shape
    y = y.clamp(0, H - 1)
    x = x.clamp(0, W - 1)
    y0 = y.floor().long().clamp(max=H - 1)
    x0 = x.floor().long().clamp(max=W - 1)
    y1 = (y0 + 1).clamp(max=H - 1)
    x1 = (x0 + 1).clamp(max=W - 1)
    ly, lx = y - y0.float(), x - x0.float()
    hy, hx = 1 - ly, 1 - lx
    return (
        feat[:, y0, x0] * hy * hx
        + feat[:, y0, x1] * hy * lx
        + feat[:, y1, x0] * ly * hx
        + feat[:, y1, x1] * ly * lx
    )


def roi_align_gather(features, boxes, batch_idx, output_size, spatial_scale, sampling_ratio):
    ph, pw = output_size
    out = []
    for r in range(boxes.shape[0]):
        x1, y1, x2, y2 = (boxes[r] * spatial_scale - 0.5).tolist()
        bw, bh = (x2 - x1) / pw, (y2 - y1) / ph
        f = features[batch_idx[r]]
        acc = torch.zeros(f.shape[0], ph, pw)
        for i in range(ph):
            for j in range(pw):
                vals = []
                for a in range(sampling_ratio):
                    for b in range(sampling_ratio):
                        yy = torch.tensor(y1 + (i + (a + 0.5) / sampling_ratio) * bh)
                        xx = torch.tensor(x1 + (j + (b + 0.5) / sampling_ratio) * bw)
                        vals.append(bilinear_gather(f, yy, xx))
                acc[:, i, j] = torch.stack(vals).mean(0)
        out.append(acc)
    return torch.stack(out)


class AddCoords(nn.Module):
    def forward(self, x):
        b, _, h, w = x.shape
        yy = torch.linspace(-1, 1, h).view(1, 1, h, 1).expand(b, 1, h, w)
        xx = torch.linspace(-1, 1, w).view(1, 1, 1, w).expand(b, 1, h, w)
        return torch.cat([x, xx, yy], dim=1)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(AddCoords(), nn.Conv2d(5, 16, 3, padding=1), nn.ReLU())
        self.down = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.attn = MSDeformAttn()
        self.query = nn.Parameter(torch.zeros(4, 16))
        self.ref = nn.Linear(16, 2)
        self.cls = nn.Linear(16 + 16 * 4, 3)

    def forward(self, img):
        f1 = self.stem(img)  # B,16,8,8
        f2 = F.relu(self.down(f1))  # B,16,4,4
        shapes = torch.as_tensor([f1.shape[-2:], f2.shape[-2:]], dtype=torch.long)
        src = torch.cat([f1.flatten(2).transpose(1, 2), f2.flatten(2).transpose(1, 2)], 1)
        B = img.shape[0]
        q = self.query.unsqueeze(0).expand(B, -1, -1)
        ref = torch.sigmoid(self.ref(q))[:, :, None, :].expand(-1, -1, 2, -1)
        out, locs = self.attn(q, ref, src, shapes)
        boxes = torch.tensor([[1.0, 1.0, 6.0, 6.0], [2.5, 0.5, 7.5, 4.0]]).repeat(B, 1)
        bidx = torch.arange(B).repeat_interleave(2)
        pooled = roi_align_grid_sample(f1, boxes, bidx, (2, 2), 1.0, 2)
        pooled = pooled.view(B, 2, -1).mean(1)
        return self.cls(torch.cat([out.mean(1), pooled], -1)), locs


model = Head()
W_ = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W_[name]))
opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
losses = []
for step in range(8):
    y = rng.integers(0, 3, size=6)
    img = rng.standard_normal((6, 3, 8, 8)).astype(np.float32) * 0.3
    for i, c in enumerate(y):
        img[i, c, 2:6, 2:6] += 1.0
    logits, locs = model(torch.from_numpy(img))
    loss = F.cross_entropy(logits, torch.from_numpy(y))
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

# checks: RoIAlign two ways, reference points, the core op's gradient
feat = torch.from_numpy(rng.standard_normal((2, 3, 9, 11)).astype(np.float32))
boxes = torch.tensor([[1.2, 2.0, 6.7, 7.5], [0.0, 0.0, 10.0, 8.0], [3.3, 1.1, 5.9, 4.4]])
bidx = torch.tensor([0, 1, 1])
ra = roi_align_grid_sample(feat, boxes, bidx, (3, 3), 1.0, 2)
rb = roi_align_gather(feat, boxes, bidx, (3, 3), 1.0, 2)
valid = torch.tensor([[[1.0, 1.0], [1.0, 1.0]], [[0.75, 1.0], [0.5, 0.5]]])
refpts = get_reference_points([(2, 3), (1, 2)], valid)
value = torch.from_numpy(rng.standard_normal((1, 10, 2, 4)).astype(np.float32)).requires_grad_()
locs = torch.from_numpy(
    rng.uniform(-0.1, 1.1, (1, 3, 2, 2, 2, 2)).astype(np.float32)
).requires_grad_()
aw = torch.softmax(torch.from_numpy(rng.standard_normal((1, 3, 2, 2, 2)).astype(np.float32)), -1)
core = ms_deform_attn_core_pytorch(value, [(2, 3), (2, 2)], locs, aw)
core.pow(2).sum().backward()
report(
    losses=losses,
    roi_align=ra.flatten()[::4].tolist(),
    roi_align_agree=torch.allclose(ra, rb, atol=1e-5),
    reference_points=refpts.flatten().tolist(),
    core_out=core.flatten().tolist(),
    value_grad=value.grad.flatten()[::3].tolist(),
    locs_grad=locs.grad.flatten()[::2].tolist(),
)
