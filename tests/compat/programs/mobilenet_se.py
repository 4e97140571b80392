# A MobileNetV2 / EfficientNet-style image classifier in the shape of torchvision's model code and
# its classification reference recipe (our own rewrite, no torchvision): inverted residuals with
# depthwise convolutions (groups=), squeeze-and-excitation by adaptive pooling and 1x1 convs,
# ReLU6 / SiLU / Hardswish / Hardsigmoid, stochastic depth, FLOPs counted by forward hooks,
# parameter groups without weight decay for norms and biases, label smoothing, nesterov SGD
# under a ChainedScheduler, gradient clipping, an EMA model (swa_utils.AveragedModel), knowledge
# distillation from a frozen teacher, and the imagenet example's top-k accuracy(). Data: generated
# 16x16 RGB "textures", one frequency pattern per class, made with NumPy.
import copy
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.optim.lr_scheduler import ChainedScheduler, ExponentialLR, LinearLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, TensorDataset


def _make_divisible(v, divisor=8, min_value=None):
    if min_value is None:
        min_value = divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def stochastic_depth(x, p, mode, training):
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device)
    noise = noise.bernoulli_(survival)
    if survival > 0.0:
        noise.div_(survival)
    return x * noise


class ConvBNAct(nn.Sequential):
    def __init__(self, cin, cout, k=3, stride=1, groups=1, act=nn.ReLU6):
        padding = (k - 1) // 2
        layers = [
            nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
        ]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)
        self.out_channels = cout


