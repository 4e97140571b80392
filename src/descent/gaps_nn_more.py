"""PyTorch's top-level activations, pooling, recurrent cells, sampling grids and `native_*`
functions (docs/torch_gaps_nn.md); re-exported by `gaps_nn.py`, which has the rest.

As there, each keeps torch's top-level (ATen) signature and imports descent.nn on first call,
so that `import descent` stays cheap: pools take `stride=[]` for "the kernel size",
`adaptive_max_pool1d` always returns (values, indices), `lstm_cell` takes hx as a list
[h, c], `grid_sampler` takes its modes as ints.
"""

from __future__ import annotations

from .creation_random import draws_through_ops
from .errors import DescentError
from .grad_mode import no_grad
from .ops._common import as_tensor
from .ops.gaps_nn_ops import hardshrink, prelu
from .ops.untracked import computed

__all__ = [
    "celu", "celu_", "selu", "selu_", "threshold", "threshold_", "hardshrink", "prelu", "rrelu",
    "rrelu_", "bilinear", "cosine_similarity", "pairwise_distance", "pixel_shuffle",
    "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle",
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "avg_pool1d",
    "adaptive_avg_pool1d", "adaptive_max_pool1d", "constant_pad_nd",
    "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "lstm", "gru", "rnn_tanh",
    "rnn_relu",
    "affine_grid_generator", "grid_sampler", "grid_sampler_2d", "grid_sampler_3d",
    "native_layer_norm", "native_batch_norm", "native_group_norm", "native_dropout",
    "norm_except_dim",
]  # fmt: skip


def _F():
    """descent.nn.functional, imported on first use (it sits above this module's layer)."""
    from .nn import functional  # noqa: PLC0415

    return functional


def _nn_inplace(x, fn, op: str):
    """Store fn(x) in x with the rules of descent's in-place activations (recorded when a
    gradient can flow, else written into x's array; the version counter goes up)."""
    from .nn.functional._inplace import _inplace  # noqa: PLC0415

    return _inplace(x, fn, op)


# -- activations -------------------------------------------------------------------------------
def celu(input, alpha=1.0):
    """torch.celu: max(0, x) + min(0, alpha (exp(x / alpha) - 1))."""
    return _F().celu(input, alpha)


def celu_(input, alpha=1.0):
    """torch.celu_: celu written into `input`."""
    return _F().celu_(input, alpha)


def selu(input):
    """torch.selu (Klambauer et al. 2017's constants)."""
    return _F().selu(input)


def selu_(input):
    """torch.selu_: selu written into `input`."""
    return _F().selu_(input)


def threshold(input, threshold, value):
    """torch.threshold: x where x > threshold, else value."""
    return _F().threshold(input, threshold, value)


def threshold_(input, threshold, value):
    """torch.threshold_: threshold written into `input`."""
    return _F().threshold_(input, threshold, value)


@draws_through_ops  # (descent.compile replays its draw: the slope is computed by ops)
def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    """torch.rrelu: leaky relu with a random slope in [lower, upper] per element when training
    (drawn from `generator` when given), the mean slope (lower + upper) / 2 otherwise."""
    if generator is None or not training:
        return _F().rrelu(input, lower, upper, training)
    if lower > upper:
        raise DescentError(
            f"rrelu: Lower bound should be less than or equal to the upper bound, got lower="
            f"{lower} > upper={upper}"
        )
    from .creation import rand  # noqa: PLC0415
    from .ops.elementwise import where  # noqa: PLC0415

    x = as_tensor(input)
    u = rand(*x.shape, dtype=x.dtype, device=x.device, generator=generator)
    slope = u * (upper - lower) + lower  # a constant: no gradient flows to the draw
    return where(x > 0, x, x * slope)  # x <= 0 takes the slope, as PyTorch's (gradient at 0)


def rrelu_(input, lower=1.0 / 8, upper=1.0 / 3, training=False, generator=None):
    """torch.rrelu_: rrelu written into `input`."""
    return _nn_inplace(input, lambda t: rrelu(t, lower, upper, training, generator), "rrelu_")


