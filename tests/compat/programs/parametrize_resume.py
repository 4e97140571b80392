# Constrained layers and exact resumption, in the shape of the "Parametrizations" tutorial,
# orthogonal-RNN / Lipschitz-GAN reference code and training scripts that checkpoint to memory:
# parametrizations.orthogonal with each orthogonal_map (matrix_exp, cayley, householder),
# spectral_norm (its power-iteration vectors restored from a checkpoint), weight_norm (dim=None
# and dim=0), a user parametrization with right_inverse and a chain of two, parametrize.cached(),
# remove_parametrizations(leave_parametrized=True / False), state_dict keys; the legacy
# nn.utils.spectral_norm / weight_norm hooks; parameters_to_vector / vector_to_parameters and
# clip_grad_value_; then a full checkpoint (model, optimizer, scheduler, epoch) through
# torch.save to a BytesIO and torch.load(weights_only=True, map_location="cpu"), resumed into
# fresh objects: the resumed run must equal the uninterrupted one step for step.
import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from compat_helpers import reference_weights, report
from torch.nn.utils import parametrizations

rng = np.random.default_rng(31)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.asarray(W[name])))
    return model


def arr(*shape):
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


class MatrixExponential(nn.Module):
    def forward(self, X):
        return torch.matrix_exp(X)


class PositiveScale(nn.Module):
    def forward(self, X):
        return F.softplus(X)

    def right_inverse(self, Y):
        return Y.expm1().log()


# orthogonal maps: the weight is orthogonal after training steps
ortho = {}
x = arr(8, 5)
for omap in ("matrix_exp", "cayley", "householder"):
    # weights first: registration orthogonalises them into the trivialization's base
    layer = parametrizations.orthogonal(load(nn.Linear(5, 5, bias=False)), orthogonal_map=omap)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    losses = []
    for step in range(4):
        loss = (layer(x) - x.flip(1)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    W = layer.weight
    ortho[omap] = losses
    ortho[omap + "_is_orthogonal"] = torch.allclose(W @ W.T, torch.eye(5), atol=1e-5)
    ortho[omap + "_keys"] = sorted(layer.state_dict().keys())

# spectral norm: power iteration from restored vectors
sn = parametrizations.spectral_norm(nn.Linear(6, 4), n_power_iterations=2)
load(sn)
sn_param = sn.parametrizations.weight[0]
with torch.no_grad():
    sn_param._u.copy_(F.normalize(arr(4), dim=0))
    sn_param._v.copy_(F.normalize(arr(6), dim=0))
opt = torch.optim.Adam(sn.parameters(), lr=1e-2)
xs = arr(10, 6)
sn_losses, sigmas = [], []
for step in range(5):
    loss = sn(xs).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sn_losses.append(loss.item())
sn.eval()
with torch.no_grad():
    sigma_est = torch.linalg.matrix_norm(sn.weight, ord=2).item()
    sn_u = sn_param._u.tolist()

# weight norm, user parametrizations, a chain, caching, removal
wn = load(parametrizations.weight_norm(nn.Linear(4, 3), dim=0))
wn_none = load(parametrizations.weight_norm(nn.Linear(4, 3), dim=None))
sym = nn.Linear(4, 4)
parametrize.register_parametrization(sym, "weight", Symmetric())
parametrize.register_parametrization(sym, "weight", MatrixExponential())
load(sym)
pos = nn.Linear(4, 4)
parametrize.register_parametrization(pos, "bias", PositiveScale())
with torch.no_grad():
    pos.bias = torch.tensor([0.5, 1.0, 2.0, 3.0])  # through right_inverse
xw = arr(5, 4)
with parametrize.cached():
    out_cached = sym(xw) + sym(xw)
(wn(xw).sum() + wn_none(xw).sum() + out_cached.sum() + pos(xw).sum()).backward()
param = {
    "wn_keys": sorted(wn.state_dict().keys()),
    "wn_g_shape": list(wn.parametrizations.weight.original0.shape),
    "wn_none_g_shape": list(wn_none.parametrizations.weight.original0.shape),
    "wn_g_grad": wn.parametrizations.weight.original0.grad.flatten().tolist(),
    "wn_v_grad": wn_none.parametrizations.weight.original1.grad.flatten().tolist(),
    "sym_weight_symmetric": torch.allclose(sym.weight, sym.weight.T, atol=1e-6),
    "sym_grad": sym.parametrizations.weight.original.grad.flatten().tolist(),
    "pos_bias": pos.bias.tolist(),
    "pos_original": pos.parametrizations.bias.original.tolist(),
    "is_parametrized": [parametrize.is_parametrized(sym), parametrize.is_parametrized(sym, "bias")],
}
w_before = sym.weight.detach().clone()
parametrize.remove_parametrizations(sym, "weight", leave_parametrized=True)
param["removed_keeps_value"] = torch.equal(sym.weight.detach(), w_before)
parametrize.remove_parametrizations(pos, "bias", leave_parametrized=False)
param["removed_original"] = pos.bias.tolist()
param["after_remove_keys"] = sorted(sym.state_dict().keys())

# legacy hook-based spectral_norm / weight_norm
legacy = load(nn.utils.weight_norm(nn.Linear(4, 3), name="weight"))
(legacy(xw).pow(2).sum()).backward()
param["legacy_wn_keys"] = sorted(legacy.state_dict().keys())
param["legacy_wn_g_grad"] = legacy.weight_g.grad.flatten().tolist()
nn.utils.remove_weight_norm(legacy)
param["legacy_removed_keys"] = sorted(legacy.state_dict().keys())

# flat parameter vectors and value clipping
net = load(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)))
vec = nn.utils.parameters_to_vector(net.parameters())
nn.utils.vector_to_parameters(vec * 0.5, net.parameters())
net(xw).pow(2).sum().backward()
nn.utils.clip_grad_value_(net.parameters(), clip_value=0.05)
param["vec_len"] = vec.numel()
param["clipped_grads"] = nn.utils.parameters_to_vector(p.grad for p in net.parameters()).tolist()


