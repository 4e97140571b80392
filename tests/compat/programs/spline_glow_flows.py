# Normalizing flows beyond RealNVP, in the shape of three repositories (our own condensed
# rewrites): nflows' rational-quadratic spline coupling (Durkan et al. 2019: softmax widths and
# heights, cumsum knots through F.pad, knots written in place, a searchsorted by comparison with
# `bin_locations[..., -1] += eps`, gather of bin parameters, linear tails through boolean-mask
# assignment `outputs[mask], logabsdet[mask] = ...`, the inverse by the quadratic root, params
# divided in place by np.sqrt(hidden)); a MADE / MAF (masked Linear with degree masks as buffers,
# sequential sampling); rosinality's glow-pytorch (ActNorm with a data-dependent first-batch
# initialisation and a uint8 `initialized` buffer, the invertible 1x1 convolution by slogdet in
# float64 and in LU form from torch.linalg.lu, a ZeroConv2d with `F.pad(value=1)`, affine coupling
# by chunk, squeeze by view/permute, bits per dimension with dequantisation); and
# torch.distributions.TransformedDistribution over a user-written Transform subclass, its .inv,
# ComposeTransform, a logistic distribution from SigmoidTransform().inv, LogNormal by ExpTransform.
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import nn
from torch.distributions import (
    LogNormal,
    Normal,
    TransformedDistribution,
    Uniform,
    constraints,
)
from torch.distributions.transforms import (
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    SigmoidTransform,
    Transform,
)

rng = np.random.default_rng(1905)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


# ---------------------------------------------------------------- nflows' RQ spline
DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3


class InputOutsideDomain(Exception):
    pass


def searchsorted(bin_locations, inputs, eps=1e-6):
    bin_locations[..., -1] += eps
    return torch.sum(inputs[..., None] >= bin_locations, dim=-1) - 1


def unconstrained_rational_quadratic_spline(inputs, unnormalized_widths, unnormalized_heights,
                                            unnormalized_derivatives, inverse=False,
                                            tails="linear", tail_bound=1.0,
                                            min_bin_width=DEFAULT_MIN_BIN_WIDTH,
                                            min_bin_height=DEFAULT_MIN_BIN_HEIGHT,
                                            min_derivative=DEFAULT_MIN_DERIVATIVE):
    inside_interval_mask = (inputs >= -tail_bound) & (inputs <= tail_bound)
    outside_interval_mask = ~inside_interval_mask

    outputs = torch.zeros_like(inputs)
    logabsdet = torch.zeros_like(inputs)

    if tails == "linear":
        unnormalized_derivatives = F.pad(unnormalized_derivatives, pad=(1, 1))
        constant = np.log(np.exp(1 - min_derivative) - 1)
        unnormalized_derivatives[..., 0] = constant
        unnormalized_derivatives[..., -1] = constant

        outputs[outside_interval_mask] = inputs[outside_interval_mask]
        logabsdet[outside_interval_mask] = 0
    else:
        raise RuntimeError("{} tails are not implemented.".format(tails))

    if torch.any(inside_interval_mask):
        (outputs[inside_interval_mask],
         logabsdet[inside_interval_mask]) = rational_quadratic_spline(
            inputs=inputs[inside_interval_mask],
            unnormalized_widths=unnormalized_widths[inside_interval_mask, :],
            unnormalized_heights=unnormalized_heights[inside_interval_mask, :],
            unnormalized_derivatives=unnormalized_derivatives[inside_interval_mask, :],
            inverse=inverse,
            left=-tail_bound, right=tail_bound, bottom=-tail_bound, top=tail_bound,
            min_bin_width=min_bin_width,
            min_bin_height=min_bin_height,
            min_derivative=min_derivative,
        )
    return outputs, logabsdet


