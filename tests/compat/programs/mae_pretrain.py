# A tiny masked autoencoder in the shape of facebookresearch/mae's models_mae.py, util/pos_embed.py
# and engine_pretrain.py (our own rewrite), and a DiT block in the shape of facebookresearch/DiT's
# models.py: 2-D sin-cos position embeddings built with NumPy and copied into frozen Parameters
# through .data.copy_(torch.from_numpy(...).float()), xavier_uniform_ on a conv weight's .view,
# patchify / unpatchify by reshape(shape=...) and einsum, random masking by noise + argsort +
# gather (the noise from NumPy as in Hugging Face's ViTMAE, or a seeded torch.rand), mask tokens by
# repeat and cat, the normalised-pixel loss averaged over masked patches, gradient accumulation
# with a per-iteration half-cycle cosine lr written into the param groups; DiT's timestep embedding,
# label embedder with classifier-free-guidance dropout by torch.where, adaLN-Zero modulation
# (chunk(6) / chunk(2)), zero-initialised modulation layers, forward_with_cfg by torch.split;
# main_finetune.py's start: torch.save / torch.load of the checkpoint, interpolate_pos_embed
# (bicubic), a ViT whose norm is `del`eted for global pooling, load_state_dict(strict=False) and
# its missing keys, layer-wise lr decay groups (lr_scale) and misc.SmoothedValue (median of a
# deque as a tensor); main_linprobe.py's frozen encoder under a non-affine BatchNorm1d head and
# util/lars.py's LARS (a torch.optim.Optimizer subclass: nested torch.where trust ratio, state
# by zeros_like(memory_format=torch.preserve_format)); timm's torch._assert shape checks.
# Data: 16x16 RGB blobs made with NumPy.
import math
from collections import deque

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report


# util/pos_embed.py
def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    """grid_size: int of the grid height and width; return (grid_size*grid_size [+1], embed_dim)"""
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0)

    grid = grid.reshape([2, 1, grid_size, grid_size])
    pos_embed = get_2d_sincos_pos_embed_from_grid(embed_dim, grid)
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed


def get_2d_sincos_pos_embed_from_grid(embed_dim, grid):
    assert embed_dim % 2 == 0
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # (H*W, D/2)
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])  # (H*W, D/2)
    emb = np.concatenate([emb_h, emb_w], axis=1)  # (H*W, D)
    return emb


def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    assert embed_dim % 2 == 0
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000**omega  # (D/2,)
    pos = pos.reshape(-1)  # (M,)
    out = np.einsum("m,d->md", pos, omega)  # (M, D/2), outer product
    emb_sin = np.sin(out)
    emb_cos = np.cos(out)
    emb = np.concatenate([emb_sin, emb_cos], axis=1)  # (M, D)
    return emb


class PatchEmbed(nn.Module):
    """timm's PatchEmbed, as MAE imports it: 2D image to patch embedding."""

    def __init__(self, img_size=16, patch_size=4, in_chans=3, embed_dim=16):
        super().__init__()
        self.img_size = (img_size, img_size)
        self.patch_size = (patch_size, patch_size)
        self.grid_size = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        B, C, H, W = x.shape
        torch._assert(H == self.img_size[0],
                      f"Input height ({H}) doesn't match model ({self.img_size[0]}).")
        torch._assert(W == self.img_size[1],
                      f"Input width ({W}) doesn't match model ({self.img_size[1]}).")
        return self.proj(x).flatten(2).transpose(1, 2)  # BCHW -> BNC


class Attention(nn.Module):
    def __init__(self, dim, num_heads=2, qkv_bias=True):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features, act_layer=nn.GELU):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=2.0, norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=True)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        x = x + self.mlp(self.norm2(x))
        return x


