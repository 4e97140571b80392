"""Normalisation: layer_norm, rms_norm, batch_norm, group_norm, normalize, cosine_similarity.

layer_norm (Ba et al., 2016), rms_norm (Zhang & Sennrich, 2019) and batch_norm in training
(Ioffe & Szegedy, 2015) are fused ops in `descent.ops.norm`: they keep the normalised input and
the inverse standard deviation for backward rather than every intermediate. group_norm (Wu & He,
2018) and the vector normalisations are composites of descent ops. Under autocast all of them
run in float32 (a variance in float16 loses the small terms).
"""

from __future__ import annotations

import math

import numpy as np

from ... import amp, backend
from ...errors import DescentError, DtypeError
from ...opmath import HALF, is_reduced
from ...ops import reduce as _red
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...ops.elementwise import clamp
from ...ops.group_norm import GroupNorm as GroupNormOp
from ...ops.group_norm import fused_group_norm_ok
from ...ops.half import in_float32
from ...ops.norm import BatchNorm, LayerNorm, RMSNorm
from ...ops.untracked import computed
from ...tensor import Tensor
from ._inputs import autocast_f32, float_tensor

__all__ = [
    "layer_norm",
    "rms_norm",
    "batch_norm",
    "group_norm",
    "instance_norm",
    "local_response_norm",
    "normalize",
    "cosine_similarity",
]


def _norm_shape(x: Tensor, normalized_shape, op: str, weight=None, bias=None) -> int:
    """The number of normalised trailing dims, after PyTorch's checks of the shapes (weight and
    bias, when given, must have exactly the normalized shape)."""
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if not ns or tuple(x.shape[x.ndim - len(ns) :]) != ns or len(ns) > x.ndim:
        raise DescentError(
            f"{op}: normalized_shape {ns} must be at least 1-dimensional and equal the last "
            f"dimensions of the input {tuple(x.shape)}"
        )
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and t._data.shape != ns:
            raise DescentError(
                f"{op}: expected {name} to be of same shape as normalized_shape {ns}, but got "
                f"{name} of shape {tuple(t.shape)}"
            )
    return len(ns)


def _opt_tensor(t):
    """An optional weight or bias as a Tensor (so that `in_float32` casts a float16 one)."""
    return None if t is None else as_tensor(t)


def _same_dtype(op: str, x: Tensor, *params) -> None:
    """A float32/float64 input must match its weight and bias dtype, as PyTorch's CPU kernels
    ("mixed dtype (CPU): all inputs must share same datatype"); a float16/bfloat16 input with
    float32 parameters is PyTorch's allowed mixed case."""
    dt = x._data.dtype
    if dt.kind != "f" or dt.itemsize < 4:
        return
    for name, p in zip(("weight", "bias"), params):
        if p is not None and as_tensor(p)._data.dtype != dt:
            raise DescentError(
                f"{op}: input of dtype {x.dtype} and shape {tuple(x.shape)} but {name} of dtype "
                f"{as_tensor(p).dtype} (mixed dtypes); convert the input (x.to({name}.dtype)) "
                "or the module (module.to(x.dtype))"
            )


def _refuse_int_shape(op, normalized_shape):
    """PyTorch's binding takes a tuple of ints: an int raises its TypeError (the modules take
    one and make it a tuple)."""
    if isinstance(normalized_shape, (int, np.integer)):
        raise TypeError(
            f"{op}(): argument 'normalized_shape' (position 2) must be tuple of ints, not int "
            f"(pass ({normalized_shape},))"
        )


def _refuse_none_momentum(op, momentum):
    """PyTorch's binding takes a float momentum: None (the modules' cumulative average) raises
    its TypeError."""
    if momentum is None:
        raise TypeError(
            f"{op}(): argument 'momentum' (position 7) must be float, not NoneType (the "
            f"BatchNorm modules' momentum=None is a cumulative average: pass 1 / batches seen)"
        )