def rational_quadratic_spline(inputs, unnormalized_widths, unnormalized_heights,
                              unnormalized_derivatives, inverse=False, left=0.0, right=1.0,
                              bottom=0.0, top=1.0, min_bin_width=DEFAULT_MIN_BIN_WIDTH,
                              min_bin_height=DEFAULT_MIN_BIN_HEIGHT,
                              min_derivative=DEFAULT_MIN_DERIVATIVE):
    if torch.min(inputs) < left or torch.max(inputs) > right:
        raise InputOutsideDomain()

    num_bins = unnormalized_widths.shape[-1]

    widths = F.softmax(unnormalized_widths, dim=-1)
    widths = min_bin_width + (1 - min_bin_width * num_bins) * widths
    cumwidths = torch.cumsum(widths, dim=-1)
    cumwidths = F.pad(cumwidths, pad=(1, 0), mode="constant", value=0.0)
    cumwidths = (right - left) * cumwidths + left
    cumwidths[..., 0] = left
    cumwidths[..., -1] = right
    widths = cumwidths[..., 1:] - cumwidths[..., :-1]

    derivatives = min_derivative + F.softplus(unnormalized_derivatives)

    heights = F.softmax(unnormalized_heights, dim=-1)
    heights = min_bin_height + (1 - min_bin_height * num_bins) * heights
    cumheights = torch.cumsum(heights, dim=-1)
    cumheights = F.pad(cumheights, pad=(1, 0), mode="constant", value=0.0)
    cumheights = (top - bottom) * cumheights + bottom
    cumheights[..., 0] = bottom
    cumheights[..., -1] = top
    heights = cumheights[..., 1:] - cumheights[..., :-1]

    if inverse:
        bin_idx = searchsorted(cumheights, inputs)[..., None]
    else:
        bin_idx = searchsorted(cumwidths, inputs)[..., None]

    input_cumwidths = cumwidths.gather(-1, bin_idx)[..., 0]
    input_bin_widths = widths.gather(-1, bin_idx)[..., 0]

    input_cumheights = cumheights.gather(-1, bin_idx)[..., 0]
    delta = heights / widths
    input_delta = delta.gather(-1, bin_idx)[..., 0]

    input_derivatives = derivatives.gather(-1, bin_idx)[..., 0]
    input_derivatives_plus_one = derivatives[..., 1:].gather(-1, bin_idx)[..., 0]

    input_heights = heights.gather(-1, bin_idx)[..., 0]

    if inverse:
        a = (inputs - input_cumheights) * (
            input_derivatives + input_derivatives_plus_one - 2 * input_delta
        ) + input_heights * (input_delta - input_derivatives)
        b = input_heights * input_derivatives - (inputs - input_cumheights) * (
            input_derivatives + input_derivatives_plus_one - 2 * input_delta
        )
        c = -input_delta * (inputs - input_cumheights)

        discriminant = b.pow(2) - 4 * a * c
        assert (discriminant >= 0).all()

        root = (2 * c) / (-b - torch.sqrt(discriminant))
        outputs = root * input_bin_widths + input_cumwidths

        theta_one_minus_theta = root * (1 - root)
        denominator = input_delta + (
            (input_derivatives + input_derivatives_plus_one - 2 * input_delta)
            * theta_one_minus_theta
        )
        derivative_numerator = input_delta.pow(2) * (
            input_derivatives_plus_one * root.pow(2)
            + 2 * input_delta * theta_one_minus_theta
            + input_derivatives * (1 - root).pow(2)
        )
        logabsdet = torch.log(derivative_numerator) - 2 * torch.log(denominator)
        return outputs, -logabsdet
    else:
        theta = (inputs - input_cumwidths) / input_bin_widths
        theta_one_minus_theta = theta * (1 - theta)

        numerator = input_heights * (
            input_delta * theta.pow(2) + input_derivatives * theta_one_minus_theta
        )
        denominator = input_delta + (
            (input_derivatives + input_derivatives_plus_one - 2 * input_delta)
            * theta_one_minus_theta
        )
        outputs = input_cumheights + numerator / denominator

        derivative_numerator = input_delta.pow(2) * (
            input_derivatives_plus_one * theta.pow(2)
            + 2 * input_delta * theta_one_minus_theta
            + input_derivatives * (1 - theta).pow(2)
        )
        logabsdet = torch.log(derivative_numerator) - 2 * torch.log(denominator)
        return outputs, logabsdet


