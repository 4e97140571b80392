"""`torch.compile(module)`'s result: a module wrapping the original (PyTorch's
`torch._dynamo.eval_frame.OptimizedModule`).

As in PyTorch, the original module is left as it was (calling it runs eagerly), the wrapper's
forward is the compiled call of the original (its hooks included), the original is the
wrapper's one child `_orig_mod` (so `state_dict()` keys carry the `_orig_mod.` prefix that
scripts strip, and `parameters()` are the original's), and reading or setting any other
attribute reads or sets the original's (`compiled.fc`, `compiled.eval()`'s `training`,
`compiled.some_flag = 1`). `Module.compile()` compiles a module in place instead (no wrapper,
no prefix).
"""

from __future__ import annotations

from typing import Any

from ..nn.module import Module


class OptimizedModule(Module):
    """A compiled module: `forward` is descent.compile of the original's call (see the module
    docstring). Not picklable (descent's checkpoints save state dicts, never objects)."""

    # the wrapper's own attributes; every other name is the original module's
    _opt_mod_attributes = frozenset(
        {"_orig_mod", "forward", "__dict__", "_super_module_initialized"}
    )

    def __init__(self, mod: Module, compiled: Any) -> None:
        object.__setattr__(self, "_orig_mod", mod)  # attribute reads below go through it
        object.__setattr__(self, "_super_module_initialized", False)
        super().__init__()
        object.__setattr__(self, "_super_module_initialized", True)
        self.__dict__.pop("_orig_mod")
        self._modules["_orig_mod"] = mod  # the one child: state_dict keys "_orig_mod.<name>"
        object.__setattr__(self, "forward", compiled)

    @property
    def training(self) -> bool:
        return self._orig_mod.training

    @training.setter
    def training(self, value: bool) -> None:
        if self.__dict__.get("_super_module_initialized"):
            self._orig_mod.training = value

    def __getattr__(self, name: str) -> Any:
        if name == "_orig_mod":
            d = self.__dict__
            return d["_modules"]["_orig_mod"] if "_modules" in d else d["_orig_mod"]
        return getattr(self._orig_mod, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if hasattr(type(self), name) or name in OptimizedModule._opt_mod_attributes:
            return super().__setattr__(name, value)
        return setattr(self._orig_mod, name, value)

    def __delattr__(self, name: str) -> None:
        if hasattr(type(self), name) or name in OptimizedModule._opt_mod_attributes:
            return super().__delattr__(name)
        return delattr(self._orig_mod, name)

    def __len__(self) -> int:
        try:
            return len(self._orig_mod)
        except TypeError:
            raise TypeError(f"{type(self._orig_mod).__name__} does not support len()") from None

    def __dir__(self) -> list[str]:
        own = self._orig_mod.__dir__()
        return own + [a for a in super().__dir__() if a not in own]

    def __reduce__(self):
        raise TypeError(
            "cannot pickle a compiled module (OptimizedModule): save its state_dict() "
            "(descent.save / safetensors) or pickle compiled._orig_mod"
        )
