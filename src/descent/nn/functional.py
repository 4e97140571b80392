"""torch.nn.functional for descent: the same names and signatures, on descent Tensors.

The hot paths are fused ops with array-level forward and backward (see docs/functional.md):
`cross_entropy` (class-index targets), `layer_norm`, `rms_norm`, `scaled_dot_product_attention`,
`batch_norm` (training), `linear`, `conv1d`/`conv2d`, `max_pool2d`, `avg_pool2d`, `embedding` and
`binary_cross_entropy`. Each one's backward is written so that under `create_graph=True` it runs
through recorded ops: every function here supports higher-order gradients. The remaining losses
and layers are composites of descent ops.

    >>> import descent as ds
    >>> import descent.nn.functional as F
    >>> logits = ds.randn(4, 10, requires_grad=True)
    >>> loss = F.cross_entropy(logits, ds.tensor([1, 0, 9, 3]))
    >>> loss.backward()
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import amp, backend
from ..autograd import Function
from ..creation import rand
from ..ops import activation as _act
from ..ops import reduce as _red
from ..ops import shape as _shape
from ..ops._common import as_tensor
from ..ops.attention import ScaledDotProductAttention
from ..ops.conv import AvgPool2d, Conv2d, MaxPool2d, out_size
from ..ops.elementwise import abs as _abs
from ..ops.elementwise import clamp, exp, log, where
from ..ops.loss import BinaryCrossEntropy, SoftmaxCrossEntropy
from ..ops.norm import BatchNorm, LayerNorm, RMSNorm
from ..tensor import Tensor

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "gelu",
    "group_norm",
    "hardtanh",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsigmoid",
    "max_pool1d",
    "max_pool2d",
    "mse_loss",
    "nll_loss",
    "normalize",
    "one_hot",
    "pad",
    "relu",
    "relu6",
    "rms_norm",
    "scaled_dot_product_attention",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _reduction(size_average, reduce, reduction: str, op: str) -> str:
    """PyTorch's legacy size_average/reduce flags mapped onto `reduction`."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _f32(x: Tensor) -> Tensor:
    """Inside descent.autocast: a float16/bfloat16 input cast up to float32 (losses, norms)."""
    return amp.upper(x) if amp._depth else x


def _float_tensor(x, op: str) -> Tensor:
    x = as_tensor(x)
    if x.data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating tensor, got dtype {x.dtype}; use .float()")
    return x


