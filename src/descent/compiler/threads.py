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
So the first `4 * TRIALS` replays run the two plans (one thread everywhere, every core
everywhere) in pairs, one, one, every, every, one, one, ..., and only the second call of each
pair is timed: a call pays for what the call before it left behind (OpenMP workers spinning
after an every-core kernel slow the next call's threaded products), so a call is compared
only after a call of the same plan, as it would run in the steady state. (Alternating single
calls charged the every-core plan's spinning to the one-thread calls: the MLP step at two
threads chose every core at 2.9 ms a trial and then ran at 8.3 ms, against 3.1 ms with one
thread, on a quiet machine.) The faster plan (threads must win by `MARGIN`) runs from then
on, and the choice is timed again every `RETUNE` calls because a shared machine's load
changes. A choice of every core is checked on the `VERIFY` calls after it: if their median is
more than `VERIFY_SLACK` above the best one-thread trial, one thread runs instead (trials that
ran while another library's threads were still spinning chose every core for the MLP step in
benchmarks/compile.py, which then ran at 8.0 ms a call against 1.5 with one thread). Where numba has
one thread or the process may run on one core only (`taskset -c 1`), the one-thread plan runs
without trials.
"""

from __future__ import annotations

import os
from time import perf_counter

_state = {"parallel": False}  # the plan of the replay now running (replays do not nest)


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
    VERIFY = 3  # calls timed after choosing every core
    VERIFY_SLACK = 1.05  # their median above 1.05 x the best one-thread trial: one thread

    __slots__ = ("calls", "times", "choice", "trial", "fixed", "k", "verify")

    def __init__(self) -> None:
        self.calls = 0
        self.times: tuple[list, list] = ([], [])
        self.choice = -1  # -1: timing; 0: one thread; 1: every core
        self.trial = 0
        self.fixed = False
        self.k = 0  # calls into the current timing (pairs: one, one, every, every, ...)
        self.verify: list | None = None  # times of the calls after choosing every core

    def fix(self, parallel: bool) -> None:
        """Run one plan from now on, never timed again (benchmarks' A/B, tests)."""
        self.choice, self.fixed = int(bool(parallel)), True
        self.verify = None

    def begin(self) -> float:
        """Set the plan for this call; returns the start time."""
        self.calls += 1
        if self.choice < 0 or (self.calls % self.RETUNE == 0 and not self.fixed):
            if self.choice >= 0:  # time both again
                self.choice, self.times, self.k, self.verify = -1, ([], []), 0, None
            if self.calls == 1 and _cores() <= 1:
                self.fixed = True  # one usable core: never time the every-core plan
                self.choice = 0
        if self.choice >= 0:
            self.trial = 2 if self.verify is not None else -1  # 2: a check of every core
            _state["parallel"] = bool(self.choice)
        else:
            plan = (self.k // 2) % 2
            self.trial = plan if self.k % 2 else -2  # -2: the untimed first call of a pair
            self.k += 1
            _state["parallel"] = bool(plan)
        return perf_counter()

    def end(self, t0: float) -> None:
        _state["parallel"] = False
        if self.trial < 0:  # a chosen plan, or a pair's first call (it only sets the stage)
            return
        if self.trial == 2:  # every core chosen: does it keep its trials' promise?
            self.verify.append(perf_counter() - t0)
            if len(self.verify) >= self.VERIFY:
                steady = sorted(self.verify)[len(self.verify) // 2]
                if steady > self.VERIFY_SLACK * min(self.times[0]):
                    self.choice = 0
                self.verify = None
            return
        self.times[self.trial].append(perf_counter() - t0)
        if min(len(t) for t in self.times) >= self.TRIALS:
            fast = min(self.times[1]) < self.MARGIN * min(self.times[0])
            self.choice = 1 if fast else 0
            self.verify = [] if fast and not self.fixed else None

    @property
    def parallel(self) -> bool | None:
        """True/False once chosen, None while timing."""
        return None if self.choice < 0 else bool(self.choice)
