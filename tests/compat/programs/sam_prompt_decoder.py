# Segment Anything's prompt encoder and mask decoder as facebookresearch/segment-anything writes
# them (our own condensed rewrite): PositionEmbeddingRandom (a Gaussian matrix buffer, coords
# mapped to [-1, 1], 2 pi, cat of sin and cos), point prompts shifted by 0.5 with a padding
# point labelled -1 (point_embedding[labels == -1] = 0.0, += self.not_a_point_embed.weight,
# per-label embeddings by boolean-mask in-place adds), box corners as two points, a dense
# no-mask embedding expanded over the image grid, LayerNorm2d (a hand-written channel LayerNorm
# with u = x.mean(1, keepdim=True) and s = (x - u).pow(2).mean(1, keepdim=True)), the
# TwoWayTransformer (self-attention on tokens with the point embedding re-added, token-to-image
# and image-to-token cross attention with a downsample_rate, an MLPBlock), output tokens (an
# IoU token and num_mask_tokens mask tokens) concatenated with sparse prompts,
# torch.repeat_interleave of the image embedding over prompts, output upscaling by two
# ConvTranspose2d with LayerNorm2d and GELU, hypernetwork MLPs producing per-mask weights
# applied by a batched matmul (hyper_in @ upscaled.view(b, c, h * w)), multimask output slicing,
# the IoU head; training with focal + dice losses (torchvision's sigmoid_focal_loss written out)
# and an MSE on the IoU prediction against the actual IoU (detached), AdamW.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

rng = np.random.default_rng(2212)
C, EMB_HW, IMG = 16, 8, 32


class LayerNorm2d(nn.Module):
    def __init__(self, num_channels, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class PositionEmbeddingRandom(nn.Module):
    def __init__(self, num_pos_feats=8, scale=None):
        super().__init__()
        if scale is None or scale <= 0.0:
            scale = 1.0
        g = np.random.default_rng(0).standard_normal((2, num_pos_feats)).astype(np.float32)
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.from_numpy(g))

    def _pe_encoding(self, coords):
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * np.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size):
        h, w = size
        grid = torch.ones((h, w), dtype=self.positional_encoding_gaussian_matrix.dtype)
        y_embed = grid.cumsum(dim=0) - 0.5
        x_embed = grid.cumsum(dim=1) - 0.5
        y_embed = y_embed / h
        x_embed = x_embed / w
        pe = self._pe_encoding(torch.stack([x_embed, y_embed], dim=-1))
        return pe.permute(2, 0, 1)

    def forward_with_coords(self, coords_input, image_size):
        coords = coords_input.clone()
        coords[:, :, 0] = coords[:, :, 0] / image_size[1]
        coords[:, :, 1] = coords[:, :, 1] / image_size[0]
        return self._pe_encoding(coords.to(torch.float))


class PromptEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.pe_layer = PositionEmbeddingRandom(C // 2)
        self.num_point_embeddings = 4
        self.point_embeddings = nn.ModuleList([nn.Embedding(1, C) for _ in range(4)])
        self.not_a_point_embed = nn.Embedding(1, C)
        self.no_mask_embed = nn.Embedding(1, C)

    def get_dense_pe(self):
        return self.pe_layer((EMB_HW, EMB_HW)).unsqueeze(0)

    def _embed_points(self, points, labels, pad):
        points = points + 0.5
        if pad:
            padding_point = torch.zeros((points.shape[0], 1, 2), device=points.device)
            padding_label = -torch.ones((labels.shape[0], 1), device=labels.device)
            points = torch.cat([points, padding_point], dim=1)
            labels = torch.cat([labels, padding_label], dim=1)
        point_embedding = self.pe_layer.forward_with_coords(points, (IMG, IMG))
        point_embedding[labels == -1] = 0.0
        point_embedding[labels == -1] += self.not_a_point_embed.weight
        point_embedding[labels == 0] += self.point_embeddings[0].weight
        point_embedding[labels == 1] += self.point_embeddings[1].weight
        return point_embedding

    def _embed_boxes(self, boxes):
        boxes = boxes + 0.5
        coords = boxes.reshape(-1, 2, 2)
        corner_embedding = self.pe_layer.forward_with_coords(coords, (IMG, IMG))
        corner_embedding[:, 0, :] += self.point_embeddings[2].weight
        corner_embedding[:, 1, :] += self.point_embeddings[3].weight
        return corner_embedding

    def forward(self, points, boxes):
        bs = points[0].shape[0] if points is not None else boxes.shape[0]
        sparse_embeddings = torch.empty((bs, 0, C))
        if points is not None:
            coords, labels = points
            sparse_embeddings = torch.cat(
                [sparse_embeddings, self._embed_points(coords, labels, pad=(boxes is None))], dim=1
            )
        if boxes is not None:
            sparse_embeddings = torch.cat([sparse_embeddings, self._embed_boxes(boxes)], dim=1)
        dense_embeddings = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
            bs, -1, EMB_HW, EMB_HW
        )
        return sparse_embeddings, dense_embeddings


