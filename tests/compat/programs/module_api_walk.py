# nn.Module bookkeeping that training frameworks and surgery scripts rely on: get_submodule /
# set_submodule, named_modules(remove_duplicate=False) and named_parameters with a shared layer,
# Sequential indexing / slicing / insert / append / extend / pop / del, ModuleDict update / pop
# and ModuleList insert, register_buffer(persistent=False) and state_dict(keep_vars=True),
# buffers through .double() and back, requires_grad_ on a subtree, apply() init, extra_repr in
# print(model), load_state_dict(strict=False)'s missing / unexpected keys, register_module,
# parameters_to_vector / vector_to_parameters, a frozen-backbone fine-tune.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.nn.utils import parameters_to_vector, vector_to_parameters

rng = np.random.default_rng(19)
torch.manual_seed(0)


class Scale(nn.Module):
    def __init__(self, n, init=1.0):
        super().__init__()
        self.g = nn.Parameter(torch.full((n,), init))
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("cache", torch.zeros(n), persistent=False)

    def forward(self, x):
        self.calls += 1
        self.cache = x.detach().mean(0)
        return x * self.g

    def extra_repr(self):
        return f"n={self.g.numel()}"


shared = nn.Linear(8, 8)
model = nn.Sequential(
    nn.Linear(4, 8), nn.ReLU(), shared, nn.Tanh(), shared, Scale(8),
    nn.ModuleDict({"cls": nn.Linear(8, 3), "reg": nn.Linear(8, 1)}),
)  # fmt: skip
results = {}
results["repr"] = str(model).replace("torch.", "").splitlines()
results["n_modules"] = len(list(model.modules()))
results["named_modules_dup"] = [n for n, _ in model.named_modules(remove_duplicate=False)]
results["named_params"] = [n for n, _ in model.named_parameters()]
results["named_params_dup"] = [n for n, _ in model.named_parameters(remove_duplicate=False)]
results["state_keys"] = list(model.state_dict().keys())
results["buffers"] = [n for n, _ in model.named_buffers()]
results["get_submodule"] = type(model.get_submodule("6.cls")).__name__
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))


def forward(m, x):
    h = m[:6](x)
    heads = m[6]
    return heads["cls"](h), heads["reg"](h)


x = torch.from_numpy(rng.standard_normal((10, 4)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 3, 10))
r = torch.from_numpy(rng.standard_normal((10, 1)).astype(np.float32))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
losses = []
for step in range(4):
    c, reg = forward(model, x)
    loss = F.cross_entropy(c, y) + F.mse_loss(reg, r)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
results["losses"] = losses
results["calls"] = model[5].calls.item()
results["cache"] = model[5].cache.tolist()
kv = model.state_dict(keep_vars=True)
results["keep_vars"] = [type(kv["0.weight"]).__name__, kv["0.weight"].requires_grad]

# surgery: swap the shared layer's second use, add a dropout, drop the regression head
model.set_submodule("4", nn.Identity())
model.insert(2, nn.Dropout(0.0))
model.append(nn.Identity())
model.extend([nn.Identity()])
popped = model.pop(-1)
del model[-1]
heads = model[7]
reg = heads.pop("reg")
heads.update({"aux": nn.Linear(8, 2)})
results["after_surgery"] = [type(m).__name__ for m in model]
results["heads"] = list(heads.keys())
results["popped"] = [type(popped).__name__, type(reg).__name__]
results["slice_type"] = type(model[1:3]).__name__

# strict=False load into the changed model
missing, unexpected = model.load_state_dict(kv, strict=False)
results["missing"] = sorted(missing)
results["unexpected"] = sorted(unexpected)

# double and back; buffers keep integer dtypes
model.double()
results["dtypes_double"] = sorted(
    {str(t.dtype).split(".")[-1] for t in model.state_dict().values()}
)
model.float()

# freeze the backbone, fine-tune the heads; flat parameter vectors
model[:7].requires_grad_(False)
results["trainable"] = [n for n, p in model.named_parameters() if p.requires_grad]
head_params = [p for p in model.parameters() if p.requires_grad]
vec = parameters_to_vector(head_params)
results["vec_len"] = vec.numel()
vector_to_parameters(vec * 0.5, head_params)
results["halved"] = heads["cls"].weight[0].tolist()


def init_aux(m):
    if isinstance(m, nn.Linear) and m.out_features == 2:
        nn.init.constant_(m.weight, 0.05)
        nn.init.zeros_(m.bias)


model.apply(init_aux)
opt2 = torch.optim.Adam(head_params, lr=1e-2)  # the aux head is in head_params
ft = []
for step in range(4):
    h = model[:7](x)
    loss = F.cross_entropy(heads["cls"](h), y) + heads["aux"](h).pow(2).mean()
    opt2.zero_grad()
    loss.backward()
    opt2.step()
    ft.append(loss.item())
results["finetune"] = ft
results["backbone_grad_none"] = all(p.grad is None for p in model[0].parameters())
model.register_module("extra", nn.Linear(2, 2))
results["last_child"] = [n for n, _ in model.named_children()][-1]
report(**results)
