# Every torch.nn loss class the way a test notebook or a course exercise sweeps them: each with
# reduction='none' / 'sum' / 'mean', with class weights, ignore_index, label_smoothing,
# pos_weight, margins, p=2 and weights for MultiMarginLoss, PoissonNLLLoss(log_input=False,
# full=True), GaussianNLLLoss with full=True and a per-sample variance, HuberLoss(delta),
# KLDivLoss(log_target=True, reduction='batchmean'), TripletMarginWithDistanceLoss with a
# lambda distance and swap, probabilistic targets for CrossEntropyLoss -- and the gradients of
# each with respect to its inputs (backward of a weighted sum of the unreduced loss). Then a
# small multi-task model trained on a sum of several of them. Our own program.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(21)
N, C = 6, 4


def t(a, grad=True):
    x = torch.from_numpy(np.asarray(a, dtype=np.float32))
    return x.requires_grad_(grad)


def rand(*shape):
    return rng.standard_normal(shape).astype(np.float32)


results = {}


def run(name, make_loss, make_inputs):
    """Losses with each reduction and the inputs' gradients of a weighted 'none' loss."""
    out = {}
    for red in ("none", "sum", "mean"):
        crit = make_loss(red)
        inputs = make_inputs()
        loss = crit(*inputs)
        if red == "none":
            w = torch.linspace(0.5, 1.5, loss.numel()).reshape(loss.shape)
            (loss * w).sum().backward()
            out["grads"] = [x.grad.flatten().tolist() for x in inputs
                            if isinstance(x, torch.Tensor) and x.grad is not None]
            out["none"] = loss.detach().flatten().tolist()
            out["shape"] = list(loss.shape)
        else:
            loss.backward()
            out[red] = loss.item()
            out[red + "_grad0"] = inputs[0].grad.flatten().tolist()
    results[name] = out


logits_np, target_np = rand(N, C), rng.integers(0, C, size=N)
target_np[2] = 1
target_ig = target_np.copy()
target_ig[[1, 4]] = -100
class_w = torch.tensor([0.5, 1.0, 2.0, 1.5])

run("ce", lambda r: nn.CrossEntropyLoss(reduction=r),
    lambda: (t(logits_np), torch.from_numpy(target_np)))
run("ce_weight_ignore", lambda r: nn.CrossEntropyLoss(weight=class_w, ignore_index=-100,
                                                      reduction=r),
    lambda: (t(logits_np), torch.from_numpy(target_ig)))
run("ce_smooth", lambda r: nn.CrossEntropyLoss(weight=class_w, label_smoothing=0.1,
                                               reduction=r),
    lambda: (t(logits_np), torch.from_numpy(target_np)))
run("ce_smooth_ignore", lambda r: nn.CrossEntropyLoss(label_smoothing=0.2, ignore_index=3,
                                                      reduction=r),
    lambda: (t(logits_np), torch.from_numpy(target_np)))
probs_np = np.abs(rand(N, C))
probs_np /= probs_np.sum(1, keepdims=True)
run("ce_probs", lambda r: nn.CrossEntropyLoss(weight=class_w, label_smoothing=0.05,
                                              reduction=r),
    lambda: (t(logits_np), t(probs_np, grad=False)))
seg_np, seg_t = rand(2, C, 3, 3), rng.integers(0, C, size=(2, 3, 3))
seg_t[0, 0, 0] = 255
run("ce_2d", lambda r: nn.CrossEntropyLoss(weight=class_w, ignore_index=255, reduction=r),
    lambda: (t(seg_np), torch.from_numpy(seg_t)))
logp_np = F.log_softmax(torch.from_numpy(logits_np), 1).numpy()
run("nll", lambda r: nn.NLLLoss(weight=class_w, ignore_index=-100, reduction=r),
    lambda: (t(logp_np), torch.from_numpy(target_ig)))

