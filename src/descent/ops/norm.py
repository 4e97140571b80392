"""Fused normalisation kernels: layer norm and RMS norm in one op each.

Both normalise over the trailing `k` dimensions and keep an affine weight/bias of those
dimensions' shape. Forward and backward are single passes over the data with the statistics
saved; under `create_graph=True` the backward rebuilds the statistics from the saved input with
differentiable ops, so higher-order gradients work (see docs/functional.md).
"""

from __future__ import annotations

import numpy as np

from .. import backend, halves
from ..autograd import Function


def _wide(a) -> bool:
    """float32/float64: reduce with BLAS/einsum. float16 accumulates in float32 instead (NumPy's
    sum does; its matmul and einsum would round every partial sum to float16)."""
    return a.dtype.itemsize >= 4


def _rowsum(xp, a):
    """(M, D) -> (M,) row sums."""
    if _wide(a):
        return a @ xp.ones(a.shape[1], dtype=a.dtype)  # one BLAS matrix-vector product
    return a.sum(axis=1, dtype=np.float32).astype(a.dtype)


def _rowdot(xp, a, b):
    """(M, D), (M, D) -> (M,) row dot products, without an (M, D) temporary."""
    if _wide(a):
        return xp.einsum("ij,ij->i", a, b)
    return (a * b).sum(axis=1, dtype=np.float32).astype(a.dtype)


def _chansum(xp, a, b=None):
    """(N, C, L) [, (N, C, L)] -> (C,) per-channel sums (of a * b when b is given)."""
    if _wide(a):
        return xp.einsum("ncl->c", a) if b is None else xp.einsum("ncl,ncl->c", a, b)
    prod = a if b is None else a * b
    return prod.sum(axis=(0, 2), dtype=np.float32).astype(a.dtype)


def _affine_grads(self, gy, xhat, ops):
    """Gradients of weight and bias: gy * xhat and gy summed over the leading dimensions."""
    lead = tuple(range(gy.ndim - self.k))
    gw = gb = None
    if self.has_w and self.parents[1] is not None:
        gw = (gy * xhat).sum(axis=lead) if lead else gy * xhat
    if self.has_b and self.parents[1 + self.has_w] is not None:
        gb = gy.sum(axis=lead) if lead else gy
    grads = ()
    if self.has_w:
        grads += (gw,)
    if self.has_b:
        grads += (gb,)
    return grads


def _rows(x, k: int):
    """View (..., *normalized_shape) as (M, D): the normalised dims flattened into rows."""
    d = 1
    for n in x.shape[x.ndim - k :]:
        d *= n
    return x.reshape(-1, d)


