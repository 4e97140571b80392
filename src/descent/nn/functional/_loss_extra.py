"""More of torch.nn.functional's losses: ranking and triplet margins, Poisson and Gaussian
negative log-likelihoods, and CTC.

The margin and likelihood losses are composites of descent ops; ctc_loss runs the
log-space forward recursion of Graves et al. (2006) over the whole batch at once with descent
ops (one small group of ops per time step), so its gradient and second derivative come from
those ops. Reductions and the legacy size_average/reduce flags follow `_loss`.
"""

from __future__ import annotations

import math

import numpy as np

from ... import amp, backend
from ...errors import DescentError
from ...ops import reduce as _red
from ...ops import shape as _shape
from ...ops._common import as_tensor
from ...ops.elementwise import clamp, exp, log, where
from ...ops.indexing import take_along_axis
from ...ops.untracked import computed, guarded
from ...tensor import Tensor
from ._distance import pairwise_distance
from ._inputs import autocast_f32, float_tensor
from ._loss import _reduce, _reduction, _same_shape

__all__ = [
    "margin_ranking_loss",
    "triplet_margin_loss",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    "ctc_loss",
    "cosine_embedding_loss",
]


@amp._float32_op
def margin_ranking_loss(
    input1,
    input2,
    target,
    margin: float = 0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, -y (x1 - x2) + margin) with y = +1 / -1 saying which input should rank higher."""
    reduction = _reduction(size_average, reduce, reduction, "margin_ranking_loss")
    a, b = as_tensor(input1), as_tensor(input2)
    y = as_tensor(target, like=a)  # an array-like target goes to x1's device
    if a.ndim != b.ndim or a.ndim != y.ndim:  # RuntimeError, as PyTorch's
        raise RuntimeError(
            f"margin_ranking_loss: input1 {tuple(a.shape)}, input2 {tuple(b.shape)} and target "
            f"{tuple(y.shape)} must have the same number of dimensions"
        )
    # clamp passes the gradient at the bound itself, as PyTorch's clamp_min.
    return _reduce(clamp(-y * (a - b) + margin, min=0.0), reduction)


@amp._float32_op
def triplet_margin_loss(
    anchor,
    positive,
    negative,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, margin + d(a, p) - d(a, n)) with d = pairwise_distance (Balntas et al. 2016);
    swap=True uses min(d(a, n), d(p, n)) as the negative distance."""
    reduction = _reduction(size_average, reduce, reduction, "triplet_margin_loss")
    a, pos, neg = as_tensor(anchor), as_tensor(positive), as_tensor(negative)
    if not (a.ndim == pos.ndim == neg.ndim) or a.ndim not in (1, 2):
        raise DescentError(
            f"triplet_margin_loss: anchor {tuple(a.shape)}, positive {tuple(pos.shape)} and "
            f"negative {tuple(neg.shape)} must all be (N, D) or all (D,)"
        )
    if margin <= 0:
        raise ValueError(f"triplet_margin_loss: margin must be greater than 0, got {margin}")
    d_pos = pairwise_distance(a, pos, p, eps)
    d_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = _red.amin(_shape.stack([d_neg, pairwise_distance(pos, neg, p, eps)]), axis=0)
    return _reduce(clamp(d_pos - d_neg + margin, min=0.0), reduction)


