# N-HiTS (Challu et al., the nixtla neuralforecast code) as its NHITS blocks write it (our own
# condensed rewrite): per-stack MaxPool1d(kernel_size=k, stride=k, ceil_mode=True) over the input
# window (the multi-rate pooling), an MLP producing a coarse backcast and a coarse forecast of
# n_theta knots per stack (n_freq_downsample), the IdentityBasis that interpolates the knots to
# the horizon by F.interpolate(mode="linear") on (B, 1, knots) views (and mode="nearest" as the
# option), doubly residual stacking (residuals = (residuals - backcast) * insample_mask, forecast
# accumulated with the first block's level y[:, -1:] as the naive start), exogenous-free input,
# the "median" scaler (median and mean absolute deviation over the window by torch.median /
# nanmedian, applied and inverted), a masked MAE loss with availability masks, Adam with StepLR
# decay (lr_decay_steps), gradient clipping, and the per-stack forecast decomposition reported
# through forward hooks on each block.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2213)
L_IN, H = 24, 8


class IdentityBasis(nn.Module):
    def __init__(self, backcast_size, forecast_size, interpolation_mode="linear"):
        super().__init__()
        self.forecast_size = forecast_size
        self.backcast_size = backcast_size
        self.interpolation_mode = interpolation_mode

    def forward(self, theta):
        backcast = theta[:, : self.backcast_size]
        knots = theta[:, self.backcast_size :]
        knots = knots.reshape(len(knots), 1, -1)
        if self.interpolation_mode in ["nearest", "linear"]:
            forecast = F.interpolate(knots, size=self.forecast_size, mode=self.interpolation_mode)
        else:
            raise ValueError(self.interpolation_mode)
        return backcast, forecast[:, 0, :]


class NHITSBlock(nn.Module):
    def __init__(
        self,
        input_size,
        h,
        n_theta,
        mlp_units,
        basis,
        n_pool_kernel_size,
        pooling_mode="MaxPool1d",
        dropout_prob=0.0,
    ):
        super().__init__()
        pooled_hist_size = int(np.ceil(input_size / n_pool_kernel_size))
        self.pooling_layer = getattr(nn, pooling_mode)(
            kernel_size=n_pool_kernel_size, stride=n_pool_kernel_size, ceil_mode=True
        )
        hidden_layers = [nn.Linear(in_features=pooled_hist_size, out_features=mlp_units[0][0])]
        for layer in mlp_units:
            hidden_layers.append(nn.Linear(in_features=layer[0], out_features=layer[1]))
            hidden_layers.append(nn.ReLU())
            if dropout_prob > 0:
                hidden_layers.append(nn.Dropout(p=dropout_prob))
        output_layer = [nn.Linear(in_features=mlp_units[-1][1], out_features=input_size + n_theta)]
        self.layers = nn.Sequential(*hidden_layers, *output_layer)
        self.basis = basis

    def forward(self, insample_y):
        insample_y = insample_y.unsqueeze(1)
        insample_y = self.pooling_layer(insample_y)
        insample_y = insample_y.squeeze(1)
        theta = self.layers(insample_y)
        return self.basis(theta)


class NHITS(nn.Module):
    def __init__(
        self, n_pool_kernel_size=(4, 2, 1), n_freq_downsample=(4, 2, 1), interpolation_mode="linear"
    ):
        super().__init__()
        blocks = []
        for k, f in zip(n_pool_kernel_size, n_freq_downsample):
            n_theta = max(H // f, 1)
            basis = IdentityBasis(L_IN, H, interpolation_mode)
            blocks.append(NHITSBlock(L_IN, H, n_theta, [[32, 32], [32, 32]], basis, k))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, insample_y, insample_mask):
        residuals = insample_y.flip(dims=(-1,))
        insample_mask = insample_mask.flip(dims=(-1,))
        forecast = insample_y[:, -1:]
        for block in self.blocks:
            backcast, block_forecast = block(residuals)
            residuals = (residuals - backcast) * insample_mask
            forecast = forecast + block_forecast
        return forecast


def median_scaler(x, mask):
    x_nan = x.masked_fill(mask == 0, float("nan"))
    median = torch.nanmedian(x_nan, dim=-1, keepdim=True).values
    mad = torch.nanmean((x_nan - median).abs(), dim=-1, keepdim=True).clamp(min=1e-3)
    return (x - median) / mad * mask, median, mad


t = np.arange(600)
series = np.stack(
    [
        np.sin(2 * np.pi * t / 12 + k) * (1 + 0.3 * k)
        + 0.02 * t * (k % 2)
        + 0.1 * rng.standard_normal(600)
        for k in range(4)
    ]
)
series = series.astype(np.float32)
out = {}
for mode in ["linear", "nearest"]:
    model = NHITS(interpolation_mode=mode)
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    decomposition = []
    hooks = [
        blk.register_forward_hook(lambda m, i, o, d=decomposition: d.append(o[1].detach()))
        for blk in model.blocks
    ]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    losses = []
    for step in range(8):
        s = rng.integers(0, 600 - L_IN - H, 16)
        k = rng.integers(0, 4, 16)
        win = torch.from_numpy(np.stack([series[kk, ss : ss + L_IN + H] for kk, ss in zip(k, s)]))
        mask = torch.from_numpy((rng.uniform(size=(16, L_IN + H)) > 0.05).astype(np.float32))
        x, m = win[:, :L_IN], mask[:, :L_IN]
        x_s, median, mad = median_scaler(x, m)
        y_s = (win[:, L_IN:] - median) / mad
        decomposition.clear()
        pred = model(x_s, m)
        loss = (torch.abs(pred - y_s) * mask[:, L_IN:]).sum() / mask[:, L_IN:].sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    for hk in hooks:
        hk.remove()
    with torch.no_grad():
        x = torch.from_numpy(series[:, -L_IN - H : -H])
        m = torch.ones_like(x)
        x_s, median, mad = median_scaler(x, m)
        decomposition.clear()
        pred = model(x_s, m) * mad + median
    out[mode] = losses
    out[mode + "_pred"] = pred[:2].tolist()
    out[mode + "_hooks"] = len(decomposition)
    out[mode + "_mae"] = (pred - torch.from_numpy(series[:, -H:])).abs().mean().item()
report(**out)
