# Attention variants in the shape of the FlexAttention blog / attention-gym examples and
# gpt-fast: score_mod functions (relative-position bias, ALiBi slopes, tanh soft-capping, a
# learned per-head bias captured from a Parameter), mask_mod functions (causal, sliding window,
# document masking by a tensor lookup) combined by and_masks / or_masks into BlockMasks by
# create_block_mask(B=None, H=None, ...), flex_attention with enable_gqa, scale and
# return_lse, each checked against F.scaled_dot_product_attention with the equivalent dense
# mask (bool and additive float, is_causal, enable_gqa=) under sdpa_kernel(SDPBackend.MATH);
# BlockMask introspection; then a small LM trained through SDPA with a sliding-window additive
# mask plus a learned head bias (PyTorch has no CPU backward for flex_attention) and evaluated
# with flex_attention on the same BlockMask. PyTorch's eager flex_attention traces each mod
# with dynamo: its run takes ~13 s, descent's ~3 s.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import (
    and_masks,
    create_block_mask,
    flex_attention,
    or_masks,
)

rng = np.random.default_rng(3)
B, H, H_KV, L, D = 2, 4, 2, 24, 8


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def arr(*shape):
    return torch.from_numpy(rng.standard_normal(shape).astype(np.float32))


q, k, v = arr(B, H, L, D), arr(B, H, L, D), arr(B, H, L, D)
k_gqa, v_gqa = arr(B, H_KV, L, D), arr(B, H_KV, L, D)


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def sliding_window(b, h, q_idx, kv_idx):
    return q_idx - kv_idx <= 5


doc_id = torch.tensor([0] * 7 + [1] * 9 + [2] * 8)


def document(b, h, q_idx, kv_idx):
    return doc_id[q_idx] == doc_id[kv_idx]


def relative_positional(score, b, h, q_idx, kv_idx):
    return score + (q_idx - kv_idx) * 0.05


slopes = torch.tensor([2 ** (-8 * (i + 1) / H) for i in range(H)])


def alibi(score, b, h, q_idx, kv_idx):
    return score - slopes[h] * (q_idx - kv_idx).abs()


def soft_cap(score, b, h, q_idx, kv_idx):
    return 20.0 * torch.tanh(score / 20.0)


def dense(mask_mod, b=B, h=1):
    bi = torch.arange(b).view(-1, 1, 1, 1)
    hi = torch.arange(h).view(1, -1, 1, 1)
    qi = torch.arange(L).view(1, 1, -1, 1)
    ki = torch.arange(L).view(1, 1, 1, -1)
    return mask_mod(bi, hi, qi, ki).expand(b, h, L, L)


