# Invertible residual networks (Behrmann et al. 2019) and planar / radial flows for variational
# inference, as their reference code writes them: residual blocks g(x) made contractive by
# torch.nn.utils.parametrizations.spectral_norm (power iteration in training mode, warmed up on the
# loaded weights since u and v start from each library's random normals, a coefficient
# c < 1 applied on top), log|det(I + J_g)| by the truncated power series with a Hutchinson
# estimator (vector-Jacobian products by autograd.grad with create_graph=True, NumPy Rademacher
# probes), the inverse by fixed-point iteration under no_grad, exact log-determinants by
# torch.func.jacrev + slogdet for comparison; a planar-flow posterior for a 2-D banana density
# (the u_hat constraint through softplus for invertibility, the |1 + u^T psi| term) and radial
# flows, trained on the reverse KL with NumPy base samples; Adamax, ExponentialLR, clip_grad_value_.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.nn.utils.parametrizations import spectral_norm

rng = np.random.default_rng(29)
n = 64
theta = rng.uniform(0, 2 * np.pi, n)
data = np.stack([np.cos(theta), np.sin(theta)], 1) * (1 + 0.1 * rng.standard_normal((n, 1)))
X = torch.from_numpy(data.astype(np.float32))


class ResBlock(nn.Module):
    def __init__(self, dim, hidden, coeff=0.9):
        super().__init__()
        self.coeff = coeff
        self.l1 = spectral_norm(nn.Linear(dim, hidden), n_power_iterations=5)
        self.l2 = spectral_norm(nn.Linear(hidden, dim), n_power_iterations=5)
        self.act = nn.ELU()

    def g(self, x):
        return self.coeff * self.l2(self.act(self.coeff * self.l1(x)))

    def forward(self, x, v, n_terms=5):
        gx = self.g(x)
        # log det (I + J) = sum_k (-1)^(k+1) tr(J^k) / k, trace by Hutchinson
        logdet = torch.zeros(x.shape[0])
        w = v
        for k in range(1, n_terms + 1):
            (w,) = torch.autograd.grad(gx, x, w, create_graph=True)
            logdet = logdet + (-1) ** (k + 1) * (w * v).sum(1) / k
        return x + gx, logdet

    @torch.no_grad()
    def inverse(self, y, iters=30):
        x = y.clone()
        for _ in range(iters):
            x = y - self.g(x)
        return x


class IResNet(nn.Module):
    def __init__(self, dim=2, hidden=16, blocks=2):
        super().__init__()
        self.blocks = nn.ModuleList([ResBlock(dim, hidden) for _ in range(blocks)])

    def forward(self, x, probes):
        total = torch.zeros(x.shape[0])
        for blk, v in zip(self.blocks, probes):
            x, ld = blk(x, v)
            total = total + ld
        return x, total

    def inverse(self, z):
        for blk in reversed(self.blocks):
            z = blk.inverse(z)
        return z


def std_normal_logp(z):
    return -0.5 * (z**2).sum(1) - z.shape[1] * 0.5 * math.log(2 * math.pi)


flow = IResNet()
Wt = reference_weights(flow)
with torch.no_grad():
    for name, p in flow.named_parameters():
        p.copy_(torch.from_numpy(Wt[name]))
names = [n for n, _ in flow.named_parameters()]
# spectral_norm's u / v start from the library's own random normals: warm the power iteration up
# on the copied weights (training mode, no_grad) until sigma no longer depends on the start
with torch.no_grad():
    for _ in range(60):
        for blk in flow.blocks:
            blk.g(X)
opt = torch.optim.Adamax(flow.parameters(), lr=5e-3)
sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
nll = []
for step in range(8):
    x = X.clone().requires_grad_(True)
    probes = [
        torch.from_numpy(rng.choice([-1.0, 1.0], size=(n, 2)).astype(np.float32)) for _ in range(2)
    ]
    z, logdet = flow(x, probes)
    loss = -(std_normal_logp(z) + logdet).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_value_(flow.parameters(), 1.0)
    opt.step()
    sched.step()
    nll.append(loss.item())

