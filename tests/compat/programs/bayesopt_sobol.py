# Bayesian optimisation as BoTorch's tutorials do it, with the BoTorch / GPyTorch internals
# written out in plain PyTorch (our own program, float64 as BoTorch recommends): an initial
# design from torch.quasirandom.SobolEngine (draw(n, dtype=torch.double)), outcomes
# standardised, an exact GP with an ARD Matern-5/2 kernel (torch.cdist on scaled inputs) whose
# raw hyperparameters go through softplus, fitted by Adam on the marginal log-likelihood through
# torch.linalg.cholesky / cholesky_solve; the posterior by triangular solves; analytic Expected
# Improvement with torch.special.ndtr and its log form with torch.special.log_ndtr; Monte-Carlo
# qEI over a joint posterior with quasi-random base samples (a fast-forwarded SobolEngine, then
# torch.special.ndtri); acquisition optimisation as optimize_acqf does it: raw Sobol samples,
# the best few as starts, projected gradient ascent clamped to the bounds; plus quasi-Monte Carlo
# integration (draw_base2, reset, fast_forward) against plain Monte Carlo, and a seeded
# scrambled engine checked for its balance property.
import math

import torch
import torch.nn.functional as F
from compat_helpers import report
from torch.quasirandom import SobolEngine

torch.manual_seed(0)
dtype = torch.double


def branin(X):
    # rescaled to [0, 1]^2, negated so that we maximise
    x1 = 15 * X[..., 0] - 5
    x2 = 15 * X[..., 1]
    t1 = x2 - 5.1 / (4 * math.pi**2) * x1**2 + 5 / math.pi * x1 - 6
    return -(t1**2 + 10 * (1 - 1 / (8 * math.pi)) * torch.cos(x1) + 10)


def matern52(X1, X2, lengthscale, outputscale):
    d = torch.cdist(X1 / lengthscale, X2 / lengthscale)
    s5d = math.sqrt(5) * d
    return outputscale * (1 + s5d + 5.0 / 3.0 * d**2) * torch.exp(-s5d)


class GP:
    def __init__(self, X, Y):
        self.X = X
        self.y_mean, self.y_std = Y.mean(), Y.std()
        self.y = (Y - self.y_mean) / self.y_std
        self.raw = torch.zeros(4, dtype=dtype, requires_grad=True)  # ls1, ls2, outputscale, noise

    def hypers(self):
        p = F.softplus(self.raw)
        return p[:2] + 0.05, p[2] + 0.05, p[3] * 1e-2 + 1e-6

    def mll(self):
        ls, os_, noise = self.hypers()
        K = matern52(self.X, self.X, ls, os_) + noise * torch.eye(len(self.X), dtype=dtype)
        L = torch.linalg.cholesky(K)
        alpha = torch.cholesky_solve(self.y[:, None], L)
        n = len(self.X)
        return (
            -0.5 * (self.y[:, None] * alpha).sum()
            - torch.log(torch.diagonal(L)).sum()
            - 0.5 * n * math.log(2 * math.pi)
        ) / n

    def fit(self, steps=40):
        opt = torch.optim.Adam([self.raw], lr=0.1)
        for _ in range(steps):
            opt.zero_grad()
            loss = -self.mll()
            loss.backward()
            opt.step()
        return loss.item()

    def posterior(self, Xs, full_cov=False):
        ls, os_, noise = self.hypers()
        K = matern52(self.X, self.X, ls, os_) + noise * torch.eye(len(self.X), dtype=dtype)
        L = torch.linalg.cholesky(K)
        Ks = matern52(self.X, Xs, ls, os_)
        v = torch.linalg.solve_triangular(L, Ks, upper=False)
        a = torch.linalg.solve_triangular(L, self.y[:, None], upper=False)
        mean = (v.transpose(-1, -2) @ a).squeeze(-1)
        if full_cov:
            cov = matern52(Xs, Xs, ls, os_) - v.transpose(-1, -2) @ v
            return mean, cov
        var = (os_ - (v**2).sum(-2)).clamp_min(1e-9)
        return mean, var


def expected_improvement(gp, Xs, best_f):
    mean, var = gp.posterior(Xs)
    sigma = var.sqrt()
    u = (mean - best_f) / sigma
    ei = sigma * (torch.exp(-0.5 * u**2) / math.sqrt(2 * math.pi) + u * torch.special.ndtr(u))
    return ei


