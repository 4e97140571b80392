"""Datasets with torch.utils.data's names.

The map-style classes (`Dataset`, `TensorDataset`, `Subset`, `ConcatDataset`, `random_split`)
are descent.data's; this module adds the iterable-style ones. An `IterableDataset` yields its
samples from `__iter__`; with `num_workers > 0` every worker iterates its own copy, so a dataset
that must not repeat its samples splits the work with `get_worker_info()` (see dataloader.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ...data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split

__all__ = [
    "ChainDataset",
    "ConcatDataset",
    "Dataset",
    "IterableDataset",
    "Subset",
    "TensorDataset",
    "random_split",
]


class IterableDataset(Dataset):
    """Base class of iterable-style datasets: subclasses define `__iter__`."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __getitem__(self, index: int) -> Any:
        raise TypeError(
            f"{type(self).__name__} is an IterableDataset: it is read with iter(), not indexed"
        )

    def __add__(self, other: Any) -> ChainDataset:
        return ChainDataset([self, other])


class ChainDataset(IterableDataset):
    """Several iterable datasets one after another."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)
