# Learned image compression as CompressAI writes it, shrunk: GDN / inverse GDN (beta and gamma
# through a NonNegativeParametrizer with a LowerBound autograd.Function whose backward lets
# gradients through where they push the input up, pedestal and reparametrised squares,
# F.conv2d with gamma reshaped to 1x1 kernels), a factorized-prior EntropyBottleneck (per-
# channel cumulative logits by chains of softplus matrices, tanh factors, biases; likelihoods as
# sigmoid(upper) - sigmoid(lower) with the sign trick, a likelihood lower bound), quantization
# by additive uniform noise in training (NumPy noise) and by rounding around medians at
# inference, the auxiliary quantile loss, a rate-distortion loss (bpp from -log2 likelihoods,
# lambda * 255^2 * MSE), two optimizers (main and aux parameters split by name endswith
# ".quantiles"). Our own program.
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(101)


class LowerBoundFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, bound):
        ctx.save_for_backward(input, bound)
        return torch.max(input, bound)

    @staticmethod
    def backward(ctx, grad_output):
        input, bound = ctx.saved_tensors
        pass_through_if = (input >= bound) | (grad_output < 0)
        return pass_through_if * grad_output, None


class LowerBound(nn.Module):
    def __init__(self, bound):
        super().__init__()
        self.register_buffer("bound", torch.Tensor([float(bound)]))

    def forward(self, x):
        return LowerBoundFunction.apply(x, self.bound)


class NonNegativeParametrizer(nn.Module):
    def __init__(self, minimum=0, reparam_offset=2**-18):
        super().__init__()
        self.minimum = float(minimum)
        self.reparam_offset = float(reparam_offset)
        pedestal = self.reparam_offset**2
        self.register_buffer("pedestal", torch.Tensor([pedestal]))
        bound = (self.minimum + self.reparam_offset**2) ** 0.5
        self.lower_bound = LowerBound(bound)

    def init(self, x):
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x):
        out = self.lower_bound(x)
        return out**2 - self.pedestal


class GDN(nn.Module):
    def __init__(self, in_channels, inverse=False, beta_min=1e-6, gamma_init=0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(in_channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(in_channels)))

    def forward(self, x):
        _, C, _, _ = x.size()
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(C, C, 1, 1)
        norm = F.conv2d(x**2, gamma, beta)
        norm = torch.sqrt(norm) if self.inverse else torch.rsqrt(norm)
        return x * norm


class EntropyBottleneck(nn.Module):
    def __init__(self, channels, filters=(3, 3), init_scale=10.0, likelihood_bound=1e-9):
        super().__init__()
        self.filters = tuple(int(f) for f in filters)
        self.likelihood_lower_bound = LowerBound(likelihood_bound)
        filters = (1,) + self.filters + (1,)
        scale = init_scale ** (1 / (len(self.filters) + 1))
        self.matrices, self.biases, self.factors = (
            nn.ParameterList(),
            nn.ParameterList(),
            nn.ParameterList(),
        )
        for i in range(len(self.filters) + 1):
            init = np.log(np.expm1(1 / scale / filters[i + 1]))
            self.matrices.append(
                nn.Parameter(torch.Tensor(channels, filters[i + 1], filters[i]).fill_(init))
            )
            self.biases.append(
                nn.Parameter(
                    torch.from_numpy(
                        rng.uniform(-0.5, 0.5, size=(channels, filters[i + 1], 1)).astype(
                            np.float32
                        )
                    )
                )
            )
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, filters[i + 1], 1)))
        self.quantiles = nn.Parameter(
            torch.Tensor([-init_scale, 0, init_scale]).repeat(channels, 1, 1)
        )
        self.register_buffer(
            "target", torch.Tensor([-math.log(2 / 1e-9 - 1), 0, math.log(2 / 1e-9 - 1)])
        )

    def _logits_cumulative(self, inputs, stop_gradient):
        logits = inputs
        for i in range(len(self.filters) + 1):
            matrix = self.matrices[i]
            if stop_gradient:
                matrix = matrix.detach()
            logits = torch.matmul(F.softplus(matrix), logits)
            bias = self.biases[i]
            if stop_gradient:
                bias = bias.detach()
            logits = logits + bias
            if i < len(self.factors):
                factor = self.factors[i]
                if stop_gradient:
                    factor = factor.detach()
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def _likelihood(self, inputs):
        half = 0.5
        lower = self._logits_cumulative(inputs - half, stop_gradient=False)
        upper = self._logits_cumulative(inputs + half, stop_gradient=False)
        sign = -torch.sign(lower + upper).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    def loss(self):
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    def _get_medians(self):
        return self.quantiles[:, :, 1:2]

    def forward(self, x, noise=None):
        C = x.size(1)
        values = x.permute(1, 0, 2, 3).contiguous()
        shape = values.size()
        values = values.reshape(C, 1, -1)
        if noise is not None:
            outputs = values + noise.reshape(values.shape)
        else:
            medians = self._get_medians().detach()
            outputs = torch.round(values - medians) + medians
        likelihood = self.likelihood_lower_bound(self._likelihood(outputs))
        outputs = outputs.reshape(shape).permute(1, 0, 2, 3).contiguous()
        likelihood = likelihood.reshape(shape).permute(1, 0, 2, 3).contiguous()
        return outputs, likelihood