def _same_shape(a: Tensor, b: Tensor, op: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(
                f"{op}: input {tuple(a.shape)} and target {tuple(b.shape)} cannot be broadcast; "
                "give them the same shape"
            ) from None


# ---------------------------------------------------------------------------------------------
# Activations (descent's ops under PyTorch's signatures)


def relu(input, inplace: bool = False) -> Tensor:  # noqa: A002 - PyTorch's names
    """max(x, 0). `inplace` is accepted for compatibility and ignored (always out of place)."""
    return _act.relu(input)


def gelu(input, approximate: str = "none") -> Tensor:  # noqa: A002
    """GELU: x Phi(x) (approximate='none') or its tanh approximation ('tanh')."""
    return _act.gelu(input, approximate=approximate)


def silu(input, inplace: bool = False) -> Tensor:  # noqa: A002
    """x * sigmoid(x)."""
    return _act.silu(input)


def tanh(input) -> Tensor:  # noqa: A002
    return _act.tanh(input)


def sigmoid(input) -> Tensor:  # noqa: A002
    return _act.sigmoid(input)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    return _act.leaky_relu(input, negative_slope)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    return _act.elu(input, alpha)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:  # noqa: A002
    return _act.softplus(input, beta, threshold)


def logsigmoid(input) -> Tensor:  # noqa: A002
    """log(sigmoid(x)) = -softplus(-x), stable for large |x|."""
    return -_act.softplus(-as_tensor(input), 1.0, math.inf)


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    return clamp(input, min_val, max_val)


def relu6(input, inplace: bool = False) -> Tensor:  # noqa: A002
    return clamp(input, 0.0, 6.0)


def softmax(input, dim: int = -1, _stacklevel: int = 3, dtype=None) -> Tensor:  # noqa: A002
    """exp(x) / sum(exp(x)) along `dim`, stable (the maximum is subtracted first)."""
    x = as_tensor(input)
    if dtype is not None:
        x = x.astype(dtype)
    return _red.softmax(x, dim=-1 if dim is None else dim)


def log_softmax(input, dim: int = -1, _stacklevel: int = 3, dtype=None) -> Tensor:  # noqa: A002
    """x - logsumexp(x) along `dim`, stable."""
    x = as_tensor(input)
    if dtype is not None:
        x = x.astype(dtype)
    return _red.log_softmax(x, dim=-1 if dim is None else dim)


def one_hot(tensor, num_classes: int = -1) -> Tensor:
    """int64 one-hot encoding with a new last axis of size num_classes (inferred when -1)."""
    t = as_tensor(tensor)
    if t.data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expects an integer tensor of class indices, got {t.dtype}")
    if t.size and (
        int(t.data.min()) < 0 or (num_classes >= 0 and int(t.data.max()) >= num_classes)
    ):
        raise ValueError(
            f"one_hot: class values must lie in [0, {num_classes}), got min {int(t.data.min())} "
            f"and max {int(t.data.max())}"
        )
    from ..ops.indexing import one_hot as _one_hot  # noqa: PLC0415

    return _one_hot(t, num_classes)


def pad(input, pad: Sequence[int], mode: str = "constant", value: float | None = None) -> Tensor:  # noqa: A002
    """Pad the last len(pad)//2 dimensions; `pad` = (left, right, top, bottom, ...) as PyTorch.

    Modes: 'constant' (differentiable), 'reflect', 'replicate' and 'circular' (forward only).
    """
    np_mode = {
        "constant": "constant",
        "reflect": "reflect",
        "replicate": "edge",
        "circular": "wrap",
    }.get(mode)
    if np_mode is None:
        raise ValueError(f"pad: unknown mode {mode!r}; use constant, reflect, replicate, circular")
    return _shape.pad(input, pad, mode=np_mode, value=0.0 if value is None else value)


# ---------------------------------------------------------------------------------------------
# Linear, embedding, dropout


class Linear(Function):
    """y = x W^T + b in one op, x (..., in) folded to (M, in) for ONE matrix product.

    Backward: gx = gy W, gW = gy^T x (directly in W's (out, in) layout), gb = sum of gy rows.
    Written once for arrays and Tensors, so it is differentiable under create_graph.
    """

    __slots__ = ("has_b",)
    save_inputs = True

    def forward(self, x, w, *b):
        x2 = x.reshape(-1, x.shape[-1])  # (M, in), a view for contiguous x
        y = x2 @ w.T  # (M, out); BLAS reads the transposed view without a copy
        if self.has_b:
            y += b[0]
        return y.reshape(x.shape[:-1] + (w.shape[0],))

    def backward(self, gy, F):
        ins = self.inputs(F)
        x, w = ins[0], ins[1]
        gy2 = gy.reshape((-1, gy.shape[-1]))  # (M, out)
        gx = gw = gb = None
        if self.parents[0] is not None:
            gx = (gy2 @ w).reshape(tuple(x.shape))
        if self.parents[1] is not None:
            gw = gy2.swapaxes(-1, -2) @ x.reshape((-1, x.shape[-1]))  # (out, in)
        if self.has_b and self.parents[2] is not None:
            gb = gy2.sum(axis=0)
        return (gx, gw, gb) if self.has_b else (gx, gw)


def linear(input, weight, bias=None) -> Tensor:  # noqa: A002
    """y = x W^T + b with W of shape (out_features, in_features); one fused op."""
    x = as_tensor(input)
    w = as_tensor(weight)
    if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise ValueError(
            f"linear: input of shape {tuple(x.shape)} has {x.shape[-1] if x.ndim else 0} "
            f"features but the weight {tuple(w.shape)} expects {w.shape[-1]} (weight is "
            "(out_features, in_features))"
        )
    if amp._depth:  # inside descent.autocast: the product in the low dtype
        x, w, bias = amp.lower(x, w, None if bias is None else as_tensor(bias))
    if bias is None:
        return Linear.apply(x, w, has_b=False)
    b = as_tensor(bias)
    if tuple(b.shape) != (w.shape[0],):
        return Linear.apply(x, w, has_b=False) + b  # an unusual bias shape: broadcast add
    return Linear.apply(x, w, b, has_b=True)


class Embedding(Function):
    """y = weight[idx]; d weight = gy rows added at idx (rows of padding_idx get none)."""

    __slots__ = ("idx", "padding_idx")

    def forward(self, w):
        return w[self.idx]  # (*idx.shape, D), one gather

    def backward(self, gy, F):
        if self.padding_idx is not None:
            keep = (self.idx != self.padding_idx)[..., None]
            gy = gy * (Tensor._wrap(keep.astype(gy.data.dtype)) if F.is_graph else keep)
        if F.is_graph:
            return F.index_grad(gy, self.in_shapes[0], self.idx, False)
        xp = backend.get_array_module(gy)
        n_rows, dim = self.in_shapes[0]
        idx = self.idx.reshape(-1)
        g2 = gy.reshape(-1, dim)
        if n_rows * idx.size <= 1 << 22:
            # Small vocabularies: a one-hot matrix product beats a scatter-add by far.
            onehot = xp.zeros((n_rows, idx.size), dtype=gy.dtype)
            onehot[idx, xp.arange(idx.size)] = 1
            return onehot @ g2
        gw = xp.zeros((n_rows, dim), dtype=gy.dtype)
        backend.scatter_add(gw, idx, g2)
        return gw


def embedding(
    input,
    weight,
    padding_idx: int | None = None,
    max_norm=None,
    norm_type=2.0,  # noqa: A002
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by the integer tensor `input`.

    `padding_idx` rows receive no gradient. max_norm, scale_grad_by_freq and sparse are not
    supported (they raise).
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding: max_norm, scale_grad_by_freq and sparse are not supported by descent"
        )
    w = as_tensor(weight)
    idx = as_tensor(input).data
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n_rows = w.shape[0]
    lo, hi = (int(idx.min()), int(idx.max())) if idx.size else (0, 0)
    if lo < -n_rows or hi >= n_rows:
        bad = lo if lo < -n_rows else hi
        raise IndexError(f"embedding: index {bad} out of range for {n_rows} embeddings")
    if lo < 0:
        idx = idx % n_rows  # negative indices count from the end (the backward needs >= 0)
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n_rows
    return Embedding.apply(w, idx=idx, padding_idx=padding_idx)


def _dropout_mask(shape, p: float, dtype, device, generator):
    """Inverted-dropout mask: 0 with probability p, else 1/(1-p) (so E[mask] = 1)."""
    u = rand(*shape, dtype=dtype, device=device, generator=generator).data
    keep = u >= dtype.type(p)
    return keep * dtype.type(1.0 / (1.0 - p))


def dropout(
    input,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,  # noqa: A002
    generator=None,
) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (when training).

    The mask is drawn from `generator` (a descent.Generator) or descent's default generator.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability must lie in [0, 1], got {p}")
    x = as_tensor(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    mask = _dropout_mask(x.shape, p, x.data.dtype, x.device, generator)
    return x * Tensor._wrap(mask)


# ---------------------------------------------------------------------------------------------
# Attention


def scaled_dot_product_attention(
    query,
    key,
    value,
    attn_mask=None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    generator=None,
) -> Tensor:
    """softmax(q k^T * scale + mask) v over q (..., L, E), k (..., S, E), v (..., S, Ev).

    Args:
        attn_mask: bool (True = may attend) or additive float, broadcastable to (..., L, S).
            A constant: no gradient flows into it.
        dropout_p: dropout on the attention probabilities (applied whenever > 0, as PyTorch;
            pass 0.0 in evaluation).
        is_causal: mask out keys after each query (top-left aligned); not with attn_mask.
        scale: defaults to 1/sqrt(E).
        generator: descent.Generator for the dropout mask (default generator otherwise).

    Returns:
        (..., L, Ev). One fused op; see docs/functional.md.
    """
    q, k, v = as_tensor(query), as_tensor(key), as_tensor(value)
    if amp._depth:  # inside descent.autocast: attention in the low dtype
        q, k, v = amp.lower(q, k, v)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ValueError("scaled_dot_product_attention: q, k, v need at least 2 dims (..., L, E)")
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"scaled_dot_product_attention: shapes q {tuple(q.shape)}, k {tuple(k.shape)}, "
            f"v {tuple(v.shape)} do not fit: need q (..., L, E), k (..., S, E), v (..., S, Ev)"
        )
    if enable_gqa and q.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        rep = q.shape[-3] // k.shape[-3]
        k = _gqa(k, rep)
        v = _gqa(v, rep)
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal")
    n_q, n_k = q.shape[-2], k.shape[-2]
    dt = q.data.dtype
    mask, additive = None, False
    if attn_mask is not None:
        m = attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask
        xp = backend.get_array_module(q.data)
        m = xp.asarray(m)  # a NumPy mask moves to q's device; np.asarray would fail on CuPy
        if m.dtype == np.bool_:
            mask = m
        else:
            mask, additive = m.astype(dt, copy=False), True
    drop = None
    if dropout_p > 0.0:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2])
        drop = _dropout_mask(batch + (n_q, n_k), dropout_p, dt, q.device, generator)
    sc = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    return ScaledDotProductAttention.apply(
        q, k, v, scale=sc, causal=bool(is_causal), mask=mask, additive=additive, drop=drop
    )


