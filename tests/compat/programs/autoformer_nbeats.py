# Long-horizon forecasting models as the Time-Series-Library (thuml) and ServiceNow's N-BEATS
# repositories write them (our own condensed rewrites): Autoformer (series decomposition by
# AvgPool1d over repeat-padded ends, the auto-correlation mechanism by rfft / conj / irfft(n=),
# top-k delays from torch.topk, aggregation by torch.roll with a Python int of a tensor in
# training and by gather on a repeated series with an arange index in eval, trend accumulation
# through a circular-padded Conv1d, my_Layernorm); DLinear with per-channel Linear heads in a
# ModuleList; PatchTST-style patching (ReplicationPad1d, Tensor.unfold, channel independence by
# reshape, a TransformerEncoder over patches, a Flatten head) under RevIN (statistics detached,
# affine denormalisation); N-BEATS with generic / trend / seasonality blocks whose bases are
# nn.Parameter(requires_grad=False), residuals flipped in time, divide_no_nan by NaN / inf
# masking, the sMAPE and MASE losses, input masks. Adam / AdamW, clip_grad_norm_.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn

rng = np.random.default_rng(2021)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(torch.from_numpy(W[name]))
    return model


def make_series(n, length, channels):
    t = np.arange(length)[None, :, None] + rng.integers(0, 50, size=(n, 1, 1))
    period = rng.choice([6.0, 12.0], size=(n, 1, channels))
    x = (np.sin(2 * np.pi * t / period) + 0.02 * t * rng.uniform(-1, 1, (n, 1, channels))
         + 0.1 * rng.standard_normal((n, length, channels)))
    return torch.from_numpy(x.astype(np.float32))


def time_marks(n, length):
    t = np.arange(length)[None, :] + rng.integers(0, 50, size=(n, 1))
    marks = np.stack([(t % 24) / 23.0 - 0.5, (t % 7) / 6.0 - 0.5], -1)
    return torch.from_numpy(marks.astype(np.float32))


# ---------------------------------------------------------------- Autoformer
class my_Layernorm(nn.Module):
    def __init__(self, channels):
        super(my_Layernorm, self).__init__()
        self.layernorm = nn.LayerNorm(channels)

    def forward(self, x):
        x_hat = self.layernorm(x)
        bias = torch.mean(x_hat, dim=1).unsqueeze(1).repeat(1, x.shape[1], 1)
        return x_hat - bias


