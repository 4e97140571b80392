"""The numba kernels rewritten so that LLVM vectorises them keep their bits (issue 17).

Each changed kernel is compared bitwise with a frozen copy of its previous loop (compiled here
with the same options, without the disk cache) or with the NumPy sequence it reproduces, on
random values and on the edge values (+-0, +-inf, NaN, subnormals, huge). No timing here:
benchmarks/compile.py and the commit messages carry the figures.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

pytest.importorskip("numba")

from descent.kernels import _cpu_jit  # noqa: E402 - after the numba check
from descent.kernels._cpu_jit import (  # noqa: E402
    _INF,
    _ONE,
    _ZERO,
    _exp32,
    _pairwise_sum32,
    _row_max32,
)

_F32 = np.float32
_EDGE = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, -3e-39,
                  1.1754944e-38, 3e38, -3e38, 1e20, -1e20, 1.0, -1.0], np.float32)  # fmt: skip


def _bits_equal(a, b) -> bool:
    """The same bits, zeros' signs included; a NaN matches any NaN (its sign and payload follow
    the operand order x86 happens to use, which neither NumPy nor PyTorch specifies)."""
    a, b = np.asarray(a), np.asarray(b)
    na, nb = np.isnan(a), np.isnan(b)
    as_int = np.int32 if a.dtype == np.float32 else np.int64
    return np.array_equal(na, nb) and np.array_equal(a[~na].view(as_int), b[~nb].view(as_int))


def _with_edges(rng, shape, scale=3.0):
    x = (rng.standard_normal(shape) * scale).astype(_F32).reshape(-1)
    k = min(x.size // 3, 4 * _EDGE.size)
    pos = rng.choice(x.size, k, replace=False)
    x[pos] = np.resize(_EDGE, k)
    return x.reshape(shape)


@functools.cache
def _njit_like(dispatcher, fn, signature=None):
    """fn compiled with dispatcher's options, without the disk cache (once per session); for
    the explicit `signature` (or tuple of them) only where given (numba then converts C arrays
    to its 'A' ones). Compiled as a function of the kernel's module, so that it gets descent's
    vector width too (kernels/_numba_width: 512-bit on AVX-512 hosts; a reduction's order under
    fastmath's reassoc follows the lane count)."""
    import types

    import numba

    fn = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__)
    fn.__module__ = dispatcher.py_func.__module__
    opts = {k: v for k, v in dispatcher.targetoptions.items() if k not in ("cache", "nopython")}
    if isinstance(signature, tuple):  # several (a list, which functools.cache cannot hash)
        signature = list(signature)
    return numba.njit(signature, **opts)(fn) if signature else numba.njit(**opts)(fn)


# -- softmax: the masked columns are filled by a slice (no scatter) -----------------------------


def _softmax_fwd32_frozen(x, scale, n_q, causal, log):
    """`_cpu_jit.softmax_fwd32` before 2026-12-05 (the masked fill was a loop)."""
    n_rows, n_cols = x.shape
    mx = np.empty(n_rows, np.float32)
    _row_max32(x, scale, n_q, causal, mx)
    for r in range(n_rows):
        lim = min(n_cols, r % n_q + 1) if causal else n_cols
        m = mx[r]
        s = _ZERO
        if log:
            for j in range(lim):
                z = scale * x[r, j] - m
                x[r, j] = z
                s += _exp32(z)
            ls = math.log(s)
            for j in range(lim):
                x[r, j] -= ls
            for j in range(lim, n_cols):
                x[r, j] = -_INF
        else:
            for j in range(lim):
                e = _exp32(scale * x[r, j] - m)
                x[r, j] = e
                s += e
            inv = _ONE / s
            for j in range(lim):
                x[r, j] *= inv
            for j in range(lim, n_cols):
                x[r, j] = _ZERO


