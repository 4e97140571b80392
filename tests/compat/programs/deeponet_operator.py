# DeepONet (Lu et al. 2021) as the DeepXDE-style PyTorch scripts write it: learning the
# antiderivative operator G(u)(y) = int_0^y u from input functions sampled from a Gaussian
# random field (NumPy, an RBF kernel's Cholesky factor); a branch MLP on m sensor values, a trunk
# MLP on the query location, the output by einsum("bi,bni->bn") plus a scalar bias Parameter;
# Adam with an ExponentialLR; the relative L2 error; a physics-informed variant trained only on
# dG/dy = u(y) (autograd.grad with create_graph through the trunk) and G(0) = 0; a POD-DeepONet
# whose trunk is the leading left singular vectors of the training outputs (torch.linalg.svd),
# and the unstacked form with a shared trunk queried at many points.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(3)
m, n_train, n_test, P = 20, 24, 8, 12
sensors = np.linspace(0, 1, m)
K = np.exp(-0.5 * (sensors[:, None] - sensors[None, :]) ** 2 / 0.2**2) + 1e-6 * np.eye(m)
L = np.linalg.cholesky(K)
U = (L @ rng.standard_normal((m, n_train + n_test))).T  # input functions at the sensors
S = np.concatenate(
    [
        np.zeros((U.shape[0], 1)),
        np.cumsum((U[:, 1:] + U[:, :-1]) / 2 * (sensors[1] - sensors[0]), 1),
    ],
    1,
)
ys = rng.integers(0, m, (n_train + n_test, P))
u_t = torch.tensor(U, dtype=torch.float32)
y_t = torch.tensor(sensors[ys], dtype=torch.float32).unsqueeze(-1)
s_t = torch.tensor(np.take_along_axis(S, ys, 1), dtype=torch.float32)
uy_t = torch.tensor(np.take_along_axis(U, ys, 1), dtype=torch.float32)


def mlp(sizes, act=nn.Tanh):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers[:-1])


class DeepONet(nn.Module):
    def __init__(self, m, p=16, width=32):
        super().__init__()
        self.branch = mlp([m, width, width, p])
        self.trunk = mlp([1, width, width, p])
        self.b0 = nn.Parameter(torch.zeros(1))

    def forward(self, u, y):
        b = self.branch(u)  # (B, p)
        t = torch.tanh(self.trunk(y))  # (B, N, p)
        return torch.einsum("bi,bni->bn", b, t) + self.b0


def init(model):
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    return model


def rel_l2(pred, true):
    return (torch.linalg.norm(pred - true, dim=1) / torch.linalg.norm(true, dim=1)).mean()


results = {}
net = init(DeepONet(m))
opt = torch.optim.Adam(net.parameters(), lr=3e-3)
sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.95)
losses = []
for it in range(25):
    pred = net(u_t[:n_train], y_t[:n_train])
    loss = ((pred - s_t[:n_train]) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
results["losses"] = losses
results["lr_end"] = sched.get_last_lr()[0]
with torch.no_grad():
    results["test_rel_l2"] = rel_l2(net(u_t[n_train:], y_t[n_train:]), s_t[n_train:]).item()

# physics-informed: only dG/dy = u(y) and G(u)(0) = 0
pi = init(DeepONet(m))
opt = torch.optim.Adam(pi.parameters(), lr=3e-3)
pi_losses = []
zeros = torch.zeros(n_train, 1, 1)
for it in range(12):
    y = y_t[:n_train].clone().requires_grad_(True)
    g = pi(u_t[:n_train], y)
    (dg,) = torch.autograd.grad(g.sum(), y, create_graph=True)
    res = dg.squeeze(-1) - uy_t[:n_train]
    bc = pi(u_t[:n_train], zeros)
    loss = (res**2).mean() + (bc**2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    pi_losses.append(loss.item())
results["pi_losses"] = pi_losses

# POD-DeepONet: the trunk is fixed to the leading modes of the training outputs on the grid
S_t = torch.tensor(S, dtype=torch.float32)
mean = S_t[:n_train].mean(0)
Um, Sv, Vh = torch.linalg.svd(S_t[:n_train] - mean, full_matrices=False)
modes = Vh[:6].T  # (m, 6)
results["pod_singular"] = Sv[:6].tolist()
branch = init(nn.Sequential(nn.Linear(m, 32), nn.Tanh(), nn.Linear(32, 6)))
opt = torch.optim.Adam(branch.parameters(), lr=5e-3)
pod_losses = []
for it in range(15):
    pred = branch(u_t[:n_train]) @ modes.T + mean
    loss = ((pred - S_t[:n_train]) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    pod_losses.append(loss.item())
results["pod_losses"] = pod_losses

# unstacked: one trunk evaluation on the whole grid shared by every input function
with torch.no_grad():
    grid = torch.from_numpy(sensors.astype(np.float32)).view(-1, 1)
    t = torch.tanh(net.trunk(grid))  # (m, p)
    full = net.branch(u_t[n_train:]) @ t.T + net.b0
    results["grid_rel_l2"] = rel_l2(full, S_t[n_train:]).item()
    results["grid_first"] = full[0, ::4].tolist()
report(**results)
