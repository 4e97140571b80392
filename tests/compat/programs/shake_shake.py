# Shake-Shake regularisation (Gastaldi 2017) and ShakeDrop (Yamada 2018) as the CIFAR
# re-implementations write them: a torch.autograd.Function whose forward mixes two residual
# branches by alpha and whose backward mixes their gradients by an independent beta
# (ctx.save_for_backward of the random coefficients, drawn here from NumPy so both libraries
# draw the same), eval mode averaging by 0.5; ShakeDrop's Function with a Bernoulli gate and
# alpha / beta ranges; a small Shake-Shake ResNet (BatchNorm, a Shortcut of two strided 1x1
# convs on shifted inputs via F.pad, concatenated), cutout by index assignment on a mask,
# SGD(nesterov) with cosine annealing; the custom backward is checked by gradcheck in float64
# against the identity it should reduce to when alpha = beta.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(17)


class ShakeShake(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x1, x2, alpha, beta, training=True):
        ctx.save_for_backward(beta)
        if training:
            return alpha * x1 + (1 - alpha) * x2
        return 0.5 * (x1 + x2)

    @staticmethod
    def backward(ctx, grad_output):
        (beta,) = ctx.saved_tensors
        return beta * grad_output, (1 - beta) * grad_output, None, None, None


class ShakeDrop(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, gate, alpha, beta, p_drop=0.5, training=True):
        if training:
            ctx.save_for_backward(gate, beta)
            return x * (gate + (1 - gate) * alpha)
        return (1 - p_drop) * x

    @staticmethod
    def backward(ctx, grad_output):
        gate, beta = ctx.saved_tensors
        return grad_output * (gate + (1 - gate) * beta), None, None, None, None, None


def rand_coef(batch):
    return torch.from_numpy(rng.uniform(0, 1, (batch, 1, 1, 1)).astype(np.float32))


class ShakeBlock(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.equal_io = in_ch == out_ch
        self.shortcut = None if self.equal_io else Shortcut(in_ch, out_ch, stride=stride)
        self.branch1 = self._make_branch(in_ch, out_ch, stride)
        self.branch2 = self._make_branch(in_ch, out_ch, stride)

    def forward(self, x):
        h1 = self.branch1(x)
        h2 = self.branch2(x)
        b = x.size(0)
        h = ShakeShake.apply(h1, h2, rand_coef(b), rand_coef(b), self.training)
        h0 = x if self.equal_io else self.shortcut(x)
        return h + h0

    def _make_branch(self, in_ch, out_ch, stride=1):
        return nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(in_ch, out_ch, 3, padding=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=False),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, stride=1, bias=False),
            nn.BatchNorm2d(out_ch),
        )


class Shortcut(nn.Module):
    def __init__(self, in_ch, out_ch, stride):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_ch, out_ch // 2, 1, stride=1, padding=0, bias=False)
        self.conv2 = nn.Conv2d(in_ch, out_ch // 2, 1, stride=1, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(out_ch)

    def forward(self, x):
        h = F.relu(x)
        h1 = F.avg_pool2d(h, 1, self.stride)
        h1 = self.conv1(h1)
        h2 = F.avg_pool2d(F.pad(h, (-1, 1, -1, 1)), 1, self.stride)
        h2 = self.conv2(h2)
        h = torch.cat((h1, h2), 1)
        return self.bn(h)


class ShakeResNet(nn.Module):
    def __init__(self, w=8, label=4):
        super().__init__()
        self.c_in = nn.Conv2d(3, w, 3, padding=1)
        self.layer1 = ShakeBlock(w, w)
        self.layer2 = ShakeBlock(w, 2 * w, stride=2)
        self.fc_out = nn.Linear(2 * w, label)

    def forward(self, x):
        h = self.c_in(x)
        h = self.layer2(self.layer1(h))
        h = F.relu(h)
        h = F.adaptive_avg_pool2d(h, 1).view(h.size(0), -1)
        return self.fc_out(h)


def cutout(img, length=4):
    h, w = img.size(1), img.size(2)
    mask = np.ones((h, w), np.float32)
    y, x = rng.integers(h), rng.integers(w)
    y1, y2 = np.clip(y - length // 2, 0, h), np.clip(y + length // 2, 0, h)
    x1, x2 = np.clip(x - length // 2, 0, w), np.clip(x + length // 2, 0, w)
    mask[y1:y2, x1:x2] = 0.0
    mask = torch.from_numpy(mask).expand_as(img)
    return img * mask


results = {}
X = torch.from_numpy(rng.standard_normal((12, 3, 8, 8)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 4, 12))
model = ShakeResNet()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
losses, lrs = [], []
for epoch in range(8):
    model.train()
    xb = torch.stack([cutout(img) for img in X])
    loss = F.cross_entropy(model(xb), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(opt.param_groups[0]["lr"])
results["losses"] = losses
results["lrs"] = lrs
model.eval()
with torch.no_grad():
    results["eval_logits"] = model(X[:3]).flatten().tolist()
    results["running_var"] = model.layer2.shortcut.bn.running_var[:4].tolist()

# ShakeDrop on a residual branch, and its gradient
x = torch.from_numpy(rng.standard_normal((6, 4, 3, 3)).astype(np.float32)).requires_grad_(True)
gate = torch.from_numpy(rng.binomial(1, 0.5, (6, 1, 1, 1)).astype(np.float32))
alpha = torch.from_numpy(rng.uniform(-1, 1, (6, 1, 1, 1)).astype(np.float32))
beta = torch.from_numpy(rng.uniform(0, 1, (6, 1, 1, 1)).astype(np.float32))
out = ShakeDrop.apply(x, gate, alpha, beta)
(out * torch.arange(4.0).view(1, 4, 1, 1)).sum().backward()
results["shakedrop_out"] = out.sum().item()
results["shakedrop_grad"] = x.grad.sum((1, 2, 3)).tolist()

# with alpha == beta the custom backward is the true derivative: gradcheck in float64
a64 = torch.from_numpy(rng.uniform(0, 1, (2, 1, 1, 1)))
x1 = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
x2 = torch.randn(2, 3, 2, 2, dtype=torch.float64, requires_grad=True)
results["gradcheck"] = torch.autograd.gradcheck(
    lambda u, v: ShakeShake.apply(u, v, a64, a64, True), (x1, x2)
)
report(**results)
