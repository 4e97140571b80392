# Control code in PyTorch as differentiable-control tutorials and mpc.pytorch-style scripts
# write it: finite-horizon LQR by the backward Riccati recursion (linalg.solve for the gains),
# the infinite-horizon gain by iterating to a fixed point, the discrete Lyapunov equation solved
# by the Kronecker vec trick (torch.kron, linalg.solve, reshape in column-major order by .T),
# closed-loop stability from linalg.eigvals (complex moduli), system identification by
# linalg.lstsq and by Adam through multi-step rollouts, a linear feedback gain learned by
# backpropagation through a simulated pendulum (torch.sin dynamics, clip_grad_norm_) and
# compared with LQR's, and iLQR on the pendulum with Jacobians from torch.func.jacrev under
# vmap over the trajectory and a backtracking forward pass. Float64, as controllers are.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import report
from torch.func import jacrev, vmap

torch.manual_seed(0)
rng = np.random.default_rng(12)
torch.set_default_dtype(torch.float64)

dt = 0.05
A = torch.tensor([[1.0, dt], [0.0, 1.0]])
Bm = torch.tensor([[0.5 * dt * dt], [dt]])
Q = torch.diag(torch.tensor([1.0, 0.1]))
R = torch.tensor([[0.01]])


def riccati_backward(A, B, Q, R, T, P_T=None):
    P = Q if P_T is None else P_T
    gains = []
    for t in range(T):
        K = torch.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
        P = Q + A.T @ P @ (A - B @ K)
        P = 0.5 * (P + P.T)
        gains.append(K)
    return gains[::-1], P


gains, P0 = riccati_backward(A, Bm, Q, R, 40)
K_inf, P_inf = riccati_backward(A, Bm, Q, R, 400)
K_inf = K_inf[0]
Acl = A - Bm @ K_inf
eig_moduli = sorted(torch.linalg.eigvals(Acl).abs().tolist())

# the closed loop's cost-to-go by the discrete Lyapunov equation P = Acl^T P Acl + Q + K^T R K
n = A.shape[0]
Qcl = Q + K_inf.T @ R @ K_inf
lhs = torch.eye(n * n) - torch.kron(Acl.T, Acl.T)
vecP = torch.linalg.solve(lhs, Qcl.T.reshape(-1))
P_lyap = vecP.reshape(n, n).T
lyap_matches = bool(torch.allclose(P_lyap, P_inf, atol=1e-8))


def rollout_linear(A, B, K_list, x0, T):
    xs, us = [x0], []
    x = x0
    for t in range(T):
        u = -(K_list[t] if isinstance(K_list, list) else K_list) @ x
        x = A @ x + B @ u
        xs.append(x)
        us.append(u)
    return torch.stack(xs), torch.stack(us)


x0 = torch.tensor([1.0, 0.0])
xs, us = rollout_linear(A, Bm, gains, x0, 40)
lqr_cost = ((xs[:-1] @ Q) * xs[:-1]).sum() + ((us @ R) * us).sum() + xs[-1] @ Q @ xs[-1]
predicted_cost = x0 @ P0 @ x0

# system identification: least squares and rollout fitting
X_prev = torch.from_numpy(rng.standard_normal((50, 2)))
U_prev = torch.from_numpy(rng.standard_normal((50, 1)))
X_next = X_prev @ A.T + U_prev @ Bm.T + 1e-3 * torch.from_numpy(rng.standard_normal((50, 2)))
theta = torch.linalg.lstsq(torch.cat([X_prev, U_prev], 1), X_next).solution   # (3, 2)
A_ls, B_ls = theta[:2].T, theta[2:].T

A_hat = nn.Parameter(torch.eye(2) + 0.1 * torch.from_numpy(rng.standard_normal((2, 2))))
B_hat = nn.Parameter(torch.zeros(2, 1))
opt = torch.optim.Adam([A_hat, B_hat], lr=0.005)
traj_u = torch.from_numpy(rng.standard_normal((20, 1)))
with torch.no_grad():
    x = torch.tensor([0.5, -0.2])
    traj = [x]
    for t in range(20):
        x = A @ x + Bm @ traj_u[t]
        traj.append(x)
    traj = torch.stack(traj)
sysid_losses = []
for step in range(30):
    opt.zero_grad()
    x = traj[0]
    pred = [x]
    for t in range(20):
        x = A_hat @ x + B_hat @ traj_u[t]
        pred.append(x)
    loss = (torch.stack(pred) - traj).pow(2).mean()
    loss.backward()
    opt.step()
    sysid_losses.append(loss.item())

