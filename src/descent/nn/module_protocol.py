"""`torch.nn.Module`'s overridable protocol, a mixin of `Module`: `_save_to_state_dict`,
`_load_from_state_dict` and `_apply`, which libraries override to rename an old checkpoint's
keys, store derived entries, or move tensors that are neither parameters nor buffers on `.to()`
(torchvision, timm and Hugging Face models do all three); and the private hook registrations
`_register_state_dict_hook` / `_register_load_state_dict_pre_hook` that such code calls.

`Module.state_dict` writes each module's entries through `_save_to_state_dict`, and `.to()` /
`.float()` / `.cuda()` / ... go through `_apply(fn)`, child modules first, so an override runs
where PyTorch runs it. `load_state_dict` keeps descent's all-or-nothing path (every key checked
before anything is copied) unless a module of the tree overrides `_load_from_state_dict`
outside descent; then it follows PyTorch's protocol (module_state.py): each module's
`_load_from_state_dict` in `named_modules` order with strict=True, the post-hooks, then the
strict check. That path copies as it goes, as PyTorch's does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor

__all__ = ["ModuleProtocol"]

T_destination = TypeVar("T_destination", bound=dict)
EXTRA_STATE_KEY = "_extra_state"


class ModuleProtocol:
    """Mixin of `Module` (whose __init__ makes the registries and hook dicts)."""

    T_destination = T_destination
    dump_patches = False
    call_super_init = False

    # -- state dict ------------------------------------------------------------------------
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        """Write this module's own parameters, persistent buffers and extra state (not its
        children's) into `destination` under `prefix`; `state_dict` calls it per module.
        Override to add or rename entries (call super() for the defaults)."""
        for name, p in self._parameters.items():
            if p is not None:
                # Tensor._wrap(p.data): detached, sharing memory (PyTorch's p.detach())
                destination[prefix + name] = p if keep_vars else Tensor._wrap(p._data)
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else Tensor._wrap(b._data)
        if self._has_extra_state():
            destination[prefix + EXTRA_STATE_KEY] = self.get_extra_state()

    def _load_from_state_dict(self, state_dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:  # fmt: skip
        """Load this module's own parameters, persistent buffers and extra state from
        `state_dict` (PyTorch's per-module step of load_state_dict): runs this module's
        load_state_dict pre-hooks, copies (or assigns, when local_metadata says
        "assign_to_params_buffers") each value after descent's checks (shape, 'same_kind'
        dtype cast, meta), appends what it cannot load to `error_msgs`, and with `strict`
        records missing keys and the unexpected keys under `prefix` at this module's level.
        Override to rename an old checkpoint's keys, then call super()."""
        from .module_state import check_value, load_value  # noqa: PLC0415 - imports Module

        for hook in list(self._load_state_dict_pre_hooks.values()):
            hook(self, state_dict, prefix, local_metadata, strict, missing_keys,
                 unexpected_keys, error_msgs)  # fmt: skip
        assign = bool(local_metadata.get("assign_to_params_buffers", False))
        local: dict[str, tuple[str, Tensor]] = {}
        for name, p in self._parameters.items():
            if p is not None:
                local[name] = ("_parameters", p)
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                local[name] = ("_buffers", b)
        for name, (registry, target) in local.items():
            key = prefix + name
            if key not in state_dict:
                if strict:
                    missing_keys.append(key)
                continue
            arr, problem = check_value(key, registry, target, state_dict[key], assign)
            if problem is not None:
                error_msgs.append(problem)
                continue
            with no_grad():
                load_value(self, registry, name, target, arr, assign, state_dict[key])
        extra_key = prefix + EXTRA_STATE_KEY
        if self._has_set_extra_state():
            if extra_key in state_dict:
                self.set_extra_state(state_dict[extra_key])
            elif strict:
                missing_keys.append(extra_key)
        elif strict and extra_key in state_dict:
            unexpected_keys.append(extra_key)
        if strict:
            for key in state_dict:
                if key.startswith(prefix) and key != extra_key:
                    head, _, rest = key[len(prefix) :].partition(".")
                    if (rest and head not in self._modules) or (not rest and head not in local):
                        unexpected_keys.append(key)

    def _has_set_extra_state(self) -> bool:
        from .module_extras import ModuleExtras  # noqa: PLC0415

        return type(self).set_extra_state is not ModuleExtras.set_extra_state

    def _register_state_dict_hook(self, hook: Callable):
        """PyTorch's private form of register_state_dict_post_hook: `hook(module, state_dict,
        prefix, local_metadata)` after this module's subtree is written. Unlike the public form
        it may return a dict: on the module state_dict() was called on, that dict is returned
        instead (on a submodule the return is ignored, as in PyTorch)."""

        def private_hook(module, state_dict, prefix, local_metadata):
            return hook(module, state_dict, prefix, local_metadata)

        private_hook.may_return_state_dict = True
        return self.register_state_dict_post_hook(private_hook)

    def _register_load_state_dict_pre_hook(self, hook: Callable, with_module: bool = False):
        """PyTorch's private load pre-hook: `hook(state_dict, prefix, local_metadata, strict,
        missing_keys, unexpected_keys, error_msgs)`, or with the module first when
        `with_module` (the public register_load_state_dict_pre_hook's form)."""
        if with_module:
            return self.register_load_state_dict_pre_hook(hook)

        def without_module(module, *args):
            return hook(*args)

        return self.register_load_state_dict_pre_hook(without_module)

    # -- conversions -----------------------------------------------------------------------
    def _apply(self, fn: Callable[[Tensor], Any], recurse: bool = True):
        """Apply `fn` (a tensor -> tensor conversion) to every parameter, gradient and buffer:
        the children first (through their own `_apply`, so an override there runs), then this
        module's own. A Parameter keeps its identity (an optimizer built before `.to()` still
        updates it) and takes the converted values; so do buffers. Returns self. `.to()`,
        `.float()`, `.cuda()` ... call it; override to convert tensors the registries do not
        hold, then call super()."""
        if recurse:
            for child in self.children():
                child._apply(fn)
        from .. import __future__ as future  # noqa: PLC0415

        overwrite = (future.get_overwrite_module_params_on_conversion()
                     and not future.get_swap_module_params_on_conversion())  # fmt: skip
        with no_grad():
            for registry in (self._parameters, self._buffers):
                for key, t in list(registry.items()):
                    if t is None:
                        continue
                    if overwrite and registry is self._parameters:
                        # PyTorch's overwrite switch: a new Parameter (and gradient) object
                        registry[key] = _overwritten(t, fn)
                        continue
                    for holder in (t, t._grad):
                        if holder is None:
                            continue
                        new = fn(holder)
                        arr = new._data if isinstance(new, Tensor) else new
                        if arr is not holder._data:
                            holder._data = arr
                            holder._version += 1
        return self


