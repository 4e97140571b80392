"""One thread or every core: chosen per replayed program by timing whole calls.

Several replay kernels have two versions that compute bitwise the same values: one thread, and
a `prange` over numba's threads (`NUMBA_NUM_THREADS`, every core by default). A kernel site
(`Tuned`) runs whichever the current program's `ThreadPlan` says.

Why the whole call and not each kernel: timing each site alone (what the first version did)
chose the every-core kernels, each faster than its one-thread twin in isolation, and made the
baby-gpt step at two threads 111 ms against eager's 83 ms on a quiet machine. The cost lands
elsewhere, most likely because numba's OpenMP workers and OpenBLAS's both spin-wait after
their parallel regions, so on two cores a prange kernel followed by a threaded matrix product
runs three busy threads on two cores, and the products slow down. Only the time of the whole
step sees that.
So the first `4 * TRIALS` replays (`6 * TRIALS` with the halves plan, below) run the plans (one
thread everywhere, every core everywhere) in pairs, one, one, every, every, one, one, ..., and
only the second call of each pair is timed: a call pays for what the call before it left behind
(OpenMP workers spinning after an every-core kernel slow the next call's threaded products), so
a call is compared only after a call of the same plan, as it would run in the steady state.
(Alternating single calls charged the every-core plan's spinning to the one-thread calls: the
MLP step at two threads chose every core at 2.9 ms a trial and then ran at 8.3 ms, against 3.1
ms with one thread, on a quiet machine.) The faster plan (threads must win by `MARGIN`) runs
from then on, and the choice is timed again every `RETUNE` calls because a shared machine's
load changes. A choice of every core is checked on the `VERIFY` calls after it: if their median
is more than `VERIFY_SLACK` above the best one-thread trial, one thread runs instead (trials
that ran while another library's threads were still spinning chose every core for the MLP step
in benchmarks/compile.py, which then ran at 8.0 ms a call against 1.5 with one thread). Where
numba has one thread or the process may run on one core only (`taskset -c 1`), the one-thread
plan runs without trials.

A third plan, the halves (`HALVES_PLAN`: the one-thread kernels, with GELU's forward, the causal
softmax and the AdamW step split between the caller and the split worker, and attention in two
halves of the batch), is timed beside them where NumPy's BLAS runs two threads on two usable
cores, and kept when `HALVES_MARGIN` faster than one thread (then checked on `VERIFY` calls as
every core is): it pays on some hosts and not on others (see `SPLIT`, `HALVES`, `HALVES_PLAN`).

Threads: a replay that starts while another one runs (another program, in another thread: calls
of one compiled function are serialised by its lock) runs the one-thread plan, without `split`
or `halves` and untimed, switches the running one to it too (`_state` is process-wide; every
plan computes the same bits, so a replay may change plans between two kernels), and makes it
drop its timing of that call (`_overlap`). So every-core kernels run only while one replay
runs (before session 22 one thread's every-core plan ran another thread's kernels every-core,
and one thread's `end()` reset another's plan), and the timings are of calls that ran alone.
"""

from __future__ import annotations

import itertools
import os
from time import perf_counter

# the split worker and the replay's state live in the kernels layer (eager's halves use them too)
from ..halves import AFFINITY as _AFFINITY
from ..halves import REPLAY_STATE as _state  # the replay now running
from ..halves import run_halves

_running: set = set()  # the ThreadPlans of the replays running now (in any thread)
_overlap = [0]  # set to a new number by each replay that starts beside another
_overlap_ids = itertools.count(1)


