"""benchmarks/_common.time_interleaved: contestants interleaved in blocks whose first call is
not timed (the previous library's spinning thread pools land on it), or single calls."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def common(monkeypatch):
    monkeypatch.setenv("DESCENT_BENCH_REEXEC", "1")  # never re-execute the test process
    monkeypatch.syspath_prepend(str(BENCH))
    mod = importlib.import_module("_common")
    yield mod
    sys.modules.pop("_common", None)


def _contestants(common, monkeypatch, first_cost):
    """Two fake contestants on a fake clock: a call right after the OTHER contestant costs
    `first_cost` (its aftermath), a call after itself costs 1 (a) or 2 (b)."""
    clock = SimpleNamespace(now=0.0, last=None, order=[])
    monkeypatch.setattr(common, "time", SimpleNamespace(perf_counter=lambda: clock.now,
                                                        process_time=lambda: clock.now / 2))

    def make(name, cost):
        def f():
            clock.now += cost if clock.last in (name, None) else first_cost
            clock.last = name
            clock.order.append(name)

        return f

    return {"a": make("a", 1.0), "b": make("b", 2.0)}, clock


def test_blocks_time_each_contestant_after_itself(common, monkeypatch):
    fns, clock = _contestants(common, monkeypatch, first_cost=50.0)
    med = common.time_interleaved(fns, repeats=5, warmup=1, block=4)
    assert med == {"a": 1.0, "b": 2.0}  # the aftermath (50) is never timed
    assert clock.order[2:10] == ["a"] * 4 + ["b"] * 4  # after the warm-up round: blocks
    med = common.time_interleaved(fns, repeats=5, warmup=0, block=4, cpu=True)
    assert med == {"a": (1.0, 0.5), "b": (2.0, 0.5)}  # (median, CPU time / wall time)


def test_single_calls_pay_the_previous_contestants_aftermath(common, monkeypatch):
    fns, _ = _contestants(common, monkeypatch, first_cost=50.0)
    med = common.time_interleaved(fns, repeats=5, warmup=1, block=1)
    assert med == {"a": 50.0, "b": 50.0}  # what single interleaved calls measured
