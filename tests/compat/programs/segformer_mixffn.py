# SegFormer (NVlabs/SegFormer, mmseg's mix_transformer.py) as its MiT encoder and all-MLP decoder
# write it (our own condensed rewrite): OverlapPatchEmbed by a strided Conv2d with padding
# patch_size // 2 then flatten(2).transpose(1, 2) and LayerNorm (returning H, W), efficient
# self-attention with spatial reduction (sr_ratio > 1: x reshaped back to (B, C, H, W) by
# permute/reshape, a Conv2d of kernel = stride = sr_ratio, a LayerNorm, then kv by one Linear
# and reshape(B, -1, 2, heads, C // heads).permute(2, 0, 3, 1, 4)), Mix-FFN with a depthwise
# 3x3 DWConv between its Linears, DropPath from timm with a linearly increasing rate by
# torch.linspace(0, drop_path_rate, sum(depths)) (eval: identity), the _init_weights apply
# (trunc_normal_, fan_out normal for convs with math.sqrt(2.0 / fan_out)), four stages with
# norm layers, the decoder's per-stage MLP (Linear on flattened tokens), resize to the 1/4 map
# by F.interpolate(mode="bilinear", align_corners=False), concatenation in reverse stage order,
# a 1x1 ConvModule fuse (Conv2d + BatchNorm2d + ReLU), the segmentation loss by cross_entropy
# with ignore_index=255 after upsampling logits, AdamW with a poly schedule, mIoU by bincount.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2199)


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


class DWConv(nn.Module):
    def __init__(self, dim=768):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 3, 1, 1, bias=True, groups=dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        x = x.transpose(1, 2).view(B, C, H, W)
        x = self.dwconv(x)
        return x.flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    def __init__(
        self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU, drop=0.0
    ):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.dwconv = DWConv(hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x, H, W):
        x = self.fc1(x)
        x = self.act(self.dwconv(x, H, W))
        x = self.drop(x)
        x = self.fc2(x)
        return self.drop(x)


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, sr_ratio=1):
        super().__init__()
        assert dim % num_heads == 0, f"dim {dim} should be divided by num_heads {num_heads}."
        self.dim = dim
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim**-0.5
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def forward(self, x, H, W):
        B, N, C = x.shape
        q = self.q(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)
        if self.sr_ratio > 1:
            x_ = x.permute(0, 2, 1).reshape(B, C, H, W)
            x_ = self.sr(x_).reshape(B, C, -1).permute(0, 2, 1)
            x_ = self.norm(x_)
            kv = (
                self.kv(x_)
                .reshape(B, -1, 2, self.num_heads, C // self.num_heads)
                .permute(2, 0, 3, 1, 4)
            )
        else:
            kv = (
                self.kv(x)
                .reshape(B, -1, 2, self.num_heads, C // self.num_heads)
                .permute(2, 0, 3, 1, 4)
            )
        k, v = kv[0], kv[1]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, drop_path=0.0, sr_ratio=1):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, sr_ratio=sr_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x, H, W):
        x = x + self.drop_path(self.attn(self.norm1(x), H, W))
        x = x + self.drop_path(self.mlp(self.norm2(x), H, W))
        return x


class OverlapPatchEmbed(nn.Module):
    def __init__(self, patch_size=7, stride=4, in_chans=3, embed_dim=768):
        super().__init__()
        self.proj = nn.Conv2d(
            in_chans,
            embed_dim,
            kernel_size=patch_size,
            stride=stride,
            padding=(patch_size // 2, patch_size // 2),
        )
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x):
        x = self.proj(x)
        _, _, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)
        x = self.norm(x)
        return x, H, W