# checkpoint to memory and exact resumption
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 12), nn.BatchNorm1d(12), nn.GELU(), nn.Linear(12, 2))

    def forward(self, x):
        return self.body(x)


def make():
    model = load(Net())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.95), amsgrad=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-2, total_steps=10)
    return model, opt, sched


xb, yb = arr(16, 6), arr(16, 2)


def train_step(model, opt, sched):
    loss = F.mse_loss(model(xb), yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    return loss.item()


model, opt, sched = make()
straight = [train_step(model, opt, sched) for _ in range(8)]

model, opt, sched = make()
resumed = [train_step(model, opt, sched) for _ in range(4)]
buffer = io.BytesIO()
torch.save(
    {
        "epoch": 4,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
    },
    buffer,
)
size_positive = buffer.tell() > 0
buffer.seek(0)
ckpt = torch.load(buffer, weights_only=True, map_location="cpu")
model, opt, sched = make()
model.load_state_dict(ckpt["model"])
opt.load_state_dict(ckpt["optimizer"])
sched.load_state_dict(ckpt["scheduler"])
resumed += [train_step(model, opt, sched) for _ in range(ckpt["epoch"], 8)]
state = opt.state_dict()

report(
    **ortho,
    sn_losses=sn_losses,
    sigma_est=sigma_est,
    sn_u=sn_u,
    **param,
    straight=straight,
    resumed=resumed,
    resumed_equal=straight == resumed,
    size_positive=size_positive,
    epoch=ckpt["epoch"],
    opt_state_keys=sorted(state["state"][0].keys()),
    opt_group_keys=sorted(k for k in state["param_groups"][0].keys()),
    opt_step=float(state["state"][0]["step"]),
    sched_state=[ckpt["scheduler"][k] for k in ("last_epoch", "_step_count", "base_lrs")],
    bn_tracked=int(model.body[1].num_batches_tracked),
)
