# Optimal transport in PyTorch as OT code writes it without POT / geomloss: Cuturi's Sinkhorn
# in the scaling form (K = exp(-C / eps), u = a / (K @ v)) in float64 and in the log domain
# (dual potentials by logsumexp over broadcast costs, with the eps-scaling heuristic), the
# transport plan and its marginals, the debiased Sinkhorn divergence, gradients through the
# unrolled iterations against the envelope-theorem gradient of detached potentials, a point
# cloud moved onto a target by Adam on the divergence, batched losses by torch.func.vmap, the
# sliced Wasserstein distance (NumPy projections normalised by F.normalize, sorted projections),
# exact 1-D W1 by cumsum of CDFs, an entropic Wasserstein barycenter of 1-D histograms by
# iterative Bregman projections (weighted geometric means), and a DeepJDOT-style OT loss
# between a classifier's features on two domains with an nn.Module trained by SGD + momentum.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(2)


def cost_matrix(x, y, p=2):
    return (x.unsqueeze(-2) - y.unsqueeze(-3)).abs().pow(p).sum(-1)


def sinkhorn_knopp(a, b, C, reg, num_iter=100):
    K = torch.exp(-C / reg)
    u = torch.ones_like(a) / a.shape[0]
    v = torch.ones_like(b) / b.shape[0]
    for _ in range(num_iter):
        u = a / (K @ v)
        v = b / (K.t() @ u)
    return u.reshape(-1, 1) * K * v.reshape(1, -1)


def log_sinkhorn(log_a, log_b, C, eps, num_iter=50, f=None, g=None):
    if f is None:
        f = torch.zeros_like(log_a)
        g = torch.zeros_like(log_b)
    for _ in range(num_iter):
        f = -eps * torch.logsumexp(log_b.unsqueeze(-2) + (g.unsqueeze(-2) - C) / eps, dim=-1)
        g = -eps * torch.logsumexp(log_a.unsqueeze(-1) + (f.unsqueeze(-1) - C) / eps, dim=-2)
    return f, g


def entropic_ot(x, y, eps=0.05, num_iter=50, scaling=True):
    n, m = x.shape[-2], y.shape[-2]
    log_a = torch.full(x.shape[:-1], -math.log(n), dtype=x.dtype)
    log_b = torch.full(y.shape[:-1], -math.log(m), dtype=y.dtype)
    C = cost_matrix(x, y) / 2
    f = g = None
    if scaling:  # eps-scaling: warm starts from coarse temperatures
        for e in (1.0, 0.3):
            f, g = log_sinkhorn(log_a, log_b, C, e, num_iter=5, f=f, g=g)
    f, g = log_sinkhorn(log_a, log_b, C, eps, num_iter=num_iter, f=f, g=g)
    return (f * log_a.exp()).sum(-1) + (g * log_b.exp()).sum(-1), f, g, C, log_a, log_b


def sinkhorn_divergence(x, y, eps=0.05, num_iter=50):
    xy = entropic_ot(x, y, eps, num_iter)[0]
    xx = entropic_ot(x, x, eps, num_iter)[0]
    yy = entropic_ot(y, y, eps, num_iter)[0]
    return xy - 0.5 * xx - 0.5 * yy


def sliced_wasserstein(x, y, projections):
    proj = F.normalize(projections, dim=0)
    xp = torch.sort(x @ proj, dim=0)[0]
    yp = torch.sort(y @ proj, dim=0)[0]
    return ((xp - yp) ** 2).mean()


def w1_1d(a, b, dx):
    return (torch.cumsum(a, 0) - torch.cumsum(b, 0)).abs().sum() * dx


def barycenter(A, M, reg, weights, num_iter=200):
    K = torch.exp(-M / reg)
    UKv = K @ (A.T / torch.sum(K, dim=0)).T
    u = (torch.exp(torch.sum(weights * torch.log(UKv), dim=1)) / UKv.T).T
    for _ in range(num_iter):
        UKv = u * (K.T @ (A / (K @ u)))
        u = (u.T * torch.exp(torch.sum(weights * torch.log(UKv), dim=1))).T / UKv
    return torch.exp(torch.sum(weights * torch.log(UKv), dim=1))


out = {}

# ------------------------------------------------------------- scaling Sinkhorn, float64
x = torch.from_numpy(rng.standard_normal((7, 2)))
y = torch.from_numpy(rng.standard_normal((9, 2)) + 1.0)
a = torch.full((7,), 1 / 7, dtype=torch.float64)
b = torch.from_numpy(rng.dirichlet(np.ones(9)))
C = torch.cdist(x, y) ** 2
P = sinkhorn_knopp(a, b, C, reg=0.5)
out["plan_marginals"] = [P.sum(1).tolist(), P.sum(0).tolist()]
out["plan_cost"] = torch.sum(P * C).item()
log_a, log_b = a.log(), b.log()
f, g = log_sinkhorn(log_a, log_b, C, 0.5, num_iter=100)
P_log = torch.exp((f[:, None] + g[None, :] - C) / 0.5 + log_a[:, None] + log_b[None, :])
out["plan_gap"] = (P - P_log).abs().max().item() < 1e-10

