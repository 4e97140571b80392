# Evaluation metrics written in tensor ops, as torchmetrics' functional code and hand-rolled
# notebook evaluation loops do it (our own program): a small classifier trained a few steps,
# then the confusion matrix by bincount(target * C + pred, minlength=C * C), per-class
# precision / recall / F1 with zero-division guards (torch.where, nan_to_num), micro / macro /
# weighted averages, Cohen's kappa and Matthews correlation from the confusion matrix,
# one-vs-rest AUROC by sorting scores (stable), cumsum of positives and the trapezoid rule
# with tied scores collapsed through unique_consecutive(return_counts=True), average precision
# by the step rule, top-k accuracy via topk + eq + any, a multilabel head's Hamming loss and
# subset accuracy, regression metrics (R^2, explained variance, Pearson, Spearman with
# average-tied ranks by scatter_add_ / bincount), and torch.testing.assert_close between two
# ways of computing the same metric.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(21)
C = 4
X = torch.from_numpy(rng.standard_normal((64, 6)).astype(np.float32))
Wt = rng.standard_normal((6, C)).astype(np.float32)
y = torch.from_numpy((X.numpy() @ Wt + rng.standard_normal((64, C)).astype(np.float32)).argmax(1))
ml_target = torch.from_numpy((rng.uniform(size=(64, 3)) < 0.4).astype(np.float32))

model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, C + 3))
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
losses = []
for step in range(15):
    out = model(X)
    loss = F.cross_entropy(out[:, :C], y) + F.binary_cross_entropy_with_logits(
        out[:, C:], ml_target
    )
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

with torch.no_grad():
    out = model(X)
probs = out[:, :C].softmax(-1)
pred = probs.argmax(-1)

cm = torch.bincount(y * C + pred, minlength=C * C).reshape(C, C)
tp = cm.diag().float()
fp = cm.sum(0).float() - tp
fn = cm.sum(1).float() - tp
precision = torch.where(tp + fp > 0, tp / (tp + fp), torch.zeros_like(tp))
recall = (tp / (tp + fn)).nan_to_num(0.0)
f1 = (2 * precision * recall / (precision + recall)).nan_to_num(nan=0.0)
support = cm.sum(1).float()
macro_f1 = f1.mean()
weighted_f1 = (f1 * support).sum() / support.sum()
micro_f1 = tp.sum() / (tp.sum() + 0.5 * (fp.sum() + fn.sum()))
n = cm.sum().float()
po = tp.sum() / n
pe = (cm.sum(0).float() * cm.sum(1).float()).sum() / n**2
kappa = (po - pe) / (1 - pe)
t_k, p_k = cm.sum(1).float(), cm.sum(0).float()
mcc = (tp.sum() * n - (t_k * p_k).sum()) / torch.sqrt(
    (n**2 - (p_k**2).sum()) * (n**2 - (t_k**2).sum())
)


def binary_auroc(scores, target):
    order = torch.argsort(scores, descending=True, stable=True)
    s, t = scores[order], target[order].float()
    _, counts = torch.unique_consecutive(s, return_counts=True)
    ends = torch.cumsum(counts, 0) - 1
    tps = torch.cumsum(t, 0)[ends]
    fps = (ends + 1).float() - tps
    tps = F.pad(tps, (1, 0))
    fps = F.pad(fps, (1, 0))
    tpr, fpr = tps / tps[-1], fps / fps[-1]
    return torch.trapezoid(tpr, fpr), tps, fps


def average_precision(scores, target):
    _, tps, fps = binary_auroc(scores, target)
    prec = tps[1:] / (tps[1:] + fps[1:])
    rec = tps / tps[-1]
    return ((rec[1:] - rec[:-1]) * prec).sum()


aurocs, aps = [], []
for c in range(C):
    scores = (probs[:, c] * 20).round() / 20  # bucketed scores: ties
    a, _, _ = binary_auroc(scores, y == c)
    aurocs.append(a.item())
    aps.append(average_precision(scores, y == c).item())

top2 = (probs.topk(2, dim=1).indices == y[:, None]).any(1).float().mean()
ml_pred = (out[:, C:].sigmoid() > 0.5).float()
hamming = (ml_pred != ml_target).float().mean()
subset_acc = (ml_pred == ml_target).all(dim=1).float().mean()

# regression metrics on the logit of the true class
reg_pred = out[:, :C].gather(1, y[:, None]).squeeze(1)
reg_true = torch.from_numpy(rng.standard_normal(64).astype(np.float32)) + reg_pred * 0.8
ss_res = ((reg_true - reg_pred) ** 2).sum()
ss_tot = ((reg_true - reg_true.mean()) ** 2).sum()
r2 = 1 - ss_res / ss_tot
expl_var = 1 - torch.var(reg_true - reg_pred, unbiased=False) / torch.var(reg_true, unbiased=False)
pearson = torch.corrcoef(torch.stack([reg_pred, reg_true]))[0, 1]


def avg_ranks(x):
    # average ranks with ties, as scipy.stats.rankdata
    sorted_x, order = torch.sort(x, stable=True)
    _, inverse, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    positions = torch.arange(1, len(x) + 1, dtype=torch.float32)
    sums = torch.zeros(len(counts)).scatter_add_(0, inverse, positions)
    mean_rank = sums / counts.float()
    out = torch.empty_like(positions)
    out[order] = mean_rank[inverse]
    return out


rp, rt = avg_ranks(reg_pred.round()), avg_ranks(reg_true.round())
spearman = torch.corrcoef(torch.stack([rp, rt]))[0, 1]
torch.testing.assert_close(micro_f1, (pred == y).float().mean())
torch.testing.assert_close(cm.sum(), torch.tensor(64))

report(
    losses=losses,
    cm=cm.tolist(),
    precision=precision.tolist(),
    recall=recall.tolist(),
    f1=f1.tolist(),
    macro_f1=macro_f1.item(),
    weighted_f1=weighted_f1.item(),
    micro_f1=micro_f1.item(),
    kappa=kappa.item(),
    mcc=mcc.item(),
    aurocs=aurocs,
    aps=aps,
    top2=top2.item(),
    hamming=hamming.item(),
    subset_acc=subset_acc.item(),
    r2=r2.item(),
    expl_var=expl_var.item(),
    pearson=pearson.item(),
    spearman=spearman.item(),
    ranks=rp[:10].tolist(),
)
