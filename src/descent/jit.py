"""`torch.jit`'s names, so that PyTorch programs that script or trace run unchanged.

TorchScript compiles Python to a serialisable graph language; descent has no such language.
Here `script` and `trace` return what they are given (functions, modules and classes run as
the Python they are, eagerly, with the same results), the decorators (`ignore`, `unused`,
`export`, `interface`) leave their functions alone, `is_scripting()`/`is_tracing()` are False,
and `fork`/`wait` run the call at once. Code under `if torch.jit.is_scripting():` therefore
takes the eager branch, as in PyTorch's eager and traced runs (a scripted PyTorch module takes
the other). For speed, `descent.compile` records and replays a
training step (docs/compile.md). TorchScript archives (`jit.save`, `jit.load`) are refused:
they hold code, and descent never loads code from a file (save a `state_dict` with
`descent.save` instead).
"""

from __future__ import annotations

import builtins as _builtins
import types as _types
import typing as _typing
import warnings
from typing import Any as _Any  # noqa: F401 - torch.jit.Final
from typing import Final

from .nn.module import Module as _Module

__all__ = [
    "Attribute", "Error", "Final", "Future", "ScriptFunction", "ScriptModule", "annotate",
    "enable_onednn_fusion", "isinstance",
    "export", "fork", "freeze", "ignore", "interface", "is_scripting", "is_tracing", "load",
    "optimize_for_inference", "save", "script", "script_if_tracing", "script_method",
    "set_fusion_strategy", "trace", "trace_module", "unused", "wait",
]  # fmt: skip


class ScriptModule(_Module):
    """torch.jit.ScriptModule's name (for isinstance checks and subclassing); descent's
    `script` returns the module itself, never an instance of this class."""


class ScriptFunction:
    """torch.jit.ScriptFunction's name; `script` returns the function itself."""


def script(obj, optimize=None, _frames_up: int = 0, _rcb=None, example_inputs=None):
    """Return `obj` unchanged (a function, Module or class): it runs eagerly as Python."""
    return obj


def trace(func, example_inputs=None, *args, **kwargs):
    """Return `func` unchanged; unlike TorchScript's trace, data-dependent control flow keeps
    working (the Python runs every call)."""
    return func


def trace_module(mod, inputs=None, *args, **kwargs):
    """Return `mod` unchanged (see `trace`)."""
    return mod


def script_method(fn):
    """`@torch.jit.script_method` on a `torch.jit.ScriptModule` subclass's method (the pre-1.2
    API, still in RWKV_in_150_lines.py and other inference scripts): the method runs eagerly
    as Python, like `script` (PyTorch compiles it when the module is constructed)."""
    return fn


def script_if_tracing(fn):
    """Return `fn` unchanged."""
    return fn


def _decorator(fn=None, **_options):
    # @ignore and @ignore(drop=True) both leave the function as it is.
    if fn is None or not callable(fn):
        return lambda f: f
    return fn


def ignore(drop=False, **kwargs):
    """`@torch.jit.ignore` / `@torch.jit.ignore(drop=True)`: the function is left alone."""
    return _decorator(drop if callable(drop) else None)


def unused(fn):
    """`@torch.jit.unused`: the function is left alone."""
    return fn


def export(fn):
    """`@torch.jit.export`: the method is left alone."""
    return fn


def interface(obj):
    """`@torch.jit.interface`: the class is left alone."""
    return obj


def is_scripting() -> bool:
    """False: descent never runs code as TorchScript."""
    return False


def is_tracing() -> bool:
    """False: descent never traces as TorchScript does."""
    return False


def annotate(the_type, the_value):
    """Return the value (TorchScript's type hint for an expression)."""
    return the_value


def Attribute(value, type=None):  # noqa: N802 - torch's name
    """Return the value (TorchScript's attribute type hint)."""
    return value


