# DeiT and CaiT as facebookresearch/deit's models write them (our own condensed rewrite): a
# ViT with both a class token and a distillation token (pos_embed of num_patches + 2), the
# distilled head pair averaged at eval and returned separately in training, hard-label
# distillation from a frozen convolutional teacher (DistillationLoss: base CE + the teacher's
# argmax as target for the dist head, mixed by alpha), trunc_normal_(std=.02) on tokens and
# position embeddings, the no_weight_decay set read through a @torch.jit.ignore method;
# CaiT's LayerScale blocks (gamma_1 / gamma_2 Parameters at init_values * torch.ones(dim)),
# talking-heads attention (proj_l / proj_w Linears over the head dimension by permute), and
# class-attention layers where only the class token queries (q from x[:, 0], k and v from cat
# of cls and patch tokens), the class token joined late by torch.cat after the self-attention
# stage; AdamW with weight decay off for the set, cosine schedule with warmup by LambdaLR,
# RepeatAugment-free mixup-free training, and eval top-1 of each head.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2210)
IMG, PATCH, DIM, CLASSES = 16, 4, 24, 4


class PatchEmbed(nn.Module):
    def __init__(self):
        super().__init__()
        self.num_patches = (IMG // PATCH) ** 2
        self.proj = nn.Conv2d(3, DIM, kernel_size=PATCH, stride=PATCH)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim, num_heads=4):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = (
            self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Talking_Head_Attn(nn.Module):
    def __init__(self, dim, num_heads=4):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.proj_l = nn.Linear(num_heads, num_heads)
        self.proj_w = nn.Linear(num_heads, num_heads)

    def forward(self, x):
        B, N, C = x.shape
        qkv = (
            self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        )
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = q @ k.transpose(-2, -1)
        attn = self.proj_l(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        attn = attn.softmax(dim=-1)
        attn = self.proj_w(attn.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Class_Attention(nn.Module):
    def __init__(self, dim, num_heads=4):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q = (
            self.q(x[:, 0])
            .unsqueeze(1)
            .reshape(B, 1, self.num_heads, C // self.num_heads)
            .permute(0, 2, 1, 3)
        )
        k = self.k(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)
        q = q * self.scale
        v = self.v(x).reshape(B, N, self.num_heads, C // self.num_heads).permute(0, 2, 1, 3)
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        x_cls = (attn @ v).transpose(1, 2).reshape(B, 1, C)
        return self.proj(x_cls)


class Mlp(nn.Sequential):
    def __init__(self, dim):
        super().__init__(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))


class Block(nn.Module):
    def __init__(self, dim, attn_cls=Attention, init_values=None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = attn_cls(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim)
        self.layer_scale = init_values is not None
        if self.layer_scale:
            self.gamma_1 = nn.Parameter(init_values * torch.ones(dim), requires_grad=True)
            self.gamma_2 = nn.Parameter(init_values * torch.ones(dim), requires_grad=True)

    def forward(self, x, x_cls=None):
        if x_cls is not None:  # class-attention block
            u = torch.cat((x_cls, x), dim=1)
            x_cls = x_cls + self.gamma_1 * self.attn(self.norm1(u))
            x_cls = x_cls + self.gamma_2 * self.mlp(self.norm2(x_cls))
            return x_cls
        if self.layer_scale:
            x = x + self.gamma_1 * self.attn(self.norm1(x))
            return x + self.gamma_2 * self.mlp(self.norm2(x))
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DistilledVisionTransformer(nn.Module):
    def __init__(self, depth=2):
        super().__init__()
        self.patch_embed = PatchEmbed()
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 2, DIM))
        self.blocks = nn.ModuleList([Block(DIM) for _ in range(depth)])
        self.norm = nn.LayerNorm(DIM, eps=1e-6)
        self.head = nn.Linear(DIM, CLASSES)
        self.head_dist = nn.Linear(DIM, CLASSES)
        nn.init.trunc_normal_(self.dist_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"pos_embed", "cls_token", "dist_token"}

    def forward_features(self, x):
        B = x.shape[0]
        x = self.patch_embed(x)
        cls_tokens = self.cls_token.expand(B, -1, -1)
        dist_token = self.dist_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, dist_token, x), dim=1)
        x = x + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[:, 0], x[:, 1]

    def forward(self, x):
        x, x_dist = self.forward_features(x)
        x = self.head(x)
        x_dist = self.head_dist(x_dist)
        if self.training:
            return x, x_dist
        return (x + x_dist) / 2


class CaiT(nn.Module):
    def __init__(self, depth=2, depth_token_only=1, init_values=1e-1):
        super().__init__()
        self.patch_embed = PatchEmbed()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches, DIM))
        self.blocks = nn.ModuleList(
            [Block(DIM, Talking_Head_Attn, init_values) for _ in range(depth)]
        )
        self.blocks_token_only = nn.ModuleList(
            [Block(DIM, Class_Attention, init_values) for _ in range(depth_token_only)]
        )
        self.norm = nn.LayerNorm(DIM, eps=1e-6)
        self.head = nn.Linear(DIM, CLASSES)

    @torch.jit.ignore
    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}

    def forward(self, x):
        B = x.shape[0]
        x = self.patch_embed(x) + self.pos_embed
        cls_tokens = self.cls_token.expand(B, -1, -1)
        for blk in self.blocks:
            x = blk(x)
        for blk in self.blocks_token_only:
            cls_tokens = blk(x, cls_tokens)
        x = torch.cat((cls_tokens, x), dim=1)
        x = self.norm(x)
        return self.head(x[:, 0])


