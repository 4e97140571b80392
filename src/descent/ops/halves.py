"""Eager's two-thread sites: attention in two halves of its batch and GELU's forward in two halves.

At two BLAS threads OpenBLAS runs each of attention's small head products (M N K <= 65536 * 4, e.g.
baby-gpt's 64 x 64 x 32) on the calling thread alone, and descent's numba loops (the causal
softmax, GELU) run on one thread, while PyTorch's eager kernels use both cores. descent.compile's
replay runs these sites in two halves at once, the second on the split worker thread of
`compiler/threads.py` (its halves plan, session 27: 8-10% of the compiled step on the Intel host).
Eager runs the same halves here: each half makes the whole call's per-matrix BLAS calls (NumPy's
matmul loops over the batch's matrices, one BLAS call each), the softmax's rows go through the
same loop (a half starts at a multiple of the query count), and GELU's halves split at a
multiple of `GRAIN` values, so the bits are the whole call's (tests/test_eager_speed_s28.py).

Used where NumPy's BLAS runs two threads on two usable cores (`compiler.threads`'
`_two_blas_threads`) and `EAGER_HALVES` is on, for calls of at least `MIN_VALUES` values
(attention: scores; GELU: elements); elsewhere (pinned, one BLAS thread, small tensors) the
whole call runs as before. Session 28 (helper-207) measured it on the Intel host
(docs/compile.md).
"""

from __future__ import annotations

import numpy as np

#: On/off (A/B runs; tests force it on with a fake two-thread check)
EAGER_HALVES = {"on": True}
#: Calls with fewer values run whole: the hand-off to the worker costs ~15-70 us
#: (docs/compile.md, sessions 17 and 27); baby-gpt's attention calls have 196,608 scores and
#: its GELU calls 393,216 values.
MIN_VALUES = 1 << 17
#: GELU's halves split at a multiple of this many values (the replay's GRAIN: the first half has
#: no remainder loop, the second half's remainder is the whole call's)
GRAIN = 4096
#: OpenBLAS's SMP_THRESHOLD_MIN x GEMM_MULTITHREAD_THRESHOLD: a product of M N K at most this
#: runs on the calling thread only; larger ones use both of its threads in the whole call (and
#: might round differently in a half), so attention with larger heads runs whole
ONE_THREAD_MNK = 65536 * 4

_F32 = np.dtype(np.float32)


def _threads():
    from ..compiler import threads  # noqa: PLC0415 - compiler's import cost, only when used

    return threads


def allowed(values: int) -> bool:
    """Whether a call of this many values runs in halves now."""
    if not EAGER_HALVES["on"] or values < MIN_VALUES:
        return False
    t = _threads()
    if t._state["parallel"] or t._state["split"]:  # a replay is running: its plan decides
        return False
    return t._two_blas_threads()


def run(parts, fn) -> None:
    """fn(*parts[0]) here and fn(*parts[1]) on the split worker at once (`threads.run_halves`).
    The worker keeps its last job until the next one arrives: it gets a stand-in that drops fn
    (and the arrays fn's closure holds: an attention backward's ~2.6 MB in baby-gpt) on return,
    so nothing of a graph outlives its backward (tests/test_engine_memory.py)."""
    box = [fn]

    def call(i0, i1):
        return box[0](i0, i1)

    try:
        _threads().run_halves(parts, call)
    finally:
        box.clear()


def attention_ok(q, k, v) -> bool:
    """float32 NumPy (B, H, L, E) operands whose head products run on one BLAS thread."""
    if not (type(q) is type(k) is type(v) is np.ndarray) or q.ndim != 4:
        return False
    if not (q.dtype == k.dtype == v.dtype == _F32) or k.ndim != 4 or v.ndim != 4:
        return False
    if q.shape[0] < 2 or not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        return False
    if k.shape[-2] != v.shape[-2]:
        return False
    t, s, d = q.shape[-2], k.shape[-2], max(q.shape[-1], v.shape[-1])
    return t * s * d <= ONE_THREAD_MNK and allowed(q.size // max(q.shape[-1], 1) * s)


def gelu_forward_d(x):
    """(y, d) of `kernels.cpu.gelu_forward_d` (float32 exact GELU and its derivative), the two
    halves of x's values at once where `allowed`; None where it runs whole (the caller's path)."""
    if type(x) is not np.ndarray or x.dtype != _F32 or not allowed(x.size):
        return None
    if x.size < 2 * GRAIN:
        return None
    from ..kernels import _cpu_fast  # noqa: PLC0415 - numba, loaded by the caller already

    kernel = _cpu_fast.gelu_fwd_d32
    xf = np.ascontiguousarray(x).reshape(-1)
    out, d = np.empty_like(xf), np.empty_like(xf)
    h = (xf.size // GRAIN + 1) // 2 * GRAIN
    run(((0, h), (h, xf.size)), lambda i0, i1: kernel(xf[i0:i1], out[i0:i1], d[i0:i1]))
    return out.reshape(x.shape), d.reshape(x.shape)