class MaskedAutoencoderViT(nn.Module):
    """Masked Autoencoder with VisionTransformer backbone"""

    def __init__(self, img_size=16, patch_size=4, in_chans=3, embed_dim=16, depth=2, num_heads=2,
                 decoder_embed_dim=12, decoder_depth=1, decoder_num_heads=2, mlp_ratio=2.0,
                 norm_layer=nn.LayerNorm, norm_pix_loss=False):
        super().__init__()
        # MAE encoder specifics
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim),
                                      requires_grad=False)  # fixed sin-cos embedding
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, norm_layer=norm_layer) for i in range(depth)])
        self.norm = norm_layer(embed_dim)

        # MAE decoder specifics
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, norm_layer=norm_layer)
            for i in range(decoder_depth)])
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size**2 * in_chans, bias=True)

        self.norm_pix_loss = norm_pix_loss
        self.initialize_weights()

    def initialize_weights(self):
        # initialize (and freeze) pos_embed by sin-cos embedding
        pos_embed = get_2d_sincos_pos_embed(self.pos_embed.shape[-1],
                                            int(self.patch_embed.num_patches**0.5),
                                            cls_token=True)
        self.pos_embed.data.copy_(torch.from_numpy(pos_embed).float().unsqueeze(0))

        decoder_pos_embed = get_2d_sincos_pos_embed(self.decoder_pos_embed.shape[-1],
                                                    int(self.patch_embed.num_patches**0.5),
                                                    cls_token=True)
        self.decoder_pos_embed.data.copy_(
            torch.from_numpy(decoder_pos_embed).float().unsqueeze(0))

        # initialize patch_embed like nn.Linear (instead of nn.Conv2d)
        w = self.patch_embed.proj.weight.data
        torch.nn.init.xavier_uniform_(w.view([w.shape[0], -1]))

        # timm's trunc_normal_(std=.02) is effectively normal_(std=0.02) as cutoff is too big (2.)
        torch.nn.init.normal_(self.cls_token, std=0.02)
        torch.nn.init.normal_(self.mask_token, std=0.02)

        # initialize nn.Linear and nn.LayerNorm
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            # we use xavier_uniform following official JAX ViT:
            torch.nn.init.xavier_uniform_(m.weight)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def patchify(self, imgs):
        """imgs: (N, 3, H, W) -> x: (N, L, patch_size**2 * 3)"""
        p = self.patch_embed.patch_size[0]
        assert imgs.shape[2] == imgs.shape[3] and imgs.shape[2] % p == 0

        h = w = imgs.shape[2] // p
        x = imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))
        x = torch.einsum("nchpwq->nhwpqc", x)
        x = x.reshape(shape=(imgs.shape[0], h * w, p**2 * 3))
        return x

    def unpatchify(self, x):
        """x: (N, L, patch_size**2 * 3) -> imgs: (N, 3, H, W)"""
        p = self.patch_embed.patch_size[0]
        h = w = int(x.shape[1] ** 0.5)
        assert h * w == x.shape[1]

        x = x.reshape(shape=(x.shape[0], h, w, p, p, 3))
        x = torch.einsum("nhwpqc->nchpwq", x)
        imgs = x.reshape(shape=(x.shape[0], 3, h * p, h * p))
        return imgs

    def random_masking(self, x, mask_ratio, noise=None, generator=None):
        """Per-sample random masking by per-sample shuffling (argsort of random noise)."""
        N, L, D = x.shape  # batch, length, dim
        len_keep = int(L * (1 - mask_ratio))

        if noise is None:
            noise = torch.rand(N, L, device=x.device, generator=generator)  # noise in [0, 1]

        # sort noise for each sample
        ids_shuffle = torch.argsort(noise, dim=1)  # ascend: small is keep, large is remove
        ids_restore = torch.argsort(ids_shuffle, dim=1)

        # keep the first subset
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))

        # generate the binary mask: 0 is keep, 1 is remove
        mask = torch.ones([N, L], device=x.device)
        mask[:, :len_keep] = 0
        # unshuffle to get the binary mask
        mask = torch.gather(mask, dim=1, index=ids_restore)

        return x_masked, mask, ids_restore

    def forward_encoder(self, x, mask_ratio, noise=None, generator=None):
        # embed patches
        x = self.patch_embed(x)

        # add pos embed w/o cls token
        x = x + self.pos_embed[:, 1:, :]

        # masking: length -> length * mask_ratio
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise, generator)

        # append cls token
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        cls_tokens = cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)

        # apply Transformer blocks
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)

        return x, mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        # embed tokens
        x = self.decoder_embed(x)

        # append mask tokens to sequence
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)  # no cls token
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)  # append cls token

        # add pos embed
        x = x + self.decoder_pos_embed

        # apply Transformer blocks
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)

        # predictor projection
        x = self.decoder_pred(x)

        # remove cls token
        x = x[:, 1:, :]

        return x

    def forward_loss(self, imgs, pred, mask):
        """imgs: [N, 3, H, W]; pred: [N, L, p*p*3]; mask: [N, L], 0 is keep, 1 is remove"""
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5

        loss = (pred - target) ** 2
        loss = loss.mean(dim=-1)  # [N, L], mean loss per patch

        loss = (loss * mask).sum() / mask.sum()  # mean loss on removed patches
        return loss

    def forward(self, imgs, mask_ratio=0.75, noise=None, generator=None):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise, generator)
        pred = self.forward_decoder(latent, ids_restore)  # [N, L, p*p*3]
        loss = self.forward_loss(imgs, pred, mask)
        return loss, pred, mask