class Attention(nn.Module):
    def __init__(self, embedding_dim, num_heads, downsample_rate=1):
        super().__init__()
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def _separate_heads(self, x, num_heads):
        b, n, c = x.shape
        x = x.reshape(b, n, num_heads, c // num_heads)
        return x.transpose(1, 2)

    def _recombine_heads(self, x):
        b, n_heads, n_tokens, c_per_head = x.shape
        x = x.transpose(1, 2)
        return x.reshape(b, n_tokens, n_heads * c_per_head)

    def forward(self, q, k, v):
        q = self._separate_heads(self.q_proj(q), self.num_heads)
        k = self._separate_heads(self.k_proj(k), self.num_heads)
        v = self._separate_heads(self.v_proj(v), self.num_heads)
        _, _, _, c_per_head = q.shape
        attn = q @ k.permute(0, 1, 3, 2)
        attn = attn / math.sqrt(c_per_head)
        attn = torch.softmax(attn, dim=-1)
        out = self._recombine_heads(attn @ v)
        return self.out_proj(out)


class MLPBlock(nn.Module):
    def __init__(self, embedding_dim, mlp_dim, act=nn.GELU):
        super().__init__()
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x):
        return self.lin2(self.act(self.lin1(x)))


class TwoWayAttentionBlock(nn.Module):
    def __init__(
        self,
        embedding_dim,
        num_heads,
        mlp_dim=32,
        attention_downsample_rate=2,
        skip_first_layer_pe=False,
    ):
        super().__init__()
        self.self_attn = Attention(embedding_dim, num_heads)
        self.norm1 = nn.LayerNorm(embedding_dim)
        self.cross_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm2 = nn.LayerNorm(embedding_dim)
        self.mlp = MLPBlock(embedding_dim, mlp_dim)
        self.norm3 = nn.LayerNorm(embedding_dim)
        self.norm4 = nn.LayerNorm(embedding_dim)
        self.cross_attn_image_to_token = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)
        q = queries + query_pe
        k = keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))
        q = queries + query_pe
        k = keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth=2, embedding_dim=C, num_heads=2):
        super().__init__()
        self.layers = nn.ModuleList(
            [
                TwoWayAttentionBlock(embedding_dim, num_heads, skip_first_layer_pe=(i == 0))
                for i in range(depth)
            ]
        )
        self.final_attn_token_to_image = Attention(embedding_dim, num_heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding, image_pe, point_embedding):
        image_embedding = image_embedding.flatten(2).permute(0, 2, 1)
        image_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries, keys = point_embedding, image_embedding
        for layer in self.layers:
            queries, keys = layer(
                queries=queries, keys=keys, query_pe=point_embedding, key_pe=image_pe
            )
        q = queries + point_embedding
        k = keys + image_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys


class MLP(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, num_layers, sigmoid_output=False):
        super().__init__()
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim])
        )
        self.sigmoid_output = sigmoid_output

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = F.relu(layer(x)) if i < self.num_layers - 1 else layer(x)
        if self.sigmoid_output:
            x = torch.sigmoid(x)
        return x


