"""InstanceNorm1d / 2d / 3d (Ulyanov et al., 2016, "Instance Normalization: The Missing
Ingredient for Fast Stylization", arXiv:1607.08022).

Each channel of each sample is normalised over its spatial dimensions. Same arguments,
parameter and buffer names and defaults (affine=False, track_running_stats=False) as
torch.nn. With track_running_stats, training also updates running estimates (the batch mean
of the per-instance means and UNBIASED variances, with `momentum`) and evaluation normalises
with them, as PyTorch does.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import functional as F
from .normalization import _NormBase

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


class _InstanceNorm(_NormBase):
    _no_batch_dim = 0  # the input rank without a batch dimension (2 for 1d, 3 for 2d)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias)  # fmt: skip

    def forward(self, input):
        name = type(self).__name__
        nb = self._no_batch_dim
        if input.ndim not in (nb, nb + 1):
            raise ValueError(
                f"{name}: expected {nb}D (unbatched) or {nb + 1}D (batched) input, got "
                f"{input.ndim}D input of shape {tuple(input.shape)}"
            )
        batched = input.ndim == nb + 1
        if not batched:
            input = input.unsqueeze(0)  # (1, C, *)
        channels = input.shape[1]
        if channels != self.num_features:
            if self.affine:
                raise ValueError(
                    f"{name}: expected input's size at dim={1 if batched else 0} to match "
                    f"num_features ({self.num_features}), but got: {channels}."
                )
            warnings.warn(
                f"{name}: input has {channels} channels, num_features is {self.num_features}; "
                "the channels are normalised anyway (there are no per-channel parameters)",
                stacklevel=2,
            )
        use_input_stats = self.training or not self.track_running_stats
        if use_input_stats and int(np.prod(input.shape[2:])) <= 1:
            raise ValueError(
                f"{name}: expected more than 1 spatial element when training, got input "
                f"of shape {tuple(input.shape)}"
            )
        # Running statistics are read in evaluation and updated in training, when tracked.
        y = F.instance_norm(
            input, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
            0.0 if self.momentum is None else self.momentum, self.eps,
        )  # fmt: skip
        return y if batched else y[0]

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class InstanceNorm1d(_InstanceNorm):
    """Instance norm over (N, C, L) or unbatched (C, L) inputs."""

    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance norm over (N, C, H, W) or unbatched (C, H, W) inputs."""

    _no_batch_dim = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance norm over (N, C, D, H, W) or unbatched (C, D, H, W) inputs."""

    _no_batch_dim = 4
