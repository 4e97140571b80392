"""Datasets: the map-style `Dataset` protocol, `TensorDataset`, `Subset` and `random_split`.

A dataset is anything with `__len__` and `__getitem__(i)`. A dataset may also offer
`get_batch(indices)`, which returns a whole collated batch at once; `DataLoader` uses it (when no
custom `collate_fn` is given) instead of fetching and stacking items one by one. `TensorDataset`
does this with one fancy-indexing operation per tensor, which is what makes it fast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..creation import Generator, default_generator
from ..tensor import Tensor


class Dataset:
    """Base class of map-style datasets: subclasses define `__getitem__` and `__len__`."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        # TypeError, as len() of a PyTorch Dataset without __len__: list(ds), operator.
        # length_hint and `list(ChainDataset(...))` take it as "no length" and go on
        raise TypeError(f"object of type '{type(self).__name__}' has no len() (a Dataset "
                        "subclass must define __len__ for that)")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _as_dataset_tensor(t: Any) -> Tensor:
    """Tensors stay as they are; arrays keep their dtype (float64 stays float64)."""
    if isinstance(t, Tensor):
        return t
    if isinstance(t, np.ndarray) or backend.is_cupy_array(t):
        return Tensor._wrap(t)
    return Tensor._from_data(t)  # lists: descent's defaults (float32 / int64)


def _index_rows(t: Tensor, indices) -> Tensor:
    """Rows `indices` of `t` as a tensor; no graph is recorded for data that needs no gradient."""
    if t.requires_grad:
        return t[indices]
    return Tensor._wrap(t._data[indices])


class TensorDataset(Dataset):
    """Samples are rows of tensors that share their first dimension: `ds[i] = (x[i], y[i])`.

    Args:
        *tensors: Tensors (or NumPy arrays, kept in their dtype) with equal `len`.

    Example:
        >>> ds = TensorDataset(descent.randn(100, 3), descent.arange(100))
        >>> x, y = ds.get_batch(np.array([0, 5, 7]))   # shapes (3, 3) and (3,)
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        self.tensors = tuple(_as_dataset_tensor(t) for t in tensors)
        sizes = [t.shape[0] if t.ndim else None for t in self.tensors]
        if None in sizes or len(set(sizes)) != 1:
            shapes = ", ".join(str(tuple(t.shape)) for t in self.tensors)
            raise ValueError(
                f"TensorDataset: all tensors must have the same first dimension, got shapes "
                f"{shapes}"
            )
        self._n = sizes[0]

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(_index_rows(t, index) for t in self.tensors)

    def get_batch(self, indices) -> tuple[Tensor, ...]:
        """A collated batch: one fancy-indexing operation per tensor. `indices`: (B,) ints."""
        out = []
        for t in self.tensors:
            xp = backend.get_array_module(t._data)
            out.append(_index_rows(t, xp.asarray(indices)))  # (B, ...)
        return tuple(out)


class Subset(Dataset):
    """The items of `dataset` at positions `indices` (in that order)."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices  # as given, as PyTorch's (random_split: a list of ints)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> Any:
        if isinstance(index, list):  # PyTorch's Subset takes a list of positions too
            return [self.dataset[int(self.indices[i])] for i in index]
        return self.dataset[int(self.indices[index])]

    def __getattr__(self, name: str) -> Any:
        # Expose `get_batch` only when the wrapped dataset has one, so DataLoader's fast path
        # stays available through a Subset (e.g. after random_split).
        if name == "get_batch" and hasattr(self.__dict__.get("dataset"), "get_batch"):
            return lambda indices: self.dataset.get_batch(
                np.asarray(self.indices, dtype=np.int64)[np.asarray(indices)]
            )
        raise AttributeError(name)


class ConcatDataset(Dataset):
    """Several datasets one after another."""

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = list(datasets)
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1] if self.cumulative_sizes else 0

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"ConcatDataset index {index} out of range for length {len(self)}")
        k = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = self.cumulative_sizes[k - 1] if k else 0
        return self.datasets[k][index - start]


def _split_lengths(n: int, lengths: Sequence[float]) -> list[int]:
    """Integer lengths; fractions are turned into counts the way PyTorch does it."""
    if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in lengths):
        lens = [int(x) for x in lengths]
        if sum(lens) != n or any(x < 0 for x in lens):
            raise ValueError(
                f"random_split: lengths {lens} must be non-negative and sum to the dataset "
                f"length {n}"
            )
        return lens
    fracs = [float(x) for x in lengths]
    if any(f < 0 or f > 1 for f in fracs) or not math.isclose(sum(fracs), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"random_split: fractions {fracs} must lie in [0, 1] and sum to 1 "
            "(or pass integer lengths that sum to len(dataset))"
        )
    lens = [int(math.floor(n * f)) for f in fracs]
    # Hand the remainder out one by one, round-robin, as torch.utils.data.random_split does.
    for i in range(n - sum(lens)):
        lens[i % len(lens)] += 1
    return lens


def random_split(
    dataset: Any, lengths: Sequence[float], generator: Generator | None = None
) -> list[Subset]:
    """Split a dataset into non-overlapping random subsets.

    Args:
        dataset: any map-style dataset.
        lengths: integer lengths summing to `len(dataset)`, or fractions summing to 1
            (e.g. `[0.9, 0.1]`; leftover items go round-robin to the first subsets).
        generator: a seeded `descent.Generator` for a reproducible split (default generator
            when None).

    Returns:
        One `Subset` per length.
    """
    n = len(dataset)
    lens = _split_lengths(n, lengths)
    perm = (generator or default_generator()).numpy_rng.permutation(n).tolist()  # Python ints
    out, start = [], 0
    for length in lens:
        out.append(Subset(dataset, perm[start : start + length]))
        start += length
    return out
