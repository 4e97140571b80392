# Differentiable state-space filtering as the "learn the noise by backprop through a Kalman
# filter" notebooks and the DKF / KalmanNet baselines write it, in float64 on a batch of
# tracked objects: a constant-velocity model, a batched Kalman filter (predict by A @ P @ A.mT +
# Q, the innovation covariance and gain by torch.linalg.solve on the transposed system, the
# Joseph-form covariance update, symmetrisation by 0.5 * (P + P.mT)), the marginal likelihood
# from MultivariateNormal(innovation mean, S).log_prob and by hand from cholesky +
# cholesky_solve + log of the diagonal, noise parameters learned through log-Cholesky factors
# (tril(-1) + diag_embed(exp(diagonal))) with Adam, the Rauch-Tung-Striebel smoother by a
# reversed loop of linalg.inv gains, stacked states; an extended Kalman filter for a pendulum
# whose transition Jacobian comes from torch.autograd.functional.jacobian for one state and from
# torch.func.vmap(jacrev(f)) for the batch, and the filtered-state gradient checked against a
# finite difference of the log-likelihood.
import numpy as np
import torch
from compat_helpers import report
from torch.distributions import MultivariateNormal
from torch.func import jacrev, vmap

torch.manual_seed(0)
rng = np.random.default_rng(9)
torch.set_default_dtype(torch.float64)

dt = 0.1
A = torch.tensor([[1.0, 0.0, dt, 0.0],
                  [0.0, 1.0, 0.0, dt],
                  [0.0, 0.0, 1.0, 0.0],
                  [0.0, 0.0, 0.0, 1.0]])
H = torch.tensor([[1.0, 0.0, 0.0, 0.0],
                  [0.0, 1.0, 0.0, 0.0]])
B, T, NX, NY = 5, 12, 4, 2

# simulate with NumPy noise: true q = 0.05, r = 0.3
q_true, r_true = 0.05, 0.3
x = np.zeros((B, NX))
x[:, 2:] = rng.standard_normal((B, 2))
ys, xs = [], []
An, Hn = A.numpy(), H.numpy()
for t in range(T):
    x = x @ An.T + np.sqrt(q_true) * rng.standard_normal((B, NX)) * np.array([0.3, 0.3, 1, 1])
    xs.append(x)
    ys.append(x @ Hn.T + np.sqrt(r_true) * rng.standard_normal((B, NY)))
Y = torch.from_numpy(np.stack(ys, axis=1))  # (B, T, NY)
X_true = torch.from_numpy(np.stack(xs, axis=1))


def chol_from(params, n):
    L = torch.zeros(n, n)
    idx = torch.tril_indices(n, n, offset=-1)
    L = L.index_put((idx[0], idx[1]), params[n:])
    return L + torch.diag_embed(torch.exp(params[:n]))


def kalman_filter(Y, Q, R, x0, P0, by_hand=False):
    batch = Y.shape[0]
    x = x0.expand(batch, NX)
    P = P0.expand(batch, NX, NX)
    I = torch.eye(NX)
    loglik = torch.zeros(batch)
    means, covs = [], []
    for t in range(Y.shape[1]):
        # predict
        x = x @ A.T
        P = A @ P @ A.mT + Q
        # update
        v = Y[:, t] - x @ H.T                       # (B, NY) innovation
        S = H @ P @ H.T + R                          # (B, NY, NY)
        K = torch.linalg.solve(S, H @ P.mT).mT       # P H^T S^-1, S symmetric
        if by_hand:
            L = torch.linalg.cholesky(S)
            Sinv_v = torch.cholesky_solve(v.unsqueeze(-1), L).squeeze(-1)
            loglik = loglik - 0.5 * (v * Sinv_v).sum(-1) \
                - torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1) \
                - 0.5 * NY * np.log(2 * np.pi)
        else:
            loglik = loglik + MultivariateNormal(torch.zeros(NY), covariance_matrix=S).log_prob(v)
        x = x + (K @ v.unsqueeze(-1)).squeeze(-1)
        IKH = I - K @ H
        P = IKH @ P @ IKH.mT + K @ R @ K.mT          # Joseph form
        P = 0.5 * (P + P.mT)
        means.append(x)
        covs.append(P)
    return torch.stack(means, 1), torch.stack(covs, 1), loglik


def rts_smoother(means, covs, Q):
    xs_s, Ps_s = [means[:, -1]], [covs[:, -1]]
    for t in range(means.shape[1] - 2, -1, -1):
        P_pred = A @ covs[:, t] @ A.T + Q
        G = covs[:, t] @ A.T @ torch.linalg.inv(P_pred)
        x_s = means[:, t] + (G @ (xs_s[0] - means[:, t] @ A.T).unsqueeze(-1)).squeeze(-1)
        P_s = covs[:, t] + G @ (Ps_s[0] - P_pred) @ G.mT
        xs_s.insert(0, x_s)
        Ps_s.insert(0, P_s)
    return torch.stack(xs_s, 1), torch.stack(Ps_s, 1)


