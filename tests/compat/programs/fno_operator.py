# A 1-D and a 2-D Fourier Neural Operator (Li et al. 2021) in the shape of the reference
# implementation (neuraloperator's fourier_1d.py / fourier_2d.py): SpectralConv layers whose
# weights are complex nn.Parameters (scale * torch.rand(..., dtype=torch.cfloat), replaced by
# reference values), torch.fft.rfft / irfft(n=...) and rfft2 / irfft2(s=...), complex einsum
# "bix,iox->box", the retained low modes written into a zeros(..., dtype=torch.cfloat) buffer by
# slicing, a pointwise Conv1d/Conv2d path, GELU, a grid channel made with linspace + repeat, and
# Adam with weight decay on complex parameters, a relative L2 loss (LpLoss), StepLR.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(83)


class SpectralConv1d(nn.Module):
    def __init__(self, in_channels, out_channels, modes1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.modes1 = modes1
        self.scale = 1 / (in_channels * out_channels)
        self.weights1 = nn.Parameter(
            self.scale * torch.rand(in_channels, out_channels, self.modes1, dtype=torch.cfloat)
        )

    def compl_mul1d(self, input, weights):
        return torch.einsum("bix,iox->box", input, weights)

    def forward(self, x):
        batchsize = x.shape[0]
        x_ft = torch.fft.rfft(x)
        out_ft = torch.zeros(
            batchsize, self.out_channels, x.size(-1) // 2 + 1, device=x.device, dtype=torch.cfloat
        )
        out_ft[:, :, : self.modes1] = self.compl_mul1d(x_ft[:, :, : self.modes1], self.weights1)
        return torch.fft.irfft(out_ft, n=x.size(-1))


class SpectralConv2d(nn.Module):
    def __init__(self, in_channels, out_channels, modes1, modes2):
        super().__init__()
        self.out_channels = out_channels
        self.modes1, self.modes2 = modes1, modes2
        self.scale = 1 / (in_channels * out_channels)
        self.weights1 = nn.Parameter(
            self.scale * torch.rand(in_channels, out_channels, modes1, modes2, dtype=torch.cfloat)
        )
        self.weights2 = nn.Parameter(
            self.scale * torch.rand(in_channels, out_channels, modes1, modes2, dtype=torch.cfloat)
        )

    def compl_mul2d(self, input, weights):
        return torch.einsum("bixy,ioxy->boxy", input, weights)

    def forward(self, x):
        batchsize = x.shape[0]
        x_ft = torch.fft.rfft2(x)
        out_ft = torch.zeros(
            batchsize, self.out_channels, x.size(-2), x.size(-1) // 2 + 1, dtype=torch.cfloat
        )
        m1, m2 = self.modes1, self.modes2
        out_ft[:, :, :m1, :m2] = self.compl_mul2d(x_ft[:, :, :m1, :m2], self.weights1)
        out_ft[:, :, -m1:, :m2] = self.compl_mul2d(x_ft[:, :, -m1:, :m2], self.weights2)
        return torch.fft.irfft2(out_ft, s=(x.size(-2), x.size(-1)))


class FNO1d(nn.Module):
    def __init__(self, modes, width):
        super().__init__()
        self.fc0 = nn.Linear(2, width)  # input channel is 2: (a(x), x)
        self.conv0 = SpectralConv1d(width, width, modes)
        self.conv1 = SpectralConv1d(width, width, modes)
        self.w0 = nn.Conv1d(width, width, 1)
        self.w1 = nn.Conv1d(width, width, 1)
        self.fc1 = nn.Linear(width, 16)
        self.fc2 = nn.Linear(16, 1)

    def get_grid(self, shape, device):
        batchsize, size_x = shape[0], shape[1]
        gridx = torch.tensor(np.linspace(0, 1, size_x), dtype=torch.float)
        gridx = gridx.reshape(1, size_x, 1).repeat([batchsize, 1, 1])
        return gridx.to(device)

    def forward(self, x):
        grid = self.get_grid(x.shape, x.device)
        x = torch.cat((x, grid), dim=-1)
        x = self.fc0(x)
        x = x.permute(0, 2, 1)
        x = F.gelu(self.conv0(x) + self.w0(x))
        x = self.conv1(x) + self.w1(x)
        x = x.permute(0, 2, 1)
        x = F.gelu(self.fc1(x))
        return self.fc2(x)


class FNO2d(nn.Module):
    def __init__(self, modes, width):
        super().__init__()
        self.fc0 = nn.Linear(3, width)
        self.conv0 = SpectralConv2d(width, width, modes, modes)
        self.w0 = nn.Conv2d(width, width, 1)
        self.fc1 = nn.Linear(width, 1)

    def forward(self, x):
        b, sx, sy = x.shape[0], x.shape[1], x.shape[2]
        gridx = torch.linspace(0, 1, sx).reshape(1, sx, 1, 1).repeat([b, 1, sy, 1])
        gridy = torch.linspace(0, 1, sy).reshape(1, 1, sy, 1).repeat([b, sx, 1, 1])
        x = self.fc0(torch.cat((x, gridx, gridy), dim=-1)).permute(0, 3, 1, 2)
        x = F.gelu(self.conv0(x) + self.w0(x))
        return self.fc1(x.permute(0, 2, 3, 1))


class LpLoss:
    def __init__(self, d=2, p=2, size_average=True, reduction=True):
        self.d, self.p = d, p
        self.reduction, self.size_average = reduction, size_average

    def rel(self, x, y):
        num_examples = x.size()[0]
        diff_norms = torch.norm(
            x.reshape(num_examples, -1) - y.reshape(num_examples, -1), self.p, 1
        )
        y_norms = torch.norm(y.reshape(num_examples, -1), self.p, 1)
        if self.reduction:
            if self.size_average:
                return torch.mean(diff_norms / y_norms)
            return torch.sum(diff_norms / y_norms)
        return diff_norms / y_norms

    def __call__(self, x, y):
        return self.rel(x, y)


def load(model):
    # complex weights: real and imaginary parts from two reference draws
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.is_complex():
                im = np.roll(W[name], 1, axis=-1)
                p.copy_(torch.complex(torch.from_numpy(W[name]), torch.from_numpy(im)) * 0.1)
            else:
                p.copy_(torch.from_numpy(W[name]))
    return model


# 1-D: learn the antiderivative-like smoothing operator u = (a convolved with a kernel)
n, size = 8, 16
xs = np.linspace(0, 1, size)
a = np.stack([np.sin(2 * np.pi * k * xs + ph) for k, ph in rng.uniform([1, 0], [3, 6], (n, 2))])
u = np.stack([np.convolve(r, np.ones(3) / 3, mode="same") for r in a])
a_t = torch.from_numpy(a.astype(np.float32)).unsqueeze(-1)
u_t = torch.from_numpy(u.astype(np.float32)).unsqueeze(-1)
model = load(FNO1d(modes=4, width=8))
optimizer = torch.optim.Adam(model.parameters(), lr=5e-3, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
myloss = LpLoss(size_average=False)
losses1 = []
for ep in range(12):
    optimizer.zero_grad()
    out = model(a_t)
    l2 = myloss(out.view(n, -1), u_t.view(n, -1))
    l2.backward()
    optimizer.step()
    scheduler.step()
    losses1.append(l2.item())
spec = model.conv0.weights1
grad_norm = float(sum(p.grad.abs().pow(2).sum() for p in model.parameters()) ** 0.5)

# 2-D
x2 = torch.from_numpy(rng.standard_normal((2, 8, 8, 1)).astype(np.float32))
y2 = torch.roll(x2, 1, dims=1) * 0.5
model2 = load(FNO2d(modes=3, width=4))
opt2 = torch.optim.AdamW(model2.parameters(), lr=5e-3)
losses2 = []
for ep in range(8):
    opt2.zero_grad()
    loss = F.mse_loss(model2(x2), y2)
    loss.backward()
    opt2.step()
    losses2.append(loss.item())
report(
    losses1=losses1,
    losses2=losses2,
    n_complex=sum(p.is_complex() for p in model.parameters()),
    n_params=sum(p.numel() for p in model.parameters()),
    spec_dtype=str(spec.dtype).split(".")[-1],
    spec=torch.view_as_real(spec.detach())[0, 0].tolist(),
    grad_norm=grad_norm,
    adam_state_complex=optimizer.state[spec]["exp_avg"].is_complex(),
    exp_avg_sq_real=not optimizer.state[spec]["exp_avg_sq"].is_complex(),
)
