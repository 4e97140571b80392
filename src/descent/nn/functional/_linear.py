"""linear: y = x W^T + b, the layer behind nn.Linear, as one fused op (`descent.ops.linear`)."""

from __future__ import annotations

from ... import amp
from ...ops._common import as_tensor
from ...ops.linear import Linear
from ...tensor import Tensor

__all__ = ["linear"]


def linear(input, weight, bias=None) -> Tensor:
    """y = x W^T + b with W of shape (out_features, in_features); one fused op."""
    x = as_tensor(input)
    w = as_tensor(weight)
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise ValueError(
            f"linear: input of shape {tuple(x.shape)} has {x.shape[-1] if x.ndim else 0} "
            f"features but the weight {tuple(w.shape)} expects {w.shape[-1]} (weight is "
            "(out_features, in_features))"
        )
    if amp._depth:  # inside descent.autocast: the product in the low dtype
        x, w, bias = amp.lower(x, w, None if bias is None else as_tensor(bias))
    if bias is None:
        return Linear.apply(x, w, has_b=False)
    b = as_tensor(bias)
    if tuple(b.shape) != (w.shape[0],):
        return Linear.apply(x, w, has_b=False) + b  # an unusual bias shape: broadcast add
    return Linear.apply(x, w, b, has_b=True)