@pytest.mark.parametrize("n_cols", [1, 7, 16, 33, 64, 100])
def test_softmax_forward_masked_fill_keeps_the_bits(n_cols):
    frozen = _njit_like(_cpu_jit.softmax_fwd32, _softmax_fwd32_frozen)
    rng = np.random.default_rng(n_cols)
    n_q = max(n_cols, 3)
    x = _with_edges(rng, (3 * n_q, n_cols))
    x[::3] = (rng.standard_normal(x[::3].shape) * 3).astype(_F32)  # rows without specials
    for causal in (False, True):
        for log in (False, True):
            want, got = x.copy(), x.copy()
            frozen(want, _F32(0.17), n_q, causal, log)
            _cpu_jit.softmax_fwd32(got, _F32(0.17), n_q, causal, log)
            if not causal:
                assert _bits_equal(got, want), (causal, log)
                continue
            # Since session 30 the causal rows add their exponentials in 16 lanes (then the
            # lanes by halves), not in one running sum: the last bits of a row's sum differ
            # (tests/test_softmax_causal_s30.py pins the new order). The edge values still give
            # the same NaN, inf and zero entries, and the rest agree within 1e-6.
            special = ~np.isfinite(want) | (want == 0)
            assert _bits_equal(got[special], want[special]), (causal, log)
            assert (np.isnan(got) == np.isnan(want)).all(), (causal, log)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 if log else 0)


# -- Adam/AdamW: one pass in float32, the NumPy path's sequence ----------------------------------


def _adam_numpy(p, g, m, v, *, lr, beta1, beta2, eps, wd, decoupled, maximize, step):
    """`Adam._update`'s NumPy sequence (optim/adam.py): each Python scalar a float32 operand."""
    g = -g if maximize else g.copy()
    if wd != 0:
        if decoupled:
            p *= 1 - lr * wd
        else:
            g += p if wd == 1 else p * wd
    w = 1 - beta1
    d = g - m
    if abs(w) < 0.5:
        d *= w
        m += d
    else:
        d *= 1 - w
        np.subtract(g, d, out=m)
    v *= beta2
    t = g * g
    t *= 1 - beta2
    v += t
    denom = np.sqrt(v)
    denom /= (1 - beta2**step) ** 0.5
    denom += eps
    t = m / denom
    alpha = -(lr / (1 - beta1**step))
    p += t if alpha == 1 else t * alpha


_ADAM_CASES = [
    dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.0, decoupled=False, maximize=False),
    dict(lr=1e-2, beta1=0.9, beta2=0.99, eps=1e-8, wd=0.1, decoupled=True, maximize=False),
    dict(lr=1e-2, beta1=0.3, beta2=0.9, eps=1e-6, wd=1.0, decoupled=False, maximize=True),
    dict(lr=0.5, beta1=0.0, beta2=0.5, eps=0.0, wd=0.01, decoupled=False, maximize=False),
]


@pytest.mark.parametrize("case", range(len(_ADAM_CASES)))
@pytest.mark.parametrize("parallel", [False, True])
def test_adam_kernels_are_the_numpy_sequence_on_edge_values(case, parallel):
    """adam32 (and its every-core twin) compute in float32 throughout (numba types math.sqrt
    of a float32 as float32): bitwise the NumPy sequence, specials included."""
    from descent.compiler import fusion

    opts = _ADAM_CASES[case]
    kernel = fusion._adam_kernel(parallel)
    rng = np.random.default_rng(case)
    n = 4099
    p, g, m = (_with_edges(rng, (n,)) for _ in range(3))
    v = np.abs(_with_edges(rng, (n,)))
    for step in (1, 2, 7):
        want = [a.copy() for a in (p, g, m, v)]
        with np.errstate(all="ignore"):
            _adam_numpy(*want, step=step, **opts)
        got = [a.copy() for a in (p, g, m, v)]
        f = _F32
        o = opts
        w = 1 - o["beta1"]
        small = abs(w) < 0.5
        mode = 0 if o["wd"] == 0 else (1 if o["decoupled"] else 2)
        alpha = -(o["lr"] / (1 - o["beta1"] ** step))
        kernel(got[0], got[1], got[2], got[3], o["maximize"], mode, f(1 - o["lr"] * o["wd"]),
               f(o["wd"]), o["wd"] == 1, small, f(w if small else 1 - w), f(o["beta2"]),
               f(1 - o["beta2"]), f((1 - o["beta2"] ** step) ** 0.5), f(o["eps"]), f(alpha),
               alpha == 1)  # fmt: skip
        for i in (0, 2, 3):  # p, m, v (g is read only)
            assert _bits_equal(got[i], want[i]), (step, i)
        p, m, v = want[0], want[2], want[3]


