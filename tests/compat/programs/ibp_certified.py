# Certified robustness by interval bound propagation (Gowal et al. 2018) and CROWN-IBP-style
# training, as the reference PyTorch code writes it: bounds pushed through nn.Sequential layer
# by layer (isinstance dispatch; Linear and Conv2d by centre / radius with W.abs(), ReLU and
# Flatten monotone), the worst-case logits from the bounds of the margin layer (c^T W folded
# into the last Linear by einsum over a specification matrix built with eye / index_select),
# a mixed natural + robust cross-entropy with an epsilon ramp and a kappa schedule, Adam;
# verified accuracy by the sign of the lower margin bounds; a PGD attack (sign gradient steps,
# projection by clamp to the box) whose adversarial accuracy must lie above the verified one.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(43)
n, C = 48, 3
centers = rng.uniform(0, 1, (C, 1, 6, 6))
labels = rng.integers(0, C, n)
X = np.clip(centers[labels] + 0.15 * rng.standard_normal((n, 1, 6, 6)), 0, 1)
X = torch.from_numpy(X.astype(np.float32))
y = torch.from_numpy(labels)

model = nn.Sequential(
    nn.Conv2d(1, 4, 3, stride=1, padding=1),
    nn.ReLU(),
    nn.Conv2d(4, 8, 3, stride=2, padding=1),
    nn.ReLU(),
    nn.Flatten(),
    nn.Linear(8 * 3 * 3, 32),
    nn.ReLU(),
    nn.Linear(32, C),
)
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))


def interval_bounds(layers, lower, upper):
    for layer in layers:
        if isinstance(layer, nn.Linear):
            mid, rad = (upper + lower) / 2, (upper - lower) / 2
            mid = F.linear(mid, layer.weight, layer.bias)
            rad = F.linear(rad, layer.weight.abs())
            lower, upper = mid - rad, mid + rad
        elif isinstance(layer, nn.Conv2d):
            mid, rad = (upper + lower) / 2, (upper - lower) / 2
            mid = F.conv2d(mid, layer.weight, layer.bias, layer.stride, layer.padding)
            rad = F.conv2d(rad, layer.weight.abs(), None, layer.stride, layer.padding)
            lower, upper = mid - rad, mid + rad
        elif isinstance(layer, (nn.ReLU, nn.Flatten)):
            lower, upper = layer(lower), layer(upper)
        else:
            raise NotImplementedError(type(layer))
    return lower, upper


def specification(y, num_classes):
    # rows: e_y - e_j for every j != y
    eye = torch.eye(num_classes)
    spec = eye[y].unsqueeze(1) - eye.unsqueeze(0)  # (B, C, C)
    keep = torch.stack(
        [torch.arange(num_classes)[torch.arange(num_classes) != k] for k in range(num_classes)]
    )
    return spec.gather(1, keep[y].unsqueeze(-1).expand(-1, -1, num_classes))  # (B, C-1, C)


def margin_lower_bound(model, x, y, eps):
    lower, upper = (x - eps).clamp(0, 1), (x + eps).clamp(0, 1)
    lower, upper = interval_bounds(list(model)[:-1], lower, upper)
    last = model[-1]
    spec = specification(y, C)
    w = torch.einsum("bsc,ch->bsh", spec, last.weight)
    b = torch.einsum("bsc,c->bs", spec, last.bias)
    mid, rad = (upper + lower) / 2, (upper - lower) / 2
    m = torch.einsum("bsh,bh->bs", w, mid) + b
    r = torch.einsum("bsh,bh->bs", w.abs(), rad)
    return m - r  # (B, C-1): lower bounds of logit_y - logit_j


def robust_ce(lb):
    # worst-case logits: 0 for the true class, -lb for the others
    worst = torch.cat([torch.zeros(lb.shape[0], 1), -lb], 1)
    return F.cross_entropy(worst, torch.zeros(lb.shape[0], dtype=torch.long))


def pgd(model, x, y, eps, alpha, steps):
    delta = torch.zeros_like(x, requires_grad=True)
    for _ in range(steps):
        loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
        (g,) = torch.autograd.grad(loss, delta)
        delta = (delta + alpha * g.sign()).clamp(-eps, eps).detach().requires_grad_(True)
    return (x + delta).clamp(0, 1).detach()


opt = torch.optim.Adam(model.parameters(), lr=3e-3)
eps_max, epochs = 0.05, 10
log = {"loss": [], "eps": [], "kappa": [], "robust": []}
for epoch in range(epochs):
    ramp = min(1.0, epoch / 5)
    eps, kappa = eps_max * ramp, 1.0 - 0.5 * ramp
    for i in range(0, n, 16):
        xb, yb = X[i : i + 16], y[i : i + 16]
        nat = F.cross_entropy(model(xb), yb)
        rob = robust_ce(margin_lower_bound(model, xb, yb, eps))
        loss = kappa * nat + (1 - kappa) * rob
        opt.zero_grad()
        loss.backward()
        opt.step()
    log["loss"].append(loss.item())
    log["eps"].append(eps)
    log["kappa"].append(kappa)
    log["robust"].append(rob.item())

results = dict(log)
with torch.no_grad():
    lb = margin_lower_bound(model, X, y, eps_max)
    verified = (lb.min(1).values > 0).float().mean().item()
    clean = (model(X).argmax(1) == y).float().mean().item()
    results["lb_first"] = lb[:3].flatten().tolist()
x_adv = pgd(model, X, y, eps_max, eps_max / 4, 8)
with torch.no_grad():
    adv = (model(x_adv).argmax(1) == y).float().mean().item()
    results["adv_margin"] = (x_adv - X).abs().max().item()
results.update(clean=clean, verified=verified, adversarial=adv, ordered=verified <= adv <= clean)
report(**results)
