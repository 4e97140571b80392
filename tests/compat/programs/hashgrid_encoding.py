# Coordinate encodings for neural fields the way pure-PyTorch Instant-NGP ports write them: a
# multiresolution hash encoding (per-level resolutions by a geometric growth factor, int64 grid
# corners by floor, the spatial hash as xor of coordinates times large primes (bitwise_xor,
# & (T - 1) on int64), dense indexing (x + y * res) for the coarse levels, bilinear / trilinear
# weights over the 2^d corners by bit tests ((i >> d) & 1), an nn.Embedding table initialised
# uniform(-1e-4, 1e-4) and trained by Adam(eps=1e-15) with sparse-looking updates), a tiny MLP;
# Tancik et al.'s Gaussian random Fourier features (a fixed B buffer, 2 pi x B^T, cat of sin /
# cos) and NeRF's positional encoding, all fitting one 2-D image; a 3-D hash grid fit to an SDF
# with an eikonal term (autograd.grad of the SDF w.r.t. the points, create_graph). Our own
# program.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(31)
PRIMES = [1, 2654435761, 805459861]


class HashGrid(nn.Module):
    def __init__(self, dim=2, n_levels=4, n_features=2, log2_T=8, base_res=4, max_res=32):
        super().__init__()
        self.dim, self.n_levels, self.n_features, self.T = dim, n_levels, n_features, 2**log2_T
        b = math.exp((math.log(max_res) - math.log(base_res)) / (n_levels - 1))
        self.resolutions = [int(math.floor(base_res * b**lvl)) for lvl in range(n_levels)]
        self.embeddings = nn.ModuleList([nn.Embedding(self.T, n_features) for _ in range(n_levels)])
        offsets = torch.tensor(
            [[(i >> d) & 1 for d in range(dim)] for i in range(2**dim)], dtype=torch.int64
        )
        self.register_buffer("offsets", offsets, persistent=False)

    def hash(self, coords, res):
        if (res + 1) ** self.dim <= self.T:  # dense level: no collisions
            idx = torch.zeros_like(coords[..., 0])
            stride = 1
            for d in range(self.dim):
                idx = idx + coords[..., d] * stride
                stride *= res + 1
            return idx
        h = torch.zeros_like(coords[..., 0])
        for d in range(self.dim):
            h = torch.bitwise_xor(h, coords[..., d] * PRIMES[d])
        return h & (self.T - 1)

    def forward(self, x):  # x in [0, 1]^dim, (N, dim)
        feats = []
        for lvl, res in enumerate(self.resolutions):
            scaled = x * res
            floor = torch.floor(scaled)
            frac = scaled - floor
            corners = floor.long().unsqueeze(1) + self.offsets.unsqueeze(0)  # (N, 2^d, d)
            idx = self.hash(corners, res)
            emb = self.embeddings[lvl](idx)  # (N, 2^d, F)
            w = torch.where(
                self.offsets.unsqueeze(0).bool(), frac.unsqueeze(1), 1 - frac.unsqueeze(1)
            ).prod(-1)
            feats.append((w.unsqueeze(-1) * emb).sum(1))
        return torch.cat(feats, dim=-1)


class FourierFeatures(nn.Module):
    def __init__(self, B):
        super().__init__()
        self.register_buffer("B", B)

    def forward(self, x):
        x_proj = (2.0 * np.pi * x) @ self.B.t()
        return torch.cat([torch.sin(x_proj), torch.cos(x_proj)], dim=-1)


def positional_encoding(x, n_freqs=4):
    out = [x]
    for freq in 2.0 ** torch.linspace(0.0, n_freqs - 1, n_freqs):
        out += [torch.sin(x * freq * math.pi), torch.cos(x * freq * math.pi)]
    return torch.cat(out, dim=-1)


class PosEnc(nn.Module):
    def forward(self, x):
        return positional_encoding(x)


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.startswith("enc.embeddings"):
                p.copy_(torch.from_numpy(W[n]) * 1e-4 * math.sqrt(p.shape[1]))
            else:
                p.copy_(torch.from_numpy(W[n]))
    return m


