"""Fused CPU kernels (numba): one pass over memory where NumPy makes many.

NumPy evaluates an expression one operation at a time, each a full pass over memory with a
fresh temporary. GELU's exact form 0.5 x (1 + erf(x / sqrt 2)) takes about twenty such passes
in float32 (NumPy has no erf; `backend.erf` runs the C library's through numba), and its
derivative as many again. A numba kernel evaluates the whole expression per element in
registers, in ONE pass, and LLVM vectorises it: on the baby-gpt step GELU's forward and
backward drop from ~13 ms to well under 1 ms per layer each (393k values), from 29% of the
step's CPU time to a few percent.

numba is a core dependency (it was the `fast` extra; README says why). Ops never import this
module; they ask `backend.fused(name, *arrays)`, which returns these functions for NumPy arrays
of float32/float64 when numba is installed and the kernels are enabled, and None otherwise, so
the pure-NumPy path runs. `DESCENT_KERNELS=numpy` (environment, see descent.settings) or
`set_enabled(False)` turns them off; the two paths agree to float32 rounding
(tests/test_kernels_cpu.py compares them).

The names and signatures are those of `descent.kernels.cuda`'s table (`KERNELS`), so an op
wired for the GPU kernels gets the CPU ones for free. Each kernel compiles lazily on first use
and is cached on disk (`cache=True`): later processes load machine code instead of compiling.

Kernels run on one thread: a vectorised pass over a few hundred thousand values takes ~0.1 ms,
less than waking a thread pool costs, and on a shared 2-core machine a parallel (prange) loop
waits for its slowest thread (measured under load: 16 ms with prange vs 1.9 ms serial for the
same GELU).

Kernels: ReLU's backward (float32 and float64), an unweighted RMS norm over the last axis
forward/backward (float32, the NumPy path's bits), GELU forward/backward (float32: `_cpu_fast`'s
loops, within 6 ulp of float64 (derivative 5), shared with descent.compile's replay; float64: libm)
and softmax / log-softmax forward and backward over the last axis with attention's causal mask
(float32; the masked half of the score matrix is never exponentiated), used by
scaled_dot_product_attention; the eager steps of SGD, RMSprop, Adagrad, Adamax, NAdam, RAdam,
Adadelta, ASGD, Lion and Adam with amsgrad (`_cpu_optim`, float32/float64, bitwise the NumPy
sequences of optim/*.py). The loops live in `_cpu_jit` (numba imported on the first kernel
call, not with descent).
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

from .. import settings

_HAVE_NUMBA = importlib.util.find_spec("numba") is not None  # no import: numba loads lazily
# DESCENT_KERNELS: 'auto', 'numba' or 'numpy', checked when descent was imported (including
# 'numba' without numba installed), so nothing here can fail inside the first op.
_enabled = _HAVE_NUMBA and settings.KERNELS != "numpy"
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def available() -> bool:
    """True when numba is installed (the kernels can be used)."""
    return _HAVE_NUMBA


def enabled() -> bool:
    """True when ops use these kernels for NumPy arrays."""
    return _enabled


def set_enabled(flag: bool) -> bool:
    """Turn the CPU kernels on or off (tests, comparisons); returns the previous setting.

    Raises:
        ImportError: turning them on without numba installed.
    """
    global _enabled
    if flag and not _HAVE_NUMBA:
        raise ImportError("kernels.cpu.set_enabled(True): numba is not installed")
    previous, _enabled = _enabled, bool(flag)
    return previous


def kernel(name: str, arrays):
    """The kernel `name` for these NumPy arrays, or None (disabled, dtype, unknown name).

    Every floating array must share the first one's dtype, float32 or float64 (mixed dtypes
    take the generic path, which promotes).
    """
    if not _enabled:
        return None
    fn = KERNELS.get(name)
    if fn is None:
        return None
    dt = arrays[0].dtype
    if dt not in _DTYPES or (dt != np.float32 and name in _FLOAT32_ONLY):
        return None
    for a in arrays[1:]:
        if a is not None and a.dtype.kind == "f" and a.dtype != dt:
            return None
    return fn


# ---------------------------------------------------------------------------------------------
# Wrappers: shapes, dtypes and buffers in Python, the loops in _cpu_jit (imported on first use,
# which imports numba; its compiled code is cached on disk).

_jit = None


def _k():
    global _jit
    if _jit is None:
        from . import _cpu_jit  # imports numba, so only when a kernel runs

        _jit = _cpu_jit
    return _jit


def _flat(a):
    """A contiguous 1-D view (or copy) of `a`."""
    return np.ascontiguousarray(a).reshape(-1)


_fast = None


def _f32():
    """`_cpu_fast`: the float32 GELU loops (all-float32, a few ulp; shared with the replay)."""
    global _fast
    if _fast is None:
        from . import _cpu_fast

        _fast = _cpu_fast
    return _fast


def gelu_forward(x):
    """y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)), one pass (float32 vectorised, float64 libm)."""
    xf = _flat(x)
    out = np.empty_like(xf)
    if xf.size:
        (_f32().gelu_fwd32 if xf.dtype == np.float32 else _k().gelu_fwd64)(xf, out)
    return out.reshape(x.shape)


def gelu_forward_d(x):
    """(y, d): y = GELU(x) and its derivative d = Phi(x) + x phi(x) from one evaluation
    (float32), so that the backward is gy * d, the bits of `gelu_backward` (eager's GELU node)."""
    xf = _flat(x)
    out, d = np.empty_like(xf), np.empty_like(xf)
    if xf.size:
        _f32().gelu_fwd_d32(xf, out, d)
    return out.reshape(x.shape), d.reshape(x.shape)


def gelu_backward(x, gy):
    """gx = gy (Phi(x) + x phi(x)), one pass (x is the saved input)."""
    xf = _flat(x)
    gf = _flat(np.broadcast_to(gy, x.shape).astype(x.dtype, copy=False))
    out = np.empty_like(xf)
    if xf.size:
        (_f32().gelu_bwd32 if xf.dtype == np.float32 else _k().gelu_bwd64)(xf, gf, out)
    return out.reshape(x.shape)


def gated_gelu_tanh_forward(a, b):
    """h = gelu_tanh(a) * b in one pass (float32; the backward needs only a and b)."""
    af, bf = _flat(a), _flat(b)
    h = np.empty_like(af)
    if af.size:
        _f32().gg_tanh_fwd32(af, bf, h)
    return h.reshape(a.shape)


def gated_gelu_tanh_backward(a, b, gh):
    """(ga, gb) of h = gelu_tanh(a) * b in one pass (float32), recomputing the tanh from a."""
    af, bf = _flat(a), _flat(b)
    gf = _flat(np.broadcast_to(gh, a.shape).astype(a.dtype, copy=False))
    ga, gb = np.empty_like(af), np.empty_like(af)
    if af.size:
        _f32().gg_tanh_bwd32(af, bf, gf, ga, gb)
    return ga.reshape(a.shape), gb.reshape(a.shape)


def relu_backward(y, gy):
    """where(y <= 0, 0, gy) in one pass (y ReLU's output): gy where y > 0 or NaN, else +0."""
    if gy.shape != y.shape or gy.dtype != y.dtype:  # broadcasting or mixed dtypes: NumPy's
        return np.where(y <= 0, 0, gy)
    out = np.empty(y.shape, y.dtype)
    if y.size:
        _k().relu_bwd(_flat(y), _flat(gy), out.reshape(-1))
    return out


def _as4(a):
    return a.reshape((1,) * (4 - a.ndim) + a.shape)


def _row_order(x4):
    """The leading axes of a 4-D view by decreasing stride: rows visited in memory order (a
    head split's (B, H, T, D) view is (B, T, H, D) in memory)."""
    lead = sorted(range(3), key=lambda i: -x4.strides[i])
    return (*lead, 3)


def _rows_inner(a) -> bool:
    """The last axis is contiguous and innermost in memory, so NumPy's reduction over it runs
    its pairwise sum along each row (what the kernels reproduce)."""
    row = a.shape[-1] * a.itemsize
    return a.strides[-1] == a.itemsize and all(
        st >= row for st, n in zip(a.strides[:-1], a.shape[:-1]) if n > 1
    )


def rms_norm_forward(x, eps: float):
    """(y, rstd) of an unweighted RMS norm over the last axis (float32, rows <= 128 values,
    x.ndim <= 4): the NumPy path's bits (`_cpu_jit.rms_norm_fwd32`); None when not applicable."""
    if x.ndim == 0 or x.ndim > 4 or x.shape[-1] > 128 or x.size == 0 or not _rows_inner(x):
        return None
    y = np.empty_like(x)  # NumPy's x * rstd keeps x's memory order
    rstd = np.empty(x.shape[:-1] + (1,), np.float32)
    x4 = _as4(x)
    order = _row_order(x4)
    _k().rms_norm_fwd32(x4.transpose(order), _as4(y).transpose(order),
                        _as4(rstd).transpose(order), np.float32(eps))  # fmt: skip
    return y, rstd


def rms_norm_backward(x, rstd, gy):
    """gx of `rms_norm_forward` (the NumPy path's bits); None when not applicable."""
    if (x.ndim == 0 or x.ndim > 4 or x.shape[-1] > 128 or gy.shape != x.shape
            or gy.dtype != x.dtype or rstd.dtype != np.float32
            or not (_rows_inner(x) and _rows_inner(gy))):  # fmt: skip
        return None
    gx = np.empty_like(gy)
    x4 = _as4(x)
    order = _row_order(x4)
    _k().rms_norm_bwd32(x4.transpose(order), _as4(rstd).transpose(order),
                        _as4(gy).transpose(order), _as4(gx).transpose(order))  # fmt: skip
    return gx


def rms_norm_forward_w(x, w, eps: float):
    """(y, rstd) of a weighted RMS norm over the last axis (float32, C-contiguous x, rows of at
    most 128 values, w (n,)): the NumPy path's bits (`_cpu_jit.rms_norm_fwd_w32`); None when
    not applicable."""
    n = x.shape[-1] if x.ndim else 0
    if (x.ndim == 0 or n > 128 or x.size == 0 or not x.flags.c_contiguous or w.shape != (n,)
            or w.dtype != np.float32):  # fmt: skip
        return None
    x2 = x.reshape(-1, n)
    y = np.empty_like(x2)
    rstd = np.empty((x2.shape[0], 1), np.float32)
    _k().rms_norm_fwd_w32(x2, np.ascontiguousarray(w), y, rstd, np.float32(eps))
    return y.reshape(x.shape), rstd.reshape(x.shape[:-1] + (1,))


def rms_norm_backward_w(x, w, rstd, gy, want_gx: bool = True):
    """(gx or None, gw) of `rms_norm_forward_w` (the NumPy path's bits); None when not
    applicable (layouts other than C-contiguous, other dtypes)."""
    n = x.shape[-1] if x.ndim else 0
    if (x.ndim == 0 or n > 128 or gy.shape != x.shape or gy.dtype != x.dtype
            or rstd.dtype != np.float32 or not (x.flags.c_contiguous and gy.flags.c_contiguous
                                                and rstd.flags.c_contiguous)):  # fmt: skip
        return None
    x2, g2 = x.reshape(-1, n), gy.reshape(-1, n)
    gx = np.empty_like(x2) if want_gx else x2[:0]
    gw = np.zeros(n, np.float32)
    _k().rms_norm_bwd_w32(x2, np.ascontiguousarray(w), rstd.reshape(-1, 1), g2, gx, gw, want_gx)
    return (gx.reshape(x.shape) if want_gx else None), gw


def rope(x, cos, sin):
    """Rotary embedding (half-split pairs) of x (..., T, D) with cos/sin (T, D/2), one pass
    (float32 or float64, up to 4-D): the NumPy path's bits and memory layout; None otherwise."""
    if (x.ndim < 2 or x.ndim > 4 or x.shape[-1] % 2 or cos.shape != (x.shape[-2], x.shape[-1] // 2)
            or sin.shape != cos.shape or cos.dtype != x.dtype or sin.dtype != x.dtype):  # fmt: skip
        return None
    y = np.empty_like(x)  # NumPy's empty_like: x's memory order, as the NumPy path
    if x.size:
        _k().rope4(_as4(x), cos, sin, _as4(y))
    return y


def _rows(a):
    """(..., S) -> a contiguous (R, S) view (a copy only if `a` is not contiguous)."""
    a = np.ascontiguousarray(a)
    if not a.ndim:
        return a.reshape(1, 1)
    # (not reshape(-1, S): with S = 0 the -1 is ambiguous and NumPy raises; attention over an
    # empty key sequence reached it)
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def softmax_forward(
    x, *, scale: float = 1.0, causal: bool = False, log: bool = False, safe: bool = False, out=None
):
    """softmax(scale * x) (or log-softmax) over the last axis; `out=x` works in place.

    causal: x is (..., L, S) attention scores; key j > query i is masked (probability 0, or
    -inf for log), and never exponentiated. safe (attention): a row of -inf scores gives 0, as
    PyTorch's _safe_softmax (F.softmax gives nan there, as PyTorch's). float32 only.
    """
    n_q = x.shape[-2] if (causal and x.ndim >= 2) else 1
    if out is not None and not out.flags.c_contiguous:
        np.copyto(out, softmax_forward(x, scale=scale, causal=causal, log=log, safe=safe))
        return out
    if out is None:
        out = np.array(x, dtype=x.dtype, order="C")  # the kernel works in place
    elif out is not x:
        np.copyto(out, x)
    if out.size:
        y2 = out.reshape(-1, out.shape[-1]) if out.ndim else out.reshape(1, 1)
        _k().softmax_fwd32(y2, np.float32(scale), n_q, bool(causal), bool(log), bool(safe))
    return out


def softmax_backward(y, gy, *, scale: float = 1.0, log: bool = False, out=None):
    """Gradient of softmax_forward from its output y; `out=gy` works in place."""
    y2 = _rows(y)
    if y2.size:
        if out is gy and gy.shape == y.shape and gy.dtype == y.dtype and gy.flags.c_contiguous:
            _k().softmax_bwd32_inplace(y2, gy.reshape(y2.shape), np.float32(scale), bool(log))
            return gy
        if gy.shape != y.shape or gy.dtype != y.dtype:  # (np.broadcast_to: ~5 us of Python)
            gy = np.broadcast_to(gy, y.shape).astype(y.dtype, copy=False)
        g2 = _rows(gy)
        # allocated in y's shape and filled through a (R, S) view, so the result owns its
        # memory: the engine copies a leaf's gradient that is a view (backend.owns_data)
        direct = out is not None and out.flags.c_contiguous
        gx = out if direct else np.empty(y.shape, y.dtype)
        _k().softmax_bwd32(y2, g2, gx.reshape(y2.shape), np.float32(scale), bool(log))
        if out is not None and not direct:
            np.copyto(out, gx)
            return out
        return gx
    return np.empty_like(y) if out is None else out


def _vec(a, like):
    """A contiguous 1-D float32 view of an optional (D,) parameter; `like` when absent."""
    return like[0] if a is None else np.ascontiguousarray(a.reshape(-1), dtype=np.float32)


def layer_norm_forward(x2, w, b, eps: float, run=None):
    """y (M, D), mean (M,) float32, rstd (M,) float32; w/b (D,) or None, x2's dtype. `run`:
    `layer_norm_rows_forward`'s."""
    x2 = np.ascontiguousarray(x2)
    m_rows, _ = x2.shape
    y = np.empty_like(x2)
    mean = np.empty(m_rows, dtype=np.float32)
    rstd = np.empty(m_rows, dtype=np.float32)
    if x2.size:
        layer_norm_rows_forward(
            x2, _vec(w, x2), _vec(b, x2), y, mean, rstd, np.float32(eps),
            w is not None, b is not None, run,
        )  # fmt: skip
    return y, mean, rstd


def layer_norm_backward(x2, w, gy2, mean, rstd, *, need_x=True, need_wb=True, run=None):
    """(gx (M, D) or None, gw (D,) or None, gb (D,) or None) in x2's dtype. `run`:
    `layer_norm_rows_backward`'s."""
    x2 = np.ascontiguousarray(x2)
    gy2 = np.ascontiguousarray(gy2, dtype=x2.dtype)
    gx = np.empty_like(x2) if need_x else None
    gw = gb = None
    if x2.size:
        gw, gb = layer_norm_rows_backward(
            x2, _vec(w, x2), gy2, mean, rstd, gx, w is not None, bool(need_x), bool(need_wb), run
        )
    elif need_wb:
        gw, gb = np.zeros(x2.shape[1], np.float32), np.zeros(x2.shape[1], np.float32)
    return gx, gw, gb


# Layer norm's loops over rows, shared by eager (the wrappers above) and descent.compile's
# replay (compiler/replay_kernels.ln_plan), so both make the same calls. `run` (descent.halves'
# `run`, or the replay's threads.run_halves) runs two parts of the rows at once, the second on
# the split worker; None runs all rows here in one call. Each row of y, mean, rstd and gx goes
# through the same loop either way. gw and gb sum over the rows: in one pass, row after row,
# below LN_BLOCKED_MIN values (as before session 29; such calls never run in parts); from
# LN_BLOCKED_MIN values in LN_BLOCKS fixed blocks of ceil(M / LN_BLOCKS) rows, each added row
# after row from 0.0 into its own float32 accumulator, then the blocks' sums added left to
# right (7 more float32 roundings, a smaller error bound than one pass), so the bits are the
# same on one thread and on two, in eager and in the replay, wherever the parts split
# (docs/compile.md, session 29).

#: gw/gb's blocks of rows (the parts of a split call are whole blocks) from LN_BLOCKED_MIN
#: values (at most descent.halves' LN_MIN_VALUES: every call that may run in parts)
LN_BLOCKS = 8
LN_BLOCKED_MIN = 1 << 17


def layer_norm_caller_blocks(values: int) -> int:
    """The calling thread's share of a split call, in blocks: the worker starts its part ~14 us
    after the caller in the baby-gpt step (~17 us to wake, ~4 to take the GIL), so calls below
    2^19 values give the caller 5 of the 8 blocks (196,608 values after a two-thread product:
    forward 57.5 us whole, 55.4 at 4 blocks, 46.6 at 5; backward 91.4, 81.7, 66.5), larger
    ones 4 (786,432: forward 251.9 whole, 158.5 at 4, 171.7 at 5); docs/compile.md, session 29."""
    return 5 if values < 1 << 19 else 4


def layer_norm_rows_forward(x2, w, b, y, mean, rstd, eps, has_w, has_b, run=None):
    """`_cpu_jit.layer_norm_fwd32` over C-contiguous float32 (M, D) x2 into y, mean, rstd
    (w, b: (D,) float32; any (D,) float32 array where absent)."""
    k = _k().layer_norm_fwd32
    m = x2.shape[0]
    if run is None or m < LN_BLOCKS:
        k(x2, w, b, y, mean, rstd, eps, has_w, has_b, 0, m)
        return
    h = min(m, -(-m // LN_BLOCKS) * layer_norm_caller_blocks(x2.size))
    run(((0, h), (h, m)), lambda r0, r1: k(x2, w, b, y, mean, rstd, eps, has_w, has_b, r0, r1))


def layer_norm_rows_backward(x2, w, gy2, mean, rstd, gx, has_w, need_x, need_wb, run=None):
    """`_cpu_jit.layer_norm_bwd32` over C-contiguous float32 (M, D) x2 and gy2: gx's rows when
    need_x (gx: an (M, D) float32 array), and (gw, gb) as fresh (D,) float32 arrays when
    need_wb, else (None, None): the blocks' sums (above)."""
    jit = _k()
    m, d = x2.shape
    rows = -(-m // LN_BLOCKS)
    blocked = need_wb and x2.size >= LN_BLOCKED_MIN
    g = x2 if gx is None else gx.reshape(m, d)
    if blocked:
        aw, ab = np.zeros((LN_BLOCKS, d), np.float32), np.zeros((LN_BLOCKS, d), np.float32)
        k = jit.layer_norm_bwd32_blocks
        args = (x2, w, gy2, mean, rstd, g, aw, ab, has_w, need_x, need_wb)

        def part(r0, r1):
            k(*args, r0, r1, rows)
    else:  # one pass over all rows (as before session 29; in parts only without the sums)
        gw = np.zeros(d, np.float32) if need_wb else x2[0]
        gb = np.zeros(d, np.float32) if need_wb else x2[0]
        k = jit.layer_norm_bwd32
        if need_wb or run is None or m < LN_BLOCKS:  # (the kernel called directly: 1-4 us)
            k(x2, w, gy2, mean, rstd, g, gw, gb, has_w, need_x, need_wb, 0, m)
            return (gw, gb) if need_wb else (None, None)

        def part(r0, r1):
            k(x2, w, gy2, mean, rstd, g, gw, gb, has_w, need_x, need_wb, r0, r1)

    if run is None or m < LN_BLOCKS:
        part(0, m)
    else:
        h = min(m, rows * layer_norm_caller_blocks(x2.size))
        run(((0, h), (h, m)), part)
    if not need_wb:
        return None, None
    if blocked:
        gw, gb = np.empty(d, np.float32), np.empty(d, np.float32)
        jit.layer_norm_block_sums(aw, ab, gw, gb)
    return gw, gb


def adam_update(p, g, m, v, *, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step):
    """One Adam (AdamW when `decoupled`) step on flat float32 arrays p, m, v in place.

    The NumPy path's operations in its order with its float32 roundings (bitwise equal).
    """
    if p.size:
        _k().adam32(p, g, m, v, *adam_args(lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                                           weight_decay=weight_decay, decoupled=decoupled,
                                           maximize=maximize, step=step))  # fmt: skip


def adam_args(*, lr, beta1, beta2, eps, weight_decay, decoupled, maximize, step) -> tuple:
    """The arguments of `_cpu_jit.adam32` after (p, g, m, v) for these hyperparameters and step
    (every scalar rounded to float32 first, as the NumPy path's)."""
    f = np.float32
    w = 1 - beta1  # lerp weight
    lerp_small = abs(w) < 0.5
    wd_mode = 0 if weight_decay == 0 else (1 if decoupled else 2)
    step_size = lr / (1 - beta1**step)
    bc2 = (1 - beta2**step) ** 0.5
    alpha = -step_size
    return (bool(maximize), wd_mode, f(1 - lr * weight_decay), f(weight_decay),
            weight_decay == 1, lerp_small, f(w if lerp_small else 1 - w), f(beta2),
            f(1 - beta2), f(bc2), f(eps), f(alpha), alpha == 1)  # fmt: skip


_optim = None


def _ko():
    """`_cpu_optim`: the optimizers' one-pass loops (imported on first use: it imports numba)."""
    global _optim
    if _optim is None:
        from . import _cpu_optim

        _optim = _cpu_optim
    return _optim


def sgd_update(p, g, buf, *, lr, momentum, dampening, weight_decay, nesterov, maximize, first):
    """One SGD step on flat float32/float64 arrays p (and the momentum buffer buf, unused
    without momentum) in place: optim/sgd.py's NumPy sequence, bitwise. `first`: the buffer's
    first step (it starts at the gradient)."""
    dt = p.dtype.type  # NumPy's weak Python scalars: rounded to the arrays' dtype
    damp, alpha = 1 - dampening, -lr
    if p.size:
        _ko().sgd(
            p, g, p if buf is None else buf, bool(maximize), weight_decay != 0,
            dt(weight_decay), weight_decay == 1, momentum != 0, bool(first), dt(momentum),
            dt(damp), damp == 1, bool(nesterov), momentum == 1, dt(alpha), alpha == 1,
        )  # fmt: skip


def rmsprop_update(p, g, square_avg, grad_avg, buf, *, lr, alpha, eps, weight_decay, momentum,
                   centered, maximize):  # fmt: skip
    """One RMSprop step in place (grad_avg when centered, buf when momentum > 0; else None):
    optim/rmsprop.py's NumPy sequence, bitwise."""
    dt = p.dtype.type
    w = 1 - alpha  # lerp weight of the centered average
    lerp_small = abs(w) < 0.5
    if p.size and not centered and momentum <= 0:  # PyTorch's defaults: the vectorised loop
        _ko().rmsprop(
            p, g, square_avg, bool(maximize), weight_decay != 0, dt(weight_decay),
            weight_decay == 1, dt(alpha), dt(1 - alpha), dt(eps), dt(-lr), -lr == 1,
        )  # fmt: skip
    elif p.size:
        _ko().rmsprop_full(
            p, g, square_avg, p if grad_avg is None else grad_avg, p if buf is None else buf,
            bool(maximize), weight_decay != 0, dt(weight_decay), weight_decay == 1, dt(alpha),
            dt(1 - alpha), bool(centered), lerp_small, dt(w if lerp_small else 1 - w), dt(eps),
            momentum > 0, dt(momentum), dt(-lr), -lr == 1,
        )  # fmt: skip


def adagrad_update(p, g, state_sum, *, clr, eps, weight_decay, maximize):
    """One Adagrad step in place at the decayed rate clr: optim/adagrad.py's sequence, bitwise."""
    dt = p.dtype.type
    if p.size:
        _ko().adagrad(
            p, g, state_sum, bool(maximize), weight_decay != 0, dt(weight_decay),
            weight_decay == 1, dt(eps), dt(-clr), -clr == 1,
        )  # fmt: skip


def _lerp_args(weight, dt):
    """(lerp_small, the factor) of `optim._lerp(start, end, weight)`'s two forms."""
    small = abs(weight) < 0.5
    return small, dt(weight if small else 1 - weight)


def _decay_args(lr, weight_decay, decoupled, dt):
    """(wd_mode, decay, wd, wd_one): 0 none, 1 decoupled p *= 1 - lr wd, 2 g += wd p."""
    mode = 0 if weight_decay == 0 else (1 if decoupled else 2)
    return mode, dt(1 - lr * weight_decay), dt(weight_decay), weight_decay == 1


def adamax_update(p, g, exp_avg, exp_inf, *, lr, beta1, beta2, eps, weight_decay, maximize,
                  step):  # fmt: skip
    """One Adamax step in place: optim/adamax.py's NumPy sequence, bitwise."""
    dt = p.dtype.type
    clr = lr / (1 - beta1**step)
    if p.size:
        _ko().adamax(
            p, g, exp_avg, exp_inf, bool(maximize), weight_decay != 0, dt(weight_decay),
            weight_decay == 1, *_lerp_args(1 - beta1, dt), dt(beta2), dt(eps), dt(-clr),
            -clr == 1,
        )  # fmt: skip


def nadam_update(p, g, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled,
                 maximize, step, c1, c2):  # fmt: skip
    """One NAdam step in place, its two step sizes c1 (gradient) and c2 (momentum) computed by
    the caller (they depend on the running product of μ): optim/nadam.py's sequence, bitwise."""
    dt = p.dtype.type
    if p.size:
        _ko().nadam(
            p, g, exp_avg, exp_avg_sq, bool(maximize),
            *_decay_args(lr, weight_decay, decoupled, dt), *_lerp_args(1 - beta1, dt),
            dt(beta2), dt(1 - beta2), dt(1 - beta2**step), dt(eps), dt(c1), c1 == 1, dt(c2),
            c2 == 1,
        )  # fmt: skip


def radam_update(p, g, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled,
                 maximize, step, rect):  # fmt: skip
    """One RAdam step in place; rect: the rectification factor, or None when ρ_t <= 5 (the
    unadapted step): optim/radam.py's sequence, bitwise."""
    dt = p.dtype.type
    if p.size:
        _ko().radam(
            p, g, exp_avg, exp_avg_sq, bool(maximize),
            *_decay_args(lr, weight_decay, decoupled, dt), *_lerp_args(1 - beta1, dt),
            dt(beta2), dt(1 - beta2), dt(1 - beta1**step), dt(lr), rect is not None,
            dt((1 - beta2**step) ** 0.5), dt(eps), dt(0.0 if rect is None else rect),
        )  # fmt: skip


def adadelta_update(p, g, square_avg, acc_delta, *, lr, rho, eps, weight_decay, maximize):
    """One Adadelta step in place: optim/adadelta.py's NumPy sequence, bitwise."""
    dt = p.dtype.type
    if p.size:
        _ko().adadelta(
            p, g, square_avg, acc_delta, bool(maximize), weight_decay != 0, dt(weight_decay),
            weight_decay == 1, dt(rho), dt(1 - rho), dt(eps), dt(-lr), -lr == 1,
        )  # fmt: skip


def asgd_update(p, g, ax, *, eta, mu, lambd, weight_decay, maximize):
    """One ASGD step in place at this step's η and μ (the caller keeps them): optim/asgd.py's
    NumPy sequence, bitwise."""
    dt = p.dtype.type
    if p.size:
        _ko().asgd(
            p, g, ax, bool(maximize), weight_decay != 0, dt(weight_decay), weight_decay == 1,
            dt(1 - lambd * eta), dt(-eta), -eta == 1, dt(mu), mu == 1,
        )  # fmt: skip


def lion_update(p, g, exp_avg, *, lr, beta1, beta2, weight_decay, maximize):
    """One Lion step in place: optim/lion.py's NumPy sequence, bitwise."""
    dt = p.dtype.type
    if p.size:
        _ko().lion(
            p, g, exp_avg, bool(maximize), weight_decay != 0, dt(1 - lr * weight_decay),
            dt(1 - beta1), *_lerp_args(1 - beta2, dt), dt(-lr), -lr == 1, dt(1), dt(0),
        )  # fmt: skip


def adam_amsgrad_update(p, g, m, v, vmax, *, lr, beta1, beta2, eps, weight_decay, decoupled,
                        maximize, step):  # fmt: skip
    """One Adam/AdamW step with amsgrad (vmax: state "max_exp_avg_sq") in place, float32 or
    float64: optim/adam.py's NumPy sequence, bitwise (`adam_update`'s scalars)."""
    dt = p.dtype.type
    step_size = lr / (1 - beta1**step)
    bc2 = (1 - beta2**step) ** 0.5
    if p.size:
        _ko().adam_amsgrad(
            p, g, m, v, vmax, bool(maximize), *_decay_args(lr, weight_decay, decoupled, dt),
            *_lerp_args(1 - beta1, dt), dt(beta2), dt(1 - beta2), dt(bc2), dt(eps),
            dt(-step_size), -step_size == 1,
        )  # fmt: skip


def _libm_loop(kernel_name):
    def run(x):
        """float64 in, float64 out, element by element through the C library."""
        xf = np.asarray(x, dtype=np.float64)  # not ascontiguousarray: it makes 0-d 1-d
        if not xf.flags.c_contiguous:
            xf = xf.copy()
        out = np.empty(xf.shape, np.float64)
        if xf.size:
            getattr(_k(), kernel_name)(xf.reshape(-1), out.reshape(-1))
        return out

    return run


erf_float64 = _libm_loop("erf64")
erfc_float64 = _libm_loop("erfc64")


def cross_entropy_forward(x, target, *, ignore_index: int = -100, smoothing: float = 0.0):
    """Per-row losses (M,) and row statistics (M, 2) = (max, log sum exp(x - max)) of float32
    logits x (M, C): `kernels.cuda.cross_entropy_forward`'s contract (the op's fused path)."""
    x = np.ascontiguousarray(x)
    n_rows = x.shape[0]
    tgt = np.ascontiguousarray(np.asarray(target).astype(np.int64, copy=False).reshape(-1))
    loss = np.empty(n_rows, np.float32)
    stats = np.empty((n_rows, 2), np.float32)
    if n_rows:
        _k().ce_fwd32(x, tgt, loss, stats, np.int64(ignore_index), np.float32(smoothing))
    return loss, stats


def cross_entropy_backward(x, target, stats, g, *, ignore_index: int = -100, smoothing=0.0):
    """gx (M, C) from the forward's statistics; g is one value (mean/sum) or (M,) ('none')."""
    x = np.ascontiguousarray(x)
    tgt = np.ascontiguousarray(np.asarray(target).astype(np.int64, copy=False).reshape(-1))
    g = np.ascontiguousarray(np.asarray(g, dtype=np.float32).reshape(-1))
    gx = np.empty_like(x)
    if x.size:
        _k().ce_bwd32(x, tgt, stats, g, np.int64(0 if g.size == 1 else 1), gx,
                      np.int64(ignore_index), np.float32(smoothing))  # fmt: skip
    return gx


KERNELS = {
    "erf_float64": erf_float64,
    "erfc_float64": erfc_float64,
    "cross_entropy_forward": cross_entropy_forward,
    "cross_entropy_backward": cross_entropy_backward,
    "relu_backward": relu_backward,
    "rms_norm_forward": rms_norm_forward,
    "rms_norm_backward": rms_norm_backward,
    "rms_norm_forward_w": rms_norm_forward_w,
    "rope": rope,
    "rms_norm_backward_w": rms_norm_backward_w,
    "gelu_forward": gelu_forward,
    "gelu_backward": gelu_backward,
    "gelu_forward_d": gelu_forward_d,
    "gated_gelu_tanh_forward": gated_gelu_tanh_forward,
    "gated_gelu_tanh_backward": gated_gelu_tanh_backward,
    "softmax_forward": softmax_forward,
    "softmax_backward": softmax_backward,
    "layer_norm_forward": layer_norm_forward,
    "layer_norm_backward": layer_norm_backward,
    "adam_update": adam_update,
    "sgd_update": sgd_update,
    "rmsprop_update": rmsprop_update,
    "adagrad_update": adagrad_update,
    "adamax_update": adamax_update,
    "nadam_update": nadam_update,
    "radam_update": radam_update,
    "adadelta_update": adadelta_update,
    "asgd_update": asgd_update,
    "lion_update": lion_update,
    "adam_amsgrad_update": adam_amsgrad_update,
}
# Kernels with a float32 loop only: float64 takes the NumPy path (exact, for gradient checks).
_FLOAT32_ONLY = {
    "gated_gelu_tanh_forward",
    "gated_gelu_tanh_backward",
    "cross_entropy_forward",
    "cross_entropy_backward",
    "gelu_forward_d",
    "rms_norm_forward",
    "rms_norm_backward",
    "rms_norm_forward_w",
    "rms_norm_backward_w",
    "softmax_forward",
    "softmax_backward",
    "layer_norm_forward",
    "layer_norm_backward",
    "adam_update",
}
