# Graph networks on torch.sparse, the way pygcn (Kipf & Welling, 2017) and pyGAT write them: the
# adjacency as a sparse COO tensor (torch.sparse_coo_tensor, and pygcn's legacy
# torch.sparse.FloatTensor(indices, values, torch.Size(shape))), self-loops added by sparse +
# sparse, degrees by torch.sparse.sum(adj, dim=1).to_dense(), row and symmetric normalisation
# from adj.coalesce().indices()/.values(), a GraphConvolution whose forward is
# torch.spmm(adj, torch.mm(input, self.weight)), log_softmax + nll_loss with Adam; a sparse GAT
# layer whose edge values require grad (torch.sparse_coo_tensor(edge, edge_e, (N, N)) then
# torch.sparse.mm: the gradient reaches the attention parameters through the values), an
# attention by torch.sparse.softmax, a leaf sparse tensor's sparse gradient, and a LightGCN-style
# recommender propagating embeddings through a normalised sparse interaction matrix and its t().
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)
N, C, IN, HID = 40, 3, 12, 16

labels_np = rng.integers(0, C, N)
feats_np = rng.standard_normal((C, IN))[labels_np] * 1.1 + rng.standard_normal((N, IN))
pairs = set()
for i in range(N):
    for j in range(i + 1, N):
        if rng.uniform() < (0.2 if labels_np[i] == labels_np[j] else 0.03):
            pairs.add((i, j))
            pairs.add((j, i))
edges_np = np.array(sorted(pairs), dtype=np.int64).T  # (2, E), both directions
x = torch.from_numpy(feats_np.astype(np.float32))
y = torch.from_numpy(labels_np)
idx_train = torch.arange(0, 15)
idx_val = torch.arange(15, 25)
idx_test = torch.arange(25, N)


def sparse_mx_to_torch_sparse_tensor(indices, values, shape):
    """pygcn/utils.py's helper: the legacy constructor."""
    return torch.sparse.FloatTensor(indices, values, torch.Size(shape))


edge_index = torch.from_numpy(edges_np)
adj = sparse_mx_to_torch_sparse_tensor(edge_index, torch.ones(edge_index.shape[1]), (N, N))
loops = torch.arange(N)
adj = adj + torch.sparse_coo_tensor(torch.stack([loops, loops]), torch.ones(N), (N, N))
adj = adj.coalesce()

# pygcn's row normalisation D^-1 (A + I)
rowsum = torch.sparse.sum(adj, dim=1).to_dense()
r_inv = rowsum.pow(-1)
r_inv[torch.isinf(r_inv)] = 0.0
ind, val = adj.indices(), adj.values()
adj_row = torch.sparse_coo_tensor(ind, val * r_inv[ind[0]], (N, N))

# the symmetric D^-1/2 (A + I) D^-1/2 of the GCN paper, from the same degrees
d_inv_sqrt = rowsum.pow(-0.5)
adj_sym = torch.sparse_coo_tensor(ind, d_inv_sqrt[ind[0]] * val * d_inv_sqrt[ind[1]], (N, N))


class GraphConvolution(nn.Module):
    """pygcn/layers.py."""

    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.FloatTensor(in_features, out_features))
        self.bias = nn.Parameter(torch.FloatTensor(out_features)) if bias else None
        stdv = 1.0 / math.sqrt(self.weight.size(1))
        self.weight.data.uniform_(-stdv, stdv)

    def forward(self, input, adj):
        support = torch.mm(input, self.weight)
        output = torch.spmm(adj, support)
        return output + self.bias if self.bias is not None else output


class GCN(nn.Module):
    def __init__(self, nfeat, nhid, nclass, dropout):
        super().__init__()
        self.gc1 = GraphConvolution(nfeat, nhid)
        self.gc2 = GraphConvolution(nhid, nclass)
        self.dropout = dropout

    def forward(self, x, adj):
        x = F.relu(self.gc1(x, adj))
        x = F.dropout(x, self.dropout, training=self.training)
        x = self.gc2(x, adj)
        return F.log_softmax(x, dim=1)


def accuracy(output, labels):
    preds = output.max(1)[1].type_as(labels)
    return preds.eq(labels).double().sum().item() / len(labels)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


gcn_results = {}
for name, a in (("row", adj_row), ("sym", adj_sym)):
    model = GCN(IN, HID, C, dropout=0.0)
    load(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    losses = []
    for epoch in range(25):
        model.train()
        optimizer.zero_grad()
        output = model(x, a)
        loss_train = F.nll_loss(output[idx_train], y[idx_train])
        loss_train.backward()
        optimizer.step()
        losses.append(loss_train.item())
    model.eval()
    output = model(x, a)
    gcn_results[name] = dict(
        losses=losses,
        val_acc=accuracy(output[idx_val], y[idx_val]),
        test_loss=F.nll_loss(output[idx_test], y[idx_test]).item(),
        w_grad_norm=model.gc1.weight.grad.norm().item(),
    )


class SpGraphAttentionLayer(nn.Module):
    """pyGAT's sparse layer, with torch.sparse.mm in place of its custom special_spmm."""

    def __init__(self, in_features, out_features, alpha, concat=True):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(in_features, out_features))
        self.a = nn.Parameter(torch.zeros(1, 2 * out_features))
        self.leakyrelu = nn.LeakyReLU(alpha)
        self.concat = concat

    def forward(self, input, edge):
        n = input.size()[0]
        h = torch.mm(input, self.W)
        edge_h = torch.cat((h[edge[0, :], :], h[edge[1, :], :]), dim=1).t()  # (2F, E)
        edge_e = torch.exp(-self.leakyrelu(self.a.mm(edge_h).squeeze()))  # (E,), requires grad
        att = torch.sparse_coo_tensor(edge, edge_e, torch.Size([n, n]))
        e_rowsum = torch.sparse.mm(att, torch.ones(size=(n, 1)))
        h_prime = torch.sparse.mm(att, h)
        h_prime = h_prime.div(e_rowsum)
        return F.elu(h_prime) if self.concat else h_prime