class FactorizedPrior(nn.Module):
    def __init__(self, N=6, M=8):
        super().__init__()
        self.g_a = nn.Sequential(
            nn.Conv2d(3, N, 5, stride=2, padding=2), GDN(N), nn.Conv2d(N, M, 5, stride=2, padding=2)
        )
        self.g_s = nn.Sequential(
            nn.ConvTranspose2d(M, N, 5, stride=2, output_padding=1, padding=2),
            GDN(N, inverse=True),
            nn.ConvTranspose2d(N, 3, 5, stride=2, output_padding=1, padding=2),
        )
        self.entropy_bottleneck = EntropyBottleneck(M)

    def forward(self, x, noise=None):
        y = self.g_a(x)
        y_hat, y_likelihoods = self.entropy_bottleneck(y, noise)
        return self.g_s(y_hat), y_likelihoods, y


model = FactorizedPrior()
W = reference_weights(model)
with torch.no_grad():
    for n, p in model.named_parameters():
        if n.startswith(("g_a.0", "g_a.2", "g_s.0", "g_s.2")):
            p.copy_(torch.from_numpy(W[n]))
parameters = {n for n, p in model.named_parameters() if not n.endswith(".quantiles")}
aux_parameters = {n for n, p in model.named_parameters() if n.endswith(".quantiles")}
params_dict = dict(model.named_parameters())
optimizer = torch.optim.Adam((params_dict[n] for n in sorted(parameters)), lr=1e-3)
aux_optimizer = torch.optim.Adam((params_dict[n] for n in sorted(aux_parameters)), lr=1e-2)

yy, xx = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 16), indexing="ij")
lmbda, log = 0.01, []
for step in range(10):
    phase = rng.uniform(0, 6, size=(4, 3, 1, 1))
    imgs = 0.5 + 0.4 * np.sin(6 * xx[None, None] + 4 * yy[None, None] + phase)
    x = torch.from_numpy(imgs.astype(np.float32))
    noise = torch.from_numpy(rng.uniform(-0.5, 0.5, size=(8, 1, 4 * 4 * 4)).astype(np.float32))
    x_hat, likelihoods, y = model(x, noise)
    num_pixels = x.size(0) * x.size(2) * x.size(3)
    bpp = torch.log(likelihoods).sum() / (-math.log(2) * num_pixels)
    mse = F.mse_loss(x_hat, x)
    loss = lmbda * 255**2 * mse + bpp
    optimizer.zero_grad()
    aux_optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    aux_loss = model.entropy_bottleneck.loss()
    aux_loss.backward()
    aux_optimizer.step()
    log.append([loss.item(), bpp.item(), mse.item(), aux_loss.item()])

model.eval()
with torch.no_grad():
    x_hat, likelihoods, y = model(x)
    medians = model.entropy_bottleneck._get_medians()
    symbols = torch.round(y - medians.view(1, -1, 1, 1)).to(torch.int32)
    eval_bpp = (torch.log2(likelihoods).sum() / -(4 * 16 * 16)).item()
    psnr = (10 * torch.log10(1 / F.mse_loss(x_hat.clamp(0, 1), x))).item()
    gdn_beta = model.g_a[1].beta_reparam(model.g_a[1].beta)
# LowerBound's gradient: passes where the input is above the bound or the gradient points up
inp = torch.tensor([-1.0, 0.5, 2.0, -3.0], requires_grad=True)
out = LowerBoundFunction.apply(inp, torch.tensor([0.0]))
out.backward(torch.tensor([1.0, 1.0, -1.0, -1.0]))
report(
    log=log,
    eval_bpp=eval_bpp,
    psnr=psnr,
    symbols_range=[int(symbols.min()), int(symbols.max())],
    medians=medians.flatten().tolist(),
    gdn_beta=gdn_beta.tolist(),
    lower_bound_grad=inp.grad.tolist(),
)
