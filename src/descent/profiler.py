"""`torch.profiler` for descent: where a step's time goes, op by op.

    from descent.profiler import profile, record_function, ProfilerActivity
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function("train_step"):
            loss = model(x).sum(); loss.backward()
    print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=10))
    prof.export_chrome_trace("trace.json")   # chrome://tracing or https://ui.perfetto.dev

How it measures: the engine calls the profiler after every op's forward and after every
node's backward (`descent.hooks.add_op_hook`). Each event's time is the time since the previous
event (or since the enclosing `record_function` began), so it includes the Python that ran
between two ops; a forward op is named by its class (`MatMul`), a backward node by its graph
name (`MatMulBackward`). `record_function` ranges nest and measure their whole body ("CPU
total"); their "self" time is the part no op inside claimed. While a profiler is active,
`descent.compile` runs steps eagerly (it must see every op). CUDA times are not measured (a
GPU run shows the CPU time of launching its kernels).
"""

from __future__ import annotations

import enum as _enum
import json as _json
import os
import threading as _threading
import time as _time
from collections import defaultdict as _defaultdict

from . import hooks as _hooks
from .autograd_profiler_util import EventList as _EventList
from .autograd_profiler_util import FunctionEventAvg as _FunctionEventAvg

__all__ = [
    "ProfilerAction", "ProfilerActivity", "profile", "record_function", "schedule",
    "tensorboard_trace_handler",
]  # fmt: skip


class ProfilerActivity(_enum.Enum):
    CPU = "CPU"
    CUDA = "CUDA"


class ProfilerAction(_enum.Enum):
    NONE = 0
    WARMUP = 1
    RECORD = 2
    RECORD_AND_SAVE = 3


def schedule(*, wait: int, warmup: int, active: int, repeat: int = 0, skip_first: int = 0):
    """torch.profiler.schedule: which `prof.step()` calls record (wait, warmup, active)."""

    def fn(step: int) -> ProfilerAction:
        if step < skip_first:
            return ProfilerAction.NONE
        step -= skip_first
        cycle = wait + warmup + active
        if repeat > 0 and step // cycle >= repeat:
            return ProfilerAction.NONE
        pos = step % cycle
        if pos < wait:
            return ProfilerAction.NONE
        if pos < wait + warmup:
            return ProfilerAction.WARMUP
        return ProfilerAction.RECORD_AND_SAVE if pos == cycle - 1 else ProfilerAction.RECORD

    return fn


def tensorboard_trace_handler(dir_name: str, worker_name: str | None = None):
    """An `on_trace_ready` that writes each trace as `<dir>/<worker>.<time>.pt.trace.json`."""

    def handler(prof) -> None:
        os.makedirs(dir_name, exist_ok=True)
        name = worker_name or f"{os.uname().nodename}_{os.getpid()}"
        prof.export_chrome_trace(os.path.join(dir_name, f"{name}.{_time.time_ns()}.pt.trace.json"))

    return handler


class _Event:
    __slots__ = ("name", "start", "dur", "shapes", "kind", "self_time")

    def __init__(self, name, start, dur, shapes, kind) -> None:
        self.name, self.start, self.dur, self.shapes, self.kind = name, start, dur, shapes, kind
        self.self_time = dur


_active: list = []  # the recording profilers (record_function reports to them)


class record_function:  # noqa: N801 - torch's name
    """A named range (`with record_function("forward"): ...`) shown as one row and one span."""

    def __init__(self, name: str, args=None) -> None:
        self.name = name

    def __enter__(self) -> record_function:
        for p in _active:
            p._push(self.name)
        return self

    def __exit__(self, *exc) -> None:
        for p in _active:
            p._pop()


