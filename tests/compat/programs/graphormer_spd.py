# Graphormer as microsoft/Graphormer's model code and its collator write it (our own condensed
# rewrite): all-pairs shortest paths by Floyd-Warshall written with torch.minimum over a
# broadcast sum inside a Python loop over k, unreachable pairs clamped to a max distance, the
# spatial encoding as an nn.Embedding(padding_idx=0) of distances giving a per-head bias
# permuted to (B, H, N, N), centrality encodings by in/out degree embeddings, a virtual graph
# token with its own learned distance bias (attn_bias[:, :, 1:, 0] += t), edge encodings along
# shortest paths averaged over hops (path edges gathered from a predecessor matrix), padding of
# variable-sized graphs with -inf attention bias (attn_bias[:, :, :, n:] = float("-inf") by
# slice assignment), pre-LN multi-head attention adding the bias before softmax, readout from
# the graph token, graph regression with L1Loss under a polynomial decay with warmup (LambdaLR);
# Laplacian eigenvector positional encodings (torch.linalg.eigh of I - D^-1/2 A D^-1/2) with
# their sign ambiguity checked to be invariant under the SignNet-style phi(v) + phi(-v).
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2194)
N_MAX, HEADS, HID = 7, 4, 32
MAX_DIST = 5


def random_graph(n):
    A = np.zeros((n, n), dtype=np.int64)
    for i in range(1, n):  # a random tree plus a few chords
        j = int(rng.integers(0, i))
        A[i, j] = A[j, i] = 1
    for _ in range(n // 3):
        i, j = rng.integers(0, n, 2)
        if i != j:
            A[i, j] = A[j, i] = 1
    x = rng.integers(1, 9, n)
    e = rng.integers(1, 4, (n, n))
    e = np.triu(e, 1)
    e = (e + e.T) * A
    return torch.from_numpy(A), torch.from_numpy(x), torch.from_numpy(e)


def floyd_warshall(adj):
    n = adj.size(0)
    dist = torch.full((n, n), float("inf"))
    dist[adj.bool()] = 1.0
    dist.fill_diagonal_(0.0)
    nxt = torch.where(
        adj.bool(), torch.arange(n).expand(n, n), torch.full((n, n), -1, dtype=torch.long)
    )
    nxt.fill_diagonal_(-1)
    for k in range(n):
        via = dist[:, k : k + 1] + dist[k : k + 1, :]
        better = via < dist
        dist = torch.minimum(dist, via)
        nxt = torch.where(better, nxt[:, k : k + 1].expand(n, n), nxt)
    return dist, nxt


def path_edge_features(dist, nxt, e, max_hops=3):
    n = dist.size(0)
    feats = torch.zeros(n, n, max_hops, dtype=torch.long)
    for i in range(n):
        for j in range(n):
            if i == j or not math.isfinite(dist[i, j].item()):
                continue
            a, h = i, 0
            while a != j and h < max_hops:
                b = int(nxt[a, j])
                feats[i, j, h] = e[a, b]
                a, h = b, h + 1
    return feats


def collate(graphs):
    B = len(graphs)
    x = torch.zeros(B, N_MAX, dtype=torch.long)
    spatial = torch.zeros(B, N_MAX, N_MAX, dtype=torch.long)
    edge_input = torch.zeros(B, N_MAX, N_MAX, 3, dtype=torch.long)
    indeg = torch.zeros(B, N_MAX, dtype=torch.long)
    attn_bias = torch.zeros(B, N_MAX + 1, N_MAX + 1)
    for b, (A, xs, e) in enumerate(graphs):
        n = A.size(0)
        dist, nxt = floyd_warshall(A)
        d = dist.clone()
        d[torch.isinf(d)] = MAX_DIST
        spatial[b, :n, :n] = d.long().clamp(max=MAX_DIST) + 1
        edge_input[b, :n, :n] = path_edge_features(dist, nxt, e)
        x[b, :n] = xs
        indeg[b, :n] = A.sum(1) + 1
        attn_bias[b, 1:, n + 1 :] = float("-inf")
    return x, spatial, edge_input, indeg, attn_bias


class Graphormer(nn.Module):
    def __init__(self):
        super().__init__()
        self.atom = nn.Embedding(10, HID, padding_idx=0)
        self.degree = nn.Embedding(8, HID, padding_idx=0)
        self.spatial = nn.Embedding(MAX_DIST + 2, HEADS, padding_idx=0)
        self.edge = nn.Embedding(4, HEADS, padding_idx=0)
        self.graph_token = nn.Embedding(1, HID)
        self.graph_token_virtual_distance = nn.Embedding(1, HEADS)
        self.layers = nn.ModuleList(
            nn.ModuleDict(
                dict(
                    ln1=nn.LayerNorm(HID),
                    qkv=nn.Linear(HID, 3 * HID),
                    out=nn.Linear(HID, HID),
                    ln2=nn.LayerNorm(HID),
                    fc1=nn.Linear(HID, 2 * HID),
                    fc2=nn.Linear(2 * HID, HID),
                )
            )
            for _ in range(2)
        )
        self.final_ln = nn.LayerNorm(HID)
        self.head = nn.Linear(HID, 1)

    def forward(self, x, spatial, edge_input, indeg, attn_bias):
        B, n = x.shape
        graph_attn_bias = attn_bias.clone().unsqueeze(1).repeat(1, HEADS, 1, 1)
        spatial_pos_bias = self.spatial(spatial).permute(0, 3, 1, 2)
        graph_attn_bias[:, :, 1:, 1:] = graph_attn_bias[:, :, 1:, 1:] + spatial_pos_bias
        t = self.graph_token_virtual_distance.weight.view(1, HEADS, 1)
        graph_attn_bias[:, :, 1:, 0] = graph_attn_bias[:, :, 1:, 0] + t
        graph_attn_bias[:, :, 0, :] = graph_attn_bias[:, :, 0, :] + t
        hops = (edge_input > 0).sum(-1).clamp(min=1).unsqueeze(-1).float()
        edge_bias = (self.edge(edge_input).sum(-2) / hops).permute(0, 3, 1, 2)
        graph_attn_bias[:, :, 1:, 1:] = graph_attn_bias[:, :, 1:, 1:] + edge_bias
        h = self.atom(x) + self.degree(indeg)
        h = torch.cat([self.graph_token.weight.unsqueeze(0).repeat(B, 1, 1), h], dim=1)
        for blk in self.layers:
            y = blk["ln1"](h)
            q, k, v = blk["qkv"](y).view(B, n + 1, 3, HEADS, HID // HEADS).permute(2, 0, 3, 1, 4)
            att = (q * (HID // HEADS) ** -0.5) @ k.transpose(-1, -2) + graph_attn_bias
            att = torch.softmax(att, dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B, n + 1, HID)
            h = h + blk["out"](y)
            h = h + blk["fc2"](F.gelu(blk["fc1"](blk["ln2"](h))))
        return self.head(self.final_ln(h)[:, 0]).squeeze(-1)


graphs = [random_graph(int(rng.integers(4, N_MAX + 1))) for _ in range(12)]
target = torch.tensor([float(g[0].sum()) / 4 + 0.1 * float(g[1].float().mean()) for g in graphs])
batch = collate(graphs)
model = Graphormer()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
warmup, total = 2, 8
sched = torch.optim.lr_scheduler.LambdaLR(
    opt,
    lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / (total - warmup)) ** 1.0,
)
crit = nn.L1Loss()
losses = []
for step in range(8):
    idx = [(4 * step + j) % 12 for j in range(6)]
    out = model(*[t[idx] for t in batch])
    loss = crit(out, target[idx])
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())

# Laplacian eigenvector PE, sign flips by SignNet's phi(v) + phi(-v)
A = graphs[0][0].double()
deg = A.sum(1)
dinv = deg.clamp(min=1).pow(-0.5)
L = torch.eye(A.size(0), dtype=torch.float64) - dinv[:, None] * A * dinv[None, :]
evals, evecs = torch.linalg.eigh(L)
phi = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 4)).double()
Wphi = reference_weights(phi)
with torch.no_grad():
    for name, p in phi.named_parameters():
        p.copy_(torch.from_numpy(Wphi[name]).double())
v = evecs[:, 1:3].unsqueeze(-1)
pe = (phi(v) + phi(-v)).sum(1)
pe_flip = (phi(-v) + phi(v)).sum(1)
dist0, _ = floyd_warshall(graphs[0][0])

report(
    losses=losses,
    spatial=batch[1][0].tolist(),
    edge_hops=batch[2][1].sum(-1).tolist(),
    dist0=dist0.tolist(),
    evals=evals.tolist(),
    pe_sign_invariant=bool(torch.allclose(pe, pe_flip)),
    pe=pe.abs().sum().item(),
    preds=model(*[t[:4] for t in batch]).tolist(),
)