def _cores() -> int:
    """The threads an every-core kernel would get that can actually run at once."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    try:
        import numba  # noqa: PLC0415 - only asked when a program replays

        n = min(n, numba.get_num_threads())
    except ImportError:
        return 1
    return n


class Tuned:
    """A kernel site with a one-thread and an every-core version; the running plan picks."""

    __slots__ = ("fns",)

    def __init__(self, serial, parallel) -> None:
        self.fns = (serial, parallel)

    def __call__(self, *args):
        return self.fns[_state["parallel"]](*args)


class ThreadPlan:
    """Times whole replays under both plans and keeps the faster (see the module docstring)."""

    TRIALS = 3  # timed calls per plan (each after a call of the same plan)
    RETUNE = 200
    MARGIN = 0.95  # every core must be at least 5% faster over the whole call
    VERIFY = 3  # calls timed after choosing every core or the halves
    VERIFY_SLACK = 1.05  # their median above 1.05 x the best one-thread trial: one thread

    HALVES_MARGIN = 0.98  # the halves plan: 2% faster (its loss where it loses is ~1-2%)

    __slots__ = ("calls", "times", "choice", "trial", "fixed", "k", "verify", "overlap", "timed")

    def __init__(self) -> None:
        self.calls = 0
        self.times: tuple[list, list, list] = ([], [], [])  # per plan
        self.timed: tuple = (0, 1)  # the plans of the current timing
        self.choice = -1  # -1: timing; 0: one thread; 1: every core; 2: halves
        self.trial = 0
        self.fixed = False
        self.k = 0  # calls into the current timing (pairs: one, one, every, every, ...)
        self.verify: list | None = None  # times of the calls after choosing every core
        self.overlap = 0  # `_overlap` when this call began

    def fix(self, plan) -> None:
        """Run one plan from now on, never timed again (benchmarks' A/B, tests): False or 0 one
        thread, True or 1 every core, 2 (`HALVES_PLAN`) the one-thread kernels in two halves."""
        self.choice, self.fixed = int(plan), True
        self.verify = None

    def _plans(self) -> tuple:
        """The plans timed now: one thread and every core, and the halves plan where two BLAS
        threads run on two usable cores (it would run whole calls otherwise)."""
        if TIME_HALVES["on"] and _two_blas_threads():
            return (0, 1, HALVES_PLAN)
        return (0, 1)

    def begin(self) -> float:
        """Set the plan for this call; returns the start time."""
        self.calls += 1
        _running.add(self)
        if len(_running) > 1:  # another replay runs now: one thread for both (see above)
            _overlap[0] = self.overlap = next(_overlap_ids)
            self.trial = -3  # (untimed)
            _state["parallel"] = _state["split"] = _state["halves"] = False
            return perf_counter()
        self.overlap = _overlap[0]
        if self.choice < 0 or (self.calls % self.RETUNE == 0 and not self.fixed):
            if self.choice >= 0:  # time the plans again
                self.choice, self.k, self.verify = -1, 0, None
                self.times = ([], [], [])
            if self.calls == 1 and _cores() <= 1:
                self.fixed = True  # one usable core: never time the every-core plan
                self.choice = 0
        if self.choice >= 0:
            self.trial = 3 if self.verify is not None else -1  # 3: a check of the choice
            plan = self.choice
        else:
            if self.k == 0:
                self.timed = self._plans()
            plan = self.timed[(self.k // 2) % len(self.timed)]
            self.trial = plan if self.k % 2 else -2  # -2: the untimed first call of a pair
            self.k += 1
        _state["parallel"] = plan == 1
        if plan == HALVES_PLAN:
            _state["split"] = _state["halves"] = _two_blas_threads()
        else:  # (the one-thread plan with SPLIT or HALVES on: A/B runs)
            one = plan == 0
            _state["split"] = one and split_allowed()
            _state["halves"] = one and HALVES["on"] and _two_blas_threads()
        return perf_counter()

    def end(self, t0: float) -> None:
        _state["parallel"] = _state["split"] = _state["halves"] = False
        _running.discard(self)
        if self.trial < 0:  # a chosen plan, or a pair's first call (it only sets the stage)
            return
        if _overlap[0] != self.overlap:  # another replay ran meanwhile: not a timing
            if self.choice < 0:
                self.k -= 2  # (this pair again)
            return
        if self.trial == 3:  # every core or halves chosen: does it keep its trials' promise?
            self.verify.append(perf_counter() - t0)
            if len(self.verify) >= self.VERIFY:
                steady = sorted(self.verify)[len(self.verify) // 2]
                if steady > self.VERIFY_SLACK * min(self.times[0]):
                    self.choice = 0
                self.verify = None
            return
        self.times[self.trial].append(perf_counter() - t0)
        if min(len(self.times[p]) for p in self.timed) >= self.TRIALS:
            one = min(self.times[0])
            best, choice = one, 0
            for p, margin in ((1, self.MARGIN), (HALVES_PLAN, self.HALVES_MARGIN)):
                if p in self.timed and min(self.times[p]) < margin * one:
                    if min(self.times[p]) < best:
                        best, choice = min(self.times[p]), p
            self.choice = choice
            self.verify = [] if choice and not self.fixed else None

    @property
    def parallel(self) -> bool | None:
        """Whether the every-core plan runs: True/False once chosen, None while timing."""
        return None if self.choice < 0 else self.choice == 1

    @property
    def plan(self) -> int | None:
        """The chosen plan (0 one thread, 1 every core, 2 halves), None while timing."""
        return None if self.choice < 0 else self.choice


# -- two halves at once on the one-thread plan ---------------------------------------------------
# The one-thread plan leaves the second core to OpenBLAS's worker, which only runs inside the
# products; between them the replay's own loops (GELU, the softmax, layer norm, the AdamW step)
# ran on one core. `split` runs such a loop in two halves at once, the second on a worker
# thread of its own (as ops/conv_winograd.py's `split_run`: it blocks on a queue instead of
# spinning as numba's OpenMP workers do, so the products after it keep both cores). Only
# where NumPy's BLAS runs two threads (the process owns two cores: pinned to one, BLAS at
# one thread, it does nothing), on the one-thread plan (the every-core plan has its prange
# kernels), inside a replay. The callers split at points that leave every element or row
# computed by the same loop as in a whole call, so a split call gives the whole call's bits.

# Off by default: on the 2-core AMD EPYC KVM host the three sites gain ~0.4 ms a step between
# them (measured per site), but the whole baby-gpt step at two threads did not: 36.03 -> 35.64,
# 35.45 -> 35.87, 39.75 -> 40.39 ms median in three quiet A/B runs (docs/compile.md, session
# 17). True: split where allowed (machines whose wake-ups are cheaper, A/B runs).
SPLIT = {"on": False}


# Session 21 (helper-148): attention's per-head products in two halves of the batch. OpenBLAS
# runs a product of M N K <= 65536 * 4 (its SMP_THRESHOLD_MIN x GEMM_MULTITHREAD_THRESHOLD) on
# the calling thread alone, so at two threads the step's 64 x 64 x 32 head products (48 a
# call, 6 calls a layer) ran on one core while OpenBLAS's worker spun on the other. Halves of
# the batch on the caller and the split worker make the same per-matrix BLAS calls, so the
# same bits (`replay_kernels.sdpa_forward`, `_sdpa_backward_nn`). Used where `split` would be
# but for SPLIT (NumPy's BLAS at two threads, two usable cores, the one-thread plan) when on.
# Off by default: on the 2-core Zen 3 KVM host attention's pieces gain ~1 ms a step (10.6 ->
# 9.6 ms) but the whole baby-gpt step at two threads did not (per-round ratio 1.078 over 450
# steps each; the forward alone 0.995, quartiles 0.94-1.05): docs/compile.md, session 21.
# True: halve where allowed (A/B runs, machines with cheaper wake-ups).
HALVES = {"on": False}

# Session 27 (helper-192): the halves plan. On the 2-core Intel Emerald Rapids KVM host
# (SkylakeX kernels) the split sites and attention's halves pay in the whole step: the
# baby-gpt step at two threads 22.33 -> 20.42 ms (per-step paired ratio 0.904), 20.99 ->
# 19.52 (0.918), 22.67 -> 20.57 (0.925) in three quiet in-process A/Bs, where the Zen 3 host
# gained nothing (above). Rather than a per-host default, the ThreadPlan times a third plan,
# `HALVES_PLAN` (the one-thread kernels with `split` and `halves` both on), in the same pairs as
# the other two wherever two BLAS threads run on two usable cores, and keeps it only if it is
# `HALVES_MARGIN` faster than one thread over the whole call (docs/compile.md, session 27).
# Every plan gives the same bits. TIME_HALVES False: only the two plans of before (A/B runs).
HALVES_PLAN = 2
TIME_HALVES = {"on": True}


def split_allowed() -> bool:
    """Whether `split` may use the worker now: SPLIT on, NumPy's BLAS (or MKL, when
    descent.backends.set_blas chose it) at two threads on two usable cores."""
    return SPLIT["on"] and (_two_blas_threads() or _two_mkl_threads())


def _two_mkl_threads() -> bool:
    """MKL does descent's products at two threads on two usable cores. (The halves plan stays
    off then: `_two_blas_threads` asks NumPy's OpenBLAS, held at one thread, and MKL runs
    attention's batch in one call.)"""
    from .. import blas  # noqa: PLC0415

    if blas.mkl_threads() != 2:
        return False
    try:
        cores = frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = frozenset(range(os.cpu_count() or 1))
    _AFFINITY[0] = cores
    return len(cores) >= 2