class moving_avg(nn.Module):
    def __init__(self, kernel_size, stride):
        super(moving_avg, self).__init__()
        self.kernel_size = kernel_size
        self.avg = nn.AvgPool1d(kernel_size=kernel_size, stride=stride, padding=0)

    def forward(self, x):
        front = x[:, 0:1, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        end = x[:, -1:, :].repeat(1, (self.kernel_size - 1) // 2, 1)
        x = torch.cat([front, x, end], dim=1)
        x = self.avg(x.permute(0, 2, 1))
        x = x.permute(0, 2, 1)
        return x


class series_decomp(nn.Module):
    def __init__(self, kernel_size):
        super(series_decomp, self).__init__()
        self.moving_avg = moving_avg(kernel_size, stride=1)

    def forward(self, x):
        moving_mean = self.moving_avg(x)
        res = x - moving_mean
        return res, moving_mean


class AutoCorrelation(nn.Module):
    def __init__(self, mask_flag=True, factor=1, scale=None, attention_dropout=0.0,
                 output_attention=False):
        super(AutoCorrelation, self).__init__()
        self.factor = factor
        self.scale = scale
        self.mask_flag = mask_flag
        self.output_attention = output_attention
        self.dropout = nn.Dropout(attention_dropout)

    def time_delay_agg_training(self, values, corr):
        head = values.shape[1]
        channel = values.shape[2]
        length = values.shape[3]
        top_k = int(self.factor * math.log(length))
        mean_value = torch.mean(torch.mean(corr, dim=1), dim=1)
        index = torch.topk(torch.mean(mean_value, dim=0), top_k, dim=-1)[1]
        weights = torch.stack([mean_value[:, index[i]] for i in range(top_k)], dim=-1)
        tmp_corr = torch.softmax(weights, dim=-1)
        tmp_values = values
        delays_agg = torch.zeros_like(values).float()
        for i in range(top_k):
            pattern = torch.roll(tmp_values, -int(index[i]), -1)
            delays_agg = delays_agg + pattern * (
                tmp_corr[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(1, head, channel,
                                                                            length))
        return delays_agg

    def time_delay_agg_inference(self, values, corr):
        batch = values.shape[0]
        head = values.shape[1]
        channel = values.shape[2]
        length = values.shape[3]
        init_index = (torch.arange(length).unsqueeze(0).unsqueeze(0).unsqueeze(0)
                      .repeat(batch, head, channel, 1).to(values.device))
        top_k = int(self.factor * math.log(length))
        mean_value = torch.mean(torch.mean(corr, dim=1), dim=1)
        weights, delay = torch.topk(mean_value, top_k, dim=-1)
        tmp_corr = torch.softmax(weights, dim=-1)
        tmp_values = values.repeat(1, 1, 1, 2)
        delays_agg = torch.zeros_like(values).float()
        for i in range(top_k):
            tmp_delay = init_index + delay[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(
                1, head, channel, length)
            pattern = torch.gather(tmp_values, dim=-1, index=tmp_delay)
            delays_agg = delays_agg + pattern * (
                tmp_corr[:, i].unsqueeze(1).unsqueeze(1).unsqueeze(1).repeat(1, head, channel,
                                                                            length))
        return delays_agg

    def forward(self, queries, keys, values, attn_mask):
        B, L, H, E = queries.shape
        _, S, _, D = values.shape
        if L > S:
            zeros = torch.zeros_like(queries[:, :(L - S), :]).float()
            values = torch.cat([values, zeros], dim=1)
            keys = torch.cat([keys, zeros], dim=1)
        else:
            values = values[:, :L, :, :]
            keys = keys[:, :L, :, :]
        q_fft = torch.fft.rfft(queries.permute(0, 2, 3, 1).contiguous(), dim=-1)
        k_fft = torch.fft.rfft(keys.permute(0, 2, 3, 1).contiguous(), dim=-1)
        res = q_fft * torch.conj(k_fft)
        corr = torch.fft.irfft(res, n=L, dim=-1)
        if self.training:
            V = self.time_delay_agg_training(values.permute(0, 2, 3, 1).contiguous(),
                                             corr).permute(0, 3, 1, 2)
        else:
            V = self.time_delay_agg_inference(values.permute(0, 2, 3, 1).contiguous(),
                                              corr).permute(0, 3, 1, 2)
        if self.output_attention:
            return (V.contiguous(), corr.permute(0, 3, 1, 2))
        else:
            return (V.contiguous(), None)


class AutoCorrelationLayer(nn.Module):
    def __init__(self, correlation, d_model, n_heads, d_keys=None, d_values=None):
        super(AutoCorrelationLayer, self).__init__()
        d_keys = d_keys or (d_model // n_heads)
        d_values = d_values or (d_model // n_heads)
        self.inner_correlation = correlation
        self.query_projection = nn.Linear(d_model, d_keys * n_heads)
        self.key_projection = nn.Linear(d_model, d_keys * n_heads)
        self.value_projection = nn.Linear(d_model, d_values * n_heads)
        self.out_projection = nn.Linear(d_values * n_heads, d_model)
        self.n_heads = n_heads

    def forward(self, queries, keys, values, attn_mask):
        B, L, _ = queries.shape
        _, S, _ = keys.shape
        H = self.n_heads
        queries = self.query_projection(queries).view(B, L, H, -1)
        keys = self.key_projection(keys).view(B, S, H, -1)
        values = self.value_projection(values).view(B, S, H, -1)
        out, attn = self.inner_correlation(queries, keys, values, attn_mask)
        out = out.view(B, L, -1)
        return self.out_projection(out), attn


class EncoderLayer(nn.Module):
    def __init__(self, attention, d_model, d_ff=None, moving_avg=5, dropout=0.0,
                 activation="relu"):
        super(EncoderLayer, self).__init__()
        d_ff = d_ff or 4 * d_model
        self.attention = attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1, bias=False)
        self.decomp1 = series_decomp(moving_avg)
        self.decomp2 = series_decomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, attn_mask=None):
        new_x, attn = self.attention(x, x, x, attn_mask=attn_mask)
        x = x + self.dropout(new_x)
        x, _ = self.decomp1(x)
        y = x
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        res, _ = self.decomp2(x + y)
        return res, attn


class Encoder(nn.Module):
    def __init__(self, attn_layers, norm_layer=None):
        super(Encoder, self).__init__()
        self.attn_layers = nn.ModuleList(attn_layers)
        self.norm = norm_layer

    def forward(self, x, attn_mask=None):
        attns = []
        for attn_layer in self.attn_layers:
            x, attn = attn_layer(x, attn_mask=attn_mask)
            attns.append(attn)
        if self.norm is not None:
            x = self.norm(x)
        return x, attns


class DecoderLayer(nn.Module):
    def __init__(self, self_attention, cross_attention, d_model, c_out, d_ff=None,
                 moving_avg=5, dropout=0.0, activation="relu"):
        super(DecoderLayer, self).__init__()
        d_ff = d_ff or 4 * d_model
        self.self_attention = self_attention
        self.cross_attention = cross_attention
        self.conv1 = nn.Conv1d(in_channels=d_model, out_channels=d_ff, kernel_size=1, bias=False)
        self.conv2 = nn.Conv1d(in_channels=d_ff, out_channels=d_model, kernel_size=1, bias=False)
        self.decomp1 = series_decomp(moving_avg)
        self.decomp2 = series_decomp(moving_avg)
        self.decomp3 = series_decomp(moving_avg)
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Conv1d(in_channels=d_model, out_channels=c_out, kernel_size=3,
                                    stride=1, padding=1, padding_mode="circular", bias=False)
        self.activation = F.relu if activation == "relu" else F.gelu

    def forward(self, x, cross, x_mask=None, cross_mask=None):
        x = x + self.dropout(self.self_attention(x, x, x, attn_mask=x_mask)[0])
        x, trend1 = self.decomp1(x)
        x = x + self.dropout(self.cross_attention(x, cross, cross, attn_mask=cross_mask)[0])
        x, trend2 = self.decomp2(x)
        y = x
        y = self.dropout(self.activation(self.conv1(y.transpose(-1, 1))))
        y = self.dropout(self.conv2(y).transpose(-1, 1))
        x, trend3 = self.decomp3(x + y)
        residual_trend = trend1 + trend2 + trend3
        residual_trend = self.projection(residual_trend.permute(0, 2, 1)).transpose(1, 2)
        return x, residual_trend


class Decoder(nn.Module):
    def __init__(self, layers, norm_layer=None, projection=None):
        super(Decoder, self).__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm_layer
        self.projection = projection

    def forward(self, x, cross, x_mask=None, cross_mask=None, trend=None):
        for layer in self.layers:
            x, residual_trend = layer(x, cross, x_mask=x_mask, cross_mask=cross_mask)
            trend = trend + residual_trend
        if self.norm is not None:
            x = self.norm(x)
        if self.projection is not None:
            x = self.projection(x)
        return x, trend


class TokenEmbedding(nn.Module):
    def __init__(self, c_in, d_model):
        super(TokenEmbedding, self).__init__()
        padding = 1 if torch.__version__ >= "1.5.0" else 2
        self.tokenConv = nn.Conv1d(in_channels=c_in, out_channels=d_model, kernel_size=3,
                                   padding=padding, padding_mode="circular", bias=False)
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="leaky_relu")

    def forward(self, x):
        x = self.tokenConv(x.permute(0, 2, 1)).transpose(1, 2)
        return x


class DataEmbedding_wo_pos(nn.Module):
    def __init__(self, c_in, d_model, d_inp=2, dropout=0.0):
        super(DataEmbedding_wo_pos, self).__init__()
        self.value_embedding = TokenEmbedding(c_in=c_in, d_model=d_model)
        self.temporal_embedding = nn.Linear(d_inp, d_model, bias=False)
        self.dropout = nn.Dropout(p=dropout)

    def forward(self, x, x_mark):
        x = self.value_embedding(x) + self.temporal_embedding(x_mark)
        return self.dropout(x)


class Autoformer(nn.Module):
    def __init__(self, seq_len, label_len, pred_len, enc_in, d_model=16, n_heads=2, d_ff=32,
                 moving_avg=5, factor=1):
        super(Autoformer, self).__init__()
        self.seq_len = seq_len
        self.label_len = label_len
        self.pred_len = pred_len
        self.decomp = series_decomp(moving_avg)
        self.enc_embedding = DataEmbedding_wo_pos(enc_in, d_model)
        self.dec_embedding = DataEmbedding_wo_pos(enc_in, d_model)
        self.encoder = Encoder(
            [EncoderLayer(AutoCorrelationLayer(AutoCorrelation(False, factor), d_model, n_heads),
                          d_model, d_ff, moving_avg=moving_avg) for l in range(2)],
            norm_layer=my_Layernorm(d_model))
        self.decoder = Decoder(
            [DecoderLayer(AutoCorrelationLayer(AutoCorrelation(True, factor), d_model, n_heads),
                          AutoCorrelationLayer(AutoCorrelation(False, factor), d_model, n_heads),
                          d_model, enc_in, d_ff, moving_avg=moving_avg) for l in range(1)],
            norm_layer=my_Layernorm(d_model),
            projection=nn.Linear(d_model, enc_in, bias=True))

    def forward(self, x_enc, x_mark_enc, x_dec, x_mark_dec):
        mean = torch.mean(x_enc, dim=1).unsqueeze(1).repeat(1, self.pred_len, 1)
        zeros = torch.zeros([x_dec.shape[0], self.pred_len, x_dec.shape[2]],
                            device=x_enc.device)
        seasonal_init, trend_init = self.decomp(x_enc)
        trend_init = torch.cat([trend_init[:, -self.label_len:, :], mean], dim=1)
        seasonal_init = torch.cat([seasonal_init[:, -self.label_len:, :], zeros], dim=1)
        enc_out = self.enc_embedding(x_enc, x_mark_enc)
        enc_out, attns = self.encoder(enc_out, attn_mask=None)
        dec_out = self.dec_embedding(seasonal_init, x_mark_dec)
        seasonal_part, trend_part = self.decoder(dec_out, enc_out, x_mask=None, cross_mask=None,
                                                 trend=trend_init)
        dec_out = trend_part + seasonal_part
        return dec_out[:, -self.pred_len:, :]


seq_len, label_len, pred_len, C = 24, 12, 12, 3
series = make_series(48, seq_len + pred_len, C)
marks = time_marks(48, seq_len + pred_len)


def batch(i, bs=8):
    sl = slice(i * bs, (i + 1) * bs)
    x = series[sl]
    batch_x, batch_y = x[:, :seq_len], x[:, seq_len - label_len:]
    mx, my = marks[sl, :seq_len], marks[sl, seq_len - label_len:]
    dec_inp = torch.zeros_like(batch_y[:, -pred_len:, :]).float()
    dec_inp = torch.cat([batch_y[:, :label_len, :], dec_inp], dim=1).float()
    return batch_x, mx, dec_inp, my, batch_y[:, -pred_len:, :]


autoformer = Autoformer(seq_len, label_len, pred_len, C)
load(autoformer)
opt = torch.optim.Adam(autoformer.parameters(), lr=1e-3)
criterion = nn.MSELoss()
auto_losses = []
autoformer.train()
for i in range(5):
    bx, mx, dec_inp, my, target = batch(i)
    opt.zero_grad()
    out = autoformer(bx, mx, dec_inp, my)
    loss = criterion(out, target)
    loss.backward()
    opt.step()
    auto_losses.append(loss.item())
autoformer.eval()
with torch.no_grad():
    bx, mx, dec_inp, my, target = batch(5)
    pred = autoformer(bx, mx, dec_inp, my)
    auto_eval_mse = criterion(pred, target).item()
    auto_pred = pred[0, :, 0].tolist()
    res, trend = series_decomp(5)(bx)
    decomp_check = (res + trend - bx).abs().max().item()
    trend_ends = trend[0, [0, -1], :].tolist()
    ac = AutoCorrelation(False, 1, output_attention=True).eval()
    q = bx[:2].unsqueeze(2)
    v_inf, corr = ac(q, q, q, None)
    ac.train()
    v_tr, _ = ac(q, q, q, None)
    ac_outputs = [v_inf.sum().item(), v_tr.sum().item(), corr[0, :3, 0, 0].tolist(),
                  corr.norm().item()]


# ---------------------------------------------------------------- DLinear, PatchTST + RevIN
class DLinear(nn.Module):
    def __init__(self, seq_len, pred_len, enc_in, individual=True, kernel_size=5):
        super(DLinear, self).__init__()
        self.decompsition = series_decomp(kernel_size)
        self.individual = individual
        self.channels = enc_in
        self.pred_len = pred_len
        if self.individual:
            self.Linear_Seasonal = nn.ModuleList()
            self.Linear_Trend = nn.ModuleList()
            for i in range(self.channels):
                self.Linear_Seasonal.append(nn.Linear(seq_len, pred_len))
                self.Linear_Trend.append(nn.Linear(seq_len, pred_len))
                self.Linear_Seasonal[i].weight = nn.Parameter(
                    (1 / seq_len) * torch.ones([pred_len, seq_len]))
                self.Linear_Trend[i].weight = nn.Parameter(
                    (1 / seq_len) * torch.ones([pred_len, seq_len]))

    def forward(self, x):
        seasonal_init, trend_init = self.decompsition(x)
        seasonal_init, trend_init = seasonal_init.permute(0, 2, 1), trend_init.permute(0, 2, 1)
        seasonal_output = torch.zeros([seasonal_init.size(0), seasonal_init.size(1),
                                       self.pred_len], dtype=seasonal_init.dtype)
        trend_output = torch.zeros([trend_init.size(0), trend_init.size(1), self.pred_len],
                                   dtype=trend_init.dtype)
        for i in range(self.channels):
            seasonal_output[:, i, :] = self.Linear_Seasonal[i](seasonal_init[:, i, :])
            trend_output[:, i, :] = self.Linear_Trend[i](trend_init[:, i, :])
        x = seasonal_output + trend_output
        return x.permute(0, 2, 1)


class RevIN(nn.Module):
    def __init__(self, num_features, eps=1e-5, affine=True, subtract_last=False):
        super(RevIN, self).__init__()
        self.num_features = num_features
        self.eps = eps
        self.affine = affine
        self.subtract_last = subtract_last
        if self.affine:
            self._init_params()

    def forward(self, x, mode):
        if mode == "norm":
            self._get_statistics(x)
            x = self._normalize(x)
        elif mode == "denorm":
            x = self._denormalize(x)
        else:
            raise NotImplementedError
        return x

    def _init_params(self):
        self.affine_weight = nn.Parameter(torch.ones(self.num_features))
        self.affine_bias = nn.Parameter(torch.zeros(self.num_features))

    def _get_statistics(self, x):
        dim2reduce = tuple(range(1, x.ndim - 1))
        if self.subtract_last:
            self.last = x[:, -1, :].unsqueeze(1)
        else:
            self.mean = torch.mean(x, dim=dim2reduce, keepdim=True).detach()
        self.stdev = torch.sqrt(torch.var(x, dim=dim2reduce, keepdim=True, unbiased=False)
                                + self.eps).detach()

    def _normalize(self, x):
        if self.subtract_last:
            x = x - self.last
        else:
            x = x - self.mean
        x = x / self.stdev
        if self.affine:
            x = x * self.affine_weight
            x = x + self.affine_bias
        return x

    def _denormalize(self, x):
        if self.affine:
            x = x - self.affine_bias
            x = x / (self.affine_weight + self.eps * self.eps)
        x = x * self.stdev
        if self.subtract_last:
            x = x + self.last
        else:
            x = x + self.mean
        return x


class PatchTST(nn.Module):
    def __init__(self, c_in, context_window, target_window, patch_len=6, stride=3, d_model=16,
                 n_heads=2, subtract_last=False):
        super().__init__()
        self.revin_layer = RevIN(c_in, affine=True, subtract_last=subtract_last)
        self.patch_len, self.stride = patch_len, stride
        patch_num = int((context_window - patch_len) / stride + 1) + 1
        self.padding_patch_layer = nn.ReplicationPad1d((0, stride))
        self.W_P = nn.Linear(patch_len, d_model)
        self.W_pos = nn.Parameter(torch.empty(patch_num, d_model).uniform_(-0.02, 0.02))
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward=32, dropout=0.0,
                                           batch_first=True, norm_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)
        self.flatten = nn.Flatten(start_dim=-2)
        self.head = nn.Linear(d_model * patch_num, target_window)

    def forward(self, z):  # z: [bs x seq_len x nvars]
        z = self.revin_layer(z, "norm")
        z = z.permute(0, 2, 1)
        z = self.padding_patch_layer(z)
        z = z.unfold(dimension=-1, size=self.patch_len, step=self.stride)
        n_vars = z.shape[1]
        x = self.W_P(z)
        u = torch.reshape(x, (x.shape[0] * x.shape[1], x.shape[2], x.shape[3]))
        u = u + self.W_pos
        z = self.encoder(u)
        z = torch.reshape(z, (-1, n_vars, z.shape[-2], z.shape[-1]))
        z = self.head(self.flatten(z))
        z = z.permute(0, 2, 1)
        z = self.revin_layer(z, "denorm")
        return z


dlinear = DLinear(seq_len, pred_len, C)
load(dlinear)
patchtst = load(PatchTST(C, seq_len, pred_len))
patchtst_last = load(PatchTST(C, seq_len, pred_len, subtract_last=True))
opt = torch.optim.AdamW(list(dlinear.parameters()) + list(patchtst.parameters())
                        + list(patchtst_last.parameters()), lr=2e-3, weight_decay=0.05)
lin_losses, patch_losses, grad_norms = [], [], []
for i in range(5):
    bx, _, _, _, target = batch(i)
    l1 = F.mse_loss(dlinear(bx), target)
    l2 = F.l1_loss(patchtst(bx), target)
    l3 = F.huber_loss(patchtst_last(bx), target, delta=0.5)
    opt.zero_grad()
    (l1 + l2 + l3).backward()
    grad_norms.append(torch.nn.utils.clip_grad_norm_(patchtst.parameters(), 1.0).item())
    opt.step()
    lin_losses.append(l1.item())
    patch_losses.append([l2.item(), l3.item()])
with torch.no_grad():
    bx = batch(5)[0]
    revin = patchtst.revin_layer
    revin_roundtrip = (revin(revin(bx, "norm"), "denorm") - bx).abs().max().item()
    patch_pred = patchtst(bx)[1, :, 2].tolist()
    unfold_shape = list(bx.permute(0, 2, 1).unfold(-1, 6, 3).shape)


# ---------------------------------------------------------------- N-BEATS
def divide_no_nan(a, b):
    result = a / b
    result[result != result] = .0
    result[result == np.inf] = .0
    return result


def smape_2_loss(forecast, target, mask):
    return 200 * torch.mean(divide_no_nan(torch.abs(forecast - target),
                                          torch.abs(forecast.data) + torch.abs(target.data))
                            * mask)


def mase_loss(insample, freq, forecast, target, mask):
    masep = torch.mean(torch.abs(insample[:, freq:] - insample[:, :-freq]), dim=1)
    masked_masep_inv = divide_no_nan(mask, masep[:, None])
    return torch.mean(torch.abs(target - forecast) * masked_masep_inv)


class NBeatsBlock(nn.Module):
    def __init__(self, input_size, theta_size, basis_function, layers, layer_size):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(in_features=input_size, out_features=layer_size)]
                                    + [nn.Linear(in_features=layer_size, out_features=layer_size)
                                       for _ in range(layers - 1)])
        self.basis_parameters = nn.Linear(in_features=layer_size, out_features=theta_size)
        self.basis_function = basis_function

    def forward(self, x):
        block_input = x
        for layer in self.layers:
            block_input = torch.relu(layer(block_input))
        basis_parameters = self.basis_parameters(block_input)
        return self.basis_function(basis_parameters)


