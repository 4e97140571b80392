# Every stock optimizer and scheduler on one small regression problem, the way benchmark repos
# and hyperparameter sweeps loop over them: SGD (dampening, nesterov, maximize), Adam(amsgrad),
# AdamW, Adamax, NAdam (momentum_decay, decoupled_weight_decay), RAdam (decoupled), Adagrad
# (lr_decay, initial_accumulator_value), Adadelta, RMSprop (centered, momentum), Rprop (etas,
# step_sizes) and ASGD, with per-parameter-group options, add_param_group mid-run and
# state_dict round trips; schedulers CyclicLR (triangular2, exp_range, momentum cycling),
# CosineAnnealingWarmRestarts (T_mult) stepped with fractional epochs, ReduceLROnPlateau
# (mode="max", threshold_mode="abs", cooldown), PolynomialLR and ChainedScheduler; then
# stochastic weight averaging (AveragedModel, SWALR, update_bn) and an EMA via
# get_ema_multi_avg_fn.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn, update_bn

rng = np.random.default_rng(61)
X = torch.from_numpy(rng.standard_normal((48, 4)).astype(np.float32))
Y = torch.from_numpy((X.numpy() @ rng.standard_normal((4, 1)) + 0.3).astype(np.float32))


def make_model():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    W = reference_weights(model)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in W.items()})
    return model


def groups(model, **extra):
    # weights and biases in separate groups, the biases without weight decay
    decay = [p for n, p in model.named_parameters() if n.endswith("weight")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    return [{"params": decay, **extra}, {"params": no_decay, "weight_decay": 0.0}]


optimizers = {
    "sgd_nesterov": lambda m: torch.optim.SGD(
        groups(m, weight_decay=1e-3), lr=0.05, momentum=0.9, nesterov=True
    ),
    "sgd_dampening": lambda m: torch.optim.SGD(
        m.parameters(), lr=0.05, momentum=0.5, dampening=0.3
    ),
    "sgd_maximize": lambda m: torch.optim.SGD(m.parameters(), lr=0.05, maximize=True),
    "adam_amsgrad": lambda m: torch.optim.Adam(groups(m, weight_decay=1e-2), lr=1e-2, amsgrad=True),
    "adamw": lambda m: torch.optim.AdamW(groups(m, weight_decay=0.1), lr=1e-2, betas=(0.8, 0.99)),
    "adamax": lambda m: torch.optim.Adamax(m.parameters(), lr=2e-2, weight_decay=1e-3),
    "nadam": lambda m: torch.optim.NAdam(m.parameters(), lr=1e-2, momentum_decay=3e-3),
    "nadam_decoupled": lambda m: torch.optim.NAdam(
        m.parameters(), lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True
    ),
    "radam": lambda m: torch.optim.RAdam(m.parameters(), lr=1e-2),
    "radam_decoupled": lambda m: torch.optim.RAdam(
        m.parameters(), lr=1e-2, weight_decay=0.1, decoupled_weight_decay=True
    ),
    "adagrad": lambda m: torch.optim.Adagrad(
        m.parameters(), lr=0.1, lr_decay=1e-2, initial_accumulator_value=0.1
    ),
    "adadelta": lambda m: torch.optim.Adadelta(m.parameters(), lr=1.0, rho=0.8),
    "rmsprop_centered": lambda m: torch.optim.RMSprop(
        m.parameters(), lr=1e-2, centered=True, momentum=0.5
    ),
    "rprop": lambda m: torch.optim.Rprop(
        m.parameters(), lr=1e-2, etas=(0.4, 1.3), step_sizes=(1e-5, 0.5)
    ),
    "asgd": lambda m: torch.optim.ASGD(m.parameters(), lr=0.05, t0=5),
}

results = {}
for name, make in optimizers.items():
    model = make_model()
    opt = make(model)
    losses = []
    for step in range(12):
        loss = nn.functional.mse_loss(model(X), Y)
        opt.zero_grad()
        # maximize=True climbs: give it the negated loss, as a reward
        (-loss if opt.defaults.get("maximize") else loss).backward()
        opt.step()
        losses.append(loss.item())
    # round trip the optimizer state into a fresh optimizer and keep going
    sd = opt.state_dict()
    model2 = make_model()
    model2.load_state_dict(model.state_dict())
    opt2 = make(model2)
    opt2.load_state_dict(sd)
    for step in range(3):
        loss = nn.functional.mse_loss(model2(X), Y)
        opt2.zero_grad()
        (-loss if opt2.defaults.get("maximize") else loss).backward()
        opt2.step()
        losses.append(loss.item())
    results[name] = {
        "losses": losses,
        # tensors in the state (PyTorch's "step" is a float tensor, descent's an int, and
        # descent's SGD counts steps too: the bookkeeping differs, the buffers agree)
        "state_tensors": sorted(
            k for k, v in sd["state"].get(0, {}).items() if k != "step" and v is not None
        ),
        "n_groups": len(sd["param_groups"]),
        "params_ids": [g["params"] for g in sd["param_groups"]],
    }

# add_param_group mid-run: a frozen layer unfrozen at step 5
model = make_model()
for p in model[0].parameters():
    p.requires_grad_(False)
opt = torch.optim.Adam(model[2].parameters(), lr=1e-2)
apg = []
for step in range(10):
    if step == 5:
        for p in model[0].parameters():
            p.requires_grad_(True)
        opt.add_param_group({"params": model[0].parameters(), "lr": 1e-3})
    loss = nn.functional.mse_loss(model(X), Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    apg.append(loss.item())
results["add_param_group"] = apg

# schedulers
sched_lrs = {}
for name in ("triangular2", "exp_range"):
    opt = torch.optim.SGD(make_model().parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CyclicLR(
        opt, base_lr=0.01, max_lr=0.1, step_size_up=3, step_size_down=2, mode=name, gamma=0.9
    )
    vals = []
    for _ in range(14):
        opt.step()
        sched.step()
        vals.append([opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]])
    sched_lrs[name] = vals
opt = torch.optim.SGD(make_model().parameters(), lr=0.1)
sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001)
iters = 4
vals = []
for epoch in range(5):
    for i in range(iters):
        opt.step()
        sched.step(epoch + i / iters)
        vals.append(opt.param_groups[0]["lr"])
sched_lrs["warm_restarts"] = vals
opt = torch.optim.SGD(make_model().parameters(), lr=0.1)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
    opt, mode="max", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=1
)
metrics = [0.5, 0.52, 0.53, 0.6, 0.61, 0.6, 0.62, 0.7, 0.69, 0.7, 0.7, 0.71]
vals = []
for m in metrics:
    plateau.step(m)
    vals.append(opt.param_groups[0]["lr"])
