# Parameter-efficient fine-tuning written by hand, as the PEFT papers' minimal code does: a
# small causal Transformer LM pre-trained a few steps, then frozen (requires_grad_(False));
# prompt tuning (a soft-prompt Parameter concatenated in front of the embeddings, loss on the
# real positions only), prefix tuning (per-layer key/value prefixes through a reparametrising
# MLP into a hand-written attention with F.scaled_dot_product_attention and a padded causal
# mask), bottleneck adapters inserted by forward hooks that return a modified output, BitFit
# (biases only, selected by name), IA3 scaling vectors; trainable-parameter counts and that the
# frozen weights did not move.
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

V, D, Hh, T = 16, 16, 2, 10
rng = np.random.default_rng(19)
seq = np.array([[(s + 3 * i) % V for i in range(T + 1)] for s in range(V)])
data = torch.from_numpy(seq)
task = torch.from_numpy(np.array([[(s + 5 * i) % V for i in range(T + 1)] for s in range(V)]))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D)
        self.mlp = nn.Sequential(nn.Linear(D, 2 * D), nn.GELU(), nn.Linear(2 * D, D))
        self.ia3 = None

    def forward(self, x, prefix=None):
        B, L, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(D, dim=-1)
        q, k, v = (t.view(B, L, Hh, D // Hh).transpose(1, 2) for t in (q, k, v))
        mask = torch.ones(L, L, dtype=torch.bool).tril()
        if prefix is not None:
            pk, pv = prefix  # (B, H, P, hd)
            k, v = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
            mask = torch.cat([torch.ones(L, pk.shape[2], dtype=torch.bool), mask], 1)
        if self.ia3 is not None:
            v = v * self.ia3.view(1, Hh, 1, D // Hh)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(y.transpose(1, 2).reshape(B, L, D))
        return x + self.mlp(self.ln2(x))


class LM(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(V, D)
        self.pos = nn.Parameter(torch.zeros(1, 32, D))
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(D, V)

    def forward(self, idx, soft_prompt=None, prefixes=None):
        x = self.tok(idx)
        if soft_prompt is not None:
            x = torch.cat([soft_prompt.expand(idx.shape[0], -1, -1), x], 1)
        x = x + self.pos[:, : x.shape[1]]
        for i, blk in enumerate(self.blocks):
            x = blk(x, None if prefixes is None else prefixes[i])
        return self.head(x)


def lm_loss(logits, tgt, skip=0):
    return F.cross_entropy(logits[:, skip:].reshape(-1, V), tgt.reshape(-1))


base = LM()
W = reference_weights(base)
with torch.no_grad():
    for n, p in base.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.AdamW(base.parameters(), lr=3e-3)
pre = []
for _ in range(4):
    loss = lm_loss(base(data[:, :-1]), data[:, 1:])
    opt.zero_grad()
    loss.backward()
    opt.step()
    pre.append(loss.item())
frozen_state = copy.deepcopy(base.state_dict())


def fine_tune(model, params, steps=4, lr=1e-2, **fwd):
    opt = torch.optim.Adam(params, lr=lr)
    out = []
    for _ in range(steps):
        kw = {k: (v() if callable(v) else v) for k, v in fwd.items()}
        skip = kw["soft_prompt"].shape[1] if "soft_prompt" in kw else 0
        loss = lm_loss(model(task[:, :-1], **kw), task[:, 1:], skip)
        opt.zero_grad()
        loss.backward()
        opt.step()
        out.append(loss.item())
    return out


results = {}
# prompt tuning
m = copy.deepcopy(base).requires_grad_(False)
prompt = nn.Parameter(m.tok.weight[:4].detach().clone().unsqueeze(0))
results["prompt"] = fine_tune(m, [prompt], soft_prompt=prompt)

# prefix tuning with a reparametrisation MLP
m = copy.deepcopy(base).requires_grad_(False)
P = 3
prefix_emb = nn.Parameter(torch.from_numpy(rng.standard_normal((P, D)).astype(np.float32)) * 0.1)
reparam = nn.Sequential(nn.Linear(D, 32), nn.Tanh(), nn.Linear(32, 2 * 2 * D))
Wr = reference_weights(reparam)
with torch.no_grad():
    for n, p in reparam.named_parameters():
        p.copy_(torch.from_numpy(Wr[n]))


def make_prefixes():
    kv = (
        reparam(prefix_emb).view(P, 2, 2, Hh, D // Hh).permute(1, 2, 3, 0, 4)
    )  # (layer, k/v, H, P, hd)
    B = task.shape[0]
    return [(kv[i, 0].expand(B, -1, -1, -1), kv[i, 1].expand(B, -1, -1, -1)) for i in range(2)]


results["prefix"] = fine_tune(m, [prefix_emb, *reparam.parameters()], prefixes=make_prefixes)

# adapters through forward hooks
m = copy.deepcopy(base).requires_grad_(False)
adapters = nn.ModuleList()
handles = []
for blk in m.blocks:
    ad = nn.Sequential(nn.Linear(D, 4), nn.ReLU(), nn.Linear(4, D))
    with torch.no_grad():
        ad[0].weight.copy_(torch.from_numpy(reference_weights(ad)["0.weight"]))
        ad[0].bias.zero_()
        ad[2].weight.zero_()
        ad[2].bias.zero_()
    adapters.append(ad)
    handles.append(blk.mlp.register_forward_hook(lambda mod, inp, out, ad=ad: out + ad(out)))
zero_init_same = torch.allclose(m(task[:, :-1]), base(task[:, :-1]))
results["adapter"] = fine_tune(m, adapters.parameters())
for h in handles:
    h.remove()

# BitFit
m = copy.deepcopy(base)
for n, p in m.named_parameters():
    p.requires_grad_(n.endswith("bias"))
bitfit_params = [p for p in m.parameters() if p.requires_grad]
results["bitfit"] = fine_tune(m, bitfit_params)

# IA3 on values
m = copy.deepcopy(base).requires_grad_(False)
for blk in m.blocks:
    blk.ia3 = nn.Parameter(torch.ones(D))
results["ia3"] = fine_tune(m, [blk.ia3 for blk in m.blocks], lr=5e-2)

report(
    pre=pre,
    **results,
    zero_init_same=bool(zero_init_same),
    n_bitfit=sum(p.numel() for p in bitfit_params),
    n_prefix=prefix_emb.numel() + sum(p.numel() for p in reparam.parameters()),
    base_untouched=all(torch.equal(frozen_state[k], v) for k, v in base.state_dict().items()),
    trainable_ia3=sum(p.numel() for p in m.parameters() if p.requires_grad),
)
