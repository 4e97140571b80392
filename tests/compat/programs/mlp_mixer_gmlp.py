# All-MLP vision and language models as lucidrains' and the papers' reference code write them (our
# own condensed rewrite): MLP-Mixer with token mixing by transposing to (B, C, N) or by
# nn.Conv1d(kernel_size=1) over patches (the "chan_first" partial), PreNormResidual wrappers,
# patches by Tensor.unfold twice + permute + reshape (checked against F.unfold), ResMLP's Affine
# layer (alpha, beta Parameters) with LayerScale initialised at 0.1, gMLP's spatial gating unit
# (x.chunk(2, dim=-1), a token-wise nn.Conv1d with weights init to near zero by uniform_ with a
# NumPy-copied value and a bias of ones, causal masking of its weight by torch.ones(n, n).triu_(1)
# .bool() and masked_fill), gMLP's tiny attention (aMLP) added to the gate, a causal gMLP
# language model trained by cross_entropy on shifted tokens; Adam with a LinearLR warmup
# chained into CosineAnnealingLR by SequentialLR; parameters counted per module type.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2195)


class PreNormResidual(nn.Module):
    def __init__(self, dim, fn):
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.fn(self.norm(x)) + x


def FeedForward(dim, expansion_factor=4, dropout=0.0, dense=nn.Linear):
    inner_dim = int(dim * expansion_factor)
    return nn.Sequential(
        dense(dim, inner_dim),
        nn.GELU(),
        nn.Dropout(dropout),
        dense(inner_dim, dim),
        nn.Dropout(dropout),
    )


