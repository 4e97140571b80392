# A graph attention network (Velickovic et al., 2018) in edge-list form, written without
# torch.sparse or a graph library, the way a from-scratch PyG-style layer is written: per-edge
# scores leaky_relu(a^T [W h_i || W h_j]) (einsum per head, and torch.cat in the output layer),
# a softmax over each node's incoming edges with scatter_reduce(reduce="amax",
# include_self=False) for the max, exp, index_add_ / scatter_add for the denominator, messages
# gathered by index_select and summed by index_add_, multi-head views, ELU, dropout, node
# classification on bool train/val/test masks, Adam with weight decay, accuracy by argmax/eq.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)
N, C, IN = 48, 3, 10  # nodes, classes, input features

# a stochastic block model: edges mostly inside a class, node features noisy class means
labels_np = rng.integers(0, C, N)
means = rng.standard_normal((C, IN)) * 1.2
feats_np = means[labels_np] + rng.standard_normal((N, IN))
pairs = []
for i in range(N):
    for j in range(N):
        p = 0.18 if labels_np[i] == labels_np[j] else 0.03
        if i != j and rng.uniform() < p:
            pairs.append((i, j))
edges_np = np.array(pairs, dtype=np.int64).T  # (2, E): row 0 source, row 1 target
x = torch.from_numpy(feats_np.astype(np.float32))
y = torch.from_numpy(labels_np)
edge_index = torch.from_numpy(edges_np)
loops = torch.arange(N)
edge_index = torch.cat([edge_index, torch.stack([loops, loops])], dim=1)  # add self-loops
perm = rng.permutation(N)
train_mask = torch.zeros(N, dtype=torch.bool)
train_mask[torch.from_numpy(perm[:20])] = True
val_mask = torch.zeros(N, dtype=torch.bool)
val_mask[torch.from_numpy(perm[20:32])] = True
test_mask = ~(train_mask | val_mask)


def edge_softmax(scores, dst, num_nodes):
    """Softmax of (E, H) edge scores over the edges that enter each node."""
    index = dst.unsqueeze(-1).expand_as(scores)
    node_max = scores.new_zeros(num_nodes, scores.shape[1]).scatter_reduce(
        0, index, scores, reduce="amax", include_self=False
    )
    e = torch.exp(scores - node_max.index_select(0, dst))
    denom = torch.zeros(num_nodes, scores.shape[1]).index_add_(0, dst, e)
    return e / (denom[dst] + 1e-16)


class GATLayer(nn.Module):
    def __init__(self, in_dim, out_dim, heads, concat=True, dropout=0.0):
        super().__init__()
        self.heads, self.out_dim, self.concat, self.dropout = heads, out_dim, concat, dropout
        self.lin = nn.Linear(in_dim, heads * out_dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, out_dim))
        self.att_dst = nn.Parameter(torch.empty(heads, out_dim))
        self.bias = nn.Parameter(torch.zeros(heads * out_dim if concat else out_dim))

    def forward(self, x, edge_index):
        src, dst = edge_index
        h = self.lin(x).view(-1, self.heads, self.out_dim)  # (N, H, F)
        a_src = torch.einsum("nhf,hf->nh", h, self.att_src)
        a_dst = torch.einsum("nhf,hf->nh", h, self.att_dst)
        scores = F.leaky_relu(a_src[src] + a_dst[dst], negative_slope=0.2)  # (E, H)
        alpha = edge_softmax(scores, dst, x.shape[0])
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        msg = h.index_select(0, src) * alpha.unsqueeze(-1)  # (E, H, F)
        out = torch.zeros_like(h).index_add_(0, dst, msg)
        out = out.reshape(-1, self.heads * self.out_dim) if self.concat else out.mean(dim=1)
        return out + self.bias, alpha


class GATOutput(nn.Module):
    """One head, the score written as a^T [W h_i || W h_j] with torch.cat; scatter_add sums."""

    def __init__(self, in_dim, out_dim):
        super().__init__()
        self.W = nn.Linear(in_dim, out_dim)
        self.a = nn.Linear(2 * out_dim, 1, bias=False)

    def forward(self, x, edge_index):
        src, dst = edge_index
        h = self.W(x)
        pair = torch.cat([h[dst], h[src]], dim=-1)  # (E, 2F): [W h_i || W h_j], i the target
        scores = F.leaky_relu(self.a(pair), 0.2)  # (E, 1)
        alpha = edge_softmax(scores, dst, x.shape[0])
        msg = alpha * h[src]
        return torch.zeros_like(h).scatter_add(0, dst.view(-1, 1).expand_as(msg), msg)


class GAT(nn.Module):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.dropout = dropout
        self.conv1 = GATLayer(IN, 8, heads=4, dropout=dropout)
        self.conv2 = GATOutput(4 * 8, C)

    def forward(self, x, edge_index):
        x = F.dropout(x, p=self.dropout, training=self.training)
        h, alpha = self.conv1(x, edge_index)
        h = F.elu(h)
        return self.conv2(h, edge_index), alpha


def accuracy(logits, mask):
    return logits[mask].argmax(dim=1).eq(y[mask]).float().mean().item()


model = GAT()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=5e-4)

losses, train_acc, val_acc = [], [], []
for epoch in range(30):
    model.train()
    opt.zero_grad()
    logits, alpha = model(x, edge_index)
    loss = F.cross_entropy(logits[train_mask], y[train_mask])
    loss.backward()
    opt.step()
    losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        logits, _ = model(x, edge_index)
        train_acc.append(accuracy(logits, train_mask))
        val_acc.append(accuracy(logits, val_mask))