class LayerNorm(Function):
    """y = (x - mean) * rstd * w + b over the last k dims, rstd = 1/sqrt(var + eps).

    Backward (xhat = (x - mean) rstd, gh = gy * w, means over the normalised dims):
        dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),  dw = sum(gy xhat),  db = sum(gy).
    The fast path works on the (M, D) row view: row sums are BLAS matrix-vector products and
    row dot products einsums, so no (M, D) temporary is made for a reduction. Saves xhat (M, D)
    and rstd (M, 1); the input too, for the create_graph path.
    """

    bfloat16_follows_input = True  # a bfloat16 input with float32 weights: bfloat16 out
    # bfloat16 inputs (ops/bfloat16.py): the dispatch sets `low` to the dtype (float16's
    # caller, nn.functional.layer_norm, passes it)
    bfloat16_param = "low"

    __slots__ = ("k", "eps", "has_w", "has_b", "xhat", "rstd", "mean", "low")
    save_inputs = True
    saved_slots = ("xhat", "rstd", "mean")  # mean: fused CUDA path only, which keeps no xhat

    def forward(self, x, *affine):
        self.mean = None
        k = backend.fused("layer_norm_forward", x, *affine)  # CuPy float32/float16
        if k is not None:
            w = affine[0] if self.has_w else None
            b = affine[-1] if self.has_b else None
            # NumPy: rows in two halves at once at two BLAS threads (descent/halves.py)
            run = halves.layer_norm_run(x, True)
            kw = {"run": run} if run is not None else {}
            y, self.mean, self.rstd = k(_rows(x, self.k), w, b, self.eps, **kw)  # (M,) float32
            self.xhat = None
            return y.reshape(x.shape)
        xp = backend.get_array_module(x)
        x2 = _rows(x, self.k)  # (M, D)
        d = x2.shape[1]
        inv_d = x.dtype.type(1.0 / d)
        xc = x2 - (_rowsum(xp, x2) * inv_d)[:, None]  # (M, D) centred, a fresh array
        var = _rowdot(xp, xc, xc) * inv_d  # (M,)
        rstd = (1 / xp.sqrt(var + x.dtype.type(self.eps)))[:, None]  # (M, 1)
        xc *= rstd  # xc is now xhat
        self.xhat, self.rstd = xc, rstd
        y = xc * affine[0].reshape(-1) if self.has_w else xc.copy()  # never hand out xhat
        if self.has_b:
            y += affine[-1].reshape(-1)  # the bias is the last input when present
        return y.reshape(x.shape)

    def backward(self, gy, ops):
        if ops.is_graph:
            return self._graph_backward(gy, ops)
        if getattr(self, "low", None) is not None:
            return self._low_backward(gy, ops, self.low)
        if self.mean is not None:  # the fused CUDA forward ran
            return self._fused_backward(gy, ops)
        xp = backend.get_array_module(gy)
        ins = self.inputs(ops)
        xhat, rstd = self.xhat, self.rstd
        m_rows, d = xhat.shape
        gy2 = gy.reshape(m_rows, d)
        gx = gw = gb = None
        if self.parents[0] is not None:
            inv_d = gy.dtype.type(1.0 / d)
            gh = gy2 * ins[1].reshape(-1) if self.has_w else gy2.copy()  # (M, D), fresh
            m1 = _rowsum(xp, gh) * inv_d  # (M,) mean(gh)
            m2 = _rowdot(xp, gh, xhat) * inv_d  # (M,) mean(gh xhat)
            gh -= m1[:, None]
            gh -= xhat * m2[:, None]
            gh *= rstd
            gx = gh.reshape(gy.shape)
        if self.has_w and self.parents[1] is not None:
            gw = _rowdot(xp, gy2.T, xhat.T).reshape(self.in_shapes[1])  # column dots
        if self.has_b and self.parents[-1] is not None:
            gb = _rowsum(xp, gy2.T).reshape(self.in_shapes[-1])  # column sums
        return (gx,) + ((gw,) if self.has_w else ()) + ((gb,) if self.has_b else ())

    def _low_backward(self, gy, ops, low):
        """float16/bfloat16 (float32 arrays holding their values): PyTorch's CPU kernel saves
        the mean and 1/std rounded to the input's dtype and its backward reads those, in
        float32: dx = rstd gh + b x + c, b = (sum(gh) mean - sum(gh x)) rstd^3 / D,
        c = -b mean - sum(gh) rstd / D, dw = sum over rows of gy (x - mean) rstd (gh = gy w).
        Its error is up to 8x that of rounding once; this follows it (bit for bit on the
        probes)."""
        def r(a):
            return a.astype(low).astype(a.dtype)

        ins = self.inputs(ops)
        x2 = _rows(ins[0], self.k)
        m_rows, d = x2.shape
        gy2 = gy.reshape(m_rows, d)
        mean = r(x2.mean(axis=1, keepdims=True, dtype=np.float64).astype(x2.dtype))
        rstd = r(self.rstd.reshape(m_rows, 1))
        gx = gw = gb = None
        if self.parents[0] is not None:
            gh = gy2 * ins[1].reshape(-1) if self.has_w else gy2
            ds = (gh * x2).sum(axis=1, keepdims=True)
            db = gh.sum(axis=1, keepdims=True)
            scale = x2.dtype.type(1.0 / d)
            b = (db * mean - ds) * rstd * rstd * rstd * scale
            c = -b * mean - db * rstd * scale
            gx = (rstd * gh + b * x2 + c).reshape(gy.shape)
        need_w = self.has_w and self.parents[1] is not None
        need_b = self.has_b and self.parents[-1] is not None
        if need_w or need_b:
            cw, cb = _low_column_sums(gy2, x2, mean[:, 0], rstd[:, 0], low)
            gw = cw.reshape(self.in_shapes[1]) if need_w else None
            gb = cb.reshape(self.in_shapes[-1]) if need_b else None
        return (gx,) + ((gw,) if self.has_w else ()) + ((gb,) if self.has_b else ())

    def _fused_backward(self, gy, ops):
        """Two kernels: dx row by row, then dw and db as column sums over row chunks."""
        ins = self.inputs(ops)
        x2 = _rows(ins[0], self.k)  # (M, D)
        need_w = self.has_w and self.parents[1] is not None
        need_b = self.has_b and self.parents[-1] is not None
        k = backend.fused("layer_norm_backward", x2)
        w = ins[1] if self.has_w else None
        need_x, need_wb = self.parents[0] is not None, need_w or need_b
        gy2 = gy.reshape(x2.shape)
        run = halves.layer_norm_run(x2, False)  # NumPy: rows in two halves at two BLAS threads
        kw = {"run": run} if run is not None else {}
        gx, gw, gb = k(x2, w, gy2, self.mean, self.rstd, need_x=need_x, need_wb=need_wb, **kw)
        gx = None if gx is None else gx.reshape(gy.shape)
        grads = (gx,)
        if self.has_w:
            grads += (gw.reshape(self.in_shapes[1]) if need_w else None,)
        if self.has_b:
            grads += (gb.reshape(self.in_shapes[-1]) if need_b else None,)
        return grads

    def _graph_backward(self, gy, ops):
        """Differentiable form: the statistics rebuilt from x with recorded ops."""
        ins = self.inputs(ops)
        axes = tuple(range(gy.ndim - self.k, gy.ndim))
        x = ins[0]
        xc = x - x.mean(axis=axes, keepdims=True)
        rstd = ((xc * xc).mean(axis=axes, keepdims=True) + self.eps) ** -0.5
        xhat = xc * rstd
        gx = None
        if self.parents[0] is not None:
            gh = gy * ins[1] if self.has_w else gy
            m1 = gh.mean(axis=axes, keepdims=True)
            m2 = (gh * xhat).mean(axis=axes, keepdims=True)
            gx = (gh - m1 - xhat * m2) * rstd
        return (gx,) + _affine_grads(self, gy, xhat, ops)


