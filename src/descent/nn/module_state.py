"""`Module.load_state_dict`: check everything, then copy (or assign), with PyTorch's
load_state_dict pre- and post-hooks and extra state (`set_extra_state`).

Order, as PyTorch's: the pre-hooks run first, module by module in `named_modules` order, on a
copy of the mapping (so they may rename keys of an old checkpoint); then every key is checked
(shape, dtype cast rule, missing and unexpected keys, the pre-hooks' error messages); nothing
is copied when a check fails. Without post-hooks a strict key error also raises before any
copy; with them the values are copied, the post-hooks may clear entries of the missing and
unexpected lists, and the strict check runs after them, as in PyTorch.

Batch and instance norms that track running statistics accept a checkpoint without
`num_batches_tracked` (saved before PyTorch 0.4.1, or written by a converter): as PyTorch's
`_NormBase._load_from_state_dict`, the key is filled with the module's current count when the
checkpoint's metadata says nothing (a plain dict) or gives a version below 2.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..meta import NO_DATA
from ..tensor import Tensor

__all__ = ["load_state_dict"]


def _targets(module):
    """key -> (owner module, registry name, attribute name, tensor); and extra-state keys."""
    out: OrderedDict = OrderedDict()
    extra: OrderedDict = OrderedDict()
    for mod_prefix, mod in module.named_modules(remove_duplicate=False):
        head = f"{mod_prefix}." if mod_prefix else ""
        for name, p in mod._parameters.items():
            if p is not None:
                out[head + name] = (mod, "_parameters", name, p)
        for name, b in mod._buffers.items():
            if b is not None and name not in mod._non_persistent_buffers:
                out[head + name] = (mod, "_buffers", name, b)
        if type(mod).set_extra_state is not _base_set_extra_state():
            extra[head + "_extra_state"] = mod
    return out, extra


def _base_set_extra_state():
    from .module_extras import ModuleExtras  # noqa: PLC0415

    return ModuleExtras.set_extra_state


def _quote(keys: list[str]) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def _run_pre_hooks(module, state_dict, strict, missing, unexpected, errors):
    metadata = getattr(state_dict, "_metadata", None) or {}
    for mod_prefix, mod in module.named_modules(remove_duplicate=False):
        if not mod._load_state_dict_pre_hooks:
            continue
        head = f"{mod_prefix}." if mod_prefix else ""
        local = metadata.get(mod_prefix, {})
        for hook in list(mod._load_state_dict_pre_hooks.values()):
            hook(mod, state_dict, head, local, strict, missing, unexpected, errors)


def _fill_num_batches_tracked(module, state_dict) -> None:
    """The norm layers' version-2 rule (see the module docstring), on the copy being loaded."""
    from .normalization import _NormBase  # noqa: PLC0415

    metadata = getattr(state_dict, "_metadata", None) or {}
    for mod_prefix, mod in module.named_modules(remove_duplicate=False):
        if not isinstance(mod, _NormBase) or not mod.track_running_stats:
            continue
        version = metadata.get(mod_prefix, {}).get("version")
        key = f"{mod_prefix}.num_batches_tracked" if mod_prefix else "num_batches_tracked"
        if (version is None or version < 2) and key not in state_dict:
            count = getattr(mod, "num_batches_tracked", None)
            state_dict[key] = count if count is not None else np.zeros((), np.int64)


def _needs_copy(module) -> tuple[bool, bool]:
    """(any load pre-hooks, any norm layer that may need num_batches_tracked filled)."""
    from .normalization import _NormBase  # noqa: PLC0415

    hooks = norms = False
    for m in module.modules():
        hooks = hooks or bool(m._load_state_dict_pre_hooks)
        norms = norms or (isinstance(m, _NormBase) and m.track_running_stats)
    return hooks, norms


