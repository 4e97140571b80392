"""Module hooks beyond the plain forward ones: PyTorch's keyword forms (`with_kwargs`,
`prepend`, `always_call`) and the full backward hooks.

`Module.__call__` comes here only when some hook is registered, so a module without hooks pays
nothing. The backward hooks work as PyTorch's (`torch.utils.hooks.BackwardHook`): the module's
tensor inputs pass through one identity node before `forward` and its tensor outputs through
another after it. The output node's backward sees the gradients of the outputs: it runs the
backward pre-hooks (`hook(module, grad_output)`, which may replace them) and keeps them; the
input node's backward sees the gradients of the inputs and runs the full backward hooks
(`hook(module, grad_input, grad_output)`, which may replace `grad_input`). When no input needs a
gradient, the full hooks run from the output node with `grad_input` all None, as in PyTorch.
`grad_input` has one entry per positional argument (None for non-tensors and for tensors that
need no gradient); keyword arguments are not seen, as in PyTorch.
"""

from __future__ import annotations

import warnings
from typing import Any

from ..autograd import Function
from ..autograd import _is_grad_enabled as is_grad_enabled
from ..tensor import Tensor

__all__ = [
    "HOOK_DICTS", "VERSION", "HookDict", "add_hook", "hooked_call", "modules_hooked",
    "register_module_forward_hook", "register_module_forward_pre_hook",
    "register_module_full_backward_hook", "register_module_full_backward_pre_hook",
    "register_module_buffer_registration_hook", "register_module_module_registration_hook",
    "register_module_parameter_registration_hook",
]  # fmt: skip

# Every change to a module's (or the global) forward / backward hook registries bumps
# VERSION[0], so that a compiled call (descent.compile) that found no hook on its captured modules
# asks again only when the number moved (session 31: the scan over baby-gpt's 56 modules was
# ~50 us a call). The registries are HookDicts, whose every write bumps it: register_*_hook,
# RemovableHandle.remove, and a program's own `m._forward_hooks[k] = f`, `del ...[k]`, `.pop`,
# `.clear()`, `.update`; Module.__setattr__ bumps it when a registry is assigned whole (a plain
# dict or OrderedDict so assigned is not a HookDict: modules_hooked says ask again every call).
VERSION = [0]

# The attributes holding a module's forward / backward hook registries.
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


class HookDict(dict):
    """A hook registry: a dict whose every write bumps VERSION[0] (reads are dict's)."""

    __slots__ = ()

    def __setitem__(self, key, value) -> None:
        VERSION[0] += 1
        dict.__setitem__(self, key, value)

    def __delitem__(self, key) -> None:
        VERSION[0] += 1
        dict.__delitem__(self, key)

    def __ior__(self, other):
        VERSION[0] += 1
        return dict.__ior__(self, other)

    def pop(self, *args):
        VERSION[0] += 1
        return dict.pop(self, *args)

    def popitem(self):
        VERSION[0] += 1
        return dict.popitem(self)

    def clear(self) -> None:
        VERSION[0] += 1
        dict.clear(self)

    def update(self, *args, **kwargs) -> None:
        VERSION[0] += 1
        dict.update(self, *args, **kwargs)

    def setdefault(self, key, default=None):
        VERSION[0] += 1
        return dict.setdefault(self, key, default)


# torch.nn.modules.module's global hooks: they run for every module, before its own hooks.
_global_forward_pre_hooks: dict = HookDict()
_global_forward_hooks: dict = HookDict()
_global_backward_pre_hooks: dict = HookDict()
_global_backward_hooks: dict = HookDict()
GLOBAL = (_global_forward_pre_hooks, _global_forward_hooks, _global_backward_pre_hooks,
          _global_backward_hooks)  # fmt: skip


_global_with_kwargs: set = set()
_global_always_called: set = set()


def _register_global(hooks: dict, hook, with_kwargs: bool = False, always_call: bool = False):
    from .module import RemovableHandle  # noqa: PLC0415 - module.py imports this file

    handle = RemovableHandle(hooks, extra=(_global_with_kwargs, _global_always_called))
    hooks[handle.id] = hook
    if with_kwargs:
        _global_with_kwargs.add(handle.id)
    if always_call:
        _global_always_called.add(handle.id)
    return handle


def register_module_forward_pre_hook(hook):
    """Run `hook(module, args)` before every module's forward (before its own pre-hooks)."""
    return _register_global(_global_forward_pre_hooks, hook)


def register_module_forward_hook(hook, *, with_kwargs: bool = False, always_call: bool = False):
    """Run `hook(module, args, output)` after every module's forward (before its own hooks)."""
    return _register_global(_global_forward_hooks, hook, with_kwargs, always_call)


def register_module_full_backward_pre_hook(hook):
    """Run `hook(module, grad_output)` for every module, as its own backward pre-hooks."""
    return _register_global(_global_backward_pre_hooks, hook)


def register_module_full_backward_hook(hook):
    """Run `hook(module, grad_input, grad_output)` for every module, as its own backward
    hooks."""
    return _register_global(_global_backward_hooks, hook)