# util/lr_sched.py
def adjust_learning_rate(optimizer, epoch, lr, min_lr, warmup_epochs, epochs):
    """Decay the learning rate with half-cycle cosine after warmup"""
    if epoch < warmup_epochs:
        lr = lr * epoch / warmup_epochs
    else:
        lr = min_lr + (lr - min_lr) * 0.5 * (
            1.0 + math.cos(math.pi * (epoch - warmup_epochs) / (epochs - warmup_epochs)))
    for param_group in optimizer.param_groups:
        if "lr_scale" in param_group:
            param_group["lr"] = lr * param_group["lr_scale"]
        else:
            param_group["lr"] = lr
    return lr


def param_groups_weight_decay(model, weight_decay=1e-5, no_weight_decay_list=()):
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.endswith(".bias") or name in no_weight_decay_list:
            no_decay.append(param)
        else:
            decay.append(param)
    return [{"params": no_decay, "weight_decay": 0.0},
            {"params": decay, "weight_decay": weight_decay}]


# util/misc.py: the metric logger's smoothed values (a median over a window of the deque)
class SmoothedValue:
    """Track a series of values and provide access to smoothed values over a window or the
    global series average."""

    def __init__(self, window_size=20, fmt=None):
        if fmt is None:
            fmt = "{median:.4f} ({global_avg:.4f})"
        self.deque = deque(maxlen=window_size)
        self.total = 0.0
        self.count = 0
        self.fmt = fmt

    def update(self, value, n=1):
        self.deque.append(value)
        self.count += n
        self.total += value * n

    @property
    def median(self):
        d = torch.tensor(list(self.deque))
        return d.median().item()

    @property
    def avg(self):
        d = torch.tensor(list(self.deque), dtype=torch.float32)
        return d.mean().item()

    @property
    def global_avg(self):
        return self.total / self.count

    @property
    def max(self):
        return max(self.deque)