class Field(nn.Module):
    def __init__(self, enc, enc_dim, out=3):
        super().__init__()
        self.enc = enc
        self.mlp = nn.Sequential(nn.Linear(enc_dim, 32), nn.ReLU(), nn.Linear(32, out))

    def forward(self, x):
        return self.mlp(self.enc(x))


# a 24x24 RGB target image with edges and a smooth ramp
H = W_ = 24
ys, xs = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W_), indexing="ij")
coords = torch.stack([xs, ys], dim=-1).view(-1, 2)
img = torch.stack(
    [
        ((xs - 0.5) ** 2 + (ys - 0.5) ** 2 < 0.1).float(),
        0.5 + 0.5 * torch.sin(6 * xs) * torch.cos(4 * ys),
        (xs > ys).float() * 0.8,
    ],
    dim=-1,
).view(-1, 3)

results = {}
B_gauss = torch.from_numpy(rng.normal(scale=3.0, size=(16, 2)).astype(np.float32))
fields = {
    "hash": lambda: Field(HashGrid(), 4 * 2),
    "fourier": lambda: Field(FourierFeatures(B_gauss), 32),
    "posenc": lambda: Field(PosEnc(), 2 + 2 * 2 * 4),
}
for name, make in fields.items():
    field = load(make())
    if name == "hash":
        opt = torch.optim.Adam(
            [
                {"params": field.enc.parameters(), "eps": 1e-15},
                {"params": field.mlp.parameters(), "weight_decay": 1e-6},
            ],
            lr=1e-2,
            betas=(0.9, 0.99),
        )
    else:
        opt = torch.optim.Adam(field.parameters(), lr=1e-2, betas=(0.9, 0.99))
    log = []
    for step in range(15):
        sel = torch.from_numpy(rng.choice(H * W_, 128, replace=False))
        pred = field(coords[sel])
        loss = F.mse_loss(pred, img[sel])
        opt.zero_grad()
        loss.backward()
        opt.step()
        log.append(loss.item())
    with torch.no_grad():
        full = field(coords)
        psnr = -10.0 * torch.log10(F.mse_loss(full, img))
    results[name] = log
    results[f"{name}_psnr"] = psnr.item()

# hashing facts: int64 products past 2^32, xor, masks, collisions at the fine level
grid = HashGrid()
c = torch.tensor([[3, 7], [31, 30], [32, 32], [17, 5]])
results["hash_fine"] = grid.hash(c, 32).tolist()
results["hash_dense"] = grid.hash(c, 4).tolist()
results["resolutions"] = grid.resolutions
fine = torch.stack(torch.meshgrid(torch.arange(33), torch.arange(33), indexing="ij"), -1).view(
    -1, 2
)
results["fine_distinct"] = int(torch.unique(grid.hash(fine, 32)).numel())
results["big_product"] = (torch.tensor([123456789]) * PRIMES[1]).tolist()


# ---- a 3-D hash grid SDF of a sphere with the eikonal penalty
class SDF(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = HashGrid(dim=3, n_levels=3, n_features=2, log2_T=9, base_res=2, max_res=12)
        self.mlp = nn.Sequential(nn.Linear(6 + 3, 32), nn.Softplus(beta=10), nn.Linear(32, 1))

    def forward(self, x):
        return self.mlp(torch.cat([self.enc((x + 1) / 2), x], -1)).squeeze(-1)


sdf = load(SDF())
opt = torch.optim.Adam(sdf.parameters(), lr=5e-3)
sdf_log = []
for step in range(10):
    pts = torch.from_numpy(rng.uniform(-0.9, 0.9, size=(96, 3)).astype(np.float32)).requires_grad_(
        True
    )
    target = pts.detach().norm(dim=-1) - 0.5
    d = sdf(pts)
    (grad,) = torch.autograd.grad(d.sum(), pts, create_graph=True)
    eikonal = ((grad.norm(dim=-1) - 1) ** 2).mean()
    loss = F.l1_loss(d, target) + 0.1 * eikonal
    opt.zero_grad()
    loss.backward()
    opt.step()
    sdf_log.append([loss.item(), eikonal.item()])
results["sdf"] = sdf_log
report(**results)
