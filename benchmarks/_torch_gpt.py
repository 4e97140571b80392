"""nanoGPT's model in torch.nn, the rival of benchmarks/gpt_step.py and memory.py.

Imports torch only (not descent), so that the memory benchmark's PyTorch process holds nothing
of descent's. The config is any object with vocab_size, block_size, n_layer, n_head, n_embd and
bias attributes (descent's GPTConfig or a SimpleNamespace).
"""

from __future__ import annotations

import torch

tnn = torch.nn
tF = torch.nn.functional


class TorchAttention(tnn.Module):
    def __init__(self, c) -> None:
        super().__init__()
        self.n_head, self.n_embd = c.n_head, c.n_embd
        self.c_attn = tnn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = tnn.Linear(c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = tF.scaled_dot_product_attention(q, k, v, is_causal=True)  # nanoGPT's flash path
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class TorchBlock(tnn.Module):
    def __init__(self, c) -> None:
        super().__init__()
        self.ln_1 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.attn = TorchAttention(c)
        self.ln_2 = tnn.LayerNorm(c.n_embd, bias=c.bias)
        self.mlp = tnn.ModuleDict(
            dict(
                c_fc=tnn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias),
                c_proj=tnn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias),
            )
        )
        self.gelu = tnn.GELU()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp.c_proj(self.gelu(self.mlp.c_fc(self.ln_2(x))))


class TorchGPT(tnn.Module):
    def __init__(self, c) -> None:
        super().__init__()
        self.transformer = tnn.ModuleDict(
            dict(
                wte=tnn.Embedding(c.vocab_size, c.n_embd),
                wpe=tnn.Embedding(c.block_size, c.n_embd),
                h=tnn.ModuleList(TorchBlock(c) for _ in range(c.n_layer)),
                ln_f=tnn.LayerNorm(c.n_embd, bias=c.bias),
            )
        )
        self.lm_head = tnn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight

    def forward(self, idx, targets):
        T = idx.shape[1]
        pos = torch.arange(T, dtype=torch.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = tF.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss


def torch_optimizer(tmodel, lr, betas, wd):
    """nanoGPT's configure_optimizers: decay on tensors with >= 2 dims."""
    params = [p for p in tmodel.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": wd},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


def nanogpt_init(tmodel, n_layer: int) -> None:
    """nanoGPT's initialisation: N(0, 0.02) for Linear and Embedding weights, zero biases, then
    N(0, 0.02 / sqrt(2 n_layer)) for the residual projections (c_proj), from torch's global RNG."""
    import math

    for m in tmodel.modules():
        if isinstance(m, (tnn.Linear, tnn.Embedding)):
            tnn.init.normal_(m.weight, mean=0.0, std=0.02)
            if getattr(m, "bias", None) is not None:
                tnn.init.zeros_(m.bias)
    for name, p in tmodel.named_parameters():
        if name.endswith("c_proj.weight"):
            tnn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * n_layer))