def _gqa(t: Tensor, rep: int) -> Tensor:
    """Repeat each key/value head `rep` times along dim -3 (grouped-query attention)."""
    shp = tuple(t.shape)
    t = _shape.unsqueeze(t, -3)  # (..., Hk, 1, S, E)
    t = _shape.broadcast_to(t, shp[:-3] + (shp[-3], rep) + shp[-2:])
    return t.reshape(shp[:-3] + (shp[-3] * rep,) + shp[-2:])


# ---------------------------------------------------------------------------------------------
# Normalisation


def _norm_shape(x: Tensor, normalized_shape, op: str) -> int:
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(x.shape[x.ndim - len(ns) :]) != ns or len(ns) > x.ndim:
        raise ValueError(
            f"{op}: normalized_shape {ns} must equal the last dimensions of the input "
            f"{tuple(x.shape)}"
        )
    return len(ns)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:  # noqa: A002
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing `normalized_shape` dims
    (biased variance, as PyTorch). One fused op."""
    x = _f32(_float_tensor(input, "layer_norm"))
    k = _norm_shape(x, normalized_shape, "layer_norm")
    ins = [x]
    if weight is not None:
        ins.append(as_tensor(weight))
    if bias is not None:
        ins.append(as_tensor(bias))
    return LayerNorm.apply(
        *ins, k=k, eps=float(eps), has_w=weight is not None, has_b=bias is not None
    )


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None) -> Tensor:  # noqa: A002
    """x / sqrt(mean(x^2) + eps) * weight over the trailing dims; eps defaults to the dtype's
    machine epsilon (as PyTorch). One fused op."""
    x = _f32(_float_tensor(input, "rms_norm"))
    k = _norm_shape(x, normalized_shape, "rms_norm")
    if eps is None:
        eps = float(np.finfo(x.data.dtype).eps)
    ins = [x] if weight is None else [x, as_tensor(weight)]
    return RMSNorm.apply(*ins, k=k, eps=float(eps), has_w=weight is not None, has_b=False)


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,  # noqa: A002
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dim 1) of (N, C, *) over the batch and spatial dims.

    training=True uses the batch statistics and updates `running_mean`/`running_var` in place
    (running = (1 - momentum) running + momentum batch, unbiased variance), as PyTorch;
    training=False uses the running statistics.
    """
    x = _f32(_float_tensor(input, "batch_norm"))
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected (N, C, *) input, got shape {tuple(x.shape)}")
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training:
        n = x.size // x.shape[1]
        if n <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"of shape {tuple(x.shape)}"
            )
        ins = [x]
        if weight is not None:
            ins.append(as_tensor(weight))
        if bias is not None:
            ins.append(as_tensor(bias))
        # One fused op; it updates the running statistics in place as it computes the batch's.
        return BatchNorm.apply(
            *ins,
            eps=float(eps),
            has_w=weight is not None,
            has_b=bias is not None,
            running_mean=None if running_mean is None else running_mean.data,
            running_var=None if running_var is None else running_var.data,
            momentum=0.1 if momentum is None else float(momentum),
        )
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation needs running_mean and running_var")
    # Evaluation: a per-channel affine map with the running statistics (constants).
    mu = Tensor._wrap(running_mean.data.reshape(bshape).astype(x.data.dtype))
    xp = backend.get_array_module(x.data)
    rv = running_var.data.reshape(bshape).astype(x.data.dtype)
    rstd = 1 / xp.sqrt(rv + x.data.dtype.type(eps))
    y = (x - mu) * Tensor._wrap(rstd.astype(x.data.dtype))
    if weight is not None:
        y = y * as_tensor(weight).reshape(bshape)
    if bias is not None:
        y = y + as_tensor(bias).reshape(bshape)
    return y


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:  # noqa: A002
    """Normalise (N, C, *) over groups of C/num_groups channels (and the spatial dims)."""
    x = _f32(_float_tensor(input, "group_norm"))
    n, c = x.shape[0], x.shape[1]
    if c % num_groups:
        raise ValueError(f"group_norm: {c} channels do not split into {num_groups} groups")
    xg = x.reshape(n, num_groups, -1)
    mu = xg.mean(axis=-1, keepdims=True)
    xc = xg - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    y = (xc * (var + eps) ** -0.5).reshape(tuple(x.shape))
    bshape = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * as_tensor(weight).reshape(bshape)
    if bias is not None:
        y = y + as_tensor(bias).reshape(bshape)
    return y


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:  # noqa: A002
    """x / max(||x||_p, eps) along `dim`."""
    x = as_tensor(input)
    nrm = _red.norm(x, ord=p, axis=dim, keepdims=True)
    return x / clamp(nrm, min=eps)


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """<x1, x2> / (max(||x1||, eps) max(||x2||, eps)) along `dim` (broadcasting)."""
    a, b = as_tensor(x1), as_tensor(x2)
    na = clamp(_red.norm(a, axis=dim, keepdims=True), min=eps)
    nb = clamp(_red.norm(b, axis=dim, keepdims=True), min=eps)
    return ((a / na) * (b / nb)).sum(axis=dim)