class SparseSoftmaxAttention(nn.Module):
    """Scores on the edges, normalised by torch.sparse.softmax over each row's stored entries."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.lin = nn.Linear(in_features, out_features)
        self.q = nn.Parameter(torch.zeros(out_features))
        self.k = nn.Parameter(torch.zeros(out_features))

    def forward(self, input, edge):
        h = self.lin(input)
        scores = F.leaky_relu((h @ self.q)[edge[0]] + (h @ self.k)[edge[1]], 0.2)
        att = torch.sparse.softmax(torch.sparse_coo_tensor(edge, scores, (len(h), len(h))), 1)
        return torch.sparse.mm(att, h), att


edge_sl = adj.indices()  # with self-loops, coalesced
gat = SpGraphAttentionLayer(IN, C, alpha=0.2, concat=False)
ssa = SparseSoftmaxAttention(IN, C)
load(gat)
load(ssa)
opt = torch.optim.Adam(list(gat.parameters()) + list(ssa.parameters()), lr=0.02)
gat_losses = []
for step in range(15):
    opt.zero_grad()
    out_gat = gat(x, edge_sl)
    out_ssa, att = ssa(x, edge_sl)
    loss = F.cross_entropy(out_gat[idx_train], y[idx_train]) + F.cross_entropy(
        out_ssa[idx_train], y[idx_train]
    )
    loss.backward()
    opt.step()
    gat_losses.append(loss.item())
att_row_sums = torch.sparse.sum(att.detach(), dim=1).to_dense()

# a leaf sparse tensor: torch.sparse.mm gives it a sparse gradient with its pattern
leaf = torch.sparse_coo_tensor(ind, val.clone(), (N, N), requires_grad=True)
(torch.sparse.mm(leaf, x[:, :3]) ** 2).sum().backward()
leaf_grad = leaf.grad.coalesce()

# LightGCN-style propagation over a user x item interaction matrix
U, I, D = 12, 15, 6
inter = np.array([(u, i) for u in range(U) for i in range(I) if rng.uniform() < 0.3]).T
users = torch.from_numpy(inter[0])
items = torch.from_numpy(inter[1])
R = torch.sparse_coo_tensor(torch.stack([users, items]), torch.ones(len(users)), (U, I))
du = torch.sparse.sum(R, dim=1).to_dense().clamp(min=1)
di = torch.sparse.sum(R, dim=0).to_dense().clamp(min=1)
Rn = torch.sparse_coo_tensor(
    R._indices(), R._values() / (du[users] * di[items]).sqrt(), (U, I)
).coalesce()


class LightGCN(nn.Module):
    def __init__(self):
        super().__init__()
        self.user = nn.Embedding(U, D)
        self.item = nn.Embedding(I, D)

    def forward(self):
        eu, ei = self.user.weight, self.item.weight
        eu1 = torch.sparse.mm(Rn, ei)
        ei1 = torch.sparse.mm(Rn.t(), eu)
        return (eu + eu1) / 2, (ei + ei1) / 2


rec = LightGCN()
load(rec)
opt_rec = torch.optim.SGD(rec.parameters(), lr=0.5)
neg_items = torch.from_numpy(rng.integers(0, I, len(users)))
bpr_losses = []
for step in range(10):
    eu, ei = rec()
    pos = (eu[users] * ei[items]).sum(-1)
    neg = (eu[users] * ei[neg_items]).sum(-1)
    loss = -F.logsigmoid(pos - neg).mean()
    opt_rec.zero_grad()
    loss.backward()
    opt_rec.step()
    bpr_losses.append(loss.item())

dense = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
round_trip = dense.to_sparse()

report(
    nnz=adj._nnz(),
    is_coalesced=adj.is_coalesced(),
    layout=str(adj.layout),
    is_sparse=adj.is_sparse,
    first_indices=adj._indices()[:, :8].tolist(),
    degrees=rowsum.tolist(),
    adj_row_values=adj_row.coalesce().values()[:10].tolist(),
    adj_sym_sum=torch.sparse.sum(adj_sym).item(),
    gcn=gcn_results,
    gat_losses=gat_losses,
    gat_a_grad=gat.a.grad[0].tolist(),
    att_row_sums=att_row_sums.tolist(),
    leaf_grad_layout=str(leaf_grad.layout),
    leaf_grad_indices=leaf_grad.indices()[:, :6].tolist(),
    leaf_grad_values=leaf_grad.values()[:6].tolist(),
    bpr_losses=bpr_losses,
    round_trip=round_trip.to_dense().tolist(),
    round_trip_indices=round_trip.indices().tolist(),
    transposed_shape=list(Rn.t().shape),
)
