# Lagrangian Neural Networks (Cranmer et al. 2020) ported from JAX to torch.func as their PyTorch
# reimplementations write them: a scalar L(q, qdot) MLP with softplus, the Euler-Lagrange
# acceleration qddot = (d2L/dqdot2)^-1 (dL/dq - d2L/(dq dqdot) qdot) from torch.func.hessian and
# jacrev over the concatenated state, vmap over the batch (in_dims), linalg.pinv for the mass
# matrix, trained on a double pendulum's analytic accelerations (float64 data, float32 model);
# a Hamiltonian network beside it (symplectic gradient from jacrev), both rolled out by RK4,
# energy drift of the learned dynamics, and jvp / jacfwd cross-checks of the Hessian blocks.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.func import hessian, jacfwd, jacrev, jvp, vmap

rng = np.random.default_rng(67)
g_, m1, m2, l1, l2 = 9.8, 1.0, 1.0, 1.0, 1.0


def analytic(state):
    t1, t2, w1, w2 = state
    a1 = (l2 / l1) * (m2 / (m1 + m2)) * np.cos(t1 - t2)
    a2 = (l1 / l2) * np.cos(t1 - t2)
    f1 = -(l2 / l1) * (m2 / (m1 + m2)) * (w2**2) * np.sin(t1 - t2) - (g_ / l1) * np.sin(t1)
    f2 = (l1 / l2) * (w1**2) * np.sin(t1 - t2) - (g_ / l2) * np.sin(t2)
    g1 = (f1 - a1 * f2) / (1 - a1 * a2)
    g2 = (f2 - a2 * f1) / (1 - a1 * a2)
    return np.array([w1, w2, g1, g2])


states = rng.uniform([-0.8, -0.8, -1, -1], [0.8, 0.8, 1, 1], (64, 4))
targets = np.stack([analytic(s) for s in states])[:, 2:]
S = torch.from_numpy(states.astype(np.float32))
A = torch.from_numpy(targets.astype(np.float32))


class LNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, 32), nn.Softplus(), nn.Linear(32, 32), nn.Softplus(), nn.Linear(32, 1)
        )

    def lagrangian(self, x):  # x: (4,) -> scalar
        return self.net(x).squeeze(-1)

    def accel(self, x):
        n = x.shape[0] // 2
        qdot = x[n:]
        H = hessian(self.lagrangian)(x)
        J = jacrev(self.lagrangian)(x)
        mass = H[n:, n:]
        cross = H[n:, :n]
        return torch.linalg.pinv(mass) @ (J[:n] - cross @ qdot)

    def forward(self, xb):
        return vmap(self.accel)(xb)


class HNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 1))

    def field(self, x):
        dH = jacrev(lambda z: self.net(z).squeeze(-1))(x)
        return torch.cat([dH[2:], -dH[:2]])

    def forward(self, xb):
        return vmap(self.field)(xb)


def init(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[n]))


lnn = LNN()
init(lnn)
opt = torch.optim.Adam(lnn.parameters(), lr=3e-3)
lnn_losses = []
for step in range(10):
    pred = lnn(S)
    loss = (pred - A).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(lnn.parameters(), 10.0)
    opt.step()
    lnn_losses.append(loss.item())

# HNN on the same data through a canonical momentum p = qdot (unit masses, a toy target)
hnn = HNN()
init(hnn)
hopt = torch.optim.Adam(hnn.parameters(), lr=3e-3)
target_field = torch.cat([S[:, 2:], A], 1)
hnn_losses = []
for step in range(10):
    loss = (hnn(S) - target_field).pow(2).mean()
    hopt.zero_grad()
    loss.backward()
    hopt.step()
    hnn_losses.append(loss.item())


def rk4(f, x, h, n):
    traj = [x]
    for _ in range(n):
        k1 = f(x)
        k2 = f(x + h / 2 * k1)
        k3 = f(x + h / 2 * k2)
        k4 = f(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        traj.append(x)
    return torch.stack(traj)


x0 = S[:2].detach()
with torch.no_grad():
    traj_l = rk4(lambda x: torch.cat([x[:, 2:], lnn(x)], 1), x0, 0.05, 8)
    traj_h = rk4(hnn, x0, 0.05, 8)
    energy = vmap(lambda z: hnn.net(z).squeeze(-1))(traj_h.reshape(-1, 4)).view(9, 2)

# cross-checks: Hessian blocks by jacfwd(jacrev) and by jvp
x = S[0]
H1 = hessian(lnn.lagrangian)(x)
H2 = jacfwd(jacrev(lnn.lagrangian))(x)
v = torch.tensor([0.0, 0.0, 1.0, 0.0])
_, Hv = jvp(jacrev(lnn.lagrangian), (x,), (v,))

report(
    lnn_losses=lnn_losses,
    hnn_losses=hnn_losses,
    traj_l=traj_l[:, 0].flatten().tolist(),
    traj_h=traj_h[:, 1].flatten().tolist(),
    energy_drift=(energy[-1] - energy[0]).tolist(),
    hess_same=torch.allclose(H1, H2, atol=1e-6),
    hess_sym=torch.allclose(H1, H1.T, atol=1e-6),
    hv=Hv.tolist(),
    hess_col=H1[:, 2].tolist(),
)
