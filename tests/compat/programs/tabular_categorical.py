# A tabular classifier in the shape of Kaggle baselines: categorical columns label-encoded with
# torch.unique(return_inverse=True), rare categories folded by bincount counts, per-category
# target statistics with scatter_reduce / index_add_, entity embeddings plus an EmbeddingBag over
# a multi-hot column (offsets, mean mode), class weights from bincount, a multi-task loss
# (weighted cross-entropy with label smoothing + BCE-with-logits with pos_weight), AdamW with a
# ReduceLROnPlateau schedule, and metrics computed by hand: ROC AUC from argsort/cumsum/trapz,
# top-k accuracy, a confusion matrix by bincount, histc of the scores.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)
N = 240
cat_a = rng.choice([3, 7, 7, 11, 11, 11, 42, 99], size=N)  # raw codes, 99 is rare
cat_b = rng.integers(0, 5, N)
num = rng.normal(size=(N, 3)).astype(np.float32)
tags = [rng.choice(6, size=rng.integers(1, 4), replace=False) for _ in range(N)]
y_cls = ((cat_b + (num[:, 0] > 0) + (cat_a == 11)) % 3).astype(np.int64)
y_bin = (num[:, 1] + 0.5 * (cat_b == 2) > 0.3).astype(np.float32)

a_raw = torch.from_numpy(cat_a)
uniq, a_idx = torch.unique(a_raw, return_inverse=True)
counts = torch.bincount(a_idx)
rare = counts < 10
a_idx = torch.where(rare[a_idx], torch.tensor(len(uniq)), a_idx)  # one bucket for rare codes
n_a = len(uniq) + 1
b_idx = torch.from_numpy(cat_b)
x_num = torch.from_numpy(num)
yc = torch.from_numpy(y_cls)
yb = torch.from_numpy(y_bin)

# target statistics per category (a leak-free version would use folds; not the point here)
sums = torch.zeros(n_a).index_add_(0, a_idx, yb)
cnt = torch.zeros(n_a).scatter_reduce(0, a_idx, torch.ones(N), reduce="sum", include_self=False)
te = (sums + 0.5 * 2) / (cnt.clamp_min(0) + 2)  # smoothed towards 0.5
amax = torch.full((n_a,), -1e9).scatter_reduce(0, a_idx, x_num[:, 2], reduce="amax")
x_stats = torch.stack([te[a_idx], amax[a_idx]], dim=1)

flat_tags = torch.from_numpy(np.concatenate(tags))
offsets = torch.from_numpy(np.cumsum([0] + [len(t) for t in tags[:-1]]))


class TabNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb_a = nn.Embedding(n_a, 4)
        self.emb_b = nn.Embedding(5, 3)
        self.bag = nn.EmbeddingBag(6, 3, mode="mean")
        self.body = nn.Sequential(nn.Linear(4 + 3 + 3 + 3 + 2, 32), nn.SiLU(), nn.Dropout(0.0),
                                  nn.Linear(32, 16), nn.SiLU())  # fmt: skip
        self.cls = nn.Linear(16, 3)
        self.bin = nn.Linear(16, 1)

    def forward(self, a, b, xn, xs, tags, offsets):
        h = torch.cat([self.emb_a(a), self.emb_b(b), self.bag(tags, offsets), xn, xs], dim=1)
        h = self.body(h)
        return self.cls(h), self.bin(h).squeeze(1)


model = TabNet()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.as_tensor(np.asarray(W[name])))

cls_w = (1.0 / torch.bincount(yc, minlength=3).float()) * N / 3
pos_w = (yb == 0).sum() / (yb == 1).sum()
opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-3)
plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
losses, lrs = [], []
for epoch in range(25):
    opt.zero_grad()
    logits, score = model(a_idx, b_idx, x_num, x_stats, flat_tags, offsets)
    loss = F.cross_entropy(logits, yc, weight=cls_w, label_smoothing=0.05) + \
        F.binary_cross_entropy_with_logits(score, yb, pos_weight=pos_w)  # fmt: skip
    loss.backward()
    opt.step()
    plateau.step(loss.item() if epoch % 5 else loss.item() + 1.0)  # a few bumps: LR drops
    losses.append(loss.item())
    lrs.append(opt.param_groups[0]["lr"])

with torch.no_grad():
    logits, score = model(a_idx, b_idx, x_num, x_stats, flat_tags, offsets)
    prob = torch.sigmoid(score)
    order = torch.argsort(prob, descending=True, stable=True)
    tp = torch.cumsum(yb[order], 0)
    fp = torch.cumsum(1 - yb[order], 0)
    tpr = torch.cat([torch.zeros(1), tp / tp[-1]])
    fpr = torch.cat([torch.zeros(1), fp / fp[-1]])
    auc = torch.trapz(tpr, fpr)
    top2 = logits.topk(2, dim=1).indices
    top2_acc = (top2 == yc[:, None]).any(1).float().mean()
    pred = logits.argmax(1)
    confusion = torch.bincount(yc * 3 + pred, minlength=9).reshape(3, 3)
    hist = torch.histc(prob, bins=5, min=0.0, max=1.0)
    per_class_recall = confusion.diagonal() / confusion.sum(1).clamp_min(1)
    uniq_pred, pred_counts = torch.unique(pred, return_counts=True)

report(losses=losses, lrs=lrs, auc=float(auc), top2=float(top2_acc), confusion=confusion.tolist(),
       hist=hist.tolist(), recall=per_class_recall.tolist(), n_categories=int(n_a),
       rare=int(rare.sum()), te=te.tolist(), amax=amax.tolist(),
       pred_classes=uniq_pred.tolist(), pred_counts=pred_counts.tolist())  # fmt: skip