class NBeats(nn.Module):
    def __init__(self, blocks):
        super().__init__()
        self.blocks = blocks

    def forward(self, x, input_mask):
        residuals = x.flip(dims=(1,))
        input_mask = input_mask.flip(dims=(1,))
        forecast = x[:, -1:]
        for i, block in enumerate(self.blocks):
            backcast, block_forecast = block(residuals)
            residuals = (residuals - backcast) * input_mask
            forecast = forecast + block_forecast
        return forecast


class GenericBasis(nn.Module):
    def __init__(self, backcast_size, forecast_size):
        super().__init__()
        self.backcast_size = backcast_size
        self.forecast_size = forecast_size

    def forward(self, theta):
        return theta[:, :self.backcast_size], theta[:, -self.forecast_size:]


class TrendBasis(nn.Module):
    def __init__(self, degree_of_polynomial, backcast_size, forecast_size):
        super().__init__()
        self.polynomial_size = degree_of_polynomial + 1
        self.backcast_time = nn.Parameter(
            torch.tensor(np.concatenate([np.power(np.arange(backcast_size, dtype=float)
                                                  / backcast_size, i)[None, :]
                                         for i in range(self.polynomial_size)]),
                         dtype=torch.float32), requires_grad=False)
        self.forecast_time = nn.Parameter(
            torch.tensor(np.concatenate([np.power(np.arange(forecast_size, dtype=float)
                                                  / forecast_size, i)[None, :]
                                         for i in range(self.polynomial_size)]),
                         dtype=torch.float32), requires_grad=False)

    def forward(self, theta):
        backcast = torch.einsum("bp,pt->bt", theta[:, self.polynomial_size:], self.backcast_time)
        forecast = torch.einsum("bp,pt->bt", theta[:, :self.polynomial_size], self.forecast_time)
        return backcast, forecast


