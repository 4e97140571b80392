# Fitting an image with 2-D Gaussian splats, as the "Gaussian splatting from scratch" notebooks
# and gsplat's 2-D examples write it in plain PyTorch (our own program): per-splat means
# (tanh-bounded), log-scales, rotations, colours (sigmoid) and opacities (sigmoid logits) as
# nn.Parameters; covariances R S S^T R^T by stacked cos / sin rotation matrices and
# torch.diag_embed; the 2x2 inverse by the adjugate over the determinant; Mahalanobis
# distances by einsum over a pixel grid from torch.meshgrid(indexing="xy"); front-to-back
# alpha compositing with depths sorted by torch.sort, gathered with index_select, and
# transmittance by an exclusive cumprod (torch.cumprod over torch.cat([ones, 1 - alpha[:-1]]));
# Adam with per-attribute learning rates; densification in the middle of training: splats with
# the largest mean-gradient norms are cloned (nn.Parameter rebuilt by torch.cat) and
# low-opacity ones pruned by a boolean mask, the optimizer rebuilt with its Adam state carried
# over for the kept splats (exp_avg / exp_avg_sq indexed and padded with zeros, as 3DGS's
# cat_tensors_to_optimizer / _prune_optimizer do).
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import report

rng = np.random.default_rng(2)
torch.manual_seed(0)
H = W = 16

# target: two soft discs and a gradient
ys, xs = np.mgrid[0:H, 0:W] / (H - 1)
target_np = np.stack(
    [
        np.exp(-((xs - 0.3) ** 2 + (ys - 0.4) ** 2) / 0.02),
        np.exp(-((xs - 0.7) ** 2 + (ys - 0.6) ** 2) / 0.05),
        0.5 * xs,
    ],
    axis=-1,
).astype(np.float32)
target = torch.from_numpy(target_np)

N0 = 12
params = {
    "means": nn.Parameter(torch.from_numpy(rng.uniform(-0.8, 0.8, (N0, 2)).astype(np.float32))),
    # anisotropic from the start: with equal scales a rotation changes nothing, its gradient is
    # 0 up to rounding, and Adam would turn that rounding into full-size steps
    "log_scales": nn.Parameter(
        torch.from_numpy(rng.uniform(math.log(0.08), math.log(0.25), (N0, 2)).astype(np.float32))
    ),
    "rotations": nn.Parameter(torch.from_numpy(rng.uniform(0, np.pi, N0).astype(np.float32))),
    "colors": nn.Parameter(torch.from_numpy(rng.uniform(-1, 1, (N0, 3)).astype(np.float32))),
    "opacity": nn.Parameter(torch.zeros(N0)),
    "depth": nn.Parameter(torch.from_numpy(rng.uniform(0, 1, N0).astype(np.float32))),
}
LRS = {"means": 0.02, "log_scales": 0.02, "rotations": 0.02, "colors": 0.05, "opacity": 0.05,
       "depth": 0.0}  # fmt: skip


def make_optimizer(params):
    return torch.optim.Adam([{"params": [p], "lr": LRS[k], "name": k} for k, p in params.items()])


def covariances(log_scales, rotations):
    c, s = torch.cos(rotations), torch.sin(rotations)
    R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)  # N,2,2
    S = torch.diag_embed(torch.exp(log_scales))
    M = R @ S
    return M @ M.transpose(-1, -2)


def render(p):
    means = torch.tanh(p["means"])
    cov = covariances(p["log_scales"], p["rotations"])
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] * cov[:, 1, 0]
    inv = (
        torch.stack(
            [
                torch.stack([cov[:, 1, 1], -cov[:, 0, 1]], -1),
                torch.stack([-cov[:, 1, 0], cov[:, 0, 0]], -1),
            ],
            -2,  # fmt: skip
        )
        / det[:, None, None]
    )
    gx, gy = torch.meshgrid(torch.linspace(-1, 1, W), torch.linspace(-1, 1, H), indexing="xy")
    pix = torch.stack([gx, gy], -1).reshape(-1, 2)  # P,2
    d = pix[None, :, :] - means[:, None, :]  # N,P,2
    maha = torch.einsum("npi,nij,npj->np", d, inv, d)
    alpha = torch.sigmoid(p["opacity"])[:, None] * torch.exp(-0.5 * maha)  # N,P
    alpha = alpha.clamp(max=0.99)
    order = torch.sort(p["depth"].detach()).indices
    alpha = alpha.index_select(0, order)
    colors = torch.sigmoid(p["colors"]).index_select(0, order)  # N,3
    T = torch.cumprod(torch.cat([torch.ones_like(alpha[:1]), 1 - alpha[:-1]], 0), 0)
    weights = alpha * T  # N,P
    img = weights.transpose(0, 1) @ colors  # P,3
    return img.reshape(H, W, 3), weights.sum(0).reshape(H, W)


def densify(params, optimizer, grad_accum, n_clone=4, min_opacity=0.2):
    grads = grad_accum.norm(dim=-1)
    clone_idx = torch.topk(grads, n_clone).indices
    keep = torch.sigmoid(params["opacity"].detach()) > min_opacity
    keep[clone_idx] = True
    new_params, new_state = {}, {}
    for group in optimizer.param_groups:
        name = group["name"]
        old = group["params"][0]
        state = optimizer.state[old]
        kept = old.detach()[keep]
        extra = old.detach()[clone_idx]
        if name == "means":
            extra = extra + 0.05
        new_params[name] = nn.Parameter(torch.cat([kept, extra], 0))
        if state:
            new_state[name] = {
                "step": state["step"],
                "exp_avg": torch.cat([state["exp_avg"][keep], torch.zeros_like(extra)], 0),
                "exp_avg_sq": torch.cat([state["exp_avg_sq"][keep], torch.zeros_like(extra)], 0),
            }
    opt = make_optimizer(new_params)
    for group in opt.param_groups:
        if group["name"] in new_state:
            opt.state[group["params"][0]] = new_state[group["name"]]
    return new_params, opt, int(keep.sum())


optimizer = make_optimizer(params)
losses, counts, coverage = [], [], []
grad_accum = torch.zeros(N0, 2)
for step in range(40):
    img, acc = render(params)
    loss = (img - target).abs().mean() + 0.2 * ((img - target) ** 2).mean()
    optimizer.zero_grad()
    loss.backward()
    grad_accum += params["means"].grad.abs()
    optimizer.step()
    losses.append(loss.item())
    if step == 19:
        params, optimizer, kept = densify(params, optimizer, grad_accum)
        counts.append(kept)
        grad_accum = torch.zeros(params["means"].shape[0], 2)
    counts.append(params["means"].shape[0])
    coverage.append(acc.mean().item())

with torch.no_grad():
    img, acc = render(params)
    psnr = -10 * torch.log10(((img - target) ** 2).mean())
report(
    losses=losses,
    counts=counts,
    coverage=coverage,
    psnr=psnr.item(),
    final_row=img[8].flatten().tolist(),
    opt_steps=[
        float(optimizer.state[g["params"][0]].get("step", -1)) for g in optimizer.param_groups
    ],
    group_names=[g["name"] for g in optimizer.param_groups],
)