def bilinear(input1, input2, weight, bias=None):
    """torch.bilinear: y_k = x1^T W_k x2 + b_k."""
    return _F().bilinear(input1, input2, weight, bias)


def cosine_similarity(x1, x2, dim=1, eps=1e-8):
    """torch.cosine_similarity."""
    return _F().cosine_similarity(x1, x2, dim, eps)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    """torch.pairwise_distance: ||x1 - x2 + eps||_p along the last dim."""
    return _F().pairwise_distance(x1, x2, p, eps, keepdim)


def pixel_shuffle(input, upscale_factor):
    """torch.pixel_shuffle: (*, C r^2, H, W) -> (*, C, H r, W r)."""
    return _F().pixel_shuffle(input, upscale_factor)


def pixel_unshuffle(input, downscale_factor):
    """torch.pixel_unshuffle: (*, C, H r, W r) -> (*, C r^2, H, W)."""
    return _F().pixel_unshuffle(input, downscale_factor)


def channel_shuffle(input, groups):
    """torch.channel_shuffle: (N, g k, *) -> channels reordered as (k, g)."""
    return _F().channel_shuffle(input, groups)


native_channel_shuffle = channel_shuffle


# -- pooling ---------------------------------------------------------------------------------
def _stride(stride):
    """ATen's `stride=[]` (or None, or an empty tuple) means: the kernel size."""
    if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0):
        return None
    return stride


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """torch.max_pool1d: the values only (max_pool1d_with_indices has the indices)."""
    return _F().max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """torch.max_pool2d."""
    return _F().max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    """torch.max_pool3d."""
    return _F().max_pool3d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1,
                            ceil_mode=False):  # fmt: skip
    """torch.max_pool1d_with_indices: (values, int64 indices into the last dim)."""
    return _F().max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode,
                           return_indices=True)  # fmt: skip


def avg_pool1d(input, kernel_size, stride=(), padding=0, ceil_mode=False,
               count_include_pad=True):  # fmt: skip
    """torch.avg_pool1d."""
    return _F().avg_pool1d(input, kernel_size, _stride(stride), padding, ceil_mode,
                           count_include_pad)  # fmt: skip


def adaptive_avg_pool1d(input, output_size):
    """torch.adaptive_avg_pool1d."""
    return _F().adaptive_avg_pool1d(input, output_size)


def adaptive_max_pool1d(input, output_size):
    """torch.adaptive_max_pool1d: ALWAYS (values, indices), unlike the nn.functional one."""
    return _F().adaptive_max_pool1d(input, output_size, return_indices=True)


def constant_pad_nd(input, pad, value=0):
    """torch.constant_pad_nd: F.pad's constant mode (negative pads crop)."""
    return _F().pad(input, pad, "constant", value)


