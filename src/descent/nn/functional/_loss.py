"""Losses with PyTorch's names, signatures and reductions.

cross_entropy with class-index targets and binary_cross_entropy are fused ops
(`descent.ops.loss`); the others are composites of descent ops. Every loss accepts PyTorch's
legacy `size_average`/`reduce` flags (mapped onto `reduction`) and, under autocast, computes in
float32: a sum of many small float16 terms would lose precision.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ... import amp, backend
from ...errors import DescentError, DtypeError
from ...grad_mode import check_inference_saved, is_grad_enabled
from ...opmath import HALF, is_reduced
from ...ops import activation as _act
from ...ops import shape as _shape
from ...ops import softmax as _sm
from ...ops._common import as_tensor
from ...ops.elementwise import Where, exp, where
from ...ops.elementwise import abs as _abs
from ...ops.half import in_float32
from ...ops.indexing import SelectedValues
from ...ops.loss import (
    BCEWithLogits,
    BinaryCrossEntropy,
    HuberLoss,
    MseLoss,
    NllLoss,
    SmoothL1Loss,
    SoftmaxCrossEntropy,
    _nll_count,
    _nll_index,
    _nll_rounded_once,
    _nll_total,
    _nll_valid,
    _nll_weights,
)
from ...ops.math import xlogy
from ...ops.untracked import computed
from ...tensor import Tensor
from ._inputs import autocast_f32, check_index_target, check_weight_dtype, float_tensor

__all__ = [
    "cross_entropy",
    "nll_loss",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
]


_REDUCTIONS = ("mean", "sum", "none")
_F32_64, _I64 = (np.dtype(np.float32), np.dtype(np.float64)), np.dtype(np.int64)


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
    """The elementwise `loss` averaged, summed or returned as is."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _same_shape(a: Tensor, b: Tensor, op: str, warn: bool = False) -> None:
    """Input and target must broadcast together, as PyTorch allows; shapes that cannot raise
    here, naming the loss and both shapes, rather than deep inside the subtraction. With
    `warn`, shapes that differ but broadcast warn as PyTorch's regression losses do ((N, 1)
    against (N,) broadcasts to (N, N): rarely what was meant)."""
    if tuple(a.shape) != tuple(b.shape):
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise DescentError(
                f"{op}: input {tuple(a.shape)} and target {tuple(b.shape)} cannot be broadcast; "
                "give them the same shape"
            ) from None
        if warn:
            warnings.warn(
                f"{op}: using a target size {tuple(b.shape)} that is different to the input "
                f"size {tuple(a.shape)}; this will likely lead to incorrect results due to "
                "broadcasting. Please ensure they have the same size (e.g. target.view_as(input))",
                UserWarning,
                stacklevel=3,
            )


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
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
    # The common call (float32/float64 NumPy logits (N, C), int64 NumPy class indices (N,) in
    # range; no weight, smoothing or autocast) makes the checked path's op call (~15 us less).
    if (type(input) is Tensor and type(target) is Tensor and weight is None
            and not label_smoothing and size_average is None and reduce is None
            and type(ignore_index) is int and not amp._depth):  # fmt: skip
        xd, tgt = input._data, target._data
        if (type(xd) is np.ndarray and type(tgt) is np.ndarray and reduction in _REDUCTIONS
                and xd.ndim == 2 and xd.dtype in _F32_64 and tgt.dtype is _I64
                and tgt.shape == xd.shape[:1]
                and (not tgt.size or tgt.view(np.uint64).max() < xd.shape[1])):  # fmt: skip
            check_inference_saved(target, input)  # (the range check: a negative index is huge)
            loss = SoftmaxCrossEntropy.apply(input, target=tgt.reshape(-1), weight=None,
                                             ignore_index=ignore_index, smoothing=0.0,
                                             reduction=reduction)  # fmt: skip
            return loss.reshape((xd.shape[0],)) if reduction == "none" else loss
    reduction = _reduction(size_average, reduce, reduction, "cross_entropy")
    if not label_smoothing <= 1.0:
        raise DescentError(
            f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}"
        )
    # PyTorch smooths only for label_smoothing > 0: a negative value is no smoothing
    label_smoothing = max(float(label_smoothing), 0.0)
    x = autocast_f32(float_tensor(input, "cross_entropy"))
    t = as_tensor(target)
    check_inference_saved(t, x)  # (a class target is saved as a parameter: grad_mode.py)
    if x.ndim == 0:
        raise ValueError("cross_entropy: input must have a class dimension")
    if t._data.dtype.kind in "fV" and tuple(t.shape) != tuple(x.shape):
        # PyTorch reads a floating target as probabilities only at the input's shape; any
        # other shape takes the class-index path, which refuses the dtype
        check_index_target(t, x, "cross_entropy")
    unbatched = x.ndim == 1
    if unbatched:
        x = _shape.unsqueeze(x, 0)
        t = t.reshape(1, *t.shape) if t._data.dtype.kind in "fV" else t.reshape(1)
    xs = x._data.shape  # (plain tuples: a Tensor's .shape makes a Size per read)
    n_cls = xs[1]
    w = None
    if weight is not None:
        if t._data.dtype.kind not in "fV":  # class indices: PyTorch's kernel takes x's dtype
            check_weight_dtype(weight, x, "cross_entropy")
        # Through untracked.computed: descent.compile replays the cast on each call's weight
        # (a copy made on the array was a constant, frozen when the first two calls agreed).
        w = computed(_weight_in, (as_tensor(weight),), (x._data.dtype,))._data
        if w.shape != (n_cls,):
            raise DescentError(
                f"cross_entropy: weight must have shape ({n_cls},), got {tuple(w.shape)}"
            )
    # Move the class axis last and flatten: (N, C, d...) -> (N*d..., C).
    spatial = xs[2:]
    if spatial:
        perm = (0,) + tuple(range(2, x.ndim)) + (1,)
        x2 = _shape.permute(x, *perm).reshape(-1, n_cls)
    else:
        x2 = x
    # PyTorch tells the two target kinds apart by dtype: floating = probabilities per class.
    if t._data.dtype.kind in "fV":
        if ignore_index >= 0:  # PyTorch's check (a negative one, e.g. the default, passes)
            raise DescentError(
                f"cross_entropy: ignore_index is not supported for floating point target (got "
                f"ignore_index={ignore_index} with a {t.dtype} probability target of shape "
                f"{tuple(t.shape)}); drop ignore_index or pass class indices"
            )
        # (the weight as given: PyTorch's composite promotes, a float64 weight gives float64)
        wt = None if weight is None else as_tensor(weight)
        loss = _soft_cross_entropy(
            x, x2, t, wt, reduction, label_smoothing, perm if spatial else None
        )
    else:
        check_index_target(t, x, "cross_entropy")
        if t._data.shape != xs[:1] + spatial:
            raise ValueError(
                f"cross_entropy: class-index target of shape {tuple(t.shape)} does not match "
                f"input {tuple(x.shape)}; expected {(x.shape[0],) + spatial}"
            )
        tgt = t._data.reshape(-1)
        # Checked here: the fused op indexes with the targets, where an out-of-range class
        # would raise an IndexError naming no loss (NumPy) or read a wrong row (CuPy wraps).
        bad = None

        def error():
            return IndexError(
                f"cross_entropy: target {int(tgt[bad][0])} is out of range for {n_cls} classes "
                f"(ignore_index is {ignore_index})"
            )

        if backend.is_cupy_array(tgt):  # deferred: no host synchronisation per step
            bad = (tgt != ignore_index) & ((tgt < 0) | (tgt >= n_cls))
            backend.defer_check(bad.any(), error)
        elif tgt.size and (
            tgt.view(np.uint64).max() >= n_cls  # (int64: a negative one is above n_cls too)
            if type(tgt) is np.ndarray and tgt.dtype == np.int64
            else (tgt.min() < 0 or tgt.max() >= n_cls)
        ):
            # (NumPy: one or two reductions, the mask only when some target is outside the
            # classes, an ignore_index or a wrong one: ~3 us less per call)
            bad = (tgt != ignore_index) & ((tgt < 0) | (tgt >= n_cls))
            if bad.any():
                raise error()
        dt = x._data.dtype
        if not label_smoothing and (dt == HALF or (spatial and is_reduced(dt))):
            # float16 (and bfloat16 with spatial dims; without, its dispatch does the same):
            # PyTorch's two ops, log_softmax along dim 1 rounded to the low dtype and then
            # nll_loss, so values and gradients round where PyTorch's do
            logp = _sm.log_softmax(x, axis=1)
            if spatial:
                logp = _shape.permute(logp, *perm).reshape(-1, n_cls)
            loss = _nll_rounded_once(logp, tgt, w, int(ignore_index), reduction, low=dt)
        else:
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


