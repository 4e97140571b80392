"""conv3d, the transposed convolutions (1-, 2- and 3-D), and unfold / fold.

All are built on the N-d window pair of `descent.ops.window` (Im2ColNd and its adjoint
Col2ImNd) and one batched matrix product per call:

* convolution: Y_g = W_g @ im2col(x)_g for each group g;
* transposed convolution (the gradient of a convolution with respect to its input):
  x_out = col2im(W_g^T @ X_g), the convolution's adjoint, so its output size is
  (S - 1) s - 2 p + d (k - 1) + output_padding + 1 per spatial dimension;
* unfold = im2col laid out as (N, C * prod(k), L); fold = its adjoint, col2im.

Gradients of every order come from those ops (no backward is written here). For NumPy
float32/float64 with the numba kernels on, conv3d and the transposed convolutions run as one op
each instead (descent.ops.conv_nd: channels-last numba im2col/col2im, a backward by hand); that
op differentiates this composite form under create_graph.
"""

from __future__ import annotations

import numpy as np

from ... import amp
from ...errors import DescentError, DtypeError
from ...grad_fn import show_as
from ...hooks import composite
from ...opmath import HALF, is_reduced
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...ops.conv_nd import ConvNd, ConvTransposeNd, fast_conv_ok
from ...ops.half import in_float32
from ...ops.window import col2im, im2col, window_out_size
from ...tensor import Tensor
from ._inputs import int_tuple
from ._padding import pad

__all__ = [
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "unfold",
    "fold",
]


def _batched(x: Tensor, nd: int, op: str) -> tuple[Tensor, bool]:
    """(C, *S) -> (1, C, *S) and True (unbatched), or x as it is for (N, C, *S)."""
    if x.ndim == nd + 1:
        return _shape.unsqueeze(x, 0), True
    if x.ndim != nd + 2:
        raise DescentError(
            f"{op}: expected a {nd + 2}-d (N, C, {nd} spatial) or {nd + 1}-d unbatched input, "
            f"got {tuple(x.shape)}"
        )
    return x, False


def check_conv_dtypes(x: Tensor, w: Tensor, bias, op: str) -> None:
    """PyTorch's rule for floating inputs: weight and bias have the input's dtype (one dtype
    comparison each; descent.autocast lowers all three before this)."""
    dt = x._data.dtype
    if w._data.dtype != dt or (bias is not None and as_tensor(bias)._data.dtype != dt):
        raise DescentError(
            f"{op}: Input type ({x.dtype}), weight type ({w.dtype}) and bias type "
            f"({None if bias is None else as_tensor(bias).dtype}) should be the same; cast "
            f"them with .to(input.dtype)"
        )


def conv_operands(x, w, bias, op: str, all_ints: bool = True) -> tuple[Tensor, Tensor]:
    """(input, weight) of a convolution as tensors, with ATen's CPU dtype rules for inputs
    that are not floating: complex convolves (complex kernels), integers too (integer
    arithmetic, no gradient; the transposed kernels take int64 only: all_ints=False), bool
    never; the weight and bias must then have the input's dtype, as ATen demands."""
    x, w = as_tensor(x), as_tensor(w)
    dtype = x._data.dtype
    if dtype.kind in "fV":
        check_conv_dtypes(x, w, bias, op)
        return x, w
    if not (dtype.kind == "c" or dtype == np.int64 or (all_ints and dtype.kind in "iu")):
        raise DtypeError(f"{op}: not implemented for dtype {x.dtype} (PyTorch convolves floating, "
                         f"complex and some integer dtypes); use .float()")  # fmt: skip
    for name, t in (("weight", w), ("bias", bias)):
        if t is not None and as_tensor(t).dtype != x.dtype:
            raise DescentError(f"{op}: Input type ({x.dtype}) and {name} type "
                               f"({as_tensor(t).dtype}) should be the same")  # fmt: skip
    return x, w


