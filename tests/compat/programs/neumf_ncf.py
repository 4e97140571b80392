# Neural Collaborative Filtering (He et al. 2017) as the popular PyTorch re-implementations write
# it: GMF (element-wise product of user / item embeddings), MLP (concatenated embeddings through
# a tower of Linear + ReLU halving its width), NeuMF fusing both with a predict layer; implicit
# feedback with 4 sampled negatives per positive (NumPy sampling), BCEWithLogitsLoss, the
# pre-trained GMF and MLP copied into NeuMF (embeddings by .data.copy_, the predict layer as
# 0.5 * cat of both heads), leave-one-out evaluation ranking the held-out item against 20
# negatives: HR@10 and NDCG@10 from topk, plus a biased matrix-factorisation baseline
# (user / item biases as 1-d Embeddings, global mean) trained by SGD with weight decay.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(21)
n_users, n_items, factor_num, num_layers = 30, 50, 8, 2
pref = rng.standard_normal((n_users, 3)) @ rng.standard_normal((3, n_items))
interactions = []
test_items = []
for u in range(n_users):
    liked = np.argsort(-pref[u])[:8]
    test_items.append(int(liked[0]))
    interactions += [(u, int(i)) for i in liked[1:]]
interactions = np.array(interactions)
user_pos = {
    u: set(interactions[interactions[:, 0] == u, 1]) | {test_items[u]} for u in range(n_users)
}


def sample_negatives(num_ng=4):
    users, items, labels = [], [], []
    for u, i in interactions:
        users.append(u), items.append(i), labels.append(1.0)
        for _ in range(num_ng):
            j = int(rng.integers(n_items))
            while j in user_pos[u]:
                j = int(rng.integers(n_items))
            users.append(u), items.append(j), labels.append(0.0)
    return (torch.LongTensor(users), torch.LongTensor(items), torch.FloatTensor(labels))


