"""Names of callables as fx prints them and as the generated code calls them.

PyTorch prints a function by its public path (`torch.relu`, `torch.nn.functional.relu`,
`operator.add`, `builtins.getattr`). descent's functions live in implementation modules
(`descent.ops.activation.relu`), so the public path is looked up in a table built once from
the namespaces a user calls them through: `descent`, `descent.nn.functional`, `descent.linalg`,
`descent.special`, `descent.fft` (the first namespace that holds an object names it).
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import types

# (public prefix, module path) in the order that decides which name an object shared by two
# namespaces gets: the top level first, as `torch.relu` is printed so by torch.
NAMESPACES = (
    ("descent", "descent"),
    ("descent.nn.functional", "descent.nn.functional"),
    ("descent.linalg", "descent.linalg"),
    ("descent.special", "descent.special"),
    ("descent.fft", "descent.fft"),
)

_table: dict[int, tuple[str, object]] | None = None  # id(obj) -> (public path, obj)
_entries: list[tuple[types.ModuleType, str, object, str]] | None = None


def is_wrappable(obj: object) -> bool:
    """A public function of a descent namespace (not a class, a module or a dtype)."""
    return isinstance(
        obj, (types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    ) and not inspect.isclass(obj)


def public_callables() -> list[tuple[types.ModuleType, str, object, str]]:
    """Every (namespace module, name, function, public path) of the wrapped namespaces.

    Computed once, when no tracer has replaced anything (the tracer calls this before it
    patches), so the functions recorded are the originals."""
    global _entries, _table
    if _entries is None:
        entries = []
        table: dict[int, tuple[str, object]] = {}
        for prefix, path in NAMESPACES:
            module = importlib.import_module(path)
            for name, obj in list(vars(module).items()):
                # private names only at the top level (descent._assert is torch._assert); a
                # submodule's are its own imports (descent.fft's as_tensor helper)
                private = name.startswith("__") or (name.startswith("_") and prefix != "descent")
                if private or not is_wrappable(obj):
                    continue
                if getattr(obj, "__fx_wrapper_of__", None) is not None:
                    continue  # a tracer is running (nested trace): never record a wrapper
                public = f"{prefix}.{name}"
                entries.append((module, name, obj, public))
                table.setdefault(id(obj), (public, obj))
        _entries, _table = entries, table
    return _entries


def public_name(func) -> str | None:
    """The last component of `func`'s public path (`cat` for descent.concatenate's object,
    which descent.cat also names), or None for a function outside descent's namespaces."""
    public_callables()
    entry = _table.get(id(func))  # type: ignore[union-attr]
    if entry is not None and entry[1] is func:
        return entry[0].rsplit(".", 1)[1]
    return None


def qualified_name(func) -> str:
    """torch.fx's `_get_qualified_name`: `getattr`, `descent.relu`, `mymodule.myfn`."""
    name = getattr(func, "__name__", None)
    if name is None:
        raise RuntimeError(f"cannot name {func!r}: it has no __name__")
    if getattr(builtins, name, None) is func:
        return name
    public_callables()
    entry = _table.get(id(func))  # type: ignore[union-attr]
    if entry is not None and entry[1] is func:
        return entry[0]
    if name == "<lambda>":
        try:
            name = inspect.getsource(func).split("=")[0].strip()
        except Exception as e:  # noqa: BLE001  (torch raises the same RuntimeError)
            raise RuntimeError("Unable to represent lambda") from e
    module = getattr(func, "__module__", None) or "builtins"
    return f"{module}.{name}"  # `_operator.abs` for operator.abs, as torch names it


def pretty_target(target) -> str:
    """torch.fx's `Node._pretty_print_target`: `builtins.getattr`, `operator.add`, names."""
    if isinstance(target, str):
        return target
    module = getattr(target, "__module__", None)
    name = getattr(target, "__name__", None)
    if name is not None and module == "builtins":
        return f"builtins.{name}"
    if name is not None and module == "_operator":
        return f"operator.{name}"
    return qualified_name(target)