class ConditionerMLP(nn.Module):
    def __init__(self, in_features, out_features, hidden_features):
        super().__init__()
        self.hidden_features = hidden_features
        self.net = nn.Sequential(nn.Linear(in_features, hidden_features), nn.ReLU(),
                                 nn.Linear(hidden_features, hidden_features), nn.ReLU(),
                                 nn.Linear(hidden_features, out_features))

    def forward(self, x):
        return self.net(x)


class PiecewiseRQCoupling(nn.Module):
    def __init__(self, mask, hidden_features=16, num_bins=5, tail_bound=3.0):
        super().__init__()
        self.register_buffer("identity_features", (mask <= 0).nonzero().view(-1))
        self.register_buffer("transform_features", (mask > 0).nonzero().view(-1))
        self.num_bins = num_bins
        self.tail_bound = tail_bound
        n_id, n_tf = len(self.identity_features), len(self.transform_features)
        self.transform_net = ConditionerMLP(n_id, n_tf * (3 * num_bins - 1), hidden_features)

    def _coupling(self, inputs, inverse):
        identity_split = inputs[:, self.identity_features]
        transform_split = inputs[:, self.transform_features]
        transform_params = self.transform_net(identity_split)
        b, d = transform_split.shape
        transform_params = transform_params.reshape(b, d, -1)
        unnormalized_widths = transform_params[..., :self.num_bins]
        unnormalized_heights = transform_params[..., self.num_bins:2 * self.num_bins]
        unnormalized_derivatives = transform_params[..., 2 * self.num_bins:]
        if hasattr(self.transform_net, "hidden_features"):
            unnormalized_widths /= np.sqrt(self.transform_net.hidden_features)
            unnormalized_heights /= np.sqrt(self.transform_net.hidden_features)
        transform_split, logabsdet = unconstrained_rational_quadratic_spline(
            transform_split, unnormalized_widths, unnormalized_heights,
            unnormalized_derivatives, inverse=inverse, tail_bound=self.tail_bound)
        outputs = torch.empty_like(inputs)
        outputs[:, self.identity_features] = identity_split
        outputs[:, self.transform_features] = transform_split
        return outputs, logabsdet.sum(dim=1)

    def forward(self, inputs):
        return self._coupling(inputs, inverse=False)

    def inverse(self, inputs):
        return self._coupling(inputs, inverse=True)


