"""Anomaly mode: find the first operation that produced a NaN or an Inf.

    >>> with descent.explain.detect_anomaly():
    ...     loss = model(x).log().mean()     # raises AnomalyError naming `Log` and this line
    ...     loss.backward()

How it attaches: through the engine's hook point, `autograd.add_op_hook`. Entering the outermost
context adds a forward hook (run after every op's forward) and a backward hook (run after every
node's backward); leaving it removes them. No class is patched. When no tool is attached the
engine's cost is one empty-list test per op. The hooks are process-wide (all threads) while the
context is active, and contexts nest.

Forward: every op's output is tested with `isfinite`; the first op whose output is not finite is
reported with its name, its input shapes and value ranges, and the user's source line (the first
stack frame outside the descent package). Backward: each op's gradients are tested as they are
produced; the first op whose input gradients are non-finite while its incoming gradient was finite
is reported, its forward origin (op and source line recorded when the node was created) first,
because that line is where the user needs to look.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
import warnings
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import autograd, backend
from ..tensor import Tensor

_DESCENT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

__all__ = ["AnomalyError", "AnomalyReport", "detect_anomaly", "user_frame"]


# ---------------------------------------------------------------------------------------------
# Data objects


@dataclass
class SourceLine:
    """Where in the user's code something happened."""

    filename: str
    lineno: int
    function: str
    code: str = ""

    def __str__(self) -> str:
        text = f'File "{self.filename}", line {self.lineno}, in {self.function}'
        if self.code:
            text += f"\n    {self.code}"
        return text


@dataclass
class TensorSummary:
    """Shape, dtype and value range of one array (NaN/Inf counted, range over finite values)."""

    shape: tuple[int, ...]
    dtype: str
    min: float | None
    max: float | None
    nan: int
    inf: int

    def __str__(self) -> str:
        rng = "no finite values" if self.min is None else f"range [{self.min:.4g}, {self.max:.4g}]"
        bad = []
        if self.nan:
            bad.append(f"{self.nan} NaN")
        if self.inf:
            bad.append(f"{self.inf} Inf")
        extra = f", {', '.join(bad)}" if bad else ""
        return f"shape {tuple(self.shape)} {self.dtype}, {rng}{extra}"