class DistillationLoss(nn.Module):
    def __init__(self, base_criterion, teacher_model, distillation_type, alpha, tau):
        super().__init__()
        self.base_criterion = base_criterion
        self.teacher_model = teacher_model
        self.distillation_type = distillation_type
        self.alpha = alpha
        self.tau = tau

    def forward(self, inputs, outputs, labels):
        outputs_kd = None
        if not isinstance(outputs, torch.Tensor):
            outputs, outputs_kd = outputs
        base_loss = self.base_criterion(outputs, labels)
        if self.distillation_type == "none":
            return base_loss
        with torch.no_grad():
            teacher_outputs = self.teacher_model(inputs)
        if self.distillation_type == "soft":
            T = self.tau
            distillation_loss = (
                F.kl_div(
                    F.log_softmax(outputs_kd / T, dim=1),
                    F.log_softmax(teacher_outputs / T, dim=1),
                    reduction="sum",
                    log_target=True,
                )
                * (T * T)
                / outputs_kd.numel()
            )
        else:
            distillation_loss = F.cross_entropy(outputs_kd, teacher_outputs.argmax(dim=1))
        return base_loss * (1 - self.alpha) + distillation_loss * self.alpha


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "gamma" not in name:
                p.copy_(torch.from_numpy(W[name]))
    return model


def param_groups(model, weight_decay=0.05):
    skip = model.no_weight_decay()
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if len(param.shape) == 1 or name.endswith(".bias") or name in skip:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": no_decay, "weight_decay": 0.0},
        {"params": decay, "weight_decay": weight_decay},
    ]


imgs = torch.from_numpy(rng.standard_normal((24, 3, IMG, IMG)).astype(np.float32))
labels = torch.from_numpy(rng.integers(0, CLASSES, 24))
imgs += torch.nn.functional.one_hot(labels, CLASSES).float()[:, :3, None, None] * 0.8
teacher = load(
    nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.GELU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, CLASSES),
    )
)
teacher.eval()
warmup, total = 2, 8


def lr_lambda(s):
    if s < warmup:
        return (s + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))


out = {}
for name, model, dist_type in [
    ("deit_hard", DistilledVisionTransformer(), "hard"),
    ("deit_soft", DistilledVisionTransformer(), "soft"),
    ("cait", CaiT(), "none"),
]:
    load(model)
    groups = param_groups(model)
    opt = torch.optim.AdamW(groups, lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    criterion = DistillationLoss(nn.CrossEntropyLoss(), teacher, dist_type, alpha=0.5, tau=2.0)
    losses = []
    model.train()
    for step in range(total):
        b = slice((step % 3) * 8, (step % 3) * 8 + 8)
        outputs = model(imgs[b])
        loss = criterion(imgs[b], outputs, labels[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        logits = model(imgs)
    out[name] = losses
    out[name + "_acc"] = int((logits.argmax(1) == labels).sum())
    out[name + "_logits"] = logits[:2].tolist()
    out[name + "_groups"] = [len(g["params"]) for g in groups]
out["cait_gamma"] = model.blocks[0].gamma_1[:4].tolist()
report(**out)