def check_conv_bias(op: str, w: Tensor, bias, groups: int) -> None:
    """PyTorch's checks of a convolution's weight (at least one output channel) and bias (one
    entry per output channel), before any arithmetic."""
    if w.shape[0] == 0:
        raise DescentError(
            f"{op}: Given groups={groups}, expected weight to be at least 1 at dimension 0, "
            f"but got weight of size {tuple(w.shape)} instead"
        )
    if bias is not None:
        b = as_tensor(bias)
        if b.ndim != 1 or b.shape[0] != w.shape[0]:
            raise DescentError(
                f"{op}: Given weight of size {tuple(w.shape)}, expected bias to be "
                f"1-dimensional with {w.shape[0]} elements, but got bias of size "
                f"{tuple(b.shape)} instead"
            )


def check_conv_args(op: str, s: tuple, d: tuple, p) -> None:
    """PyTorch's checks of a convolution's stride (> 0), dilation (> 0) and numeric padding
    (>= 0; None for 'same' / 'valid')."""
    if min(s) < 1:
        raise DescentError(f"{op}: non-positive stride is not supported, got stride {s}")
    if min(d) < 1:
        raise DescentError(f"{op}: dilation should be greater than zero, got dilation {d}")
    if p is not None and min((p,) if isinstance(p, int) else tuple(p), default=0) < 0:
        raise DescentError(f"{op}: negative padding is not supported, got padding {p}")


@composite("aten.convolution")  # one op for descent.utils.flop_counter
def _conv_nd(x, w, bias, stride, padding, dilation, groups: int, nd: int, op: str) -> Tensor:
    """Cross-correlation of (N, C, *S) with (O, C/groups, *k) in nd spatial dimensions (also
    conv1d / conv2d's path for integer and complex inputs: im2col and matmul take any dtype)."""
    x, w = conv_operands(x, w, bias, op)
    if x._data.dtype == HALF:  # products and sums in float32, rounded once (ops/half.py): the
        # float16 col2im sums of the input gradient were 2.7x PyTorch's error from float64
        b = None if bias is None else as_tensor(bias)
        return in_float32(_conv_nd, x, w, b, stride, padding, dilation, groups, nd, op)
    x, unbatched = _batched(x, nd, op)
    x_in = x  # (before a 'same' padding: PyTorch's node takes the input itself)
    if w.ndim != nd + 2:
        raise DescentError(f"{op}: weight must be (O, C/groups, {nd} kernel sizes), got "
                           f"{tuple(w.shape)}: expected {w.ndim}-dimensional input for "
                           f"{w.ndim}-dimensional weight")  # fmt: skip
    n, c = x.shape[:2]
    o, cg, *k = w.shape
    check_conv_bias(op, w, bias, groups)
    if groups < 1 or c % groups or o % groups or cg != c // groups:
        raise DescentError(
            f"{op}: input {tuple(x.shape)} has {c} channels, weight {tuple(w.shape)}, "
            f"groups={groups}: need weight.shape[1] == C/groups and O divisible by groups"
        )
    s = int_tuple(stride, nd, "stride", op)
    d = int_tuple(dilation, nd, "dilation", op)
    check_conv_args(op, s, d, None if isinstance(padding, str) else padding)
    if isinstance(padding, str):
        if padding == "valid":
            p = (0,) * nd
        elif padding == "same":
            if any(si != 1 for si in s):
                raise DescentError(f"{op}: padding='same' is not supported for strided "
                                   f"convolutions (stride {s}); use stride 1")  # fmt: skip
            # Total padding d (k - 1) per dimension; an odd total puts the extra cell after.
            tot = [di * (ki - 1) for di, ki in zip(d, k, strict=True)]
            widths = []
            for t in reversed(tot):
                widths += [t // 2, t - t // 2]
            x = pad(x, tuple(widths))
            if any(t % 2 for t in tot):  # PyTorch pads too (by the odd cells) before its node
                x_in = x
            p = (0,) * nd
        else:
            raise DescentError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', "
                             f"got {padding!r}")  # fmt: skip
    else:
        p = int_tuple(padding, nd, "padding", op)
    sizes = x.shape[2:]
    out = [window_out_size(sz, *g) for sz, g in zip(sizes, zip(k, s, d, p), strict=True)]
    if any(v < 1 for v in out):
        raise DescentError(
            f"{op}: kernel {tuple(k)} (dilation {d}) is larger than the padded input "
            f"{tuple(sz + 2 * pi for sz, pi in zip(sizes, p))}"
        )
    geom = (tuple(k), s, d, p)
    if fast_conv_ok(x, w):
        # One op with numba im2col/col2im (ops/conv_nd.py); create_graph differentiates the
        # composite form below.
        ins = (x, w) if bias is None else (x, w, as_tensor(bias))
        y = ConvNd.apply(*ins, geom=geom, nd=nd, groups=groups, has_b=bias is not None,
                         wins=tuple(out),
                         composite=_Composite(_conv_products, geom, out, groups))  # fmt: skip
    else:
        y = _conv_products(x, w, bias, geom, out, groups)
    return y[0] if unbatched else show_as(y, "ConvolutionBackward0", (x_in, w, bias))


