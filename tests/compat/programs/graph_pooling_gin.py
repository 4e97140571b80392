# Graph classification over mini-batches of graphs the way PyG-free reference code writes it:
# graphs collated into one disjoint union (edge indices offset by a cumsum of node counts, a
# batch vector by repeat_interleave), GIN layers with a learnable eps and sum aggregation by
# index_add_, global add / mean / max readouts by scatter_reduce(include_self=False) and
# bincount counts, to_dense_batch (positions from cumsum, a dense mask, new_full padding) and
# to_dense_adj (index_put_ with accumulate), DiffPool (soft assignments with masks, S^T A S,
# the link-prediction and entropy auxiliary losses), SortPool (sort by the last channel per
# graph, keep k, Conv1d over the sorted nodes), top-k pooling (a projection score, per-graph
# topk on dense scores, tanh gating, edge filtering by a node map); trained with Adam and a
# StepLR, accuracy by argmax. GIN's MLP has no bias before its BatchNorm: that bias's gradient
# is 0 up to rounding in training mode, Adam makes it a full step of either sign, and the eval
# logits (running statistics) then parted by 1e-2 while every training loss agreed.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(77)
F_IN, HID, N_CLS = 3, 16, 2


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def random_graph(label):
    n = int(rng.integers(4, 9))
    if label == 0:  # a ring
        src = np.arange(n)
        dst = (src + 1) % n
    else:  # a star plus a random chord
        src = np.zeros(n - 1, np.int64)
        dst = np.arange(1, n)
        a, b = rng.choice(np.arange(1, n), 2, replace=False)
        src, dst = np.append(src, a), np.append(dst, b)
    ei = np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])])
    x = rng.standard_normal((n, F_IN)).astype(np.float32)
    x[:, 0] = np.bincount(ei[0], minlength=n) / 4.0
    return x, ei


def collate(graphs):
    xs = [torch.from_numpy(g[0]) for g in graphs]
    sizes = torch.tensor([x.shape[0] for x in xs])
    offsets = torch.cumsum(sizes, 0) - sizes
    edges = torch.cat([torch.from_numpy(g[1]) + off for g, off in zip(graphs, offsets)], dim=1)
    batch = torch.repeat_interleave(torch.arange(len(graphs)), sizes)
    return torch.cat(xs), edges, batch


def global_add_pool(x, batch, size):
    return torch.zeros(size, x.shape[1]).index_add_(0, batch, x)


def global_mean_pool(x, batch, size):
    out = torch.zeros(size, x.shape[1]).scatter_reduce(
        0, batch[:, None].expand_as(x), x, reduce="mean", include_self=False
    )
    return out


def global_max_pool(x, batch, size):
    return x.new_zeros(size, x.shape[1]).scatter_reduce(
        0, batch.unsqueeze(-1).expand(-1, x.shape[1]), x, reduce="amax", include_self=False
    )


def to_dense_batch(x, batch, fill_value=0.0):
    num_nodes = torch.bincount(batch)
    bsz, max_n = num_nodes.numel(), int(num_nodes.max())
    cum = torch.cat([batch.new_zeros(1), num_nodes.cumsum(0)[:-1]])
    idx = torch.arange(batch.numel()) - cum[batch] + batch * max_n
    out = x.new_full((bsz * max_n, x.shape[-1]), fill_value)
    out[idx] = x
    mask = torch.zeros(bsz * max_n, dtype=torch.bool)
    mask[idx] = True
    return out.view(bsz, max_n, -1), mask.view(bsz, max_n)


def to_dense_adj(edge_index, batch, max_n):
    bsz = int(batch.max()) + 1
    num_nodes = torch.bincount(batch, minlength=bsz)
    cum = torch.cat([batch.new_zeros(1), num_nodes.cumsum(0)[:-1]])
    b = batch[edge_index[0]]
    i = edge_index[0] - cum[b]
    j = edge_index[1] - cum[b]
    adj = torch.zeros(bsz, max_n, max_n)
    adj.index_put_((b, i, j), torch.ones(b.numel()), accumulate=True)
    return adj


