# PointNet++'s pure-PyTorch utilities as yanx27/Pointnet_Pointnet2_pytorch writes them
# (condensed): square_distance by -2 * matmul + sums, farthest_point_sample's loop with
# torch.max(distance, -1)[1] (the first point drawn by NumPy instead of torch.randint),
# index_points with batch indices built by view / repeat, query_ball_point (arange repeat,
# `group_idx[sqrdists > radius ** 2] = N`, sort()[0][:, :, :nsample], group_first.repeat and
# a mask fill), sample_and_group / sample_and_group_all, PointNetSetAbstraction with Conv2d /
# BatchNorm2d MLPs and torch.max(new_points, 2)[0], PointNetFeaturePropagation's inverse
# distance interpolation (sort, 1 / (dists + 1e-8), norm weights), a classification head with
# log_softmax + nll_loss, and Adam.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(3636)


def square_distance(src, dst):
    B, N, _ = src.shape
    _, M, _ = dst.shape
    dist = -2 * torch.matmul(src, dst.permute(0, 2, 1))
    dist += torch.sum(src**2, -1).view(B, N, 1)
    dist += torch.sum(dst**2, -1).view(B, 1, M)
    return dist


def index_points(points, idx):
    B = points.shape[0]
    view_shape = list(idx.shape)
    view_shape[1:] = [1] * (len(view_shape) - 1)
    repeat_shape = list(idx.shape)
    repeat_shape[0] = 1
    batch_indices = torch.arange(B, dtype=torch.long).view(view_shape).repeat(repeat_shape)
    new_points = points[batch_indices, idx, :]
    return new_points


def farthest_point_sample(xyz, npoint, first):
    B, N, C = xyz.shape
    centroids = torch.zeros(B, npoint, dtype=torch.long)
    distance = torch.ones(B, N) * 1e10
    farthest = first
    batch_indices = torch.arange(B, dtype=torch.long)
    for i in range(npoint):
        centroids[:, i] = farthest
        centroid = xyz[batch_indices, farthest, :].view(B, 1, 3)
        dist = torch.sum((xyz - centroid) ** 2, -1)
        mask = dist < distance
        distance[mask] = dist[mask]
        farthest = torch.max(distance, -1)[1]
    return centroids


def query_ball_point(radius, nsample, xyz, new_xyz):
    B, N, C = xyz.shape
    _, S, _ = new_xyz.shape
    group_idx = torch.arange(N, dtype=torch.long).view(1, 1, N).repeat([B, S, 1])
    sqrdists = square_distance(new_xyz, xyz)
    group_idx[sqrdists > radius**2] = N
    group_idx = group_idx.sort(dim=-1)[0][:, :, :nsample]
    group_first = group_idx[:, :, 0].view(B, S, 1).repeat([1, 1, nsample])
    mask = group_idx == N
    group_idx[mask] = group_first[mask]
    return group_idx


def sample_and_group(npoint, radius, nsample, xyz, points, first):
    B, N, C = xyz.shape
    S = npoint
    fps_idx = farthest_point_sample(xyz, npoint, first)
    new_xyz = index_points(xyz, fps_idx)
    idx = query_ball_point(radius, nsample, xyz, new_xyz)
    grouped_xyz = index_points(xyz, idx)
    grouped_xyz_norm = grouped_xyz - new_xyz.view(B, S, 1, C)
    if points is not None:
        grouped_points = index_points(points, idx)
        new_points = torch.cat([grouped_xyz_norm, grouped_points], dim=-1)
    else:
        new_points = grouped_xyz_norm
    return new_xyz, new_points


def sample_and_group_all(xyz, points):
    B, N, C = xyz.shape
    new_xyz = torch.zeros(B, 1, C)
    grouped_xyz = xyz.view(B, 1, N, C)
    if points is not None:
        new_points = torch.cat([grouped_xyz, points.view(B, 1, N, -1)], dim=-1)
    else:
        new_points = grouped_xyz
    return new_xyz, new_points


