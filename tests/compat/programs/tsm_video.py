# Video classification with the Temporal Shift Module (Lin et al. 2019) as mit-han-lab/
# temporal-shift-module writes it: frames folded into the batch (view(n_batch, n_segment, c, h, w)),
# 1/8 of the channels shifted back and forward in time by slice assignment into zeros_like, the
# shift wrapped around a residual block's first conv, TSN's average consensus over segments;
# a Non-local block (embedded Gaussian, zero-initialised output BatchNorm) on (B, C, T, H, W)
# beside a Conv3d stem; nn.Unflatten / movedim / flatten(0, 1) reshapes; SGD with Nesterov
# momentum and per-group lr (10x on the new head), and an EMA of the weights by
# torch.optim.swa_utils.AveragedModel(multi_avg_fn=get_ema_multi_avg_fn(0.9)) with
# use_buffers=True, plus swa_utils.update_bn on a plain AveragedModel over a DataLoader.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, update_bn
from torch.utils.data import DataLoader, TensorDataset

rng = np.random.default_rng(73)
B, T, C, HW, NC = 6, 4, 3, 8, 3
labels = rng.integers(0, NC, B)
vids = np.zeros((B, T, C, HW, HW), np.float32)
for b in range(B):
    for t in range(T):
        pos = (t * (labels[b] + 1)) % HW  # the class decides how fast a bar moves
        vids[b, t, :, :, pos] = 1.0
vids += 0.1 * rng.standard_normal(vids.shape).astype(np.float32)
X = torch.from_numpy(vids)
Y = torch.from_numpy(labels)


class TemporalShift(nn.Module):
    def __init__(self, net, n_segment=T, n_div=8):
        super().__init__()
        self.net, self.n_segment, self.fold_div = net, n_segment, n_div

    def forward(self, x):
        return self.net(self.shift(x, self.n_segment, self.fold_div))

    @staticmethod
    def shift(x, n_segment, fold_div):
        nt, c, h, w = x.size()
        n_batch = nt // n_segment
        x = x.view(n_batch, n_segment, c, h, w)
        fold = c // fold_div
        out = torch.zeros_like(x)
        out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left
        out[:, 1:, fold : 2 * fold] = x[:, :-1, fold : 2 * fold]  # shift right
        out[:, :, 2 * fold :] = x[:, :, 2 * fold :]  # not shift
        return out.view(nt, c, h, w)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = TemporalShift(nn.Conv2d(c, c, 3, padding=1, bias=False))
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(out)))


class NonLocal(nn.Module):
    def __init__(self, c, inter):
        super().__init__()
        self.g = nn.Conv3d(c, inter, 1)
        self.theta = nn.Conv3d(c, inter, 1)
        self.phi = nn.Conv3d(c, inter, 1)
        self.W = nn.Sequential(nn.Conv3d(inter, c, 1), nn.BatchNorm3d(c))
        self.inter = inter

    def forward(self, x):
        b = x.size(0)
        g_x = self.g(x).view(b, self.inter, -1).permute(0, 2, 1)
        th = self.theta(x).view(b, self.inter, -1).permute(0, 2, 1)
        ph = self.phi(x).view(b, self.inter, -1)
        f = F.softmax(torch.matmul(th, ph), dim=-1)
        y = torch.matmul(f, g_x).permute(0, 2, 1).contiguous().view(b, self.inter, *x.size()[2:])
        return self.W(y) + x


class TSM(nn.Module):
    def __init__(self, width=16):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(C, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.block = Block(width)
        self.unflat = nn.Unflatten(0, (-1, T))
        self.nl = NonLocal(width, 8)
        self.fc = nn.Linear(width, NC)

    def forward(self, x):  # (B, T, C, H, W)
        x = self.block(self.stem(x.flatten(0, 1)))  # (B*T, w, H, W)
        x = self.unflat(x).movedim(1, 2)  # (B, w, T, H, W)
        x = self.nl(x)
        x = F.adaptive_avg_pool3d(x, (T, 1, 1)).flatten(2)  # (B, w, T)
        logits = self.fc(x.transpose(1, 2))  # per segment
        return logits.mean(1)  # TSN average consensus


model = TSM()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
    nn.init.zeros_(model.nl.W[1].weight)  # the non-local block starts as the identity
    nn.init.zeros_(model.nl.W[1].bias)
ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
head = list(model.fc.parameters())
head_ids = {id(p) for p in head}
base = [p for p in model.parameters() if id(p) not in head_ids]
opt = torch.optim.SGD(
    [{"params": base, "lr": 0.01}, {"params": head, "lr": 0.1}],
    momentum=0.9,
    nesterov=True,
    weight_decay=5e-4,
)
losses = []
for step in range(8):
    model.train()
    loss = F.cross_entropy(model(X), Y)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 20)
    opt.step()
    ema.update_parameters(model)
    losses.append(loss.item())

model.eval()
ema.eval()
with torch.no_grad():
    logits = model(X)
    ema_logits = ema(X)

swa = AveragedModel(model)
swa.update_parameters(model)
loader = DataLoader(TensorDataset(X), batch_size=3)
update_bn(loader, swa)
swa.eval()
with torch.no_grad():
    swa_logits = swa(X)

shifted = TemporalShift.shift(
    torch.arange(2 * T * 16, dtype=torch.float32).view(2 * T, 16, 1, 1), T, 8
)
report(
    losses=losses,
    logits=logits.flatten().tolist(),
    ema_logits=ema_logits.flatten().tolist(),
    ema_n=int(ema.n_averaged),
    swa_logits=swa_logits.flatten().tolist(),
    bn_mean=swa.module.stem[1].running_mean[:4].tolist(),
    shift=shifted.view(2, T, 16)[0, :, :4].tolist(),
    nl_w=model.nl.W[1].weight[:4].tolist(),
)
