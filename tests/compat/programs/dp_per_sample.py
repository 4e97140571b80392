# Per-sample gradients and DP-SGD in the shape of the torch.func tutorials ("Per-sample
# gradients", "Jacobians, Hessians, hvp, vhp") and Opacus-style code: functional_call over
# (params, buffers) dicts, vmap(grad(loss), in_dims=(None, None, 0, 0)) checked against a
# loop of backward calls, grad_and_value(has_aux=True), per-sample clipping to a norm bound and
# (NumPy) Gaussian noise, vmap with out_dims / chunk_size / nested vmap, jacrev and jacfwd of a
# model w.r.t. its input and its parameters (argnums tuples), hessian, vjp / jvp / hvp by
# forward-over-reverse, vmap over a BatchNorm model in eval, and torch.func.linearize.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.func import (
    functional_call,
    grad,
    grad_and_value,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    linearize,
    vjp,
    vmap,
)

rng = np.random.default_rng(99)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class SimpleCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = F.max_pool2d(x, 1)
        return self.fc(x.flatten(1))


model = load(SimpleCNN())
data = torch.from_numpy(rng.standard_normal((16, 1, 6, 6)).astype(np.float32))
targets = torch.from_numpy(rng.integers(0, 3, size=16))
with torch.no_grad():  # warm the running statistics, then per-sample work in eval
    model(data)
model.eval()
params = {k: v.detach() for k, v in model.named_parameters()}
buffers = {k: v.detach() for k, v in model.named_buffers()}


def compute_loss(params, buffers, sample, target):
    batch = sample.unsqueeze(0)
    predictions = functional_call(model, (params, buffers), (batch,))
    return F.cross_entropy(predictions, target.unsqueeze(0))


ft_compute_grad = grad(compute_loss)
ft_compute_sample_grad = vmap(ft_compute_grad, in_dims=(None, None, 0, 0))
ft_per_sample_grads = ft_compute_sample_grad(params, buffers, data, targets)

loop_grads = []
for i in range(4):
    model.zero_grad()
    F.cross_entropy(model(data[i : i + 1]), targets[i : i + 1]).backward()
    loop_grads.append(model.fc.weight.grad.clone())
match_loop = all(
    torch.allclose(ft_per_sample_grads["fc.weight"][i], loop_grads[i], atol=1e-6) for i in range(4)
)

# DP-SGD: clip each sample's gradient to norm C, add noise, average
C, sigma, lr = 1.0, 0.5, 0.1
dp_losses, dp_norms = [], []
names = list(params)
for step in range(5):

    def loss_with_aux(params, buffers, sample, target):
        out = functional_call(model, (params, buffers), (sample.unsqueeze(0),))
        loss = F.cross_entropy(out, target.unsqueeze(0))
        return loss, out.argmax(1)

    grads, (losses, preds) = vmap(
        grad_and_value(loss_with_aux, has_aux=True), in_dims=(None, None, 0, 0)
    )(params, buffers, data, targets)
    flat = torch.cat([grads[n].reshape(16, -1) for n in names], dim=1)
    norms = flat.norm(2, dim=1)
    factor = (C / (norms + 1e-6)).clamp(max=1.0)
    for n in names:
        g = torch.einsum("i,i...->...", factor, grads[n])
        noise = torch.from_numpy(rng.standard_normal(tuple(g.shape)).astype(np.float32) * sigma * C)
        params[n] = params[n] - lr * (g + noise) / 16
    dp_losses.append(losses.mean().item())
    dp_norms.append(norms.tolist())
acc = (preds == targets).float().mean().item()

# transforms on a small MLP: jacobians, hessians, vjp / jvp, hvp, nested vmap, chunk_size
mlp = load(nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)))
mp = {k: v.detach() for k, v in mlp.named_parameters()}
xs = torch.from_numpy(rng.standard_normal((4, 3)).astype(np.float32))


def f(p, x):
    return functional_call(mlp, p, (x,))


jac_x = vmap(jacrev(f, argnums=1), in_dims=(None, 0))(mp, xs)
jac_x_fwd = vmap(jacfwd(f, argnums=1), in_dims=(None, 0))(mp, xs)
jac_p = jacrev(f, argnums=0)(mp, xs[0])
hess_x = vmap(hessian(lambda x: f(mp, x).sum()))(xs)
out, vjp_fn = vjp(lambda x: f(mp, x), xs)
(vjp_x,) = vjp_fn(torch.ones_like(out))
_, jvp_out = jvp(lambda x: f(mp, x), (xs,), (torch.ones_like(xs),))


def hvp(fun, primals, tangents):
    return jvp(grad(fun), primals, tangents)[1]


hvp_out = hvp(lambda x: f(mp, x).pow(2).sum(), (xs[0],), (torch.tensor([1.0, 0.0, -1.0]),))
pairwise = vmap(vmap(lambda a, b: (a - b).pow(2).sum(), in_dims=(None, 0)), in_dims=(0, None))(
    xs, xs
)
chunked = vmap(lambda x: f(mp, x), chunk_size=3)(xs)
moved = vmap(lambda x: torch.stack([x, 2 * x]), out_dims=1)(xs)
lin_out, lin_fn = linearize(lambda x: f(mp, x), xs[0])
lin_t = lin_fn(torch.tensor([0.5, -0.5, 1.0]))
jac_multi = jacrev(lambda a, b: (a * b).sum(0) + a.pow(3).sum(0), argnums=(0, 1))(xs, xs.flip(0))

report(
    per_sample_shapes={k: list(v.shape) for k, v in ft_per_sample_grads.items()},
    per_sample_fc=ft_per_sample_grads["fc.weight"][:3].flatten().tolist(),
    per_sample_conv=ft_per_sample_grads["conv.weight"].sum(dim=(1, 2, 3, 4)).tolist(),
    per_sample_bn=ft_per_sample_grads["bn.weight"].flatten().tolist(),
    match_loop=match_loop,
    dp_losses=dp_losses,
    dp_norms=dp_norms,
    dp_acc=acc,
    jac_x=jac_x.flatten().tolist(),
    jac_same=torch.allclose(jac_x, jac_x_fwd, atol=1e-6),
    jac_p_shapes={k: list(v.shape) for k, v in jac_p.items()},
    jac_p_w0=jac_p["0.weight"].flatten().tolist(),
    hess_x=hess_x.flatten().tolist(),
    vjp_x=vjp_x.flatten().tolist(),
    jvp_out=jvp_out.flatten().tolist(),
    hvp=hvp_out.tolist(),
    pairwise=pairwise.flatten().tolist(),
    chunked=chunked.flatten().tolist(),
    moved_shape=list(moved.shape),
    lin=[lin_out.tolist(), lin_t.tolist()],
    jac_multi=[jac_multi[0].flatten().tolist(), list(jac_multi[1].shape)],
)
