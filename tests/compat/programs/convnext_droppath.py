# A tiny ConvNeXt in the shape of facebookresearch/ConvNeXt's models/convnext.py and its
# optim_factory / main.py recipe (our own rewrite): blocks of a 7x7 depthwise conv, LayerNorm over
# channels-last by permute, an inverted-bottleneck MLP as nn.Linear layers, a layer-scale gamma
# Parameter and DropPath (timm's drop_path by bernoulli_ on a seeded torch.Generator); stem and
# downsampling layers with the hand-written channels-first LayerNorm; trunc_normal_ init through
# Module.apply and the head scaled through .data; stochastic-depth rates from torch.linspace;
# layer-wise lr decay parameter groups (extra group keys lr_scale / group_name, no weight decay
# for 1-D parameters), AdamW under a LambdaLR with one warmup + cosine lambda per group, timm's
# Mixup / CutMix (in-place x.flip(0).mul_ blends, box assignment by NumPy-integer slices, one_hot
# by scatter_, soft targets from flipped labels) with SoftTargetCrossEntropy, clip_grad_norm_,
# an eval pass. Data: 32x32 "stripes" made with NumPy.
import json
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.init import trunc_normal_


def drop_path(x, drop_prob: float = 0.0, training: bool = False, scale_by_keep: bool = True,
              generator=None):
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # work with diff dim tensors, not just 2D ConvNets
    random_tensor = x.new_empty(shape).bernoulli_(keep_prob, generator=generator)
    if keep_prob > 0.0 and scale_by_keep:
        random_tensor.div_(keep_prob)
    return x * random_tensor


