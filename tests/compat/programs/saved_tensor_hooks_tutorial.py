# The "Hooks for autograd saved tensors" tutorial as written (condensed): pack / unpack hooks
# by torch.autograd.graph.saved_tensors_hooks that only count and pass through, that offload
# to disk (torch.save to a uuid-named file in a temporary directory, torch.load back, a
# SelfDeletingTempFile whose __del__ removes it), that save a tensor's (device, cpu copy)
# pair like save_on_cpu, hooks registered on a Module's forward by a context manager inside
# forward, torch.autograd.graph.save_on_cpu(pin_memory=False) around a training step,
# disable_saved_tensors_hooks raising its message, and each variant's gradients compared
# with a plain run.
import os
import tempfile
import uuid

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2323)
X = torch.from_numpy(rng.standard_normal((8, 5)).astype(np.float32))
Y = torch.from_numpy(rng.standard_normal((8, 2)).astype(np.float32))


def make():
    m = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 7), nn.Sigmoid(), nn.Linear(7, 2))
    W = reference_weights(m)
    with torch.no_grad():
        for name, p in m.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return m


def grads_of(model):
    return [p.grad.clone() for p in model.parameters()]


model = make()
nn.functional.mse_loss(model(X), Y).backward()
plain = grads_of(model)

counts = {"pack": 0, "unpack": 0}


def pack_hook(x):
    counts["pack"] += 1
    return x


def unpack_hook(x):
    counts["unpack"] += 1
    return x


a = torch.ones(5, requires_grad=True)
b = torch.ones(5, requires_grad=True) * 2
with torch.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook):
    y = a * b
y.sum().backward()
simple = {"counts": dict(counts), "a_grad": a.grad.tolist()}

tmp_dir_obj = tempfile.TemporaryDirectory()
tmp_dir = tmp_dir_obj.name


class SelfDeletingTempFile:
    def __init__(self):
        self.name = os.path.join(tmp_dir, str(uuid.uuid4()))

    def __del__(self):
        os.remove(self.name)


def pack_to_disk(tensor):
    temp_file = SelfDeletingTempFile()
    torch.save(tensor, temp_file.name)
    return temp_file


def unpack_from_disk(temp_file):
    return torch.load(temp_file.name, weights_only=True)


model = make()
with torch.autograd.graph.saved_tensors_hooks(pack_to_disk, unpack_from_disk):
    loss = nn.functional.mse_loss(model(X), Y)
files_during = len(os.listdir(tmp_dir)) > 0
loss.backward()
del loss
disk = grads_of(model)
files_after = len(os.listdir(tmp_dir))


def pack_cpu(tensor):
    return (tensor.device, tensor.cpu().clone())


def unpack_cpu(packed):
    device, tensor = packed
    return tensor.to(device)


class HookedLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = make()

    def forward(self, x):
        with torch.autograd.graph.saved_tensors_hooks(pack_cpu, unpack_cpu):
            return self.inner(x)


hm = HookedLinear()
nn.functional.mse_loss(hm(X), Y).backward()
module_hooked = grads_of(hm.inner)

model = make()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
soc_losses = []
for step in range(4):
    opt.zero_grad()
    with torch.autograd.graph.save_on_cpu(pin_memory=False):
        loss = nn.functional.mse_loss(model(X), Y)
    loss.backward()
    opt.step()
    soc_losses.append(loss.item())

try:
    with torch.autograd.graph.disable_saved_tensors_hooks("saved tensor hooks are off here"):
        with torch.autograd.graph.saved_tensors_hooks(pack_hook, unpack_hook):
            pass
    disabled = "none"
except RuntimeError as e:
    disabled = "saved tensor hooks are off here" in str(e)


def same(gs):
    return all(torch.allclose(g, h, rtol=0, atol=0) for g, h in zip(gs, plain))


report(
    simple=simple,
    plain=[g.flatten()[:4].tolist() for g in plain],
    disk_same=same(disk),
    files_during=files_during,
    files_after=files_after,
    module_same=same(module_hooked),
    soc_losses=soc_losses,
    disabled=disabled,
)
tmp_dir_obj.cleanup()
