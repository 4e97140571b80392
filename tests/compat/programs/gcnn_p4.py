# Group-equivariant CNNs on the rotation group p4 (Cohen & Welling 2016) as the GrouPy /
# e2cnn-free tutorials write them: a lifting convolution whose filter bank is the base filter
# under torch.rot90 by k = 0..3 (stacked into one conv2d weight), group convolutions on p4
# feature maps where each rotated filter is also cyclically shifted along the rotation axis
# (torch.roll over dim 2), bias shared over the group by repeat_interleave, group max-pooling for
# invariance, equivariance checked by rotating the input with rot90(dims=(-2, -1)) and comparing
# roll(rot90(output)); a plain CNN beside it trained with rotation augmentation; Adam with a
# OneCycleLR(anneal_strategy="linear"), label smoothing, and a test on rotated digits.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(83)
S, NC = 9, 3
templates = np.zeros((NC, S, S), np.float32)
templates[0, 2:7, 4] = 1  # bar
templates[1, 2, 2:7] = 1
templates[1, 2:7, 6] = 1  # corner
templates[2, 2:7, 2] = 1
templates[2, 6, 2:7] = 1
templates[2, 4, 2:5] = 1  # F-like


def sample(n, rotate):
    ys = rng.integers(0, NC, n)
    xs = []
    for y in ys:
        img = templates[y]
        if rotate:
            img = np.rot90(img, int(rng.integers(4)))
        xs.append(img + 0.1 * rng.standard_normal((S, S)))
    return torch.from_numpy(np.stack(xs)[:, None].astype(np.float32)), torch.from_numpy(ys)


Xtr, Ytr = sample(24, rotate=False)
Xte, Yte = sample(24, rotate=True)


class LiftConv(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        w = torch.stack([torch.rot90(self.weight, r, dims=(-2, -1)) for r in range(4)], dim=1)
        w = w.reshape(-1, *self.weight.shape[1:])  # (cout * 4, cin, k, k)
        y = F.conv2d(x, w, self.bias.repeat_interleave(4), padding=self.weight.shape[-1] // 2)
        return y.view(x.size(0), -1, 4, *y.shape[-2:])  # (B, cout, 4, H, W)


class GroupConv(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 4, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x):  # x: (B, cin, 4, H, W)
        ws = []
        for r in range(4):
            w = torch.rot90(self.weight, r, dims=(-2, -1))
            ws.append(torch.roll(w, shifts=r, dims=2))
        w = torch.stack(ws, dim=1)  # (cout, 4, cin, 4, k, k)
        cout, _, cin = w.shape[:3]
        w = w.reshape(cout * 4, cin * 4, *w.shape[-2:])
        y = F.conv2d(x.flatten(1, 2), w, self.bias.repeat_interleave(4), padding=w.shape[-1] // 2)
        return y.view(x.size(0), cout, 4, *y.shape[-2:])


class P4CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.lift = LiftConv(1, 4, 3)
        self.g1 = GroupConv(4, 4, 3)
        self.fc = nn.Linear(4, NC)

    def features(self, x):
        x = F.relu(self.lift(x))
        return F.relu(self.g1(x))

    def forward(self, x):
        f = self.features(x)
        f = f.amax(dim=2)  # group max-pool: rotation invariant
        return self.fc(f.mean((-2, -1)))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, NC)

    def forward(self, x):
        return self.fc(F.relu(self.c2(F.relu(self.c1(x)))).mean((-2, -1)))


def init(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))


out = {}
for name in ("p4", "cnn_aug"):
    model = P4CNN() if name == "p4" else CNN()
    init(model)
    steps = 12
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=2e-2, total_steps=steps, anneal_strategy="linear"
    )
    losses = []
    for step in range(steps):
        x = Xtr
        if name == "cnn_aug":
            k = int(rng.integers(4))
            x = torch.rot90(Xtr, k, dims=(2, 3))
        loss = F.cross_entropy(model(x), Ytr, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    with torch.no_grad():
        acc = (model(Xte).argmax(1) == Yte).float().mean().item()
    out[name] = dict(losses=losses, test_acc=acc)

model = P4CNN()
init(model)
with torch.no_grad():
    x = Xtr[:2]
    f = model.features(x)
    f_rot = model.features(torch.rot90(x, 1, dims=(-2, -1)))
    expected = torch.roll(torch.rot90(f, 1, dims=(-2, -1)), shifts=1, dims=2)
    inv = (model(x) - model(torch.rot90(x, 1, dims=(-2, -1)))).abs().max().item()
out["equivariance_err_small"] = (f_rot - expected).abs().max().item() < 1e-5
out["invariance_err_small"] = inv < 1e-5
out["feature_shape"] = list(f.shape)
out["feature_sums"] = f.sum((0, 1, 3, 4)).tolist()
report(**out)
