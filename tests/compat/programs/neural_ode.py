# Neural ODEs without torchdiffeq, in the shape of the "neural ODE from scratch" tutorials:
# (1) a fixed-step RK4 integrator through which a spiral's dynamics are fitted, first with
# LBFGS(line_search_fn="strong_wolfe") and then Adam; (2) an adaptive Dormand-Prince 5(4)
# step written with tensors (error norm by torch.linalg.vector_norm, accept/reject with
# torch.where and Python control flow on .item()); (3) a continuous normalising flow (FFJORD)
# whose log-density change uses the Hutchinson trace estimator, torch.autograd.grad with
# create_graph=True and a fixed NumPy-made probe, with augmented dynamics joined by torch.cat;
# (4) the exact trace by torch.func.jacrev and vmap on the same small problem.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.func import jacrev, vmap

rng = np.random.default_rng(5)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class ODEFunc(nn.Module):
    def __init__(self, dim=2, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))

    def forward(self, t, y):
        return self.net(y)


def rk4(func, y0, ts):
    ys = [y0]
    y = y0
    for i in range(len(ts) - 1):
        t0, dt = ts[i], ts[i + 1] - ts[i]
        k1 = func(t0, y)
        k2 = func(t0 + dt / 2, y + dt / 2 * k1)
        k3 = func(t0 + dt / 2, y + dt / 2 * k2)
        k4 = func(t0 + dt, y + dt * k3)
        y = y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        ys.append(y)
    return torch.stack(ys)  # (T, B, D)


# a damped spiral as the ground truth
true_A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])
ts = torch.linspace(0.0, 1.5, 16)
y0 = torch.from_numpy(rng.normal(0, 1, (8, 2)).astype(np.float32))
with torch.no_grad():
    true_y = rk4(lambda t, y: torch.mm(y, true_A), y0, ts)

func = load(ODEFunc())
lbfgs = torch.optim.LBFGS(func.parameters(), lr=1.0, max_iter=5, line_search_fn="strong_wolfe")


def closure():
    lbfgs.zero_grad()
    loss = (rk4(func, y0, ts) - true_y).pow(2).mean()
    loss.backward()
    return loss


lbfgs_losses = [lbfgs.step(closure).item() for _ in range(3)]
adam = torch.optim.Adam(func.parameters(), lr=5e-3)
adam_losses = []
for step in range(10):
    loss = torch.mean(torch.abs(rk4(func, y0, ts) - true_y))
    adam.zero_grad()
    loss.backward()
    adam.step()
    adam_losses.append(loss.item())

# (2) adaptive Dormand-Prince 5(4)
C = [0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0]
A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
B5 = torch.tensor([35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0])
B4 = torch.tensor([5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])


def dopri_step(f, t, y, h):
    ks = []
    for i in range(7):
        yi = y
        for j, a in enumerate(A[i]):
            yi = yi + h * a * ks[j]
        ks.append(f(t + C[i] * h, yi))
    K = torch.stack(ks, dim=0)  # (7, B, D)
    y5 = y + h * torch.einsum("s,sbd->bd", B5, K)
    y4 = y + h * torch.einsum("s,sbd->bd", B4, K)
    return y5, y5 - y4


def odeint_adaptive(f, y, t0, t1, rtol=1e-3, atol=1e-4, h=0.1):
    t, n_acc, n_rej = t0, 0, 0
    while t < t1 - 1e-9:
        h = min(h, t1 - t)
        y_new, err = dopri_step(f, t, y, h)
        scale = atol + rtol * torch.maximum(y.abs(), y_new.abs())
        err_norm = torch.linalg.vector_norm(err / scale, ord=2) / err.numel() ** 0.5
        accept = err_norm <= 1.0
        y = torch.where(accept, y_new, y)
        if accept.item():
            t += h
            n_acc += 1
        else:
            n_rej += 1
        factor = 0.9 * err_norm.clamp_min(1e-10).pow(-0.2)
        h = h * float(torch.clamp(factor, 0.2, 5.0).item())
    return y, n_acc, n_rej


with torch.no_grad():
    y_end, n_acc, n_rej = odeint_adaptive(
        lambda t, y: torch.mm(y, true_A), y0, 0.0, 1.5, rtol=1e-5, atol=1e-6, h=0.8
    )
    ode_err = (y_end - true_y[-1]).abs().max().item()
y_fit, fit_acc, _ = odeint_adaptive(func, y0[:2], 0.0, 0.5, h=0.25)
y_fit.sum().backward()
adaptive_grad = [p.grad.norm().item() for p in func.parameters()]


# (3) continuous normalising flow with Hutchinson's trace estimator
class CNF(nn.Module):
    def __init__(self, dim=2, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 1, hidden), nn.Softplus(), nn.Linear(hidden, dim))

    def forward(self, t, z):
        tt = torch.full_like(z[:, :1], t)
        return self.net(torch.cat([z, tt], dim=1))


cnf = load(CNF())
x_data = torch.from_numpy(
    np.concatenate([rng.normal(-1, 0.3, (32, 2)), rng.normal(1, 0.3, (32, 2))]).astype(np.float32)
)
probe = torch.from_numpy(rng.choice([-1.0, 1.0], size=(64, 2)).astype(np.float32))


def augmented(t, state):  # state = [z, logp]
    z = state[:, :2]
    with torch.enable_grad():
        if not z.requires_grad:
            z = z.requires_grad_(True)
        dz = cnf(t, z)
        vjp = torch.autograd.grad(dz, z, probe, create_graph=True)[0]
        trace = (vjp * probe).sum(dim=1, keepdim=True)
    return torch.cat([dz, -trace], dim=1)


base = torch.distributions.Normal(0.0, 1.0)
cnf_opt = torch.optim.Adam(cnf.parameters(), lr=1e-2)
cnf_ts = torch.linspace(0.0, 1.0, 5)
cnf_losses = []
for step in range(8):
    state0 = torch.cat([x_data, torch.zeros(64, 1)], dim=1)
    state1 = rk4(augmented, state0, cnf_ts)[-1]
    z1, delta = state1[:, :2], state1[:, 2]
    logp_x = base.log_prob(z1).sum(1) - delta
    loss = -logp_x.mean()
    cnf_opt.zero_grad()
    loss.backward()
    cnf_opt.step()
    cnf_losses.append(loss.item())

# (4) the exact divergence by jacrev + vmap, against the estimator's expectation
zs = x_data[:6].clone()
jac = vmap(jacrev(lambda z: cnf(0.5, z.unsqueeze(0)).squeeze(0)))(zs)  # (6, 2, 2)
exact_trace = torch.diagonal(jac, dim1=-2, dim2=-1).sum(-1)
zg = zs.clone().requires_grad_(True)
dz = cnf(0.5, zg)
rows = [torch.autograd.grad(dz[:, i].sum(), zg, retain_graph=True)[0][:, i] for i in range(2)]
loop_trace = rows[0] + rows[1]
report(
    lbfgs_losses=lbfgs_losses,
    adam_losses=adam_losses,
    dopri=[n_acc, n_rej, ode_err < 1e-2, fit_acc],
    y_end=y_end.tolist(),
    adaptive_grad=adaptive_grad,
    cnf_losses=cnf_losses,
    exact_trace=exact_trace.tolist(),
    loop_trace=loop_trace.tolist(),
    jac=jac.detach().tolist(),
)
