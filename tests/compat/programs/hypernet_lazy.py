# Networks that make or shape other networks' weights, as research code writes them: a
# hypernetwork (Ha et al.) whose embedding-conditioned generator emits a target MLP's weights,
# applied per sample by torch.bmm / F.linear and by torch.func.functional_call with a dict of
# generated tensors, trained end to end; per-task weights in an nn.ParameterDict and
# nn.ParameterList (SIREN-style sine layers with their uniform_ init under no_grad); FiLM
# conditioning by chunk; lazy modules (LazyLinear, LazyConv2d, LazyBatchNorm1d) materialised by a
# dry run before the optimizer is built, with has_uninitialized_params() / cls_to_become; and
# forward-mode AD (torch.autograd.forward_ad dual numbers, torch.func.jvp) for a directional
# derivative of the generated network against a finite difference. Our own program; data from
# NumPy.
import math

import numpy as np
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.func import functional_call, jvp

rng = np.random.default_rng(1612)


def load_reference(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


class HyperNetwork(nn.Module):
    """Emits the weights of a 1 -> H -> 1 MLP from a task embedding."""

    def __init__(self, n_tasks, z_dim=4, hidden=16, target_hidden=8):
        super().__init__()
        self.target_hidden = target_hidden
        self.shapes = {
            "fc1.weight": (target_hidden, 1), "fc1.bias": (target_hidden,),
            "fc2.weight": (1, target_hidden), "fc2.bias": (1,),
        }
        n_out = sum(math.prod(s) for s in self.shapes.values())
        self.embed = nn.Embedding(n_tasks, z_dim)
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_out))

    def forward(self, task):
        flat = self.net(self.embed(task))  # (B, n_out)
        params, offset = {}, 0
        for name, shape in self.shapes.items():
            n = math.prod(shape)
            params[name] = flat[:, offset:offset + n].reshape(-1, *shape)
            offset += n
        return params