with torch.no_grad():
    logits, alpha = model(x, edge_index)
    # attention sums to one over each node's incoming edges, per head
    sums = torch.zeros(N, 4).index_add_(0, edge_index[1], alpha)
    in_degree = torch.bincount(edge_index[1], minlength=N)
    # integer max-pooling: the largest label among each node's in-neighbours
    nbr_max_label = torch.zeros(N, dtype=torch.long).scatter_reduce(
        0, edge_index[1], y[edge_index[0]], reduce="amax", include_self=False
    )
    pred = logits.argmax(dim=1)
    # per-class readout over label-sorted nodes, as a batch of graphs is pooled
    order = torch.argsort(y, stable=True)
    class_sizes = torch.bincount(y, minlength=C)
    class_mean = torch.segment_reduce(logits[order], "mean", lengths=class_sizes)
    class_max = torch.segment_reduce(logits[order], "max", lengths=class_sizes, axis=0)

# dropout on: a different random graph each forward, compared by shape only
noisy = GAT(dropout=0.6)
noisy.load_state_dict(model.state_dict())
noisy.train()
random_noisy_logits = noisy(x, edge_index)[0].detach().tolist()


# ---- GATv2 (Brody et al., 2022) on a de-duplicated, target-sorted edge list with CSR pointers;
# the softmax max by index_reduce_ and by an in-place scatter_reduce_ over -inf ----
class GATv2Layer(nn.Module):
    def __init__(self, in_dim, out_dim, heads):
        super().__init__()
        self.heads, self.out_dim = heads, out_dim
        self.lin_l = nn.Linear(in_dim, heads * out_dim)
        self.lin_r = nn.Linear(in_dim, heads * out_dim)
        self.att = nn.Parameter(torch.empty(1, heads, out_dim))
        nn.init.xavier_uniform_(self.att, gain=nn.init.calculate_gain("leaky_relu", 0.2))

    def forward(self, x, edge_index):
        src, dst = edge_index
        x_l = self.lin_l(x).view(-1, self.heads, self.out_dim)
        x_r = self.lin_r(x).view(-1, self.heads, self.out_dim)
        e = F.leaky_relu(x_l[src] + x_r[dst], 0.2)  # (E, H, F): attention after the nonlinearity
        scores = (e * self.att).sum(dim=-1)  # (E, H)
        node_max = torch.full((x.shape[0], self.heads), float("-inf"))
        node_max.scatter_reduce_(0, dst.unsqueeze(-1).expand_as(scores), scores, reduce="amax")
        max2 = torch.zeros(x.shape[0], self.heads).index_reduce_(
            0, dst, scores, "amax", include_self=False
        )
        ex = (scores - node_max[dst]).exp()
        denom = torch.zeros(x.shape[0], self.heads).scatter_add_(
            0, dst.unsqueeze(-1).expand_as(ex), ex
        )
        alpha = ex / denom.gather(0, dst.unsqueeze(-1).expand_as(ex))
        out = torch.zeros_like(x_l).index_add_(0, dst, x_l[src] * alpha.unsqueeze(-1))
        return out.mean(dim=1), torch.equal(node_max, max2)


# duplicate some edges, then de-duplicate and sort by target (stable), as a data loader would
dup = torch.cat([edge_index, edge_index[:, :15]], dim=1)
uniq = torch.unique(dup, dim=1)
order = torch.argsort(uniq[1] * N + uniq[0], stable=True)
sorted_edges = uniq[:, order]
deg = torch.zeros(N, dtype=torch.long).scatter_add_(
    0, sorted_edges[1], torch.ones_like(sorted_edges[1])
)
rowptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(deg, 0)])
targets = torch.repeat_interleave(torch.arange(N), rowptr.diff())
v2 = GATv2Layer(IN, C, heads=2)
W2 = reference_weights(v2)
with torch.no_grad():
    for name, p in v2.named_parameters():
        p.copy_(torch.from_numpy(W2[name]))
opt2 = torch.optim.AdamW(v2.parameters(), lr=0.02, weight_decay=1e-2)
v2_losses, best_val, best_state = [], -1.0, None
for epoch in range(15):
    logits2, max_agree = v2(x, sorted_edges)
    loss = F.cross_entropy(logits2[train_mask], y[train_mask])
    opt2.zero_grad()
    loss.backward()
    opt2.step()
    v2_losses.append(loss.item())
    val = accuracy(logits2.detach(), val_mask)
    if val > best_val:  # early stopping bookkeeping: keep the best weights
        best_val, best_state = val, copy.deepcopy(v2.state_dict())
v2.load_state_dict(best_state)

report(
    dedup_edges=int(uniq.shape[1]),
    csr_ok=torch.equal(targets, sorted_edges[1]),
    rowptr_tail=rowptr[-5:].tolist(),
    max_agree=max_agree,
    v2_losses=v2_losses,
    best_val=best_val,
    v2_att_grad=v2.att.grad is None,
    v2_test_acc=accuracy(v2(x, sorted_edges)[0].detach(), test_mask),
    num_edges=int(edge_index.shape[1]),
    losses=losses,
    train_acc=train_acc,
    val_acc=val_acc,
    test_acc=accuracy(logits, test_mask),
    pred=pred.tolist(),
    attention_sum_error=(sums - 1).abs().max().item() < 1e-5,
    max_in_degree=int(in_degree.max()),
    nbr_max_label=nbr_max_label.tolist(),
    class_mean=class_mean.tolist(),
    class_max=class_max.tolist(),
    alpha_head0=alpha[:12, 0].tolist(),
    conv1_grad_norm=model.conv1.lin.weight.grad.norm().item(),
    att_src_grad=model.conv1.att_src.grad[0].tolist(),
    random_noisy_logits=random_noisy_logits,
)
