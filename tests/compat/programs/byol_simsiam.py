# BYOL and SimSiam as lucidrains' byol-pytorch and facebookresearch/simsiam write them (our own
# condensed rewrite): augmentations by hand on tensors (random resized crops by affine_grid +
# grid_sample with NumPy-drawn boxes, horizontal flips by torch.where on a per-sample mask, colour
# jitter by per-channel scale and shift, Gaussian blur by a separable grouped conv2d), a
# NetWrapper that grabs the backbone's hidden layer through a forward hook (register_forward_hook
# storing output.flatten(1)), projector and predictor MLPs with BatchNorm1d, BYOL's loss 2 - 2
# cos by F.normalize(dim=-1, p=2) and a symmetric sum, the target network as a deepcopy with
# requires_grad False updated by an EMA (update_moving_average with a cosine-scheduled beta from
# 0.99 to 1) through zip(ma_model.parameters(), current_model.parameters()) and .data
# assignment, SimSiam's negative cosine similarity by F.cosine_similarity(p, z.detach(),
# dim=-1).mean() with a predictor whose lr is fixed (param group with 'fix_lr') under a cosine
# schedule applied by hand, SGD with momentum and weight decay; a k-NN monitor on the features
# (cosine similarities, topk, weighted votes by exp(sim / t) and scatter_add_ of one-hots).
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2215)
N, CLASSES = 32, 4


def augment(x):
    b = x.shape[0]
    scale = rng.uniform(0.6, 1.0, b)
    tx, ty = rng.uniform(-1, 1, b) * (1 - scale), rng.uniform(-1, 1, b) * (1 - scale)
    theta = np.zeros((b, 2, 3), dtype=np.float32)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = scale, scale, tx, ty
    grid = F.affine_grid(torch.from_numpy(theta), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    flip = torch.from_numpy(rng.uniform(size=b) < 0.5).view(-1, 1, 1, 1)
    x = torch.where(flip, x.flip(3), x)
    s = torch.from_numpy(rng.uniform(0.8, 1.2, (b, 3, 1, 1)).astype(np.float32))
    t = torch.from_numpy(rng.uniform(-0.1, 0.1, (b, 3, 1, 1)).astype(np.float32))
    x = x * s + t
    k = torch.tensor([0.25, 0.5, 0.25])
    x = F.conv2d(
        F.pad(x, (1, 1, 0, 0), mode="reflect"), k.view(1, 1, 1, 3).repeat(3, 1, 1, 1), groups=3
    )
    x = F.conv2d(
        F.pad(x, (0, 0, 1, 1), mode="reflect"), k.view(1, 1, 3, 1).repeat(3, 1, 1, 1), groups=3
    )
    return x


def MLP(dim, projection_size, hidden_size=32):
    return nn.Sequential(
        nn.Linear(dim, hidden_size),
        nn.BatchNorm1d(hidden_size),
        nn.ReLU(inplace=True),
        nn.Linear(hidden_size, projection_size),
    )


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.avgpool(self.features(x)).flatten(1))


class NetWrapper(nn.Module):
    def __init__(self, net, projection_size, layer="avgpool"):
        super().__init__()
        self.net = net
        self.layer = layer
        self.projector = MLP(16, projection_size)
        self.hidden = {}
        self.hook_registered = False

    def _hook(self, _, input, output):
        self.hidden[output.device] = output.flatten(1)

    def _register_hook(self):
        layer = dict([*self.net.named_modules()])[self.layer]
        layer.register_forward_hook(self._hook)
        self.hook_registered = True

    def get_representation(self, x):
        if not self.hook_registered:
            self._register_hook()
        self.hidden.clear()
        _ = self.net(x)
        hidden = self.hidden[x.device]
        self.hidden.clear()
        return hidden

    def forward(self, x, return_projection=True):
        representation = self.get_representation(x)
        if not return_projection:
            return representation
        return self.projector(representation), representation


def loss_fn(x, y):
    x = F.normalize(x, dim=-1, p=2)
    y = F.normalize(y, dim=-1, p=2)
    return 2 - 2 * (x * y).sum(dim=-1)


def update_moving_average(beta, ma_model, current_model):
    for current_params, ma_params in zip(current_model.parameters(), ma_model.parameters()):
        old_weight, up_weight = ma_params.data, current_params.data
        ma_params.data = old_weight * beta + (1 - beta) * up_weight


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return m


