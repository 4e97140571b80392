# TimesNet (thuml/Time-Series-Library) as its models/TimesNet.py and layers write it (our own
# condensed rewrite): FFT_for_Period by torch.fft.rfft over time, amplitudes averaged over batch
# and channels with the DC term zeroed (frequency_list[0] = 0), torch.topk of the frequencies
# moved to NumPy by .detach().cpu().numpy() to get periods (x.shape[1] // top_list), the series
# zero-padded to a multiple of each period by torch.cat with torch.zeros, reshaped to 2-D
# (B, N, length // period, period) and permuted for an Inception_Block_V1 (parallel Conv2d of
# kernel sizes 1, 3, 5 stacked with torch.stack(res_list, dim=-1).mean(-1), kaiming_normal_
# fan_out init), reshaped back and truncated, adaptive aggregation by a softmax of the period
# weights repeated over (T, N) with unsqueeze + repeat; the DataEmbedding (TokenEmbedding by a
# circular Conv1d with kaiming init for leaky_relu, fixed sinusoidal PositionalEmbedding, a
# TimeFeatureEmbedding Linear), non-stationary normalisation (means and stdev by
# torch.var(unbiased=False) detached, de-normalised outputs), the long-term forecasting head
# predict_linear over time by permute, MSELoss and Adam with the library's "type1" lr halving
# by param_groups; plus an imputation pass with a random mask (masked MSE).
import math

import numpy as np
import torch
import torch.fft
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2198)


def FFT_for_Period(x, k=2):
    xf = torch.fft.rfft(x, dim=1)
    frequency_list = abs(xf).mean(0).mean(-1)
    frequency_list[0] = 0
    _, top_list = torch.topk(frequency_list, k)
    top_list = top_list.detach().cpu().numpy()
    period = x.shape[1] // top_list
    return period, abs(xf).mean(-1)[:, top_list]


class Inception_Block_V1(nn.Module):
    def __init__(self, in_channels, out_channels, num_kernels=3, init_weight=True):
        super().__init__()
        self.num_kernels = num_kernels
        kernels = [
            nn.Conv2d(in_channels, out_channels, kernel_size=2 * i + 1, padding=i)
            for i in range(num_kernels)
        ]
        self.kernels = nn.ModuleList(kernels)
        if init_weight:
            self._initialize_weights()

    def _initialize_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)

    def forward(self, x):
        res_list = [self.kernels[i](x) for i in range(self.num_kernels)]
        return torch.stack(res_list, dim=-1).mean(-1)


class TimesBlock(nn.Module):
    def __init__(self, seq_len, pred_len, d_model, d_ff, top_k):
        super().__init__()
        self.seq_len = seq_len
        self.pred_len = pred_len
        self.k = top_k
        self.conv = nn.Sequential(
            Inception_Block_V1(d_model, d_ff), nn.GELU(), Inception_Block_V1(d_ff, d_model)
        )

    def forward(self, x):
        B, T, N = x.size()
        period_list, period_weight = FFT_for_Period(x, self.k)
        res = []
        for i in range(self.k):
            period = period_list[i]
            if (self.seq_len + self.pred_len) % period != 0:
                length = (((self.seq_len + self.pred_len) // period) + 1) * period
                padding = torch.zeros(
                    [x.shape[0], (length - (self.seq_len + self.pred_len)), x.shape[2]]
                ).to(x.device)
                out = torch.cat([x, padding], dim=1)
            else:
                length = self.seq_len + self.pred_len
                out = x
            out = out.reshape(B, length // period, period, N).permute(0, 3, 1, 2).contiguous()
            out = self.conv(out)
            out = out.permute(0, 2, 3, 1).reshape(B, -1, N)
            res.append(out[:, : (self.seq_len + self.pred_len), :])
        res = torch.stack(res, dim=-1)
        period_weight = F.softmax(period_weight, dim=1)
        period_weight = period_weight.unsqueeze(1).unsqueeze(1).repeat(1, T, N, 1)
        res = torch.sum(res * period_weight, -1)
        return res + x


class PositionalEmbedding(nn.Module):
    def __init__(self, d_model, max_len=512):
        super().__init__()
        pe = torch.zeros(max_len, d_model).float()
        pe.require_grad = False
        position = torch.arange(0, max_len).float().unsqueeze(1)
        div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):
        return self.pe[:, : x.size(1)]


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super().__init__()
        self.tokenConv = nn.Conv1d(
            c_in, d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False
        )
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x):
        return self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)


class DataEmbedding(nn.Module):
    def __init__(self, c_in, d_model, d_inp=4, dropout=0.0):
        super().__init__()
        self.value_embedding = TokenEmbedding(c_in, d_model)
        self.position_embedding = PositionalEmbedding(d_model)
        self.temporal_embedding = nn.Linear(d_inp, d_model, bias=False)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x, x_mark):
        x = self.value_embedding(x) + self.temporal_embedding(x_mark) + self.position_embedding(x)
        return self.dropout(x)