def check_value(key: str, registry: str, target, value, assign: bool):
    """(the value as an array, None) when `value` may be loaded into `target` under `key`,
    else (None, PyTorch's message). Warns for a non-meta value into a meta target (a no-op)."""
    arr = value._data if isinstance(value, Tensor) else value
    if not backend.is_cupy_array(arr) and not backend.is_meta(arr):
        arr = np.asarray(arr)
    if arr.ndim == 1 and arr.shape[0] == 1 and target.ndim == 0:
        arr = arr.reshape(())  # PyTorch 0.3 checkpoints saved scalars as (1,): as PyTorch
    if tuple(arr.shape) != tuple(target.shape):
        return None, (
            f"size mismatch for {key}: copying a param with shape {tuple(arr.shape)} "
            f"from checkpoint, the shape in current model is {tuple(target.shape)}."
        )
    if assign:
        # assign=True keeps the value's own dtype (PyTorch's rule: the state dict's tensor
        # replaces the module's; only a Parameter's requires_grad is kept), so no cast
        # check; a Parameter that requires grad still needs a floating or complex value.
        if registry == "_parameters" and target.requires_grad and arr.dtype.kind not in "fcV":
            return None, (
                f"assigning the parameter {key}: a {arr.dtype} value cannot require "
                f"gradients (only floating point and complex tensors can); call "
                f"requires_grad_(False) on it first."
            )
    elif backend.is_meta(arr) and not target.is_meta:  # PyTorch's error: no data
        return None, (
            f'While copying the parameter named "{key}", whose dimensions in the model are '
            f"{target.shape} and whose dimensions in the checkpoint are {target.shape}, an "
            f"exception occurred : ('{NO_DATA}',)."
        )
    elif target.is_meta and not backend.is_meta(arr):  # PyTorch's warning: a no-op
        warnings.warn(
            f"for {key}: copying from a non-meta parameter in the checkpoint to a meta "
            "parameter in the current model, which is a no-op. (Did you mean to pass "
            "`assign=True` to assign items in the state dictionary to their corresponding "
            "key in the module instead of copying them in place?)",
            UserWarning,
            stacklevel=4,
        )
    elif not np.can_cast(arr.dtype, target.dtype, "same_kind"):
        return None, (
            f"dtype mismatch for {key}: cannot convert {arr.dtype} from checkpoint to "
            f"{target.dtype} in current model (only 'same_kind' casts are allowed)."
        )
    return arr, None


def load_value(owner, registry: str, name: str, target, arr, assign: bool, value=None) -> None:
    """Copy `arr` into `target` (or, with assign, make it owner's tensor `name`); under
    no_grad. `value` is the state dict's entry `arr` came from (its Parameter is kept, as
    PyTorch keeps it)."""
    from .. import __future__ as future  # noqa: PLC0415
    from .parameter import Parameter  # noqa: PLC0415

    if future.get_swap_module_params_on_conversion():
        # PyTorch's swap path: the tensor keeps its identity and takes module_load's result
        from ..utils import swap_tensors  # noqa: PLC0415

        given = value if isinstance(value, Tensor) and value._data is arr else Tensor._wrap(arr)
        new = target.module_load(given, assign=assign)
        if new is given or new is target:
            raise RuntimeError("module_load returned one of self or other, please .detach() "
                               "the result if returning one of the inputs in module_load")
        if isinstance(target, Parameter) and not isinstance(new, Parameter):
            new = Parameter(new, requires_grad=target.requires_grad)
        elif isinstance(target, Parameter):
            new.requires_grad_(target.requires_grad)
        swap_tensors(target, new)
        return
    if assign:
        # the value's dtype and device, as PyTorch's assign=True (a meta model gets the
        # checkpoint's tensors: the deferred-initialisation idiom); a Parameter in the state
        # dict becomes the module's own, with the module's requires_grad (PyTorch's rule)
        if registry == "_parameters" and isinstance(value, Parameter) and value._data is arr:
            value.requires_grad_(target.requires_grad)
            getattr(owner, registry)[name] = value
            return
        if isinstance(value, Tensor) and value._data is arr and registry != "_parameters":
            getattr(owner, registry)[name] = value  # a buffer is the state dict's tensor
            return
        new = Tensor._wrap(arr)
        if registry == "_parameters":
            new = Parameter(new, requires_grad=target.requires_grad)
        getattr(owner, registry)[name] = new
        return
    target._data[...] = backend.to_device(arr, target.device)  # cast to target's dtype here
    # An in-place change: a graph that saved this tensor must notice it at backward.
    target._version += 1


def _overrides_load(module) -> bool:
    """Whether a module of the tree overrides _load_from_state_dict outside descent (a
    library's or the user's class): then PyTorch's per-module protocol runs."""
    from .module_protocol import ModuleProtocol  # noqa: PLC0415

    base = ModuleProtocol._load_from_state_dict
    for m in module.modules():
        fn = type(m)._load_from_state_dict
        if fn is not base and not getattr(fn, "__module__", "").startswith("descent."):
            return True
        if getattr(m, "_loads_per_module", False):  # a descent module with its own keys
            return True  # (descent.quantization's packed parameters)
    return False


