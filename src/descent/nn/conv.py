"""Convolution layers: Conv1d and Conv2d (cross-correlation, as PyTorch).

Same arguments, parameter shapes (`weight` (C_out, C_in / groups, *kernel)) and initialisation
as torch.nn; the computation is `descent.nn.functional.conv1d`/`conv2d` (one fused op each).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .. import creation
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Conv1d", "Conv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n: int, name: str) -> tuple[int, ...]:
    """`3` -> (3, 3); `(3, 2)` stays; checks the length (conv and pooling arguments)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = tuple(int(v) for v in value)
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value}")
        return value
    return (int(value),) * n


def _make_parameters(module, shape, out_channels: int, bias: bool, device, dtype) -> None:
    """The weight (of `shape`) and the optional bias of a conv or transposed conv, created empty
    and filled by reset_parameters, as PyTorch."""
    module.weight = Parameter(creation.empty(*shape, device=device, dtype=dtype))
    if bias:
        module.bias = Parameter(creation.empty(out_channels, device=device, dtype=dtype))
    else:
        module.register_parameter("bias", None)
    module.reset_parameters()


def _reset_conv_parameters(module) -> None:
    # PyTorch's rule for every conv, transposed or not: kaiming_uniform(a=sqrt(5)) on the weight
    # as laid out (bound 1/sqrt(fan_in), fan_in = weight.shape[1] * prod(kernel)), the bias
    # U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    init.kaiming_uniform_(module.weight, a=math.sqrt(5))
    if module.bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(module.weight)
        if fan_in != 0:
            bound = 1 / math.sqrt(fan_in)
            init.uniform_(module.bias, -bound, bound)


class _ConvNd(Module):
    """What Conv1d and Conv2d share: argument checks, parameters, initialisation, repr."""

    _n = 0  # number of spatial dimensions, set by each subclass

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        n = self._n
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{type(self).__name__}: in_channels ({in_channels}) and out_channels "
                f"({out_channels}) must both be divisible by groups ({groups})"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {list(_PADDING_MODES)}, but got "
                f"padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size")
        self.stride = _ntuple(stride, n, "stride")
        self.dilation = _ntuple(dilation, n, "dilation")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid' or ints, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _ntuple(padding, n, "padding")
        self.groups = groups
        self.padding_mode = padding_mode
        # F.pad's argument for a padding_mode other than 'zeros' (PyTorch's attribute name):
        # the last dimension first, (left, right) each; 'same' splits d (k - 1) as PyTorch.
        pads: list[int] = []
        for d in reversed(range(n)):
            if self.padding == "valid":
                left = right = 0
            elif self.padding == "same":
                total = self.dilation[d] * (self.kernel_size[d] - 1)
                left, right = total // 2, total - total // 2
            else:
                left = right = self.padding[d]
            pads += [left, right]
        self._reversed_padding_repeated_twice = pads
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        _make_parameters(self, shape, out_channels, bias, device, dtype)

    def reset_parameters(self) -> None:
        _reset_conv_parameters(self)

    def _pad_input(self, x):
        """(input, padding) for the conv: a 'reflect' / 'replicate' / 'circular' padding is
        applied to the input by F.pad and the conv itself pads nothing (PyTorch's way)."""
        if self.padding_mode == "zeros":
            return x, self.padding
        return F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode), 0

    def extra_repr(self) -> str:
        n = self._n
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"  # PyTorch prints 'same' unquoted
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution (cross-correlation, as PyTorch) over (N, C_in, L) inputs.

    Parameters: `weight` (C_out, C_in / groups, k), `bias` (C_out,), PyTorch's initialisation.
    """

    _n = 1

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)

    def _conv_forward(self, input, weight, bias):
        """PyTorch's hook for subclasses that convolve with a transformed weight (QAT's fake
        quantized weights, weight standardisation): `self._conv_forward(x, w, self.bias)`."""
        input, padding = self._pad_input(input)
        return F.conv1d(input, weight, bias, self.stride, padding, self.dilation, self.groups)


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation, as PyTorch) over (N, C_in, H, W) inputs.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size, stride, padding, dilation: ints or (h, w) pairs; padding may be 'same'
            or 'valid'.
        groups: split channels into independent groups (groups=in_channels: depthwise).
        bias: learn a per-output-channel bias.

    Parameters: `weight` (C_out, C_in / groups, kh, kw), `bias` (C_out,).
    """

    _n = 2

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)

    def _conv_forward(self, input, weight, bias):
        """PyTorch's hook for subclasses that convolve with a transformed weight (QAT's fake
        quantized weights, weight standardisation): `self._conv_forward(x, w, self.bias)`."""
        input, padding = self._pad_input(input)
        return F.conv2d(input, weight, bias, self.stride, padding, self.dilation, self.groups)
