# Autograd features real training code leans on: a custom autograd.Function with
# mark_non_differentiable and a masked backward, activation checkpointing (checkpoint and
# checkpoint_sequential, non-reentrant), a gradient penalty through create_graph, tensor hooks and
# retain_grad, autograd.functional jacobian/hessian, grad-mode context managers and anomaly
# detection catching a NaN backward. Our own program; data made with NumPy.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.autograd.functional import hessian, jacobian
from torch.utils.checkpoint import checkpoint, checkpoint_sequential


class ClampGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        idx = x.argmax(dim=-1)
        ctx.mark_non_differentiable(idx)
        return x.clamp(lo, hi), idx

    @staticmethod
    def backward(ctx, g, gidx):
        (x,) = ctx.saved_tensors
        mask = (x >= ctx.lo) & (x <= ctx.hi)
        return g * mask, None, None


rng = np.random.default_rng(0)
x = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32)).requires_grad_()
y, idx = ClampGrad.apply(x, -0.5, 0.5)
(y.sum() * 2).backward()
out = {"clamp_grad": x.grad.tolist(), "idx": idx.tolist(), "idx_req": idx.requires_grad}

model = nn.Sequential(nn.Linear(5, 8), nn.GELU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
inp = torch.from_numpy(rng.standard_normal((6, 5)).astype(np.float32)).requires_grad_()
l1 = checkpoint(model, inp, use_reentrant=False).pow(2).mean()
g1 = torch.autograd.grad(l1, [inp] + list(model.parameters()))
l2 = checkpoint_sequential(model, 2, inp, use_reentrant=False).pow(2).mean()
g2 = torch.autograd.grad(l2, inp)
out["ckpt_loss"] = [l1.item(), l2.item()]
out["ckpt_grad_inp"] = g1[0].tolist()
out["ckpt_same"] = torch.allclose(g1[0], g2[0])

# gradient penalty / double backward
z = model(inp).sum()
(gin,) = torch.autograd.grad(z, inp, create_graph=True)
pen = gin.norm(2, dim=1).sub(1).pow(2).mean()
pen.backward()
out["penalty"] = pen.item()
out["pen_grad0"] = model[0].weight.grad.tolist()

# tensor hooks, retain_grad
a = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
b = a * 2
b.retain_grad()
h = b.register_hook(lambda g: g * 10)
c = (b**2).sum()
c.backward()
h.remove()
out["hook_a_grad"] = a.grad.tolist()
out["retained_b_grad"] = b.grad.tolist()

# jacobian / hessian


def f(v):
    return torch.stack([v[0] * v[1], torch.sin(v[2]), v.sum() ** 2])


v = torch.tensor([0.5, -1.0, 2.0])
out["jac"] = jacobian(f, v).tolist()
out["hess"] = hessian(lambda v: (v**3).sum() + v[0] * v[2], v).tolist()

# no_grad / inference_mode / set_grad_enabled / enable_grad in no_grad
with torch.no_grad():
    with torch.enable_grad():
        q = a * 3
    r = a * 3
out["grad_modes"] = [q.requires_grad, r.requires_grad, torch.is_grad_enabled()]
with torch.set_grad_enabled(False):
    out["set_grad_enabled"] = (a * 2).requires_grad
# anomaly detection catches a nan backward
w = torch.tensor([0.0, 1.0], requires_grad=True)
caught = False
try:
    with torch.autograd.detect_anomaly():
        torch.sqrt(w).sum().mul(0).add(torch.sqrt(w - w).sum()).backward()
except RuntimeError:
    caught = True
out["anomaly_caught"] = caught
report(**out)
