# The normalisation layers papers' reference code writes by hand, in one small ResNet-style
# trainer: Batch Renormalization (r / d clipped against running statistics, r_max / d_max
# ramped by step, buffers updated under no_grad), Filter Response Normalization with its TLU,
# Weight Standardization as an nn.Conv2d subclass going through _conv_forward, EvoNorm-S0 (group
# std by reshape + var), LayerNorm2d by permute, GroupNorm, nn.RMSNorm; the init helpers
# (dirac_, eye_, calculate_gain, _calculate_fan_in_and_fan_out, kaiming_uniform_ with a
# generator, orthogonal_ checked by its Gram matrix), skip_init, _pair / _single from
# torch.nn.modules.utils, fuse_conv_bn_eval / fuse_linear_bn_eval checked against the unfused
# eval outputs, convert_conv2d_weight_memory_format, get_total_norm + clip_grads_with_norm_,
# Softmax2d / Softmin / CosineSimilarity heads; state_dict keys with num_batches_tracked.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.modules.utils import _pair, _single

rng = np.random.default_rng(31)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


class BatchRenorm2d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_std", torch.ones(num_features))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    @property
    def rmax(self):
        return (2 / 35000 * self.num_batches_tracked * 2000 + 25 / 35).clamp_(1.0, 3.0)

    @property
    def dmax(self):
        return (5 / 20000 * self.num_batches_tracked * 2000 - 25 / 20).clamp_(0.0, 5.0)

    def forward(self, x):
        if self.training:
            dims = [i for i in range(x.dim()) if i != 1]
            batch_mean = x.mean(dims)
            batch_std = x.std(dims, unbiased=False) + self.eps
            r = (batch_std.detach() / self.running_std.view_as(batch_std)).clamp_(
                1 / self.rmax, self.rmax
            )
            d = (
                (batch_mean.detach() - self.running_mean.view_as(batch_mean))
                / self.running_std.view_as(batch_std)
            ).clamp_(-self.dmax, self.dmax)
            x = (x - batch_mean[None, :, None, None]) / batch_std[None, :, None, None]
            x = x * r[None, :, None, None] + d[None, :, None, None]
            with torch.no_grad():
                self.running_mean += self.momentum * (batch_mean.detach() - self.running_mean)
                self.running_std += self.momentum * (batch_std.detach() - self.running_std)
                self.num_batches_tracked += 1
        else:
            x = (x - self.running_mean[None, :, None, None]) / self.running_std[None, :, None, None]
        return self.weight[None, :, None, None] * x + self.bias[None, :, None, None]


class FRN(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(1, c, 1, 1))
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.tau = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.register_buffer("eps", torch.tensor(eps))

    def forward(self, x):
        nu2 = x.pow(2).mean(dim=(2, 3), keepdim=True)
        x = x * torch.rsqrt(nu2 + self.eps.abs())
        return torch.max(self.gamma * x + self.beta, self.tau)


class WSConv2d(nn.Conv2d):
    def forward(self, x):
        w = self.weight
        var, mean = torch.var_mean(w, dim=(1, 2, 3), keepdim=True, unbiased=False)
        w = (w - mean) / torch.sqrt(var + 1e-5)
        return self._conv_forward(x, w, self.bias)


