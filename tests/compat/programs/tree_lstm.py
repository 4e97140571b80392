# Tree-structured networks, whose graph is rebuilt per example from the data: the Child-Sum
# Tree-LSTM of Tai et al. in the shape of the widely used treelstm.pytorch (trees read from
# parent-pointer lists, a recursive forward that stores each node's state on the tree, leaf
# states by `inputs[0].detach().new(1, mem_dim).fill_(0.).requires_grad_()`, F.sigmoid / F.tanh,
# torch.split of the fused iou gates, `.repeat` of the forget input, zip(*map(...)) over children,
# the similarity head on |l - r| and l * r, KLDivLoss against a sparse target distribution made
# by map_label_to_target, a frozen Embedding.from_pretrained, Adagrad with weight decay); the
# same Tree-LSTM evaluated level by level (topological levels from the parents, children
# gathered with index_add_ and index_select), checked against the recursion; and a recursive
# neural tensor network (Socher et al.) with a per-node sentiment loss, a sparse Embedding under
# Adagrad, and clip_grad_value_. Our own program; sentences and trees from NumPy.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2015)
VOCAB, IN_DIM, MEM_DIM, HIDDEN, NUM_CLASSES = 30, 8, 10, 12, 5


class Tree:
    def __init__(self):
        self.parent = None
        self.num_children = 0
        self.children = list()

    def add_child(self, child):
        child.parent = self
        self.num_children += 1
        self.children.append(child)

    def size(self):
        if getattr(self, "_size", None):
            return self._size
        count = 1
        for i in range(self.num_children):
            count += self.children[i].size()
        self._size = count
        return self._size

    def depth(self):
        if getattr(self, "_depth", None):
            return self._depth
        count = 0
        if self.num_children > 0:
            for i in range(self.num_children):
                child_depth = self.children[i].depth()
                if child_depth > count:
                    count = child_depth
            count += 1
        self._depth = count
        return self._depth


def read_tree(parents):
    """treelstm.pytorch's read_tree: 1-based parent pointers, 0 marks the root."""
    trees = dict()
    root = None
    for i in range(1, len(parents) + 1):
        if i - 1 not in trees.keys() and parents[i - 1] != -1:
            idx = i
            prev = None
            while True:
                parent = parents[idx - 1]
                if parent == -1:
                    break
                tree = Tree()
                if prev is not None:
                    tree.add_child(prev)
                trees[idx - 1] = tree
                tree.idx = idx - 1
                if parent - 1 in trees.keys():
                    trees[parent - 1].add_child(tree)
                    break
                elif parent == 0:
                    root = tree
                    break
                else:
                    prev = tree
                    idx = parent
    return root


def random_parents(n):
    """A random dependency-style tree over n tokens: token 0's parent is the root marker."""
    parents = [0]
    for i in range(1, n):
        parents.append(int(rng.integers(1, i + 1)))
    order = rng.permutation(n)  # shuffle token positions so children come before parents too
    inv = np.argsort(order)
    return [0 if parents[order[i]] == 0 else int(inv[parents[order[i]] - 1]) + 1 for i in range(n)]


