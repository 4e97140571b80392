# The learning-rate range test as fastai's lr_find and davidtvs/pytorch-lr-finder write it:
# model and optimizer state saved by copy.deepcopy(state_dict()) and restored afterwards, an
# exponential schedule written into param_groups, an exponentially smoothed loss with bias
# correction, the stop when the smoothed loss exceeds 4x the best, the suggestion at the
# steepest descent (np.gradient of the smoothed losses over log10 lr); then a training run at
# the suggestion with gradient accumulation (loss / accum_steps, step every k micro-batches),
# label-smoothed cross-entropy, weight decay only on weights (named_parameters filter),
# clip_grad_value_, CosineAnnealingWarmRestarts stepped with fractional epochs, grad-mode
# decorators and context managers (no_grad / inference_mode / enable_grad / set_grad_enabled as
# a function), torch.random.fork_rng around a dropout probe, parameters_to_vector distances
# from the initial weights.
import copy
import functools

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(13)
N, D_IN, N_CLS = 96, 10, 4


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(D_IN, 32),
            nn.GELU(),
            nn.LayerNorm(32),
            nn.Dropout(0.1),
            nn.Linear(32, 32),
            nn.SiLU(),
        )
        self.head = nn.Linear(32, N_CLS)

    def forward(self, x):
        return self.head(self.body(x))


def init_weights(m, scale):
    if isinstance(m, nn.Linear):
        with torch.no_grad():
            m.weight.mul_(scale)
            if m.bias is not None:
                m.bias.zero_()


centers = rng.standard_normal((N_CLS, D_IN)) * 1.5
labels = rng.integers(0, N_CLS, size=N)
X = torch.from_numpy((centers[labels] + rng.standard_normal((N, D_IN))).astype(np.float32))
Y = torch.from_numpy(labels)
batches = [(X[i : i + 16], Y[i : i + 16]) for i in range(0, N, 16)]


class LRFinder:
    def __init__(self, model, optimizer, criterion):
        self.model, self.optimizer, self.criterion = model, optimizer, criterion
        self.history = {"lr": [], "loss": []}
        self.state = {
            "model": copy.deepcopy(model.state_dict()),
            "optimizer": copy.deepcopy(optimizer.state_dict()),
        }

    def range_test(self, start_lr=1e-5, end_lr=10.0, num_iter=30, smooth_f=0.05, diverge_th=4):
        best, avg = None, 0.0
        mult = (end_lr / start_lr) ** (1 / (num_iter - 1))
        it = 0
        while it < num_iter:
            for xb, yb in batches:
                lr = start_lr * mult**it
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                self.model.train()
                loss = self.criterion(self.model(xb), yb)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                avg = smooth_f * loss.item() + (1 - smooth_f) * avg
                smoothed = avg / (1 - (1 - smooth_f) ** (it + 1))
                self.history["lr"].append(lr)
                self.history["loss"].append(smoothed)
                if best is None or smoothed < best:
                    best = smoothed
                it += 1
                if smoothed > diverge_th * best or it >= num_iter:
                    return it
        return it

    def reset(self):
        self.model.load_state_dict(self.state["model"])
        self.optimizer.load_state_dict(self.state["optimizer"])

    def suggestion(self, skip_start=2, skip_end=2):
        lrs = np.array(self.history["lr"][skip_start:-skip_end])
        losses = np.array(self.history["loss"][skip_start:-skip_end])
        grads = np.gradient(losses, np.log10(lrs))
        return float(lrs[int(np.argmin(grads))])


torch.manual_seed(0)
model = load(Net())
model.eval()  # the probe and finder below set train() themselves
model.apply(functools.partial(init_weights, scale=1.5))
w0 = nn.utils.parameters_to_vector(model.parameters()).detach().clone()
for m in model.modules():
    if isinstance(m, nn.Dropout):
        m.p = 0.0
opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
finder = LRFinder(model, opt, nn.CrossEntropyLoss())
n_run = finder.range_test()
lr_hist = finder.history["lr"]
loss_hist = finder.history["loss"]
suggested = finder.suggestion()
finder.reset()
w_reset = nn.utils.parameters_to_vector(model.parameters())
reset_ok = torch.equal(w_reset, w0)
momentum_reset = len(opt.state) == 0

decay, no_decay = [], []
for name, p in model.named_parameters():
    (no_decay if p.ndim == 1 or name.endswith(".bias") else decay).append(p)
opt = torch.optim.SGD(
    [{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
    lr=suggested,
    momentum=0.9,
    nesterov=True,
)
sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2, eta_min=1e-4)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
accum_steps = 3
losses, lrs = [], []
iters = len(batches)
for epoch in range(3):
    model.train()
    opt.zero_grad()
    for i, (xb, yb) in enumerate(batches):
        loss = criterion(model(xb), yb) / accum_steps
        loss.backward()
        if (i + 1) % accum_steps == 0:
            nn.utils.clip_grad_value_(model.parameters(), clip_value=0.5)
            opt.step()
            opt.zero_grad()
            sched.step(epoch + (i + 1) / iters)
            lrs.append(opt.param_groups[0]["lr"])
        losses.append(loss.item() * accum_steps)


@torch.no_grad()
def evaluate(m):
    m.eval()
    logits = m(X)
    return F.cross_entropy(logits, Y).item(), (logits.argmax(1) == Y).float().mean().item()


@torch.inference_mode()
def predict(m, x):
    return m(x).softmax(-1)


ev_loss, ev_acc = evaluate(model)
probs = predict(model, X[:3])
with torch.no_grad():
    with torch.enable_grad():
        z = (model(X[:2]) ** 2).sum()
    grad_inside = z.requires_grad
torch.set_grad_enabled(False)
no_grad_out = model(X[:2]).requires_grad
torch.set_grad_enabled(True)
model.train()
for m in model.modules():
    if isinstance(m, nn.Dropout):
        m.p = 0.5
with torch.random.fork_rng():
    torch.manual_seed(123)
    a = model(X[:4])
    torch.manual_seed(123)
    b = model(X[:4])
same_with_seed = torch.equal(a, b)
dist = (nn.utils.parameters_to_vector(model.parameters()) - w0).norm().item()

report(
    n_run=n_run,
    lr_hist=lr_hist,
    loss_hist=loss_hist,
    suggested=suggested,
    reset_ok=reset_ok,
    momentum_reset=momentum_reset,
    losses=losses,
    lrs=lrs,
    eval=[ev_loss, ev_acc],
    probs=probs.flatten().tolist(),
    grad_flags=[grad_inside, no_grad_out, probs.requires_grad],
    same_with_seed=same_with_seed,
    dist=dist,
)
