# A Fourier Neural Operator (Li et al., 2021, "Fourier Neural Operator for Parametric Partial
# Differential Equations"; the shape of the reference fourier_2d.py, our own rewrite): spectral
# convolutions with complex weights (rfft2, a complex einsum on the kept modes written into a
# complex zeros tensor, irfft2) between 1x1 convolutions, trained with Adam to map a random
# field to its smoothed, shifted version.
import math
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

GRID, MODES, WIDTH, BATCH, STEPS = 16, 4, 8, 4, 6


class SpectralConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, modes1, modes2):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes1 = modes1
        self.modes2 = modes2
        self.scale = 1 / (in_channels * out_channels)
        shape = (in_channels, out_channels, self.modes1, self.modes2)
        self.weights1 = nn.Parameter(self.scale * torch.rand(*shape, dtype=torch.cfloat))
        self.weights2 = nn.Parameter(self.scale * torch.rand(*shape, dtype=torch.cfloat))

    def compl_mul2d(self, input, weights):
        # (batch, in_channel, x, y), (in_channel, out_channel, x, y) -> (batch, out_channel, x, y)
        return torch.einsum("bixy,ioxy->boxy", input, weights)

    def forward(self, x):
        batchsize = x.shape[0]
        x_ft = torch.fft.rfft2(x)
        out_ft = torch.zeros(
            batchsize, self.out_channels, x.size(-2), x.size(-1) // 2 + 1, dtype=torch.cfloat
        )
        out_ft[:, :, : self.modes1, : self.modes2] = self.compl_mul2d(
            x_ft[:, :, : self.modes1, : self.modes2], self.weights1
        )
        out_ft[:, :, -self.modes1 :, : self.modes2] = self.compl_mul2d(
            x_ft[:, :, -self.modes1 :, : self.modes2], self.weights2
        )
        return torch.fft.irfft2(out_ft, s=(x.size(-2), x.size(-1)))


class FNO2d(nn.Module):
    def __init__(self, modes, width):
        super().__init__()
        self.fc0 = nn.Linear(3, width)  # the field and the two grid coordinates
        self.conv0 = SpectralConv2d(width, width, modes, modes)
        self.conv1 = SpectralConv2d(width, width, modes, modes)
        self.w0 = nn.Conv2d(width, width, 1)
        self.w1 = nn.Conv2d(width, width, 1)
        self.fc1 = nn.Linear(width, 32)
        self.fc2 = nn.Linear(32, 1)

    def forward(self, x):
        grid = self.get_grid(x.shape)
        x = torch.cat((x, grid), dim=-1)
        x = self.fc0(x)
        x = x.permute(0, 3, 1, 2)
        x = F.gelu(self.conv0(x) + self.w0(x))
        x = self.conv1(x) + self.w1(x)
        x = x.permute(0, 2, 3, 1)
        x = F.gelu(self.fc1(x))
        return self.fc2(x)

    def get_grid(self, shape):
        batchsize, size_x, size_y = shape[0], shape[1], shape[2]
        gridx = torch.tensor(np.linspace(0, 1, size_x), dtype=torch.float)
        gridx = gridx.reshape(1, size_x, 1, 1).repeat([batchsize, 1, size_y, 1])
        gridy = torch.tensor(np.linspace(0, 1, size_y), dtype=torch.float)
        gridy = gridy.reshape(1, 1, size_y, 1).repeat([batchsize, size_x, 1, 1])
        return torch.cat((gridx, gridy), dim=-1)


model = FNO2d(MODES, WIDTH)
weights = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        if p.is_complex():  # the same complex weights in both libraries
            rng = np.random.default_rng(zlib.crc32(name.encode()))
            scale = 1 / (WIDTH * WIDTH)
            w = scale * (rng.uniform(size=p.shape) + 1j * rng.uniform(size=p.shape))
            p.copy_(torch.from_numpy(w.astype(np.complex64)))
        else:
            p.copy_(torch.from_numpy(weights[name]))

rng = np.random.default_rng(0)
field = rng.standard_normal((BATCH, GRID, GRID)).astype(np.float32)
# the target: the field low-passed in Fourier space and shifted by one cell
spec = np.fft.rfft2(field)
spec[:, 5:-5, :] = 0
spec[:, :, 5:] = 0
target = np.roll(np.fft.irfft2(spec, s=(GRID, GRID)), 1, axis=1).astype(np.float32)
x = torch.from_numpy(field[..., None])
y = torch.from_numpy(target[..., None])

opt = torch.optim.Adam(model.parameters(), lr=3e-3)
losses = []
for step in range(STEPS):
    out = model(x)
    loss = F.mse_loss(out, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

w1 = model.conv0.weights1
report(
    losses=losses,
    weight_dtype=str(w1.dtype).split(".")[-1],
    weight_abs_sum=w1.abs().sum().item(),
    weight_angle_mean=w1.angle().mean().item(),
    exp_avg_dtype=str(opt.state[w1]["exp_avg"].dtype).split(".")[-1],
    grad_norm=math.sqrt(sum(float((p.grad.abs() ** 2).sum()) for p in model.parameters())),
)
