# Graph models on compressed sparse rows, as sparse-attention and GNN code written against
# torch.sparse does it without a graph library (our own program): an adjacency built as COO from
# an edge list, coalesced, converted with to_sparse_csr (crow_indices / col_indices / values
# read back for degrees by torch.diff), symmetric normalisation D^-1/2 A D^-1/2 on the CSR
# values, a two-layer GCN by torch.sparse.mm(csr, dense) and by csr @ dense; graph attention by
# SDDMM, torch.sparse.sampled_addmm(mask_csr, Q, K^T) scoring only the edges, a row softmax by
# torch.sparse.softmax on the COO form, then a sparse-dense product with V; torch.sparse.sum over
# rows, to_dense round trips, the CSR transpose by a COO detour, and a node classifier trained a
# few Adam steps with gradients through the sparse values.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(41)
torch.manual_seed(0)

# a graph of 3 communities, 24 nodes
N, C = 24, 3
labels = np.repeat(np.arange(C), N // C)
edges = set()
for i in range(N):
    for j in range(i + 1, N):
        p = 0.4 if labels[i] == labels[j] else 0.04
        if rng.random() < p:
            edges.add((i, j))
            edges.add((j, i))
for i in range(N):
    edges.add((i, i))
edge_index = torch.tensor(sorted(edges), dtype=torch.long).t()
E = edge_index.shape[1]
adj_coo = torch.sparse_coo_tensor(edge_index, torch.ones(E), (N, N)).coalesce()
adj = adj_coo.to_sparse_csr()
crow, col = adj.crow_indices(), adj.col_indices()
deg = torch.diff(crow).float()
row_of_nnz = torch.repeat_interleave(torch.arange(N), torch.diff(crow))
norm_vals = adj.values() * deg[row_of_nnz].rsqrt() * deg[col].rsqrt()
a_hat = torch.sparse_csr_tensor(crow, col, norm_vals, (N, N))
X = torch.from_numpy(
    (np.eye(C)[labels] @ rng.standard_normal((C, 6)) + rng.standard_normal((N, 6))).astype(
        np.float32
    )
)
y = torch.from_numpy(labels)
train_mask = torch.zeros(N, dtype=torch.bool)
train_mask[::3] = True


class GCN(nn.Module):
    def __init__(self, d_in=6, hidden=8, n_cls=C):
        super().__init__()
        self.lin1 = nn.Linear(d_in, hidden)
        self.lin2 = nn.Linear(hidden, n_cls)

    def forward(self, x, a):
        h = F.relu(torch.sparse.mm(a, self.lin1(x)))
        return a @ self.lin2(h)


class SparseAttention(nn.Module):
    def __init__(self, d_in=6, d=8, n_cls=C):
        super().__init__()
        self.q = nn.Linear(d_in, d)
        self.k = nn.Linear(d_in, d)
        self.v = nn.Linear(d_in, d)
        self.out = nn.Linear(d, n_cls)

    def forward(self, x, mask_csr):
        q, k, v = self.q(x), self.k(x), self.v(x)
        scores = torch.sparse.sampled_addmm(mask_csr, q, k.t(), beta=0.0, alpha=d_scale)
        att = torch.sparse.softmax(scores.to_sparse_coo(), dim=1)
        return self.out(torch.sparse.mm(att, v))


d_scale = 1.0 / np.sqrt(8)
results = {
    "nnz": E,
    "crow": crow.tolist(),
    "degrees": deg.tolist(),
    "row_sums": torch.sparse.sum(a_hat.to_sparse_coo(), dim=1).to_dense().tolist(),
    "dense_roundtrip": torch.equal(adj.to_dense(), adj_coo.to_dense()),
    "layout": str(a_hat.layout).split(".")[-1],
}
at = a_hat.to_sparse_coo().t().coalesce().to_sparse_csr()
results["symmetric"] = torch.allclose(at.to_dense(), a_hat.to_dense())

for name, model, graph in (("gcn", GCN(), a_hat), ("sparse_attn", SparseAttention(), adj)):
    W = reference_weights(model)
    with torch.no_grad():
        for n_, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n_]))
    opt = torch.optim.Adam(model.parameters(), lr=0.02, weight_decay=5e-4)
    losses = []
    for epoch in range(15):
        out = model(X, graph)
        loss = F.cross_entropy(out[train_mask], y[train_mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        pred = model(X, graph).argmax(1)
    results[f"{name}_losses"] = losses
    results[f"{name}_acc"] = (pred[~train_mask] == y[~train_mask]).float().mean().item()

# gradients through sparse values: d/dvalues of sum(A_hat @ H)
vals = norm_vals.clone().requires_grad_(True)
A = torch.sparse_coo_tensor(edge_index, vals, (N, N))
H = torch.from_numpy(rng.standard_normal((N, 3)).astype(np.float32))
(torch.sparse.mm(A, H) ** 2).sum().backward()
results["value_grad"] = vals.grad[:12].tolist()
report(**results)
