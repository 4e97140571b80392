"""torch.serialization.add_safe_globals for descent: classes and functions *you* allow.

By default a torch.save file can only make what checkpoint_torch_objects' fixed allow-list
builds (tensors, containers, numbers, NumPy numerics). A checkpoint that also holds, say, an
`argparse.Namespace` of hyperparameters or an Enum is refused with the global's name. As in
PyTorch, you may then allow that global yourself:

    descent.serialization.add_safe_globals([argparse.Namespace])
    with descent.serialization.safe_globals([MyConfig]): ...

From then on, and only for those objects, descent does what torch's weights_only unpickler does:
NEWOBJ makes `cls.__new__(cls, *args)`, REDUCE calls `obj(*args)`, BUILD calls the instance's
`__setstate__` or updates its `__dict__`/slots. That runs code you chose (the class's `__new__`,
`__init__`, `__setstate__`), never code the file names, like importing your own module. Modules
that run programs or code (os, sys, subprocess, builtins' eval/exec...) cannot be allowed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from .checkpoint_pickle import Builder

# Allowing anything from these would let a file run programs or code: refused at registration.
_BLOCKED_MODULES = {"os", "posix", "nt", "sys", "subprocess", "shutil", "importlib", "runpy",
                    "pty", "socket", "ctypes", "code", "codeop", "pickle", "marshal",
                    "webbrowser", "multiprocessing", "threading", "signal"}  # fmt: skip
_BLOCKED_BUILTINS = {"eval", "exec", "compile", "open", "getattr", "setattr", "delattr",
                     "__import__", "globals", "locals", "vars", "breakpoint", "input"}  # fmt: skip

_user: dict[str, Any] = {}  # "module.qualname" -> the class or function the user allowed


def _entry(item: Any) -> tuple[str, Any]:
    if isinstance(item, tuple):
        if len(item) != 2 or not isinstance(item[1], str):
            raise TypeError(f"add_safe_globals: {item!r} is not (object, 'module.name')")
        obj, name = item
    else:
        obj = item
        name = f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}"
    if not callable(obj):
        raise TypeError(f"add_safe_globals: {obj!r} is not a class or function")
    module = name.rsplit(".", 1)[0]
    if module.split(".")[0] in _BLOCKED_MODULES or (
        module == "builtins" and name.rsplit(".", 1)[1] in _BLOCKED_BUILTINS
    ):
        raise ValueError(
            f"add_safe_globals: {name} can run programs or code; descent does not allow it "
            "from a file, even on request"
        )
    return name, obj


def add_safe_globals(safe_globals: Iterable[Any]) -> None:
    """Allow these classes/functions (or (object, "module.name") pairs) in torch.save files.

    Raises:
        TypeError: an item is not callable or not a valid pair.
        ValueError: an item comes from a module that runs programs or code (os, sys,
            subprocess, builtins.eval, ...).
    """
    entries = [_entry(item) for item in safe_globals]  # all checked before any is added
    _user.update(entries)


def get_safe_globals() -> list[Any]:
    """The globals added with add_safe_globals (descent's own allow-list not included)."""
    return list(_user.values())


def clear_safe_globals() -> None:
    """Forget every global added with add_safe_globals."""
    _user.clear()


@contextlib.contextmanager
def safe_globals(globals_: Iterable[Any]) -> Iterator[None]:
    """`with safe_globals([...]):` add_safe_globals for the block only."""
    before = dict(_user)
    add_safe_globals(globals_)
    try:
        yield
    finally:
        _user.clear()
        _user.update(before)


def user_global(full: str) -> Builder | None:
    """The Builder for a user-allowed global, or None: REDUCE calls it; for a class, NEWOBJ
    calls `cls.__new__(cls, *args)`, as pickle and torch do."""
    obj = _user.get(full)
    if obj is None:
        return None
    if isinstance(obj, type):
        return Builder(full, obj, newobj=True, new=lambda *a, **k: obj.__new__(obj, *a, **k))
    return Builder(full, obj)


def build_user(inst: Any, state: Any) -> bool:
    """BUILD on an instance of a user-allowed class (pickle's load_build); False otherwise."""
    if type(inst) not in _user.values():
        return False
    setstate = getattr(inst, "__setstate__", None)
    if setstate is not None:
        setstate(state)
        return True
    slots = None
    if isinstance(state, tuple) and len(state) == 2:
        state, slots = state
    if state:
        inst.__dict__.update(state)
    for k, v in (slots or {}).items():
        setattr(inst, k, v)
    return True