class PointNetSetAbstraction(nn.Module):
    def __init__(self, npoint, radius, nsample, in_channel, mlp, group_all):
        super(PointNetSetAbstraction, self).__init__()
        self.npoint, self.radius, self.nsample = npoint, radius, nsample
        self.mlp_convs = nn.ModuleList()
        self.mlp_bns = nn.ModuleList()
        last_channel = in_channel
        for out_channel in mlp:
            # bias=False (the repository's convs have biases): a bias in front of a BatchNorm
            # gets a gradient of 0 up to rounding, which Adam turns into full steps, and the
            # running means that eval mode reads record them (docs/pytorch.md, session 29)
            self.mlp_convs.append(nn.Conv2d(last_channel, out_channel, 1, bias=False))
            self.mlp_bns.append(nn.BatchNorm2d(out_channel))
            last_channel = out_channel
        self.group_all = group_all

    def forward(self, xyz, points, first=None):
        xyz = xyz.permute(0, 2, 1)
        if points is not None:
            points = points.permute(0, 2, 1)
        if self.group_all:
            new_xyz, new_points = sample_and_group_all(xyz, points)
        else:
            new_xyz, new_points = sample_and_group(
                self.npoint, self.radius, self.nsample, xyz, points, first
            )
        new_points = new_points.permute(0, 3, 2, 1)
        for i, conv in enumerate(self.mlp_convs):
            bn = self.mlp_bns[i]
            new_points = F.relu(bn(conv(new_points)))
        new_points = torch.max(new_points, 2)[0]
        new_xyz = new_xyz.permute(0, 2, 1)
        return new_xyz, new_points


class PointNetFeaturePropagation(nn.Module):
    def __init__(self, in_channel, mlp):
        super(PointNetFeaturePropagation, self).__init__()
        self.mlp_convs = nn.ModuleList()
        last_channel = in_channel
        for out_channel in mlp:
            self.mlp_convs.append(nn.Conv1d(last_channel, out_channel, 1))
            last_channel = out_channel

    def forward(self, xyz1, xyz2, points1, points2):
        xyz1 = xyz1.permute(0, 2, 1)
        xyz2 = xyz2.permute(0, 2, 1)
        points2 = points2.permute(0, 2, 1)
        B, N, C = xyz1.shape
        _, S, _ = xyz2.shape
        dists = square_distance(xyz1, xyz2)
        dists, idx = dists.sort(dim=-1)
        dists, idx = dists[:, :, :3], idx[:, :, :3]
        dist_recip = 1.0 / (dists + 1e-8)
        norm = torch.sum(dist_recip, dim=2, keepdim=True)
        weight = dist_recip / norm
        interpolated_points = torch.sum(index_points(points2, idx) * weight.view(B, N, 3, 1), dim=2)
        new_points = torch.cat([points1.permute(0, 2, 1), interpolated_points], dim=-1)
        new_points = new_points.permute(0, 2, 1)
        for conv in self.mlp_convs:
            new_points = F.relu(conv(new_points))
        return new_points


class Net(nn.Module):
    def __init__(self, num_class=3):
        super().__init__()
        self.sa1 = PointNetSetAbstraction(16, 0.4, 8, 3, [8, 16], False)
        self.sa2 = PointNetSetAbstraction(None, None, None, 16 + 3, [16, 32], True)
        self.fp = PointNetFeaturePropagation(3 + 16, [8])
        self.fc = nn.Linear(32, num_class)

    def forward(self, xyz, first):
        l1_xyz, l1_points = self.sa1(xyz, None, first)
        l2_xyz, l2_points = self.sa2(l1_xyz, l1_points)
        x = F.log_softmax(self.fc(l2_points.view(xyz.shape[0], 32)), -1)
        seg = self.fp(xyz, l1_xyz, xyz, l1_points.permute(0, 2, 1))
        return x, seg, l1_xyz


B, N = 6, 48
shapes = []
labels = rng.integers(0, 3, B)
for lab in labels:
    if lab == 0:
        p = rng.standard_normal((N, 3))
        p /= np.linalg.norm(p, axis=1, keepdims=True)
    elif lab == 1:
        p = rng.uniform(-1, 1, (N, 3))
    else:
        p = np.stack([rng.uniform(-1, 1, N), rng.uniform(-1, 1, N), np.zeros(N)], 1)
    shapes.append(p + 0.02 * rng.standard_normal((N, 3)))
xyz = torch.from_numpy(np.stack(shapes).astype(np.float32)).permute(0, 2, 1)
y = torch.from_numpy(labels)
first = torch.from_numpy(rng.integers(0, N, B))
model = Net()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
fps = farthest_point_sample(xyz.permute(0, 2, 1), 8, first)
ball = query_ball_point(0.5, 6, xyz.permute(0, 2, 1), index_points(xyz.permute(0, 2, 1), fps))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
losses = []
for step in range(6):
    out, seg, l1_xyz = model(xyz, first)
    loss = F.nll_loss(out, y) + 0.01 * seg.pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
model.eval()
with torch.no_grad():
    out, seg, l1_xyz = model(xyz, first)
report(
    fps=fps.tolist(),
    ball=ball[0].tolist(),
    losses=losses,
    eval_logp=out.tolist(),
    seg_shape=list(seg.shape),
    seg_mean=seg.mean().item(),
    l1_xyz=l1_xyz[0, :, :4].tolist(),
)
