# PyHessian-style curvature analysis (Yao et al. 2020) and loss-landscape plots (Li et al.
# 2018), written as the repositories do: Hessian-vector products by autograd.grad over the
# parameter list with create_graph=True, list-of-tensors helpers (group_product, group_add,
# normalization), power iteration with deflation for the top-2 eigenvalues, Hutchinson's trace
# with Rademacher vectors, stochastic Lanczos quadrature for the spectral density
# (eigh of the tridiagonal matrix), and filter-normalised random directions for 1-D / 2-D
# landscapes evaluated on a deepcopy through load_state_dict.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.set_default_dtype(torch.float64)  # curvature code is run in double to make it stable
rng = np.random.default_rng(17)
X = torch.from_numpy(rng.standard_normal((64, 5)))
y = torch.from_numpy((X.numpy()[:, 0] * X.numpy()[:, 1] > 0).astype(np.int64))

model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 2))
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n].astype(np.float64)))
opt = torch.optim.SGD(model.parameters(), lr=0.5)
train_losses = []
for _ in range(20):
    loss = F.cross_entropy(model(X), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    train_losses.append(loss.item())
params = [p for p in model.parameters() if p.requires_grad]


def group_product(xs, ys):
    return sum(torch.sum(x * y) for x, y in zip(xs, ys))


def group_add(params, update, alpha=1):
    for i, p in enumerate(params):
        params[i].data.add_(update[i] * alpha)
    return params


def normalization(v):
    s = group_product(v, v) ** 0.5
    return [vi / (s + 1e-6) for vi in v]


def orthnormal(w, v_list):
    for v in v_list:
        w = group_add(w, v, alpha=-group_product(w, v))
    return normalization(w)


loss = F.cross_entropy(model(X), y)
gradsH = torch.autograd.grad(loss, params, create_graph=True)


def hvp(v):
    return torch.autograd.grad(gradsH, params, grad_outputs=v, retain_graph=True)


vrng = np.random.default_rng(1)


def randn_like_list():
    return [torch.from_numpy(vrng.standard_normal(tuple(p.shape))) for p in params]


eigenvalues, eigenvectors = [], []
for k in range(2):
    v = normalization(randn_like_list())
    eig = None
    for _ in range(60):
        v = orthnormal(v, eigenvectors)
        Hv = hvp(v)
        tmp = group_product(Hv, v).item()
        v = normalization(Hv)
        if eig is not None and abs(eig - tmp) / (abs(eig) + 1e-6) < 1e-8:
            eig = tmp
            break
        eig = tmp
    eigenvalues.append(eig)
    eigenvectors.append(v)

trace_samples = []
for _ in range(10):
    v = [
        torch.from_numpy(vrng.integers(0, 2, tuple(p.shape)).astype(np.float64) * 2 - 1)
        for p in params
    ]
    trace_samples.append(group_product(hvp(v), v).item())

# stochastic Lanczos quadrature
m = 10
v = normalization(randn_like_list())
alphas, betas, vs = [], [], [v]
w_prev = None
for i in range(m):
    w = list(hvp(vs[-1]))
    alpha = group_product(w, vs[-1])
    alphas.append(alpha.item())
    w = [wi - alpha * vi for wi, vi in zip(w, vs[-1])]
    if i > 0:
        w = [wi - betas[-1] * vi for wi, vi in zip(w, vs[-2])]
    for u in vs:  # full reorthogonalisation
        c = group_product(w, u)
        w = [wi - c * ui for wi, ui in zip(w, u)]
    beta = group_product(w, w) ** 0.5
    if i < m - 1:
        betas.append(beta.item())
        vs.append([wi / beta for wi in w])
T = (
    torch.diag(torch.tensor(alphas))
    + torch.diag(torch.tensor(betas), 1)
    + torch.diag(torch.tensor(betas), -1)
)
ritz, Q = torch.linalg.eigh(T)
weights = Q[0] ** 2

# full Hessian for a check (small model)
flat = torch.cat([p.detach().flatten() for p in params])


def loss_flat(theta):
    chunks, off = [], 0
    for p in params:
        chunks.append(theta[off : off + p.numel()].view_as(p))
        off += p.numel()
    h = torch.tanh(X @ chunks[0].T + chunks[1])
    return F.cross_entropy(h @ chunks[2].T + chunks[3], y)


H = torch.autograd.functional.hessian(loss_flat, flat)
full_eigs = torch.linalg.eigvalsh(H)


# filter-normalised directions and landscapes
def filter_direction(net, seed):
    g = np.random.default_rng(seed)
    d = []
    for p in net.parameters():
        r = torch.from_numpy(g.standard_normal(tuple(p.shape)))
        if p.dim() <= 1:
            r.zero_()
        else:
            r.mul_(p.norm(dim=1, keepdim=True) / (r.norm(dim=1, keepdim=True) + 1e-10))
        d.append(r)
    return d


base = copy.deepcopy(model.state_dict())
d1, d2 = filter_direction(model, 10), filter_direction(model, 11)
probe = copy.deepcopy(model)
alphas_1d = torch.linspace(-1, 1, 9)
curve = []
surface = torch.zeros(5, 5)
with torch.no_grad():
    for a in alphas_1d:
        probe.load_state_dict(base)
        for p, d in zip(probe.parameters(), d1):
            p.add_(a * d)
        curve.append(F.cross_entropy(probe(X), y).item())
    grid = torch.linspace(-0.5, 0.5, 5)
    for i, a in enumerate(grid):
        for j, b in enumerate(grid):
            probe.load_state_dict(base)
            for p, u, w in zip(probe.parameters(), d1, d2):
                p.add_(a * u + b * w)
            surface[i, j] = F.cross_entropy(probe(X), y)

report(
    train_losses=train_losses,
    top_eigs=eigenvalues,
    full_top=full_eigs[-2:].flip(0).tolist(),
    trace_mean=float(np.mean(trace_samples)),
    trace_exact=H.trace().item(),
    lanczos_alphas=alphas,
    ritz=ritz.tolist(),
    ritz_weights=weights.tolist(),
    curve=curve,
    surface=surface.tolist(),
    unchanged=all(torch.equal(base[k], v) for k, v in model.state_dict().items()),
)