# -- recurrent cells (one step; weights (G H, in) and (G H, H), G gates) ---------------------------
def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.lstm_cell: one LSTM step, hx = [h, c] -> (h', c'); gates i, f, g, o.

    Raises:
        DescentError (a RuntimeError): hx is not a pair of tensors.
    """
    from .nn.rnn import _lstm_step  # noqa: PLC0415

    if len(hx) != 2:
        raise DescentError(f"lstm_cell: hx must be a list [h, c] of two tensors, got {len(hx)}")
    gi = _F().linear(input, w_ih, b_ih)  # (N, 4H)
    return _lstm_step(gi, as_tensor(hx[0]), as_tensor(hx[1]), w_hh, b_hh, None)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.gru_cell: one GRU step (gates r, z, n; PyTorch's form n = tanh(W_in x + b_in +
    r (W_hn h + b_hn)))."""
    from .nn.rnn import _gru_step  # noqa: PLC0415

    return _gru_step(_F().linear(input, w_ih, b_ih), as_tensor(hx), w_hh, b_hh)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.rnn_tanh_cell: tanh(W_ih x + b_ih + W_hh h + b_hh)."""
    from .nn.rnn import _rnn_step  # noqa: PLC0415

    return _rnn_step(_F().linear(input, w_ih, b_ih), as_tensor(hx), w_hh, b_hh, relu=False)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):
    """torch.rnn_relu_cell: relu(W_ih x + b_ih + W_hh h + b_hh)."""
    from .nn.rnn import _rnn_step  # noqa: PLC0415

    return _rnn_step(_F().linear(input, w_ih, b_ih), as_tensor(hx), w_hh, b_hh, relu=True)


def _recurrent(kind, input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
               batch_first):  # fmt: skip
    """The whole-sequence recurrences of torch.lstm/gru/rnn_tanh/rnn_relu (ATen's `.input`
    overload): `params` is the flat weight list of nn.LSTM & co., per layer and direction
    w_ih, w_hh, [b_ih, b_hh], [w_hr (LSTM projection)]; the reverse direction follows."""
    from .nn.rnn import _gru_step, _lstm_step, _rnn_step  # noqa: PLC0415
    from .ops.shape import cat, stack  # noqa: PLC0415

    F = _F()
    x = as_tensor(input)
    if x.ndim != 3:
        raise DescentError(f"{kind}: expected a 3-d input (T, N, C) or, batch_first, (N, T, C); "
                         f"got shape {tuple(x.shape)}")  # fmt: skip
    if batch_first:
        x = x.transpose(0, 1)  # (T, N, C)
    lstm, dirs = kind == "lstm", 2 if bidirectional else 1
    h0, c0 = (as_tensor(hx[0]), as_tensor(hx[1])) if lstm else (as_tensor(hx), None)
    per = 4 if has_biases else 2
    stride = per + 1 if lstm and len(params) == num_layers * dirs * (per + 1) else per
    if len(params) != num_layers * dirs * stride:
        raise DescentError(
            f"{kind}: expected {num_layers * dirs * per} weights (num_layers={num_layers}, "
            f"{dirs} direction(s), has_biases={has_biases}), got {len(params)}"
        )
    steps, hs, cs = x.shape[0], [], []
    layer_in = x
    for layer in range(num_layers):
        outs = []
        for d in range(dirs):
            k = layer * dirs + d
            w = params[k * stride : (k + 1) * stride]
            b_ih, b_hh = (w[2], w[3]) if has_biases else (None, None)
            w_hr = w[per] if stride > per else None
            gi = F.linear(layer_in, w[0], b_ih)  # (T, N, gates * H): all steps at once
            h, c = h0[k], (c0[k] if lstm else None)
            ys = [None] * steps
            for t in range(steps) if d == 0 else reversed(range(steps)):
                if lstm:
                    h, c = _lstm_step(gi[t], h, c, w[1], b_hh, w_hr)
                elif kind == "gru":
                    h = _gru_step(gi[t], h, w[1], b_hh)
                else:
                    h = _rnn_step(gi[t], h, w[1], b_hh, relu=kind == "rnn_relu")
                ys[t] = h
            outs.append(stack(ys))  # (T, N, H)
            hs.append(h)
            cs.append(c)
        layer_in = cat(outs, -1) if dirs == 2 else outs[0]
        if dropout and train and layer < num_layers - 1:  # between layers, as nn.LSTM
            layer_in = F.dropout(layer_in, dropout, True)
    out = layer_in.transpose(0, 1) if batch_first else layer_in
    return (out, stack(hs), stack(cs)) if lstm else (out, stack(hs))


def lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    """torch.lstm: (output, h_n, c_n) of a stacked LSTM; hx = [h0, c0], each (L D, N, H)."""
    return _recurrent("lstm", input, hx, params, has_biases, num_layers, dropout, train,
                      bidirectional, batch_first)  # fmt: skip


def gru(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    """torch.gru: (output, h_n) of a stacked GRU."""
    return _recurrent("gru", input, hx, params, has_biases, num_layers, dropout, train,
                      bidirectional, batch_first)  # fmt: skip


def rnn_tanh(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
             batch_first):  # fmt: skip
    """torch.rnn_tanh: (output, h_n) of a stacked tanh RNN."""
    return _recurrent("rnn_tanh", input, hx, params, has_biases, num_layers, dropout, train,
                      bidirectional, batch_first)  # fmt: skip


def rnn_relu(input, hx, params, has_biases, num_layers, dropout, train, bidirectional,
             batch_first):  # fmt: skip
    """torch.rnn_relu: (output, h_n) of a stacked relu RNN."""
    return _recurrent("rnn_relu", input, hx, params, has_biases, num_layers, dropout, train,
                      bidirectional, batch_first)  # fmt: skip


# -- sampling grids (modes as ATen's ints) -------------------------------------------------------
_INTERPOLATION = {0: "bilinear", 1: "nearest", 2: "bicubic"}
_PADDING = {0: "zeros", 1: "border", 2: "reflection"}


def affine_grid_generator(theta, size, align_corners):
    """torch.affine_grid_generator: F.affine_grid with align_corners required."""
    return _F().affine_grid(theta, list(size), align_corners=bool(align_corners))


def grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners):
    """torch.grid_sampler: modes as ints (0 bilinear, 1 nearest, 2 bicubic; padding 0 zeros,
    1 border, 2 reflection), as F.grid_sample: 4-d images in every mode, 5-d volumes
    bilinear or nearest.

    Raises:
        DescentError: an unknown mode number.
        ValueError: bicubic on a 5-d volume (PyTorch refuses it too).
    """
    if interpolation_mode not in _INTERPOLATION or padding_mode not in _PADDING:
        raise DescentError(
            f"grid_sampler: interpolation_mode must be 0, 1 or 2 and padding_mode 0, 1 or 2, got "
            f"{interpolation_mode} and {padding_mode}"
        )
    return _F().grid_sample(input, grid, _INTERPOLATION[interpolation_mode],
                            _PADDING[padding_mode], bool(align_corners))  # fmt: skip


def _grid_sampler_nd(name, ndim, input, grid, interpolation_mode, padding_mode, align_corners):
    """torch.grid_sampler_2d / _3d: grid_sampler on 4-d images / 5-d volumes only (ATen's
    kernels by dimension), with PyTorch's errors."""
    x, g = as_tensor(input), as_tensor(grid)
    if x.ndim != ndim or g.ndim != ndim:
        raise RuntimeError(
            f"{name}: expected {ndim}D input and grid with same number of dimensions, but got "
            f"input with sizes {list(x.shape)} and grid with sizes {list(g.shape)}"
        )
    if ndim == 5 and interpolation_mode == 2:
        raise RuntimeError(f"{name}: bicubic interpolation only supports 4D input")
    return grid_sampler(x, g, interpolation_mode, padding_mode, align_corners)


