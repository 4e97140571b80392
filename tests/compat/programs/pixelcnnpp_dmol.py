# pixel-cnn-pp's discretized mixture of logistics loss and sampler as the PyTorch ports write
# them (pclucas14/pixel-cnn-pp utils.py, condensed): log_sum_exp / log_prob_from_logits by hand
# with torch.max(x, dim=axis) and keepdim, l.permute(0, 2, 3, 1), the mixture split
# l[:, :, :, :nr_mix], the autoregressive channel coefficients by torch.tanh and the
# `means[:, :, :, 1, :] + coeffs[:, :, :, 0, :] * x[:, :, :, 0, :]` update built with .view
# and torch.cat, centred / plus_in / min_in, log_cdf_plus = plus_in - F.softplus(plus_in), the
# nested edge cases (x < -0.999, x > 0.999, cdf_delta > 1e-5) by float masks, the 1-channel
# variant, sampling by a NumPy-drawn Gumbel argmax and one_hot, and a tiny gated ResNet
# (concat_elu, down-shifted convolutions by F.pad) trained on it with Adam.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(1313)


def concat_elu(x):
    axis = len(x.size()) - 3
    return F.elu(torch.cat([x, -x], dim=axis))


def log_sum_exp(x):
    axis = len(x.size()) - 1
    m, _ = torch.max(x, dim=axis)
    m2, _ = torch.max(x, dim=axis, keepdim=True)
    return m + torch.log(torch.sum(torch.exp(x - m2), dim=axis))


def log_prob_from_logits(x):
    axis = len(x.size()) - 1
    m, _ = torch.max(x, dim=axis, keepdim=True)
    return x - m - torch.log(torch.sum(torch.exp(x - m), dim=axis, keepdim=True))


def discretized_mix_logistic_loss(x, l):
    x = x.permute(0, 2, 3, 1)
    l = l.permute(0, 2, 3, 1)
    xs = [int(y) for y in x.size()]
    ls = [int(y) for y in l.size()]
    nr_mix = int(ls[-1] / 10)
    logit_probs = l[:, :, :, :nr_mix]
    l = l[:, :, :, nr_mix:].contiguous().view(xs + [nr_mix * 3])
    means = l[:, :, :, :, :nr_mix]
    log_scales = torch.clamp(l[:, :, :, :, nr_mix : 2 * nr_mix], min=-7.0)
    coeffs = torch.tanh(l[:, :, :, :, 2 * nr_mix : 3 * nr_mix])
    x = x.contiguous()
    x = x.unsqueeze(-1) + torch.zeros(xs + [nr_mix], requires_grad=False)
    m2 = (means[:, :, :, 1, :] + coeffs[:, :, :, 0, :] * x[:, :, :, 0, :]).view(
        xs[0], xs[1], xs[2], 1, nr_mix
    )
    m3 = (
        means[:, :, :, 2, :]
        + coeffs[:, :, :, 1, :] * x[:, :, :, 0, :]
        + coeffs[:, :, :, 2, :] * x[:, :, :, 1, :]
    ).view(xs[0], xs[1], xs[2], 1, nr_mix)
    means = torch.cat((means[:, :, :, 0, :].unsqueeze(3), m2, m3), dim=3)
    centered_x = x - means
    inv_stdv = torch.exp(-log_scales)
    plus_in = inv_stdv * (centered_x + 1.0 / 255.0)
    cdf_plus = torch.sigmoid(plus_in)
    min_in = inv_stdv * (centered_x - 1.0 / 255.0)
    cdf_min = torch.sigmoid(min_in)
    log_cdf_plus = plus_in - F.softplus(plus_in)
    log_one_minus_cdf_min = -F.softplus(min_in)
    cdf_delta = cdf_plus - cdf_min
    mid_in = inv_stdv * centered_x
    log_pdf_mid = mid_in - log_scales - 2.0 * F.softplus(mid_in)
    inner_inner_cond = (cdf_delta > 1e-5).float()
    inner_inner_out = inner_inner_cond * torch.log(torch.clamp(cdf_delta, min=1e-12)) + (
        1.0 - inner_inner_cond
    ) * (log_pdf_mid - np.log(127.5))
    inner_cond = (x > 0.999).float()
    inner_out = inner_cond * log_one_minus_cdf_min + (1.0 - inner_cond) * inner_inner_out
    cond = (x < -0.999).float()
    log_probs = cond * log_cdf_plus + (1.0 - cond) * inner_out
    log_probs = torch.sum(log_probs, dim=3) + log_prob_from_logits(logit_probs)
    return -torch.sum(log_sum_exp(log_probs))


def to_one_hot(tensor, n, fill_with=1.0):
    one_hot = torch.FloatTensor(tensor.size() + (n,)).zero_()
    one_hot.scatter_(len(tensor.size()), tensor.unsqueeze(-1), fill_with)
    return one_hot


