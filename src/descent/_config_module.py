"""Config modules in the manner of PyTorch's (`torch._dynamo.config`, `torch._inductor.config`).

A config module is a Python module whose attributes are a fixed set of settings with defaults:
reading or setting a name that is not one of them raises AttributeError ("... does not exist"),
as PyTorch's do, so a typo in a script is an error rather than a silently ignored setting.
Sections (`config.triton.cudagraphs`) work the same way. `patch(**changes)` is a context manager
and decorator that sets values and puts the old ones back; `get_config_copy()` returns a dict.
Some names are aliases of others (`cache_size_limit` of `recompile_limit`): both read and write
one value.
"""

from __future__ import annotations

import contextlib
import sys
import types
from typing import Any


class _Settings:
    """The checked attribute store behind a config module or one of its sections."""

    def __init__(self, prefix: str, defaults: dict[str, Any], aliases: dict[str, str]) -> None:
        values, sections = {}, {}
        for name, value in defaults.items():
            if isinstance(value, dict):
                sections[name] = _Section(f"{prefix}.{name}", value)
            else:
                values[name] = value
        object.__setattr__(self, "_prefix", prefix)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_sections", sections)
        object.__setattr__(self, "_aliases", dict(aliases))

    def _name(self, name: str) -> str:
        name = self._aliases.get(name, name)
        if name not in self._values and name not in self._sections:
            raise AttributeError(f"{self._prefix}.{name} does not exist")
        return name

    def get(self, name: str) -> Any:
        name = self._name(name)
        return self._sections[name] if name in self._sections else self._values[name]

    def set(self, name: str, value: Any) -> None:
        name = self._name(name)
        if name in self._sections:
            raise AttributeError(f"{self._prefix}.{name} is a section; set its fields instead")
        self._values[name] = value

    def copy(self) -> dict[str, Any]:
        out = dict(self._values)
        for name, section in self._sections.items():
            out.update({f"{name}.{k}": v for k, v in section._settings.copy().items()})
        return out


class _Section:
    """A group of settings inside a config module (`config.triton`)."""

    def __init__(self, prefix: str, defaults: dict[str, Any]) -> None:
        object.__setattr__(self, "_settings", _Settings(prefix, defaults, {}))

    def __getattr__(self, name: str) -> Any:
        return self._settings.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._settings.set(name, value)

    def __repr__(self) -> str:
        return f"<config section {self._settings._prefix}>"


class ConfigModule(types.ModuleType):
    """The module type of a config module (see the module docstring)."""

    _settings: _Settings

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._settings.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") and name in self.__dict__ or name.startswith("__"):
            object.__setattr__(self, name, value)
            return
        self._settings.set(name, value)

    def get_config_copy(self) -> dict[str, Any]:
        """Every setting's current value ("section.name" for a section's)."""
        return self._settings.copy()

    def patch(self, arg: dict[str, Any] | str | None = None, value: Any = None, **changes: Any):
        """Set values for a `with` block or a decorated function, then restore them.

        `patch(name=value, ...)`, `patch({"name": value})` or `patch("name", value)`; a
        section's field is "section.field".
        """
        if isinstance(arg, dict):
            changes = {**arg, **changes}
        elif isinstance(arg, str):
            changes = {arg: value, **changes}
        return _Patch(self, changes)


class _Patch(contextlib.ContextDecorator):
    def __init__(self, module: ConfigModule, changes: dict[str, Any]) -> None:
        self.module, self.changes, self.saved = module, changes, []

    def _target(self, dotted: str):
        owner, _, name = dotted.rpartition(".")
        obj = self.module
        for part in owner.split(".") if owner else ():
            obj = getattr(obj, part)
        return obj, name

    def __enter__(self):
        saved = []
        for dotted, value in self.changes.items():
            obj, name = self._target(dotted)
            saved.append((obj, name, getattr(obj, name)))
            setattr(obj, name, value)
        self.saved.append(saved)
        return self

    def __exit__(self, *exc) -> bool:
        for obj, name, old in reversed(self.saved.pop()):
            setattr(obj, name, old)
        return False


def install_config_module(module_name: str, defaults: dict[str, Any],
                          aliases: dict[str, str] | None = None) -> None:  # fmt: skip
    """Turn the module `module_name` (being imported) into a config module over `defaults`
    (a dict value is a section); `aliases` maps other names onto settings."""
    module = sys.modules[module_name]
    settings = _Settings(module_name, defaults, aliases or {})
    module.__class__ = ConfigModule
    object.__setattr__(module, "_settings", settings)
