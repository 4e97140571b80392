# DINO self-distillation in the shape of facebookresearch/dino's main_dino.py, utils.py and
# vision_transformer.py (our own rewrite): multi-crop augmentation done by hand on tensors (random
# resized crops by slicing + F.interpolate(bilinear, antialias=True), a rotated crop by
# F.affine_grid + F.grid_sample, horizontal flips by torch.flip, colour jitter by brightness /
# contrast / saturation blends and random grayscale, Gaussian blur by a separable conv2d with
# groups=, solarization by torch.where), a ViT-tiny whose position embeddings are resized by
# interpolate_pos_encoding (bicubic with a fractional scale_factor, the +0.1 trick), the
# MultiCropWrapper's unique_consecutive(return_counts=True) + cumsum grouping of crops by
# resolution, the DINOHead (GELU MLP, F.normalize, a weight-normed last layer whose weight_g is
# filled with 1 and frozen), the teacher copied by load_state_dict and frozen, DINOLoss (centering
# buffer re-assigned with momentum, a teacher-temperature warm-up schedule, log_softmax
# cross-entropy over crop pairs except the same view), cosine lr / weight-decay / momentum
# schedules written per param group (weight decay only into group 0), per-parameter gradient
# clipping through p.grad.data.mul_, cancelling the last layer's gradients in the first epoch by
# `p.grad = None`, the teacher EMA by param_k.data.mul_(m).add_((1 - m) * param_q.detach().data),
# and get_last_selfattention for the attention maps; init_distributed_mode's single-process start
# (gloo, env:// with a free port, world_size=1), the centre's dist.all_reduce, and eval_knn.py's
# extract_features (dist.all_gather(list(y_all.unbind(0)), index, async_op=True).wait(),
# index_copy_) and knn_classifier (topk, gather on an expanded label row, resize_ + scatter_,
# div_().exp_(), sort(1, True), narrow). Data: 20x20 RGB "blobs" made with NumPy.
# qkv_bias=False (the class default): a key bias has a zero gradient up to rounding, which AdamW
# turns into full-size steps that differ between any two libraries.
import math
import os
import socket
import types

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report


# ---- utils.py
def cosine_scheduler(base_value, final_value, epochs, niter_per_ep, warmup_epochs=0,
                     start_warmup_value=0):
    warmup_schedule = np.array([])
    warmup_iters = warmup_epochs * niter_per_ep
    if warmup_epochs > 0:
        warmup_schedule = np.linspace(start_warmup_value, base_value, warmup_iters)

    iters = np.arange(epochs * niter_per_ep - warmup_iters)
    schedule = final_value + 0.5 * (base_value - final_value) * (
        1 + np.cos(np.pi * iters / len(iters)))

    schedule = np.concatenate((warmup_schedule, schedule))
    assert len(schedule) == epochs * niter_per_ep
    return schedule


def is_dist_avail_and_initialized():
    if not dist.is_available():
        return False
    if not dist.is_initialized():
        return False
    return True


def get_world_size():
    if not is_dist_avail_and_initialized():
        return 1
    return dist.get_world_size()


def get_rank():
    if not is_dist_avail_and_initialized():
        return 0
    return dist.get_rank()


def _find_free_port():
    # detectron2's launch.py: let the OS pick a port nobody listens on
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def init_distributed_mode(args):
    # launched with torch.distributed.launch / torchrun
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        args.rank = int(os.environ["RANK"])
        args.world_size = int(os.environ["WORLD_SIZE"])
        args.gpu = int(os.environ["LOCAL_RANK"])
    else:  # one process (DINO starts one GPU this way; here the CPU and gloo)
        print("Will run the code on one process.")
        args.rank, args.gpu, args.world_size = 0, 0, 1
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(_find_free_port())
    dist.init_process_group(backend="gloo", init_method=args.dist_url,
                            world_size=args.world_size, rank=args.rank)
    print("| distributed init (rank {}): {}".format(args.rank, args.dist_url), flush=True)
    dist.barrier()


