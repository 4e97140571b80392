# The set-up and bookkeeping lines that real training scripts carry around the model, in the
# shape of pytorch/examples, Lightning-free research repos and HuggingFace-style trainers:
# device selection (cuda / mps / cpu), cudnn and TF32 switches, set_float32_matmul_precision,
# use_deterministic_algorithms, seeding helpers (random, numpy, torch.manual_seed,
# cuda.manual_seed_all), RNG state save / restore (get_rng_state / set_rng_state, fork_rng,
# a torch.Generator for randperm), torch.compile behind a flag, model.to(device) and
# non_blocking copies, parameter counting, checkpoints with model / optimizer / scheduler /
# epoch saved by torch.save to a file and restored with torch.load(map_location=...,
# weights_only=True), load_state_dict(strict=False) with its missing / unexpected keys,
# requires_grad_(False) freezing, inference_mode, torch.autocast(enabled=False) and a disabled
# GradScaler, and torch.save / torch.load of a plain dict of tensors through io.BytesIO.
import io
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report


def seed_everything(seed: int):
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


seed_everything(42)
if torch.cuda.is_available():
    device = torch.device("cuda")
elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
    device = torch.device("mps")
else:
    device = torch.device("cpu")
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.set_float32_matmul_precision("high")
torch.use_deterministic_algorithms(True, warn_only=True)
torch.set_num_threads(1)
use_amp = device.type == "cuda"
compile_model = False

# RNG state: a draw repeated after restoring the state is the same draw
state = torch.get_rng_state()
a = torch.rand(3)
torch.set_rng_state(state)
b = torch.rand(3)
with torch.random.fork_rng():
    torch.rand(5)  # does not advance the outer generator
c = torch.rand(3)
torch.set_rng_state(state)
torch.rand(3)
d = torch.rand(3)
g = torch.Generator().manual_seed(7)
perm1 = torch.randperm(10, generator=g)
g.manual_seed(7)
perm2 = torch.randperm(10, generator=g)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.backbone(x))


model = Net()
W = reference_weights(model)
model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
model = model.to(device)
if compile_model:
    model = torch.compile(model)
n_params = sum(p.numel() for p in model.parameters())
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

rng = np.random.default_rng(59)
X = torch.from_numpy(rng.standard_normal((64, 5)).astype(np.float32))
Y = torch.from_numpy((X.numpy() @ rng.standard_normal((5, 3))).argmax(1))
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
scaler = torch.amp.GradScaler("cuda", enabled=use_amp)


def train_epoch(model, epoch):
    model.train()
    total = 0.0
    for i in range(0, 64, 16):
        xb = X[i : i + 16].to(device, non_blocking=True)
        yb = Y[i : i + 16].to(device, non_blocking=True)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            loss = F.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        total += loss.item() * xb.size(0)
    scheduler.step()
    return total / 64


@torch.inference_mode()
def evaluate(model):
    model.eval()
    logits = model(X.to(device))
    return (logits.argmax(1) == Y).float().mean().item(), F.cross_entropy(logits, Y).item()


history = []
for epoch in range(3):
    history.append([train_epoch(model, epoch), *evaluate(model)])

# checkpoint to a file, then resume into fresh objects
ckpt_path = "checkpoint.pt"
torch.save(
    {
        "epoch": 3,
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": optimizer.state_dict(),
        "scheduler_state_dict": scheduler.state_dict(),
        "history": history,
    },
    ckpt_path,
)
checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
model2 = Net()
model2.load_state_dict(checkpoint["model_state_dict"])
optimizer2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
optimizer2.load_state_dict(checkpoint["optimizer_state_dict"])
scheduler2 = torch.optim.lr_scheduler.ExponentialLR(optimizer2, gamma=0.9)
scheduler2.load_state_dict(checkpoint["scheduler_state_dict"])
model, optimizer, scheduler = model2, optimizer2, scheduler2
resumed = [train_epoch(model, epoch) for epoch in range(checkpoint["epoch"], 5)]


# transfer: a new head, a backbone loaded non-strictly and frozen
class Finetune(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
        self.classifier = nn.Linear(16, 2)


ft = Finetune()
result = ft.load_state_dict(model.state_dict(), strict=False)
for p in ft.backbone.parameters():
    p.requires_grad_(False)
frozen_trainable = sum(p.numel() for p in ft.parameters() if p.requires_grad)
same_backbone = all(
    torch.equal(p, q) for p, q in zip(ft.backbone.parameters(), model.backbone.parameters())
)

buffer = io.BytesIO()
torch.save({"w": model.head.weight.detach(), "step": torch.tensor(5)}, buffer)
buffer.seek(0)
loaded = torch.load(buffer, weights_only=True)
report(
    device=device.type,
    rng_repeat=torch.equal(a, b) and torch.equal(c, d),
    random_draw=a.tolist(),
    perm_repeat=torch.equal(perm1, perm2),
    random_perm=perm1.tolist(),
    n_params=n_params,
    n_trainable=n_trainable,
    history=history,
    resumed=resumed,
    lr=scheduler.get_last_lr()[0],
    missing=sorted(result.missing_keys),
    unexpected=sorted(result.unexpected_keys),
    frozen_trainable=frozen_trainable,
    same_backbone=same_backbone,
    loaded=[loaded["w"].sum().item(), loaded["step"].item(), loaded["step"].dtype == torch.int64],
    ckpt_epoch=checkpoint["epoch"],
    ckpt_history=checkpoint["history"],
)
