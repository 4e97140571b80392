# Second-order optimisation as research scripts write it with torch.autograd.functional and
# torch.func: Newton's method on L2-regularised logistic regression (hessian of a function of a
# flat parameter vector, linalg.solve, a backtracking line search), Gauss-Newton /
# Levenberg-Marquardt on a nonlinear curve fit (jacobian of the residuals with vectorize=True and
# strategy="forward-mode", damping adapted by the gain ratio), Hessian-free truncated Newton
# (conjugate gradient on autograd.functional.hvp, vhp and the double-backward product), vjp / jvp
# checks, torch.func.hessian against jacfwd(jacrev), and TRPO's natural-gradient step for a small
# categorical policy: the Fisher-vector product by the gradient of (grad KL . v) with
# create_graph, conjugate gradient, the step scaled to the KL radius, parameters_to_vector /
# vector_to_parameters and a line search on the surrogate advantage.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp
from torch.distributions import Categorical, kl_divergence
from torch.nn.utils import parameters_to_vector, vector_to_parameters

torch.manual_seed(0)
rng = np.random.default_rng(7)
torch.set_default_dtype(torch.float64)

# ---- Newton on logistic regression -------------------------------------------------------
N, D = 80, 5
Xn = rng.standard_normal((N, D))
w_true = rng.standard_normal(D)
yn = (1 / (1 + np.exp(-Xn @ w_true)) > rng.uniform(size=N)).astype(np.float64)
X = torch.from_numpy(Xn)
y = torch.from_numpy(yn)
lam = 0.1


def logreg_loss(w):
    logits = X @ w
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + 0.5 * lam * w @ w


w = torch.zeros(D)
newton_losses, step_sizes = [], []
for it in range(6):
    loss = logreg_loss(w)
    g = torch.autograd.grad(logreg_loss(w.requires_grad_()), w)[0]
    w = w.detach()
    if g.norm() < 1e-8:
        break
    H = hessian(logreg_loss, w)
    direction = torch.linalg.solve(H, -g)
    t = 1.0
    while logreg_loss(w + t * direction) > loss + 1e-4 * t * (g @ direction):
        t *= 0.5
    w = w + t * direction
    newton_losses.append(loss.item())
    step_sizes.append(t)
grad_norm_final = torch.autograd.functional.jacobian(logreg_loss, w).norm().item()

# ---- Levenberg-Marquardt on y = a exp(-b t) sin(c t + d) ------------------------------------
T = torch.linspace(0, 4, 40)
theta_true = torch.tensor([2.0, 0.5, 3.0, 0.3])
noise = torch.from_numpy(rng.standard_normal(40) * 0.05)


def model_fn(theta, t):
    a, b, c, d = theta.unbind()
    return a * torch.exp(-b * t) * torch.sin(c * t + d)


Y = model_fn(theta_true, T) + noise


def residuals(theta):
    return model_fn(theta, T) - Y


theta = torch.tensor([1.5, 0.3, 2.8, 0.0])
mu = 1e-2
lm_costs, lm_mus = [], []
for it in range(12):
    r = residuals(theta)
    J = jacobian(residuals, theta, vectorize=True, strategy="forward-mode")   # (40, 4)
    A = J.T @ J
    g = J.T @ r
    delta = torch.linalg.solve(A + mu * torch.diag(torch.diagonal(A)), -g)
    new_cost = 0.5 * residuals(theta + delta).pow(2).sum()
    cost = 0.5 * r.pow(2).sum()
    predicted = -(g @ delta) - 0.5 * delta @ A @ delta
    rho = (cost - new_cost) / predicted
    lm_costs.append(cost.item())
    if rho > 0 and cost - new_cost < 1e-9 * cost:
        break
    if rho > 0:
        theta = theta + delta
        mu = mu * max(1 / 3, 1 - (2 * rho.item() - 1) ** 3)
    else:
        mu = mu * 2
    lm_mus.append(mu)
J_rev = jacobian(residuals, theta)
jac_modes_agree = bool(torch.allclose(J_rev, J, atol=1e-6))

# ---- Hessian-free: truncated Newton with CG on Hessian-vector products -----------------------
rosen_dim = 6


def rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def conjugate_gradient(Avp, b, iters=10, tol=1e-10):
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for i in range(iters):
        Ap = Avp(p)
        curv = p @ Ap
        if curv <= 0:
            break
        alpha = rr / curv
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = r @ r
        if rr_new < tol:
            break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


