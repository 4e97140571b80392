# Behaviour-sequence and feature-interaction CTR models as DeepCTR-Torch and the papers' code write
# them (our own condensed rewrite): DIN's local activation unit (query repeated over the history
# by expand, the [q, k, q - k, q * k] concat, an MLP with the Dice activation: BatchNorm1d over
# the transposed (B, T, H) units with affine=False, a learned alpha, torch.sigmoid gate), keys
# masked by sequence length (torch.arange(T) < lens.unsqueeze(1)) with weights zeroed (no
# softmax, as in DIN) and a softmax variant by masked_fill(-2**32 + 1); AutoInt's interacting
# layer (multi-head attention over field embeddings by torch.split + torch.stack, a residual
# W_Res, ReLU); xDeepFM's Compressed Interaction Network (outer products by einsum('bhd,bmd->bhmd'),
# Conv1d(kernel_size=1) over the flattened field pairs, split_half, sum pooling); shared
# embeddings (nn.ModuleDict per feature, nn.init.normal_(std=1e-4) overwritten), L2 regularisation
# on embeddings added to the loss by hand, BCEWithLogitsLoss, Adagrad (DeepCTR's default) and
# Adam; gAUC (per-user AUC weighted by impressions) and log loss.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2200)
B, T, D = 64, 6, 8
N_ITEMS, N_CATE, N_USERS = 40, 6, 12
item_cate = rng.integers(0, N_CATE, N_ITEMS)
users = rng.integers(0, N_USERS, B)
lens = rng.integers(1, T + 1, B)
hist = rng.integers(1, N_ITEMS, (B, T))
for b in range(B):
    hist[b, lens[b] :] = 0
target = rng.integers(1, N_ITEMS, B)
click = (
    np.array([np.isin(item_cate[target[b]], item_cate[hist[b, : lens[b]]]) for b in range(B)])
    ^ (rng.uniform(size=B) < 0.1)
).astype(np.float32)
age = rng.integers(0, 5, B)
gender = rng.integers(0, 2, B)


class Dice(nn.Module):
    def __init__(self, emb_size, dim=3, epsilon=1e-8):
        super().__init__()
        assert dim == 2 or dim == 3
        self.bn = nn.BatchNorm1d(emb_size, eps=epsilon)
        self.sigmoid = nn.Sigmoid()
        self.dim = dim
        if self.dim == 2:
            self.alpha = nn.Parameter(torch.zeros((emb_size,)))
        else:
            self.alpha = nn.Parameter(torch.zeros((emb_size, 1)))

    def forward(self, x):
        assert x.dim() == self.dim
        if self.dim == 2:
            x_p = self.sigmoid(self.bn(x))
            out = self.alpha * (1 - x_p) * x + x_p * x
        else:
            x = torch.transpose(x, 1, 2)
            x_p = self.sigmoid(self.bn(x))
            out = self.alpha * (1 - x_p) * x + x_p * x
            out = torch.transpose(out, 1, 2)
        return out


class LocalActivationUnit(nn.Module):
    def __init__(self, hidden_units=(16, 8), embedding_dim=4):
        super().__init__()
        self.fc1 = nn.Linear(4 * embedding_dim, hidden_units[0])
        self.dice1 = Dice(hidden_units[0])
        self.fc2 = nn.Linear(hidden_units[0], hidden_units[1])
        self.dice2 = Dice(hidden_units[1])
        self.dense = nn.Linear(hidden_units[-1], 1)

    def forward(self, query, user_behavior):
        user_behavior_len = user_behavior.size(1)
        queries = query.expand(-1, user_behavior_len, -1)
        attention_input = torch.cat(
            [queries, user_behavior, queries - user_behavior, queries * user_behavior], dim=-1
        )
        h = self.dice2(self.fc2(self.dice1(self.fc1(attention_input))))
        return self.dense(h)


