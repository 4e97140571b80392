# Permutation-invariant models as juho-lee/set_transformer and the "Hopfield Networks is All
# You Need" notebooks write them: the MAB with its own multi-head split by torch.cat(split(...),
# 0), SAB, ISAB with inducing points, PMA seeds (nn.init.xavier_uniform_ on a Parameter), a
# Set Transformer and a Deep Sets model (sum and max pooling) trained on the max-of-set and
# amortised clustering targets with masks for variable set sizes, permutation invariance and
# equivariance checked on NumPy permutations; a modern Hopfield retrieval (beta-scaled softmax
# updates to a fixed point), a Hopfield pooling layer with a learned query trained as a
# multiple-instance classifier, and a classical binary Hopfield net by Hebbian outer products
# and sign updates (integer / bool arithmetic, torch.sign, where on ties).
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(101)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class MAB(nn.Module):
    def __init__(self, dim_Q, dim_K, dim_V, num_heads, ln=False):
        super().__init__()
        self.dim_V, self.num_heads = dim_V, num_heads
        self.fc_q = nn.Linear(dim_Q, dim_V)
        self.fc_k = nn.Linear(dim_K, dim_V)
        self.fc_v = nn.Linear(dim_K, dim_V)
        if ln:
            self.ln0 = nn.LayerNorm(dim_V)
            self.ln1 = nn.LayerNorm(dim_V)
        self.fc_o = nn.Linear(dim_V, dim_V)

    def forward(self, Q, K, mask=None):
        Q = self.fc_q(Q)
        K, V = self.fc_k(K), self.fc_v(K)
        dim_split = self.dim_V // self.num_heads
        Q_ = torch.cat(Q.split(dim_split, 2), 0)
        K_ = torch.cat(K.split(dim_split, 2), 0)
        V_ = torch.cat(V.split(dim_split, 2), 0)
        logits = Q_.bmm(K_.transpose(1, 2)) / math.sqrt(self.dim_V)
        if mask is not None:
            m = mask.repeat(self.num_heads, 1).unsqueeze(1)
            logits = logits.masked_fill(~m, -1e9)
        A = torch.softmax(logits, 2)
        O = torch.cat((Q_ + A.bmm(V_)).split(Q.size(0), 0), 2)
        O = O if getattr(self, "ln0", None) is None else self.ln0(O)
        O = O + F.relu(self.fc_o(O))
        O = O if getattr(self, "ln1", None) is None else self.ln1(O)
        return O


class SAB(nn.Module):
    def __init__(self, dim_in, dim_out, num_heads, ln=False):
        super().__init__()
        self.mab = MAB(dim_in, dim_in, dim_out, num_heads, ln=ln)

    def forward(self, X, mask=None):
        return self.mab(X, X, mask)


class ISAB(nn.Module):
    def __init__(self, dim_in, dim_out, num_heads, num_inds, ln=False):
        super().__init__()
        self.I = nn.Parameter(torch.Tensor(1, num_inds, dim_out))
        nn.init.xavier_uniform_(self.I)
        self.mab0 = MAB(dim_out, dim_in, dim_out, num_heads, ln=ln)
        self.mab1 = MAB(dim_in, dim_out, dim_out, num_heads, ln=ln)

    def forward(self, X, mask=None):
        H = self.mab0(self.I.repeat(X.size(0), 1, 1), X, mask)
        return self.mab1(X, H)


class PMA(nn.Module):
    def __init__(self, dim, num_heads, num_seeds, ln=False):
        super().__init__()
        self.S = nn.Parameter(torch.Tensor(1, num_seeds, dim))
        nn.init.xavier_uniform_(self.S)
        self.mab = MAB(dim, dim, dim, num_heads, ln=ln)

    def forward(self, X, mask=None):
        return self.mab(self.S.repeat(X.size(0), 1, 1), X, mask)


class SetTransformer(nn.Module):
    def __init__(
        self, dim_input=2, num_outputs=1, dim_output=1, dim_hidden=16, num_heads=2, ln=True
    ):
        super().__init__()
        self.enc = nn.ModuleList(
            [
                ISAB(dim_input, dim_hidden, num_heads, 4, ln=ln),
                SAB(dim_hidden, dim_hidden, num_heads, ln=ln),
            ]
        )
        self.pma = PMA(dim_hidden, num_heads, num_outputs, ln=ln)
        self.dec = nn.Linear(dim_hidden, dim_output)

    def forward(self, X, mask=None):
        H = self.enc[0](X, mask)
        H = self.enc[1](H, mask)
        return self.dec(self.pma(H, mask))


class DeepSets(nn.Module):
    def __init__(self, pool="sum"):
        super().__init__()
        self.pool = pool
        self.phi = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 16))
        self.rho = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, X, mask=None):
        h = self.phi(X)
        if mask is not None:
            fill = 0.0 if self.pool == "sum" else float("-inf")
            h = h.masked_fill(~mask.unsqueeze(-1), fill)
        h = h.sum(1) if self.pool == "sum" else h.max(1).values
        return self.rho(h).unsqueeze(1)


