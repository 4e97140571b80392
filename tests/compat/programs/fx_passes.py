# torch.fx as programs use it: symbolic_trace of a small ResNet with a timm-style helper kept
# opaque by torch.fx.wrap at import, counting ops by kind, the Conv+BN fusion pass of the FX
# tutorial (graph surgery: replace_all_uses_with, erase_node, recompile), a feature extractor
# built by copying the graph up to chosen nodes, ShapeProp, replace_pattern (add+relu ->
# silu), an Interpreter that counts multiply-adds, a Transformer, concrete_args, and training
# the GraphModule (its losses and gradients equal the original's).
import collections
import copy
import operator

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.fx.passes.shape_prop import ShapeProp

rng = np.random.default_rng(7)
X = torch.from_numpy(rng.standard_normal((4, 3, 8, 8)).astype(np.float32))
Y = torch.from_numpy(rng.integers(0, 5, size=4))


def drop_path(x, p: float, training: bool):
    """Stochastic depth (timm): data-dependent, so tracing must not enter it."""
    if p == 0.0 or not training:
        return x
    keep = torch.rand(x.shape[0], 1, 1, 1) >= p
    return x * keep / (1 - p)


torch.fx.wrap("drop_path")


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = drop_path(self.bn2(self.conv2(out)), 0.0, self.training)
        return torch.relu(out + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                                  nn.ReLU())  # fmt: skip
        self.layer1 = nn.Sequential(Block(4), Block(4))
        self.head = nn.Linear(4, 5)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.head(x)


