"""descent.nn.utils: torch.nn.utils' gradient clipping, parameter/vector conversions, the
weight_norm / spectral_norm hooks, and the submodules `rnn` (packed sequences), `parametrize`
and `parametrizations`.

    descent.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    vec = descent.nn.utils.parameters_to_vector(model.parameters())

Clipping is descent.optim.clip's (one implementation, two import paths, as in PyTorch where
the functions live in torch.nn.utils).
"""

from __future__ import annotations

import warnings as _warnings
from collections.abc import Iterable as _Iterable

from ...grad_mode import no_grad as _no_grad
from ...ops.shape import cat as _cat
from ...ops.shape import reshape as _reshape
from ...optim.clip import clip_grad_norm_, clip_grad_value_
from ...tensor import Tensor as _Tensor
from . import (  # noqa: F401  (torch.nn.utils' submodules)
    fusion,
    parametrizations,
    parametrize,
    prune,
    rnn,
    stateless,
)
from ._grad_norm import (
    clip_grads_with_norm_,
    convert_conv2d_weight_memory_format,
    convert_conv3d_weight_memory_format,
    get_total_norm,
    skip_init,
)
from ._norm_hooks import remove_spectral_norm, remove_weight_norm, spectral_norm, weight_norm
from .fusion import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)

__all__ = [
    "clip_grad_norm",
    "clip_grad_norm_",
    "clip_grad_value_",
    "parameters_to_vector",
    "vector_to_parameters",
    "weight_norm",
    "remove_weight_norm",
    "spectral_norm",
    "remove_spectral_norm",
    "get_total_norm",
    "clip_grads_with_norm_",
    "skip_init",
    "convert_conv2d_weight_memory_format",
    "convert_conv3d_weight_memory_format",
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
]


def clip_grad_norm(*args, **kwargs) -> _Tensor:
    """Deprecated spelling of `clip_grad_norm_` (as in PyTorch); warns, then clips."""
    _warnings.warn(
        "descent.nn.utils.clip_grad_norm is deprecated in favour of clip_grad_norm_ "
        "(the trailing underscore says it works in place)",
        FutureWarning,
        stacklevel=2,
    )
    return clip_grad_norm_(*args, **kwargs)


def _as_list(parameters: _Iterable[_Tensor] | _Tensor, where: str) -> list[_Tensor]:
    params = [parameters] if isinstance(parameters, _Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, _Tensor):
            raise TypeError(f"{where}: expected Tensors, got {type(p).__name__}")
    return params


def parameters_to_vector(parameters: _Iterable[_Tensor] | _Tensor) -> _Tensor:
    """All parameters flattened and joined into one 1-D tensor (differentiable).

    Raises:
        RuntimeError: the parameters are on different devices.
    """
    params = _as_list(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: got no parameters")
    devices = {str(p.device) for p in params}
    if len(devices) > 1:
        raise RuntimeError(
            f"parameters_to_vector: the parameters are on several devices {sorted(devices)}; "
            "move them to one device first"
        )
    return _cat([_reshape(p, (-1,)) for p in params])  # (sum of numels,)


def vector_to_parameters(vec: _Tensor, parameters: _Iterable[_Tensor] | _Tensor) -> None:
    """Copy consecutive slices of the 1-D `vec` into the parameters, in place and without
    recording a graph (the parameters keep their identity, so optimizers still hold them).

    Raises:
        TypeError: `vec` is not a Tensor.
        ValueError: `vec` is not 1-D, or its length differs from the parameters' total size.
    """
    if not isinstance(vec, _Tensor):
        raise TypeError(f"vector_to_parameters: expected vec to be a Tensor, got {type(vec)}")
    params = _as_list(parameters, "vector_to_parameters")
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(
            f"vector_to_parameters: vec has shape {tuple(vec.shape)}, the parameters hold "
            f"{total} numbers; pass a 1-D vector of that length"
        )
    start = 0
    with _no_grad():
        for p in params:
            n = p.numel()
            p.copy_(_reshape(vec[start : start + n], tuple(p.shape)))
            start += n
