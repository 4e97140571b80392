"""`torch._dynamo`: the names training scripts use around `torch.compile`.

`config` (settings, docs/compile.md "torch._dynamo"), `reset()`, `disable`, `is_compiling()`,
`allow_in_graph`, `disallow_in_graph`, `assume_constant_result`, `graph_break()` and the
shape marks `mark_dynamic` / `maybe_mark_dynamic` / `mark_static` / `mark_static_address`.
descent's compile records the ops a step ran and specialises every shape (a new shape records
again), so the marks and graph breaks have nothing to change: they check their arguments and
return.
"""

from __future__ import annotations

from collections.abc import Callable

from descent._dynamo import config, eval_frame, exc
from descent.compiler import (
    allow_in_graph,
    assume_constant_result,
    disable,
    is_compiling,
    is_dynamo_compiling,
    reset,
)

__all__ = [
    "config", "eval_frame", "exc", "reset", "disable", "is_compiling", "is_dynamo_compiling",
    "allow_in_graph", "disallow_in_graph", "assume_constant_result", "graph_break", "mark_dynamic",
    "maybe_mark_dynamic", "mark_static", "mark_static_address",
]  # fmt: skip


def disallow_in_graph(fn: Callable) -> Callable:
    """torch._dynamo.disallow_in_graph: fn unchanged (descent records whatever ops fn runs)."""
    return fn


def graph_break() -> None:
    """torch._dynamo.graph_break: nothing to break (descent replays the whole recorded step)."""


def _check_tensor(name: str, t, index=None) -> None:
    from descent.tensor import Tensor  # noqa: PLC0415 - the core stays unloaded until used

    if not isinstance(t, Tensor):
        raise TypeError(f"descent._dynamo.{name}: expected a Tensor, got {type(t).__name__}")
    for i in [index] if isinstance(index, int) else (index or ()):
        if not -t.dim() <= i < t.dim():
            raise IndexError(
                f"descent._dynamo.{name}: dimension {i} out of range for a tensor of shape "
                f"{tuple(t.shape)}"
            )


def mark_dynamic(t, index, *, min=None, max=None) -> None:  # noqa: A002 - PyTorch's names
    """torch._dynamo.mark_dynamic: a no-op (every shape is specialised; a new one records
    again), after checking that `index` names dimensions of `t`."""
    _check_tensor("mark_dynamic", t, index)


def maybe_mark_dynamic(t, index) -> None:
    """torch._dynamo.maybe_mark_dynamic: as mark_dynamic."""
    _check_tensor("maybe_mark_dynamic", t, index)


def mark_static(t, index=None) -> None:
    """torch._dynamo.mark_static: a no-op (shapes are always static here)."""
    if hasattr(t, "_parameters"):  # a Module: PyTorch marks its attributes static
        return
    _check_tensor("mark_static", t, index)


def mark_static_address(t, guard: bool = True) -> None:
    """torch._dynamo.mark_static_address: a no-op (no CUDA graphs to keep addresses for)."""
    _check_tensor("mark_static_address", t)
