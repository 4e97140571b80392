# Long-sequence attention as lucidrains/reformer-pytorch and the Longformer paper's reference
# code write it: LSH bucketing by random rotations (einsum, argmax over cat([R, -R])), several
# hash rounds, a stable sort of bucket * seqlen + position keys, batched_index_select by gather
# on expanded indices, chunked attention that also looks one chunk back (cat of a rolled view),
# shared-QK key normalisation, masking of self-attention with a large negative value, the
# un-sort through argsort of the sort indices, combination of rounds by logsumexp weights;
# Longformer's sliding-chunk attention by as_strided diagonals (_chunk, _skew / _skew2 by
# F.pad and view tricks) checked against a banded mask, with global tokens; a small LM trained
# through both under AdamW with a warmup LambdaLR and clip_grad_norm_.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(7)
V, D, H, T, BSZ = 24, 16, 2, 16, 3
N_HASHES, BUCKETS = 2, 4
TOKEN_SELF_ATTN_VALUE = -5e4


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def sort_key_val(t1, t2, dim=-1):
    values, indices = t1.sort(dim=dim)
    t2 = t2.expand_as(t1)
    return values, t2.gather(dim, indices)


def batched_index_select(values, indices):
    last_dim = values.shape[-1]
    return values.gather(1, indices[:, :, None].expand(-1, -1, last_dim))


def look_one_back(x):
    x_extra = torch.cat([x[:, -1:, ...], x[:, :-1, ...]], dim=1)
    return torch.cat([x, x_extra], dim=2)


class LSHAttention(nn.Module):
    def __init__(self, bucket_size, n_hashes, rotations):
        super().__init__()
        self.bucket_size, self.n_hashes = bucket_size, n_hashes
        self.register_buffer("rotations", rotations, persistent=False)

    def hash_vectors(self, n_buckets, vecs):
        batch_size = vecs.shape[0]
        rotated_vecs = torch.einsum(
            "btf,bfhi->bhti", vecs, self.rotations.expand(batch_size, -1, -1, -1)
        )
        rotated_vecs = torch.cat([rotated_vecs, -rotated_vecs], dim=-1)
        buckets = torch.argmax(rotated_vecs, dim=-1)
        offsets = torch.arange(self.n_hashes)
        offsets = torch.reshape(offsets * n_buckets, (1, -1, 1))
        return torch.reshape(buckets + offsets, (batch_size, -1))

    def forward(self, qk, v):
        batch_size, seqlen, dim = qk.shape
        n_buckets = seqlen // self.bucket_size
        buckets = self.hash_vectors(n_buckets, qk)
        total_hashes = self.n_hashes
        ticker = torch.arange(total_hashes * seqlen).unsqueeze(0).expand_as(buckets)
        buckets_and_t = seqlen * buckets + (ticker % seqlen)
        buckets_and_t = buckets_and_t.detach()
        sbuckets_and_t, sticker = sort_key_val(buckets_and_t, ticker, dim=-1)
        _, undo_sort = sticker.sort(dim=-1)
        del ticker
        sbuckets_and_t = sbuckets_and_t.detach()
        sticker = sticker.detach()
        undo_sort = undo_sort.detach()

        st = sticker % seqlen
        sqk = batched_index_select(qk, st)
        sv = batched_index_select(v, st)
        chunk_size = total_hashes * n_buckets
        bq_t = bkv_t = torch.reshape(st, (batch_size, chunk_size, -1))
        bqk = torch.reshape(sqk, (batch_size, chunk_size, -1, dim))
        bv = torch.reshape(sv, (batch_size, chunk_size, -1, dim))
        bq = bqk
        bk = F.normalize(bqk, p=2, dim=-1).type_as(bq)
        bk = look_one_back(bk)
        bv = look_one_back(bv)
        bkv_t = look_one_back(bkv_t)
        dots = torch.einsum("bhie,bhje->bhij", bq, bk) * (dim**-0.5)
        masked_value = -torch.finfo(dots.dtype).max
        # causal within the sorted chunks
        mask = bq_t[:, :, :, None] < bkv_t[:, :, None, :]
        dots.masked_fill_(mask, masked_value)
        self_mask = bq_t[:, :, :, None] == bkv_t[:, :, None, :]
        dots.masked_fill_(self_mask, TOKEN_SELF_ATTN_VALUE)
        dots_logsumexp = torch.logsumexp(dots, dim=-1, keepdim=True)
        dots = torch.exp(dots - dots_logsumexp).type_as(dots)
        bo = torch.einsum("buij,buje->buie", dots, bv)
        so = torch.reshape(bo, (batch_size, -1, dim))
        slogits = torch.reshape(dots_logsumexp, (batch_size, -1))
        o = batched_index_select(so, undo_sort)
        logits = slogits.gather(1, undo_sort)
        o = torch.reshape(o, (batch_size, total_hashes, seqlen, dim))
        logits = torch.reshape(logits, (batch_size, total_hashes, seqlen, 1))
        probs = torch.exp(logits - torch.logsumexp(logits, dim=1, keepdim=True))
        out = torch.sum(o * probs, dim=1)
        return out, buckets


