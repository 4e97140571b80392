"""torch.nn.utils.parametrize: a module's tensor recomputed from other tensors on every access.

    >>> register_parametrization(linear, "weight", Symmetric())
    >>> linear.weight            # Symmetric()(linear.parametrizations.weight.original)

How it works, as in PyTorch:
- The tensor (a Parameter or buffer) moves to `module.parametrizations[name].original` (the
  same Parameter object, so an optimizer that holds it keeps working; its value becomes
  `right_inverse(value)` when the parametrization has one). A `right_inverse` returning a
  tuple stores `original0`, `original1`, ... instead.
- The module's class is swapped for a subclass `Parametrized<Class>` holding a property
  `name`: reading it runs the parametrizations in order (`ParametrizationList.forward`),
  assigning to it runs their `right_inverse` in reverse and stores the result.
- `cached()` computes each parametrized tensor once inside the block.
- `remove_parametrizations` puts a plain tensor back (the current parametrized value, or the
  original) and restores the class when none is left.

state_dict keys are PyTorch's (`parametrizations.weight.original`, ...), so checkpoints move
between the libraries.
"""

from __future__ import annotations

import contextlib as _contextlib
import copy as _copy

from ... import backend as _backend
from ...grad_mode import no_grad as _no_grad
from ...tensor import Tensor
from ..container import ModuleDict, ModuleList
from ..module import Module
from ..parameter import Parameter

__all__ = [
    "ParametrizationList",
    "cached",
    "is_parametrized",
    "register_parametrization",
    "remove_parametrizations",
    "transfer_parametrizations_and_params",
    "type_before_parametrizations",
]

_cache_enabled = 0
_cache: dict = {}


@_contextlib.contextmanager
def cached():
    """Inside the block each parametrized tensor is computed once, on its first access (useful
    when a tensor is read many times per step, e.g. a recurrent weight)."""
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


def _set_data(target: Tensor, value: Tensor) -> None:
    """Give `target` (kept as the same object) the values of `value`, shape included."""
    arr = value._data if isinstance(value, Tensor) else value
    if target.dtype != arr.dtype:
        arr = arr.astype(target.dtype)
    target._data = _backend.to_device(arr.copy(), target.device)
    target._version += 1


def _register(module: Module, name: str, tensor: Tensor) -> None:
    """A Parameter stays a parameter, any other tensor becomes a buffer (PyTorch's rule)."""
    if isinstance(tensor, Parameter):
        module.register_parameter(name, tensor)
    else:
        module.register_buffer(name, tensor)


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, in order, and the original tensor(s) they read.

    Args:
        modules: the parametrizations (Modules; `right_inverse` optional).
        original: the tensor being parametrized.
        unsafe: skip the checks that the parametrized tensor keeps its shape and dtype.
    """

    def __init__(self, modules, original: Tensor, unsafe: bool = False) -> None:
        if not modules:
            raise ValueError("ParametrizationList requires one or more modules.")
        super().__init__(modules)
        self.unsafe = unsafe
        first = self[0]
        with _no_grad():
            new = first.right_inverse(original) if hasattr(first, "right_inverse") else original
        if isinstance(new, Tensor):
            self.is_tensor, self.ntensors = True, 1
            if not unsafe and (new.dtype != original.dtype or new.shape != original.shape):
                raise ValueError(
                    "When `right_inverse` outputs one tensor, it may not change the dtype or "
                    f"shape: original {original.dtype} {tuple(original.shape)}, right_inverse "
                    f"{new.dtype} {tuple(new.shape)}"
                )
            if new is not original:
                _set_data(original, new)  # the same Parameter object, now holding `new`
            _register(self, "original", original)
        else:
            if not isinstance(new, (tuple, list)) or not all(isinstance(t, Tensor) for t in new):
                raise ValueError(
                    "'right_inverse' must return a Tensor or a Sequence of tensors (list, "
                    f"tuple...). Got {type(new).__name__}"
                )
            self.is_tensor, self.ntensors = False, len(new)
            for i, t in enumerate(new):
                t = t.detach()
                if isinstance(original, Parameter):
                    t = Parameter(t, requires_grad=original.requires_grad)
                _register(self, f"original{i}", t)
        if not unsafe:
            z = self()
            if not isinstance(z, Tensor):
                raise ValueError(f"A parametrization must return a tensor. Got {type(z).__name__}.")
            if z.dtype != original.dtype or z.shape != original.shape:
                raise ValueError(
                    "Registering a parametrization may not change the shape of the tensor, "
                    "unless `unsafe` flag is enabled.\n"
                    f"unparametrized shape: {tuple(original.shape)} ({original.dtype})\n"
                    f"parametrized shape: {tuple(z.shape)} ({z.dtype})"
                )

    def right_inverse(self, value: Tensor) -> None:
        """Store the originals that make the parametrized tensor equal `value` (each
        parametrization's right_inverse, from the last to the first)."""
        with _no_grad():
            for module in reversed(list(self)[1:]):
                if not hasattr(module, "right_inverse"):
                    raise RuntimeError(
                        f"parametrization {type(module).__name__} does not implement right_inverse."
                    )
                value = module.right_inverse(value)
            first = self[0]
            if self.is_tensor:
                if hasattr(first, "right_inverse"):
                    value = first.right_inverse(value)
                _set_data(self.original, value)
            else:
                if not hasattr(first, "right_inverse"):
                    raise RuntimeError(
                        f"parametrization {type(first).__name__} does not implement right_inverse."
                    )
                values = first.right_inverse(value)
                if len(values) != self.ntensors:
                    raise ValueError(
                        f"'right_inverse' must return a sequence of {self.ntensors} tensors, "
                        f"got {len(values)}"
                    )
                for i, v in enumerate(values):
                    _set_data(getattr(self, f"original{i}"), v)

    def forward(self) -> Tensor:
        if self.is_tensor:
            x = self[0](self.original)
        else:
            x = self[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in list(self)[1:]:
            x = module(x)
        return x


def _inject_new_class(module: Module) -> None:
    """Swap the module's class for a subclass that can hold the parametrized properties (so
    other instances of the class are untouched)."""
    cls = module.__class__

    def default_deepcopy(self, memo):
        obj = memo.get(id(self))
        if obj is not None:
            return obj
        replica = self.__new__(self.__class__)
        memo[id(self)] = replica
        replica.__dict__ = _copy.deepcopy(self.__dict__, memo)
        return replica

    dct = {"_class_before_parametrizations": cls}
    if not hasattr(cls, "__deepcopy__"):
        dct["__deepcopy__"] = default_deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), dct)


