# Point-cloud models as the PointNet / DGCNN reference implementations write them: shared MLPs as
# nn.Conv1d(kernel_size=1) + nn.BatchNorm1d over (B, C, N), a T-Net predicting a 3x3 transform
# (identity added as a flattened eye) applied with torch.bmm, the orthogonality regulariser
# ||I - A A^T||, a global max(dim=2) feature with its argmax points (the "critical set"), an
# EdgeConv layer with kNN from torch.cdist + topk(largest=False), neighbourhoods gathered through
# flattened indices (idx + arange * N, index_select) and x.unsqueeze(-1).expand, random
# rotations about z from torch.cos/sin + torch.stack, F.cross_entropy(label_smoothing=0.1),
# Adam + StepLR, and a chamfer distance from cdist().min(dim=...) for a folding decoder.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(17)
B, N, K, NUM_CLASSES = 8, 64, 8, 3


def make_cloud(kind, n):
    u = rng.uniform(-1, 1, (n, 3))
    if kind == 0:  # sphere surface
        p = u / np.linalg.norm(u, axis=1, keepdims=True)
    elif kind == 1:  # cube surface: push one coordinate to +-1
        p = u.copy()
        axis = rng.integers(0, 3, n)
        p[np.arange(n), axis] = np.sign(p[np.arange(n), axis])
    else:  # a flat disc, thick in z
        r, th = np.sqrt(rng.uniform(0, 1, n)), rng.uniform(0, 2 * np.pi, n)
        p = np.stack([r * np.cos(th), r * np.sin(th), 0.1 * u[:, 2]], 1)
    return p * rng.uniform(0.8, 1.2)


labels_np = np.arange(B) % NUM_CLASSES
clouds = torch.tensor(np.stack([make_cloud(k, N) for k in labels_np]), dtype=torch.float32)
labels = torch.from_numpy(labels_np)
angles = torch.from_numpy(rng.uniform(0, 2 * np.pi, (20, B)).astype(np.float32))


def rotate_z(points, theta):  # points (B, N, 3), theta (B,)
    c, s = torch.cos(theta), torch.sin(theta)
    zero, one = torch.zeros_like(theta), torch.ones_like(theta)
    R = torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1),
                     torch.stack([zero, zero, one], -1)], dim=1)  # fmt: skip
    return points @ R.transpose(1, 2)


def knn(x, k):  # x (B, C, N) -> (B, N, k) indices of the nearest points, self included
    d = torch.cdist(x.transpose(2, 1), x.transpose(2, 1))
    return d.topk(k=k, dim=-1, largest=False)[1]


def graph_feature(x, k):
    batch, c, n = x.size()
    idx = knn(x, k) + torch.arange(batch).view(-1, 1, 1) * n
    flat = x.transpose(2, 1).contiguous().view(batch * n, -1)
    neigh = flat.index_select(0, idx.view(-1)).view(batch, n, k, c)
    x = x.transpose(2, 1).unsqueeze(2).expand(-1, -1, k, -1)  # (B, N, k, C)
    return torch.cat((neigh - x, x), dim=3).permute(0, 3, 1, 2).contiguous()  # (B, 2C, N, k)


class TNet(nn.Module):
    def __init__(self, k=3):
        super().__init__()
        self.k = k
        # no bias in front of a BatchNorm: its gradient is 0 up to rounding, and Adam would
        # turn that rounding into full-size steps (see test_programs.CASES)
        self.conv1, self.conv2 = nn.Conv1d(k, 16, 1, bias=False), nn.Conv1d(16, 32, 1, bias=False)
        self.bn1, self.bn2 = nn.BatchNorm1d(16), nn.BatchNorm1d(32)
        self.fc = nn.Linear(32, k * k)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = torch.max(x, 2, keepdim=True)[0].view(-1, 32)
        iden = torch.eye(self.k, dtype=x.dtype).flatten().repeat(x.size(0), 1)
        return (self.fc(x) + iden).view(-1, self.k, self.k)


class PointNetDGCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.stn = TNet(3)
        self.edge = nn.Sequential(nn.Conv2d(6, 16, kernel_size=1, bias=False),
                                  nn.BatchNorm2d(16), nn.LeakyReLU(negative_slope=0.2))  # fmt: skip
        self.mlp = nn.Sequential(nn.Conv1d(3 + 16, 32, 1, bias=False), nn.BatchNorm1d(32),
                                 nn.ReLU(), nn.Conv1d(32, 64, 1, bias=False), nn.BatchNorm1d(64),
                                 nn.ReLU())  # fmt: skip
        # LayerNorm in the head: a BatchNorm there would zero the gradient of mlp's last bias
        self.head = nn.Sequential(nn.Linear(64, 32), nn.LayerNorm(32), nn.ReLU(),
                                  nn.Dropout(p=0.0), nn.Linear(32, NUM_CLASSES))  # fmt: skip

    def forward(self, pts):  # pts (B, N, 3)
        x = pts.transpose(2, 1)  # (B, 3, N)
        trans = self.stn(x)
        x = torch.bmm(x.transpose(2, 1), trans).transpose(2, 1)
        e = self.edge(graph_feature(x, K)).max(dim=-1, keepdim=False)[0]  # (B, 16, N)
        feat = self.mlp(torch.cat([x, e], dim=1))
        glob, crit = feat.max(dim=2)  # (B, 64) and the index of the winning point per channel
        return self.head(glob), trans, crit


def ortho_reg(A):
    I = torch.eye(A.size(1))[None, :, :]
    return torch.mean(torch.norm(torch.bmm(A, A.transpose(2, 1)) - I, dim=(1, 2)))


model = PointNetDGCNN()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.as_tensor(np.asarray(W[name])))
    model.stn.fc.weight.mul_(0.1)
    model.stn.fc.bias.zero_()
opt = torch.optim.Adam(model.parameters(), lr=1e-2, betas=(0.9, 0.999))
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=6, gamma=0.5)
losses, regs, accs, lrs = [], [], [], []
for step in range(10):
    model.train()
    pts = rotate_z(clouds, angles[step])
    pts = pts + 0.01 * torch.from_numpy(rng.standard_normal(pts.shape).astype(np.float32))
    logits, trans, _ = model(pts)
    reg = ortho_reg(trans)
    loss = F.cross_entropy(logits, labels, label_smoothing=0.1) + 0.001 * reg
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    regs.append(reg.item())
    accs.append((logits.argmax(-1) == labels).float().mean().item())
    lrs.append(sched.get_last_lr()[0])

model.eval()
with torch.no_grad():
    logits, trans, crit = model(clouds)
    probs = F.softmax(logits, dim=1)
    n_critical = [int(torch.unique(c).numel()) for c in crit]
    det = torch.linalg.det(trans)


# a folding-style decoder: a 2-D grid bent into the cloud, trained with the chamfer distance
def chamfer(a, b):  # (B, N, 3), (B, M, 3)
    d = torch.cdist(a, b) ** 2
    return d.min(dim=2).values.mean(dim=1) + d.min(dim=1)[0].mean(dim=1)


g = torch.linspace(-1, 1, 6)
grid = torch.stack(torch.meshgrid(g, g, indexing="xy"), dim=-1).view(1, -1, 2)  # (1, 36, 2)
code = nn.Parameter(torch.from_numpy(rng.normal(0, 0.1, (B, 8)).astype(np.float32)))
fold = nn.Sequential(nn.Linear(8 + 2, 32), nn.ReLU(), nn.Linear(32, 3))
Wf = reference_weights(fold)
with torch.no_grad():
    for name, p in fold.named_parameters():
        p.copy_(torch.as_tensor(np.asarray(Wf[name])))
opt2 = torch.optim.Adam([{"params": fold.parameters()}, {"params": [code], "lr": 0.05}], lr=0.01)
cd_losses = []
for step in range(15):
    inp = torch.cat([code.unsqueeze(1).expand(-1, grid.shape[1], -1), grid.expand(B, -1, -1)], -1)
    recon = fold(inp)
    loss = chamfer(recon, clouds).mean()
    opt2.zero_grad()
    loss.backward()
    opt2.step()
    cd_losses.append(loss.item())
nearest = torch.cdist(recon, clouds).argmin(dim=2)
coverage = [int(torch.unique(n).numel()) for n in nearest]

rot_err = rotate_z(clouds, angles[0]).norm(dim=-1).sub(clouds.norm(dim=-1)).abs().max()
report(losses=losses, regs=regs, accs=accs, lrs=lrs, probs=probs.tolist(),
       n_critical=n_critical, det=det.tolist(), cd_losses=cd_losses, coverage=coverage,
       rot_err=float(rot_err), angle=math.degrees(float(angles[0, 0])))  # fmt: skip
