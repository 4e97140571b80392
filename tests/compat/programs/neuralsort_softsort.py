# Differentiable sorting and ranking as the NeuralSort (Grover et al. 2019), SoftSort (Prillo &
# Eisenschlos 2020) and Gumbel-Sinkhorn (Mena et al. 2018) code writes it: NeuralSort's
# relaxed permutation matrix from the pairwise |s_i - s_j| row sums (B = A 1 1^T, scaling by
# (n + 1 - 2i), softmax / tau), SoftSort's -|sort(s) - s^T| / tau softmax, their hard
# straight-through versions (one_hot of the row argmax, P_hat - P.detach() + P), Sinkhorn
# normalisation in log space (logsumexp over rows then columns) with Gumbel noise from NumPy;
# a ranking network trained to sort handwritten-digit-like scalars (MSE between the relaxed
# sorted vector and the true sorted values), a differentiable top-k mask, and the Spearman
# correlation of the learned scores.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(71)


def neural_sort(s, tau=1.0, hard=False):
    n = s.size(1)
    one = torch.ones((n, 1), dtype=s.dtype)
    A_s = torch.abs(s - s.permute(0, 2, 1))
    B = torch.matmul(A_s, torch.matmul(one, torch.transpose(one, 0, 1)))
    scaling = (n + 1 - 2 * (torch.arange(n) + 1)).type(s.dtype)
    C = torch.matmul(s, scaling.unsqueeze(0))
    P_max = (C - B).permute(0, 2, 1)
    P_hat = F.softmax(P_max / tau, dim=-1)
    if hard:
        P = torch.zeros_like(P_hat)
        b_idx = torch.arange(s.size(0)).repeat([1, n]).view(n, s.size(0)).transpose(0, 1)
        b_idx = b_idx.flatten()
        r_idx = torch.arange(n).repeat([s.size(0), 1]).flatten()
        c_idx = torch.argmax(P_hat, dim=-1).flatten()
        P[b_idx, r_idx, c_idx] = 1
        P_hat = (P - P_hat).detach() + P_hat
    return P_hat


def soft_sort(scores, tau=1.0, hard=False):
    scores = scores.unsqueeze(-1)
    sorted_ = scores.sort(descending=True, dim=1)[0]
    pairwise_diff = (scores.transpose(1, 2) - sorted_).abs().neg() / tau
    P_hat = pairwise_diff.softmax(-1)
    if hard:
        P = torch.zeros_like(P_hat, device=P_hat.device)
        P.scatter_(-1, P_hat.topk(1, -1)[1], value=1)
        P_hat = (P - P_hat).detach() + P_hat
    return P_hat


def log_sinkhorn(log_alpha, n_iters=20):
    for _ in range(n_iters):
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-1, keepdim=True)
        log_alpha = log_alpha - torch.logsumexp(log_alpha, dim=-2, keepdim=True)
    return log_alpha.exp()


results = {}
s = torch.from_numpy(rng.standard_normal((3, 5)).astype(np.float32))
for name, fn in (
    ("neuralsort", lambda x, h: neural_sort(x.unsqueeze(-1), 0.5, h)),
    ("softsort", lambda x, h: soft_sort(x, 0.5, h)),
):
    x = s.clone().requires_grad_(True)
    P = fn(x, False)
    sorted_soft = (P @ x.unsqueeze(-1)).squeeze(-1)
    (sorted_soft * torch.arange(5.0)).sum().backward()
    xh = s.clone().requires_grad_(True)
    Ph = fn(xh, True)
    (Ph @ xh.unsqueeze(-1)).squeeze(-1).pow(2).sum().backward()
    results[name] = dict(
        sorted=sorted_soft[0].tolist(),
        grad=x.grad[0].tolist(),
        hard_rows=Ph.argmax(-1)[1].tolist(),
        hard_grad=xh.grad[1].tolist(),
        row_sums=P.sum(-1)[0].tolist(),
    )

# Gumbel-Sinkhorn matching of a shuffled sequence
perm = rng.permutation(6)
x = torch.linspace(0, 1, 6)
log_alpha = nn.Parameter(torch.zeros(6, 6))
gumbel = torch.from_numpy(-np.log(-np.log(rng.uniform(1e-6, 1, (12, 6, 6)))).astype(np.float32))
opt = torch.optim.Adam([log_alpha], lr=0.3)
target = x[torch.from_numpy(perm)]
gs_losses = []
for it in range(12):
    P = log_sinkhorn((log_alpha + 0.1 * gumbel[it]) / 0.5)
    loss = ((P @ x - target) ** 2).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    gs_losses.append(loss.item())
results["gumbel_sinkhorn"] = gs_losses
with torch.no_grad():
    P = log_sinkhorn(log_alpha / 0.1)
    results["sinkhorn_doubly"] = [P.sum(0).max().item(), P.sum(1).max().item()]
    results["match"] = P.argmax(1).tolist()

# learning to sort: a scorer trained through NeuralSort
scorer = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 1))
W = reference_weights(scorer)
with torch.no_grad():
    for name, p in scorer.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.Adam(scorer.parameters(), lr=1e-2)
feats = torch.from_numpy(rng.standard_normal((16, 6, 4)).astype(np.float32))
values = feats @ torch.tensor([1.0, -0.5, 0.25, 0.0])
sort_losses = []
for it in range(15):
    scores = scorer(feats).squeeze(-1)
    P = neural_sort(scores.unsqueeze(-1), tau=1.0)
    pred_sorted = (P @ values.unsqueeze(-1)).squeeze(-1)
    true_sorted = values.sort(dim=1, descending=True).values
    loss = F.mse_loss(pred_sorted, true_sorted)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sort_losses.append(loss.item())
results["sort_losses"] = sort_losses
with torch.no_grad():
    scores = scorer(feats).squeeze(-1)
    rs = scores.argsort(1).argsort(1).float()
    rv = values.argsort(1).argsort(1).float()
    rs, rv = rs - rs.mean(1, keepdim=True), rv - rv.mean(1, keepdim=True)
    results["spearman"] = ((rs * rv).sum(1) / (rs.norm(dim=1) * rv.norm(dim=1))).mean().item()
    P = soft_sort(scores, tau=0.1)
    topk_mask = P[:, :2].sum(1)
    results["topk_mask"] = topk_mask[0].tolist()
report(**results)