def poisson_nll_loss(
    input,
    target,
    log_input: bool = True,
    full: bool = False,
    size_average=None,
    eps: float = 1e-8,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of target ~ Poisson(rate): exp(x) - t x when x is the log-rate
    (log_input=True), else x - t log(x + eps); full=True adds Stirling's approximation of
    log(t!), t log t - t + log(2 pi t) / 2, where t > 1."""
    reduction = _reduction(size_average, reduce, reduction, "poisson_nll_loss")
    x = as_tensor(input)
    # integer (and bool) log-rates and counts: torch's promotion (float32 in exp(x) and t * x)
    if x._data.dtype.kind not in "iub":
        x = autocast_f32(float_tensor(x, "poisson_nll_loss"))
    t = as_tensor(target, like=x)  # an array-like target goes to x's device
    _same_shape(x, t, "poisson_nll_loss")
    loss = exp(x) - t * x if log_input else x - t * log(x + eps)
    if full:
        # The term is a constant of the target; masked where t <= 1 (log t! is 0 at 0 and 1).
        tc = where(t > 1, t, 1.0)
        stirling = tc * log(tc) - tc + 0.5 * log(2 * math.pi * tc)
        loss = loss + where(t > 1, stirling, 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(
    input,
    target,
    var,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of target ~ N(input, var): (log max(var, eps) + (x - t)^2 /
    max(var, eps)) / 2, plus log(2 pi) / 2 when full.

    `var` has the input's shape, or one dimension fewer (one variance per sample: it is
    broadcast over the last dimension), or the input's rank with sizes that differ only where
    var's size is 1 in one dimension (PyTorch's test: var's sizes at the mismatched dimensions
    sum to 1, e.g. (4, 1, 32, 32) for a (4, 3, 32, 32) image), or is a float. As PyTorch, the
    clamp to eps changes var's value but not its derivative (it is done under no_grad).
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(
            f"gaussian_nll_loss: reduction must be mean, sum or none, got {reduction!r}"
        )
    # not on PyTorch's CPU float32 list (a Python composite): a CPU bfloat16 region keeps it
    x = autocast_f32(float_tensor(input, "gaussian_nll_loss"), cpu=False)
    t = as_tensor(target, like=x)  # an array-like target goes to x's device
    v = as_tensor(var, like=x)
    if tuple(v.shape) != tuple(x.shape) and v.ndim > 0:
        if tuple(x.shape[:-1]) == tuple(v.shape):
            v = _shape.unsqueeze(v, -1)  # homoscedastic over the last dimension
        elif not (
            v.ndim == x.ndim
            and sum(vs for xs, vs in zip(x.shape, v.shape, strict=True) if xs != vs) == 1
        ):
            raise ValueError(
                f"gaussian_nll_loss: var is of incorrect size: var {tuple(v.shape)} must have "
                f"the input's shape {tuple(x.shape)}, drop its last dimension, or be 1 in the "
                f"one dimension where it differs"
            )
    if bool((v._data < 0).any()):
        raise ValueError("gaussian_nll_loss: var has negative entries")
    v = v + (clamp(v, min=eps) - v).detach()  # value max(var, eps), derivative of var
    loss = 0.5 * (log(v) + (x - t) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------
# CTC


def _logaddexp(terms: list[Tensor]) -> Tensor:
    """log(sum(exp(terms))) elementwise, safe where every term is -inf (gives -inf with a zero
    gradient instead of nan): the maximum is a constant shift, 0 where it is -inf."""
    mt = computed(_lae_shift, tuple(terms), ())  # (computed: descent.compile replays it)
    s = None
    for t in terms:
        e = exp(t - mt)
        s = e if s is None else s + e
    # log(0) = -inf where all terms are -inf; its gradient 1/0 meets an exp(-inf) = 0 factor,
    # so the log is taken of s clamped away from 0 and -inf put back by a constant mask.
    tiny = np.finfo(mt._data.dtype).tiny
    dead = computed(_lae_dead, (s,), ())
    return log(clamp(s, min=tiny)) + mt + dead


def _lae_shift(*arrays):
    """The elementwise maximum of the arrays, 0 where it is not finite (_logaddexp's shift)."""
    xp = backend.get_array_module(arrays[0])
    m = arrays[0]
    for a in arrays[1:]:
        m = xp.maximum(m, a)
    return xp.where(xp.isfinite(m), m, 0.0).astype(m.dtype)


def _lae_dead(s):
    """0 where the sum of exponentials is positive, -inf where it is 0 (_logaddexp)."""
    xp = backend.get_array_module(s)
    return xp.where(s > 0, 0.0, -np.inf).astype(s.dtype)


def _isinf(a):
    return backend.get_array_module(a).isinf(a)


@amp._float32_op
def ctc_loss(
    log_probs,
    targets,
    input_lengths,
    target_lengths,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist temporal classification loss (Graves et al. 2006): -log of the total
    probability of every alignment of each target to its input frames.

    Args:
        log_probs: (T, N, C) (or unbatched (T, C)) log-probabilities, e.g. log_softmax output.
        targets: (N, S) padded class indices, or the 1-D concatenation of all targets.
        input_lengths: (N,) frames used per sample (<= T).
        target_lengths: (N,) target length per sample.
        blank: the blank class.
        reduction: 'mean' (each loss divided by its target length, then averaged over the
            batch, as PyTorch), 'sum' or 'none'.
        zero_infinity: infeasible samples (target longer than the input allows) give 0 and a
            zero gradient instead of inf.

    The gradient is the true derivative with respect to `log_probs`. PyTorch's CTC kernel
    returns a gradient that assumes `log_probs` came from log_softmax (it adds exp(log_probs)),
    so the two agree on the gradient of the logits before a log_softmax, not on log_probs
    themselves.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"ctc_loss: reduction must be mean, sum or none, got {reduction!r}")
    lp = float_tensor(log_probs, "ctc_loss")
    unbatched = lp.ndim == 2
    if unbatched:
        lp = _shape.unsqueeze(lp, 1)
    if lp.ndim != 3:
        raise ValueError(f"ctc_loss: log_probs must be (T, N, C) or (T, C), got {tuple(lp.shape)}")
    t_max, n, c = lp.shape
    dt = lp._data.dtype
    # Everything computed from the targets' and the lengths' values (the extended labels, the
    # masks, the lengths' checks) in one kernel, a guarded op: descent.compile replays it on
    # each call's values and keeps a program per number of extended labels (2 S + 1).
    (idx, skip_t, valid, start_valid, live, last, both, no_frames, empty, empty_nll,
     div) = guarded(_ctc_plan, (as_tensor(targets), as_tensor(input_lengths),
                                as_tensor(target_lengths)),
                    (t_max, n, c, int(blank), bool(unbatched), np.dtype(dt), str(lp.device)),
                    "ctc_loss")  # fmt: skip
    big = idx.shape[1]
    xp = backend.get_array_module(lp._data)
    neg = Tensor._wrap(xp.full((n, 1), -np.inf, dtype=dt))
    neg2 = Tensor._wrap(xp.full((n, 2), -np.inf, dtype=dt))
    lp_ext0 = take_along_axis(lp[0], idx, axis=1)  # (N, L): log y_{l'_s} at t = 0
    alpha = where(start_valid, lp_ext0, -np.inf)
    # Keep alpha at t = input_length - 1 for each sample: a frame past a sample's input
    # length leaves its alpha unchanged (masked), so the last alpha is read at the end.
    for t in range(1, t_max):
        a1 = _shape.concatenate([neg, alpha[:, :-1]], axis=1)  # alpha_{t-1}(s-1)
        a2 = _shape.concatenate([neg2, alpha[:, :-2]], axis=1)[:, :big]  # alpha_{t-1}(s-2)
        a2 = where(skip_t, a2, -np.inf)
        new = _logaddexp([alpha, a1, a2]) + take_along_axis(lp[t], idx, axis=1)
        new = where(valid, new, -np.inf)
        alpha = where(live[t], new, alpha)
    # The total: alignments ending in the last blank or the last label.
    ends = take_along_axis(alpha, last, axis=1)
    ends = where(both, ends, -np.inf)
    nll = -_logaddexp([ends[:, 0], ends[:, 1]])  # (N,)
    if no_frames.shape[0]:  # (a shape: guarded)
        # No frame at all: only an empty target is feasible (probability 1).
        nll = where(empty, empty_nll, nll)
    if zero_infinity:
        nll = where(computed(_isinf, (nll,), ()), 0.0, nll)
    if unbatched:
        nll = nll[0]
    if reduction == "none":
        return nll
    if reduction == "sum":
        return nll.sum()
    return (nll / (div[0] if unbatched else div)).mean()


def _ctc_plan(targets, input_lengths, target_lengths, t_max, n, c, blank, unbatched, dt,
              device) -> tuple:  # fmt: skip
    """ctc_loss's arrays from the targets' and lengths' values, checked: the extended labels
    (N, L), the skip, valid and start masks (N, L), the frames' live masks (T, N, 1), the two
    final states (N, 2) and whether both count, the samples without frames (their positions,
    a mask, their loss) and the mean's divisors (N,)."""
    xp = backend.xp_for_device(device)
    tg = np.asarray(backend.as_numpy(targets)).astype(np.int64)
    in_len = np.asarray(backend.as_numpy(input_lengths)).reshape(-1)
    tg_len = np.asarray(backend.as_numpy(target_lengths)).reshape(-1)
    in_len, tg_len = in_len.astype(np.int64), tg_len.astype(np.int64)
    if unbatched and tg.ndim == 1 and len(tg_len) == 1:
        tg = tg[None, : tg_len[0]] if tg.size else tg.reshape(1, 0)
    if len(in_len) != n or len(tg_len) != n:
        raise ValueError(
            f"ctc_loss: {n} samples in log_probs {(t_max, n, c)}, but input_lengths has "
            f"{len(in_len)} and target_lengths {len(tg_len)}"
        )
    if (in_len > t_max).any() or (in_len < 0).any() or (tg_len < 0).any():
        raise ValueError(
            f"ctc_loss: input_lengths {in_len.tolist()} must lie in [0, {t_max}] and "
            f"target_lengths {tg_len.tolist()} be >= 0"
        )
    # Padded (N, S) targets; a 1-D concatenation is cut at the cumulative lengths.
    if tg.ndim == 1:
        if tg.size != tg_len.sum():
            raise ValueError(
                f"ctc_loss: concatenated targets have {tg.size} entries, target_lengths sum "
                f"to {int(tg_len.sum())}"
            )
        s_max = int(tg_len.max()) if n else 0
        pad = np.full((n, s_max), blank, np.int64)
        for i, start in enumerate(np.concatenate([[0], np.cumsum(tg_len)[:-1]])):
            pad[i, : tg_len[i]] = tg[start : start + tg_len[i]]
        tg = pad
    elif tg.ndim != 2 or tg.shape[0] != n or (tg_len > tg.shape[1]).any():
        raise ValueError(
            f"ctc_loss: targets {tuple(tg.shape)} must be (N, S) with S >= every target length "
            f"({tg_len.tolist()}), or 1-D"
        )
    s_max = tg.shape[1]
    if ((tg < 0) | (tg >= c)).any() and s_max:
        mask = np.arange(s_max)[None] < tg_len[:, None]
        if ((tg < 0) | (tg >= c))[mask].any():
            raise ValueError(f"ctc_loss: target classes must lie in [0, {c}), got {tg.tolist()}")
        tg = np.where(mask, tg, blank)
    # The extended label sequence l' = (blank, l1, blank, l2, ..., blank): L = 2 S + 1 states.
    big = 2 * s_max + 1
    ext = np.full((n, big), blank, np.int64)
    ext[:, 1::2] = tg
    # A skip s-2 -> s is allowed into a label that differs from the label two states back.
    skip = np.zeros((n, big), bool)
    skip[:, 2:] = (ext[:, 2:] != blank) & (ext[:, 2:] != ext[:, :-2])
    lengths_ext = 2 * tg_len + 1
    valid = np.arange(big)[None] < lengths_ext[:, None]  # (N, L) states within each target
    # alpha_0: only the first blank and the first label can start an alignment.
    start = np.zeros((n, big), bool)
    start[:, 0] = True
    start[:, 1] = tg_len > 0
    live = (np.arange(t_max)[:, None] < in_len[None, :])[:, :, None]  # (T, N, 1)
    last = np.stack([lengths_ext - 1, np.maximum(lengths_ext - 2, 0)], axis=1)  # (N, 2)
    both = np.stack([np.ones(n, bool), tg_len > 0], axis=1)
    empty = in_len == 0
    empty_nll = np.where(tg_len == 0, 0.0, np.inf).astype(dt)
    div = np.maximum(tg_len, 1).astype(dt)
    return tuple(xp.asarray(a) for a in (ext, skip, valid, start & valid, live, last, both,
                                         np.flatnonzero(empty), empty, empty_nll, div))  # fmt: skip


@amp._float32_op
def cosine_embedding_loss(
    input1,
    input2,
    target,
    margin: float = 0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """1 - cos(x1, x2) where y = 1, max(0, cos(x1, x2) - margin) where y = -1 (0 for other y).

    cos = <x1, x2> / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12)) along the last dim of (N, D)
    inputs (or of (D,) inputs with a 0-d target), PyTorch's formula (ATen's EPSILON).
    """
    reduction = _reduction(size_average, reduce, reduction, "cosine_embedding_loss")
    a, b = as_tensor(input1), as_tensor(input2)
    y = as_tensor(target, like=a)  # an array-like target goes to x1's device
    if y.ndim not in (0, 1) or a.ndim != y.ndim + 1 or b.ndim != y.ndim + 1:
        raise DescentError(
            f"cosine_embedding_loss: {y.ndim}D target tensor expects {y.ndim + 1}D input "
            f"tensors, but found inputs with sizes {list(a.shape)} and {list(b.shape)} (use "
            "(N, D) inputs with an (N,) target, or (D,) inputs with a 0-d target)"
        )
    if a.shape != b.shape:
        raise DescentError(
            f"cosine_embedding_loss: input1 {tuple(a.shape)} and input2 {tuple(b.shape)} must "
            "have the same shape"
        )
    # ATen's EPSILON is a float 1e-12 (9.99999996e-13), also in float64: a zero vector's
    # gradient (~1 / sqrt(eps)) differed from PyTorch's by 2e-9 relative with the double 1e-12
    eps = float(np.float32(1e-12))
    prod = (a * b).sum(axis=-1)
    mag1 = (a * a).sum(axis=-1) + eps
    mag2 = (b * b).sum(axis=-1) + eps
    cos = prod / (mag1 * mag2) ** 0.5
    zeros = cos * 0.0
    pos = where(y == 1, 1.0 - cos, zeros)
    neg = where(y == -1, clamp(cos - margin, min=0.0), zeros)
    return _reduce(pos + neg, reduction)
