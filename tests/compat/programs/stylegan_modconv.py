# StyleGAN2 in the shape of rosinality/stylegan2-pytorch, shrunk to 8x8 images: equalized
# learning rate (EqualLinear / EqualConv2d scaling their weights at run time, lr_mul on the
# mapping network), PixelNorm, fused leaky ReLU with its sqrt(2) gain, modulated convolution
# with demodulation as one grouped conv2d over the batch (and its transposed-conv upsampling),
# a [1, 3, 3, 1] blur kernel by make_kernel / upfirdn as depthwise conv on padded input,
# NoiseInjection with per-layer noise buffers, ToRGB skips, the minibatch standard-deviation
# layer, the non-saturating logistic loss by softplus, R1 regularisation (autograd.grad with
# create_graph), path-length regularisation with an EMA of the mean path length, lazy
# regularisation intervals, style mixing by a NumPy crossover index, truncation towards the
# mean latent, g_ema by accumulate() (mul_ / add_ over named parameters).
import math

import numpy as np
import torch
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch import autograd, nn

rng = np.random.default_rng(2020)
STYLE, N_MLP, B = 16, 3, 4


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def fused_leaky_relu(x, bias, negative_slope=0.2, scale=2**0.5):
    rest_dim = [1] * (x.ndim - bias.ndim - 1)
    return F.leaky_relu(x + bias.view(1, bias.shape[0], *rest_dim), negative_slope) * scale


def make_kernel(k):
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    k /= k.sum()
    return k


def upfirdn2d(x, kernel, up=1, pad=(0, 0)):
    b, c, h, w = x.shape
    if up > 1:
        x = x.view(b, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.view(b, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    w_ = torch.flip(kernel, [0, 1]).view(1, 1, *kernel.shape).repeat(c, 1, 1, 1)
    return F.conv2d(x, w_, groups=c)


class Blur(nn.Module):
    def __init__(self, kernel, pad, upsample_factor=1):
        super().__init__()
        kernel = make_kernel(kernel)
        if upsample_factor > 1:
            kernel = kernel * (upsample_factor**2)
        self.register_buffer("kernel", kernel)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d(x, self.kernel, pad=self.pad)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    def __init__(self, in_dim, out_dim, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init))
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x):
        if self.activation:
            out = F.linear(x, self.weight * self.scale)
            return fused_leaky_relu(out, self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


class EqualConv2d(nn.Module):
    def __init__(self, cin, cout, k, padding=0, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.scale = 1 / math.sqrt(cin * k**2)
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, bias=self.bias, padding=self.padding)


class ModulatedConv2d(nn.Module):
    def __init__(self, cin, cout, k, style_dim, demodulate=True, upsample=False):
        super().__init__()
        self.eps, self.k, self.cin, self.cout = 1e-8, k, cin, cout
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            p = 4 - factor - (k - 1)
            self.blur = Blur(
                [1, 3, 3, 1], pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor
            )
        self.scale = 1 / math.sqrt(cin * k**2)
        self.padding = k // 2
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.modulation = EqualLinear(style_dim, cin, bias_init=1)

    def forward(self, x, style):
        batch, cin, h, w = x.shape
        style = self.modulation(style).view(batch, 1, cin, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, self.cout, 1, 1, 1)
        weight = weight.view(batch * self.cout, cin, self.k, self.k)
        if self.upsample:
            x = x.view(1, batch * cin, h, w)
            weight = weight.view(batch, self.cout, cin, self.k, self.k)
            weight = weight.transpose(1, 2).reshape(batch * cin, self.cout, self.k, self.k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            _, _, hh, ww = out.shape
            out = self.blur(out.view(batch, self.cout, hh, ww))
        else:
            x = x.view(1, batch * cin, h, w)
            out = F.conv2d(x, weight, padding=self.padding, groups=batch)
            out = out.view(batch, self.cout, *out.shape[2:])
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image, noise):
        return image + self.weight * noise


class StyledConv(nn.Module):
    def __init__(self, cin, cout, k, style_dim, upsample=False):
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, k, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate_bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x, style, noise):
        out = self.conv(x, style)
        out = self.noise(out, noise)
        return fused_leaky_relu(out, self.activate_bias)


