"""descent.compile's thread plans, session 27 (helper-192): the halves plan.

`threads.ThreadPlan` times a third plan, `HALVES_PLAN` (the one-thread kernels with the split
sites and attention's halves on the split worker), in the same pairs as one thread and every
core, wherever NumPy's BLAS runs two threads on two usable cores, and keeps it when it is
`HALVES_MARGIN` faster than one thread over whole calls. Checked here with a fake clock (the
choice) and on compiled GPT steps with the plan forced (eager's bits, default and exact modes).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

from descent import halves  # noqa: E402
from descent.compiler import threads  # noqa: E402
from test_compile_gpt_s14 import _assert_bitwise, _gpt_train  # noqa: E402


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _plan_now() -> int:
    s = threads._state
    if s["parallel"]:
        assert not s["split"] and not s["halves"]
        return 1
    assert s["split"] == s["halves"]  # the halves plan turns both on, one thread neither
    return threads.HALVES_PLAN if s["split"] else 0


def _drive(plan, clock, cost, calls):
    """`calls` fake replays; cost(plan number) is each call's duration. Returns the plans run."""
    used = []
    for _ in range(calls):
        t0 = plan.begin()
        p = _plan_now()
        used.append(p)
        clock.now += cost(p)
        plan.end(t0)
        assert not any(threads._state.values())  # reset after each call
    return used


@pytest.fixture
def clock(monkeypatch):
    c = _Clock()
    monkeypatch.setattr(threads, "perf_counter", c)
    monkeypatch.setattr(threads, "_cores", lambda: 2)
    monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
    return c


@pytest.mark.parametrize(
    "costs, expect",
    [
        ((1.0, 1.5, 0.9), 2),  # the halves 10% faster: kept
        ((1.0, 1.5, 0.99), 0),  # 1% faster: under HALVES_MARGIN, one thread
        ((1.0, 1.5, 1.2), 0),
        ((1.0, 0.5, 0.9), 1),  # every core faster still: the fastest wins
        ((1.0, 0.97, 0.9), 2),  # every core under its own MARGIN (5%), the halves over theirs
    ],
)
def test_the_halves_plan_is_timed_in_pairs_and_kept_when_faster(clock, costs, expect):
    plan = threads.ThreadPlan()
    # (session 30: each plan once untimed first; a plan is timed in its first two rounds only
    # where it took over DROP x the round's fastest plan in both)
    rounds = [2 if p and c > plan.DROP * min(costs) else plan.TRIALS for p, c in enumerate(costs)]
    used = _drive(plan, clock, lambda p: costs[p], 3 + 2 * sum(rounds))
    assert used[:9] == [0, 1, 2, 0, 0, 1, 1, 2, 2]  # in pairs, the second of each timed
    assert sorted(used) == [p for p in (0, 1, 2) for _ in range(1 + 2 * rounds[p])]
    assert plan.plan == expect and plan.parallel is (expect == 1)
    # a choice other than one thread is checked on VERIFY calls that keep their promise
    assert _drive(plan, clock, lambda p: costs[p], 10) == [expect] * 10
    assert plan.plan == expect


def test_the_halves_plan_is_dropped_when_its_steady_state_is_slower(clock):
    plan = threads.ThreadPlan()
    # (every core, 1.5 > DROP x 0.8, is timed in two rounds only: session 30)
    _drive(plan, clock, lambda p: (1.0, 1.5, 0.8)[p], 3 + 6 + 6 + 4 * (plan.TRIALS - 2))
    assert plan.plan == threads.HALVES_PLAN and plan.verify == []
    used = _drive(plan, clock, lambda p: (1.0, 1.5, 3.0)[p], plan.VERIFY + 2 * plan.TRIALS + 14)
    # (session 30: the plans are timed again once; the halves, 3x one thread, in two rounds)
    assert used[: plan.VERIFY + 10] == [2] * plan.VERIFY + [0, 0, 2, 2, 2, 2, 0, 0, 0, 0]
    assert used[-4:] == [0] * 4 and plan.rechecked
    assert plan.plan == 0


def test_the_halves_plan_is_timed_again_every_retune_calls(clock):
    plan = threads.ThreadPlan()
    _drive(plan, clock, lambda p: (1.0, 1.5, 0.8)[p], 3 + 6 * plan.TRIALS + plan.VERIFY)
    assert plan.plan == threads.HALVES_PLAN
    n = plan.next_retune - plan.calls + 6 * plan.TRIALS  # (RETUNE calls after the choice)
    _drive(plan, clock, lambda p: (1.0, 1.5, 1.3)[p], n)  # the load changed: halves lose
    assert plan.plan == 0


