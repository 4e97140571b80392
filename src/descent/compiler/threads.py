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
So the replays time the plans (one thread everywhere, every core everywhere) in pairs, one,
one, every, every, ..., and only the second call of each pair is timed: a call pays for what the
call before it left behind (OpenMP workers spinning after an every-core kernel slow the next
call's threaded products), so a call is compared only after a call of the same plan, as it
would run in the steady state. (Alternating single calls charged the every-core plan's spinning
to the one-thread calls: the MLP step at two threads chose every core at 2.9 ms a trial and then
ran at 8.3 ms, against 3.1 ms with one thread, on a quiet machine.) The faster plan runs from
then on, and the choice is timed again after `RETUNE` calls because a shared machine's load
changes (session 30: each re-timing that keeps the choice doubles the calls to the next, up to
`RETUNE_MAX`, and a plan the last timing dropped as far slower is left out of it but at every
`READMIT`-th: at the GPT step on two cores every core ran 2-7x one thread's time, so each
re-timing every 200 calls cost ~2-12% of those calls). Where numba has one thread or the
process may run on one core only (`taskset -c 1`), the one-thread plan runs without trials.

How the trials choose (session 30, helper-225; before, each plan's best of `TRIALS` = 3 timed
calls was compared, and benchmarks/compile.py's GPT step chose one thread in 1 of the lead's 5
runs and 4 of 5 helper runs of session 29, 1.27 x the matmul floor against 1.14 with the
halves plan; its logs showed why): each plan first runs one untimed call (its kernels compile,
0.7-1.5 s, and the call after that ran 20-80% slow: it was the halves plan's first timing),
then `TRIALS` = 5 rounds of pairs, the plans' order reversed every other round, and a plan is
kept by the median of its per-round ratios to one thread (every core must be `MARGIN` faster,
the halves `HALVES_MARGIN`): a call that ran in a quieter or busier moment changes one ratio,
not the choice. A plan more than `DROP` x the round's fastest in two rounds in a row is not
timed again (every core at the baby-gpt step on 2 cores: 2-7x, ~0.1 s a call; one round was not
enough: once the halves plan ran 1.8x one thread's time through a whole round). A timed call
that is the first or the second to begin long after the call before it (`GAP` x the smallest
gap of the timing and `GAP_CALL` x a call: another library's calls ran between, whose threads
may still spin: 4 of the 9 timings in benchmarks/compile.py's schedule, and the second call of
its blocks ran 2-5 ms slow) is followed by another timed call of its plan (`LATE` at most), and
rounds that hold one are
left out of the choice, judged once the timing's smallest gap is known (a single-call warm-up
has only long gaps; a training loop's steady data loading sets the smallest gap and drops
nothing); up to `REDO` more rounds replace them. Two plans within each other's noise are timed
on (session 31, helper-231: at 709c06ea the halves plan was ~5% faster than one thread at the
GPT step, a round's noise +-12%, and the median of 5 rounds still chose one thread in some
runs): from the `TRIALS`-th round the leading plan (the smallest median per-round log ratio to
one thread, less the log of its margin) is chosen only once the median of its per-round
differences to the next plan's is `Z` (1.64) standard errors from 0 (the standard error from the
differences' quartiles: a spike moves it little), else another round runs, up to `ROUNDS_MAX`
(20) rounds, where a tie goes to one thread over every core, and else to the plan with the
smaller median time ratio to one thread over all those rounds (the halves at the GPT step on
the Intel host, one thread at its MLP step: see `_tie`).
On a fake clock whose rounds are drawn from 180 measured ones (their ratios shifted), the
halves at 0.95 x one thread's time were chosen in 91% of 1000 timings (77% by the median of 5),
after 10.4 rounds on average (59 calls to settle, 35 before); at 0.90 x in 98% (90%); at
1.02 x in 4.1% (7.5%), at 1.05 x in 0.5% (3.3%) (session 31 in docs/compile.md). Every choice is
then checked on `VERIFY` calls:
every core or the halves above `VERIFY_SLACK` x one thread's trials (their median), or one
thread above `RECHECK_SLACK` x its own, times the plans again, once (trials that ran while
another library's threads still spun chose every core for the MLP step in benchmarks/compile.py,
which then ran at 8.0 ms a call against 1.5 with one thread); a second miss of every core or
the halves gives way to one thread. `settled` says when the choice and its check are done
(benchmarks/compile.py times from then on). Figures: docs/compile.md, session 30 (helper-225).

A third plan, the halves (`HALVES_PLAN`: the one-thread kernels, with GELU's forward, the causal
softmax and the AdamW step split between the caller and the split worker, and attention in two
halves of the batch), is timed beside them where NumPy's BLAS runs two threads on two usable
cores, and kept when `HALVES_MARGIN` faster than one thread (then checked on `VERIFY` calls as
every core is): it pays on some hosts and not on others (see `SPLIT`, `HALVES`, `HALVES_PLAN`).
On the Intel host of sessions 27-31 it is ~5-10% faster than one thread at the baby-gpt step
(median per-round ratios 0.92-0.96 in session 30's logs, 0.88-0.91 in session 31's); the MLP
step chooses one thread or
every core there (it has no halves sites to speak of), and with descent's products on MKL
every core was ~5% faster than one thread at the GPT step in a standalone run (why there and
not with OpenBLAS: not measured).

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
import math
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
    """Times whole replays under each plan in paired rounds and keeps the fastest (see the
    module docstring)."""

    TRIALS = 5  # timed rounds: each plan once a round, after a call of the same plan
    RETUNE = 200  # calls from a choice to its re-timing; doubled after each that keeps it
    RETUNE_MAX = 3200  # (up to this many calls between re-timings)
    READMIT = 4  # a plan dropped by DROP is timed again only at every READMIT-th re-timing
    MARGIN = 0.95  # every core: its median ratio to one thread at least 5% under 1
    VERIFY = 5  # calls timed after each choice (their median: robust to two spikes)
    VERIFY_SLACK = 1.10  # every core or the halves: their median over 1.10 x one thread's
    RECHECK_SLACK = 1.10  # one thread: over 1.10 x its trials' median (see `_check`)

    HALVES_MARGIN = 0.98  # the halves plan: 2% faster (its loss where it loses is ~1-2%)
    Z = 1.64  # the leader is chosen when apart from the next by Z x the standard error ...
    ROUNDS_MAX = 20  # ... or after this many rounds (a tie then: `_tie`)

    DROP = 1.5  # a plan over 1.5 x the fastest in two rounds is not timed again (every core)
    GAP = 3.0  # a timing whose call began GAP x the smallest gap (and GAP_CALL x a call) ...
    GAP_CALL = 0.25  # ... after the call before it is not one (something else ran between)
    REDO = 4  # at most this many rounds more than TRIALS to replace such rounds
    LATE = 64  # at most this many timed calls run again for a gap in a timing (~3 a round in
    # benchmarks/compile.py's blocks of 4: 24 ran out after 6-8 rounds)

    __slots__ = ("calls", "times", "rounds", "round", "queue", "choice", "trial", "fixed",
                 "verify", "overlap", "timed", "gap", "min_gap", "last_end", "last_dt",
                 "redo", "rechecked", "ran", "round_gap", "late", "prev_disturbed",
                 "prev_gap", "dropped", "retunes", "interval", "next_retune",
                 "prev_choice", "ties")  # fmt: skip

    def __init__(self) -> None:
        self.calls = 0
        self.times: tuple[list, list, list] = ([], [], [])  # per plan, the timings kept
        self.rounds: list[tuple] = []  # per timed round: ({plan: seconds}, its longest gap)
        self.round: dict = {}  # the round now timed
        self.queue: list = []  # the calls still to run in this round: (plan, timed)
        self.timed: tuple = (0, 1)  # the plans of the current timing
        self.choice = -1  # -1: timing; 0: one thread; 1: every core; 2: halves
        self.trial = 0
        self.fixed = False
        self.verify: list | None = None  # times of the calls after a choice
        self.overlap = 0  # `_overlap` when this call began
        self.gap = 0.0  # seconds from the end of the call before to this call's begin
        self.min_gap = float("inf")  # the smallest such gap in this timing
        self.last_end: float | None = None
        self.last_dt = 0.0  # the duration of the call before
        self.redo = 0  # rounds left out of the choice for a gap (see `_round_done`)
        self.round_gap = 0.0  # the longest gap before a timed call of this round
        self.late = 0  # timed calls that began long after the call before (run again)
        self.prev_disturbed = False  # the call before began long after the one before it
        self.prev_gap = 0.0  # and that gap
        self.rechecked = False  # a one-thread choice was timed again after its VERIFY calls
        self.ran: set = set()  # the plans that ran at least once (their kernels compiled)
        self.dropped: set = set()  # plans the last timing dropped by DROP (see `_retune`)
        self.retunes = 0  # re-timings so far
        self.interval = self.RETUNE  # calls from a re-timing to the next
        self.next_retune = self.RETUNE  # the call that times the plans again
        self.prev_choice = -1  # the choice before a re-timing (-1: none)
        self.ties = 0  # choices made by `_tie` (tests, logs)

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

    def _start(self, plans: tuple) -> None:
        """Time `plans` from the next call: first one untimed call of each plan never run (its
        kernels compile), then TRIALS rounds of pairs."""
        self.choice, self.verify, self.timed = -1, None, plans
        self.times, self.rounds, self.round = ([], [], []), [], {}
        self.min_gap, self.redo, self.round_gap, self.late = float("inf"), 0, 0.0, 0
        self.queue = [(p, False) for p in plans if p not in self.ran]
        if not self.queue:
            self._next_round()

    def _next_round(self) -> None:
        """Queue a round's pairs: the plans in turn, in reverse order every other round (a load
        that drifts during the trials favours no plan)."""
        self.round = {}
        order = self.timed[::-1] if len(self.rounds) % 2 else self.timed
        self.queue = [(p, t) for p in order for t in (False, True)]

    def begin(self) -> float:
        """Set the plan for this call; returns the start time."""
        now = perf_counter()
        self.calls += 1
        _running.add(self)
        if self.last_end is not None:
            self.gap = now - self.last_end
            self.min_gap = min(self.min_gap, self.gap)
        if len(_running) > 1:  # another replay runs now: one thread for both (see above)
            _overlap[0] = self.overlap = next(_overlap_ids)
            self.trial = -3  # (untimed)
            _state["parallel"] = _state["split"] = _state["halves"] = False
            return perf_counter()
        self.overlap = _overlap[0]
        if self.calls == 1 and not self.fixed:
            if _cores() <= 1:
                self.fixed = True  # one usable core: never time the every-core plan
                self.choice = 0
            else:
                self._start(self._plans())
        elif self.calls >= self.next_retune and not self.fixed and self.settled:
            self._retune()  # the load may have changed: time the plans again
        if self.choice >= 0:
            self.trial = 3 if self.verify is not None else -1  # 3: a check of the choice
            plan = self.choice
        else:
            if not self.queue:  # (after the first calls)
                self._next_round()
            plan, timed = self.queue.pop(0)
            self.trial = plan if timed else -2  # -2: untimed (a pair's first, a first call)
        self.ran.add(plan)
        _state["parallel"] = plan == 1
        if plan == HALVES_PLAN:
            _state["split"] = _state["halves"] = _two_blas_threads()
        else:  # (the one-thread plan with SPLIT or HALVES on: A/B runs)
            one = plan == 0
            _state["split"] = one and split_allowed()
            _state["halves"] = one and HALVES["on"] and _two_blas_threads()
        return perf_counter()

    def _retune(self) -> None:
        """Time the plans again. A re-timing costs calls on the slower plans (every core ran
        2-7x one thread's time at the GPT step on two cores), so: a plan the last timing
        dropped by DROP is left out except at every READMIT-th re-timing, and each re-timing
        that keeps the choice doubles the calls to the next (RETUNE, 2 RETUNE, ... RETUNE_MAX;
        a changed choice starts again at RETUNE)."""
        self.retunes += 1
        self.rechecked = False
        self.prev_choice = self.choice
        plans = self._plans()
        if self.retunes % self.READMIT:
            plans = tuple(p for p in plans if p not in self.dropped) or plans
        else:
            self.dropped = set()
        self.next_retune = self.calls + self.interval  # (updated when the choice is made)
        self._start(plans)

    def _disturbed(self) -> bool:
        """Whether something else ran between the call before and this one: a gap GAP x the
        smallest of this timing and GAP_CALL x the call before (another library's calls in a
        benchmark's round; a training loop's steady data loading sets the smallest gap)."""
        return self.gap > self.GAP * self.min_gap and self.gap > self.GAP_CALL * self.last_dt

    def end(self, t0: float) -> None:
        now = perf_counter()
        _state["parallel"] = _state["split"] = _state["halves"] = False
        _running.discard(self)
        # (this call or the one before began long after the call before it: the other
        # library's threads may still spin through the second call after its block too)
        disturbed = self._disturbed() or self.prev_disturbed
        self.prev_disturbed = self._disturbed()
        gap = self.gap if self.gap > self.GAP_CALL * self.last_dt else 0.0
        gap, self.prev_gap = max(gap, self.prev_gap), gap
        self.last_end, self.last_dt = now, now - t0
        if self.trial < 0:  # a chosen plan, an untimed call
            return
        dt = now - t0
        overlapped = _overlap[0] != self.overlap  # another replay ran meanwhile: not a timing
        if self.trial == 3:  # the choice: does it keep its trials' promise?
            if not (disturbed or overlapped):
                self.verify.append(dt)
                if len(self.verify) >= self.VERIFY:
                    self._check(_median(self.verify))
            return
        if overlapped:  # this pair again
            self.queue[:0] = [(self.trial, False), (self.trial, True)]
            return
        if disturbed and self.late < self.LATE:  # another timed call right after this one
            self.late += 1
            self.queue.insert(0, (self.trial, True))
            return
        self.times[self.trial].append(dt)
        self.round[self.trial] = dt
        self.round_gap = max(self.round_gap, gap)
        if not self.queue:
            self._round_done()

    def _round_done(self) -> None:
        """A round's timings are in: drop a plan that lost by DROP, time another round, or
        choose by the rounds whose timed calls began within GAP x the smallest gap after the
        call before (judged at the end: a benchmark's single-call warm-up has only long gaps).
        After TRIALS such rounds the choice is made only once the leading plan is apart from
        the next (`_leader`); while they are within each other's noise rounds go on, up to
        ROUNDS_MAX, and a tie there goes to `_tie`'s choice."""
        self.rounds.append((self.round, self.round_gap))
        self.round_gap = 0.0
        clean = [r for r, gap in self.rounds if gap <= self.GAP * self.min_gap]
        if clean and clean[-1] is self.round and len(clean) >= 2:  # lost widely in two rounds
            lost = [p for p in self.timed if p and all(r[p] > self.DROP * min(r.values())
                                                         for r in clean[-2:])]  # fmt: skip
            self.timed = tuple(p for p in self.timed if p not in lost)
            self.dropped.update(lost)
        if len(clean) < self.TRIALS and len(self.rounds) < self.TRIALS + self.REDO:
            self._next_round()
            return
        self.redo = len(self.rounds) - len(clean)
        rounds = [r for r in clean if all(p in r for p in self.timed)] or [
            r for r, _ in self.rounds if all(p in r for p in self.timed)
        ]
        choice, rival, apart = self._leader(rounds)
        if not apart and len(self.rounds) < self.ROUNDS_MAX:
            self._next_round()
            return
        if not apart:
            choice = self._tie(choice, rival, rounds)
        self.ties += not apart
        self.times = tuple([r[p] for r in rounds if p in r] for p in range(3))
        self.choice, self.verify = choice, []
        if self.prev_choice >= 0:  # a re-timing: back off while the choice holds
            same = choice == self.prev_choice
            self.interval = min(2 * self.interval, self.RETUNE_MAX) if same else self.RETUNE
            self.prev_choice = -1
        # counted from the choice, the first one's too (session 31: a timing of up to 20
        # rounds put the first re-timing, at call RETUNE, inside benchmarks/compile.py's timed
        # rounds, and its report said "still timing")
        self.next_retune = self.calls + self.interval

    def _leader(self, rounds: list) -> tuple:
        """(the leading plan, the next, whether they are apart) over `rounds` ({plan: seconds}
        each). A plan's score in a round is log(its time / one thread's) - log(its margin):
        every core's MARGIN, the halves' HALVES_MARGIN, one thread's 0; the leader has the
        smallest median score. Apart: the median of the per-round differences of the two
        scores is further from 0 than Z x the median's standard error, taken as 1.253 x the
        differences' interquartile range / 1.349 / sqrt(rounds) (the normal's; the quartiles
        are robust to a spike or two, which a standard deviation is not)."""
        margin = {0: 1.0, 1: self.MARGIN, HALVES_PLAN: self.HALVES_MARGIN}
        plans = [p for p in self.timed if p in margin]
        if len(plans) < 2 or not rounds:
            return 0, None, True
        scores = {p: [math.log(r[p] / r[0] / margin[p]) for r in rounds] for p in plans}
        order = sorted(plans, key=lambda p: (_median(scores[p]), p))
        lead, rival = order[0], order[1]
        d = sorted(a - b for a, b in zip(scores[lead], scores[rival], strict=True))
        q1, mid, q3 = _quantile(d, 0.25), _median(d), _quantile(d, 0.75)
        se = 1.253 * (q3 - q1) / 1.349 / math.sqrt(len(d))
        return lead, rival, abs(mid) > self.Z * se

    @staticmethod
    def _tie(lead: int, rival: int, rounds: list) -> int:
        """Two plans still within each other's noise after ROUNDS_MAX rounds: one thread over
        every core (every core's spinning threads cost outside its calls); else the one with
        the smaller median time ratio to one thread over all the rounds, margins left out, one
        thread on an exact tie. The best estimate there is, from the most rounds: the halves
        at the GPT step on the Intel host (median per-round ratio 0.913 over 150 rounds,
        session 31; 0.947, 0.948 in session 30's blocks), one thread at the MLP step (a
        20-round tie there, 2.16 against 2.11 ms: session 31's first rule, the halves on any
        tie, chose the halves and the step ran 0.83 x jax.jit against 0.75)."""
        pair = (lead, rival)
        if 0 in pair and 1 in pair:
            return 0
        if 1 in pair:  # (every core and the halves: the halves)
            return HALVES_PLAN
        p = HALVES_PLAN if HALVES_PLAN in pair else lead
        r = _median([math.log(x[p] / x[0]) for x in rounds])
        return p if r < 0 else 0

    def _check(self, steady: float) -> None:
        """After VERIFY calls of the choice (median `steady`). Every core or the halves slower
        than VERIFY_SLACK x one thread's trials (its median), or one thread slower than
        RECHECK_SLACK x its own (the trials ran on a quieter machine, or were disturbed): the
        plans are timed again, once; a choice that misses again runs on (one thread), or gives
        way to one thread (every core, the halves)."""
        self.verify = None
        one = _median(self.times[0])
        if steady <= (self.VERIFY_SLACK if self.choice else self.RECHECK_SLACK) * one:
            return
        if not self.rechecked and len(self.timed) > 1:
            self.rechecked = True
            self._start(self.timed)
        elif self.choice:
            self.choice = 0

    @property
    def settled(self) -> bool:
        """Whether the plan is chosen and checked (no trial or VERIFY call to come before the
        next RETUNE): benchmarks time the steady state from then on."""
        return self.choice >= 0 and self.verify is None

    @property
    def parallel(self) -> bool | None:
        """Whether the every-core plan runs: True/False once chosen, None while timing."""
        return None if self.choice < 0 else self.choice == 1

    @property
    def plan(self) -> int | None:
        """The chosen plan (0 one thread, 1 every core, 2 halves), None while timing."""
        return None if self.choice < 0 else self.choice


def _quantile(s: list, q: float) -> float:
    """The q-quantile of the sorted list s, linearly interpolated (NumPy's default)."""
    x = q * (len(s) - 1)
    i = int(x)
    return s[i] if i + 1 >= len(s) else s[i] + (s[i + 1] - s[i]) * (x - i)


def _median(xs: list) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


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
