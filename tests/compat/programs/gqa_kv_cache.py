# Grouped-query attention with a key/value cache, as mistral-src's model.py / cache.py and Meta's
# llama model.py write it (our own condensed rewrite): RMSNorm, rotary embeddings in real form
# (cos/sin tables, rotate_half), n_kv_heads < n_heads with repeat_kv (expand + reshape, as
# HuggingFace's repeat_kv) and with scaled_dot_product_attention(enable_gqa=True), a
# preallocated cache written by slice assignment (cache_k[:bsz, start_pos:start_pos + seqlen] =
# xk), prefill then one-token decode steps checked against a full forward, Mistral's rolling
# buffer cache for sliding-window attention (positions % window, unrotated by torch.roll), a
# batch of left-padded prompts with an attention mask and position ids from cumsum, and greedy
# speculative decoding with a small draft model verified by the target in one forward.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(3)

VOCAB = 29


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(
            x
        ) * self.weight


def rope_tables(head_dim, max_pos, theta=10000.0):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    t = torch.arange(max_pos, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(q, k, cos, sin, position_ids):
    cos = cos[position_ids].unsqueeze(1)  # (B, 1, T, D)
    sin = sin[position_ids].unsqueeze(1)
    return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def repeat_kv(hidden_states, n_rep):
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(
        batch, num_key_value_heads, n_rep, slen, head_dim
    )
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


class Attention(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads, max_batch, max_seq, use_sdpa_gqa=False):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = dim // n_heads
        self.n_rep = n_heads // n_kv_heads
        self.wq = nn.Linear(dim, n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(dim, n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(dim, n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(n_heads * self.head_dim, dim, bias=False)
        self.use_sdpa_gqa = use_sdpa_gqa
        self.register_buffer(
            "cache_k", torch.zeros(max_batch, n_kv_heads, max_seq, self.head_dim), persistent=False
        )
        self.register_buffer(
            "cache_v", torch.zeros(max_batch, n_kv_heads, max_seq, self.head_dim), persistent=False
        )

    def forward(self, x, cos, sin, position_ids, mask, start_pos=None):
        bsz, seqlen, _ = x.shape
        xq = self.wq(x).view(bsz, seqlen, self.n_heads, self.head_dim).transpose(1, 2)
        xk = self.wk(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim).transpose(1, 2)
        xv = self.wv(x).view(bsz, seqlen, self.n_kv_heads, self.head_dim).transpose(1, 2)
        xq, xk = apply_rotary(xq, xk, cos, sin, position_ids)
        if start_pos is not None:
            self.cache_k[:bsz, :, start_pos : start_pos + seqlen] = xk
            self.cache_v[:bsz, :, start_pos : start_pos + seqlen] = xv
            keys = self.cache_k[:bsz, :, : start_pos + seqlen]
            values = self.cache_v[:bsz, :, : start_pos + seqlen]
        else:
            keys, values = xk, xv
        if self.use_sdpa_gqa:
            out = F.scaled_dot_product_attention(xq, keys, values, attn_mask=mask, enable_gqa=True)
        else:
            keys = repeat_kv(keys, self.n_rep)
            values = repeat_kv(values, self.n_rep)
            scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(self.head_dim)
            if mask is not None:
                scores = scores + mask
            scores = F.softmax(scores.float(), dim=-1).type_as(xq)
            out = torch.matmul(scores, values)
        out = out.transpose(1, 2).contiguous().view(bsz, seqlen, -1)
        return self.wo(out)


class Block(nn.Module):
    def __init__(self, dim, n_heads, n_kv_heads, max_batch, max_seq, use_sdpa_gqa):
        super().__init__()
        self.attention = Attention(dim, n_heads, n_kv_heads, max_batch, max_seq, use_sdpa_gqa)
        self.attention_norm = RMSNorm(dim)
        self.ffn_norm = RMSNorm(dim)
        hidden = 2 * dim
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x, cos, sin, position_ids, mask, start_pos=None):
        h = x + self.attention(self.attention_norm(x), cos, sin, position_ids, mask, start_pos)
        y = self.ffn_norm(h)
        return h + self.w2(F.silu(self.w1(y)) * self.w3(y))


class Transformer(nn.Module):
    def __init__(
        self,
        dim=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        max_batch=4,
        max_seq=48,
        use_sdpa_gqa=False,
    ):
        super().__init__()
        self.tok_embeddings = nn.Embedding(VOCAB, dim)
        self.layers = nn.ModuleList(
            [
                Block(dim, n_heads, n_kv_heads, max_batch, max_seq, use_sdpa_gqa)
                for _ in range(n_layers)
            ]
        )
        self.norm = RMSNorm(dim)
        self.output = nn.Linear(dim, VOCAB, bias=False)
        cos, sin = rope_tables(dim // n_heads, max_seq)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, tokens, start_pos=None, position_ids=None, attn_mask=None):
        bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        offset = 0 if start_pos is None else start_pos
        if position_ids is None:
            position_ids = torch.arange(offset, offset + seqlen).unsqueeze(0).expand(bsz, -1)
        mask = None
        if seqlen > 1:
            mask = torch.full((seqlen, seqlen), float("-inf"))
            mask = torch.triu(mask, diagonal=1)
            mask = torch.hstack([torch.zeros((seqlen, offset)), mask])
            mask = mask[None, None]
        if attn_mask is not None:  # (B, S) 1 = keep, 0 = padding
            pad = (1.0 - attn_mask[:, None, None, : offset + seqlen].float()) * torch.finfo(
                torch.float32
            ).min
            mask = pad if mask is None else mask + pad
        for layer in self.layers:
            h = layer(h, self.cos, self.sin, position_ids, mask, start_pos)
        return self.output(self.norm(h)).float()


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


# data: a deterministic "grammar" of repeating patterns
def batch(n, T):
    starts = rng.integers(1, VOCAB, size=n)
    steps = rng.integers(1, 4, size=n)
    seq = (starts[:, None] + steps[:, None] * np.arange(T + 1)[None]) % (VOCAB - 1) + 1
    x = torch.from_numpy(seq[:, :-1]).long()
    y = torch.from_numpy(seq[:, 1:]).long()
    return x, y


model = load(Transformer())
draft = load(Transformer(dim=16, n_layers=1, n_heads=2, n_kv_heads=1))
losses, draft_losses = [], []
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
dopt = torch.optim.AdamW(draft.parameters(), lr=3e-3, weight_decay=0.01)
for step in range(15):
    x, y = batch(8, 16)
    for m, o, rec in ((model, opt, losses), (draft, dopt, draft_losses)):
        logits = m(x)
        loss = F.cross_entropy(logits.view(-1, VOCAB), y.reshape(-1))
        o.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        o.step()
        rec.append(loss.item())

model.eval()
draft.eval()
results = {}
with torch.inference_mode():
    # 1. prefill + decode with the cache == full forward on the whole sequence
    prompt, _ = batch(3, 6)
    full_logits = model(prompt)
    tokens = prompt
    logits = model(prompt, start_pos=0)
    cache_diffs = [(logits - full_logits).abs().max().item()]
    for cur in range(6, 14):
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, nxt], dim=1)
        logits = model(nxt, start_pos=cur)
        ref = model(tokens)[:, -1:]
        cache_diffs.append((logits - ref).abs().max().item())
    results["cached_generation"] = tokens.tolist()
    results["cache_matches_full"] = max(cache_diffs) < 1e-4
    results["last_logits"] = logits[0, -1].tolist()

    # 2. sdpa(enable_gqa=True) gives the repeat_kv model's logits
    gqa = Transformer(use_sdpa_gqa=True)
    gqa.load_state_dict(model.state_dict())
    gqa.eval()
    x, _ = batch(2, 10)
    a, b = model(x), gqa(x)
    results["sdpa_gqa_diff_small"] = (a - b).abs().max().item() < 1e-5
    results["sdpa_gqa_logsumexp"] = torch.logsumexp(b, -1).sum().item()

    # 3. left-padded batch: position ids from the attention mask's cumsum (HF's generate)
    lens = [4, 7, 5]
    T = max(lens)
    ids = torch.zeros(3, T, dtype=torch.long)
    am = torch.zeros(3, T, dtype=torch.long)
    for i, n in enumerate(lens):
        seq, _ = batch(1, n)
        ids[i, T - n :] = seq[0]
        am[i, T - n :] = 1
    pos = (am.cumsum(-1) - 1).clamp(min=0)
    padded = model(ids, position_ids=pos, attn_mask=am)
    alone = [model(ids[i : i + 1, T - n :])[0, -1] for i, n in enumerate(lens)]
    results["left_pad_matches"] = (
        max((padded[i, -1] - alone[i]).abs().max().item() for i in range(3)) < 1e-4
    )
    results["left_pad_next"] = padded[:, -1].argmax(-1).tolist()

    # 4. Mistral's rolling buffer: a window of W keys kept at positions % W
    W_ = 4
    seq, _ = batch(1, 10)
    blk = model.layers[0].attention
    xs = model.tok_embeddings(seq)
    k_all = blk.wk(xs).view(1, 10, blk.n_kv_heads, blk.head_dim)
    buf = torch.zeros(1, W_, blk.n_kv_heads, blk.head_dim)
    for t in range(10):
        buf[:, t % W_] = k_all[:, t]
    unrolled = torch.roll(buf, shifts=-(10 % W_), dims=1)
    results["rolling_buffer_ok"] = torch.equal(unrolled, k_all[:, -W_:])
    results["rolling_buffer_sum"] = unrolled.sum().item()

    # 5. greedy speculative decoding: the draft proposes k tokens, the target checks them at once
    prompt, _ = batch(1, 5)
    out = prompt
    accepted = []
    while out.shape[1] < 17:
        k = 3
        proposal = out
        for _ in range(k):
            nxt = draft(proposal)[:, -1].argmax(-1, keepdim=True)
            proposal = torch.cat([proposal, nxt], 1)
        target_pred = model(proposal)[:, out.shape[1] - 1 :].argmax(-1)
        drafted = proposal[:, out.shape[1] :]
        match = (drafted == target_pred[:, :k]).int().cumprod(-1).sum().item()
        accepted.append(match)
        out = torch.cat([out, drafted[:, :match], target_pred[:, match : match + 1]], 1)
    greedy = prompt
    for _ in range(out.shape[1] - prompt.shape[1]):
        greedy = torch.cat([greedy, model(greedy)[:, -1].argmax(-1, keepdim=True)], 1)
    results["speculative"] = out.tolist()
    results["speculative_accepted"] = accepted
    results["speculative_equals_greedy"] = torch.equal(out, greedy)

report(losses=losses, draft_losses=draft_losses, **results)
