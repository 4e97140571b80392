"""`torch.utils.benchmark`: time a statement the way PyTorch's benchmark scripts do.

    from descent.utils.benchmark import Timer, Compare
    t = Timer("x @ w", globals={"x": x, "w": w}, label="matmul", sub_label="256",
              description="descent")
    m = t.blocked_autorange(min_run_time=0.2)     # Measurement: median, mean, iqr, times
    print(m)                                      # PyTorch's report, with its IQR warning
    Compare([m, m2]).print()                      # a table by label / sub_label / description

`Timer` compiles `stmt` and `setup` with `timeit`, runs them with `num_threads` threads
(descent.set_num_threads, restored afterwards) and returns `Measurement`s whose fields and
printed form follow PyTorch's. Times are wall-clock seconds per run of `stmt`.
"""

from __future__ import annotations

import math
import statistics as _statistics
import textwrap as _textwrap
import time as _time
import timeit as _timeit
from collections.abc import Callable as _Callable
from dataclasses import dataclass as _dataclass
from dataclasses import field as _field
from typing import Any as _Any

__all__ = ["Timer", "Measurement", "TaskSpec", "Compare"]

_UNITS = ((1e-9, "ns"), (1e-6, "us"), (1e-3, "ms"), (1.0, "s"))


def _unit(t: float) -> tuple[float, str]:
    for scale, name in reversed(_UNITS):
        if t >= scale:
            return scale, name
    return 1e-9, "ns"


@_dataclass(frozen=True)
class TaskSpec:
    """What was timed: the statement and its labels."""

    stmt: str
    setup: str = "pass"
    global_setup: str = ""
    label: str | None = None
    sub_label: str | None = None
    description: str | None = None
    env: str | None = None
    num_threads: int = 1

    @property
    def title(self) -> str:
        if self.label is not None:
            return self.label + (f": {self.sub_label}" if self.sub_label else "")
        return f"stmt: {self.stmt}" if "\n" not in self.stmt else "stmt: (multi-line)"


@_dataclass
class Measurement:
    """Timings of one task: `raw_times` are seconds per block of `number_per_run` runs."""

    number_per_run: int
    raw_times: list[float]
    task_spec: TaskSpec
    metadata: dict | None = None
    _sorted: list[float] = _field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._sorted = sorted(self.times)

    @property
    def times(self) -> list[float]:
        return [t / self.number_per_run for t in self.raw_times]

    @property
    def median(self) -> float:
        return _statistics.median(self._sorted)

    @property
    def mean(self) -> float:
        return _statistics.fmean(self._sorted)

    def _quantile(self, q: float) -> float:
        xs = self._sorted
        if len(xs) == 1:
            return xs[0]
        pos = q * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    @property
    def iqr(self) -> float:
        return self._quantile(0.75) - self._quantile(0.25)

    @property
    def significant_figures(self) -> int:
        """Digits that the spread leaves meaningful (1-4), as PyTorch estimates them."""
        n = len(self._sorted)
        if n < 2 or self.median == 0:
            return 4
        stderr = _statistics.stdev(self._sorted) / n**0.5
        rel = stderr / self.median
        if rel <= 0:
            return 4
        return max(1, min(4, int(-math.log10(rel))))

    @property
    def has_warnings(self) -> bool:
        return len(self._sorted) >= 4 and self.iqr / self.median > 0.1

    @property
    def title(self) -> str:
        return self.task_spec.title

    @property
    def env(self) -> str | None:
        return self.task_spec.env

    @property
    def as_row_name(self) -> str:
        return self.task_spec.sub_label or self.task_spec.stmt or "[Unknown]"

    def meets_confidence(self, threshold: float = 0.1) -> bool:
        return len(self._sorted) >= 4 and self.iqr / self.median < threshold

    @staticmethod
    def merge(measurements) -> list[Measurement]:
        """One Measurement per task spec, pooling their times."""
        groups: dict[TaskSpec, list[Measurement]] = {}
        for m in measurements:
            groups.setdefault(m.task_spec, []).append(m)
        out = []
        for spec, ms in groups.items():
            times = [t for m in ms for t in m.times]
            out.append(Measurement(1, times, spec, ms[0].metadata))
        return out

    def __repr__(self) -> str:
        scale, unit = _unit(self.median)
        spec = self.task_spec
        lines = [f"<{type(self).__module__}.Measurement object at {hex(id(self))}>", spec.title]
        if spec.description:
            lines.append(spec.description)
        n = len(self._sorted)
        if n == 1:
            lines.append(f"  {self.median / scale:.2f} {unit}")
        else:
            q1, q3 = self._quantile(0.25) / scale, self._quantile(0.75) / scale
            lines.append(f"  Median: {self.median / scale:.2f} {unit}")
            lines.append(f"  IQR:    {self.iqr / scale:.2f} {unit} ({q1:.2f} to {q3:.2f})")
        runs = "runs" if n == 1 else "runs per measurement"
        threads = "thread" if spec.num_threads == 1 else "threads"
        lines.append(f"  {n} measurement{'s' if n > 1 else ''}, {self.number_per_run} {runs}, "
                     f"{spec.num_threads} {threads}")  # fmt: skip
        if self.has_warnings:
            pct = 100 * self.iqr / self.median
            lines.append(f"  WARNING: Interquartile range is {pct:.1f}% of the median "
                         "measurement.\n           This suggests significant environmental "
                         "influence.")  # fmt: skip
        return "\n".join(lines)


