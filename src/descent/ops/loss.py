"""Fused loss kernels: softmax cross-entropy from logits, binary cross-entropy, mean squared error.

The composite losses (l1, huber, kl_div, nll, bce with logits) live in
`descent.nn.functional` as plain functions over primitives. Cross-entropy with class-index
targets is the hot one: one op, one pass over the logits each way. Binary cross-entropy on
probabilities is an op for PyTorch's clamped derivative, finite where p is exactly 0 or 1.
Mean squared error is one op (PyTorch's MseLossBackward0 node, one pass each way).
"""

from __future__ import annotations

import math

import numpy as np

from .. import array_backward, backend
from ..autograd import Function
from ..dtypes import bfloat16_dtype
from ..tensor import Tensor
from .half import rounds_once
from .untracked import computed

_MEAN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _mean_all(a):
    """a.mean() of a loss array. For a NumPy float32/float64 one of one or more dimensions,
    the two steps of NumPy's own `_mean` (add.reduce over everything, then the sum divided by
    the count as intp and cast back to the sum's type): the same bits without its Python
    layers (~2 us of a small loss's call); anything else: a.mean itself."""
    if type(a) is not np.ndarray or a.dtype not in _MEAN_DTYPES or not a.ndim or not a.size:
        return a.mean()
    s = np.add.reduce(a, axis=None)
    return s.dtype.type(s / np.intp(a.size))


