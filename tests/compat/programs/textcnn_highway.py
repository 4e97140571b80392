# Sentence classification models of the 2014-2018 papers as their PyTorch ports write them:
# Kim's TextCNN (an Embedding with a frozen static channel and a tuned one stacked as two
# Conv2d input channels, kernel sizes 3/4/5 over (k, emb_dim), max-over-time by
# F.max_pool1d(x, x.size(2)), dropout, max-norm constraint on the output layer by torch.renorm),
# a character CNN with highway layers (sigmoid transform gates, carry 1 - t), and ELMo's scalar
# mix (softmax layer weights times a gamma) over a stacked bi-LSTM's layers with padding masks.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(71)
V, C, T, Bn = 40, 2, 12, 16
tokens = rng.integers(1, V, (Bn, T))
lengths = rng.integers(6, T + 1, Bn)
for b in range(Bn):
    tokens[b, lengths[b] :] = 0
labels = ((tokens == 5).any(1) | (tokens == 7).any(1)).astype(np.int64)
X = torch.from_numpy(tokens)
y = torch.from_numpy(labels)
chars = torch.from_numpy(rng.integers(1, 20, (Bn, T, 6)))
pretrained = torch.from_numpy(rng.standard_normal((V, 10)).astype(np.float32))


class KimCNN(nn.Module):
    def __init__(self, D=10, Co=4, Ks=(3, 4, 5)):
        super().__init__()
        self.static = nn.Embedding.from_pretrained(pretrained, freeze=True, padding_idx=0)
        self.embed = nn.Embedding(V, D, padding_idx=0)
        self.convs = nn.ModuleList([nn.Conv2d(2, Co, (K, D)) for K in Ks])
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(len(Ks) * Co, C)

    def forward(self, x):
        e = torch.stack([self.static(x), self.embed(x)], 1)  # (B, 2, T, D)
        hs = [F.relu(conv(e)).squeeze(3) for conv in self.convs]
        hs = [F.max_pool1d(h, h.size(2)).squeeze(2) for h in hs]
        return self.fc(self.dropout(torch.cat(hs, 1)))


class Highway(nn.Module):
    def __init__(self, d, n=2):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(d, 2 * d) for _ in range(n)])

    def forward(self, x):
        for layer in self.layers:
            h, gate = layer(x).chunk(2, dim=-1)
            t = torch.sigmoid(gate)
            x = t * F.relu(h) + (1 - t) * x
        return x


class CharHighwayELMo(nn.Module):
    def __init__(self, cd=8, d=12):
        super().__init__()
        self.cemb = nn.Embedding(20, cd)
        self.cconv = nn.Conv1d(cd, d, 3, padding=1)
        self.highway = Highway(d)
        self.lstm = nn.LSTM(d, d // 2, num_layers=2, batch_first=True, bidirectional=True)
        self.scalars = nn.Parameter(torch.zeros(3))
        self.gamma = nn.Parameter(torch.ones(1))
        self.fc = nn.Linear(d, C)

    def forward(self, ch, mask):
        B, T_, Lc = ch.shape
        e = self.cemb(ch.view(B * T_, Lc)).transpose(1, 2)
        w = torch.max(self.cconv(e), dim=2).values.view(B, T_, -1)
        w = self.highway(w)
        out1, _ = self.lstm.forward(w)
        layers = [w, out1, out1 * mask.unsqueeze(-1)]
        norm_w = F.softmax(self.scalars, dim=0)
        mixed = self.gamma * sum(wi * li for wi, li in zip(norm_w, layers))
        pooled = (mixed * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
        return self.fc(pooled)


def fresh(m):
    W = reference_weights(m)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if p.requires_grad:
                p.copy_(torch.from_numpy(W[n]))
    return m


kim = fresh(KimCNN())
opt = torch.optim.Adadelta(filter(lambda p: p.requires_grad, kim.parameters()), lr=1.0)
kim_losses, norms = [], []
for step in range(5):
    loss = F.cross_entropy(kim(X), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        kim.fc.weight.data = torch.renorm(kim.fc.weight.data, p=2, dim=0, maxnorm=0.5)
    kim_losses.append(loss.item())
    norms.append(kim.fc.weight.norm(dim=1).tolist())

mask = (X != 0).float()
elmo = fresh(CharHighwayELMo())
opt = torch.optim.Adam(elmo.parameters(), lr=5e-3)
elmo_losses = []
for step in range(5):
    loss = F.cross_entropy(elmo(chars, mask), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    elmo_losses.append(loss.item())

report(
    kim_losses=kim_losses,
    norms=norms[-1],
    static_unchanged=bool(torch.equal(kim.static.weight, pretrained)),
    pad_row=kim.embed.weight[0].abs().sum().item(),
    elmo_losses=elmo_losses,
    scalar_mix=F.softmax(elmo.scalars, 0).tolist(),
    gamma=elmo.gamma.item(),
)
