# A sequence classifier of padded token sequences: nn.TransformerEncoder (batch_first,
# norm_first, a key padding mask) next to a bidirectional nn.GRU, masked mean pooling,
# CrossEntropyLoss with label smoothing, AdamW + OneCycleLR, gradient accumulation, an autocast
# context switched off on the CPU, clip_grad_norm_. Our own program; data generated with NumPy.
import math

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report
from torch.optim.lr_scheduler import OneCycleLR

PAD, VOCAB, MAX_LEN = 0, 12, 10
rng = np.random.default_rng(3)


def make_batch(n):
    """Sequences of random length; the label says whether token 5 occurs more often than 7."""
    tokens = np.full((n, MAX_LEN), PAD, dtype=np.int64)
    labels = np.zeros(n, dtype=np.int64)
    for k in range(n):
        length = rng.integers(3, MAX_LEN + 1)
        seq = rng.integers(1, VOCAB, size=length)
        tokens[k, :length] = seq
        labels[k] = int((seq == 5).sum() > (seq == 7).sum())
    return torch.from_numpy(tokens), torch.from_numpy(labels)


class SeqClassifier(nn.Module):
    def __init__(self, vocab, d_model=16, nhead=2, n_classes=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model, padding_idx=PAD)
        self.pos = nn.Parameter(torch.zeros(1, MAX_LEN, d_model))
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=32, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.gru = nn.GRU(d_model, 8, batch_first=True, bidirectional=True)
        self.head = nn.Linear(d_model + 16, n_classes)

    def forward(self, tokens):
        pad_mask = tokens == PAD  # (B, T) True where padding
        x = self.embed(tokens) + self.pos[:, : tokens.size(1)]
        h = self.encoder(x, src_key_padding_mask=pad_mask)  # (B, T, C)
        keep = (~pad_mask).unsqueeze(-1).float()
        pooled = (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)  # masked mean, (B, C)
        _, h_n = self.gru(x)  # (2, B, 8): last state of each direction
        rnn = torch.cat([h_n[0], h_n[1]], dim=-1)  # (B, 16)
        return self.head(torch.cat([pooled, rnn], dim=-1))


model = SeqClassifier(VOCAB)
W = reference_weights(model)
model.load_state_dict({**model.state_dict(), **{k: torch.from_numpy(v) for k, v in W.items()}})

steps, accum = 12, 2
batches = [make_batch(16) for _ in range(steps * accum)]
val_x, val_y = make_batch(64)
criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
scheduler = OneCycleLR(optimizer, max_lr=1e-2, total_steps=steps)
device_type = "cpu"
use_amp = False  # bfloat16 autocast on a GPU; plain float32 for the comparison

losses, lrs, grad_norms = [], [], []
model.train()
for step in range(steps):
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for micro in range(accum):
        xb, yb = batches[step * accum + micro]
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=use_amp):
            loss = criterion(model(xb), yb) / accum
        loss.backward()
        total += loss.item()
    grad_norms.append(nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0).item())
    optimizer.step()
    scheduler.step()
    losses.append(total)
    lrs.append(scheduler.get_last_lr()[0])
    print(f"step {step}: loss {total:.4f} lr {lrs[-1]:.5f}")

model.eval()
with torch.inference_mode():
    logits = model(val_x)
    val_loss = criterion(logits, val_y).item()
    probs = logits.softmax(-1)
print(f"val loss {val_loss:.4f}, perplexity {math.exp(val_loss):.3f}")
report(
    losses=losses,
    lrs=lrs,
    grad_norms=grad_norms,
    val_loss=val_loss,
    val_pred=probs.argmax(-1).tolist(),
    n_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
)
