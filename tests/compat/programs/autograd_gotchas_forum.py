# The autograd situations PyTorch-forum threads ask about, written as the askers' code and
# checked for what PyTorch does (values, which gradients are None, which errors and their
# classes): reentrant checkpoint with no input requiring grad (the parameters inside get no
# gradient and a warning), the non-reentrant form (they do), checkpoint_sequential; backward
# twice without retain_graph; an in-place op on a leaf that requires grad; modifying a tensor
# that a backward needs (x.exp() then y.add_(1)); the same through `.data` (silently allowed);
# a detached alias written in place; requires_grad_(False) on a non-leaf; torch.no_grad inside
# forward; autograd.grad with allow_unused / materialize_grads; grad of a non-scalar without
# grad_outputs; .grad of a non-leaf (None plus a warning) vs retain_grad(); zero_grad's
# set_to_none; accumulation across two backward calls; a leaf created with requires_grad
# after an op; `x = x + 1` vs `x += 1` on a leaf inside no_grad; hooks changing a gradient.
import warnings

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

rng = np.random.default_rng(2828)
X = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))


def make():
    m = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 1))
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return m


def err(fn):
    try:
        fn()
        return "ok"
    except Exception as e:  # noqa: BLE001
        return type(e).__name__


res = {}
m = make()
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    out = checkpoint(m[:3], X, use_reentrant=True)
    m[3:](out).sum().backward()
res["reentrant_first_grad_none"] = m[0].weight.grad is None
res["reentrant_last_grad"] = m[4].weight.grad is not None
res["reentrant_warned"] = any("requires_grad" in str(x.message) for x in w)

m = make()
out = checkpoint(m[:3], X, use_reentrant=False)
m[3:](out).sum().backward()
res["nonreentrant_grad"] = m[0].weight.grad[0].tolist()

m = make()
Xr = X.clone().requires_grad_()
out = checkpoint_sequential(m, 2, Xr, use_reentrant=False)
out.sum().backward()
res["ckseq_grad"] = [m[0].weight.grad[1].tolist(), Xr.grad[0].tolist()]

m = make()
loss = m(X).sum()
loss.backward(retain_graph=True)
loss.backward()
res["accumulated"] = m[4].bias.grad.tolist()
loss = m(X).sum()
loss.backward()
res["twice"] = err(lambda: loss.backward())

leaf = torch.ones(3, requires_grad=True)
res["leaf_inplace"] = err(lambda: leaf.add_(1))
with torch.no_grad():
    leaf.add_(1)
res["leaf_inplace_nograd"] = leaf.tolist()

x = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
y = x.exp()
y.add_(1)
res["saved_modified"] = err(lambda: y.sum().backward())

x = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
y = x.exp()
y.data.add_(1)
y.sum().backward()
res["data_modified_grad"] = x.grad.tolist()

x = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
y = x.sigmoid()
z = y.detach()
z.zero_()
res["detached_alias"] = err(lambda: y.sum().backward())

x = torch.tensor([1.0, 2.0], requires_grad=True)
h = x * 2
res["nonleaf_requires_grad_false"] = err(lambda: h.requires_grad_(False))


class Frozen(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 3)
        self.b = nn.Linear(3, 1)

    def forward(self, x):
        with torch.no_grad():
            h = self.a(x)
        return self.b(torch.relu(h))


f = Frozen()
W = reference_weights(f)
with torch.no_grad():
    for name, p in f.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
f(X).sum().backward()
res["no_grad_inside"] = [f.a.weight.grad is None, f.b.weight.grad[0].tolist()]

a = torch.tensor([1.0, 2.0], requires_grad=True)
b = torch.tensor([3.0, 4.0], requires_grad=True)
out = (a * a).sum()
res["unused"] = err(lambda: torch.autograd.grad(out, [a, b], retain_graph=True))
g = torch.autograd.grad(out, [a, b], allow_unused=True, retain_graph=True)
res["allow_unused"] = [g[0].tolist(), g[1] is None]
g = torch.autograd.grad(out, [a, b], allow_unused=True, materialize_grads=True)
res["materialize"] = [g[1].tolist()]
v = a * 3
res["non_scalar"] = err(lambda: v.backward())
v.backward(torch.tensor([1.0, 0.5]))
res["grad_outputs"] = a.grad.tolist()

with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    h.sum().backward()
    hg = h.grad
res["nonleaf_grad"] = [
    hg is None,
    any(".grad attribute of a Tensor that is not a leaf" in str(x.message) for x in w),
]
x = torch.tensor([1.0, 2.0], requires_grad=True)
h = x * x
h.retain_grad()
(h * 3).sum().backward()
res["retain_grad"] = h.grad.tolist()

m = make()
opt = torch.optim.SGD(m.parameters(), lr=0.1)
m(X).sum().backward()
opt.zero_grad(set_to_none=False)
res["zero_grad_false"] = m[0].bias.grad.tolist()
opt.zero_grad()
res["zero_grad_none"] = m[0].bias.grad is None

t = torch.ones(2) * 3
t.requires_grad = True
(t * t).sum().backward()
res["late_requires_grad"] = [t.is_leaf, t.grad.tolist()]

p = torch.ones(2, requires_grad=True)
with torch.no_grad():
    q = p + 1
    p += 1
res["nograd_ops"] = [q.requires_grad, p.requires_grad, p.is_leaf, p.tolist()]

x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
y = x * 2
y.register_hook(lambda g: g.clamp(min=0))
z = (y * torch.tensor([1.0, -1.0, 1.0])).sum()
z.backward()
res["hook_clamped"] = x.grad.tolist()
report(**res)