def _weight_in(w, dt):
    """cross_entropy's class weights as a copy in the logits' dtype (computed's kernel)."""
    return w.astype(dt)


def _soft_cross_entropy(x, x2, t, w, reduction, eps, perm):
    """Cross-entropy against class probabilities (composite, differentiable in both)."""
    if tuple(t.shape) != tuple(x.shape):
        raise DescentError(
            f"cross_entropy: probability target {tuple(t.shape)} must match the input "
            f"{tuple(x.shape)}"
        )
    n_cls = x.shape[1]
    t2 = _shape.permute(t, *perm).reshape(-1, n_cls) if perm is not None else t
    if eps:
        t2 = t2 * (1 - eps) + eps / n_cls
    if perm is not None and is_reduced(x._data.dtype):
        # PyTorch's float16/bfloat16 log_softmax rounds differently along the last dim than
        # across an inner one (ops/softmax.py): taken along x's class dim, as PyTorch does
        logp = _shape.permute(_sm.log_softmax(x, axis=1), *perm).reshape(-1, n_cls)
    else:
        logp = _sm.log_softmax(x2, axis=1)
    prod = logp * t2
    if w is not None:
        prod = prod * w  # (C,) over the class dim last
    if reduction == "sum":  # PyTorch's -(x t w).sum(): -0.0 for an empty batch
        return -prod.sum()
    loss = -prod.sum(axis=1)  # (N*d...,)
    if reduction == "mean":
        return loss.mean()
    return loss.reshape((x.shape[0],) + tuple(x.shape[2:]))


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of log-probabilities (N, C) or (N, C, d...) at class indices;
    'mean' divides by the summed weight of the counted targets."""
    reduction = _reduction(size_average, reduce, reduction, "nll_loss")
    x = autocast_f32(float_tensor(input, "nll_loss"))
    check_inference_saved(target, x)  # (the target is saved as a parameter: grad_mode.py)
    tt = as_tensor(target)
    check_index_target(tt, x, "nll_loss")
    if weight is not None:
        check_weight_dtype(weight, x, "nll_loss")
    unbatched = x.ndim == 1
    if unbatched:
        x, tt = _shape.unsqueeze(x, 0), _shape.reshape(tt, (1,))
    xs = x._data.shape  # (plain tuples: a Tensor's .shape makes a Size per read)
    n_cls = xs[1]
    if tt._data.shape != xs[:1] + xs[2:]:
        raise DescentError(
            f"nll_loss: target {tuple(tt.shape)} does not match input {tuple(x.shape)}: "
            f"expected {(x.shape[0],) + tuple(x.shape[2:])} (the input's shape without the "
            "class dim 1)"
        )
    dt = x._data.dtype
    if weight is None and dt in _NLL_FUSED_DTYPES:
        # One NllLoss node: the composite below, fused (the same NumPy calls: the same bits);
        # it makes its index, mask and count from the target in forward (a parameter that
        # descent.compile rebinds to each call's target)
        loss = NllLoss.apply(x, target=tt._data, ignore_index=ignore_index, reduction=reduction)
        return loss[0] if unbatched and reduction == "none" else loss
    # The index, mask and weights below are data computed from the target's values: each
    # comes from one kernel through `computed`, which descent.compile replays on the next
    # batch's target (ops/untracked.py) instead of freezing it.
    index = computed(_nll_index, (tt,), (ignore_index, n_cls))  # (N, 1, d...)
    valid = computed(_nll_valid, (tt,), (ignore_index,))
    # The gather and the squeeze of the class dim in one node (take_along_axis + [:, 0] were
    # two; the same values and the same scatter-added gradient)
    picked = SelectedValues.apply(x, idx=index._data, axis=1, keep=False)  # (N, d...)
    # Ignored rows are masked, not multiplied by 0: their picked log-probability may be -inf
    # (-inf * 0 is nan), and their gradient stays 0 even when no row counts (PyTorch's loss is
    # then 0 / 0 = nan, its gradient 0).
    # (Negated inside the mask: an ignored element's loss is +0.0, as PyTorch's, not -0.0.)
    # (Where's node directly: where()'s operand checks and promotion have nothing to do here)
    zero = Tensor._wrap(backend.get_array_module(x._data).zeros((), dt))
    loss = Where.apply(valid, -picked, zero)
    if weight is None:
        # The row weights would be 1 on counted rows and 0 on masked ones: the product changes
        # no bit of the loss or of its gradient, so it is left out (one node fewer per call)
        if reduction == "mean":  # the divisor: the count, summed as the weights were
            return loss.sum() / computed(_nll_count, (tt,), (ignore_index, dt))
    else:
        wt = computed(_nll_weights, (tt, as_tensor(weight)), (ignore_index, dt))
        loss = loss * wt
        if reduction == "mean":  # PyTorch's weighted mean: divide by the summed weights, not N
            return loss.sum() / computed(_nll_total, (wt,), ())
    if reduction == "sum":
        return loss.sum()
    return loss[0] if unbatched else loss


# nll_loss's fused node: float32/float64 (half precision sums in float32 in Sum: composite)
_NLL_FUSED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _weighted(loss, weight, reduction: str, name: str, mean_by_weight: bool) -> Tensor:
    """torch 2.13's `weight=` of mse/l1/huber_loss: elementwise weights of input's shape; the
    "mean" divides by the summed weights (mse, l1) or by the element count (huber)."""
    weight = as_tensor(weight)
    if tuple(weight.shape) != tuple(loss.shape):
        raise ValueError(
            f"{name}: weight of shape {tuple(weight.shape)} must have the input's shape "
            f"{tuple(loss.shape)} (PyTorch: Weights and input must have the same size.)"
        )
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def _bool_operand(x: Tensor, y: Tensor, both: bool = True) -> tuple[Tensor, Tensor]:
    """A bool target (and, with `both`, a bool input) beside a non-bool operand in that
    operand's dtype: PyTorch's mse/smooth_l1/huber kernels promote the pair, where descent's
    x - y refused a bool tensor (mse_loss(pred, mask) raised)."""
    xb, yb = x._data.dtype.kind == "b", y._data.dtype.kind == "b"
    if yb and not xb:
        y = y.to(x.dtype)
    elif xb and not yb and both:
        x = x.to(y.dtype)
    return x, y


def _refuse_integral(x: Tensor, y: Tensor, op: str, input_dtype: bool = False) -> None:
    """PyTorch's mse/smooth_l1/huber kernels are floating only: an integer or bool pair raises
    its NotImplementedError ("smooth_l1_cpu" not implemented for 'Long'), where descent computed
    in float32 (or refused bool subtraction with a RuntimeError); an empty pair too. With
    `input_dtype` (huber, whose result takes the input's dtype) an integer or bool input beside
    a float target raises PyTorch's "result type Float can't be cast" RuntimeError. Complex
    operands raise its NotImplementedError too ("mse_cpu" not implemented for 'ComplexFloat':
    descent computed a complex loss)."""
    xk, yk = x._data.dtype.kind, y._data.dtype.kind
    shapes = f"input {x.dtype} {tuple(x.shape)}, target {y.dtype} {tuple(y.shape)}"
    if "c" in (xk, yk):
        raise DtypeError(
            f"{op}: not implemented for complex tensors ({shapes}), as in PyTorch; take .abs() "
            "or .real first, or use l1_loss"
        )
    if xk in "iub" and yk in "iub":
        raise DtypeError(
            f"{op}: not implemented for integer or bool tensors ({shapes}), as in PyTorch; "
            "convert first with .float()"
        )
    if input_dtype and xk in "iub":
        raise DescentError(
            f"{op}: result type {y.dtype} can't be cast to the desired output type {x.dtype} "
            f"({shapes}), as in PyTorch; convert the input with .float()"
        )


def _same_float(x: Tensor, y: Tensor) -> bool:
    """Both float32 or both float64 (the losses' one-node kernels; other pairs compose)."""
    xd, yd = x._data.dtype, y._data.dtype
    return xd == yd and xd.kind == "f" and xd.itemsize >= 4


def mse_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None
) -> Tensor:
    """(input - target)^2, reduced (times `weight`, elementwise, when given)."""
    reduction = _reduction(size_average, reduce, reduction, "mse_loss")
    x, y = autocast_f32(as_tensor(input)), autocast_f32(as_tensor(target))
    _same_shape(x, y, "mse_loss", warn=True)
    _refuse_integral(x, y, "mse_loss")
    x, y = _bool_operand(x, y)
    if x._data.dtype == HALF and y._data.dtype == HALF:
        # In float32, rounded once (ops/half.py), as PyTorch's mse_loss_backward (2 / N (x - y)
        # g in opmath): the float16 chain took g / N into float16's subnormals first, 6x
        # further from the float64 gradient than PyTorch's
        w = None if weight is None else as_tensor(weight).float()
        return in_float32(mse_loss, x, y, reduction=reduction, weight=w)
    xd, yd = x._data, y._data
    if weight is None and xd.dtype == yd.dtype and xd.dtype.kind == "f" and xd.dtype.itemsize >= 4:
        return MseLoss.apply(x, y, reduction=reduction)  # one node: PyTorch's MseLossBackward0
    d = x - y
    if weight is not None:
        return _weighted(d * d, weight, reduction, "mse_loss", True)
    return _reduce(d * d, reduction)


@amp._float32_op
def l1_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None
) -> Tensor:
    """|input - target|, reduced (times `weight`, elementwise, when given)."""
    reduction = _reduction(size_average, reduce, reduction, "l1_loss")
    x, y = as_tensor(input), as_tensor(target)
    _same_shape(x, y, "l1_loss", warn=True)
    if weight is not None:
        return _weighted(_abs(x - y), weight, reduction, "l1_loss", True)
    return _reduce(_abs(x - y), reduction)


