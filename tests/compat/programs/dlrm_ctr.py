# Click-through-rate models as facebookresearch/dlrm and the CTR libraries write them: DLRM's
# create_mlp / create_emb (weights drawn by the global np.random after np.random.seed and
# assigned through LL.weight.data = torch.tensor(W, requires_grad=True), EmbeddingBag(mode="sum",
# sparse=True) tables, a Sequential from a ModuleList), apply_emb over per-table index and
# offset tensors, the dot interaction by torch.bmm(T, torch.transpose(T, 1, 2)) and the strictly
# lower triangle read by Z[:, li, lj] from Python-list index tensors, the "cat" interaction,
# training by SGD on mixed sparse / dense gradients with BCELoss on a sigmoid output clamped
# by torch.clamp(p, min=eps, max=1 - eps); DCN-v2's cross layers (x0 * W(xl) + xl), a
# factorization machine by the sum-square trick, DeepFM's shared embeddings with per-field
# offsets from np.cumsum, the hashing trick by %, and metrics: log loss, accuracy at 0.5, and
# AUC by the Mann-Whitney rank sum over argsort().argsort().
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import report

torch.manual_seed(0)
np.random.seed(123)
rng = np.random.default_rng(2)


class DLRM_Net(nn.Module):
    def create_mlp(self, ln, sigmoid_layer):
        layers = nn.ModuleList()
        for i in range(0, ln.size - 1):
            n = ln[i]
            m = ln[i + 1]
            LL = nn.Linear(int(n), int(m), bias=True)
            mean = 0.0  # std_dev = np.sqrt(variance)
            std_dev = np.sqrt(2 / (m + n))  # np.sqrt(1 / m) # np.sqrt(1 / n)
            W = np.random.normal(mean, std_dev, size=(m, n)).astype(np.float32)
            std_dev = np.sqrt(1 / m)  # np.sqrt(2 / (m + 1))
            bt = np.random.normal(mean, std_dev, size=m).astype(np.float32)
            LL.weight.data = torch.tensor(W, requires_grad=True)
            LL.bias.data = torch.tensor(bt, requires_grad=True)
            layers.append(LL)
            if i == sigmoid_layer:
                layers.append(nn.Sigmoid())
            else:
                layers.append(nn.ReLU())
        return torch.nn.Sequential(*layers)

    def create_emb(self, m, ln):
        emb_l = nn.ModuleList()
        for i in range(0, ln.size):
            n = ln[i]
            EE = nn.EmbeddingBag(n, m, mode="sum", sparse=True)
            W = np.random.uniform(low=-np.sqrt(1 / n), high=np.sqrt(1 / n),
                                  size=(n, m)).astype(np.float32)
            EE.weight.data = torch.tensor(W, requires_grad=True)
            emb_l.append(EE)
        return emb_l

    def __init__(self, m_spa, ln_emb, ln_bot, ln_top, arch_interaction_op="dot",
                 arch_interaction_itself=False, sigmoid_bot=-1, sigmoid_top=-1,
                 loss_threshold=0.0):
        super(DLRM_Net, self).__init__()
        self.arch_interaction_op = arch_interaction_op
        self.arch_interaction_itself = arch_interaction_itself
        self.loss_threshold = loss_threshold
        self.emb_l = self.create_emb(m_spa, ln_emb)
        self.bot_l = self.create_mlp(ln_bot, sigmoid_bot)
        self.top_l = self.create_mlp(ln_top, sigmoid_top)

    def apply_mlp(self, x, layers):
        return layers(x)

    def apply_emb(self, lS_o, lS_i, emb_l):
        ly = []
        for k, sparse_index_group_batch in enumerate(lS_i):
            sparse_offset_group_batch = lS_o[k]
            E = emb_l[k]
            V = E(sparse_index_group_batch, sparse_offset_group_batch)
            ly.append(V)
        return ly

    def interact_features(self, x, ly):
        if self.arch_interaction_op == "dot":
            (batch_size, d) = x.shape
            T = torch.cat([x] + ly, dim=1).view((batch_size, -1, d))
            Z = torch.bmm(T, torch.transpose(T, 1, 2))
            _, ni, nj = Z.shape
            offset = 1 if self.arch_interaction_itself else 0
            li = torch.tensor([i for i in range(ni) for j in range(i + offset)])
            lj = torch.tensor([j for i in range(nj) for j in range(i + offset)])
            Zflat = Z[:, li, lj]
            R = torch.cat([x] + [Zflat], dim=1)
        elif self.arch_interaction_op == "cat":
            R = torch.cat([x] + ly, dim=1)
        return R

    def forward(self, dense_x, lS_o, lS_i):
        x = self.apply_mlp(dense_x, self.bot_l)
        ly = self.apply_emb(lS_o, lS_i, self.emb_l)
        z = self.interact_features(x, ly)
        p = self.apply_mlp(z, self.top_l)
        if 0.0 < self.loss_threshold and self.loss_threshold < 1.0:
            z = torch.clamp(p, min=self.loss_threshold, max=(1.0 - self.loss_threshold))
        else:
            z = p
        return z


# synthetic click logs: 4 dense features, 3 categorical fields (multi-hot in field 2)
N, N_DENSE, D = 96, 4, 4
ln_emb = np.array([10, 7, 12])
dense = rng.standard_normal((N, N_DENSE)).astype(np.float32)
cats = [rng.integers(0, n, N) for n in ln_emb]
bag2 = [rng.integers(0, ln_emb[2], rng.integers(1, 4)) for _ in range(N)]
w_d = rng.standard_normal(N_DENSE)
click_logit = dense @ w_d + 0.8 * np.sin(cats[0]) - 0.5 * (cats[1] % 2) + 0.3 * np.array(
    [b.sum() % 3 for b in bag2])
