# Learning to rank as allRank and the LTR tutorials write it, on padded slates (labels 0-4,
# padding marked by -1): RankNet on all document pairs from torch.combinations with
# BCEWithLogits on score differences and a pair mask, ListNet (softmax of the labels with
# -inf padding against log_softmax of the scores), allRank's listMLE (a shuffle by a NumPy
# permutation, sort of the labels, gather, -inf masking by boolean index assignment, the
# Plackett-Luce denominators by cumsum over flip(dims=[1]), observation_loss[mask] = 0.0),
# allRank's lambdaLoss with the lambdaRank and ndcgLoss2 weighting schemes (sort of scores,
# gather of labels, pairwise differences through [:, :, None] - [:, None, :], isfinite pair
# masks, an ndcg@k mask written by slice assignment, clamp_ in place, torch.pow(2, labels),
# log2 discounts, sigmoid ** weights), ApproxNDCG (ranks by summed sigmoids of score gaps),
# and the metrics: NDCG@k with an ideal DCG from the sorted labels and torch.where for empty
# slates, MRR from the first relevant position by argmax over a cumulative mask.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(17)
PADDED_Y_VALUE = -1
DEFAULT_EPS = 1e-10
B, L, NF = 6, 8, 6


def rankNet(y_pred, y_true, padded_value_indicator=PADDED_Y_VALUE):
    y_pred = y_pred.clone()
    y_true = y_true.clone()
    pairs = torch.combinations(torch.arange(y_pred.shape[1]), r=2)
    i, j = pairs[:, 0], pairs[:, 1]
    true_diffs = y_true[:, i] - y_true[:, j]
    valid = (y_true[:, i] != padded_value_indicator) & (y_true[:, j] != padded_value_indicator)
    valid = valid & (true_diffs != 0)
    pred_diffs = y_pred[:, i] - y_pred[:, j]
    target = (true_diffs > 0).type(torch.float32)
    return nn.BCEWithLogitsLoss()(pred_diffs[valid], target[valid])


def listNet(y_pred, y_true, eps=DEFAULT_EPS, padded_value_indicator=PADDED_Y_VALUE):
    y_pred = y_pred.clone()
    y_true = y_true.clone()
    mask = y_true == padded_value_indicator
    y_pred[mask] = float("-inf")
    y_true[mask] = float("-inf")
    preds_smax = F.softmax(y_pred, dim=1)
    true_smax = F.softmax(y_true, dim=1)
    preds_smax = preds_smax + eps
    preds_log = torch.log(preds_smax)
    return torch.mean(-torch.sum(true_smax * preds_log, dim=1))


def listMLE(y_pred, y_true, random_indices, eps=DEFAULT_EPS,
            padded_value_indicator=PADDED_Y_VALUE):
    # shuffle for randomised tie resolution (allRank: torch.randperm)
    y_pred_shuffled = y_pred[:, random_indices]
    y_true_shuffled = y_true[:, random_indices]
    y_true_sorted, indices = y_true_shuffled.sort(descending=True, dim=-1)
    mask = y_true_sorted == padded_value_indicator
    preds_sorted_by_true = torch.gather(y_pred_shuffled, dim=1, index=indices)
    preds_sorted_by_true[mask] = float("-inf")
    max_pred_values, _ = preds_sorted_by_true.max(dim=1, keepdim=True)
    preds_sorted_by_true_minus_max = preds_sorted_by_true - max_pred_values
    cumsums = torch.cumsum(preds_sorted_by_true_minus_max.exp().flip(dims=[1]),
                           dim=1).flip(dims=[1])
    observation_loss = torch.log(cumsums + eps) - preds_sorted_by_true_minus_max
    observation_loss[mask] = 0.0
    return torch.mean(torch.sum(observation_loss, dim=1))


def lambdaRank_scheme(G, D, *args):
    return torch.abs(torch.pow(D[:, :, None], -1.) - torch.pow(D[:, None, :], -1.)) * torch.abs(
        G[:, :, None] - G[:, None, :])


def ndcgLoss2_scheme(G, D, *args):
    pos_idxs = torch.arange(1, G.shape[1] + 1, device=G.device)
    delta_idxs = torch.abs(pos_idxs[:, None] - pos_idxs[None, :])
    deltas = torch.abs(torch.pow(torch.abs(D[0, delta_idxs - 1]), -1.)
                       - torch.pow(torch.abs(D[0, delta_idxs]), -1.))
    deltas.diagonal().zero_()
    return deltas[None, :, :] * torch.abs(G[:, :, None] - G[:, None, :])