class AttentionSequencePoolingLayer(nn.Module):
    def __init__(self, embedding_dim, weight_normalization=False):
        super().__init__()
        self.weight_normalization = weight_normalization
        self.local_att = LocalActivationUnit(embedding_dim=embedding_dim)

    def forward(self, query, keys, keys_length):
        batch_size, max_length, _ = keys.size()
        keys_masks = torch.arange(max_length, device=keys_length.device).repeat(batch_size, 1)
        keys_masks = keys_masks < keys_length.view(-1, 1)
        keys_masks = keys_masks.unsqueeze(1)
        attention_score = self.local_att(query, keys).transpose(1, 2)
        if self.weight_normalization:
            paddings = torch.ones_like(attention_score) * (-(2**32) + 1)
        else:
            paddings = torch.zeros_like(attention_score)
        outputs = torch.where(keys_masks, attention_score, paddings)
        if self.weight_normalization:
            outputs = F.softmax(outputs, dim=-1)
        return torch.matmul(outputs, keys)


class DIN(nn.Module):
    def __init__(self, weight_normalization=False):
        super().__init__()
        self.embedding_dict = nn.ModuleDict(
            {
                "item": nn.Embedding(N_ITEMS, D // 2, padding_idx=0),
                "cate": nn.Embedding(N_CATE, D // 2),
                "user": nn.Embedding(N_USERS, 4),
                "age": nn.Embedding(5, 2),
                "gender": nn.Embedding(2, 2),
            }
        )
        for tensor in self.embedding_dict.values():
            nn.init.normal_(tensor.weight, mean=0, std=1e-4)
        self.attention = AttentionSequencePoolingLayer(D, weight_normalization)
        self.dnn = nn.Sequential(
            nn.Linear(8 + 2 * D, 32), Dice(32, dim=2), nn.Linear(32, 16), Dice(16, dim=2)
        )
        self.out = nn.Linear(16, 1)
        self.item_cate = torch.from_numpy(item_cate)

    def embed_items(self, items):
        return torch.cat(
            [
                self.embedding_dict["item"](items),
                self.embedding_dict["cate"](self.item_cate[items]),
            ],
            -1,
        )

    def forward(self, users, age, gender, hist, lens, target):
        q = self.embed_items(target).unsqueeze(1)
        k = self.embed_items(hist)
        pooled = self.attention(q, k, lens).squeeze(1)
        prof = torch.cat(
            [
                self.embedding_dict["user"](users),
                self.embedding_dict["age"](age),
                self.embedding_dict["gender"](gender),
            ],
            -1,
        )
        x = torch.cat([prof, pooled, q.squeeze(1)], -1)
        return self.out(self.dnn(x)).squeeze(-1)


class InteractingLayer(nn.Module):
    def __init__(self, embedding_size, head_num=2, use_res=True, scaling=False):
        super().__init__()
        self.att_embedding_size = embedding_size // head_num
        self.head_num = head_num
        self.use_res = use_res
        self.scaling = scaling
        self.W_Query = nn.Parameter(torch.Tensor(embedding_size, embedding_size))
        self.W_key = nn.Parameter(torch.Tensor(embedding_size, embedding_size))
        self.W_Value = nn.Parameter(torch.Tensor(embedding_size, embedding_size))
        if self.use_res:
            self.W_Res = nn.Parameter(torch.Tensor(embedding_size, embedding_size))
        for tensor in self.parameters():
            nn.init.normal_(tensor, mean=0.0, std=0.05)

    def forward(self, inputs):
        querys = torch.tensordot(inputs, self.W_Query, dims=([-1], [0]))
        keys = torch.tensordot(inputs, self.W_key, dims=([-1], [0]))
        values = torch.tensordot(inputs, self.W_Value, dims=([-1], [0]))
        querys = torch.stack(torch.split(querys, self.att_embedding_size, dim=2))
        keys = torch.stack(torch.split(keys, self.att_embedding_size, dim=2))
        values = torch.stack(torch.split(values, self.att_embedding_size, dim=2))
        inner_product = torch.einsum("bnik,bnjk->bnij", querys, keys)
        if self.scaling:
            inner_product /= self.att_embedding_size**0.5
        self.normalized_att_scores = F.softmax(inner_product, dim=-1)
        result = torch.matmul(self.normalized_att_scores, values)
        result = torch.cat(torch.split(result, 1), dim=-1)
        result = torch.squeeze(result, dim=0)
        if self.use_res:
            result += torch.tensordot(inputs, self.W_Res, dims=([-1], [0]))
        return F.relu(result)


class CIN(nn.Module):
    def __init__(self, field_size, layer_size=(8, 8), split_half=True):
        super().__init__()
        self.layer_size = layer_size
        self.field_nums = [field_size]
        self.split_half = split_half
        self.conv1ds = nn.ModuleList()
        for i, size in enumerate(self.layer_size):
            self.conv1ds.append(nn.Conv1d(self.field_nums[-1] * self.field_nums[0], size, 1))
            if self.split_half and i != len(self.layer_size) - 1:
                self.field_nums.append(size // 2)
            else:
                self.field_nums.append(size)

    def forward(self, inputs):
        batch_size, _, dim = inputs.shape
        hidden_nn_layers = [inputs]
        final_result = []
        for i, size in enumerate(self.layer_size):
            x = torch.einsum("bhd,bmd->bhmd", hidden_nn_layers[-1], hidden_nn_layers[0])
            x = x.reshape(
                batch_size, hidden_nn_layers[-1].shape[1] * hidden_nn_layers[0].shape[1], dim
            )
            x = torch.tanh(self.conv1ds[i](x))
            if self.split_half and i != len(self.layer_size) - 1:
                next_hidden, direct_connect = torch.split(x, 2 * [size // 2], 1)
            else:
                direct_connect, next_hidden = x, x
            final_result.append(direct_connect)
            hidden_nn_layers.append(next_hidden)
        result = torch.cat(final_result, dim=1)
        return torch.sum(result, -1)


class FieldModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.ModuleList([nn.Embedding(n, 4) for n in (N_USERS, 5, 2, N_ITEMS, N_CATE)])
        self.autoint = nn.Sequential(InteractingLayer(4), InteractingLayer(4))
        self.cin = CIN(5)
        self.linear = nn.Linear(5 * 4 + 8 + 4, 1)

    def forward(self, users, age, gender, target):
        fields = [users, age, gender, target, torch.from_numpy(item_cate)[target]]
        e = torch.stack([emb(f) for emb, f in zip(self.emb, fields)], 1)
        a = self.autoint(e).flatten(1)
        c = self.cin(e)
        return self.linear(torch.cat([a, c], -1)).squeeze(-1)


def auc(y, p):
    order = np.argsort(p, kind="stable")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    npos = y.sum()
    nneg = len(y) - npos
    if npos == 0 or nneg == 0:
        return None
    return float((ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


tens = [torch.from_numpy(a) for a in (users, age, gender, hist, lens, target)]
y = torch.from_numpy(click)
out = {}
for name, model, opt_cls in [
    ("din", DIN(), torch.optim.Adagrad),
    ("din_softmax", DIN(True), torch.optim.Adam),
    ("autoint_cin", FieldModel(), torch.optim.Adam),
]:
    load(model)
    opt = opt_cls(model.parameters(), lr=0.01)
    crit = nn.BCEWithLogitsLoss()
    losses = []
    for step in range(6):
        idx = slice((step % 2) * 32, (step % 2) * 32 + 32)
        args = [t[idx] for t in tens]
        logit = model(*args) if name != "autoint_cin" else model(args[0], args[1], args[2], args[5])
        reg = 1e-5 * sum((p**2).sum() for n, p in model.named_parameters() if "emb" in n)
        loss = crit(logit, y[idx]) + reg
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        p = torch.sigmoid(
            model(*tens) if name != "autoint_cin" else model(tens[0], tens[1], tens[2], tens[5])
        ).numpy()
    per_user = []
    for u in np.unique(users):
        m = users == u
        a = auc(click[m], p[m])
        if a is not None:
            per_user.append((a, m.sum()))
    out[name] = losses
    out[name + "_gauc"] = float(sum(a * n for a, n in per_user) / sum(n for _, n in per_user))
    out[name + "_logloss"] = float(F.binary_cross_entropy(torch.from_numpy(p), y).item())
    out[name + "_p"] = p[:8].tolist()
report(**out)
