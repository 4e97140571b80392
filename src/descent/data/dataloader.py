"""DataLoader: batches from a dataset, optionally shuffled with a seeded generator.

Each epoch (each `iter(loader)`) draws one permutation from the loader's generator, so a seeded
`descent.Generator` gives the same sequence of batches on every run. When the dataset offers
`get_batch(indices)` (TensorDataset does) and no custom `collate_fn` is given, a batch is made
with one fancy-indexing operation per tensor instead of item by item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .. import backend
from ..creation import Generator, default_generator
from ..tensor import Tensor


def default_collate(batch: list[Any]) -> Any:
    """Stack a list of samples into a batch.

    Tensors are stacked along a new first axis (keeping their dtype), NumPy arrays and numbers
    become descent Tensors (floating data as float32, integers as int64, as `descent.tensor`
    does), tuples/lists and dicts are collated field by field, and strings are kept as a list.

    Raises:
        TypeError: for samples of mixed or unsupported types.
        ValueError: when samples of one field have different shapes.
    """
    if not batch:
        raise ValueError("default_collate: got an empty batch")
    first = batch[0]
    if isinstance(first, Tensor):
        arrays = [_field_array(b, Tensor) for b in batch]
        _check_shapes(arrays)
        xp = backend.get_array_module(*arrays)
        return Tensor._wrap(xp.stack(arrays))  # (B, ...)
    if isinstance(first, np.ndarray) or isinstance(first, (int, float, bool, np.generic)):
        _check_shapes([np.shape(b) for b in batch], are_shapes=True)
        return Tensor._from_data(np.stack([np.asarray(b) for b in batch]))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, Mapping):
        return {k: default_collate([b[k] for b in batch]) for k in first}
    if isinstance(first, (tuple, list)):
        n = len(first)
        if any(len(b) != n for b in batch):
            raise ValueError("default_collate: samples in the batch have different lengths")
        fields = [default_collate([b[i] for b in batch]) for i in range(n)]
        return tuple(fields) if isinstance(first, tuple) else fields
    raise TypeError(
        f"default_collate: cannot batch samples of type {type(first).__name__}; "
        "pass collate_fn= to DataLoader"
    )


def _field_array(b: Any, kind: type) -> Any:
    if not isinstance(b, kind):
        raise TypeError(f"default_collate: a batch mixes {kind.__name__} with {type(b).__name__}")
    return b._data


def _check_shapes(items: list[Any], are_shapes: bool = False) -> None:
    shapes = items if are_shapes else [a.shape for a in items]
    if any(s != shapes[0] for s in shapes):
        raise ValueError(
            f"default_collate: samples have different shapes {sorted(set(shapes))}; pad them "
            "or pass collate_fn= to DataLoader"
        )


class DataLoader:
    """Iterate over a dataset in batches.

    Args:
        dataset: a map-style dataset (`__len__`, `__getitem__`, optionally `get_batch`).
        batch_size: samples per batch.
        shuffle: draw a new permutation each epoch from `generator`.
        drop_last: drop the last batch when it is smaller than `batch_size`.
        collate_fn: turns a list of samples into a batch (`default_collate` when None).
        generator: a seeded `descent.Generator`, so shuffling repeats from run to run
            (descent's default generator when None).

    Example:
        >>> loader = DataLoader(ds, batch_size=32, shuffle=True, generator=descent.Generator(0))
        >>> for x, y in loader: ...
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        generator: Generator | None = None,
    ) -> None:
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            return (self.generator or default_generator()).numpy_rng.permutation(n)
        return np.arange(n)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()  # one permutation per epoch, drawn when the epoch starts
        fast = self.collate_fn is None and hasattr(self.dataset, "get_batch")
        collate = self.collate_fn or default_collate
        for k in range(len(self)):
            idx = order[k * self.batch_size : (k + 1) * self.batch_size]
            if fast:
                yield self.dataset.get_batch(idx)
            else:
                yield collate([self.dataset[int(i)] for i in idx])