class MixVisionTransformer(nn.Module):
    def __init__(
        self,
        in_chans=3,
        embed_dims=(8, 16, 24, 32),
        num_heads=(1, 2, 3, 4),
        mlp_ratios=(2, 2, 2, 2),
        depths=(1, 1, 1, 1),
        sr_ratios=(4, 2, 1, 1),
        drop_path_rate=0.1,
    ):
        super().__init__()
        self.depths = depths
        self.patch_embeds = nn.ModuleList()
        self.blocks = nn.ModuleList()
        self.norms = nn.ModuleList()
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        cur = 0
        for i in range(4):
            self.patch_embeds.append(
                OverlapPatchEmbed(
                    7 if i == 0 else 3,
                    4 if i == 0 else 2,
                    in_chans if i == 0 else embed_dims[i - 1],
                    embed_dims[i],
                )
            )
            self.blocks.append(
                nn.ModuleList(
                    [
                        Block(
                            embed_dims[i],
                            num_heads[i],
                            mlp_ratios[i],
                            qkv_bias=True,
                            drop_path=dpr[cur + j],
                            sr_ratio=sr_ratios[i],
                        )
                        for j in range(depths[i])
                    ]
                )
            )
            self.norms.append(nn.LayerNorm(embed_dims[i], eps=1e-6))
            cur += depths[i]
        self.dpr = dpr
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)
        elif isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            fan_out //= m.groups
            m.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                m.bias.data.zero_()

    def forward(self, x):
        B = x.shape[0]
        outs = []
        for i in range(4):
            x, H, W = self.patch_embeds[i](x)
            for blk in self.blocks[i]:
                x = blk(x, H, W)
            x = self.norms[i](x)
            x = x.reshape(B, H, W, -1).permute(0, 3, 1, 2).contiguous()
            outs.append(x)
        return outs


class MLP(nn.Module):
    def __init__(self, input_dim=2048, embed_dim=768):
        super().__init__()
        self.proj = nn.Linear(input_dim, embed_dim)

    def forward(self, x):
        x = x.flatten(2).transpose(1, 2)
        return self.proj(x)


class SegFormerHead(nn.Module):
    def __init__(self, in_channels=(8, 16, 24, 32), embedding_dim=16, num_classes=4):
        super().__init__()
        self.linear_c = nn.ModuleList([MLP(c, embedding_dim) for c in in_channels])
        self.linear_fuse = nn.Sequential(
            nn.Conv2d(embedding_dim * 4, embedding_dim, 1, bias=False),
            nn.BatchNorm2d(embedding_dim),
            nn.ReLU(inplace=True),
        )
        self.linear_pred = nn.Conv2d(embedding_dim, num_classes, kernel_size=1)

    def forward(self, inputs):
        c1 = inputs[0]
        n, _, h, w = c1.shape
        outs = []
        for i in reversed(range(4)):
            c = inputs[i]
            _c = self.linear_c[i](c).permute(0, 2, 1).reshape(n, -1, c.shape[2], c.shape[3])
            if i > 0:
                _c = F.interpolate(_c, size=c1.size()[2:], mode="bilinear", align_corners=False)
            outs.append(_c)
        _c = self.linear_fuse(torch.cat(outs, dim=1))
        return self.linear_pred(_c)


class SegFormer(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = MixVisionTransformer()
        self.decode_head = SegFormerHead()

    def forward(self, img):
        logits = self.decode_head(self.backbone(img))
        return F.interpolate(logits, size=img.shape[2:], mode="bilinear", align_corners=False)


model = SegFormer()
dpr = model.backbone.dpr
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
imgs = torch.from_numpy(rng.standard_normal((8, 3, 32, 32)).astype(np.float32))
yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
masks = np.stack([((xx // 8 + yy // 8 + k) % 4) for k in range(8)]).astype(np.int64)
masks[:, :2, :] = 255
labels = torch.from_numpy(masks)
param_groups = [
    {"params": [p for n, p in model.named_parameters() if "decode_head" not in n], "lr": 6e-4},
    {"params": [p for n, p in model.named_parameters() if "decode_head" in n], "lr": 6e-3},
]
opt = torch.optim.AdamW(param_groups, lr=6e-4, betas=(0.9, 0.999), weight_decay=0.01)
sched = torch.optim.lr_scheduler.PolynomialLR(opt, total_iters=10, power=1.0)
model.eval()  # drop path off (the random variant is timm's); BatchNorm in eval too
losses = []
for step in range(5):
    i = slice((step % 2) * 4, (step % 2) * 4 + 4)
    logits = model(imgs[i])
    loss = F.cross_entropy(logits, labels[i], ignore_index=255)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    losses.append(loss.item())
with torch.no_grad():
    pred = model(imgs).argmax(1)
valid = labels != 255
hist = torch.bincount(4 * labels[valid] + pred[valid], minlength=16).reshape(4, 4)
iou = hist.diag() / (hist.sum(0) + hist.sum(1) - hist.diag()).clamp(min=1)
model.train()
random_out = model(imgs[:2])

report(
    dpr=dpr,
    losses=losses,
    lrs=[g["lr"] for g in opt.param_groups],
    hist=hist.tolist(),
    miou=iou.mean().item(),
    logit_mean=logits.mean().item(),
    random_train_shape=list(random_out.shape),
)