class TargetMLP(nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.fc1 = nn.Linear(1, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


def batched_target(params, x):
    """x: (B, N, 1); every task its own weights, applied with bmm."""
    h = torch.bmm(x, params["fc1.weight"].transpose(1, 2)) + params["fc1.bias"].unsqueeze(1)
    h = torch.tanh(h)
    return torch.baddbmm(params["fc2.bias"].unsqueeze(1), h, params["fc2.weight"].transpose(1, 2))


# tasks: sine waves with an amplitude and a phase each
n_tasks = 6
amps = rng.uniform(0.5, 2.0, size=n_tasks).astype(np.float32)
phases = rng.uniform(0, np.pi, size=n_tasks).astype(np.float32)
xs = np.linspace(-3, 3, 20, dtype=np.float32)
X = torch.from_numpy(np.tile(xs[None, :, None], (n_tasks, 1, 1)))
Y = torch.from_numpy((amps[:, None] * np.sin(xs[None, :] + phases[:, None]))[..., None])
tasks = torch.arange(n_tasks)

hyper = HyperNetwork(n_tasks)
load_reference(hyper)
target = TargetMLP()
opt = torch.optim.Adam(hyper.parameters(), lr=5e-3)
hyper_losses = []
for step in range(25):
    params = hyper(tasks)
    pred = batched_target(params, X)
    loss = F.mse_loss(pred, Y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    hyper_losses.append(loss.item())

# the same weights through functional_call, one task at a time
with torch.no_grad():
    params = hyper(tasks)
    per_task = []
    for t in range(n_tasks):
        p_t = {k: v[t] for k, v in params.items()}
        per_task.append(functional_call(target, p_t, (X[t],)))
    per_task = torch.stack(per_task)
    bmm_vs_call = (per_task - batched_target(params, X)).abs().max().item()
    # F.linear with generated weights, as hand-written hypernetwork code does
    t0 = {k: v[0] for k, v in params.items()}
    manual = F.linear(torch.tanh(F.linear(X[0], t0["fc1.weight"], t0["fc1.bias"])),
                      t0["fc2.weight"], t0["fc2.bias"])
    linear_vs_call = (manual - per_task[0]).abs().max().item()
target_params_untouched = all(p.grad is None for p in target.parameters())


# forward-mode AD: the derivative of the generated network's output along a direction in its
# embedding, by dual numbers and by torch.func.jvp, against a central difference
def out_of_embedding(z):
    flat = hyper.net(z)
    params, offset = {}, 0
    for name, shape in hyper.shapes.items():
        n = math.prod(shape)
        params[name] = flat[offset:offset + n].reshape(shape)
        offset += n
    return functional_call(target, params, (X[0],)).squeeze(-1)


z0 = hyper.embed.weight[0].detach().clone()
v = torch.from_numpy(rng.standard_normal(4).astype(np.float32))
with fwAD.dual_level():
    dual = fwAD.make_dual(z0, v)
    out = out_of_embedding(dual)
    primal, tangent = fwAD.unpack_dual(out)
_, jvp_out = jvp(out_of_embedding, (z0,), (v,))
eps = 1e-2
with torch.no_grad():
    fd = (out_of_embedding(z0 + eps * v) - out_of_embedding(z0 - eps * v)) / (2 * eps)
fw_vs_jvp = (tangent - jvp_out).abs().max().item()
fw_vs_fd = (tangent - fd).abs().max().item() < 1e-2


class SineLayer(nn.Module):
    def __init__(self, in_f, out_f, is_first=False, omega_0=30.0):
        super().__init__()
        self.omega_0 = omega_0
        self.linear = nn.Linear(in_f, out_f)
        self.is_first = is_first

    def forward(self, x):
        return torch.sin(self.omega_0 * self.linear(x))


class MultiTaskSiren(nn.Module):
    """A shared SIREN trunk; per-task FiLM scales / shifts in a ParameterDict, per-task heads
    in a ParameterList."""

    def __init__(self, names, hidden=16):
        super().__init__()
        self.trunk = nn.ModuleList([SineLayer(1, hidden, is_first=True, omega_0=3.0),
                                    SineLayer(hidden, hidden, omega_0=3.0)])
        self.film = nn.ParameterDict({n: nn.Parameter(torch.cat([torch.ones(hidden),
                                                                 torch.zeros(hidden)]))
                                      for n in names})
        self.heads = nn.ParameterList([nn.Parameter(torch.zeros(hidden)) for _ in names])
        self.names = list(names)

    def forward(self, x, name):
        h = self.trunk[0](x)
        gamma, beta = self.film[name].chunk(2)
        h = self.trunk[1](gamma * h + beta)
        return h @ self.heads[self.names.index(name)]


names = ["task%d" % i for i in range(3)]
siren = MultiTaskSiren(names)
load_reference(siren)
with torch.no_grad():
    for name, layer in [("t0", siren.trunk[0]), ("t1", siren.trunk[1])]:
        fan_in = layer.linear.in_features
        bound = 1 / fan_in if layer.is_first else math.sqrt(6 / fan_in) / layer.omega_0
        u = rng.uniform(-bound, bound, size=tuple(layer.linear.weight.shape))
        layer.linear.weight.copy_(torch.from_numpy(u.astype(np.float32)))
film_keys = list(siren.film.keys())
param_names = [n for n, _ in siren.named_parameters()]
sopt = torch.optim.Adam(siren.parameters(), lr=1e-2)
siren_losses = []
for step in range(15):
    loss = 0.0
    for i, name in enumerate(names):
        pred = siren(X[i], name)
        loss = loss + F.mse_loss(pred, Y[i].squeeze(-1))
    sopt.zero_grad()
    loss.backward()
    sopt.step()
    siren_losses.append(loss.item())
film_norms = [siren.film[n].norm().item() for n in names]


class LazyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.LazyConv2d(6, 3, padding=1)
        self.fc1 = nn.LazyLinear(16)
        self.bn = nn.LazyBatchNorm1d()
        self.fc2 = nn.LazyLinear(3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.bn(self.fc1(x))))


lazy = LazyNet()
uninitialized_before = [lazy.fc1.has_uninitialized_params(),
                        any(isinstance(p, nn.parameter.UninitializedParameter)
                            for p in lazy.parameters())]
is_lazy_before = isinstance(lazy.fc1, nn.LazyLinear)
images = torch.from_numpy(rng.standard_normal((16, 2, 8, 8)).astype(np.float32))
labels = torch.from_numpy(rng.integers(0, 3, size=16))
with torch.no_grad():
    lazy(images[:2])  # the dry run materialises every lazy parameter
materialised = [type(m).__name__ for m in (lazy.conv, lazy.fc1, lazy.bn, lazy.fc2)]
shapes = {n: list(p.shape) for n, p in lazy.named_parameters()}
load_reference(lazy)
lazy.bn.reset_running_stats()
lopt = torch.optim.SGD(lazy.parameters(), lr=0.05, momentum=0.9)
lazy_losses = []
for step in range(6):
    xb, yb = images[step % 2 * 8:step % 2 * 8 + 8], labels[step % 2 * 8:step % 2 * 8 + 8]
    loss = F.cross_entropy(lazy(xb), yb)
    lopt.zero_grad()
    loss.backward()
    lopt.step()
    lazy_losses.append(loss.item())
lazy.eval()
with torch.no_grad():
    lazy_eval = lazy(images).softmax(-1)[:4].tolist()

report(
    hyper_losses=hyper_losses,
    bmm_vs_call=bmm_vs_call,
    linear_vs_call=linear_vs_call,
    target_params_untouched=target_params_untouched,
    primal=primal.tolist(),
    tangent=tangent.tolist(),
    fw_vs_jvp=fw_vs_jvp,
    fw_vs_fd=fw_vs_fd,
    film_keys=film_keys,
    param_names=param_names,
    siren_losses=siren_losses,
    film_norms=film_norms,
    uninitialized_before=uninitialized_before,
    is_lazy_before=is_lazy_before,
    materialised=materialised,
    shapes=shapes,
    lazy_losses=lazy_losses,
    lazy_eval=lazy_eval,
)