# ------------------------------------------------- gradients: unrolled vs envelope theorem
xs = torch.from_numpy(rng.standard_normal((6, 2)).astype(np.float32)).requires_grad_()
ys = torch.from_numpy(rng.standard_normal((8, 2)).astype(np.float32) + 0.5)
cost, f, g, Cs, la, lb = entropic_ot(xs, ys, eps=0.1, num_iter=60)
(grad_unrolled,) = torch.autograd.grad(cost, xs)
with torch.no_grad():
    _, f, g, _, _, _ = entropic_ot(xs, ys, eps=0.1, num_iter=60)
x2 = xs.detach().clone().requires_grad_()
C2 = cost_matrix(x2, ys) / 2
plan = torch.exp((f[:, None] + g[None, :] - C2) / 0.1 + la[:, None] + lb[None, :])
(plan.detach() * C2).sum().backward()
out["cost"] = cost.item()
out["grad_unrolled"] = grad_unrolled.tolist()
out["grad_envelope"] = x2.grad.tolist()

# ------------------------------------------------------------ a flow by Sinkhorn divergence
src = nn.Parameter(torch.from_numpy(rng.standard_normal((10, 2)).astype(np.float32)))
tgt = torch.from_numpy((rng.standard_normal((12, 2)) * 0.5 + [2.0, -1.0]).astype(np.float32))
opt = torch.optim.Adam([src], lr=0.05)
flow = []
for step in range(12):
    opt.zero_grad()
    loss = sinkhorn_divergence(src, tgt, eps=0.1, num_iter=20)
    loss.backward()
    opt.step()
    flow.append(loss.item())
out["flow"] = flow
out["src_mean"] = src.mean(0).tolist()

# ------------------------------------------------------------------- batched by vmap
X = torch.from_numpy(rng.standard_normal((3, 5, 2)).astype(np.float32))
Y = torch.from_numpy(rng.standard_normal((3, 6, 2)).astype(np.float32))
batched = torch.func.vmap(lambda u, v: entropic_ot(u, v, eps=0.2, num_iter=20)[0])(X, Y)
looped = torch.stack([entropic_ot(X[i], Y[i], eps=0.2, num_iter=20)[0] for i in range(3)])
out["vmap"] = batched.tolist()
out["vmap_gap"] = (batched - looped).abs().max().item() < 1e-5

# ------------------------------------------------------------ sliced and 1-D distances
proj = torch.from_numpy(rng.standard_normal((2, 16)).astype(np.float32))
xa = torch.from_numpy(rng.standard_normal((20, 2)).astype(np.float32)).requires_grad_()
ya = torch.from_numpy(rng.standard_normal((20, 2)).astype(np.float32) * 2)
sw = sliced_wasserstein(xa, ya, proj)
sw.backward()
out["sliced"] = [sw.item(), xa.grad.abs().sum().item()]
grid = torch.linspace(0, 1, 50, dtype=torch.float64)
h1 = torch.exp(-((grid - 0.25) ** 2) / 0.005)
h1 = h1 / h1.sum()
h2 = torch.exp(-((grid - 0.7) ** 2) / 0.01)
h2 = h2 / h2.sum()
out["w1"] = w1_1d(h1, h2, 1 / 49).item()
M = (grid[:, None] - grid[None, :]) ** 2
M = M / M.max()
bary = barycenter(torch.stack([h1, h2], 1), M, 1e-2, torch.tensor([0.5, 0.5],
                  dtype=torch.float64), num_iter=100)
out["barycenter"] = [bary.sum().item(), (bary * grid).sum().item(), bary.argmax().item()]

# ---------------------------------------------------------------- DeepJDOT-style adaptation


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.feat = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 8))
        self.cls = nn.Linear(8, 3)

    def forward(self, x):
        z = self.feat(x)
        return z, self.cls(z)


net = Net()
W = reference_weights(net)
with torch.no_grad():
    for name, p in net.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
xs_d = torch.from_numpy(rng.standard_normal((12, 2)).astype(np.float32))
ys_d = torch.from_numpy(rng.integers(0, 3, 12))
xt_d = torch.from_numpy((rng.standard_normal((12, 2)) + 0.7).astype(np.float32))
sgd = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
jdot = []
for step in range(6):
    zs, ls = net(xs_d)
    zt, lt = net(xt_d)
    C_feat = torch.cdist(zs, zt) ** 2
    C_lab = -(F.one_hot(ys_d, 3).float() @ F.log_softmax(lt, dim=1).t())
    Cj = 0.01 * C_feat + C_lab
    with torch.no_grad():
        n = Cj.shape[0]
        la_ = torch.full((n,), -math.log(n))
        fj, gj = log_sinkhorn(la_, la_, Cj, 0.5, num_iter=30)
        gamma = torch.exp((fj[:, None] + gj[None, :] - Cj) / 0.5 + 2 * la_[0])
    loss = F.cross_entropy(ls, ys_d) + (gamma * Cj).sum()
    sgd.zero_grad()
    loss.backward()
    sgd.step()
    jdot.append([loss.item(), gamma.sum().item()])
out["jdot"] = jdot

report(**out)