class EvoNormS0(nn.Module):
    def __init__(self, c, groups=2, eps=1e-5):
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(1, c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.v = nn.Parameter(torch.ones(1, c, 1, 1))

    def group_std(self, x):
        b, c, h, w = x.shape
        x = x.reshape(b, self.groups, c // self.groups, h, w)
        std = x.var(dim=(2, 3, 4), unbiased=False, keepdim=True).add(self.eps).sqrt()
        return std.expand(x.shape).reshape(b, c, h, w)

    def forward(self, x):
        n = x * (x * self.v).sigmoid()
        return n / self.group_std(x) * self.weight + self.bias


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class PairConv(nn.Module):
    def __init__(self, cin, cout, kernel_size, stride=1, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = (
            _pair(kernel_size),
            _pair(stride),
            _pair(padding),
        )
        self.weight = nn.Parameter(torch.empty(cout, cin, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(cout))

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


def norm(kind, c):
    return {
        "bn": lambda: nn.BatchNorm2d(c),
        "brn": lambda: BatchRenorm2d(c),
        "frn": lambda: FRN(c),
        "evo": lambda: EvoNormS0(c),
        "ln2d": lambda: LayerNorm2d(c),
        "gn": lambda: nn.GroupNorm(2, c),
    }[kind]()


class Block(nn.Module):
    def __init__(self, c, kind, ws=False):
        super().__init__()
        conv = WSConv2d if ws else nn.Conv2d
        self.conv1 = conv(c, c, 3, padding=1, bias=False)
        self.n1 = norm(kind, c)
        self.conv2 = conv(c, c, 3, padding=1, bias=False)
        self.n2 = norm(kind, c)

    def forward(self, x):
        out = F.relu(self.n1(self.conv1(x)))
        return F.relu(x + self.n2(self.conv2(out)))


class Net(nn.Module):
    def __init__(self, kind, ws=False):
        super().__init__()
        self.stem = PairConv(3, 4, 3, padding=1)
        self.block = Block(4, kind, ws)
        self.rms = nn.RMSNorm(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        h = self.block(self.stem(x))
        return self.fc(self.rms(h.mean((2, 3))))


X = torch.from_numpy(rng.standard_normal((6, 3, 6, 6)).astype(np.float32))
Y = torch.from_numpy(rng.integers(0, 3, size=6))

results = {}
for kind, ws in [
    ("bn", False),
    ("brn", False),
    ("frn", False),
    ("evo", True),
    ("ln2d", False),
    ("gn", True),
]:
    net = load(Net(kind, ws))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses, norms = [], []
    for step in range(6):
        xb = X + 0.1 * step
        loss = F.cross_entropy(net(xb), Y, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        total = nn.utils.get_total_norm(grads, norm_type=2.0)
        nn.utils.clip_grads_with_norm_(net.parameters(), max_norm=0.5, total_norm=total)
        norms.append(total.item())
        opt.step()
        losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        ev = net(X)
    results[kind] = {"losses": losses, "norms": norms, "eval": ev[:2].flatten().tolist()}
    if kind == "brn":
        bn = net.block.n1
        results[kind]["running"] = bn.running_mean.tolist() + bn.running_std.tolist()
        results[kind]["tracked"] = int(bn.num_batches_tracked)
        results[kind]["keys"] = list(net.state_dict().keys())
    if kind == "bn":
        results[kind]["keys"] = [k for k in net.state_dict() if "block.n1" in k]

# conv/linear + BN fusion in eval mode
torch.manual_seed(0)
conv = load(nn.Conv2d(3, 4, 3, padding=1))
bn = nn.BatchNorm2d(4)
with torch.no_grad():
    bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0]))
    bn.running_var.copy_(torch.tensor([1.5, 0.5, 2.0, 1.0]))
    bn.weight.copy_(torch.tensor([1.0, 0.5, -1.0, 2.0]))
    bn.bias.copy_(torch.tensor([0.0, 0.1, 0.2, -0.3]))
conv.eval()
bn.eval()
fused = nn.utils.fuse_conv_bn_eval(conv, bn)
with torch.no_grad():
    ref = bn(conv(X))
    got = fused(X)
lin = load(nn.Linear(5, 4))
bn1 = nn.BatchNorm1d(4).eval()
with torch.no_grad():
    bn1.running_var.fill_(2.0)
lin.eval()
flin = nn.utils.fuse_linear_bn_eval(lin, bn1)
xl = torch.from_numpy(rng.standard_normal((3, 5)).astype(np.float32))
with torch.no_grad():
    lin_err = (flin(xl) - bn1(lin(xl))).abs().max().item()

# init helpers
w = torch.empty(4, 4, 3, 3)
nn.init.dirac_(w)
dirac_out = F.conv2d(X[:, :3].repeat(1, 2, 1, 1)[:, :4], w, padding=1)
eye = nn.init.eye_(torch.empty(3, 5))
g = torch.Generator().manual_seed(0)
orth = nn.init.orthogonal_(torch.empty(4, 6), gain=2.0, generator=g)
gram = orth @ orth.T
ku = nn.init.kaiming_uniform_(
    torch.empty(8, 4),
    a=0.1,
    mode="fan_out",
    nonlinearity="leaky_relu",
    generator=torch.Generator().manual_seed(1),
)
fan = nn.init._calculate_fan_in_and_fan_out(torch.empty(8, 4, 3, 3))
gains = [nn.init.calculate_gain(n) for n in ("linear", "relu", "tanh", "selu", "sigmoid")]
gains.append(nn.init.calculate_gain("leaky_relu", 0.2))
skipped = nn.utils.skip_init(nn.Linear, 4, 2, bias=False)
load(skipped)
cl = nn.utils.convert_conv2d_weight_memory_format(
    nn.Sequential(nn.Conv2d(3, 4, 3)), torch.channels_last
)
heads = [
    nn.Softmax2d()(X[:2]).sum(1).flatten()[:4].tolist(),
    nn.Softmin(dim=1)(X[0, 0]).sum(1).tolist(),
    nn.CosineSimilarity(dim=1, eps=1e-6)(X[:, 0, 0], X[:, 1, 0]).tolist(),
]

report(
    results=results,
    fuse_err=(ref - got).abs().max().item(),
    fused_bias=fused.bias.tolist(),
    lin_fuse_err=lin_err,
    dirac_err=(dirac_out - X[:, :3].repeat(1, 2, 1, 1)[:, :4]).abs().max().item(),
    eye=eye.tolist(),
    gram=gram.diagonal().tolist(),
    gram_offdiag=(gram - torch.diag(gram.diagonal())).abs().max().item() < 1e-5,
    random_orth=orth.tolist(),
    ku_bound=bool(ku.abs().max() <= nn.init.calculate_gain("leaky_relu", 0.1) * (3 / 8) ** 0.5),
    fan=list(fan),
    gains=gains,
    skipped=[list(skipped.weight.shape), skipped.bias is None],
    pair=[_pair(3), _single(2), _pair((1, 2))],
    channels_last=cl[0].weight.is_contiguous(memory_format=torch.channels_last),
    heads=heads,
)