class ToRGB(nn.Module):
    def __init__(self, cin, style_dim, upsample=True):
        super().__init__()
        if upsample:
            self.blur = Blur([1, 3, 3, 1], pad=(2, 1), upsample_factor=2)
        self.upsample = upsample
        self.conv = ModulatedConv2d(cin, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            if self.upsample:
                b, c, h, w = skip.shape
                skip = upfirdn2d(skip, self.blur.kernel, up=2, pad=(2, 1))
            out = out + skip
        return out


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        layers = [PixelNorm()]
        for _ in range(N_MLP):
            layers.append(EqualLinear(STYLE, STYLE, lr_mul=0.01, activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)
        self.input = nn.Parameter(torch.randn(1, 8, 4, 4))
        self.conv1 = StyledConv(8, 8, 3, STYLE)
        self.to_rgb1 = ToRGB(8, STYLE, upsample=False)
        self.conv_up = StyledConv(8, 6, 3, STYLE, upsample=True)
        self.conv2 = StyledConv(6, 6, 3, STYLE)
        self.to_rgb2 = ToRGB(6, STYLE)
        self.n_latent = 4
        for i, size in enumerate([4, 8, 8]):
            self.register_buffer(f"noise_{i}", torch.zeros(1, 1, size, size))

    def mean_latent(self, z):
        return self.style(z).mean(0, keepdim=True)

    def forward(
        self,
        styles,
        noise,
        truncation=1.0,
        truncation_latent=None,
        inject_index=None,
        return_latents=False,
    ):
        styles = [self.style(s) for s in styles]
        if truncation < 1:
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            latent = styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
        else:
            latent = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
            latent2 = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
            latent = torch.cat([latent, latent2], 1)
        out = self.input.repeat(latent.shape[0], 1, 1, 1)
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        out = self.conv_up(out, latent[:, 1], noise=noise[1])
        out = self.conv2(out, latent[:, 2], noise=noise[2])
        image = self.to_rgb2(out, latent[:, 3], skip)
        if return_latents:
            return image, latent
        return image, None


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = EqualConv2d(3, 8, 1)
        self.conv1 = EqualConv2d(8, 8, 3, padding=1)
        self.down = EqualConv2d(8, 8, 3, padding=1)
        self.stddev_group, self.stddev_feat = 2, 1
        self.final_conv = EqualConv2d(9, 8, 3, padding=1)
        self.final_linear = nn.Sequential(
            EqualLinear(8 * 4 * 4, 8, activation="fused_lrelu"), EqualLinear(8, 1)
        )

    def forward(self, x):
        out = F.leaky_relu(self.conv0(x), 0.2) * 2**0.5
        out = F.leaky_relu(self.conv1(out), 0.2) * 2**0.5
        out = F.avg_pool2d(self.down(out), 2)
        batch, channel, height, width = out.shape
        group = min(batch, self.stddev_group)
        stddev = out.view(group, -1, self.stddev_feat, channel // self.stddev_feat, height, width)
        stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
        stddev = stddev.mean([2, 3, 4], keepdims=True).squeeze(2)
        stddev = stddev.repeat(group, 1, height, width)
        out = torch.cat([out, stddev], 1)
        out = F.leaky_relu(self.final_conv(out), 0.2) * 2**0.5
        return self.final_linear(out.view(batch, -1))


def d_logistic_loss(real_pred, fake_pred):
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def d_r1_loss(real_pred, real_img):
    (grad_real,) = autograd.grad(outputs=real_pred.sum(), inputs=real_img, create_graph=True)
    return grad_real.pow(2).reshape(grad_real.shape[0], -1).sum(1).mean()


def g_nonsaturating_loss(fake_pred):
    return F.softplus(-fake_pred).mean()


def g_path_regularize(fake_img, latents, mean_path_length, noise_np, decay=0.01):
    noise = torch.from_numpy(noise_np) / math.sqrt(fake_img.shape[2] * fake_img.shape[3])
    (grad,) = autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)
    path_lengths = torch.sqrt(grad.pow(2).sum(2).mean(1))
    path_mean = mean_path_length + decay * (path_lengths.mean() - mean_path_length)
    path_penalty = (path_lengths - path_mean).pow(2).mean()
    return path_penalty, path_mean.detach(), path_lengths


def requires_grad(model, flag=True):
    for p in model.parameters():
        p.requires_grad = flag


def accumulate(model1, model2, decay=0.999):
    par1 = dict(model1.named_parameters())
    par2 = dict(model2.named_parameters())
    for k in par1.keys():
        par1[k].data.mul_(decay).add_(par2[k].data, alpha=1 - decay)


def noises():
    return [
        torch.from_numpy(rng.standard_normal((B, 1, s, s)).astype(np.float32)) for s in (4, 8, 8)
    ]


def real_batch():
    yy, xx = np.meshgrid(np.linspace(-1, 1, 8), np.linspace(-1, 1, 8), indexing="ij")
    imgs = []
    for _ in range(B):
        c = rng.uniform(-0.5, 0.5, size=2)
        blob = np.exp(-((yy - c[0]) ** 2 + (xx - c[1]) ** 2) / 0.2)
        imgs.append(np.stack([blob, 1 - blob, blob * 0.5]) * 2 - 1)
    return torch.tensor(np.stack(imgs), dtype=torch.float32)


torch.manual_seed(0)
generator = load(Generator())
discriminator = load(Discriminator())
g_ema = load(Generator())
g_ema.eval()
accumulate(g_ema, generator, 0)

g_reg_every, d_reg_every, r1 = 4, 2, 10.0
g_reg_ratio = g_reg_every / (g_reg_every + 1)
d_reg_ratio = d_reg_every / (d_reg_every + 1)
g_optim = torch.optim.Adam(
    generator.parameters(), lr=2e-3 * g_reg_ratio, betas=(0.0, 0.99**g_reg_ratio)
)
d_optim = torch.optim.Adam(
    discriminator.parameters(), lr=2e-3 * d_reg_ratio, betas=(0.0, 0.99**d_reg_ratio)
)

mean_path_length = 0
d_losses, g_losses, r1_losses, path_losses, path_lengths_log = [], [], [], [], []
accum = 0.5 ** (32 / (10 * 1000))
for i in range(8):
    real_img = real_batch()
    requires_grad(generator, False)
    requires_grad(discriminator, True)
    z = torch.from_numpy(rng.standard_normal((B, STYLE)).astype(np.float32))
    if rng.uniform() < 0.9:
        z2 = torch.from_numpy(rng.standard_normal((B, STYLE)).astype(np.float32))
        styles, inject = [z, z2], int(rng.integers(1, 4))
    else:
        styles, inject = [z], None
    fake_img, _ = generator(styles, noises(), inject_index=inject)
    fake_pred = discriminator(fake_img)
    real_pred = discriminator(real_img)
    d_loss = d_logistic_loss(real_pred, fake_pred)
    discriminator.zero_grad()
    d_loss.backward()
    d_optim.step()
    d_losses.append(d_loss.item())

    if i % d_reg_every == 0:
        real_img.requires_grad = True
        real_pred = discriminator(real_img)
        r1_loss = d_r1_loss(real_pred, real_img)
        discriminator.zero_grad()
        (r1 / 2 * r1_loss * d_reg_every + 0 * real_pred[0]).backward()
        d_optim.step()
        r1_losses.append(r1_loss.item())

    requires_grad(generator, True)
    requires_grad(discriminator, False)
    z = torch.from_numpy(rng.standard_normal((B, STYLE)).astype(np.float32))
    fake_img, _ = generator([z], noises())
    g_loss = g_nonsaturating_loss(discriminator(fake_img))
    generator.zero_grad()
    g_loss.backward()
    g_optim.step()
    g_losses.append(g_loss.item())

    if i % g_reg_every == 0:
        path_batch = max(1, B // 2)
        z = torch.from_numpy(rng.standard_normal((path_batch, STYLE)).astype(np.float32))
        nz = [n[:path_batch] for n in noises()]
        fake_img, latents = generator([z], nz, return_latents=True)
        pn = rng.standard_normal(fake_img.shape).astype(np.float32)
        path_loss, mean_path_length, path_lengths = g_path_regularize(
            fake_img, latents, mean_path_length, pn
        )
        generator.zero_grad()
        weighted = 2 * g_reg_every * path_loss + 0 * fake_img[0, 0, 0, 0]
        weighted.backward()
        g_optim.step()
        path_losses.append(path_loss.item())
        path_lengths_log.append(path_lengths.mean().item())
    accumulate(g_ema, generator, accum)

with torch.no_grad():
    zs = torch.from_numpy(rng.standard_normal((64, STYLE)).astype(np.float32))
    mean_latent = g_ema.mean_latent(zs)
    z = torch.from_numpy(rng.standard_normal((B, STYLE)).astype(np.float32))
    sample, _ = g_ema([z], noises(), truncation=0.7, truncation_latent=mean_latent)
    sample_full, _ = g_ema(
        [z], [getattr(g_ema, f"noise_{k}").expand(B, -1, -1, -1) for k in range(3)]
    )

report(
    d_losses=d_losses,
    g_losses=g_losses,
    r1_losses=r1_losses,
    path_losses=path_losses,
    path_lengths=path_lengths_log,
    mean_path_length=float(mean_path_length),
    sample_mean=sample.mean().item(),
    sample_std=sample.std().item(),
    sample_corner=sample[0, :, :2, :2].flatten().tolist(),
    sample_full_abs=sample_full.abs().mean().item(),
    mean_latent=mean_latent[0, :4].tolist(),
    shapes=[list(sample.shape), list(mean_latent.shape)],
)