results = {}
with sdpa_kernel(SDPBackend.MATH):
    masks = {
        "causal": causal,
        "document_or_window_causal": and_masks(or_masks(document, sliding_window), causal),
    }
    for name, mask_mod in masks.items():
        block_mask = create_block_mask(mask_mod, B=B, H=None, Q_LEN=L, KV_LEN=L, device="cpu")
        out = flex_attention(q, k, v, block_mask=block_mask)
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=dense(mask_mod))
        results[name] = out[0, 1, :4].flatten().tolist()
        results[name + "_matches_sdpa"] = torch.allclose(out, ref, atol=1e-5)
    for name, score_mod in {"relpos": relative_positional, "softcap": soft_cap}.items():
        out = flex_attention(q, k, v, score_mod=score_mod)
        results[name] = out[1, 2, -3:].flatten().tolist()
    # the ALiBi bias as an additive float mask for SDPA
    qi, ki = torch.arange(L).view(-1, 1), torch.arange(L).view(1, -1)
    bias = -slopes.view(H, 1, 1) * (qi - ki).abs()
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    results["alibi_matches_sdpa"] = torch.allclose(flex_attention(q, k, v, score_mod=alibi), ref,
                                                   atol=1e-5)  # fmt: skip
    # GQA, a custom scale, the log-sum-exp
    out, lse = flex_attention(q, k_gqa, v_gqa, enable_gqa=True, scale=0.2, return_lse=True)
    ref = F.scaled_dot_product_attention(q, k_gqa, v_gqa, scale=0.2, enable_gqa=True)
    results["gqa"] = out[0, 3, :2].flatten().tolist()
    results["gqa_matches_sdpa"] = torch.allclose(out, ref, atol=1e-5)
    results["lse"] = lse[1, 0, :6].tolist()
    lse_ref = torch.logsumexp(0.2 * q @ k_gqa.repeat_interleave(H // H_KV, dim=1).transpose(-2, -1),
                              dim=-1)  # fmt: skip
    results["lse_matches"] = torch.allclose(lse, lse_ref, atol=1e-5)
    # SDPA on its own: is_causal vs a bool mask vs a float mask, with dropout off
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    bmask = torch.ones(L, L, dtype=torch.bool).tril()
    fmask = torch.zeros(L, L).masked_fill(~bmask, float("-inf"))
    results["sdpa_causal"] = a[1, 1, -2:].flatten().tolist()
    results["sdpa_bool_eq"] = torch.allclose(a, F.scaled_dot_product_attention(q, k, v, bmask),
                                             atol=1e-6)  # fmt: skip
    results["sdpa_float_eq"] = torch.allclose(a, F.scaled_dot_product_attention(q, k, v, fmask),
                                              atol=1e-6)  # fmt: skip
    # block-mask introspection
    bm = create_block_mask(causal, B=None, H=None, Q_LEN=L, KV_LEN=L, device="cpu",
                           BLOCK_SIZE=8)  # fmt: skip
    results["block_shape"] = list(bm.shape)
    results["block_sparsity"] = bm.sparsity()
    results["block_dense"] = bm.to_dense().flatten().tolist()
    results["kv_num_blocks"] = bm.kv_num_blocks.flatten().tolist()


class FlexBlock(nn.Module):
    """flex_attention at inference (PyTorch has no CPU backward for it); for training, SDPA with
    the same bias and window as an additive float mask."""

    def __init__(self, d=16, heads=4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.proj = nn.Linear(d, d)
        self.norm = nn.RMSNorm(d)
        self.head_bias = nn.Parameter(torch.zeros(heads))

    def forward(self, x, block_mask=None, dense_mask=None):
        b, t, d = x.shape
        qkv = self.qkv(self.norm(x)).view(b, t, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        head_bias = self.head_bias
        if block_mask is not None:

            def score_mod(score, b, h, q_idx, kv_idx):
                return score + head_bias[h]

            y = flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=dense_mask + head_bias.view(1, -1, 1, 1)
            )
        return x + self.proj(y.transpose(1, 2).reshape(b, t, d))


class TinyLM(nn.Module):
    def __init__(self, vocab=20, d=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([FlexBlock(d), FlexBlock(d)])
        self.head = nn.Linear(d, vocab)

    def forward(self, idx, **mask):
        x = self.emb(idx)
        for blk in self.blocks:
            x = blk(x, **mask)
        return self.head(x)


tokens = torch.from_numpy(rng.integers(0, 20, size=(2, L + 1)))
lm = load(TinyLM())
with torch.no_grad():
    lm.blocks[0].head_bias.copy_(torch.tensor([0.5, -0.5, 1.0, 0.0]))
opt = torch.optim.AdamW(lm.parameters(), lr=3e-3, weight_decay=0.01)
window = and_masks(causal, sliding_window)
window_block = create_block_mask(window, B=None, H=None, Q_LEN=L, KV_LEN=L, device="cpu")
window_dense = torch.zeros(1, 1, L, L).masked_fill(~dense(window, b=1), float("-inf"))
losses = []
for step in range(8):
    logits = lm(tokens[:, :-1], dense_mask=window_dense)
    loss = F.cross_entropy(logits.reshape(-1, 20), tokens[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
bias_grad = lm.blocks[0].head_bias.grad.tolist()
with torch.no_grad():
    flex_logits = lm(tokens[:, :-1], block_mask=window_block)
    sdpa_logits = lm(tokens[:, :-1], dense_mask=window_dense)

report(
    **results,
    losses=losses,
    bias_grad=bias_grad,
    ppl=math.exp(losses[-1]),
    flex_logits=flex_logits[0, -2:].flatten().tolist(),
    flex_matches_sdpa=torch.allclose(flex_logits, sdpa_logits, atol=1e-5),
)