class SoftmaxCrossEntropy(Function):
    """Cross-entropy of logits `x` (M, C) against class indices, with label smoothing.

    Per row i with target t, smoothing e, class weights w (ones when absent), p = softmax(x_i):

        loss_i = (1 - e) w_t (lse_i - x_it) + e/C sum_c w_c (lse_i - x_ic)
        d loss_i / d x_ij = p_ij ((1 - e) w_t + e/C sum_c w_c) - (1 - e) w_t [j = t] - e/C w_j

    (the familiar softmax - onehot when e = 0 and w = 1). Rows whose target is `ignore_index`
    contribute nothing. 'mean' divides by the summed weight of the counted rows, as PyTorch.
    Numerics: the row maximum is subtracted before exp, so logits of +-1e4 in float32 stay finite.
    """

    __slots__ = (
        "target",  # (M,) integer class indices (a constant of the op)
        "weight",  # (C,) class weights or None (a constant)
        "ignore_index",
        "smoothing",
        "reduction",
        "probs",  # saved for backward: softmax of the logits (M, C); freed after backward
        "wt",  # saved: (M,) weight of each row's target, 0 for ignored rows
        "valid",  # saved: (M,) bool, the rows that count
        "scale",  # saved: 1/denominator for 'mean', else 1 (a device scalar on the fused path)
        "lse",  # fused CUDA path only: (M, 2) float32 row (max, log-sum-exp) instead of probs
    )
    saved_slots = ("probs", "wt", "valid", "lse")
    # (forward computes `scale` from the targets and weights on every call: descent.compile's
    # recorder and signature skip it, so two recordings with other targets still agree)
    computed_slots = ("scale",)
    save_inputs = True  # the logits: only read under create_graph (to rebuild the softmax)

    @staticmethod
    def bfloat16_apply(x, target, weight, ignore_index, smoothing, reduction):
        """bfloat16 logits (ops/bfloat16.py): PyTorch's two ops, log_softmax rounded to
        bfloat16 and then nll_loss, so values and gradients round where PyTorch's do. None (the
        fused op in float32, rounded once) with label smoothing."""
        if smoothing:
            return None
        from .softmax import log_softmax  # noqa: PLC0415 - it imports the op families

        return _nll_rounded_once(log_softmax(x, axis=1), target, weight, ignore_index, reduction)

    def forward(self, x):
        xp = backend.get_array_module(x)
        self.lse = None
        if self.weight is None:
            # CuPy float32/float16, NumPy float32 (numba: `kernels/_cpu_jit.ce_fwd32`)
            k = backend.fused("cross_entropy_forward", x)
            if k is not None:
                return self._fused_forward(xp, x, k)
        m_rows, n_cls = x.shape
        t = self.target
        valid = t != self.ignore_index  # (M,)
        t_safe = xp.where(valid, t, 0)
        z = x - x.max(axis=1, keepdims=True)  # (M, C); max subtracted, so exp never overflows
        e = xp.exp(z)
        s = e.sum(axis=1, keepdims=True)  # (M, 1)
        lse = xp.log(s)[:, 0]  # (M,) logsumexp relative to the row max
        nll = lse - z[xp.arange(m_rows), t_safe]  # -log p_t, finite for any finite logits
        w = self.weight
        wt = valid.astype(x.dtype) if w is None else xp.where(valid, w[t_safe], 0).astype(x.dtype)
        eps = self.smoothing
        loss = wt * nll
        if eps:
            if w is None:
                smooth = lse - z.mean(axis=1)  # (1/C) sum_c (lse - z_c)
            else:
                smooth = (w.sum() * lse - z @ w) / n_cls  # (1/C) sum_c w_c (lse - z_c)
            loss = (1 - eps) * loss + eps * xp.where(valid, smooth, 0)
        scale = 1.0
        if self.reduction == "mean":
            denom = float(wt.sum())
            scale = 1.0 / denom if denom != 0 else float("nan")  # all ignored: nan, as PyTorch
            out = loss.sum() * x.dtype.type(scale)
            if not valid.any():
                scale = 0.0  # ... and a zero gradient, as PyTorch's (no row is written)
        elif self.reduction == "sum":
            out = loss.sum()
        else:
            out = loss
        e /= s  # e becomes softmax(x) in place: saved for backward without another copy
        self.probs, self.wt, self.valid, self.scale = e, wt, valid, scale
        return xp.asarray(out, dtype=x.dtype)

    def _fused_forward(self, xp, x, k):
        """One kernel gives the per-row losses and logsumexps: no (M, C) array is kept (the
        backward rebuilds p from the logits and lse), and the mean is taken on the device, so
        no host synchronisation happens per step."""
        loss, lse = k(x, self.target, ignore_index=self.ignore_index, smoothing=self.smoothing)
        valid = self.target != self.ignore_index  # (M,)
        self.probs, self.lse, self.valid, self.wt = None, lse, valid, valid.astype(x.dtype)
        self.scale = 1.0
        if self.reduction == "mean" and type(loss) is np.ndarray:
            # NumPy: the count is a host value, so the all-ignored case can be a branch: no
            # errstate context and no `where` (~4 us of a small batch's call); the same bits
            n = valid.sum(dtype=np.float32)
            if n > 0:
                self.scale = inv = 1 / n  # (a float32 scalar)
                return np.asarray(loss.sum() * inv, dtype=x.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):  # all ignored: 0 * inf = nan
            if self.reduction == "mean":
                n = valid.sum(dtype=xp.float32)
                out = loss.sum() * (1 / n)  # 0 * inf = nan when all are ignored, as PyTorch
                self.scale = xp.where(n > 0, 1 / n, 0).astype(xp.float32)  # ... gradient 0
            elif self.reduction == "sum":
                out = loss.sum()
            else:
                out = loss
        return xp.asarray(out, dtype=x.dtype)

    def _fused_backward(self, gy, ops):
        (x,) = self.inputs(ops)
        k = backend.fused("cross_entropy_backward", x)
        g = gy * self.scale if self.reduction == "mean" else gy  # float32 device scalar or (M,)
        return k(x, self.target, self.lse, g, ignore_index=self.ignore_index,
                 smoothing=self.smoothing)  # fmt: skip

    def _parts(self, xp, dtype):
        """r (M,) and the target term T (M, C) with dx = scale * gy * (p * r - T)."""
        m_rows, n_cls = self.probs.shape if self.probs is not None else self.in_shapes[0]
        eps, w, wt, valid = self.smoothing, self.weight, self.wt, self.valid
        t_safe = xp.where(valid, self.target, 0)
        wsum = n_cls if w is None else float(w.sum())
        r = (1 - eps) * wt + (eps / n_cls) * wsum * valid
        tgt = xp.zeros((m_rows, n_cls), dtype=dtype)
        tgt[xp.arange(m_rows), t_safe] = (1 - eps) * wt
        if eps:
            wrow = xp.ones(n_cls, dtype=dtype) if w is None else w.astype(dtype)
            tgt += (eps / n_cls) * valid[:, None] * wrow[None, :]
        return r.astype(dtype), tgt

    def backward(self, gy, ops):
        if ops.is_graph:
            return self._graph_backward(gy, ops)
        if self.lse is not None:  # the fused CUDA forward ran
            return self._fused_backward(gy, ops)
        xp = backend.get_array_module(gy)
        p = self.probs
        dt = p.dtype
        if self.reduction == "none":
            g = gy.astype(dt, copy=False) * dt.type(self.scale)  # (M,)
        else:
            # (M,) the same for every row; a broadcast view, no host round trip on a GPU
            g = xp.broadcast_to((gy * dt.type(self.scale)).astype(dt, copy=False), p.shape[:1])
        eps = self.smoothing
        if eps == 0:
            # dx = g * (p * w_t - w_t onehot): one multiply over (M, C) and a scatter.
            gw = g * self.wt
            gx = p * gw[:, None]
            t_safe = xp.where(self.valid, self.target, 0)
            gx[xp.arange(p.shape[0]), t_safe] -= gw
        else:
            r, tgt = self._parts(xp, dt)
            gx = (p * r[:, None] - tgt) * g[:, None]
        return gx

    def _graph_backward(self, gy, ops):
        """Differentiable form (create_graph=True): rebuild the softmax from the saved logits."""
        (x,) = self.inputs(ops)
        xp = backend.get_array_module(x._data)
        dt = x._data.dtype
        p = ops.softmax(x, axis=1)  # (M, C) Tensor, recorded
        r, tgt = self._parts(xp, dt)
        scale = float(self.scale)  # a device scalar after the fused forward
        r = Tensor._wrap(r[:, None] * dt.type(scale))
        tgt = Tensor._wrap(tgt * dt.type(scale))
        g = gy.reshape((-1, 1)) if self.reduction == "none" else gy
        return g * (p * r - tgt)


