# Temporal point processes, as tick / EasyTPP-style code writes them: a univariate Hawkes
# process with an exponential kernel fitted by maximum likelihood (softplus-parametrised mu,
# alpha, beta; the recursive compensator), simulation by Ogata's thinning with NumPy draws,
# and an RMTPP-style neural TPP: padded event sequences (pad_sequence), a GRU over
# (inter-event time, mark) packed by lengths, intensity exp(v h + w dt + b), the closed-form
# integral, a mark head with cross_entropy(ignore_index), masked means over padding.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence

rng = np.random.default_rng(12)


def simulate_hawkes(mu, alpha, beta, T):
    t, events = 0.0, []
    while True:
        lam_bar = mu + sum(alpha * np.exp(-beta * (t - s)) for s in events)
        t += rng.exponential(1.0 / lam_bar)
        if t > T:
            return np.array(events)
        lam_t = mu + sum(alpha * np.exp(-beta * (t - s)) for s in events)
        if rng.uniform() * lam_bar <= lam_t:
            events.append(t)


seqs = [simulate_hawkes(0.5, 0.8, 1.5, 20.0) for _ in range(6)]
T = 20.0


def hawkes_nll(times, raw):
    mu, alpha, beta = F.softplus(raw)
    ll = torch.zeros(())
    A = torch.zeros(())
    prev = None
    for t in times:
        if prev is not None:
            A = torch.exp(-beta * (t - prev)) * (1 + A)
        ll = ll + torch.log(mu + alpha * A)
        prev = t
    comp = mu * T + alpha / beta * (1 - torch.exp(-beta * (T - times))).sum()
    return comp - ll


raw = torch.tensor([0.0, 0.0, 0.5], requires_grad=True)
opt = torch.optim.Adam([raw], lr=0.05)
times_t = [torch.from_numpy(s).float() for s in seqs]
h_losses = []
for _ in range(25):
    loss = sum(hawkes_nll(ts, raw) for ts in times_t) / len(times_t)
    opt.zero_grad()
    loss.backward()
    opt.step()
    h_losses.append(loss.item())
fitted = F.softplus(raw).tolist()

# RMTPP on marked sequences (marks: 3 types), padded
marks = [torch.from_numpy(rng.integers(0, 3, len(s))) for s in seqs]
dts = [torch.diff(ts, prepend=torch.zeros(1)) for ts in times_t]
lengths = torch.tensor([len(s) for s in seqs])
dt_pad = pad_sequence(dts, batch_first=True)
mk_pad = pad_sequence(marks, batch_first=True, padding_value=-100)
mask = torch.arange(dt_pad.shape[1])[None, :] < lengths[:, None]


class RMTPP(nn.Module):
    def __init__(self, K=3, d=16):
        super().__init__()
        self.emb = nn.Embedding(K + 1, 8)
        self.rnn = nn.GRU(9, d, batch_first=True)
        self.v = nn.Linear(d, 1)
        self.w = nn.Parameter(torch.tensor(0.1))
        self.mark = nn.Linear(d, K)

    def forward(self, dt, mk, lengths):
        x = torch.cat([dt.unsqueeze(-1), self.emb(mk.clamp(min=0))], dim=-1)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        h, _ = pad_packed_sequence(out, batch_first=True, total_length=dt.shape[1])
        return h


model = RMTPP()
Wt = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        p.copy_(torch.from_numpy(np.asarray(Wt[n])))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
r_losses = []
for _ in range(10):
    h = model(dt_pad, mk_pad, lengths)
    hv = model.v(h[:, :-1]).squeeze(-1)
    dt_next = dt_pad[:, 1:]
    w = model.w
    log_lam = hv + w * dt_next
    integral = (torch.exp(hv + w * dt_next) - torch.exp(hv)) / w
    m = mask[:, 1:].float()
    time_ll = ((log_lam - integral) * m).sum() / m.sum()
    mark_loss = F.cross_entropy(
        model.mark(h[:, :-1]).reshape(-1, 3), mk_pad[:, 1:].reshape(-1), ignore_index=-100
    )
    loss = -time_ll + mark_loss
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    r_losses.append(loss.item())

report(
    n_events=[len(s) for s in seqs],
    hawkes_losses=h_losses,
    fitted=fitted,
    rmtpp_losses=r_losses,
    w=model.w.item(),
)
