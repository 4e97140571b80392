"""`torch.autograd.profiler_util`'s result types: the rows of `profile.key_averages()`
(`FunctionEventAvg`) and their list with PyTorch's `table()` (`EventList`). descent.profiler
makes them; descent.autograd.profiler re-exports EventList, as PyTorch's."""

from __future__ import annotations

__all__ = ["EventList", "FunctionEventAvg"]


class FunctionEventAvg:
    """One row of `key_averages()`: `key`, `count`, `cpu_time_total`, `self_cpu_time_total`
    (microseconds), `cpu_time` (average), `input_shapes`."""

    def __init__(self, key: str, input_shapes=None) -> None:
        self.key, self.input_shapes = key, input_shapes
        self.count = 0
        self.cpu_time_total = self.self_cpu_time_total = 0.0

    @property
    def cpu_time(self) -> float:
        return self.cpu_time_total / max(self.count, 1)

    def __repr__(self) -> str:
        return (f"<FunctionEventAvg key={self.key} self_cpu_time={self.self_cpu_time_total:.3f}us "
                f"cpu_time={self.cpu_time_total:.3f}us count={self.count}>")  # fmt: skip


def _fmt_us(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f}s"
    if us >= 1e3:
        return f"{us / 1e3:.3f}ms"
    return f"{us:.3f}us"


class EventList(list):
    """A list of `FunctionEventAvg` rows with PyTorch's `table()`."""

    def table(self, sort_by: str | None = None, row_limit: int = 100, max_name_column_width=55,
              header: str | None = None, top_level_events_only: bool = False) -> str:  # fmt: skip
        rows = list(self)
        key = {"cpu_time_total": "cpu_time_total", "self_cpu_time_total": "self_cpu_time_total",
               "cpu_time": "cpu_time", "count": "count", None: None}  # fmt: skip
        if sort_by not in key:
            raise ValueError(
                f"table: sort_by={sort_by!r}; use one of {sorted(k for k in key if k)}"
            )
        if sort_by:
            rows.sort(key=lambda r: getattr(r, key[sort_by]), reverse=True)
        if row_limit is not None and row_limit > 0:
            rows = rows[:row_limit]
        total_self = sum(r.self_cpu_time_total for r in self) or 1.0
        shapes = any(r.input_shapes is not None for r in rows)
        width = min(max([len(r.key) for r in rows] + [4]), max_name_column_width)
        cols = ["Name".ljust(width), "Self CPU %", "Self CPU", "CPU total %", "CPU total",
                "CPU time avg", "# of Calls"] + (["Input Shapes"] if shapes else [])  # fmt: skip
        lines = ["  ".join(f"{c:>12}" if i else c for i, c in enumerate(cols))]
        rule = "-" * len(lines[0])
        for r in rows:
            cells = [r.key[:width].ljust(width), f"{100 * r.self_cpu_time_total / total_self:.2f}%",
                     _fmt_us(r.self_cpu_time_total), f"{100 * r.cpu_time_total / total_self:.2f}%",
                     _fmt_us(r.cpu_time_total), _fmt_us(r.cpu_time), str(r.count)]  # fmt: skip
            if shapes:
                cells.append(str(r.input_shapes or ""))
            lines.append("  ".join(f"{c:>12}" if i else c for i, c in enumerate(cells)))
        total = _fmt_us(sum(r.self_cpu_time_total for r in self))
        out = [rule, lines[0], rule, *lines[1:], rule, f"Self CPU time total: {total}"]
        if header:
            out.insert(0, header)
        return "\n".join(out)

    def total_average(self) -> FunctionEventAvg:
        tot = FunctionEventAvg("Total")
        for r in self:
            tot.count += r.count
            tot.cpu_time_total += r.cpu_time_total
            tot.self_cpu_time_total += r.self_cpu_time_total
        return tot
