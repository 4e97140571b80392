"""Module: the base class of every layer and model (the containers are in container.py).

A Module registers what is assigned to it (STYLE.md, "Modules and optimizers"):

    >>> class Net(Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = Linear(4, 2)              # a child Module -> self._modules
    ...         self.scale = Parameter(ones(2))     # a Parameter    -> self._parameters
    ...         self.register_buffer("seen", zeros(()))  # state, not learned -> self._buffers

The three registries are insertion-ordered dicts, so `parameters()`, `state_dict()` and the repr
are deterministic. Names, signatures and behaviour follow `torch.nn.Module`, so a PyTorch user
guesses right, and a PyTorch `state_dict` (converted to NumPy arrays) loads into the same model.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .. import backend, memory_layout
from ..dtypes import as_dtype
from ..tensor import Tensor
from .buffer import Buffer
from .module_extras import ModuleExtras
from .module_hooks import GLOBAL as _GLOBAL_HOOKS
from .module_hooks import HOOK_DICTS as _FWD_BWD_HOOK_DICTS
from .module_hooks import REGISTRATION as _REGISTRATION_HOOKS
from .module_hooks import VERSION as _HOOKS_VERSION
from .module_hooks import HookDict, hooked_call, registered_value
from .module_protocol import ModuleProtocol, conversion
from .module_walk import walk_parameters
from .parameter import Parameter

__all__ = ["Module", "RemovableHandle"]

_G_FWD_PRE, _G_FWD, _G_BWD_PRE, _G_BWD = _GLOBAL_HOOKS  # torch's register_module_*_hook

_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
               "_state_dict_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks",
               "_load_state_dict_post_hooks")  # fmt: skip


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What `load_state_dict(strict=False)` returns: keys it did not find and keys it ignored."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        # PyTorch's class is torch.nn.modules.module._IncompatibleKeys: programs print it
        return (
            f"_IncompatibleKeys(missing_keys={self.missing_keys!r}, "
            f"unexpected_keys={self.unexpected_keys!r})"
        )


class RemovableHandle:
    """Returned by `register_forward_hook` & co.; `handle.remove()` unregisters the hook.

    Also a context manager: `with model.register_forward_hook(f): model(x)`.
    """

    _ids = itertools.count()

    def __init__(self, hooks: dict, extra: tuple = ()) -> None:
        self._hooks = hooks
        self._extra = extra  # sets that may hold the id too (with_kwargs, always_call)
        self.id = next(RemovableHandle._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)
        for ids in self._extra:
            ids.discard(self.id)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first (PyTorch's repr layout for nested modules)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])


def _parse_to_args(args, kwargs) -> tuple[str | None, Any]:
    """`to(device)`, `to(dtype)`, `to(device, dtype)`, `to(tensor)` -> (device, dtype)."""
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"Module.to(): unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if a is None:
            continue
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif isinstance(a, str) or type(a).__name__ == "device":
            device = a
        elif isinstance(a, int) and not isinstance(a, bool):
            device = f"cuda:{a}"  # torch's `.to(0)` means CUDA device 0
        else:
            dtype = a
    if device is not None:
        device = backend.normalize_device(device)  # raises a clear error when CUDA is absent
    if dtype is not None:
        try:
            dtype = as_dtype(dtype)  # 'bfloat16' too
        except TypeError:
            raise TypeError(f"Module.to(): {dtype!r} is neither a device nor a dtype") from None
        if dtype.kind not in "fVc":
            raise TypeError(
                f"Module.to() only accepts floating point or complex dtypes, got {dtype}: "
                "integer buffers (e.g. BatchNorm's num_batches_tracked) must keep their dtype"
            )
    return device, dtype


def zero_grad_(g) -> None:
    """Zero a gradient keeping the object, as PyTorch's zero_grad(set_to_none=False) (Module's
    and Optimizer's): detach_() (a create_graph gradient) or requires_grad_(False), then
    zero_(): a sparse COO gradient loses its entries (nnz 0, coalesced), a writable dense one
    is zeroed in place (a view into a flat gradient buffer stays valid), and one saved by a
    graph or read-only gets a fresh zero array."""
    had_history = g._node is not None
    g.detach_()
    if g.is_sparse:
        g.zero_()
    elif not had_history and getattr(g._data.flags, "writeable", True):
        g._data[...] = 0
    else:
        g._data = backend.get_array_module(g._data).zeros_like(g._data)
        g._version += 1


class Module(ModuleExtras, ModuleProtocol):
    """Base class of all layers and models.

    Subclasses call `super().__init__()` first, assign Parameters, buffers and child Modules as
    attributes, and define `forward`. Calling the module (`model(x)`) runs the forward
    pre-hooks, `forward`, then the forward hooks.

    Attributes:
        training: True in training mode (Dropout drops, BatchNorm uses batch statistics);
            set with `train()` / `eval()`.
    """

    training: bool
    _version: int = 1  # state_dict format version (PyTorch's attribute name)

    def __init__(self, *args, **kwargs) -> None:
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments: Module.__init__ "
                "takes none (call `super().__init__()` without arguments)"
            )
        # object.__setattr__ because our own __setattr__ consults these dicts.
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", {})
        for name in _HOOK_DICTS:  # PyTorch's hook registries (module_extras.py registers)
            # (the forward / backward ones count their writes: module_hooks.VERSION)
            object.__setattr__(self, name, HookDict() if name in _FWD_BWD_HOOK_DICTS else {})
        object.__setattr__(self, "_forward_hooks_with_kwargs", set())
        object.__setattr__(self, "_forward_hooks_always_called", set())
        object.__setattr__(self, "_backward_hooks_kind", None)

    # -- forward ---------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args, **kwargs):
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
                or self._backward_pre_hooks or _G_FWD_PRE or _G_FWD or _G_BWD_PRE
                or _G_BWD):  # fmt: skip
            return self.forward(*args, **kwargs)  # the common case: no hooks, no overhead
        return hooked_call(self, args, kwargs)

    # -- registration ----------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        # Registration happens here: `self.fc = Linear(...)` files the value into its registry
        # (not the instance __dict__), so parameters() and state_dict() find every Parameter
        # without each class listing its own. A name keeps one kind: assigning a plain value
        # over a registered parameter or module is a TypeError, None clears the slot.
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError(
                    "cannot assign parameters before Module.__init__() call: call "
                    "super().__init__() first in your __init__"
                )
            self._forget(name, keep=params)
            if _REGISTRATION_HOOKS["parameter"]:
                value = registered_value("parameter", self, name, value)
            params[name] = value
        elif isinstance(value, Buffer) and params is not None:  # nn.Buffer(t), as PyTorch
            self.register_buffer(name, value, persistent=value.persistent)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__!r} as parameter {name!r} of "
                    f"{type(self).__name__} (a descent.nn.Parameter or None is expected); "
                    "wrap it: nn.Parameter(tensor)"
                )
            params[name] = None
        elif isinstance(value, Module):
            modules = self.__dict__.get("_modules")
            if modules is None:
                raise AttributeError(
                    "cannot assign a module before Module.__init__() call: call "
                    "super().__init__() first in your __init__"
                )
            self._forget(name, keep=modules)
            if _REGISTRATION_HOOKS["module"]:
                value = registered_value("module", self, name, value)
            modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__!r} as child module {name!r} "
                    "(a Module or None is expected)"
                )
            if _REGISTRATION_HOOKS["module"]:
                value = registered_value("module", self, name, value)
            self._modules[name] = value
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__!r} as buffer {name!r} "
                    "(a Tensor or None is expected)"
                )
            if _REGISTRATION_HOOKS["buffer"]:
                value = registered_value("buffer", self, name, value)
            self._buffers[name] = value
        else:
            if name in _FWD_BWD_HOOK_DICTS:  # a hook registry assigned whole
                _HOOKS_VERSION[0] += 1
            object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: dict | None = None) -> None:
        """Remove `name` from the instance dict and every registry but `keep` (the one about
        to receive it, so that re-assigning a name keeps its position, as in PyTorch)."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails, i.e. for registered names (written out per
        # registry: ~105 calls a GPT step, self.weight, self.c_attn, ...).
        d = self.__dict__
        reg = d.get("_parameters")
        if reg is not None and name in reg:
            return reg[name]
        reg = d.get("_buffers")
        if reg is not None and name in reg:
            return reg[name]
        reg = d.get("_modules")
        if reg is not None and name in reg:
            return reg[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        names.update(self._parameters, self._buffers, self._modules)
        return sorted(names)

    def _check_name(self, name: str, kind: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f'{kind} name {name!r} must be non-empty and cannot contain "."')
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot register a {kind} before Module.__init__() call")
        owned = name in self._parameters or name in self._buffers or name in self._modules
        if hasattr(self, name) and not owned:
            raise KeyError(f"attribute {name!r} already exists on {type(self).__name__}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register `param` (or None, a declared-but-absent parameter such as a disabled bias)."""
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot register {type(param).__name__!r} as parameter {name!r}: wrap it in "
                "descent.nn.Parameter"
            )
        self._forget(name, keep=self._parameters)
        if param is not None and _REGISTRATION_HOOKS["parameter"]:
            param = registered_value("parameter", self, name, param)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is module state but not learned (e.g. BatchNorm's running mean).

        Buffers move with `to()` and, when `persistent`, appear in `state_dict()`.

        Args:
            name: attribute name.
            tensor: the buffer, or None.
            persistent: include it in `state_dict()` (False for derived caches such as masks).
        """
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot register {type(tensor).__name__!r} as buffer {name!r} (a Tensor or None "
                "is expected)"
            )
        self._forget(name, keep=self._buffers)
        if _REGISTRATION_HOOKS["buffer"]:
            tensor = registered_value("buffer", self, name, tensor)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a child module under `name` (for names that are not identifiers)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        self._forget(name, keep=self._modules)
        if _REGISTRATION_HOOKS["module"]:
            module = registered_value("module", self, name, module)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        """The submodule at a dotted path, e.g. `model.get_submodule("blocks.0.attn")`."""
        mod: Module = self
        if target == "":
            return mod
        for item in target.split("."):
            child = mod._modules.get(item)
            if child is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {item!r} ({target})")
            mod = child
        return mod

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path, e.g. `"fc.weight"`."""
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        if name not in mod._parameters or mod._parameters[name] is None:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r} ({target})")
        return mod._parameters[name]

    # -- traversal -------------------------------------------------------------------------
    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Yield `(dotted_name, module)` for this module and every descendant, depth first.

        A module reachable by two paths is yielded once (at its first path) unless
        `remove_duplicate=False`. Iterative (explicit stack), so depth is unlimited.
        """
        if memo is None:
            memo = set()
        # Stack of (prefix, module); children pushed in reverse to visit them in order. The memo
        # holds ids, valid here because every module visited is alive for the whole traversal.
        stack = [(prefix, self)]
        while stack:
            name, mod = stack.pop()
            if remove_duplicate:
                if id(mod) in memo:
                    continue
                memo.add(id(mod))
            yield name, mod
            kids = [(k, m) for k, m in mod._modules.items() if m is not None]
            for key, child in reversed(kids):
                stack.append((f"{name}.{key}" if name else key, child))

    def modules(self) -> Iterator[Module]:
        """This module and all its descendants (each once)."""
        for _, mod in self.named_modules():
            yield mod

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Immediate child modules with their attribute names (each module once)."""
        seen = set()
        for name, mod in self._modules.items():
            if mod is not None and id(mod) not in seen:
                seen.add(id(mod))
                yield name, mod

    def children(self) -> Iterator[Module]:
        for _, mod in self.named_children():
            yield mod

    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen: set[int] = set()
        mods = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:  # tied weights: the same object under two names
                        continue
                    seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """Yield `(dotted_name, parameter)` in registration order; a tied parameter once.

        Args:
            prefix: prepended to every name.
            recurse: include the parameters of descendants (else only this module's own).
            remove_duplicate: yield a parameter shared by several modules only at its first name.
        """
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """All parameters, each once, in a deterministic order (what optimizers take)."""
        cls = type(self)
        if recurse and cls.named_parameters is Module.named_parameters \
                and cls._named_members is Module._named_members \
                and cls.named_modules is Module.named_modules:  # fmt: skip
            return walk_parameters(self)  # named_parameters' walk without its names
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """Yield `(dotted_name, buffer)` for persistent and non-persistent buffers alike."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of scalar parameters (tied weights counted once).

        Args:
            trainable_only: count only parameters with `requires_grad=True`.
        """
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call `fn` on every descendant, then on self (children first, as PyTorch); returns self.

        Typical use: custom initialisation, `model.apply(init_weights)`.
        """
        # Iterative post-order over children (PyTorch recurses; deep models must not).
        stack: list[tuple[Module, bool]] = [(self, False)]
        while stack:
            mod, expanded = stack.pop()
            if expanded:
                fn(mod)
                continue
            stack.append((mod, True))
            stack.extend((child, False) for child in reversed(list(mod.children())))
        return self

    # -- modes and gradients ---------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and all descendants; returns self."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for mod in self.modules():
            object.__setattr__(mod, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (`train(False)`): Dropout is identity, BatchNorm uses running stats."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set `requires_grad` on every parameter (freeze with False); returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters.

        Gradients accumulate across backward calls; call this (or the optimizer's `zero_grad`)
        once per step.

        Args:
            set_to_none: set `.grad = None` (default; frees memory) instead of filling zeros.
        """
        for p in self.parameters():
            g = p.grad
            if g is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                zero_grad_(g)

    # -- device and dtype ------------------------------------------------------------------
    def to(self, *args, **kwargs) -> Module:
        """Move and/or cast parameters and buffers in place; returns self.

        Forms: `to(device)`, `to(dtype)`, `to(device, dtype)`, `to(tensor)` and the keywords
        `device=`, `dtype=`. Parameters stay the same objects (optimizers keep working).

        Raises:
            RuntimeError: CUDA requested but unavailable.
            TypeError: a dtype neither floating nor complex (as PyTorch).
        """
        kwargs = dict(kwargs)
        memory_format = kwargs.pop("memory_format", None)
        device, dtype = _parse_to_args(args, kwargs)
        # every parameter, gradient and buffer, in place, through _apply (module_protocol.py)
        self._apply(conversion(device, dtype))
        if memory_format is not None:
            # as PyTorch: 4-D (channels_last) or 5-D (channels_last_3d) parameters and buffers
            # are laid out anew in place; optimizers keep the layout (optim/optimizer.py)
            name = memory_layout.format_name(memory_format)
            rank = {"channels_last": 4, "channels_last_3d": 5}.get(name)
            for t in [*self.parameters(), *self.buffers()]:
                if t._data.ndim == rank and not memory_layout.is_channels_last(t._data, name):
                    t._data = memory_layout.copy_as(t._data, name)
                    t._version += 1
        return self

    def cuda(self, device: int | str | None = None) -> Module:
        if device is None:
            device = "cuda"
        return self.to(device if isinstance(device, str) else f"cuda:{device}")

    def cpu(self) -> Module:
        return self.to("cpu")

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        return self.to(np.float16)

    def bfloat16(self) -> Module:
        """Cast floating parameters and buffers to bfloat16 (docs/bfloat16.md)."""
        return self.to(as_dtype("bfloat16"))

    # -- state dict ------------------------------------------------------------------------
    def state_dict(
        self, *, destination: dict | None = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name, in registration order.

        Values are detached tensors that SHARE memory with the module (as PyTorch): copy them
        (`{k: v.numpy().copy() ...}`) to snapshot. A tied weight appears under each of its names,
        as in PyTorch.

        Args:
            destination: a dict to fill (a new OrderedDict when None).
            prefix: prepended to every key.
            keep_vars: return the Parameter objects themselves instead of detached tensors.
        """
        out: Any = OrderedDict() if destination is None else destination
        metadata = getattr(out, "_metadata", None)
        if metadata is None and destination is None:
            metadata = out._metadata = OrderedDict()  # read back by load_state_dict
        pending: list = []  # (head, module) whose post-hooks wait for their subtree
        for mod_prefix, mod in self.named_modules(remove_duplicate=False):
            head = prefix + (f"{mod_prefix}." if mod_prefix else "")
            while pending and not head.startswith(pending[-1][0]):
                _state_dict_post(*pending.pop(), out)
            for hook in mod._state_dict_pre_hooks.values():
                hook(mod, head, keep_vars)
            if metadata is not None:  # PyTorch's per-module format versions
                metadata[head[:-1]] = {"version": mod._version}
            mod._save_to_state_dict(out, head, keep_vars)  # an override runs here
            if mod._state_dict_hooks:
                pending.append((head, mod))
        while pending:
            head, mod = pending.pop()
            result = _state_dict_post(head, mod, out)
            if mod is self and result is not None:  # the root's private hook returned a dict
                return result
        return out

    def _state_targets(self) -> OrderedDict[str, Tensor]:
        # The tensors load_state_dict writes into, by key (no hooks, no extra state).
        out: OrderedDict[str, Tensor] = OrderedDict()
        for mod_prefix, mod in self.named_modules(remove_duplicate=False):
            head = f"{mod_prefix}." if mod_prefix else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    out[head + name] = p
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent_buffers:
                    out[head + name] = b
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False):  # fmt: skip
        """Copy values into this module's parameters and persistent buffers (in place).

        Values may be descent Tensors, NumPy arrays, or anything `numpy.asarray` accepts (for
        example CPU `torch` tensors). dtype rule: a value is converted to the dtype of the
        tensor it fills when NumPy's 'same_kind' casting allows it (float64 -> float32,
        int32 -> int64, int -> float); a floating value into an integer buffer is an error.
        Everything is checked before anything is copied: on error the module is unchanged
        (with load_state_dict post-hooks, a strict key error is raised after them, as PyTorch).
        Runs the modules' load_state_dict pre- and post-hooks and `set_extra_state`.

        Args:
            state_dict: name -> value, as produced by `state_dict()`.
            strict: require the keys to match exactly. With False, missing and unexpected
                keys are returned instead of raising; shape and dtype mismatches still raise.
            assign: replace the module's tensors by the values instead of copying into them,
                as PyTorch: they keep their own dtype (no cast, no dtype check) and memory;
                a Parameter keeps its requires_grad (which needs a floating value).

        Returns:
            A named tuple `(missing_keys, unexpected_keys)`.

        Raises:
            RuntimeError: listing every missing, unexpected, mis-shaped and mis-typed key.
        """
        from .module_state import load_state_dict  # noqa: PLC0415

        return load_state_dict(self, state_dict, strict, assign)

    # -- repr ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """One line of this module's settings, shown in its repr (override in layers)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({key}): " + _addindent(repr(mod), 2) for key, mod in self._modules.items()
        ]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


def _state_dict_post(head: str, mod: Module, out):
    """Run mod's state_dict post-hooks; the dict the last private hook returned, or None."""
    returned = None
    for hook in mod._state_dict_hooks.values():
        result = hook(mod, out, head, {"version": mod._version})
        if result is None:
            continue
        if not getattr(hook, "may_return_state_dict", False):
            raise RuntimeError("state_dict post-hook must return None (edit state_dict in place)")
        returned = result  # PyTorch: `destination = hook_result` (_register_state_dict_hook)
    return returned


_MOVED_TO_CONTAINER = ("Sequential", "ModuleList", "ModuleDict")


def __getattr__(name: str):
    # The containers moved to container.py; `from descent.nn.module import Sequential` (the
    # import path before the move) keeps working. Looked up on first use, because container.py
    # imports this module: a top-level import here would be a cycle.
    if name in _MOVED_TO_CONTAINER:
        from . import container

        return getattr(container, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
