# Two reference implementations' idioms. Transformer-XL's relative multi-head attention as the
# official kimiyoung/transformer-xl code writes it: sinusoid positions by torch.ger over a
# descending arange with an inv_freq buffer, qkv by one Linear and torch.chunk, tuple-operand
# torch.einsum ('ibnd,jbnd->ijbn'), _rel_shift by zero-pad, cat and view, triu masks with a
# memory-length diagonal, masked_fill of -inf after .float() and type_as, segment memories
# carried across steps with detach. And Poincare embeddings (Nickel & Kiela; the
# facebookresearch code): nn.Embedding(sparse=True) in the unit ball, the arcosh distance, a
# custom torch.optim.Optimizer subclass (Riemannian SGD on the sparse gradient's coalesced
# indices and values with index_add_, projected back into the ball by renorm_), trained with a
# softmax over negatives. descent's sparse=True gradient is sparse COO as PyTorch's
# (docs/functional.md), so the optimizer takes the sparse branch in both. Our own program.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(17)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


class PositionalEmbedding(nn.Module):
    def __init__(self, demb):
        super(PositionalEmbedding, self).__init__()
        self.demb = demb
        inv_freq = 1 / (10000 ** (torch.arange(0.0, demb, 2.0) / demb))
        self.register_buffer("inv_freq", inv_freq)

    def forward(self, pos_seq, bsz=None):
        sinusoid_inp = torch.ger(pos_seq, self.inv_freq)
        pos_emb = torch.cat([sinusoid_inp.sin(), sinusoid_inp.cos()], dim=-1)
        if bsz is not None:
            return pos_emb[:, None, :].expand(-1, bsz, -1)
        return pos_emb[:, None, :]


class RelPartialLearnableMultiHeadAttn(nn.Module):
    def __init__(self, n_head, d_model, d_head, dropout=0.0):
        super().__init__()
        self.n_head, self.d_model, self.d_head = n_head, d_model, d_head
        self.qkv_net = nn.Linear(d_model, 3 * n_head * d_head, bias=False)
        self.o_net = nn.Linear(n_head * d_head, d_model, bias=False)
        self.r_net = nn.Linear(d_model, n_head * d_head, bias=False)
        self.layer_norm = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)
        self.scale = 1 / (d_head ** 0.5)

    def _rel_shift(self, x, zero_triu=False):
        zero_pad = torch.zeros((x.size(0), 1, *x.size()[2:]), device=x.device, dtype=x.dtype)
        x_padded = torch.cat([zero_pad, x], dim=1)
        x_padded = x_padded.view(x.size(1) + 1, x.size(0), *x.size()[2:])
        x = x_padded[1:].view_as(x)
        if zero_triu:
            ones = torch.ones((x.size(0), x.size(1)))
            x = x * torch.tril(ones, x.size(1) - x.size(0))[:, :, None, None]
        return x

    def forward(self, w, r, r_w_bias, r_r_bias, attn_mask=None, mems=None):
        qlen, rlen, bsz = w.size(0), r.size(0), w.size(1)
        if mems is not None:
            cat = torch.cat([mems, w], 0)
            w_heads = self.qkv_net(cat)
            r_head_k = self.r_net(r)
            w_head_q, w_head_k, w_head_v = torch.chunk(w_heads, 3, dim=-1)
            w_head_q = w_head_q[-qlen:]
        else:
            w_heads = self.qkv_net(w)
            r_head_k = self.r_net(r)
            w_head_q, w_head_k, w_head_v = torch.chunk(w_heads, 3, dim=-1)
        klen = w_head_k.size(0)
        w_head_q = w_head_q.view(qlen, bsz, self.n_head, self.d_head)
        w_head_k = w_head_k.view(klen, bsz, self.n_head, self.d_head)
        w_head_v = w_head_v.view(klen, bsz, self.n_head, self.d_head)
        r_head_k = r_head_k.view(rlen, self.n_head, self.d_head)

        rw_head_q = w_head_q + r_w_bias
        AC = torch.einsum("ibnd,jbnd->ijbn", (rw_head_q, w_head_k))
        rr_head_q = w_head_q + r_r_bias
        BD = torch.einsum("ibnd,jnd->ijbn", (rr_head_q, r_head_k))
        BD = self._rel_shift(BD)

        attn_score = AC + BD
        attn_score.mul_(self.scale)
        if attn_mask is not None and attn_mask.any().item():
            attn_score = attn_score.float().masked_fill(
                attn_mask[:, :, :, None], -float("inf")).type_as(attn_score)
        attn_prob = F.softmax(attn_score, dim=1)
        attn_prob = self.drop(attn_prob)
        attn_vec = torch.einsum("ijbn,jbnd->ibnd", (attn_prob, w_head_v))
        attn_vec = attn_vec.contiguous().view(
            attn_vec.size(0), attn_vec.size(1), self.n_head * self.d_head)
        attn_out = self.o_net(attn_vec)
        return self.layer_norm(w + attn_out)


