# Tensor-network layers written with torch.einsum, as physics-inspired ML code (Stoudenmire &
# Schwab's MPS classifier, TorchMPS-style contractions, tensor-train / Tucker layers of
# compression papers) and einops-free attention code write them (our own program): a local
# feature map [cos(pi x / 2), sin(pi x / 2)], an MPS with a label index in the middle
# contracted site by site with einsum("bi,lir->blr") and batched matrix products
# (einsum("blr,brs->bls")), a boundary-vector environment, the norm of the MPS by a transfer
# matrix contraction; a tensor-train linear layer (TT-cores contracted to the full matrix by
# successive einsum and reshape, then applied directly by the factorised einsum chain); a Tucker
# layer by a three-operand einsum; einsum forms people use for bookkeeping: the sublist form
# torch.einsum(a, [0, 1], b, [1, 2]), ellipsis broadcasting ("...ij,...jk->...ik"), repeated
# indices (trace "ii", diagonal "ii->i", batch diagonal "bii->bi"), outer products ("i,j->ij"),
# operands in a list, upper-case subscripts, and a bilinear form with an implicit output.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import report

rng = np.random.default_rng(31)
torch.manual_seed(0)


def feature_map(x):
    # x: (B, N) in [0, 1] -> (B, N, 2)
    return torch.stack([torch.cos(math.pi * x / 2), torch.sin(math.pi * x / 2)], dim=-1)


class MPS(nn.Module):
    def __init__(self, n_sites, bond_dim, n_labels, d=2):
        super().__init__()
        self.n_sites = n_sites
        self.label_site = n_sites // 2
        eye = torch.eye(bond_dim).unsqueeze(1).expand(bond_dim, d, bond_dim)
        noise = torch.from_numpy(
            rng.standard_normal((n_sites, bond_dim, d, bond_dim)).astype(np.float32)
        )
        cores = eye.unsqueeze(0) + 0.05 * noise  # near-identity cores keep the contraction stable
        self.cores = nn.Parameter(cores)
        label = torch.from_numpy(
            rng.standard_normal((bond_dim, n_labels, bond_dim)).astype(np.float32)
        )
        self.label_core = nn.Parameter(0.05 * label + torch.eye(bond_dim).unsqueeze(1))
        self.left = nn.Parameter(torch.ones(bond_dim) / math.sqrt(bond_dim))
        self.right = nn.Parameter(torch.ones(bond_dim) / math.sqrt(bond_dim))

    def forward(self, x):
        phi = feature_map(x)  # B,N,2
        mats = torch.einsum("bni,nlir->bnlr", phi, self.cores)  # B,N,D,D
        B = x.shape[0]
        env = self.left.expand(B, -1)
        for n in range(self.label_site):
            env = torch.einsum("bl,blr->br", env, mats[:, n])
        right = self.right.expand(B, -1)
        for n in range(self.n_sites - 1, self.label_site - 1, -1):
            right = torch.einsum("blr,br->bl", mats[:, n], right)
        return torch.einsum("bl,lcr,br->bc", env, self.label_core, right)

    def norm_sq(self):
        # <psi|psi> summed over physical indices, label traced: transfer matrices
        E = torch.einsum("l,m->lm", self.left, self.left)
        for n in range(self.n_sites):
            E = torch.einsum("lm,lir,mis->rs", E, self.cores[n], self.cores[n])
        return torch.einsum("rs,r,s->", E, self.right, self.right)


class TTLinear(nn.Module):
    """A (prod in_modes) x (prod out_modes) matrix as a tensor train of 3 cores."""

    def __init__(self, in_modes=(4, 4, 2), out_modes=(2, 3, 2), ranks=(1, 3, 3, 1)):
        super().__init__()
        self.in_modes, self.out_modes = in_modes, out_modes
        cores = []
        for k in range(3):
            shape = (ranks[k], in_modes[k], out_modes[k], ranks[k + 1])
            w = rng.standard_normal(shape).astype(np.float32) / math.sqrt(in_modes[k] * ranks[k])
            cores.append(nn.Parameter(torch.from_numpy(w)))
        self.cores = nn.ParameterList(cores)
        self.bias = nn.Parameter(torch.zeros(math.prod(out_modes)))

    def full_matrix(self):
        G0, G1, G2 = self.cores
        m = torch.einsum("aijb,bklc->aikjlc", G0, G1)
        m = m.reshape(
            self.in_modes[0] * self.in_modes[1], self.out_modes[0] * self.out_modes[1], -1
        )
        m = torch.einsum("xyc,cmnd->xmynd", m, G2)
        return m.reshape(math.prod(self.in_modes), math.prod(self.out_modes))

    def forward(self, x):
        B = x.shape[0]
        t = x.reshape(B, *self.in_modes)
        G0, G1, G2 = self.cores
        t = torch.einsum("bijk,aipr->bjkpr", t, G0)
        t = torch.einsum("bjkpr,rjqs->bkpqs", t, G1)
        t = torch.einsum("bkpqs,skot->bpqo", t, G2)
        return t.reshape(B, -1) + self.bias