class NCF(nn.Module):
    def __init__(
        self,
        user_num,
        item_num,
        factor_num,
        num_layers,
        dropout,
        model,
        GMF_model=None,
        MLP_model=None,
    ):
        super(NCF, self).__init__()
        self.dropout = dropout
        self.model = model
        self.GMF_model = GMF_model
        self.MLP_model = MLP_model
        self.embed_user_GMF = nn.Embedding(user_num, factor_num)
        self.embed_item_GMF = nn.Embedding(item_num, factor_num)
        self.embed_user_MLP = nn.Embedding(user_num, factor_num * (2 ** (num_layers - 1)))
        self.embed_item_MLP = nn.Embedding(item_num, factor_num * (2 ** (num_layers - 1)))
        MLP_modules = []
        for i in range(num_layers):
            input_size = factor_num * (2 ** (num_layers - i))
            MLP_modules.append(nn.Dropout(p=self.dropout))
            MLP_modules.append(nn.Linear(input_size, input_size // 2))
            MLP_modules.append(nn.ReLU())
        self.MLP_layers = nn.Sequential(*MLP_modules)
        predict_size = factor_num if self.model in ["MLP", "GMF"] else factor_num * 2
        self.predict_layer = nn.Linear(predict_size, 1)
        self._init_weight_()

    def _init_weight_(self):
        if not self.model == "NeuMF-pre":
            W = reference_weights(self)
            with torch.no_grad():
                for n, p in self.named_parameters():
                    p.copy_(torch.from_numpy(W[n]))
        else:
            self.embed_user_GMF.weight.data.copy_(self.GMF_model.embed_user_GMF.weight)
            self.embed_item_GMF.weight.data.copy_(self.GMF_model.embed_item_GMF.weight)
            self.embed_user_MLP.weight.data.copy_(self.MLP_model.embed_user_MLP.weight)
            self.embed_item_MLP.weight.data.copy_(self.MLP_model.embed_item_MLP.weight)
            for m1, m2 in zip(self.MLP_layers, self.MLP_model.MLP_layers):
                if isinstance(m1, nn.Linear) and isinstance(m2, nn.Linear):
                    m1.weight.data.copy_(m2.weight)
                    m1.bias.data.copy_(m2.bias)
            predict_weight = torch.cat(
                [self.GMF_model.predict_layer.weight, self.MLP_model.predict_layer.weight], dim=1
            )
            precit_bias = self.GMF_model.predict_layer.bias + self.MLP_model.predict_layer.bias
            self.predict_layer.weight.data.copy_(0.5 * predict_weight)
            self.predict_layer.bias.data.copy_(0.5 * precit_bias)

    def forward(self, user, item):
        if not self.model == "MLP":
            embed_user_GMF = self.embed_user_GMF(user)
            embed_item_GMF = self.embed_item_GMF(item)
            output_GMF = embed_user_GMF * embed_item_GMF
        if not self.model == "GMF":
            embed_user_MLP = self.embed_user_MLP(user)
            embed_item_MLP = self.embed_item_MLP(item)
            interaction = torch.cat((embed_user_MLP, embed_item_MLP), -1)
            output_MLP = self.MLP_layers(interaction)
        if self.model == "GMF":
            concat = output_GMF
        elif self.model == "MLP":
            concat = output_MLP
        else:
            concat = torch.cat((output_GMF, output_MLP), -1)
        prediction = self.predict_layer(concat)
        return prediction.view(-1)


def hit(gt_item, pred_items):
    return 1 if gt_item in pred_items else 0


def ndcg(gt_item, pred_items):
    if gt_item in pred_items:
        index = pred_items.index(gt_item)
        return 1.0 / math.log2(index + 2)
    return 0.0


eval_rng = np.random.default_rng(5)
eval_lists = []
for u in range(n_users):
    negs = [j for j in eval_rng.permutation(n_items) if j not in user_pos[u]][:20]
    eval_lists.append([test_items[u]] + negs)


def metrics(model, top_k=10):
    model.eval()
    HR, NDCG = [], []
    with torch.no_grad():
        for u in range(n_users):
            item = torch.tensor(eval_lists[u])
            user = torch.full_like(item, u)
            predictions = model(user, item)
            _, indices = torch.topk(predictions, top_k)
            recommends = torch.take(item, indices).numpy().tolist()
            HR.append(hit(test_items[u], recommends))
            NDCG.append(ndcg(test_items[u], recommends))
    model.train()
    return float(np.mean(HR)), float(np.mean(NDCG))


def train(model, epochs, lr, batch_size=64, optimizer_name="adam"):
    loss_function = nn.BCEWithLogitsLoss()
    if optimizer_name == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for epoch in range(epochs):
        users, items, labels = sample_negatives()
        perm = torch.from_numpy(rng.permutation(len(labels)))
        for start in range(0, len(labels), batch_size):
            idx = perm[start : start + batch_size]
            model.zero_grad()
            prediction = model(users[idx], items[idx])
            loss = loss_function(prediction, labels[idx])
            loss.backward()
            optimizer.step()
        losses.append(loss.item())
    return losses


results = {}
gmf = NCF(n_users, n_items, factor_num, num_layers, 0.0, "GMF")
results["gmf_losses"] = train(gmf, 3, 0.05, optimizer_name="sgd")
mlp = NCF(n_users, n_items, factor_num, num_layers, 0.0, "MLP")
results["mlp_losses"] = train(mlp, 3, 0.05, optimizer_name="sgd")
results["gmf_metrics"] = list(metrics(gmf))
results["mlp_metrics"] = list(metrics(mlp))
neumf = NCF(n_users, n_items, factor_num, num_layers, 0.0, "NeuMF-pre", gmf, mlp)
results["neumf_start"] = neumf(torch.tensor([0, 1]), torch.tensor([3, 4])).tolist()
results["neumf_losses"] = train(neumf, 2, 0.02, optimizer_name="sgd")
results["neumf_metrics"] = list(metrics(neumf))


class BiasedMF(nn.Module):
    def __init__(self, n_users, n_items, k, mu):
        super().__init__()
        self.P = nn.Embedding(n_users, k)
        self.Q = nn.Embedding(n_items, k)
        self.bu = nn.Embedding(n_users, 1)
        self.bi = nn.Embedding(n_items, 1)
        self.mu = mu

    def forward(self, u, i):
        dot = (self.P(u) * self.Q(i)).sum(1)
        return dot + self.bu(u).squeeze(-1) + self.bi(i).squeeze(-1) + self.mu


ratings = torch.from_numpy((pref > 0.5).astype(np.float32) * 4 + 1)
mf = BiasedMF(n_users, n_items, 4, ratings.mean().item())
W = reference_weights(mf)
with torch.no_grad():
    for n, p in mf.named_parameters():
        p.copy_(torch.from_numpy(W[n]) * 0.1)
opt = torch.optim.SGD(mf.parameters(), lr=0.05, weight_decay=1e-3)
us, its = torch.meshgrid(torch.arange(n_users), torch.arange(n_items), indexing="ij")
us, its, r = us.reshape(-1), its.reshape(-1), ratings.reshape(-1)
rmse = []
for epoch in range(6):
    pred = mf(us, its)
    loss = nn.functional.mse_loss(pred, r)
    opt.zero_grad()
    loss.backward()
    opt.step()
    rmse.append(loss.sqrt().item())
results["mf_rmse"] = rmse
report(**results)
