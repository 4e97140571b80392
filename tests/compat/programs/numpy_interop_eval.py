# Evaluation code that moves between NumPy and torch the way notebooks do: torch.from_numpy and
# .numpy() sharing memory (in-place writes seen on both sides), torch.as_tensor without a copy,
# torch.tensor copying, np.asarray(tensor), NumPy scalars (np.float64, np.int64) in tensor
# arithmetic and as indices, NumPy integer / bool arrays as indices, float(t) / int(t) / t.item(),
# tolist of mixed dtypes, tensor + ndarray, np.float32 learning rates into an
# optimizer, a sklearn-style metric computed in NumPy from detached outputs.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report

rng = np.random.default_rng(37)
torch.manual_seed(0)
results = {}

arr = np.arange(6, dtype=np.float32).reshape(2, 3)
t = torch.from_numpy(arr)
t[0, 0] = 100.0
arr[1, 2] = -5.0
results["shared"] = [arr[0, 0].item(), t[1, 2].item()]
t2 = torch.as_tensor(arr)
t2.mul_(2)
results["as_tensor_shared"] = arr.tolist()
t3 = torch.tensor(arr)
t3.zero_()
results["tensor_copies"] = arr.sum().item()
back = t.numpy()
back += 1
results["numpy_shared"] = t.tolist()
results["asarray"] = np.asarray(t).dtype.name
results["as_tensor_f64"] = str(torch.as_tensor(np.zeros(2)).dtype).split(".")[-1]
results["as_tensor_dtype"] = str(torch.as_tensor(np.zeros(2), dtype=torch.float32).dtype).split(
    "."
)[-1]

x = torch.ones(3)
results["np_scalar_ops"] = [
    str((x * np.float64(2.5)).dtype).split(".")[-1],
    str((x + np.int64(3)).dtype).split(".")[-1],
    str((torch.arange(3) * np.float32(0.5)).dtype).split(".")[-1],
    (x * np.float64(2.5)).tolist(),
]
results["np_index"] = [torch.arange(10)[np.int64(3)].item(),
                       torch.arange(10)[np.array([1, 5, 7])].tolist(),
                       torch.arange(10)[np.arange(10) % 3 == 0].tolist()]  # fmt: skip
results["conversions"] = [float(torch.tensor(2.5)), int(torch.tensor(7)),
                          torch.tensor([True]).item(), torch.tensor([1, 2]).tolist(),
                          torch.tensor([[1.5]]).item()]  # fmt: skip
left = torch.ones(3) + np.array([1.0, 2.0, 3.0], dtype=np.float32)
results["tensor_plus_ndarray"] = [str(left.dtype).split(".")[-1], left.tolist()]

# a model evaluated from NumPy batches; metrics in NumPy
X = rng.standard_normal((40, 6)).astype(np.float32)
Y = (X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.standard_normal(40) > 0).astype(np.int64)
model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
W = reference_weights(model)
with torch.no_grad():
    for n_, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n_]))
opt = torch.optim.SGD(model.parameters(), lr=np.float32(0.3))
losses = []
for epoch in range(6):
    for i in range(0, 40, 10):
        xb, yb = torch.from_numpy(X[i : i + 10]), torch.from_numpy(Y[i : i + 10])
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
results["losses"] = losses
results["lr_type"] = type(opt.param_groups[0]["lr"]).__name__
with torch.no_grad():
    probs = F.softmax(model(torch.from_numpy(X)), dim=1)[:, 1].numpy()
pred = (probs > 0.5).astype(np.int64)
tp_ = int(((pred == 1) & (Y == 1)).sum())
fp = int(((pred == 1) & (Y == 0)).sum())
fn = int(((pred == 0) & (Y == 1)).sum())
results["confusion"] = [tp_, fp, fn]
order = np.argsort(-probs)
ranks = np.empty(40)
ranks[order] = np.arange(40)
pos = Y == 1
auc = 1 - (ranks[pos].mean() - (pos.sum() - 1) / 2) / (~pos).sum()
results["auc"] = float(auc)
results["probs"] = probs[:8].tolist()
results["probs_dtype"] = probs.dtype.name
report(**results)
