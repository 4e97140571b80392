"""torch.nn.utils.fusion: fold an evaluation-mode BatchNorm into the convolution or linear
layer before it, y = bn(conv(x)) = conv'(x), with

    w' = w * gamma / sqrt(running_var + eps)        (per output channel)
    b' = (b - running_mean) * gamma / sqrt(running_var + eps) + beta

PyTorch's functions, arguments and checks (they assert evaluation mode); the fused layer is a
deep copy, the originals are unchanged.
"""

from __future__ import annotations

import copy

from ...grad_mode import no_grad
from ...tensor import Tensor
from ..module import Module
from ..parameter import Parameter

__all__ = [
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
]


def _zeros_like(t: Tensor) -> Tensor:
    return t.detach() * 0.0


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """The fused (weight, bias) Parameters of a convolution followed by a BatchNorm (the output
    channels are dim 0 of the weight, dim 1 with transpose=True)."""
    w_dtype = conv_w.dtype
    b_dtype = conv_b.dtype if conv_b is not None else w_dtype
    b_grad = conv_b.requires_grad if conv_b is not None else False
    with no_grad():
        conv_b = _zeros_like(bn_rm) if conv_b is None else conv_b
        bn_w = _zeros_like(bn_rm) + 1.0 if bn_w is None else bn_w
        bn_b = _zeros_like(bn_rm) if bn_b is None else bn_b
        rsqrt = (bn_rv + bn_eps) ** -0.5
        shape = ([1, -1] if transpose else [-1, 1]) + [1] * (conv_w.ndim - 2)
        fused_w = (conv_w * (bn_w * rsqrt).reshape(shape)).to(w_dtype)
        fused_b = ((conv_b - bn_rm) * rsqrt * bn_w + bn_b).to(b_dtype)
    return (Parameter(fused_w.detach(), requires_grad=conv_w.requires_grad),
            Parameter(fused_b.detach(), requires_grad=b_grad))  # fmt: skip


def fuse_conv_bn_eval(conv: Module, bn: Module, transpose: bool = False) -> Module:
    """A copy of `conv` that computes bn(conv(x)) (both in evaluation mode)."""
    assert not (conv.training or bn.training), "Fusion only for eval!"
    fused = copy.deepcopy(conv)
    assert bn.running_mean is not None and bn.running_var is not None
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
        transpose,
    )  # fmt: skip
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """The fused (weight, bias) Parameters of a Linear followed by a BatchNorm."""
    w_dtype = linear_w.dtype
    b_dtype = linear_b.dtype if linear_b is not None else w_dtype
    b_grad = linear_b.requires_grad if linear_b is not None else False
    with no_grad():
        linear_b = _zeros_like(bn_rm) if linear_b is None else linear_b
        scale = bn_w * (bn_rv + bn_eps) ** -0.5
        fused_w = linear_w * scale.unsqueeze(-1).to(w_dtype)
        fused_b = ((linear_b - bn_rm) * scale + bn_b).to(b_dtype)
    return (Parameter(fused_w.detach(), requires_grad=linear_w.requires_grad),
            Parameter(fused_b.detach(), requires_grad=b_grad))  # fmt: skip


def fuse_linear_bn_eval(linear: Module, bn: Module) -> Module:
    """A copy of `linear` that computes bn(linear(x)) (both in evaluation mode)."""
    assert not (linear.training or bn.training), "Fusion only for eval!"
    assert linear.out_features == bn.num_features or bn.num_features == 1, (
        "To fuse, linear.out_features == bn.num_features or bn.num_features == 1"
    )
    fused = copy.deepcopy(linear)
    assert bn.running_mean is not None and bn.running_var is not None
    fused.weight, fused.bias = fuse_linear_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
    )
    return fused
