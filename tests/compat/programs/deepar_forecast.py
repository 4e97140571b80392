# DeepAR (Salinas et al. 2020) as the GluonTS-inspired PyTorch re-implementations write it: an
# autoregressive LSTM over lagged targets scaled by each series' mean absolute value (the
# scale appended as a log feature), covariates (age and day-of-week embeddings), teacher
# forcing over the conditioning range, a Gaussian head (softplus sigma) and a negative
# binomial head for counts (mu, alpha; log-likelihood by lgamma written out and checked
# against torch.distributions.NegativeBinomial with total_count = 1 / alpha), Adam with
# clip_grad_norm_; then ancestral sampling of 20 paths over the prediction range with NumPy
# normal draws fed through mu + sigma * z, empirical quantiles by torch.quantile, the
# rho-risk (weighted quantile loss) and ND / NRMSE metrics.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(23)
n_series, T_cond, T_pred = 8, 16, 6
T = T_cond + T_pred
t = np.arange(T + 1)
level = rng.uniform(5, 30, (n_series, 1))
series = level * (1 + 0.4 * np.sin(2 * np.pi * t / 7 + rng.uniform(0, 6, (n_series, 1))))
counts = rng.poisson(series).astype(np.float32)
z_all = torch.from_numpy(counts)
dow = torch.from_numpy((t % 7)[None].repeat(n_series, 0))
age = torch.from_numpy(np.log1p(t)[None].repeat(n_series, 0).astype(np.float32))


class DeepAR(nn.Module):
    def __init__(self, hidden=20, likelihood="gaussian"):
        super().__init__()
        self.likelihood = likelihood
        self.dow_emb = nn.Embedding(7, 3)
        self.lstm = nn.LSTM(1 + 1 + 3 + 1, hidden, num_layers=2, batch_first=True)
        self.distribution_mu = nn.Linear(hidden, 1)
        self.distribution_presigma = nn.Linear(hidden, 1)

    def step(self, z_prev, age_t, dow_t, log_scale, hc):
        x = torch.cat(
            [
                z_prev.unsqueeze(-1),
                age_t.unsqueeze(-1),
                self.dow_emb(dow_t),
                log_scale.expand(-1, z_prev.shape[1]).unsqueeze(-1),
            ],
            -1,
        )
        out, hc = self.lstm(x, hc)
        mu = self.distribution_mu(out).squeeze(-1)
        sigma = F.softplus(self.distribution_presigma(out)).squeeze(-1) + 1e-3
        return mu, sigma, hc


def nb_log_likelihood(z, mu, alpha):
    r = 1.0 / alpha
    return (
        torch.lgamma(z + r)
        - torch.lgamma(z + 1)
        - torch.lgamma(r)
        + r * torch.log(r / (r + mu))
        + z * torch.log(mu / (r + mu))
    )


def loss_fn(model, z, scale, start, end):
    zs = z / scale
    mu, sigma, _ = model.step(
        zs[:, start - 1 : end - 1], age[:, start:end], dow[:, start:end], scale.log(), None
    )
    target = z[:, start:end]
    if model.likelihood == "gaussian":
        return -torch.distributions.Normal(mu * scale, sigma * scale).log_prob(target).mean()
    m = F.softplus(mu) * scale
    return -nb_log_likelihood(target, m, sigma).mean()


results = {}
for lik in ("gaussian", "negbin"):
    model = DeepAR(likelihood=lik)
    W = reference_weights(model)
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[n]))
    scale = z_all[:, 1 : T_cond + 1].abs().mean(1, keepdim=True) + 1.0
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for epoch in range(12):
        loss = loss_fn(model, z_all, scale, 1, T_cond + 1)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        losses.append(loss.item())

    if lik == "negbin":
        with torch.no_grad():
            zz = z_all[:, 1:5]
            mm = torch.full_like(zz, 12.0)
            al = torch.full_like(zz, 0.3)
            dist = torch.distributions.NegativeBinomial(total_count=1 / al, logits=(mm * al).log())
            results["nb_check"] = (
                nb_log_likelihood(zz, mm, al) - dist.log_prob(zz)
            ).abs().max().item() < 1e-4
            results["nb_values"] = nb_log_likelihood(zz, mm, al)[0].tolist()

    # ancestral sampling over the prediction range
    n_samples = 20
    noise = torch.from_numpy(rng.standard_normal((n_samples, T_pred, n_series)).astype(np.float32))
    with torch.no_grad():
        zs = z_all / scale
        _, _, hc = model.step(
            zs[:, :T_cond], age[:, 1 : T_cond + 1], dow[:, 1 : T_cond + 1], scale.log(), None
        )
        samples = []
        for s in range(n_samples):
            h = (hc[0].clone(), hc[1].clone())
            prev = zs[:, T_cond : T_cond + 1]
            path = []
            for k in range(T_pred):
                tt = T_cond + 1 + k
                mu, sigma, h = model.step(
                    prev, age[:, tt : tt + 1], dow[:, tt : tt + 1], scale.log(), h
                )
                if lik == "gaussian":
                    draw = mu + sigma * noise[s, k].unsqueeze(1)
                    value = draw * scale
                else:
                    m = F.softplus(mu) * scale
                    value = (m + (m + sigma * m * m).sqrt() * noise[s, k].unsqueeze(1)).clamp(min=0)
                    draw = value / scale
                path.append(value.squeeze(1))
                prev = draw
            samples.append(torch.stack(path, 1))
        samples = torch.stack(samples)  # (S, N, T_pred)
        target = z_all[:, T_cond + 1 :]
        qs = torch.quantile(samples, torch.tensor([0.1, 0.5, 0.9]), dim=0)
        rho = {}
        for q, pred in zip((0.1, 0.5, 0.9), qs):
            diff = target - pred
            rho[str(q)] = (
                2 * torch.maximum(q * diff, (q - 1) * diff).sum() / target.abs().sum()
            ).item()
        med = qs[1]
        nd = ((med - target).abs().sum() / target.abs().sum()).item()
        nrmse = (((med - target) ** 2).mean().sqrt() / target.abs().mean()).item()
    results[lik] = dict(
        losses=losses,
        rho=rho,
        nd=nd,
        nrmse=nrmse,
        median_first=med[0].tolist(),
        scale=scale.flatten().tolist(),
    )
report(**results)
