# The "How to save memory by fusing the optimizer step into the backward pass" tutorial as
# written (condensed: a small MLP for its ViT): one optimizer per parameter in a dict keyed by
# the Parameter, `p.register_post_accumulate_grad_hook(optimizer_hook)` stepping and zeroing
# each one as its gradient lands, checked against an ordinary loop step for step; the hooks'
# handles removed (`h.remove()`), then the optimizer hooks of torch.optim: a
# register_step_pre_hook that rescales gradients, a register_step_post_hook counting steps,
# Optimizer.register_state_dict_post_hook / load_state_dict_pre_hook, and a gradient
# accumulation trick by post-accumulate hooks (summing into a side buffer, stepping every k).
import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(19)
X = torch.from_numpy(rng.standard_normal((24, 10)).astype(np.float32))
Y = torch.from_numpy(rng.integers(0, 3, 24))


def make():
    m = nn.Sequential(nn.Linear(10, 16), nn.GELU(), nn.LayerNorm(16), nn.Linear(16, 3))
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return m


loss_fn = nn.CrossEntropyLoss()

# ordinary loop
model = make()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
plain = []
for i in range(6):
    xb, yb = X[i * 4 : i * 4 + 4], Y[i * 4 : i * 4 + 4]
    loss = loss_fn(model(xb), yb)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    plain.append(loss.item())
plain_w = model[0].weight.detach().clone()

# fused into backward
model = make()
optimizer_dict = {p: torch.optim.Adam([p], foreach=False, lr=0.01) for p in model.parameters()}
steps_seen = []


def optimizer_hook(parameter) -> None:
    steps_seen.append(tuple(parameter.shape))
    optimizer_dict[parameter].step()
    optimizer_dict[parameter].zero_grad()


handles = [p.register_post_accumulate_grad_hook(optimizer_hook) for p in model.parameters()]
fused = []
grads_after = []
for i in range(6):
    xb, yb = X[i * 4 : i * 4 + 4], Y[i * 4 : i * 4 + 4]
    loss = loss_fn(model(xb), yb)
    loss.backward()
    fused.append(loss.item())
    grads_after.append(all(p.grad is None for p in model.parameters()))
fused_w = model[0].weight.detach().clone()
for h in handles:
    h.remove()
loss = loss_fn(model(X), Y)
loss.backward()
after_remove = [p.grad is not None for p in model.parameters()]

# optimizer hooks
model = make()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
counts = {"pre": 0, "post": 0}


def pre_hook(optimizer, args, kwargs):
    counts["pre"] += 1
    for group in optimizer.param_groups:
        for p in group["params"]:
            if p.grad is not None:
                p.grad.mul_(0.5)


def post_hook(optimizer, args, kwargs):
    counts["post"] += 1


h1 = opt.register_step_pre_hook(pre_hook)
h2 = opt.register_step_post_hook(post_hook)


def sd_post(optimizer, state_dict):
    state_dict["note"] = "hooked"
    return state_dict


def load_pre(optimizer, state_dict):
    state_dict = dict(state_dict)
    state_dict.pop("note", None)
    return state_dict


opt.register_state_dict_post_hook(sd_post)
opt.register_load_state_dict_pre_hook(load_pre)
hooked = []
for i in range(4):
    opt.zero_grad()
    loss = loss_fn(model(X), Y)
    loss.backward()
    opt.step()
    hooked.append(loss.item())
h1.remove()
opt.zero_grad()
loss_fn(model(X), Y).backward()
opt.step()
sd = opt.state_dict()
opt2 = torch.optim.SGD(make().parameters(), lr=0.1, momentum=0.9)
opt2.register_load_state_dict_pre_hook(load_pre)
opt2.load_state_dict(sd)
buf0 = opt2.state_dict()["state"][0]["momentum_buffer"]

# accumulation by hooks: sum k micro-batch gradients into a side buffer, step every k
model = make()
opt = torch.optim.SGD(model.parameters(), lr=0.2)
acc = {p: torch.zeros_like(p) for p in model.parameters()}
K = 3
micro = {"n": 0}


def accumulate(p):
    acc[p].add_(p.grad)
    p.grad = None


for p in model.parameters():
    p.register_post_accumulate_grad_hook(accumulate)
accum = []
for i in range(6):
    xb, yb = X[i * 4 : i * 4 + 4], Y[i * 4 : i * 4 + 4]
    loss = loss_fn(model(xb), yb) / K
    loss.backward()
    accum.append(loss.item())
    if (i + 1) % K == 0:
        with torch.no_grad():
            for p in model.parameters():
                p.grad = acc[p].clone()
                acc[p].zero_()
        opt.step()
        opt.zero_grad(set_to_none=True)
report(
    plain=plain,
    fused=fused,
    max_w_diff=(plain_w - fused_w).abs().max().item(),
    n_steps_seen=len(steps_seen),
    # the order hooks fire in within one pass differs (docs/pytorch.md, session 31): compared as
    # a multiset
    shapes_seen=sorted(list(s) for s in steps_seen),
    grads_after=grads_after,
    after_remove=after_remove,
    hooked=hooked,
    counts=counts,
    sd_note=sd.get("note"),
    buf0=buf0[0, :4].tolist(),
    accum=accum,
    accum_w=model[0].weight[0, :5].tolist(),
)