def _nll_weights(t, *rest):
    """nll_loss's row weights: 1 (or weight[target]) on counted rows, 0 on ignored ones."""
    *weight, ignore_index, dt = rest
    valid = t != ignore_index
    wt = valid.astype(dt)
    if weight:
        t_safe = backend.get_array_module(t).where(valid, t, 0).astype(np.int64)
        wt = wt * weight[0].astype(dt)[t_safe]
    return wt


def _nll_count(t, ignore_index: int, dt):
    """nll_loss's 'mean' divisor without class weights: the summed row weights (1 on counted
    rows), computed as `_nll_total(_nll_weights(t, ignore_index, dt))`; for a NumPy target
    of fewer than 2^24 rows and float32/float64 as the count of counted rows (a sum of ones
    below 2^24 is exact in both: the same value)."""
    if type(t) is np.ndarray and t.size < 1 << 24 and dt in _MEAN_DTYPES:
        return np.asarray(np.count_nonzero(t != ignore_index), dtype=dt)
    return _nll_total(_nll_weights(t, ignore_index, dt))


def _nll_total(wt):
    """nll_loss's 'mean' divisor: the summed weights, summed in float32 for half precision,
    as PyTorch (a bfloat16 running sum of ones stops at 256: the mean of 70,000 rows came out
    273 times too large)."""
    acc = np.float32 if wt.dtype.itemsize == 2 else None
    return backend.get_array_module(wt).asarray(wt.sum(dtype=acc), dtype=wt.dtype)


