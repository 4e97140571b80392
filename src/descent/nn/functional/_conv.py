"""Convolution: conv2d as one fused op (im2col + one matrix product), conv1d on top of it.

The op lives in `descent.ops.conv`; this file turns PyTorch's arguments (int or pair, padding
'same'/'valid', groups, unbatched input) into the op's geometry tuple
(kh, kw, sh, sw, dh, dw, ph, pw) and checks shapes with errors that name both.
"""

from __future__ import annotations

from ... import amp
from ...errors import DescentError
from ...grad_fn import show_as
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...ops.conv import Conv2d, prefer_conv_nd
from ...tensor import Tensor
from ._conv_extra import _conv_nd, check_conv_args, check_conv_bias, check_conv_dtypes
from ._inputs import int_tuple
from ._padding import pad

__all__ = ["conv1d", "conv2d"]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """2-D cross-correlation of (N, C, H, W) (or unbatched (C, H, W)) with weight
    (O, C/groups, kh, kw). padding: int, pair, 'valid' or 'same' (stride 1). One fused op
    (im2col + one matrix product)."""
    x, w = as_tensor(input), as_tensor(weight)
    if x._data.dtype.kind not in "fV":  # integer and complex inputs: the generic N-d path
        return _conv_nd(x, w, bias, stride, padding, dilation, int(groups), 2, "conv2d")
    if amp._depth:  # inside descent.autocast: the convolution in the low dtype
        x, w, bias = amp._lower(x, w, None if bias is None else as_tensor(bias))
    unbatched = x.ndim == 3
    if unbatched:
        x = _shape.unsqueeze(x, 0)
    if x.ndim != 4 or w.ndim != 4:
        raise DescentError(
            f"conv2d: expected input (N, C, H, W) and weight (O, C/groups, kh, kw), got "
            f"{tuple(x.shape)} and {tuple(w.shape)}"
        )
    check_conv_dtypes(x, w, bias, "conv2d")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    check_conv_bias("conv2d", w, bias, groups)
    if groups < 1 or c % groups or o % groups or cg != c // groups:
        raise DescentError(
            f"conv2d: input has {c} channels, weight {tuple(w.shape)} with groups={groups}: "
            f"need weight.shape[1] == C/groups ({c // max(groups, 1)}) and O divisible by groups"
        )
    sh, sw = int_tuple(stride, 2, "stride", "conv2d")
    dh, dw = int_tuple(dilation, 2, "dilation", "conv2d")
    check_conv_args("conv2d", (sh, sw), (dh, dw), None if isinstance(padding, str) else padding)
    if isinstance(padding, str):
        if padding == "valid":
            ph = pw = 0
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise DescentError("conv2d: padding='same' needs stride 1, as in PyTorch")
            # Output size = input size at stride 1: pad the dilated kernel's extent minus one.
            th, tw = dh * (kh - 1), dw * (kw - 1)
            ph, pw = th // 2, tw // 2
            if th % 2 or tw % 2:  # asymmetric: the extra row/column goes after, as PyTorch
                x = pad(x, (pw, tw - pw, ph, th - ph))
                ph = pw = 0
        else:
            raise DescentError(
                f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"
            )
    else:
        ph, pw = int_tuple(padding, 2, "padding", "conv2d")
    hp, wp = x.shape[2] + 2 * ph, x.shape[3] + 2 * pw
    if hp < dh * (kh - 1) + 1 or wp < dw * (kw - 1) + 1:
        raise DescentError(
            f"conv2d: the kernel {kh}x{kw} (dilation {dh},{dw}) is larger than the padded input "
            f"{hp}x{wp}"
        )
    geom = (kh, kw, sh, sw, dh, dw, ph, pw)
    if prefer_conv_nd(x._data, w._data, geom, int(groups)):  # faster there (see its doc)
        y = _conv_nd(x, w, bias, (sh, sw), (ph, pw), (dh, dw), int(groups), 2, "conv2d")
        return y[0] if unbatched else y
    # The op pads symmetrically inside its im2col; an asymmetric 'same' was padded above.
    ins = [x, w] if bias is None else [x, w, as_tensor(bias)]
    y = Conv2d.apply(*ins, geom=geom, groups=int(groups), has_b=bias is not None)
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """1-D cross-correlation of (N, C, L) (or (C, L)) with weight (O, C/groups, k): conv2d on
    a height-1 image."""
    x, w = as_tensor(input), as_tensor(weight)
    if x._data.dtype.kind not in "fV":  # integer and complex inputs: the generic N-d path
        return _conv_nd(x, w, bias, stride, padding, dilation, int(groups), 1, "conv1d")
    unbatched = x.ndim == 2
    if unbatched:
        x = _shape.unsqueeze(x, 0)
    if x.ndim != 3 or w.ndim != 3:
        raise DescentError(
            f"conv1d: expected input (N, C, L) and weight (O, C/groups, k), got {tuple(x.shape)} "
            f"and {tuple(w.shape)}"
        )
    s = int_tuple(stride, 1, "stride", "conv1d")[0]
    d = int_tuple(dilation, 1, "dilation", "conv1d")[0]
    p = padding if isinstance(padding, str) else (0, int_tuple(padding, 1, "padding", "conv1d")[0])
    # (N, C, L) -> (N, C, 1, L) with a (O, C/g, 1, k) kernel: one code path for both ops.
    y = conv2d(_shape.unsqueeze(x, 2), _shape.unsqueeze(w, 2), bias, (1, s), p, (1, d), groups)
    y = _shape.squeeze(y, 2)
    if unbatched:
        return y[0]
    # conv2d of a height-1 image, shown as PyTorch's one convolution node
    return show_as(y, "ConvolutionBackward0", (x, w, bias))
