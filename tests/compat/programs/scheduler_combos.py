# Learning-rate schedules as training scripts combine them: linear warmup then cosine by
# SequentialLR, OneCycleLR (three_phase, linear annealing, momentum cycled into Adam's beta1),
# ReduceLROnPlateau (mode="max" on an accuracy, threshold_mode="abs", cooldown, per-group
# min_lr), CosineAnnealingWarmRestarts stepped with fractional epochs inside the batch loop,
# ChainedScheduler(ExponentialLR, MultiplicativeLR), PolynomialLR, ConstantLR, CyclicLR
# (triangular2), a custom LRScheduler subclass; each one's state_dict saved mid-run and loaded
# into a fresh optimizer + scheduler that must continue with the same rates; get_last_lr.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.optim import lr_scheduler as sched_mod

rng = np.random.default_rng(9)
torch.manual_seed(0)
X = torch.from_numpy(rng.standard_normal((32, 4)).astype(np.float32))
Y = torch.from_numpy((rng.standard_normal((32, 1)) + X.numpy()[:, :1]).astype(np.float32))


def model_and_opt(kind="sgd"):
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    W = reference_weights(m)
    with torch.no_grad():
        for n_, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n_]))
    params = [{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 0.05}]
    if kind == "adam":
        return m, torch.optim.Adam(params, lr=0.01)
    return m, torch.optim.SGD(params, lr=0.1, momentum=0.9)


class WarmupInverseSqrt(sched_mod.LRScheduler):
    def __init__(self, optimizer, warmup, last_epoch=-1):
        self.warmup = warmup
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        s = max(self.last_epoch, 1)
        scale = min(s / self.warmup, (self.warmup / s) ** 0.5)
        return [base * scale for base in self.base_lrs]


def make(name, opt):
    if name == "warmup_cosine":
        warm = sched_mod.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=3)
        cos = sched_mod.CosineAnnealingLR(opt, T_max=9, eta_min=1e-3)
        return sched_mod.SequentialLR(opt, [warm, cos], milestones=[3])
    if name == "onecycle":
        return sched_mod.OneCycleLR(
            opt,
            max_lr=[0.05, 0.02],
            total_steps=12,
            three_phase=True,
            anneal_strategy="linear",
            pct_start=0.25,
        )
    if name == "warm_restarts":
        return sched_mod.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=1e-4)
    if name == "chained":
        return sched_mod.ChainedScheduler(
            [sched_mod.ExponentialLR(opt, 0.9), sched_mod.MultiplicativeLR(opt, lambda e: 0.97)]
        )
    if name == "poly_then_const":
        return sched_mod.SequentialLR(
            opt,
            [
                sched_mod.ConstantLR(opt, factor=0.5, total_iters=2),
                sched_mod.PolynomialLR(opt, total_iters=8, power=2.0),
            ],
            milestones=[4],
        )
    if name == "cyclic":
        return sched_mod.CyclicLR(
            opt, base_lr=[0.01, 0.005], max_lr=[0.1, 0.05], step_size_up=2, mode="triangular2"
        )
    if name == "custom":
        return WarmupInverseSqrt(opt, warmup=4)
    raise ValueError(name)


def run(name, kind, steps, resume_at=None):
    m, opt = model_and_opt(kind)
    s = make(name, opt)
    lrs, losses = [], []
    state = None
    for step in range(steps):
        for b in range(2):
            xb, yb = X[b * 16 : (b + 1) * 16], Y[b * 16 : (b + 1) * 16]
            loss = (m(xb) - yb).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if name == "warm_restarts":
                s.step(step + (b + 1) / 2)
            elif name in ("onecycle", "cyclic"):
                s.step()
        if name not in ("warm_restarts", "onecycle", "cyclic"):
            s.step()
        lrs.append(s.get_last_lr())
        losses.append(loss.item())
        if resume_at is not None and step == resume_at:
            state = {"m": m.state_dict(), "o": opt.state_dict(), "s": s.state_dict()}
            m, opt = model_and_opt(kind)
            s = make(name, opt)
            m.load_state_dict(state["m"])
            opt.load_state_dict(state["o"])
            s.load_state_dict(state["s"])
    return lrs, losses, opt


results = {}
for name, kind, steps in [
    ("warmup_cosine", "sgd", 10),
    ("onecycle", "adam", 6),
    ("warm_restarts", "sgd", 7),
    ("chained", "sgd", 6),
    ("poly_then_const", "sgd", 9),
    ("cyclic", "sgd", 5),
    ("custom", "adam", 8),
]:
    lrs, losses, opt = run(name, kind, steps)
    lrs_r, losses_r, opt_r = run(name, kind, steps, resume_at=steps // 2)
    results[name + "_lrs"] = lrs
    results[name + "_losses"] = losses
    results[name + "_resume_same"] = lrs_r == lrs
    results[name + "_resume_losses"] = losses_r
    if kind == "adam":
        results[name + "_betas"] = [list(g["betas"]) for g in opt.param_groups]
    else:
        results[name + "_momentum"] = [g["momentum"] for g in opt_r.param_groups]

# ReduceLROnPlateau on a validation accuracy (mode max)
m, opt = model_and_opt()
plateau = sched_mod.ReduceLROnPlateau(
    opt,
    mode="max",
    factor=0.5,
    patience=1,
    threshold=0.01,
    threshold_mode="abs",
    cooldown=1,
    min_lr=[0.02, 0.01],
)
accs = [0.5, 0.52, 0.525, 0.52, 0.6, 0.6, 0.6, 0.61, 0.6, 0.6, 0.6, 0.6]
plateau_lrs = []
for acc in accs:
    plateau.step(acc)
    plateau_lrs.append([g["lr"] for g in opt.param_groups])
results["plateau_lrs"] = plateau_lrs
results["plateau_state"] = {
    k: v
    for k, v in plateau.state_dict().items()
    if k in ("best", "num_bad_epochs", "cooldown_counter", "last_epoch")
}
results["plateau_last_lr"] = plateau.get_last_lr()
report(**results)
