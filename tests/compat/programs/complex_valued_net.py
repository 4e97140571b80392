# A complex-valued network for a signal task (deep complex networks' shape): complex nn.Linear
# layers (dtype=torch.cfloat), modReLU (abs / angle / polar), CReLU on .real / .imag, a complex
# "batch norm" by whitening, phase-aware loss by abs().pow(2), a magnitude-phase regression
# through torch.angle and torch.sgn, complex division and conj, a view_as_real head,
# Adam on complex Parameters; gradients reported through view_as_real (PyTorch's convention:
# the conjugate Wirtinger derivative).
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import report

rng = np.random.default_rng(13)
torch.manual_seed(0)


def cplx(*shape, scale=1.0):
    a = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return torch.from_numpy((scale * a).astype(np.complex64))


class ModReLU(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.b = nn.Parameter(torch.full((n,), -0.1))

    def forward(self, z):
        mag = torch.relu(z.abs() + self.b)
        return torch.polar(mag, z.angle())


class CReLU(nn.Module):
    def forward(self, z):
        return torch.complex(torch.relu(z.real), torch.relu(z.imag))


class ComplexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16, dtype=torch.cfloat)
        self.act1 = ModReLU(16)
        self.fc2 = nn.Linear(16, 16, dtype=torch.cfloat)
        self.act2 = CReLU()
        self.out = nn.Linear(16, 4, dtype=torch.cfloat)

    def forward(self, z):
        h = self.act1(self.fc1(z))
        h = h - h.mean(0, keepdim=True)
        h = h / (h.abs().pow(2).mean(0, keepdim=True) + 1e-5).sqrt()
        h = self.act2(self.fc2(h))
        return self.out(h)


net = ComplexNet()
with torch.no_grad():
    for name, p in net.named_parameters():
        if p.is_complex():
            fan_in = p.shape[-1] if p.ndim > 1 else 4
            p.copy_(cplx(*p.shape, scale=0.5 / np.sqrt(fan_in)))
results = {"param_dtypes": [str(p.dtype).split(".")[-1] for p in net.parameters()]}
opt = torch.optim.Adam(net.parameters(), lr=5e-3)
W_true = cplx(8, 4, scale=0.4)
losses = []
for step in range(12):
    z = cplx(16, 8)
    target = z @ W_true
    out = net(z)
    loss = (out - target).abs().pow(2).mean()
    phase_loss = (1 - torch.cos(out.angle() - target.angle())).mean()
    total = loss + 0.1 * phase_loss
    opt.zero_grad()
    total.backward()
    opt.step()
    losses.append([loss.item(), phase_loss.item()])
results["losses"] = losses
results["fc1_grad"] = torch.view_as_real(net.fc1.weight.grad)[:2].flatten().tolist()
results["modrelu_grad"] = net.act1.b.grad[:4].tolist()
results["exp_avg_sq_dtype"] = str(opt.state[net.fc1.weight]["exp_avg_sq"].dtype).split(".")[-1]
results["exp_avg_sq"] = (
    torch.view_as_real(opt.state[net.fc1.weight]["exp_avg_sq"])[0].flatten().tolist()
)

# elementwise complex ops and their gradients
z = cplx(6).requires_grad_(True)
w = cplx(6).requires_grad_(True)
f = (z / w).abs().sum() + torch.sgn(z).real.sum() + (z * w.conj()).imag.sum()
f = f + torch.exp(z * 0.3).real.sum() + torch.log(w).imag.pow(2).sum() + (z**2).angle().sum()
f.backward()
results["z_grad"] = torch.view_as_real(z.grad).flatten().tolist()
results["w_grad"] = torch.view_as_real(w.grad).flatten().tolist()
r = torch.view_as_real(z.detach() * 1j)
results["view_as_real"] = r.flatten().tolist()
zz = torch.view_as_complex(torch.from_numpy(rng.standard_normal((3, 2)).astype(np.float32)))
results["view_as_complex"] = [zz.real.tolist(), zz.imag.tolist(), zz.abs().tolist()]
results["complex_matmul"] = torch.view_as_real(cplx(2, 3) @ cplx(3, 2)).flatten().tolist()
results["fft_roundtrip"] = torch.fft.ifft(torch.fft.fft(cplx(8))).abs().tolist()
report(**results)