sched_lrs["plateau"] = [vals, plateau.num_bad_epochs, plateau.best]
opt = torch.optim.SGD(make_model().parameters(), lr=0.1)
chained = torch.optim.lr_scheduler.ChainedScheduler(
    [
        torch.optim.lr_scheduler.ConstantLR(opt, factor=0.5, total_iters=3),
        torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=8, power=1.5),
    ]
)
vals = []
for _ in range(10):
    opt.step()
    chained.step()
    vals.append(chained.get_last_lr()[0])
sched_lrs["chained"] = vals
results["schedulers"] = sched_lrs

# stochastic weight averaging with a BatchNorm model, and an EMA
model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
W = reference_weights(model)
model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})
swa_model = AveragedModel(model)
ema_model = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
swa_scheduler = SWALR(opt, swa_lr=0.02, anneal_epochs=3, anneal_strategy="cos")
loader = [(X[i : i + 16], Y[i : i + 16]) for i in range(0, 48, 16)]
swa_start, swa_lrs, swa_losses = 4, [], []
for epoch in range(8):
    for xb, yb in loader:
        loss = nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema_model.update_parameters(model)
        swa_losses.append(loss.item())
    if epoch >= swa_start:
        swa_model.update_parameters(model)
        swa_scheduler.step()
    swa_lrs.append(opt.param_groups[0]["lr"])
update_bn([xb for xb, _ in loader], swa_model)
swa_model.eval()
ema_model.eval()
with torch.no_grad():
    results["swa"] = {
        "losses": swa_losses,
        "lrs": swa_lrs,
        "n_averaged": swa_model.n_averaged.item(),
        "swa_pred": swa_model(X[:4]).flatten().tolist(),
        "ema_pred": ema_model(X[:4]).flatten().tolist(),
        "bn_mean": swa_model.module[1].running_mean.tolist(),
    }
report(**results)
