"""Eager's two-thread sites (attention in two halves of its batch, GELU's forward in two
halves) and the split worker they and descent.compile's replay hand the second half to.

At two BLAS threads OpenBLAS runs each of attention's small head products (M N K <= 65536 * 4, e.g.
baby-gpt's 64 x 64 x 32) on the calling thread alone, and descent's numba loops (the causal
softmax, GELU) run on one thread, while PyTorch's eager kernels use both cores. descent.compile's
replay runs these sites in two halves at once, the second on the split worker below
(compiler/threads.py's halves plan, session 27: 8-10% of the compiled step on the Intel host).
Eager runs the same halves here: each half makes the whole call's per-matrix BLAS calls (NumPy's
matmul loops over the batch's matrices, one BLAS call each), the softmax's rows go through the
same loop (a half starts at a multiple of the query count), and GELU's halves split at a
multiple of `GRAIN` values, so the bits are the whole call's (tests/test_eager_speed_s28.py).

The split worker itself (`run_halves`: one daemon thread kept off the caller's core) lives
here, in the core's lowest layer (beside descent.kernels, under the engine; importing it loads
no numba), so that eager's ops, optimizers and the engine's
backward use it without importing descent.compile; `compiler/threads.py` imports it (and
`REPLAY_STATE`, the replay now running) from here.

Used where NumPy's BLAS runs two threads on two usable cores (`two_blas_threads`) and
`EAGER_HALVES` is on, for calls of at least `MIN_VALUES` values
(attention: scores; GELU: elements); elsewhere (pinned, one BLAS thread, small tensors) the
whole call runs as before. Session 28 (helper-207) measured it on the Intel host
(docs/compile.md).
"""

from __future__ import annotations

import os

import numpy as np

from . import blas

#: On/off (A/B runs; tests force it on with a fake two-thread check)
EAGER_HALVES = {"on": True}
#: Calls with fewer values run whole: the hand-off to the worker costs ~15-70 us
#: (docs/compile.md, sessions 17 and 27); baby-gpt's attention calls have 196,608 scores and
#: its GELU calls 393,216 values.
MIN_VALUES = 1 << 17
#: Layer norm's rows in two parts at once (eager and the replay's halves plan:
#: descent.kernels.cpu.layer_norm_rows_*): the backward from LN_MIN_VALUES values, the forward
#: from LN_FORWARD_MIN_VALUES. After a two-thread product (Intel host, session 29), us a call
#: whole / in two parts: 98,304 values (baby-gpt's: whole) forward 30.7 / 41.9, backward 49.5 /
#: 57.4; 147,456: 42.3 / 46.5, 70.0 / 61.7; 196,608: 57.5 / 46.6, 91.4 / 66.5; 393,216: 103.9 /
#: 78.1, 175.4 / 116.3. In a GPT step of width 256 (196,608 values a call) the backward's parts
#: gained in eager and the replay, the forward's lost in eager (docs/compile.md)
LN_MIN_VALUES = 1 << 17
LN_FORWARD_MIN_VALUES = 1 << 18
#: On/off for layer norm's halves alone (A/B runs); EAGER_HALVES covers eager's too
LN_HALVES = {"on": True}
#: GELU's halves split at a multiple of this many values (the replay's GRAIN: the first half has
#: no remainder loop, the second half's remainder is the whole call's)
GRAIN = 4096
#: OpenBLAS's SMP_THRESHOLD_MIN x GEMM_MULTITHREAD_THRESHOLD: a product of M N K at most this
#: runs on the calling thread only; larger ones use both of its threads in the whole call (and
#: might round differently in a half), so attention with larger heads runs whole
ONE_THREAD_MNK = 65536 * 4

_F32 = np.dtype(np.float32)


#: The replay now running (descent.compile's thread plan: compiler/threads.py's `_state`): while
#: it runs, its plan decides and eager's halves stay off
REPLAY_STATE = {"parallel": False, "split": False, "halves": False}
#: The calling thread's cores at the last two-thread check (the worker keeps off the caller's)
AFFINITY: list = [frozenset()]
_NUMPY_BLAS: list = []  # [threadpoolctl's controller of NumPy's BLAS, or None] once looked up


def numpy_blas_controller():
    """threadpoolctl's controller of NumPy's BLAS, or None without threadpoolctl. Where SciPy's
    wheel brings a second OpenBLAS (libscipy_openblas beside NumPy's libscipy_openblas64_), the
    one under NumPy's directory: limiting SciPy's left NumPy's products on two threads (an
    OpenBLAS worker spinning beside the split)."""
    try:
        import threadpoolctl  # noqa: PLC0415 - a core dependency, loaded when first asked
    except ImportError:
        return None
    import os  # noqa: PLC0415

    libs = [c for c in threadpoolctl.ThreadpoolController().lib_controllers
            if c.user_api == "blas"]  # fmt: skip
    here = os.path.dirname(np.__file__)  # wheels: site-packages/numpy.libs/ or numpy/
    ours = [c for c in libs if c.filepath.startswith((here + ".libs", here + os.sep))]
    return (ours or libs or [None])[0]


