# Attribution methods as Captum implements them, written by hand the way papers' reference
# code does: Saliency (abs of input gradients, max over channels), InputXGradient, Integrated
# Gradients with scaled inputs stacked along the batch (torch.linspace alphas, a baseline,
# one autograd.grad over the expanded batch, the Riemann-trapezoid and Gauss-Legendre rules
# from np.polynomial.legendre.leggauss, the completeness delta f(x) - f(baseline) - sum(attr)),
# SmoothGrad / VarGrad with NumPy noise, Guided Backprop by a ReLU forward hook that clamps the
# gradient (register_full_backward_hook returning a tuple), DeepLIFT-rescale by the
# multipliers of a one-hidden-layer net, occlusion by sliding zero patches with unfold-free
# loops, LayerConductance-style hidden attributions by grad of the output w.r.t. a hidden
# layer captured by a forward hook, and feature ablation by groups.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(808)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        x = self.relu1(self.conv1(x))
        x = self.relu2(self.conv2(x))
        return self.fc(x.flatten(1))


net = Net()
W = reference_weights(net)
with torch.no_grad():
    for name, p in net.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
net.eval()
x = torch.from_numpy(rng.uniform(0, 1, (2, 2, 6, 6)).astype(np.float32))
target = torch.tensor([0, 2])
baseline = torch.zeros_like(x)


def forward_target(inp, tgt):
    out = net(inp)
    return out.gather(1, tgt.unsqueeze(1)).squeeze(1)


xr = x.clone().requires_grad_()
grads = torch.autograd.grad(forward_target(xr, target).sum(), xr)[0]
saliency = grads.abs().amax(dim=1)
ixg = (x * grads).sum(dim=(1, 2, 3))


def integrated_gradients(inp, base, tgt, n_steps=16, method="riemann_trapezoid"):
    if method == "riemann_trapezoid":
        alphas = torch.linspace(0, 1, n_steps)
        step_sizes = torch.full((n_steps,), 1.0 / (n_steps - 1))
        step_sizes[0] = step_sizes[-1] = 0.5 / (n_steps - 1)
    else:
        xs, ws = np.polynomial.legendre.leggauss(n_steps)
        alphas = torch.from_numpy(0.5 * (xs + 1)).float()
        step_sizes = torch.from_numpy(0.5 * ws).float()
    b = inp.shape[0]
    scaled = torch.cat([base + a * (inp - base) for a in alphas], dim=0).requires_grad_()
    out = forward_target(scaled, tgt.repeat(n_steps))
    g = torch.autograd.grad(torch.unbind(out), scaled)[0]
    g = g.view(n_steps, b, *inp.shape[1:])
    total = (g * step_sizes.view(-1, 1, 1, 1, 1)).sum(0)
    attr = total * (inp - base)
    with torch.no_grad():
        delta = forward_target(inp, tgt) - forward_target(base, tgt) - attr.sum(dim=(1, 2, 3))
    return attr, delta


ig_t, delta_t = integrated_gradients(x, baseline, target)
ig_gl, delta_gl = integrated_gradients(x, baseline, target, 8, "gausslegendre")

noise = torch.from_numpy(rng.normal(0, 0.1, (8, 2, 2, 6, 6)).astype(np.float32))
sg = []
for k in range(8):
    xn = (x + noise[k]).requires_grad_()
    sg.append(torch.autograd.grad(forward_target(xn, target).sum(), xn)[0])
sg = torch.stack(sg)
smoothgrad = sg.mean(0)
vargrad = sg.var(0, unbiased=False)


def guided_hook(module, grad_input, grad_output):
    return (torch.clamp(grad_input[0], min=0.0),)


handles = [m.register_full_backward_hook(guided_hook) for m in (net.relu1, net.relu2)]
xg = x.clone().requires_grad_()
forward_target(xg, target).sum().backward()
guided = xg.grad.clone()
for h in handles:
    h.remove()

# DeepLIFT rescale on a 2-layer MLP: multipliers (f(x) - f(x0)) / (x - x0) through the ReLU
mlp = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 1))
W = reference_weights(mlp)
with torch.no_grad():
    for name, p in mlp.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
xm = torch.from_numpy(rng.standard_normal((3, 5)).astype(np.float32))
x0 = torch.zeros(1, 5)
z, z0 = mlp[0](xm), mlp[0](x0)
a, a0 = F.relu(z), F.relu(z0)
dz = z - z0
mult = torch.where(dz.abs() > 1e-6, (a - a0) / dz, (z > 0).float())
contrib = ((mult * mlp[2].weight) @ mlp[0].weight) * (xm - x0)
deeplift_delta = (mlp(xm) - mlp(x0)).squeeze(1) - contrib.sum(1)

# occlusion
occl = torch.zeros(2, 6, 6)
with torch.no_grad():
    base_out = forward_target(x, target)
    for i in range(0, 6, 2):
        for j in range(0, 6, 2):
            xo = x.clone()
            xo[:, :, i : i + 2, j : j + 2] = 0
            occl[:, i : i + 2, j : j + 2] += (base_out - forward_target(xo, target)).view(2, 1, 1)

# layer attribution through a hooked hidden activation
store = {}
h = net.relu1.register_forward_hook(lambda m, i, o: store.__setitem__("act", o))
out = forward_target(x, target)
act_grad = torch.autograd.grad(out.sum(), store["act"])[0]
layer_attr = (act_grad * store["act"]).sum(dim=(2, 3))
h.remove()

# feature ablation by groups (channels)
with torch.no_grad():
    ablation = []
    for c in range(2):
        xa = x.clone()
        xa[:, c] = 0
        ablation.append((base_out - forward_target(xa, target)).tolist())
report(
    saliency=saliency[0, :3].tolist(),
    ixg=ixg.tolist(),
    ig=ig_t.sum(dim=(1, 2, 3)).tolist(),
    ig_pixel=ig_t[1, 0, 2].tolist(),
    delta=delta_t.tolist(),
    ig_gl=ig_gl.sum(dim=(1, 2, 3)).tolist(),
    delta_gl=delta_gl.tolist(),
    smoothgrad=smoothgrad[0, 1, 3].tolist(),
    vargrad=vargrad.sum().item(),
    guided=guided[1, 0, 1].tolist(),
    guided_nonneg_count=int((guided > 0).sum().item()),
    deeplift=contrib.tolist(),
    deeplift_delta=deeplift_delta.tolist(),
    occlusion=occl[0].tolist(),
    layer_attr=layer_attr.tolist(),
    ablation=ablation,
)