class NllLoss(Function):
    """nll_loss of log-probabilities x (N, C, d...) at class indices, without class weights
    (PyTorch's NllLossBackward0), one node where the composite recorded four:

        loss_n = -x[n, t_n] on counted rows (target != ignore_index), +0.0 on ignored ones
        'sum': sum_n loss_n;  'mean': sum_n loss_n / count (the counted rows)
        d/dx = zeros with -gy (/ count for 'mean') at [n, t_n] of the counted rows

    Every step is the composite's NumPy call in the composite's order (take_along_axis, -,
    where, sum, /; in backward / count, where, -, the scatter-add), so values and gradients
    are bitwise the composite's (tests/test_overhead_s26.py); backward is written with `ops`,
    so create_graph differentiates it again. The index, the mask and the count are the
    composite's kernels (`_nll_index`, `_nll_valid`, `_nll_count`) run in forward on the
    target, a parameter that descent.compile rebinds to each call's target (computed through
    untracked.computed before: three calls and three wrapped tensors, ~4 us of a small call).
    """

    __slots__ = (
        "target",  # (N, d...) int64 or uint8 class indices (a constant of the op)
        "ignore_index",
        "reduction",
        "idx",  # saved: (N, 1, d...) int64 the targets, class 0 on ignored rows
        "valid",  # saved: (N, d...) bool the counted rows
        "count",  # saved: 0-d the number of counted rows in x's dtype ('mean' only, else None)
    )
    saved_slots = ("idx", "valid", "count")
    saves_params = True  # PyTorch saves the target (a second backward raises there)

    def forward(self, x):
        xp = backend.get_array_module(x)
        t, ii = self.target, self.ignore_index
        self.idx = idx = _nll_index(t, ii, x.shape[1])  # (checks the range)
        self.valid = valid = _nll_valid(t, ii)
        self.count = None
        if x.ndim == 2:  # (N, C): the same gather without take_along_axis's index building
            picked = x[xp.arange(x.shape[0]), idx[:, 0]]  # (N,)
        else:
            picked = xp.take_along_axis(x, idx, axis=1).squeeze(1)  # (N, d...)
        # masked, not multiplied by 0: an ignored row's picked value may be -inf
        loss = xp.where(valid, -picked, xp.zeros((), x.dtype))
        if self.reduction == "none":
            return loss
        total = loss.sum()
        if self.reduction == "sum":
            return total
        self.count = _nll_count(t, ii, x.dtype)
        return total / self.count

    def backward(self, gy, ops):
        graph = ops.is_graph
        if self.reduction == "mean":
            gy = gy / (Tensor._wrap(self.count) if graph else self.count)
        valid = Tensor._wrap(self.valid) if graph else self.valid
        g = -ops.where(valid, gy, 0)  # (N, d...) -0.0 on ignored rows, as the composite's
        if graph or type(g) is not np.ndarray:
            return ops.along_axis_grad(g.reshape(self.idx.shape), self.in_shapes[0], self.idx, 1)
        # NumPy: the scatter-add into zeros writes one sum 0.0 + g per (n, d...) (one index per
        # slice): a put of g + 0.0 is the same bits (-0.0 becomes +0.0, nan stays g's nan)
        gx = np.zeros(self.in_shapes[0], g.dtype)
        g = g + 0.0
        if gx.ndim == 2:
            gx[np.arange(gx.shape[0]), self.idx[:, 0]] = g
        else:
            np.put_along_axis(gx, self.idx, g.reshape(self.idx.shape), axis=1)
        return gx


class BCEWithLogits(Function):
    """binary_cross_entropy_with_logits without weights, a target that needs no gradient
    (PyTorch's BinaryCrossEntropyWithLogitsBackward0), one node where the composite recorded
    five (neg, softplus, the product by 1 - y, the add, the reduction):

        loss = (1 - y) x + softplus(-x),  softplus(z) = max(z, 0) + log1p(e^-|z|)
        d/dx = g (1 - y) - g sigmoid(-x),  g = gy (/ n for 'mean') broadcast to x's shape

    Every step is the composite's NumPy call in its order (softplus's where over z > inf,
    which never holds, is left out: it copied soft), so the loss and the gradient are the
    composite's bits (tests/test_overhead_s27.py); where x has other uses, the two terms are
    added here before they join the others' gradients (the engine added them one by one:
    float rounding). Backward is written with `ops`: create_graph differentiates it again.
    """

    __slots__ = ("reduction", "e")
    save_inputs = True  # x and y (PyTorch's node saves self and target)
    saved_slots = ("e",)  # e^-|x| (x's shape): the sigmoid in backward reuses it
    dtypes = (np.dtype(np.float32), np.dtype(np.float64))  # half precision: the composite

    @classmethod
    def fits(cls, x: Tensor, y: Tensor) -> bool:
        """The node serves these tensors: x and y of one float32/float64 dtype, y needing no
        gradient (PyTorch differentiates the target too: the composite does)."""
        return x._data.dtype in cls.dtypes and y._data.dtype == x._data.dtype and not y._rg

    def forward(self, x, y):
        xp = backend.get_array_module(x)
        nx = -x
        self.e = xp.exp(-xp.abs(nx))
        sp = xp.maximum(nx, 0) + xp.log1p(self.e)  # softplus(-x)
        loss = (x.dtype.type(1.0) - y) * x
        loss += sp  # in place: the bits of the composite's loss + sp
        if self.reduction == "mean":  # the mean of nothing: nan without a warning (as Mean)
            return _mean_all(loss) if loss.size else loss.sum() * x.dtype.type(np.nan)
        return loss.sum() if self.reduction == "sum" else loss

    def backward(self, gy, ops):
        x, y = self.inputs(ops)
        shape = self.in_shapes[0]
        if self.reduction == "mean":  # Mean's backward: the scale before the broadcast
            n = math.prod(shape)
            gy = gy * (1.0 / n if n else 0.0)
        if self.reduction != "none":
            gy = ops.expand_reduced(gy, shape, None, False)
        if ops.is_graph:
            g1 = gy * (1.0 - y)  # the product's gradient
            return g1 + -(gy * ops.sigmoid(-x)), None  # softplus's, through the negation
        g1 = gy * (x.dtype.type(1.0) - y)
        # sigmoid(-x) as array_backward.sigmoid makes it (e^-|x| the forward's: the same
        # bits; x <= 0 is -x >= 0, nan false in both)
        e = self.e
        xp = backend.get_array_module(e)
        s = array_backward._select(xp, x <= 0, 1 / (1 + e), e / (1 + e))
        return g1 + -(gy * s), None