class MaskDecoder(nn.Module):
    def __init__(self, transformer_dim=C, num_multimask_outputs=3):
        super().__init__()
        self.transformer = TwoWayTransformer()
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            [
                MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
                for _ in range(self.num_mask_tokens)
            ]
        )
        self.iou_prediction_head = MLP(transformer_dim, 32, self.num_mask_tokens, 3)

    def forward(
        self,
        image_embeddings,
        image_pe,
        sparse_prompt_embeddings,
        dense_prompt_embeddings,
        multimask_output,
    ):
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        output_tokens = output_tokens.unsqueeze(0).expand(sparse_prompt_embeddings.size(0), -1, -1)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)
        src = torch.repeat_interleave(
            image_embeddings, tokens.shape[0] // image_embeddings.shape[0], dim=0
        )
        src = src + dense_prompt_embeddings
        pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1 : (1 + self.num_mask_tokens), :]
        src = src.transpose(1, 2).view(b, c, h, w)
        upscaled_embedding = self.output_upscaling(src)
        hyper_in_list = [
            self.output_hypernetworks_mlps[i](mask_tokens_out[:, i, :])
            for i in range(self.num_mask_tokens)
        ]
        hyper_in = torch.stack(hyper_in_list, dim=1)
        b, c, h, w = upscaled_embedding.shape
        masks = (hyper_in @ upscaled_embedding.view(b, c, h * w)).view(b, -1, h, w)
        iou_pred = self.iou_prediction_head(iou_token_out)
        mask_slice = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, mask_slice, :, :], iou_pred[:, mask_slice]


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2):
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * loss).mean()


def dice_loss(inputs, targets):
    inputs = inputs.sigmoid().flatten(1)
    targets = targets.flatten(1)
    numerator = 2 * (inputs * targets).sum(1)
    denominator = inputs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).mean()


pe_enc, dec = PromptEncoder(), MaskDecoder()
mods = nn.ModuleDict({"pe": pe_enc, "dec": dec})
W = reference_weights(mods)
with torch.no_grad():
    for name, p in mods.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
image_emb = torch.from_numpy(rng.standard_normal((4, C, EMB_HW, EMB_HW)).astype(np.float32))
yy, xx = np.mgrid[0:IMG, 0:IMG]
centres = rng.uniform(8, 24, (4, 2))
gt = torch.from_numpy(
    np.stack([((xx - c[0]) ** 2 + (yy - c[1]) ** 2 < 36).astype(np.float32) for c in centres])[
        :, None
    ]
)
points = torch.from_numpy(centres[:, None, :].astype(np.float32))
plabels = torch.ones(4, 1)
boxes = torch.from_numpy(np.concatenate([centres - 6, centres + 6], 1).astype(np.float32))
opt = torch.optim.AdamW(mods.parameters(), lr=1e-3)
losses = []
for step in range(6):
    use_box = step % 2 == 1
    sparse, dense = pe_enc(None if use_box else (points, plabels), boxes if use_box else None)
    masks, iou_pred = dec(image_emb, pe_enc.get_dense_pe(), sparse, dense, multimask_output=False)
    masks = F.interpolate(masks, (IMG, IMG), mode="bilinear", align_corners=False)
    with torch.no_grad():
        pred_bin = (masks > 0).float()
        inter = (pred_bin * gt).sum((2, 3))
        union = pred_bin.sum((2, 3)) + gt.sum((2, 3)) - inter
        iou = inter / union.clamp(min=1)
    loss = 20 * sigmoid_focal_loss(masks, gt) + dice_loss(masks, gt) + F.mse_loss(iou_pred, iou)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
with torch.no_grad():
    sparse, dense = pe_enc((points[:2], plabels[:2]), None)
    multi, iou_multi = dec(
        image_emb[:2], pe_enc.get_dense_pe(), sparse, dense, multimask_output=True
    )
report(
    losses=losses,
    sparse_shape=list(sparse.shape),
    multi_shape=list(multi.shape),
    iou_multi=iou_multi.tolist(),
    multi_mean=multi.mean(dim=(2, 3)).tolist(),
    dense_pe=pe_enc.get_dense_pe()[0, :2, 0, :3].tolist(),
)
