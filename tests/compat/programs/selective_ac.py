# torchtitan's selective activation checkpointing (its "op" SAC mode): every transformer block
# is checkpointed with use_reentrant=False and a policy that saves every other matrix product
# (and attention / max / reduce-scatter, when they appear) and recomputes the rest; the loop
# then trains a tiny Llama-style model. Also the per-layer mode (every second block
# checkpointed fully) and a list-of-ops policy. Our own program, after torchtitan's
# apply_ac/_apply_op_sac; data made with NumPy.
from collections import defaultdict
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.utils.checkpoint import (
    CheckpointPolicy,
    checkpoint,
    create_selective_checkpoint_contexts,
)

_save_list = {
    torch.ops.aten.mm.default,
    torch.ops.aten._scaled_dot_product_efficient_attention.default,
    torch.ops.aten._scaled_dot_product_flash_attention.default,
    torch.ops._c10d_functional.reduce_scatter_tensor.default,
    torch.ops.aten.max.default,
}


def _get_custom_policy(meta):
    def _custom_policy(ctx, func, *args, **kwargs):
        mode = "recompute" if ctx.is_recompute else "forward"
        mm_count_key = f"{mode}_mm_count"
        if func == torch.ops.aten.mm.default:
            meta[mm_count_key] += 1
        # saves output of all compute ops, except every second mm
        to_save = func in _save_list and not (
            func == torch.ops.aten.mm.default and meta[mm_count_key] % 2 == 0
        )
        return CheckpointPolicy.MUST_SAVE if to_save else CheckpointPolicy.PREFER_RECOMPUTE

    return _custom_policy


def selective_checkpointing_context_fn():
    meta = defaultdict(int)
    return create_selective_checkpoint_contexts(_get_custom_policy(meta))


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.attention_norm, self.ffn_norm = RMSNorm(dim), RMSNorm(dim)
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, dim, bias=False)
        self.wv = nn.Linear(dim, dim, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)
        self.w1 = nn.Linear(dim, 2 * dim, bias=False)
        self.w2 = nn.Linear(2 * dim, dim, bias=False)
        self.w3 = nn.Linear(dim, 2 * dim, bias=False)

    def forward(self, x):
        b, t, d = x.shape
        h = self.attention_norm(x)
        q, k, v = (w(h).view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for w in (self.wq, self.wk, self.wv))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.wo(a.transpose(1, 2).reshape(b, t, d))
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class CheckpointWrapper(nn.Module):
    def __init__(self, module, context_fn=None):
        super().__init__()
        self.module = module
        self.context_fn = context_fn

    def forward(self, x):
        if self.context_fn is None:
            return checkpoint(self.module, x, use_reentrant=False)
        return checkpoint(self.module, x, use_reentrant=False, context_fn=self.context_fn)


class Model(nn.Module):
    def __init__(self, vocab, dim, heads, layers, mode):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        blocks = []
        for i in range(layers):
            blk = Block(dim, heads)
            if mode == "op":
                blk = CheckpointWrapper(blk, selective_checkpointing_context_fn)
            elif mode == "layer" and i % 2 == 0:
                blk = CheckpointWrapper(blk)
            elif mode == "list":
                blk = CheckpointWrapper(blk, partial(create_selective_checkpoint_contexts,
                                                     [torch.ops.aten.mm.default]))
            blocks.append(blk)
        self.layers = nn.ModuleList(blocks)
        self.norm = RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)

    def forward(self, idx):
        x = self.tok(idx)
        for blk in self.layers:
            x = blk(x)
        return self.output(self.norm(x))


rng = np.random.default_rng(0)
V, D, H, L, T, B = 17, 16, 2, 3, 8, 4
data = torch.from_numpy(rng.integers(0, V, size=(6, B, T + 1)).astype(np.int64))
out = {}
for mode in ("none", "op", "layer", "list"):
    model = Model(V, D, H, L, mode)
    W = reference_weights(Model(V, D, H, L, "none"))
    with torch.no_grad():
        for (n, p), w in zip(model.named_parameters(), W.values()):
            p.copy_(torch.from_numpy(w))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for step in range(data.shape[0]):
        xb, yb = data[step, :, :-1], data[step, :, 1:]
        loss = F.cross_entropy(model(xb).reshape(-1, V), yb.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    out[f"{mode}_losses"] = losses
    out[f"{mode}_grad_norm"] = float(
        torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    )

# what the policy is shown: the products of one block's forward (the wq..w3 projections)
seen = defaultdict(int)


def counting_policy(ctx, func, *args, **kwargs):
    seen[str(func)] += 1
    return CheckpointPolicy.PREFER_RECOMPUTE


blk = Block(D, H)
x = torch.from_numpy(rng.standard_normal((B, T, D)).astype(np.float32)).requires_grad_()
y = checkpoint(blk, x, use_reentrant=False,
               context_fn=partial(create_selective_checkpoint_contexts, counting_policy))
y.sum().backward()
out["mm_seen"] = seen["aten.mm.default"]
out["same_losses"] = bool(np.allclose(out["none_losses"], out["op_losses"], rtol=1e-6))
report(**out)
