# Grokking on modular arithmetic (Power et al. 2022; Nanda et al.'s progress measures) as the
# reproductions write it: every pair (a, b) of Z_p with an "=" token, a one-layer
# attention-only-plus-MLP transformer with learned positional embeddings and no LayerNorm,
# hooks caching activations by name (register_forward_hook into a dict), AdamW with weight
# decay 1.0 and betas (0.9, 0.98) under a linear-warmup LambdaLR, full-batch training on a
# random 40% split, train / test loss and accuracy, the parameter norm; then the mechanistic
# checks: the embedding's discrete Fourier spectrum (torch.fft.fft over the token axis, the
# key frequencies by topk of the norm), and the logits restricted to those frequencies.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

p = 13
d_model, n_heads, d_mlp = 32, 4, 64
rng = np.random.default_rng(0)
pairs = np.array([(a, b, p) for a in range(p) for b in range(p)])
labels = (pairs[:, 0] + pairs[:, 1]) % p
perm = rng.permutation(len(pairs))
cut = int(0.4 * len(pairs))
train_idx, test_idx = perm[:cut], perm[cut:]
x_all = torch.from_numpy(pairs).long()
y_all = torch.from_numpy(labels).long()


class HookPoint(nn.Module):
    def forward(self, x):
        return x


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.d_head = d_model // n_heads
        self.W_Q = nn.Parameter(torch.empty(n_heads, self.d_head, d_model))
        self.W_K = nn.Parameter(torch.empty(n_heads, self.d_head, d_model))
        self.W_V = nn.Parameter(torch.empty(n_heads, self.d_head, d_model))
        self.W_O = nn.Parameter(torch.empty(d_model, self.d_head * n_heads))
        self.register_buffer("mask", torch.tril(torch.ones((3, 3))))
        self.hook_attn = HookPoint()

    def forward(self, x):
        k = torch.einsum("ihd,bpd->biph", self.W_K, x)
        q = torch.einsum("ihd,bpd->biph", self.W_Q, x)
        v = torch.einsum("ihd,bpd->biph", self.W_V, x)
        scores = torch.einsum("biph,biqh->biqp", k, q)
        scores = torch.tril(scores) - 1e10 * (1 - self.mask)
        attn = self.hook_attn(F.softmax(scores / math.sqrt(self.d_head), dim=-1))
        z = torch.einsum("biph,biqp->biqh", v, attn)
        z_flat = z.permute(0, 2, 1, 3).reshape(x.shape[0], 3, -1)
        return torch.einsum("df,bqf->bqd", self.W_O, z_flat)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_in = nn.Parameter(torch.empty(d_mlp, d_model))
        self.b_in = nn.Parameter(torch.zeros(d_mlp))
        self.W_out = nn.Parameter(torch.empty(d_model, d_mlp))
        self.b_out = nn.Parameter(torch.zeros(d_model))
        self.hook_post = HookPoint()

    def forward(self, x):
        x = self.hook_post(F.relu(torch.einsum("md,bpd->bpm", self.W_in, x) + self.b_in))
        return torch.einsum("dm,bpm->bpd", self.W_out, x) + self.b_out


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(d_model, p + 1))
        self.W_pos = nn.Parameter(torch.empty(3, d_model))
        self.attn = Attention()
        self.mlp = MLP()
        self.W_U = nn.Parameter(torch.empty(d_model, p))

    def forward(self, x):
        h = torch.einsum("dbp->bpd", self.W_E[:, x]) + self.W_pos
        h = h + self.attn(h)
        h = h + self.mlp(h)
        return h @ self.W_U


model = Transformer()
W = reference_weights(model)
with torch.no_grad():
    for n, prm in model.named_parameters():
        prm.copy_(torch.from_numpy(W[n]))

cache = {}


def save_hook(name):
    def hook(module, inputs, output):
        cache[name] = output.detach()

    return hook


for name, module in model.named_modules():
    if isinstance(module, HookPoint):
        module.register_forward_hook(save_hook(name))

optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1.0, betas=(0.9, 0.98))
scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(step / 5, 1))


def loss_fn(logits, labels):
    logits = logits[:, -1].to(torch.float64)
    log_probs = logits.log_softmax(dim=-1)
    return -log_probs.gather(-1, labels[:, None])[:, 0].mean()


results = {"train_losses": [], "test_losses": [], "train_acc": [], "test_acc": [], "norms": []}
for epoch in range(20):
    train_logits = model(x_all[train_idx])
    train_loss = loss_fn(train_logits, y_all[train_idx])
    train_loss.backward()
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()
    with torch.inference_mode():
        test_logits = model(x_all[test_idx])
        test_loss = loss_fn(test_logits, y_all[test_idx])
    results["train_losses"].append(train_loss.item())
    results["test_losses"].append(test_loss.item())
    results["train_acc"].append(
        (train_logits[:, -1].argmax(-1) == y_all[train_idx]).float().mean().item()
    )
    results["test_acc"].append(
        (test_logits[:, -1].argmax(-1) == y_all[test_idx]).float().mean().item()
    )
    results["norms"].append(
        torch.sqrt(sum(prm.detach().pow(2).sum() for prm in model.parameters())).item()
    )

results["cache_keys"] = sorted(cache)
results["attn_last_row"] = cache["attn.hook_attn"][0, :, -1].flatten().tolist()
results["mlp_active_frac"] = (cache["mlp.hook_post"] > 0).float().mean().item()

# Fourier analysis of the token embeddings
with torch.no_grad():
    W_E = model.W_E[:, :p]  # (d_model, p)
    spectrum = torch.fft.fft(W_E, dim=1)
    freq_norm = spectrum.abs().pow(2).sum(0)[1 : p // 2 + 1]
    results["freq_norm"] = freq_norm.tolist()
    key = torch.topk(freq_norm, 2).indices + 1
    results["key_freqs"] = key.tolist()
    k = torch.arange(p, dtype=torch.float32)
    basis = [torch.ones(p) / math.sqrt(p)]
    for f in key.tolist():
        basis += [torch.cos(2 * math.pi * f * k / p), torch.sin(2 * math.pi * f * k / p)]
    B = torch.stack(basis)
    B = B / B.norm(dim=1, keepdim=True)
    logits = model(x_all)[:, -1].reshape(p, p, p)
    proj = torch.einsum("abc,ic,jc->abij", logits, B, B)
    restricted = torch.einsum("abij,jc->abc", proj, B)
    results["restricted_loss"] = F.cross_entropy(restricted.reshape(-1, p), y_all).item()
    results["fourier_energy"] = (proj.pow(2).sum() / logits.pow(2).sum()).item()
report(**results)
