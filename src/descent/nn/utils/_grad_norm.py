"""torch.nn.utils.get_total_norm and clip_grads_with_norm_: clip_grad_norm_ in two steps (the
norm, then the scaling), as PyTorch 2.6 split it; plus skip_init and the memory-format
converters of conv weights."""

from __future__ import annotations

import inspect
import math

from ...grad_mode import no_grad
from ...ops import reduce as _red
from ...ops import shape as _shape
from ...tensor import Tensor

__all__ = [
    "get_total_norm",
    "clip_grads_with_norm_",
    "skip_init",
    "convert_conv2d_weight_memory_format",
    "convert_conv3d_weight_memory_format",
]


def _norm(t: Tensor, p: float) -> Tensor:
    flat = t.reshape(-1)
    if p == math.inf:
        return flat.abs().max() if flat.shape[0] else flat.sum() * 0.0
    return _red.norm(flat, ord=p)


def get_total_norm(tensors, norm_type: float | str = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:  # fmt: skip
    """The p-norm of all the tensors together (the norm of their norms), a 0-d tensor.

    Raises:
        RuntimeError: error_if_nonfinite and the norm is nan or inf.
    """
    ts = [tensors] if isinstance(tensors, Tensor) else [t for t in tensors if t is not None]
    p = float(norm_type)
    if not ts:
        return Tensor(0.0)
    total = _norm(_shape.stack([_norm(t, p) for t in ts]), p)
    if error_if_nonfinite and not math.isfinite(float(total.item())):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Multiply every gradient in place by min(1, max_norm / (total_norm + 1e-6))."""
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    norm = float(total_norm.item() if isinstance(total_norm, Tensor) else total_norm)
    coef = min(float(max_norm) / (norm + 1e-6), 1.0)
    with no_grad():
        for g in grads:
            g._data *= g._data.dtype.type(coef)
            g._version += 1


def skip_init(module_cls, *args, **kwargs):
    """`module_cls(*args, **kwargs)`: PyTorch skips the initialisation (its values are then
    undefined); descent initialises as usual, which is one valid outcome.

    Raises:
        RuntimeError: the class takes no `device` argument (PyTorch's requirement).
    """
    if "device" not in inspect.signature(module_cls).parameters:
        raise RuntimeError("Module must support a 'device' arg to skip initialization")
    return module_cls(*args, **kwargs)


def _convert_conv_weights(module, memory_format, kinds):
    from ... import memory_layout

    name = memory_layout.format_name(memory_format)
    if isinstance(module, kinds):
        w = module.weight
        w._data = memory_layout.copy_as(w._data, name)
        w._version += 1
    for child in module.children():
        _convert_conv_weights(child, memory_format, kinds)
    return module


def convert_conv2d_weight_memory_format(module, memory_format):
    """Lay out the weights of every Conv2d / ConvTranspose2d in `module` (recursively) in
    `memory_format` (torch.channels_last, or torch.contiguous_format back), in place, as
    PyTorch's; returns `module`."""
    from ..conv import Conv2d
    from ..conv_transpose import ConvTranspose2d

    return _convert_conv_weights(module, memory_format, (Conv2d, ConvTranspose2d))


def convert_conv3d_weight_memory_format(module, memory_format):
    """convert_conv2d_weight_memory_format for Conv3d / ConvTranspose3d (channels_last_3d)."""
    from ..conv_transpose import Conv3d, ConvTranspose3d

    return _convert_conv_weights(module, memory_format, (Conv3d, ConvTranspose3d))
