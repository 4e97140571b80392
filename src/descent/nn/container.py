"""Containers: Sequential, ModuleList and ModuleDict, as in torch.nn.

A container is a Module whose children are registered under their position ("0", "1", ...) or
their key, so their parameters appear in `parameters()` and `state_dict()` with the same names
as in PyTorch (`layers.0.weight`). A plain Python list or dict of modules would hide them.
"""

from __future__ import annotations

import itertools
import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from .module import Module, _addindent

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


class Sequential(Module):
    """Modules applied one after another: `Sequential(Linear(4, 8), ReLU(), Linear(8, 1))`.

    Also takes an OrderedDict of name -> module. Supports `len`, indexing (`seq[0]`, `seq[-1]`),
    slicing (a new Sequential sharing the modules), iteration, `append`, `insert`, `extend`.
    """

    def __init__(self, *args: Module) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    def _index(self, idx: int) -> str:
        # Position -> registered name. Built from an OrderedDict, the names are the user's
        # keys, so the position is taken from the insertion order, not from the name.
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for {type(self).__name__} of length {n}")
        return list(self._modules)[idx % n]

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return self._modules[self._index(operator.index(idx))]

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(self._index(operator.index(idx)), module)

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)
        targets = keys[idx] if isinstance(idx, slice) else [self._index(operator.index(idx))]
        for key in targets:
            del self._modules[key]
        # Renumber so that indices stay 0..n-1 (PyTorch does the same).
        if all(k.isdigit() for k in self._modules):
            items = list(self._modules.values())
            self._modules.clear()
            for i, m in enumerate(items):
                self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        # Re-registers every module under its new position, so that the names (and the
        # state_dict keys "0.weight", "1.weight", ...) stay equal to the positions.
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"insert index {index} is out of range for length {n}")
        if index < 0:
            index += n
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)
        return self

    def pop(self, index: int = -1) -> Module:
        mod = self[index]
        del self[index]
        return mod

    # Arithmetic as in PyTorch: `a + b` and `a * 2` build a new Sequential of the SAME module
    # objects (shared, not copied) under fresh positional names "0", "1", ...; `+=` / `*=`
    # append to this one. `seq * 2` therefore applies the same weights twice.
    def __add__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(
                "add operator supports only objects of Sequential class, "
                f"but {type(other)} is given."
            )
        return Sequential(*self, *other)

    def __iadd__(self, other: Sequential) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(
                "add operator supports only objects of Sequential class, "
                f"but {type(other)} is given."
            )
        offset = len(self)
        for i, module in enumerate(list(other)):
            self.add_module(str(i + offset), module)
        return self

    def _check_factor(self, other) -> int:
        if not isinstance(other, int):
            raise TypeError(f"unsupported operand type(s) for *: {type(self)} and {type(other)}")
        if other <= 0:
            raise ValueError(f"Non-positive multiplication factor {other} for {type(self)}")
        return other

    def __mul__(self, other: int) -> Sequential:
        n = self._check_factor(other)
        return Sequential(*(list(self) * n))

    __rmul__ = __mul__

    def __imul__(self, other: int) -> Sequential:
        n = self._check_factor(other)
        modules = list(self)
        offset = len(self)
        for _ in range(n - 1):
            for i, module in enumerate(modules):
                self.add_module(str(i + offset), module)
            offset += len(modules)
        return self

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(Module):
    """A list of modules whose parameters are registered (a plain Python list hides them)."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _index(self, idx: int) -> str:
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"index {idx} is out of range for ModuleList of length {n}")
        return str(idx % n)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return ModuleList(list(self._modules.values())[idx])
        return self._modules[self._index(operator.index(idx))]

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(self._index(operator.index(idx)), module)

    def __delitem__(self, idx) -> None:
        # Names are positions: renumber after a deletion, as PyTorch, so state_dict keys stay
        # "0.", "1.", ... and match a ModuleList built fresh with the remaining modules.
        items = list(self._modules.values())
        if isinstance(idx, slice):
            del items[idx]
        else:
            del items[int(self._index(operator.index(idx)))]
        self._modules.clear()
        for i, m in enumerate(items):
            self._modules[str(i)] = m

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(itertools.chain(self, other))

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if not isinstance(modules, Iterable):
            raise TypeError(f"ModuleList.extend expects an iterable, got {type(modules).__name__}")
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def __repr__(self) -> str:
        # PyTorch's compact form: runs of identical children print once, "(0-5): 6 x Block(...)".
        reprs = [repr(m) for m in self]
        if not reprs:
            return self._get_name() + "()"
        runs: list[list] = []  # [start, end, repr]
        for i, r in enumerate(reprs):
            if runs and runs[-1][2] == r:
                runs[-1][1] = i
            else:
                runs.append([i, i, r])
        lines = []
        for start, end, r in runs:
            head = f"({start})" if start == end else f"({start}-{end}): {end - start + 1} x"
            lines.append(_addindent(f"{head}: {r}" if start == end else f"{head} {r}", 2))
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            "ModuleList has no forward: iterate over it (`for layer in self.layers: x = layer(x)`)"
        )


class ModuleDict(Module):
    """A dict of modules whose parameters are registered; keeps insertion order."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: str) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        mod = self._modules[key]
        del self[key]
        return mod

    def update(self, modules: Mapping[str, Module] | Iterable) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in pairs:
            self[key] = module

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleDict has no forward: index it by name and call the module")