# -- RMS norm over 4-D views: a never-taken raise makes the rows' unit stride a constant ---------


def _rms_norm_fwd32_frozen(x, y, rstd, eps):
    """`_cpu_jit.rms_norm_fwd32` before 2026-12-05 (gathers on 'A' views)."""
    d0, d1, d2, n = x.shape
    buf = np.empty(n, np.float32)
    nd = np.float64(n)
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                for j in range(n):
                    v = x[a, b, c, j]
                    buf[j] = v * v
                m = np.float32(np.float64(_pairwise_sum32.py_func(buf, n)) / nd)
                r = _ONE / np.sqrt(m + eps)
                rstd[a, b, c, 0] = r
                for j in range(n):
                    y[a, b, c, j] = x[a, b, c, j] * r


def _rms_norm_bwd32_frozen(x, rstd, gy, gx):
    d0, d1, d2, n = x.shape
    buf = np.empty(n, np.float32)
    nd = np.float64(n)
    for a in range(d0):
        for b in range(d1):
            for c in range(d2):
                r = rstd[a, b, c, 0]
                for j in range(n):
                    buf[j] = gy[a, b, c, j] * (x[a, b, c, j] * r)
                mm = np.float32(np.float64(_pairwise_sum32.py_func(buf, n)) / nd)
                for j in range(n):
                    gx[a, b, c, j] = (gy[a, b, c, j] - (x[a, b, c, j] * r) * mm) * r


def _row_views(x, *arrays):
    from descent.kernels import cpu

    x4 = cpu._as4(x)
    order = cpu._row_order(x4)
    return [cpu._as4(a).transpose(order) for a in (x, *arrays)]


# The frozen loops as they ran before, in Python (a few hundred rows here): float32 NumPy
# scalars round each step as the compiled loop does (IEEE, no fastmath, no contraction: the
# kernels give the NumPy path's bits, test_rms_norm_kernels_take_views_whose_unit_axes_...),
# without compiling two more 4-D loops in every test process (~5-10 s; numba's 'A' copies).
def _py_frozen(fn):
    def run(*args):
        with np.errstate(all="ignore"):
            fn(*args)

    return run


@pytest.mark.parametrize("n", [1, 9, 128])
def test_rms_norm_kernels_on_strided_views_keep_the_bits(n):
    fwd = _py_frozen(_rms_norm_fwd32_frozen)
    bwd = _py_frozen(_rms_norm_bwd32_frozen)
    rng = np.random.default_rng(n)
    head_split = _with_edges(rng, (3, 5, 2, n)).transpose(0, 2, 1, 3)  # (B, H, T, D) view
    sliced = _with_edges(rng, (2, 3, 4, 2 * n))[..., :n]  # rows of a wider array
    for x in (head_split, sliced, np.ascontiguousarray(head_split)):
        outs = []
        for k in (fwd, _cpu_jit.rms_norm_fwd32):
            y, rstd = np.empty_like(x), np.empty(x.shape[:-1] + (1,), _F32)
            k(*_row_views(x, y, rstd), _F32(1e-6))
            outs.append((y, rstd))
        assert _bits_equal(outs[0][0], outs[1][0]) and _bits_equal(outs[0][1], outs[1][1])
        rstd = np.abs(outs[0][1])
        swapped = _with_edges(rng, (x.shape[0], x.shape[2], x.shape[1], n)).transpose(0, 2, 1, 3)
        for gy in (_with_edges(rng, x.shape), swapped):  # C, and the other order of (H, T)
            want, got = np.empty_like(gy), np.empty_like(gy)
            bwd(*_row_views(x, rstd, gy, want))
            _cpu_jit.rms_norm_bwd32(*_row_views(x, rstd, gy, got))
            assert _bits_equal(got, want)