clicks = (click_logit + 0.5 * rng.standard_normal(N) > 0).astype(np.float32)


def batch_inputs(sl):
    idx = range(sl.start, sl.stop)
    lS_i = [torch.tensor(cats[0][sl]), torch.tensor(cats[1][sl]),
            torch.tensor(np.concatenate([bag2[i] for i in idx]))]
    lengths = [len(bag2[i]) for i in idx]
    lS_o = [torch.arange(len(idx)), torch.arange(len(idx)),
            torch.tensor(np.concatenate([[0], np.cumsum(lengths)[:-1]]))]
    return (torch.from_numpy(dense[sl]), lS_o, lS_i,
            torch.from_numpy(clicks[sl]).view(-1, 1))


def auc(scores, labels):
    ranks = scores.argsort().argsort().double() + 1
    n_pos = labels.sum()
    n_neg = labels.numel() - n_pos
    return ((ranks[labels.bool()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)).item()


results = {}
for op in ("dot", "cat"):
    num_fea = ln_emb.size + 1
    if op == "dot":
        num_int = (num_fea * (num_fea - 1)) // 2 + D
    else:
        num_int = num_fea * D
    ln_bot = np.array([N_DENSE, 8, D])
    ln_top = np.array([num_int, 8, 1])
    dlrm = DLRM_Net(D, ln_emb, ln_bot, ln_top, arch_interaction_op=op,
                    sigmoid_top=ln_top.size - 2, loss_threshold=1e-7)
    loss_fn = torch.nn.BCELoss(reduction="mean")
    optimizer = torch.optim.SGD(dlrm.parameters(), lr=0.3)
    losses = []
    for step in range(8):
        sl = slice((step % 4) * 24, (step % 4) * 24 + 24)
        X, lS_o, lS_i, T = batch_inputs(sl)
        Z = dlrm(X, lS_o, lS_i)
        E = loss_fn(Z, T)
        optimizer.zero_grad()
        E.backward()
        optimizer.step()
        losses.append(E.item())
    results["dlrm_" + op] = losses
    results["dlrm_" + op + "_sparse_grads"] = [e.weight.grad.is_sparse for e in dlrm.emb_l]
    with torch.no_grad():
        X, lS_o, lS_i, T = batch_inputs(slice(0, N))
        p = dlrm(X, lS_o, lS_i).squeeze(1)
    results["dlrm_" + op + "_auc"] = auc(p, T.squeeze(1))
    results["dlrm_" + op + "_acc"] = ((p > 0.5).float() == T.squeeze(1)).float().mean().item()
results["num_int_dot"] = int((4 * 3) // 2 + D)


# DCN-v2, FM and DeepFM over shared field embeddings (offsets per field, hashing by %)
field_offsets = torch.tensor(np.concatenate([[0], np.cumsum(ln_emb)[:-1]]))
n_all = int(ln_emb.sum())


class CrossNetV2(nn.Module):
    def __init__(self, d, n_layers):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(d, d) for _ in range(n_layers))

    def forward(self, x0):
        xl = x0
        for layer in self.layers:
            xl = x0 * layer(xl) + xl
        return xl


class DeepFM(nn.Module):
    def __init__(self, cross=False):
        super().__init__()
        self.embedding = nn.Embedding(n_all, D)
        self.linear = nn.Embedding(n_all, 1)
        self.bias = nn.Parameter(torch.zeros((1,)))
        self.dense = nn.Linear(N_DENSE, D)
        width = D * (ln_emb.size + 1)
        self.cross = CrossNetV2(width, 2) if cross else None
        self.mlp = nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, dense_x, fields):
        idx = fields + field_offsets.unsqueeze(0)  # (B, F)
        emb = torch.cat([self.embedding(idx), self.dense(dense_x).unsqueeze(1)], dim=1)
        square_of_sum = torch.sum(emb, dim=1) ** 2
        sum_of_square = torch.sum(emb ** 2, dim=1)
        fm = 0.5 * torch.sum(square_of_sum - sum_of_square, dim=1, keepdim=True)
        first = self.linear(idx).sum(dim=1) + self.bias
        h = emb.view(emb.size(0), -1)
        if self.cross is not None:
            h = self.cross(h)
        return (first + fm + self.mlp(h)).squeeze(1)


# the multi-hot field folded to one id by hashing its bag
hashed = np.array([int(b.sum() * 31 + len(b)) % ln_emb[2] for b in bag2])
fields = torch.from_numpy(np.stack([cats[0], cats[1], hashed], axis=1))
for name, cross in (("deepfm", False), ("dcnv2", True)):
    model = DeepFM(cross=cross)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.random.normal(0, 0.1, size=tuple(p.shape))
                                     .astype(np.float32)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(8):
        sl = slice((step % 4) * 24, (step % 4) * 24 + 24)
        opt.zero_grad()
        logits = model(torch.from_numpy(dense[sl]), fields[sl])
        loss = nn.BCEWithLogitsLoss()(logits, torch.from_numpy(clicks[sl]))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        p = torch.sigmoid(model(torch.from_numpy(dense), fields))
    results[name] = losses
    results[name + "_auc"] = auc(p, torch.from_numpy(clicks))
    results[name + "_logloss"] = nn.functional.binary_cross_entropy(
        p, torch.from_numpy(clicks)).item()

report(**results)