def _inject_property(module: Module, tensor_name: str) -> None:
    def get_parametrized(self) -> Tensor:
        parametrization = self.parametrizations[tensor_name]
        if _cache_enabled:
            key = (id(self), tensor_name)
            tensor = _cache.get(key)
            if tensor is None:
                tensor = _cache[key] = parametrization()
            return tensor
        return parametrization()

    def set_original(self, value: Tensor) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether `module` has a parametrization (on `tensor_name`, or on any tensor)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if parametrizations is None or not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def type_before_parametrizations(module: Module) -> type:
    """The module's class before parametrizations swapped it."""
    if is_parametrized(module):
        return module.__class__._class_before_parametrizations
    return type(module)


def register_parametrization(
    module: Module, tensor_name: str, parametrization: Module, *, unsafe: bool = False
) -> Module:
    """Parametrize `module.<tensor_name>` by `parametrization` (a Module whose forward maps
    the original tensor(s) to the tensor; an optional `right_inverse` maps back). A second
    registration on the same name chains after the first.

    Returns:
        The module (its class is now `Parametrized<Class>`).

    Raises:
        ValueError: no parameter or buffer of that name, or a parametrization that changes
            the tensor's shape or dtype (unless unsafe=True).
    """
    if is_parametrized(module, tensor_name):
        plist = module.parametrizations[tensor_name]
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            if not isinstance(x, Tensor) or x.shape != y.shape or x.dtype != y.dtype:
                raise ValueError(
                    "Registering a parametrization may not change the shape of the tensor, "
                    f"unless `unsafe` flag is enabled: {tuple(y.shape)} -> "
                    f"{getattr(x, 'shape', None)}"
                )
        plist.append(parametrization)
        plist.unsafe |= unsafe
        return module
    if tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        _inject_property(module, tensor_name)
        module.parametrizations[tensor_name] = plist
        return module
    raise ValueError(
        f"Module '{module}' does not have a parameter, a buffer, or a parametrized element "
        f"with name '{tensor_name}'"
    )


def remove_parametrizations(
    module: Module, tensor_name: str, leave_parametrized: bool = True
) -> Module:
    """Remove the parametrizations on `tensor_name`: the tensor becomes a plain parameter (or
    buffer) again, holding its current parametrized value (leave_parametrized=True) or the
    original. The original Parameter object is reused when there was one tensor.

    Raises:
        ValueError: no parametrization on that name, or leave_parametrized=False for a tensor
            parametrized by several originals.
    """
    if not is_parametrized(module, tensor_name):
        raise ValueError(f"Module {module} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with _no_grad():
                t = getattr(module, tensor_name)
            _set_data(original, t)
    else:
        if not leave_parametrized:
            raise ValueError(
                "Cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                "parametrized in terms of a sequence of tensors."
            )
        # in the caller's grad mode, as PyTorch: a value that requires grad becomes a new
        # Parameter; one that does not (computed under no_grad, or from frozen originals)
        # stays a plain tensor, which registers as a buffer (HiFi-GAN's inference export
        # removing weight_norm under no_grad leaves `weight` a buffer in PyTorch)
        t = getattr(module, tensor_name)
        original = Parameter(t.detach()) if t.requires_grad else t
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__._class_before_parametrizations
    return module


def transfer_parametrizations_and_params(
    from_module: Module, to_module: Module, tensor_name: str | None = None
) -> Module:
    """Give `to_module` the parametrizations of `from_module` (all, or `tensor_name`'s) and
    their original tensors (shared: the same Parameter objects), creating the parametrized
    tensor on `to_module` first when it lacks it.

    Returns:
        to_module.
    """
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        source = from_module.parametrizations[name]
        if not hasattr(to_module, name):
            with _no_grad():
                value = getattr(from_module, name)
            to_module.register_parameter(name, Parameter(value.detach()))
        for parametrization in source:
            register_parametrization(to_module, name, parametrization)
        target = to_module.parametrizations[name]
        if source.is_tensor:
            target.original = source.original
        else:
            for i in range(source.ntensors):
                setattr(target, f"original{i}", getattr(source, f"original{i}"))
    return to_module