class TinyTXL(nn.Module):
    def __init__(self, n_token, d_model=16, n_head=2, d_head=8, mem_len=6):
        super().__init__()
        self.d_model, self.mem_len = d_model, mem_len
        self.word_emb = nn.Embedding(n_token, d_model)
        self.pos_emb = PositionalEmbedding(d_model)
        self.attn = RelPartialLearnableMultiHeadAttn(n_head, d_model, d_head)
        self.ff = nn.Sequential(nn.Linear(d_model, 32), nn.ReLU(inplace=True),
                                nn.Linear(32, d_model))
        self.ln = nn.LayerNorm(d_model)
        self.r_w_bias = nn.Parameter(torch.Tensor(n_head, d_head))
        self.r_r_bias = nn.Parameter(torch.Tensor(n_head, d_head))
        self.out = nn.Linear(d_model, n_token)

    def _update_mems(self, hid, mems, qlen, mlen):
        with torch.no_grad():
            end_idx = mlen + max(0, qlen)
            beg_idx = max(0, end_idx - self.mem_len)
            cat = torch.cat([mems, hid], dim=0) if mems is not None else hid
            return cat[beg_idx:end_idx].detach()

    def forward(self, data, target, mems=None):
        qlen, bsz = data.size()
        word_emb = self.word_emb(data) * self.d_model ** 0.5
        mlen = mems.size(0) if mems is not None else 0
        klen = mlen + qlen
        dec_attn_mask = torch.triu(word_emb.new_ones(qlen, klen), diagonal=1 + mlen).bool()[
            :, :, None]
        pos_seq = torch.arange(klen - 1, -1, -1.0, device=word_emb.device, dtype=word_emb.dtype)
        pos_emb = self.pos_emb(pos_seq)
        core = self.attn(word_emb, pos_emb, self.r_w_bias, self.r_r_bias,
                         attn_mask=dec_attn_mask, mems=mems)
        core = self.ln(core + self.ff(core))
        new_mems = self._update_mems(word_emb, mems, qlen, mlen)
        logit = self.out(core)
        loss = F.cross_entropy(logit.view(-1, logit.size(-1)), target.reshape(-1),
                               reduction="none").view(qlen, bsz)
        return loss, new_mems


N_TOKEN = 11
stream = np.zeros((4, 61), dtype=np.int64)
for b in range(4):
    x = rng.integers(N_TOKEN)
    for i in range(61):
        stream[b, i] = x
        x = (x * 3 + 1 + (i % 2)) % N_TOKEN if rng.uniform() > 0.1 else rng.integers(N_TOKEN)
stream = torch.from_numpy(stream).t().contiguous()  # (time, batch), the TXL layout

model = TinyTXL(N_TOKEN)
load_reference(model)
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=1e-4)
tgt_len, mems = 5, None
txl_losses, mem_shapes = [], []
for i in range(10):
    data = stream[i * tgt_len:(i + 1) * tgt_len]
    target = stream[i * tgt_len + 1:(i + 1) * tgt_len + 1]
    loss, mems = model(data, target, mems)
    loss = loss.float().mean().type_as(loss)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
    opt.step()
    sched.step()
    txl_losses.append(loss.item())
    mem_shapes.append(list(mems.shape))
mems_require_grad = mems.requires_grad

model.eval()
with torch.no_grad():
    mems, total = None, 0.0
    for i in range(10, 12):
        data = stream[i * tgt_len:(i + 1) * tgt_len]
        target = stream[i * tgt_len + 1:(i + 1) * tgt_len + 1]
        loss, mems = model(data, target, mems)
        total += loss.sum().item()
    eval_ppl = float(np.exp(total / (2 * tgt_len * 4)))
shift_check = model.attn._rel_shift(torch.arange(24.0).view(3, 4, 1, 2), zero_triu=True)


