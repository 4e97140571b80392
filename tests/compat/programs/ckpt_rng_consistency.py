# Activation checkpointing as memory-saving training code uses it, checked inside each
# library for what PyTorch guarantees: a block with dropout recomputed under
# torch.utils.checkpoint.checkpoint(use_reentrant=False, preserve_rng_state=True) gives the
# same gradients as the plain block after torch.manual_seed is reset (the recomputation
# replays the forward's dropout masks), preserve_rng_state=False with dropout off, the
# reentrant form with an input that requires grad, checkpoint_sequential over an
# nn.Sequential with segments, keyword arguments passed through, a checkpointed function
# returning a tuple with a non-tensor, a checkpoint inside a loop over layers (a transformer
# stack with torch.utils.checkpoint on each block only in training), and the values of a
# dropout-free run compared across libraries.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.utils.checkpoint import checkpoint, checkpoint_sequential

rng = np.random.default_rng(4040)
X = torch.from_numpy(rng.standard_normal((6, 8)).astype(np.float32))


class Block(nn.Module):
    def __init__(self, p=0.3):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 8)
        self.drop = nn.Dropout(p)
        self.norm = nn.LayerNorm(8)

    def forward(self, x, scale=1.0):
        return self.norm(x + scale * self.fc2(self.drop(F.gelu(self.fc1(x)))))


class Stack(nn.Module):
    def __init__(self, n=3, p=0.3, use_ckpt=True):
        super().__init__()
        self.blocks = nn.ModuleList([Block(p) for _ in range(n)])
        self.head = nn.Linear(8, 1)
        self.use_ckpt = use_ckpt

    def forward(self, x):
        for block in self.blocks:
            if self.use_ckpt and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.head(x)


def load(model):
    W = reference_weights(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(W[name]))
    return model


def grads(model):
    return torch.cat([p.grad.flatten() for p in model.parameters()])


res = {}
# preserve_rng_state: the same masks on recomputation
plain, ck = load(Stack(use_ckpt=False)), load(Stack(use_ckpt=True))
torch.manual_seed(7)
plain(X).sum().backward()
torch.manual_seed(7)
ck(X).sum().backward()
res["rng_replayed"] = torch.allclose(grads(plain), grads(ck), rtol=1e-5, atol=1e-7)

# dropout off: values across libraries
plain0, ck0 = load(Stack(p=0.0, use_ckpt=False)), load(Stack(p=0.0, use_ckpt=True))
out_plain = plain0(X)
out_plain.sum().backward()
out_ck = ck0(X)
out_ck.sum().backward()
res["out"] = out_ck.flatten().tolist()
res["grads"] = grads(ck0)[:12].tolist()
res["same_as_plain"] = torch.allclose(grads(plain0), grads(ck0), rtol=1e-6, atol=1e-7)

b = load(Block(0.0))
xr = X.clone().requires_grad_()
y = checkpoint(b, xr, 0.5, use_reentrant=True, preserve_rng_state=False)
y.pow(2).sum().backward()
res["reentrant_x_grad"] = xr.grad[0].tolist()
res["reentrant_w_grad"] = b.fc1.weight.grad[0].tolist()

b2 = load(Block(0.0))
y = checkpoint(b2, X, scale=0.5, use_reentrant=False)
y.pow(2).sum().backward()
res["kw_w_grad"] = b2.fc1.weight.grad[0].tolist()


def two_outputs(x, w):
    h = torch.tanh(x @ w)
    return h, h.sum(), "tag"


w = torch.from_numpy(rng.standard_normal((8, 4)).astype(np.float32)).requires_grad_()
h, s, tag = checkpoint(two_outputs, X, w, use_reentrant=False)
(h.pow(2).sum() + s).backward()
res["tuple_out"] = [tag, w.grad[0].tolist()]

seq = load(nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2)))
xs = X.clone().requires_grad_()
out = checkpoint_sequential(seq, 3, xs, use_reentrant=False)
out.sum().backward()
res["seq_grads"] = [seq[0].weight.grad[0].tolist(), xs.grad[1].tolist()]

model = load(Stack(p=0.0))
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
losses = []
for step in range(5):
    loss = (model(X) - 1).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
model.eval()
with torch.no_grad():
    res["eval"] = model(X).flatten().tolist()
res["losses"] = losses
report(**res)
