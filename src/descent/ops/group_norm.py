"""GroupNorm as one op on the CPU (Wu & He, 2018): statistics, normalisation and the
per-channel affine in one numba pass forward and two backward (kernels._cpu_extra).

Composed of recorded ops (the row normalisation, then y * w + b), GroupNorm(32, 128) on
(32, 128, 16, 16) took 3.6-11 ms forward + backward against PyTorch's 0.8 ms
(benchmarks/op_sweep.py): the affine alone is four full passes and two reductions. Used by
nn.functional.group_norm (and instance_norm) for NumPy float32/float64 inputs with the numba
kernels on; create_graph differentiates the composite form instead (`composite`).
"""

from __future__ import annotations

import numpy as np

from .. import autograd
from ..autograd import Function
from ..grad_mode import enable_grad


class GroupNorm(Function):
    """y = (x - mean) * rstd * w[c] + b[c], statistics over each group of C/G channels and
    the spatial positions (biased variance, as PyTorch).

    Backward (xhat = (x - mean) rstd, gh = gy w, means over the group):
        dx = rstd (gh - mean(gh) - xhat mean(gh xhat)),  dw = sum(gy xhat),  db = sum(gy).
    Inputs x (N, C, *), then w and b (C,) when has_w / has_b. Saves the input, and the
    mean and rstd (N, G) in float64.
    """

    # low: float16/bfloat16 (x, w, b float32 arrays holding its values): backward as PyTorch's
    # reduced-precision kernel (`_low_backward`)
    __slots__ = ("groups", "eps", "has_w", "has_b", "mean", "rstd", "composite", "low")
    save_inputs = True
    saved_slots = ("mean", "rstd")

    def forward(self, x, *affine):
        _cpu_extra = _kernels(loops=True)[1]
        n, c = x.shape[0], x.shape[1]
        x3 = np.ascontiguousarray(x).reshape(n, c, -1)  # (N, C, S)
        w, b = self._affine(affine, c, x.dtype)
        y = np.empty_like(x3)
        self.mean = np.empty((n, self.groups))
        self.rstd = np.empty((n, self.groups))
        _cpu_extra.group_norm_forward(x3, c // self.groups, w, b, self.eps, y, self.mean,
                                      self.rstd)  # fmt: skip
        return y.reshape(x.shape)

    def _affine(self, affine, c, dtype):
        """(w, b) as contiguous arrays of x's dtype: ones / zeros where absent."""
        w = affine[0] if self.has_w else np.ones(c, dtype=dtype)
        b = affine[-1] if self.has_b else np.zeros(c, dtype=dtype)
        return np.ascontiguousarray(w, dtype=dtype), np.ascontiguousarray(b, dtype=dtype)

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        if ops.is_graph:
            return self._graph_backward(gy, ins)
        _cpu_extra = _kernels(loops=True)[1]
        x = ins[0]
        n, c = x.shape[0], x.shape[1]
        x3 = np.ascontiguousarray(x).reshape(n, c, -1)
        w, _ = self._affine(ins[1:], c, x.dtype)
        if getattr(self, "low", None) is not None:
            return self._low_backward(x, x3, np.ascontiguousarray(gy).reshape(x3.shape), w)
        # gx in x's shape, filled through its (N, C, S) view: an array that owns its memory,
        # which the engine stores as a leaf's .grad without a copy (it copies views)
        gx = np.empty(x.shape, x3.dtype)
        gw = np.zeros(c)
        gb = np.zeros(c)
        _cpu_extra.group_norm_backward(x3, np.ascontiguousarray(gy).reshape(x3.shape),
                                       c // self.groups, w, self.mean, self.rstd,
                                       gx.reshape(x3.shape), gw, gb)  # fmt: skip
        grads = [gx if self.parents[0] is not None else None]
        if self.has_w:
            grads.append(gw.astype(gy.dtype))
        if self.has_b:
            grads.append(gb.astype(gy.dtype))
        return tuple(grads)

    def _low_backward(self, x, x3, gy3, w):
        """float16/bfloat16 as PyTorch's kernel (group_norm_kernel.cpp, reduced types): the
        saved mean and rstd rounded to the dtype; float32 ds = sum gy x and db = sum gy per
        (n, c) and their w-weighted sums per group in its vector order (`_lane_sums`);
        c2 = (db mean - ds) rstd^3 / (D S), c3 = -c2 mean - db rstd / (D S),
        dx = rstd w gy + c2 x + c3; dw = sum_n (ds - db mean) rstd, db = sum_n db, each
        sum over n sequential in float32 (the casts round the results)."""
        f32 = np.float32
        low = self.low

        def r(a):
            return a.astype(f32).astype(low).astype(f32)

        n, c, s = x3.shape
        g = self.groups
        d = c // g
        mean, rstd = r(self.mean), r(self.rstd)  # (N, G)
        ds = _lane_sums((gy3 * x3).reshape(n * c, s)).reshape(n, c)
        db = _lane_sums(gy3.reshape(n * c, s)).reshape(n, c)
        grads = [None]
        if self.parents[0] is not None:
            scale = f32(1) / f32(d * s)
            ds_g = _lane_sums((ds * w).reshape(n * g, d)).reshape(n, g)
            db_g = _lane_sums((db * w).reshape(n * g, d)).reshape(n, g)
            c2 = ((db_g * mean - ds_g) * rstd * rstd * rstd * scale).astype(f32)  # (N, G)
            c3 = (-c2 * mean - db_g * rstd * scale).astype(f32)
            c1 = (np.repeat(rstd, d, axis=1) * w).astype(f32)  # (N, C)
            rep = lambda a: np.repeat(a, d, axis=1)[:, :, None]  # noqa: E731 - (N, G) -> (N, C, 1)
            gx3 = c1[:, :, None] * gy3 + rep(c2) * x3 + rep(c3)
            grads[0] = gx3.astype(f32).reshape(x.shape)
        if self.has_w:
            terms = (ds - db * np.repeat(mean, d, axis=1)) * np.repeat(rstd, d, axis=1)
            grads.append(np.cumsum(terms.astype(f32), axis=0, dtype=f32)[-1])
        if self.has_b:
            grads.append(np.cumsum(db, axis=0, dtype=f32)[-1])
        return tuple(grads)

    def _graph_backward(self, gy, ins):
        """create_graph: the composite form's gradient, recorded (so it is differentiable)."""
        with enable_grad():
            y = self.composite(*ins)
            wanted = [t for t, p in zip(ins, self.parents) if p is not None]
            seed = autograd._seed(y, gy, True, "GroupNorm")
            gs = iter(autograd._engine_backward([y], [seed], True, True, capture=wanted,
                                            accumulate=False))  # fmt: skip
        return tuple(next(gs) if p is not None else None for p in self.parents)


