"""`default_collate` and `default_convert`: torch.utils.data's rules for making a batch.

PyTorch's rules, which differ from descent.data.default_collate on purpose (this module holds
the PyTorch names, and PyTorch's meaning wins on them):

* Tensors are stacked along a new first axis, in their dtype.
* NumPy arrays and NumPy scalars become Tensors of their own dtype (float64 stays float64).
* Python floats become a float64 Tensor, ints an int64 Tensor, bools a bool Tensor.
* Strings and bytes stay as they are (the list, or the tuple of a transposed field).
* Mappings are collated key by key; a namedtuple stays that namedtuple; any other sequence
  (tuple or list) is transposed and becomes a *list* of batches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ... import backend
from ...tensor import Tensor

__all__ = ["default_collate", "default_convert"]


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch with torch.utils.data.default_collate's rules.

    Raises:
        TypeError: for samples of a type it cannot batch (pass `collate_fn=` to the DataLoader).
        RuntimeError: when tensors or sequences in one field have different shapes or lengths.
    """
    if len(batch) == 0:
        raise ValueError("default_collate: got an empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        shapes = {tuple(b.shape) for b in batch}
        if len(shapes) != 1:
            raise RuntimeError(
                f"default_collate: stack expects each tensor to be equal size, got shapes "
                f"{sorted(shapes)}; pad the samples or pass collate_fn= to the DataLoader"
            )
        arrays = [b._data for b in batch]
        return Tensor._wrap(backend.get_array_module(*arrays).stack(arrays))  # (B, ...)
    if isinstance(elem, np.ndarray) and elem.dtype.kind not in "USO":
        return default_collate([Tensor._wrap(np.asarray(b)) for b in batch])
    if isinstance(elem, np.generic) and elem.dtype.kind not in "USO":
        return Tensor._wrap(np.asarray(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return Tensor._wrap(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, float):
        return Tensor._wrap(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, int):
        return Tensor._wrap(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, (str, bytes)):
        return batch  # as given (a tuple when it comes from transposing a sequence field)
    if isinstance(elem, Mapping):
        out = {k: default_collate([d[k] for d in batch]) for k in elem}
        try:
            return out if type(elem) is dict else type(elem)(out)  # OrderedDict etc. kept
        except TypeError:
            return out
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(s) for s in zip(*batch, strict=True)))
    if isinstance(elem, Sequence):
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise RuntimeError(
                "default_collate: each element in list of batch should be of equal size"
            )
        return [default_collate(s) for s in zip(*batch, strict=True)]
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}. Pass collate_fn= to the DataLoader"
    )


def default_convert(data: Any) -> Any:
    """What a DataLoader with `batch_size=None` applies to each sample: NumPy arrays become
    Tensors (keeping their dtype), containers are converted element by element, the rest stays."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray) and data.dtype.kind not in "USO":
        return Tensor._wrap(data)
    if isinstance(data, np.generic) and data.dtype.kind not in "USO":
        return Tensor._wrap(np.asarray(data))
    if isinstance(data, Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data
