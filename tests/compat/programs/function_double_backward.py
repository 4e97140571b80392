# Custom autograd.Functions as research code writes them when it needs second derivatives: a
# smooth activation whose backward is written with differentiable torch ops (so a gradient
# penalty and a Hessian-vector product go through it), checked by gradcheck and gradgradcheck in
# float64; a Function with ctx.set_materialize_grads(False) and two outputs of which one is
# unused (its grad arrives as None); a Function that saves its output; once_differentiable and
# the error its double backward raises; mark_non_differentiable on an argmax output;
# needs_input_grad; a WGAN-GP critic trained through the custom activation.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.autograd import Function
from torch.autograd.function import once_differentiable

rng = np.random.default_rng(7)
torch.manual_seed(0)


class SoftplusFn(Function):
    @staticmethod
    def forward(ctx, x, beta):
        ctx.save_for_backward(x)
        ctx.beta = beta
        return torch.log1p(torch.exp(beta * x)) / beta

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        # written with torch ops on saved tensors: differentiable again
        return grad_out * torch.sigmoid(ctx.beta * x), None


class TanhOut(Function):
    """Saves its output; backward in terms of the output (still differentiable)."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return gy * (1 - y * y)


class SplitScale(Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x, w)
        return x * w, x.sum(-1)

    @staticmethod
    def backward(ctx, g_scaled, g_sum):
        x, w = ctx.saved_tensors
        gx = torch.zeros_like(x)
        gw = None
        if g_scaled is not None:
            gx = gx + g_scaled * w
            if ctx.needs_input_grad[1]:
                gw = (g_scaled * x).sum(0)
        if g_sum is not None:
            gx = gx + g_sum.unsqueeze(-1)
        return gx, gw


class ClampedExp(Function):
    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x.clamp(max=3.0))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x, y = ctx.saved_tensors
        return gy * y * (x <= 3.0).to(gy.dtype)


class TopIndex(Function):
    @staticmethod
    def forward(ctx, x):
        idx = x.argmax(-1)
        ctx.mark_non_differentiable(idx)
        ctx.save_for_backward(idx)
        ctx.n = x.shape[-1]
        return x.max(-1).values, idx

    @staticmethod
    def backward(ctx, gv, gi):
        (idx,) = ctx.saved_tensors
        return torch.nn.functional.one_hot(idx, ctx.n).to(gv.dtype) * gv.unsqueeze(-1)


results = {}
x64 = torch.from_numpy(rng.standard_normal((4, 3))).requires_grad_(True)
results["gradcheck_softplus"] = torch.autograd.gradcheck(lambda t: SoftplusFn.apply(t, 2.0), (x64,))
results["gradgradcheck_softplus"] = torch.autograd.gradgradcheck(
    lambda t: SoftplusFn.apply(t, 2.0), (x64,)
)
results["gradgradcheck_tanh"] = torch.autograd.gradgradcheck(TanhOut.apply, (x64,))
w64 = torch.from_numpy(rng.standard_normal(3)).requires_grad_(True)
results["gradcheck_split"] = torch.autograd.gradcheck(SplitScale.apply, (x64, w64))

# second derivatives through the custom ops: d2/dx2 of sum(softplus(x)) = beta s (1 - s)
x = torch.from_numpy(rng.standard_normal(5).astype(np.float32)).requires_grad_(True)
(g,) = torch.autograd.grad(SoftplusFn.apply(x, 1.5).sum(), x, create_graph=True)
(h,) = torch.autograd.grad(g.sum(), x)
results["second_deriv"] = h.tolist()
v = torch.ones(5)
(g2,) = torch.autograd.grad(TanhOut.apply(x).pow(2).sum(), x, create_graph=True)
(hv,) = torch.autograd.grad(g2, x, grad_outputs=v)
results["tanh_hvp"] = hv.tolist()

# unused output: g_sum is None in backward
xs = torch.from_numpy(rng.standard_normal((4, 3)).astype(np.float32)).requires_grad_(True)
ws = torch.from_numpy(rng.standard_normal(3).astype(np.float32)).requires_grad_(True)
scaled, total = SplitScale.apply(xs, ws)
scaled.pow(2).sum().backward()
results["split_gx"] = xs.grad.flatten().tolist()
results["split_gw"] = ws.grad.tolist()
xs.grad = None
scaled, total = SplitScale.apply(xs, ws.detach())
total.pow(2).sum().backward()
results["split_sum_only"] = xs.grad.flatten().tolist()

# once_differentiable: first derivative fine, a second one raises
xe = torch.tensor([0.5, 2.0, 4.0], requires_grad=True)
(ge,) = torch.autograd.grad(ClampedExp.apply(xe).sum(), xe, create_graph=True)
results["clamped_exp_grad"] = ge.tolist()
try:
    torch.autograd.grad(ge.sum(), xe)
    results["once_diff_error"] = "none"
except RuntimeError:
    results["once_diff_error"] = "RuntimeError"

xt = torch.from_numpy(rng.standard_normal((3, 4)).astype(np.float32)).requires_grad_(True)
vals, idx = TopIndex.apply(xt)
results["idx_requires_grad"] = idx.requires_grad
(vals * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
results["top_grad"] = xt.grad.flatten().tolist()
results["idx"] = idx.tolist()


# WGAN-GP critic through the custom activation
class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(2, 16)
        self.l2 = nn.Linear(16, 16)
        self.l3 = nn.Linear(16, 1)

    def forward(self, x):
        x = SoftplusFn.apply(self.l1(x), 2.0)
        x = TanhOut.apply(self.l2(x))
        return self.l3(x)


critic = Critic()
W = reference_weights(critic)
with torch.no_grad():
    for n_, p in critic.named_parameters():
        p.copy_(torch.from_numpy(W[n_]))
opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
losses, gps = [], []
for step in range(10):
    real = torch.from_numpy(rng.standard_normal((16, 2)).astype(np.float32) + 2.0)
    fake = torch.from_numpy(rng.standard_normal((16, 2)).astype(np.float32))
    alpha = torch.from_numpy(rng.uniform(size=(16, 1)).astype(np.float32))
    interp = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(interp).sum(), interp, create_graph=True)
    gp = ((grad.norm(2, dim=1) - 1) ** 2).mean()
    loss = critic(fake).mean() - critic(real).mean() + 10 * gp
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    gps.append(gp.item())
results["wgan_losses"] = losses
results["wgan_gps"] = gps
report(**results)