x_np, y_np = rand(N, 3), rand(N, 3)
run("mse", lambda r: nn.MSELoss(reduction=r), lambda: (t(x_np), t(y_np)))
run("l1", lambda r: nn.L1Loss(reduction=r), lambda: (t(x_np), t(y_np)))
run("smooth_l1", lambda r: nn.SmoothL1Loss(reduction=r, beta=0.5), lambda: (t(x_np), t(y_np)))
run("smooth_l1_beta0", lambda r: nn.SmoothL1Loss(reduction=r, beta=0.0),
    lambda: (t(x_np), t(y_np)))
run("huber", lambda r: nn.HuberLoss(reduction=r, delta=0.7), lambda: (t(x_np), t(y_np)))

bin_t = (rng.uniform(size=(N, 3)) > 0.5).astype(np.float32)
soft_t = rng.uniform(size=(N, 3)).astype(np.float32)
run("bce", lambda r: nn.BCELoss(weight=torch.tensor([1.0, 2.0, 0.5]), reduction=r),
    lambda: (t(1 / (1 + np.exp(-x_np))), t(soft_t, grad=False)))
run("bce_logits_pos", lambda r: nn.BCEWithLogitsLoss(pos_weight=torch.tensor([3.0, 1.0, 0.5]),
                                                     weight=torch.tensor([1.0, 0.5, 2.0]),
                                                     reduction=r),
    lambda: (t(3 * x_np), t(bin_t, grad=False)))
run("soft_margin", lambda r: nn.SoftMarginLoss(reduction=r),
    lambda: (t(x_np), t(2 * bin_t - 1, grad=False)))
run("multilabel_soft_margin", lambda r: nn.MultiLabelSoftMarginLoss(
    weight=torch.tensor([1.0, 2.0, 0.5]), reduction=r),
    lambda: (t(x_np), t(bin_t, grad=False)))
ml_t = np.full((N, C), -1, dtype=np.int64)
for i in range(N):
    k = rng.integers(1, C)
    ml_t[i, :k] = rng.permutation(C)[:k]
run("multilabel_margin", lambda r: nn.MultiLabelMarginLoss(reduction=r),
    lambda: (t(logits_np), torch.from_numpy(ml_t)))
run("multi_margin", lambda r: nn.MultiMarginLoss(reduction=r),
    lambda: (t(logits_np), torch.from_numpy(target_np)))
run("multi_margin_p2_w", lambda r: nn.MultiMarginLoss(p=2, margin=0.5, weight=class_w,
                                                      reduction=r),
    lambda: (t(logits_np), torch.from_numpy(target_np)))

a_np, b_np, s_np = rand(N), rand(N), np.sign(rand(N)).astype(np.float32)
run("margin_ranking", lambda r: nn.MarginRankingLoss(margin=0.3, reduction=r),
    lambda: (t(a_np), t(b_np), t(s_np, grad=False)))
run("hinge_embedding", lambda r: nn.HingeEmbeddingLoss(margin=1.5, reduction=r),
    lambda: (t(np.abs(a_np) * 2), t(s_np, grad=False)))
e1, e2 = rand(N, 5), rand(N, 5)
run("cosine_embedding", lambda r: nn.CosineEmbeddingLoss(margin=0.2, reduction=r),
    lambda: (t(e1), t(e2), t(s_np, grad=False)))
e3 = rand(N, 5)
run("triplet", lambda r: nn.TripletMarginLoss(margin=1.0, p=2, swap=True, reduction=r),
    lambda: (t(e1), t(e2), t(e3)))
run("triplet_p1", lambda r: nn.TripletMarginLoss(margin=2.0, p=1, eps=1e-6, reduction=r),
    lambda: (t(e1), t(e2), t(e3)))
run("triplet_distance", lambda r: nn.TripletMarginWithDistanceLoss(
    distance_function=lambda x, y: 1.0 - F.cosine_similarity(x, y), margin=0.5, swap=True,
    reduction=r),
    lambda: (t(e1), t(e2), t(e3)))