def _overwritten(param, fn):
    """A new Parameter holding fn(param) (and fn(param.grad)), as PyTorch's `_apply` makes under
    `__future__.set_overwrite_module_params_on_conversion(True)`."""
    from .parameter import Parameter  # noqa: PLC0415

    def applied(t):
        new = fn(t)
        return Tensor._wrap(new._data if isinstance(new, Tensor) else new)

    out = Parameter(applied(param), requires_grad=param.requires_grad)
    if param.grad is not None:
        out.grad = applied(param.grad)
    return out


def conversion(device, dtype) -> Callable[[Tensor], Tensor]:
    """`.to(device, dtype)`'s function for `_apply`: floating and complex tensors (bfloat16
    too) take the dtype (a complex one cast to a real dtype keeps its real part), integer and
    bool ones keep theirs, as PyTorch's Module.to."""

    def convert(t: Tensor) -> Tensor:
        arr = t._data
        if dtype is not None and arr.dtype.kind in "fVc" and arr.dtype != dtype:
            if arr.dtype.kind == "c" and dtype.kind != "c":
                arr = arr.real  # PyTorch's cast discards the imaginary part (it warns)
            arr = arr.astype(dtype)
        if device is not None:
            arr = backend.to_device(arr, device)
        return t if arr is t._data else Tensor._wrap(arr)

    return convert
