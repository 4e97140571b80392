# Optimizers from 2023-2024 papers as their reference PyTorch code writes them, each a
# torch.optim.Optimizer subclass (defaults dict, param_groups, self.state[p], @torch.no_grad()
# step with an optional closure, state initialised lazily): Sophia-G (a clipped ratio of an
# EMA of gradients to an EMA of a Gauss-Newton-Bartlett Hessian estimate refreshed every k
# steps from sampled labels), Adan (three EMAs, the gradient difference term, decoupled decay
# by division), schedule-free AdamW (Defazio et al. 2024: y / z / x sequences, lerp_ of the
# averaged x, train() / eval() swapping the parameters), Prodigy (the distance estimate d
# grown from <g, x0 - x>), a Shampoo-style preconditioner (Kronecker factors with matrix
# inverse fourth roots by eigh); each trains the same MLP classifier; state_dict round trips
# through load_state_dict into a fresh optimizer and resumes step for step.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.optim import Optimizer


class SophiaG(Optimizer):
    def __init__(self, params, lr=1e-4, betas=(0.965, 0.99), rho=0.04, weight_decay=1e-1):
        defaults = dict(lr=lr, betas=betas, rho=rho, weight_decay=weight_decay)
        super(SophiaG, self).__init__(params, defaults)

    @torch.no_grad()
    def update_hessian(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros((1,), dtype=torch.float)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["hessian"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["hessian"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)

    @torch.no_grad()
    def step(self, closure=None, bs=64):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.zeros((1,), dtype=torch.float)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["hessian"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                p.mul_(1 - group["lr"] * group["weight_decay"])
                state["exp_avg"].mul_(beta1).add_(p.grad, alpha=1 - beta1)
                ratio = (
                    state["exp_avg"].abs() / (group["rho"] * bs * state["hessian"] + 1e-15)
                ).clamp(None, 1)
                p.addcmul_(state["exp_avg"].sign(), ratio, value=-group["lr"])
        return loss


class Adan(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.98, 0.92, 0.99), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            b1, b2, b3 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_diff"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["pre_grad"] = grad.clone()
                state["step"] += 1
                step = state["step"]
                diff = grad - state["pre_grad"]
                update = grad + b2 * diff
                state["exp_avg"].mul_(b1).add_(grad, alpha=1 - b1)
                state["exp_avg_diff"].mul_(b2).add_(diff, alpha=1 - b2)
                state["exp_avg_sq"].mul_(b3).addcmul_(update, update, value=1 - b3)
                bc1, bc2, bc3 = 1 - b1**step, 1 - b2**step, 1 - b3**step
                denom = (state["exp_avg_sq"] / bc3).sqrt().add_(group["eps"])
                upd = (state["exp_avg"] / bc1 + b2 * state["exp_avg_diff"] / bc2) / denom
                p.add_(upd, alpha=-group["lr"])
                p.div_(1 + group["lr"] * group["weight_decay"])
                state["pre_grad"].copy_(grad)


class AdamWScheduleFree(Optimizer):
    def __init__(
        self,
        params,
        lr=2.5e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0,
        warmup_steps=0,
        r=0.0,
        weight_lr_power=2.0,
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            r=r,
            k=0,
            warmup_steps=warmup_steps,
            train_mode=True,
            weight_sum=0.0,
            lr_max=-1.0,
            weight_lr_power=weight_lr_power,
            weight_decay=weight_decay,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def eval(self):
        for group in self.param_groups:
            beta1, _ = group["betas"]
            if group["train_mode"]:
                for p in group["params"]:
                    state = self.state[p]
                    if "z" in state:
                        p.lerp_(end=state["z"], weight=1 - 1 / beta1)
                group["train_mode"] = False

    @torch.no_grad()
    def train(self):
        for group in self.param_groups:
            beta1, _ = group["betas"]
            if not group["train_mode"]:
                for p in group["params"]:
                    state = self.state[p]
                    if "z" in state:
                        p.lerp_(end=state["z"], weight=1 - beta1)
                group["train_mode"] = True

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            eps = group["eps"]
            beta1, beta2 = group["betas"]
            decay = group["weight_decay"]
            k = group["k"]
            r = group["r"]
            warmup_steps = group["warmup_steps"]
            weight_lr_power = group["weight_lr_power"]
            sched = (k + 1) / warmup_steps if k < warmup_steps else 1.0
            bias_correction2 = 1 - beta2 ** (k + 1)
            lr = group["lr"] * sched * math.sqrt(bias_correction2)
            lr_max = group["lr_max"] = max(lr, group["lr_max"])
            weight = ((k + 1) ** r) * (lr_max**weight_lr_power)
            weight_sum = group["weight_sum"] = group["weight_sum"] + weight
            ckp1 = weight / weight_sum if weight_sum != 0 else 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                y = p.data
                grad = p.grad.data
                state = self.state[p]
                if "z" not in state:
                    state["z"] = torch.clone(y)
                    state["exp_avg_sq"] = torch.zeros_like(p.data)
                z = state["z"]
                exp_avg_sq = state["exp_avg_sq"]
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = exp_avg_sq.sqrt().add_(eps)
                grad_normalized = grad.div_(denom)
                grad_normalized.add_(y, alpha=decay)
                y.lerp_(end=z, weight=ckp1)
                y.add_(grad_normalized, alpha=lr * (beta1 * (1 - ckp1) - 1))
                z.sub_(grad_normalized, alpha=lr)
            group["k"] = k + 1


class Prodigy(Optimizer):
    def __init__(
        self, params, lr=1.0, betas=(0.9, 0.999), beta3=None, eps=1e-8, d0=1e-6, weight_decay=0.0
    ):
        defaults = dict(
            lr=lr,
            betas=betas,
            beta3=beta3,
            eps=eps,
            d=d0,
            d0=d0,
            d_max=d0,
            d_numerator=0.0,
            weight_decay=weight_decay,
            k=0,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        group0 = self.param_groups[0]
        beta1, beta2 = group0["betas"]
        beta3 = group0["beta3"] if group0["beta3"] is not None else math.sqrt(beta2)
        d, d_max, lr = group0["d"], group0["d_max"], max(g["lr"] for g in self.param_groups)
        dlr = d * lr
        d_numerator = group0["d_numerator"] * beta3
        d_denom = 0.0
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                    state["s"] = torch.zeros_like(p)
                    state["p0"] = p.detach().clone()
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                d_numerator += (
                    (d / group0["d0"])
                    * dlr
                    * torch.dot(grad.flatten(), (state["p0"] - p).flatten()).item()
                )
                state["exp_avg"].mul_(beta1).add_(grad, alpha=d * (1 - beta1))
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=d * d * (1 - beta2))
                state["s"].mul_(beta3).add_(grad, alpha=(d / group0["d0"]) * dlr)
                d_denom += state["s"].abs().sum().item()
        if d_denom == 0:
            return
        d_hat = d_numerator / d_denom
        d = max(d, d_hat)
        d_max = max(d_max, d_hat)
        for group in self.param_groups:
            group.update(d=d, d_max=d_max, d_numerator=d_numerator, k=group["k"] + 1)
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] += 1
                denom = state["exp_avg_sq"].sqrt().add_(d * group["eps"])
                if group["weight_decay"] != 0:
                    p.add_(p, alpha=-group["weight_decay"] * dlr)
                p.addcdiv_(state["exp_avg"], denom, value=-dlr)


class Shampoo(Optimizer):
    def __init__(self, params, lr=0.1, momentum=0.0, epsilon=1e-4, update_freq=1):
        super().__init__(
            params, dict(lr=lr, momentum=momentum, epsilon=epsilon, update_freq=update_freq)
        )

    @staticmethod
    def _matrix_power(matrix, power):
        eigvals, eigvecs = torch.linalg.eigh(matrix)
        return eigvecs @ torch.diag(eigvals.clamp(min=1e-12).pow(power)) @ eigvecs.t()

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                order = grad.ndimension()
                original_size = grad.size()
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    for dim_id, dim in enumerate(grad.size()):
                        state[f"precond_{dim_id}"] = group["epsilon"] * torch.eye(dim)
                        state[f"inv_precond_{dim_id}"] = torch.zeros(dim, dim)
                for dim_id, dim in enumerate(grad.size()):
                    precond = state[f"precond_{dim_id}"]
                    inv_precond = state[f"inv_precond_{dim_id}"]
                    grad = grad.transpose_(0, dim_id).contiguous()
                    transposed_size = grad.size()
                    grad = grad.view(dim, -1)
                    precond.add_(grad @ grad.t())
                    if state["step"] % group["update_freq"] == 0:
                        inv_precond.copy_(self._matrix_power(precond, -1 / (2 * order)))
                    if dim_id == order - 1:
                        grad = grad.t() @ inv_precond
                        grad = grad.view(original_size)
                    else:
                        grad = inv_precond @ grad
                        grad = grad.view(transposed_size)
                state["step"] += 1
                p.add_(grad, alpha=-group["lr"])


rng = np.random.default_rng(83)
X = torch.from_numpy(rng.standard_normal((64, 6)).astype(np.float32))
y = torch.from_numpy((X[:, :3].sum(1) > 0).long().numpy() + (X[:, 3] > 1).long().numpy())


def make_model():
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def run(make_opt, steps=10, resume_at=5, sophia=False):
    model = make_model()
    opt = make_opt(model.parameters())
    losses = []
    for step in range(steps):
        if step == resume_at:
            sd = opt.state_dict()
            model2 = make_model()
            model2.load_state_dict(model.state_dict())
            opt2 = make_opt(model2.parameters())
            opt2.load_state_dict(sd)
            model, opt = model2, opt2
        if hasattr(opt, "train"):
            opt.train()
        loss = F.cross_entropy(model(X), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sophia and step % 3 == 0:
            logits = model(X)
            y_sample = torch.distributions.Categorical(logits=logits).probs.argmax(-1)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(logits, y_sample).backward()
            opt.update_hessian()
            opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    if hasattr(opt, "eval"):
        opt.eval()
    with torch.no_grad():
        acc = (model(X).argmax(1) == y).float().mean().item()
    return dict(losses=losses, acc=acc, w0=model[0].weight[0].tolist())


results = {
    "sophia": run(lambda ps: SophiaG(ps, lr=2e-2, rho=0.05, weight_decay=0.1), sophia=True),
    "adan": run(lambda ps: Adan(ps, lr=1e-2, weight_decay=0.02)),
    "schedulefree": run(lambda ps: AdamWScheduleFree(ps, lr=1e-2, warmup_steps=3)),
    "prodigy": run(lambda ps: Prodigy(ps, lr=1.0, d0=1e-3)),
    "shampoo": run(lambda ps: Shampoo(ps, lr=0.05, update_freq=2)),
}
report(**results)