class SeasonalityBasis(nn.Module):
    def __init__(self, harmonics, backcast_size, forecast_size):
        super().__init__()
        self.frequency = np.append(np.zeros(1, dtype=np.float32),
                                   np.arange(harmonics, harmonics / 2 * forecast_size,
                                             dtype=np.float32) / harmonics)[None, :]
        backcast_grid = -2 * np.pi * (
            np.arange(backcast_size, dtype=np.float32)[:, None] / forecast_size) * self.frequency
        forecast_grid = 2 * np.pi * (
            np.arange(forecast_size, dtype=np.float32)[:, None] / forecast_size) * self.frequency
        self.backcast_cos_template = nn.Parameter(
            torch.tensor(np.transpose(np.cos(backcast_grid)), dtype=torch.float32),
            requires_grad=False)
        self.backcast_sin_template = nn.Parameter(
            torch.tensor(np.transpose(np.sin(backcast_grid)), dtype=torch.float32),
            requires_grad=False)
        self.forecast_cos_template = nn.Parameter(
            torch.tensor(np.transpose(np.cos(forecast_grid)), dtype=torch.float32),
            requires_grad=False)
        self.forecast_sin_template = nn.Parameter(
            torch.tensor(np.transpose(np.sin(forecast_grid)), dtype=torch.float32),
            requires_grad=False)

    def forward(self, theta):
        params_per_harmonic = theta.shape[1] // 4
        backcast_harmonics_cos = torch.einsum("bp,pt->bt", theta[:, 2 * params_per_harmonic:
                                                                3 * params_per_harmonic],
                                              self.backcast_cos_template)
        backcast_harmonics_sin = torch.einsum("bp,pt->bt", theta[:, 3 * params_per_harmonic:],
                                              self.backcast_sin_template)
        backcast = backcast_harmonics_sin + backcast_harmonics_cos
        forecast_harmonics_cos = torch.einsum("bp,pt->bt",
                                              theta[:, :params_per_harmonic],
                                              self.forecast_cos_template)
        forecast_harmonics_sin = torch.einsum("bp,pt->bt", theta[:, params_per_harmonic:
                                                                2 * params_per_harmonic],
                                              self.forecast_sin_template)
        forecast = forecast_harmonics_sin + forecast_harmonics_cos
        return backcast, forecast