class GINConv(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.eps = nn.Parameter(torch.zeros(1))
        self.mlp = nn.Sequential(
            nn.Linear(d_in, d_out, bias=False),
            nn.BatchNorm1d(d_out),
            nn.ReLU(),
            nn.Linear(d_out, d_out),
        )

    def forward(self, x, edge_index):
        agg = torch.zeros_like(x).index_add_(0, edge_index[1], x[edge_index[0]])
        return self.mlp((1 + self.eps) * x + agg)


class GIN(nn.Module):
    def __init__(self, readout="sum"):
        super().__init__()
        self.readout = readout
        self.convs = nn.ModuleList([GINConv(F_IN, HID), GINConv(HID, HID)])
        self.lin = nn.Linear(2 * HID, N_CLS)

    def forward(self, x, edge_index, batch, size):
        pools = []
        pool = {"sum": global_add_pool, "mean": global_mean_pool, "max": global_max_pool}
        for conv in self.convs:
            x = F.relu(conv(x, edge_index))
            pools.append(pool[self.readout](x, batch, size))
        return self.lin(torch.cat(pools, dim=1))


class DenseGCN(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)

    def forward(self, x, adj, mask=None):
        adj = adj.clone()
        idx = torch.arange(adj.shape[1])
        adj[:, idx, idx] = 1
        d = adj.sum(-1).clamp(min=1).pow(-0.5)
        adj = d.unsqueeze(-1) * adj * d.unsqueeze(-2)
        out = adj @ self.lin(x)
        if mask is not None:
            out = out * mask.unsqueeze(-1).to(x.dtype)
        return out


def dense_diff_pool(x, adj, s, mask):
    s = torch.softmax(s, dim=-1)
    mask = mask.unsqueeze(-1).to(x.dtype)
    x, s = x * mask, s * mask
    out = torch.matmul(s.transpose(1, 2), x)
    out_adj = torch.matmul(torch.matmul(s.transpose(1, 2), adj), s)
    link_loss = adj - torch.matmul(s, s.transpose(1, 2))
    link_loss = torch.norm(link_loss, p=2) / adj.numel()
    ent_loss = (-s * torch.log(s + 1e-15)).sum(dim=-1).mean()
    return out, out_adj, link_loss, ent_loss


class DiffPool(nn.Module):
    def __init__(self, k=3):
        super().__init__()
        self.gnn_embed = DenseGCN(F_IN, HID)
        self.gnn_pool = DenseGCN(F_IN, k)
        self.gnn2 = DenseGCN(HID, HID)
        self.lin = nn.Linear(HID, N_CLS)

    def forward(self, x, edge_index, batch, size):
        xd, mask = to_dense_batch(x, batch)
        adj = to_dense_adj(edge_index, batch, xd.shape[1])
        s = self.gnn_pool(xd, adj, mask)
        z = F.relu(self.gnn_embed(xd, adj, mask))
        z, adj2, l1, e1 = dense_diff_pool(z, adj, s, mask)
        z = F.relu(self.gnn2(z, adj2))
        return self.lin(z.mean(1)), l1 + e1


class SortPool(nn.Module):
    def __init__(self, k=4):
        super().__init__()
        self.k = k
        self.conv = GINConv(F_IN, HID)
        self.conv1d = nn.Conv1d(HID, 8, kernel_size=2)
        self.lin = nn.Linear(8 * (k - 1), N_CLS)

    def forward(self, x, edge_index, batch, size):
        x = torch.tanh(self.conv(x, edge_index))
        xd, mask = to_dense_batch(x, batch, fill_value=-2.0)
        _, perm = xd[:, :, -1].sort(dim=-1, descending=True, stable=True)
        xd = torch.gather(xd, 1, perm.unsqueeze(-1).expand_as(xd))
        if xd.shape[1] >= self.k:
            xd = xd[:, : self.k]
        else:
            xd = F.pad(xd, (0, 0, 0, self.k - xd.shape[1]), value=-2.0)
        xd = xd.masked_fill(xd == -2.0, 0.0)
        h = F.relu(self.conv1d(xd.transpose(1, 2)))
        return self.lin(h.flatten(1))


class TopKPool(nn.Module):
    def __init__(self, ratio=0.5):
        super().__init__()
        self.ratio = ratio
        self.conv = GINConv(F_IN, HID)
        self.p = nn.Parameter(torch.empty(HID))
        self.conv2 = GINConv(HID, HID)
        self.lin = nn.Linear(HID, N_CLS)

    def forward(self, x, edge_index, batch, size):
        x = F.relu(self.conv(x, edge_index))
        score = (x * self.p).sum(-1) / self.p.norm(p=2)
        sd, mask = to_dense_batch(score.unsqueeze(-1), batch, fill_value=float("-inf"))
        counts = torch.bincount(batch)
        k = torch.ceil(self.ratio * counts.float()).long()
        order = sd.squeeze(-1).argsort(dim=-1, descending=True, stable=True)
        max_n = sd.shape[1]
        cum = torch.cat([counts.new_zeros(1), counts.cumsum(0)[:-1]])
        keep_rank = torch.arange(max_n)[None, :] < k[:, None]
        perm = (order + cum[:, None])[keep_rank]
        x = x[perm] * torch.tanh(score[perm]).unsqueeze(-1)
        new_batch = batch[perm]
        node_map = torch.full((batch.numel(),), -1, dtype=torch.long)
        node_map[perm] = torch.arange(perm.numel())
        row, col = node_map[edge_index[0]], node_map[edge_index[1]]
        keep = (row >= 0) & (col >= 0)
        ei = torch.stack([row[keep], col[keep]])
        x = F.relu(self.conv2(x, ei))
        return self.lin(global_max_pool(x, new_batch, size)), perm.numel(), int(keep.sum())


labels = [int(v) for v in rng.integers(0, 2, size=24)]
graphs = [random_graph(lab) for lab in labels]
batches = [(collate(graphs[i : i + 8]), torch.tensor(labels[i : i + 8])) for i in range(0, 24, 8)]

results = {}
for name, ctor in (
    ("gin_sum", lambda: GIN("sum")),
    ("gin_mean", lambda: GIN("mean")),
    ("gin_max", lambda: GIN("max")),
    ("diffpool", DiffPool),
    ("sortpool", SortPool),
    ("topk", TopKPool),
):
    model = load(ctor())
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    losses, extra = [], []
    for epoch in range(2):
        for (x, ei, batch), y in batches:
            out = model(x, ei, batch, 8)
            if name == "diffpool":
                out, aux = out
                extra.append(aux.item())
            elif name == "topk":
                out, n_kept, e_kept = out
                extra.append([n_kept, e_kept])
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
    model.eval()
    with torch.no_grad():
        (x, ei, batch), y = batches[0]
        out = model(x, ei, batch, 8)
        out = out[0] if isinstance(out, tuple) else out
        acc = (out.argmax(1) == y).float().mean().item()
    results[name] = {
        "losses": losses,
        "extra": extra,
        "acc": acc,
        "logits": out[:2].flatten().tolist(),
    }

(x, ei, batch), _ = batches[1]
xd, mask = to_dense_batch(x, batch)
adj = to_dense_adj(ei, batch, xd.shape[1])
report(
    results=results,
    dense_shape=list(xd.shape),
    mask_counts=mask.sum(1).tolist(),
    degrees=adj.sum(-1)[0].tolist(),
    pools=[
        global_mean_pool(x, batch, 8)[:2].flatten().tolist(),
        global_max_pool(x, batch, 8)[:2].flatten().tolist(),
    ],
)
