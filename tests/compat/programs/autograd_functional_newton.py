# Second-order optimisation code written with torch.autograd.functional: Newton's method for a
# logistic regression by hessian() on a flat weight vector, damped Gauss-Newton by jacobian()
# of the residuals (vectorize=True and the forward-mode strategy), conjugate gradient on
# Hessian-vector products from hvp() / vhp(), jvp() / vjp() with tuple inputs and create_graph,
# strict=True on an output independent of an input, and the same quantities from torch.func
# (hessian, jacrev, jacfwd, vjp) as a cross-check.
import numpy as np
import torch
from compat_helpers import report
from torch.autograd.functional import hessian, hvp, jacobian, jvp, vhp, vjp
from torch.func import hessian as fhessian
from torch.func import jacfwd, jacrev
from torch.func import vjp as fvjp

rng = np.random.default_rng(43)
torch.manual_seed(0)
X = torch.from_numpy(rng.standard_normal((30, 4)).astype(np.float32))
w_true = torch.tensor([1.5, -2.0, 0.5, 0.0])
Y = (torch.sigmoid(X @ w_true) > torch.from_numpy(rng.uniform(size=30).astype(np.float32))).float()
results = {}


def nll(w):
    logits = X @ w
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, Y) + 0.05 * w.pow(2).sum()


w = torch.zeros(4)
newton = []
for it in range(5):
    g = jacobian(nll, w)
    H = hessian(nll, w)
    w = w - torch.linalg.solve(H, g)
    newton.append(nll(w).item())
results["newton"] = newton
results["newton_w"] = w.tolist()

# Gauss-Newton on a small curve fit
t = torch.linspace(0, 2, 12)
obs = (
    2.0 * torch.exp(-1.3 * t)
    + 0.3
    + 0.01 * torch.from_numpy(rng.standard_normal(12).astype(np.float32))
)


def residuals(theta):
    a, k, c = theta
    return a * torch.exp(-k * t) + c - obs


theta = torch.tensor([1.8, 1.0, 0.2])
gn = []
for it in range(4):
    r = residuals(theta)
    J = jacobian(residuals, theta, vectorize=True)
    Jf = jacobian(residuals, theta, vectorize=True, strategy="forward-mode")
    step = torch.linalg.solve(J.T @ J + 1e-3 * torch.eye(3), J.T @ r)
    theta = theta - step
    gn.append([r.pow(2).sum().item(), (J - Jf).abs().max().item() < 1e-5])
results["gauss_newton"] = gn
results["theta"] = theta.tolist()

# CG on Hessian-vector products
w0 = torch.zeros(4)
g0 = jacobian(nll, w0)
x = torch.zeros(4)
r = -g0
p = r.clone()
for it in range(4):
    _, Hp = hvp(nll, w0, p)
    alpha = r.dot(r) / p.dot(Hp)
    x = x + alpha * p
    r_new = r - alpha * Hp
    beta = r_new.dot(r_new) / r.dot(r)
    p = r_new + beta * p
    r = r_new
results["cg_step"] = x.tolist()
_, vH = vhp(nll, w0, torch.ones(4))
results["vhp"] = vH.tolist()


# tuple inputs, jvp / vjp, create_graph, strict
def f2(a, b):
    return (a * b).sum(0), a.exp().mean()


a = torch.from_numpy(rng.standard_normal((3, 2)).astype(np.float32)).requires_grad_(True)
b = torch.from_numpy(rng.standard_normal((3, 2)).astype(np.float32))
outs, jv = jvp(f2, (a, b), (torch.ones(3, 2), torch.zeros(3, 2)))
results["jvp"] = [jv[0].tolist(), jv[1].item()]
outs, vj = vjp(f2, (a, b), (torch.ones(2), torch.tensor(2.0)), create_graph=True)
results["vjp"] = [vj[0].flatten().tolist(), vj[1].flatten().tolist()]
vj[0].sum().backward()
results["vjp_create_graph_grad"] = a.grad.flatten().tolist()
J2 = jacobian(f2, (a.detach(), b))
results["jac_shapes"] = [[list(j.shape) for j in row] for row in J2]
try:
    jacobian(lambda u, v: u.sum() * 2, (a.detach(), b), strict=True)
    results["strict"] = "no error"
except RuntimeError:
    results["strict"] = "RuntimeError"
results["nonstrict_zero"] = (
    jacobian(lambda u, v: u.sum() * 2, (a.detach(), b))[1].abs().sum().item()
)
H2 = hessian(lambda u, v: (u * v).pow(2).sum(), (a.detach()[0], b[0]))
results["hessian_blocks"] = [[h.flatten().tolist() for h in row] for row in H2]

# torch.func cross-check
results["func_hessian_equal"] = torch.allclose(fhessian(nll)(w0), hessian(nll, w0), atol=1e-6)
results["func_jac"] = [
    torch.allclose(jacrev(residuals)(theta), jacfwd(residuals)(theta), atol=1e-5)
]
_, fn_vjp = fvjp(nll, w0)
results["func_vjp"] = fn_vjp(torch.tensor(1.0))[0].tolist()
report(**results)
