# A multi-task model that grows while it trains, with the Module machinery such code leans on:
# nn.ModuleDict heads added per task (register_module, `in`, update, pop), an nn.ParameterDict
# of task embeddings (plain tensors become Parameters), an nn.ParameterList of layer scales
# (append / extend), a shared submodule seen twice by named_modules(remove_duplicate=False),
# get_submodule / get_parameter, optimizer.add_param_group for a new head mid-training,
# zero_grad(set_to_none=False); get_extra_state / set_extra_state (a running normaliser's
# statistics as "_extra_state"), non-persistent buffers, load_state_dict(strict=False) and its
# missing / unexpected keys, assign=True, state-dict post hooks and a load post hook that
# forgives a key; forward hooks with prepend=True and always_call=True (run on an exception),
# a global parameter-registration hook; a parametrization with unsafe=True under
# parametrize.cached().
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.nn.utils.parametrize as parametrize
from compat_helpers import reference_weights, report

torch.manual_seed(0)
rng = np.random.default_rng(101)

D, Hd = 6, 16
registered = []
handle_global = nn.modules.module.register_module_parameter_registration_hook(
    lambda module, name, param: registered.append((type(module).__name__, name)))


def load_ref(module):
    W = reference_weights(module)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.from_numpy(W[name]))


class RunningNorm(nn.Module):
    """Feature normaliser whose statistics live in extra state, not in buffers."""

    def __init__(self, dim):
        super().__init__()
        self.count = 0
        self.mean = [0.0] * dim
        self.register_buffer("scratch", torch.zeros(dim), persistent=False)

    def forward(self, x):
        if self.training:
            n = x.shape[0]
            batch_mean = x.mean(0).tolist()
            total = self.count + n
            self.mean = [(m * self.count + b * n) / total for m, b in zip(self.mean, batch_mean)]
            self.count = total
        return x - torch.tensor(self.mean, dtype=x.dtype)

    def get_extra_state(self):
        return {"count": self.count, "mean": list(self.mean)}

    def set_extra_state(self, state):
        self.count = state["count"]
        self.mean = list(state["mean"])


class MultiTask(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = RunningNorm(D)
        self.trunk = nn.Sequential(nn.Linear(D, Hd), nn.Tanh())
        self.shared = nn.Linear(Hd, Hd)
        self.block = nn.ModuleList([self.shared, nn.Tanh(), self.shared])
        self.scales = nn.ParameterList([nn.Parameter(torch.ones(Hd))])
        self.task_emb = nn.ParameterDict({"a": torch.zeros(Hd)})
        self.heads = nn.ModuleDict()

    def add_task(self, name, n_out):
        head = nn.Linear(Hd, n_out)
        load_ref(head)
        self.heads.register_module(name, head)
        self.task_emb[name] = nn.Parameter(torch.full((Hd,), 0.1 * len(self.heads)))

    def forward(self, x, task):
        h = self.trunk(self.norm(x)) + self.task_emb[task]
        for layer in self.block:
            h = layer(h)
        for s in self.scales:
            h = h * s
        return self.heads[task](h)


model = MultiTask()
model.add_task("a", 3)
load_ref(model)
order = []
model.trunk.register_forward_hook(lambda m, i, o: order.append("second"))
model.trunk.register_forward_hook(lambda m, i, o: order.append("first"), prepend=True)
opt = torch.optim.Adam(model.parameters(), lr=0.01)

tasks = {"a": 3, "b": 2}
Xs = {t: torch.from_numpy(rng.standard_normal((32, D)).astype(np.float32)) for t in tasks}
Ys = {t: torch.from_numpy(rng.integers(0, n, 32)) for t, n in tasks.items()}
losses = []
for step in range(12):
    if step == 5:
        model.add_task("b", 2)
        new = [p for n, p in model.named_parameters() if n.startswith("heads.b")
               or n == "task_emb.b"]
        opt.add_param_group({"params": new, "lr": 0.02})
        model.scales.append(nn.Parameter(torch.full((Hd,), 0.9)))
        opt.add_param_group({"params": [model.scales[1]], "lr": 0.005})
    active = ["a"] + (["b"] if "b" in model.heads else [])
    opt.zero_grad(set_to_none=False)
    loss = sum(F.cross_entropy(model(Xs[t], t), Ys[t]) for t in active)
    loss.backward()
    opt.step()
    losses.append(loss.item())

named_all = [n for n, _ in model.named_modules(remove_duplicate=False)]
named_unique = [n for n, _ in model.named_modules()]
param_names = [n for n, _ in model.named_parameters()]
sub = type(model.get_submodule("heads.b")).__name__
got_param = model.get_parameter("task_emb.b").sum().item()
emb_is_param = isinstance(model.task_emb["a"], nn.Parameter)
groups = [len(g["params"]) for g in opt.param_groups]
grad_zero_kept = model.scales[0].grad is not None

# state dict: extra state, non-persistent buffers, hooks
post_seen = []
model.register_state_dict_post_hook(lambda m, sd, prefix, local_metadata: post_seen.append(
    len(sd)))
sd = model.state_dict()
sd_keys = list(sd.keys())
extra = sd["norm._extra_state"]

fresh = MultiTask()
fresh.add_task("a", 3)
fresh.add_task("c", 4)
result = fresh.load_state_dict(sd, strict=False)
missing, unexpected = sorted(result.missing_keys), sorted(result.unexpected_keys)
try:
    fresh.load_state_dict(sd)
    strict_error = "none"
except RuntimeError as e:
    strict_error = "RuntimeError" + (" missing" if "Missing key" in str(e) else "")


def forgive_c(module, incompatible_keys):
    for key in list(incompatible_keys.missing_keys):
        if key.startswith("heads.c") or key == "task_emb.c":
            incompatible_keys.missing_keys.remove(key)


del sd["heads.b.weight"], sd["heads.b.bias"], sd["task_emb.b"], sd["scales.1"]
fresh.register_load_state_dict_post_hook(forgive_c)
fresh.load_state_dict(sd)   # strict: the hook forgave the missing task-c keys
fresh_extra = fresh.norm.get_extra_state()

assigned = MultiTask()
assigned.add_task("a", 3)
skip = ("heads.b", "task_emb.b", "scales.1")
sd_a = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in model.state_dict().items()
        if not k.startswith(skip)}
assigned.load_state_dict(sd_a, assign=True)
assign_shares = assigned.shared.weight.data_ptr() == sd_a["shared.weight"].data_ptr()
assign_param = isinstance(assigned.shared.weight, nn.Parameter)

# always_call: a hook that runs although forward raised
calls = []
h = model.trunk.register_forward_hook(lambda m, i, o: calls.append("ran"), always_call=True)
try:
    model.trunk(torch.zeros(2, D + 1))
except RuntimeError:
    calls.append("raised")
h.remove()

# pop a head, and a parametrized head under cached()
popped = type(model.heads.pop("b")).__name__
remaining = list(model.heads.keys())


class Symmetric(nn.Module):
    def forward(self, X):
        return X.triu() + X.triu(1).transpose(-1, -2)


square = nn.Linear(Hd, Hd)
load_ref(square)
parametrize.register_parametrization(square, "weight", Symmetric(), unsafe=True)
with parametrize.cached():
    w1 = square.weight
    w2 = square.weight
    cached_same = w1 is w2
    symmetric = bool(torch.equal(w1, w1.T))
sq_out = square(torch.ones(1, Hd)).sum().item()
handle_global.remove()

with torch.no_grad():
    model.eval()
    eval_logits = model(Xs["a"][:4], "a").tolist()

report(
    losses=losses,
    hook_order=order[:4],
    named_all=named_all,
    named_unique=named_unique,
    param_names=param_names,
    sub=sub,
    got_param=got_param,
    emb_is_param=emb_is_param,
    groups=groups,
    grad_zero_kept=grad_zero_kept,
    registered=sorted(set(registered)),
    sd_keys=sd_keys,
    extra_count=extra["count"],
    extra_mean=extra["mean"],
    post_seen=post_seen,
    missing=missing,
    unexpected=unexpected,
    strict_error=strict_error,
    fresh_extra_count=fresh_extra["count"],
    assign_shares=assign_shares,
    assign_param=assign_param,
    calls=calls,
    popped=popped,
    remaining=remaining,
    cached_same=cached_same,
    symmetric=symmetric,
    sq_out=sq_out,
    eval_logits=eval_logits,
)
