# Pre-training tricks of recent LM codebases (torchtitan / OLMo / HF-style), shrunk: documents
# packed into fixed-length rows with EOS separators, document ids by cumsum of EOS flags,
# position_ids reset per document (arange minus the document's start from cummax), a
# block-diagonal causal mask (same document & lower triangle) fed to scaled_dot_product_attention
# as a bool attn_mask, checked against running each document alone; cu_seqlens from the
# document lengths; the cross-entropy computed in vocabulary-chunked pieces under
# torch.utils.checkpoint (use_reentrant=False) with ignore_index -100 on padding, a z-loss on
# logsumexp, per-document mean losses by scatter_add; muP-style output scaling and tied
# embeddings; a warmup-stable-decay schedule by LambdaLR; SigLIP's pairwise sigmoid loss with
# learnable temperature and bias. Our own program.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.utils.checkpoint import checkpoint

rng = np.random.default_rng(111)
V, D, HEADS, ROW, EOS, PAD = 24, 16, 2, 16, 1, 0


def pack_documents(n_rows):
    rows, labels = [], []
    for _ in range(n_rows):
        toks = []
        while len(toks) < ROW + 1:
            doc = rng.integers(2, V, size=int(rng.integers(2, 7))).tolist()
            toks += doc + [EOS]
        toks = toks[: ROW + 1]
        rows.append(toks[:ROW])
        labels.append(toks[1 : ROW + 1])
    x = torch.tensor(rows)
    y = torch.tensor(labels)
    y[:, -2:][torch.from_numpy(rng.uniform(size=(n_rows, 2)) < 0.3)] = -100  # some padding
    return x, y


def document_ids(x):
    is_eos = (x == EOS).long()
    return torch.cumsum(is_eos, dim=1) - is_eos  # EOS belongs to its document


def position_ids(doc):
    T = doc.size(1)
    idx = torch.arange(T).expand_as(doc)
    starts = torch.where(
        torch.cat([torch.ones_like(doc[:, :1], dtype=torch.bool), doc[:, 1:] != doc[:, :-1]], 1),
        idx,
        0,
    )
    return idx - torch.cummax(starts, dim=1).values