# ---- Poincare embeddings ------------------------------------------------------------------
eps = 1e-5


def arcosh(x):
    return torch.log(x + torch.sqrt(x * x - 1))


def poincare_distance(u, v):
    sqdist = torch.sum((u - v) ** 2, dim=-1)
    squnorm = torch.clamp(torch.sum(u * u, dim=-1), 0, 1 - eps)
    sqvnorm = torch.clamp(torch.sum(v * v, dim=-1), 0, 1 - eps)
    x = 1 + 2 * sqdist / ((1 - squnorm) * (1 - sqvnorm))
    return arcosh(torch.clamp(x, min=1 + eps))


class RiemannianSGD(torch.optim.Optimizer):
    def __init__(self, params, lr):
        defaults = dict(lr=lr)
        super(RiemannianSGD, self).__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad
                if d_p.is_sparse:
                    d_p = d_p.coalesce()
                    idx, vals = d_p._indices()[0], d_p._values()
                    rows = p.index_select(0, idx)
                    sqnorm = torch.sum(rows ** 2, dim=-1, keepdim=True)
                    vals = vals * ((1 - sqnorm) ** 2 / 4).expand_as(vals)
                    p.index_add_(0, idx, vals, alpha=-group["lr"])
                else:
                    sqnorm = torch.sum(p ** 2, dim=-1, keepdim=True)
                    p.add_(d_p * ((1 - sqnorm) ** 2 / 4), alpha=-group["lr"])
                p.renorm_(2, 0, 1 - eps)
        return loss


# a depth-3 binary tree: node 0 the root, children 2k+1, 2k+2; edges are (descendant, ancestor)
n_nodes = 15
parents = {c: (c - 1) // 2 for c in range(1, n_nodes)}
edges = []
for c in range(1, n_nodes):
    a = parents[c]
    while True:
        edges.append((c, a))
        if a == 0:
            break
        a = parents[a]
edges = np.array(edges, dtype=np.int64)
closure = set(map(tuple, edges.tolist()))

# initialised in +-0.1, not the reference code's +-1e-3: near the origin arcosh's argument is
# 1 + O(1e-4), x * x - 1 keeps 3 float32 digits, and 1 / sqrt(x * x - 1) amplified the rounding
# of the summed embedding gradients (with +-1e-2: the root's norm 7.5e-5 apart from PyTorch with
# OpenBLAS's Haswell kernels; with +-0.1: 2.2e-7, either kernel)
emb = nn.Embedding(n_nodes, 2, sparse=True)
with torch.no_grad():
    emb.weight.copy_(torch.from_numpy(rng.uniform(-0.1, 0.1, size=(n_nodes, 2))).float())
ropt = RiemannianSGD(emb.parameters(), lr=0.3)
N_NEG = 5
negs = np.zeros((len(edges), N_NEG), dtype=np.int64)
for i, (u, v) in enumerate(edges):
    cands = [w for w in range(n_nodes) if (u, w) not in closure and w != u and w != v]
    negs[i] = rng.choice(cands, size=N_NEG, replace=False)
batch_idx = torch.from_numpy(np.concatenate([edges, negs], axis=1))  # (E, 2 + N_NEG)
poincare_losses = []
for epoch in range(25):
    e = emb(batch_idx)
    o = e.narrow(1, 1, e.size(1) - 1)
    s = e.narrow(1, 0, 1).expand_as(o)
    dists = poincare_distance(s, o)
    loss = F.cross_entropy(-dists, torch.zeros(len(edges), dtype=torch.long))
    ropt.zero_grad()
    loss.backward()
    ropt.step()
    poincare_losses.append(loss.item())
norms = emb.weight.detach().norm(dim=-1)
root_closest = bool(norms.argmin().item() == 0)
depth_norms = [norms[0].item(), norms[1:3].mean().item(), norms[3:7].mean().item(),
               norms[7:].mean().item()]
rank_ok = float((poincare_distance(emb.weight[1:2], emb.weight[3:5]).mean()
                 < poincare_distance(emb.weight[1:2], emb.weight[5:7]).mean()).item())

report(txl_losses=txl_losses, mem_shapes=mem_shapes, mems_require_grad=mems_require_grad,
       eval_ppl=eval_ppl, shift_check=shift_check.flatten().tolist(),
       poincare_losses=poincare_losses, root_closest=root_closest, depth_norms=depth_norms,
       rank_ok=rank_ok, ball=bool((norms < 1).all()))
