"""Whole-model gradient check: every parameter tensor's autodiff gradient vs finite differences.

    >>> result = check_model_gradients(model, lambda m, b: F.cross_entropy(m(b[0]), b[1]), (x, y))
    >>> print(result)             # one row per parameter: name, shape, error, verdict
    >>> assert result.passed, result.failed

The check runs on a float64 deep copy of the model (the user's model is never touched), in eval
mode so that dropout does not make the loss random. For a parameter tensor with at most
`max_full` entries each entry is nudged by +-eps (central differences,
dL/dw_j ~ (L(w + eps e_j) - L(w - eps e_j)) / (2 eps)); for larger tensors `num_projections`
random unit directions v are used instead, comparing the directional derivative <dL/dw, v>
from one backward pass with (L(w + eps v) - L(w - eps v)) / (2 eps). A wrong derivative
anywhere on the path from a parameter to the loss shows up in that parameter's row.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .. import autograd, backend
from ..autograd import no_grad
from ..tensor import Tensor

__all__ = ["ModelGradCheck", "ParamCheck", "check_model_gradients"]


@dataclass
class ParamCheck:
    """The check of one parameter tensor.

    Attributes:
        name, shape: the parameter.
        method: "full" (every entry nudged) or "projections" (random directions).
        n_compared: entries or directions compared.
        max_abs_error: largest |analytic - numeric|.
        max_rel_error: largest |analytic - numeric| / max(|analytic|, |numeric|, 1e-12).
        worst: the entry index (full) or direction number (projections) of the worst value.
        analytic, numeric: the two values there.
        passed: every value satisfied |analytic - numeric| <= atol + rtol * |numeric|.
    """

    name: str
    shape: tuple[int, ...]
    method: str
    n_compared: int
    max_abs_error: float
    max_rel_error: float
    worst: Any
    analytic: float
    numeric: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["worst"] = list(self.worst) if isinstance(self.worst, tuple) else self.worst
        return d


@dataclass
class ModelGradCheck:
    """Per-parameter results of check_model_gradients (a table when printed)."""

    params: list[ParamCheck]
    eps: float
    rtol: float
    atol: float
    loss: float

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.params)

    @property
    def failed(self) -> list[str]:
        """Names of the parameters whose gradients disagree with finite differences."""
        return [p.name for p in self.params if not p.passed]

    def __bool__(self) -> bool:
        return self.passed

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "eps": self.eps, "rtol": self.rtol, "atol": self.atol,
                "loss": self.loss, "params": [p.to_dict() for p in self.params]}  # fmt: skip

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def __str__(self) -> str:
        rows = [("parameter", "shape", "method", "max rel err", "verdict")]
        for p in self.params:
            shape = "x".join(str(s) for s in p.shape) or "scalar"
            verdict = "ok" if p.passed else (
                f"WRONG (at {p.worst}: autodiff {p.analytic:.6g} vs numeric {p.numeric:.6g})"
            )  # fmt: skip
            rows.append((p.name, shape, f"{p.method} ({p.n_compared})",
                         f"{p.max_rel_error:.2e}", verdict))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        head = (
            f"model gradient check (float64, central differences eps={self.eps:g}, pass if "
            f"|autodiff - numeric| <= {self.atol:g} + {self.rtol:g} |numeric|; loss "
            f"{self.loss:.6g})"
        )
        tail = "all parameters passed" if self.passed else (
            "FAILED: " + ", ".join(self.failed) + " (a wrong derivative lies on the path from "
            "these parameters to the loss)"
        )  # fmt: skip
        return "\n".join([head, *lines, tail])


def _to_float64(obj):
    """Cast floating Tensors/arrays inside a batch (tuple, list, dict or single) to float64."""
    if isinstance(obj, Tensor):
        if obj._data.dtype.kind in "fV":
            return Tensor._wrap(obj._data.astype(np.float64))
        return obj
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "fV":
        return obj.astype(np.float64)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_float64(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_float64(v) for k, v in obj.items()}
    return obj


def _float64_copy(model):
    m = copy.deepcopy(model)
    if hasattr(m, "to"):
        m.to(np.float64)
    else:  # a dict or list of tensors
        items = m.values() if isinstance(m, dict) else m
        for p in items:
            p._data = p._data.astype(np.float64)
    if hasattr(m, "eval"):
        m.eval()  # dropout off: the loss must be a deterministic function of the weights
    return m


def _named(model):
    if hasattr(model, "named_parameters"):
        return list(model.named_parameters())
    if isinstance(model, dict):
        return list(model.items())
    return [(f"param{i}", p) for i, p in enumerate(model)]


def check_model_gradients(
    model,
    loss_fn: Callable,
    batch: Any,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    max_full: int = 16,
    num_projections: int = 3,
    seed: int = 0,
    raise_on_failure: bool = False,
) -> ModelGradCheck:
    """Compare autodiff gradients of every parameter tensor with central differences.

    Args:
        model: a Module (or dict/list of parameter tensors); it is copied, never modified.
        loss_fn: `loss_fn(model, batch) -> scalar Tensor`.
        batch: passed to loss_fn (floating tensors are cast to float64 with the model).
        eps: the finite-difference step (float64).
        rtol, atol: tolerance |analytic - numeric| <= atol + rtol * |numeric|.
        max_full: tensors with at most this many entries are checked entry by entry.
        num_projections: random directions for larger tensors.
        seed: seed of the random directions.
        raise_on_failure: raise AssertionError with the table when a parameter fails.

    Returns:
        A ModelGradCheck: `.passed`, `.failed` (names), a table when printed.
    """
    m64 = _float64_copy(model)
    b64 = _to_float64(batch)
    named = _named(m64)
    params = [p for _, p in named]
    if not params:
        raise ValueError("check_model_gradients: the model has no parameters")

    with autograd.enable_grad():
        loss = loss_fn(m64, b64)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise TypeError(
            f"check_model_gradients: loss_fn must return a scalar Tensor, got "
            f"{type(loss).__name__} {getattr(loss, 'shape', '')}"
        )
    loss_value = float(loss.item())
    grads = autograd.grad(loss, params, allow_unused=True)
    rng = np.random.default_rng(seed)

    def value() -> float:
        with no_grad():
            return float(loss_fn(m64, b64).item())

    results = []
    for (name, p), g in zip(named, grads):
        ga = (np.zeros(p.shape) if g is None else backend.as_numpy(g._data)).astype(np.float64)
        base = p._data
        xp = backend.get_array_module(base)
        ana, num, where = [], [], []
        try:
            if p.numel() <= max_full:
                for j in np.ndindex(*p.shape):
                    plus = base.copy()
                    plus[j] += eps
                    p._data = plus
                    lp = value()
                    minus = base.copy()
                    minus[j] -= eps
                    p._data = minus
                    lm = value()
                    ana.append(float(ga[j]))
                    num.append((lp - lm) / (2 * eps))
                    where.append(tuple(int(i) for i in j))
                method = "full"
            else:
                for k in range(num_projections):
                    v = rng.standard_normal(p.shape)
                    v /= np.linalg.norm(v)
                    dv = xp.asarray(v)
                    p._data = base + eps * dv
                    lp = value()
                    p._data = base - eps * dv
                    lm = value()
                    ana.append(float(np.sum(ga * v)))
                    num.append((lp - lm) / (2 * eps))
                    where.append(k)
                method = "projections"
        finally:
            p._data = base
        a = np.asarray(ana)
        n = np.asarray(num)
        abs_err = np.abs(a - n)
        rel = abs_err / np.maximum(np.maximum(np.abs(a), np.abs(n)), 1e-12)
        ok = abs_err <= atol + rtol * np.abs(n)
        if not np.all(np.isfinite(a)) or not np.all(np.isfinite(n)):
            ok = np.zeros_like(ok)
        score = np.where(ok, rel * 0, rel + 1)  # the worst failing value, else the worst overall
        i = int(np.argmax(score)) if not ok.all() else int(np.argmax(rel))
        results.append(
            ParamCheck(
                name,
                tuple(int(s) for s in p.shape),
                method,
                len(a),
                float(abs_err.max()),
                float(rel.max()) if math.isfinite(rel.max()) else math.inf,
                where[i],
                float(a[i]),
                float(n[i]),
                bool(ok.all()),
            )  # fmt: skip
        )
    out = ModelGradCheck(results, eps, rtol, atol, loss_value)
    if raise_on_failure and not out.passed:
        raise AssertionError(str(out))
    return out