def sample_from_discretized_mix_logistic(l, nr_mix, u_mix, u_logistic):
    l = l.permute(0, 2, 3, 1)
    ls = [int(y) for y in l.size()]
    xs = ls[:-1] + [3]
    logit_probs = l[:, :, :, :nr_mix]
    l = l[:, :, :, nr_mix:].contiguous().view(xs + [nr_mix * 3])
    temp = logit_probs.data - torch.log(-torch.log(u_mix))
    _, argmax = temp.max(dim=3)
    one_hot = to_one_hot(argmax, nr_mix)
    sel = one_hot.view(xs[:-1] + [1, nr_mix])
    means = torch.sum(l[:, :, :, :, :nr_mix] * sel, dim=4)
    log_scales = torch.clamp(torch.sum(l[:, :, :, :, nr_mix : 2 * nr_mix] * sel, dim=4), min=-7.0)
    coeffs = torch.sum(torch.tanh(l[:, :, :, :, 2 * nr_mix : 3 * nr_mix]) * sel, dim=4)
    x = means + torch.exp(log_scales) * (torch.log(u_logistic) - torch.log(1.0 - u_logistic))
    x0 = torch.clamp(torch.clamp(x[:, :, :, 0], min=-1.0), max=1.0)
    x1 = torch.clamp(torch.clamp(x[:, :, :, 1] + coeffs[:, :, :, 0] * x0, min=-1.0), max=1.0)
    x2 = torch.clamp(
        torch.clamp(x[:, :, :, 2] + coeffs[:, :, :, 1] * x0 + coeffs[:, :, :, 2] * x1, min=-1.0),
        max=1.0,
    )
    out = torch.cat([x0.view(xs[:-1] + [1]), x1.view(xs[:-1] + [1]), x2.view(xs[:-1] + [1])], dim=3)
    return out.permute(0, 3, 1, 2)


class DownShiftedConv2d(nn.Module):
    def __init__(self, num_filters_in, num_filters_out, filter_size=(2, 3)):
        super().__init__()
        self.conv = nn.Conv2d(num_filters_in, num_filters_out, filter_size)
        self.pad = nn.ZeroPad2d(
            (int((filter_size[1] - 1) / 2), int((filter_size[1] - 1) / 2), filter_size[0] - 1, 0)
        )

    def forward(self, x):
        return self.conv(self.pad(x))


class GatedResnet(nn.Module):
    def __init__(self, nf):
        super().__init__()
        self.conv_input = DownShiftedConv2d(2 * nf, nf)
        self.conv_out = DownShiftedConv2d(2 * nf, 2 * nf)

    def forward(self, og_x):
        x = self.conv_input(concat_elu(og_x))
        x = concat_elu(x)
        x = self.conv_out(x)
        a, b = torch.chunk(x, 2, dim=1)
        return og_x + a * torch.sigmoid(b)


class TinyPixelCNN(nn.Module):
    def __init__(self, nf=8, nr_mix=3):
        super().__init__()
        self.inp = DownShiftedConv2d(3, nf)
        self.res = GatedResnet(nf)
        self.out = nn.Conv2d(nf, 10 * nr_mix, 1)

    def forward(self, x):
        x = F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]  # down shift: no pixel sees itself
        return self.out(F.elu(self.res(self.inp(x))))


model = TinyPixelCNN()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
x = torch.from_numpy((rng.integers(0, 256, (4, 3, 6, 6)) / 127.5 - 1.0).astype(np.float32))
x[0, 0, 0, :3] = -1.0
x[0, 1, 1, :3] = 1.0
opt = torch.optim.Adam(model.parameters(), lr=2e-3)
losses = []
for step in range(6):
    l = model(x)
    loss = discretized_mix_logistic_loss(x, l)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item() / (np.log(2.0) * x.numel()))  # bits per dimension
with torch.no_grad():
    l = model(x)
    u_mix = torch.from_numpy(rng.uniform(1e-5, 1 - 1e-5, (4, 6, 6, 3)).astype(np.float32))
    u_log = torch.from_numpy(rng.uniform(1e-5, 1 - 1e-5, (4, 6, 6, 3)).astype(np.float32))
    sample = sample_from_discretized_mix_logistic(l, 3, u_mix, u_log)
grad_check = torch.zeros(1, 30, 2, 2, requires_grad=True)
xg = torch.from_numpy(np.array([-1.0, 0.0, 1.0, 0.5] * 3, dtype=np.float32).reshape(1, 3, 2, 2))
discretized_mix_logistic_loss(xg, grad_check * 0.5 + 0.1).backward()
report(
    bpd=losses,
    sample=sample[0, :, 0].tolist(),
    grad=grad_check.grad[0, :, 0, 0].tolist(),
    lse=log_sum_exp(torch.tensor([[1.0, 2.0, 3.0], [-1e3, 0.0, 1e3]])).tolist(),
)