# util/pos_embed.py: resize a checkpoint's learned position embedding to a new grid
def interpolate_pos_embed(model, checkpoint_model):
    if "pos_embed" in checkpoint_model:
        pos_embed_checkpoint = checkpoint_model["pos_embed"]
        embedding_size = pos_embed_checkpoint.shape[-1]
        num_patches = model.patch_embed.num_patches
        num_extra_tokens = model.pos_embed.shape[-2] - num_patches
        # height (== width) for the checkpoint position embedding
        orig_size = int((pos_embed_checkpoint.shape[-2] - num_extra_tokens) ** 0.5)
        # height (== width) for the new position embedding
        new_size = int(num_patches**0.5)
        # class_token and dist_token are kept unchanged
        if orig_size != new_size:
            print("Position interpolate from %dx%d to %dx%d" % (orig_size, orig_size, new_size,
                                                                 new_size))
            extra_tokens = pos_embed_checkpoint[:, :num_extra_tokens]
            # only the position tokens are interpolated
            pos_tokens = pos_embed_checkpoint[:, num_extra_tokens:]
            pos_tokens = pos_tokens.reshape(-1, orig_size, orig_size, embedding_size)
            pos_tokens = pos_tokens.permute(0, 3, 1, 2)
            pos_tokens = torch.nn.functional.interpolate(
                pos_tokens, size=(new_size, new_size), mode="bicubic", align_corners=False)
            pos_tokens = pos_tokens.permute(0, 2, 3, 1).flatten(1, 2)
            new_pos_embed = torch.cat((extra_tokens, pos_tokens), dim=1)
            checkpoint_model["pos_embed"] = new_pos_embed


# models_vit.py: the fine-tuning ViT with global average pooling (its norm deleted)
class VisionTransformer(nn.Module):
    def __init__(self, img_size=20, patch_size=4, embed_dim=16, depth=2, num_heads=2,
                 num_classes=3, global_pool=True):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, 3, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads) for i in range(depth)])
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)
        self.global_pool = global_pool
        if self.global_pool:
            self.fc_norm = nn.LayerNorm(embed_dim)
            del self.norm  # remove the original norm

    def forward_features(self, x):
        B = x.shape[0]
        x = self.patch_embed(x)
        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        if self.global_pool:
            x = x[:, 1:, :].mean(dim=1)  # global pool without cls token
            outcome = self.fc_norm(x)
        else:
            x = self.norm(x)
            outcome = x[:, 0]
        return outcome

    def forward(self, x):
        return self.head(self.forward_features(x))


# util/lr_decay.py: layer-wise lr decay for ViT
def param_groups_lrd(model, weight_decay=0.05, no_weight_decay_list=(), layer_decay=0.75):
    param_group_names = {}
    param_groups = {}
    num_layers = len(model.blocks) + 1
    layer_scales = list(layer_decay ** (num_layers - i) for i in range(num_layers + 1))
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        # no decay: all 1D parameters and model specific ones
        if p.ndim == 1 or n in no_weight_decay_list:
            g_decay = "no_decay"
            this_decay = 0.0
        else:
            g_decay = "decay"
            this_decay = weight_decay
        layer_id = get_layer_id_for_vit(n, num_layers)
        group_name = "layer_%d_%s" % (layer_id, g_decay)
        if group_name not in param_group_names:
            this_scale = layer_scales[layer_id]
            param_group_names[group_name] = {
                "lr_scale": this_scale, "weight_decay": this_decay, "params": []}
            param_groups[group_name] = {
                "lr_scale": this_scale, "weight_decay": this_decay, "params": []}
        param_group_names[group_name]["params"].append(n)
        param_groups[group_name]["params"].append(p)
    return list(param_groups.values())


def get_layer_id_for_vit(name, num_layers):
    if name in ["cls_token", "pos_embed"]:
        return 0
    elif name.startswith("patch_embed"):
        return 0
    elif name.startswith("blocks"):
        return int(name.split(".")[1]) + 1
    else:
        return num_layers


