# Classical statistical models fitted in torch as statsmodels / GPML reference code does, in
# float64: GLMs by iteratively reweighted least squares (Poisson with a log link and an
# offset, logistic with a logit link; the working response z = eta + (y - mu) / mu', weights,
# torch.linalg.solve on X^T W X, deviance and its convergence test, standard errors from the
# inverse Fisher information, Wald z statistics and two-sided p-values by torch.special.ndtr),
# checked against Newton's method on the negative log-likelihood with autograd.functional
# hessian; then a Gaussian-process classifier by the Laplace approximation (Rasmussen and
# Williams' Algorithm 3.1: W = pi (1 - pi), B = I + W^1/2 K W^1/2 by cholesky, the Newton
# mode, the approximate log marginal likelihood; Algorithm 3.2's predictive mean and variance
# by triangular solves and the probit approximation), with the kernel's length scale chosen
# by that marginal likelihood over a grid.
import math

import numpy as np
import torch
from compat_helpers import report

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(3737)
n = 120
Xn = np.column_stack([np.ones(n), rng.standard_normal(n), rng.uniform(-1, 1, n)])
beta_true = np.array([0.3, 0.5, -0.8])
exposure = rng.uniform(0.5, 2.0, n)
yp = rng.poisson(exposure * np.exp(Xn @ beta_true)).astype(np.float64)
yb = (rng.uniform(size=n) < 1 / (1 + np.exp(-(Xn @ beta_true)))).astype(np.float64)
X = torch.from_numpy(Xn)
offset = torch.log(torch.from_numpy(exposure))


def irls(y, family, max_iter=25, tol=1e-10):
    beta = torch.zeros(X.shape[1])
    devs = []
    for it in range(max_iter):
        eta = X @ beta + (offset if family == "poisson" else 0.0)
        if family == "poisson":
            mu = torch.exp(eta)
            dmu = mu
            var = mu
            dev = 2 * torch.sum(
                torch.where(y > 0, y * torch.log(y / mu), torch.zeros_like(y)) - (y - mu)
            )
        else:
            mu = torch.sigmoid(eta)
            dmu = mu * (1 - mu)
            var = mu * (1 - mu)
            dev = -2 * torch.sum(y * torch.log(mu) + (1 - y) * torch.log1p(-mu))
        devs.append(dev.item())
        if it > 0 and abs(devs[-1] - devs[-2]) < tol * (abs(devs[-1]) + 0.1):
            break
        w = dmu**2 / var
        z = (eta - (offset if family == "poisson" else 0.0)) + (y - mu) / dmu
        XtW = X.t() * w
        beta = torch.linalg.solve(XtW @ X, XtW @ z)
    cov = torch.linalg.inv(XtW @ X)
    se = torch.sqrt(torch.diagonal(cov))
    zstat = beta / se
    p = 2 * (1 - torch.special.ndtr(zstat.abs()))
    return beta, se, zstat, p, devs


results = {}
for family, y in (("poisson", yp), ("logistic", yb)):
    yt = torch.from_numpy(y)
    beta, se, zstat, p, devs = irls(yt, family)

    def nll(b, family=family, yt=yt):
        eta = X @ b + (offset if family == "poisson" else 0.0)
        if family == "poisson":
            return torch.sum(torch.exp(eta) - yt * eta)
        return torch.sum(torch.nn.functional.softplus(eta) - yt * eta)

    b = torch.zeros(3)
    for it in range(12):
        g = torch.autograd.functional.jacobian(nll, b)
        H = torch.autograd.functional.hessian(nll, b)
        b = b - torch.linalg.solve(H, g)
    results[family] = {
        "beta": beta.tolist(),
        "se": se.tolist(),
        "z": zstat.tolist(),
        "p": p.tolist(),
        "deviance": devs,
        "newton_agrees": torch.allclose(b, beta, atol=1e-8),
    }

# GP classification by the Laplace approximation
m = 40
Xg = np.sort(rng.uniform(-3, 3, m))
yg = np.where(np.sin(1.5 * Xg) + 0.3 * rng.standard_normal(m) > 0, 1.0, -1.0)
xg = torch.from_numpy(Xg)
ygt = torch.from_numpy(yg)


def kernel(a, b, ls, sf=1.5):
    return sf**2 * torch.exp(-0.5 * (a.view(-1, 1) - b.view(1, -1)) ** 2 / ls**2)


def laplace_mode(K, y, iters=20):
    f = torch.zeros(len(y))
    t = (y + 1) / 2
    for it in range(iters):
        pi = torch.sigmoid(f)
        W = pi * (1 - pi)
        sW = torch.sqrt(W)
        B = torch.eye(len(y)) + sW.view(-1, 1) * K * sW.view(1, -1)
        L = torch.linalg.cholesky(B)
        b = W * f + (t - pi)
        v = torch.linalg.solve_triangular(L, (sW * (K @ b)).unsqueeze(1), upper=False)
        a = b - sW * torch.cholesky_solve((sW * (K @ b)).unsqueeze(1), L).squeeze(1)
        f = K @ a
    log_lik = torch.sum(t * f - torch.nn.functional.softplus(f))
    lml = -0.5 * (a @ f) + log_lik - torch.log(torch.diagonal(L)).sum()
    return f, a, L, sW, lml, v


grid = [0.3, 0.6, 1.0, 1.5]
lmls = []
for ls in grid:
    K = kernel(xg, xg, ls)
    lmls.append(laplace_mode(K, ygt)[4].item())
best = grid[int(np.argmax(lmls))]
K = kernel(xg, xg, best)
f, a, L, sW, lml, _ = laplace_mode(K, ygt)
xs = torch.linspace(-3, 3, 7)
ks = kernel(xs, xg, best)
pi = torch.sigmoid(f)
fmean = ks @ ((ygt + 1) / 2 - pi)
v = torch.linalg.solve_triangular(L, (sW.view(-1, 1) * ks.t()), upper=False)
fvar = kernel(xs, xs, best).diagonal() - (v * v).sum(0)
pred = torch.special.ndtr(fmean / torch.sqrt(1 + fvar))  # a probit likelihood's predictive
probit = torch.sigmoid(fmean / torch.sqrt(1 + math.pi * fvar / 8))
report(
    glm=results,
    lmls=lmls,
    best=best,
    lml=lml.item(),
    fmean=fmean.tolist(),
    fvar=fvar.tolist(),
    probit=probit.tolist(),
    ndtr=pred.tolist(),
)