class profile:  # noqa: N801 - torch's name
    """Record the ops of the block (torch.profiler.profile's interface, CPU times)."""

    def __init__(self, *, activities=None, schedule=None, on_trace_ready=None,
                 record_shapes: bool = False, profile_memory: bool = False,
                 with_stack: bool = False, with_flops: bool = False, with_modules: bool = False,
                 experimental_config=None, execution_trace_observer=None,
                 acc_events: bool = False, use_cuda=None) -> None:  # fmt: skip
        self.record_shapes = record_shapes
        self.schedule = schedule
        self.on_trace_ready = on_trace_ready
        self.step_num = 0
        self.events: list[_Event] = []
        self._stack: list = []  # open record_function ranges: [name, start, claimed]
        self._last = 0.0
        self._handle = None
        self._lock = _threading.Lock()
        self._t0 = 0.0

    # -- recording -------------------------------------------------------------------------
    def _recording(self) -> bool:
        if self.schedule is None:
            return True
        return self.schedule(self.step_num) in (ProfilerAction.RECORD,
                                                ProfilerAction.RECORD_AND_SAVE)  # fmt: skip

    def _op(self, name: str, shapes) -> None:
        now = _time.perf_counter()
        with self._lock:
            dur = now - self._last
            self._last = now
            if not self._recording():
                return
            self.events.append(_Event(name, now - dur, dur, shapes, "op"))
            if self._stack:
                self._stack[-1][2] += dur

    def _forward(self, op, inputs, out) -> None:
        shapes = None
        if self.record_shapes:
            shapes = [list(getattr(t, "shape", ())) for t in inputs]
        self._op(type(op).__name__, shapes)

    def _backward(self, node, gy, gxs) -> None:
        self._op(str(getattr(node, "name", type(node).__name__)), None)

    def _push(self, name: str) -> None:
        now = _time.perf_counter()
        self._last = now
        self._stack.append([name, now, 0.0])

    def _pop(self) -> None:
        now = _time.perf_counter()
        name, start, claimed = self._stack.pop()
        self._last = now
        if self._recording():
            ev = _Event(name, start, now - start, None, "range")
            ev.self_time = max(now - start - claimed, 0.0)
            self.events.append(ev)
        if self._stack:
            self._stack[-1][2] += now - start

    # -- context ---------------------------------------------------------------------------
    def start(self) -> None:
        self._t0 = self._last = _time.perf_counter()
        self._handle = _hooks.add_op_hook(forward=self._forward, backward=self._backward)
        _active.append(self)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        if self in _active:
            _active.remove(self)
        if self.on_trace_ready is not None:
            self.on_trace_ready(self)

    def __enter__(self) -> profile:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def step(self) -> None:
        """Mark the end of a training step (for `schedule`)."""
        action = self.schedule(self.step_num) if self.schedule is not None else None
        self.step_num += 1
        if action is ProfilerAction.RECORD_AND_SAVE and self.on_trace_ready is not None:
            self.on_trace_ready(self)

    # -- results ---------------------------------------------------------------------------
    def key_averages(
        self, group_by_input_shape: bool = False, group_by_stack_n: int = 0
    ) -> _EventList:
        rows: dict = {}
        for ev in self.events:
            shapes = str(ev.shapes) if (group_by_input_shape and ev.shapes is not None) else None
            key = (ev.name, shapes)
            row = rows.get(key)
            if row is None:
                row = rows[key] = _FunctionEventAvg(ev.name, shapes)
            row.count += 1
            row.cpu_time_total += ev.dur * 1e6
            row.self_cpu_time_total += ev.self_time * 1e6
        return _EventList(rows.values())

    def events_list(self) -> list:
        return list(self.events)

    def export_chrome_trace(self, path: str) -> None:
        """Write the events as a Chrome trace (chrome://tracing, Perfetto)."""
        pid, tid = os.getpid(), _threading.get_ident() % 2**31
        trace = [{"name": ev.name, "ph": "X", "ts": (ev.start - self._t0) * 1e6,
                  "dur": ev.dur * 1e6, "pid": pid, "tid": tid,
                  "cat": "cpu_op" if ev.kind == "op" else "user_annotation",
                  **({"args": {"Input Dims": ev.shapes}} if ev.shapes is not None else {})}
                 for ev in self.events]  # fmt: skip
        with open(path, "w") as f:
            _json.dump({"traceEvents": trace, "displayTimeUnit": "ms"}, f)

    def summary_by_name(self) -> dict:
        """name -> total seconds (a plain dict, for scripts)."""
        out: dict = _defaultdict(float)
        for ev in self.events:
            out[ev.name] += ev.dur
        return dict(out)
