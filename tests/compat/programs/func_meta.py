# torch.func and torch.autograd.functional in the shapes people use them: per-sample gradients
# with vmap(grad(...)) over functional_call (the torch.func tutorial's recipe), a MAML-style inner
# step whose outer loss differentiates through the inner gradient (create_graph=True), and the
# Jacobian / Hessian helpers of torch.autograd.functional. Our own program; data from NumPy.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.func import functional_call, grad, vmap

rng = np.random.default_rng(21)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


model = Net()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))

x = torch.from_numpy(rng.standard_normal((8, 3)).astype(np.float32))
t = torch.from_numpy(rng.integers(0, 2, size=8))
params = {k: v.detach() for k, v in model.named_parameters()}


def loss_one(p, xi, ti):
    out = functional_call(model, p, (xi.unsqueeze(0),))
    return F.cross_entropy(out, ti.unsqueeze(0))


per_sample = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, t)
# The mean of per-sample gradients is the batch gradient.
model.zero_grad()
F.cross_entropy(model(x), t).backward()
batch_gap = max(
    float((per_sample[k].mean(0) - p.grad).abs().max()) for k, p in model.named_parameters()
)

# MAML: one inner SGD step on a support set, the outer loss on a query set, second order.
meta_opt = torch.optim.SGD(model.parameters(), lr=0.1)
outer_losses = []
for it in range(6):
    xs = torch.from_numpy(rng.standard_normal((10, 3)).astype(np.float32))
    ys = torch.from_numpy(rng.integers(0, 2, size=10))
    xq = torch.from_numpy(rng.standard_normal((10, 3)).astype(np.float32))
    yq = torch.from_numpy(rng.integers(0, 2, size=10))
    fast = dict(model.named_parameters())
    inner = F.cross_entropy(functional_call(model, fast, (xs,)), ys)
    grads = torch.autograd.grad(inner, list(fast.values()), create_graph=True)
    fast = {k: v - 0.5 * g for (k, v), g in zip(fast.items(), grads)}
    outer = F.cross_entropy(functional_call(model, fast, (xq,)), yq)
    meta_opt.zero_grad()
    outer.backward()
    meta_opt.step()
    outer_losses.append(outer.item())

# torch.autograd.functional on a small function of two inputs.
def f(a, b):
    return torch.stack([(a * b).sum(), (a.sin() * b.exp()).sum(), (a**2).sum() * b[0]])


a = torch.from_numpy(rng.standard_normal(4))
b = torch.from_numpy(rng.standard_normal(4))
ja, jb = torch.autograd.functional.jacobian(f, (a, b))
h = torch.autograd.functional.hessian(lambda z: (z.sin() * z).sum() + z.prod(), a)
_, vjp_ab = torch.autograd.functional.vjp(f, (a, b), torch.ones(3, dtype=torch.float64))
_, hv = torch.autograd.functional.hvp(lambda z: (z**3).sum(), a, torch.ones(4, dtype=torch.float64))

report(
    per_sample_shape=list(per_sample["fc1.weight"].shape),
    per_sample_first=per_sample["fc2.weight"][0].flatten().tolist(),
    batch_gap_small=bool(batch_gap < 1e-6),
    outer_losses=outer_losses,
    fc2_bias=model.fc2.bias.tolist(),
    jac_a=ja.flatten().tolist(),
    jac_b=jb.flatten().tolist(),
    hessian=h.flatten().tolist(),
    vjp=[v.tolist() for v in vjp_ab],
    hvp=hv.tolist(),
)
