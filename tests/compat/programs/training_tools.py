# The tools around a training loop that real scripts reach for: module hooks (a forward
# pre-hook that scales inputs, a full backward hook that logs gradient norms and clips
# grad_input), an optimizer step post-hook counting steps, a TorchScript-decorated helper,
# stochastic weight averaging (AveragedModel + SWALR + update_bn), an EMA copy, the profiler
# around the loop, state-dict hooks renaming keys of an "old" checkpoint, and tensors printed.
# Our own program; data generated with NumPy.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn, update_bn
from torch.profiler import ProfilerActivity, profile, record_function

rng = np.random.default_rng(3)
X = rng.standard_normal((256, 6)).astype(np.float32)
y = (X[:, :2].sum(1) > 0).astype(np.int64)
batches = [
    (torch.from_numpy(X[i : i + 32]), torch.from_numpy(y[i : i + 32])) for i in range(0, 256, 32)
]


@torch.jit.script
def smooth_relu(x):
    return F.softplus(x, beta=4.0)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.bn = nn.BatchNorm1d(16)
        self.fc2 = nn.Linear(16, 2)

    def forward(self, x):
        return self.fc2(smooth_relu(self.bn(self.fc1(x))))


model = Net()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))

grad_norms = []
model.fc1.register_forward_pre_hook(lambda m, args: (args[0] * 0.5,))


def log_and_clip(module, grad_input, grad_output):
    grad_norms.append(grad_output[0].norm().item())
    return tuple(None if g is None else g.clamp(-0.01, 0.01) for g in grad_input)


model.fc2.register_full_backward_hook(log_and_clip)

opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
steps = []
opt.register_step_post_hook(lambda o, args, kwargs: steps.append(1))
swa = AveragedModel(model)
ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
sched = SWALR(opt, swa_lr=0.02, anneal_epochs=2, anneal_strategy="cos")

losses, lrs = [], []
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for epoch in range(4):
        for xb, yb in batches:
            with record_function("step"):
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
            losses.append(loss.item())
        swa.update_parameters(model)
        ema.update_parameters(model)
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
update_bn([xb for xb, _ in batches], swa)

swa.eval()
ema.eval()
with torch.no_grad():
    xs = torch.from_numpy(X)
    swa_loss = F.cross_entropy(swa(xs), torch.from_numpy(y)).item()
    ema_out = ema(xs[:3])

# An "old" checkpoint whose keys were named differently, renamed by a load pre-hook.
old = {k.replace("fc", "dense"): v.clone() for k, v in model.state_dict().items()}


def rename(module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
    for k in list(state_dict):
        if k.startswith(prefix + "dense"):
            state_dict[k.replace("dense", "fc", 1)] = state_dict.pop(k)


fresh = Net()
fresh.register_load_state_dict_pre_hook(rename)
result = fresh.load_state_dict(old)

report(
    losses=losses,
    lrs=lrs,
    grad_norms=grad_norms,
    steps=len(steps),
    n_averaged=int(swa.n_averaged.item()),
    swa_loss=swa_loss,
    swa_running_mean=swa.module.bn.running_mean.tolist(),
    ema_out=ema_out.tolist(),
    loaded_missing=list(result.missing_keys),
    same_weights=bool(torch.equal(fresh.fc2.weight, model.fc2.weight)),
    profiled_step=any(e.key == "step" for e in prof.key_averages()),
    shown=repr(torch.tensor([[1.5, -2.0], [3.25, 4.0]])),
    shown_int=repr(torch.tensor([1, 2, 3])),
    shown_empty=repr(torch.zeros(0, 3)),
    is_float=torch.float32.is_floating_point,
    numel=xs.shape.numel(),
)
