# Numerical analysis in torch as physics / engineering users write it: torch.gradient with
# spacing and edge_order 1 / 2 on a 2-D grid (coordinate tensors as spacing), trapezoid and
# cumulative_trapezoid (x= and dx=), torch.diff with prepend/append, a polynomial fit by
# torch.vander + lstsq, the 1-D heat equation by an explicit stencil (roll and conv1d with
# circular padding), a Poisson solve by FFT (fftn, fftfreq, ifftn), a spectral derivative,
# a diffusion coefficient learned by backpropagating through the solver, histogramdd of
# particle positions, and the solver's conservation checks.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import report

x = torch.linspace(0, 2 * math.pi, 33)
y = torch.linspace(-1, 1, 17)
XX, YY = torch.meshgrid(x, y, indexing="ij")
Fxy = torch.sin(XX) * YY**2
gx1, gy1 = torch.gradient(Fxy, spacing=(x, y))
gx2, gy2 = torch.gradient(Fxy, spacing=(x[1] - x[0]).item(), edge_order=2)
(g_only1,) = torch.gradient(Fxy[:, 3], spacing=[x], dim=0)
grad_err = (gx1 - torch.cos(XX) * YY**2).abs().max()

trap = torch.trapezoid(torch.sin(x), x=x)
trap_dx = torch.trapezoid(Fxy, dx=(y[1] - y[0]).item(), dim=1)
cum = torch.cumulative_trapezoid(torch.cos(x), x=x)
d1 = torch.diff(torch.sin(x), prepend=torch.zeros(1), append=torch.ones(1))
d2 = torch.diff(Fxy, n=2, dim=0)

rng = np.random.default_rng(2)
xs = torch.from_numpy(rng.uniform(-1, 1, 40))
ys = 1 - 2 * xs + 0.5 * xs**3 + 0.01 * torch.from_numpy(rng.standard_normal(40))
Vd = torch.vander(xs, N=4, increasing=True)
coef = torch.linalg.lstsq(Vd, ys[:, None]).solution.squeeze(1)
Vd2 = torch.linalg.vander(xs.float(), N=3)

# heat equation u_t = k u_xx on a ring
N = 64
L = 1.0
dx = L / N
grid = torch.arange(N) * dx
u0 = torch.exp(-((grid - 0.5) ** 2) / 0.005).float()


def heat(u, k, steps, dt):
    stencil = torch.tensor([[[1.0, -2.0, 1.0]]])
    for _ in range(steps):
        lap = F.conv1d(F.pad(u[None, None], (1, 1), mode="circular"), stencil)[0, 0] / dx**2
        u = u + dt * k * lap
    return u


def heat_roll(u, k, steps, dt):
    for _ in range(steps):
        u = u + dt * k * (torch.roll(u, 1) - 2 * u + torch.roll(u, -1)) / dx**2
    return u


dt = 1e-4
u_true = heat(u0, torch.tensor(0.8), 40, dt)
same = (heat_roll(u0, 0.8, 40, dt) - u_true).abs().max()
k = torch.tensor(0.3, requires_grad=True)
opt = torch.optim.Adam([k], lr=0.05)
k_traj = []
for _ in range(8):
    loss = (heat(u0, k, 40, dt) - u_true).pow(2).mean() * 1e3
    opt.zero_grad()
    loss.backward()
    opt.step()
    k_traj.append(k.item())
mass = (u_true.sum() - u0.sum()).abs() * dx

# Poisson -lap(phi) = rho on a 2-D periodic box by FFT
M = 32
g = torch.arange(M, dtype=torch.float64) / M
GX, GY = torch.meshgrid(g, g, indexing="ij")
rho = torch.sin(2 * math.pi * GX) * torch.cos(4 * math.pi * GY)
kx = torch.fft.fftfreq(M, d=1.0 / M) * 2 * math.pi
KX, KY = torch.meshgrid(kx, kx, indexing="ij")
k2 = KX**2 + KY**2
k2[0, 0] = 1.0
phi_hat = torch.fft.fftn(rho) / k2
phi_hat[0, 0] = 0
phi = torch.fft.ifftn(phi_hat).real
phi_exact = rho / (4 * math.pi**2 * (1 + 4))
dphi = torch.fft.ifft(1j * kx * torch.fft.fft(torch.sin(2 * math.pi * g))).real

pos = torch.from_numpy(rng.standard_normal((200, 2)))
hist, edges = torch.histogramdd(pos, bins=[4, 3], range=[-2.0, 2.0, -3.0, 3.0])
hist_w, _ = torch.histogramdd(pos, bins=3, weight=pos[:, 0].abs())

report(
    grad_err=grad_err.item(),
    gx1=gx1[::8, ::4].tolist(),
    gy1=gy1[::8, ::4].tolist(),
    gx2=gx2[[0, 1, -1], 5].tolist(),
    gy2=gy2[3, [0, 1, -1]].tolist(),
    g_only1=g_only1[:4].tolist(),
    trap=trap.item(),
    trap_dx=trap_dx[::8].tolist(),
    cum=cum[::8].tolist(),
    d1=d1[:4].tolist() + d1[-2:].tolist(),
    d2=d2[::10, ::5].tolist(),
    coef=coef.tolist(),
    vander_f32=Vd2[:2].tolist(),
    same=same.item() < 1e-5,
    k_traj=k_traj,
    mass=mass.item() < 1e-4,
    phi_err=(phi - phi_exact).abs().max().item(),
    dphi_err=(dphi - 2 * math.pi * torch.cos(2 * math.pi * g)).abs().max().item() < 1e-9,
    hist=hist.tolist(),
    edges=[e.tolist() for e in edges],
    hist_w=hist_w.tolist(),
)