# torch.nn.modules.module's registration hooks: `hook(module, name, value)` runs just before a
# parameter, buffer or child module is filed into its registry (register_parameter /
# register_buffer / add_module, and attribute assignment, which goes through them); a non-None
# return replaces the value. Keyed by handle id, in registration order.
_global_parameter_registration_hooks: dict = {}
_global_buffer_registration_hooks: dict = {}
_global_module_registration_hooks: dict = {}
REGISTRATION = {"parameter": _global_parameter_registration_hooks,
                "buffer": _global_buffer_registration_hooks,
                "module": _global_module_registration_hooks}  # fmt: skip


def registered_value(kind: str, module, name: str, value):
    """`value` after the global `kind` registration hooks (PyTorch's order: each hook sees the
    previous one's replacement)."""
    for hook in list(REGISTRATION[kind].values()):
        out = hook(module, name, value)
        if out is not None:
            value = out
    return value


def register_module_parameter_registration_hook(hook):
    """Run `hook(module, name, param)` whenever any module registers a parameter (not None);
    a returned value replaces the parameter."""
    return _register_global(_global_parameter_registration_hooks, hook)


def register_module_buffer_registration_hook(hook):
    """Run `hook(module, name, tensor)` whenever any module registers a buffer (None too); a
    returned value replaces the buffer."""
    return _register_global(_global_buffer_registration_hooks, hook)


def register_module_module_registration_hook(hook):
    """Run `hook(module, name, submodule)` whenever any module registers a child module (None
    too); a returned value replaces it."""
    return _register_global(_global_module_registration_hooks, hook)


def any_global_hooks() -> bool:
    return bool(_global_forward_pre_hooks or _global_forward_hooks
                or _global_backward_pre_hooks or _global_backward_hooks)  # fmt: skip


def modules_hooked(modules) -> bool | None:
    """Whether a forward or backward hook would run on one of `modules` (theirs or a global
    one): True, or False when none would and each registry read is a HookDict (the answer holds
    while VERSION[0] stays), or None when none would but some registry is another mapping (a
    plain dict assigned to `m._forward_hooks`: its writes are not counted, ask on every call)."""
    if not modules:
        return False
    if any_global_hooks():
        return True
    tracked = True
    for m in modules:
        fwd, pre, bwd, bpre = (m._forward_hooks, m._forward_pre_hooks, m._backward_hooks,
                               m._backward_pre_hooks)  # fmt: skip
        if fwd or pre or bwd or bpre:
            return True
        if tracked and not (type(fwd) is HookDict and type(pre) is HookDict
                            and type(bwd) is HookDict and type(bpre) is HookDict):  # fmt: skip
            tracked = False
    return False if tracked else None


def add_hook(hooks: dict, handle, hook, prepend: bool) -> None:
    """File `hook` under `handle.id`, first when `prepend` (the dict object is kept: handles
    hold it)."""
    if not prepend:
        hooks[handle.id] = hook
        return
    rest = list(hooks.items())
    hooks.clear()
    hooks[handle.id] = hook
    hooks.update(rest)


class _HookState:
    """What the two identity nodes of one hooked call share."""

    __slots__ = ("module", "n_args", "arg_pos", "zeros", "grad_output", "inputs_hooked")

    def __init__(self, module, n_args: int, arg_pos: tuple) -> None:
        self.module, self.n_args, self.arg_pos = module, n_args, arg_pos
        self.zeros: tuple = ()
        self.grad_output: tuple = ()
        self.inputs_hooked = False


def _check_replacement(module, what: str, new, old: tuple) -> tuple:
    new = tuple(new) if isinstance(new, (tuple, list)) else (new,)
    if len(new) != len(old):
        raise RuntimeError(
            f"backward hook of {type(module).__name__} returned {len(new)} {what}; expected "
            f"{len(old)} (one per entry it was given, None where there is none)"
        )
    return new


def _run_full_hooks(st: _HookState, grad_input: tuple) -> tuple:
    module = st.module
    for hook in [*_global_backward_hooks.values(), *module._backward_hooks.values()]:
        res = hook(module, grad_input, st.grad_output)
        if res is not None:
            grad_input = _check_replacement(module, "grad_input entries", res, grad_input)
    return grad_input


class _BackwardHookIn(Function):
    """Identity over the module's tensor inputs; its backward runs the full backward hooks."""

    @staticmethod
    def forward(ctx, state, *tensors):
        ctx.state = state
        return tensors[0] if len(tensors) == 1 else tensors

    @staticmethod
    def backward(ctx, *grads):
        st = ctx.state
        grad_input: list = [None] * st.n_args
        for pos, z in st.zeros:  # tensors that need no gradient: zeros, as PyTorch shows them
            grad_input[pos] = z
        for pos, g in zip(st.arg_pos, grads):
            grad_input[pos] = g
        new = _run_full_hooks(st, tuple(grad_input))
        return (None, *(new[pos] for pos in st.arg_pos))


