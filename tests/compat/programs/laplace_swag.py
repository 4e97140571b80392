# Post-hoc Bayesian deep learning as laplace-torch / the SWAG repository do it, by hand: a
# classifier trained by SGD, SWA / SWAG moments collected from parameters_to_vector with a
# low-rank deviation matrix, posterior samples written back by vector_to_parameters (NumPy
# normals), BatchNorm-free predictive averaging; a last-layer Laplace approximation whose
# generalized Gauss-Newton comes from per-sample Jacobians (torch.func.jacrev + vmap over
# functional_call), a prior precision tuned by the marginal likelihood (slogdet, Adam on its
# log), and the probit (MacKay) approximation to the predictive.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.func import functional_call, jacrev, vmap
from torch.nn.utils import parameters_to_vector, vector_to_parameters

rng = np.random.default_rng(29)
N, C = 96, 3
centers = rng.standard_normal((C, 2)) * 2
yn = rng.integers(0, C, N)
Xn = centers[yn] + rng.standard_normal((N, 2))
X = torch.from_numpy(Xn).float()
y = torch.from_numpy(yn)
Xtest = torch.from_numpy(rng.standard_normal((10, 2)) * 3).float()

model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, C))
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
losses = []
K = 4
mean = sq_mean = None
devs = []
n_models = 0
for epoch in range(10):
    for b in range(0, N, 32):
        loss = F.cross_entropy(model(X[b : b + 32]), y[b : b + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if epoch >= 4:
        w = parameters_to_vector(model.parameters()).detach()
        if mean is None:
            mean, sq_mean = w.clone(), w**2
        else:
            mean = (mean * n_models + w) / (n_models + 1)
            sq_mean = (sq_mean * n_models + w**2) / (n_models + 1)
        n_models += 1
        devs.append(w - mean)
        devs = devs[-K:]

var = torch.clamp(sq_mean - mean**2, min=1e-30)
D = torch.stack(devs, 1)
srng = np.random.default_rng(3)
map_w = parameters_to_vector(model.parameters()).detach().clone()
probs = []
with torch.no_grad():
    for s in range(8):
        z1 = torch.from_numpy(srng.standard_normal(mean.shape[0]).astype(np.float32))
        z2 = torch.from_numpy(srng.standard_normal(K).astype(np.float32))
        w = mean + (var.sqrt() * z1) / math.sqrt(2) + (D @ z2) / math.sqrt(2 * (K - 1))
        vector_to_parameters(w, model.parameters())
        probs.append(F.softmax(model(Xtest), -1))
    vector_to_parameters(mean, model.parameters())
    swa_probs = F.softmax(model(Xtest), -1)
    vector_to_parameters(map_w, model.parameters())
swag_probs = torch.stack(probs).mean(0)

# last-layer Laplace with a GGN from per-sample Jacobians
head = model[4]
feats = model[:4](X).detach()
params = {k: v.detach() for k, v in head.named_parameters()}


def f(p, x):
    return functional_call(head, p, (x[None],))[0]


J = vmap(jacrev(f), in_dims=(None, 0))(params, feats)  # dict of (N, C, *shape)
Jflat = torch.cat([J["weight"].flatten(2), J["bias"].flatten(2)], 2)  # (N, C, P)
with torch.no_grad():
    pr = F.softmax(head(feats), -1)
Lam = torch.diag_embed(pr) - pr[:, :, None] * pr[:, None, :]  # (N, C, C)
GGN = torch.einsum("ncp,ncd,ndq->pq", Jflat, Lam, Jflat)
theta = torch.cat([head.weight.flatten(), head.bias]).detach()
nll = F.cross_entropy(head(feats), y, reduction="sum").detach()

log_prior_prec = torch.zeros(1, requires_grad=True)
opt = torch.optim.Adam([log_prior_prec], lr=0.1)
marglik = []
P = theta.numel()
for _ in range(20):
    prec = log_prior_prec.exp()
    post_prec = GGN + prec * torch.eye(P)
    ml = (
        -nll
        - 0.5 * prec * theta.pow(2).sum()
        - 0.5 * (torch.linalg.slogdet(post_prec).logabsdet - P * torch.log(prec))
    )
    opt.zero_grad()
    (-ml).sum().backward()
    opt.step()
    marglik.append(ml.item())

with torch.no_grad():
    post_cov = torch.linalg.inv(GGN + log_prior_prec.exp() * torch.eye(P))
    ft = model[:4](Xtest)
    Jt = vmap(jacrev(f), in_dims=(None, 0))(params, ft)
    Jt = torch.cat([Jt["weight"].flatten(2), Jt["bias"].flatten(2)], 2)
    f_mu = head(ft)
    f_var = torch.einsum("ncp,pq,ndq->ncd", Jt, post_cov, Jt)
    kappa = 1 / torch.sqrt(1 + math.pi / 8 * f_var.diagonal(dim1=1, dim2=2))
    la_probs = F.softmax(kappa * f_mu, -1)

report(
    losses=losses,
    swa_probs=swa_probs.tolist(),
    swag_probs=swag_probs.tolist(),
    var_mean=var.mean().item(),
    ggn_trace=GGN.trace().item(),
    marglik=marglik,
    prior_prec=log_prior_prec.exp().item(),
    la_probs=la_probs.tolist(),
    entropy=(-(la_probs * la_probs.log()).sum(-1)).tolist(),
)
