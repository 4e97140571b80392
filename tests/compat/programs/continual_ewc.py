# Continual learning as Avalanche-style and paper repositories write it, on three small tasks
# of a multi-head MLP: EWC (the diagonal Fisher from per-sample log-likelihood gradients, once
# by a loop of autograd.grad and once by torch.func.vmap(grad(...)) over functional_call, the
# anchors and Fisher stored as buffers named n.replace(".", "__"), online EWC's decayed sum),
# Synaptic Intelligence (path integrals of -grad * delta accumulated each step, omega by
# clamp-free division with a damping xi), Learning without Forgetting (a deepcopy'd frozen old
# model, KLDivLoss(reduction="batchmean") on temperature-softened outputs times T ** 2),
# A-GEM (flat gradients by parameters_to_vector over p.grad, the projection by torch.dot,
# written back by vector_to_parameters into the .grad tensors) with a reservoir-sampled replay
# buffer (NumPy draws), and the accuracy matrix with backward transfer.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.func import functional_call, grad, vmap
from torch.nn.utils import parameters_to_vector, vector_to_parameters

torch.manual_seed(0)
rng = np.random.default_rng(3)
N_TASKS, N_CLASSES, D = 3, 3, 8


class MultiHeadMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D, 20), nn.ReLU(), nn.Linear(20, 16), nn.Tanh())
        self.heads = nn.ModuleList([nn.Linear(16, N_CLASSES) for _ in range(N_TASKS)])

    def forward(self, x, task):
        return self.heads[task](self.body(x))


def fresh():
    model = MultiHeadMLP()
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


tasks = []
for t in range(N_TASKS):
    centers = rng.standard_normal((N_CLASSES, D)) * 1.5
    y = rng.integers(0, N_CLASSES, 40)
    x = centers[y] + rng.standard_normal((40, D)) * 0.8
    perm = rng.permutation(D)  # each task sees the features permuted
    tasks.append((torch.from_numpy(x[:, perm].astype(np.float32)), torch.from_numpy(y)))


def accuracy(model, t):
    x, y = tasks[t]
    with torch.no_grad():
        return (model(x, t).argmax(1) == y).float().mean().item()


class EWC:
    def __init__(self, model, lam=50.0, online_gamma=None):
        self.model = model
        self.lam = lam
        self.gamma = online_gamma
        self.n_consolidations = 0

    def fisher_loop(self, x, y, t):
        params = {n: p for n, p in self.model.named_parameters() if p.requires_grad}
        fisher = {n: torch.zeros_like(p) for n, p in params.items()}
        for i in range(x.size(0)):
            logp = F.log_softmax(self.model(x[i:i + 1], t), dim=1)[0, y[i]]
            grads = torch.autograd.grad(logp, list(params.values()), allow_unused=True)
            for (n, _), g in zip(params.items(), grads):
                if g is not None:
                    fisher[n] += g.detach() ** 2 / x.size(0)
        return fisher

    def fisher_vmap(self, x, y, t):
        params = {k: v.detach() for k, v in self.model.named_parameters()}

        def logp(p, xi, yi):
            out = functional_call(self.model, p, (xi.unsqueeze(0), t))
            return -F.nll_loss(F.log_softmax(out, dim=1), yi.unsqueeze(0))

        per_sample = vmap(grad(logp), in_dims=(None, 0, 0))(params, x, y)
        return {n: g.pow(2).mean(0) for n, g in per_sample.items()}

    def consolidate(self, fisher):
        for n, p in self.model.named_parameters():
            key = n.replace(".", "__")
            f = fisher[n]
            if self.gamma is not None and hasattr(self.model, key + "_fisher"):
                f = self.gamma * getattr(self.model, key + "_fisher") + f
            self.model.register_buffer(key + "_mean", p.data.clone())
            self.model.register_buffer(key + "_fisher", f.clone())
        self.n_consolidations += 1

    def penalty(self):
        if self.n_consolidations == 0:
            return torch.tensor(0.0)
        losses = []
        for n, p in self.model.named_parameters():
            key = n.replace(".", "__")
            mean = getattr(self.model, key + "_mean")
            fisher = getattr(self.model, key + "_fisher")
            losses.append((fisher * (p - mean) ** 2).sum())
        return (self.lam / 2) * sum(losses)