class _BackwardHookOut(Function):
    """Identity over the module's tensor outputs; its backward runs the backward pre-hooks."""

    @staticmethod
    def forward(ctx, state, *tensors):
        ctx.state = state
        return tensors[0] if len(tensors) == 1 else tensors

    @staticmethod
    def backward(ctx, *grads):
        st = ctx.state
        module = st.module
        grad_output = tuple(grads)
        for hook in [*_global_backward_pre_hooks.values(), *module._backward_pre_hooks.values()]:
            res = hook(module, grad_output)
            if res is not None:
                grad_output = _check_replacement(module, "grad_output entries", res, grad_output)
        st.grad_output = grad_output
        if not st.inputs_hooked and (module._backward_hooks or _global_backward_hooks):
            warnings.warn(
                "Full backward hook is firing when gradients are computed with respect to module "
                "outputs since no inputs require gradients (as PyTorch warns)",
                stacklevel=2,
            )
            for hook in [*_global_backward_hooks.values(), *module._backward_hooks.values()]:
                res = hook(module, (None,) * st.n_args, grad_output)
                if res is not None and any(r is not None for r in res):
                    raise RuntimeError(
                        f"backward hook of {type(module).__name__} returned a grad_input, but "
                        "no input of this call needs a gradient"
                    )
        return (None, *grad_output)


def _floating_grad(t) -> bool:
    return isinstance(t, Tensor) and t._data.dtype.kind in "fV"


def _same_dtype(tensors, module, where: str) -> None:
    if len({t._data.dtype for t in tensors}) > 1:
        raise NotImplementedError(
            f"{type(module).__name__}: full backward hooks need the module's floating {where} "
            f"to share one dtype, got {sorted({str(t.dtype) for t in tensors})}; cast them first"
        )


def _hook_inputs(module, args: tuple) -> tuple[tuple, _HookState]:
    pos = tuple(i for i, a in enumerate(args) if _floating_grad(a) and a.requires_grad)
    st = _HookState(module, len(args), pos)
    if not pos:
        return args, st
    tensors = [args[i] for i in pos]
    _same_dtype(tensors, module, "inputs")
    st.zeros = tuple((i, a.detach() * 0) for i, a in enumerate(args)
                     if _floating_grad(a) and i not in pos)  # fmt: skip
    out = _BackwardHookIn.apply(st, *tensors)
    outs = (out,) if len(pos) == 1 else tuple(out)
    st.inputs_hooked = True
    new = list(args)
    for i, t in zip(pos, outs):
        new[i] = t
    return tuple(new), st


def _hook_outputs(st: _HookState, out):
    single = isinstance(out, Tensor)
    items = [out] if single else list(out) if isinstance(out, (tuple, list)) else None
    if items is None:
        return out  # PyTorch also only hooks Tensor and tuple outputs
    pos = [i for i, o in enumerate(items) if _floating_grad(o) and o.requires_grad]
    if not pos:
        return out
    tensors = [items[i] for i in pos]
    _same_dtype(tensors, st.module, "outputs")
    res = _BackwardHookOut.apply(st, *tensors)
    res = (res,) if len(pos) == 1 else tuple(res)
    for i, t in zip(pos, res):
        items[i] = t
    if single:
        return items[0]
    return type(out)(items) if isinstance(out, tuple) else items


def hooked_call(module, args: tuple, kwargs: dict) -> Any:
    """`module(*args, **kwargs)` with its forward pre-hooks, forward hooks and backward hooks."""
    with_kw = module._forward_hooks_with_kwargs | _global_with_kwargs
    for key, hook in [*_global_forward_pre_hooks.items(), *module._forward_pre_hooks.items()]:
        if key in with_kw:
            result = hook(module, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(
                        "forward pre-hook registered with with_kwargs=True must return None or "
                        f"a tuple (args, kwargs), got {type(result).__name__}"
                    )
                args, kwargs = result
        else:
            result = hook(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
    backward = (module._backward_hooks or module._backward_pre_hooks or _global_backward_hooks
                or _global_backward_pre_hooks) and is_grad_enabled()  # fmt: skip
    state = None
    if backward:
        args, state = _hook_inputs(module, tuple(args))
    called: set = set()
    try:
        out = module.forward(*args, **kwargs)
        for key, hook in [*_global_forward_hooks.items(), *module._forward_hooks.items()]:
            called.add(key)
            result = hook(module, args, kwargs, out) if key in with_kw else hook(module, args, out)
            if result is not None:
                out = result
    except BaseException:
        for key in module._forward_hooks_always_called | _global_always_called:
            hook = module._forward_hooks.get(key, _global_forward_hooks.get(key))
            if hook is not None and key not in called:
                try:
                    hook(module, args, kwargs, None) if key in with_kw else hook(module, args, None)
                except Exception:  # noqa: BLE001 - the forward's own error is the one to see
                    pass
        raise
    if state is not None:
        out = _hook_outputs(state, out)
    return out