def clip_gradients(model, clip):
    norms = []
    for name, p in model.named_parameters():
        if p.grad is not None:
            param_norm = p.grad.data.norm(2)
            norms.append(param_norm.item())
            clip_coef = clip / (param_norm + 1e-6)
            if clip_coef < 1:
                p.grad.data.mul_(clip_coef)
    return norms


def cancel_gradients_last_layer(epoch, model, freeze_last_layer):
    if epoch >= freeze_last_layer:
        return
    for n, p in model.named_parameters():
        if "last_layer" in n:
            p.grad = None


def get_params_groups(model):
    regularized = []
    not_regularized = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # we do not regularize biases nor Norm parameters
        if name.endswith(".bias") or len(param.shape) == 1:
            not_regularized.append(param)
        else:
            regularized.append(param)
    return [{"params": regularized}, {"params": not_regularized, "weight_decay": 0.0}]


class MultiCropWrapper(nn.Module):
    """Perform forward pass separately on each resolution input. The inputs corresponding to a
    single resolution are clubbed and single forward is run on the same resolution inputs."""

    def __init__(self, backbone, head):
        super(MultiCropWrapper, self).__init__()
        # disable layers dedicated to ImageNet labels classification
        backbone.fc, backbone.head = nn.Identity(), nn.Identity()
        self.backbone = backbone
        self.head = head

    def forward(self, x):
        # convert to list
        if not isinstance(x, list):
            x = [x]
        idx_crops = torch.cumsum(torch.unique_consecutive(
            torch.tensor([inp.shape[-1] for inp in x]),
            return_counts=True,
        )[1], 0)
        start_idx, output = 0, torch.empty(0).to(x[0].device)
        for end_idx in idx_crops:
            _out = self.backbone(torch.cat(x[start_idx: end_idx]))
            # The output is a tuple with XCiT model. See:
            # https://github.com/facebookresearch/xcit/blob/master/xcit.py#L404-L405
            if isinstance(_out, tuple):
                _out = _out[0]
            # accumulate outputs
            output = torch.cat((output, _out))
            start_idx = end_idx
        # Run the head forward on the concatenated features.
        return self.head(output)


# ---- vision_transformer.py
class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features=None, out_features=None, act_layer=nn.GELU,
                 drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        hidden_features = hidden_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.fc1(x)
        x = self.act(x)
        x = self.drop(x)
        x = self.fc2(x)
        x = self.drop(x)
        return x


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0,
                 proj_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim**-0.5

        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        qkv = qkv.permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]

        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)

        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        x = self.proj(x)
        x = self.proj_drop(x)
        return x, attn


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, qk_scale=None,
                 norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale)
        self.norm2 = norm_layer(dim)
        mlp_hidden_dim = int(dim * mlp_ratio)
        self.mlp = Mlp(in_features=dim, hidden_features=mlp_hidden_dim)

    def forward(self, x, return_attention=False):
        y, attn = self.attn(self.norm1(x))
        if return_attention:
            return attn
        x = x + y
        x = x + self.mlp(self.norm2(x))
        return x


