# GraphSAGE with mini-batch neighbour sampling as the original PyTorch port and PyG's
# NeighborSampler-era scripts write it (our own condensed rewrite), without PyG: an adjacency
# list in NumPy, uniform neighbour sampling with a fixed fan-out per layer (rng.choice with and
# without replacement), the sampled computation graph as per-hop node lists mapped to local ids
# by a dict, aggregators: mean (torch.Tensor.scatter_reduce(reduce="mean", include_self=False)
# over edge targets), max-pool (a Linear + ReLU then F.embedding_bag(mode="max") over offsets),
# and LSTM over a random permutation of each node's neighbours (nn.LSTM on a padded batch from
# pad_sequence, the last hidden state); concatenation of self and neighbour features, L2
# normalisation of each layer's output, supervised node classification with cross_entropy
# over the batch's target nodes; the unsupervised loss with positive pairs from random walks
# and negatives from a degree^0.75 unigram (F.logsigmoid of dot products), Adam; full-graph
# inference layer by layer in chunks of nodes.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pad_sequence

rng = np.random.default_rng(2216)
N_NODES, FEAT, CLASSES = 60, 8, 3
labels_np = rng.integers(0, CLASSES, N_NODES)
adj = [set() for _ in range(N_NODES)]
for i in range(N_NODES):
    for _ in range(3):
        j = int(rng.integers(0, N_NODES))
        if rng.uniform() < 0.7:  # homophily
            same = np.flatnonzero(labels_np == labels_np[i])
            j = int(same[rng.integers(0, len(same))])
        if j != i:
            adj[i].add(j)
            adj[j].add(i)
adj = [sorted(a) for a in adj]
features = torch.from_numpy(
    (
        np.eye(CLASSES)[labels_np] @ rng.standard_normal((CLASSES, FEAT))
        + 0.8 * rng.standard_normal((N_NODES, FEAT))
    ).astype(np.float32)
)
labels = torch.from_numpy(labels_np)


def sample_blocks(batch, fanouts):
    """Per layer (outermost first): (src nodes, dst nodes, edge src local, edge dst local)."""
    blocks = []
    dst = list(batch)
    for fanout in fanouts:
        src_index = {n: i for i, n in enumerate(dst)}
        src = list(dst)
        e_src, e_dst = [], []
        for d_local, n in enumerate(dst):
            neigh = adj[n]
            if len(neigh) == 0:
                continue
            picks = rng.choice(neigh, size=fanout, replace=len(neigh) < fanout)
            for m in picks.tolist():
                if m not in src_index:
                    src_index[m] = len(src)
                    src.append(m)
                e_src.append(src_index[m])
                e_dst.append(d_local)
        blocks.append((src, dst, torch.tensor(e_src), torch.tensor(e_dst)))
        dst = src
    return blocks[::-1]


class SAGEConv(nn.Module):
    def __init__(self, in_dim, out_dim, aggr):
        super().__init__()
        self.aggr = aggr
        if aggr == "pool":
            self.pool = nn.Linear(in_dim, in_dim)
        if aggr == "lstm":
            self.lstm = nn.LSTM(in_dim, in_dim, batch_first=True)
        self.lin = nn.Linear(2 * in_dim, out_dim)

    def forward(self, h_src, n_dst, e_src, e_dst, perm_seed=None):
        h_dst = h_src[:n_dst]
        msgs = h_src[e_src]
        if self.aggr == "mean":
            agg = torch.zeros(n_dst, h_src.shape[1]).scatter_reduce(
                0, e_dst.unsqueeze(1).expand_as(msgs), msgs, reduce="mean", include_self=False
            )
        elif self.aggr == "pool":
            order = torch.argsort(e_dst, stable=True)
            counts = torch.bincount(e_dst, minlength=n_dst)
            offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
            pooled = F.relu(self.pool(msgs[order]))
            agg = F.embedding_bag(torch.arange(len(order)), pooled, offsets, mode="max")
        else:
            seqs = []
            prng = np.random.default_rng(perm_seed)
            for d in range(n_dst):
                idx = (e_dst == d).nonzero(as_tuple=True)[0]
                idx = idx[torch.from_numpy(prng.permutation(len(idx)))]
                seqs.append(msgs[idx])
            lengths = torch.tensor([len(s) for s in seqs])
            padded = pad_sequence(seqs, batch_first=True)
            packed = nn.utils.rnn.pack_padded_sequence(
                padded, lengths, batch_first=True, enforce_sorted=False
            )
            _, (h_n, _) = self.lstm(packed)
            agg = h_n[0]
        return self.lin(torch.cat([h_dst, agg], dim=1))


