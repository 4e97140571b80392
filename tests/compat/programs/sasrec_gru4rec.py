# Sequential recommendation as pmixer/SASRec.pytorch and GRU4Rec's PyTorch ports write it:
# left-padded item histories (np.zeros then filled from the end), item embeddings with
# padding_idx=0 scaled by sqrt(d), positional embeddings masked by the padding (timeline mask
# multiplied in, ~mask.unsqueeze(-1)), pre-LN causal self-attention through
# nn.MultiheadAttention with a bool attn_mask from torch.tril, point-wise Conv1d feed-forward
# over transposed features, BCEWithLogits on positive / sampled-negative logits with a
# torch.where(pos != 0) index mask, L2 on the embedding, evaluation by ranking the true item
# among 20 negatives (argsort of argsort, HR@10 / NDCG@10); GRU4Rec's session-parallel
# mini-batches (hidden rows reset by a mask when a session ends, detached between steps),
# in-batch negatives as the output matrix columns, BPR-max and TOP1-max losses with softmax
# scores over negatives, dropout off.
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(8)
N_ITEMS, MAXLEN, D = 30, 8, 16


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class PointWiseFeedForward(nn.Module):
    def __init__(self, hidden_units):
        super().__init__()
        self.conv1 = nn.Conv1d(hidden_units, hidden_units, kernel_size=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv1d(hidden_units, hidden_units, kernel_size=1)

    def forward(self, inputs):
        outputs = self.conv2(self.relu(self.conv1(inputs.transpose(-1, -2))))
        outputs = outputs.transpose(-1, -2)
        outputs += inputs
        return outputs


class SASRec(nn.Module):
    def __init__(self, num_blocks=2, heads=2):
        super().__init__()
        self.item_emb = nn.Embedding(N_ITEMS + 1, D, padding_idx=0)
        self.pos_emb = nn.Embedding(MAXLEN + 1, D, padding_idx=0)
        self.attention_layernorms = nn.ModuleList()
        self.attention_layers = nn.ModuleList()
        self.forward_layernorms = nn.ModuleList()
        self.forward_layers = nn.ModuleList()
        self.last_layernorm = nn.LayerNorm(D, eps=1e-8)
        for _ in range(num_blocks):
            self.attention_layernorms.append(nn.LayerNorm(D, eps=1e-8))
            self.attention_layers.append(nn.MultiheadAttention(D, heads, dropout=0.0))
            self.forward_layernorms.append(nn.LayerNorm(D, eps=1e-8))
            self.forward_layers.append(PointWiseFeedForward(D))

    def log2feats(self, log_seqs):
        seqs = self.item_emb(torch.LongTensor(log_seqs))
        seqs *= self.item_emb.embedding_dim**0.5
        poss = np.tile(np.arange(1, log_seqs.shape[1] + 1), [log_seqs.shape[0], 1])
        poss *= log_seqs != 0
        seqs += self.pos_emb(torch.LongTensor(poss))
        timeline_mask = torch.BoolTensor(log_seqs == 0)
        seqs *= ~timeline_mask.unsqueeze(-1)
        tl = seqs.shape[1]
        attention_mask = ~torch.tril(torch.ones((tl, tl), dtype=torch.bool))
        for i in range(len(self.attention_layers)):
            seqs = torch.transpose(seqs, 0, 1)
            Q = self.attention_layernorms[i](seqs)
            mha_outputs, _ = self.attention_layers[i](Q, seqs, seqs, attn_mask=attention_mask)
            seqs = Q + mha_outputs
            seqs = torch.transpose(seqs, 0, 1)
            seqs = self.forward_layernorms[i](seqs)
            seqs = self.forward_layers[i](seqs)
            seqs *= ~timeline_mask.unsqueeze(-1)
        return self.last_layernorm(seqs)

    def forward(self, log_seqs, pos_seqs, neg_seqs):
        log_feats = self.log2feats(log_seqs)
        pos_embs = self.item_emb(torch.LongTensor(pos_seqs))
        neg_embs = self.item_emb(torch.LongTensor(neg_seqs))
        return (log_feats * pos_embs).sum(dim=-1), (log_feats * neg_embs).sum(dim=-1)

    def predict(self, log_seqs, item_indices):
        final_feat = self.log2feats(log_seqs)[:, -1, :]
        item_embs = self.item_emb(torch.LongTensor(item_indices))
        return item_embs.matmul(final_feat.unsqueeze(-1)).squeeze(-1)


def user_histories(n_users):
    hist = []
    for _ in range(n_users):
        L = int(rng.integers(4, MAXLEN + 3))
        start = int(rng.integers(1, N_ITEMS))
        step = int(rng.integers(1, 4))
        hist.append([(start + k * step - 1) % N_ITEMS + 1 for k in range(L)])
    return hist


def sample_batch(hist):
    seq = np.zeros([len(hist), MAXLEN], dtype=np.int64)
    pos = np.zeros([len(hist), MAXLEN], dtype=np.int64)
    neg = np.zeros([len(hist), MAXLEN], dtype=np.int64)
    for u, h in enumerate(hist):
        train = h[:-1]
        nxt = train[-1]
        idx = MAXLEN - 1
        ts = set(train)
        for i in reversed(train[:-1]):
            seq[u, idx] = i
            pos[u, idx] = nxt
            t = int(rng.integers(1, N_ITEMS + 1))
            while t in ts:
                t = int(rng.integers(1, N_ITEMS + 1))
            neg[u, idx] = t
            nxt = i
            idx -= 1
            if idx == -1:
                break
    return seq, pos, neg


hist = user_histories(12)
torch.manual_seed(0)
model = load(SASRec())
bce = nn.BCEWithLogitsLoss()
adam = torch.optim.Adam(model.parameters(), lr=5e-3, betas=(0.9, 0.98))
sas_losses = []
for epoch in range(8):
    seq, pos, neg = sample_batch(hist)
    pos_logits, neg_logits = model(seq, pos, neg)
    pos_labels = torch.ones(pos_logits.shape)
    neg_labels = torch.zeros(neg_logits.shape)
    adam.zero_grad()
    indices = np.where(pos != 0)
    loss = bce(pos_logits[indices], pos_labels[indices])
    loss += bce(neg_logits[indices], neg_labels[indices])
    for param in model.item_emb.parameters():
        loss += 1e-4 * torch.norm(param)
    loss.backward()
    adam.step()
    sas_losses.append(loss.item())

model.eval()
ranks = []
with torch.no_grad():
    for u, h in enumerate(hist):
        seq = np.zeros([MAXLEN], dtype=np.int64)
        idx = MAXLEN - 1
        for i in reversed(h[:-1]):
            seq[idx] = i
            idx -= 1
            if idx == -1:
                break
        rated = set(h)
        item_idx = [h[-1]]
        while len(item_idx) < 21:
            t = int(rng.integers(1, N_ITEMS + 1))
            if t not in rated:
                item_idx.append(t)
        predictions = -model.predict(np.array([seq]), np.array([item_idx]))
        predictions = predictions[0]
        ranks.append(int(predictions.argsort().argsort()[0].item()))
ranks_np = np.array(ranks)
hr10 = float((ranks_np < 10).mean())
ndcg10 = float(np.where(ranks_np < 10, 1 / np.log2(ranks_np + 2), 0).mean())


# ---- GRU4Rec with session-parallel mini-batches
class GRU4Rec(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.emb = nn.Embedding(N_ITEMS + 1, hidden)
        self.gru = nn.GRU(hidden, hidden, num_layers=1)
        self.out = nn.Linear(hidden, N_ITEMS + 1)

    def forward(self, items, hidden):
        x = self.emb(items).unsqueeze(0)
        out, hidden = self.gru(x, hidden)
        return self.out(out.squeeze(0)), hidden


def bpr_max(logit, reg=1.0):
    softmax_scores = torch.softmax(logit - 1e9 * torch.eye(logit.shape[0]), dim=1)
    diff = logit.diag().view(-1, 1).expand_as(logit) - logit
    loss = -torch.log(torch.sum(torch.sigmoid(diff) * softmax_scores, dim=1) + 1e-10)
    return (loss + reg * torch.sum(softmax_scores * logit**2, dim=1)).mean()


def top1_max(logit):
    softmax_scores = torch.softmax(logit - 1e9 * torch.eye(logit.shape[0]), dim=1)
    diff = -(logit.diag().view(-1, 1).expand_as(logit) - logit)
    y = softmax_scores * (torch.sigmoid(diff) + torch.sigmoid(logit**2))
    return torch.mean(torch.sum(y, dim=1))


sessions = user_histories(10)
B = 4
results = {}
for loss_name, loss_fn in (("bpr_max", bpr_max), ("top1_max", top1_max)):
    g4r = load(GRU4Rec())
    opt = torch.optim.Adagrad(g4r.parameters(), lr=0.05)
    iters = list(range(B))
    nxt_session = B
    pos = [0] * B
    hidden = torch.zeros(1, B, 16)
    losses, resets = [], []
    for step in range(10):
        inp = torch.tensor([sessions[s][pos[k]] for k, s in enumerate(iters)])
        tgt = torch.tensor([sessions[s][pos[k] + 1] for k, s in enumerate(iters)])
        hidden = hidden.detach()
        logits, hidden = g4r(inp, hidden)
        logit_sampled = logits[:, tgt]
        loss = loss_fn(logit_sampled)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        ended = []
        for k in range(B):
            pos[k] += 1
            if pos[k] + 1 >= len(sessions[iters[k]]):
                iters[k] = nxt_session % len(sessions)
                nxt_session += 1
                pos[k] = 0
                ended.append(k)
        if ended:
            mask = torch.ones(1, B, 1)
            mask[:, ended] = 0
            hidden = hidden * mask
        resets.append(ended)
    results[loss_name] = {"losses": losses, "resets": resets}

report(
    sas_losses=sas_losses,
    ranks=ranks,
    hr10=hr10,
    ndcg10=ndcg10,
    gru4rec=results,
)
