# Tabular imputation code as Kaggle notebooks and GAIN / MIWAE-style repositories write it:
# NaNs from a CSV-like array, masks by torch.isnan / ~, column statistics by torch.nanmean,
# torch.nansum, torch.nanmedian (values and indices), torch.nanquantile, mean imputation by
# torch.where and by nan_to_num_(nan=...) in place, standardisation ignoring NaNs, a denoising
# autoencoder trained on the observed entries only (a masked MSE: ((x - x_hat) * m).pow(2).sum()
# / m.sum()), GAIN's generator / discriminator with a hint mask (NumPy-drawn), the
# discriminator's BCE on the mask, and RMSE on the held-out entries; a count of NaN rows by
# .any(dim=1), and masked_fill with a float('nan').
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(77)
N, D = 64, 6
Z = rng.standard_normal((N, 3))
full = (Z @ rng.standard_normal((3, D)) + 0.1 * rng.standard_normal((N, D))).astype(np.float32)
full[:, 2] = full[:, 2] * 5 + 3
miss = rng.uniform(size=(N, D)) < 0.2
data = full.copy()
data[miss] = np.nan
X = torch.from_numpy(data)
nan_mask = torch.isnan(X)
m = (~nan_mask).float()
col_mean = torch.nanmean(X, dim=0)
col_sum = torch.nansum(X, dim=0)
med_v, med_i = torch.nanmedian(X, dim=0)
q = torch.nanquantile(X, torch.tensor([0.25, 0.75]), dim=0)
stats = {
    "n_missing": int(nan_mask.sum().item()),
    "rows_with_nan": int(nan_mask.any(dim=1).sum().item()),
    "col_mean": col_mean.tolist(),
    "col_sum": col_sum.tolist(),
    "median": med_v.tolist(),
    "median_idx": med_i.tolist(),
    "iqr": (q[1] - q[0]).tolist(),
    "nanmedian_all": torch.nanmedian(X).item(),
    "nansum_all": torch.nansum(X).item(),
}
X_mean = torch.where(nan_mask, col_mean.expand_as(X), X)
X_inplace = X.clone()
X_inplace.nan_to_num_(nan=0.0)
std = torch.sqrt(torch.nanmean((X - col_mean).pow(2), dim=0))
Xn = (X - col_mean) / std
Xn0 = torch.nan_to_num(Xn, nan=0.0)
stats["nan_to_num_sum"] = X_inplace.sum().item()
stats["nn_std"] = std.tolist()
stats["mean_imputed_rmse"] = torch.sqrt(
    ((X_mean - torch.from_numpy(full)) ** 2)[nan_mask].mean()
).item()


class DAE(nn.Module):
    def __init__(self, d, h=16):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, 4))
        self.dec = nn.Sequential(nn.Linear(4, h), nn.Tanh(), nn.Linear(h, d))

    def forward(self, x):
        return self.dec(self.enc(x))


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


dae = load(DAE(D))
opt = torch.optim.Adam(dae.parameters(), lr=1e-2)
drop = torch.from_numpy(rng.uniform(size=(20, N, D)) < 0.1)
dae_losses = []
for step in range(20):
    x_in = Xn0.masked_fill(drop[step], 0.0)
    x_hat = dae(x_in)
    loss = ((Xn0 - x_hat) * m).pow(2).sum() / m.sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    dae_losses.append(loss.item())
with torch.no_grad():
    rec = dae(Xn0) * std + col_mean
    X_dae = torch.where(nan_mask, rec, X)
dae_rmse = torch.sqrt(((X_dae - torch.from_numpy(full)) ** 2)[nan_mask].mean()).item()

# GAIN
G = load(nn.Sequential(nn.Linear(2 * D, D), nn.ReLU(), nn.Linear(D, D)))
Dn = load(nn.Sequential(nn.Linear(2 * D, D), nn.ReLU(), nn.Linear(D, D), nn.Sigmoid()))
g_opt = torch.optim.Adam(G.parameters(), lr=5e-3)
d_opt = torch.optim.Adam(Dn.parameters(), lr=5e-3)
Xs = (Xn0 - Xn0.min(0).values) / (Xn0.max(0).values - Xn0.min(0).values + 1e-6)
gain_log = []
for step in range(10):
    noise = torch.from_numpy(rng.uniform(0, 0.01, (N, D)).astype(np.float32))
    hint_b = torch.from_numpy((rng.uniform(size=(N, D)) < 0.9).astype(np.float32))
    H = m * hint_b
    x_tilde = m * Xs + (1 - m) * noise
    G_sample = torch.sigmoid(G(torch.cat([x_tilde, m], dim=1)))
    x_hat = x_tilde * m + G_sample * (1 - m)
    D_prob = Dn(torch.cat([x_hat.detach(), H], dim=1))
    d_loss = -torch.mean(m * torch.log(D_prob + 1e-8) + (1 - m) * torch.log(1.0 - D_prob + 1e-8))
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()
    D_prob = Dn(torch.cat([x_hat, H], dim=1))
    g_adv = -torch.mean((1 - m) * torch.log(D_prob + 1e-8))
    mse = torch.mean((m * x_tilde - m * G_sample) ** 2) / torch.mean(m)
    g_loss = g_adv + 10 * mse
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()
    gain_log.append([d_loss.item(), g_adv.item(), mse.item()])
report(stats=stats, dae_losses=dae_losses, dae_rmse=dae_rmse, gain=gain_log)
