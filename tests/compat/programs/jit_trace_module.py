# torch.jit.trace as deployment scripts and older tutorials use it: a model traced with an example
# input in eval mode, the traced module called and called again after the eager module trained
# (parameters and buffers shared), its state_dict saved into BytesIO and loaded into a fresh eager
# model, a traced plain function, trace_module with a method dict, the `torch.jit.is_tracing()`
# branch in forward, torch.jit.ignore / torch.jit.unused on helper methods of a scripted module,
# torch.jit.freeze of a scripted eval module, and torch.jit.optimize_for_inference; values compared
# with the eager model.
import io

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(2525)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        if torch.jit.is_tracing():
            x = x * 1.0
        return self.fc(x.flatten(1))

    def embed(self, x):
        return F.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


model = Net()
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
x = torch.from_numpy(rng.standard_normal((6, 1, 4, 4)).astype(np.float32))
y = torch.from_numpy(rng.integers(0, 3, 6))
model.eval()
traced = torch.jit.trace(model, x[:2])
eager_out = model(x)
traced_out = traced(x)
same_params = all(a is b for a, b in zip(model.parameters(), traced.parameters()))
# A trace records the ops of the mode it ran in: PyTorch's traced BatchNorm keeps using running
# statistics after traced.train(), where descent's trace is the module itself (docs/pytorch.md,
# session 31). Training goes through the eager module, whose parameters and buffers the traced
# one shares; the traced module is only evaluated.
model.train()
opt = torch.optim.SGD(model.parameters(), lr=0.1)
losses = []
for step in range(4):
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())
model.eval()
traced_after = traced(x)
# torch.jit.save / torch.jit.load write and read TorchScript code, which descent never does
# (docs/pytorch.md): the traced model's weights go through torch.save instead
buf = io.BytesIO()
torch.save(traced.state_dict(), buf)
buf.seek(0)
loaded = Net()
loaded.load_state_dict(torch.load(buf, weights_only=True))
loaded.eval()
loaded_out = loaded(x)


def f(a, b):
    return torch.tanh(a) * b + a.sum()


tf = torch.jit.trace(f, (torch.ones(3), torch.ones(3)))
tf_out = tf(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([1.0, 2.0, 3.0]))
tm = torch.jit.trace_module(model, {"forward": x[:1], "embed": x[:1]})
emb = tm.embed(x)


class Scripted(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)

    @torch.jit.ignore
    def debug(self, x):
        return x.numpy().tolist()

    @torch.jit.unused
    def unused_path(self, x):
        return x * 100

    def forward(self, x):
        return torch.sigmoid(self.lin(x))


s = Scripted()
W = reference_weights(s)
with torch.no_grad():
    for name, p in s.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
sm = torch.jit.script(s.eval())
frozen = torch.jit.freeze(sm)
opt_inf = torch.jit.optimize_for_inference(torch.jit.script(s.eval()))
xi = torch.from_numpy(rng.standard_normal((3, 4)).astype(np.float32))
report(
    traced_vs_eager=(traced_out - eager_out).abs().max().item(),
    eager_out=eager_out[:2].tolist(),
    same_params=same_params,
    losses=losses,
    loaded_out=loaded_out[:2].tolist(),
    traced_after=traced_after[:2].tolist(),
    loaded_matches=torch.allclose(loaded_out, model(x)),
    tf_out=tf_out.tolist(),
    emb=emb[:2].tolist(),
    frozen=frozen(xi).tolist(),
    opt_inf=opt_inf(xi).tolist(),
    debug=s.debug(xi[:1]),
)
