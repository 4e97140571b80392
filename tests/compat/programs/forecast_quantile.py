# Probabilistic time-series forecasting in the shape of pytorch-forecasting / GluonTS baselines:
# sliding windows cut with Tensor.unfold, per-series scaling with nanmean and a masked std,
# calendar features from torch.bucketize / searchsorted, an LSTM encoder over padded windows
# (pack_padded_sequence), a quantile head trained with the pinball loss, monotone quantiles via
# cumsum of softplus increments, gradient clipping by value, OneCycleLR, and evaluation with
# torch.quantile, the CRPS approximation over the quantiles and nan-aware metrics.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pack_padded_sequence

rng = np.random.default_rng(11)
S, L, CTX, H = 6, 120, 24, 6  # series, length, context, horizon
t = np.arange(L)
series = np.stack([
    10 + 3 * np.sin(2 * np.pi * (t + 5 * k) / 24) + 0.05 * k * t + rng.normal(0, 0.5, L)
    for k in range(S)
]).astype(np.float32)  # fmt: skip
series[2, 30:34] = np.nan  # a gap: scaling and metrics must ignore it
y_all = torch.from_numpy(series)

# windows: (S, n_windows, CTX + H) with unfold
win = y_all.unfold(1, CTX + H, 4)
ctx, fut = win[..., :CTX], win[..., CTX:]
keep = ~torch.isnan(win).any(-1)  # drop windows that touch the gap
ctx, fut = ctx[keep], fut[keep]  # (N, CTX), (N, H)
loc = ctx.nanmean(dim=1, keepdim=True)
scale = ((ctx - loc) ** 2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-3)
x = ((ctx - loc) / scale).unsqueeze(-1)
# calendar feature: hour-of-day bucket of each context step
hours = torch.arange(CTX, dtype=torch.float32).remainder(24)
edges = torch.tensor([6.0, 12.0, 18.0])
bucket = torch.bucketize(hours, edges)  # 0..3
where = torch.searchsorted(edges, torch.tensor([5.0, 6.0, 17.9, 30.0]))
x = torch.cat([x, F.one_hot(bucket, 4).float().expand(x.shape[0], -1, -1)], dim=-1)
lengths = torch.full((x.shape[0],), CTX, dtype=torch.long)
lengths[::3] = CTX - 4  # some windows are shorter: packed sequences
QS = torch.tensor([0.1, 0.5, 0.9])


class QuantileLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(5, 16, batch_first=True)
        self.head = nn.Linear(16, H * len(QS))

    def forward(self, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        raw = self.head(h[-1]).view(-1, H, len(QS))
        # monotone quantiles: the lowest, then softplus increments
        return torch.cat([raw[..., :1], F.softplus(raw[..., 1:])], dim=-1).cumsum(-1)


def pinball(pred, target, qs):
    diff = target.unsqueeze(-1) - pred
    return torch.maximum(qs * diff, (qs - 1) * diff).mean()


model = QuantileLSTM()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.as_tensor(np.asarray(W[name])))

target = (fut - loc) / scale
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=30)
losses, lrs = [], []
for step in range(30):
    opt.zero_grad()
    q = model(x, lengths)
    loss = pinball(q, target, QS)
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)
    opt.step()
    sched.step()
    losses.append(loss.item())
    lrs.append(sched.get_last_lr()[0])

with torch.no_grad():
    q = model(x, lengths) * scale.unsqueeze(-1) + loc.unsqueeze(-1)
    med = q[..., 1]
    crps = (2 * torch.stack([
        torch.maximum(a * (fut - q[..., i]), (a - 1) * (fut - q[..., i])) for i, a in enumerate(QS)
    ])).mean()  # fmt: skip
    coverage = ((fut >= q[..., 0]) & (fut <= q[..., 2])).float().mean()
    err = torch.where(torch.rand(fut.shape, generator=torch.Generator().manual_seed(0)) < 0,
                      torch.nan, med - fut)  # fmt: skip
    mae = err.abs().nanmean()
    qs_emp = torch.quantile(fut - med, torch.tensor([0.1, 0.5, 0.9]))
    scale_stats = [float(scale.min()), float(scale.max()), float(loc.mean())]

report(losses=losses, lrs=lrs, crps=float(crps), coverage=float(coverage), mae=float(mae),
       residual_quantiles=qs_emp.tolist(), windows=int(x.shape[0]), where=where.tolist(),
       scale=scale_stats)  # fmt: skip
