# Spectral and propagation GNNs on a dense graph as the original papers' PyTorch code writes
# them: ChebNet (Defferrard et al. 2016) with the scaled Laplacian 2L / lambda_max - I (the
# symmetric normalised Laplacian from D^-1/2 A D^-1/2, lambda_max by torch.linalg.eigvalsh)
# and the Chebyshev recursion T_k = 2 L~ T_{k-1} - T_{k-2} over stacked features; APPNP
# (personalised PageRank propagation, K power-iteration steps with teleport alpha) after an
# MLP; SGC's precomputed S^K X; label propagation with clamped training labels; a
# two-community stochastic block model from NumPy, train / val / test masks, Adam with weight
# decay on the first layer only (parameter groups), accuracies; and a check that K APPNP
# steps approach the closed form alpha (I - (1 - alpha) S)^-1 by torch.linalg.solve.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(103)
n, F_in, C = 40, 6, 2
labels = np.repeat([0, 1], n // 2)
P = np.where(labels[:, None] == labels[None], 0.25, 0.03)
A = (rng.uniform(size=(n, n)) < P).astype(np.float32)
A = np.triu(A, 1)
A = A + A.T
feats = (rng.standard_normal((n, F_in)) + 0.6 * labels[:, None]).astype(np.float32)
A_t, X, y = torch.from_numpy(A), torch.from_numpy(feats), torch.from_numpy(labels)
perm = rng.permutation(n)
train_mask = torch.zeros(n, dtype=torch.bool)
train_mask[torch.from_numpy(perm[:8])] = True
val_mask = torch.zeros(n, dtype=torch.bool)
val_mask[torch.from_numpy(perm[8:18])] = True
test_mask = ~(train_mask | val_mask)

A_hat = A_t + torch.eye(n)
deg = A_hat.sum(1)
d_inv_sqrt = deg.pow(-0.5)
S = d_inv_sqrt[:, None] * A_hat * d_inv_sqrt[None, :]
deg0 = A_t.sum(1).clamp(min=1)
L = torch.eye(n) - A_t / deg0.sqrt()[:, None] / deg0.sqrt()[None, :]
lambda_max = torch.linalg.eigvalsh(L).max()
L_scaled = 2 * L / lambda_max - torch.eye(n)


class ChebConv(nn.Module):
    def __init__(self, fin, fout, K):
        super().__init__()
        self.K = K
        self.lins = nn.ModuleList([nn.Linear(fin, fout, bias=False) for _ in range(K)])
        self.bias = nn.Parameter(torch.zeros(fout))

    def forward(self, x, lap):
        Tx_0 = x
        out = self.lins[0](Tx_0)
        if self.K > 1:
            Tx_1 = lap @ x
            out = out + self.lins[1](Tx_1)
        for k in range(2, self.K):
            Tx_2 = 2 * (lap @ Tx_1) - Tx_0
            out = out + self.lins[k](Tx_2)
            Tx_0, Tx_1 = Tx_1, Tx_2
        return out + self.bias


class ChebNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ChebConv(F_in, 16, K=3)
        self.conv2 = ChebConv(16, C, K=3)

    def forward(self, x, lap):
        x = F.relu(self.conv1(x, lap))
        return self.conv2(x, lap)


class APPNP(nn.Module):
    def __init__(self, K=10, alpha=0.1):
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(F_in, 16), nn.Linear(16, C)
        self.K, self.alpha = K, alpha

    def forward(self, x, S):
        h = self.lin2(F.relu(self.lin1(x)))
        z = h
        for _ in range(self.K):
            z = (1 - self.alpha) * (S @ z) + self.alpha * h
        return z


class SGC(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(F_in, C)

    def forward(self, x):
        return self.lin(x)


def init(m):
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return m


def acc(logits, mask):
    return (logits[mask].argmax(1) == y[mask]).float().mean().item()


SX = X
for _ in range(2):
    SX = S @ SX
results = {}
for name, model, inputs in (
    ("cheb", init(ChebNet()), (X, L_scaled)),
    ("appnp", init(APPNP()), (X, S)),
    ("sgc", init(SGC()), (SX,)),
):
    first = [p for n_, p in model.named_parameters() if n_.startswith(("conv1", "lin1", "lin."))]
    rest = [p for n_, p in model.named_parameters() if not n_.startswith(("conv1", "lin1", "lin."))]
    groups = [dict(params=first, weight_decay=5e-4)]
    if rest:
        groups.append(dict(params=rest, weight_decay=0.0))
    opt = torch.optim.Adam(groups, lr=0.02)
    losses = []
    for epoch in range(15):
        model.train()
        out = model(*inputs)
        loss = F.cross_entropy(out[train_mask], y[train_mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        out = model(*inputs)
    results[name] = dict(
        losses=losses,
        val=acc(out, val_mask),
        test=acc(out, test_mask),
        logits=out[:2].flatten().tolist(),
    )

# APPNP's K steps vs the closed form
with torch.no_grad():
    h = torch.from_numpy(rng.standard_normal((n, C)).astype(np.float32))
    z = h
    for _ in range(60):
        z = 0.9 * (S @ z) + 0.1 * h
    closed = torch.linalg.solve(torch.eye(n) - 0.9 * S, 0.1 * h)
    results["appnp_closed_gap"] = (z - closed).abs().max().item() < 1e-2
    results["closed"] = closed[:3].flatten().tolist()

# label propagation with clamped training labels
Y0 = torch.zeros(n, C)
Y0[train_mask] = F.one_hot(y[train_mask], C).float()
Fm = Y0.clone()
for _ in range(20):
    Fm = 0.9 * (S @ Fm) + 0.1 * Y0
    Fm[train_mask] = Y0[train_mask]
results["label_prop_test"] = acc(Fm, test_mask)
results["lambda_max"] = lambda_max.item()
report(**results)