# ---------------------------------------------------------------------------------------------
# Convolution and pooling


def _tuple(v, n: int, name: str, op: str) -> tuple:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(a) for a in v)
    if len(v) != n:
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {v}")
    return v


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:  # noqa: A002
    """2-D cross-correlation of (N, C, H, W) (or unbatched (C, H, W)) with weight
    (O, C/groups, kh, kw). padding: int, pair, 'valid' or 'same' (stride 1). One fused op
    (im2col + one matrix product)."""
    x, w = _float_tensor(input, "conv2d"), as_tensor(weight)
    if amp._depth:  # inside descent.autocast: the convolution in the low dtype
        x, w, bias = amp.lower(x, w, None if bias is None else as_tensor(bias))
    unbatched = x.ndim == 3
    if unbatched:
        x = _shape.unsqueeze(x, 0)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(
            f"conv2d: expected input (N, C, H, W) and weight (O, C/groups, kh, kw), got "
            f"{tuple(x.shape)} and {tuple(w.shape)}"
        )
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    if c % groups or o % groups or cg != c // groups:
        raise ValueError(
            f"conv2d: input has {c} channels, weight {tuple(w.shape)} with groups={groups}: "
            f"need weight.shape[1] == C/groups ({c // max(groups, 1)}) and O divisible by groups"
        )
    sh, sw = _tuple(stride, 2, "stride", "conv2d")
    dh, dw = _tuple(dilation, 2, "dilation", "conv2d")
    if isinstance(padding, str):
        if padding == "valid":
            ph = pw = 0
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError("conv2d: padding='same' needs stride 1, as in PyTorch")
            th, tw = dh * (kh - 1), dw * (kw - 1)
            ph, pw = th // 2, tw // 2
            if th % 2 or tw % 2:  # asymmetric: the extra row/column goes after, as PyTorch
                x = pad(x, (pw, tw - pw, ph, th - ph))
                ph = pw = 0
        else:
            raise ValueError(
                f"conv2d: padding must be an int, a pair, 'same' or 'valid', got {padding!r}"
            )
    else:
        ph, pw = _tuple(padding, 2, "padding", "conv2d")
    hp, wp = x.shape[2] + 2 * ph, x.shape[3] + 2 * pw
    if hp < dh * (kh - 1) + 1 or wp < dw * (kw - 1) + 1:
        raise ValueError(
            f"conv2d: the kernel {kh}x{kw} (dilation {dh},{dw}) is larger than the padded input "
            f"{hp}x{wp}"
        )
    ins = [x, w] if bias is None else [x, w, as_tensor(bias)]
    y = Conv2d.apply(
        *ins, geom=(kh, kw, sh, sw, dh, dw, ph, pw), groups=int(groups), has_b=bias is not None
    )
    return y[0] if unbatched else y


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1) -> Tensor:  # noqa: A002
    """1-D cross-correlation of (N, C, L) (or (C, L)) with weight (O, C/groups, k): conv2d on
    a height-1 image."""
    x, w = _float_tensor(input, "conv1d"), as_tensor(weight)
    unbatched = x.ndim == 2
    if unbatched:
        x = _shape.unsqueeze(x, 0)
    if x.ndim != 3 or w.ndim != 3:
        raise ValueError(
            f"conv1d: expected input (N, C, L) and weight (O, C/groups, k), got {tuple(x.shape)} "
            f"and {tuple(w.shape)}"
        )
    s = _tuple(stride, 1, "stride", "conv1d")[0]
    d = _tuple(dilation, 1, "dilation", "conv1d")[0]
    p = padding if isinstance(padding, str) else (0, _tuple(padding, 1, "padding", "conv1d")[0])
    y = conv2d(_shape.unsqueeze(x, 2), _shape.unsqueeze(w, 2), bias, (1, s), p, (1, d), groups)
    y = _shape.squeeze(y, 2)
    return y[0] if unbatched else y