def _low_column_sums(gy, x, mean, rstd, low):
    """layer_norm's float16/bfloat16 dw = sum_i gy_i (x_i rstd_i - mean_i rstd_i) and db =
    sum_i gy_i over the rows i of (M, D) float32 arrays, as PyTorch's CPU kernel
    (layer_norm_kernel.cpp): each thread's share of rows accumulates into a buffer of the low
    dtype, rounded after every row (its vector loop: fused multiply-adds in float32, stored
    back to `low`); the buffers are then summed in float32 in thread order. Rows step in
    lockstep across the thread shares: one vector operation per row of a share."""
    from .reduce import _num_threads  # noqa: PLC0415 - (reduce imports much of ops)

    f32, f64 = np.float32, np.float64

    def r(a):
        return a.astype(low).astype(f32)

    m_rows, d = x.shape
    if m_rows == 0:  # no rows (an empty batch): nothing summed, as PyTorch's zeros
        return np.zeros(d, f32), np.zeros(d, f32)
    threads = min(_num_threads(), m_rows) or 1
    chunk = -(-m_rows // threads) if m_rows else 1
    starts = np.arange(0, m_rows, chunk)  # (T,) each share's first row
    bw = np.zeros((len(starts), d), f32)
    bb = np.zeros((len(starts), d), f32)
    a = rstd.astype(f32)
    b = (-a * mean).astype(f32)  # (M,)
    for step in range(chunk):
        rows = starts + step
        rows = rows[rows < np.minimum(starts + chunk, m_rows)]
        k = len(rows)  # the shares that still have a row (only the last one can run out)
        xi, gi = x[rows].astype(f64), gy[rows].astype(f64)
        inner = (a[rows, None] * xi + b[rows, None]).astype(f32)  # fused a x + b
        bw[:k] = r((bw[:k] + gi * inner).astype(f32))  # fused dgamma + dy (a x + b)
        bb[:k] = r(bb[:k] + gy[rows])
    # the shares in thread order, in float32 (cumsum: sequential), rounded by the caller's cast
    return np.cumsum(bw, axis=0, dtype=f32)[-1], np.cumsum(bb, axis=0, dtype=f32)[-1]


class RMSNorm(Function):
    """y = x * rstd * w over the last k dims, rstd = 1/sqrt(mean(x^2) + eps) (Zhang & Sennrich,
    2019).

    Backward (xhat = x rstd, gh = gy * w): dx = rstd * (gh - xhat * mean(gh * xhat)),
    dw = sum(gy xhat). Saves the input and rstd.
    """

    bfloat16_follows_input = True  # a bfloat16 input with float32 weights: bfloat16 out

    __slots__ = ("k", "eps", "has_w", "has_b", "rstd")
    save_inputs = True
    saved_slots = ("rstd",)

    def forward(self, x, *affine):
        xp = backend.get_array_module(x)
        if self.k == 1 and not (self.has_w or self.has_b):
            k = backend.fused("rms_norm_forward", x)  # numba: the same bits, one pass per row
            out = None if k is None else k(x, x.dtype.type(self.eps))
            if out is not None:
                y, self.rstd = out
                return y
        elif self.k == 1 and self.has_w and not self.has_b:  # nn.RMSNorm's usual form
            k = backend.fused("rms_norm_forward_w", x, affine[0])
            out = None if k is None else k(x, affine[0], x.dtype.type(self.eps))
            if out is not None:
                y, self.rstd = out
                return y
        axes = tuple(range(x.ndim - self.k, x.ndim))
        rstd = 1 / xp.sqrt((x * x).mean(axis=axes, keepdims=True) + x.dtype.type(self.eps))
        self.rstd = rstd
        y = x * rstd
        if self.has_w:
            y *= affine[0]
        return y

    def backward(self, gy, ops):
        ins = self.inputs(ops)
        x = ins[0]
        axes = tuple(range(gy.ndim - self.k, gy.ndim))
        if ops.is_graph:
            rstd = ((x * x).mean(axis=axes, keepdims=True) + self.eps) ** -0.5
        else:
            rstd = self.rstd
            if self.k == 1 and not (self.has_w or self.has_b) and self.parents[0] is not None:
                k = backend.fused("rms_norm_backward", x, gy)
                gx = None if k is None else k(x, rstd, gy)
                if gx is not None:
                    return (gx,)
            elif (self.k == 1 and self.has_w and not self.has_b and rstd.shape[:-1] == x.shape[:-1]
                    and self.parents[1] is not None):  # fmt: skip
                k = backend.fused("rms_norm_backward_w", x, gy, ins[1])
                out = None if k is None else k(x, ins[1], rstd, gy, self.parents[0] is not None)
                if out is not None:
                    return out
        xhat = x * rstd
        gx = None
        if self.parents[0] is not None:
            gh = gy * ins[1] if self.has_w else gy
            gx = (gh - xhat * (gh * xhat).mean(axis=axes, keepdims=True)) * rstd
        grads = (gx,) + _affine_grads(self, gy, xhat, ops)
        return grads


def _channel_sums(a):
    """(N, C, L) float32 -> (C,) float32 sums in the order of PyTorch's float16/bfloat16 batch
    norm kernels (batch_norm_kernel.cpp, AVX2 width). L > 1: for each n, blocks of 16 values
    added as two vectors of 8 lanes into one float32 accumulator, the rest of each row into a
    scalar one, and at the end scalar + ((lane0 + lane1) + ... + lane7). L = 1 (its
    channels-last loop): the rows summed one after another within each thread's share of
    rows, then the shares in thread order. cumsum keeps each sum sequential (NumPy's sum
    would add pairwise)."""
    f32 = np.float32
    n, c, length = a.shape
    a = a.astype(f32, copy=False)
    if length == 1:
        rows = a[:, :, 0]  # (N, C)
        from .reduce import _num_threads  # noqa: PLC0415 - (reduce imports much of ops)

        threads = _num_threads() if n > _num_threads() else 1
        chunk = -(-n // threads)
        total = np.zeros(c, f32)
        for i in range(0, n, chunk):
            total = (total + np.cumsum(rows[i : i + chunk], axis=0, dtype=f32)[-1]).astype(f32)
        return total
    blocks = length // 16
    lanes = np.zeros(c, f32)
    if blocks:
        v = a[:, :, : blocks * 16].reshape(n, c, blocks, 2, 8).transpose(0, 2, 3, 1, 4)
        acc = np.cumsum(v.reshape(-1, c, 8), axis=0, dtype=f32)[-1]  # (C, 8)
        lanes = np.cumsum(acc, axis=1, dtype=f32)[:, -1]
    tail = a[:, :, blocks * 16 :]
    rest = np.zeros(c, f32)
    if tail.shape[2]:
        rest = np.cumsum(tail.transpose(0, 2, 1).reshape(-1, c), axis=0, dtype=f32)[-1]
    return (rest + lanes).astype(f32)


def _bn_kernel_ok(x, affine) -> bool:
    """BatchNorm's forward may take kernels/_cpu_bnpool.py: a C-contiguous NumPy float32 or
    float64 x of 2+ dimensions and no empty one, 1-D weight and bias of its dtype, kernels on."""
    if type(x) is not np.ndarray or x.dtype not in _KERNEL_DTYPES or x.ndim < 2 or not x.size:
        return False
    if not x.flags.c_contiguous:
        return False
    for a in affine:
        if type(a) is not np.ndarray or a.dtype != x.dtype or a.shape != (x.shape[1],):
            return False
    if not _MODULES:
        from ..kernels import cpu as _kcpu  # noqa: PLC0415 - kernels.cpu imports no numba

        _MODULES.append(_kcpu)
    return _MODULES[0].enabled()


def _bn_loops():
    """(kernels/_cpu_bnpool.py, conv_winograd.split_run), imported once (numba), after
    `_bn_kernel_ok` found the kernels on. Kept here: an import statement per call costs ~0.5
    us, and a BatchNorm step made four (ops/conv.py's pools keep theirs the same way)."""
    if len(_MODULES) < 3:
        from ..kernels import _cpu_bnpool  # noqa: PLC0415 - numba, on first use
        from .conv_winograd import split_run  # noqa: PLC0415

        _MODULES[1:] = [_cpu_bnpool, split_run]
    return _MODULES[1], _MODULES[2]


_MODULES: list = []  # [kernels.cpu, kernels._cpu_bnpool, conv_winograd.split_run], on first use

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class BatchNorm(Function):
    """Training-mode batch norm of x (N, C, *): per channel over the batch and spatial dims.

    y = (x - mean_c) * rstd_c * w_c + b_c, rstd = 1/sqrt(var + eps) (biased variance). The
    running statistics (if given) are updated in place during forward, as PyTorch does:
    running = (1 - momentum) running + momentum * batch statistic (unbiased variance).

    Backward (xhat = (x - mean) rstd, gh = gy * w, means per channel over n = N * prod(*)):
        dx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)),  dw = sum(gy xhat),  db = sum(gy).
    Works on the (N, C, L) view with einsum reductions (no (N, C, L) temporary for a sum).
    Saves xhat and rstd; the input too, for the create_graph path.

    NumPy float32/float64 inputs of 2 or more dimensions, C-contiguous, with the numba kernels
    on, take kernels/_cpu_bnpool.py's per-channel loops instead (one read for the sums, one
    for the output; the sums in float64, as PyTorch's CPU kernel): forward keeps mean and
    rstd only, backward remakes xhat from the saved input. With two BLAS threads on two cores
    the channels are split in two halves run at once (conv_winograd.split_run), with the bits
    of one thread (each channel's values computed by the same loop either way). A 2-D x (N, C)
    (BatchNorm1d on feature rows) takes the row-by-row loops bn2d_forward / bn2d_backward on
    one thread: the bits of the per-channel loops on its (N, C, 1) view (until session 28 it
    took the einsum path below, float32 sums: 64x512 fwd+bwd 1.9x PyTorch's time).
    """

    bfloat16_follows_input = True  # a bfloat16 input with float32 weights: bfloat16 out

    __slots__ = (
        "eps",
        "has_w",
        "has_b",
        "running_mean",  # arrays updated in place by forward (or None)
        "running_var",
        "momentum",
        "xhat",
        "rstd",
        "mean",  # the batch mean, kept by the kernel path only (which keeps no xhat)
        "low",  # float16/bfloat16 with parameters of that dtype: PyTorch's roundings (below)
    )
    save_inputs = True
    saved_slots = ("xhat", "rstd", "mean")

    def forward(self, x, *affine):
        self.mean = None
        if getattr(self, "low", None) is not None and type(x) is np.ndarray and x.size:
            return self._low_forward(x, affine, self.low)
        if _bn_kernel_ok(x, affine):
            return self._kernel_forward(x, affine)
        xp = backend.get_array_module(x)
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, -1)  # (N, C, L)
        cnt = x3.shape[0] * x3.shape[2]
        inv = x.dtype.type(1.0 / cnt)
        mean = _chansum(xp, x3) * inv  # (C,)
        xc = x3 - mean[:, None]  # (N, C, L), fresh
        var = _chansum(xp, xc, xc) * inv  # (C,) biased
        with np.errstate(divide="ignore"):
            rstd = 1 / xp.sqrt(var + x.dtype.type(self.eps))
        if self.eps == 0.0:  # PyTorch's InvStd: 1 / std is 0 for a constant channel
            rstd = xp.where(var == 0, rstd.dtype.type(0), rstd)
        xc *= rstd[:, None]  # xc is now xhat
        self.xhat, self.rstd = xc, rstd
        self._running_update(mean, var, cnt)
        y = xc * affine[0][:, None] if self.has_w else xc.copy()  # never hand out xhat
        if self.has_b:
            y += affine[-1][:, None]
        return y.reshape(x.shape)

    def _running_update(self, mean, var, cnt: int) -> None:
        """running = (1 - momentum) running + momentum * batch statistic (unbiased var)."""
        m = self.momentum
        if self.running_mean is not None:
            rm = self.running_mean
            rm *= 1 - m
            rm += (m * mean).astype(rm.dtype, copy=False)
        if self.running_var is not None:
            rv = self.running_var
            rv *= 1 - m
            rv += (m * cnt / max(cnt - 1, 1) * var).astype(rv.dtype, copy=False)

    def _low_forward(self, x, affine, low):
        """float16/bfloat16 training (x: float32 holding the low values; weight, bias and the
        running statistics of dtype `low`), as PyTorch's CPU kernel (batch_norm_kernel.cpp):
        float32 sums in its order (_channel_sums), the saved mean and 1/std rounded to `low`,
        y = x alpha + beta with alpha = invstd w, beta = b - mean alpha (one fused multiply-add
        per element), the running statistics updated with its roundings. bfloat16 holds the
        variance sum and var / n in bfloat16 too (c10::BFloat16 arithmetic); float16 keeps them
        in float32 (what torch 2.13 gives, found by probing). The saved statistics are what
        backward reads (`_low_backward`)."""
        f32 = np.float32

        def r(a):
            return np.asarray(a, f32).astype(low).astype(f32)

        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, -1)  # (N, C, L)
        cnt = x3.shape[0] * x3.shape[2]
        mean = (_channel_sums(x3) / f32(cnt)).astype(f32)  # (C,) float32, unrounded
        xc = x3 - mean[:, None]
        var_sum = _channel_sums(xc * xc)
        is_bf16 = low != np.float16
        mean_h = r(mean)
        if is_bf16:
            var_sum = r(var_sum)
            var_n = r(var_sum / r(cnt))  # Half/BFloat16 / int64: the count rounded too
        else:
            var_n = (var_sum / f32(cnt)).astype(f32)
        with np.errstate(divide="ignore"):
            invstd = r(1 / np.sqrt(var_n.astype(np.float64) + self.eps))  # InvStd in double
        if self.eps == 0.0:  # InvStd's 0 for a constant channel without eps
            invstd = np.where(var_n == 0, f32(0), invstd)
        w = affine[0] if self.has_w else np.ones(c, f32)
        b = affine[-1] if self.has_b else np.zeros(c, f32)
        alpha = (invstd * w).astype(f32)
        beta = (b - mean_h * alpha).astype(f32)
        # the vector loop's x * alpha + beta is one fused multiply-add (float64 holds the
        # product of a 11-bit and a 24-bit significand exactly)
        y = (x3.astype(np.float64) * alpha[:, None] + beta[:, None]).astype(f32)
        self.mean, self.rstd, self.xhat = mean_h, invstd, None
        m = self.momentum
        rm, rv = self.running_mean, self.running_var
        if is_bf16:  # c10::BFloat16 arithmetic: every step rounded
            mh = r(m)
            if rm is not None:
                rm[...] = (r(mh * mean_h) + r(r(1 - mh) * rm.astype(f32))).astype(rm.dtype)
            if rv is not None:
                unbiased = r(var_sum / r(cnt - 1))
                rv[...] = ((mh * unbiased).astype(f32) + r(r(1 - mh) * rv.astype(f32))).astype(
                    rv.dtype)
        else:
            mf = f32(m)
            if rm is not None:
                rm[...] = ((mf * mean).astype(f32) + ((1 - mf) * rm.astype(f32))).astype(rm.dtype)
            if rv is not None:
                unbiased = (var_sum / f32(cnt - 1)).astype(f32)
                rv[...] = ((mf * unbiased).astype(f32) + ((1 - mf) * rv.astype(f32))).astype(
                    rv.dtype)
        return y.reshape(x.shape)

    def _low_backward(self, gy, ins):
        """The backward of `_low_forward` as PyTorch's kernel: float32 sums of gy and of
        (x - mean) gy in its order, k = dotp invstd^2 / n, dx = (gy - sum/n - (x - mean) k)
        invstd w, dw = dotp invstd, db = sum (each rounded to the low dtype by the casts)."""
        f32 = np.float32
        x = ins[0]
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, -1)
        cnt = x3.shape[0] * x3.shape[2]
        gy3 = gy.reshape(x3.shape)
        mean, invstd = self.mean, self.rstd
        xc = x3 - mean[:, None]
        total = _channel_sums(gy3)
        dotp = _channel_sums(xc * gy3)
        gx = None
        if self.parents[0] is not None:
            k = (dotp * invstd * invstd / f32(cnt)).astype(f32)
            gmean = (total / f32(cnt)).astype(f32)
            w = ins[1] if self.has_w else np.ones(c, f32)
            # (gy - gmean) - xc k as one fused multiply-add (the vector loop's contraction)
            t = (gy3 - gmean[:, None]).astype(np.float64) - xc.astype(np.float64) * k[:, None]
            g3 = t.astype(f32) * invstd[:, None] * w[:, None]
            gx = g3.reshape(x.shape)
        grads = (gx,)
        if self.has_w:
            grads += ((dotp * invstd).astype(f32) if self.parents[1] is not None else None,)
        if self.has_b:
            grads += (total if self.parents[-1] is not None else None,)
        return grads

    def _kernel_forward(self, x, affine):
        """forward by kernels/_cpu_bnpool.py's loops, channels split over two threads where
        conv_winograd.split_run allows."""
        k, split_run = _bn_loops()

        n, c = x.shape[0], x.shape[1]
        dt = x.dtype
        mean, rstd, var = np.empty(c, dt), np.empty(c, dt), np.empty(c, np.float64)
        w = affine[0] if self.has_w else rstd  # (a placeholder when absent: never read)
        b = affine[-1] if self.has_b else rstd
        eps = float(self.eps)
        if x.ndim == 2:  # (N, C): row by row, one thread
            y = np.empty(x.shape, dt)
            k.bn2d_forward(x, w, b, self.has_w, self.has_b, eps, y, mean, rstd, var)
            self.mean, self.rstd, self.xhat = mean, rstd, None
            self._running_update(mean, var, n)
            return y
        x3 = x.reshape(n, c, -1)
        y = np.empty(x3.shape, dt)

        def part(c0, c1):
            k.bn_forward(x3, w, b, self.has_w, self.has_b, eps, c0, c1, y, mean, rstd, var)

        split_run(c, x3.size, part)
        self.mean, self.rstd, self.xhat = mean, rstd, None
        self._running_update(mean, var, x3.shape[0] * x3.shape[2])
        return y.reshape(x.shape)

    def _kernel_backward(self, gy, ins):
        """backward by kernels/_cpu_bnpool.py's loops (xhat remade from the saved input)."""
        k, split_run = _bn_loops()

        x = ins[0]
        n, c = x.shape[0], x.shape[1]
        need_x = self.parents[0] is not None
        if x.ndim == 2:  # (N, C): row by row, one thread (see _kernel_forward)
            w = ins[1] if self.has_w else self.rstd
            gy = np.ascontiguousarray(gy, dtype=x.dtype)
            return self._kernel_backward_2d(k, x, gy, w, need_x)
        x3 = x.reshape(n, c, -1)
        gy3 = np.ascontiguousarray(gy, dtype=x.dtype).reshape(x3.shape)
        # gx made in x's shape (an array owning its memory: the engine keeps it as a leaf's
        # .grad without a copy); the kernel writes its (N, C, L) view
        gx = np.empty(x.shape, x.dtype) if need_x else None
        g3 = gx.reshape(x3.shape) if need_x else gy3  # (gy3: never written)
        sums = np.empty((4, c), x.dtype)
        w = ins[1] if self.has_w else self.rstd
        mean, rstd, has_w = self.mean, self.rstd, self.has_w

        def part(c0, c1):
            k.bn_backward(x3, gy3, mean, rstd, w, has_w, need_x, c0, c1, g3, sums)

        split_run(c, x3.size, part)
        return self._kernel_grads(gx, sums)

    def _kernel_backward_2d(self, k, x, gy, w, need_x):
        """bn2d_backward's gradients for x (N, C) and a C-contiguous gy of its shape."""
        gx = np.empty(x.shape, x.dtype) if need_x else None
        sums = np.empty((4, x.shape[1]), x.dtype)
        k.bn2d_backward(x, gy, self.mean, self.rstd, w, self.has_w, need_x,
                        gx if need_x else gy, sums)  # fmt: skip
        return self._kernel_grads(gx, sums)

    def _kernel_grads(self, gx, sums):
        """(gx, gw, gb) from the kernels' sums (4, C): gw = sum(gy xhat), gb = sum(gy)."""
        grads = (gx,)
        if self.has_w:
            grads += (sums[1].copy() if self.parents[1] is not None else None,)
        if self.has_b:
            grads += (sums[0].copy() if self.parents[-1] is not None else None,)
        return grads

    def backward(self, gy, ops):
        if ops.is_graph:
            return self._graph_backward(gy, ops)
        xp = backend.get_array_module(gy)
        ins = self.inputs(ops)
        if getattr(self, "low", None) is not None and self.mean is not None:
            return self._low_backward(gy, ins)
        if self.mean is not None:
            return self._kernel_backward(gy, ins)
        xhat, rstd = self.xhat, self.rstd
        n, c, length = xhat.shape
        gy3 = gy.reshape(n, c, length)
        gx = gw = gb = None
        need_w = self.has_w and self.parents[1] is not None
        need_b = self.has_b and self.parents[-1] is not None
        gyx = _chansum(xp, gy3, xhat) if (need_w or self.parents[0] is not None) else None
        gys = _chansum(xp, gy3) if (need_b or self.parents[0] is not None) else None
        if self.parents[0] is not None:
            inv = gy.dtype.type(1.0 / (n * length))
            w = ins[1] if self.has_w else None
            # gh = gy * w: its per-channel means are w times those of gy (w is per channel).
            scale = rstd if w is None else rstd * w  # (C,)
            m1 = gys * inv  # mean(gy)
            m2 = gyx * inv  # mean(gy xhat)
            # gx in gy's shape, computed through its (N, C, L) view: an array that owns its
            # memory, which the engine keeps as a leaf's .grad without copying (it copies views)
            gx = xp.empty(gy.shape, np.result_type(gy3.dtype, m1.dtype))
            g3 = gx.reshape(n, c, length)
            xp.subtract(gy3, m1[:, None], out=g3)
            g3 -= xhat * m2[:, None]
            g3 *= scale[:, None]
        if need_w:
            gw = gyx
        if need_b:
            gb = gys
        return (gx,) + ((gw,) if self.has_w else ()) + ((gb,) if self.has_b else ())

    def _graph_backward(self, gy, ops):
        """Differentiable form: the batch statistics rebuilt from x with recorded ops."""
        ins = self.inputs(ops)
        x = ins[0]
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xc = x - x.mean(axis=axes, keepdims=True)
        var = (xc * xc).mean(axis=axes, keepdims=True)
        if self.eps == 0.0 and not self.rstd.all():
            # the channels forward gave PyTorch's InvStd 0 (constant, eps 0): rstd 0 there,
            # through a where whose other branch reads 1 (var ** -0.5 at 0 would make the
            # masked branch's gradient 0 * inf = nan)
            zero = self.rstd.reshape(bshape) == 0
            rstd = ops.where(zero, 0.0, ops.where(zero, 1.0, var) ** -0.5)
        else:
            rstd = (var + self.eps) ** -0.5
        xhat = xc * rstd
        gx = gw = gb = None
        if self.parents[0] is not None:
            gh = gy * ins[1].reshape(bshape) if self.has_w else gy
            m1 = gh.mean(axis=axes, keepdims=True)
            m2 = (gh * xhat).mean(axis=axes, keepdims=True)
            gx = (gh - m1 - xhat * m2) * rstd
        if self.has_w and self.parents[1] is not None:
            gw = (gy * xhat).sum(axis=axes)
        if self.has_b and self.parents[-1] is not None:
            gb = gy.sum(axis=axes)
        return (gx,) + ((gw,) if self.has_w else ()) + ((gb,) if self.has_b else ())