def grid_sampler_2d(input, grid, interpolation_mode, padding_mode, align_corners):
    """torch.grid_sampler_2d: grid_sampler of a (N, C, H, W) image at a (N, H', W', 2) grid.

    Raises:
        RuntimeError: input or grid not 4-d (PyTorch's message).
    """
    return _grid_sampler_nd("grid_sampler_2d", 4, input, grid, interpolation_mode,
                            padding_mode, align_corners)  # fmt: skip


def grid_sampler_3d(input, grid, interpolation_mode, padding_mode, align_corners):
    """torch.grid_sampler_3d: grid_sampler of a (N, C, D, H, W) volume at a (N, D', H', W', 3)
    grid, bilinear (trilinear) or nearest.

    Raises:
        RuntimeError: input or grid not 5-d, or bicubic (PyTorch's messages).
    """
    return _grid_sampler_nd("grid_sampler_3d", 5, input, grid, interpolation_mode,
                            padding_mode, align_corners)  # fmt: skip


# -- native_*: the function plus the statistics its backward saves ---------------------------------
def native_layer_norm(input, normalized_shape, weight, bias, eps):
    """torch.native_layer_norm: (out, mean, rstd), mean and rstd of shape input.shape[:-k] +
    (1,) * k for k normalized dims, without gradient (as torch's)."""
    x = as_tensor(input)
    out = _F().layer_norm(x, normalized_shape, weight, bias, eps)
    k = len(normalized_shape) if isinstance(normalized_shape, (list, tuple)) else 1
    dims = tuple(range(x.ndim - k, x.ndim))
    with no_grad():
        mean = x.mean(dims, keepdim=True)
        var = ((x - mean) ** 2).mean(dims, keepdim=True)  # biased, as layer_norm's
        rstd = (var + eps).rsqrt()
    return out, mean.detach(), rstd.detach()


