"""The rest of `torch.nn.Module`'s API, a mixin of `Module`: hook registration (forward with
PyTorch's keyword options, full backward, state-dict), extra state, and the small methods
(`get_buffer`, `set_submodule`, `to_empty`, `type`, `share_memory`, `compile`).

Kept apart from module.py, which holds the registries and the state dict itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from .module_hooks import add_hook

__all__ = ["ModuleExtras"]


class ModuleExtras:
    """Mixin of `Module` (which defines the hook dicts in `__init__`)."""

    # -- forward hooks ---------------------------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False):  # fmt: skip
        """Call `hook(module, args)` before `forward`; a non-None return replaces `args`.

        Args:
            prepend: run before the hooks already registered.
            with_kwargs: call `hook(module, args, kwargs)`, which returns None or a new
                `(args, kwargs)`.

        Returns:
            A handle whose `remove()` unregisters the hook.
        """
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False, always_call: bool = False):  # fmt: skip
        """Call `hook(module, args, output)` after `forward`; a non-None return replaces output.

        Args:
            prepend: run before the hooks already registered.
            with_kwargs: call `hook(module, args, kwargs, output)`.
            always_call: also run (with output None) when forward raises.

        Returns:
            A handle whose `remove()` unregisters the hook.
        """
        handle = self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)
        if always_call:
            self._forward_hooks_always_called.add(handle.id)
        return handle

    def _add_hook(self, hooks: dict, hook: Callable, prepend: bool, with_kwargs: bool = False):
        from .module import RemovableHandle  # noqa: PLC0415 - module.py imports this file

        handle = RemovableHandle(hooks, extra=(self._forward_hooks_with_kwargs,
                                               self._forward_hooks_always_called))  # fmt: skip
        add_hook(hooks, handle, hook, prepend)
        if with_kwargs:
            self._forward_hooks_with_kwargs.add(handle.id)
        return handle

    # -- backward hooks --------------------------------------------------------------------
    def register_full_backward_pre_hook(self, hook: Callable, prepend: bool = False):
        """Call `hook(module, grad_output)` when the gradients of the module's outputs are
        known; a non-None return (a tuple like grad_output) replaces them.

        Returns:
            A handle whose `remove()` unregisters the hook.
        """
        return self._add_hook(self._backward_pre_hooks, hook, prepend)

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False):
        """Call `hook(module, grad_input, grad_output)` when the gradients of the module's
        inputs are known; a non-None return (a tuple like grad_input) replaces them.

        grad_input has one entry per positional argument (None for non-tensors and tensors
        that need no gradient), grad_output one per tensor output. See nn/module_hooks.py.

        Returns:
            A handle whose `remove()` unregisters the hook.
        """
        if self._backward_hooks_kind == "old":
            raise RuntimeError(
                "Cannot use both regular backward hooks and full backward hooks on a single "
                "Module. Please use only one of them."
            )
        self._backward_hooks_kind = "full"
        return self._add_hook(self._backward_hooks, hook, prepend)

    def register_backward_hook(self, hook: Callable):
        """PyTorch's deprecated backward hook: here the full hook's behaviour (the form PyTorch
        recommends); warns as PyTorch's does when the module has several ops."""
        if self._backward_hooks_kind == "full":
            raise RuntimeError(
                "Cannot use both regular backward hooks and full backward hooks on a single "
                "Module. Please use only one of them."
            )
        warnings.warn(
            "register_backward_hook is deprecated (PyTorch): descent runs it as "
            "register_full_backward_hook, whose grad_input is the module's inputs' gradients",
            FutureWarning,
            stacklevel=2,
        )
        self._backward_hooks_kind = "old"
        return self._add_hook(self._backward_hooks, hook, False)

    # -- state-dict hooks ------------------------------------------------------------------
    def register_state_dict_pre_hook(self, hook: Callable):
        """Call `hook(module, prefix, keep_vars)` before this module's entries are written."""
        return self._add_hook(self._state_dict_pre_hooks, hook, False)

    def register_state_dict_post_hook(self, hook: Callable):
        """Call `hook(module, state_dict, prefix, local_metadata)` after this module's subtree
        is written; it edits state_dict in place (a non-None return is an error, as PyTorch)."""
        return self._add_hook(self._state_dict_hooks, hook, False)

    def register_load_state_dict_pre_hook(self, hook: Callable):
        """Call `hook(module, state_dict, prefix, local_metadata, strict, missing_keys,
        unexpected_keys, error_msgs)` before loading; it may rename or add keys of state_dict
        (e.g. an old checkpoint's names) and append messages to error_msgs (raised)."""
        return self._add_hook(self._load_state_dict_pre_hooks, hook, False)

    def register_load_state_dict_post_hook(self, hook: Callable):
        """Call `hook(module, incompatible_keys)` after loading; it may clear entries of
        incompatible_keys.missing_keys / unexpected_keys before the strict check."""
        return self._add_hook(self._load_state_dict_post_hooks, hook, False)

    # -- extra state -----------------------------------------------------------------------
    def get_extra_state(self) -> Any:
        """Override to save extra state under `<prefix>_extra_state` in state_dict (any value;
        `descent.save` stores tensors, arrays and JSON values, never pickles)."""
        raise RuntimeError(
            "Reached a code path in Module.get_extra_state() that should never be called: "
            "override get_extra_state and set_extra_state together"
        )

    def set_extra_state(self, state: Any) -> None:
        """Override to restore what `get_extra_state` returned."""
        raise RuntimeError(
            "Reached a code path in Module.set_extra_state() that should never be called: "
            "override get_extra_state and set_extra_state together"
        )

    def _has_extra_state(self) -> bool:
        return type(self).get_extra_state is not ModuleExtras.get_extra_state

    # -- small methods ---------------------------------------------------------------------
    def get_buffer(self, target: str):
        """The buffer at the dotted path `target` (torch.nn.Module.get_buffer)."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path) if path else self
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer `{name}`")
        return mod._buffers[name]

    def set_submodule(self, target: str, module, strict: bool = False) -> None:
        """Put `module` at the dotted path `target`; with strict, the name must exist."""
        from .module import Module  # noqa: PLC0415

        if target == "":
            raise ValueError("set_submodule: cannot set the submodule without a target name")
        if not isinstance(module, Module):
            raise ValueError(f"set_submodule: {type(module).__name__} is not a Module")
        path, _, name = target.rpartition(".")
        parent = self.get_submodule(path) if path else self
        if strict and name not in parent._modules:
            raise AttributeError(f"{type(parent).__name__} has no attribute `{name}`")
        if name in parent.__dict__ or name in parent._parameters or name in parent._buffers:
            raise AttributeError(f"`{name}` is not an nn.Module")
        setattr(parent, name, module)

    def share_memory(self):
        """PyTorch moves storages to shared memory for multiprocessing; descent's processes
        share nothing, so this returns the module unchanged."""
        return self

    def to_empty(self, *, device=None, recurse: bool = True):
        """Replace every parameter and buffer (and gradient) by an uninitialised one of the
        same shape and dtype on `device` (torch.nn.Module.to_empty): how a model built on the
        meta device gets storage, before `load_state_dict` or an initialisation fills it
        (docs/meta_device.md). The Parameter objects stay the same; `recurse=False` does this
        module's own tensors only."""
        from .. import empty  # noqa: PLC0415

        mods = self.modules() if recurse else [self]
        for mod in mods:
            for reg in (mod._parameters, mod._buffers):
                for t in reg.values():
                    if t is None:
                        continue
                    for holder in (t, t._grad):
                        if holder is not None:
                            new = empty(tuple(holder.shape), dtype=holder.dtype,
                                        device=device or holder.device)  # fmt: skip
                            holder._data = new._data
                            holder._version += 1
        return self

    def type(self, dst_type):
        """Cast every floating parameter and buffer to `dst_type` (a dtype or a legacy type)."""
        from ..tensor_methods import _legacy_dtype  # noqa: PLC0415

        return self.to(_legacy_dtype(dst_type))

    def compile(self, *args, **kwargs) -> None:
        """Compile this module's forward in place with `descent.compile` (torch's
        Module.compile); see docs/compile.md for what replays and what runs eagerly."""
        from .. import compiler  # noqa: PLC0415

        object.__setattr__(self, "forward", compiler.compile(self.forward, *args, **kwargs))
