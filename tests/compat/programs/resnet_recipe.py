# A small ResNet trained with the recipe image-classification repositories use: BasicBlocks
# with BatchNorm and a downsampling shortcut, channels_last, SGD Nesterov with weight decay on
# the matrices only (param groups), warmup then cosine (SequentialLR), label smoothing, mixup,
# gradient accumulation, reflect-padding + crop + flip augmentation done with tensor ops, an EMA
# of the state_dict in timm's ModelEmaV2 way (integer buffers included), top-k accuracy under
# inference_mode, and a checkpoint saved and loaded back. Our own program; data made with NumPy.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
torch.backends.cudnn.benchmark = True  # a flag GPU recipes set; nothing to do on the CPU

# The data seed: with 11, a BatchNorm output 1.8e-7 from zero (float64) at step 7 took either
# side of its ReLU by float32 rounding, and PyTorch itself (two threads, or mkldnn off) then
# differed from its default run by 3e-4. With 69 no pre-ReLU value of the 12 steps lies within
# 2.7e-6 of zero (float64; float32 errors there: median 3e-7, worst 6e-6 in PyTorch).
rng = np.random.default_rng(69)
n_classes, n_train, n_val = 5, 96, 40
protos = rng.standard_normal((n_classes, 3, 12, 12)).astype(np.float32)
labels = rng.integers(0, n_classes, n_train + n_val)
images = protos[labels] + 0.8 * rng.standard_normal((n_train + n_val, 3, 12, 12)).astype(np.float32)
x_train, y_train = torch.from_numpy(images[:n_train]), torch.from_numpy(labels[:n_train])
x_val, y_val = torch.from_numpy(images[n_train:]), torch.from_numpy(labels[n_train:])
flip_mask = torch.from_numpy(rng.random(n_train) < 0.5)
shifts = rng.integers(0, 5, (n_train, 2))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    def __init__(self, widths=(8, 16), num_classes=5):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        )
        layers, c_in = [], widths[0]
        for i, w in enumerate(widths):
            layers.append(BasicBlock(c_in, w, stride=1 if i == 0 else 2))
            c_in = w
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


model = ResNet(num_classes=n_classes).to(memory_format=torch.channels_last)
load_reference(model)
ema = copy.deepcopy(model).eval()
for p in ema.parameters():
    p.requires_grad_(False)

decay, no_decay = [], []
for name, p in model.named_parameters():
    (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
optimizer = torch.optim.SGD(
    [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
    lr=0.05, momentum=0.9, nesterov=True,
)  # fmt: skip
warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.2, total_iters=3)
cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=9, eta_min=1e-4)
scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[3])
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)


def augment(x, idx):
    """Reflect-pad by 2, crop back to 12x12 at a per-image offset, flip half the images."""
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    crops = [x[j, :, s0 : s0 + 12, s1 : s1 + 12] for j, (s0, s1) in enumerate(shifts[idx.numpy()])]
    x = torch.stack(crops)
    flip = flip_mask[idx].view(-1, 1, 1, 1)
    return torch.where(flip, x.flip(dims=[3]), x)


@torch.no_grad()
def ema_update(ema_model, model, decay=0.9):
    for ema_v, model_v in zip(ema_model.state_dict().values(), model.state_dict().values()):
        ema_v.copy_(ema_v * decay + (1.0 - decay) * model_v)


def evaluate(net):
    net.eval()
    with torch.inference_mode():
        logits = net(x_val.contiguous(memory_format=torch.channels_last))
        loss = F.cross_entropy(logits, y_val).item()
        _, pred = logits.topk(2, 1, True, True)
        correct = pred.t().eq(y_val.view(1, -1).expand_as(pred.t()))
        top1 = correct[:1].reshape(-1).float().sum(0).item() / len(y_val)
        top2 = correct[:2].reshape(-1).float().sum(0).item() / len(y_val)
    return loss, top1, top2


losses, lrs, grad_norms = [], [], []
accum, micro, lam = 2, 16, 0.7
order = torch.arange(n_train)
for epoch in range(4):
    model.train()
    for start in range(0, n_train, accum * micro):
        optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for k in range(accum):
            idx = order[start + k * micro : start + (k + 1) * micro]
            xb = augment(x_train[idx], idx).contiguous(memory_format=torch.channels_last)
            yb = y_train[idx]
            xb = lam * xb + (1 - lam) * xb.flip(0)  # mixup with the reversed batch
            out = model(xb)
            loss = lam * criterion(out, yb) + (1 - lam) * criterion(out, yb.flip(0))
            (loss / accum).backward()
            step_loss += loss.item() / accum
        total = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        optimizer.step()
        scheduler.step()
        ema_update(ema, model)
        losses.append(step_loss)
        grad_norms.append(float(total))
        lrs.append(scheduler.get_last_lr()[0])
    print(f"epoch {epoch}  loss {losses[-1]:.4f}  lr {lrs[-1]:.5f}")

val_loss, top1, top2 = evaluate(model)
ema_loss, ema_top1, _ = evaluate(ema)

torch.save({"model": model.state_dict(), "epoch": 4}, "ckpt.pt")
ckpt = torch.load("ckpt.pt")
restored = ResNet(num_classes=n_classes)
restored.load_state_dict(ckpt["model"])
restored.eval()
with torch.no_grad():
    # channels_last and contiguous convolutions may round differently: close, not equal
    same = torch.allclose(restored(x_val), model(x_val), rtol=1e-5, atol=1e-6)
    bn = model.layers[1].bn2

report(
    losses=losses,
    lrs=lrs,
    grad_norms=grad_norms,
    val_loss=val_loss,
    top1=top1,
    top2=top2,
    ema_loss=ema_loss,
    ema_top1=ema_top1,
    restored_equal=bool(same),
    epoch=int(ckpt["epoch"]),
    running_mean=bn.running_mean.tolist(),
    running_var=bn.running_var.tolist(),
    batches_tracked=int(bn.num_batches_tracked),
    ema_batches_tracked=int(ema.layers[1].bn2.num_batches_tracked),
)