_F32_64 = (np.dtype(np.float32), np.dtype(np.float64))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over the trailing `normalized_shape` dims
    (biased variance, as PyTorch). One fused op."""
    # The common call (nn.LayerNorm's: a float32/float64 NumPy input outside autocast, a tuple
    # shape that its last dims match, weight and bias None or of that shape and dtype) goes to
    # the op without the checks below, which it passes (~3 us a call less): the same op call.
    if type(input) is Tensor and type(normalized_shape) is tuple and not amp._depth:
        a = input._data
        dt = a.dtype
        if (type(a) is np.ndarray and (dt is _F32_64[0] or dt is _F32_64[1]) and a.size
                and a.shape[a.ndim - len(normalized_shape):] == normalized_shape
                and 0 < len(normalized_shape) <= a.ndim
                and (weight is None or (isinstance(weight, Tensor) and weight._data.dtype is dt
                                        and weight._data.shape == normalized_shape))
                and (bias is None or (isinstance(bias, Tensor) and bias._data.dtype is dt
                                      and bias._data.shape == normalized_shape))):  # fmt: skip
            ins = (input,) if weight is None else (input, weight)
            if bias is not None:
                ins += (bias,)
            return LayerNorm.apply(
                *ins, k=len(normalized_shape), eps=float(eps), has_w=weight is not None,
                has_b=bias is not None, low=None,
            )  # fmt: skip
    _refuse_int_shape("layer_norm", normalized_shape)
    if getattr(input, "_nested_layout", False):  # a jagged nested tensor (descent.nested)
        from ...nested import functional as _nf  # noqa: PLC0415 - descent.nested is lazy

        return _nf.layer_norm(input, normalized_shape, weight, bias, eps)
    x = autocast_f32(float_tensor(input, "layer_norm"), cpu=False)
    if x._data.dtype == HALF and not backend.is_cupy_array(x._data):
        # In float32, rounded once, as PyTorch's CPU kernel (its opmath): the float16 mean,
        # variance and backward row sums were ~2x further from float64 (an ulp, not half of
        # one). Recorded casts, as rms_norm's: half weights get half gradients.
        w, b = _opt_tensor(weight), _opt_tensor(bias)
        return in_float32(_layer_norm, x, normalized_shape, w, b, eps, HALF)
    return _layer_norm(x, normalized_shape, weight, bias, eps)


def _layer_norm(x, normalized_shape, weight, bias, eps, low=None) -> Tensor:
    """layer_norm's op; `low`: float16 computed in float32, whose backward reads PyTorch's
    float16-rounded statistics (ops/norm.py)."""
    _same_dtype("layer_norm", x, weight, bias)
    ins = [x]
    if weight is not None:
        ins.append(weight := as_tensor(weight))
    if bias is not None:
        ins.append(bias := as_tensor(bias))
    k = _norm_shape(x, normalized_shape, "layer_norm", weight, bias)
    if x._data.size == 0:  # PyTorch: an empty result (no rows, or rows of no elements)
        return x * 0.0
    return LayerNorm.apply(
        *ins, k=k, eps=float(eps), has_w=weight is not None, has_b=bias is not None, low=low
    )


def rms_norm(input, normalized_shape, weight=None, eps: float | None = None) -> Tensor:
    """x / sqrt(mean(x^2) + eps) * weight over the trailing dims; eps defaults to the dtype's
    machine epsilon (as PyTorch). One fused op. float16/bfloat16 input is computed in float32
    (eps then float32's) and cast back, as PyTorch: in half precision mean(x^2) of inputs near
    1e-3 is subnormal, and the half epsilon (1e-3) swamped it."""
    _refuse_int_shape("rms_norm", normalized_shape)
    x = as_tensor(input)
    if x._nested_layout:  # a jagged nested tensor (descent.nested)
        from ...nested import functional as _nf  # noqa: PLC0415 - descent.nested is lazy

        return _nf.rms_norm(x, normalized_shape, weight, eps)
    if x._data.dtype.kind == "c":
        return _complex_rms_norm(x, normalized_shape, weight, eps)
    x = autocast_f32(float_tensor(x, "rms_norm"), cpu=False)
    if x._data.dtype.itemsize == 2:
        # float16/bfloat16 in float32, rounded once; a weight of x's dtype goes through a
        # recorded cast too, so its gradient comes back half
        return in_float32(rms_norm, x, normalized_shape, _opt_tensor(weight), eps)
    ins = [x] if weight is None else [x, weight := as_tensor(weight)]
    k = _norm_shape(x, normalized_shape, "rms_norm", weight)
    if eps is None:
        eps = float(np.finfo(x._data.dtype).eps)
    return RMSNorm.apply(*ins, k=k, eps=float(eps), has_w=weight is not None, has_b=False)


def _complex_rms_norm(x: Tensor, normalized_shape, weight, eps) -> Tensor:
    """ATen's composite rms_norm on complex input: x rsqrt(mean(x^2) + eps) (the complex
    square, not |x|^2), times weight; eps defaults to the real part's machine epsilon.
    Composite ops, so the gradient is their (complex) chain rule."""
    k = _norm_shape(x, normalized_shape, "rms_norm")
    if eps is None:
        eps = float(np.finfo(x._data.dtype).eps)
    axes = tuple(range(x.ndim - k, x.ndim))
    y = x * ((x * x).mean(axis=axes, keepdims=True) + eps).rsqrt()
    return y if weight is None else y * as_tensor(weight)


def _check_batch_norm_args(input, training: bool, eps: float) -> None:
    """torch.nn.functional.batch_norm's own checks (Python, before its kernel): one value per
    channel cannot be normalised in training, and eps must be positive there (>= 0 else)."""
    shape = tuple(getattr(input, "shape", ()))
    if training and shape:
        n = shape[0]
        for size in shape[2:]:
            n *= size
        if n == 1:
            raise ValueError(
                "Expected more than 1 value per channel when training, got input size "
                f"{shape} (batch_norm: use a batch of 2 or more, or eval mode)"
            )
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")


def batch_norm(
    input,
    running_mean,
    running_var,
    weight=None,
    bias=None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dim 1) of (N, C, *) over the batch and spatial dims.

    training=True uses the batch statistics and updates `running_mean`/`running_var` in place
    (running = (1 - momentum) running + momentum batch, unbiased variance), as PyTorch;
    training=False uses the running statistics.
    """
    _refuse_none_momentum("batch_norm", momentum)
    _check_batch_norm_args(input, training, eps)
    return batch_norm_unchecked(input, running_mean, running_var, weight, bias, training,
                                momentum, eps)  # fmt: skip


