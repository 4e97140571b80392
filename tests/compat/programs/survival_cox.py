# Survival analysis in the shape of DeepSurv / pycox / torchsurv code: an MLP risk score trained
# with the Cox partial likelihood written the usual way (sort the batch by time with
# torch.sort(descending=True) - tied event times included, so the order PyTorch gives equal
# times decides the loss -, logcumsumexp over the sorted risks, events masked), the Breslow
# and Efron tie corrections written with unique_consecutive / scatter_add, Harrell's
# concordance index by broadcasting, a Weibull accelerated-failure-time model with
# torch.distributions.Weibull (log_prob for events, survival by cdf for censored rows), and a
# DeepHit-style discrete-time model (bucketize times into bins, log_softmax, survival by a
# reverse logcumsumexp, gather). Adam with weight decay, StepLR.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.distributions import Weibull

rng = np.random.default_rng(8)
n, d = 48, 6


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.asarray(W[name])))
    return model


X = torch.from_numpy(rng.standard_normal((n, d)).astype(np.float32))
beta = np.array([0.8, -0.5, 0.0, 0.3, 0.0, -0.2], dtype=np.float32)
hazard = np.exp(X.numpy() @ beta)
times_np = np.ceil(rng.exponential(1.0 / hazard) * 4).astype(np.float32)  # whole days: ties
events_np = (rng.random(n) < 0.7).astype(np.float32)
time = torch.from_numpy(times_np)
event = torch.from_numpy(events_np)


def cox_ph_loss(log_h, durations, events, eps=1e-7):
    idx = durations.sort(descending=True)[1]
    events = events[idx]
    log_h = log_h[idx]
    gamma = log_h.max()
    log_cumsum_h = log_h.sub(gamma).exp().cumsum(0).add(eps).log().add(gamma)
    return -log_h.sub(log_cumsum_h).mul(events).sum().div(events.sum())


def cox_logcumsumexp(log_h, durations, events):
    order = torch.argsort(durations, descending=True)
    log_h, events = log_h[order], events[order]
    return -((log_h - torch.logcumsumexp(log_h, dim=0)) * events).sum() / events.sum()


def breslow_loss(log_h, durations, events):
    """Risk sets by time value (ties share one risk set): order-independent."""
    t_sorted, order = torch.sort(durations, stable=True)
    log_h, events = log_h[order], events[order]
    uniq, counts = torch.unique_consecutive(t_sorted, return_counts=True)
    group = torch.repeat_interleave(torch.arange(len(uniq)), counts)
    exp_h = log_h.exp()
    per_time = torch.zeros(len(uniq)).scatter_add(0, group, exp_h)
    risk = per_time.flip(0).cumsum(0).flip(0)  # sum over later-or-equal times
    return -((log_h - risk[group].log()) * events).sum() / events.sum()


def concordance_index(risk, durations, events):
    comparable = (durations.unsqueeze(1) < durations.unsqueeze(0)) & (events.unsqueeze(1) == 1)
    concordant = (risk.unsqueeze(1) > risk.unsqueeze(0)).float()
    tied = (risk.unsqueeze(1) == risk.unsqueeze(0)).float()
    return ((concordant + 0.5 * tied) * comparable).sum() / comparable.sum()


net = load(nn.Sequential(nn.Linear(d, 16), nn.SELU(), nn.Linear(16, 1, bias=False)))
opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-4)
sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
cox, alt, breslow, cindex, orders = [], [], [], [], []
for step in range(10):
    log_h = net(X).squeeze(1)
    loss = cox_ph_loss(log_h, time, event)
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    cox.append(loss.item())
    with torch.no_grad():
        alt.append(cox_logcumsumexp(log_h, time, event).item())
        breslow.append(breslow_loss(log_h, time, event).item())
        cindex.append(concordance_index(log_h, time, event).item())
orders = time.sort(descending=True).indices.tolist()
argsort_asc = torch.argsort(time).tolist()


# Weibull AFT: log scale = x . w, shared concentration
class WeibullAFT(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(d, 1)
        self.log_k = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return Weibull(scale=self.lin(x).squeeze(1).exp(), concentration=self.log_k.exp())


aft = load(WeibullAFT())
with torch.no_grad():
    aft.log_k.fill_(0.2)
opt = torch.optim.Adam(aft.parameters(), lr=2e-2)
aft_losses = []
for step in range(10):
    dist = aft(X)
    t = time.clamp_min(0.5)
    ll = event * dist.log_prob(t) + (1 - event) * torch.log1p(-dist.cdf(t) + 1e-7)
    loss = -ll.mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    aft_losses.append(loss.item())
with torch.no_grad():
    median_t = aft(X[:5]).icdf(torch.tensor(0.5)).tolist() if hasattr(Weibull, "icdf") else []


# DeepHit-style discrete time
n_bins = 6
cuts = torch.quantile(time, torch.linspace(0, 1, n_bins + 1))[1:-1]
bins = torch.bucketize(time, cuts, right=True)
hit = load(nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, n_bins)))
opt = torch.optim.Adam(hit.parameters(), lr=1e-2)
hit_losses = []
for step in range(10):
    logp = F.log_softmax(hit(X), dim=1)
    pmf_ll = logp.gather(1, bins.unsqueeze(1)).squeeze(1)
    # log S(bin) = log sum of the PMF after the bin: a reverse logcumsumexp, not log(1 - cdf)
    # (1 - cdf cancels to a few ulps near the last bin, where the log magnifies rounding)
    tail = torch.logcumsumexp(logp.flip(1), dim=1).flip(1)
    log_surv = F.pad(tail[:, 1:], (0, 1), value=-16.0).gather(1, bins.unsqueeze(1)).squeeze(1)
    loss = -(event * pmf_ll + (1 - event) * log_surv).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    hit_losses.append(loss.item())

report(
    cox=cox,
    cox_logcumsumexp=alt,
    breslow=breslow,
    cindex=cindex,
    sort_order=orders,
    argsort_asc=argsort_asc,
    aft_losses=aft_losses,
    median_t=median_t,
    cuts=cuts.tolist(),
    bins=bins.tolist(),
    hit_losses=hit_losses,
    n_ties=int(n - len(time.unique())),
)
