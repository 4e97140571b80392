# Transformers for tabular data as rtdl (Gorishniy et al.'s FT-Transformer) and lucidrains'
# tab-transformer-pytorch write them (our own condensed rewrites): a numerical feature tokenizer
# (weight[None] * x[..., None] + bias[None] with rtdl's _TokenInitialization "uniform" by
# nn.init.uniform_(-1 / sqrt(d), 1 / sqrt(d))), categorical embeddings offset into one table by
# a buffer torch.tensor([0] + cardinalities[:-1]).cumsum(0), a CLS token appended with
# .expand(len(x), 1, -1), PLR periodic embeddings (2 * pi * coefficients * x, cat of cos / sin,
# Linear + ReLU), a pre-norm encoder built from nn.TransformerEncoderLayer(norm_first=True,
# activation="gelu", batch_first=True) whose first layer's attention runs without its norm
# through the layer's _sa_block / _ff_block (rtdl's first_prenormalization=False), only the
# CLS row through the last layer's FFN, TabTransformer's column embeddings added to categorical
# tokens, the numeric columns LayerNorm'd and concatenated; AdamW with rtdl's no-weight-decay
# rule (tokenizers, norms, biases), a ReduceLROnPlateau on validation loss and binary
# cross-entropy on one logit.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(31)
n, n_num, cards = 96, 3, [3, 4, 2]
x_num = rng.standard_normal((n, n_num)).astype(np.float32)
x_cat = np.stack([rng.integers(0, c, n) for c in cards], 1)
logit = x_num[:, 0] * 1.2 - x_num[:, 1] ** 2 + (x_cat[:, 1] == 2) * 1.5 - 0.3
yv = (logit + 0.3 * rng.standard_normal(n) > 0).astype(np.float32)
Xn, Xc, Y = torch.from_numpy(x_num), torch.from_numpy(x_cat), torch.from_numpy(yv)


class NumericalFeatureTokenizer(nn.Module):
    def __init__(self, n_features, d_token, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.Tensor(n_features, d_token))
        self.bias = nn.Parameter(torch.Tensor(n_features, d_token)) if bias else None
        d_sqrt_inv = 1 / math.sqrt(d_token)
        for parameter in [self.weight, self.bias]:
            if parameter is not None:
                nn.init.uniform_(parameter, a=-d_sqrt_inv, b=d_sqrt_inv)

    def forward(self, x):
        x = self.weight[None] * x[..., None]
        if self.bias is not None:
            x = x + self.bias[None]
        return x


class CategoricalFeatureTokenizer(nn.Module):
    def __init__(self, cardinalities, d_token):
        super().__init__()
        category_offsets = torch.tensor([0] + cardinalities[:-1]).cumsum(0)
        self.register_buffer("category_offsets", category_offsets, persistent=False)
        self.embeddings = nn.Embedding(sum(cardinalities), d_token)
        self.bias = nn.Parameter(torch.Tensor(len(cardinalities), d_token))

    def forward(self, x):
        x = self.embeddings(x + self.category_offsets[None])
        return x + self.bias[None]


class CLSToken(nn.Module):
    def __init__(self, d_token):
        super().__init__()
        self.weight = nn.Parameter(torch.Tensor(d_token))

    def expand(self, *leading_dimensions):
        if not leading_dimensions:
            return self.weight
        new_dims = (1,) * (len(leading_dimensions) - 1)
        return self.weight.view(*new_dims, -1).expand(*leading_dimensions, -1)

    def forward(self, x):
        return torch.cat([x, self.expand(len(x), 1)], dim=1)


class PeriodicEmbeddings(nn.Module):
    def __init__(self, n_features, n_frequencies, d_out, sigma=0.5):
        super().__init__()
        self.coefficients = nn.Parameter(torch.Tensor(n_features, n_frequencies))
        self.linear = nn.Linear(2 * n_frequencies, d_out)

    def forward(self, x):
        x = 2 * math.pi * self.coefficients[None] * x[..., None]
        x = torch.cat([torch.cos(x), torch.sin(x)], -1)
        return F.relu(self.linear(x))