def standard_normal_log_prob(z):
    return -0.5 * (z ** 2).sum(dim=1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def make_rings(n):
    theta = rng.uniform(0, 2 * np.pi, n)
    r = rng.choice([1.0, 2.5], n) + 0.1 * rng.standard_normal(n)
    x = np.stack([r * np.cos(theta), r * np.sin(theta), 0.5 * r - 1.0], 1)
    return torch.from_numpy(x.astype(np.float32))


masks = [torch.tensor([1, 0, 1]), torch.tensor([0, 1, 0]), torch.tensor([1, 1, 0])]
flows = nn.ModuleList([PiecewiseRQCoupling(m) for m in masks])
load(flows)
with torch.no_grad():
    for i, f in enumerate(flows):  # wide enough that some points land in the linear tails
        f.transform_net.net[-1].weight.mul_(3.0)
opt = torch.optim.Adam(flows.parameters(), lr=3e-3)
spline_losses, tail_counts = [], []
data = make_rings(96)
for step in range(8):
    x = data[(step % 3) * 32:(step % 3 + 1) * 32]
    z, total = x, torch.zeros(x.shape[0])
    for f in flows:
        z, ld = f(z)
        total = total + ld
    tail_counts.append(int((z.abs() > 3.0).sum()))
    loss = -(standard_normal_log_prob(z) + total).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    spline_losses.append(loss.item())

with torch.no_grad():
    z = data[:16]
    lds = torch.zeros(16)
    for f in flows:
        z, ld = f(z)
        lds += ld
    x_rec = z
    inv_lds = torch.zeros(16)
    for f in reversed(flows):
        x_rec, ld = f.inverse(x_rec)
        inv_lds += ld
    spline_recon = (x_rec - data[:16]).abs().max().item()
    spline_ld_sum = (lds + inv_lds).abs().max().item()
    z_s = torch.from_numpy(rng.standard_normal((6, 3)).astype(np.float32) * 1.5)
    for f in reversed(flows):
        z_s, _ = f.inverse(z_s)
    spline_samples = z_s.tolist()


# ---------------------------------------------------------------- MADE / MAF
class MaskedLinear(nn.Linear):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features))

    def set_mask(self, mask):
        self.mask.data.copy_(torch.from_numpy(mask.astype(np.uint8).T))

    def forward(self, input):
        return F.linear(input, self.mask * self.weight, self.bias)


class MADE(nn.Module):
    def __init__(self, nin, hidden_sizes, nout):
        super().__init__()
        self.nin, self.nout, self.hidden_sizes = nin, nout, hidden_sizes
        self.net = []
        hs = [nin] + hidden_sizes + [nout]
        for h0, h1 in zip(hs, hs[1:]):
            self.net.extend([MaskedLinear(h0, h1), nn.ReLU()])
        self.net.pop()
        self.net = nn.Sequential(*self.net)
        self.m = {}
        self.update_masks()

    def update_masks(self):
        L = len(self.hidden_sizes)
        self.m[-1] = np.arange(self.nin)
        for l in range(L):  # noqa: E741 (karpathy/pytorch-made's names)
            self.m[l] = np.arange(self.hidden_sizes[l]) % (self.nin - 1)
        masks = [self.m[l - 1][:, None] <= self.m[l][None, :] for l in range(L)]
        masks.append(self.m[L - 1][:, None] < self.m[-1][None, :])
        if self.nout > self.nin:
            k = int(self.nout / self.nin)
            masks[-1] = np.concatenate([masks[-1]] * k, axis=1)
        layers = [l for l in self.net.modules() if isinstance(l, MaskedLinear)]
        for l, m in zip(layers, masks):
            l.set_mask(m)

    def forward(self, x):
        return self.net(x)


class MAF(nn.Module):
    def __init__(self, dim, hidden=24):
        super().__init__()
        self.dim = dim
        self.made = MADE(dim, [hidden, hidden], 2 * dim)

    def forward(self, x):
        out = self.made(x)
        mu, alpha = out.chunk(2, dim=1)
        alpha = torch.tanh(alpha)
        u = (x - mu) * torch.exp(-alpha)
        return u, -alpha.sum(dim=1)

    def sample(self, u):
        x = torch.zeros_like(u)
        for i in range(self.dim):
            mu, alpha = self.made(x).chunk(2, dim=1)
            x[:, i] = mu[:, i] + u[:, i] * torch.exp(torch.tanh(alpha[:, i]))
        return x


maf = load(MAF(3))
mask_sums = [int(m.mask.sum()) for m in maf.modules() if isinstance(m, MaskedLinear)]
opt = torch.optim.Adam(maf.parameters(), lr=5e-3)
maf_losses = []
for step in range(6):
    x = data[(step % 3) * 32:(step % 3 + 1) * 32]
    u, ld = maf(x)
    loss = -(standard_normal_log_prob(u) + ld).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    maf_losses.append(loss.item())
with torch.no_grad():
    u0 = torch.from_numpy(rng.standard_normal((5, 3)).astype(np.float32))
    xs = maf.sample(u0)
    u_back, _ = maf(xs)
    maf_roundtrip = (u_back - u0).abs().max().item()