class PatchEmbed(nn.Module):
    """Image to Patch Embedding"""

    def __init__(self, img_size=16, patch_size=4, in_chans=3, embed_dim=24):
        super().__init__()
        num_patches = (img_size // patch_size) * (img_size // patch_size)
        self.img_size = img_size
        self.patch_size = patch_size
        self.num_patches = num_patches
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        B, C, H, W = x.shape
        x = self.proj(x).flatten(2).transpose(1, 2)
        return x


class VisionTransformer(nn.Module):
    """Vision Transformer"""

    def __init__(self, img_size=[16], patch_size=4, in_chans=3, num_classes=0, embed_dim=24,
                 depth=2, num_heads=3, mlp_ratio=2.0, qkv_bias=False, norm_layer=nn.LayerNorm):
        super().__init__()
        self.num_features = self.embed_dim = embed_dim

        self.patch_embed = PatchEmbed(img_size=img_size[0], patch_size=patch_size,
                                      in_chans=in_chans, embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList([
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  norm_layer=norm_layer)
            for i in range(depth)])
        self.norm = norm_layer(embed_dim)

        # Classifier head
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()

        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(self._init_weights)

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)
        elif isinstance(m, nn.LayerNorm):
            nn.init.constant_(m.bias, 0)
            nn.init.constant_(m.weight, 1.0)

    def interpolate_pos_encoding(self, x, w, h):
        npatch = x.shape[1] - 1
        N = self.pos_embed.shape[1] - 1
        if npatch == N and w == h:
            return self.pos_embed
        class_pos_embed = self.pos_embed[:, 0]
        patch_pos_embed = self.pos_embed[:, 1:]
        dim = x.shape[-1]
        w0 = w // self.patch_embed.patch_size
        h0 = h // self.patch_embed.patch_size
        # we add a small number to avoid floating point error in the interpolation
        # see discussion at https://github.com/facebookresearch/dino/issues/8
        w0, h0 = w0 + 0.1, h0 + 0.1
        patch_pos_embed = nn.functional.interpolate(
            patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(
                0, 3, 1, 2),
            scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)),
            mode="bicubic",
        )
        assert int(w0) == patch_pos_embed.shape[-2] and int(h0) == patch_pos_embed.shape[-1]
        patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
        return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)

    def prepare_tokens(self, x):
        B, nc, w, h = x.shape
        x = self.patch_embed(x)  # patch linear embedding

        # add the [CLS] token to the embed patch tokens
        cls_tokens = self.cls_token.expand(B, -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)

        # add positional encoding to each token
        x = x + self.interpolate_pos_encoding(x, w, h)
        return x

    def forward(self, x):
        x = self.prepare_tokens(x)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)
        return x[:, 0]

    def get_last_selfattention(self, x):
        x = self.prepare_tokens(x)
        for i, blk in enumerate(self.blocks):
            if i < len(self.blocks) - 1:
                x = blk(x)
            else:
                # return attention of the last block
                return blk(x, return_attention=True)


class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, use_bn=False, norm_last_layer=True, nlayers=3,
                 hidden_dim=32, bottleneck_dim=16):
        super().__init__()
        nlayers = max(nlayers, 1)
        if nlayers == 1:
            self.mlp = nn.Linear(in_dim, bottleneck_dim)
        else:
            layers = [nn.Linear(in_dim, hidden_dim)]
            if use_bn:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(nn.GELU())
            for _ in range(nlayers - 2):
                layers.append(nn.Linear(hidden_dim, hidden_dim))
                if use_bn:
                    layers.append(nn.BatchNorm1d(hidden_dim))
                layers.append(nn.GELU())
            layers.append(nn.Linear(hidden_dim, bottleneck_dim))
            self.mlp = nn.Sequential(*layers)
        self.apply(self._init_weights)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        if norm_last_layer:
            self.last_layer.weight_g.requires_grad = False

    def _init_weights(self, m):
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.mlp(x)
        x = nn.functional.normalize(x, dim=-1, p=2)
        x = self.last_layer(x)
        return x


