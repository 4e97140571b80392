# A tiny Vision Transformer in the shape of timm's and of the "ViT from scratch" tutorials, and the
# model tools people run on it: patch embedding by a strided Conv2d (flatten(2).transpose(1, 2)),
# a cls token and position embedding as nn.Parameters initialised with nn.init.trunc_normal_,
# attention through F.scaled_dot_product_attention and a manual einsum path compared with it,
# GELU(approximate="tanh"), LayerScale, DropPath (identity in eval, its random mask reported by
# structure), RMSNorm, AdamW with OneCycleLR; forward hooks collecting activations, a full
# backward hook, torch.nn.utils.prune (l1_unstructured, global_unstructured, remove),
# parameters_to_vector / vector_to_parameters, and a PixelShuffle decoder head.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from compat_helpers import reference_weights, report
from torch.nn.utils import parameters_to_vector, vector_to_parameters

rng = np.random.default_rng(43)
img, patch, dim, heads, depth, n_cls = 8, 4, 16, 2, 2, 3


def drop_path(x, drop_prob: float = 0.0, training: bool = False):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    random_tensor = keep_prob + torch.rand(shape, dtype=x.dtype, device=x.device)
    random_tensor.floor_()
    return x.div(keep_prob) * random_tensor


class DropPath(nn.Module):
    def __init__(self, drop_prob=None):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)


class LayerScale(nn.Module):
    def __init__(self, dim, init_values=1e-1):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.fused_attn = True

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0)
        else:
            attn = torch.einsum("bhqd,bhkd->bhqk", q * self.scale, k)
            attn = attn.softmax(dim=-1)
            x = torch.einsum("bhqk,bhkd->bhqd", attn, v)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim, num_heads, drop_path=0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim)
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.RMSNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(approximate="tanh"), nn.Linear(2 * dim, dim)
        )
        self.ls2 = LayerScale(dim)
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path1(self.ls1(self.attn(self.norm1(x))))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))


class ViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)
        num_patches = (img // patch) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, n_cls)
        self.decoder = nn.Sequential(nn.Conv2d(dim, 4, 1), nn.PixelShuffle(2))

    def forward_features(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, N, D)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        x = x + self.pos_embed
        return self.norm(self.blocks(x))

    def forward(self, x):
        feats = self.forward_features(x)
        B = feats.shape[0]
        side = img // patch
        grid = feats[:, 1:].transpose(1, 2).reshape(B, dim, side, side)
        return self.head(feats[:, 0]), self.decoder(grid)


model = ViT()
# trunc_normal_'s bounds a=-2, b=2 are absolute (timm's std=0.02 call truncates nowhere near
# them); the unseeded draw is checked by what holds for any draw: the bounds and the spread.
# (It checked |x| <= 0.04 = 2 std, which 80 draws all meet only ~2% of the time: flaky.)
trunc_ok = bool(model.pos_embed.abs().max() <= 2.0) and 0.005 < float(model.pos_embed.std()) < 0.05
random_drop = drop_path(torch.ones(4, 2), 0.5, training=True).tolist()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
for blk in model.blocks:  # stochastic depth off in training, so the runs agree
    blk.drop_path1.drop_prob = blk.drop_path2.drop_prob = 0.0

activations = {}


def get_activation(name):
    def hook(module, inputs, output):
        activations[name] = output.detach()

    return hook


handles = [
    blk.attn.register_forward_hook(get_activation(f"attn{i}")) for i, blk in enumerate(model.blocks)
]
grad_norms = []
bh = model.head.register_full_backward_hook(
    lambda m, grad_input, grad_output: grad_norms.append(grad_output[0].norm().item())
)

x = torch.from_numpy(rng.standard_normal((6, 1, img, img)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, n_cls, 6))
target_img = torch.from_numpy(rng.standard_normal((6, 1, img // 2, img // 2)).astype(np.float32))
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
scheduler = torch.optim.lr_scheduler.OneCycleLR(
    optimizer, max_lr=3e-3, total_steps=10, pct_start=0.3
)
losses, lrs = [], []
for step in range(10):
    logits, recon = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=0.1) + F.mse_loss(recon, target_img)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())
    lrs.append(scheduler.get_last_lr()[0])
for h in handles:
    h.remove()
bh.remove()
# The key bias is redundant: it adds q . b_k to every score of a query's row, which the softmax
# ignores, so its gradient is 0 up to rounding (2e-10 in float32, 1e-18 in float64) and AdamW
# turns that rounding into steps whose size and sign are rounding's (its entries ended 4.5e-4
# apart between two float32 runs). BEiT leaves it out; here it is zeroed before the parameters
# are compared and summed.
with torch.no_grad():
    for blk in model.blocks:
        blk.attn.qkv.bias[dim : 2 * dim].zero_()

model.eval()
with torch.no_grad():
    fused, _ = model(x)
    for blk in model.blocks:
        blk.attn.fused_attn = False
    manual, _ = model(x)
sdpa_matches_einsum = bool(torch.allclose(fused, manual, atol=1e-5))

# pruning: one layer by L1 magnitude, then 40% globally over the MLPs, then made permanent
prune.l1_unstructured(model.head, name="weight", amount=0.3)
head_mask = model.head.weight_mask.clone()
pruned_names = sorted(n for n, _ in model.head.named_buffers())
params_to_prune = [(blk.mlp[0], "weight") for blk in model.blocks] + [
    (blk.mlp[2], "weight") for blk in model.blocks
]
prune.global_unstructured(params_to_prune, pruning_method=prune.L1Unstructured, amount=0.4)
sparsity = [float((m.weight == 0).sum()) / m.weight.nelement() for m, _ in params_to_prune]
for m, name in params_to_prune + [(model.head, "weight")]:
    prune.remove(m, name)
with torch.no_grad():
    pruned_logits, _ = model(x)

vec = parameters_to_vector(model.parameters())
vector_to_parameters(vec * 0.5, model.parameters())
report(
    trunc_ok=trunc_ok,
    random_drop=random_drop,
    losses=losses,
    lrs=lrs,
    grad_norms=grad_norms,
    act_shapes=[list(activations[k].shape) for k in sorted(activations)],
    act_means=[activations[k].mean().item() for k in sorted(activations)],
    sdpa_matches_einsum=sdpa_matches_einsum,
    head_mask_zeros=int((head_mask == 0).sum()),
    pruned_names=pruned_names,
    sparsity=sparsity,
    pruned_logits=pruned_logits.tolist(),
    names_after_remove=sorted(n for n, _ in model.head.named_parameters()),
    vec_numel=vec.numel(),
    vec_sum=vec.sum().item(),
    halved=model.head.bias.tolist(),
)
