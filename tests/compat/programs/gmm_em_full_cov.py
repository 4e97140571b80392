# A full-covariance Gaussian mixture fitted by EM in torch, as the gmm-torch package and
# course notebooks write it (float64): k-means++-free initialisation from chosen points,
# the E step by MultivariateNormal(mu, covariance_matrix=...).log_prob on x.unsqueeze(1)
# broadcasting against (K, D) means, log-responsibilities by logsumexp, the M step by
# einsum-weighted covariances plus a reg_covar * eye jitter, the log-likelihood curve with a
# tolerance stop, BIC / AIC by parameter counts, predict / predict_proba, sampling by NumPy
# uniforms through torch.multinomial-free inverse CDF of the weights and cholesky factors, and
# a gradient-based fit of the same mixture (softmax weights, scale_tril by tril + softplus
# diagonal) with Adam for comparison.
import math

import numpy as np
import torch
from compat_helpers import report
from torch.distributions import MultivariateNormal

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(3333)
centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
covs = [np.array([[1.0, 0.6], [0.6, 1.0]]), np.array([[0.5, -0.2], [-0.2, 0.8]]), np.eye(2) * 0.3]
X = np.concatenate([rng.multivariate_normal(c, s, 60) for c, s in zip(centres, covs)])
x = torch.from_numpy(X)
N, D = x.shape
K = 3
mu = x[torch.tensor([5, 70, 150])].clone()
var = torch.eye(D).repeat(K, 1, 1)
pi = torch.full((K,), 1.0 / K)
reg_covar = 1e-6
lls = []
for it in range(30):
    log_p = MultivariateNormal(mu, covariance_matrix=var).log_prob(x.unsqueeze(1)) + torch.log(pi)
    log_norm = torch.logsumexp(log_p, dim=1, keepdim=True)
    log_resp = log_p - log_norm
    ll = log_norm.mean().item()
    lls.append(ll)
    resp = log_resp.exp()
    nk = resp.sum(0) + 10 * torch.finfo(resp.dtype).eps
    mu = (resp.t() @ x) / nk.unsqueeze(1)
    diff = x.unsqueeze(1) - mu
    var = torch.einsum("nk,nki,nkj->kij", resp, diff, diff) / nk.view(K, 1, 1)
    var = var + reg_covar * torch.eye(D)
    pi = nk / N
    if it > 0 and abs(lls[-1] - lls[-2]) < 1e-9:
        break
n_params = K * D + K * D * (D + 1) / 2 + K - 1
bic = -2 * ll * N + n_params * math.log(N)
aic = -2 * ll * N + 2 * n_params
with torch.no_grad():
    proba = log_resp.exp()
    labels = proba.argmax(1)
order = torch.argsort(mu[:, 0])
u = rng.uniform(size=10)
z = torch.from_numpy(rng.standard_normal((10, D)))
cdf = torch.cumsum(pi, 0)
comp = torch.searchsorted(cdf, torch.from_numpy(u))
comp = comp.clamp(max=K - 1)
L = torch.linalg.cholesky(var)
samples = mu[comp] + (L[comp] @ z.unsqueeze(-1)).squeeze(-1)

# the same mixture by gradient ascent
logits = torch.zeros(K, requires_grad=True)
means = x[torch.tensor([5, 70, 150])].clone().requires_grad_()
raw_diag = torch.zeros(K, D, requires_grad=True)
off = torch.zeros(K, D, D, requires_grad=True)
opt = torch.optim.Adam([logits, means, raw_diag, off], lr=0.05)
sgd_ll = []
for step in range(40):
    scale_tril = torch.tril(off, -1) + torch.diag_embed(
        torch.nn.functional.softplus(raw_diag) + 1e-3
    )
    comp_lp = MultivariateNormal(means, scale_tril=scale_tril).log_prob(x.unsqueeze(1))
    nll = -torch.logsumexp(comp_lp + torch.log_softmax(logits, 0), dim=1).mean()
    opt.zero_grad()
    nll.backward()
    opt.step()
    sgd_ll.append(-nll.item())
report(
    lls=lls,
    n_iter=len(lls),
    means=mu[order].tolist(),
    covs=var[order].tolist(),
    weights=pi[order].tolist(),
    bic=bic,
    aic=aic,
    label_counts=torch.bincount(labels, minlength=K)[order].tolist(),
    samples=samples.tolist(),
    sgd_ll=sgd_ll,
    sgd_means=means.detach()[torch.argsort(means.detach()[:, 0])].tolist(),
)