def test_rms_norm_kernels_take_views_whose_unit_axes_have_any_stride():
    """Rows of one value (D = 1) and other size-1 axes may have any stride (NumPy's empty_like
    picks them freely): the generic copy of the loop runs, with the NumPy path's bits."""
    import descent
    from descent.kernels import cpu
    from descent.nn import functional as F

    rng = np.random.default_rng(3)
    for shape, perm in [((2, 3, 4, 1), (2, 1, 0)), ((2, 1, 4, 1), (1, 2, 0)),
                        ((2, 2, 2, 2), (2, 1, 0)), ((3, 1, 1, 5), (0, 2, 1))]:  # fmt: skip
        x = rng.standard_normal(shape).astype(_F32).transpose(*perm, 3)
        assert cpu.rms_norm_forward(x, 1e-6) is not None  # the kernel takes this layout
        gy = rng.standard_normal(x.shape).astype(_F32)
        results = []
        for enabled in (True, False):
            prev = cpu.set_enabled(enabled)
            try:
                t = descent.tensor(x, requires_grad=True)
                y = F.rms_norm(t, (x.shape[-1],))
                y.backward(descent.tensor(gy))
                results.append((y._data, t.grad._data))
            finally:
                cpu.set_enabled(prev)
        (y1, g1), (y0, g0) = results
        assert _bits_equal(y1, y0) and _bits_equal(g1, g0), (shape, perm)


# -- rotary embedding: one loop copy per row stride --------------------------------------------


def _rope4_frozen(x, cos, sin, y):
    """`_cpu_jit.rope4` before 2026-12-05 (one loop for every layout)."""
    d0, d1, t_n, d = x.shape
    half = d // 2
    for a in range(d0):
        for b in range(d1):
            for t in range(t_n):
                for j in range(half):
                    x1 = x[a, b, t, j]
                    x2 = x[a, b, t, j + half]
                    c = cos[t, j]
                    s = sin[t, j]
                    y[a, b, t, j] = x1 * c - x2 * s
                    y[a, b, t, j + half] = x1 * s + x2 * c


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rope_kernel_keeps_the_bits_in_every_layout(dtype):
    # The frozen loop in Python (540 products here; elementwise, no fastmath or contraction: a
    # NumPy scalar rounds each product and sum as the compiled loop does), not compiled per
    # test process (2.75 s of numba for its two 'A' copies)
    frozen = _py_frozen(_rope4_frozen)
    rng = np.random.default_rng(5)
    t_n, d = 6, 10
    layouts = {
        "C": _with_edges(rng, (2, 3, t_n, d)),
        "head split": _with_edges(rng, (2, t_n, 3, d)).transpose(0, 2, 1, 3),
        "strided rows": _with_edges(rng, (2, 3, t_n, 2 * d))[..., ::2],
    }
    cos, sin = _with_edges(rng, (t_n, d // 2)), _with_edges(rng, (t_n, d // 2))
    for name, x in layouts.items():
        x = x.astype(dtype)
        c, s = cos.astype(dtype), sin.astype(dtype)
        want, got = np.empty_like(x), np.empty_like(x)
        frozen(x, c, s, want)
        _cpu_jit.rope4(x, c, s, got)
        assert _bits_equal(got, want), name
