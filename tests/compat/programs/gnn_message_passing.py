# A small graph neural network written without torch_geometric, the way PyG's tutorials explain
# message passing: an edge_index (2, E) tensor with self-loops added, symmetric degree
# normalisation (GCN, Kipf & Welling) via index_add_, a GraphSAGE-style layer with mean and max
# aggregation via scatter_reduce(include_self=False), a GAT-style layer whose per-edge attention
# is a softmax over each node's incoming edges (scatter_reduce "amax", exp, scatter_add_),
# node classification with train/val/test boolean masks, Adam with weight_decay, and a global
# mean pool over a batch vector for a graph-level readout.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(8)
num_nodes, num_feats, num_classes = 30, 6, 3

# a planted-partition graph: 3 communities, dense inside, sparse across
labels_np = np.repeat(np.arange(num_classes), num_nodes // num_classes)
edges = []
for i in range(num_nodes):
    for j in range(i + 1, num_nodes):
        p = 0.35 if labels_np[i] == labels_np[j] else 0.03
        if rng.random() < p:
            edges += [(i, j), (j, i)]
edge_index = torch.tensor(np.array(edges).T, dtype=torch.long)  # (2, E)
x = torch.from_numpy(
    (
        np.eye(num_classes)[labels_np] @ rng.standard_normal((num_classes, num_feats)) * 0.5
        + rng.standard_normal((num_nodes, num_feats))
    ).astype(np.float32)
)
y = torch.from_numpy(labels_np)
perm = rng.permutation(num_nodes)
train_mask = torch.zeros(num_nodes, dtype=torch.bool)
train_mask[torch.from_numpy(perm[:12])] = True
val_mask = torch.zeros(num_nodes, dtype=torch.bool)
val_mask[perm[12:20].tolist()] = True
test_mask = ~(train_mask | val_mask)


def add_self_loops(edge_index, num_nodes):
    loop = torch.arange(num_nodes, dtype=edge_index.dtype).unsqueeze(0).repeat(2, 1)
    return torch.cat([edge_index, loop], dim=1)


def degree(index, num_nodes):
    out = torch.zeros(num_nodes)
    return out.index_add_(0, index, torch.ones(index.numel()))


class GCNConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x, edge_index):
        edge_index = add_self_loops(edge_index, x.size(0))
        row, col = edge_index
        x = self.lin(x)
        deg = degree(col, x.size(0))
        deg_inv_sqrt = deg.pow(-0.5)
        deg_inv_sqrt[deg_inv_sqrt == float("inf")] = 0
        norm = deg_inv_sqrt[row] * deg_inv_sqrt[col]
        msg = norm.view(-1, 1) * x[row]  # (E, C)
        out = torch.zeros_like(x).index_add_(0, col, msg)
        return out + self.bias


class SAGEConv(nn.Module):
    def __init__(self, in_channels, out_channels, aggr):
        super().__init__()
        self.aggr = aggr
        self.lin_l = nn.Linear(in_channels, out_channels)
        self.lin_r = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x, edge_index):
        src, dst = edge_index
        index = dst.unsqueeze(-1).expand(-1, x.size(1))
        out = torch.zeros_like(x).scatter_reduce(
            0, index, x[src], reduce=self.aggr, include_self=False
        )
        return self.lin_l(out) + self.lin_r(x)


class GATConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, out_channels))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)

    def forward(self, x, edge_index):
        edge_index = add_self_loops(edge_index, x.size(0))
        src, dst = edge_index
        h = self.lin(x)
        alpha = (h * self.att_src).sum(-1)[src] + (h * self.att_dst).sum(-1)[dst]  # (E,)
        alpha = F.leaky_relu(alpha, 0.2)
        # softmax over the incoming edges of each destination node
        amax = torch.full((x.size(0),), float("-inf")).scatter_reduce(
            0, dst, alpha, reduce="amax", include_self=True
        )
        alpha = (alpha - amax[dst]).exp()
        denom = torch.zeros(x.size(0)).scatter_add_(0, dst, alpha)
        alpha = alpha / denom[dst]
        out = torch.zeros_like(h)
        out.scatter_add_(0, dst.view(-1, 1).expand_as(h[src]), alpha.unsqueeze(-1) * h[src])
        return out, alpha


class Net(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        if kind == "gcn":
            self.conv1, self.conv2 = GCNConv(num_feats, 16), GCNConv(16, num_classes)
        elif kind == "gat":
            self.conv1, self.conv2 = GATConv(num_feats, 16), GATConv(16, num_classes)
        else:
            self.conv1 = SAGEConv(num_feats, 16, "mean")
            self.conv2 = SAGEConv(16, num_classes, "amax")

    def forward(self, x, edge_index):
        x = F.dropout(x, p=0.5, training=False)
        x = self.conv1(x, edge_index)
        x = x[0] if isinstance(x, tuple) else x
        x = F.elu(x) if self.kind == "gat" else F.relu(x)
        x = self.conv2(x, edge_index)
        x = x[0] if isinstance(x, tuple) else x
        return F.log_softmax(x, dim=1)


def accuracy(out, mask):
    pred = out.argmax(dim=1)
    correct = (pred[mask] == y[mask]).sum()
    return int(correct) / int(mask.sum())


results = {"num_edges": int(edge_index.size(1)), "deg": degree(edge_index[1], num_nodes).tolist()}
for kind in ("gcn", "sage", "gat"):
    model = Net(kind)
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)
    losses, val_accs = [], []
    for epoch in range(20):
        model.train()
        optimizer.zero_grad()
        out = model(x, edge_index)
        loss = F.nll_loss(out[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val_accs.append(accuracy(model(x, edge_index), val_mask))
    model.eval()
    out = model(x, edge_index)
    # graph-level readout: mean pool over two "graphs" (the first and second half of the nodes)
    batch = torch.tensor([0] * 15 + [1] * 15)
    pooled = torch.zeros(2, out.size(1)).index_add_(0, batch, out.exp())
    counts = torch.bincount(batch, minlength=2).unsqueeze(1)
    results[kind] = {
        "losses": losses,
        "val_accs": val_accs,
        "test_acc": accuracy(out, test_mask),
        "pooled": (pooled / counts).tolist(),
    }
    if kind == "gat":
        _, alpha = model.conv1(x, edge_index)
        results[kind]["alpha_sum"] = (
            torch.zeros(num_nodes)
            .index_add(0, add_self_loops(edge_index, num_nodes)[1], alpha)
            .tolist()
        )
report(**results)
