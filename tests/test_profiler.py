"""descent.profiler (torch.profiler's interface): op events from the engine's hooks, nested
record_function ranges, key_averages tables, chrome traces, schedules as torch's."""

from __future__ import annotations

import json
import time

import pytest
import torch

import descent as ds
from descent.compiler import CompileWarning
from descent.profiler import ProfilerActivity, profile, record_function, schedule


def _model():
    ds.manual_seed(0)
    return ds.nn.Sequential(ds.nn.Linear(8, 8), ds.nn.ReLU(), ds.nn.Linear(8, 2))


def test_ops_ranges_and_totals():
    m, x = _model(), ds.randn(4, 8)
    m(x)  # warm: first calls may load kernels
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(2):
            with record_function("step"):
                with record_function("forward"):
                    loss = m(x).sum()
                loss.backward()
    wall = (time.perf_counter() - t0) * 1e6
    rows = {r.key: r for r in prof.key_averages()}
    assert rows["Linear"].count == 4 and rows["Relu"].count == 2 and rows["step"].count == 2
    assert rows["LinearBackward"].count == 4
    assert rows["step"].cpu_time_total >= rows["forward"].cpu_time_total
    inner = sum(r.cpu_time_total for k, r in rows.items() if k not in ("step", "forward"))
    assert rows["step"].cpu_time_total >= inner * 0.999  # ops happen inside the steps
    total_self = sum(r.self_cpu_time_total for r in rows.values())
    assert total_self <= wall and total_self >= 0.5 * rows["step"].cpu_time_total
    table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=3)
    assert "Self CPU %" in table and "# of Calls" in table and table.count("\n") == 7
    by_shape = prof.key_averages(group_by_input_shape=True)
    assert any(r.key == "Linear" and "[4, 8]" in r.input_shapes for r in by_shape)
    with pytest.raises(ValueError, match="sort_by"):
        prof.key_averages().table(sort_by="cuda_time")


def test_chrome_trace_is_valid_json(tmp_path):
    m, x = _model(), ds.randn(4, 8)
    with profile() as prof:
        with record_function("fwd"):
            m(x)
    path = tmp_path / "t.json"
    prof.export_chrome_trace(str(path))
    events = json.loads(path.read_text())["traceEvents"]
    names = [e["name"] for e in events]
    assert "fwd" in names and "Linear" in names
    assert all(e["ph"] == "X" and e["dur"] >= 0 for e in events)


@pytest.mark.parametrize("args", [dict(wait=1, warmup=1, active=2), dict(wait=0, warmup=0,
                         active=1, repeat=2), dict(wait=2, warmup=1, active=3, repeat=1,
                         skip_first=3)])  # fmt: skip
def test_schedule_matches_torch(args):
    ours, theirs = schedule(**args), torch.profiler.schedule(**args)
    assert [ours(i).name for i in range(30)] == [theirs(i).name for i in range(30)]


def test_schedule_records_only_active_steps_and_calls_on_trace_ready():
    m, x = _model(), ds.randn(4, 8)
    ready = []
    with profile(schedule=schedule(wait=1, warmup=1, active=1),
                 on_trace_ready=lambda p: ready.append(len(p.events))) as prof:  # fmt: skip
        for _ in range(3):
            m(x)
            prof.step()
    counts = {r.key: r.count for r in prof.key_averages()}
    assert counts["Linear"] == 2  # the third step only
    assert ready and ready[0] > 0


def test_compile_runs_eagerly_under_the_profiler():
    m, x = _model(), ds.randn(4, 8)

    @ds.compile
    def f(x):
        with ds.no_grad():
            return m(x)

    f(x)
    f(x)
    with profile() as prof, pytest.warns(CompileWarning, match="hooks"):
        f(x)
    assert any(r.key == "Linear" for r in prof.key_averages())