def two_blas_threads() -> bool:
    """Two usable cores and NumPy's BLAS at two threads, or MKL's where descent.blas runs the
    products on MKL (NumPy's is held at one then), the calling thread's cores noted in
    `AFFINITY`; without threadpoolctl, OPENBLAS_NUM_THREADS / OMP_NUM_THREADS or the core count
    stand for the BLAS's threads."""
    import os  # noqa: PLC0415

    try:
        cores = frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = frozenset(range(os.cpu_count() or 1))
    AFFINITY[0] = cores
    if len(cores) < 2:
        return False
    if blas._ACTIVE[0] is not None:
        return blas.mkl_threads() == 2
    if not _NUMPY_BLAS:
        _NUMPY_BLAS.append(numpy_blas_controller())
    lib = _NUMPY_BLAS[0]
    n = lib.get_num_threads() if lib is not None else None
    if not n:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
            v = os.environ.get(var, "")
            if v.isdigit() and int(v) > 0:
                n = int(v)
                break
        else:
            n = os.cpu_count() or 1
    return int(n) == 2


def allowed(values: int, least: int | None = None) -> bool:
    """Whether a call of this many values (at least `least`, else MIN_VALUES) runs in halves
    now."""
    if not EAGER_HALVES["on"] or values < (MIN_VALUES if least is None else least):
        return False
    if REPLAY_STATE["parallel"] or REPLAY_STATE["split"]:  # a replay is running: its plan decides
        return False
    return two_blas_threads()


def run(parts, fn) -> None:
    """fn(*parts[0]) here and fn(*parts[1]) on the split worker at once (`run_halves`).
    The worker keeps its last job until the next one arrives: it gets a stand-in that drops fn
    (and the arrays fn's closure holds: an attention backward's ~2.6 MB in baby-gpt) on return,
    so nothing of a graph outlives its backward (tests/test_engine_memory.py)."""
    box = [fn]

    def call(*args):
        return box[0](*args)

    try:
        run_halves(parts, call)
    finally:
        box.clear()


def layer_norm_run(x, forward: bool):
    """`run` for eager's float32 layer norm on NumPy array x (kernels.cpu.layer_norm_forward /
    layer_norm_backward's `run`) where its rows go in two parts now, else None."""
    if type(x) is not np.ndarray or x.dtype != _F32 or not LN_HALVES["on"]:
        return None
    if not allowed(x.size, LN_FORWARD_MIN_VALUES if forward else LN_MIN_VALUES):
        return None
    return run


def attention_ok(q, k, v) -> bool:
    """float32 NumPy (B, H, L, E) operands whose head products run on one BLAS thread. Not under
    MKL: it runs the heads in one grouped call on its two threads, as fast as the halves
    (baby-gpt's eager step, Intel host: GELU's halves alone 0.946-0.955 of all whole, with
    attention's halves on MKL at one thread each 0.954-0.959; docs/compile.md, session 29)."""
    if blas._ACTIVE[0] is not None:
        return False
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


def sdpa_forward_part(i0, i1, a, matmul, transpose_last2) -> None:
    """Attention's forward over batch rows [i0, i1): s = q k^T (through the transposed copy kt
    where `nn`), the numba softmax of s in place, out = s v. `a`: (q, k, v, s, kt, out, nn,
    softmax, scale, n_q, causal). Shared by eager's halves (ops/attention.py, np.matmul) and the
    replay's (compiler/replay_kernels.py, descent.blas.matmul), so both make the same calls."""
    q, k, v, s, kt, out, nn, softmax, scale, n_q, causal = a
    sh = s[i0:i1]
    if nn:
        transpose_last2(k[i0:i1], kt[i0:i1])
        matmul(q[i0:i1], kt[i0:i1], out=sh)
    else:
        matmul(q[i0:i1], k[i0:i1].swapaxes(-1, -2), out=sh)
    if sh.size:
        softmax(sh.reshape(-1, sh.shape[-1]), scale, n_q, causal, False, True)  # safe
    matmul(sh, v[i0:i1], out=out[i0:i1])


