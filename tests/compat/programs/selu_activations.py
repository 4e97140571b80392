# Self-normalising networks (Klambauer et al.'s SNN reference code: SELU, AlphaDropout,
# lecun-normal init) and the "comparing activation functions" notebooks: every nn activation
# module and its functional form evaluated on a grid that hits the kinks exactly (0, +-0.5,
# +-1, the thresholds), with the gradients there (relu/hardtanh/relu6/threshold/hardshrink/
# softshrink/hardsigmoid/hardswish/clamp at their boundaries, abs / sign at 0, max / min / amax
# ties, norm at 0), Softplus(beta, threshold), ELU/CELU alpha, RReLU in eval, GLU, Softmin,
# LogSigmoid, Mish, Softsign, Tanhshrink; the SNN's activations statistics through depth, and a
# small SELU classifier trained with Adagrad + ExponentialLR.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(11)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


grid = torch.linspace(-3, 3, 25)  # step 0.25: hits 0, +-0.5, +-1, +-3
modules = {
    "relu": nn.ReLU(),
    "relu6": nn.ReLU6(),
    "leaky": nn.LeakyReLU(0.1),
    "elu": nn.ELU(alpha=0.5),
    "celu": nn.CELU(alpha=2.0),
    "selu": nn.SELU(),
    "gelu": nn.GELU(),
    "gelu_tanh": nn.GELU(approximate="tanh"),
    "silu": nn.SiLU(),
    "mish": nn.Mish(),
    "hardtanh": nn.Hardtanh(-1.0, 1.0),
    "hardtanh_2": nn.Hardtanh(min_val=-0.5, max_val=2.0),
    "hardsigmoid": nn.Hardsigmoid(),
    "hardswish": nn.Hardswish(),
    "hardshrink": nn.Hardshrink(0.5),
    "softshrink": nn.Softshrink(0.5),
    "tanhshrink": nn.Tanhshrink(),
    "threshold": nn.Threshold(0.5, -1.0),
    "softplus": nn.Softplus(),
    "softplus_beta": nn.Softplus(beta=2.0, threshold=4.0),
    "softsign": nn.Softsign(),
    "logsigmoid": nn.LogSigmoid(),
    "sigmoid": nn.Sigmoid(),
    "tanh": nn.Tanh(),
    "rrelu_eval": nn.RReLU(0.1, 0.3).eval(),
    "prelu": load(nn.PReLU(num_parameters=1)),
}
acts = {}
for name, m in modules.items():
    x = grid.clone().requires_grad_()
    y = m(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    acts[name] = y.tolist()
    acts[name + "_grad"] = g.tolist()

fn = {
    "clamp": lambda x: x.clamp(-1.0, 0.5),
    "clamp_min": lambda x: torch.clamp_min(x, 0.0),
    "clip_tensor": lambda x: torch.clip(x, min=torch.full_like(x, -0.5), max=torch.ones_like(x)),
    "abs": torch.abs,
    "sign_times": lambda x: torch.sign(x) * x,
    "max_pair": lambda x: torch.maximum(x, torch.zeros_like(x)),
    "min_pair": lambda x: torch.minimum(x, -x),
    "fmax": lambda x: torch.fmax(x, x.flip(0)),
    "where": lambda x: torch.where(x > 0, x * x, -x),
    "relu_fn": F.relu,
    "leaky_fn": lambda x: F.leaky_relu(x, 0.2),
    "elu_fn": lambda x: F.elu(x, alpha=1.5),
    "threshold_fn": lambda x: F.threshold(x, 1.0, 0.0),
    "hardtanh_fn": lambda x: F.hardtanh(x, -2.0, 2.0),
    "relu6_fn": F.relu6,
    "softmin": lambda x: F.softmin(x.view(5, 5), dim=1).flatten(),
    "glu": lambda x: F.glu(x[:24].view(4, 6), dim=1).flatten(),
    "pow_frac": lambda x: x.abs().pow(1.5),
    "sqrt_abs": lambda x: (x.abs() + 1e-12).sqrt(),
    "norm_rows": lambda x: torch.cat([x[:12].view(3, 4), torch.zeros(1, 4)]).norm(dim=1),
    "vector_norm_1": lambda x: torch.cat([x[:6], torch.zeros(3)]).view(3, 3).norm(p=1, dim=1),
    "amax": lambda x: torch.tensor([1.0, 2.0, 2.0, 0.5]) * x[8:12].abs().amax() + x.amax(),
    "max_dim": lambda x: x.round().view(5, 5).max(dim=1).values,
    "amax_ties": lambda x: x.round().view(5, 5).amax(dim=1),
    "amin_ties": lambda x: x.round().view(5, 5).amin(dim=0),
    "max_all_ties": lambda x: x.abs().max().reshape(1),
    "median": lambda x: x.abs().median().reshape(1),
    "logsumexp": lambda x: x.view(5, 5).logsumexp(dim=0),
}
funcs = {}
for name, f in fn.items():
    x = grid.clone().requires_grad_()
    y = f(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    funcs[name] = y.tolist()
    funcs[name + "_grad"] = g.tolist()


class SNN(nn.Module):
    def __init__(self, d_in=10, width=32, depth=6, n_classes=3):
        super().__init__()
        layers = []
        for i in range(depth):
            layers += [
                nn.Linear(d_in if i == 0 else width, width),
                nn.SELU(),
                nn.AlphaDropout(p=0.05),
            ]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(width, n_classes)

    def forward(self, x):
        return self.out(self.body(x))


snn = SNN()
with torch.no_grad():  # the reference code's lecun_normal, from NumPy so both runs agree
    for name, p in snn.named_parameters():
        if p.ndim == 2:
            p.copy_(
                torch.from_numpy(
                    rng.standard_normal(tuple(p.shape)).astype(np.float32) / np.sqrt(p.shape[1])
                )
            )
        else:
            p.zero_()
x = torch.from_numpy(rng.standard_normal((64, 10)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 3, size=64))
snn.eval()
stats = []
with torch.no_grad():
    h = x
    for m in snn.body:
        h = m(h)
        if isinstance(m, nn.SELU):
            stats.append([h.mean().item(), h.std().item()])
optimizer = torch.optim.Adagrad(
    snn.parameters(), lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1
)
scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
losses = []
for step in range(8):
    loss = F.cross_entropy(snn(x), y)  # eval mode: AlphaDropout is the identity
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()
    losses.append(loss.item())

report(**acts, **funcs, snn_stats=stats, losses=losses, last_lr=scheduler.get_last_lr()[0])