@amp._float32_op
def smooth_l1_loss(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - beta/2 (d = input - target)."""
    reduction = _reduction(size_average, reduce, reduction, "smooth_l1_loss")
    x, y = as_tensor(input), as_tensor(target)
    _same_shape(x, y, "smooth_l1_loss", warn=True)
    _refuse_integral(x, y, "smooth_l1_loss")
    x, y = _bool_operand(x, y)
    if beta < 0:
        raise DescentError(f"smooth_l1_loss: beta must not be negative, got {beta}")
    if x._data.dtype == HALF and y._data.dtype == HALF:
        # In float32, rounded once, as PyTorch's smooth_l1 kernels (opmath; see mse_loss)
        return in_float32(smooth_l1_loss, x, y, reduction=reduction, beta=beta)
    if beta > 0 and _same_float(x, y):  # one node, PyTorch's kernel (SmoothL1LossBackward0)
        return SmoothL1Loss.apply(x, y, reduction=reduction, beta=float(beta))
    d = x - y
    a = _abs(d)
    if beta == 0:  # the quadratic branch would divide by zero; the limit is the l1 loss
        return _reduce(a, reduction)
    small = a < beta
    dq = where(small, d, 0.0)  # the quadratic branch sees 0 outside: no 0 * inf = nan
    return _reduce(where(small, dq * dq * (0.5 / beta), a - 0.5 * beta), reduction)


@amp._float32_op
def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - delta/2): smooth_l1 scaled by delta
    (times `weight`, elementwise, when given)."""
    reduction = _reduction(None, None, reduction, "huber_loss")
    x, y = as_tensor(input), as_tensor(target)
    _same_shape(x, y, "huber_loss", warn=True)
    _refuse_integral(x, y, "huber_loss", input_dtype=True)
    x, y = _bool_operand(x, y, both=False)  # a bool input: PyTorch can't cast to its Bool output
    if not delta > 0:
        raise DescentError(
            f"huber_loss: does not support non-positive values for delta, got {delta}"
        )
    if x._data.dtype == HALF and y._data.dtype == HALF:
        # In float32, rounded once, as PyTorch's huber kernels (opmath; see mse_loss)
        w = None if weight is None else as_tensor(weight).float()
        return in_float32(huber_loss, x, y, reduction=reduction, delta=delta, weight=w)
    if weight is None and _same_float(x, y):  # one node, PyTorch's kernel (HuberLossBackward0)
        return HuberLoss.apply(x, y, reduction=reduction, beta=float(delta))
    d = x - y
    a = _abs(d)
    small = a < delta
    dq = where(small, d, 0.0)  # as smooth_l1_loss: an infinite d's gradient is +-delta
    loss = where(small, dq * dq * 0.5, (a - 0.5 * delta) * delta)
    if weight is not None:
        return _weighted(loss, weight, reduction, "huber_loss", False)
    return _reduce(loss, reduction)


@amp._float32_op
def binary_cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p; logs clamped at -100 as PyTorch
    (so p = 0 or 1 gives a finite loss). Prefer binary_cross_entropy_with_logits."""
    reduction = _reduction(size_average, reduce, reduction, "binary_cross_entropy")
    p, y = float_tensor(input, "binary_cross_entropy"), as_tensor(target)
    _float_target(y, "binary_cross_entropy")
    if tuple(p.shape) != tuple(y.shape):
        raise ValueError(
            f"binary_cross_entropy: target {tuple(y.shape)} must have the input's shape "
            f"{tuple(p.shape)}"
        )
    pd = p._data
    # The clamped logs would turn a p outside [0, 1] into a finite, meaningless loss: raise,
    # as PyTorch's kernel, whose check (0 <= p <= 1) refuses nan too; and its target check.
    if _outside_unit(pd):
        raise DescentError(
            "binary_cross_entropy: all elements of input should be between 0 and 1 (must lie in "
            f"[0, 1]), got values from {float(pd.min())} to {float(pd.max())} (nan counts as "
            "outside); for logits use binary_cross_entropy_with_logits"
        )
    yd = y._data
    if _outside_unit(yd):
        raise DescentError(
            "binary_cross_entropy: all elements of target should be between 0 and 1 (must lie "
            f"in [0, 1]), got values from {float(yd.min())} to {float(yd.max())} (nan counts as "
            "outside)"
        )
    y = as_tensor(y, p)
    w = None if weight is None else _weight_fits(_as_input_dtype(weight, p), p,
                                                 "binary_cross_entropy")  # fmt: skip
    if w is None:  # one node, the reduction inside: PyTorch's BinaryCrossEntropyBackward0
        return BinaryCrossEntropy.apply(p, y, reduction=reduction)
    if not (w.requires_grad and is_grad_enabled()):  # the weight inside too (PyTorch's order)
        return BinaryCrossEntropy.apply(p, y, w, reduction=reduction)
    # a weight that wants a gradient (PyTorch has no derivative for it): the product after
    return _reduce(BinaryCrossEntropy.apply(p, y, reduction="none") * w, reduction)


@amp._float32_op
def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in a stable form: with l = 1 + (pos_weight - 1) y,
    loss = (1 - y) x + l softplus(-x), softplus(-x) = log1p(exp(-|x|)) + max(-x, 0), finite
    for any finite logits (ops/loss.py's BCEWithLogits node without weights)."""
    reduction = _reduction(size_average, reduce, reduction, "binary_cross_entropy_with_logits")
    x, y = float_tensor(input, "binary_cross_entropy_with_logits"), as_tensor(target, input)
    _float_target(y, "binary_cross_entropy_with_logits")
    if tuple(x.shape) != tuple(y.shape):  # PyTorch refuses even shapes that broadcast
        raise DescentError(
            f"binary_cross_entropy_with_logits: target {tuple(y.shape)} must have the input's "
            f"shape {tuple(x.shape)} (e.g. target.view_as(input))"
        )
    if x._data.dtype == HALF and y._data.dtype == HALF:
        # In float32, rounded once (ops/half.py): the float16 gradient g (1 - y) - g sigmoid(-x)
        # cancelled after rounding both terms (2.6x PyTorch's error, whose backward forms
        # sigmoid(x) - y first); weights follow x into float32 there
        return in_float32(binary_cross_entropy_with_logits, x, y, weight, reduction=reduction,
                          pos_weight=pos_weight)  # fmt: skip
    if weight is None and pos_weight is None and BCEWithLogits.fits(x, y):  # one node, its bits
        return BCEWithLogits.apply(x, y, reduction=reduction)
    sp = _act.softplus(-x, 1.0, math.inf)  # log(1 + e^-x), the stable branch everywhere
    if pos_weight is None:
        loss = (1.0 - y) * x + sp
    else:
        pw = _weight_fits(_as_input_dtype(pos_weight, x), x, "binary_cross_entropy_with_logits")
        lw = (pw - 1.0) * y + 1.0
        loss = (1.0 - y) * x + lw * sp
    if weight is not None:
        loss = loss * _weight_fits(
            _as_input_dtype(weight, x), x, "binary_cross_entropy_with_logits"
        )
    return _reduce(loss, reduction)


def _outside_unit(a) -> bool:
    """Some element of `a` lies outside [0, 1] or is nan. A real NumPy array: its min and max
    (two reductions; both propagate nan, which fails the comparison) where the mask made five
    array passes; other arrays (CuPy, bfloat16, complex) and empty ones: the mask."""
    if type(a) is np.ndarray and a.dtype.kind == "f" and a.size:
        return not (a.min() >= 0 and a.max() <= 1)
    return bool((~((a >= 0) & (a <= 1))).any())


def _weight_fits(w: Tensor, x: Tensor, op: str) -> Tensor:
    """A weight must broadcast to the input's shape without growing it (PyTorch's in-place
    product raises; descent broadcast the loss to the weight's larger shape)."""
    try:
        fits = np.broadcast_shapes(tuple(w.shape), tuple(x.shape)) == tuple(x.shape)
    except ValueError:
        fits = False
    if not fits:
        raise DescentError(
            f"{op}: weight of shape {tuple(w.shape)} must broadcast to the input's shape "
            f"{tuple(x.shape)} (PyTorch: output with shape {list(x.shape)} doesn't match the "
            "broadcast shape); reshape or expand the input instead"
        )
    return w


def _float_target(y: Tensor, op: str) -> None:
    """PyTorch's binary cross-entropies refuse integer or bool targets (descent computed in
    float64 for an int64 one)."""
    if y._data.dtype.kind not in "fcV":
        raise DescentError(
            f"{op}: found target dtype {y._data.dtype} but expected a floating dtype, as in "
            "PyTorch; convert the target first (target.float())"
        )


def _as_input_dtype(w, x):
    """A loss weight in the input's dtype (PyTorch's losses keep the input's dtype: a float64
    weight does not promote a float32 loss)."""
    w = as_tensor(w, x)
    return w if w._data.dtype == x._data.dtype else w.to(x.dtype)


@amp._float32_op
def kl_div(
    input,
    target,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
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
    if reduction == "mean":
        warnings.warn(
            "kl_div: reduction='mean' divides the total loss by both the batch size and the "
            "support size; 'batchmean' divides only by the batch size and matches the KL "
            "divergence's definition (PyTorch's warning: 'mean' will behave as 'batchmean' in "
            "its next major release)",
            UserWarning,
            stacklevel=2,
        )
    x, t = as_tensor(input), as_tensor(target, input)
    if x._data.dtype.kind in "iub" or t._data.dtype.kind in "iub":
        raise DescentError(  # PyTorch's "kl_div: Integral inputs not supported."
            f"kl_div: Integral inputs not supported (input {x.dtype} {tuple(x.shape)}, target "
            f"{t.dtype} {tuple(t.shape)}), as in PyTorch; convert both with .float()"
        )
    if log_target:
        loss = exp(t) * (t - x)
    else:
        # PyTorch's own composite, xlogy(t, t) - t x: 0 log 0 = 0 at t = 0 (and -t x there: nan
        # for an infinite x), nan for a negative or nan target; its gradients too (the
        # target's is nan at t = 0, where xlogy's d/dy = t / t, as in PyTorch)
        loss = xlogy(t, t) - t * x
    if reduction == "batchmean":
        return loss.sum() / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)