def _chunk(x, w):
    """Longformer: (B*H, T, d) -> overlapping chunks of size 2w with overlap w."""
    x = x.view(x.size(0), x.size(1) // (w * 2), w * 2, x.size(2))
    chunk_size = list(x.size())
    chunk_size[1] = chunk_size[1] * 2 - 1
    chunk_stride = list(x.stride())
    chunk_stride[1] = chunk_stride[1] // 2
    return x.as_strided(size=chunk_size, stride=chunk_stride)


def _skew(x, direction, padding_value):
    x_padded = F.pad(x, direction, value=padding_value)
    return x_padded.view(*x_padded.size()[:-2], x_padded.size(-1), x_padded.size(-2))


def _skew2(x, padding_value):
    X, C, M, L = x.size()
    x = F.pad(x, (0, M + 1), value=padding_value)
    x = x.view(X, C, -1)
    x = x[:, :, :-M]
    x = x.view(X, C, M, M + L)
    return x[:, :, :, :-1]


def sliding_chunks_matmul_qk(q, k, w, padding_value):
    bsz, seqlen, num_heads, head_dim = q.size()
    chunks_count = seqlen // w - 1
    q = q.transpose(1, 2).reshape(bsz * num_heads, seqlen, head_dim)
    k = k.transpose(1, 2).reshape(bsz * num_heads, seqlen, head_dim)
    chunk_q = _chunk(q, w)
    chunk_k = _chunk(k, w)
    chunk_attn = torch.einsum("bcxd,bcyd->bcxy", (chunk_q, chunk_k))
    diagonal_chunk_attn = _skew(chunk_attn, direction=(0, 0, 0, 1), padding_value=padding_value)
    diagonal_attn = diagonal_chunk_attn.new_empty((bsz * num_heads, chunks_count + 1, w, w * 2 + 1))
    diagonal_attn[:, :-1, :, w:] = diagonal_chunk_attn[:, :, :w, : w + 1]
    diagonal_attn[:, -1, :, w:] = diagonal_chunk_attn[:, -1, w:, : w + 1]
    diagonal_attn[:, 1:, :, :w] = diagonal_chunk_attn[:, :, -(w + 1) : -1, w + 1 :]
    p = w > 1
    diagonal_attn[:, 0, 1:w, 1:w] = diagonal_chunk_attn[:, 0, : w - 1, p - w :]
    diagonal_attn[:, 0, 0:1, :w] = padding_value  # first row: nothing to its left
    diagonal_attn = diagonal_attn.view(bsz, num_heads, seqlen, 2 * w + 1).transpose(2, 1)
    return diagonal_attn


def mask_invalid_locations(input_tensor, w):
    affected_seqlen = w
    beginning_mask_2d = input_tensor.new_ones(w, w + 1).tril().flip(dims=[0])
    beginning_mask = beginning_mask_2d[None, :, None, :]
    ending_mask = beginning_mask.flip(dims=(1, 3))
    seqlen = input_tensor.size(1)
    beginning_input = input_tensor[:, :affected_seqlen, :, : w + 1]
    beginning_mask = beginning_mask[:, :seqlen].expand(beginning_input.size())
    beginning_input.masked_fill_(beginning_mask == 1, -float("inf"))
    ending_input = input_tensor[:, -affected_seqlen:, :, -(w + 1) :]
    ending_mask = ending_mask[:, -seqlen:].expand(ending_input.size())
    ending_input.masked_fill_(ending_mask == 1, -float("inf"))


def sliding_chunks_matmul_pv(prob, v, w):
    bsz, seqlen, num_heads, head_dim = v.size()
    chunks_count = seqlen // w - 1
    chunk_prob = prob.transpose(1, 2).reshape(bsz * num_heads, seqlen // w, w, 2 * w + 1)
    v = v.transpose(1, 2).reshape(bsz * num_heads, seqlen, head_dim)
    padded_v = F.pad(v, (0, 0, w, w), value=-1)
    chunk_v_size = (bsz * num_heads, chunks_count + 1, 3 * w, head_dim)
    chunk_v_stride = padded_v.stride()
    chunk_v_stride = chunk_v_stride[0], w * chunk_v_stride[1], chunk_v_stride[1], chunk_v_stride[2]
    chunk_v = padded_v.as_strided(size=chunk_v_size, stride=chunk_v_stride)
    skewed_prob = _skew2(chunk_prob, padding_value=0)
    context = torch.einsum("bcwd,bcdh->bcwh", (skewed_prob, chunk_v))
    return context.view(bsz, num_heads, seqlen, head_dim).transpose(1, 2)


class Block(nn.Module):
    def __init__(self, kind, rotations=None):
        super().__init__()
        self.kind = kind
        self.ln1, self.ln2 = nn.LayerNorm(D), nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.ff = nn.Sequential(nn.Linear(D, 2 * D), nn.GELU(), nn.Linear(2 * D, D))
        if kind == "lsh":
            self.lsh = LSHAttention(bucket_size=4, n_hashes=N_HASHES, rotations=rotations)

    def attend(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        hd = D // H
        if self.kind == "lsh":
            qk = q.view(b, t, H, hd).transpose(1, 2).reshape(b * H, t, hd)
            vv = v.view(b, t, H, hd).transpose(1, 2).reshape(b * H, t, hd)
            out, buckets = self.lsh(qk, vv)
            self.last_buckets = buckets
            return out.view(b, H, t, hd).transpose(1, 2).reshape(b, t, D)
        w = 2
        qh = q.view(b, t, H, hd) / math.sqrt(hd)
        kh, vh = k.view(b, t, H, hd), v.view(b, t, H, hd)
        scores = sliding_chunks_matmul_qk(qh, kh, w, padding_value=0)
        mask_invalid_locations(scores, w)
        probs = F.softmax(scores, dim=-1)
        self.last_scores = scores
        return sliding_chunks_matmul_pv(probs, vh, w).reshape(b, t, D)

    def forward(self, x):
        x = x + self.proj(self.attend(self.ln1(x)))
        return x + self.ff(self.ln2(x))


class LM(nn.Module):
    def __init__(self, kind, rotations=None):
        super().__init__()
        self.tok = nn.Embedding(V, D)
        self.pos = nn.Parameter(torch.zeros(1, T, D))
        self.block = Block(kind, rotations)
        self.ln = nn.LayerNorm(D)
        self.head = nn.Linear(D, V, bias=False)

    def forward(self, idx):
        x = self.tok(idx) + self.pos[:, : idx.shape[1]]
        return self.head(self.ln(self.block(x)))


def banded_reference(q, k, v, w):
    b, t, h, d = q.shape
    s = torch.einsum("bthd,bshd->bhts", q / math.sqrt(d), k)
    i = torch.arange(t)
    band = (i[:, None] - i[None, :]).abs() <= w
    s = s.masked_fill(~band, float("-inf"))
    return torch.einsum("bhts,bshd->bthd", s.softmax(-1), v), s


# Longformer's chunked computation against a dense banded mask
qn = torch.from_numpy(rng.standard_normal((2, 8, 2, 4)).astype(np.float32))
kn = torch.from_numpy(rng.standard_normal((2, 8, 2, 4)).astype(np.float32))
vn = torch.from_numpy(rng.standard_normal((2, 8, 2, 4)).astype(np.float32))
sc = sliding_chunks_matmul_qk(qn / 2.0, kn, 2, padding_value=0)
mask_invalid_locations(sc, 2)
ctx = sliding_chunks_matmul_pv(F.softmax(sc, dim=-1), vn, 2)
ref, ref_s = banded_reference(qn, kn, vn, 2)
finite = torch.isfinite(sc)

rot = torch.from_numpy(rng.standard_normal((1, D // H, N_HASHES, (T // 4) // 2)).astype(np.float32))
data = torch.from_numpy(np.tile(rng.integers(0, V, size=(1, 8)), (BSZ, 3))[:, : T + 1] % V)
data = (data + torch.arange(BSZ)[:, None]) % V
x, y = data[:, :-1], data[:, 1:]

results = {}
for kind in ("lsh", "sliding"):
    model = load(LM(kind, rot if kind == "lsh" else None))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 4))
    losses, norms = [], []
    for step in range(10):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norms.append(float(nn.utils.clip_grad_norm_(model.parameters(), 1.0)))
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        pred = model(x[:1]).argmax(-1)
    results[kind] = dict(losses=losses, norms=norms, pred=pred[0].tolist())
    if kind == "lsh":
        b = model.block.last_buckets
        results[kind]["bucket_counts"] = torch.bincount(b.flatten(), minlength=8).tolist()

report(
    longformer_max_err=(ctx - ref).abs().max().item(),
    longformer_ctx=ctx[0, :, 0, 0].tolist(),
    longformer_scores=torch.where(finite, sc, torch.zeros_like(sc))[1, :, 1].flatten().tolist(),
    n_finite=int(finite.sum()),
    **results,
)
