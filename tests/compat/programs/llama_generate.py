# A Llama-style decoder and the generation utilities around it, in the shape of Meta's llama
# reference, HuggingFace's logits processors and nanoGPT's sample loop: RMSNorm, SwiGLU MLP,
# rotary embeddings applied with rotate_half on real tensors (cos/sin caches as buffers),
# grouped-query attention with repeat_interleave of K/V heads, a KV cache grown with torch.cat,
# causal masks from torch.triu(full(-inf), diagonal=1), training with tied embeddings; then
# generation with temperature, top-k (torch.topk + masked_fill), top-p (sort, softmax, cumsum,
# scatter back), repetition penalty with gather/scatter_, and sampling by inverse CDF with
# torch.searchsorted on NumPy uniforms (so both runs pick the same tokens).
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(103)
vocab, dim, n_heads, n_kv_heads, n_layers, max_seq = 16, 16, 4, 2, 2, 24
head_dim = dim // n_heads


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def _norm(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)

    def forward(self, x):
        return self._norm(x.float()).type_as(x) * self.weight


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.wq = nn.Linear(dim, n_heads * head_dim, bias=False)
        self.wk = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.wv = nn.Linear(dim, n_kv_heads * head_dim, bias=False)
        self.wo = nn.Linear(n_heads * head_dim, dim, bias=False)

    def forward(self, x, cos, sin, mask, cache=None):
        bsz, seqlen, _ = x.shape
        xq = self.wq(x).view(bsz, seqlen, n_heads, head_dim).transpose(1, 2)
        xk = self.wk(x).view(bsz, seqlen, n_kv_heads, head_dim).transpose(1, 2)
        xv = self.wv(x).view(bsz, seqlen, n_kv_heads, head_dim).transpose(1, 2)
        xq = xq * cos + rotate_half(xq) * sin
        xk = xk * cos + rotate_half(xk) * sin
        if cache is not None:
            if cache["k"] is not None:
                xk = torch.cat([cache["k"], xk], dim=2)
                xv = torch.cat([cache["v"], xv], dim=2)
            cache["k"], cache["v"] = xk, xv
        keys = torch.repeat_interleave(xk, dim=1, repeats=n_heads // n_kv_heads)
        values = torch.repeat_interleave(xv, dim=1, repeats=n_heads // n_kv_heads)
        scores = torch.matmul(xq, keys.transpose(2, 3)) / math.sqrt(head_dim)
        if mask is not None:
            scores = scores + mask
        scores = F.softmax(scores.float(), dim=-1).type_as(xq)
        output = torch.matmul(scores, values)
        return self.wo(output.transpose(1, 2).contiguous().view(bsz, seqlen, -1))


class FeedForward(nn.Module):
    def __init__(self, hidden=40):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention_norm, self.attention = RMSNorm(dim), Attention()
        self.ffn_norm, self.feed_forward = RMSNorm(dim), FeedForward()

    def forward(self, x, cos, sin, mask, cache=None):
        h = x + self.attention(self.attention_norm(x), cos, sin, mask, cache)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList([Block() for _ in range(n_layers)])
        self.norm = RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)
        self.output.weight = self.tok_embeddings.weight
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        t = torch.arange(max_seq, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos()[None, None], persistent=False)
        self.register_buffer("sin_cached", emb.sin()[None, None], persistent=False)

    def forward(self, tokens, start_pos=0, caches=None):
        _bsz, seqlen = tokens.shape
        h = self.tok_embeddings(tokens)
        cos = self.cos_cached[:, :, start_pos : start_pos + seqlen]
        sin = self.sin_cached[:, :, start_pos : start_pos + seqlen]
        mask = None
        if seqlen > 1:
            mask = torch.full((seqlen, seqlen), float("-inf"))
            mask = torch.triu(mask, diagonal=1)
            mask = torch.hstack([torch.zeros((seqlen, start_pos)), mask])
        for i, layer in enumerate(self.layers):
            h = layer(h, cos, sin, mask, None if caches is None else caches[i])
        return self.output(self.norm(h)).float()


model = Transformer()
W = reference_weights(model)
model.load_state_dict(
    {**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}}, strict=False
)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
text = np.array([(3 * i + i // 5) % vocab for i in range(400)])
losses = []
for step in range(15):
    ix = rng.integers(0, len(text) - 13, 4)
    x = torch.from_numpy(np.stack([text[i : i + 12] for i in ix]))
    y = torch.from_numpy(np.stack([text[i + 1 : i + 13] for i in ix]))
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    losses.append(loss.item())


def top_k_top_p_filtering(logits, top_k=0, top_p=1.0, filter_value=-float("Inf")):
    if top_k > 0:
        indices_to_remove = logits < torch.topk(logits, top_k)[0][..., -1, None]
        logits = logits.masked_fill(indices_to_remove, filter_value)
    if top_p < 1.0:
        sorted_logits, sorted_indices = torch.sort(logits, descending=True)
        cumulative_probs = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        sorted_indices_to_remove = cumulative_probs > top_p
        sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
        sorted_indices_to_remove[..., 0] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(
            1, sorted_indices, sorted_indices_to_remove
        )
        logits = logits.masked_fill(indices_to_remove, filter_value)
    return logits


def repetition_penalty(logits, input_ids, penalty=1.3):
    score = torch.gather(logits, 1, input_ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return logits.scatter(1, input_ids, score)


@torch.no_grad()
def generate(prompt, steps, temperature=0.8, top_k=0, top_p=1.0, use_cache=True):
    model.eval()
    tokens = prompt.clone()
    caches = [{"k": None, "v": None} for _ in range(n_layers)] if use_cache else None
    logits = model(tokens, 0, caches)[:, -1, :]
    picked = []
    for s in range(steps):
        logits = repetition_penalty(logits, tokens) / temperature
        logits = top_k_top_p_filtering(logits, top_k=top_k, top_p=top_p)
        probs = F.softmax(logits, dim=-1)
        cdf = torch.cumsum(probs, dim=-1)
        u = torch.from_numpy(rng.random((tokens.shape[0], 1)).astype(np.float32)) * cdf[:, -1:]
        next_token = torch.searchsorted(cdf, u).clamp(max=vocab - 1)
        tokens = torch.cat((tokens, next_token), dim=1)
        picked.append(probs.gather(1, next_token).squeeze(1).tolist())
        if use_cache:
            logits = model(next_token, tokens.shape[1] - 1, caches)[:, -1, :]
        else:
            logits = model(tokens)[:, -1, :]
    return tokens.tolist(), picked


prompt = torch.tensor([[1, 4, 7], [3, 6, 9]])
cached = generate(prompt, 6, top_k=5)
with torch.no_grad():
    full = model(torch.tensor([[1, 4, 7, 10, 13]]))[:, -1]
    caches = [{"k": None, "v": None} for _ in range(n_layers)]
    model(torch.tensor([[1, 4, 7, 10]]), 0, caches)
    step = model(torch.tensor([[13]]), 4, caches)[:, -1]
report(
    losses=losses,
    cached=cached,
    nucleus=generate(prompt, 5, temperature=1.2, top_p=0.7),
    no_cache=generate(prompt, 4, top_k=3, use_cache=False),
    cache_consistent=torch.allclose(full, step, atol=1e-5),
    tied=model.output.weight is model.tok_embeddings.weight,
    n_params=sum(p.numel() for p in model.parameters()),
)
