# Regulatory genomics in the DeepSEA / Basset style (Zhou & Troyanskaya 2015, Kelley 2016):
# DNA strings one-hot encoded through a lookup table (str.translate to indices, F.one_hot,
# permute to (B, 4, L)), planted motifs as the signal, a Conv1d / BatchNorm1d / MaxPool1d
# network with multi-task sigmoid outputs trained by BCEWithLogitsLoss(pos_weight=) under
# SGD with momentum; reverse-complement augmentation (flip of both the channel and length
# axes) and a reverse-complement-averaged prediction; saliency by gradient x input,
# in-silico mutagenesis by scoring every single-base substitution in one batch, first-layer
# filters read as position weight matrices (softmax over the base axis), and per-task AUROC
# from ranks.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(59)
L, n_tasks, n = 40, 3, 48
motifs = ["TGACTCA", "CACGTG", "GGGCGG"]
lookup = str.maketrans("ACGT", "0123")


def random_seq():
    return "".join(rng.choice(list("ACGT"), L))


seqs, labels = [], []
for i in range(n):
    s = list(random_seq())
    lab = []
    for m in motifs:
        has = rng.uniform() < 0.4
        if has:
            p = int(rng.integers(0, L - len(m)))
            s[p : p + len(m)] = m
        lab.append(float(has))
    seqs.append("".join(s))
    labels.append(lab)


def encode(batch):
    idx = torch.tensor([[int(c) for c in s.translate(lookup)] for s in batch])
    return F.one_hot(idx, 4).permute(0, 2, 1).float()


X = encode(seqs)
Y = torch.tensor(labels)


def reverse_complement(x):
    return x.flip(1).flip(2)  # A<->T, C<->G with ACGT order, and reversed positions


class Basset(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(4, 16, kernel_size=8, padding=3)
        self.bn1 = nn.BatchNorm1d(16)
        self.conv2 = nn.Conv1d(16, 16, kernel_size=5, padding=2)
        self.bn2 = nn.BatchNorm1d(16)
        self.fc = nn.Linear(16 * 4, 24)
        self.dropout = nn.Dropout(0.0)
        self.out = nn.Linear(24, n_tasks)

    def forward(self, x):
        x = F.max_pool1d(F.relu(self.bn1(self.conv1(x))), 3)
        x = F.max_pool1d(F.relu(self.bn2(self.conv2(x))), 3)
        x = self.dropout(F.relu(self.fc(x.flatten(1))))
        return self.out(x)


model = Basset()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
pos_weight = (1 - Y.mean(0)) / Y.mean(0)
criterion = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
losses = []
for epoch in range(6):
    for i in range(0, n, 16):
        xb, yb = X[i : i + 16], Y[i : i + 16]
        if epoch % 2 == 1:
            xb = reverse_complement(xb)
        loss = criterion(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    losses.append(loss.item())
results = {"losses": losses, "pos_weight": pos_weight.tolist()}

model.eval()
with torch.no_grad():
    p_fwd = torch.sigmoid(model(X))
    p_rc = torch.sigmoid(model(reverse_complement(X)))
    p = (p_fwd + p_rc) / 2
    results["probs"] = p[:3].flatten().tolist()


def auroc(score, y):
    order = torch.argsort(score)
    ranks = torch.empty_like(score)
    ranks[order] = torch.arange(1, len(score) + 1, dtype=score.dtype)
    npos = y.sum()
    nneg = len(y) - npos
    return ((ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg)).item()


results["auroc"] = [auroc(p[:, t], Y[:, t]) for t in range(n_tasks)]

# saliency: gradient x input for the first task
x = X[:4].clone().requires_grad_(True)
model(x)[:, 0].sum().backward()
sal = (x.grad * x).sum(1)
results["saliency_peak"] = sal.argmax(1).tolist()
results["saliency_sum"] = sal.sum(1).tolist()

# in-silico mutagenesis of one sequence: every position x every base
with torch.no_grad():
    ref = X[0]
    mut = ref.unsqueeze(0).repeat(L * 4, 1, 1)
    pos = torch.arange(L).repeat_interleave(4)
    base = torch.arange(4).repeat(L)
    mut[torch.arange(L * 4), :, pos] = 0.0
    mut[torch.arange(L * 4), base, pos] = 1.0
    delta = (model(mut) - model(ref.unsqueeze(0)))[:, 1].view(L, 4)
    results["ism_max"] = delta.abs().max().item()
    results["ism_pos"] = delta.abs().amax(1).topk(3).indices.tolist()
    pwm = torch.softmax(model.conv1.weight * 2, dim=1)
    results["pwm_consensus"] = ["".join("ACGT"[i] for i in f.argmax(0).tolist()) for f in pwm[:3]]
report(**results)