def lambdaLoss(y_pred, y_true, eps=DEFAULT_EPS, padded_value_indicator=PADDED_Y_VALUE,
               weighing_scheme=None, k=None, sigma=1., mu=10., reduction="sum"):
    device = y_pred.device
    y_pred = y_pred.clone()
    y_true = y_true.clone()
    padded_mask = y_true == padded_value_indicator
    y_pred[padded_mask] = float("-inf")
    y_true[padded_mask] = float("-inf")
    # Here we sort the true and predicted relevancy scores.
    y_pred_sorted, indices_pred = y_pred.sort(descending=True, dim=-1)
    y_true_sorted, _ = y_true.sort(descending=True, dim=-1)
    # After sorting, we can mask out the pairs of indices (i, j) containing index of a padded
    # element.
    true_sorted_by_preds = torch.gather(y_true, dim=1, index=indices_pred)
    true_diffs = true_sorted_by_preds[:, :, None] - true_sorted_by_preds[:, None, :]
    padded_pairs_mask = torch.isfinite(true_diffs)
    padded_pairs_mask = padded_pairs_mask & (true_diffs > 0)
    ndcg_at_k_mask = torch.zeros((y_pred.shape[1], y_pred.shape[1]), dtype=torch.bool,
                                 device=device)
    ndcg_at_k_mask[:k, :k] = 1
    # Here we clamp the -infs to get correct gains and ideal DCGs (maxDCGs)
    true_sorted_by_preds.clamp_(min=0.)
    y_true_sorted.clamp_(min=0.)
    # Here we find the gains, discounts and ideal DCGs per slate.
    pos_idxs = torch.arange(1, y_pred.shape[1] + 1).to(device)
    D = torch.log2(1. + pos_idxs.float())[None, :]
    maxDCGs = torch.sum(((torch.pow(2, y_true_sorted) - 1) / D)[:, :k], dim=-1).clamp(min=eps)
    G = (torch.pow(2, true_sorted_by_preds) - 1) / maxDCGs[:, None]
    # Here we apply appropriate weighing scheme
    if weighing_scheme is None:
        weights = 1.
    else:
        weights = globals()[weighing_scheme](G, D, mu, true_sorted_by_preds)
    # We are clamping the array entries to maintain correct backprop (log(0) and division by 0)
    scores_diffs = (y_pred_sorted[:, :, None] - y_pred_sorted[:, None, :]).clamp(min=-1e8,
                                                                                 max=1e8)
    scores_diffs.masked_fill(torch.isnan(scores_diffs), 0.)
    weighted_probas = (torch.sigmoid(sigma * scores_diffs).clamp(min=eps) ** weights).clamp(
        min=eps)
    losses = torch.log2(weighted_probas)
    masked_losses = losses[padded_pairs_mask & ndcg_at_k_mask]
    if reduction == "sum":
        loss = -torch.sum(masked_losses)
    elif reduction == "mean":
        loss = -torch.mean(masked_losses)
    return loss


def approxNDCGLoss(y_pred, y_true, eps=DEFAULT_EPS, padded_value_indicator=PADDED_Y_VALUE,
                   alpha=1.):
    y_pred = y_pred.clone()
    y_true = y_true.clone()
    padded_mask = y_true == padded_value_indicator
    y_pred[padded_mask] = float("-inf")
    y_true[padded_mask] = float("-inf")
    y_pred_sorted, indices_pred = y_pred.sort(descending=True, dim=-1)
    y_true_sorted, _ = y_true.sort(descending=True, dim=-1)
    true_sorted_by_preds = torch.gather(y_true, dim=1, index=indices_pred)
    true_diffs = true_sorted_by_preds[:, :, None] - true_sorted_by_preds[:, None, :]
    padded_pairs_mask = torch.isfinite(true_diffs)
    true_sorted_by_preds.clamp_(min=0.)
    y_true_sorted.clamp_(min=0.)
    pos_idxs = torch.arange(1, y_pred.shape[1] + 1).to(y_pred.device)
    D = torch.log2(1. + pos_idxs.float())[None, :]
    maxDCGs = torch.sum((torch.pow(2, y_true_sorted) - 1) / D, dim=-1).clamp(min=eps)
    G = (torch.pow(2, true_sorted_by_preds) - 1) / maxDCGs[:, None]
    scores_diffs = (y_pred_sorted[:, :, None] - y_pred_sorted[:, None, :])
    scores_diffs[~padded_pairs_mask] = 0.
    approx_pos = 1. + torch.sum(padded_pairs_mask.float() * (
        torch.sigmoid(-alpha * scores_diffs).clamp(min=eps)), dim=-1)
    approx_D = torch.log2(1. + approx_pos)
    approx_NDCG = torch.sum((G / approx_D), dim=-1)
    return -torch.mean(approx_NDCG)


