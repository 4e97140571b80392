# The data side of a classification script with class imbalance: random_split by fractions
# (lengths decided by PyTorch's remainder rule) with a seeded Generator, a WeightedRandomSampler
# from inverse class frequencies, SubsetRandomSampler for a validation fold, BatchSampler with
# and without drop_last as batch_sampler=, a DataLoader over a Dataset returning dicts with
# NumPy arrays, ints, floats and strings (default_collate's conversions), ConcatDataset of two
# TensorDatasets, len() of each loader; training a logistic model on fixed-order batches.
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from compat_helpers import reference_weights, report
from torch.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    random_split,
)

rng = np.random.default_rng(29)
torch.manual_seed(0)
N = 23
feats = rng.standard_normal((N, 5)).astype(np.float32)
labels = (rng.uniform(size=N) < 0.25).astype(np.int64)


class Records(Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        return {
            "x": feats[i],
            "y": int(labels[i]),
            "w": float(1.0 + labels[i]),
            "id": f"rec{i}",
            "mask": np.array([i % 2 == 0]),
        }


ds = Records()
results = {}
g = torch.Generator().manual_seed(42)
parts = random_split(ds, [0.6, 0.25, 0.15], generator=g)
results["split_lengths"] = [len(p) for p in parts]
results["random_split_idx"] = sorted(parts[0].indices)
parts2 = random_split(range(10), [3, 7])
results["split_abs"] = [len(p) for p in parts2]
results["split_cover"] = sorted(list(parts2[0]) + list(parts2[1]))

counts = np.bincount(labels, minlength=2)
weights = 1.0 / counts[labels]
sampler = WeightedRandomSampler(weights.tolist(), num_samples=40, replacement=True)
drawn = list(sampler)
results["weighted_len"] = [len(sampler), len(drawn)]
results["weighted_range"] = [min(drawn) >= 0, max(drawn) < N]
results["random_weighted"] = drawn
no_rep = list(WeightedRandomSampler(weights.tolist(), num_samples=N, replacement=False))
results["no_replacement_perm"] = sorted(no_rep) == list(range(N))

val_idx = list(range(0, N, 4))
vs = SubsetRandomSampler(val_idx)
results["subset_sampler"] = sorted(vs) == val_idx
results["len_subset_sampler"] = len(vs)
bs = BatchSampler(SequentialSampler(ds), batch_size=5, drop_last=False)
bs_drop = BatchSampler(SequentialSampler(ds), batch_size=5, drop_last=True)
results["batch_sampler"] = [list(bs), len(bs), len(bs_drop)]
results["random_sampler_len"] = len(RandomSampler(ds, replacement=True, num_samples=7))

loader = DataLoader(ds, batch_sampler=bs)
batch = next(iter(loader))
results["collate_types"] = {k: type(v).__name__ for k, v in batch.items()}
results["collate_dtypes"] = {
    k: str(v.dtype).split(".")[-1] for k, v in batch.items() if hasattr(v, "dtype")
}
results["collate_shapes"] = {k: list(v.shape) for k, v in batch.items() if hasattr(v, "shape")}
results["collate_ids"] = batch["id"]
results["loader_lens"] = [
    len(loader),
    len(DataLoader(ds, batch_size=4)),
    len(DataLoader(ds, batch_size=4, drop_last=True)),
    len(DataLoader(parts[0], batch_size=4)),
]

cat = ConcatDataset(
    [
        TensorDataset(torch.from_numpy(feats[:10]), torch.from_numpy(labels[:10])),
        TensorDataset(torch.from_numpy(feats[10:]), torch.from_numpy(labels[10:])),
    ]
)
results["concat"] = [len(cat), cat.cumulative_sizes, cat[12][1].item(), cat[-1][0].tolist()]

model = nn.Linear(5, 2)
W = reference_weights(model)
with torch.no_grad():
    for n_, p in model.named_parameters():
        p.copy_(torch.from_numpy(W[n_]))
opt = torch.optim.SGD(model.parameters(), lr=0.2)
losses = []
for epoch in range(3):
    for b in DataLoader(ds, batch_size=6, shuffle=False):
        out = model(b["x"])
        loss = (F.cross_entropy(out, b["y"], reduction="none") * b["w"].float()).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
results["losses"] = losses
report(**results)