class GraphSAGE(nn.Module):
    def __init__(self, aggr, hidden=16):
        super().__init__()
        self.layers = nn.ModuleList([SAGEConv(FEAT, hidden, aggr), SAGEConv(hidden, hidden, aggr)])
        self.classifier = nn.Linear(hidden, CLASSES)

    def embed(self, blocks):
        h = features[blocks[0][0]]
        for li, (layer, (src, dst, e_src, e_dst)) in enumerate(zip(self.layers, blocks)):
            h = layer(h, len(dst), e_src, e_dst, perm_seed=li)
            if li < len(self.layers) - 1:
                h = F.relu(h)
            h = F.normalize(h, p=2, dim=1)
        return h

    def forward(self, blocks):
        return self.classifier(self.embed(blocks))


def random_walk_pairs(nodes, length=3):
    pairs = []
    for n in nodes:
        cur = n
        for _ in range(length):
            if not adj[cur]:
                break
            cur = adj[cur][int(rng.integers(0, len(adj[cur])))]
            if cur != n:
                pairs.append((n, cur))
    return pairs


deg = np.array([len(a) for a in adj], dtype=np.float64)
unigram = deg**0.75 / (deg**0.75).sum()
out = {}
for aggr in ["mean", "pool", "lstm"]:
    model = GraphSAGE(aggr)
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for step in range(6):
        batch = rng.choice(N_NODES, 12, replace=False).tolist()
        blocks = sample_blocks(batch, [4, 3])
        logits = model(blocks)
        sup = F.cross_entropy(logits, labels[batch])
        pairs = random_walk_pairs(batch[:4])
        negs = rng.choice(N_NODES, 5, p=unigram).tolist()
        u_nodes = sorted({a for a, _ in pairs} | {b for _, b in pairs} | set(negs))
        emb = model.embed(sample_blocks(u_nodes, [4, 3]))
        pos_idx = {n: i for i, n in enumerate(u_nodes)}
        a = emb[[pos_idx[p[0]] for p in pairs]]
        b = emb[[pos_idx[p[1]] for p in pairs]]
        neg = emb[[pos_idx[n] for n in negs]]
        unsup = -F.logsigmoid((a * b).sum(1)).mean() - F.logsigmoid(-(a @ neg.T)).sum(1).mean()
        loss = sup + 0.5 * unsup
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append([sup.item(), unsup.item()])
    model.eval()
    with torch.no_grad():  # full neighbourhoods, layer by layer, in chunks
        e_src = torch.tensor([m for n in range(N_NODES) for m in adj[n]])
        e_dst = torch.tensor([n for n in range(N_NODES) for _ in adj[n]])
        h = features
        for li, layer in enumerate(model.layers):
            h = layer(h, N_NODES, e_src, e_dst, perm_seed=li)
            if li < len(model.layers) - 1:
                h = F.relu(h)
            h = F.normalize(h, p=2, dim=1)
        logits = model.classifier(h)
    out[aggr] = losses
    out[aggr + "_acc"] = int((logits.argmax(1) == labels).sum())
    out[aggr + "_logits"] = logits[:3].tolist()
report(**out)