# a feedback gain learned through a simulated pendulum (upright at theta = 0)
g, l, m = 9.81, 1.0, 1.0


def pendulum(x, u):
    th, om = x[..., 0], x[..., 1]
    om_new = om + dt * (g / l * torch.sin(th) + u[..., 0] / (m * l * l))
    th_new = th + dt * om_new
    return torch.stack([th_new, om_new], -1)


K_learn = nn.Parameter(torch.tensor([[5.0, 1.0]]))
kopt = torch.optim.Adam([K_learn], lr=0.5)
starts = torch.from_numpy(rng.uniform(-0.4, 0.4, (16, 2)))
bptt_losses, grad_norms = [], []
for step in range(20):
    kopt.zero_grad()
    x = starts
    cost = 0.0
    for t in range(40):
        u = -(x @ K_learn.T)
        cost = cost + ((x @ Q) * x).sum(-1).mean() + ((u @ R) * u).sum(-1).mean()
        x = pendulum(x, u)
    cost.backward()
    grad_norms.append(float(torch.nn.utils.clip_grad_norm_([K_learn], 50.0)))
    kopt.step()
    bptt_losses.append(cost.item())

# iLQR on the pendulum: swing from theta = 0.8 to upright
T = 30
x_init = torch.tensor([0.8, 0.0])
U = torch.zeros(T, 1)


def total_cost(X, U):
    return ((X @ Q) * X).sum() + ((U @ R) * U).sum()


def rollout(x0, U):
    xs = [x0]
    for t in range(U.shape[0]):
        xs.append(pendulum(xs[-1], U[t]))
    return torch.stack(xs)


fx = vmap(jacrev(pendulum, argnums=0))
fu = vmap(jacrev(pendulum, argnums=1))
X = rollout(x_init, U)
ilqr_costs = [total_cost(X, U).item()]
alphas_used = []
for it in range(4):   # stops before the gains are decided by rounding (improvements 1e-9)
    Fx, Fu = fx(X[:-1], U), fu(X[:-1], U)               # (T, 2, 2), (T, 2, 1)
    Vx, Vxx = 2 * Q @ X[-1], 2 * Q
    ks, Ks = [], []
    for t in reversed(range(T)):
        Qx = 2 * Q @ X[t] + Fx[t].T @ Vx
        Qu = 2 * R @ U[t] + Fu[t].T @ Vx
        Qxx = 2 * Q + Fx[t].T @ Vxx @ Fx[t]
        Quu = 2 * R + Fu[t].T @ Vxx @ Fu[t]
        Qux = Fu[t].T @ Vxx @ Fx[t]
        k = -torch.linalg.solve(Quu, Qu)
        K = -torch.linalg.solve(Quu, Qux)
        Vx = Qx + K.T @ Quu @ k + K.T @ Qu + Qux.T @ k
        Vxx = Qxx + K.T @ Quu @ K + K.T @ Qux + Qux.T @ K
        Vxx = 0.5 * (Vxx + Vxx.T)
        ks.append(k)
        Ks.append(K)
    ks, Ks = ks[::-1], Ks[::-1]
    old = total_cost(X, U)
    for alpha in (1.0, 0.5, 0.25, 0.125):
        x = x_init
        X_new, U_new = [x], []
        for t in range(T):
            u = U[t] + alpha * ks[t] + Ks[t] @ (x - X[t])
            x = pendulum(x, u)
            X_new.append(x)
            U_new.append(u)
        X_new, U_new = torch.stack(X_new), torch.stack(U_new)
        if total_cost(X_new, U_new) < old:
            X, U = X_new, U_new
            alphas_used.append(alpha)
            break
    ilqr_costs.append(total_cost(X, U).item())

report(
    K0=gains[0].tolist(),
    K_inf=K_inf.tolist(),
    P_inf=P_inf.tolist(),
    eig_moduli=eig_moduli,
    lyap_matches=lyap_matches,
    lqr_cost=lqr_cost.item(),
    predicted_cost=predicted_cost.item(),
    A_ls=A_ls.tolist(),
    B_ls=B_ls.tolist(),
    sysid_losses=sysid_losses,
    A_hat=A_hat.tolist(),
    bptt_losses=bptt_losses,
    grad_norms=grad_norms,
    K_learned=K_learn.tolist(),
    ilqr_costs=ilqr_costs,
    alphas_used=alphas_used,
    final_state=X[-1].tolist(),
)