def _nll_index(t, ignore_index: int, n_cls: int):
    """nll_loss's gather index (N, 1, d...): the target, with class 0 on ignored rows (any
    valid class: they get weight 0, so the gather needs no mask of its own). Checks the
    range, on every call."""
    if (
        type(t) is np.ndarray and t.dtype == np.int64 and t.size
        and not 0 <= ignore_index < n_cls and t.view(np.uint64).max() < n_cls
    ):  # fmt: skip
        # NumPy's common case, one reduction: every target is a class (a negative one reads
        # as a uint64 above n_cls), so none is the ignore_index (not a class) and the index
        # below is t itself, copied
        return t.reshape(t.shape[:1] + (1,) + t.shape[1:]).copy()
    xp = backend.get_array_module(t)
    valid = t != ignore_index
    index = xp.where(valid, t, 0)  # a new array: reshaped in place of np.expand_dims (slow)
    # (ignored rows are 0 in index: in range when there is a class, so its min and max check
    # the counted rows; with no class the full test)
    if index.size and (
        (valid & ((t < 0) | (t >= n_cls))).any()
        if n_cls == 0
        else (index.min() < 0 or index.max() >= n_cls)
    ):
        raise IndexError(f"nll_loss: a target is out of range for {n_cls} classes")
    return index.reshape(index.shape[:1] + (1,) + index.shape[1:]).astype(np.int64, copy=False)


def _nll_valid(t, ignore_index: int):
    """nll_loss's counted rows."""
    return t != ignore_index


class MseLoss(Function):
    """loss = reduce((a - b)^2) over a and b broadcast together ('none', 'sum' or 'mean').

    d/da = 2 (a - b) g (divided by the element count N for 'mean'), d/db = 2 (b - a) g:
    PyTorch's mse_loss_backward, in its order ((a - b) * norm) * g (its operands swapped for b:
    the signs of zeros are not -d/da's), so one node stands where PyTorch's MseLossBackward0
    does (tutorials print `loss.grad_fn` and walk its `next_functions`).
    """

    __slots__ = ("reduction", "d")  # d: a - b, saved for backward (freed after it)
    saved_slots = ("d",)
    save_inputs = True  # read only under create_graph (the derivative as recorded ops)

    def forward(self, a, b):  # self.reduction: set by apply(..., reduction=)
        d = a - b
        self.d = d
        sq = d * d
        if self.reduction == "none":
            return sq
        if self.reduction == "sum":
            return sq.sum()
        if not sq.size:  # the mean of nothing: nan, as PyTorch (without NumPy's warning)
            return sq.sum() * sq.dtype.type(np.nan)
        return _mean_all(sq)

    def backward(self, gy, ops):
        d = self.d
        n = d.size
        norm = 2.0 / n if self.reduction == "mean" and n else 2.0
        want_a, want_b = self.parents[0] is not None, self.parents[1] is not None
        if ops.is_graph:
            a, b = self.inputs(ops)
            ga = ((a - b) * norm) * gy if want_a else None
            gb = ((b - a) * norm) * gy if want_b else None
            return ga, gb
        c = d.dtype.type(norm)
        ga = (d * c) * gy if want_a else None
        if want_b:
            # PyTorch's target gradient is mse_loss_backward with the operands swapped,
            # ((b - a) norm) g: not -ga, which differs in the sign of its zeros (b == a)
            a, b = self.inputs(ops)
            gb = ((b - a) * c) * gy
        else:
            gb = None
        return ga, gb