def _two_blas_threads() -> bool:
    """Two usable cores and NumPy's BLAS at two threads (the calling thread's cores noted)."""
    from ..ops import conv_nd  # noqa: PLC0415 - asked once per replay (~1 us)

    try:
        cores = frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = frozenset(range(os.cpu_count() or 1))
    _AFFINITY[0] = cores
    return len(cores) >= 2 and conv_nd._openblas_threads() == 2  # (MKL's: _two_mkl_threads)


#: Below this many values a split call runs whole. Handing a half to the worker and getting it
#: back costs ~20 us alone and ~70 us inside the baby-gpt step (wake-ups in this KVM guest,
#: the GIL handed back and forth): split there, layer norm's forward (98k values, ~30 us a
#: call), the softmax's backward (196k, ~60 us) and GELU's backward (393k, a memory-bound
#: multiply, ~120 us) all ran slower (docs/compile.md, session 17), so only loops of ~150 us
#: or more call `split` (GELU's forward, the causal softmax, the AdamW step).
SPLIT_MIN = 1 << 17


def split(count: int, fn, grain: int = 1, values: int = 0) -> None:
    """fn(0, count), or fn(0, h) here and fn(h, count) on the worker thread at once, where h
    is a multiple of grain near count / 2, when this replay splits (see above), count >= 2 *
    grain and the call covers at least SPLIT_MIN values (values, or count). fn must release
    the GIL (numba nogil loops, NumPy's ufuncs) and its halves must write disjoint outputs."""
    if not _state["split"] or count < 2 * grain or (values or count) < SPLIT_MIN:
        fn(0, count)
        return
    h = (count // grain + 1) // 2 * grain
    run_halves(((0, h), (h, count)), fn)