@dataclass
class AnomalyReport:
    """What anomaly mode found: the op, its inputs and output, and where it came from.

    Attributes:
        phase: "forward" or "backward".
        op: forward: the op's class name (e.g. "Log"); backward: the node's name, as PyTorch
            names grad_fn (e.g. "LogBackward").
        inputs: summaries of the op's inputs (forward) or of its incoming gradient (backward).
        output: summary of the non-finite output (forward) or of the first non-finite gradient.
        source: the user's source line that created the op (None if created outside the mode).
        detail: one sentence that says what went wrong.
    """

    phase: str
    op: str
    inputs: list[TensorSummary] = field(default_factory=list)
    output: TensorSummary | None = None
    source: SourceLine | None = None
    detail: str = ""

    def __str__(self) -> str:
        lines = [f"{self.phase} anomaly in op '{self.op}': {self.detail}"]
        if self.source is not None:
            lines.append("forward origin (where the op was created):")
            lines.append("  " + str(self.source).replace("\n", "\n  "))
        else:
            lines.append("forward origin: unknown (the op was created outside detect_anomaly())")
        label = "inputs" if self.phase == "forward" else "incoming gradient"
        for i, s in enumerate(self.inputs):
            lines.append(f"  {label}[{i}]: {s}")
        if self.output is not None:
            what = "output" if self.phase == "forward" else "gradient produced"
            lines.append(f"  {what}: {self.output}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnomalyError(FloatingPointError, RuntimeError):
    """Raised by anomaly mode; `.report` holds the AnomalyReport. Also a RuntimeError, the class
    PyTorch's anomaly mode raises (`descent.autograd.detect_anomaly`)."""

    def __init__(self, report: AnomalyReport) -> None:
        super().__init__(str(report))
        self.report = report


# ---------------------------------------------------------------------------------------------
# Helpers


def user_frame(skip_dirs: tuple[str, ...] = (_DESCENT_DIR,)) -> SourceLine | None:
    """The innermost stack frame outside descent's own package (the user's line)."""
    frame = sys._getframe(1)
    while frame is not None:
        fname = os.path.abspath(frame.f_code.co_filename)
        if not any(fname.startswith(d + os.sep) for d in skip_dirs):
            code = linecache.getline(fname, frame.f_lineno).strip()
            return SourceLine(fname, frame.f_lineno, frame.f_code.co_name, code)
        frame = frame.f_back
    return None


def _raw(a):
    """The array of a Tensor or array (backward hands Tensors under create_graph)."""
    return a._data if isinstance(a, Tensor) else a


def _is_float(a) -> bool:
    return getattr(a, "dtype", None) is not None and a.dtype.kind in "fcV"


def _all_finite(a) -> bool:
    if not _is_float(a):
        return True
    xp = backend.get_array_module(a)
    return bool(xp.isfinite(a).all())


def summarize(a) -> TensorSummary:
    """Shape, dtype and range (over finite entries) of an array, with NaN/Inf counts."""
    a = _raw(a)
    arr = backend.as_numpy(a) if hasattr(a, "shape") else np.asarray(a)
    shape = tuple(int(s) for s in arr.shape)
    if arr.dtype.kind not in "fciub":
        return TensorSummary(shape, str(arr.dtype), None, None, 0, 0)
    if arr.dtype.kind in "fcV":
        nan = int(np.isnan(arr).sum())
        inf = int(np.isinf(arr).sum())
        finite = arr[np.isfinite(arr)]
    else:
        nan = inf = 0
        finite = arr.ravel()
    if finite.size == 0:
        return TensorSummary(shape, str(arr.dtype), None, None, nan, inf)
    return TensorSummary(
        shape, str(arr.dtype), float(finite.real.min()), float(finite.real.max()), nan, inf
    )


# ---------------------------------------------------------------------------------------------
# The switch


class _AnomalyState:
    """Process-wide: the depth of nested contexts and the engine hooks while active."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.depth = 0
        self.handle: Any = None  # what autograd.add_op_hook returned
        # node -> SourceLine where it was created (weak: nodes die with their graph)
        self.origins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.check_forward = True
        self.check_backward = True
        self.raise_error = True
        self.found: list[AnomalyReport] = []


_anomaly = _AnomalyState()


def _handle(report: AnomalyReport) -> None:
    _anomaly.found.append(report)
    if _anomaly.raise_error:
        raise AnomalyError(report)
    warnings.warn(str(report), RuntimeWarning, stacklevel=3)


def _check_forward(op, inputs, out) -> None:
    """The forward hook: remember where a recorded node was created; test the output."""
    node = out._node
    src = None
    if node is not None:
        src = user_frame()
        _anomaly.origins[node] = src
    if _anomaly.check_forward and not _all_finite(out._data):
        ins = [summarize(t._data) for t in inputs]
        already = any(s.nan or s.inf for s in ins)
        detail = (
            "an input was already non-finite (it came from outside a descent op, e.g. the data)"
            if already
            else "its output is not finite although all its inputs are"
        )
        report = AnomalyReport(
            "forward",
            type(op).__name__,
            ins,
            summarize(out._data),
            src if src is not None else user_frame(),
            detail,
        )
        _handle(report)


def _check_backward(node, gy, gxs) -> None:
    """The backward hook: the first node whose gradients turn non-finite."""
    if not _anomaly.check_backward:
        return
    items = gxs if type(gxs) is tuple else (gxs,)
    gy_ok = _all_finite(_raw(gy))
    for i, gx in enumerate(items):
        if gx is None:
            continue
        if not _all_finite(_raw(gx)):
            if gy_ok:
                detail = (
                    f"the gradient it produced for input {i} is not finite although the gradient "
                    "flowing into it is finite"
                )
            else:
                detail = (
                    "the gradient flowing into it was already non-finite (the seed gradient, or a "
                    "hook, produced it)"
                )
            _handle(
                AnomalyReport(
                    "backward",
                    node.name,
                    [summarize(gy)],
                    summarize(gx),
                    _anomaly.origins.get(node),
                    detail,
                )
            )
            return


def _enable() -> None:
    _anomaly.handle = autograd._add_op_hook(forward=_check_forward, backward=_check_backward)


def _disable() -> None:
    _anomaly.handle.remove()
    _anomaly.handle = None


class detect_anomaly:  # PyTorch's name
    """Context manager: stop at the first op that makes a NaN or Inf, forward or backward.

    Args:
        check_forward: test every op's output in the forward pass.
        check_backward: test every op's gradients in the backward pass.
        raise_error: raise AnomalyError (default); False warns and records instead.

    Attributes:
        found: the AnomalyReports seen while this context was active.

    Example:
        >>> with detect_anomaly():
        ...     y = descent.log(descent.zeros(3))   # AnomalyError: forward anomaly in op 'Log'
    """

    def __init__(
        self, check_forward: bool = True, check_backward: bool = True, raise_error: bool = True
    ) -> None:
        self.check_forward = check_forward
        self.check_backward = check_backward
        self.raise_error = raise_error
        self.found: list[AnomalyReport] = []

    def __enter__(self) -> detect_anomaly:
        with _anomaly.lock:
            self._prev = (_anomaly.check_forward, _anomaly.check_backward, _anomaly.raise_error)
            self._start = len(_anomaly.found)
            _anomaly.check_forward = self.check_forward
            _anomaly.check_backward = self.check_backward
            _anomaly.raise_error = self.raise_error
            if _anomaly.depth == 0:
                _enable()
            _anomaly.depth += 1
        return self

    def __exit__(self, *exc) -> None:
        with _anomaly.lock:
            self.found = _anomaly.found[self._start :]
            _anomaly.depth -= 1
            _anomaly.check_forward, _anomaly.check_backward, _anomaly.raise_error = self._prev
            if _anomaly.depth == 0:
                _disable()
                _anomaly.found.clear()
                _anomaly.origins = weakref.WeakKeyDictionary()


def is_anomaly_enabled() -> bool:
    """True while a detect_anomaly() context is active (in any thread)."""
    return _anomaly.depth > 0