run("triplet_distance_default", lambda r: nn.TripletMarginWithDistanceLoss(reduction=r),
    lambda: (t(e1), t(e2), t(e3)))

rate_np = np.abs(rand(N, 3)) + 0.1
count_np = rng.poisson(2.0, size=(N, 3)).astype(np.float32)
run("poisson_log", lambda r: nn.PoissonNLLLoss(reduction=r),
    lambda: (t(x_np), t(count_np, grad=False)))
run("poisson_full", lambda r: nn.PoissonNLLLoss(log_input=False, full=True, reduction=r),
    lambda: (t(rate_np), t(count_np, grad=False)))
var_np = np.abs(rand(N, 1)) + 0.05
run("gaussian_nll", lambda r: nn.GaussianNLLLoss(reduction=r),
    lambda: (t(x_np), t(y_np), t(var_np)))
run("gaussian_nll_full", lambda r: nn.GaussianNLLLoss(full=True, eps=1e-3, reduction=r),
    lambda: (t(x_np), t(y_np), t(np.abs(rand(N, 3)) + 1e-4)))
lp = F.log_softmax(torch.from_numpy(rand(N, C)), 1).numpy()
lq = F.log_softmax(torch.from_numpy(rand(N, C)), 1).numpy()
run("kldiv", lambda r: nn.KLDivLoss(reduction=r), lambda: (t(lp), t(np.exp(lq))))
run("kldiv_log_target", lambda r: nn.KLDivLoss(reduction=r, log_target=True),
    lambda: (t(lp), t(lq)))

# reductions outside the sweep
kl_bm = nn.KLDivLoss(reduction="batchmean", log_target=True)(t(lp), t(lq)).item()
ctc_like = F.cross_entropy(t(logits_np), torch.from_numpy(target_np), reduction="mean",
                           weight=class_w, ignore_index=0).item()
all_ignored = F.cross_entropy(t(logits_np), torch.full((N,), -100, dtype=torch.long))
all_ignored_nan = bool(torch.isnan(all_ignored).item())
all_ignored_sum = F.cross_entropy(t(logits_np), torch.full((N,), -100, dtype=torch.long),
                                  reduction="sum").item()


# a multi-task model trained on several of the losses at once
class MultiTask(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(8, 16), nn.Tanh())
        self.cls = nn.Linear(16, C)
        self.reg = nn.Linear(16, 2)
        self.logvar = nn.Linear(16, 2)
        self.emb = nn.Linear(16, 5)

    def forward(self, x):
        h = self.trunk(x)
        return self.cls(h), self.reg(h), self.logvar(h).exp(), self.emb(h)


model = MultiTask()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
X = torch.from_numpy(rand(32, 8))
yc = torch.from_numpy((X[:, 0] > 0).long().numpy() + 2 * (X[:, 1] > 0).long().numpy())
yr = torch.stack([X[:, 2] * X[:, 3], X[:, 4].sin()], 1)
sign = torch.where(yc[:16] == yc[16:], 1.0, -1.0)
crit_ce = nn.CrossEntropyLoss(label_smoothing=0.1)
crit_g = nn.GaussianNLLLoss()
crit_h = nn.HuberLoss(delta=0.5)
crit_cos = nn.CosineEmbeddingLoss(margin=0.1)
crit_mm = nn.MultiMarginLoss(p=2, weight=class_w)
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
train = []
for step in range(15):
    logits, mu, var, emb = model(X)
    parts = [crit_ce(logits, yc), crit_g(mu, yr, var), crit_h(mu, yr),
             crit_cos(emb[:16], emb[16:], sign), crit_mm(logits, yc)]
    loss = sum(parts)
    opt.zero_grad()
    loss.backward()
    opt.step()
    train.append([p.item() for p in parts])

report(results=results, kl_batchmean=kl_bm, ce_ignore0=ctc_like,
       all_ignored_nan=all_ignored_nan, all_ignored_sum=all_ignored_sum, train=train)