class Timer:
    """torch.utils.benchmark.Timer over Python's timeit (see the module docstring)."""

    def __init__(self, stmt: str = "pass", setup: str = "pass", global_setup: str = "",
                 timer: _Callable[[], float] = _time.perf_counter,
                 globals: dict | None = None,  # noqa: A002 - PyTorch's name
                 label: str | None = None, sub_label: str | None = None,
                 description: str | None = None, env: str | None = None, num_threads: int = 1,
                 language: str = "python") -> None:  # fmt: skip
        if language not in ("python", "py"):
            raise ValueError(f"descent.utils.benchmark.Timer: language {language!r} is not "
                             "supported (descent times Python statements only)")  # fmt: skip
        if not isinstance(stmt, str):
            raise ValueError("Currently only a `str` stmt is supported.")
        self._globals = dict(globals or {})
        self._task_spec = TaskSpec(_textwrap.dedent(stmt).strip() or "pass",
                                   _textwrap.dedent(setup).strip() or "pass", global_setup, label,
                                   sub_label, description, env, int(num_threads))  # fmt: skip
        if global_setup:
            exec(compile(global_setup, "<global_setup>", "exec"), self._globals)  # noqa: S102
        self._timer = _timeit.Timer(self._task_spec.stmt, self._task_spec.setup, timer,
                                   globals=self._globals)  # fmt: skip

    def _run(self, number: int) -> float:
        from descent import get_num_threads, set_num_threads  # noqa: PLC0415

        before = get_num_threads()
        set_num_threads(self._task_spec.num_threads)
        try:
            return self._timer.timeit(number)
        finally:
            set_num_threads(before)

    def timeit(self, number: int = 1000000) -> Measurement:
        """One measurement of `number` runs (after one warm-up run)."""
        self._run(max(1, number // 100))
        return Measurement(number, [self._run(number)], self._task_spec)

    def repeat(self, repeat: int = -1, number: int = -1):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def autorange(self, callback: _Callable[[int, float], None] | None = None):
        raise NotImplementedError("See `Timer.blocked_autorange.`")

    def _block_size(self) -> int:
        number = 1
        while True:
            t = self._run(number)
            if t >= 0.01 or number >= 10**7:  # a block of at least 10 ms
                return number
            number *= 10

    def blocked_autorange(self, callback: _Callable[[int, float], None] | None = None,
                          min_run_time: float = 0.2) -> Measurement:  # fmt: skip
        """Blocks of runs (each >= 10 ms) until `min_run_time` seconds have been spent."""
        number = self._block_size()
        times: list[float] = []
        spent = 0.0
        while spent < min_run_time or not times:
            t = self._run(number)
            spent += t
            times.append(t)
            if callback is not None:
                callback(number, t)
        return Measurement(number, times, self._task_spec)

    def adaptive_autorange(self, threshold: float = 0.1, *, min_run_time: float = 0.01,
                           max_run_time: float = 10.0,
                           callback: _Callable[[int, float], None] | None = None,
                           ) -> Measurement:  # fmt: skip
        """Blocks until the IQR is below `threshold` of the median (with >= 4 blocks and
        `min_run_time` spent) or `max_run_time` is reached."""
        number = self._block_size()
        times: list[float] = []
        spent = 0.0
        while True:
            t = self._run(number)
            spent += t
            times.append(t)
            if callback is not None:
                callback(number, t)
            m = Measurement(number, times, self._task_spec)
            if spent >= min_run_time and m.meets_confidence(threshold) or spent >= max_run_time:
                return m


class Compare:
    """A table of Measurements: one block per label, rows by sub_label, columns by
    description, grouped by thread count, in the unit of the smallest median."""

    def __init__(self, results: list[Measurement]) -> None:
        self._results: list[Measurement] = []
        self._trim = False
        self._highlight = False
        self.extend_results(results)

    def extend_results(self, results) -> None:
        for r in results:
            if not isinstance(r, Measurement):
                raise ValueError(f"Expected an instance of `Measurement`, got {type(r)} instead.")
        self._results.extend(results)

    def trim_significant_figures(self) -> None:
        self._trim = True

    def colorize(self, rowwise: bool = False) -> None:
        """Accepted (PyTorch colours the fastest entries; descent prints plain text)."""

    def highlight_warnings(self) -> None:
        self._highlight = True

    def __str__(self) -> str:
        blocks = []
        labels: dict[_Any, list[Measurement]] = {}
        for m in Measurement.merge(self._results):
            labels.setdefault(m.task_spec.label, []).append(m)
        for label, ms in labels.items():
            cols = list(dict.fromkeys(m.task_spec.description or "" for m in ms))
            scale, unit = _unit(min(m.median for m in ms))
            rows: dict[tuple[int, str], dict[str, Measurement]] = {}
            for m in ms:
                rows.setdefault((m.task_spec.num_threads, m.as_row_name), {})[
                    m.task_spec.description or ""] = m
            names = [name for _, name in rows]
            w0 = max([len(n) for n in names] + [8])

            def cell(m: Measurement | None, scale: float = scale) -> str:
                if m is None:
                    return ""
                v = m.median / scale
                text = f"{v:.{max(0, 4 - len(str(int(v))))}f}" if self._trim else f"{v:.1f}"
                if self._highlight and m.has_warnings:
                    text += f" (! {100 * m.iqr / m.median:.0f}%)"
                return text

            widths = [max(len(c), *(len(cell(r.get(c))) for r in rows.values())) for c in cols]
            title = f" {label or ''} "
            head = " " * (w0 + 4) + "|" + "|".join(f"  {c:>{w}}  " for c, w in zip(cols, widths))
            lines = [f"[{title:-^{len(head) - 2}}]", head]
            last_threads = None
            for (threads, name), r in rows.items():
                if threads != last_threads:
                    lines.append(f"{threads} threads: " + "-" * max(0, len(head) - 12))
                    last_threads = threads
                lines.append(f"  {name:>{w0}}  |" + "|".join(
                    f"  {cell(r.get(c)):>{w}}  " for c, w in zip(cols, widths)))  # fmt: skip
            lines.append("")
            lines.append(f"Times are in {dict(_UNIT_NAMES)[unit]} ({unit}).")
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) + "\n"

    def print(self) -> None:
        print(str(self))


_UNIT_NAMES = (("ns", "nanoseconds"), ("us", "microseconds"), ("ms", "milliseconds"),
               ("s", "seconds"))  # fmt: skip