model = Net()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
    for i, m in enumerate(m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        m.running_mean.copy_(torch.linspace(-0.1, 0.1, 4) * (i + 1))
        m.running_var.copy_(torch.linspace(0.5, 1.5, 4))
model.eval()
ref = model(X)

# -- trace and count -------------------------------------------------------------------------
gm = torch.fx.symbolic_trace(model)
names = [n.name for n in gm.graph.nodes]
modules = dict(gm.named_modules())


def kind(n):
    if n.op == "call_module":
        return type(modules[n.target]).__name__
    if n.op == "call_function":
        return n.target.__name__
    return str(n.target) if n.op == "call_method" else n.op


counts = collections.Counter(kind(n) for n in gm.graph.nodes)
wrapped = [n.name for n in gm.graph.nodes if n.op == "call_function" and "drop_path" in n.name]
traced_out = gm(X)


# -- the FX tutorial's Conv+BN fusion --------------------------------------------------------
def fuse_conv_bn(conv, bn):
    fused = copy.deepcopy(conv)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    with torch.no_grad():
        fused.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
    return fused


def fuse(m):
    fx_model = torch.fx.symbolic_trace(copy.deepcopy(m))
    mods = dict(fx_model.named_modules())
    for node in list(fx_model.graph.nodes):
        if node.op != "call_module" or not isinstance(mods[node.target], nn.BatchNorm2d):
            continue
        prev = node.args[0]
        if prev.op != "call_module" or not isinstance(mods[prev.target], nn.Conv2d):
            continue
        if len(prev.users) > 1:
            continue
        parent, _, leaf = prev.target.rpartition(".")
        setattr(mods[parent] if parent else fx_model, leaf,
                fuse_conv_bn(mods[prev.target], mods[node.target]))  # fmt: skip
        node.replace_all_uses_with(prev)
        fx_model.graph.erase_node(node)
    fx_model.graph.lint()
    fx_model.recompile()
    return fx_model


fused = fuse(model)
fused_out = fused(X)
n_bn_left = sum(isinstance(m, nn.BatchNorm2d) for m in fused.modules())
fused_code_lines = len(fused.code.strip().splitlines())

# -- a feature extractor: the graph copied up to chosen nodes, returning them ------------------
wanted = ["stem_2", "relu_1", "relu_3"]
g = torch.fx.Graph()
env = {}
for node in gm.graph.nodes:
    if node.op == "output":
        break
    env[node] = g.node_copy(node, lambda a: env[a])
    if all(w in [n.name for n in env] for w in wanted):
        break
g.output({w: env[next(n for n in env if n.name == w)] for w in wanted})
extractor = torch.fx.GraphModule(gm, g)
extractor.graph.eliminate_dead_code()
extractor.recompile()
feats = extractor(X)

# -- ShapeProp -------------------------------------------------------------------------------
ShapeProp(gm).propagate(X)
shapes = {n.name: list(n.meta["tensor_meta"].shape) for n in gm.graph.nodes
          if "tensor_meta" in n.meta}  # fmt: skip


# -- replace_pattern: relu(a + b) -> silu(a + b) -----------------------------------------------
def pattern(a, b):
    return torch.relu(a + b)


def replacement(a, b):
    return F.silu(a + b)


rewritten = torch.fx.symbolic_trace(model)
matches = torch.fx.replace_pattern(rewritten, pattern, replacement)
rewritten_out = rewritten(X)
rewritten_names = [n.name for n in rewritten.graph.nodes]


# -- an Interpreter that counts multiply-adds of the convolutions and linears -------------------
class MacCounter(torch.fx.Interpreter):
    def __init__(self, m):
        super().__init__(m)
        self.macs = {}

    def call_module(self, target, args, kwargs):
        out = super().call_module(target, args, kwargs)
        mod = self.fetch_attr(target)
        if isinstance(mod, nn.Conv2d):
            k = mod.weight[0].numel()
            self.macs[target] = int(out.numel() * k)
        elif isinstance(mod, nn.Linear):
            self.macs[target] = int(out.numel() * mod.in_features)
        return out


counter = MacCounter(gm)
counted_out = counter.run(X)


# -- a Transformer: every operator.add becomes torch.add(a, b, alpha=1) -----------------------
class AddToTorchAdd(torch.fx.Transformer):
    def call_function(self, target, args, kwargs):
        if target is operator.add:
            return super().call_function(torch.add, args, {"alpha": 1})
        return super().call_function(target, args, kwargs)


transformed = AddToTorchAdd(gm).transform()
transformed_adds = [n.name for n in transformed.graph.nodes if n.target is torch.add]


# -- concrete_args ---------------------------------------------------------------------------
class Scaled(nn.Module):
    def forward(self, x, scale=None):
        if scale is None:
            return x.relu()
        return x * scale


specialised = torch.fx.symbolic_trace(Scaled(), concrete_args={"scale": None})
spec_names = [n.name for n in specialised.graph.nodes]

# -- training the GraphModule and the original side by side ----------------------------------
losses = {}
grads = {}
for label, net in (("original", copy.deepcopy(model)), ("graph", None)):
    if net is None:
        net = torch.fx.symbolic_trace(copy.deepcopy(model))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    run = []
    for _ in range(4):
        opt.zero_grad()
        loss = F.cross_entropy(net(X), Y)
        loss.backward()
        opt.step()
        run.append(loss.item())
    losses[label] = run
    grads[label] = [float(p.grad.abs().sum()) for p in net.parameters()]

report(
    names=names,
    counts=sorted(counts.items()),
    wrapped=wrapped,
    traced_out=traced_out.tolist(),
    ref_out=ref.tolist(),
    fused_out=fused_out.tolist(),
    n_bn_left=n_bn_left,
    fused_code_lines=fused_code_lines,
    feats={k: [list(v.shape), float(v.detach().sum())] for k, v in feats.items()},
    shapes=shapes,
    n_matches=len(matches),
    rewritten_out=rewritten_out.tolist(),
    rewritten_names=rewritten_names,
    macs=sorted(counter.macs.items()),
    counted_same=bool(torch.equal(counted_out, traced_out)),
    transformed_adds=transformed_adds,
    transformed_out=transformed(X).tolist(),
    spec_names=spec_names,
    losses=losses,
    grads=grads,
)
