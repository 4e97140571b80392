"""GroupNorm (Wu & He, 2018, "Group Normalization", arXiv:1803.08494).

Normalises each sample's channels in `num_groups` groups over the group's channels and the
spatial dimensions (independent of the batch size), then scales and shifts per channel. Same
arguments, parameter names and initialisation (weight 1, bias 0) as torch.nn.GroupNorm; the
arithmetic is `descent.nn.functional.group_norm`.
"""

from __future__ import annotations

from .. import creation
from ..errors import DescentError
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["GroupNorm"]


class GroupNorm(Module):
    """y = (x - mean_g) / sqrt(var_g + eps) * weight_c + bias_c over (N, C, *) inputs.

    Args:
        num_groups: groups the C channels are split into (must divide num_channels).
        num_channels: C, the size of dimension 1.
        eps: added to the (biased) variance.
        affine: learn a per-channel `weight` (ones) and `bias` (zeros).
        bias: with affine, also learn the bias (PyTorch's keyword).
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups})"
            )
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = Parameter(creation.empty(num_channels, device=device, dtype=dtype))
            if bias:
                self.bias = Parameter(creation.empty(num_channels, device=device, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise DescentError(
                f"GroupNorm({self.num_groups}, {self.num_channels}): expected input (N, "
                f"{self.num_channels}, *), got shape {tuple(input.shape)}"
            )
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )
