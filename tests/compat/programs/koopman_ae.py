# Deep Koopman autoencoders (Lusch et al. 2018; Azencot et al. 2020) as their PyTorch code
# writes them: trajectories of a nonlinear pendulum integrated by RK4 in NumPy, an encoder /
# decoder MLP pair around a linear Koopman operator K (an nn.Linear without bias initialised
# near the identity by orthogonal-plus-noise weights copied in), the reconstruction, linearity
# (K^k phi(x_0) against phi(x_k)) and multi-step prediction losses over a horizon by repeated
# application, an L-infinity penalty (the max of the first steps' errors), a consistency term
# with a backward operator D (D K ~ I by torch.linalg.matrix_norm), Adam with a StepLR; the
# learned K's eigenvalues by torch.linalg.eigvals (moduli and angles sorted), its powers by
# torch.linalg.matrix_power, and long-horizon rollouts in the latent space.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(109)


def pendulum(s):
    return np.stack([s[:, 1], -np.sin(s[:, 0])], 1)


def rk4(s, dt):
    k1 = pendulum(s)
    k2 = pendulum(s + dt / 2 * k1)
    k3 = pendulum(s + dt / 2 * k2)
    k4 = pendulum(s + dt * k3)
    return s + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


n_traj, steps, dt = 16, 12, 0.1
s = np.stack([rng.uniform(-2, 2, n_traj), rng.uniform(-1, 1, n_traj)], 1)
traj = [s]
for _ in range(steps):
    s = rk4(s, dt)
    traj.append(s)
X = torch.from_numpy(np.stack(traj, 1).astype(np.float32))  # (n, T+1, 2)


class KoopmanAE(nn.Module):
    def __init__(self, n=2, latent=6, hidden=32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(n, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden),
            nn.Tanh(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
            nn.Linear(hidden, n),
        )
        self.K = nn.Linear(latent, latent, bias=False)
        self.D = nn.Linear(latent, latent, bias=False)

    def forward(self, x0, horizon):
        z = self.encoder(x0)
        zs = [z]
        for _ in range(horizon):
            z = self.K(z)
            zs.append(z)
        return torch.stack(zs, 1)


model = KoopmanAE()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((6, 6)))
    model.K.weight.copy_(torch.from_numpy((0.9 * np.eye(6) + 0.1 * q).astype(np.float32)))
    # D starts from its reference weights: set to inv(K), the consistency term and its
    # gradient were 0 up to rounding (78% apart between the libraries) and Adam stepped on them
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
horizon = 8
log = {"recon": [], "lin": [], "pred": [], "inf": [], "cons": []}
for epoch in range(12):
    z_roll = model(X[:, 0], horizon)
    z_true = model.encoder(X[:, : horizon + 1])
    x_rec = model.decoder(z_true)
    recon = ((x_rec - X[:, : horizon + 1]) ** 2).mean()
    lin = ((z_roll[:, 1:] - z_true[:, 1:]) ** 2).mean()
    x_pred = model.decoder(z_roll[:, 1:])
    pred = ((x_pred - X[:, 1 : horizon + 1]) ** 2).mean()
    linf = (x_rec[:, 0] - X[:, 0]).abs().max() + (x_pred[:, 0] - X[:, 1]).abs().max()
    eye = torch.eye(6)
    cons = torch.linalg.matrix_norm(model.D.weight @ model.K.weight - eye) ** 2 + (
        torch.linalg.matrix_norm(model.K.weight @ model.D.weight - eye) ** 2
    )
    loss = recon + lin + pred + 1e-3 * linf + 0.1 * cons
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    for k, v in zip(log, (recon, lin, pred, linf, cons)):
        log[k].append(v.item())

with torch.no_grad():
    ev = torch.linalg.eigvals(model.K.weight)
    mod = ev.abs()
    order = torch.argsort(mod, descending=True)
    log["eig_moduli"] = mod[order].tolist()
    log["eig_angle_abs"] = sorted(ev.angle().abs().tolist())
    K5 = torch.linalg.matrix_power(model.K.weight, 5)
    z0 = model.encoder(X[:, 0])
    log["power_vs_roll"] = bool(torch.allclose(z0 @ K5.T, model(X[:, 0], 5)[:, -1], atol=1e-5))
    long_roll = model.decoder(model(X[:2, 0], 30))
    log["long_roll_end"] = long_roll[:, -1].flatten().tolist()
report(**log)
