"""`Module.parameters()`'s walk: the parameters `named_parameters()` yields, without the dotted
names it builds for every module and parameter and `parameters()` drops.

A training loop calls `clip_grad_norm_(model.parameters(), ...)` every step (nanoGPT's does):
the named walk spent ~130 us of baby-gpt's eager step on names (57 modules, 27 parameters), as
long as PyTorch's; this one takes ~40. `Module.parameters` uses it while the module's class
keeps `Module`'s named_parameters, _named_members and named_modules (an override of any of them
is honoured through the named walk).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def walk_parameters(root) -> Iterator[Any]:
    """The parameters of `root` and its descendants, each once, in `named_parameters()`'s order:
    the modules depth first, each once (children in registration order), each module's
    registered parameters in order, a parameter shared by two modules at its first place. Lazy,
    as the named walk."""
    memo: set[int] = set()  # ids of the modules visited (all alive for the whole walk)
    seen: set[int] = set()  # ids of the parameters yielded
    stack = [root]
    while stack:
        mod = stack.pop()
        if id(mod) in memo:
            continue
        memo.add(id(mod))
        params = mod._parameters
        if params:
            for p in params.values():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield p
        kids = mod._modules  # (read after the parameters were yielded, as the named walk)
        if kids:
            stack += [m for m in reversed(kids.values()) if m is not None]
