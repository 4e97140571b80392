# Contrastive Predictive Coding (van den Oord et al. 2018) on 1-D signals, as the reference
# reimplementations write it: a strided Conv1d encoder with BatchNorm, an autoregressive GRU
# context (bias-free convs in front of the BatchNorms: Adam would turn their gradients, 0
# up to rounding, into steps), one Linear predictor W_k per future step, InfoNCE over every
# other sequence and time step of the batch as negatives (logits by einsum, cross_entropy
# against the diagonal), a random context position from NumPy, accuracy of the positive pick
# per step, and a linear probe on frozen features (requires_grad_(False), detach) afterwards.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(61)
B, L = 8, 256
freqs = rng.uniform(0.02, 0.08, B)
cls = (freqs > 0.05).astype(np.int64)
t = np.arange(L)
sig = np.sin(
    2 * np.pi * freqs[:, None] * t[None] + rng.uniform(0, 6, (B, 1))
) + 0.1 * rng.standard_normal((B, L))
x = torch.from_numpy(sig.astype(np.float32)).unsqueeze(1)
y = torch.from_numpy(cls)


class CPC(nn.Module):
    def __init__(self, d=16, c=16, K=3):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv1d(1, d, 8, stride=4, padding=2, bias=False),
            nn.BatchNorm1d(d),
            nn.ReLU(),
            nn.Conv1d(d, d, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm1d(d),
            nn.ReLU(),
        )
        self.gru = nn.GRU(d, c, batch_first=True)
        self.W = nn.ModuleList([nn.Linear(c, d) for _ in range(K)])
        self.K = K

    def forward(self, x, t0):
        z = self.enc(x).transpose(1, 2)  # (B, T, d)
        c, _ = self.gru(z[:, : t0 + 1])
        ct = c[:, t0]  # (B, c)
        losses, accs = [], []
        for k in range(1, self.K + 1):
            pred = self.W[k - 1](ct)  # (B, d)
            target = z[:, t0 + k]  # (B, d)
            logits = torch.einsum("bd,nd->bn", pred, target)
            lbl = torch.arange(x.shape[0])
            losses.append(F.cross_entropy(logits, lbl))
            accs.append((logits.argmax(1) == lbl).float().mean().item())
        return torch.stack(losses).mean(), accs, z


model = CPC()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n]))
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
losses, accs = [], []
for step in range(10):
    t0 = int(rng.integers(4, 24))
    loss, acc, _ = model(x, t0)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
    accs.append(acc)

model.eval()
model.requires_grad_(False)
with torch.no_grad():
    z = model.enc(x).transpose(1, 2)
    c, _ = model.gru(z)
    feats = c[:, -1].detach()
probe = nn.Linear(feats.shape[1], 2)
Wp = reference_weights(probe)
with torch.no_grad():
    for n, p in probe.named_parameters():
        p.copy_(torch.from_numpy(Wp[n]))
popt = torch.optim.SGD(probe.parameters(), lr=0.5)
probe_losses = []
for _ in range(15):
    pl = F.cross_entropy(probe(feats), y)
    popt.zero_grad()
    pl.backward()
    popt.step()
    probe_losses.append(pl.item())

report(
    losses=losses,
    accs=accs,
    probe_losses=probe_losses,
    probe_acc=(probe(feats).argmax(1) == y).float().mean().item(),
    frozen=all(not p.requires_grad for p in model.parameters()),
)