# ---- main_dino.py
class DINOLoss(nn.Module):
    def __init__(self, out_dim, ncrops, warmup_teacher_temp, teacher_temp,
                 warmup_teacher_temp_epochs, nepochs, student_temp=0.1, center_momentum=0.9):
        super().__init__()
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.ncrops = ncrops
        self.register_buffer("center", torch.zeros(1, out_dim))
        # we apply a warm up for the teacher temperature because
        # a too high temperature makes the training instable at the beginning
        self.teacher_temp_schedule = np.concatenate((
            np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs),
            np.ones(nepochs - warmup_teacher_temp_epochs) * teacher_temp,
        ))

    def forward(self, student_output, teacher_output, epoch):
        """Cross-entropy between softmax outputs of the teacher and student networks."""
        student_out = student_output / self.student_temp
        student_out = student_out.chunk(self.ncrops)

        # teacher centering and sharpening
        temp = self.teacher_temp_schedule[epoch]
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1)
        teacher_out = teacher_out.detach().chunk(2)

        total_loss = 0
        n_loss_terms = 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    # we skip cases where student and teacher operate on the same view
                    continue
                loss = torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1)
                total_loss += loss.mean()
                n_loss_terms += 1
        total_loss /= n_loss_terms
        self.update_center(teacher_output)
        return total_loss

    @torch.no_grad()
    def update_center(self, teacher_output):
        """Update center used for teacher output."""
        batch_center = torch.sum(teacher_output, dim=0, keepdim=True)
        dist.all_reduce(batch_center)
        batch_center = batch_center / (len(teacher_output) * dist.get_world_size())
        # ema update
        self.center = self.center * self.center_momentum + batch_center * (
            1 - self.center_momentum)


# ---- the augmentation, by hand on tensors (DataAugmentationDINO's pipeline)
class DataAugmentationDINO:
    def __init__(self, global_crops_scale, local_crops_scale, local_crops_number, rng,
                 global_size=16, local_size=8):
        self.global_crops_scale = global_crops_scale
        self.local_crops_scale = local_crops_scale
        self.local_crops_number = local_crops_number
        self.rng = rng
        self.global_size = global_size
        self.local_size = local_size
        self.mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        self.std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)

    def random_resized_crop(self, img, size, scale, ratio=(3.0 / 4.0, 4.0 / 3.0)):
        _, height, width = img.shape
        area = height * width
        log_ratio = np.log(ratio)
        for _ in range(10):
            target_area = area * self.rng.uniform(scale[0], scale[1])
            aspect_ratio = math.exp(self.rng.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect_ratio)))
            h = int(round(math.sqrt(target_area / aspect_ratio)))
            if 0 < w <= width and 0 < h <= height:
                i = int(self.rng.integers(0, height - h + 1))
                j = int(self.rng.integers(0, width - w + 1))
                break
        else:
            i, j, h, w = 0, 0, height, width
        crop = img[:, i:i + h, j:j + w]
        return F.interpolate(crop.unsqueeze(0), size=(size, size), mode="bilinear",
                             align_corners=False, antialias=True).squeeze(0)

    def rotated_crop(self, img, size, degrees=15.0):
        angle = math.radians(self.rng.uniform(-degrees, degrees))
        zoom = self.rng.uniform(0.7, 0.9)
        theta = torch.tensor([[math.cos(angle) * zoom, -math.sin(angle) * zoom, 0.0],
                              [math.sin(angle) * zoom, math.cos(angle) * zoom, 0.0]],
                             dtype=torch.float32)
        grid = F.affine_grid(theta.unsqueeze(0), [1, 3, size, size], align_corners=False)
        return F.grid_sample(img.unsqueeze(0), grid, mode="bilinear", padding_mode="reflection",
                             align_corners=False).squeeze(0)

    def flip_and_color_jitter(self, img):
        if self.rng.random() < 0.5:
            img = torch.flip(img, dims=[-1])
        if self.rng.random() < 0.8:
            b, c, s = self.rng.uniform(0.6, 1.4, size=3)
            img = (img * b).clamp(0, 1)
            mean = img.mean(dim=(-3, -2, -1), keepdim=True)
            img = (c * img + (1 - c) * mean).clamp(0, 1)
            gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0)
            img = (s * img + (1 - s) * gray).clamp(0, 1)
        if self.rng.random() < 0.2:
            img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).expand(3, -1, -1)
        return img

    def gaussian_blur(self, img, p):
        if self.rng.random() >= p:
            return img
        sigma = self.rng.uniform(0.1, 2.0)
        half = 1
        xs = torch.arange(-half, half + 1, dtype=torch.float32)
        kernel1d = torch.exp(-0.5 * (xs / sigma) ** 2)
        kernel1d = kernel1d / kernel1d.sum()
        x = F.pad(img.unsqueeze(0), [half, half, half, half], mode="reflect")
        x = F.conv2d(x, kernel1d.view(1, 1, 1, -1).repeat(3, 1, 1, 1), groups=3)
        x = F.conv2d(x, kernel1d.view(1, 1, -1, 1).repeat(3, 1, 1, 1), groups=3)
        return x.squeeze(0)

    def solarize(self, img, p, threshold=0.5):
        if self.rng.random() >= p:
            return img
        return torch.where(img >= threshold, 1.0 - img, img)

    def normalize(self, img):
        return (img - self.mean) / self.std

    def __call__(self, image):
        crops = []
        g = self.random_resized_crop(image, self.global_size, self.global_crops_scale)
        crops.append(self.normalize(self.gaussian_blur(self.flip_and_color_jitter(g), 1.0)))
        g = self.rotated_crop(image, self.global_size)
        g = self.solarize(self.gaussian_blur(self.flip_and_color_jitter(g), 0.1), 0.2)
        crops.append(self.normalize(g))
        for _ in range(self.local_crops_number):
            c = self.random_resized_crop(image, self.local_size, self.local_crops_scale)
            crops.append(self.normalize(self.gaussian_blur(self.flip_and_color_jitter(c), 0.5)))
        return crops