def native_batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps):
    """torch.native_batch_norm: (out, save_mean, save_invstd), the batch's per-channel mean and
    1 / sqrt(biased var + eps) when training; empty (0,) tensors in eval (torch's CPU kernel).
    Training updates the running statistics in place."""
    x = as_tensor(input)
    from .nn.functional._normalization import batch_norm_unchecked  # noqa: PLC0415

    # (the kernel: F.batch_norm's Python checks are not native_batch_norm's)
    out = batch_norm_unchecked(x, running_mean, running_var, weight, bias, bool(training),
                               momentum, eps)  # fmt: skip
    with no_grad():
        if not training:
            empty = x.new_zeros((0,))
            return out, empty, empty.clone()
        dims = (0,) + tuple(range(2, x.ndim))  # all but the channel dim 1
        mean = x.mean(dims)
        var = ((x - mean.reshape((1, -1) + (1,) * (x.ndim - 2))) ** 2).mean(dims)
        invstd = (var + eps).rsqrt()
    return out, mean.detach(), invstd.detach()


def native_group_norm(input, weight, bias, N, C, HxW, group, eps):
    """torch.native_group_norm: (out, mean, rstd), mean and rstd of shape (N, group)."""
    x = as_tensor(input)
    if x.shape[0] != N or x.shape[1] != C or x.numel() != N * C * HxW:
        raise DescentError(
            f"native_group_norm: N={N}, C={C}, HxW={HxW} do not describe the input {tuple(x.shape)}"
        )
    out = _F().group_norm(x, group, weight, bias, eps)
    # mean and rstd are differentiable outputs in PyTorch too (NativeGroupNormBackward takes
    # their gradients): recorded composites here, d mean/dx = 1/n, rstd = (var + eps)^-1/2.
    g = x.reshape(N, group, C // group * HxW)  # sizes spelled out: N may be 0
    mean = g.mean(-1, keepdim=True)
    rstd = (((g - mean) ** 2).mean(-1) + eps).rsqrt()
    return out, mean.reshape(N, group), rstd


def native_dropout(input, p, train):
    """torch.native_dropout: (out, keep mask as bool). train None counts as True (torch's rule);
    train False returns a copy and an all-True mask."""
    from .nn.functional._dropout import dropout_mask  # noqa: PLC0415
    from .tensor import Tensor  # noqa: PLC0415

    x = as_tensor(input)
    if not 0.0 <= p <= 1.0:
        raise DescentError(f"native_dropout: dropout probability has to be between 0 and 1, but "
                         f"got {p}")  # fmt: skip
    if train is False:
        with no_grad():
            keep = x.new_ones(x.shape, dtype=bool)
        return x.clone(), keep
    if p == 1.0:
        with no_grad():
            keep = x.new_zeros(x.shape, dtype=bool)
        return x * 0.0, keep
    m = Tensor._wrap(dropout_mask(x.shape, p, x._data.dtype, x.device, None))  # 0 or 1 / (1 - p)
    # the kept positions through untracked.computed: made on the arrays (`mask != 0`), they
    # were a constant that two recordings never shared (each draws its own mask), so a compiled
    # step with native_dropout always ran eagerly; now the replay computes them from its mask
    return x * m, computed(_kept, (m,), ())


def _kept(mask):
    """native_dropout's bool mask of the kept positions (untracked.computed's kernel)."""
    return mask != 0


def norm_except_dim(v, pow=2, dim=0):
    """torch.norm_except_dim: the p-norm over every dim but `dim`, kept as size-1 dims (weight
    norm's g); dim -1 gives the norm of the whole tensor."""
    x = as_tensor(v)
    if dim == -1:
        return x.norm(pow)
    if not -x.ndim <= dim < x.ndim:
        raise DescentError(f"norm_except_dim: dim {dim} is out of range for a {x.ndim}-d "
                           f"tensor {tuple(x.shape)}")  # fmt: skip
    dim %= x.ndim
    others = tuple(d for d in range(x.ndim) if d != dim)
    return x.norm(pow, dim=others, keepdim=True) if others else x.abs()
