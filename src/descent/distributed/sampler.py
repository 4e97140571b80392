"""Give each rank its own share of the data, so the global batch is the sum of the local ones.

Two shapes of data:

* Map-style datasets (`len` + `__getitem__`), read through a DataLoader: `DistributedSampler`
  (torch's class) hands rank r the indices r, r+N, r+2N, ... of one shuffled order that every
  rank computes from the same seed and epoch.
* Token streams that draw random windows (the nanoGPT way): `ShardedBatches` draws the GLOBAL
  batch from the shared random stream on every rank and keeps rows
  [r*B/N, (r+1)*B/N). N ranks then see exactly the batch one process would see, whatever N is:
  runs with different N are comparable step by step, and a checkpoint resumes with any N.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Tensor
from . import comm as _c


class DistributedSampler:
    """Indices of this rank's share of a dataset (use as a DataLoader's sampler).

    Args:
        dataset: anything with `len()`.
        num_replicas: number of ranks (default: the world size).
        rank: this rank (default: `get_rank()`).
        shuffle: permute the indices every epoch (seeded with `seed + epoch`).
        seed: must be the same on every rank.
        drop_last: drop the tail so every rank gets `len // num_replicas` samples; otherwise
            the order is padded with its own first indices up to a multiple of num_replicas.

    Call `set_epoch(e)` before each epoch, or every epoch repeats the same order.
    """

    def __init__(
        self,
        dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None:
            num_replicas = _c.get_world_size()
        if rank is None:
            rank = _c.get_rank()
        if num_replicas < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank {rank} is outside [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas:
            self.num_samples = n // self.num_replicas
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch's permutation (same on every rank, different each epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def subset(self):
        """This rank's share of the current epoch as a `descent.data.Subset`, in sampler order.

        descent's DataLoader takes no sampler; feed it the subset instead (without shuffle:
        the order is already this epoch's):

            >>> sampler.set_epoch(epoch)
            >>> loader = DataLoader(sampler.subset(), batch_size=32)
        """
        from ..data import Subset  # data imports nothing from here

        return Subset(self.dataset, list(self))

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            rng = np.random.default_rng(self.seed + self.epoch)
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        if self.drop_last:
            order = order[: self.total_size]
        elif self.total_size > n:
            # Pad by repeating the start of the order (several times for tiny datasets).
            reps = math.ceil(self.total_size / max(n, 1))
            order = np.concatenate([order] * reps)[: self.total_size]
        return iter(order[self.rank : self.total_size : self.num_replicas].tolist())


def local_batch_size(global_batch: int, world_size: int | None = None) -> int:
    """The per-rank batch for a global batch split over the ranks (must divide evenly).

    Raises:
        ValueError: the global batch is not a multiple of the world size.
    """
    n = _c.get_world_size() if world_size is None else world_size
    if global_batch % n:
        raise ValueError(
            f"global batch {global_batch} does not split evenly over {n} ranks: choose a "
            f"batch size that is a multiple of {n} (e.g. {n * max(1, global_batch // n)})"
        )
    return global_batch // n


def shard_rows(batch: Any, rank: int, world_size: int) -> Any:
    """Rows [rank*B/N, (rank+1)*B/N) of a batch (a Tensor, an array, or a tuple/list of them)."""
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_rows(b, rank, world_size) for b in batch)
    rows = batch.shape[0]
    per = local_batch_size(rows, world_size)
    lo = rank * per
    if isinstance(batch, Tensor):
        return Tensor._wrap(batch._data[lo : lo + per])
    return batch[lo : lo + per]


class ShardedBatches:
    """Wrap a batch source so each rank gets its slice of the global batch.

    `source` is a token stream (or any object) with `get_batch(split, batch_size, ...)`
    returning `(x, y)`. Every rank draws the same GLOBAL batch (same seed, same random stream)
    and keeps its own rows, so the ranks together see exactly what one process with the global
    batch would see. Drawing B windows costs B*T indices: negligible next to the model.

    Args:
        source: the underlying stream.
        rank, world_size: default to this process's place in the world.

    Example:
        >>> stream = ShardedBatches(TokenStream(tokens, block_size=64))
        >>> x, y = stream.get_batch("train", 12)   # 12 = global batch; 6 rows per rank at N=2
    """

    def __init__(self, source, rank: int | None = None, world_size: int | None = None) -> None:
        self.source = source
        self.rank = _c.get_rank() if rank is None else int(rank)
        self.world_size = _c.get_world_size() if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"ShardedBatches: rank {self.rank} outside world {self.world_size}")

    def get_batch(self, split: str, batch_size: int, *args, **kwargs):
        """This rank's rows of the global batch of `batch_size` windows."""
        local_batch_size(batch_size, self.world_size)  # fail early with a clear message
        batch = self.source.get_batch(split, batch_size, *args, **kwargs)
        return shard_rows(batch, self.rank, self.world_size)

    def __getattr__(self, name: str):
        if name == "source":
            raise AttributeError(name)
        return getattr(self.source, name)