def batch_norm_unchecked(input, running_mean, running_var, weight=None, bias=None,
                         training: bool = False, momentum: float = 0.1,
                         eps: float = 1e-5) -> Tensor:  # fmt: skip
    """batch_norm without torch.nn.functional's Python checks (one value per channel, eps):
    the kernel torch.batch_norm, native_batch_norm and instance_norm reach in PyTorch."""
    x = autocast_f32(float_tensor(input, "batch_norm"), cpu=False)
    if is_reduced(x._data.dtype) and not backend.is_cupy_array(x._data):
        # In float32, rounded once, as PyTorch's CPU kernel (opmath): the float16 statistics
        # and backward sums were ~2x further from float64 than PyTorch's. The running
        # statistics keep their dtype (updated in place from the float32 batch statistics):
        # they stay out of the casts.
        low = x._data.dtype
        # Training with parameters and running statistics of the input's dtype: PyTorch's
        # kernel rounds its saved statistics and running updates (ops/norm.py _low_forward)
        same = training and x.ndim >= 2 and x.numel() > x.shape[1] and all(
            t is None or as_tensor(t)._data.dtype == low
            for t in (weight, bias, running_mean, running_var))  # fmt: skip

        def f32(x, w, b):
            if same:
                return _batch_norm_op(x, running_mean, running_var, w, b, momentum, eps, low)
            return batch_norm_unchecked(x, running_mean, running_var, w, b, training,
                                        momentum, eps)  # fmt: skip

        return in_float32(f32, x, _opt_tensor(weight), _opt_tensor(bias))
    _same_dtype("batch_norm", x, weight, bias)
    if x.ndim < 2:
        if x.numel() == 0:
            # ATen returns an empty input (a copy) before looking at its shape; a weight or bias
            # acts through its first element (an IndexError where it is empty too)
            y = x.clone()
            if weight is not None:
                y = y * as_tensor(weight)[0]
            if bias is not None:
                y = y + as_tensor(bias)[0]
            return y
        raise DescentError(f"batch_norm: expected (N, C, *) input, got shape {tuple(x.shape)}")
    bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    if training and x.numel() == 0:
        # An empty batch (PyTorch: an empty output, the running statistics untouched), still
        # linked to weight and bias, whose gradients are then zeros
        y = x
        if weight is not None:
            y = y * as_tensor(weight).reshape(bshape)
        if bias is not None:
            y = y + as_tensor(bias).reshape(bshape)
        return y
    if training:
        n = x.numel() // x.shape[1]
        if n <= 1:
            raise ValueError(
                f"batch_norm: expected more than 1 value per channel when training, got input "
                f"of shape {tuple(x.shape)}"
            )
        return _batch_norm_op(x, running_mean, running_var, weight, bias, momentum, eps)
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: evaluation needs running_mean and running_var")
    # Evaluation: a per-channel affine map with the running statistics (constants).
    # Through untracked.computed: descent.compile reads the running statistics at each replay
    # (copies made on the arrays were constants: a compiled eval step kept the statistics of
    # its recording after training changed them; session 19's fuzzer)
    dt = x._data.dtype
    mu = computed(_eval_mean, (as_tensor(running_mean),), (bshape, dt))
    rstd = computed(_eval_rstd, (as_tensor(running_var),), (bshape, dt, float(eps)))
    y = (x - mu) * rstd
    if weight is not None:
        y = y * as_tensor(weight).reshape(bshape)
    if bias is not None:
        y = y + as_tensor(bias).reshape(bshape)
    return y


