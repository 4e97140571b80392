"""The rest of torch.nn.functional's margin and soft-margin losses: hinge_embedding_loss,
soft_margin_loss, multilabel_soft_margin_loss, multi_margin_loss, multilabel_margin_loss and
triplet_margin_with_distance_loss.

All are composites of descent ops (where, clamp, exp, log1p, gathers), with PyTorch's formulas
(ATen's Loss.cpp and LossMultiMargin.cpp, torch/nn/functional.py) so the values, the gradients
at the kinks and the reductions agree; the legacy size_average/reduce flags as `_loss`.
"""

from __future__ import annotations

import numpy as np

from ... import amp, backend
from ...errors import DescentError
from ...opmath import HALF
from ...ops._common import as_tensor
from ...ops.activation import relu
from ...ops.elementwise import clamp, minimum, where
from ...ops.half import in_float32
from ...ops.indexing import take_along_axis
from ...ops.untracked import computed
from ...tensor import Tensor
from ._activation import logsigmoid
from ._distance import pairwise_distance
from ._inputs import check_weight_dtype
from ._loss import _reduce, _reduction

__all__ = [
    "hinge_embedding_loss",
    "soft_margin_loss",
    "multilabel_soft_margin_loss",
    "multi_margin_loss",
    "multilabel_margin_loss",
    "triplet_margin_with_distance_loss",
]


