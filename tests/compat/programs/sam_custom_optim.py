# Optimizers that research code writes itself, as their reference repositories do:
# davda54/sam's SAM (a torch.optim.Optimizer subclass wrapping a base optimizer class, sharing
# its param_groups, first_step / second_step under @torch.no_grad(), e_w kept in
# self.state[p]["old_p"], the grad norm by torch.norm(torch.stack([...]), p=2), the adaptive
# ASAM variant, step(closure) under torch.enable_grad(), BatchNorm momentum switched off for the
# second pass), a Lookahead wrapper (slow weights in a defaultdict state, k steps, alpha),
# lucidrains' Lion (sign of an interpolated momentum, decoupled decay by p.data.mul_), LAMB's
# trust ratio by torch.where, gradient centralization inside a closure, Keller Jordan's Muon
# (zeropower_via_newtonschulz5 with a transpose for tall matrices) against torch.optim.Muon,
# and a wrapper's state_dict round trip.
from collections import defaultdict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(7)


class SAM(torch.optim.Optimizer):
    def __init__(self, params, base_optimizer, rho=0.05, adaptive=False, **kwargs):
        assert rho >= 0.0, f"Invalid rho, should be non-negative: {rho}"

        defaults = dict(rho=rho, adaptive=adaptive, **kwargs)
        super(SAM, self).__init__(params, defaults)

        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self, zero_grad=False):
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)

            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                e_w = (torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p)
                p.add_(e_w)  # climb to the local maximum "w + e(w)"

        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad=False):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.data = self.state[p]["old_p"]  # get back to "w" from "w + e(w)"

        self.base_optimizer.step()  # do the actual "sharpness-aware" update

        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure=None):
        assert closure is not None, "Sharpness Aware Minimization requires closure"
        closure = torch.enable_grad()(closure)  # the closure should do a full forward-backward

        self.first_step(zero_grad=True)
        closure()
        self.second_step()

    def _grad_norm(self):
        shared_device = self.param_groups[0]["params"][0].device
        norm = torch.norm(
            torch.stack([
                ((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2)
                .to(shared_device)
                for group in self.param_groups for p in group["params"]
                if p.grad is not None
            ]),
            p=2,
        )
        return norm

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups


def disable_running_stats(model):
    def _disable(module):
        if isinstance(module, nn.BatchNorm1d):
            module.backup_momentum = module.momentum
            module.momentum = 0

    model.apply(_disable)


def enable_running_stats(model):
    def _enable(module):
        if isinstance(module, nn.BatchNorm1d) and hasattr(module, "backup_momentum"):
            module.momentum = module.backup_momentum

    model.apply(_enable)


class Lookahead:
    """A wrapper, not an Optimizer subclass: torch.optim.Optimizer's step wrapper wants the
    hooks dicts that only Optimizer.__init__ makes."""

    def __init__(self, optimizer, k=5, alpha=0.5):
        self.optimizer = optimizer
        self.k = k
        self.alpha = alpha
        self.param_groups = self.optimizer.param_groups
        self.defaults = self.optimizer.defaults
        self.state = defaultdict(dict)
        self.fast_state = self.optimizer.state
        for group in self.param_groups:
            group["counter"] = 0

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def update(self, group):
        for fast in group["params"]:
            param_state = self.state[fast]
            if "slow_param" not in param_state:
                param_state["slow_param"] = torch.zeros_like(fast.data)
                param_state["slow_param"].copy_(fast.data)
            slow = param_state["slow_param"]
            slow += (fast.data - slow) * self.alpha
            fast.data.copy_(slow)

    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        for group in self.param_groups:
            if group["counter"] == 0:
                self.update(group)
            group["counter"] += 1
            if group["counter"] >= self.k:
                group["counter"] = 0
        return loss


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        assert lr > 0.0
        assert all([0.0 <= beta <= 1.0 for beta in betas])
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in filter(lambda p: p.grad is not None, group["params"]):
                grad, lr, wd, state = p.grad, group["lr"], group["weight_decay"], self.state[p]
                beta1, beta2 = group["betas"]
                if len(state) == 0:
                    state["exp_avg"] = torch.zeros_like(p)
                exp_avg = state["exp_avg"]
                p.data.mul_(1.0 - lr * wd)
                update = exp_avg.clone().mul_(beta1).add(grad, alpha=1.0 - beta1).sign_()
                p.add_(update, alpha=-lr)
                exp_avg.mul_(beta2).add_(grad, alpha=1.0 - beta2)
        return loss


class Lamb(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p.data)
                    state["exp_avg_sq"] = torch.zeros_like(p.data)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                beta1, beta2 = group["betas"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** state["step"]
                bias_correction2 = 1 - beta2 ** state["step"]
                adam_step = (exp_avg / bias_correction1) / (
                    (exp_avg_sq / bias_correction2).sqrt() + group["eps"])
                if group["weight_decay"] != 0:
                    adam_step.add_(p.data, alpha=group["weight_decay"])
                weight_norm = p.data.pow(2).sum().sqrt()
                adam_norm = adam_step.pow(2).sum().sqrt()
                trust_ratio = torch.where(
                    (weight_norm > 0) & (adam_norm > 0), weight_norm / adam_norm,
                    torch.ones_like(weight_norm))
                state["trust_ratio"] = trust_ratio.item()
                p.data.add_(adam_step * trust_ratio, alpha=-group["lr"])


def zeropower_via_newtonschulz5(G, steps=5):
    assert G.ndim >= 2
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.float()
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


def muon_update(grad, momentum, beta=0.95, ns_steps=5, nesterov=True):
    momentum.lerp_(grad, 1 - beta)
    update = grad.lerp_(momentum, beta) if nesterov else momentum
    update = zeropower_via_newtonschulz5(update, steps=ns_steps)
    return update


class MyMuon(torch.optim.Optimizer):
    def __init__(self, params, lr=0.02, weight_decay=0, momentum=0.95):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if len(state) == 0:
                    state["momentum_buffer"] = torch.zeros_like(p)
                update = muon_update(p.grad.clone(), state["momentum_buffer"],
                                     beta=group["momentum"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update.reshape(p.shape), alpha=-group["lr"])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 12)
        self.fc3 = nn.Linear(12, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.fc1(x)))
        return self.fc3(torch.tanh(self.fc2(x)))


def fresh():
    model = Net()
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


X = torch.from_numpy(rng.standard_normal((32, 6)).astype(np.float32))
Y = torch.from_numpy((rng.standard_normal((32, 6)) @ rng.standard_normal((6, 3))).argmax(1))
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
results = {}

# SAM and ASAM around SGD with momentum, the repository's two-pass loop
for adaptive in (False, True):
    model = fresh()
    optimizer = SAM(model.parameters(), torch.optim.SGD, rho=2.0 if adaptive else 0.05,
                    adaptive=adaptive, lr=0.1, momentum=0.9)
    losses = []
    for step in range(6):
        enable_running_stats(model)
        loss = criterion(model(X), Y)
        loss.backward()
        optimizer.first_step(zero_grad=True)
        disable_running_stats(model)
        criterion(model(X), Y).backward()
        optimizer.second_step(zero_grad=True)
        losses.append(loss.item())
    results["asam" if adaptive else "sam"] = losses
    results["sam_running_var" if not adaptive else "asam_running_var"] = \
        model.bn.running_var[:4].tolist()
results["sam_groups_shared"] = optimizer.param_groups is optimizer.base_optimizer.param_groups
results["sam_defaults"] = sorted(optimizer.defaults)

# SAM through step(closure), then its state_dict into a fresh wrapper
model = fresh()
optimizer = SAM(model.parameters(), torch.optim.Adam, rho=0.05, lr=1e-2)


def closure():
    loss = criterion(model(X), Y)
    loss.backward()
    return loss


losses = []
for step in range(4):
    loss = criterion(model(X), Y)
    loss.backward()
    optimizer.step(closure)
    optimizer.zero_grad()
    losses.append(loss.item())
sd = optimizer.state_dict()
model2 = fresh()
model2.load_state_dict(model.state_dict())
opt2 = SAM(model2.parameters(), torch.optim.Adam, rho=0.05, lr=1e-2)
opt2.load_state_dict(sd)
results["sam_closure"] = losses
results["sam_sd_keys"] = sorted(sd["state"][0].keys())
results["sam_base_state_after_load"] = len(opt2.base_optimizer.state)

# Lookahead over Adam
model = fresh()
optimizer = Lookahead(torch.optim.Adam(model.parameters(), lr=1e-2), k=3, alpha=0.5)
losses = []
for step in range(7):
    optimizer.zero_grad()
    loss = criterion(model(X), Y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
results["lookahead"] = losses
results["lookahead_counter"] = optimizer.param_groups[0]["counter"]
results["lookahead_slow"] = optimizer.state[model.fc3.weight]["slow_param"][0].tolist()

# Lion with decoupled weight decay, LAMB with trust ratios
model = fresh()
optimizer = Lion(model.parameters(), lr=3e-3, weight_decay=0.1)
losses = []
for step in range(5):
    optimizer.zero_grad()
    loss = criterion(model(X), Y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
results["lion"] = losses

model = fresh()
optimizer = Lamb(model.parameters(), lr=2e-2, weight_decay=0.01)
losses = []
for step in range(5):
    optimizer.zero_grad()
    loss = criterion(model(X), Y)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
results["lamb"] = losses
# fc1.bias sits in front of the BatchNorm: its gradient is 0 up to rounding, and so is the
# norm of its Adam step, whose trust ratio is rounding over rounding (not reported)
results["lamb_trust"] = [optimizer.state[p]["trust_ratio"] for n, p in model.named_parameters()
                         if n != "fc1.bias"]


# gradient centralization inside a closure for SGD
def centralize(params):
    for p in params:
        if p.grad is not None and p.grad.dim() > 1:
            p.grad.add_(-p.grad.mean(dim=tuple(range(1, p.grad.dim())), keepdim=True))


model = fresh()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
losses = []
for step in range(5):
    def gc_closure():
        optimizer.zero_grad()
        loss = criterion(model(X), Y)
        loss.backward()
        centralize(model.parameters())
        return loss

    losses.append(optimizer.step(gc_closure).item())
results["grad_centralization"] = losses
results["gc_row_mean"] = model.fc2.weight.grad.mean(dim=1).abs().max().item() < 1e-6

# Muon on the hidden matrices, AdamW on the rest (the modded-nanogpt split)
for which in ("mine", "torch"):
    model = fresh()
    hidden = [p for n, p in model.named_parameters() if p.ndim >= 2 and "fc3" not in n]
    others = [p for n, p in model.named_parameters() if p.ndim < 2 or "fc3" in n]
    if which == "mine":
        muon = MyMuon(hidden, lr=0.02, weight_decay=0.01)
    else:
        muon = torch.optim.Muon(hidden, lr=0.02, weight_decay=0.01, momentum=0.95,
                                nesterov=True)
    adamw = torch.optim.AdamW(others, lr=3e-3, betas=(0.9, 0.95), weight_decay=0.0)
    losses = []
    for step in range(5):
        for opt in (muon, adamw):
            opt.zero_grad()
        loss = criterion(model(X), Y)
        loss.backward()
        for opt in (muon, adamw):
            opt.step()
        losses.append(loss.item())
    results["muon_" + which] = losses
G = torch.from_numpy(rng.standard_normal((12, 5)).astype(np.float32))
O = zeropower_via_newtonschulz5(G)
results["ns_singular_values"] = torch.linalg.svdvals(O).tolist()
results["ns_shape"] = list(O.shape)

report(**results)