class ChildSumTreeLSTM(nn.Module):
    def __init__(self, in_dim, mem_dim):
        super(ChildSumTreeLSTM, self).__init__()
        self.in_dim = in_dim
        self.mem_dim = mem_dim
        self.ioux = nn.Linear(self.in_dim, 3 * self.mem_dim)
        self.iouh = nn.Linear(self.mem_dim, 3 * self.mem_dim)
        self.fx = nn.Linear(self.in_dim, self.mem_dim)
        self.fh = nn.Linear(self.mem_dim, self.mem_dim)

    def node_forward(self, inputs, child_c, child_h):
        child_h_sum = torch.sum(child_h, dim=0, keepdim=True)
        iou = self.ioux(inputs) + self.iouh(child_h_sum)
        i, o, u = torch.split(iou, iou.size(1) // 3, dim=1)
        i, o, u = F.sigmoid(i), F.sigmoid(o), F.tanh(u)
        f = F.sigmoid(self.fh(child_h) + self.fx(inputs).repeat(len(child_h), 1))
        fc = torch.mul(f, child_c)
        c = torch.mul(i, u) + torch.sum(fc, dim=0, keepdim=True)
        h = torch.mul(o, F.tanh(c))
        return c, h

    def forward(self, tree, inputs):
        for idx in range(tree.num_children):
            self.forward(tree.children[idx], inputs)
        if tree.num_children == 0:
            child_c = inputs[0].detach().new(1, self.mem_dim).fill_(0.).requires_grad_()
            child_h = inputs[0].detach().new(1, self.mem_dim).fill_(0.).requires_grad_()
        else:
            child_c, child_h = zip(*map(lambda x: x.state, tree.children))
            child_c, child_h = torch.cat(child_c, dim=0), torch.cat(child_h, dim=0)
        tree.state = self.node_forward(inputs[tree.idx].unsqueeze(0), child_c, child_h)
        return tree.state


class Similarity(nn.Module):
    def __init__(self, mem_dim, hidden_dim, num_classes):
        super(Similarity, self).__init__()
        self.wh = nn.Linear(2 * mem_dim, hidden_dim)
        self.wp = nn.Linear(hidden_dim, num_classes)

    def forward(self, lvec, rvec):
        mult_dist = torch.mul(lvec, rvec)
        abs_dist = torch.abs(torch.add(lvec, -rvec))
        vec_dist = torch.cat((mult_dist, abs_dist), 1)
        out = F.sigmoid(self.wh(vec_dist))
        out = F.log_softmax(self.wp(out), dim=1)
        return out


class SimilarityTreeLSTM(nn.Module):
    def __init__(self, vocab_size, in_dim, mem_dim, hidden_dim, num_classes, freeze, emb):
        super(SimilarityTreeLSTM, self).__init__()
        self.emb = nn.Embedding.from_pretrained(emb, freeze=freeze, padding_idx=0)
        self.childsumtreelstm = ChildSumTreeLSTM(in_dim, mem_dim)
        self.similarity = Similarity(mem_dim, hidden_dim, num_classes)

    def forward(self, ltree, linputs, rtree, rinputs):
        linputs = self.emb(linputs)
        rinputs = self.emb(rinputs)
        lstate, lhidden = self.childsumtreelstm(ltree, linputs)
        rstate, rhidden = self.childsumtreelstm(rtree, rinputs)
        output = self.similarity(lstate, rstate)
        return output


def map_label_to_target(label, num_classes):
    target = torch.zeros(1, num_classes, dtype=torch.float, device="cpu")
    ceil = int(math.ceil(label))
    floor = int(math.floor(label))
    if ceil == floor:
        target[0, floor - 1] = 1
    else:
        target[0, floor - 1] = ceil - label
        target[0, ceil - 1] = label - floor
    return target


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


# a SICK-like relatedness set: pairs of sentences (token ids, trees) with scores in [1, 5]
pairs = []
for _ in range(10):
    la, lb = int(rng.integers(3, 8)), int(rng.integers(3, 8))
    sa = rng.integers(1, VOCAB, size=la)
    sb = rng.integers(1, VOCAB, size=lb)
    score = 1.0 + 4.0 * len(set(sa.tolist()) & set(sb.tolist())) / max(la, lb)
    pairs.append((read_tree(random_parents(la)), torch.from_numpy(sa),
                  read_tree(random_parents(lb)), torch.from_numpy(sb), round(score, 2)))

emb_vectors = torch.from_numpy(rng.standard_normal((VOCAB, IN_DIM)).astype(np.float32))
emb_vectors[0].zero_()
model = SimilarityTreeLSTM(VOCAB, IN_DIM, MEM_DIM, HIDDEN, NUM_CLASSES, True, emb_vectors)
load_reference(model)
criterion = nn.KLDivLoss(reduction="batchmean")
optimizer = optim.Adagrad(filter(lambda p: p.requires_grad, model.parameters()),
                          lr=0.05, weight_decay=1e-4)
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
tree_sizes = [p[0].size() for p in pairs]
tree_depths = [p[0].depth() for p in pairs]

batchsize = 4
train_losses = []
for epoch in range(2):
    model.train()
    optimizer.zero_grad()
    total_loss = 0.0
    indices = rng.permutation(len(pairs))
    for idx in range(len(pairs)):
        ltree, linput, rtree, rinput, label = pairs[indices[idx]]
        target = map_label_to_target(label, NUM_CLASSES)
        output = model(ltree, linput, rtree, rinput)
        loss = criterion(output, target)
        total_loss += loss.item()
        loss.backward()
        if idx % batchsize == 0 and idx > 0:
            optimizer.step()
            optimizer.zero_grad()
    train_losses.append(total_loss / len(pairs))

model.eval()
predictions = []
with torch.no_grad():
    indices_t = torch.arange(1, NUM_CLASSES + 1, dtype=torch.float, device="cpu")
    for ltree, linput, rtree, rinput, label in pairs:
        output = model(ltree, linput, rtree, rinput)
        predictions.append(torch.dot(indices_t, output.squeeze().exp()).item())
preds = torch.tensor(predictions)
labels = torch.tensor([p[4] for p in pairs])
pearson = torch.corrcoef(torch.stack([preds, labels]))[0, 1].item()
mse = F.mse_loss(preds, labels).item()


def levels_of(parents):
    """Topological levels (leaves first) of a parent-pointer tree."""
    n = len(parents)
    children = [[] for _ in range(n)]
    for i, p in enumerate(parents):
        if p > 0:
            children[p - 1].append(i)
    height = [0] * n

    def h(i):
        if not children[i]:
            return 0
        return 1 + max(h(c) for c in children[i])

    for i in range(n):
        height[i] = h(i)
    return height


def treelstm_by_level(cell, parents, x):
    """The same Child-Sum Tree-LSTM, all nodes of one height at a time."""
    n = len(parents)
    height = torch.tensor(levels_of(parents))
    parent_idx = torch.tensor([p - 1 for p in parents])
    h = x.new_zeros(n, cell.mem_dim)
    c = x.new_zeros(n, cell.mem_dim)
    for level in range(int(height.max()) + 1):
        nodes = (height == level).nonzero().squeeze(1)
        child_mask = (height < level) & (parent_idx >= 0)
        kids = child_mask.nonzero().squeeze(1)
        kids = kids[torch.isin(parent_idx[kids], nodes)]
        h_sum = torch.zeros(n, cell.mem_dim).index_add(0, parent_idx[kids], h[kids])
        xin = x[nodes]
        iou = cell.ioux(xin) + cell.iouh(h_sum[nodes])
        i, o, u = iou.chunk(3, dim=1)
        i, o, u = torch.sigmoid(i), torch.sigmoid(o), torch.tanh(u)
        f = torch.sigmoid(cell.fh(h[kids]) + cell.fx(x[parent_idx[kids]]))
        fc = torch.zeros(n, cell.mem_dim).index_add(0, parent_idx[kids], f * c[kids])
        c_new = i * u + fc[nodes]
        h_new = o * torch.tanh(c_new)
        c = c.index_copy(0, nodes, c_new)
        h = h.index_copy(0, nodes, h_new)
    root = (parent_idx < 0).nonzero().item()
    return c[root:root + 1], h[root:root + 1]


cell = model.childsumtreelstm
level_gaps, level_grads = [], []
for k in range(3):
    parents = random_parents(6 + k)
    tokens = torch.from_numpy(rng.integers(1, VOCAB, size=6 + k))
    x = model.emb(tokens)
    c_rec, h_rec = cell(read_tree(parents), x)
    c_lvl, h_lvl = treelstm_by_level(cell, parents, x)
    level_gaps.append((h_rec - h_lvl).abs().max().item())
    cell.zero_grad()
    h_lvl.sum().backward()
    level_grads.append(cell.fh.weight.grad.norm().item())
    level_grads.append(cell.ioux.bias.grad.sum().item())


class RNTN(nn.Module):
    """Socher et al.'s recursive neural tensor network over binary trees, a label per node."""

    def __init__(self, vocab, d, classes):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d, sparse=True)
        self.V = nn.Parameter(torch.zeros(2 * d, 2 * d, d))
        self.W = nn.Linear(2 * d, d)
        self.Ws = nn.Linear(d, classes)

    def compose(self, a, b):
        ab = torch.cat([a, b], -1)
        tensor_term = torch.einsum("i,ijk,j->k", ab, self.V, ab)
        return torch.tanh(tensor_term + self.W(ab))

    def forward(self, node, outputs):
        if isinstance(node, int):
            vec = self.embedding(torch.tensor(node))
        else:
            vec = self.compose(self.forward(node[0], outputs), self.forward(node[1], outputs))
        outputs.append(self.Ws(vec))
        return vec