flow.eval()  # spectral norm stops iterating: sigma from the stored u, v
sigmas = []
for blk in flow.blocks:
    for lin in (blk.l1, blk.l2):
        sigmas.append(torch.linalg.matrix_norm(lin.weight.detach(), ord=2).item())
x0 = X[:8].clone().requires_grad_(True)
z0, _ = flow(x0, [torch.zeros(8, 2), torch.zeros(8, 2)])
x_rec = flow.inverse(z0.detach())


def fwd_single(x):
    for blk in flow.blocks:
        x = x + blk.g(x)
    return x


jac = torch.func.vmap(torch.func.jacrev(fwd_single))(X[:8])
exact_logdet = torch.linalg.slogdet(jac).logabsdet
# series estimate with the exact trace (identity probes per coordinate)
est = torch.zeros(8)
for i in range(2):
    e = torch.zeros(8, 2)
    e[:, i] = 1.0
    xi = X[:8].clone().requires_grad_(True)
    _, ld = flow(xi, [e, e])
    est = est + ld.detach()


# planar + radial flows for VI on a banana density
def log_target(z):
    z1, z2 = z[:, 0], z[:, 1]
    return -0.5 * (z1**2 / 4 + (z2 - 0.5 * z1**2 + 1) ** 2 / 0.25)


class Planar(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.u = nn.Parameter(torch.zeros(d))
        self.w = nn.Parameter(torch.zeros(d))
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, z):
        wu = self.w @ self.u
        u_hat = self.u + (-1 + nn.functional.softplus(wu) - wu) * self.w / (self.w.norm() ** 2)
        lin = z @ self.w + self.b
        f = z + u_hat * torch.tanh(lin).unsqueeze(1)
        psi = (1 - torch.tanh(lin) ** 2).unsqueeze(1) * self.w
        return f, torch.log(torch.abs(1 + psi @ u_hat) + 1e-8)


class Radial(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.z0 = nn.Parameter(torch.zeros(d))
        self.log_alpha = nn.Parameter(torch.zeros(1))
        self.beta = nn.Parameter(torch.zeros(1))

    def forward(self, z):
        d = z.shape[1]
        alpha = self.log_alpha.exp()
        beta = -alpha + nn.functional.softplus(self.beta)
        diff = z - self.z0
        r = diff.norm(dim=1, keepdim=True)
        h = 1 / (alpha + r)
        f = z + beta * h * diff
        hp = -1 / (alpha + r) ** 2
        ld = (d - 1) * torch.log1p(beta * h) + torch.log1p(beta * h + beta * hp * r)
        return f, ld.squeeze(1)


vi = nn.ModuleList([Planar(2) if i % 2 == 0 else Radial(2) for i in range(6)])
Wv = reference_weights(vi)
with torch.no_grad():
    for name, p in vi.named_parameters():
        p.copy_(torch.from_numpy(Wv[name]) * 0.5)
vopt = torch.optim.Adam(vi.parameters(), lr=1e-2)
kls = []
for step in range(25):
    z = torch.from_numpy(rng.standard_normal((128, 2)).astype(np.float32))
    logq = std_normal_logp(z)
    for layer in vi:
        z, ld = layer(z)
        logq = logq - ld
    kl = (logq - log_target(z)).mean()
    vopt.zero_grad()
    kl.backward()
    vopt.step()
    kls.append(kl.item())

report(
    names=names,
    nll=nll,
    sigmas=sigmas,
    inverse_err_small=(x_rec - X[:8]).abs().max().item() < 1e-4,
    exact_logdet=exact_logdet.tolist(),
    series_logdet=est.tolist(),
    kls=kls,
    final_mean=z.mean(0).tolist(),
)