def make_sets(n=6, max_n=7):
    sizes = rng.integers(3, max_n + 1, size=n)
    X = np.zeros((n, max_n, 2), np.float32)
    mask = np.zeros((n, max_n), bool)
    y = np.zeros((n, 1, 1), np.float32)
    for i, s in enumerate(sizes):
        pts = rng.standard_normal((s, 2)).astype(np.float32)
        X[i, :s], mask[i, :s] = pts, True
        y[i] = np.linalg.norm(pts, axis=1).max()
    return torch.from_numpy(X), torch.from_numpy(mask), torch.from_numpy(y)


torch.manual_seed(0)
results = {}
for name, ctor in (
    ("set_transformer", SetTransformer),
    ("deepsets_sum", DeepSets),
    ("deepsets_max", lambda: DeepSets("max")),
):
    model = load(ctor())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(8):
        X, mask, y = make_sets()
        loss = F.l1_loss(model(X, mask), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    X, mask, y = make_sets(3)
    full = torch.ones_like(mask)
    perm = torch.from_numpy(rng.permutation(X.shape[1]))
    with torch.no_grad():
        a, b = model(X, full), model(X[:, perm], full)
    results[name] = {
        "losses": losses,
        "out": a.flatten().tolist(),
        "perm_err": (a - b).abs().max().item(),
    }

# equivariance of a SAB (no pooling)
sab = load(SAB(2, 8, 2))
X = torch.from_numpy(rng.standard_normal((2, 5, 2)).astype(np.float32))
perm = torch.from_numpy(rng.permutation(5))
with torch.no_grad():
    equi_err = (sab(X)[:, perm] - sab(X[:, perm])).abs().max().item()


# ---- modern Hopfield retrieval
def hopfield_retrieve(patterns, query, beta, steps=3):
    xi = query
    for _ in range(steps):
        xi = torch.softmax(beta * xi @ patterns.T, dim=-1) @ patterns
    return xi


stored = torch.from_numpy(rng.standard_normal((6, 16)).astype(np.float32))
noisy = stored[:3] + 0.8 * torch.from_numpy(rng.standard_normal((3, 16)).astype(np.float32))
retrieved = {
    str(beta): hopfield_retrieve(stored, noisy, beta)[:, :3].flatten().tolist()
    for beta in (0.05, 0.5, 8.0)
}
which = torch.cdist(hopfield_retrieve(stored, noisy, 8.0), stored).argmin(1).tolist()


class HopfieldPooling(nn.Module):
    def __init__(self, d_in, d_h, beta=None):
        super().__init__()
        self.q = nn.Parameter(torch.zeros(1, 1, d_h))
        self.Wk = nn.Linear(d_in, d_h)
        self.Wv = nn.Linear(d_in, d_h)
        self.beta = beta if beta is not None else 1.0 / math.sqrt(d_h)
        self.head = nn.Linear(d_h, 1)

    def forward(self, bags, mask):
        K, Vv = self.Wk(bags), self.Wv(bags)
        s = (self.beta * self.q @ K.transpose(1, 2)).masked_fill(~mask.unsqueeze(1), -1e4)
        a = torch.softmax(s, -1)
        return self.head((a @ Vv).squeeze(1)).squeeze(-1), a


bags = torch.from_numpy(rng.standard_normal((8, 6, 4)).astype(np.float32))
bag_mask = torch.from_numpy(rng.uniform(size=(8, 6)) < 0.8)
bag_mask[:, 0] = True
labels = ((bags[..., 0] > 1.0) & bag_mask).any(1).float()
hp = load(HopfieldPooling(4, 8))
hopt = torch.optim.AdamW(hp.parameters(), lr=1e-2)
mil_losses = []
for step in range(10):
    logit, att = hp(bags, bag_mask)
    loss = F.binary_cross_entropy_with_logits(logit, labels, pos_weight=torch.tensor(2.0))
    hopt.zero_grad()
    loss.backward()
    hopt.step()
    mil_losses.append(loss.item())

# ---- classical binary Hopfield net
P = torch.from_numpy(np.where(rng.uniform(size=(3, 20)) < 0.5, -1, 1).astype(np.int64))
Wh = (P.T @ P).float()
Wh.fill_diagonal_(0)
state = P[0].clone()
flip = torch.from_numpy(rng.choice(20, 4, replace=False))
state[flip] *= -1
energies = []
for it in range(4):
    h = Wh @ state.float()
    state = torch.where(h == 0, state, torch.sign(h).long())
    energies.append((-0.5 * state.float() @ Wh @ state.float()).item())
overlap = (state == P[0]).sum().item()

report(
    results=results,
    equi_err=equi_err,
    retrieved=retrieved,
    which=which,
    mil_losses=mil_losses,
    att=att[0, 0].tolist(),
    energies=energies,
    overlap=overlap,
    state_is_long=state.dtype == torch.int64,
)