def ndcg(y_pred, y_true, ats=(1, 3, 5), padding_indicator=PADDED_Y_VALUE):
    y_true = y_true.clone()
    y_pred = y_pred.clone()
    mask = y_true == padding_indicator
    y_pred[mask] = float("-inf")
    y_true[mask] = 0.0
    _, indices = y_pred.sort(descending=True, dim=-1)
    true_sorted_by_preds = torch.gather(y_true, dim=1, index=indices)
    ideal, _ = y_true.sort(descending=True, dim=-1)
    discounts = torch.tensor(1) / torch.log2(torch.arange(y_true.shape[1],
                                                          dtype=torch.float) + 2.0)
    out = []
    for k in ats:
        dcg = ((torch.pow(2, true_sorted_by_preds) - 1) * discounts)[:, :k].sum(dim=1)
        idcg = ((torch.pow(2, ideal) - 1) * discounts)[:, :k].sum(dim=1)
        out.append(torch.where(idcg == 0, torch.zeros_like(dcg), dcg / idcg).mean().item())
    return out


def mrr(y_pred, y_true, padding_indicator=PADDED_Y_VALUE):
    y_pred = y_pred.clone().masked_fill(y_true == padding_indicator, float("-inf"))
    _, indices = y_pred.sort(descending=True, dim=-1)
    relevant = torch.gather(y_true, 1, indices) > 0
    first = relevant.long().cumsum(dim=1).eq(1) & relevant
    pos = first.float().argmax(dim=1)
    rr = torch.where(relevant.any(dim=1), 1.0 / (pos.float() + 1), torch.zeros(()))
    return rr.mean().item()


class Scorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(NF, 16), nn.ReLU(), nn.Dropout(0.0),
                                 nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 1))

    def forward(self, x):  # (B, L, NF) -> (B, L)
        return self.net(x).squeeze(-1)


# slates: relevance from a hidden linear score, some slates padded at the end
w_true = rng.standard_normal(NF)
feats = rng.standard_normal((B, L, NF))
rel = np.clip(np.round(feats @ w_true + 2 + 0.3 * rng.standard_normal((B, L))), 0, 4)
lengths = [8, 8, 6, 5, 8, 7]
for b, n in enumerate(lengths):
    rel[b, n:] = PADDED_Y_VALUE
    feats[b, n:] = 0.0
X = torch.from_numpy(feats.astype(np.float32))
Y = torch.from_numpy(rel.astype(np.float32))
perm = torch.from_numpy(rng.permutation(L))

losses_fns = {
    "ranknet": lambda p, y: rankNet(p, y),
    "listnet": lambda p, y: listNet(p, y),
    "listmle": lambda p, y: listMLE(p, y, perm),
    "lambdarank": lambda p, y: lambdaLoss(p, y, weighing_scheme="lambdaRank_scheme", k=5),
    "ndcgloss2": lambda p, y: lambdaLoss(p, y, weighing_scheme="ndcgLoss2_scheme", k=None,
                                         reduction="mean"),
    "approxndcg": lambda p, y: approxNDCGLoss(p, y, alpha=2.0),
}
results = {}
for name, loss_fn in losses_fns.items():
    model = Scorer()
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(6):
        opt.zero_grad()
        loss = loss_fn(model(X), Y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        scores = model(X)
    results[name] = losses
    results[name + "_ndcg"] = ndcg(scores, Y)
    results[name + "_mrr"] = mrr(scores, Y)
    results[name + "_grad"] = model.net[0].weight.grad.abs().sum().item()

results["n_pairs"] = torch.combinations(torch.arange(L), r=2).shape[0]
results["ndcg_ideal"] = ndcg(Y.clone(), Y)

report(**results)