def block_causal_mask(doc):
    T = doc.size(1)
    same = doc.unsqueeze(2) == doc.unsqueeze(1)
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    return (same & causal).unsqueeze(1)  # (B, 1, T, T)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D, bias=False)
        self.proj = nn.Linear(D, D, bias=False)
        self.fc1, self.fc2 = nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x, mask):
        B, T, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=2)
        q, k, v = (t.view(B, T, HEADS, D // HEADS).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(a.transpose(1, 2).reshape(B, T, D))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class LM(nn.Module):
    def __init__(self, width_mult=1.0):
        super().__init__()
        self.tok = nn.Embedding(V, D)
        self.pos = nn.Embedding(ROW, D)
        self.blocks = nn.ModuleList([Block() for _ in range(2)])
        self.ln_f = nn.LayerNorm(D)
        self.head = nn.Linear(D, V, bias=False)
        self.head.weight = self.tok.weight  # tied
        self.output_mult = 1.0 / width_mult

    def hidden(self, x, pos, mask):
        h = self.tok(x) + self.pos(pos)
        for blk in self.blocks:
            h = blk(h, mask)
        return self.ln_f(h) * self.output_mult


def chunked_ce(h, weight, labels, chunk=8, z_coef=1e-4):
    """Cross-entropy over vocabulary chunks: logsumexp pieces combined, recomputed in backward."""

    def piece(h, w):
        return torch.logsumexp(h @ w.t(), dim=-1)

    lse = torch.stack(
        [
            checkpoint(piece, h, weight[i : i + chunk], use_reentrant=False)
            for i in range(0, V, chunk)
        ],
        -1,
    )
    lse = torch.logsumexp(lse, dim=-1)
    valid = labels != -100
    safe = labels.clamp(min=0)
    target_logit = (h * weight[safe]).sum(-1)
    nll = (lse - target_logit) * valid
    z = (lse**2) * valid
    return nll.sum() / valid.sum(), z_coef * z.sum() / valid.sum(), nll


def wsd(step, warmup=3, stable=6, decay=4):
    if step < warmup:
        return (step + 1) / warmup
    if step < warmup + stable:
        return 1.0
    return max(0.0, 1 - (step - warmup - stable) / decay)


model = LM()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
opt = torch.optim.AdamW(
    [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
    lr=3e-3,
    betas=(0.9, 0.95),
)
sched = torch.optim.lr_scheduler.LambdaLR(opt, wsd)
log = []
for step in range(12):
    x, y = pack_documents(4)
    doc = document_ids(x)
    pos = position_ids(doc)
    h = model.hidden(x, pos, block_causal_mask(doc))
    ce, zl, nll = chunked_ce(h, model.head.weight, y)
    full = F.cross_entropy((h @ model.head.weight.t()).view(-1, V), y.view(-1), ignore_index=-100)
    loss = ce + zl
    opt.zero_grad()
    loss.backward()
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
    opt.step()
    sched.step()
    n_docs = int(doc.max()) + 1
    flat_doc = (doc + torch.arange(4).unsqueeze(1) * n_docs).view(-1)
    per_doc = torch.zeros(4 * n_docs).scatter_add_(0, flat_doc, nll.detach().view(-1))
    counts = torch.zeros(4 * n_docs).scatter_add_(0, flat_doc, (y != -100).float().view(-1))
    doc_mean = (per_doc[counts > 0] / counts[counts > 0]).mean()
    log.append(
        [ce.item(), zl.item(), full.item(), gn.item(), doc_mean.item(), sched.get_last_lr()[0]]
    )

# packed attention equals running each document alone
model.eval()
with torch.no_grad():
    x, y = pack_documents(1)
    doc = document_ids(x)
    packed = model.hidden(x, position_ids(doc), block_causal_mask(doc))[0]
    lengths = torch.bincount(doc[0])
    cu_seqlens = F.pad(torch.cumsum(lengths, 0), (1, 0))
    alone = []
    for i in range(len(lengths)):
        s, e = int(cu_seqlens[i]), int(cu_seqlens[i + 1])
        seg = x[:, s:e]
        causal = torch.tril(torch.ones(e - s, e - s, dtype=torch.bool))
        alone.append(model.hidden(seg, torch.arange(e - s).unsqueeze(0), causal)[0])
    alone = torch.cat(alone, 0)
    packing_ok = torch.allclose(packed, alone, atol=1e-5)


# ---- SigLIP: pairwise sigmoid loss with learnable temperature and bias
img_enc = nn.Sequential(nn.Linear(10, 16), nn.GELU(), nn.Linear(16, 8))
txt_enc = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 8))
for m in (img_enc, txt_enc):
    Wm = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            p.copy_(torch.from_numpy(Wm[n]))
t_prime = nn.Parameter(torch.tensor(math.log(10.0)))
bias = nn.Parameter(torch.tensor(-10.0))
opt = torch.optim.Adam(
    list(img_enc.parameters()) + list(txt_enc.parameters()) + [t_prime, bias], lr=1e-2
)
latent = rng.normal(size=(32, 4)).astype(np.float32)
imgs = torch.from_numpy(latent @ rng.normal(size=(4, 10)).astype(np.float32))
txts = torch.from_numpy(latent @ rng.normal(size=(4, 6)).astype(np.float32))
sig_log = []
for step in range(10):
    idx = torch.from_numpy(rng.choice(32, 8, replace=False))
    zimg = F.normalize(img_enc(imgs[idx]), dim=-1)
    ztxt = F.normalize(txt_enc(txts[idx]), dim=-1)
    logits = zimg @ ztxt.t() * t_prime.exp() + bias
    labels = 2 * torch.eye(8) - torch.ones(8, 8)
    loss = -F.logsigmoid(labels * logits).sum() / 8
    opt.zero_grad()
    loss.backward()
    opt.step()
    sig_log.append([loss.item(), t_prime.exp().item(), bias.item()])
report(
    lm=log,
    packing_ok=packing_ok,
    positions=position_ids(doc).tolist(),
    cu_seqlens=cu_seqlens.tolist(),
    siglip=sig_log,
)
