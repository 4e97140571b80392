# torch.func beyond per-sample gradients, following the "Model ensembling", "Neural Tangent
# Kernels" and "Jacobians, Hessians, hvp, vhp, and more" tutorials: stack_module_state over
# several copies of a model and vmap(functional_call) with in_dims=(0, 0, None) on a "meta"
# base model built by copy.deepcopy(...).to("meta"); an empirical NTK from jacrev over the
# parameters, combined with einsum, in both the full and the trace form; jacrev / jacfwd
# (argnums tuples, has_aux), hessian, jvp, vjp, linearize, vmap with in_dims/out_dims and
# chunk_size, torch.func.grad_and_value; and an ensemble trained by vmapping the loss.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.func import (
    functional_call,
    grad_and_value,
    hessian,
    jacfwd,
    jacrev,
    jvp,
    linearize,
    stack_module_state,
    vjp,
    vmap,
)

rng = np.random.default_rng(71)


class SimpleMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 8)
        self.fc3 = nn.Linear(8, 3)

    def forward(self, x):
        x = x.flatten(1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def load(model, scale=1.0):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]) * scale)
    return model


num_models = 4
models = [load(SimpleMLP(), scale=1.0 + 0.1 * i) for i in range(num_models)]
data = torch.from_numpy(rng.standard_normal((num_models, 5, 6)).astype(np.float32))
minibatch = data[0]
predictions_diff_minibatch_loop = [model(minibatch) for model, minibatch in zip(models, data)]
predictions2 = [model(minibatch) for model in models]

params, buffers = stack_module_state(models)
base_model = copy.deepcopy(models[0])  # the tutorial also moves it .to("meta"): func_meta_device


def fmodel(params, buffers, x):
    return functional_call(base_model, (params, buffers), (x,))


predictions1_vmap = vmap(fmodel)(params, buffers, data)
predictions2_vmap = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, minibatch)
ens = {
    "param_shapes": {k: list(v.shape) for k, v in params.items()},
    "diff_minibatch": torch.allclose(
        predictions1_vmap, torch.stack(predictions_diff_minibatch_loop), atol=1e-3, rtol=1e-5
    ),
    "same_minibatch": torch.allclose(
        predictions2_vmap, torch.stack(predictions2), atol=1e-3, rtol=1e-5
    ),
    "preds": predictions2_vmap[:, 0].tolist(),
}

# train the whole ensemble at once: vmap the loss's gradient over the stacked parameters
targets = torch.from_numpy(rng.integers(0, 3, size=5))


def loss_fn(params, buffers, x, y):
    return F.cross_entropy(functional_call(base_model, (params, buffers), (x,)), y)


ens_losses = []
for step in range(8):
    grads, losses = vmap(grad_and_value(loss_fn), in_dims=(0, 0, None, None))(
        params, buffers, minibatch, targets
    )
    params = {k: v - 0.5 * grads[k] for k, v in params.items()}
    ens_losses.append(losses.tolist())
ens["losses"] = ens_losses

# empirical NTK (Jacot et al. 2018), as in the tutorial
net = load(SimpleMLP())
net.eval()
nparams = {k: v.detach() for k, v in net.named_parameters()}


def fnet_single(params, x):
    return functional_call(net, params, (x.unsqueeze(0),)).squeeze(0)


def empirical_ntk_jacobian_contraction(fnet_single, params, x1, x2, compute="full"):
    jac1 = vmap(jacrev(fnet_single), (None, 0))(params, x1)
    jac1 = jac1.values()
    jac1 = [j.flatten(2) for j in jac1]
    jac2 = vmap(jacrev(fnet_single), (None, 0))(params, x2)
    jac2 = jac2.values()
    jac2 = [j.flatten(2) for j in jac2]
    einsum_expr = None
    if compute == "full":
        einsum_expr = "Naf,Mbf->NMab"
    elif compute == "trace":
        einsum_expr = "Naf,Maf->NM"
    elif compute == "diagonal":
        einsum_expr = "Naf,Maf->NMa"
    result = torch.stack([torch.einsum(einsum_expr, j1, j2) for j1, j2 in zip(jac1, jac2)])
    return result.sum(0)


x_train = torch.from_numpy(rng.standard_normal((4, 6)).astype(np.float32))
x_test = torch.from_numpy(rng.standard_normal((3, 6)).astype(np.float32))
ntk = {
    c: empirical_ntk_jacobian_contraction(fnet_single, nparams, x_train, x_test, c).tolist()
    for c in ("full", "trace", "diagonal")
}


# derivatives of a small function of several arguments
def f(x, w, b):
    h = torch.tanh(x @ w + b)
    return (h**2).sum(-1), h.mean()


x = torch.from_numpy(rng.standard_normal((2, 3)).astype(np.float32))
w = torch.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
b = torch.from_numpy(rng.standard_normal(4).astype(np.float32))
jr, aux = jacrev(f, argnums=(1, 2), has_aux=True)(x, w, b)
jf, _ = jacfwd(f, argnums=(1, 2), has_aux=True)(x, w, b)


def g(w):
    return torch.tanh(x @ w).pow(3).sum()


H = hessian(g)(w)
v = torch.ones_like(w)
primal, tangent = jvp(g, (w,), (v,))
out_vjp, vjp_fn = vjp(lambda w: torch.sin(x @ w), w)
(ct,) = vjp_fn(torch.ones_like(out_vjp))
val, jvp_fn = linearize(lambda w: torch.sin(x @ w), w)
batched = vmap(lambda row, s: (row * s).sum(), in_dims=(0, None), chunk_size=1)(x, 2.0)
moved = vmap(lambda r: torch.outer(r, r), in_dims=1, out_dims=2)(x)
derivs = {
    "jacrev": [jr[0].tolist(), jr[1].tolist()],
    "jacfwd_close": all(torch.allclose(a, c, atol=1e-5) for a, c in zip(jr, jf)),
    "aux": aux.item(),
    "hessian_shape": list(H.shape),
    "hessian_trace": torch.einsum("ijij->", H).item(),
    "jvp": [primal.item(), tangent.item()],
    "vjp": ct.tolist(),
    "linearize": jvp_fn(v).tolist(),
    "linearize_val": val.tolist(),
    "batched": batched.tolist(),
    "moved_shape": list(moved.shape),
    "moved": moved[:, :, 1].tolist(),
}
report(ensemble=ens, ntk=ntk, derivs=derivs)