# util/lars.py: the linear-probing optimizer
class LARS(torch.optim.Optimizer):
    """LARS optimizer, no rate scaling or weight decay for parameters <= 1D."""

    def __init__(self, params, lr=0, weight_decay=0, momentum=0.9, trust_coefficient=0.001):
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                        trust_coefficient=trust_coefficient)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            for p in g["params"]:
                dp = p.grad

                if dp is None:
                    continue

                if p.ndim > 1:  # if not normalization gamma/beta or bias
                    dp = dp.add(p, alpha=g["weight_decay"])
                    param_norm = torch.norm(p)
                    update_norm = torch.norm(dp)
                    one = torch.ones_like(param_norm)
                    q = torch.where(param_norm > 0.0,
                                    torch.where(update_norm > 0,
                                                (g["trust_coefficient"] * param_norm
                                                 / update_norm), one),
                                    one)
                    dp = dp.mul(q)

                param_state = self.state[p]
                if "mu" not in param_state:
                    param_state["mu"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                mu = param_state["mu"]
                mu.mul_(g["momentum"]).add_(dp)
                p.add_(mu, alpha=-g["lr"])


# DiT's models.py
def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    """Embeds scalar timesteps into vector representations."""

    def __init__(self, hidden_size, frequency_embedding_size=16):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size, bias=True),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size, bias=True),
        )
        self.frequency_embedding_size = frequency_embedding_size

    @staticmethod
    def timestep_embedding(t, dim, max_period=10000):
        half = dim // 2
        freqs = torch.exp(
            -math.log(max_period) * torch.arange(start=0, end=half, dtype=torch.float32) / half
        ).to(device=t.device)
        args = t[:, None].float() * freqs[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if dim % 2:
            embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
        return embedding

    def forward(self, t):
        t_freq = self.timestep_embedding(t, self.frequency_embedding_size)
        t_emb = self.mlp(t_freq)
        return t_emb


class LabelEmbedder(nn.Module):
    """Embeds class labels into vectors; drops labels for classifier-free guidance."""

    def __init__(self, num_classes, hidden_size, dropout_prob):
        super().__init__()
        use_cfg_embedding = dropout_prob > 0
        self.embedding_table = nn.Embedding(num_classes + use_cfg_embedding, hidden_size)
        self.num_classes = num_classes
        self.dropout_prob = dropout_prob

    def token_drop(self, labels, force_drop_ids=None, generator=None):
        if force_drop_ids is None:
            drop_ids = torch.rand(labels.shape[0], device=labels.device,
                                  generator=generator) < self.dropout_prob
        else:
            drop_ids = force_drop_ids == 1
        labels = torch.where(drop_ids, self.num_classes, labels)
        return labels

    def forward(self, labels, train, force_drop_ids=None, generator=None):
        use_dropout = self.dropout_prob > 0
        if (train and use_dropout) or (force_drop_ids is not None):
            labels = self.token_drop(labels, force_drop_ids, generator)
        embeddings = self.embedding_table(labels)
        return embeddings


class DiTBlock(nn.Module):
    """A DiT block with adaptive layer norm zero (adaLN-Zero) conditioning."""

    def __init__(self, hidden_size, num_heads, mlp_ratio=2.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        mlp_hidden_dim = int(hidden_size * mlp_ratio)

        def approx_gelu():
            return nn.GELU(approximate="tanh")

        self.mlp = Mlp(in_features=hidden_size, hidden_features=mlp_hidden_dim,
                       act_layer=approx_gelu)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(),
            nn.Linear(hidden_size, 6 * hidden_size, bias=True)
        )

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.adaLN_modulation(c).chunk(6, dim=1))
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x


class FinalLayer(nn.Module):
    def __init__(self, hidden_size, patch_size, out_channels):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels, bias=True)
        self.adaLN_modulation = nn.Sequential(
            nn.SiLU(),
            nn.Linear(hidden_size, 2 * hidden_size, bias=True)
        )

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        x = modulate(self.norm_final(x), shift, scale)
        x = self.linear(x)
        return x


