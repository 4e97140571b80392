"""Datasets with torch.utils.data's names.

The map-style classes (`Dataset`, `TensorDataset`, `Subset`, `ConcatDataset`, `random_split`)
are descent.data's; this module adds `StackDataset` and the iterable-style ones. An
`IterableDataset` yields its samples from `__iter__`; with `num_workers > 0` every worker
iterates its own copy, so a dataset that must not repeat its samples splits the work with
`get_worker_info()` (see dataloader.py).
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
    "StackDataset",
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


class StackDataset(Dataset):
    """Several datasets of one length read side by side (torch.utils.data.StackDataset):
    `StackDataset(images, texts)[i]` is `(images[i], texts[i])`, and
    `StackDataset(image=images, text=texts)[i]` is `{"image": images[i], "text": texts[i]}`.

    Raises:
        ValueError: no dataset, both positional and keyword datasets, or different lengths.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args and kwargs:
            raise ValueError(
                "StackDataset: pass the datasets positionally (samples are tuples) or by "
                "keyword (samples are dicts), not both"
            )
        parts = list(args) or list(kwargs.values())
        if not parts:
            raise ValueError("StackDataset: at least one dataset should be passed")
        lengths = [len(d) for d in parts]
        if len(set(lengths)) != 1:
            raise ValueError(f"StackDataset: size mismatch between datasets (lengths {lengths})")
        self.datasets: tuple | dict = args if args else dict(kwargs)
        self._length = lengths[0]

    def __getitem__(self, index: int) -> Any:
        if isinstance(self.datasets, dict):
            return {k: d[index] for k, d in self.datasets.items()}
        return tuple(d[index] for d in self.datasets)

    def __len__(self) -> int:
        return self._length
