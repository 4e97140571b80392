# Memory-saving and instrumentation code around one residual MLP: torch.utils.checkpoint with
# use_reentrant=False (kwargs, a non-tensor argument, a dropout-free block with in-place ops
# inside: out += x, relu_(), then masked_fill), checkpoint_sequential over an nn.Sequential,
# gradients equal to the plain run; module hooks (forward_pre with kwargs changing an input,
# forward hook replacing the output, full_backward_hook scaling grad_input,
# full_backward_pre_hook), tensor hooks on an intermediate, retain_grad, handle.remove(), and
# torch.no_grad / inference_mode / set_grad_enabled regions mixed inside one step.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

rng = np.random.default_rng(41)
torch.manual_seed(0)


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, 2 * d)
        self.fc2 = nn.Linear(2 * d, d)
        self.norm = nn.LayerNorm(d)

    def forward(self, x, mask=None, scale=1.0):
        h = self.fc1(self.norm(x))
        h.relu_()
        if mask is not None:
            h = h.masked_fill(mask, 0.0)
        out = self.fc2(h) * scale
        out += x
        return out


class Net(nn.Module):
    def __init__(self, d=8, n=3, use_ckpt=False):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d) for _ in range(n)])
        self.head = nn.Linear(d, 1)
        self.use_ckpt = use_ckpt

    def forward(self, x, mask):
        for blk in self.blocks:
            if self.use_ckpt:
                x = checkpoint(blk, x, mask=mask, scale=0.5, use_reentrant=False)
            else:
                x = blk(x, mask=mask, scale=0.5)
        return self.head(x)


def load(m):
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return m


X = torch.from_numpy(rng.standard_normal((6, 8)).astype(np.float32))
Y = torch.from_numpy(rng.standard_normal((6, 1)).astype(np.float32))
M = torch.from_numpy(rng.uniform(size=(6, 16)) < 0.2)
results = {}
grads = []
for use_ckpt in (False, True):
    net = load(Net(use_ckpt=use_ckpt))
    loss = F.mse_loss(net(X, M), Y)
    loss.backward()
    grads.append([p.grad.norm().item() for p in net.parameters()])
    results[f"loss_ckpt{int(use_ckpt)}"] = loss.item()
results["grads_plain"], results["grads_ckpt"] = grads
results["grads_equal"] = all(abs(a - b) <= 1e-6 * max(1, abs(a)) for a, b in zip(*grads))

seq = load(nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1)))
xs = X.clone().requires_grad_(True)
out = checkpoint_sequential(seq, 2, xs, use_reentrant=False)
out.sum().backward()
results["ckpt_seq_input_grad"] = xs.grad.flatten()[:6].tolist()
results["ckpt_seq_w_grad"] = seq[0].weight.grad.norm().item()

# hooks
net = load(Net())
log = []


def pre_hook(module, args, kwargs):
    log.append("pre")
    return args, {**kwargs, "scale": 0.25}


def fwd_hook(module, args, output):
    log.append("fwd")
    return output * 2


def bwd_hook(module, grad_input, grad_output):
    log.append("bwd")
    return (grad_input[0] * 0.5,)


def bwd_pre_hook(module, grad_output):
    log.append("bwd_pre")
    return (grad_output[0].clamp(-0.1, 0.1),)


handles = [
    net.blocks[0].register_forward_pre_hook(pre_hook, with_kwargs=True),
    net.blocks[1].register_forward_hook(fwd_hook),
    net.blocks[2].register_full_backward_hook(bwd_hook),
    net.head.register_full_backward_pre_hook(bwd_pre_hook),
]
inter = []
xin = X.clone().requires_grad_(True)
h0 = net.blocks[0](xin, mask=M, scale=0.5)
h0.retain_grad()
h0.register_hook(lambda g: inter.append(g.norm().item()))
h = net.blocks[2](net.blocks[1](h0, mask=M), mask=M)
loss = F.mse_loss(net.head(h), Y)
loss.backward()
results["hook_log"] = log
results["hook_loss"] = loss.item()
results["retained"] = h0.grad.norm().item()
results["tensor_hook"] = inter
results["input_grad"] = xin.grad.flatten()[:6].tolist()
for hd in handles:
    hd.remove()
log.clear()
net.zero_grad()
loss2 = F.mse_loss(net(X, M), Y)
loss2.backward()
results["after_remove"] = [loss2.item(), log]

# grad-mode regions inside a training step
opt = torch.optim.SGD(net.parameters(), lr=0.05)
steps = []
for step in range(3):
    with torch.no_grad():
        target_scale = net(X, M).std()
    with torch.set_grad_enabled(step != 1):
        out = net(X, M)
        loss = F.mse_loss(out, Y * target_scale)
    results[f"requires_grad_{step}"] = loss.requires_grad
    if loss.requires_grad:
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.inference_mode():
        ev = net(X, M)
    steps.append([loss.item(), ev.mean().item(), ev.is_inference()])
results["steps"] = steps
report(**results)