def interpretable(input_size, output_size, degree=2, harmonics=1, layer_size=32):
    trend_block = NBeatsBlock(input_size=input_size,
                              theta_size=2 * (degree + 1),
                              basis_function=TrendBasis(degree_of_polynomial=degree,
                                                        backcast_size=input_size,
                                                        forecast_size=output_size),
                              layers=2, layer_size=layer_size)
    seasonality_block = NBeatsBlock(input_size=input_size,
                                    theta_size=4 * int(np.ceil(harmonics / 2 * output_size)
                                                       - (harmonics - 1)),
                                    basis_function=SeasonalityBasis(harmonics=harmonics,
                                                                    backcast_size=input_size,
                                                                    forecast_size=output_size),
                                    layers=2, layer_size=layer_size)
    generic_block = NBeatsBlock(input_size=input_size, theta_size=input_size + output_size,
                                basis_function=GenericBasis(input_size, output_size),
                                layers=2, layer_size=layer_size)
    return NBeats(nn.ModuleList([trend_block, seasonality_block, generic_block]))


nbeats = interpretable(seq_len, pred_len)
load(nbeats)
frozen = sorted(n for n, p in nbeats.named_parameters() if not p.requires_grad)
uni = series[:, :, 0] + 3.0  # positive series, as M4's
uni[3, -2:] = 0.0  # a zero forecast target and forecast: 0/0 in sMAPE
opt = torch.optim.Adam([p for p in nbeats.parameters() if p.requires_grad], lr=1e-3)
nb_losses = []
for i in range(6):
    x = uni[(i % 4) * 8:(i % 4 + 1) * 8]
    insample, target = x[:, :seq_len], x[:, seq_len:]
    in_mask = torch.ones_like(insample)
    in_mask[:, :4] = 0.0  # padded history
    out_mask = (target != 0).float()
    forecast = nbeats(insample, in_mask)
    if i % 2 == 0:
        loss = smape_2_loss(forecast, target, out_mask)
    else:
        loss = mase_loss(insample, 6, forecast, target, out_mask)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(nbeats.parameters(), 1.0)
    opt.step()
    nb_losses.append(loss.item())
dnn = divide_no_nan(torch.tensor([1.0, 0.0, -2.0, 3.0]), torch.tensor([0.0, 0.0, 4.0, 0.5]))

report(auto_losses=auto_losses, auto_eval_mse=auto_eval_mse, auto_pred=auto_pred,
       decomp_check=decomp_check, trend_ends=trend_ends, ac_outputs=ac_outputs,
       lin_losses=lin_losses, patch_losses=patch_losses, grad_norms=grad_norms,
       revin_roundtrip=revin_roundtrip, patch_pred=patch_pred, unfold_shape=unfold_shape,
       frozen=frozen, nb_losses=nb_losses, dnn=dnn.tolist())