def log_ei_tail(u):
    # log(phi(u) + u Phi(u)) for very negative u, via log_ndtr (the logEI paper's tail form)
    return torch.special.log_ndtr(u) + torch.log(
        torch.exp(-0.5 * u**2 - math.log(math.sqrt(2 * math.pi)) - torch.special.log_ndtr(u)) + u
    )


def qei(gp, Xq, best_f, base):
    # Xq: (b, q, 2); base: (S, q) standard normal quasi-random samples
    means, chols = [], []
    for xq in Xq:
        m, c = gp.posterior(xq, full_cov=True)
        means.append(m)
        chols.append(torch.linalg.cholesky(c + 1e-8 * torch.eye(len(xq), dtype=dtype)))
    mean = torch.stack(means)  # b,q
    L = torch.stack(chols)  # b,q,q
    samples = mean[:, None, :] + torch.einsum("bij,sj->bsi", L, base)  # b,S,q
    return (samples - best_f).clamp_min(0).max(-1).values.mean(-1)


def optimize_acqf(acq, raw_samples=64, num_restarts=4, steps=25, lr=0.02, seed_engine=None):
    raw = seed_engine.draw(raw_samples, dtype=dtype)
    with torch.no_grad():
        vals = acq(raw)
    starts = raw[torch.topk(vals, num_restarts).indices].clone().requires_grad_(True)
    opt = torch.optim.Adam([starts], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (-acq(starts).sum()).backward()
        opt.step()
        with torch.no_grad():
            starts.clamp_(0.0, 1.0)
    with torch.no_grad():
        final = acq(starts)
    best = final.argmax()
    return starts[best].detach(), final[best].item()


sobol = SobolEngine(dimension=2, scramble=False)
X = sobol.draw(6, dtype=dtype)
Y = branin(X)
acq_engine = SobolEngine(dimension=2)
acq_engine.fast_forward(16)
history, fits, acq_vals, log_eis = [], [], [], []
for it in range(5):
    gp = GP(X, Y)
    fits.append(gp.fit())
    best_f = gp.y.max().item()
    x_new, val = optimize_acqf(
        lambda Z, gp=gp, best_f=best_f: expected_improvement(gp, Z, best_f),
        seed_engine=acq_engine,
    )
    acq_vals.append(val)
    with torch.no_grad():
        u = torch.tensor([-3.0, -8.0, -20.0], dtype=dtype)
        log_eis.append(log_ei_tail(u).tolist())
    X = torch.cat([X, x_new[None]])
    Y = torch.cat([Y, branin(x_new[None])])
    history.append(Y.max().item())

# batch (q = 2) MC expected improvement with quasi-random normal base samples
base_engine = SobolEngine(dimension=2)
base_engine.fast_forward(1)  # skip the origin: ndtri(0) = -inf
base = torch.special.ndtri(base_engine.draw(128, dtype=dtype))
gp = GP(X, Y)
gp.fit(20)
cands = SobolEngine(4).draw(16, dtype=dtype).view(16, 2, 2)
with torch.no_grad():
    q_vals = qei(gp, cands, gp.y.max().item(), base)

# quasi-Monte Carlo integration of a smooth function over [0, 1]^3
f = lambda U: torch.exp(-((U - 0.3) ** 2).sum(-1)) * torch.cos(U[..., 0] * 3)  # noqa: E731
qmc = SobolEngine(3)
est = [f(qmc.draw_base2(m, dtype=dtype)).mean().item() for m in (4,)]
qmc.reset()
pts = qmc.draw_base2(8, dtype=dtype)
est.append(f(pts).mean().item())
qmc.reset().fast_forward(256)
est.append(f(qmc.draw(256, dtype=dtype)).mean().item())

scr = SobolEngine(3, scramble=True, seed=7)
s_pts = scr.draw_base2(6)
balanced = bool(((s_pts < 0.5).sum(0) == 32).all() and ((s_pts < 0.25).sum(0) == 16).all())

report(
    initial_design=X[:6].tolist(),
    fits=fits,
    acq_vals=acq_vals,
    log_ei_tail=log_eis[0],
    best_history=history,
    chosen=X[6:].tolist(),
    qei=q_vals.tolist(),
    base_first=base[:3].tolist(),
    qmc_estimates=est,
    scrambled_balanced=balanced,
    scrambled_dtype=str(s_pts.dtype).split(".")[-1],
    random_scrambled=s_pts[:2].tolist(),
    engine_repr=repr(scr),
    num_generated=qmc.num_generated,
)