results = {}
x0 = torch.zeros(NX)
P0 = torch.eye(NX)
# learn Q (diagonal, log-parametrised) and R (log-Cholesky) by maximum likelihood
log_q = torch.full((NX,), np.log(0.2), requires_grad=True)
r_params = torch.tensor([np.log(0.8), np.log(0.8), 0.1], requires_grad=True)
opt = torch.optim.Adam([log_q, r_params], lr=0.1)
nll = []
for step in range(6):
    opt.zero_grad()
    Q = torch.diag_embed(torch.exp(log_q))
    Lr = chol_from(r_params, NY)
    R = Lr @ Lr.T
    _, _, ll = kalman_filter(Y, Q, R, x0, P0)
    loss = -ll.mean()
    loss.backward()
    opt.step()
    nll.append(loss.item())
results["nll"] = nll
results["q_learned"] = torch.exp(log_q).tolist()
with torch.no_grad():
    Lr = chol_from(r_params, NY)
    R = Lr @ Lr.T
    Q = torch.diag_embed(torch.exp(log_q))
    results["r_learned"] = R.flatten().tolist()
    means, covs, ll_a = kalman_filter(Y, Q, R, x0, P0)
    _, _, ll_b = kalman_filter(Y, Q, R, x0, P0, by_hand=True)
    results["loglik"] = ll_a.tolist()
    results["loglik_gap"] = (ll_a - ll_b).abs().max().item() < 1e-9
    sm, sP = rts_smoother(means, covs, Q)
    results["filter_rmse"] = (means[..., :2] - X_true[..., :2]).pow(2).mean().sqrt().item()
    results["smoother_rmse"] = (sm[..., :2] - X_true[..., :2]).pow(2).mean().sqrt().item()
    results["smoother_var_smaller"] = bool(
        (torch.diagonal(sP, dim1=-2, dim2=-1) <= torch.diagonal(covs, dim1=-2, dim2=-1)
         + 1e-12).all())
    results["final_cov"] = covs[0, -1].diagonal().tolist()

# gradient of the log-likelihood w.r.t. the observations vs a central difference
Yg = Y.clone().requires_grad_(True)
_, _, ll = kalman_filter(Yg, Q, R, x0, P0)
(g,) = torch.autograd.grad(ll.sum(), Yg)
eps = 1e-6
Yp, Ym = Y.clone(), Y.clone()
Yp[1, 3, 0] += eps
Ym[1, 3, 0] -= eps
with torch.no_grad():
    fd = (kalman_filter(Yp, Q, R, x0, P0)[2].sum()
          - kalman_filter(Ym, Q, R, x0, P0)[2].sum()) / (2 * eps)
results["grad_y"] = g[1, :5, 0].tolist()
results["grad_fd_close"] = abs(fd.item() - g[1, 3, 0].item()) < 1e-5


# extended Kalman filter for a pendulum: state (angle, angular velocity), observe sin(angle)
def f(s):
    return torch.stack([s[0] + dt * s[1], s[1] - dt * 9.81 * torch.sin(s[0])])


def h(s):
    return torch.sin(s[:1])


theta = np.zeros((3, 2))
theta[:, 0] = [0.5, 1.0, -0.8]
obs = []
for t in range(12):
    theta = np.stack([theta[:, 0] + dt * theta[:, 1],
                      theta[:, 1] - dt * 9.81 * np.sin(theta[:, 0])], axis=1)
    obs.append(np.sin(theta[:, :1]) + 0.05 * rng.standard_normal((3, 1)))
obs = torch.from_numpy(np.stack(obs, 1))  # (3, 12, 1)
Qp = torch.eye(2) * 1e-3
Rp = torch.eye(1) * 0.05 ** 2
s = torch.tensor([[0.4, 0.0], [0.9, 0.0], [-0.7, 0.0]])
P = torch.eye(2).expand(3, 2, 2) * 0.1
F_one = torch.autograd.functional.jacobian(f, s[0])
F_all = vmap(jacrev(f))(s)
results["ekf_jac_match"] = bool(torch.allclose(F_one, F_all[0]))
ekf_states = []
for t in range(12):
    Fj = vmap(jacrev(f))(s)                     # (3, 2, 2)
    s = vmap(f)(s)
    P = Fj @ P @ Fj.mT + Qp
    Hj = vmap(jacrev(h))(s)                     # (3, 1, 2)
    S = Hj @ P @ Hj.mT + Rp
    K = P @ Hj.mT @ torch.linalg.inv(S)
    s = s + (K @ (obs[:, t] - vmap(h)(s)).unsqueeze(-1)).squeeze(-1)
    P = (torch.eye(2) - K @ Hj) @ P
    ekf_states.append(s)
ekf = torch.stack(ekf_states, 1)
results["ekf_final"] = ekf[:, -1].tolist()
results["ekf_track"] = ekf[0, ::4, 0].tolist()

report(**results)