class DiT(nn.Module):
    def __init__(self, input_size=8, patch_size=2, in_channels=3, hidden_size=16, depth=2,
                 num_heads=2, class_dropout_prob=0.1, num_classes=4, learn_sigma=True):
        super().__init__()
        self.learn_sigma = learn_sigma
        self.in_channels = in_channels
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.patch_size = patch_size
        self.x_embedder = PatchEmbed(input_size, patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(num_classes, hidden_size, class_dropout_prob)
        num_patches = self.x_embedder.num_patches
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, hidden_size),
                                      requires_grad=False)
        self.blocks = nn.ModuleList([DiTBlock(hidden_size, num_heads) for _ in range(depth)])
        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)
        self.initialize_weights()

    def initialize_weights(self):
        pos_embed = get_2d_sincos_pos_embed(self.pos_embed.shape[-1],
                                            int(self.x_embedder.num_patches ** 0.5))
        self.pos_embed.data.copy_(torch.from_numpy(pos_embed).float().unsqueeze(0))
        # Zero-out adaLN modulation layers in DiT blocks:
        for block in self.blocks:
            nn.init.constant_(block.adaLN_modulation[-1].weight, 0)
            nn.init.constant_(block.adaLN_modulation[-1].bias, 0)
        # Zero-out output layers:
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].weight, 0)
        nn.init.constant_(self.final_layer.adaLN_modulation[-1].bias, 0)
        nn.init.constant_(self.final_layer.linear.weight, 0)
        nn.init.constant_(self.final_layer.linear.bias, 0)

    def unpatchify(self, x):
        """x: (N, T, patch_size**2 * C) -> imgs: (N, C, H, W)"""
        c = self.out_channels
        p = self.x_embedder.patch_size[0]
        h = w = int(x.shape[1] ** 0.5)
        assert h * w == x.shape[1]

        x = x.reshape(shape=(x.shape[0], h, w, p, p, c))
        x = torch.einsum("nhwpqc->nchpwq", x)
        imgs = x.reshape(shape=(x.shape[0], c, h * p, h * p))
        return imgs

    def forward(self, x, t, y, force_drop_ids=None):
        x = self.x_embedder(x) + self.pos_embed  # (N, T, D)
        t = self.t_embedder(t)  # (N, D)
        y = self.y_embedder(y, self.training, force_drop_ids)  # (N, D)
        c = t + y  # (N, D)
        for block in self.blocks:
            x = block(x, c)  # (N, T, D)
        x = self.final_layer(x, c)  # (N, T, patch_size ** 2 * out_channels)
        x = self.unpatchify(x)  # (N, out_channels, H, W)
        return x

    def forward_with_cfg(self, x, t, y, cfg_scale):
        half = x[: len(x) // 2]
        combined = torch.cat([half, half], dim=0)
        model_out = self.forward(combined, t, y)
        eps, rest = model_out[:, :3], model_out[:, 3:]
        cond_eps, uncond_eps = torch.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + cfg_scale * (cond_eps - uncond_eps)
        eps = torch.cat([half_eps, half_eps], dim=0)
        return torch.cat([eps, rest], dim=1)


def make_images(n, seed, size=16):
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    images = np.empty((n, 3, size, size))
    for i in range(n):
        cy, cx = rng.uniform(3, size - 3, size=2)
        r = rng.uniform(2, 5)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        images[i] = blob[None] * rng.uniform(0.2, 1.0, size=(3, 1, 1))
    images += 0.05 * rng.standard_normal(images.shape)
    return torch.from_numpy(images.astype(np.float32))


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(9)
    imgs = make_images(16, seed=3)

    model = MaskedAutoencoderViT(norm_pix_loss=True)
    pos = model.pos_embed.detach()
    random_cls_std = model.cls_token.std().item()
    load_reference(model)  # frozen pos_embed keeps its sin-cos values (not a parameter to train)
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    patches = model.patchify(imgs)
    round_trip = bool(torch.equal(model.unpatchify(patches), imgs))

    # a seeded torch.rand mask: the generators differ, so compare what holds for any draw
    g = torch.Generator().manual_seed(5)
    _, random_mask, random_restore = model.random_masking(model.patch_embed(imgs), 0.75,
                                                           generator=g)
    mask_counts = random_mask.sum(1).tolist()
    restore_is_perm = bool((random_restore.sort(dim=1).values
                            == torch.arange(16).expand(16, -1)).all())

    param_groups = param_groups_weight_decay(model, 0.05)
    optimizer = torch.optim.AdamW(param_groups, lr=1e-3, betas=(0.9, 0.95))
    accum_iter, steps_per_epoch, epochs = 2, 4, 2
    losses, lrs = [], []
    model.train(True)
    optimizer.zero_grad()
    for epoch in range(epochs):
        for data_iter_step in range(steps_per_epoch):
            if data_iter_step % accum_iter == 0:
                lrs.append(adjust_learning_rate(optimizer, data_iter_step / steps_per_epoch + epoch,
                                                lr=1e-3, min_lr=1e-5, warmup_epochs=1,
                                                epochs=epochs))
            samples = imgs[(data_iter_step % 4) * 4:(data_iter_step % 4 + 1) * 4]
            noise = torch.from_numpy(rng.random((4, 16)).astype(np.float32))
            loss, _, _ = model(samples, mask_ratio=0.75, noise=noise)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise SystemExit("Loss is {}, stopping training".format(loss_value))
            loss /= accum_iter
            loss.backward()
            if (data_iter_step + 1) % accum_iter == 0:
                optimizer.step()
                optimizer.zero_grad()
            losses.append(loss_value)

    model.eval()
    with torch.no_grad():
        noise = torch.from_numpy(rng.random((4, 16)).astype(np.float32))
        loss, pred, mask = model(imgs[:4], noise=noise)
        recon = model.unpatchify(pred)
        mask_img = model.unpatchify(mask.unsqueeze(-1).repeat(1, 1, 16 * 3))
        pasted = imgs[:4] * (1 - mask_img) + recon * mask_img

    # fine-tuning at 20x20 (a 5x5 grid) from the pre-training checkpoint
    torch.save({"model": model.state_dict(), "epoch": epochs}, "checkpoint-1.pth")
    ft = VisionTransformer(num_classes=3)
    checkpoint = torch.load("checkpoint-1.pth", map_location="cpu")
    checkpoint_model = checkpoint["model"]
    state_dict = ft.state_dict()
    for k in ["head.weight", "head.bias"]:
        if k in checkpoint_model and checkpoint_model[k].shape != state_dict[k].shape:
            print(f"Removing key {k} from pretrained checkpoint")
            del checkpoint_model[k]
    interpolate_pos_embed(ft, checkpoint_model)
    msg = ft.load_state_dict(checkpoint_model, strict=False)
    assert set(msg.missing_keys) == {"head.weight", "head.bias", "fc_norm.weight", "fc_norm.bias"}
    with torch.no_grad():  # the head and fc_norm from the reference weights (no trunc_normal_)
        W = reference_weights(ft)
        for name in msg.missing_keys:
            ft.get_parameter(name).copy_(torch.from_numpy(W[name]))
    ft_groups = param_groups_lrd(ft, 0.05, no_weight_decay_list={"pos_embed", "cls_token"},
                                 layer_decay=0.65)
    ft_opt = torch.optim.AdamW(ft_groups, lr=1e-3)
    big = F.interpolate(imgs, size=(20, 20), mode="bilinear", align_corners=False)
    labels = (imgs.mean((1, 2, 3)) > imgs.mean()).long() + (imgs[:, 0].mean((1, 2)) > 0.3).long()
    meter = SmoothedValue(window_size=4)
    ft_lrs = []
    for step in range(4):
        ft_lrs.append(adjust_learning_rate(ft_opt, step / 4, 1e-3, 1e-6, 0.5, 1))
        loss = F.cross_entropy(ft(big[step * 4:(step + 1) * 4]), labels[step * 4:(step + 1) * 4],
                               label_smoothing=0.1)
        ft_opt.zero_grad()
        loss.backward()
        ft_opt.step()
        meter.update(loss.item())
    group_lrs = [g["lr"] for g in ft_opt.param_groups]

    # main_linprobe.py: a BatchNorm without affine in front of the head, everything else frozen
    probe = VisionTransformer(num_classes=3)
    probe.load_state_dict(ft.state_dict())
    probe.head = torch.nn.Sequential(
        torch.nn.BatchNorm1d(probe.head.in_features, affine=False, eps=1e-6), probe.head)
    for _, p in probe.named_parameters():
        p.requires_grad = False
    for _, p in probe.head.named_parameters():
        p.requires_grad = True
    n_probe = sum(p.numel() for p in probe.parameters() if p.requires_grad)
    lars = LARS(probe.head.parameters(), lr=0.1, weight_decay=0.0)
    probe_losses = []
    for step in range(3):
        loss = F.cross_entropy(probe(big[step * 4:(step + 1) * 4]),
                               labels[step * 4:(step + 1) * 4])
        lars.zero_grad()
        loss.backward()
        lars.step()
        probe_losses.append(loss.item())
    probe_state = sorted(len(s) for s in lars.state.values())
    running_var = probe.head[0].running_var[:4].tolist()

    try:
        ft(imgs[:2])  # 16x16 into the 20x20 model
        size_error = None
    except AssertionError as e:
        size_error = str(e)

    # DiT with adaLN-Zero: zero-initialised gates make every block the identity at the start
    dit = DiT()
    dit.eval()
    z = make_images(4, seed=4, size=8)
    t = torch.tensor([1, 50, 300, 999])
    labels = torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        zero_out = dit(z, t, labels)
    zero_init_is_zero = bool((zero_out == 0).all())
    t_emb = TimestepEmbedder.timestep_embedding(t, 7)
    random_drop = dit.y_embedder.token_drop(labels, generator=torch.Generator().manual_seed(1))
    forced = dit.y_embedder.token_drop(labels, force_drop_ids=torch.tensor([1, 0, 1, 0]))

    load_reference(dit)
    dit.train()
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-3, weight_decay=0)
    dit_losses = []
    for step in range(4):
        eps = torch.from_numpy(rng.standard_normal((4, 3, 8, 8)).astype(np.float32))
        alpha = torch.from_numpy(rng.uniform(0.3, 0.9, size=(4, 1, 1, 1)).astype(np.float32))
        x_t = alpha.sqrt() * z + (1 - alpha).sqrt() * eps
        out = dit(x_t, t, labels, force_drop_ids=torch.tensor([0, 0, 0, 1]))
        eps_pred, _ = torch.split(out, 3, dim=1)
        loss = F.mse_loss(eps_pred, eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        dit_losses.append(loss.item())
    dit.eval()
    with torch.no_grad():
        cfg = dit.forward_with_cfg(torch.cat([z[:2], z[:2]]), t, torch.tensor([1, 2, 4, 4]), 4.0)

    report(
        pos_embed=pos[0, :3, :6].tolist(), pos_shape=list(pos.shape),
        random_cls_std=random_cls_std, n_trainable=int(n_trainable),
        patches_shape=list(patches.shape), patch0=patches[0, 5, :6].tolist(),
        round_trip=round_trip, mask_counts=mask_counts, restore_is_perm=restore_is_perm,
        random_mask=random_mask.tolist(), losses=losses, lrs=lrs,
        eval_loss=loss.item(), mask=mask.tolist(), pasted_mean=pasted.mean().item(),
        recon_std=recon.std().item(), zero_init_is_zero=zero_init_is_zero,
        t_emb=t_emb.tolist(), random_drop=random_drop.tolist(), forced=forced.tolist(),
        dit_losses=dit_losses, cfg_shape=list(cfg.shape), cfg=cfg[:, :3, 0, 0].tolist(),
        cfg_rest=cfg[:, 3:, 1, 1].tolist(), unexpected=sorted(msg.unexpected_keys),
        ft_pos=ft.pos_embed[0, :4, :4].tolist(), ft_lrs=ft_lrs, group_lrs=group_lrs,
        meter=[meter.median, meter.avg, meter.global_avg, meter.max, meter.count],
        has_norm=hasattr(ft, "norm"), n_probe=int(n_probe), probe_losses=probe_losses,
        probe_state=probe_state, running_var=running_var, size_error=size_error,
    )


if __name__ == "__main__":
    main()
