"""Dropout1d / Dropout2d: zero whole channels (Tompson et al., 2015, "Efficient Object
Localization Using Convolutional Networks"), as torch.nn's.

Adjacent positions in a feature map are strongly correlated, so element-wise dropout barely
regularises convolutions; these drop each channel of each sample entirely (probability p) and
scale the kept ones by 1/(1-p). The identity in eval mode. The mask is a constant multiplier
drawn from the default generator (`descent.manual_seed`).
"""

from __future__ import annotations

import warnings

from ..tensor import Tensor
from .functional._dropout import dropout_mask
from .functional._inplace_apply import apply_inplace
from .module import Module

__all__ = ["Dropout1d", "Dropout2d"]


def _channel_dropout(x: Tensor, p: float, batched: bool) -> Tensor:
    """x · mask with one mask value per (sample, channel), broadcast over the other dims."""
    if p == 1.0:  # all dropped: the 1/(1-p) scale would divide by zero
        return x * 0.0
    lead = 2 if batched else 1
    shape = tuple(x.shape[:lead]) + (1,) * (x.ndim - lead)  # (N, C, 1, ...) or (C, 1, ...)
    mask = dropout_mask(shape, p, x._data.dtype, x.device, None)
    return x * Tensor._wrap(mask)


class _DropoutNd(Module):
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(
                f"{type(self).__name__}: dropout probability has to be between 0 and 1, but got {p}"
            )
        self.p = p
        self.inplace = inplace

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(_DropoutNd):
    """Channel dropout for (N, C, L) or unbatched (C, L) inputs."""

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (2, 3):
            raise ValueError(
                f"dropout1d: Expected 2D or 3D input, but received a {input.ndim}D input of shape "
                f"{tuple(input.shape)} (channel-wise dropout over (N, C, L) or (C, L))"
            )
        if not self.training or self.p == 0.0:
            return input
        if self.inplace:  # one mask, its result stored in the input, as PyTorch
            batched = input.ndim == 3
            drop = lambda t: _channel_dropout(t, self.p, batched)  # noqa: E731
            return apply_inplace(input, drop, "dropout1d_")
        return _channel_dropout(input, self.p, batched=input.ndim == 3)


class Dropout2d(_DropoutNd):
    """Channel dropout for (N, C, H, W) inputs.

    As PyTorch, a 3D input is taken as (N, C, L) (1D channel-wise behaviour, with a warning),
    not as an unbatched (C, H, W); other ranks warn and drop along dims 0 and 1.
    """

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim == 3:
            warnings.warn(
                "dropout2d: Received a 3D input and assuming channel-wise 1D dropout behavior "
                "(input interpreted as (N, C, L)), as PyTorch does; use Dropout1d for that, or "
                "unsqueeze a (C, H, W) input to (1, C, H, W)",
                stacklevel=2,
            )
        elif input.ndim != 4:
            warnings.warn(
                f"dropout2d: Received a {input.ndim}-D input; dropout2d is meant for 4D "
                "(N, C, H, W) inputs",
                stacklevel=2,
            )
        if not self.training or self.p == 0.0:
            return input
        if self.inplace:
            batched = input.ndim >= 2
            drop = lambda t: _channel_dropout(t, self.p, batched)  # noqa: E731
            return apply_inplace(input, drop, "dropout2d_")
        return _channel_dropout(input, self.p, batched=input.ndim >= 2)
