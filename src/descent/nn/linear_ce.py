"""nn.LinearCrossEntropyLoss and LinearCrossEntropyOptions (torch 2.13): a Linear layer and
cross-entropy in one module (see functional/_linear_ce.py)."""

from __future__ import annotations

import math

from . import functional as F
from .linear import Linear
from .loss import _WeightedLoss

__all__ = ["LinearCrossEntropyLoss", "LinearCrossEntropyOptions"]


class LinearCrossEntropyOptions:
    """PyTorch's options for the chunked computation (accepted; descent computes the logits
    whole, with the same values)."""

    def __init__(self, **options) -> None:
        self.__dict__.update(options)


class LinearCrossEntropyLoss(_WeightedLoss):
    """cross_entropy(self.linear(input) reshaped to (N, C, *out_features), target).

    The weights live in `self.linear`, a Linear(in_features, C * prod(out_features)), as in
    PyTorch, so state dicts agree.
    """

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple = (),
                 bias: bool = False, device=None, dtype=None, reduction: str = "mean",
                 weight=None, ignore_index=None, label_smoothing: float = 0.0,
                 options=None) -> None:  # fmt: skip
        if weight is not None and tuple(weight.shape) != (num_classes,):
            raise RuntimeError(
                f"expected weight shape to be {(num_classes,)}, got {tuple(weight.shape)}"
            )
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(
                f"expected label_smoothing to be in range [0, 1], got {label_smoothing}"
            )
        super().__init__(weight=weight, reduction=reduction)
        self.num_classes = num_classes
        self.out_features = tuple(out_features)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.linear = Linear(in_features, math.prod(self.out_features, start=num_classes),
                             bias=bias, device=device, dtype=dtype)  # fmt: skip
        self.options = options

    def forward(self, input, target):
        w = self.linear.weight.reshape((self.num_classes, *self.out_features,
                                        self.linear.in_features))  # fmt: skip
        b = self.linear.bias
        if b is not None:
            b = b.reshape((self.num_classes, *self.out_features))
        return F.linear_cross_entropy(input, w, target, linear_bias=b, weight=self.weight,
                                      reduction=self.reduction, ignore_index=self.ignore_index,
                                      label_smoothing=self.label_smoothing,
                                      options=self.options)  # fmt: skip