def _load_per_module(module, state_dict, strict: bool, assign: bool):
    """PyTorch's load_state_dict: each module's _load_from_state_dict (named_modules order,
    strict=True so every module reports its keys), the post-hooks, then the strict check."""
    from .module import IncompatibleKeys  # noqa: PLC0415

    missing: list[str] = []
    unexpected: list[str] = []
    errors: list[str] = []
    metadata = getattr(state_dict, "_metadata", None)
    state_dict = OrderedDict(state_dict)  # overrides and hooks edit a copy, as in PyTorch
    if metadata is not None:
        state_dict._metadata = metadata  # type: ignore[attr-defined]
    for mod_prefix, mod in module.named_modules(remove_duplicate=False):
        head = f"{mod_prefix}." if mod_prefix else ""
        local = dict(metadata.get(mod_prefix, {})) if metadata is not None else {}
        if assign:
            local["assign_to_params_buffers"] = True
        mod._load_from_state_dict(state_dict, head, local, True, missing, unexpected, errors)
    result = IncompatibleKeys(missing, unexpected)
    for mod in module.modules():
        for hook in list(mod._load_state_dict_post_hooks.values()):
            if hook(mod, result) is not None:
                raise RuntimeError("load_state_dict post-hook must return None (edit "
                                   "incompatible_keys in place)")  # fmt: skip
    if strict:
        if unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: " + _quote(unexpected) + ". ")
        if missing:
            errors.insert(0, "Missing key(s) in state_dict: " + _quote(missing) + ". ")
    if errors:
        raise RuntimeError(
            f"Error(s) in loading state_dict for {type(module).__name__}:\n\t" + "\n\t".join(errors)
        )
    return result


def load_state_dict(module, state_dict: Mapping[str, Any], strict: bool, assign: bool):
    from .module import IncompatibleKeys  # noqa: PLC0415

    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"load_state_dict expects a mapping of name -> tensor, got {type(state_dict).__name__}"
        )
    if _overrides_load(module):
        return _load_per_module(module, state_dict, strict, assign)
    missing: list[str] = []
    unexpected: list[str] = []
    problems: list[str] = []
    hooks, norms = _needs_copy(module)
    if hooks or norms:
        meta = getattr(state_dict, "_metadata", None)
        state_dict = OrderedDict(state_dict)  # hooks and fills edit a copy, as in PyTorch
        if meta is not None:
            state_dict._metadata = meta  # type: ignore[attr-defined]
        if hooks:
            _run_pre_hooks(module, state_dict, strict, missing, unexpected, problems)
        if norms:
            _fill_num_batches_tracked(module, state_dict)
    targets, extra = _targets(module)
    missing += [k for k in list(targets) + list(extra) if k not in state_dict]
    unexpected += [k for k in state_dict if k not in targets and k not in extra]
    plan = []
    for key, (owner, registry, name, target) in targets.items():
        if key not in state_dict:
            continue
        arr, problem = check_value(key, registry, target, state_dict[key], assign)
        if problem is not None:
            problems.append(problem)
            continue
        plan.append((owner, registry, name, target, arr, state_dict[key]))
    post = any(m._load_state_dict_post_hooks for m in module.modules())

    def key_errors() -> list[str]:
        out = []
        if strict and unexpected:
            out.append("Unexpected key(s) in state_dict: " + _quote(unexpected) + ". ")
        if strict and missing:
            out.insert(0, "Missing key(s) in state_dict: " + _quote(missing) + ". ")
        return out

    def fail(msgs: list[str]):
        raise RuntimeError(
            f"Error(s) in loading state_dict for {type(module).__name__}:\n\t" + "\n\t".join(msgs)
        )

    early = problems if post else key_errors() + problems
    if early:
        fail(early)
    with no_grad():
        for owner, registry, name, target, arr, value in plan:
            load_value(owner, registry, name, target, arr, assign, value)
    for key, mod in extra.items():
        if key in state_dict:
            mod.set_extra_state(state_dict[key])
    result = IncompatibleKeys(missing, unexpected)
    if post:
        for mod in module.modules():
            for hook in list(mod._load_state_dict_post_hooks.values()):
                if hook(mod, result) is not None:
                    raise RuntimeError(
                        "load_state_dict post-hook must return None (edit incompatible_keys in "
                        "place)"
                    )
        late = key_errors()
        if late:
            fail(late)
    return result