x_in = data[:4].clone().requires_grad_(True)
u, _ = maf(x_in)
jac = torch.stack([torch.autograd.grad(u[:, i].sum(), x_in, retain_graph=True)[0]
                   for i in range(3)], 1)
maf_upper_zero = bool((jac.triu(1) == 0).all())


# ---------------------------------------------------------------- rosinality's Glow
logabs = lambda x: torch.log(torch.abs(x))  # noqa: E731


class ActNorm(nn.Module):
    def __init__(self, in_channel, logdet=True):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, in_channel, 1, 1))
        self.scale = nn.Parameter(torch.ones(1, in_channel, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))
        self.logdet = logdet

    def initialize(self, input):
        with torch.no_grad():
            flatten = input.permute(1, 0, 2, 3).contiguous().view(input.shape[1], -1)
            mean = (flatten.mean(1).unsqueeze(1).unsqueeze(2).unsqueeze(3)
                    .permute(1, 0, 2, 3))
            std = (flatten.std(1).unsqueeze(1).unsqueeze(2).unsqueeze(3)
                   .permute(1, 0, 2, 3))
            self.loc.data.copy_(-mean)
            self.scale.data.copy_(1 / (std + 1e-6))

    def forward(self, input):
        _, _, height, width = input.shape
        if self.initialized.item() == 0:
            self.initialize(input)
            self.initialized.fill_(1)
        log_abs = logabs(self.scale)
        logdet = height * width * torch.sum(log_abs)
        if self.logdet:
            return self.scale * (input + self.loc), logdet
        else:
            return self.scale * (input + self.loc)

    def reverse(self, output):
        return output / self.scale - self.loc


class InvConv2d(nn.Module):
    def __init__(self, in_channel):
        super().__init__()
        weight = torch.from_numpy(rng.standard_normal((in_channel, in_channel)).astype(np.float32))
        q, _ = torch.linalg.qr(weight)
        weight = q.unsqueeze(2).unsqueeze(3)
        self.weight = nn.Parameter(weight)

    def forward(self, input):
        _, _, height, width = input.shape
        out = F.conv2d(input, self.weight)
        logdet = height * width * torch.slogdet(self.weight.squeeze().double())[1].float()
        return out, logdet

    def reverse(self, output):
        return F.conv2d(output, self.weight.squeeze().inverse().unsqueeze(2).unsqueeze(3))


class InvConv2dLU(nn.Module):
    def __init__(self, in_channel):
        super().__init__()
        weight = torch.from_numpy(rng.standard_normal((in_channel, in_channel)))
        q, _ = torch.linalg.qr(weight)
        w_p, w_l, w_u = torch.linalg.lu(q.float())
        w_s = torch.diag(w_u)
        w_u = torch.triu(w_u, 1)
        u_mask = torch.triu(torch.ones_like(w_u), 1)
        l_mask = u_mask.T
        self.register_buffer("w_p", w_p)
        self.register_buffer("u_mask", u_mask)
        self.register_buffer("l_mask", l_mask)
        self.register_buffer("s_sign", torch.sign(w_s))
        self.register_buffer("l_eye", torch.eye(l_mask.shape[0]))
        self.w_l = nn.Parameter(w_l)
        self.w_s = nn.Parameter(logabs(w_s))
        self.w_u = nn.Parameter(w_u)

    def forward(self, input):
        _, _, height, width = input.shape
        weight = self.calc_weight()
        out = F.conv2d(input, weight)
        logdet = height * width * torch.sum(self.w_s)
        return out, logdet

    def calc_weight(self):
        weight = (
            self.w_p
            @ (self.w_l * self.l_mask + self.l_eye)
            @ ((self.w_u * self.u_mask) + torch.diag(self.s_sign * torch.exp(self.w_s)))
        )
        return weight.unsqueeze(2).unsqueeze(3)

    def reverse(self, output):
        weight = self.calc_weight()
        return F.conv2d(output, weight.squeeze().inverse().unsqueeze(2).unsqueeze(3))