x = torch.full((rosen_dim,), -0.5)
hf_losses = []
for it in range(8):
    f, g = torch.func.grad_and_value(rosenbrock)(x)[::-1]
    step = conjugate_gradient(lambda v, x=x: hvp(rosenbrock, x, v)[1], -g)
    t = 1.0
    while rosenbrock(x + t * step) > f + 1e-4 * t * (g @ step) and t > 1e-4:
        t *= 0.5
    x = x + t * step
    hf_losses.append(f.item())

v = torch.from_numpy(rng.standard_normal(rosen_dim))
xr = x.clone().requires_grad_()
g1 = torch.autograd.grad(rosenbrock(xr), xr, create_graph=True)[0]
hv_double = torch.autograd.grad(g1 @ v, xr)[0]
hv_func = hvp(rosenbrock, x, v)[1]
vh_func = vhp(rosenbrock, x, v)[1]
H_func = torch.func.hessian(rosenbrock)(x)
H_fwdrev = torch.func.jacfwd(torch.func.jacrev(rosenbrock))(x)
products_agree = [bool(torch.allclose(hv_double, hv_func)), bool(torch.allclose(hv_func, vh_func)),
                  bool(torch.allclose(H_func @ v, hv_func)), bool(torch.allclose(H_func, H_fwdrev))]
out_vjp, vjp_val = vjp(residuals, theta, torch.ones(40))
out_jvp, jvp_val = jvp(residuals, theta, torch.ones(4))

# ---- TRPO natural-gradient step ---------------------------------------------------------------
torch.set_default_dtype(torch.float32)
policy = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
Wp = reference_weights(policy)
with torch.no_grad():
    for name, p in policy.named_parameters():
        p.copy_(torch.from_numpy(Wp[name]))
states = torch.from_numpy(rng.standard_normal((64, 4)).astype(np.float32))
actions = torch.from_numpy(rng.integers(0, 3, 64))
advantages = torch.from_numpy(rng.standard_normal(64).astype(np.float32))
advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
max_kl, damping = 0.01, 0.1


def get_kl():
    logits = policy(states)
    old = Categorical(logits=logits.detach())
    return kl_divergence(old, Categorical(logits=logits)).mean()


def surrogate(old_log_probs):
    log_probs = Categorical(logits=policy(states)).log_prob(actions)
    return (torch.exp(log_probs - old_log_probs) * advantages).mean()


def fisher_vector_product(v):
    kl = get_kl()
    grads = torch.autograd.grad(kl, policy.parameters(), create_graph=True)
    flat_grad_kl = torch.cat([g.view(-1) for g in grads])
    kl_v = (flat_grad_kl * v).sum()
    grads = torch.autograd.grad(kl_v, policy.parameters())
    return torch.cat([g.contiguous().view(-1) for g in grads]).detach() + v * damping


trpo_log = []
for update in range(3):
    with torch.no_grad():
        old_log_probs = Categorical(logits=policy(states)).log_prob(actions)
        old_logits = policy(states)
    loss = surrogate(old_log_probs)
    grads = torch.autograd.grad(loss, policy.parameters())
    loss_grad = torch.cat([g.view(-1) for g in grads])
    stepdir = conjugate_gradient(fisher_vector_product, loss_grad, iters=10)
    shs = 0.5 * (stepdir * fisher_vector_product(stepdir)).sum(0, keepdim=True)
    lm = torch.sqrt(shs / max_kl)
    fullstep = stepdir / lm[0]
    expected_improve = (loss_grad * fullstep).sum(0, keepdim=True)
    prev_params = parameters_to_vector(policy.parameters())
    accepted = -1
    for n_back, frac in enumerate(0.5 ** np.arange(8)):
        vector_to_parameters(prev_params + float(frac) * fullstep, policy.parameters())
        with torch.no_grad():
            new_loss = surrogate(old_log_probs)
            kl = kl_divergence(Categorical(logits=old_logits),
                               Categorical(logits=policy(states))).mean()
        improve = new_loss - loss
        if kl <= max_kl and improve > 0:
            accepted = n_back
            break
    else:
        vector_to_parameters(prev_params, policy.parameters())
    trpo_log.append([loss.item(), new_loss.item(), kl.item(), expected_improve.item(),
                     lm.item(), accepted])

report(
    newton_losses=newton_losses,
    step_sizes=step_sizes,
    w=w.tolist(),
    grad_norm_final=grad_norm_final,
    lm_costs=lm_costs,
    lm_mus=lm_mus,
    theta=theta.tolist(),
    jac_modes_agree=jac_modes_agree,
    hf_losses=hf_losses,
    x_final=x.tolist(),
    products_agree=products_agree,
    hv=hv_func.tolist(),
    vjp=vjp_val.tolist(),
    jvp=jvp_val.tolist()[:8],
    trpo_log=trpo_log,
)
