"""descent.utils.data: torch.utils.data's names, so `from torch.utils.data import ...` ports by
changing `torch` to `descent`.

    from descent.utils.data import DataLoader, Dataset, TensorDataset, random_split

The map-style datasets are descent.data's own classes; `DataLoader` here takes every argument of
torch's (worker processes, samplers, batch samplers, generator, worker_init_fn, persistent
workers) and `default_collate` follows torch's rules (see collate.py: a Python float becomes
float64, a tuple sample becomes a list of batches), which differ from descent.data's.
"""

from ... import _namespace
from ...distributed.sampler import DistributedSampler
from .collate import default_collate, default_convert
from .dataloader import DataLoader, get_worker_info
from .dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    StackDataset,
    Subset,
    TensorDataset,
    random_split,
)
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "StackDataset",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "default_collate",
    "default_convert",
    "get_worker_info",
    "random_split",
]

# torch.utils.data's submodule names stay; collate.py is importable by path only (torch's
# default_collate lives in the private torch.utils.data._utils.collate). WorkerInfo, the class
# of get_worker_info()'s result, is private in torch too (descent.utils.data.dataloader has it).
_namespace.hide_submodules(globals(), keep=("dataloader", "dataset", "sampler"))
