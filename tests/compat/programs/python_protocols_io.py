# The Python-level idioms that training and evaluation scripts lean on without thinking of them
# as "torch API" (our own program): f-string / %-formatting of 0-d tensors, float() / int() /
# bool() / math.* on them, the builtins sum(), max(), min(), sorted(), any(), all() over
# tensors and lists of 0-d tensors, tensors as dict keys and set members (identity hashing),
# NumPy scalars on either side of a tensor operator (np.float64 * t, t / np.float32, t ** np.int64),
# np.asarray(t) / np.array(t, dtype=) / np.mean over a list of tensors, torch.tensor of a list of
# 0-d tensors and NumPy scalars, pickle.dumps / loads of a tensor, a dict of tensors, a Module
# and an optimizer's state_dict, copy.copy vs copy.deepcopy of a module (shared vs copied
# parameters), torch.save of tensors that share storage (a view and its base, the same tensor
# twice) loaded back with the sharing kept, in-place writes through the loaded view, and a
# tiny model trained between the checks with its losses reported.
import copy
import io
import math
import pickle

import numpy as np
import torch
import torch.nn as nn
from compat_helpers import reference_weights, report

out = {}
t = torch.tensor(2.5)
out["fmt"] = [
    f"{t:.3f}",
    "%.2f" % t,
    "{:.1e}".format(t),
    f"{torch.tensor(7)}",
    str(float(t)),
    f"{t.item():g}",
]
out["casts"] = [
    float(t),
    int(t),
    bool(t),
    math.exp(t),
    math.isnan(t),
    round(float(t) * 3, 2),
    int(torch.tensor(-3.7)),
]
vals = [torch.tensor(v) for v in (3.0, -1.0, 2.0)]
out["builtins"] = [
    float(sum(vals)),
    float(max(vals)),
    float(min(vals)),
    [float(v) for v in sorted(vals)],
    any(v > 2 for v in vals),
    all(v > -2 for v in vals),
    float(sum(torch.tensor([1.0, 2.0, 3.0]))),
    [float(v) for v in sorted(torch.tensor([3.0, 1.0, 2.0]), reverse=True)],
]
d = {vals[0]: "a", vals[1]: "b"}
out["dict_keys"] = [d[vals[0]], d[vals[1]], vals[2] in d, len({vals[0], vals[0], vals[1]})]

x = torch.tensor([1.0, 2.0, 4.0])
r1 = np.float64(2.0) * x
r2 = x / np.float32(4.0)
r3 = x ** np.int64(2)
r4 = x + np.float32(0.5)
out["np_scalars"] = [
    r1.tolist(),
    r2.tolist(),
    r3.tolist(),
    r4.tolist(),
    r1.dtype == torch.float32,
    r2.dtype == torch.float32,
    r3.dtype == torch.float32,
    r4.dtype == torch.float32,
    type(r1).__name__,
]
a = np.asarray(x)
b = np.array(x, dtype=np.float64)
out["np_arrays"] = [
    a.dtype.name,
    b.dtype.name,
    a.tolist(),
    float(np.mean([torch.tensor(1.0), torch.tensor(2.0)])),
    float(np.float32(x.sum())),
]
mixed = torch.tensor([torch.tensor(1.5), np.float32(2.5), 3])
out["tensor_of_list"] = [mixed.tolist(), mixed.dtype == torch.float32]

model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
W = reference_weights(model)
with torch.no_grad():
    for name, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[name]))
opt = torch.optim.Adam(model.parameters(), lr=0.05)
rng = np.random.default_rng(1)
X = torch.from_numpy(rng.standard_normal((16, 3)).astype(np.float32))
Y = torch.from_numpy(rng.standard_normal((16, 1)).astype(np.float32))
losses = []
for step in range(5):
    loss = ((model(X) - Y) ** 2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss)  # keep the tensors, as scripts do
out["losses"] = [float(v) for v in losses]
out["mean_loss"] = float(sum(losses) / len(losses))
out["best"] = [int(np.argmin([v.item() for v in losses])), float(min(losses))]

blob = pickle.dumps(
    {"w": model[0].weight, "t": torch.arange(4), "model": model, "opt": opt.state_dict()}
)
back = pickle.loads(blob)
out["pickle"] = [
    back["w"].tolist() == model[0].weight.tolist(),
    back["t"].tolist(),
    type(back["model"]).__name__,
    back["model"](X[:2]).tolist(),
    sorted(back["opt"]["state"].keys()),
    float(back["opt"]["state"][0]["exp_avg"].sum()),
    back["w"].requires_grad,
    back["t"].dtype == torch.int64,
]
shallow, deep = copy.copy(model), copy.deepcopy(model)
out["copies"] = [
    shallow[0].weight is model[0].weight,
    deep[0].weight is model[0].weight,
    deep[0].weight.requires_grad,
]

base = torch.arange(6.0)
view = base[2:5]
buf = io.BytesIO()
torch.save({"base": base, "view": view, "again": base}, buf)
buf.seek(0)
loaded = torch.load(buf)
loaded["view"][0] = 100.0
out["storage_sharing"] = [
    loaded["base"].tolist(),
    loaded["again"] is loaded["base"],
    loaded["view"].tolist(),
    loaded["view"].storage_offset(),
    loaded["view"].is_contiguous(),
]

buf = io.BytesIO()
torch.save(model.state_dict(), buf)
print("state_dict bytes are library-specific, the round trip is not:", buf.tell() > 0)
buf.seek(0)
fresh = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
res = fresh.load_state_dict(torch.load(buf, weights_only=True))
out["load"] = [str(res), fresh(X[:3]).tolist()]
out["repr"] = [
    repr(torch.tensor([1.0, 2.5])),
    repr(torch.tensor([1, 2])),
    repr(torch.tensor(True)),
    str(torch.zeros(2, dtype=torch.float64)).split(", dtype")[0],
]
report(**out)