def _pool_geom(x: Tensor, kernel_size, stride, padding, dilation, op: str):
    kh, kw = _tuple(kernel_size, 2, "kernel_size", op)
    if stride is None or (not isinstance(stride, int) and len(stride) == 0):
        sh, sw = kh, kw
    else:
        sh, sw = _tuple(stride, 2, "stride", op)
    ph, pw = _tuple(padding, 2, "padding", op)
    dh, dw = _tuple(dilation, 2, "dilation", op)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"{op}: padding {ph, pw} must be at most half the kernel {kh, kw}")
    if out_size(x.shape[2], kh, sh, dh, ph) < 1 or out_size(x.shape[3], kw, sw, dw, pw) < 1:
        raise ValueError(f"{op}: kernel {kh, kw} is larger than the input {tuple(x.shape)}")
    return (kh, kw, sh, sw, dh, dw, ph, pw)


def _as4d(x: Tensor, op: str) -> tuple[Tensor, bool]:
    if x.ndim == 3:
        return _shape.unsqueeze(x, 0), True
    if x.ndim != 4:
        raise ValueError(f"{op}: expected (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    return x, False


def _ceil_extra(n: int, k: int, s: int, d: int, p: int) -> int:
    """Rows (or columns) to add after the input so that ceil_mode's last window fits.

    PyTorch: out = ceil((n + 2p - d(k-1) - 1) / s) + 1, minus one if the last window would
    start in the right padding; the extra cells never win a max and are not counted in a mean.
    """
    span = n + 2 * p - d * (k - 1) - 1
    out = -(-span // s) + 1
    if (out - 1) * s >= n + p:
        out -= 1
    return max(0, (out - 1) * s + d * (k - 1) + 1 - (n + 2 * p))


def _ceil_pad(x: Tensor, geom, ceil_mode: bool, value: float) -> tuple[Tensor, int, int]:
    """x with ceil_mode's extra bottom rows / right columns (filled with `value`)."""
    if not ceil_mode:
        return x, 0, 0
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    eh = _ceil_extra(x.shape[2], kh, sh, dh, ph)
    ew = _ceil_extra(x.shape[3], kw, sw, dw, pw)
    if eh or ew:
        x = _shape.pad(x, (0, ew, 0, eh), value=value)
    return x, eh, ew


def _max_indices(x: Tensor, y: Tensor, geom, h: int, w: int) -> Tensor:
    """PyTorch's return_indices: the flat index (row * W + col) in the input of each maximum."""
    from ..ops.conv import _offsets  # noqa: PLC0415

    xp = backend.get_array_module(x.data)
    kh, kw, sh, sw, dh, dw, ph, pw = geom
    xd, yd = x.data, y.data
    if ph or pw:
        xd = xp.pad(xd, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    ho, wo = yd.shape[2], yd.shape[3]
    rows = xp.arange(ho).reshape(-1, 1) * sh - ph  # (Ho, 1) window origin in the input
    cols = xp.arange(wo).reshape(1, -1) * sw - pw  # (1, Wo)
    idx = xp.zeros(yd.shape, dtype=np.int64)
    taken = xp.zeros(yd.shape, dtype=bool)
    for i, j, sl in _offsets(geom, ho, wo):
        hit = (xd[sl] == yd) & ~taken  # the first maximum wins, as in the backward
        taken |= hit
        xp.copyto(idx, (rows + i * dh) * w + (cols + j * dw), where=hit)
    return Tensor._wrap(idx)


def max_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,  # noqa: A002
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Maximum over kh x kw windows (stride defaults to the kernel), as PyTorch: padding with
    -inf, dilation, ceil_mode, and return_indices (flat indices into each H x W input plane;
    ties go to the first maximum)."""
    x, unbatched = _as4d(_float_tensor(input, "max_pool2d"), "max_pool2d")
    h, w = x.shape[2], x.shape[3]
    geom = _pool_geom(x, kernel_size, stride, padding, dilation, "max_pool2d")
    x, _, _ = _ceil_pad(x, geom, ceil_mode, -np.inf)
    y = MaxPool2d.apply(x, geom=geom)
    if return_indices:
        idx = _max_indices(x, y, geom, h, w)
        return (y[0], idx[0]) if unbatched else (y, idx)
    return y[0] if unbatched else y


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,  # noqa: A002
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over kh x kw windows; ceil_mode, count_include_pad and divisor_override as
    PyTorch."""
    x, unbatched = _as4d(_float_tensor(input, "avg_pool2d"), "avg_pool2d")
    h, w = x.shape[2], x.shape[3]
    geom = _pool_geom(x, kernel_size, stride, padding, 1, "avg_pool2d")
    kh, kw, sh, sw, _, _, ph, pw = geom
    x, eh, ew = _ceil_pad(x, geom, ceil_mode, 0.0)
    if divisor_override is not None:
        div = float(divisor_override)
    elif (count_include_pad or (ph == 0 and pw == 0)) and not (eh or ew):
        div = float(kh * kw)
    else:
        # Count the cells each window averages: pool an image of ones over what counts (the
        # input, plus the padding when count_include_pad; never ceil_mode's extra cells).
        if count_include_pad:
            ones = np.pad(np.ones((h + 2 * ph, w + 2 * pw)), ((0, eh), (0, ew)))
        else:
            ones = np.pad(np.ones((h, w)), ((ph, ph + eh), (pw, pw + ew)))
        ho, wo = out_size(h + eh, kh, sh, 1, ph), out_size(w + ew, kw, sw, 1, pw)
        div = np.zeros((ho, wo))
        for i in range(kh):
            for j in range(kw):
                div += ones[i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw]
        xp = backend.get_array_module(x.data)
        div = xp.asarray(div.astype(x.data.dtype))
    y = AvgPool2d.apply(x, geom=geom, div=div)
    return y[0] if unbatched else y


def max_pool1d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode: bool = False,  # noqa: A002
    return_indices: bool = False,
) -> Tensor:
    """max_pool2d over (N, C, L) as a height-1 image (indices are positions along L)."""
    x = _shape.unsqueeze(as_tensor(input), -2)
    k = _tuple(kernel_size, 1, "kernel_size", "max_pool1d")[0]
    s = k if stride is None else _tuple(stride, 1, "stride", "max_pool1d")[0]
    p = _tuple(padding, 1, "padding", "max_pool1d")[0]
    d = _tuple(dilation, 1, "dilation", "max_pool1d")[0]
    y = max_pool2d(x, (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    if return_indices:
        return _shape.squeeze(y[0], -2), _shape.squeeze(y[1], -2)
    return _shape.squeeze(y, -2)


def avg_pool1d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode: bool = False,  # noqa: A002
    count_include_pad: bool = True,
) -> Tensor:
    """avg_pool2d over (N, C, L) as a height-1 image."""
    x = _shape.unsqueeze(as_tensor(input), -2)
    k = _tuple(kernel_size, 1, "kernel_size", "avg_pool1d")[0]
    s = k if stride is None else _tuple(stride, 1, "stride", "avg_pool1d")[0]
    p = _tuple(padding, 1, "padding", "avg_pool1d")[0]
    y = avg_pool2d(x, (1, k), (1, s), (0, p), ceil_mode, count_include_pad)
    return _shape.squeeze(y, -2)


def adaptive_avg_pool2d(input, output_size) -> Tensor:  # noqa: A002
    """Average pooling to a fixed (oh, ow): windows [floor(i H/oh), ceil((i+1) H/oh)) as
    PyTorch. One avg_pool2d when the sizes divide evenly, else a mean per output cell."""
    x, unbatched = _as4d(_float_tensor(input, "adaptive_avg_pool2d"), "adaptive_avg_pool2d")
    h, w = x.shape[2], x.shape[3]
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    oh = h if output_size[0] is None else int(output_size[0])
    ow = w if output_size[1] is None else int(output_size[1])
    if h % oh == 0 and w % ow == 0:
        y = avg_pool2d(x, (h // oh, w // ow))
    else:
        rows = []
        for i in range(oh):
            r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)
            cells = []
            for j in range(ow):
                c0, c1 = (j * w) // ow, -((-(j + 1) * w) // ow)
                cells.append(x[:, :, r0:r1, c0:c1].mean(axis=(2, 3)))
            rows.append(_shape.stack(cells, axis=-1))
        y = _shape.stack(rows, axis=-2)
    return y[0] if unbatched else y


# ---------------------------------------------------------------------------------------------
# Losses


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,  # noqa: A002
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between logits and class indices or class probabilities.

    Args:
        input: logits (C,), (N, C) or (N, C, d1, ...).
        target: integer class indices of shape (), (N,) or (N, d1, ...) (one fused op), or
            class probabilities with the input's shape (a composite).
        weight: per-class weights (C,).
        ignore_index: index targets equal to it contribute nothing (and are not counted in
            the 'mean' denominator).
        reduction: 'mean' (over counted rows, weighted), 'sum' or 'none'.
        label_smoothing: mix eps of the uniform distribution into the target.

    Stable for any finite logits (the row maximum is subtracted; loss finite at +-1e4 in float32).
    """
    reduction = _reduction(size_average, reduce, reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(
            f"cross_entropy: label_smoothing must lie in [0, 1], got {label_smoothing}"
        )
    x = _f32(_float_tensor(input, "cross_entropy"))
    t = as_tensor(target)
    if x.ndim == 0:
        raise ValueError("cross_entropy: input must have a class dimension")
    unbatched = x.ndim == 1
    if unbatched:
        x = _shape.unsqueeze(x, 0)
        t = t.reshape(1, *t.shape) if t.data.dtype.kind == "f" else t.reshape(1)
    n_cls = x.shape[1]
    w = None
    if weight is not None:
        w = as_tensor(weight).data.astype(x.data.dtype)
        if w.shape != (n_cls,):
            raise ValueError(f"cross_entropy: weight must have shape ({n_cls},), got {w.shape}")
    # Move the class axis last and flatten: (N, C, d...) -> (N*d..., C).
    spatial = tuple(x.shape[2:])
    if spatial:
        perm = (0,) + tuple(range(2, x.ndim)) + (1,)
        x2 = _shape.permute(x, *perm).reshape(-1, n_cls)
    else:
        x2 = x
    if t.data.dtype.kind == "f":
        loss = _soft_cross_entropy(
            x, x2, t, w, reduction, label_smoothing, perm if spatial else None
        )
    else:
        if tuple(t.shape) != (x.shape[0],) + spatial:
            raise ValueError(
                f"cross_entropy: class-index target of shape {tuple(t.shape)} does not match "
                f"input {tuple(x.shape)}; expected {(x.shape[0],) + spatial}"
            )
        tgt = t.data.reshape(-1)
        bad = (tgt != ignore_index) & ((tgt < 0) | (tgt >= n_cls))
        if bad.any():
            raise IndexError(
                f"cross_entropy: target {int(tgt[bad][0])} is out of range for {n_cls} classes "
                f"(ignore_index is {ignore_index})"
            )
        loss = SoftmaxCrossEntropy.apply(
            x2,
            target=tgt,
            weight=w,
            ignore_index=int(ignore_index),
            smoothing=float(label_smoothing),
            reduction=reduction,
        )
        if reduction == "none":
            loss = loss.reshape((x.shape[0],) + spatial)
    if unbatched and reduction == "none":
        loss = loss[0]
    return loss


def _soft_cross_entropy(x, x2, t, w, reduction, eps, perm):
    """Cross-entropy against class probabilities (composite, differentiable in both)."""
    if tuple(t.shape) != tuple(x.shape):
        raise ValueError(
            f"cross_entropy: probability target {tuple(t.shape)} must match the input "
            f"{tuple(x.shape)}"
        )
    n_cls = x.shape[1]
    t2 = _shape.permute(t, *perm).reshape(-1, n_cls) if perm is not None else t
    if eps:
        t2 = t2 * (1 - eps) + eps / n_cls
    logp = _red.log_softmax(x2, axis=1)
    prod = logp * t2
    if w is not None:
        prod = prod * Tensor._wrap(w)
    loss = -prod.sum(axis=1)  # (N*d...,)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss.reshape((x.shape[0],) + tuple(x.shape[2:]))


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,  # noqa: A002
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C) or (N, C, d...) at class indices;
    'mean' divides by the summed weight of the counted targets."""
    reduction = _reduction(size_average, reduce, reduction, "nll_loss")
    x = _f32(_float_tensor(input, "nll_loss"))
    t = as_tensor(target).data
    unbatched = x.ndim == 1
    if unbatched:
        x, t = _shape.unsqueeze(x, 0), t.reshape(1)
    n_cls = x.shape[1]
    if tuple(t.shape) != (x.shape[0],) + tuple(x.shape[2:]):
        raise ValueError(f"nll_loss: target {tuple(t.shape)} does not match input {tuple(x.shape)}")
    xp = backend.get_array_module(x.data)
    valid = t != ignore_index
    if ((t[valid] < 0) | (t[valid] >= n_cls)).any():
        raise IndexError(f"nll_loss: a target is out of range for {n_cls} classes")
    t_safe = xp.where(valid, t, 0).astype(np.int64)
    from ..ops.indexing import take_along_axis  # noqa: PLC0415

    picked = take_along_axis(x, Tensor._wrap(xp.expand_dims(t_safe, 1)), 1)[:, 0]  # (N, d...)
    wt = valid.astype(x.data.dtype)
    if weight is not None:
        wt = wt * as_tensor(weight).data.astype(x.data.dtype)[t_safe]
    loss = -picked * Tensor._wrap(wt)
    if reduction == "mean":
        return loss.sum() / Tensor._wrap(xp.asarray(wt.sum(), dtype=x.data.dtype))
    if reduction == "sum":
        return loss.sum()
    return loss[0] if unbatched else loss


def mse_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """(input - target)^2, reduced."""
    reduction = _reduction(size_average, reduce, reduction, "mse_loss")
    x, y = _f32(as_tensor(input)), _f32(as_tensor(target))
    _same_shape(x, y, "mse_loss")
    d = x - y
    return _reduce(d * d, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """|input - target|, reduced."""
    reduction = _reduction(size_average, reduce, reduction, "l1_loss")
    x, y = as_tensor(input), as_tensor(target)
    _same_shape(x, y, "l1_loss")
    return _reduce(_abs(x - y), reduction)


def smooth_l1_loss(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction: str = "mean",  # noqa: A002
    beta: float = 1.0,
) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - beta/2 (d = input - target)."""
    reduction = _reduction(size_average, reduce, reduction, "smooth_l1_loss")
    x, y = as_tensor(input), as_tensor(target)
    _same_shape(x, y, "smooth_l1_loss")
    d = x - y
    a = _abs(d)
    if beta == 0:
        return _reduce(a, reduction)
    return _reduce(where(a < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:  # noqa: A002
    """0.5 d^2 where |d| < delta, else delta (|d| - delta/2): smooth_l1 scaled by delta."""
    reduction = _reduction(None, None, reduction, "huber_loss")
    x, y = as_tensor(input), as_tensor(target)
    _same_shape(x, y, "huber_loss")
    d = x - y
    a = _abs(d)
    return _reduce(where(a < delta, d * d * 0.5, (a - 0.5 * delta) * delta), reduction)


def binary_cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,  # noqa: A002
    reduction: str = "mean",
) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p; logs clamped at -100 as PyTorch
    (so p = 0 or 1 gives a finite loss). Prefer binary_cross_entropy_with_logits."""
    reduction = _reduction(size_average, reduce, reduction, "binary_cross_entropy")
    p, y = _float_tensor(input, "binary_cross_entropy"), as_tensor(target)
    if tuple(p.shape) != tuple(y.shape):
        raise ValueError(
            f"binary_cross_entropy: target {tuple(y.shape)} must have the input's shape "
            f"{tuple(p.shape)}"
        )
    pd = p.data
    if ((pd < 0) | (pd > 1)).any():
        raise ValueError("binary_cross_entropy: input probabilities must lie in [0, 1]")
    loss = BinaryCrossEntropy.apply(p, as_tensor(y, p))
    if weight is not None:
        loss = loss * as_tensor(weight)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,  # noqa: A002
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in a stable form: with l = 1 + (pos_weight - 1) y,

        loss = (1 - y) x + l softplus(-x),  softplus(-x) = log1p(exp(-|x|)) + max(-x, 0),

    finite for any finite logits."""
    reduction = _reduction(size_average, reduce, reduction, "binary_cross_entropy_with_logits")
    x, y = _float_tensor(input, "binary_cross_entropy_with_logits"), as_tensor(target, input)
    _same_shape(x, y, "binary_cross_entropy_with_logits")
    sp = _act.softplus(-x, 1.0, math.inf)  # log(1 + e^-x), the stable branch everywhere
    if pos_weight is None:
        loss = (1.0 - y) * x + sp
    else:
        lw = (as_tensor(pos_weight, x) - 1.0) * y + 1.0
        loss = (1.0 - y) * x + lw * sp
    if weight is not None:
        loss = loss * as_tensor(weight, x)
    return _reduce(loss, reduction)


def kl_div(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction: str = "mean",  # noqa: A002
    log_target: bool = False,
) -> Tensor:
    """KL(target || exp(input)) pointwise: target (log target - input), 0 where target = 0.

    `input` holds log-probabilities; `target` probabilities (or log-probabilities with
    log_target=True). reduction 'batchmean' divides the sum by the batch size (the true KL);
    'mean' averages over all elements, as PyTorch.
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, "mean", "kl_div")
    if reduction not in _REDUCTIONS + ("batchmean",):
        raise ValueError(f"kl_div: unknown reduction {reduction!r}")
    x, t = as_tensor(input), as_tensor(target, input)
    if log_target:
        loss = exp(t) * (t - x)
    else:
        td = t.data
        pos = td > 0
        # xlogy: 0 log 0 = 0; log of a safe value where the target is 0 (masked out anyway).
        safe_log = log(where(Tensor._wrap(pos), t, 1.0))
        loss = where(Tensor._wrap(pos), t * (safe_log - x), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)
