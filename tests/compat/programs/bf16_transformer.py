# A pre-norm transformer language model trained in bfloat16 the way current PyTorch recipes do
# it: `model.to(torch.bfloat16)`, AdamW on bfloat16 parameters, `x.bfloat16()` inputs; then a
# float32 copy trained under `torch.autocast("cpu", dtype=torch.bfloat16)` (bfloat16 products,
# float32 master weights and loss), and a bfloat16 checkpoint round trip through state_dict.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

VOCAB, DIM, HEADS, SEQ, BATCH, STEPS = 24, 32, 4, 10, 4, 6


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.qkv = nn.Linear(DIM, 3 * DIM)
        self.proj = nn.Linear(DIM, DIM)
        self.fc, self.out = nn.Linear(DIM, 4 * DIM), nn.Linear(4 * DIM, DIM)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(DIM, dim=2)
        q, k, v = (z.view(b, t, HEADS, c // HEADS).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, DIM)
        self.pos = nn.Parameter(torch.zeros(SEQ, DIM))
        self.block = Block()
        self.ln = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, VOCAB, bias=False)

    def forward(self, idx):
        h = self.block(self.tok(idx) + self.pos[: idx.shape[1]])
        return self.head(self.ln(h))


def fresh():
    model = TinyLM()
    weights = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(weights[name]))
    return model


rng = np.random.default_rng(0)
data = torch.from_numpy(rng.integers(0, VOCAB, size=(BATCH, SEQ + 1)).astype(np.int64))
x, y = data[:, :-1], data[:, 1:]

# 1. bfloat16 end to end
model = fresh().to(torch.bfloat16)
opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
bf16_losses = []
for step in range(STEPS):
    logits = model(x)
    loss = F.cross_entropy(logits.view(-1, VOCAB), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    bf16_losses.append(loss.item())
dtypes = sorted({str(p.dtype).split(".")[-1] for p in model.parameters()})
state_dtypes = sorted({str(v.dtype).split(".")[-1] for s in opt.state.values()
                       for k, v in s.items() if k != "step"})  # fmt: skip

# 2. float32 master weights under CPU autocast
model32 = fresh()
opt32 = torch.optim.AdamW(model32.parameters(), lr=3e-3)
amp_losses, amp_dtypes = [], []
for step in range(3):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model32(x)
        loss = F.cross_entropy(logits.view(-1, VOCAB), y.reshape(-1))
    amp_dtypes.append([str(t.dtype).split(".")[-1] for t in (logits, loss)])
    opt32.zero_grad()
    loss.backward()
    opt32.step()
    amp_losses.append(loss.item())

# 3. the bfloat16 state dict loads into a fresh bfloat16 model: same outputs
clone = TinyLM().bfloat16()
clone.load_state_dict(model.state_dict())
same = bool(torch.equal(clone(x), model(x)))

report(
    bf16_losses=bf16_losses,
    param_dtypes=dtypes,
    state_dtypes=state_dtypes,
    final_weight_sum=model.head.weight.float().sum().item(),
    amp_losses=amp_losses,
    amp_dtypes=amp_dtypes,
    master_dtype=str(model32.head.weight.grad.dtype).split(".")[-1],
    reload_same=same,
    finfo_eps=torch.finfo(torch.bfloat16).eps,
    printed=repr(torch.tensor([math.pi, 1e-3], dtype=torch.bfloat16)).split("dtype=")[0],
)