labels = rng.integers(0, CLASSES, N)
base = np.stack(
    [
        np.sin((c + 1) * np.linspace(0, 3, 16))[None, :]
        * np.cos((c + 1) * np.linspace(0, 3, 16))[:, None]
        for c in range(CLASSES)
    ]
)
imgs = torch.from_numpy(
    (
        base[labels][:, None].repeat(3, 1) * np.array([1.0, 0.5, -0.5])[None, :, None, None]
        + 0.1 * rng.standard_normal((N, 3, 16, 16))
    ).astype(np.float32)
)

# BYOL
online = load(NetWrapper(Backbone(), 8))
predictor = load(MLP(8, 8))
target = copy.deepcopy(online)
for p in target.parameters():
    p.requires_grad = False
opt = torch.optim.SGD(
    list(online.parameters()) + list(predictor.parameters()),
    lr=0.05,
    momentum=0.9,
    weight_decay=1e-4,
)
byol_losses, total_steps = [], 6
for step in range(total_steps):
    x = imgs[(step % 2) * 16 : (step % 2) * 16 + 16]
    one, two = augment(x), augment(x)
    online_pred_one = predictor(online(one)[0])
    online_pred_two = predictor(online(two)[0])
    with torch.no_grad():
        target_proj_one = target(one)[0].detach()
        target_proj_two = target(two)[0].detach()
    loss = (
        loss_fn(online_pred_one, target_proj_two) + loss_fn(online_pred_two, target_proj_one)
    ).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    beta = 1 - (1 - 0.99) * (math.cos(math.pi * step / total_steps) + 1) / 2
    update_moving_average(beta, target, online)
    byol_losses.append(loss.item())

# SimSiam
encoder = load(NetWrapper(Backbone(), 8))
ss_pred = load(
    nn.Sequential(
        nn.Linear(8, 4, bias=False), nn.BatchNorm1d(4), nn.ReLU(inplace=True), nn.Linear(4, 8)
    )
)
init_lr = 0.05
optimizer = torch.optim.SGD(
    [
        {"params": encoder.parameters(), "fix_lr": False},
        {"params": ss_pred.parameters(), "fix_lr": True},
    ],
    lr=init_lr,
    momentum=0.9,
    weight_decay=1e-4,
)
criterion = nn.CosineSimilarity(dim=1)
ss_losses, lrs = [], []
for epoch in range(3):
    cur_lr = init_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / 3))
    for param_group in optimizer.param_groups:
        param_group["lr"] = init_lr if param_group.get("fix_lr") else cur_lr
    lrs.append([g["lr"] for g in optimizer.param_groups])
    for it in range(2):
        x = imgs[it * 16 : (it + 1) * 16]
        x1, x2 = augment(x), augment(x)
        z1, z2 = encoder(x1)[0], encoder(x2)[0]
        p1, p2 = ss_pred(z1), ss_pred(z2)
        loss = -(criterion(p1, z2.detach()).mean() + criterion(p2, z1.detach()).mean()) * 0.5
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ss_losses.append(loss.item())

# k-NN monitor on the BYOL online encoder
online.eval()
with torch.no_grad():
    feats = F.normalize(online(imgs, return_projection=False), dim=1)
    bank, bank_labels = feats[:24], torch.from_numpy(labels[:24])
    query = feats[24:]
    sim = query @ bank.T
    sim_weight, sim_indices = sim.topk(k=5, dim=-1)
    sim_labels = torch.gather(bank_labels.expand(query.size(0), -1), dim=-1, index=sim_indices)
    sim_weight = (sim_weight / 0.1).exp()
    one_hot_label = torch.zeros(query.size(0) * 5, CLASSES).scatter_(
        dim=-1, index=sim_labels.view(-1, 1), value=1.0
    )
    pred_scores = torch.sum(
        one_hot_label.view(query.size(0), -1, CLASSES) * sim_weight.unsqueeze(dim=-1), dim=1
    )
    pred = pred_scores.argsort(dim=-1, descending=True)[:, 0]
report(
    byol=byol_losses,
    simsiam=ss_losses,
    lrs=lrs,
    knn_pred=pred.tolist(),
    knn_acc=float((pred == torch.from_numpy(labels[24:])).float().mean()),
    target_w=target.projector[0].weight.flatten()[:4].tolist(),
    pred_scores=pred_scores[:2].tolist(),
)
