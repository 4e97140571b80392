# ColBERT-style late interaction as the stanford-futuredata/ColBERT training code writes it (our
# own condensed rewrite) over a tiny BERT-like encoder: queries padded with [MASK] tokens to a
# fixed length (query augmentation) with the attention mask still covering them, documents
# with a punctuation skiplist turned into a mask by a Python list comprehension over
# input_ids.cpu().tolist(), a linear projection to a small dimension and
# F.normalize(p=2, dim=2), MaxSim scores by (Q @ D.permute(0, 2, 1)).max(2).values.sum(1) and by
# einsum, in-batch negatives with nn.CrossEntropyLoss over a (B, B) score matrix, n-way
# training with explicit hard negatives reshaped by view(-1, nway), a distillation KL against
# teacher scores (F.log_softmax + nn.KLDivLoss(reduction="batchmean", log_target=True)),
# AdamW with a linear warmup, and end-to-end ranking with a token-level index (torch.cat of doc
# embeddings, doc ids by repeat_interleave, candidate generation by topk per query token,
# torch.unique, exact MaxSim re-ranking), MRR@k computed by hand.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2193)
VOCAB, PAD, CLS, Q_MARK, D_MARK, MASK = 60, 0, 1, 2, 3, 4
PUNCT = [5, 6, 7]
QLEN, DLEN, DIM = 8, 12, 8


class TinyEncoder(nn.Module):
    def __init__(self, vocab=VOCAB, hidden=32, heads=4, layers=2, max_len=16):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_len, hidden)
        self.ln = nn.LayerNorm(hidden)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, 64, dropout=0.0, activation="gelu", batch_first=True
        )
        self.enc = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, input_ids, attention_mask):
        pos = torch.arange(input_ids.size(1)).unsqueeze(0)
        h = self.ln(self.word(input_ids) + self.pos(pos))
        return self.enc(h, src_key_padding_mask=attention_mask == 0)


class ColBERT(nn.Module):
    def __init__(self, dim=DIM):
        super().__init__()
        self.bert = TinyEncoder()
        self.linear = nn.Linear(32, dim, bias=False)
        self.skiplist = {w: True for w in PUNCT}

    def query(self, input_ids, attention_mask):
        Q = self.bert(input_ids, attention_mask)
        Q = self.linear(Q)
        mask = torch.tensor(self.mask(input_ids, skiplist=[]), device=Q.device).unsqueeze(2).float()
        Q = Q * mask
        return F.normalize(Q, p=2, dim=2)

    def doc(self, input_ids, attention_mask, keep_dims=True):
        D = self.bert(input_ids, attention_mask)
        D = self.linear(D)
        mask = (
            torch.tensor(self.mask(input_ids, skiplist=self.skiplist), device=D.device)
            .unsqueeze(2)
            .float()
        )
        D = D * mask
        D = F.normalize(D, p=2, dim=2)
        if not keep_dims:
            D, mask = D.cpu(), mask.bool().cpu().squeeze(-1)
            D = [d[mask[idx]] for idx, d in enumerate(D)]
        return D

    def mask(self, input_ids, skiplist):
        return [[(x not in skiplist) and (x != PAD) for x in d] for d in input_ids.cpu().tolist()]

    def score(self, Q, D):
        return (Q @ D.permute(0, 2, 1)).max(2).values.sum(1)


def tensorize_queries(batch_text):
    ids = np.full((len(batch_text), QLEN), MASK, dtype=np.int64)  # query augmentation by [MASK]
    ids[:, 0], ids[:, 1] = CLS, Q_MARK
    for i, toks in enumerate(batch_text):
        ids[i, 2 : 2 + len(toks)] = toks
    ids = torch.from_numpy(ids)
    return ids, torch.ones_like(ids)


def tensorize_docs(batch_text):
    ids = np.full((len(batch_text), DLEN), PAD, dtype=np.int64)
    ids[:, 0], ids[:, 1] = CLS, D_MARK
    for i, toks in enumerate(batch_text):
        ids[i, 2 : 2 + len(toks)] = toks
    ids = torch.from_numpy(ids)
    return ids, (ids != PAD).long()


def make_doc(topic):
    n = int(rng.integers(5, 10))
    toks = np.where(
        rng.uniform(size=n) < 0.6,
        rng.integers(10 + 10 * topic, 20 + 10 * topic, n),
        rng.integers(8, VOCAB, n),
    )
    toks[rng.uniform(size=n) < 0.15] = PUNCT[0]
    return toks.tolist()


topics = rng.integers(0, 5, 16)
docs = [make_doc(t) for t in topics]
queries = [rng.integers(10 + 10 * t, 20 + 10 * t, int(rng.integers(3, 6))).tolist() for t in topics]
hard_neg = [docs[(i + 1) % 16] for i in range(16)]
teacher = rng.normal(size=(16, 2)).astype(np.float32)

model = ColBERT()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, eps=1e-8)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 3))
ce = nn.CrossEntropyLoss()
kl = nn.KLDivLoss(reduction="batchmean", log_target=True)
losses = []
for step in range(6):
    b = [(2 * step + j) % 16 for j in range(4)]
    q_ids, q_mask = tensorize_queries([queries[i] for i in b])
    # n-way: each query's positive then its hard negative
    d_text = []
    for i in b:
        d_text += [docs[i], hard_neg[i]]
    d_ids, d_mask = tensorize_docs(d_text)
    Q = model.query(q_ids, q_mask)
    D = model.doc(d_ids, d_mask)
    Q_dup = Q.repeat_interleave(2, dim=0).contiguous()
    scores = model.score(Q_dup, D).view(-1, 2)
    nway = ce(scores, torch.zeros(4, dtype=torch.long))
    # in-batch negatives over the positives
    pos = D[0::2]
    ib = torch.einsum("qih,djh->qdij", Q, pos).max(-1).values.sum(-1)
    inbatch = ce(ib, torch.arange(4))
    distill = kl(F.log_softmax(scores, dim=-1), F.log_softmax(torch.from_numpy(teacher[b]), dim=-1))
    loss = nway + inbatch + 0.5 * distill
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
    opt.step()
    sched.step()
    losses.append(loss.item())

model.eval()
with torch.no_grad():
    d_ids, d_mask = tensorize_docs(docs)
    doc_embs = model.doc(d_ids, d_mask, keep_dims=False)
    doclens = [d.size(0) for d in doc_embs]
    index = torch.cat(doc_embs)
    emb2pid = torch.repeat_interleave(torch.arange(len(docs)), torch.tensor(doclens))
    q_ids, q_mask = tensorize_queries(queries)
    Q = model.query(q_ids, q_mask)
    rr, ranked_all = [], []
    for qi in range(len(queries)):
        sims = Q[qi] @ index.T
        cand = torch.unique(emb2pid[sims.topk(4, dim=1).indices.flatten()])
        scores = torch.stack([(Q[qi] @ doc_embs[c].T).max(1).values.sum() for c in cand.tolist()])
        order = scores.argsort(descending=True)
        ranked = cand[order].tolist()
        ranked_all.append(ranked[:3])
        rr.append(1.0 / (ranked.index(qi) + 1) if qi in ranked[:10] else 0.0)
    full = torch.stack(
        [model.score(Q[qi : qi + 1], d.unsqueeze(0)) for qi in range(2) for d in doc_embs]
    )

report(
    losses=losses,
    doclens=doclens,
    mrr=float(np.mean(rr)),
    ranked=ranked_all,
    full_scores=full.flatten().tolist(),
    index_shape=list(index.shape),
)
