# Learning to learn by gradient descent by gradient descent (Andrychowicz et al. 2016) as the
# PyTorch reimplementations write it: a coordinate-wise two-layer LSTM optimizer (LSTMCell over
# every parameter coordinate as a batch, gradients preprocessed by the log / sign scheme with
# p = 10), an optimizee (a small MLP regression) whose weights live in a flat tensor unpacked by
# split / view and used through torch.func.functional_call, the unrolled inner loop keeping the
# graph (autograd.grad(create_graph=True)), truncated BPTT every 5 steps (detach_ of hidden
# states and weights, requires_grad_ again), the meta-loss as the sum of optimizee losses, Adam
# on the LSTM with clip_grad_norm_; then the learned optimizer against SGD and Adam on a fresh
# optimizee, and a hypergradient-descent SGD (the learning rate updated by the dot product of
# consecutive gradients).
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.func import functional_call

rng = np.random.default_rng(101)


class Optimizee(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(2, 8)
        self.l2 = nn.Linear(8, 1)

    def forward(self, x):
        return self.l2(torch.tanh(self.l1(x)))


template = Optimizee()
shapes = {n: p.shape for n, p in template.named_parameters()}
sizes = [math.prod(s) for s in shapes.values()]
N_PARAMS = sum(sizes)


def unflatten(flat):
    return {n: t.view(s) for (n, s), t in zip(shapes.items(), flat.split(sizes))}


def task():
    w = rng.standard_normal(2)
    x = rng.uniform(-1, 1, (32, 2))
    y = np.sin(x @ w)[:, None]
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.float32))


def init_flat():
    return torch.from_numpy((0.5 * rng.standard_normal(N_PARAMS)).astype(np.float32))


def loss_fn(flat, x, y):
    return F.mse_loss(functional_call(template, unflatten(flat), (x,)), y)


class LSTMOptimizer(nn.Module):
    def __init__(self, hidden=12, p=10.0):
        super().__init__()
        self.p = p
        self.cell1 = nn.LSTMCell(2, hidden)
        self.cell2 = nn.LSTMCell(hidden, hidden)
        self.out = nn.Linear(hidden, 1)
        self.hidden = hidden

    def preprocess(self, g):
        g = g.unsqueeze(1)
        big = g.abs() >= math.exp(-self.p)
        logpart = torch.where(big, torch.log(g.abs() + 1e-8) / self.p, torch.full_like(g, -1.0))
        signpart = torch.where(big, torch.sign(g), math.exp(self.p) * g)
        return torch.cat([logpart, signpart], 1)

    def init_state(self, n):
        z = torch.zeros(n, self.hidden)
        return [(z, z.clone()), (z.clone(), z.clone())]

    def forward(self, g, state):
        h1, c1 = self.cell1(self.preprocess(g), state[0])
        h2, c2 = self.cell2(h1, state[1])
        return self.out(h2).squeeze(1) * 0.1, [(h1, c1), (h2, c2)]


lopt = LSTMOptimizer()
W = reference_weights(lopt)
with torch.no_grad():
    for n, p in lopt.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
meta_opt = torch.optim.Adam(lopt.parameters(), lr=3e-3)
UNROLL, STEPS = 5, 20
meta_losses = []
for epoch in range(4):
    x, y = task()
    flat = init_flat().requires_grad_(True)
    state = lopt.init_state(N_PARAMS)
    for k in range(STEPS // UNROLL):
        meta_loss = 0.0
        for _ in range(UNROLL):
            loss = loss_fn(flat, x, y)
            (g,) = torch.autograd.grad(loss, flat, create_graph=True)
            update, state = lopt(g.detach(), state)  # the second-order term dropped, as the paper
            flat = flat + update
            meta_loss = meta_loss + loss_fn(flat, x, y)
        meta_opt.zero_grad()
        meta_loss.backward()
        nn.utils.clip_grad_norm_(lopt.parameters(), 1.0)
        meta_opt.step()
        meta_losses.append(meta_loss.item())
        flat = flat.detach().requires_grad_(True)
        state = [(h.detach(), c.detach()) for h, c in state]

# evaluation on a fresh task: learned optimizer vs SGD vs Adam vs hypergradient SGD
x, y = task()
start = init_flat()
curves = {}
flat = start.clone().requires_grad_(True)
state = lopt.init_state(N_PARAMS)
curve = []
for _ in range(STEPS):
    loss = loss_fn(flat, x, y)
    (g,) = torch.autograd.grad(loss, flat)
    with torch.no_grad():
        update, state = lopt(g, state)
    flat = (flat + update).detach().requires_grad_(True)
    curve.append(loss.item())
curves["lstm"] = curve
for name in ("sgd", "adam"):
    p = nn.Parameter(start.clone())
    o = torch.optim.SGD([p], lr=0.1) if name == "sgd" else torch.optim.Adam([p], lr=0.03)
    curve = []
    for _ in range(STEPS):
        loss = loss_fn(p, x, y)
        o.zero_grad()
        loss.backward()
        o.step()
        curve.append(loss.item())
    curves[name] = curve
p = start.clone().requires_grad_(True)
lr, beta, prev = 0.05, 0.01, None
curve, lrs = [], []
for _ in range(STEPS):
    loss = loss_fn(p, x, y)
    (g,) = torch.autograd.grad(loss, p)
    if prev is not None:
        lr = lr + beta * torch.dot(g, prev).item()
    with torch.no_grad():
        p = (p - lr * g).requires_grad_(True)
    prev = g
    curve.append(loss.item())
    lrs.append(lr)
curves["hypergrad"] = curve
report(meta_losses=meta_losses, curves=curves, hyper_lrs=lrs, n_params=N_PARAMS)