def train_sequence(method):
    model = fresh()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    acc = np.zeros((N_TASKS, N_TASKS))
    losses, extra = [], {}
    ewc = EWC(model, online_gamma=0.9 if method == "online_ewc" else None)
    si_omega = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    si_w = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    si_start = {n: p.detach().clone() for n, p in model.named_parameters()}
    old_model = None
    memory_x, memory_y, memory_t, seen = [], [], [], 0
    for t in range(N_TASKS):
        x, y = tasks[t]
        for step in range(6):
            idx = slice((step % 4) * 10, (step % 4) * 10 + 10)
            xb, yb = x[idx], y[idx]
            if method == "agem" and memory_x:
                # reference gradient on the replay buffer
                opt.zero_grad()
                mx, my, mt = torch.stack(memory_x), torch.stack(memory_y), memory_t
                ref = sum(F.cross_entropy(model(mx[i:i + 1], mt[i]), my[i:i + 1])
                          for i in range(len(mt))) / len(mt)
                ref.backward()
                g_ref = parameters_to_vector(
                    [p.grad if p.grad is not None else torch.zeros_like(p)
                     for p in model.parameters()]).clone()
            opt.zero_grad()
            loss = F.cross_entropy(model(xb, t), yb)
            if method in ("ewc", "online_ewc"):
                loss = loss + ewc.penalty()
            if method == "si" and t > 0:
                loss = loss + 0.5 * sum((si_omega[n] * (p - si_start[n]) ** 2).sum()
                                        for n, p in model.named_parameters())
            if method == "lwf" and old_model is not None:
                T = 2.0
                for tp in range(t):
                    with torch.no_grad():
                        target = F.softmax(old_model(xb, tp) / T, dim=1)
                    loss = loss + nn.KLDivLoss(reduction="batchmean")(
                        F.log_softmax(model(xb, tp) / T, dim=1), target) * T ** 2
            loss.backward()
            if method == "agem" and memory_x:
                grads = [p.grad if p.grad is not None else torch.zeros_like(p)
                         for p in model.parameters()]
                g = parameters_to_vector(grads)
                dotp = torch.dot(g, g_ref)
                if dotp < 0:
                    g = g - dotp / torch.dot(g_ref, g_ref) * g_ref
                    extra["agem_projections"] = extra.get("agem_projections", 0) + 1
                for p in model.parameters():
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                vector_to_parameters(g, [p.grad for p in model.parameters()])
            before = {n: p.detach().clone() for n, p in model.named_parameters()}
            opt.step()
            if method == "si":
                for n, p in model.named_parameters():
                    if p.grad is not None:
                        si_w[n] -= p.grad * (p.detach() - before[n])
            losses.append(loss.item())
        # end of task t
        if method in ("ewc", "online_ewc"):
            f_loop = ewc.fisher_loop(x[:12], y[:12], t)
            f_vmap = ewc.fisher_vmap(x[:12], y[:12], t)
            extra.setdefault("fisher_gap", []).append(
                max((f_loop[n] - f_vmap[n]).abs().max().item() for n in f_loop))
            ewc.consolidate(f_vmap)
        if method == "si":
            for n, p in model.named_parameters():
                delta = p.detach() - si_start[n]
                si_omega[n] += si_w[n] / (delta ** 2 + 1e-3)
                si_w[n].zero_()
                si_start[n] = p.detach().clone()
        if method == "lwf":
            old_model = copy.deepcopy(model).eval()
            for p in old_model.parameters():
                p.requires_grad_(False)
        if method == "agem":
            for i in range(x.size(0)):
                seen += 1
                if len(memory_x) < 9:
                    memory_x.append(x[i])
                    memory_y.append(y[i])
                    memory_t.append(t)
                else:
                    j = int(rng.integers(0, seen))
                    if j < 9:
                        memory_x[j], memory_y[j], memory_t[j] = x[i], y[i], t
        for s in range(N_TASKS):
            acc[t, s] = accuracy(model, s)
    bwt = float(np.mean([acc[-1, s] - acc[s, s] for s in range(N_TASKS - 1)]))
    return model, losses, acc.tolist(), bwt, extra


results = {}
for method in ("finetune", "ewc", "online_ewc", "si", "lwf", "agem"):
    model, losses, acc, bwt, extra = train_sequence(method)
    results[method] = losses
    results[method + "_acc"] = acc
    results[method + "_bwt"] = bwt
    for k, v in extra.items():
        results[method + "_" + k] = v
    if method == "ewc":
        results["ewc_buffers"] = sorted(n for n, _ in model.named_buffers())[:4]
        results["ewc_state_keys"] = len(model.state_dict())
        results["ewc_fisher_head0"] = model.heads__0__weight_fisher.sum().item()
for k in [k for k in results if k.endswith("fisher_gap")]:
    results[k] = [g < 1e-6 for g in results[k]]

report(**results)
