# Stein variational gradient descent (Liu & Wang 2016) as its PyTorch ports write it: a set of
# particles as one tensor requiring grad, the score of an unnormalised log-density by
# autograd.grad, the RBF kernel with the median-heuristic bandwidth (torch.median of the
# pairwise squared distances from cdist, h = med / log(n + 1)), the kernel's gradient by
# autograd.grad of its sum (-dK/dX), phi = (K @ score + grad_K) / n applied as the particles'
# .grad for an Adagrad optimizer with momentum-free steps; a 2-D mixture target (the particle
# mean and spread), then Bayesian logistic regression on a toy dataset with a Gamma prior on
# the weight precision (log alpha as a particle coordinate), posterior predictive accuracy and
# the log-likelihood averaged over particles by logsumexp.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import report

rng = np.random.default_rng(67)


class RBF(torch.nn.Module):
    def __init__(self, sigma=None):
        super().__init__()
        self.sigma = sigma

    def forward(self, X, Y):
        XX = X.matmul(X.t())
        XY = X.matmul(Y.t())
        YY = Y.matmul(Y.t())
        dnorm2 = -2 * XY + XX.diag().unsqueeze(1) + YY.diag().unsqueeze(0)
        if self.sigma is None:
            np_dnorm2 = dnorm2.detach().cpu().numpy()
            h = np.median(np_dnorm2) / (2 * np.log(X.size(0) + 1))
            sigma = np.sqrt(h).item()
        else:
            sigma = self.sigma
        gamma = 1.0 / (1e-8 + 2 * sigma**2)
        return (-gamma * dnorm2).exp()


class SVGD:
    def __init__(self, log_prob, kernel, optimizer):
        self.log_prob, self.K, self.optim = log_prob, kernel, optimizer

    def phi(self, X):
        X = X.detach().requires_grad_(True)
        log_prob = self.log_prob(X)
        score_func = torch.autograd.grad(log_prob.sum(), X)[0]
        K_XX = self.K(X, X.detach())
        grad_K = -torch.autograd.grad(K_XX.sum(), X)[0]
        return (K_XX.detach().matmul(score_func) + grad_K) / X.size(0)

    def step(self, X):
        self.optim.zero_grad()
        X.grad = -self.phi(X)
        self.optim.step()


def mixture_log_prob(x):
    means = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
    d = torch.distributions.Normal(means, torch.ones(2, 2))
    lp = d.log_prob(x.unsqueeze(1)).sum(-1)  # (n, 2)
    return torch.logsumexp(lp + math.log(0.5), dim=1)


results = {}
X = torch.from_numpy(rng.standard_normal((40, 2)).astype(np.float32) * 0.5)
opt = torch.optim.Adagrad([X], lr=0.5)
svgd = SVGD(mixture_log_prob, RBF(), opt)
trace = []
for it in range(30):
    svgd.step(X)
    if it % 5 == 4:
        trace.append(X.mean(0).tolist() + X.std(0).tolist())
results["mixture_trace"] = trace
results["mixture_left"] = (X[:, 0] < 0).sum().item()

# Bayesian logistic regression: theta = [w (d), log alpha]
n, d = 60, 3
w_true = np.array([1.5, -2.0, 0.5])
Xd = rng.standard_normal((n, d))
yd = (rng.uniform(size=n) < 1 / (1 + np.exp(-Xd @ w_true))).astype(np.float32)
Xd, yd = torch.from_numpy(Xd.astype(np.float32)), torch.from_numpy(yd)
a0, b0 = 1.0, 0.1


def blr_log_prob(theta):
    w, log_alpha = theta[:, :d], theta[:, d]
    alpha = log_alpha.exp()
    logits = w @ Xd.t()  # (particles, n)
    ll = -F.binary_cross_entropy_with_logits(logits, yd.expand_as(logits), reduction="none").sum(1)
    prior_w = -0.5 * alpha * (w**2).sum(1) + 0.5 * d * log_alpha
    prior_alpha = (a0 - 1) * log_alpha - b0 * alpha + log_alpha
    return ll + prior_w + prior_alpha


theta = torch.from_numpy(
    np.concatenate(
        [rng.standard_normal((20, d)), np.log(rng.gamma(a0, 1 / b0, (20, 1)))], 1
    ).astype(np.float32)
)
opt = torch.optim.Adagrad([theta], lr=0.1)
svgd = SVGD(blr_log_prob, RBF(), opt)
lps = []
for it in range(25):
    svgd.step(theta)
    lps.append(blr_log_prob(theta).mean().item())
results["blr_log_prob"] = lps[::3]
with torch.no_grad():
    w = theta[:, :d]
    probs = torch.sigmoid(Xd @ w.t()).mean(1)
    results["blr_acc"] = ((probs > 0.5).float() == yd).float().mean().item()
    logits = w @ Xd.t()
    ll = -F.binary_cross_entropy_with_logits(logits, yd.expand_as(logits), reduction="none")
    results["pred_ll"] = (torch.logsumexp(ll, 0) - math.log(theta.shape[0])).mean().item()
    results["w_mean"] = w.mean(0).tolist()
report(**results)