def sdpa_backward_part(i0, i1, a, matmul, transpose_last2) -> None:
    """Attention's backward over batch rows [i0, i1) (`sdpa_forward_part`'s): gp = go v^T, the
    softmax backward in place (gs * scale), gv = P^T go, gq = gs k, gk = gs^T q. `a`: (go, q, k,
    v, p, gp, vt, gq, gk, gv, nn, softmax_backward, scale)."""
    go, q, k, v, p, gp, vt, gq, gk, gv, nn, sb, scale = a
    g, gh, ph = go[i0:i1], gp[i0:i1], p[i0:i1]
    if nn:
        transpose_last2(v[i0:i1], vt[i0:i1])
        matmul(g, vt[i0:i1], out=gh)
    else:
        matmul(g, v[i0:i1].swapaxes(-1, -2), out=gh)
    if ph.size:
        n = p.shape[-1]
        sb(ph.reshape(-1, n), gh.reshape(-1, n), scale, False)  # gs * scale, in place
    matmul(ph.swapaxes(-1, -2), g, out=gv[i0:i1])  # gv = P^T go
    matmul(gh, k[i0:i1], out=gq[i0:i1])  # gq = gs k * scale
    matmul(gh.swapaxes(-1, -2), q[i0:i1], out=gk[i0:i1])  # gk = gs^T q * scale


def gelu_forward_d(x):
    """(y, d) of `kernels.cpu.gelu_forward_d` (float32 exact GELU and its derivative), the two
    halves of x's values at once where `allowed`; None where it runs whole (the caller's path)."""
    if type(x) is not np.ndarray or x.dtype != _F32 or not allowed(x.size):
        return None
    if x.size < 2 * GRAIN:
        return None
    from .kernels import _cpu_fast  # noqa: PLC0415 - numba, loaded by the caller already

    kernel = _cpu_fast.gelu_fwd_d32
    xf = np.ascontiguousarray(x).reshape(-1)
    out, d = np.empty_like(xf), np.empty_like(xf)
    h = (xf.size // GRAIN + 1) // 2 * GRAIN
    run(((0, h), (h, xf.size)), lambda i0, i1: kernel(xf[i0:i1], out[i0:i1], d[i0:i1]))
    return out.reshape(x.shape), d.reshape(x.shape)


def run_halves(parts, fn) -> None:
    """fn(*parts[0]) here and fn(*parts[1]) on the split worker thread, at once; or both here
    when the worker has not started the second by the time the first is done (a loaded
    machine: waiting for the worker to get a core would cost more than the half)."""
    import threading  # noqa: PLC0415

    w = _worker()
    claim, finished = threading.Lock(), threading.Lock()
    finished.acquire()
    errors: list = []  # the worker's exception for this job (each caller its own)
    w.jobs.put((fn, parts[1], (_getcpu(), AFFINITY[0]), claim, finished, errors))
    try:
        fn(*parts[0])
    except BaseException:
        if not claim.acquire(False):
            finished.acquire()  # the worker's half writes nothing after we return
        raise
    if claim.acquire(False):  # not started: ours (the worker will skip it)
        fn(*parts[1])
        return
    finished.acquire()  # started: wait for it
    if errors:
        raise errors[0]


# Where the worker runs. Left to the scheduler, a thread woken right after a threaded product
# lands on the waker's core (OpenBLAS's own worker is still spinning on the other one after the
# product), and the two halves share one core: GELU's forward on 393k values, 2 threads, quiet,
# after a product: 221 us whole, 225 split, the two halves on the same core in 269 of 300
# calls. The worker therefore keeps itself off the core the calling thread is on (every core of
# the process but that one; re-set only when that core changes): 148 us split.
_WORKER: list = []  # [(pid, the worker)]


def _getcpu_fn():
    try:
        import ctypes  # noqa: PLC0415

        f = ctypes.CDLL(None).sched_getcpu
        f.restype = ctypes.c_int
        f.argtypes = []
        return f if f() >= 0 and hasattr(os, "sched_setaffinity") else None
    except (OSError, AttributeError):  # not glibc / not Linux
        return None


_GETCPU: list = []


def _getcpu() -> int:
    """The core this thread runs on now, or -1 where that cannot be asked."""
    if not _GETCPU:
        _GETCPU.append(_getcpu_fn())
    f = _GETCPU[0]
    return -1 if f is None else f()


class _Worker:
    """One daemon thread running the second halves (blocking on a queue between them)."""

    def __init__(self) -> None:
        import queue  # noqa: PLC0415
        import threading  # noqa: PLC0415

        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.where = None  # (the caller's core, the caller's cores) the affinity was set for
        threading.Thread(target=self._loop, name="descent-split", daemon=True).start()

    def _loop(self) -> None:
        while True:
            fn, args, where, claim, finished, errors = self.jobs.get()
            if not claim.acquire(False):  # the caller ran it
                continue
            try:
                if where != self.where:
                    self._keep_off(where)
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                errors.append(e)
            finally:
                finished.release()

    def _keep_off(self, where) -> None:
        self.where = where
        cpu, cores = where
        others = cores - {cpu}
        if cpu >= 0 and others:
            try:
                os.sched_setaffinity(0, others)  # 0: this thread only (Linux)
            except OSError:
                pass


def _worker() -> _Worker:
    pid = os.getpid()
    if not _WORKER or _WORKER[0][0] != pid:
        _WORKER[:] = [(pid, _Worker())]
    return _WORKER[0][1]
