"""descent.compile's thread plan re-timings, session 30 (the lead): what they cost.

A re-timing runs every plan again, the slow ones too: at the baby-gpt step on two cores the
every-core plan ran 2-7x one thread's time, and the re-timing came every 200 calls (~2-12% of
those calls). Since session 30 a re-timing that keeps the choice doubles the calls to the next
(RETUNE, 2 RETUNE, ..., RETUNE_MAX), a changed choice starts again at RETUNE, and a plan the last
timing dropped by DROP is left out except at every READMIT-th re-timing. Each case fails on
threads.py before that change (a re-timing every RETUNE calls with every plan).
"""

from __future__ import annotations

import pytest

pytest.importorskip("numba")

from descent.compiler import threads  # noqa: E402

ONE, EVERY, HALVES = 0, 1, threads.HALVES_PLAN


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(threads, "perf_counter", c)
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
    return c


def _run(plan, clock, cost, n):
    """n fake replays back to back; the plan each ran (0 one thread, 1 every core, 2 halves)."""
    used = []
    for _ in range(n):
        t0 = plan.begin()
        s = threads._state
        p = EVERY if s["parallel"] else (HALVES if s["split"] else ONE)
        clock.now += cost[p]
        plan.end(t0)
        used.append(p)
    return used


def _timings(used):
    """The call numbers (1-based) where a timing began: a call off the steady plan after 40
    calls of it (a timing's own rounds alternate plans more often than that)."""
    steady = used[-1]
    return [
        i + 1
        for i, p in enumerate(used)
        if p != steady and (i == 0 or (i >= 40 and set(used[i - 40 : i]) == {steady}))
    ]


def test_retimings_back_off_while_the_choice_holds(clock):
    plan = threads.ThreadPlan()
    cost = {ONE: 1.0, EVERY: 4.0, HALVES: 0.9}  # the GPT step's shape on two cores
    used = _run(plan, clock, cost, 1700)
    assert plan.plan == HALVES
    starts = _timings(used)
    # the first timing at call 1, then re-timings RETUNE, 2 RETUNE, 4 RETUNE ... calls apart
    # (each counted from the end of the last timing's choice)
    gaps = [b - a for a, b in zip(starts[1:], starts[2:])]
    assert len(starts) == 4, starts  # 1, ~200, ~600, ~1400 (before: every 200, 9 in 1700)
    assert gaps[0] > 1.9 * threads.ThreadPlan.RETUNE and gaps[1] > 3.9 * threads.ThreadPlan.RETUNE
    assert plan.interval == 8 * threads.ThreadPlan.RETUNE
    # every core, dropped as 4x slower in the first timing, is not timed in the re-timings
    # before the READMIT-th (before: 4 calls of it at 4x in each)
    first_retune = starts[1]
    assert EVERY in used[:first_retune]
    assert EVERY not in used[first_retune - 1 :]


def test_the_interval_is_capped_and_a_dropped_plan_comes_back(clock, monkeypatch):
    monkeypatch.setattr(threads.ThreadPlan, "RETUNE", 20)
    monkeypatch.setattr(threads.ThreadPlan, "RETUNE_MAX", 80)
    plan = threads.ThreadPlan()
    cost = {ONE: 1.0, EVERY: 4.0, HALVES: 0.9}
    used = _run(plan, clock, cost, 60)
    assert EVERY in used[:20] and EVERY not in used[20:]
    while plan.retunes < threads.ThreadPlan.READMIT - 1:
        _run(plan, clock, cost, 1)
    assert plan.interval == 80  # 20, 40, 80, then capped
    used = _run(plan, clock, cost, 200)  # the READMIT-th re-timing runs every plan again
    assert plan.retunes >= threads.ThreadPlan.READMIT
    assert EVERY in used and plan.plan == HALVES
    assert plan.interval == 80


def test_a_changed_choice_starts_again_at_retune(clock):
    plan = threads.ThreadPlan()
    cost = {ONE: 1.0, EVERY: 4.0, HALVES: 0.9}
    _run(plan, clock, cost, 700)
    assert plan.plan == HALVES and plan.interval == 4 * threads.ThreadPlan.RETUNE
    cost[HALVES] = 1.3  # the load changed: the halves lose
    _run(plan, clock, cost, 4 * threads.ThreadPlan.RETUNE + 100)
    assert plan.plan == ONE
    assert plan.interval == threads.ThreadPlan.RETUNE