def _reduced(loss, reduction: str):
    """A loss array reduced as PyTorch's apply_loss_reduction ('none', 'sum' or 'mean'; the mean
    of nothing is nan, without NumPy's warning)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if not loss.size:
        return loss.sum() * loss.dtype.type(np.nan)
    return _mean_all(loss)


class SmoothL1Loss(Function):
    """loss = reduce(0.5 z^2 / beta where z < beta, else z - beta / 2), z = |a - b| (beta > 0),
    PyTorch's kernel and one node, SmoothL1LossBackward0.

    d/da with x = a - b: -norm g where x <= -beta, norm g where x >= beta, else norm x g / beta
    (norm = 1/N for 'mean'); d/db the same with a and b swapped (PyTorch's formula, so the
    signs of zeros are its: a = -0.0, b = 0 gives -0.0 for a and +0.0 for b)."""

    __slots__ = ("reduction", "beta")
    save_inputs = True
    scale = False  # HuberLoss: the outer branches times beta, the inner one without / beta

    def forward(self, a, b):  # self.reduction, self.beta: set by apply(..., reduction=, beta=)
        xp = backend.get_array_module(a)
        z = xp.abs(a - b)
        t = z.dtype.type
        c = t(self.beta)
        with np.errstate(invalid="ignore", over="ignore"):
            if self.scale:  # huber: 0.5 z z where z < delta, else delta (z - 0.5 delta)
                loss = xp.where(z < c, t(0.5) * z * z, c * (z - t(0.5) * c))
            else:
                loss = xp.where(z < c, t(0.5) * z * z / c, z - t(0.5) * c)
        return _reduced(loss, self.reduction)

    def backward(self, gy, ops):
        a, b = self.inputs(ops)
        n = int(np.prod(np.broadcast_shapes(*self.in_shapes))) if self.reduction == "mean" else 0
        ga = self._vjp(gy, a, b, n, ops) if self.parents[0] is not None else None
        gb = self._vjp(gy, b, a, n, ops) if self.parents[1] is not None else None
        return ga, gb

    def _vjp(self, gy, a, b, n: int, ops):
        """PyTorch's smooth_l1_backward / huber_backward kernel for input a, target b."""
        c = self.beta
        norm = 1.0 / n if n else 1.0
        if not ops.is_graph:
            t = a.dtype.type
            c, norm = t(c), t(norm)
        x = a - b
        out = norm * gy * c if self.scale else norm * gy
        inner = norm * x * gy if self.scale else norm * x * gy / c
        with np.errstate(invalid="ignore"):
            return ops.where(x <= -c, -out, ops.where(x >= c, out, inner))


class HuberLoss(SmoothL1Loss):
    """loss = reduce(0.5 z^2 where z < delta, else delta (z - delta / 2)), z = |a - b|, one node
    (HuberLossBackward0); d/da = -norm g delta, norm g delta, or norm x g (x = a - b), as
    PyTorch's huber_backward (`beta` holds delta)."""

    __slots__ = ()
    scale = True


# PyTorch's binary_cross_entropy_backward divides by max(p (1 - p), EPSILON) with EPSILON a
# C++ float 1e-12 (Loss.cpp), so a float64 gradient at a clamped p was 4e-9 off with 1e-12
_BCE_EPS = float(np.float32(1e-12))


