# A physics-informed neural network in the shape of the PINN tutorials (Raissi et al. 2019, and
# the many "solve an ODE/PDE with PyTorch" notebooks): a tanh MLP u(t, x) whose derivatives
# u_t, u_x, u_xx come from torch.autograd.grad(create_graph=True) on inputs that require grad,
# collocation points from torch.meshgrid(indexing="ij"), a residual of the heat equation plus
# boundary and initial losses, a few Adam steps, then torch.optim.LBFGS with a closure (with and
# without line_search_fn="strong_wolfe"); finally a 1-D ODE u' = -2u fitted with LBFGS.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

torch.set_default_dtype(torch.float64)  # PINNs usually train in double: LBFGS is sensitive


class PINN(nn.Module):
    def __init__(self, layers):
        super().__init__()
        self.linears = nn.ModuleList(
            [nn.Linear(layers[i], layers[i + 1]) for i in range(len(layers) - 1)]
        )
        self.activation = nn.Tanh()

    def forward(self, *inputs):
        a = torch.cat(inputs, dim=1)
        for i in range(len(self.linears) - 1):
            a = self.activation(self.linears[i](a))
        return self.linears[-1](a)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name].astype(np.float64)))
    return model


# collocation grid for u_t = k u_xx on (t, x) in [0, 0.5] x [0, 1]
k = 0.1
t_lin = torch.linspace(0, 0.5, 6)
x_lin = torch.linspace(0, 1, 8)
T, X = torch.meshgrid(t_lin, x_lin, indexing="ij")
t_col = T.reshape(-1, 1).clone().requires_grad_(True)
x_col = X.reshape(-1, 1).clone().requires_grad_(True)
x0 = x_lin.reshape(-1, 1)
u0 = torch.sin(math.pi * x0)  # initial condition
tb = t_lin.reshape(-1, 1)


def pde_residual(model):
    u = model(t_col, x_col)
    u_t = torch.autograd.grad(u, t_col, grad_outputs=torch.ones_like(u), create_graph=True)[0]
    u_x = torch.autograd.grad(u, x_col, torch.ones_like(u), create_graph=True)[0]
    u_xx = torch.autograd.grad(u_x.sum(), x_col, create_graph=True)[0]
    return u_t - k * u_xx


def loss_fn(model):
    mse = nn.MSELoss()
    f = pde_residual(model)
    loss_f = mse(f, torch.zeros_like(f))
    loss_ic = mse(model(torch.zeros_like(x0), x0), u0)
    loss_bc = (
        model(tb, torch.zeros_like(tb)).pow(2).mean() + model(tb, torch.ones_like(tb)).pow(2).mean()
    )
    return loss_f + loss_ic + loss_bc


results = {}
for line_search in (None, "strong_wolfe"):
    model = load(PINN([2, 10, 10, 1]))
    adam = torch.optim.Adam(model.parameters(), lr=1e-2)
    adam_losses = []
    for it in range(5):
        adam.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        adam.step()
        adam_losses.append(loss.item())
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=10,
        history_size=5,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        line_search_fn=line_search,
    )
    closure_calls = [0]

    def closure(optimizer=optimizer, model=model, closure_calls=closure_calls):
        optimizer.zero_grad()
        loss = loss_fn(model)
        loss.backward()
        closure_calls[0] += 1
        return loss

    lbfgs_losses = []
    for epoch in range(3):
        lbfgs_losses.append(optimizer.step(closure).item())
    state = optimizer.state[optimizer._params[0]]
    u_mid = model(torch.tensor([[0.25]]), torch.tensor([[0.5]])).item()
    results[str(line_search)] = {
        "adam": adam_losses,
        "lbfgs": lbfgs_losses,
        "final": loss_fn(model).item(),
        "closure_calls": closure_calls[0],
        "func_evals": state["func_evals"],
        "n_iter": state["n_iter"],
        "u_mid": u_mid,
        "exact_mid": math.exp(-k * math.pi**2 * 0.25),
    }

# the ODE u' = -2u, u(0) = 1 on [0, 1], trial solution u = 1 + t N(t)
net = load(nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1)))
ts = torch.linspace(0, 1, 11).unsqueeze(1).requires_grad_()
opt = torch.optim.LBFGS(net.parameters(), lr=0.5, max_iter=20, line_search_fn="strong_wolfe")


def ode_closure():
    opt.zero_grad()
    u = 1 + ts * net(ts)
    (du,) = torch.autograd.grad(u.sum(), ts, create_graph=True)
    loss = ((du + 2 * u) ** 2).mean()
    loss.backward()
    return loss


ode_losses = [opt.step(ode_closure).item() for _ in range(3)]
with torch.no_grad():
    u1 = (1 + net(torch.ones(1, 1))).item()
results["ode"] = {"losses": ode_losses, "u1": u1, "exact": math.exp(-2)}
results["default_is_double"] = torch.get_default_dtype() == torch.float64
report(**results)