@pytest.mark.parametrize("why", ["one BLAS thread or one core", "TIME_HALVES off"])
def test_no_halves_plan_without_two_blas_threads(clock, monkeypatch, why):
    """Pinned to one core or with NumPy's BLAS at one thread the halves would run whole calls:
    only one thread and every core are timed, as before session 27 (likewise TIME_HALVES off)."""
    if why == "TIME_HALVES off":
        monkeypatch.setitem(threads.TIME_HALVES, "on", False)
    else:
        monkeypatch.setattr(threads, "_two_blas_threads", lambda: False)
    plan = threads.ThreadPlan()
    used = _drive(plan, clock, lambda p: (1.0, 1.5, 0.1)[p], 2 + 4 * plan.TRIALS + 5)
    assert set(used) == {0, 1} and used[-5:] == [0] * 5
    assert plan.plan == 0


def test_fixed_halves_plan_runs_without_trials(clock):
    plan = threads.ThreadPlan()
    plan.fix(threads.HALVES_PLAN)
    assert _drive(plan, clock, lambda p: 1.0, plan.RETUNE + 3) == [2] * (plan.RETUNE + 3)
    plan.fix(True)  # (bools as before: every core)
    assert _drive(plan, clock, lambda p: 1.0, 3) == [1] * 3


@pytest.fixture
def halves_plan(monkeypatch):
    """Every program's plan fixed to the halves plan, two BLAS threads assumed (whatever this
    machine has); yields counters of the split and halved calls."""
    from descent.compiler import fusion
    from descent.compiler import replay_kernels as rk

    monkeypatch.setattr(threads, "_two_blas_threads", lambda: True)
    monkeypatch.setattr(halves, "two_blas_threads", lambda: True)  # eager's halves too
    init0 = threads.ThreadPlan.__init__

    def init(self):
        init0(self)
        self.fix(threads.HALVES_PLAN)

    monkeypatch.setattr(threads.ThreadPlan, "__init__", init)
    seen = {"run_halves": 0, "attention": 0}
    run0, f0, b0 = threads.run_halves, rk._sdpa_forward_halves, rk._sdpa_backward_halves

    def run_halves(parts, fn):
        seen["run_halves"] += 1
        return run0(parts, fn)

    def fwd(*a):
        seen["attention"] += 1
        return f0(*a)

    def bwd(*a):
        seen["attention"] += 1
        return b0(*a)

    monkeypatch.setattr(threads, "run_halves", run_halves)
    monkeypatch.setattr(fusion, "run_halves", run_halves)
    monkeypatch.setattr(rk, "run_halves", run_halves)
    monkeypatch.setattr(halves, "run_halves", run_halves)  # eager's (descent/halves.py)
    monkeypatch.setattr(rk, "_sdpa_forward_halves", fwd)
    monkeypatch.setattr(rk, "_sdpa_backward_halves", bwd)
    return seen


@pytest.mark.parametrize("exact", [False, True])
def test_gpt_step_on_the_halves_plan_is_bitwise_eager(halves_plan, exact):
    """Six compiled AdamW + clip steps of a one-layer GPT at the benchmark's sizes (batch 12,
    T 64, 4 heads of 32, width 128: GELU's forward, attention and the AdamW step over their
    minimum sizes) on the halves plan: losses, gradients and parameters are eager's bits."""
    sizes = dict(vocab_size=65, block_size=64, n_layer=1, n_head=4, n_embd=128)
    eager, _ = _gpt_train(False, 6, config=sizes, batch=12)
    # eager's own halves (descent/halves.py, session 28): attention's forward and backward, GELU's
    # forward and the qkv gradient's assembly each step; never the replay's kernels
    assert halves_plan == {"run_halves": 4 * 6, "attention": 0}
    halves_plan.update(run_halves=0)
    compiled, f = _gpt_train(True, 6, config=sizes, batch=12, exact=exact)
    _assert_bitwise(eager, compiled)
    replays = f.stats["replays"]
    assert replays >= 2
    # per replay: attention forward and backward in halves, GELU's forward and AdamW split
    assert halves_plan["attention"] >= 2 * replays
    assert halves_plan["run_halves"] >= 4 * replays
    assert all(np.isfinite(a).all() for a in compiled[:1])
