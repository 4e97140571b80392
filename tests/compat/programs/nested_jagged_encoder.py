# A variable-length sequence classifier on nested tensors (torch.nested, layout=torch.jagged):
# no padding inside the encoder. Embeddings of each sequence packed with as_nested_tensor, a
# pre-norm encoder block (LayerNorm, per-head scaled_dot_product_attention within each
# sequence, RMSNorm, GELU MLP), mean pooling through to_padded_tensor, AdamW. Our own program;
# data generated with NumPy.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

VOCAB, D, HEADS = 12, 16, 2
rng = np.random.default_rng(7)


def make_batch(n):
    """Token sequences of random length (2..9); the label: token 5 occurs more than token 7."""
    seqs, labels = [], []
    for _ in range(n):
        seq = rng.integers(1, VOCAB, size=rng.integers(2, 10))
        seqs.append(torch.from_numpy(seq.astype(np.int64)))
        labels.append(int((seq == 5).sum() > (seq == 7).sum()))
    return seqs, torch.tensor(labels)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.q, self.k, self.v = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        self.proj = nn.Linear(D, D)
        self.ln2 = nn.RMSNorm(D, eps=1e-6)
        self.ff1, self.ff2 = nn.Linear(D, 32), nn.Linear(32, D)

    def forward(self, x):  # x: (B, j, D) nested
        B = x.size(0)
        h = self.ln1(x)
        q, k, v = (m(h).view(B, -1, HEADS, D // HEADS).transpose(1, 2)
                   for m in (self.q, self.k, self.v))  # fmt: skip
        a = F.scaled_dot_product_attention(q, k, v)  # (B, H, j, D/H): within each sequence
        x = x + self.proj(a.transpose(1, 2).reshape(B, -1, D))
        return x + self.ff2(F.gelu(self.ff1(self.ln2(x))))


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D)
        self.block = Block()
        self.head = nn.Linear(D, 2)

    def forward(self, seqs):
        x = torch.nested.as_nested_tensor([self.embed(s) for s in seqs], layout=torch.jagged)
        h = self.block(x)
        lengths = h.offsets().diff().unsqueeze(-1).float()  # (B, 1)
        pooled = h.to_padded_tensor(0.0).sum(1) / lengths  # mean over each sequence
        return self.head(pooled)


model = Classifier()
W = reference_weights(model)
model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)

losses, shapes = [], []
for step in range(6):
    seqs, labels = make_batch(8)
    optimizer.zero_grad()
    loss = F.cross_entropy(model(seqs), labels)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
    print(f"step {step}: loss {losses[-1]:.4f}")

nt = torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged)
with torch.no_grad():
    val_seqs, val_labels = make_batch(16)
    val_loss = F.cross_entropy(model(val_seqs), val_labels).item()
report(
    losses=losses,
    val_loss=val_loss,
    is_nested=nt.is_nested,
    dim=nt.dim(),
    offsets=nt.offsets().tolist(),
    padded_shape=list(nt.to_padded_tensor(0.0).shape),
    values_shape=list(nt.values().shape),
)
