# ildoonet/pytorch-gradual-warmup-lr's GradualWarmupScheduler as copied into countless training
# repositories: a _LRScheduler subclass (from torch.optim.lr_scheduler import _LRScheduler)
# with get_lr over self.base_lrs and self.last_epoch, an after_scheduler handed over when the
# warmup ends (after_scheduler.base_lrs rewritten, get_last_lr()), step(epoch, metrics) for a
# ReduceLROnPlateau after-scheduler (step_ReduceLROnPlateau writing param_group['lr'] by hand),
# the deprecated scheduler.step(epoch) form; plus a custom LRScheduler subclass with
# _get_closed_form_lr (a polynomial decay), the lr of each group recorded per step, and
# state_dict / load_state_dict of the custom scheduler resumed mid-run.
import warnings

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau, StepLR, _LRScheduler

warnings.simplefilter("ignore")


class GradualWarmupScheduler(_LRScheduler):
    def __init__(self, optimizer, multiplier, total_epoch, after_scheduler=None):
        self.multiplier = multiplier
        if self.multiplier < 1.0:
            raise ValueError("multiplier should be greater thant or equal to 1.")
        self.total_epoch = total_epoch
        self.after_scheduler = after_scheduler
        self.finished = False
        super(GradualWarmupScheduler, self).__init__(optimizer)

    def get_lr(self):
        if self.last_epoch > self.total_epoch:
            if self.after_scheduler:
                if not self.finished:
                    self.after_scheduler.base_lrs = [
                        base_lr * self.multiplier for base_lr in self.base_lrs
                    ]
                    self.finished = True
                return self.after_scheduler.get_last_lr()
            return [base_lr * self.multiplier for base_lr in self.base_lrs]
        if self.multiplier == 1.0:
            return [
                base_lr * (float(self.last_epoch) / self.total_epoch) for base_lr in self.base_lrs
            ]
        else:
            return [
                base_lr * ((self.multiplier - 1.0) * self.last_epoch / self.total_epoch + 1.0)
                for base_lr in self.base_lrs
            ]

    def step_ReduceLROnPlateau(self, metrics, epoch=None):
        if epoch is None:
            epoch = self.last_epoch + 1
        self.last_epoch = epoch if epoch != 0 else 1
        if self.last_epoch <= self.total_epoch:
            warmup_lr = [
                base_lr * ((self.multiplier - 1.0) * self.last_epoch / self.total_epoch + 1.0)
                for base_lr in self.base_lrs
            ]
            for param_group, lr in zip(self.optimizer.param_groups, warmup_lr):
                param_group["lr"] = lr
        else:
            if epoch is None:
                self.after_scheduler.step(metrics, None)
            else:
                self.after_scheduler.step(metrics)

    def step(self, epoch=None, metrics=None):
        if type(self.after_scheduler) != ReduceLROnPlateau:  # noqa: E721
            if self.finished and self.after_scheduler:
                if epoch is None:
                    self.after_scheduler.step(None)
                else:
                    self.after_scheduler.step(epoch - self.total_epoch)
                self._last_lr = self.after_scheduler.get_last_lr()
            else:
                return super(GradualWarmupScheduler, self).step(epoch)
        else:
            self.step_ReduceLROnPlateau(metrics, epoch)


class PolyDecay(LRScheduler):
    def __init__(self, optimizer, total, power=0.9, last_epoch=-1):
        self.total, self.power = total, power
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return self._get_closed_form_lr()

    def _get_closed_form_lr(self):
        f = (1 - min(self.last_epoch, self.total) / self.total) ** self.power
        return [base_lr * f for base_lr in self.base_lrs]


rng = np.random.default_rng(1212)
X = torch.from_numpy(rng.standard_normal((32, 6)).astype(np.float32))
Y = torch.from_numpy(rng.standard_normal((32, 1)).astype(np.float32))


def make():
    m = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1))
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return m


def run(kind):
    model = make()
    optim = torch.optim.SGD(
        [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.02}],
        lr=0.01,
        momentum=0.9,
    )
    if kind == "step":
        after = StepLR(optim, step_size=3, gamma=0.5)
        sched = GradualWarmupScheduler(optim, multiplier=4, total_epoch=4, after_scheduler=after)
    elif kind == "plateau":
        after = ReduceLROnPlateau(optim, mode="min", factor=0.5, patience=0)
        sched = GradualWarmupScheduler(optim, multiplier=2, total_epoch=3, after_scheduler=after)
    else:
        sched = GradualWarmupScheduler(optim, multiplier=1.0, total_epoch=3)
    lrs, losses = [], []
    optim.zero_grad()
    optim.step()
    for epoch in range(1, 12):
        if kind == "plateau":
            sched.step(epoch, metrics=losses[-1] if losses else 10.0)
        else:
            sched.step(epoch)
        loss = nn.functional.mse_loss(model(X), Y)
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
        lrs.append([g["lr"] for g in optim.param_groups])
    return {"lrs": lrs, "losses": losses}


results = {k: run(k) for k in ("step", "plateau", "linear")}
model = make()
opt = torch.optim.Adam(model.parameters(), lr=0.01)
poly = PolyDecay(opt, total=10, power=2.0)
poly_lrs, poly_losses = [], []
saved = None
for step in range(10):
    loss = nn.functional.mse_loss(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    poly.step()
    poly_lrs.append(poly.get_last_lr()[0])
    poly_losses.append(loss.item())
    if step == 4:
        saved = poly.state_dict()
opt2 = torch.optim.Adam(make().parameters(), lr=0.01)
poly2 = PolyDecay(opt2, total=10, power=2.0)
poly2.load_state_dict(saved)
resumed = [
    poly2.last_epoch,
    poly2.get_last_lr()[0],
    sorted(k for k in saved if not k.startswith("_")),
]
report(results=results, poly_lrs=poly_lrs, poly_losses=poly_losses, resumed=resumed)