class ZeroConv2d(nn.Module):
    def __init__(self, in_channel, out_channel, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channel, out_channel, 3, padding=0)
        self.conv.weight.data.zero_()
        self.conv.bias.data.zero_()
        self.scale = nn.Parameter(torch.zeros(1, out_channel, 1, 1))

    def forward(self, input):
        out = F.pad(input, [1, 1, 1, 1], value=1)
        out = self.conv(out)
        out = out * torch.exp(self.scale * 3)
        return out


class AffineCoupling(nn.Module):
    def __init__(self, in_channel, filter_size=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channel // 2, filter_size, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(filter_size, filter_size, 1),
            nn.ReLU(inplace=True),
            ZeroConv2d(filter_size, in_channel),
        )
        self.net[0].weight.data.normal_(0, 0.05)
        self.net[0].bias.data.zero_()
        self.net[2].weight.data.normal_(0, 0.05)
        self.net[2].bias.data.zero_()

    def forward(self, input):
        in_a, in_b = input.chunk(2, 1)
        log_s, t = self.net(in_a).chunk(2, 1)
        s = torch.sigmoid(log_s + 2)
        out_b = (in_b + t) * s
        logdet = torch.sum(torch.log(s).view(input.shape[0], -1), 1)
        return torch.cat([in_a, out_b], 1), logdet

    def reverse(self, output):
        out_a, out_b = output.chunk(2, 1)
        log_s, t = self.net(out_a).chunk(2, 1)
        s = torch.sigmoid(log_s + 2)
        in_b = out_b / s - t
        return torch.cat([out_a, in_b], 1)


class Flow(nn.Module):
    def __init__(self, in_channel, conv_lu=True):
        super().__init__()
        self.actnorm = ActNorm(in_channel)
        if conv_lu:
            self.invconv = InvConv2dLU(in_channel)
        else:
            self.invconv = InvConv2d(in_channel)
        self.coupling = AffineCoupling(in_channel)

    def forward(self, input):
        out, logdet = self.actnorm(input)
        out, det1 = self.invconv(out)
        out, det2 = self.coupling(out)
        logdet = logdet + det1
        if det2 is not None:
            logdet = logdet + det2
        return out, logdet

    def reverse(self, output):
        input = self.coupling.reverse(output)
        input = self.invconv.reverse(input)
        input = self.actnorm.reverse(input)
        return input