class _Composite:
    """`fn(x, w, bias or None, *args)` over a convolution op's inputs (create_graph's form).
    Equal when fn and args are: descent.compile compares an op's parameters between two
    recordings, and a lambda made per call never compared equal, so conv3d and the transposed
    convolutions ran eagerly (session 19's fuzzer)."""

    __slots__ = ("fn", "args")

    def __init__(self, fn, *args) -> None:
        self.fn, self.args = fn, tuple(tuple(a) if isinstance(a, list) else a for a in args)

    def __call__(self, *t):
        return self.fn(t[0], t[1], t[2] if len(t) > 2 else None, *self.args)

    def __eq__(self, other) -> bool:
        return type(other) is _Composite and self.fn is other.fn and self.args == other.args

    def __hash__(self) -> int:
        return hash((self.fn, self.args))


def _conv_products(x, w, bias, geom, out, groups: int) -> Tensor:
    """The composite convolution of a batched x: im2col, one (batched) matmul, bias."""
    n, nd = x.shape[0], len(out)
    o, cg, *k = w.shape
    cols = im2col(x, geom)  # (C, *k, N, *O)
    kk, pp = cg * int(np.prod(k)), int(np.prod(out))
    if groups == 1:
        # 2-D operands: NumPy's stacked matmul does not reach BLAS for the transposed operands
        # of the backward pass (measured 0.86 s vs 0.04 s for a 16^3 volume, 16 -> 32 channels).
        y = w.reshape(o, kk) @ cols.reshape(kk, n * pp)  # (O, N*P)
    else:
        y = w.reshape(groups, o // groups, kk) @ cols.reshape(groups, kk, n * pp)  # (G, O/G, N*P)
    y = _shape.swapaxes(y.reshape(o, n, *out), 0, 1)  # (N, O, *O)
    if bias is not None:
        y = y + as_tensor(bias).reshape((1, o) + (1,) * nd)
    return y


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:
    """3-D cross-correlation of (N, C, D, H, W) (or unbatched (C, D, H, W)) with weight
    (O, C/groups, kd, kh, kw); padding an int, a triple, 'valid' or 'same' (stride 1)."""
    input, weight, bias = _autocast_lower(input, weight, bias)  # on PyTorch's autocast list
    return _conv_nd(input, weight, bias, stride, padding, dilation, int(groups), 3, "conv3d")


@composite("aten.convolution/transposed")  # one op for descent.utils.flop_counter
def _conv_transpose_nd(x, w, bias, stride, padding, output_padding, groups: int, dilation,
                       nd: int, op: str) -> Tensor:  # fmt: skip
    """The adjoint of an nd convolution: (N, C_in, *S) with weight (C_in, C_out/groups, *k)."""
    x, w = conv_operands(x, w, bias, op, all_ints=False)
    if is_reduced(x._data.dtype):  # in float32, rounded once: the float16 col2im sums of the
        # output were 2x PyTorch's error from float64
        b = None if bias is None else as_tensor(bias)
        return in_float32(_conv_transpose_nd, x, w, b, stride, padding, output_padding, groups,
                          dilation, nd, op)  # fmt: skip
    x, unbatched = _batched(x, nd, op)
    if w.ndim != nd + 2:
        raise DescentError(f"{op}: weight must be (C_in, C_out/groups, {nd} kernel sizes), "
                           f"got {tuple(w.shape)}")  # fmt: skip
    n, c, *sizes = x.shape
    cin, og, *k = w.shape
    if groups < 1 or cin != c or c % groups:
        raise DescentError(
            f"{op}: input {tuple(x.shape)} has {c} channels, weight {tuple(w.shape)} needs "
            f"{cin} (weight.shape[0] == C_in, divisible by groups={groups})"
        )
    s = int_tuple(stride, nd, "stride", op)
    p = int_tuple(padding, nd, "padding", op)
    d = int_tuple(dilation, nd, "dilation", op)
    op_ = int_tuple(output_padding, nd, "output_padding", op)
    for oi, si, di in zip(op_, s, d, strict=True):
        if oi >= max(si, di) or oi < 0:
            raise DescentError(
                f"{op}: output_padding {op_} must be smaller than the stride {s} or the "
                f"dilation {d} in each dimension (PyTorch's rule)"
            )
    out = [(sz - 1) * si - 2 * pi + di * (ki - 1) + oi + 1
           for sz, si, pi, di, ki, oi in zip(sizes, s, p, d, k, op_, strict=True)]  # fmt: skip
    if any(v < 1 for v in out):
        raise DescentError(f"{op}: input {tuple(x.shape)} gives an empty output {tuple(out)}")
    geom = (tuple(k), s, d, p)
    if fast_conv_ok(x, w):
        # One op (ops/conv_nd.py), the composite form below under create_graph.
        ins = (x, w) if bias is None else (x, w, as_tensor(bias))
        y = ConvTransposeNd.apply(*ins, geom=geom, nd=nd, groups=groups,
                                  has_b=bias is not None, out=tuple(out),
                                  composite=_Composite(_conv_transpose_products, geom, out,
                                                       groups))  # fmt: skip
    else:
        y = _conv_transpose_products(x, w, bias, geom, out, groups)
    return y[0] if unbatched else y


def _conv_transpose_products(x, w, bias, geom, out, groups: int) -> Tensor:
    """The composite transposed convolution of a batched x: matmul, then col2im, bias."""
    n, c, *sizes = x.shape
    cin, og, *k = w.shape
    nd = len(out)
    k, s, d, p = geom
    cout = og * groups
    kk, pp = og * int(np.prod(k)), int(np.prod(sizes))
    # Per group: patches = W_g^T @ X_g, (C_out/G * K, C_in/G) @ (C_in/G, N * P).
    xg = _shape.swapaxes(x, 0, 1).reshape(groups, c // groups, n * pp)
    if groups == 1:  # 2-D operands reach BLAS in the backward pass too (see _conv_nd)
        cols = _shape.swapaxes(w.reshape(c, kk), 0, 1) @ xg[0]  # (K', N*P)
    else:
        cols = _shape.swapaxes(w.reshape(groups, c // groups, kk), -1, -2) @ xg  # (G, K', N*P)
    cols = cols.reshape(cout, *k, n, *sizes)  # (C_out, *k, N, *S): the patches of the output
    # output_padding >= stride (allowed when the dilation is larger) gives the output room for
    # more windows than the input has positions: those windows' patches are zero.
    need = [window_out_size(o, *g) for o, g in zip(out, zip(k, s, d, p), strict=True)]
    extra = [a - b for a, b in zip(need, sizes, strict=True)]
    if any(extra):
        widths = []
        for e in reversed(extra):
            widths += [0, e]
        cols = _shape.pad(cols, tuple(widths))
    y = col2im(cols, (n, cout, *out), geom)
    if bias is not None:
        y = y + as_tensor(bias).reshape((1, cout) + (1,) * nd)
    return y


def _autocast_lower(x, w, bias):
    """Inside descent.autocast: the operands in the low dtype (conv3d and conv_transpose1d/2d/3d
    are on PyTorch's autocast list); as given otherwise."""
    if not amp._depth:
        return x, w, bias
    b = None if bias is None else as_tensor(bias)
    return amp._lower(as_tensor(x), as_tensor(w), b)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:  # fmt: skip
    """Transposed 1-D convolution of (N, C_in, L) with weight (C_in, C_out/groups, k)."""
    input, weight, bias = _autocast_lower(input, weight, bias)
    return _conv_transpose_nd(input, weight, bias, stride, padding, output_padding, int(groups),
                              dilation, 1, "conv_transpose1d")  # fmt: skip


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:  # fmt: skip
    """Transposed 2-D convolution ("deconvolution") of (N, C_in, H, W) with weight
    (C_in, C_out/groups, kh, kw): the gradient of conv2d with respect to its input."""
    input, weight, bias = _autocast_lower(input, weight, bias)
    return _conv_transpose_nd(input, weight, bias, stride, padding, output_padding, int(groups),
                              dilation, 2, "conv_transpose2d")  # fmt: skip


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups: int = 1, dilation=1) -> Tensor:  # fmt: skip
    """Transposed 3-D convolution of (N, C_in, D, H, W) with weight
    (C_in, C_out/groups, kd, kh, kw)."""
    input, weight, bias = _autocast_lower(input, weight, bias)
    return _conv_transpose_nd(input, weight, bias, stride, padding, output_padding, int(groups),
                              dilation, 3, "conv_transpose3d")  # fmt: skip


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding 2-D blocks of (N, C, H, W) (or (C, H, W)) as columns: (N, C * kh * kw, L),
    L the number of windows (torch.nn.functional.unfold, im2col)."""
    x = as_tensor(input)
    if x._data.dtype.kind not in "fVcb":  # ATen's im2col: floating, complex and bool
        raise DtypeError(f"unfold: not implemented for dtype {x.dtype} (PyTorch unfolds "
                         f"floating, complex and bool tensors); use .float()")  # fmt: skip
    x, unbatched = _batched(x, 2, "unfold")
    k = int_tuple(kernel_size, 2, "kernel_size", "unfold")
    geom = (k, int_tuple(stride, 2, "stride", "unfold"),
            int_tuple(dilation, 2, "dilation", "unfold"),
            int_tuple(padding, 2, "padding", "unfold"))  # fmt: skip
    n, c, h, w = x.shape
    oh, ow = (window_out_size(sz, *g) for sz, g in zip((h, w), zip(*geom), strict=True))
    if oh < 1 or ow < 1:
        raise DescentError(f"unfold: kernel {k} does not fit the padded input {tuple(x.shape)}")
    cols = im2col(x, geom)  # (C, kh, kw, N, oh, ow)
    y = _shape.permute(cols, 3, 0, 1, 2, 4, 5).reshape(n, c * k[0] * k[1], oh * ow)
    y = y.contiguous()  # as PyTorch's: `F.unfold(x, k).view(N, -1)` works
    return y[0] if unbatched else y


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """The adjoint of unfold: columns (N, C * kh * kw, L) (or unbatched) summed into an
    (N, C, *output_size) image, overlapping blocks added (col2im; for bools, PyTorch's
    bool sum: any of the blocks)."""
    x = as_tensor(input)
    if x._data.dtype.kind not in "fVcb":  # ATen's col2im: floating, complex and bool
        raise DtypeError(f"fold: not implemented for dtype {x.dtype} (PyTorch folds floating, "
                         f"complex and bool tensors); use .float()")  # fmt: skip
    if x._data.dtype.kind == "b":
        y = fold(x.float(), output_size, kernel_size, dilation, padding, stride)
        return y != 0  # counts of True blocks, exact in float32
    unbatched = x.ndim == 2
    if unbatched:
        x = _shape.unsqueeze(x, 0)
    if x.ndim != 3:
        raise DescentError(f"fold: expected (N, C*kh*kw, L) or (C*kh*kw, L), got {tuple(x.shape)}")
    k = int_tuple(kernel_size, 2, "kernel_size", "fold")
    size = int_tuple(output_size, 2, "output_size", "fold")
    geom = (k, int_tuple(stride, 2, "stride", "fold"), int_tuple(dilation, 2, "dilation", "fold"),
            int_tuple(padding, 2, "padding", "fold"))  # fmt: skip
    n, ck, ll = x.shape
    oh, ow = (window_out_size(sz, *g) for sz, g in zip(size, zip(*geom), strict=True))
    if ck % (k[0] * k[1]) or oh * ow != ll:
        raise DescentError(
            f"fold: input {tuple(x.shape)} needs dim 1 divisible by kh*kw = {k[0] * k[1]} and "
            f"{oh * ow} blocks ({oh}x{ow} windows over {size}), got {ll}"
        )
    c = ck // (k[0] * k[1])
    cols = _shape.permute(x.reshape(n, c, k[0], k[1], oh, ow), 1, 2, 3, 0, 4, 5)
    y = col2im(cols, (n, c, *size), geom)
    return y[0] if unbatched else y