# ---- eval_knn.py
@torch.no_grad()
def extract_features(model, batches, n_samples):
    features = None
    for samples, index in batches:
        feats = model(samples).clone()

        # init storage feature matrix
        if dist.get_rank() == 0 and features is None:
            features = torch.zeros(n_samples, feats.shape[-1])
            print(f"Storing features into tensor of shape {features.shape}")

        # get indexes from all processes
        y_all = torch.empty(dist.get_world_size(), index.size(0), dtype=index.dtype,
                            device=index.device)
        y_l = list(y_all.unbind(0))
        y_all_reduce = torch.distributed.all_gather(y_l, index, async_op=True)
        y_all_reduce.wait()
        index_all = torch.cat(y_l)

        # share features between processes
        feats_all = torch.empty(dist.get_world_size(), feats.size(0), feats.size(1),
                                dtype=feats.dtype, device=feats.device)
        output_l = list(feats_all.unbind(0))
        output_all_reduce = torch.distributed.all_gather(output_l, feats, async_op=True)
        output_all_reduce.wait()

        # update storage feature matrix
        if dist.get_rank() == 0:
            features.index_copy_(0, index_all, torch.cat(output_l))
    return features


@torch.no_grad()
def knn_classifier(train_features, train_labels, test_features, test_labels, k, T,
                   num_classes=1000):
    top1, top5, total = 0.0, 0.0, 0
    train_features = train_features.t()
    num_test_images, num_chunks = test_labels.shape[0], 2
    imgs_per_chunk = num_test_images // num_chunks
    retrieval_one_hot = torch.zeros(k, num_classes).to(train_features.device)
    for idx in range(0, num_test_images, imgs_per_chunk):
        # get the features for test images
        features = test_features[idx: min((idx + imgs_per_chunk), num_test_images), :]
        targets = test_labels[idx: min((idx + imgs_per_chunk), num_test_images)]
        batch_size = targets.shape[0]

        # calculate the dot product and compute top-k neighbors
        similarity = torch.mm(features, train_features)
        distances, indices = similarity.topk(k, largest=True, sorted=True)
        candidates = train_labels.view(1, -1).expand(batch_size, -1)
        retrieved_neighbors = torch.gather(candidates, 1, indices)

        retrieval_one_hot.resize_(batch_size * k, num_classes).zero_()
        retrieval_one_hot.scatter_(1, retrieved_neighbors.view(-1, 1), 1)
        distances_transform = distances.clone().div_(T).exp_()
        probs = torch.sum(
            torch.mul(
                retrieval_one_hot.view(batch_size, -1, num_classes),
                distances_transform.view(batch_size, -1, 1),
            ),
            1,
        )
        _, predictions = probs.sort(1, True)

        # find the predictions that match the target
        correct = predictions.eq(targets.data.view(-1, 1))
        top1 = top1 + correct.narrow(1, 0, 1).sum().item()
        top5 = top5 + correct.narrow(1, 0, min(5, k)).sum().item()  # top5 needs k >= 5
        total += targets.size(0)
    top1 = top1 * 100.0 / total
    top5 = top5 * 100.0 / total
    return top1, top5