class DropPath(nn.Module):
    """Drop paths (Stochastic Depth) per sample, applied in the main path of residual blocks."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True, generator=None):
        super().__init__()
        self.drop_prob = drop_prob
        self.scale_by_keep = scale_by_keep
        self.generator = generator

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep, self.generator)

    def extra_repr(self):
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


# timm's mixup.py: mixup / cutmix on the batch in place, soft targets; numpy's global RNG draws
# lam and the box, so both runs (np.random.seed) draw the same
def one_hot(x, num_classes, on_value=1.0, off_value=0.0):
    x = x.long().view(-1, 1)
    return torch.full((x.size()[0], num_classes), off_value, device=x.device).scatter_(
        1, x, on_value)


def mixup_target(target, num_classes, lam=1.0, smoothing=0.0):
    off_value = smoothing / num_classes
    on_value = 1.0 - smoothing + off_value
    y1 = one_hot(target, num_classes, on_value=on_value, off_value=off_value)
    y2 = one_hot(target.flip(0), num_classes, on_value=on_value, off_value=off_value)
    return y1 * lam + y2 * (1.0 - lam)


def rand_bbox(img_shape, lam, margin=0.0, count=None):
    ratio = np.sqrt(1 - lam)
    img_h, img_w = img_shape[-2:]
    cut_h, cut_w = int(img_h * ratio), int(img_w * ratio)
    margin_y, margin_x = int(margin * cut_h), int(margin * cut_w)
    cy = np.random.randint(0 + margin_y, img_h - margin_y, size=count)
    cx = np.random.randint(0 + margin_x, img_w - margin_x, size=count)
    yl = np.clip(cy - cut_h // 2, 0, img_h)
    yh = np.clip(cy + cut_h // 2, 0, img_h)
    xl = np.clip(cx - cut_w // 2, 0, img_w)
    xh = np.clip(cx + cut_w // 2, 0, img_w)
    return yl, yh, xl, xh


class Mixup:
    def __init__(self, mixup_alpha=0.8, cutmix_alpha=1.0, switch_prob=0.5, label_smoothing=0.1,
                 num_classes=5):
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.switch_prob = switch_prob
        self.label_smoothing = label_smoothing
        self.num_classes = num_classes

    def _params_per_batch(self):
        use_cutmix = np.random.rand() < self.switch_prob
        lam_mix = (np.random.beta(self.cutmix_alpha, self.cutmix_alpha) if use_cutmix
                   else np.random.beta(self.mixup_alpha, self.mixup_alpha))
        return float(lam_mix), bool(use_cutmix)

    def _mix_batch(self, x):
        lam, use_cutmix = self._params_per_batch()
        if lam == 1.0:
            return 1.0
        if use_cutmix:
            yl, yh, xl, xh = rand_bbox(x.shape, lam)
            x[:, :, yl:yh, xl:xh] = x.flip(0)[:, :, yl:yh, xl:xh]
            lam = 1.0 - (yh - yl) * (xh - xl) / float(x.shape[-2] * x.shape[-1])
        else:
            x_flipped = x.flip(0).mul_(1.0 - lam)
            x.mul_(lam).add_(x_flipped)
        return lam

    def __call__(self, x, target):
        assert len(x) % 2 == 0, "Batch size should be even when using this"
        lam = self._mix_batch(x)
        target = mixup_target(target, self.num_classes, lam, self.label_smoothing)
        return x, target


class SoftTargetCrossEntropy(nn.Module):
    def forward(self, x, target):
        loss = torch.sum(-target * F.log_softmax(x, dim=-1), dim=-1)
        return loss.mean()


class LayerNorm(nn.Module):
    r"""LayerNorm that supports two data formats: channels_last (default) or channels_first.
    channels_last is (batch, height, width, channels), channels_first (batch, channels, height,
    width).
    """

    def __init__(self, normalized_shape, eps=1e-6, data_format="channels_last"):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps
        self.data_format = data_format
        if self.data_format not in ["channels_last", "channels_first"]:
            raise NotImplementedError
        self.normalized_shape = (normalized_shape,)

    def forward(self, x):
        if self.data_format == "channels_last":
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        elif self.data_format == "channels_first":
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            x = (x - u) / torch.sqrt(s + self.eps)
            x = self.weight[:, None, None] * x + self.bias[:, None, None]
            return x


class Block(nn.Module):
    def __init__(self, dim, drop_path=0.0, layer_scale_init_value=1e-6, generator=None):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)  # depthwise conv
        self.norm = LayerNorm(dim, eps=1e-6)
        # pointwise/1x1 convs, implemented with linear layers
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = (
            nn.Parameter(layer_scale_init_value * torch.ones(dim), requires_grad=True)
            if layer_scale_init_value > 0
            else None
        )
        self.drop_path = (
            DropPath(drop_path, generator=generator) if drop_path > 0.0 else nn.Identity()
        )

    def forward(self, x):
        input = x
        x = self.dwconv(x)
        x = x.permute(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        x = self.norm(x)
        x = self.pwconv1(x)
        x = self.act(x)
        x = self.pwconv2(x)
        if self.gamma is not None:
            x = self.gamma * x
        x = x.permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        x = input + self.drop_path(x)
        return x


class ConvNeXt(nn.Module):
    def __init__(self, in_chans=3, num_classes=5, depths=(1, 1, 2, 1), dims=(8, 16, 24, 32),
                 drop_path_rate=0.0, layer_scale_init_value=1e-6, head_init_scale=1.0,
                 generator=None):
        super().__init__()
        self.downsample_layers = nn.ModuleList()  # stem and 3 intermediate downsampling conv layers
        stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4),
            LayerNorm(dims[0], eps=1e-6, data_format="channels_first"),
        )
        self.downsample_layers.append(stem)
        for i in range(3):
            downsample_layer = nn.Sequential(
                LayerNorm(dims[i], eps=1e-6, data_format="channels_first"),
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2),
            )
            self.downsample_layers.append(downsample_layer)

        self.stages = nn.ModuleList()  # 4 feature resolution stages, each of several blocks
        dp_rates = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        cur = 0
        for i in range(4):
            stage = nn.Sequential(
                *[Block(dim=dims[i], drop_path=dp_rates[cur + j],
                        layer_scale_init_value=layer_scale_init_value, generator=generator)
                  for j in range(depths[i])]
            )
            self.stages.append(stage)
            cur += depths[i]

        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)  # final norm layer
        self.head = nn.Linear(dims[-1], num_classes)

        self.apply(self._init_weights)
        self.head.weight.data.mul_(head_init_scale)
        self.head.bias.data.mul_(head_init_scale)

    def _init_weights(self, m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            trunc_normal_(m.weight, std=0.02)
            nn.init.constant_(m.bias, 0)

    def forward_features(self, x):
        for i in range(4):
            x = self.downsample_layers[i](x)
            x = self.stages[i](x)
        return self.norm(x.mean([-2, -1]))  # global average pooling, (N, C, H, W) -> (N, C)

    def forward(self, x):
        x = self.forward_features(x)
        x = self.head(x)
        return x


# optim_factory.py: the layer id of each parameter for layer-wise lr decay
def get_num_layer_for_convnext(var_name):
    """Divide [1, 1, 2, 1] blocks into 6 layer ids: stem 0, each downsample and stage after."""
    num_max_layer = 6
    if var_name.startswith("downsample_layers"):
        stage_id = int(var_name.split(".")[1])
        if stage_id == 0:
            layer_id = 0
        elif stage_id == 1 or stage_id == 2:
            layer_id = stage_id + 1
        elif stage_id == 3:
            layer_id = 5
        return layer_id
    elif var_name.startswith("stages"):
        stage_id = int(var_name.split(".")[1])
        block_id = int(var_name.split(".")[2])
        if stage_id == 0 or stage_id == 1:
            layer_id = stage_id + 1
        elif stage_id == 2:
            layer_id = 3 + block_id // 2
        elif stage_id == 3:
            layer_id = 5
        return layer_id
    else:
        return num_max_layer + 1


class LayerDecayValueAssigner:
    def __init__(self, values):
        self.values = values

    def get_scale(self, layer_id):
        return self.values[layer_id]

    def get_layer_id(self, var_name):
        return get_num_layer_for_convnext(var_name)


def get_parameter_groups(model, weight_decay=1e-5, skip_list=(), get_num_layer=None,
                         get_layer_scale=None):
    parameter_group_names = {}
    parameter_group_vars = {}

    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue  # frozen weights
        if len(param.shape) == 1 or name.endswith(".bias") or name in skip_list:
            group_name = "no_decay"
            this_weight_decay = 0.0
        else:
            group_name = "decay"
            this_weight_decay = weight_decay
        if get_num_layer is not None:
            layer_id = get_num_layer(name)
            group_name = "layer_%d_%s" % (layer_id, group_name)
        else:
            layer_id = None

        if group_name not in parameter_group_names:
            if get_layer_scale is not None:
                scale = get_layer_scale(layer_id)
            else:
                scale = 1.0

            parameter_group_names[group_name] = {
                "weight_decay": this_weight_decay, "params": [], "lr_scale": scale,
            }
            parameter_group_vars[group_name] = {
                "weight_decay": this_weight_decay, "params": [], "lr_scale": scale,
                "group_name": group_name,
            }

        parameter_group_vars[group_name]["params"].append(param)
        parameter_group_names[group_name]["params"].append(name)
    print("Param groups = %s" % json.dumps(parameter_group_names, indent=2))
    return list(parameter_group_vars.values())


def make_data(n, seed, classes=5):
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    labels = rng.integers(0, classes, size=n)
    images = np.empty((n, 3, 32, 32))
    for i, c in enumerate(labels):
        angle = np.pi * c / classes
        phase = rng.uniform(0, 2 * np.pi)
        wave = np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / 8 + phase)
        images[i] = wave[None] * rng.uniform(0.5, 1.5, size=(3, 1, 1))
    images += 0.3 * rng.standard_normal(images.shape)
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


def main():
    torch.manual_seed(0)
    x, y = make_data(16, seed=5)
    xv, yv = make_data(8, seed=6)

    # stochastic depth from a seeded generator: the two libraries' generators differ, so the
    # masks are compared by what holds for any draw (each sample kept and scaled, or dropped)
    g = torch.Generator().manual_seed(42)
    dp = DropPath(0.5, generator=g)
    feats = torch.ones(8, 4, 2, 2)
    dropped = dp(feats)
    per_sample = dropped.flatten(1)
    drop_rule_ok = bool(((per_sample == 0) | (per_sample == 2.0)).all(dim=1).all())
    same_in_sample = bool((per_sample.amax(1) == per_sample.amin(1)).all())
    random_kept = per_sample[:, 0].tolist()
    dp.eval()
    identity_in_eval = bool(torch.equal(dp(feats), feats))

    noisy = ConvNeXt(drop_path_rate=0.3, generator=torch.Generator().manual_seed(7))
    init_g = torch.Generator().manual_seed(11)
    w = torch.empty(64, 64)
    trunc_normal_(w, std=1.0, a=-2.0, b=2.0, generator=init_g)
    trunc_ok = bool(w.abs().max() <= 2.0)
    random_trunc_std = float(w.std())
    random_init_std = [float(m.weight.std()) for m in noisy.modules() if isinstance(m, nn.Linear)]
    load_reference(noisy)
    noisy.train()
    random_noisy_logits = noisy(x[:4]).tolist()
    dp_rates = [round(b.drop_path.drop_prob, 6) for s in noisy.stages for b in s
                if isinstance(b.drop_path, DropPath)]

    # the recipe made deterministic: reference weights, no stochastic depth
    model = ConvNeXt(drop_path_rate=0.0, head_init_scale=0.5)
    load_reference(model)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    num_layers = 6
    layer_decay = 0.7
    assigner = LayerDecayValueAssigner(
        list(layer_decay ** (num_layers + 1 - i) for i in range(num_layers + 2))
    )
    groups = get_parameter_groups(model, weight_decay=0.05,
                                  get_num_layer=assigner.get_layer_id,
                                  get_layer_scale=assigner.get_scale)
    group_names = [gr["group_name"] for gr in groups]
    optimizer = torch.optim.AdamW(groups, lr=4e-3, betas=(0.9, 0.999))

    steps, warmup = 8, 2

    def lr_lambda_for(scale):
        def lr_lambda(step):
            if step < warmup:
                return scale * float(step + 1) / float(warmup)
            progress = float(step - warmup) / float(max(1, steps - warmup))
            return scale * 0.5 * (1.0 + math.cos(math.pi * progress))
        return lr_lambda

    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, [lr_lambda_for(gr["lr_scale"]) for gr in optimizer.param_groups]
    )
    np.random.seed(0)
    mixup_fn = Mixup()
    criterion = SoftTargetCrossEntropy()
    losses, norms, lrs, mixed_means = [], [], [], []
    for step in range(steps):
        model.train()
        xb, yb = x[(step % 2) * 8:(step % 2 + 1) * 8], y[(step % 2) * 8:(step % 2 + 1) * 8]
        if step >= 2:  # label smoothing alone first, then mixup / cutmix (clone: x stays intact)
            xb, yb = mixup_fn(xb.clone(), yb)
            mixed_means.append([xb[0].abs().mean().item(), yb[0].tolist(), yb[-1].tolist()])
        else:
            yb = mixup_target(yb, 5, 1.0, 0.1)
        output = model(xb)
        loss = criterion(output, yb)
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        norms.append(norm.item())
        lrs.append([gr["lr"] for gr in optimizer.param_groups][::3])

    model.eval()
    with torch.no_grad():
        out = model(xv)
        val_loss = F.cross_entropy(out, yv).item()
        acc = (out.argmax(1) == yv).float().mean().item()
    gammas = [b.gamma.detach().abs().mean().item() for s in model.stages for b in s]

    report(
        drop_rule_ok=drop_rule_ok, same_in_sample=same_in_sample, random_kept=random_kept,
        identity_in_eval=identity_in_eval, trunc_ok=trunc_ok, random_trunc_std=random_trunc_std,
        random_init_std=random_init_std, random_noisy_logits=random_noisy_logits,
        dp_rates=dp_rates, n_params=int(n_params), group_names=group_names,
        initial_lrs=[gr["initial_lr"] for gr in optimizer.param_groups],
        losses=losses, norms=norms, lrs=lrs, val_loss=val_loss, acc=acc, gammas=gammas,
        logits=out[:2].tolist(), extra_repr=repr(noisy.stages[3][0].drop_path),
        mixed_means=mixed_means, data_intact=bool(torch.equal(x, make_data(16, seed=5)[0])),
    )


if __name__ == "__main__":
    main()
