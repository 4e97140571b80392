"""The older torch.nn.utils.weight_norm / spectral_norm (and their remove_* functions), which
recompute the weight in a forward pre-hook instead of a parametrization; PyTorch keeps them
(deprecated in favour of `parametrizations`), with these state_dict keys:

    weight_norm:    <name>_g (the norm over every dim but `dim`), <name>_v (the direction)
    spectral_norm:  <name>_orig (the raw weight), buffers <name>_u, <name>_v

Before each forward the hook sets `module.<name>` to a plain tensor computed from them (with
one power iteration per training-mode call for spectral_norm), so the layer's forward reads
the normalised weight and gradients reach <name>_g / <name>_v / <name>_orig.
"""

from __future__ import annotations

import warnings

from ...grad_mode import no_grad
from ...tensor import Tensor
from ..module import Module
from ..parameter import Parameter
from .parametrizations import _norm_except_dim, _normalize, _SpectralNorm

__all__ = ["weight_norm", "remove_weight_norm", "spectral_norm", "remove_spectral_norm"]


class WeightNorm:
    """The pre-hook of `weight_norm`: module.<name> = g * v / ||v||."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim = name, dim

    def compute_weight(self, module: Module) -> Tensor:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return v * (g / _norm_except_dim(v, self.dim))

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module))


def _find_hook(module: Module, kind: type, name: str):
    for key, hook in module._forward_pre_hooks.items():
        if isinstance(hook, kind) and hook.name == name:
            return key, hook
    return None, None


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Split `module.<name>` into `<name>_g` (its norm over every dim but `dim`; the whole
    tensor when dim is None) and `<name>_v` (the tensor), recombined before each forward.
    Prefer `nn.utils.parametrizations.weight_norm` (PyTorch deprecates this one too).

    Raises:
        RuntimeError: a weight_norm hook on the same name already exists.
    """
    warnings.warn(
        "descent.nn.utils.weight_norm is deprecated in favor of "
        "descent.nn.utils.parametrizations.weight_norm (as in PyTorch)",
        FutureWarning,
        stacklevel=2,
    )
    if _find_hook(module, WeightNorm, name)[1] is not None:
        raise RuntimeError(f"Cannot register two weight_norm hooks on the same parameter {name}")
    fn = WeightNorm(name, -1 if dim is None else dim)
    weight = getattr(module, name)
    del module._parameters[name]
    with no_grad():
        g = _norm_except_dim(weight, fn.dim)
    module.register_parameter(name + "_g", Parameter(g.detach()))
    module.register_parameter(name + "_v", Parameter(Tensor._wrap(weight._data)))
    setattr(module, name, fn.compute_weight(module))
    module.register_forward_pre_hook(fn)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo `weight_norm`: `<name>` becomes one Parameter again (its current value).

    Raises:
        ValueError: the module has no weight_norm on `name`.
    """
    key, fn = _find_hook(module, WeightNorm, name)
    if fn is None:
        raise ValueError(f"weight_norm of '{name}' not found in {module}")
    with no_grad():
        weight = fn.compute_weight(module)
    delattr(module, name)
    del module._parameters[name + "_g"]
    del module._parameters[name + "_v"]
    module.register_parameter(name, Parameter(weight.detach()))
    del module._forward_pre_hooks[key]
    return module


class SpectralNorm:
    """The pre-hook of `spectral_norm`: module.<name> = <name>_orig / sigma."""

    def __init__(self, name: str, n_power_iterations: int, dim: int, eps: float) -> None:
        if n_power_iterations <= 0:
            raise ValueError(
                "Expected n_power_iterations to be positive, but got "
                f"n_power_iterations={n_power_iterations}"
            )
        self.name, self.n_power_iterations, self.dim, self.eps = name, n_power_iterations, dim, eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        return _SpectralNorm._reshape_weight_to_matrix(self, weight)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u_buf, v_buf = getattr(module, self.name + "_u"), getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            # PyTorch's order here: v first, then u (the parametrization does u, then v).
            w, u, v = weight_mat._data, u_buf._data, v_buf._data
            for _ in range(self.n_power_iterations):
                v = _normalize(w.T @ u, self.eps)
                u = _normalize(w @ v, self.eps)
            for buf, new in ((u_buf, u), (v_buf, v)):
                buf._data[...] = new
                buf._version += 1
        u = Tensor._wrap(u_buf._data.copy())
        v = Tensor._wrap(v_buf._data.copy())
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    def __call__(self, module: Module, inputs) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))


def spectral_norm(
    module: Module,
    name: str = "weight",
    n_power_iterations: int = 1,
    eps: float = 1e-12,
    dim: int | None = None,
) -> Module:
    """Divide `module.<name>` by its spectral norm before each forward (power iteration with
    buffers `<name>_u`, `<name>_v`, drawn from descent's generator; the raw weight becomes
    `<name>_orig`). Prefer `nn.utils.parametrizations.spectral_norm`.

    Raises:
        RuntimeError: a spectral_norm hook on the same name already exists.
        ValueError: n_power_iterations <= 0.
    """
    if _find_hook(module, SpectralNorm, name)[1] is not None:
        raise RuntimeError(f"Cannot register two spectral_norm hooks on the same parameter {name}")
    if dim is None:
        dim = 1 if type(module).__name__.startswith("ConvTranspose") else 0
    weight = getattr(module, name)
    fn = SpectralNorm(name, n_power_iterations, dim if dim >= 0 else dim + weight.ndim, eps)
    from ... import creation

    mat = fn.reshape_weight_to_matrix(weight)
    h, w = mat.shape
    u = _normalize(creation.randn(h, dtype=weight.dtype, device=weight.device)._data, eps)
    v = _normalize(creation.randn(w, dtype=weight.dtype, device=weight.device)._data, eps)
    del module._parameters[name]
    module.register_parameter(name + "_orig", weight)
    setattr(module, name, Tensor._wrap(weight._data))
    module.register_buffer(name + "_u", Tensor._wrap(u))
    module.register_buffer(name + "_v", Tensor._wrap(v))
    module.register_forward_pre_hook(fn)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo `spectral_norm`: `<name>` becomes one Parameter holding the normalised weight.

    Raises:
        ValueError: the module has no spectral_norm on `name`.
    """
    key, fn = _find_hook(module, SpectralNorm, name)
    if fn is None:
        raise ValueError(f"spectral_norm of '{name}' not found in {module}")
    with no_grad():
        weight = fn.compute_weight(module, do_power_iteration=False)
    delattr(module, name)
    for suffix in ("_u", "_v"):
        del module._buffers[name + suffix]
    del module._parameters[name + "_orig"]
    module.register_parameter(name, Parameter(weight.detach()))
    del module._forward_pre_hooks[key]
    return module