def squeeze2d(input):
    b_size, n_channel, height, width = input.shape
    squeezed = input.view(b_size, n_channel, height // 2, 2, width // 2, 2)
    squeezed = squeezed.permute(0, 1, 3, 5, 2, 4)
    return squeezed.contiguous().view(b_size, n_channel * 4, height // 2, width // 2)


def unsqueeze2d(output):
    b_size, n_channel, height, width = output.shape
    unsqueezed = output.view(b_size, n_channel // 4, 2, 2, height, width)
    unsqueezed = unsqueezed.permute(0, 1, 4, 2, 5, 3)
    return unsqueezed.contiguous().view(b_size, n_channel // 4, height * 2, width * 2)


def gaussian_log_p(x, mean, log_sd):
    return -0.5 * math.log(2 * math.pi) - log_sd - 0.5 * (x - mean) ** 2 / torch.exp(2 * log_sd)


class Glow(nn.Module):
    def __init__(self, in_channel, n_flow):
        super().__init__()
        self.flows = nn.ModuleList([Flow(in_channel * 4, conv_lu=(i % 2 == 0))
                                    for i in range(n_flow)])
        self.prior = ZeroConv2d(in_channel * 4, in_channel * 8)

    def forward(self, input):
        out = squeeze2d(input)
        logdet = 0
        for flow in self.flows:
            out, det = flow(out)
            logdet = logdet + det
        zero = torch.zeros_like(out)
        mean, log_sd = self.prior(zero).chunk(2, 1)
        log_p = gaussian_log_p(out, mean, log_sd).view(input.shape[0], -1).sum(1)
        return log_p, logdet, out

    def reverse(self, z):
        for flow in self.flows[::-1]:
            z = flow.reverse(z)
        return unsqueeze2d(z)


def calc_loss(log_p, logdet, image_size, n_bins, n_channel=1):
    n_pixel = image_size * image_size * n_channel
    loss = -math.log(n_bins) * n_pixel
    loss = loss + logdet + log_p
    return (
        (-loss / (math.log(2) * n_pixel)).mean(),
        (log_p / (math.log(2) * n_pixel)).mean(),
        (logdet / (math.log(2) * n_pixel)).mean(),
    )


n_bits = 5
n_bins = 2.0 ** n_bits
glow = Glow(1, 3)
W = reference_weights(glow)
with torch.no_grad():  # reference values, except the parts whose init is the method itself
    for name, p in glow.named_parameters():
        if "actnorm" in name or "invconv" in name or "prior" in name or ".4." in name:
            continue
        p.copy_(torch.from_numpy(W[name]) * 0.3)
glow_buffers = sorted(name for name, _ in glow.named_buffers())
images = rng.integers(0, 256, size=(24, 1, 8, 8)).astype(np.float32)
images[:, :, 2:6, 2:6] = np.clip(images[:, :, 2:6, 2:6] + 100, 0, 255)
images = torch.from_numpy(images) / 255.0


def preprocess(image):
    image = image * 255
    if n_bits < 8:
        image = torch.floor(image / 2 ** (8 - n_bits))
    image = image / n_bins - 0.5
    noise = torch.from_numpy(rng.uniform(0, 1, size=image.shape).astype(np.float32))
    return image + noise / n_bins


# ActNorm initialises from a separate batch (openai/glow's n_batch_init): initialised on the
# batch it then trains on, its outputs have batch mean 0, so the gradients of its `loc` and of
# the zero-initialised convolutions' biases are 0 up to float32 rounding, and Adam's normalised
# step turns that rounding into full-size steps of either sign (measured: 0.8 relative on a
# loc's norm after one step, PyTorch against descent)
init_images = torch.from_numpy(rng.integers(0, 256, size=(16, 1, 8, 8)).astype(np.float32))
with torch.no_grad():
    glow(preprocess(init_images / 255.0))
optimizer = torch.optim.Adam(glow.parameters(), lr=2e-3)
glow_bpd, glow_logp, glow_logdet, init_flags = [], [], [], []
for i in range(6):
    image = preprocess(images[(i % 3) * 8:(i % 3 + 1) * 8])
    log_p, logdet, _ = glow(image)
    logdet = logdet.mean()
    loss, log_p, log_det = calc_loss(log_p, logdet, 8, n_bins)
    glow.zero_grad()
    loss.backward()
    optimizer.step()
    glow_bpd.append(loss.item())
    glow_logp.append(log_p.item())
    glow_logdet.append(log_det.item())
    init_flags.append(int(glow.flows[0].actnorm.initialized))
with torch.no_grad():
    image = images[:4] - 0.5
    _, _, z = glow(image)
    glow_recon = (glow.reverse(z) - image).abs().max().item()
    lu_w = glow.flows[0].invconv.calc_weight().squeeze()
    lu_slogdet = torch.linalg.slogdet(lu_w)
    lu_logdet_match = abs(lu_slogdet.logabsdet.item() - glow.flows[0].invconv.w_s.sum().item())


# ---------------------------------------------------------------- TransformedDistribution
class LeakyReLUTransform(Transform):
    domain = constraints.real
    codomain = constraints.real
    bijective = True
    sign = +1

    def __init__(self, alpha=0.5, cache_size=0):
        super().__init__(cache_size=cache_size)
        self.alpha = alpha

    def __eq__(self, other):
        return isinstance(other, LeakyReLUTransform) and other.alpha == self.alpha

    def _call(self, x):
        return torch.where(x >= 0, x, x * self.alpha)

    def _inverse(self, y):
        return torch.where(y >= 0, y, y / self.alpha)

    def log_abs_det_jacobian(self, x, y):
        return torch.where(x >= 0, torch.zeros_like(x), torch.full_like(x, math.log(self.alpha)))


loc = torch.tensor([0.3, -0.2], requires_grad=True)
log_scale = torch.tensor([0.1, -0.3], requires_grad=True)
targets = torch.from_numpy(
    np.where(rng.standard_normal((64, 2)) > 0, 1.0, 0.5).astype(np.float32)
    * rng.standard_normal((64, 2)).astype(np.float32) + 0.4)
opt = torch.optim.SGD([loc, log_scale], lr=0.05)
td_losses = []
for step in range(10):
    base = Normal(torch.zeros(2), torch.ones(2))
    dist = TransformedDistribution(base, [AffineTransform(loc, log_scale.exp()),
                                          LeakyReLUTransform(0.5)])
    loss = -dist.log_prob(targets).sum(-1).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    td_losses.append(loss.item())
t = LeakyReLUTransform(0.5)
ys = torch.tensor([-1.0, -0.25, 0.0, 2.0])
td_inv = t.inv(ys).tolist()
td_inv_inv = bool(t.inv.inv is t)
comp = ComposeTransform([AffineTransform(1.0, 2.0), t, ExpTransform()])
xs = torch.tensor([-2.0, -0.5, 0.25, 1.0])
comp_y = comp(xs)
comp_ladj = comp.log_abs_det_jacobian(xs, comp_y).tolist()
comp_back = comp.inv(comp_y).tolist()

logistic = TransformedDistribution(Uniform(torch.tensor(0.0), torch.tensor(1.0)),
                                   [SigmoidTransform().inv, AffineTransform(loc=1.0, scale=2.0)])
lx = torch.tensor([-3.0, 0.0, 1.0, 4.0])
logistic_lp = logistic.log_prob(lx).tolist()
logistic_cdf = logistic.cdf(lx).tolist()
logistic_icdf = logistic.icdf(torch.tensor([0.1, 0.5, 0.9])).tolist()
lnorm = TransformedDistribution(Normal(0.2, 0.7), ExpTransform())
ln_ref = LogNormal(0.2, 0.7)
pos = torch.tensor([0.3, 1.0, 2.5])
lognormal_match = [lnorm.log_prob(pos).tolist(), ln_ref.log_prob(pos).tolist()]
lognormal_mean = ln_ref.mean.item()
event_shapes = [list(dist.event_shape), list(dist.batch_shape),
                list(dist.rsample((3,)).shape), list(logistic.sample((2, 5)).shape)]

report(spline_losses=spline_losses, tail_counts=tail_counts, spline_recon=spline_recon,
       spline_ld_sum=spline_ld_sum, spline_samples=spline_samples, mask_sums=mask_sums,
       maf_losses=maf_losses, maf_roundtrip=maf_roundtrip, maf_upper_zero=maf_upper_zero,
       glow_buffers=glow_buffers, glow_bpd=glow_bpd, glow_logp=glow_logp,
       glow_logdet=glow_logdet, init_flags=init_flags, glow_recon=glow_recon,
       lu_sign=lu_slogdet.sign.item(), lu_logdet_match=lu_logdet_match, td_losses=td_losses,
       td_inv=td_inv, td_inv_inv=td_inv_inv, comp_ladj=comp_ladj, comp_back=comp_back,
       logistic_lp=logistic_lp, logistic_cdf=logistic_cdf, logistic_icdf=logistic_icdf,
       lognormal_match=lognormal_match, lognormal_mean=lognormal_mean,
       event_shapes=event_shapes)