class Model(nn.Module):
    def __init__(
        self, task, seq_len=24, pred_len=8, enc_in=3, d_model=8, d_ff=8, e_layers=2, top_k=2
    ):
        super().__init__()
        self.task_name = task
        self.seq_len, self.pred_len = seq_len, (pred_len if task == "long_term_forecast" else 0)
        self.model = nn.ModuleList(
            [TimesBlock(seq_len, self.pred_len, d_model, d_ff, top_k) for _ in range(e_layers)]
        )
        self.enc_embedding = DataEmbedding(enc_in, d_model)
        self.layer = e_layers
        self.layer_norm = nn.LayerNorm(d_model)
        if task == "long_term_forecast":
            self.predict_linear = nn.Linear(self.seq_len, self.pred_len + self.seq_len)
        self.projection = nn.Linear(d_model, enc_in, bias=True)

    def forecast(self, x_enc, x_mark_enc):
        means = x_enc.mean(1, keepdim=True).detach()
        x_enc = x_enc.sub(means)
        stdev = torch.sqrt(torch.var(x_enc, dim=1, keepdim=True, unbiased=False) + 1e-5)
        x_enc = x_enc.div(stdev)
        enc_out = self.enc_embedding(x_enc, x_mark_enc)
        enc_out = self.predict_linear(enc_out.permute(0, 2, 1)).permute(0, 2, 1)
        for i in range(self.layer):
            enc_out = self.layer_norm(self.model[i](enc_out))
        dec_out = self.projection(enc_out)
        dec_out = dec_out.mul(
            stdev[:, 0, :].unsqueeze(1).repeat(1, self.pred_len + self.seq_len, 1)
        )
        dec_out = dec_out.add(
            means[:, 0, :].unsqueeze(1).repeat(1, self.pred_len + self.seq_len, 1)
        )
        return dec_out

    def imputation(self, x_enc, x_mark_enc, mask):
        means = torch.sum(x_enc, dim=1) / torch.sum(mask == 1, dim=1)
        means = means.unsqueeze(1).detach()
        x_enc = x_enc.sub(means)
        x_enc = x_enc.masked_fill(mask == 0, 0)
        stdev = torch.sqrt(torch.sum(x_enc * x_enc, dim=1) / torch.sum(mask == 1, dim=1) + 1e-5)
        stdev = stdev.unsqueeze(1).detach()
        x_enc = x_enc.div(stdev)
        enc_out = self.enc_embedding(x_enc, x_mark_enc)
        for i in range(self.layer):
            enc_out = self.layer_norm(self.model[i](enc_out))
        dec_out = self.projection(enc_out)
        dec_out = dec_out * stdev[:, 0, :].unsqueeze(1).repeat(1, self.seq_len, 1)
        return dec_out + means[:, 0, :].unsqueeze(1).repeat(1, self.seq_len, 1)

    def forward(self, x_enc, x_mark_enc, mask=None):
        if self.task_name == "long_term_forecast":
            return self.forecast(x_enc, x_mark_enc)[:, -self.pred_len :, :]
        return self.imputation(x_enc, x_mark_enc, mask)


def adjust_learning_rate(optimizer, epoch, lr0):
    lr_adjust = {epoch: lr0 * (0.5 ** ((epoch - 1) // 1))}
    if epoch in lr_adjust.keys():
        lr = lr_adjust[epoch]
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        return lr


t = np.arange(400)
series = np.stack(
    [
        np.sin(2 * np.pi * t / 8) + 0.5 * np.sin(2 * np.pi * t / 5),
        np.cos(2 * np.pi * t / 6),
        0.01 * t,
    ],
    1,
)
series = (series + 0.1 * rng.standard_normal(series.shape)).astype(np.float32)
marks = np.stack(
    [(t % 24) / 23 - 0.5, (t % 7) / 6 - 0.5, (t % 30) / 29 - 0.5, (t % 12) / 11 - 0.5], 1
).astype(np.float32)


def window(starts, seq_len=24, pred_len=8):
    x = np.stack([series[s : s + seq_len] for s in starts])
    y = np.stack([series[s + seq_len : s + seq_len + pred_len] for s in starts])
    m = np.stack([marks[s : s + seq_len] for s in starts])
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m)


results = {}
for task in ["long_term_forecast", "imputation"]:
    model = Model(task)
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.MSELoss()
    losses, lrs = [], []
    for epoch in range(1, 3):
        for it in range(3):
            starts = rng.integers(0, 360, 6)
            x, y, m = window(starts)
            if task == "long_term_forecast":
                out = model(x, m)
                loss = crit(out, y)
            else:
                mask = torch.from_numpy((rng.uniform(size=x.shape) > 0.25).astype(np.float32))
                inp = x.masked_fill(mask == 0, 0)
                out = model(inp, m, mask)
                loss = crit(out[mask == 0], x[mask == 0])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        lrs.append(adjust_learning_rate(opt, epoch + 1, 1e-3))
    results[task] = losses
    results[task + "_lrs"] = lrs
x, _, _ = window([0, 50])
period_list, period_weight = FFT_for_Period(x, 3)
results["periods"] = period_list.tolist()
results["period_weight"] = period_weight.tolist()
report(**results)