def make_images(n, seed, size=20):
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    images = np.empty((n, 3, size, size))
    for i in range(n):
        cy, cx = rng.uniform(4, size - 4, size=2)
        r = rng.uniform(2, 6)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        images[i] = blob[None] * rng.uniform(0.3, 1.0, size=(3, 1, 1))
    images += 0.03 * rng.standard_normal(images.shape)
    return torch.from_numpy(np.clip(images, 0, 1).astype(np.float32))


def collate(batch):
    # a list of per-image crop lists -> a list of batched crops, as default_collate does
    return [torch.stack(views) for views in zip(*batch)]


def main():
    args = types.SimpleNamespace(dist_url="env://")
    init_distributed_mode(args)
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    images = make_images(12, seed=1)
    transform = DataAugmentationDINO((0.4, 1.0), (0.05, 0.4), local_crops_number=4, rng=rng)

    out_dim, epochs, batch_size = 32, 2, 4
    student = VisionTransformer()
    teacher = VisionTransformer()
    student = MultiCropWrapper(student, DINOHead(24, out_dim, norm_last_layer=True))
    teacher = MultiCropWrapper(teacher, DINOHead(24, out_dim))
    W = reference_weights(student)
    with torch.no_grad():
        for name, p in student.named_parameters():
            if name != "head.last_layer.weight_g":
                p.copy_(torch.from_numpy(W[name]))
    # teacher and student start with the same weights
    teacher.load_state_dict(student.state_dict())
    # there is no backpropagation through the teacher, so no need for gradients
    for p in teacher.parameters():
        p.requires_grad = False
    n_student = sum(p.numel() for p in student.parameters() if p.requires_grad)
    param_names = [n for n, _ in student.named_parameters()]

    dino_loss = DINOLoss(out_dim, transform.local_crops_number + 2, warmup_teacher_temp=0.04,
                         teacher_temp=0.07, warmup_teacher_temp_epochs=1, nepochs=epochs)
    params_groups = get_params_groups(student)
    optimizer = torch.optim.AdamW(params_groups)
    niter_per_ep = len(images) // batch_size
    lr_schedule = cosine_scheduler(5e-4 * batch_size / 256.0 * 64, 1e-6, epochs, niter_per_ep,
                                   warmup_epochs=1)
    wd_schedule = cosine_scheduler(0.04, 0.4, epochs, niter_per_ep)
    momentum_schedule = cosine_scheduler(0.996, 1, epochs, niter_per_ep)

    losses, clip_norms, centers, frozen_grads, lrs, wds = [], [], [], [], [], []
    for epoch in range(epochs):
        for it_in_epoch in range(niter_per_ep):
            it = niter_per_ep * epoch + it_in_epoch  # global training iteration
            for i, param_group in enumerate(optimizer.param_groups):
                param_group["lr"] = lr_schedule[it]
                if i == 0:  # only the first group is regularized
                    param_group["weight_decay"] = wd_schedule[it]
            batch = [transform(images[k]) for k in
                     range(it_in_epoch * batch_size, (it_in_epoch + 1) * batch_size)]
            crops = collate(batch)

            teacher_output = teacher(crops[:2])  # only the 2 global views pass the teacher
            student_output = student(crops)
            loss = dino_loss(student_output, teacher_output, epoch)
            if not math.isfinite(loss.item()):
                raise SystemExit("Loss is {}, stopping training".format(loss.item()))

            optimizer.zero_grad()
            loss.backward()
            norms = clip_gradients(student, 3.0)
            cancel_gradients_last_layer(epoch, student, 1)
            frozen_grads.append(student.head.last_layer.weight_v.grad is None)
            optimizer.step()

            # EMA update for the teacher
            with torch.no_grad():
                m = momentum_schedule[it]  # momentum parameter
                for param_q, param_k in zip(student.parameters(), teacher.parameters()):
                    param_k.data.mul_(m).add_((1 - m) * param_q.detach().data)

            losses.append(loss.item())
            clip_norms.append(norms)
            centers.append(dino_loss.center[0, :4].tolist())
            lrs.append(optimizer.param_groups[0]["lr"])
            wds.append([g["weight_decay"] for g in optimizer.param_groups])

    crop_shapes = [list(c.shape) for c in crops]
    student.eval()
    with torch.no_grad():
        attn = teacher.backbone.get_last_selfattention(crops[0][:2])
        feats = teacher.backbone(crops[0])
        local_feats = student.backbone(crops[3])
        pos_big = student.backbone.interpolate_pos_encoding(
            torch.zeros(1, 26, 24), 20, 20)  # a 5x5 grid from the 4x4 table
    # k-NN evaluation on the teacher's features (eval_knn.py), labels from the blobs' colour
    eval_images = make_images(16, seed=2)
    eval_labels = ((eval_images[:, 0].mean((1, 2)) > eval_images[:, 2].mean((1, 2))).long() * 2
                   + (eval_images[:, 1].mean((1, 2)) > 0.1).long())
    eval_crops = (eval_images[:, :, 2:18, 2:18] - transform.mean) / transform.std
    batches = [(eval_crops[i:i + 4], torch.arange(i, i + 4)) for i in range(0, 16, 4)]
    backbone = teacher.backbone
    backbone.eval()
    feats = nn.functional.normalize(extract_features(backbone, batches, 16), dim=1, p=2)
    knn = knn_classifier(feats[:10], eval_labels[:10], feats[10:], eval_labels[10:], k=3,
                         T=0.07, num_classes=4)
    world = [get_world_size(), get_rank(), is_dist_avail_and_initialized()]
    dist.destroy_process_group()

    teacher_student_gap = sum(
        (pk - pq).abs().sum().item()
        for pq, pk in zip(student.parameters(), teacher.parameters()))
    weight_g = student.head.last_layer.weight_g.flatten()[:4].tolist()

    report(
        n_student=int(n_student), param_names=param_names, crop_shapes=crop_shapes,
        crop_means=[c.mean().item() for c in crops], losses=losses, clip_norms=clip_norms,
        centers=centers, frozen_grads=frozen_grads, lrs=lrs, wds=wds,
        attn_shape=list(attn.shape), attn=attn[0, :, 0, :5].tolist(),
        feats=feats[:2, :6].tolist(), local_feats=local_feats[:2, :6].tolist(),
        pos_big=pos_big[0, 1:4, :4].tolist(), pos_big_shape=list(pos_big.shape),
        teacher_student_gap=teacher_student_gap, weight_g=weight_g,
        teacher_temps=dino_loss.teacher_temp_schedule.tolist(),
        center_is_buffer=[n for n, _ in dino_loss.named_buffers()],
        knn=list(knn), knn_feats=feats[:3, :4].tolist(), world=world,
        destroyed=dist.is_initialized(),
    )


if __name__ == "__main__":
    main()
