# The torch.utils.data surface beyond a plain loop: worker processes (num_workers=2, persistent,
# pin_memory) over a Dataset of dicts with strings, an IterableDataset sharded with
# get_worker_info, random_split with fractions and a generator, Subset, ConcatDataset,
# WeightedRandomSampler, default_collate, shuffle with a generator and drop_last. Our own program.
import numpy as np
import torch
from compat_helpers import report
from torch.utils.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    Subset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
)


class DictDS(Dataset):
    def __init__(self, n):
        self.x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": torch.from_numpy(self.x[i]), "y": i % 2, "name": f"s{i}"}


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        lo, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(lo, self.n, step))


out = {}
ds = DictDS(10)
dl = DataLoader(ds, batch_size=4, num_workers=2, pin_memory=True, persistent_workers=True)
b = [(d["x"].tolist(), d["y"].tolist(), d["name"]) for d in dl]
out["dict_batches"] = b
stream = DataLoader(Stream(10), batch_size=3, num_workers=2)
out["stream"] = sorted(int(v) for batch in stream for v in batch)
g = torch.Generator().manual_seed(0)
tr, va = random_split(ds, [0.7, 0.3], generator=g)
out["split_sizes"] = [len(tr), len(va)]
out["concat_len"] = len(ConcatDataset([ds, Subset(ds, [1, 2])]))
s = WeightedRandomSampler(
    [0.1, 0.9], num_samples=5, replacement=True, generator=torch.Generator().manual_seed(1)
)
out["random_weighted"] = list(s)
pairs = [(1, 2.0, torch.tensor([1, 2])), (3, 4.0, torch.tensor([3, 4]))]
out["collate"] = default_collate(pairs)[2].tolist()
g3 = torch.Generator().manual_seed(3)
dl2 = DataLoader(ds, batch_size=3, shuffle=True, drop_last=True, generator=g3)
out["random_shuffled_len"] = len(list(dl2))
report(**out)