class SqueezeExcitation(nn.Module):
    def __init__(self, cin, squeeze, act=nn.SiLU, scale_act=nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(cin, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, cin, 1)
        self.activation = act()
        self.scale_activation = scale_act()

    def _scale(self, x):
        s = self.avgpool(x)
        s = self.fc1(s)
        s = self.activation(s)
        s = self.fc2(s)
        return self.scale_activation(s)

    def forward(self, x):
        return self._scale(x) * x


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, se=False, act=nn.ReLU6, sd_prob=0.0):
        super().__init__()
        assert stride in (1, 2)
        hidden = int(round(cin * expand))
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != 1:
            layers.append(ConvBNAct(cin, hidden, k=1, act=act))
        layers.append(ConvBNAct(hidden, hidden, stride=stride, groups=hidden, act=act))
        if se:
            layers.append(SqueezeExcitation(hidden, _make_divisible(hidden // 4),
                                            scale_act=nn.Hardsigmoid))
        layers.append(ConvBNAct(hidden, cout, k=1, act=None))
        self.block = nn.Sequential(*layers)
        self.sd_prob = sd_prob

    def forward(self, x):
        if self.use_res:
            return x + stochastic_depth(self.block(x), self.sd_prob, "row", self.training)
        return self.block(x)


class TinyMobileNet(nn.Module):
    def __init__(self, num_classes=6, width_mult=1.0, dropout=0.2, sd_rate=0.2):
        super().__init__()
        first = _make_divisible(16 * width_mult)
        setting = [  # expand, channels, repeats, stride, se, activation
            (1, 16, 1, 1, False, nn.ReLU6),
            (4, 24, 2, 2, True, nn.Hardswish),
            (6, 32, 2, 2, True, nn.SiLU),
        ]
        total = sum(r for _, _, r, _, _, _ in setting)
        features = [ConvBNAct(3, first, stride=1, act=nn.Hardswish)]
        cin, block_id = first, 0
        for t, c, n, s, se, act in setting:
            cout = _make_divisible(c * width_mult)
            for i in range(n):
                sd = sd_rate * block_id / total
                features.append(InvertedResidual(cin, cout, s if i == 0 else 1, t, se, act, sd))
                cin, block_id = cout, block_id + 1
        last = _make_divisible(64 * width_mult)
        features.append(ConvBNAct(cin, last, k=1, act=nn.Hardswish))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(
            nn.Linear(last, 48), nn.Hardswish(inplace=True), nn.Dropout(p=dropout, inplace=True),
            nn.Linear(48, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                init_range = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -init_range, init_range)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def make_data(n, seed, classes=6):
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    labels = rng.integers(0, classes, size=n)
    images = np.empty((n, 3, 16, 16))
    for i, c in enumerate(labels):
        fx, fy = 1 + c % 3, 1 + c // 3
        phase = rng.uniform(0, 2 * np.pi, size=(3, 1, 1))
        images[i] = np.sin(2 * np.pi * (fx * xx + fy * yy) / 16 + phase)
    images += 0.5 * rng.standard_normal(images.shape)
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


def accuracy(output, target, topk=(1,)):
    """The imagenet example's accuracy over the k top predictions."""
    with torch.inference_mode():
        maxk = max(topk)
        batch_size = target.size(0)
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target.view(1, -1).expand_as(pred))
        res = []
        for k in topk:
            correct_k = correct[:k].reshape(-1).float().sum(0, keepdim=True)
            res.append(correct_k.mul_(100.0 / batch_size))
        return res


def count_flops(model, shape):
    flops = []

    def conv_hook(m, inp, out):
        kh, kw = m.kernel_size
        flops.append(out.numel() * (m.in_channels // m.groups) * kh * kw)

    def linear_hook(m, inp, out):
        flops.append(inp[0].shape[0] * m.in_features * m.out_features)

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(shape))
    model.train(was_training)
    for h in handles:
        h.remove()
    return int(sum(flops))


def param_groups(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


def train(model, loader, epochs, losses, norms, lrs, ema=None):
    groups = param_groups(model, 4e-5)
    optimizer = torch.optim.SGD(groups, lr=0.05, momentum=0.9, nesterov=True)
    scheduler = ChainedScheduler([LinearLR(optimizer, start_factor=0.2, total_iters=4),
                                  ExponentialLR(optimizer, gamma=0.95)])
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    for _epoch in range(epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad(set_to_none=True)
            out = model(xb)
            loss = criterion(out, yb)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), 2.0, error_if_nonfinite=True)
            optimizer.step()
            if ema is not None:
                ema.update_parameters(model)
            losses.append(loss.item())
            norms.append(float(norm))
        scheduler.step()
        lrs.append([g["lr"] for g in optimizer.param_groups])


def main():
    torch.manual_seed(0)
    x, y = make_data(96, seed=1)
    xv, yv = make_data(48, seed=2)

    # the recipe with its randomness (dropout, stochastic depth, a shuffled loader, kaiming
    # init): the two libraries' generators differ, so these results are compared by shape only
    noisy = TinyMobileNet()
    random_init_std = [float(m.weight.std()) for m in noisy.modules() if isinstance(m, nn.Conv2d)]
    shuffled = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True,
                          generator=torch.Generator().manual_seed(3))
    random_losses, random_norms, random_lrs = [], [], []
    train(noisy, shuffled, 1, random_losses, random_norms, random_lrs)

    # the same recipe made deterministic: reference weights, no dropout or stochastic depth, the
    # loader in order; everything from here on must agree with PyTorch to float32 rounding
    model = TinyMobileNet(dropout=0.0, sd_rate=0.0)
    load_reference(model)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    n_buffers = sum(b.numel() for b in model.buffers())
    flops = count_flops(model, (1, 3, 16, 16))
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True)
    losses, norms, lrs = [], [], []
    train(model, loader, 2, losses, norms, lrs, ema)

    model.eval()
    ema.eval()
    with torch.no_grad():
        out = model(xv)
        top1, top3 = accuracy(out, yv, topk=(1, 3))
        ema_out = ema(xv)
        ema_top1 = accuracy(ema_out, yv)[0]
        val_loss = F.cross_entropy(out, yv).item()

    # distillation: a frozen copy teaches a fresh student
    teacher = copy.deepcopy(model).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = TinyMobileNet(dropout=0.0, sd_rate=0.0)
    Ws = reference_weights(student)
    state = student.state_dict()
    state.update({k: torch.from_numpy(v) for k, v in Ws.items()})
    student.load_state_dict(state)
    s_opt = torch.optim.AdamW(student.parameters(), lr=3e-3, weight_decay=0.05)
    T = 2.0
    kd_losses = []
    for step in range(4):
        xb, yb = x[step * 16:(step + 1) * 16], y[step * 16:(step + 1) * 16]
        with torch.no_grad():
            t_logits = teacher(xb)
        s_logits = student(xb)
        kd = F.kl_div(F.log_softmax(s_logits / T, dim=-1), F.log_softmax(t_logits / T, dim=-1),
                      reduction="batchmean", log_target=True) * (T * T)
        loss = 0.7 * kd + 0.3 * F.cross_entropy(s_logits, yb)
        s_opt.zero_grad()
        loss.backward()
        s_opt.step()
        kd_losses.append(loss.item())

    report(
        n_params=int(n_params), n_buffers=int(n_buffers), flops=flops,
        random_init_std=random_init_std, random_losses=random_losses,
        random_norms=random_norms, random_lrs=random_lrs, losses=losses, norms=norms,
        lrs=lrs, top1=float(top1.item()), top3=float(top3.item()),
        ema_top1=float(ema_top1.item()), val_loss=val_loss,
        kd_losses=kd_losses, n_averaged=int(ema.n_averaged.item()),
    )


if __name__ == "__main__":
    main()