@amp._float32_op
def hinge_embedding_loss(
    input,
    target,
    margin: float = 1.0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """x where y = 1, max(0, margin - x) where y = -1 (ATen: the first term wherever y != -1,
    the second wherever y != 1)."""
    reduction = _reduction(size_average, reduce, reduction, "hinge_embedding_loss")
    x, y = as_tensor(input), as_tensor(target)
    # zeros as numbers, not x * 0 (nan at an infinite x, where PyTorch's zeros stay 0)
    margin_term = where(y != 1, clamp(margin - x, min=0.0), 0.0)
    self_term = where(y != -1, x, 0.0)
    return _reduce(margin_term + self_term, reduction)


@amp._float32_op
def soft_margin_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """log(1 + exp(-y x)), the logistic loss of labels y = +-1 (ATen's log1p(exp(.)))."""
    reduction = _reduction(size_average, reduce, reduction, "soft_margin_loss")
    x, y = as_tensor(input), as_tensor(target)
    if x._data.dtype == HALF and y._data.dtype == HALF:
        # In float32, rounded once (recorded casts: the gradient comes back float16). float16's
        # exp(-y x) overflows from y x < -11: PyTorch's float16 loss is inf and its gradient
        # nan or inf there (OpInfo's samples: 40 of 125), where the true values are finite
        return in_float32(soft_margin_loss, x, y, reduction=reduction)
    return _reduce((-x * y).exp().log1p(), reduction)


def multilabel_soft_margin_loss(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """-(y log sigmoid(x) + (1 - y) log sigmoid(-x)), times `weight`, averaged over the C
    classes of the last dim (one value per sample), then reduced."""
    reduction = _reduction(size_average, reduce, reduction, "multilabel_soft_margin_loss")
    x, y = as_tensor(input), as_tensor(target)
    loss = -(y * logsigmoid(x) + (1 - y) * logsigmoid(-x))
    if weight is not None:
        loss = loss * as_tensor(weight)
    classes = x.shape[-1] if x.ndim else 1
    loss = loss.sum(axis=-1) / classes if x.ndim else loss
    return _reduce(loss, reduction)


def _frames(x: Tensor, op: str) -> tuple[int, int]:
    """(frames N, classes C) as ATen: (N, C), (C,), or a 0-d input as one sample of one class;
    C must not be 0."""
    if not ((x.ndim == 2 and x.shape[1]) or (x.ndim == 1 and x.shape[0]) or x.ndim == 0):
        raise DescentError(
            f"{op}: Expected non-empty vector or matrix with optional 0-dim batch size, but "
            f"got: {list(x.shape)}"
        )
    return (x.shape[0], x.shape[1]) if x.ndim == 2 else (1, x.shape[0] if x.ndim else 1)


def _class_targets(x: Tensor, target, op: str):
    """(x as (N, C), integer targets (N,), the output's shape under reduction='none'), with
    ATen's checks: a target of at most one dim holding N classes; the unreduced loss is (N,)
    unless the target is 0-d."""
    y = as_tensor(target)
    if y._data.dtype.kind not in "iu":
        raise DescentError(f"{op}: expected an integer target, got dtype {y.dtype}")
    n, c = _frames(x, op)
    if y.ndim > 1 or y.numel() != n:
        raise DescentError(
            f"{op}: target tensor should be 1-D with size equal to the number of input samples "
            f"(batch size). Expected target size [{n}], but got {list(y.shape)}. Input has "
            f"shape {list(x.shape)}."
        )
    return x.reshape(n, c), y._data.reshape(n), (n,) if y.ndim else ()


@amp._float32_op
def multi_margin_loss(
    input,
    target,
    p: int = 1,
    margin: float = 1.0,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """The multi-class hinge: sum over j != y of max(0, margin - x[y] + x[j])^p / C (each term
    times weight[y] when given), per sample of (N, C) (or (C,) with a 0-d target).

    Raises:
        ValueError: p other than 1 or 2.
        RuntimeError: targets out of range or inconsistent shapes.
    """
    reduction = _reduction(size_average, reduce, reduction, "multi_margin_loss")
    if p not in (1, 2):
        raise ValueError("multi_margin_loss: only p == 1 and p == 2 supported")
    if weight is not None and as_tensor(weight).ndim != 1:
        raise ValueError("multi_margin_loss: weight must be one-dimensional")
    x, y, out_shape = _class_targets(as_tensor(input), target, "multi_margin_loss")
    if weight is not None:
        check_weight_dtype(weight, x, "multi_margin_loss")
    n, c = x.shape
    yn = backend.as_numpy(y).astype(np.int64)
    if yn.size and (yn.min() < 0 or yn.max() >= c):
        raise DescentError(f"multi_margin_loss: target out of range [0, {c}): {yn.tolist()}")
    # The target's index and mask through untracked.computed: descent.compile replays them on
    # each call's target (they were frozen when the first two calls' targets agreed).
    yt = as_tensor(target)
    idx = computed(_mm_index, (yt,), (n, 1))  # (N, 1) int64
    x_y = take_along_axis(x, idx, axis=1)  # (N, 1) the target class's score
    # relu, not clamp: PyTorch's backward passes the gradient where z > 0 only (0 at the kink)
    z = relu(margin - x_y + x)  # (N, C)
    if p == 2:
        z = z * z
    if weight is not None:
        row = computed(_mm_index, (yt,), (1, n))  # (1, N)
        z = z * take_along_axis(as_tensor(weight).reshape(1, -1), row, axis=1).T
    not_target = computed(_mm_not_target, (yt,), (n, c))
    loss = where(not_target, z, z * 0.0).sum(axis=1) / c  # (N,)
    return _reduce(loss.reshape(out_shape), reduction)


def _mm_index(y, rows, cols):
    """multi_margin_loss's target as int64 (rows, cols), rows * cols = N (untracked.computed's
    kernel; explicit sizes: an empty batch's reshape(0, -1) raised)."""
    return y.astype(np.int64).reshape(rows, cols)


def _mm_not_target(y, n, c):
    """(N, C) mask of the classes other than each sample's target (untracked.computed)."""
    xp = backend.get_array_module(y)
    return xp.arange(c)[None, :] != y.astype(np.int64).reshape(n, 1)


def _mlm_weights(y, n, c, dtype):
    """multilabel_margin_loss's (N, C, C) weights of the pairs (target j, non-target i): the
    times j is listed before row k's first -1 when i is never listed (untracked.computed)."""
    xp = backend.get_array_module(y)
    yn = backend.as_numpy(y).reshape(n, c).astype(np.int64)
    listed = np.cumprod(yn >= 0, axis=1).astype(bool)
    rows, cols = np.nonzero(listed)
    counts = np.zeros((n, c), np.int64)
    np.add.at(counts, (rows, yn[rows, cols]), 1)
    weights = counts[:, :, None] * (counts == 0)[:, None, :]
    return xp.asarray(weights.astype(dtype))


def _positive(w):
    """w > 0 (untracked.computed's kernel)."""
    return w > 0


@amp._float32_op
def multilabel_margin_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """sum over target classes j and non-target classes i of max(0, 1 - (x[j] - x[i])) / C.
    target (N, C) (or (C,), or 0-d with a 0-d input) lists the target classes first, ended by
    the first -1; a class listed twice counts twice, as in ATen.

    Raises:
        RuntimeError: a target of another shape than the input, or a class out of range.
    """
    op = "multilabel_margin_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    x, y = as_tensor(input), as_tensor(target)
    n, c = _frames(x, op)
    if y._data.dtype.kind not in "iu" or (
        tuple(y.shape) != (n, c) if x.ndim == 2 else (y.ndim > 1 or y.numel() != c)
    ):
        raise DescentError(
            f"{op}: inconsistent target size: {list(y.shape)} ({y.dtype}) for input of size: "
            f"{list(x.shape)}; expected an integer target of the input's shape (N, C) or (C,)"
        )
    # The unreduced loss is (N,) for a 2-d target, a 0-d value otherwise (ATen).
    out_shape = (n,) if y.ndim == 2 else ()
    x = x.reshape(n, c)
    yn = backend.as_numpy(y._data).reshape(n, c).astype(np.int64)
    # Each row lists target classes up to its first negative entry (a class listed twice counts
    # twice, as ATen: _mlm_weights).
    listed = np.cumprod(yn >= 0, axis=1).astype(bool)
    if (yn[listed] >= c).any() or (yn[~listed] < -1).any():
        raise DescentError(f"{op}: argument #2 'target' is out of range [-1, {c})")
    # margins[k, j, i] = 1 - (x[k, j] - x[k, i])
    margins = 1.0 - (x.reshape(n, c, 1) - x.reshape(n, 1, c))
    hinge = relu(margins)  # PyTorch's backward: z > 0 (no gradient at the kink)
    # The pair weights from the target's values through untracked.computed: descent.compile
    # replays them on each call's target (they were frozen when the first two calls agreed).
    w = computed(_mlm_weights, (y,), (n, c, x._data.dtype))
    mask = computed(_positive, (w,), ())
    loss = where(mask, hinge * w, hinge * 0.0).sum(axis=(1, 2)) / c  # (N,)
    return _reduce(loss.reshape(out_shape), reduction)


def triplet_margin_with_distance_loss(
    anchor,
    positive,
    negative,
    *,
    distance_function=None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(0, margin + d(a, p) - d(a, n)) with any distance (pairwise_distance by default);
    swap=True uses min(d(a, n), d(p, n)) as the negative distance.

    Raises:
        ValueError: margin <= 0 or a bad reduction.
    """
    reduction = _reduction(None, None, reduction, "triplet_margin_with_distance_loss")
    if margin <= 0:
        raise ValueError(
            f"triplet_margin_with_distance_loss: margin must be greater than 0, got {margin}"
        )
    a, pos, neg = as_tensor(anchor), as_tensor(positive), as_tensor(negative)
    dist = pairwise_distance if distance_function is None else distance_function
    d_pos = dist(a, pos)
    d_neg = dist(a, neg)
    if swap:
        d_neg = minimum(d_neg, dist(pos, neg))
    return _reduce(clamp(margin + d_pos - d_neg, min=0.0), reduction)
