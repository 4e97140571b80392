"""Transposed convolution layers: ConvTranspose1d/2d/3d, and Conv3d.

Same arguments, parameter shapes and initialisation as torch.nn: a transposed convolution's
`weight` is (C_in, C_out / groups, *kernel) (the layout of the convolution it transposes), its
fan-in for initialisation is therefore weight.shape[1] * prod(kernel), as PyTorch computes it.
The computation is `descent.nn.functional.conv_transpose1d/2d/3d` and `conv3d`.
"""

from __future__ import annotations

from . import functional as F
from .conv import _ConvNd, _make_parameters, _ntuple, _reset_conv_parameters
from .module import Module

__all__ = ["Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class Conv3d(_ConvNd):
    """3-D convolution (cross-correlation, as PyTorch) over (N, C_in, D, H, W) inputs.

    Parameters: `weight` (C_out, C_in / groups, kd, kh, kw), `bias` (C_out,).
    """

    _n = 3

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)

    def _conv_forward(self, input, weight, bias):
        """PyTorch's hook for subclasses that convolve with a transformed weight (QAT's fake
        quantized weights, weight standardisation): `self._conv_forward(x, w, self.bias)`."""
        input, padding = self._pad_input(input)
        return F.conv3d(input, weight, bias, self.stride, padding, self.dilation, self.groups)


class _ConvTransposeNd(Module):
    """What the transposed convolutions share: checks, parameters, initialisation, repr."""

    _n = 0  # spatial dimensions, set by each subclass

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        n, name = self._n, type(self).__name__
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                f"both be divisible by groups ({groups})"
            )
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported (as PyTorch)")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size")
        self.stride = _ntuple(stride, n, "stride")
        self.padding = _ntuple(padding, n, "padding")
        self.output_padding = _ntuple(output_padding, n, "output_padding")
        self.dilation = _ntuple(dilation, n, "dilation")
        self.groups, self.padding_mode = groups, padding_mode
        shape = (in_channels, out_channels // groups, *self.kernel_size)
        _make_parameters(self, shape, out_channels, bias, device, dtype)

    def reset_parameters(self) -> None:
        # The weight is laid out (C_in, C_out / groups, *kernel): fan_in = C_out / groups * k.
        _reset_conv_parameters(self)

    def _output_padding(self, x, output_size) -> tuple[int, ...]:
        """output_padding, or the one that makes the output `output_size` (PyTorch's
        forward(input, output_size=...))."""
        if output_size is None:
            return self.output_padding
        n = self._n
        size = tuple(int(v) for v in output_size)[-n:]
        spatial = tuple(x.shape[-n:])
        pads = []
        for i in range(n):
            least = ((spatial[i] - 1) * self.stride[i] - 2 * self.padding[i]
                     + self.dilation[i] * (self.kernel_size[i] - 1) + 1)  # fmt: skip
            extra = size[i] - least
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(
                    f"{type(self).__name__}: requested output size {size} is not reachable "
                    f"from input {tuple(x.shape)} (dimension {i} allows {least} to "
                    f"{least + max(self.stride[i], self.dilation[i]) - 1})"
                )
            pads.append(extra)
        return tuple(pads)

    def extra_repr(self) -> str:
        n = self._n
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution over (N, C_in, L): the gradient of Conv1d with respect to
    its input. Parameters: `weight` (C_in, C_out / groups, k), `bias` (C_out,)."""

    _n = 1

    def forward(self, input, output_size=None):  # PyTorch's names
        return F.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)  # fmt: skip


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution ("deconvolution") over (N, C_in, H, W): output size
    (H - 1) s - 2 p + d (k - 1) + output_padding + 1. Parameters: `weight`
    (C_in, C_out / groups, kh, kw), `bias` (C_out,)."""

    _n = 2

    def forward(self, input, output_size=None):
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)  # fmt: skip


class ConvTranspose3d(_ConvTransposeNd):
    """Transposed 3-D convolution over (N, C_in, D, H, W). Parameters: `weight`
    (C_in, C_out / groups, kd, kh, kw), `bias` (C_out,)."""

    _n = 3

    def forward(self, input, output_size=None):
        return F.conv_transpose3d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)  # fmt: skip
