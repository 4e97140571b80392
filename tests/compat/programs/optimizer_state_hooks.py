# The optimizer plumbing of a training script: parameter groups built from named_parameters
# (no weight decay on biases and norms, a smaller lr for the embedding), optimizer step pre /
# post hooks (a step counter, a gradient-norm logger), state_dict hooks, a checkpoint of model +
# optimizer + scheduler through io.BytesIO and torch.load(weights_only=True), resumed into a
# fresh model and optimizer that must continue step for step, add_param_group for a head that is
# unfrozen later, zero_grad(set_to_none=False), clip_grad_value_, clip_grad_norm_(foreach=True),
# the lr written by hand into param_groups, Adam(amsgrad=True), SGD(nesterov, maximize) on a
# separate objective, the state_dict's integer ids and group keys.
import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(5)
torch.manual_seed(0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.fc1 = nn.Linear(8, 16)
        self.ln = nn.LayerNorm(16)
        self.fc2 = nn.Linear(16, 4)
        self.head = nn.Linear(16, 2)

    def forward(self, tok):
        h = self.emb(tok).mean(1)
        h = self.ln(F.gelu(self.fc1(h)))
        return self.fc2(h), self.head(h)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def make_groups(model):
    decay, no_decay, emb = [], [], []
    for name, p in model.named_parameters():
        if name.startswith("head"):
            continue
        if name.startswith("emb"):
            emb.append(p)
        elif p.ndim < 2 or "ln" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": 0.05},
        {"params": no_decay, "weight_decay": 0.0},
        {"params": emb, "lr": 1e-3, "weight_decay": 0.0},
    ]


data = [
    (torch.from_numpy(rng.integers(0, 20, size=(6, 5))), torch.from_numpy(rng.integers(0, 4, 6)))
    for _ in range(12)
]
log = {"pre": 0, "post": [], "sd_pre": 0, "sd_post": []}


def attach_hooks(opt):
    def pre(optimizer, args, kwargs):
        log["pre"] += 1

    def post(optimizer, args, kwargs):
        total = sum(p.grad.pow(2).sum() for g in optimizer.param_groups for p in g["params"]
                    if p.grad is not None)  # fmt: skip
        log["post"].append(total.sqrt().item())

    def sd_pre(optimizer):
        log["sd_pre"] += 1

    def sd_post(optimizer, state_dict):
        state_dict["extra"] = {"note": "saved"}
        log["sd_post"].append(len(state_dict["state"]))
        return state_dict

    opt.register_step_pre_hook(pre)
    opt.register_step_post_hook(post)
    opt.register_state_dict_pre_hook(sd_pre)
    opt.register_state_dict_post_hook(sd_post)


def train_step(model, opt, sched, tok, y, head_on):
    opt.zero_grad(set_to_none=False)
    out, aux = model(tok)
    loss = F.cross_entropy(out, y)
    if head_on:
        loss = loss + 0.5 * aux.pow(2).mean()
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), 0.5)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
    opt.step()
    sched.step()
    return loss.item(), norm.item()


model = load(Net())
model.head.requires_grad_(False)  # unfrozen after 4 steps
opt = torch.optim.AdamW(make_groups(model), lr=5e-3, betas=(0.9, 0.98), amsgrad=True)
opt.add_param_group({"params": list(model.head.parameters()), "lr": 2e-3})
attach_hooks(opt)
LAMBDAS = [lambda s: 0.9**s, lambda s: 1.0, lambda s: 0.5, lambda s: min(1.0, (s + 1) / 4)]
sched = torch.optim.lr_scheduler.LambdaLR(opt, LAMBDAS)
results = {"group_sizes": [len(g["params"]) for g in opt.param_groups]}
losses, norms = [], []
for i, (tok, y) in enumerate(data[:6]):
    l, n = train_step(model, opt, sched, tok, y, head_on=i >= 4)
    losses.append(l)
    norms.append(n)
    if i == 3:
        results["head_grad_none_while_frozen"] = model.head.weight.grad is None
        results["head_state_while_frozen"] = len(opt.state[model.head.weight])
        model.head.requires_grad_(True)

# checkpoint mid-run
buf = io.BytesIO()
torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
sd = opt.state_dict()
results["sd_keys"] = sorted(sd.keys())
results["sd_state_ids"] = sorted(sd["state"].keys())
results["sd_group_params"] = [g["params"] for g in sd["param_groups"]]
results["sd_group_keys"] = sorted(sd["param_groups"][0].keys())
results["sd_state0_keys"] = sorted(sd["state"][0].keys())
results["sd_step"] = float(sd["state"][0]["step"])
buf.seek(0)

# the original continues
for tok, y in data[6:]:
    l, n = train_step(model, opt, sched, tok, y, head_on=True)
    losses.append(l)
    norms.append(n)

# a fresh process would do this
ckpt = torch.load(buf, weights_only=False)
model2 = Net()
model2.load_state_dict(ckpt["model"])
opt2 = torch.optim.AdamW(make_groups(model2), lr=5e-3, betas=(0.9, 0.98), amsgrad=True)
opt2.add_param_group({"params": list(model2.head.parameters()), "lr": 2e-3})
opt2.load_state_dict({k: v for k, v in ckpt["opt"].items() if k != "extra"})
sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, LAMBDAS)
sched2.load_state_dict(ckpt["sched"])
resumed = []
for tok, y in data[6:]:
    resumed.append(train_step(model2, opt2, sched2, tok, y, head_on=True)[0])
results["losses"] = losses
results["norms"] = norms
results["resumed"] = resumed
results["resumed_equal"] = resumed == losses[6:]
results["lrs"] = [g["lr"] for g in opt2.param_groups]
results["last_lr"] = sched2.get_last_lr()
results["log_pre"] = log["pre"]
results["log_post"] = log["post"]
results["log_sd"] = [log["sd_pre"], log["sd_post"]]
results["amsgrad_max"] = opt.state[model.fc1.weight]["max_exp_avg_sq"].sum().item()

# manual lr write and a maximize objective
with torch.no_grad():
    for g in opt2.param_groups:
        g["lr"] = g["lr"] * 0.1
w = torch.zeros(3, requires_grad=True)
sgd = torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True, maximize=True, weight_decay=0.01)
target = torch.tensor([1.0, -2.0, 0.5])
for _ in range(5):
    sgd.zero_grad()
    obj = -(w - target).pow(2).sum()
    obj.backward()
    sgd.step()
results["maximize_w"] = w.tolist()
results["momentum_buf"] = sgd.state[w]["momentum_buffer"].tolist()
results["manual_lrs"] = [g["lr"] for g in opt2.param_groups]
report(**results)