class FTTransformer(nn.Module):
    def __init__(self, d=8, n_blocks=2):
        super().__init__()
        self.num_tok = NumericalFeatureTokenizer(n_num, d)
        self.plr = PeriodicEmbeddings(n_num, 4, d)
        self.cat_tok = CategoricalFeatureTokenizer(cards, d)
        self.cls = CLSToken(d)
        self.blocks = nn.ModuleList(
            [
                nn.TransformerEncoderLayer(
                    d, 2, 2 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
                )
                for _ in range(n_blocks)
            ]
        )
        self.head_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 1)

    def forward(self, xn, xc):
        x = torch.cat([self.num_tok(xn) + self.plr(xn), self.cat_tok(xc)], dim=1)
        x = self.cls(x)
        for i, block in enumerate(self.blocks):
            if i == 0:
                # first_prenormalization=False: no norm in front of the first attention
                x = x + block._sa_block(x, None, None)
                x = x + block._ff_block(block.norm2(x))
            elif i + 1 == len(self.blocks):
                # the last block: attention for every token, the FFN only for the CLS token
                x = x + block._sa_block(block.norm1(x), None, None)
                x = x[:, -1:]
                x = x + block._ff_block(block.norm2(x))
            else:
                x = block(x)
        return self.head(F.relu(self.head_norm(x[:, -1]))).squeeze(-1)


class TabTransformer(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.embeds = nn.Embedding(sum(cards), d)
        self.column_embedding = nn.Parameter(torch.Tensor(len(cards), d))
        self.register_buffer(
            "offsets",
            F.pad(torch.tensor(cards), (1, 0), value=0).cumsum(dim=-1)[:-1],
            persistent=False,
        )
        self.transformer = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, 2, 16, 0.0, batch_first=True),
            1,
            enable_nested_tensor=False,
        )
        self.norm = nn.LayerNorm(n_num)
        self.mlp = nn.Sequential(nn.Linear(len(cards) * d + n_num, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, xn, xc):
        x = self.embeds(xc + self.offsets) + self.column_embedding
        x = self.transformer(x)
        flat = x.flatten(1)
        return self.mlp(torch.cat((flat, self.norm(xn)), dim=-1)).squeeze(-1)


def train(model, epochs=5):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    no_wd_names = ["tokenizer", ".norm", ".bias", "cls", "tok", "column_embedding"]
    groups = [
        {
            "params": [
                p for n_, p in model.named_parameters() if not any(x in n_ for x in no_wd_names)
            ]
        },
        {
            "params": [
                p for n_, p in model.named_parameters() if any(x in n_ for x in no_wd_names)
            ],
            "weight_decay": 0.0,
        },
    ]
    opt = torch.optim.AdamW(groups, lr=3e-3, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=0)
    losses, vals, lrs = [], [], []
    for epoch in range(epochs):
        model.train()
        for b in range(0, 64, 16):
            out = model(Xn[b : b + 16], Xc[b : b + 16])
            loss = F.binary_cross_entropy_with_logits(out, Y[b : b + 16])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val = F.binary_cross_entropy_with_logits(model(Xn[64:], Xc[64:]), Y[64:]).item()
        sched.step(val)
        vals.append(val)
        lrs.append(opt.param_groups[0]["lr"])
    with torch.no_grad():
        acc = ((model(Xn[64:], Xc[64:]) > 0).float() == Y[64:]).float().mean().item()
    return losses, vals, lrs, acc


ft = train(FTTransformer())
tab = train(TabTransformer())
report(
    ft_losses=ft[0],
    ft_vals=ft[1],
    ft_lrs=ft[2],
    ft_acc=ft[3],
    tab_losses=tab[0],
    tab_vals=tab[1],
    tab_lrs=tab[2],
    tab_acc=tab[3],
)