class BinaryCrossEntropy(Function):
    """loss = (y - 1) max(log1p(-p), -100) - y max(log p, -100) (PyTorch's kernel), times the
    weight w (a third input, given no gradient: PyTorch has no derivative for it), reduced
    ('none', 'sum' or 'mean') in this one node, as PyTorch's BinaryCrossEntropyBackward0.

    d/dp = g (p - y) / max(p (1 - p), eps) (eps: float32's 1e-12), then times weight, then / N
    for 'mean': PyTorch's formula and order, finite even where p is exactly 0 or 1 (where the
    clamped log has no derivative); d/dy = -logit(p) g (times weight, / N), not clamped
    (PyTorch's binary_cross_entropy_target_backward: +-inf at p = 0, 1).
    """

    __slots__ = ("reduction",)
    save_inputs = True

    def forward(self, p, y, w=None):  # self.reduction: set by apply(..., reduction=)
        xp = backend.get_array_module(p)
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
            lp = xp.maximum(xp.log(p), -100)
            l1p = xp.maximum(xp.log1p(-p), -100)
        loss = (y - 1) * l1p - y * lp
        if w is not None:
            loss = loss * w
        if self.reduction == "none":
            return loss
        if self.reduction == "sum" or not loss.size:  # the mean of nothing: nan, as PyTorch
            acc = np.float32 if loss.dtype.itemsize == 2 else None  # (float16: as Sum)
            total = loss.sum(dtype=acc).astype(loss.dtype)
            return total if self.reduction == "sum" else total * loss.dtype.type(np.nan)
        return _mean_all(loss)

    def backward(self, gy, ops):
        p, y, *w = self.inputs(ops)
        w = w[0] if w else None
        n = math.prod(self.in_shapes[0]) if self.reduction == "mean" else 0
        gp = gt = None
        if self.parents[0] is not None:
            gp = gy * (p - y) / ops.maximum(p * (1 - p), _BCE_EPS)
            gp = _bce_scale(gp, w, n)
        if self.parents[1] is not None:
            with np.errstate(divide="ignore"):
                gt = -ops.log(p / (1 - p)) * gy  # PyTorch's order: logit(p).neg_().mul_(gy)
            gt = _bce_scale(gt, w, n)
        return (gp, gt) if w is None else (gp, gt, None)


def _bce_scale(g, w, n: int):
    """PyTorch's grad.mul_(weight) then grad.div_(numel) for 'mean' (n > 0)."""
    if w is not None:
        g = g * w
    return g / n if n else g


@rounds_once
def _nll_rounded_once(logp, target, weight, ignore_index: int, reduction: str, low=None):
    """nll_loss of (M, C) log-probabilities at class indices, computed in float32 and rounded
    once: the second half of `SoftmaxCrossEntropy.bfloat16_apply`. Gradients are PyTorch's
    bitwise; the loss value may be one ulp apart, as PyTorch sums the rows in bfloat16 (cascaded
    partial sums, LossNLL.cpp) where this sums in float32."""
    xp = backend.get_array_module(logp._data)
    dt = logp._data.dtype
    # The safe targets, the row weights and their total come from the target's values through
    # untracked.computed, so descent.compile replays them on each call's target (made on
    # arrays, they were constants frozen when the first two calls agreed).
    tt = Tensor._wrap(target)  # (M,) the caller's array (a slot's, to descent.compile)
    ins = (tt,) if weight is None else (tt, Tensor._wrap(weight))
    t_safe = computed(_nll_safe_target, (tt,), (ignore_index,))  # (M,)
    wt = computed(_nll_row_weight, ins, (ignore_index, dt))  # (M,)
    loss = -(logp[xp.arange(logp.shape[0]), t_safe] * wt)  # (M,)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    # PyTorch holds the total weight in bfloat16 (257 rows count as 256; float16's in float16,
    # `low`): so does this
    total = computed(_nll_total_weight, (wt,), (np.dtype(low or bfloat16_dtype()),))  # ()
    with np.errstate(divide="ignore", invalid="ignore"):  # every row ignored: nan, as PyTorch
        return loss.sum() / total


def _nll_safe_target(target, ignore_index):
    """The targets with ignored rows at class 0 (_nll_rounded_once's computed kernel)."""
    return backend.get_array_module(target).where(target != ignore_index, target, 0)


def _nll_row_weight(target, *rest):
    """Each row's weight (0 where ignored), in dtype dt: `(target, [weight,] ignore, dt)`."""
    *weight, ignore_index, dt = rest
    valid = target != ignore_index
    if not weight:
        return valid.astype(dt)
    t_safe = _nll_safe_target(target, ignore_index)
    return backend.get_array_module(target).where(valid, weight[0][t_safe], 0).astype(dt)


def _nll_total_weight(wt, low):
    """The rows' total weight held in `low` (bfloat16/float16) as PyTorch, as a float32 0-d."""
    total = np.asarray(backend.as_numpy(wt.sum()), np.float32).astype(low).astype(np.float32)
    return backend.get_array_module(wt).asarray(total)