def _eval_mean(rm, bshape, dt):
    """The running mean as x's broadcastable (1, C, 1, ...) array of x's dtype."""
    return rm.reshape(bshape).astype(dt)


def _eval_rstd(rv, bshape, dt, eps):
    """1 / sqrt(running_var + eps) as x's broadcastable array of x's dtype."""
    rv = rv.reshape(bshape).astype(dt)
    return (1 / backend.get_array_module(rv).sqrt(rv + dt.type(eps))).astype(dt)


def _batch_norm_op(x, running_mean, running_var, weight, bias, momentum, eps, low=None):
    """Training batch norm as one fused op; it updates the running statistics in place as it
    computes the batch's. `low`: x, weight and bias are float32 holding float16/bfloat16
    values, and the running statistics are of that dtype (PyTorch's roundings)."""
    ins = [x]
    if weight is not None:
        ins.append(as_tensor(weight))
    if bias is not None:
        ins.append(as_tensor(bias))
    return BatchNorm.apply(
        *ins,
        eps=float(eps),
        has_w=weight is not None,
        has_b=bias is not None,
        running_mean=None if running_mean is None else running_mean._data,
        running_var=None if running_var is None else running_var._data,
        momentum=0.1 if momentum is None else float(momentum),
        low=low,
    )


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise (N, C, *) over groups of C/num_groups channels (and the spatial dims).
    float16/bfloat16 input is computed in float32 and the result cast back, as PyTorch (in half
    precision, d/dvar (var + eps)^-1/2 overflows for a near-constant group: nan gradients)."""
    x = autocast_f32(float_tensor(input, "group_norm"), cpu=False)
    if x._data.dtype.itemsize == 2:
        w, b = _opt_tensor(weight), _opt_tensor(bias)
        low = x._data.dtype
        # weight and bias of the input's dtype: PyTorch's reduced-precision backward
        # (ops/group_norm.py GroupNorm._low_backward) on the fused op
        same = all(t is None or t._data.dtype == low for t in (w, b))

        def f32(x, num_groups, w, b, eps):
            if (same and x.ndim >= 2 and not x.shape[1] % num_groups and fused_group_norm_ok(x)
                    and math.prod(x.shape[2:])):  # fmt: skip
                return _group_norm_op(x, num_groups, w, b, eps, low)
            return group_norm(x, num_groups, w, b, eps)

        return in_float32(f32, x, num_groups, w, b, eps)
    if x.ndim < 2:
        raise DescentError(
            f"group_norm: expected at least 2 dimensions (N, C, *) for input, got shape "
            f"{tuple(x.shape)}; add a batch dimension with x.unsqueeze(0)"
        )
    c = x.shape[1]
    # torch.nn.functional.group_norm's _verify_batch_size over [N C / G, G, *spatial]: one
    # value per group cannot be normalised (a ValueError, before the divisibility check)
    size = [x.shape[0] * c // num_groups, num_groups, *x.shape[2:]]
    if math.prod([size[0], *size[2:]]) == 1:
        raise ValueError(
            f"Expected more than 1 value per channel when training, got input size {size} "
            f"(group_norm of {tuple(x.shape)} with {num_groups} groups: one value per group)"
        )
    if c % num_groups:
        raise DescentError(
            f"group_norm: expected number of channels in input {tuple(x.shape)} to be divisible "
            f"by num_groups, but {c} channels do not split into {num_groups} groups"
        )
    if fused_group_norm_ok(x) and math.prod(x.shape[2:]):
        return _group_norm_op(x, num_groups, weight, bias, eps)
    return _group_norm_composite(x, num_groups, weight, bias, eps)


def _group_norm_op(x, num_groups, weight, bias, eps, low=None):
    """One op: statistics, normalisation and affine in one numba pass (ops/group_norm.py);
    create_graph differentiates the composite form. `low`: x, weight and bias are float32
    holding float16/bfloat16 values (PyTorch's reduced-precision backward)."""
    ins = [x] + [as_tensor(t) for t in (weight, bias) if t is not None]
    return GroupNormOp.apply(
        *ins, groups=int(num_groups), eps=float(eps), has_w=weight is not None,
        has_b=bias is not None, low=low,
        composite=_GroupNormComposite(num_groups, weight is not None, bias is not None, eps),
    )  # fmt: skip


class _GroupNormComposite:
    """`_group_norm_composite` over the op's inputs (create_graph's form). Equal when its
    arguments are: descent.compile compares an op's parameters between two recordings, and a
    lambda made per call never compared equal, so every group_norm/instance_norm ran eagerly
    (session 19's fuzzer)."""

    __slots__ = ("groups", "has_w", "has_b", "eps")

    def __init__(self, groups, has_w: bool, has_b: bool, eps) -> None:
        self.groups, self.has_w, self.has_b, self.eps = groups, has_w, has_b, eps

    def __call__(self, *t):
        return _group_norm_composite(t[0], self.groups, *_split_affine(t[1:], self.has_w,
                                                                       self.has_b), self.eps)

    def _key(self):
        return (self.groups, self.has_w, self.has_b, self.eps)

    def __eq__(self, other) -> bool:
        return type(other) is _GroupNormComposite and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _split_affine(ts, has_w: bool, has_b: bool):
    """(weight, bias) from the op's trailing inputs."""
    return (ts[0] if has_w else None), (ts[-1] if has_b else None)


def _group_norm_composite(x, num_groups: int, weight, bias, eps: float) -> Tensor:
    """group_norm from recorded ops: the row normalisation, then the per-channel affine."""
    n, c = x.shape[0], x.shape[1]
    # (N, G, C/G * spatial): one row per group (the row length spelled out: with N = 0 a -1
    # would be ambiguous)
    xg = x.reshape(n, num_groups, (c // num_groups) * math.prod(x.shape[2:]))
    if xg.shape[-1]:
        # Each group's row normalised by the fused LayerNorm op (no affine: the weight is per
        # channel, not per row element): 2 passes forward and 3 backward, where the composite
        # mean / centre / variance / scale chain made ten of each (GroupNorm(32, 128) on
        # (32, 128, 16, 16): 11 ms against PyTorch's 0.8 ms, forward + backward).
        y = LayerNorm.apply(xg, k=1, eps=float(eps), has_w=False, has_b=False)
        y = y.reshape(tuple(x.shape))
    else:  # empty groups: the composite form gives PyTorch's NaN-free empty result
        mu = xg.mean(axis=-1, keepdims=True)
        xc = xg - mu
        var = (xc * xc).mean(axis=-1, keepdims=True)  # biased, as PyTorch
        y = (xc * (var + eps) ** -0.5).reshape(tuple(x.shape))
    bshape = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        y = y * as_tensor(weight).reshape(bshape)
    if bias is not None:
        y = y + as_tensor(bias).reshape(bshape)
    return y


def instance_norm(
    input,
    running_mean=None,
    running_var=None,
    weight=None,
    bias=None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of each sample of (N, C, *) over its spatial dims (Ulyanov et
    al. 2016): group_norm with one group per channel.

    use_input_stats=True (training) uses each instance's statistics and, when running_mean /
    running_var are given, updates them in place as PyTorch: running = (1 - momentum) running
    + momentum * (the batch mean of the per-instance means / UNBIASED variances).
    use_input_stats=False normalises with the running statistics (batch_norm's evaluation).

    Raises:
        ValueError: a training input with at most one spatial element per channel.
    """
    _refuse_none_momentum("instance_norm", momentum)
    x = float_tensor(input, "instance_norm")
    if x.ndim < 2:
        raise ValueError(f"instance_norm: expected (N, C, *) input, got shape {tuple(x.shape)}")
    if not use_input_stats:
        return batch_norm_unchecked(x, running_mean, running_var, weight, bias, False, 0.0, eps)
    spatial = int(np.prod(x.shape[2:]))
    if spatial <= 1:
        raise ValueError(
            f"instance_norm: Expected more than 1 spatial element when training, got input "
            f"size {tuple(x.shape)}"
        )
    low = x._data.dtype
    same = all(t is None or as_tensor(t)._data.dtype == low for t in (weight, bias))
    if eps == 0.0 or (is_reduced(low) and running_mean is None and running_var is None
                      and same):  # fmt: skip
        # PyTorch's instance_norm is batch_norm of the (1, N * C, *) view with the weight and
        # bias repeated N times (Normalization.cpp): in float16/bfloat16 its roundings are
        # batch_norm's (the saved statistics), not group_norm's; with eps 0 a constant
        # channel gives the bias (batch norm's InvStd takes 1 / std as 0 there, group_norm's
        # 0 * inf is nan)
        n, c = x.shape[0], x.shape[1]
        w = None if weight is None else as_tensor(weight).expand(n, c).reshape(n * c)
        b = None if bias is None else as_tensor(bias).expand(n, c).reshape(n * c)
        y = batch_norm_unchecked(x.reshape((1, n * c) + tuple(x.shape[2:])), None, None, w, b,
                                 True, momentum, eps)  # fmt: skip
        y = y.reshape(x.shape)
    else:
        y = group_norm(x, x.shape[1], weight, bias, eps)
    m = 0.0 if momentum is None else float(momentum)
    axes = tuple(range(2, x.ndim))
    for buf, stat in (
        (running_mean, lambda d: d.mean(axis=axes).mean(axis=0)),  # (C,)
        (running_var, lambda d: d.var(axis=axes, ddof=1).mean(axis=0)),  # (C,), unbiased
    ):
        if buf is not None:
            value = stat(x._data).astype(buf._data.dtype)
            buf._data[...] = (1 - m) * buf._data + m * value
            buf._version += 1  # a raw write: let a backward that saved it notice
    return y


def local_response_norm(
    input, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """x / (k + alpha / size * sum of x^2 over `size` neighbouring channels)^beta (Krizhevsky
    et al. 2012), the window [c - size // 2, c + (size - 1) // 2] zero-padded at the ends, as
    PyTorch (its divisor is always `size`)."""
    x = as_tensor(input)
    if x.ndim < 3:
        raise ValueError(
            f"local_response_norm: Expected 3D or higher dimensionality input (got {x.ndim} "
            "dimensions)"
        )
    if x.numel() == 0:
        return x
    if x._data.dtype.kind in "biu" and x._data.dtype != np.int64:
        # PyTorch's composite reaches avg_pool, whose only integer kernel is int64's
        raise DtypeError(
            f"local_response_norm: not implemented for {x._data.dtype} tensors (shape "
            f"{tuple(x.shape)}), as PyTorch's avg_pool; convert first with .float()"
        )
    c = x.shape[1]
    sq = x * x
    # (N, C + size - 1, *): the squares with size // 2 zero channels before, (size - 1) // 2 after
    widths = (0, 0) * (x.ndim - 2) + (size // 2, (size - 1) // 2)
    padded = _shape.pad(sq, widths)
    total = padded[:, 0:c]
    for offset in range(1, size):
        total = total + padded[:, offset : offset + c]
    if x._data.dtype.kind in "iu":  # PyTorch's integer avg_pool truncates the window's mean
        div = (total // size * alpha + k) ** beta
    else:
        div = (total * (alpha / size) + k) ** beta
    return x / div


def normalize(input, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along `dim`."""
    x = as_tensor(input)
    nrm = _red.norm(x, ord=p, axis=dim, keepdims=True)
    return x / clamp(nrm, min=eps)  # eps: a zero vector stays zero instead of 0/0


def cosine_similarity(x1, x2, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """<x1, x2> / (max(||x1||, eps) max(||x2||, eps)) along `dim` (broadcasting).

    As PyTorch, the clamp to eps changes the norms' values but not their derivative (ATen
    clamps them in place under no_grad): below eps the gradient still differentiates ||x||.
    """
    a, b = as_tensor(x1), as_tensor(x2)
    if a.shape != b.shape:
        # As ATen (expand_outplace), broadcast first: a size-1 `dim` counts once per copy in the
        # norm; normalising before broadcasting gave cosines above 1.
        try:
            shape = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise DescentError(
                f"cosine_similarity: shapes {tuple(a.shape)} and {tuple(b.shape)} do not "
                "broadcast to a common shape"
            ) from None
        a, b = _shape.broadcast_to(a, shape), _shape.broadcast_to(b, shape)

    def clamped_norm(x):
        n = _red.norm(x, axis=dim, keepdims=True)
        return n + (clamp(n, min=eps) - n).detach()  # value max(n, eps), derivative dn

    return ((a / clamped_norm(a)) * (b / clamped_norm(b))).sum(axis=dim)
