"""torch.nn.modules.utils: the argument helpers custom layers import (`from
torch.nn.modules.utils import _pair` in deformable / coordinate convolutions and the like)."""

from __future__ import annotations

import collections.abc
from itertools import repeat
from typing import Any

__all__ = ["_ntuple", "_single", "_pair", "_triple", "_quadruple", "_reverse_repeat_tuple",
           "_list_with_default", "consume_prefix_in_state_dict_if_present"]  # fmt: skip


def _ntuple(n: int, name: str = "parse"):
    """A parser: an iterable becomes a tuple of its items, anything else n copies of itself."""

    def parse(x):
        if isinstance(x, collections.abc.Iterable):
            return tuple(x)
        return tuple(repeat(x, n))

    parse.__name__ = name
    return parse


_single = _ntuple(1, "_single")
_pair = _ntuple(2, "_pair")
_triple = _ntuple(3, "_triple")
_quadruple = _ntuple(4, "_quadruple")


def _reverse_repeat_tuple(t, n: int) -> tuple:
    """(a, b) -> (b, b, a, a) for n = 2: F.pad's order from per-dimension paddings."""
    return tuple(x for x in reversed(t) for _ in range(n))


def _list_with_default(out_size, defaults) -> list[Any]:
    """adaptive pooling's output size with None entries taken from `defaults` (the input's
    trailing sizes)."""
    if isinstance(out_size, int):
        return [out_size]
    if len(defaults) <= len(out_size):
        raise ValueError(f"Input dimension should be at least {len(out_size) + 1}")
    tail = defaults[-len(out_size) :]
    return [v if v is not None else d for v, d in zip(out_size, tail)]


def consume_prefix_in_state_dict_if_present(state_dict: dict, prefix: str) -> None:
    """Strip `prefix` from every key of `state_dict` that starts with it, in place (the
    "module." that DistributedDataParallel / DataParallel put in front of every key).

    Keys keep their relative order (each renamed key moves to the end, as in PyTorch). The
    `_metadata` versions are renamed too: "module.layer" -> "layer", and the wrapped model's own
    entry "module" becomes the root entry "" (replacing the wrapper's)."""
    if not isinstance(prefix, str):
        raise TypeError(
            f"consume_prefix_in_state_dict_if_present: prefix must be a str, got "
            f"{type(prefix).__name__}"
        )
    for key in list(state_dict.keys()):
        if key.startswith(prefix):
            state_dict[key[len(prefix) :]] = state_dict.pop(key)
    metadata = getattr(state_dict, "_metadata", None)
    if metadata is None:
        return
    bare = prefix.replace(".", "")
    for key in list(metadata.keys()):
        if key and (key == bare or key.startswith(prefix)):
            metadata[key[len(prefix) :]] = metadata.pop(key)
