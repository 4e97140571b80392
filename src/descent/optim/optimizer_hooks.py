"""PyTorch's optimizer hooks: step pre/post hooks (per optimizer and global), state-dict and
load-state-dict hooks.

`Optimizer.__init_subclass__` wraps each class's own `step`, `state_dict` and `load_state_dict`
with `hooked_step` & co., so every optimizer (and a user's subclass) runs its hooks as in
PyTorch; a wrapped method with no hook registered costs two dict checks.

* step pre-hook `hook(optimizer, args, kwargs)` (args[0] is the optimizer, as PyTorch's): None
  or a new `(args, kwargs)`;
* step post-hook `hook(optimizer, args, kwargs)`, after the update;
* state-dict pre-hook `hook(optimizer)`, post-hook `hook(optimizer, state_dict)` (None or a new
  state dict);
* load-state-dict pre-hook `hook(optimizer, state_dict)` (None or a new state dict), post-hook
  `hook(optimizer)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

__all__ = [
    "OptimizerHooks",
    "register_optimizer_step_post_hook",
    "register_optimizer_step_pre_hook",
]

_global_step_pre_hooks: dict = {}
_global_step_post_hooks: dict = {}


def _handle(hooks: dict, hook: Callable, prepend: bool = False):
    from ..nn.module import RemovableHandle  # noqa: PLC0415 - nn loads after optim's base
    from ..nn.module_hooks import add_hook  # noqa: PLC0415

    handle = RemovableHandle(hooks)
    add_hook(hooks, handle, hook, prepend)
    return handle


def register_optimizer_step_pre_hook(hook: Callable):
    """Run `hook(optimizer, args, kwargs)` before every optimizer's step (all optimizers)."""
    return _handle(_global_step_pre_hooks, hook)


def register_optimizer_step_post_hook(hook: Callable):
    """Run `hook(optimizer, args, kwargs)` after every optimizer's step (all optimizers)."""
    return _handle(_global_step_post_hooks, hook)


def _hooks(opt, name: str) -> dict:
    hooks = opt.__dict__.get(name)
    if hooks is None:
        hooks = {}
        opt.__dict__[name] = hooks
    return hooks


def has_step_hooks(opt) -> bool:
    """Whether a step of `opt` runs Python hooks (descent.compile then stays eager)."""
    own = opt.__dict__
    return bool(_global_step_pre_hooks or _global_step_post_hooks
                or own.get("_step_pre_hooks") or own.get("_step_post_hooks"))  # fmt: skip


def hooked_step(step):
    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        if "_opt_called" in self.__dict__:  # a scheduler watches (lr_scheduler._base.py)
            self.__dict__["_opt_called"] = True
        pre = self.__dict__.get("_step_pre_hooks")
        post = self.__dict__.get("_step_post_hooks")
        if not (pre or post or _global_step_pre_hooks or _global_step_post_hooks):
            return step(self, *args, **kwargs)
        if self.__dict__.get("_in_hooked_step"):  # a subclass's step calling super().step()
            return step(self, *args, **kwargs)
        self.__dict__["_in_hooked_step"] = True
        try:
            return _run_hooked(self, step, args, kwargs, pre, post)
        finally:
            self.__dict__["_in_hooked_step"] = False

    wrapper._hooked = True  # type: ignore[attr-defined]
    return wrapper


def _run_hooked(self, step, args, kwargs, pre, post):
    """The hooks around one step (PyTorch's order: global pre, own pre, step, own post,
    global post)."""
    args = (self, *args)  # PyTorch's hooks see the optimizer as args[0]
    for hook in [*_global_step_pre_hooks.values(), *(pre or {}).values()]:
        res = hook(self, args, kwargs)
        if res is not None:
            if not (isinstance(res, tuple) and len(res) == 2):
                raise RuntimeError(
                    f"an optimizer step pre-hook must return None or (args, kwargs), got "
                    f"{type(res).__name__}"
                )
            args, kwargs = res
    out = step(*args, **kwargs)
    for hook in [*(post or {}).values(), *_global_step_post_hooks.values()]:
        hook(self, args, kwargs)
    return out


def hooked_state_dict(state_dict):
    @functools.wraps(state_dict)
    def wrapper(self):
        for hook in list(self.__dict__.get("_state_dict_pre_hooks", {}).values()):
            hook(self)
        out = state_dict(self)
        for hook in list(self.__dict__.get("_state_dict_post_hooks", {}).values()):
            res = hook(self, out)
            if res is not None:
                out = res
        return out

    wrapper._hooked = True  # type: ignore[attr-defined]
    return wrapper


def hooked_load_state_dict(load):
    @functools.wraps(load)
    def wrapper(self, state_dict):
        for hook in list(self.__dict__.get("_load_state_dict_pre_hooks", {}).values()):
            res = hook(self, state_dict)
            if res is not None:
                state_dict = res
        out = load(self, state_dict)
        for hook in list(self.__dict__.get("_load_state_dict_post_hooks", {}).values()):
            hook(self)
        return out

    wrapper._hooked = True  # type: ignore[attr-defined]
    return wrapper


WRAPPERS = {"step": hooked_step, "state_dict": hooked_state_dict,
            "load_state_dict": hooked_load_state_dict}  # fmt: skip


def wrap_class(cls) -> None:
    """Wrap the hookable methods `cls` defines itself (once)."""
    for name, wrap in WRAPPERS.items():
        fn = cls.__dict__.get(name)
        if fn is not None and callable(fn) and not getattr(fn, "_hooked", False):
            setattr(cls, name, wrap(fn))


class OptimizerHooks:
    """Hook registration, a mixin of `Optimizer`."""

    def register_step_pre_hook(self, hook: Callable):
        """Run `hook(optimizer, args, kwargs)` before this optimizer's step; a non-None return
        `(args, kwargs)` replaces the step's arguments. Returns a removable handle."""
        return _handle(_hooks(self, "_step_pre_hooks"), hook)

    def register_step_post_hook(self, hook: Callable):
        """Run `hook(optimizer, args, kwargs)` after this optimizer's step."""
        return _handle(_hooks(self, "_step_post_hooks"), hook)

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Run `hook(optimizer)` before `state_dict()` builds its result."""
        return _handle(_hooks(self, "_state_dict_pre_hooks"), hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Run `hook(optimizer, state_dict)` after; a non-None return replaces the result."""
        return _handle(_hooks(self, "_state_dict_post_hooks"), hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Run `hook(optimizer, state_dict)` before loading; a non-None return is loaded."""
        return _handle(_hooks(self, "_load_state_dict_pre_hooks"), hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Run `hook(optimizer)` after loading."""
        return _handle(_hooks(self, "_load_state_dict_post_hooks"), hook, prepend)
