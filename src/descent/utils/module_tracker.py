"""`torch.utils.module_tracker` for descent: which modules are running, forward and backward.

    from descent.utils.module_tracker import ModuleTracker
    with ModuleTracker() as tracker:
        model(x)            # inside, tracker.parents == {"Global", "Net", "Net.fc1"} ...

`parents` holds the fully qualified names of the modules whose forward (or backward) is
running, always with "Global"; `is_bw` says whether a backward pass is running. Names follow
PyTorch: the outermost module seen is its class name, children `Parent.child`.

PyTorch's rules, kept because FlopCounterMode's per-module counts depend on them: a module is
entered in backward when the gradient of its output arrives and left when the gradients of its
inputs that require grad are complete; a module whose input needs no gradient (the first layer
on data) is left only when the pass ends, and then `parents` is reset to {"Global"}.

How: global module forward hooks (`descent.nn.modules.module.register_module_forward_*`) and,
for backward, tensor hooks on the module's outputs and inputs plus a backward-pass hook
(`descent.hooks.add_pass_hook`). Differences from PyTorch: a module with several outputs is
entered when the first of their gradients arrives (PyTorch waits for all of them); an input that
is a leaf tensor is only seen at the end of the pass.
"""

from __future__ import annotations

import logging
import weakref

from .. import hooks as _hooks

__all__ = ["ModuleTracker"]

logger = logging.getLogger(__name__)


def _grad_tensors(value) -> list:
    from ..tensor import Tensor
    from ._pytree import tree_flatten

    leaves, _ = tree_flatten(value)
    return [a for a in leaves if isinstance(a, Tensor) and a.requires_grad]


class ModuleTracker:
    """Track the module hierarchy during forward and backward (torch's ModuleTracker)."""

    parents: set

    def __init__(self) -> None:
        self.parents = {"Global"}
        self._known_modules: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._seen_modules: weakref.WeakSet = weakref.WeakSet()
        self._has_callback = False
        self._passes = 0  # backward passes running now
        self._pass_id = 0  # backward passes begun (the flop counter's per-pass marks)
        self._hooks: list = []
        # > 0 while a function the flop counter counts as one op runs (descent's fused
        # MultiheadAttention calls its out_proj module, PyTorch's calls F.linear): modules
        # called inside are not tracked
        self._paused = 0

    @property
    def is_bw(self) -> bool:
        """Whether a backward pass is running."""
        return self._passes > 0

    def _get_mod_name(self, mod) -> str:
        if mod not in self._known_modules:
            self._known_modules[mod] = type(mod).__name__
        name = self._known_modules[mod]
        if mod not in self._seen_modules:
            for child_name, child in mod.named_children():
                self._known_modules[child] = f"{name}.{child_name}"
                self._get_mod_name(child)
            self._seen_modules.add(mod)
        return name

    def _append(self, name: str, is_bw: bool) -> None:
        if is_bw:
            self._has_callback = True  # the pass's end resets `parents` (torch's callback)
        if name in self.parents:
            logger.info(
                "The module hierarchy tracking seems to be broken as this Module was already "
                "entered. %s during %s", name, "backward" if is_bw else "forward",
            )  # fmt: skip
        self.parents.add(name)

    def _pop(self, name: str, is_bw: bool) -> None:
        if name in self.parents:
            self.parents.remove(name)
        else:
            logger.info(
                "The Module hierarchy tracking is confused as we're exiting a Module that was "
                "never entered. %s during %s", name, "backward" if is_bw else "forward",
            )  # fmt: skip

    def _on_grads(self, tensors, action, first: bool) -> None:
        """Run `action()` when the gradient of the first (`first`) or of every one of `tensors`
        that has a graph node arrived (tensor hooks); leaves' gradients are only known at the
        pass's end, where `parents` is reset anyway. PyTorch waits for every gradient the pass
        computes; an output that the loss does not use (MultiheadAttention's weights) never
        gets one, so a module is entered at its first output gradient."""
        nodes = [t for t in tensors if t._node is not None]
        if not nodes:
            return
        # the hook holds counts only, never the tensors: a graph dropped without a backward
        # is freed while the tracker is active
        count = len(nodes)
        need = 1 if first else count
        state = {"left": need}

        def hook(_grad) -> None:
            state["left"] -= 1
            if state["left"] == 0:
                action()
            if state["left"] <= need - count:
                state["left"] = need  # every tensor seen: ready for another pass

        for t in nodes:
            self._hooks.append(t.register_hook(hook))

    def _fw_pre_hook(self, mod, args) -> None:
        if self._paused:
            return
        name = self._get_mod_name(mod)
        self._append(name, False)
        tensors = _grad_tensors(args)
        if tensors:
            self._on_grads(tensors, lambda: self._pop(name, True), first=False)

    def _fw_post_hook(self, mod, args, output) -> None:
        if self._paused:
            return
        name = self._get_mod_name(mod)
        self._pop(name, False)
        tensors = _grad_tensors(output)
        if tensors:
            self._on_grads(tensors, lambda: self._append(name, True), first=True)

    def _on_pass(self, event, *_args) -> None:
        if event == "begin":
            self._passes += 1
            self._pass_id += 1
            return
        self._passes -= 1
        if self._has_callback:
            self.parents = {"Global"}
            self._has_callback = False

    def __enter__(self) -> ModuleTracker:
        from ..nn.modules.module import (
            register_module_forward_hook,
            register_module_forward_pre_hook,
        )

        self._fw_pre_handle = register_module_forward_pre_hook(self._fw_pre_hook)
        self._fw_post_handle = register_module_forward_hook(self._fw_post_hook)
        self._pass_handle = _hooks.add_pass_hook(self._on_pass)
        return self

    def __exit__(self, *args) -> None:
        self._fw_pre_handle.remove()
        self._fw_post_handle.remove()
        self._pass_handle.remove()
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