class Error(RuntimeError):
    """torch.jit.Error (TorchScript's exception type, a RuntimeError): code run eagerly raises
    Python's own exceptions, so `except torch.jit.Error` catches what it catches in PyTorch's
    eager runs."""


# Container types that torch.jit.isinstance refuses without element types (typing's by name)
_BARE = {list: "list", dict: "dict", tuple: "tuple"} | {
    getattr(_typing, n): n for n in ("List", "Dict", "Tuple", "Optional")
}


def isinstance(obj, target_type) -> bool:  # noqa: A001 - torch.jit.isinstance
    """`torch.jit.isinstance(obj, List[Tensor])`: Python's isinstance that also checks the
    element types of List / Dict / Tuple / Optional / Union annotations, recursively (an
    empty container matches, with PyTorch's warning that its element types are unknown)."""
    if _builtins.isinstance(target_type, tuple):
        return any(isinstance(obj, t) for t in target_type)
    name = _BARE.get(target_type) if _builtins.isinstance(target_type, _typing.Hashable) else None
    if name is not None:  # PyTorch's check_args_exist
        example = f"{name}[int, int]" if name.lower() == "dict" else f"{name}[int]"
        raise RuntimeError(f"Attempted to use {name} without a contained type. Please add a "
                           f"contained type, e.g. {example}")  # fmt: skip
    origin, args = _typing.get_origin(target_type), _typing.get_args(target_type)
    if origin is None:
        return _builtins.isinstance(obj, target_type)
    if origin in (_typing.Union, _types.UnionType):  # Optional[T] is Union[T, None]
        return any(obj is None if t is type(None) else isinstance(obj, t) for t in args)
    if not args:
        raise RuntimeError(f"torch.jit.isinstance: {target_type} needs its element types, "
                           "e.g. List[Tensor]")  # fmt: skip
    if origin not in (list, dict, tuple) or not _builtins.isinstance(obj, origin):
        return False
    if not obj:
        warnings.warn(
            "The inner type of a container is lost when calling torch.jit.isinstance in eager "
            "mode. For example, List[int] would become list and therefore falsely return True "
            "for List[float] or List[str].",
            stacklevel=2,
        )
    if origin is list:
        return all(isinstance(v, args[0]) for v in obj)
    if origin is dict:
        return all(isinstance(k, args[0]) and isinstance(v, args[1]) for k, v in obj.items())
    return len(obj) == len(args) and all(isinstance(v, t) for v, t in zip(obj, args))


class _Future:
    __slots__ = ("_value",)

    def __init__(self, value) -> None:
        self._value = value

    def wait(self):
        return self._value

    def value(self):
        return self._value

    def done(self) -> bool:
        return True


Future = _Future  # torch.jit.Future: what fork returns (its wait() gives the value)


def fork(func, *args, **kwargs) -> _Future:
    """Run `func(*args, **kwargs)` now and return a future holding its result."""
    return _Future(func(*args, **kwargs))


def wait(future: _Future) -> _Any:
    """The result of a `fork`."""
    return future.wait()


def freeze(mod, preserved_attrs=None, optimize_numerics: bool = True):
    """Return `mod` unchanged (TorchScript's freezing has nothing to fold here)."""
    return mod


def optimize_for_inference(mod, other_methods=None):
    """Return `mod` unchanged."""
    return mod


def enable_onednn_fusion(enabled: bool) -> None:
    """Accepted; nothing to switch."""


def set_fusion_strategy(strategy) -> list:
    """Accepted; returns the previous strategy as PyTorch does (here always empty)."""
    return []


def save(m, f, _extra_files=None) -> None:
    raise RuntimeError(
        "descent.jit.save: TorchScript archives hold code, which descent never writes or "
        "loads; save the weights instead: descent.save(model.state_dict(), path)"
    )


def load(f, map_location=None, _extra_files=None):
    raise RuntimeError(
        "descent.jit.load: TorchScript archives hold code, which descent never loads from a "
        "file; rebuild the model in Python and load its weights with descent.load(path)"
    )