class Tucker(nn.Module):
    def __init__(self, d_in=32, d_out=12, r=4):
        super().__init__()
        self.U = nn.Parameter(
            torch.from_numpy(rng.standard_normal((d_in, r)).astype(np.float32) / 6)
        )
        self.V = nn.Parameter(
            torch.from_numpy(rng.standard_normal((d_out, r)).astype(np.float32) / 2)
        )
        self.core = nn.Parameter(torch.eye(r))

    def forward(self, x):
        return torch.einsum("bi,ir,rs,os->bo", x, self.U, self.core, self.V)


# data: 4x4 "images" flattened into 16 sites (zig-zag), 3 classes by a few pixel patterns
def make_data(n):
    y = rng.integers(0, 3, size=n)
    x = rng.uniform(0, 0.3, size=(n, 16))
    x[y == 0, :4] += 0.6
    x[y == 1, 6:10] += 0.6
    x[y == 2, 12:] += 0.6
    return torch.from_numpy(np.clip(x, 0, 1).astype(np.float32)), torch.from_numpy(y)


mps = MPS(16, 4, 3)
opt = torch.optim.Adam(mps.parameters(), lr=5e-3)
mps_losses, norms = [], []
for step in range(20):
    x, y = make_data(24)
    logits = mps(x)
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    mps_losses.append(loss.item())
    if step % 5 == 0:
        with torch.no_grad():
            norms.append(mps.norm_sq().item())
x, y = make_data(60)
with torch.no_grad():
    mps_acc = (mps(x).argmax(1) == y).float().mean().item()

tt = TTLinear()
tucker = Tucker()
opt2 = torch.optim.SGD(list(tt.parameters()) + list(tucker.parameters()), lr=0.05, momentum=0.9)
target = torch.from_numpy(rng.standard_normal((32, 12)).astype(np.float32) / 5)
tt_losses = []
for step in range(15):
    xb = torch.from_numpy(rng.standard_normal((16, 32)).astype(np.float32))
    yb = xb @ target
    pred = tt(xb) + tucker(xb)
    loss = F.mse_loss(pred, yb)
    opt2.zero_grad()
    loss.backward()
    opt2.step()
    tt_losses.append(loss.item())
with torch.no_grad():
    xb = torch.from_numpy(rng.standard_normal((5, 32)).astype(np.float32))
    direct = xb @ tt.full_matrix() + tt.bias
    tt_consistent = torch.allclose(direct, tt(xb), atol=1e-5)

# bookkeeping forms
a = torch.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
b = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32))
sq = torch.from_numpy(rng.standard_normal((4, 4)).astype(np.float32))
bsq = torch.from_numpy(rng.standard_normal((2, 3, 3)).astype(np.float32))
batched = torch.from_numpy(rng.standard_normal((2, 3, 3, 4)).astype(np.float32))
forms = {
    "sublist": torch.einsum(a, [0, 1], b, [1, 2]).flatten().tolist(),
    "sublist_out": torch.einsum(a, [0, 1], b, [1, 2], [2, 0]).flatten().tolist(),
    "ellipsis": torch.einsum("...ij,...jk->...ik", batched, b[:, :2]).flatten()[::5].tolist(),
    "trace": torch.einsum("ii", sq).item(),
    "diag": torch.einsum("ii->i", sq).tolist(),
    "batch_diag": torch.einsum("bii->bi", bsq).flatten().tolist(),
    "outer": torch.einsum("i,j->ij", sq[0], sq[1]).flatten()[::3].tolist(),
    "list_operands": torch.einsum("ij,jk", [a, b]).sum().item(),
    "upper": torch.einsum("Ab,bC->AC", a, b).sum().item(),
    "implicit_bilinear": torch.einsum("i,ij,j", sq[0], sq, sq[1]).item(),
    "sum_all": torch.einsum("ij->", a).item(),
    "spaces": torch.einsum("b i j , b j k -> b i k", bsq, bsq).flatten()[::4].tolist(),
}
report(
    mps_losses=mps_losses,
    mps_norms=norms,
    mps_acc=mps_acc,
    tt_losses=tt_losses,
    tt_consistent=tt_consistent,
    tt_params=sum(p.numel() for p in tt.parameters()),
    **forms,
)