def random_binary_tree(tokens):
    if len(tokens) == 1:
        return int(tokens[0])
    split = int(rng.integers(1, len(tokens)))
    return (random_binary_tree(tokens[:split]), random_binary_tree(tokens[split:]))


rntn = RNTN(VOCAB, 6, 3)
load_reference(rntn)
with torch.no_grad():
    rntn.V.mul_(0.1)
sentences = [random_binary_tree(rng.integers(0, VOCAB, size=int(rng.integers(2, 6))))
             for _ in range(8)]
node_labels = [torch.from_numpy(rng.integers(0, 3, size=64)) for _ in range(8)]
rntn_opt = optim.Adagrad(rntn.parameters(), lr=0.1)
rntn_losses = []
for epoch in range(2):
    for tree, lab in zip(sentences, node_labels):
        outs = []
        rntn(tree, outs)
        logits = torch.stack(outs)
        loss = F.cross_entropy(logits, lab[:len(outs)])
        rntn_opt.zero_grad()
        loss.backward()
        # clamp_min_ has no sparse kernel: clip the dense gradients only
        dense = [p for p in rntn.parameters() if not p.grad.is_sparse]
        torch.nn.utils.clip_grad_value_(dense, clip_value=0.5)
        rntn_opt.step()
        rntn_losses.append(loss.item())
emb_norm = rntn.embedding.weight.norm().item()

report(
    n_trainable=n_trainable,
    tree_sizes=tree_sizes,
    tree_depths=tree_depths,
    train_losses=train_losses,
    predictions=predictions,
    pearson=pearson,
    mse=mse,
    level_gaps=level_gaps,
    level_grads=level_grads,
    rntn_losses=rntn_losses,
    emb_norm=emb_norm,
)