class Patchify(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, img):
        b, c, h, w = img.shape
        patches = img.unfold(2, self.p, self.p).unfold(3, self.p, self.p)  # b c h' w' p p
        patches = patches.permute(0, 2, 3, 4, 5, 1).reshape(b, (h // self.p) * (w // self.p), -1)
        return patches


def MLPMixer(
    *,
    image_size,
    channels,
    patch_size,
    dim,
    depth,
    num_classes,
    expansion_factor=4,
    expansion_factor_token=0.5,
):
    num_patches = (image_size // patch_size) ** 2
    chan_first, chan_last = lambda i, o: nn.Conv1d(i, o, kernel_size=1), nn.Linear
    return nn.Sequential(
        Patchify(patch_size),
        nn.Linear((patch_size**2) * channels, dim),
        *[
            nn.Sequential(
                PreNormResidual(dim, FeedForward(num_patches, expansion_factor, 0.0, chan_first)),
                PreNormResidual(dim, FeedForward(dim, expansion_factor_token, 0.0, chan_last)),
            )
            for _ in range(depth)
        ],
        nn.LayerNorm(dim),
        Reduce(),
        nn.Linear(dim, num_classes),
    )


class Reduce(nn.Module):
    def forward(self, x):
        return x.mean(dim=1)


class Affine(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.g = nn.Parameter(torch.ones(1, 1, dim))
        self.b = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x):
        return x * self.g + self.b


class ResMLPBlock(nn.Module):
    def __init__(self, dim, num_patches, init_values=0.1):
        super().__init__()
        self.norm1 = Affine(dim)
        self.attn = nn.Linear(num_patches, num_patches)
        self.norm2 = Affine(dim)
        self.mlp = FeedForward(dim, 2)
        self.gamma_1 = nn.Parameter(init_values * torch.ones((dim,)), requires_grad=True)
        self.gamma_2 = nn.Parameter(init_values * torch.ones((dim,)), requires_grad=True)

    def forward(self, x):
        x = x + self.gamma_1 * self.attn(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        x = x + self.gamma_2 * self.mlp(self.norm2(x))
        return x


class SpatialGatingUnit(nn.Module):
    def __init__(self, dim, dim_seq, causal=False, init_eps=1e-3):
        super().__init__()
        dim_out = dim // 2
        self.causal = causal
        self.norm = nn.LayerNorm(dim_out)
        self.proj = nn.Conv1d(dim_seq, dim_seq, 1)
        init_eps /= dim_seq
        nn.init.uniform_(self.proj.weight, -init_eps, init_eps)
        nn.init.constant_(self.proj.bias, 1.0)

    def forward(self, x, gate_res=None):
        n = x.shape[1]
        res, gate = x.chunk(2, dim=-1)
        gate = self.norm(gate)
        weight, bias = self.proj.weight, self.proj.bias
        if self.causal:
            weight, bias = weight[:n, :n], bias[:n]
            mask = torch.ones(weight.shape[:2], device=x.device).triu_(1).bool()
            weight = weight.masked_fill(mask[..., None], 0.0)
        gate = F.conv1d(gate, weight, bias)
        if gate_res is not None:
            gate = gate + gate_res
        return gate * res


class TinyAttention(nn.Module):
    def __init__(self, dim_in, dim_out, dim_inner, causal=False):
        super().__init__()
        self.scale = dim_inner**-0.5
        self.causal = causal
        self.to_qkv = nn.Linear(dim_in, dim_inner * 3, bias=False)
        self.to_out = nn.Linear(dim_inner, dim_out)

    def forward(self, x):
        q, k, v = self.to_qkv(x).chunk(3, dim=-1)
        sim = torch.einsum("b i d, b j d -> b i j", q, k) * self.scale
        if self.causal:
            mask = torch.ones(sim.shape[-2:], device=x.device).triu(1).bool()
            sim = sim.masked_fill(mask[None, ...], -torch.finfo(q.dtype).max)
        attn = sim.softmax(dim=-1)
        return self.to_out(torch.einsum("b i j, b j d -> b i d", attn, v))


class gMLPBlock(nn.Module):
    def __init__(self, dim, dim_ff, seq_len, attn_dim=None, causal=False):
        super().__init__()
        self.proj_in = nn.Sequential(nn.Linear(dim, dim_ff), nn.GELU())
        self.attn = (
            TinyAttention(dim, dim_ff // 2, attn_dim, causal) if attn_dim is not None else None
        )
        self.sgu = SpatialGatingUnit(dim_ff, seq_len, causal)
        self.proj_out = nn.Linear(dim_ff // 2, dim)

    def forward(self, x):
        gate_res = self.attn(x) if self.attn is not None else None
        return self.proj_out(self.sgu(self.proj_in(x), gate_res=gate_res))


class gMLPLM(nn.Module):
    def __init__(self, num_tokens, dim, depth, seq_len, attn_dim=8):
        super().__init__()
        self.to_embed = nn.Embedding(num_tokens, dim)
        self.layers = nn.ModuleList(
            [
                PreNormResidual(dim, gMLPBlock(dim, dim * 4, seq_len, attn_dim, causal=True))
                for _ in range(depth)
            ]
        )
        self.to_logits = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_tokens))

    def forward(self, x):
        x = self.to_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.to_logits(x)


def load(model, keep=()):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not any(k in name for k in keep):
                p.copy_(torch.from_numpy(W[name]))


imgs = torch.from_numpy(rng.standard_normal((16, 3, 16, 16)).astype(np.float32))
labels = torch.from_numpy(rng.integers(0, 4, 16))
unf = F.unfold(imgs[:2], 4, stride=4)  # (b, c*p*p, L): channel-major inside a patch
mine = Patchify(4)(imgs[:2]).view(2, 16, 4, 4, 3).permute(0, 4, 2, 3, 1).reshape(2, 48, 16)
unfold_match = bool(torch.allclose(unf, mine))

mixer = MLPMixer(image_size=16, channels=3, patch_size=4, dim=16, depth=2, num_classes=4)
resmlp = nn.Sequential(
    Patchify(4),
    nn.Linear(48, 16),
    ResMLPBlock(16, 16),
    ResMLPBlock(16, 16),
    Affine(16),
    Reduce(),
    nn.Linear(16, 4),
)
load(mixer)
load(resmlp, keep=("gamma",))
results = {}
for name, model in [("mixer", mixer), ("resmlp", resmlp)]:
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.SequentialLR(
        opt,
        [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=2),
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4),
        ],
        milestones=[2],
    )
    ls = []
    for step in range(6):
        i = slice((step % 2) * 8, (step % 2) * 8 + 8)
        loss = F.cross_entropy(model(imgs[i]), labels[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        ls.append(loss.item())
    results[name] = ls
    results[name + "_lr"] = sched.get_last_lr()

seq_len, vocab = 12, 20
lm = gMLPLM(vocab, 16, 2, seq_len)
W = reference_weights(lm)
with torch.no_grad():
    for name, p in lm.named_parameters():
        if "sgu.proj" in name:
            continue  # keep the near-identity init's shape, values from NumPy below
        p.copy_(torch.from_numpy(W[name]))
    for blk in lm.layers:
        blk.fn.sgu.proj.weight.copy_(
            torch.from_numpy(
                rng.uniform(-1e-3, 1e-3, (seq_len, seq_len, 1)).astype(np.float32) / seq_len
            )
        )
toks = torch.from_numpy(rng.integers(0, vocab, (8, seq_len + 1)))
opt = torch.optim.Adam(lm.parameters(), lr=3e-3)
lm_losses = []
for step in range(6):
    logits = lm(toks[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, vocab), toks[:, 1:].reshape(-1))
    opt.zero_grad()
    loss.backward()
    opt.step()
    lm_losses.append(loss.item())
# causality: changing a future token leaves earlier logits unchanged
with torch.no_grad():
    a = lm(toks[:1, :-1])
    t2 = toks[:1, :-1].clone()
    t2[0, 8] = (t2[0, 8] + 1) % vocab
    b = lm(t2)
causal_ok = bool(torch.equal(a[:, :8], b[:, :8])) and not bool(torch.equal(a[:, 8:], b[:, 8:]))
counts = {}
for m in mixer.modules():
    if isinstance(m, (nn.Linear, nn.Conv1d, nn.LayerNorm)):
        counts[type(m).__name__] = counts.get(type(m).__name__, 0) + sum(
            p.numel() for p in m.parameters(recurse=False)
        )

report(
    unfold_match=unfold_match, lm_losses=lm_losses, causal_ok=causal_ok, counts=counts, **results
)