def _lane_sums(a):
    """(R, L) float32 -> (R,) row sums in the order of PyTorch's reduced-precision group norm
    loops: blocks of 16 values as two vectors of 8 lanes added into one accumulator, its lanes
    summed one after another from 0, then the rest of the row one value at a time (cumsum:
    sequential, where NumPy's sum would add pairwise)."""
    f32 = np.float32
    rows, length = a.shape
    k = length // 16
    parts = [np.zeros((rows, 1), f32)]
    if k:
        parts.append(np.cumsum(a[:, : k * 16].reshape(rows, 2 * k, 8), axis=1, dtype=f32)[:, -1])
    parts.append(a[:, k * 16 :])
    return np.cumsum(np.concatenate(parts, axis=1), axis=1, dtype=f32)[:, -1]


def fused_group_norm_ok(x) -> bool:
    """GroupNorm applies: a NumPy float32/float64 array (not meta, not CuPy) with at least
    one element, and the numba kernels on."""
    a = x._data
    if type(a) is not np.ndarray or a.dtype not in (np.float32, np.float64) or not a.size:
        return False
    return _kernels()[0].enabled()


def _kernels(loops: bool = False):
    """[kernels.cpu, kernels._cpu_extra (numba: imported when `loops` is asked for, by the
    op's forward and backward)], looked up once: an import statement per call costs ~1.5 us,
    three per GroupNorm step."""
    if not _KERNELS:
        from ..kernels import cpu  # noqa: PLC0415

        _KERNELS[:] = [cpu, None]
    if loops and _KERNELS[1] is None:
        from ..kernels import _cpu_extra  # noqa: PLC0415

        _KERNELS[1] = _cpu_extra
    return _KERNELS


_KERNELS: list = []  # [kernels.cpu, kernels._cpu_extra], on first use
