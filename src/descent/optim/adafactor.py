"""Adafactor (Shazeer & Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory
Cost", arXiv:1804.04235), as torch.optim.Adafactor computes it.

For a matrix (or a batch of matrices) the second moment is kept factored, one row and one
column average instead of a full array: O(n + m) memory for an n x m weight. Per parameter θ
with gradient g at step t (learning rate lr, decay exponent c = beta2_decay, eps = (ε₁, ε₂),
clipping threshold d, weight decay λ):

    β̂ = t^c                                  (1 - β₂ at step t)
    ρ = min(lr, 1 / √t),  α = max(ε₂, RMS(θ)) ρ
    θ ← θ (1 - lr λ)
    R ← lerp(R, mean_cols(g²), β̂),  C ← lerp(C, mean_rows(g²), β̂)      matrices
    V̂ = R C / max(mean(R), ε₁)                                        (v ← lerp(v, g², β̂) else)
    u = g / √max(V̂, ε₁²),  θ ← θ - α u / max(1, RMS(u) / d)

State: "step" (a 0-d float32 Tensor, as PyTorch's), "row_var" and "col_var" (shapes g.shape
with the last, or the second-to-last, dimension 1) for tensors of 2 or more dimensions,
"variance" otherwise.
ε₁ None means the dtype's machine epsilon.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Tensor
from .optimizer import Optimizer, _scalar_dtype

__all__ = ["Adafactor"]


def _lerp(xp, start, end, w: float):
    """PyTorch's lerp: start + w (end - start) for w < 0.5, else end - (end - start)(1 - w)."""
    if w < 0.5:
        return start + (end - start) * start.dtype.type(w)
    return end - (end - start) * start.dtype.type(1.0 - w)


def _norm(xp, a) -> float:
    return float(xp.sqrt(xp.sum(a.astype(np.float64) ** 2)))


class Adafactor(Optimizer):
    """torch.optim.Adafactor (see the module docstring for the rule).

    Args:
        params: Parameters or parameter groups (dicts).
        lr: the largest relative step (ρ = min(lr, 1/√t)).
        beta2_decay: c in 1 - β₂ = t^c (<= 0).
        eps: (ε₁, ε₂): ε₁ floors the second moment (None: the dtype's epsilon), ε₂ the
            parameter's RMS in the step size.
        d: clipping threshold of the update's RMS (>= 1).
        weight_decay: decoupled weight decay λ.
        maximize: ascend the objective.
        foreach: PyTorch's kernel choice; accepted, no effect.
    """

    _complex_params = False  # not elementwise: complex parameters are refused

    def __init__(self, params: Iterable, lr: float = 1e-2, beta2_decay: float = -0.8,
                 eps: tuple = (None, 1e-3), d: float = 1.0, weight_decay: float = 0.0, *,
                 foreach: bool | None = None, maximize: bool = False) -> None:  # fmt: skip
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                        weight_decay=weight_decay, foreach=foreach, maximize=maximize)  # fmt: skip
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        lr, eps = group["lr"], group["eps"]
        if isinstance(lr, Tensor):  # PyTorch's tensor lr
            if lr.numel() != 1:
                raise ValueError(f"Adafactor: Tensor lr must be 1-element, got {tuple(lr.shape)}")
            lr = lr.item()
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= group["beta2_decay"]:
            raise ValueError(f"beta2_decay should be <= 0 but is: {group['beta2_decay']}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise ValueError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise ValueError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= group["d"]:
            raise ValueError(f"Clipping threshold d should be >= 1 but is: {group['d']}")
        if not 0.0 <= group["weight_decay"]:
            raise ValueError(f"weight_decay should be >= 0 but is: {group['weight_decay']}")

    def _state_shape_ok(self, key: str, shape: tuple, param_shape: tuple) -> bool:
        if key == "row_var":
            return shape == param_shape[:-1] + (1,)
        if key == "col_var":
            return shape == param_shape[:-2] + (1,) + param_shape[-1:]
        return shape == param_shape

    def step(self, closure=None):
        """One Adafactor step for every parameter that has a gradient."""
        return self._step_each(closure, self._step_one)

    def _step_one(self, group: dict[str, Any], p) -> None:

        a = p._data
        xp = backend.get_array_module(a)
        g = p.grad._data
        if group["maximize"]:
            g = -g
        st = self.state[p]
        if not st:
            st["step"] = Tensor._wrap(np.array(0.0, _scalar_dtype()))
            if g.ndim > 1:
                st["row_var"] = Tensor._wrap(xp.zeros(g.shape[:-1] + (1,), dtype=a.dtype))
                st["col_var"] = Tensor._wrap(xp.zeros(g.shape[:-2] + (1,) + g.shape[-1:],
                                                      dtype=a.dtype))  # fmt: skip
            else:
                st["variance"] = Tensor._wrap(xp.zeros_like(a))
        step = st["step"]._data  # a 0-d host array: counted in place, as PyTorch's step_t += 1
        step += 1
        t = float(step)
        lr = group["lr"]  # a number, or PyTorch's tensor lr (a 1-element Tensor)
        lr = float(lr.item() if isinstance(lr, Tensor) else lr)
        wd, d = float(group["weight_decay"]), float(group["d"])
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = float(np.finfo(a.dtype).eps)
        beta = t ** group["beta2_decay"]
        rho = min(lr, 1.0 / t**0.5)
        alpha = max(eps2, _norm(xp, a) / math.sqrt(max(a.size, 1))) * rho
        if wd != 0:
            a *= a.dtype.type(1 - lr * wd)
        f = a.dtype.type
        if g.ndim > 1:
            row, col = st["row_var"]._data, st["col_var"]._data
            row[...] = _lerp(xp, row, (g * g).sum(axis=-1, keepdims=True) / f(g.shape[-1]), beta)
            col[...] = _lerp(xp, col, (g * g).sum(axis=-2, keepdims=True) / f(g.shape[-2]), beta)
            var = (row @ col) / xp.maximum(row.mean(axis=-2, keepdims=True), f(eps1))
        else:
            v = st["variance"]._data
            v[...] = _lerp(xp, v, g * g, beta)
            var = v.copy()
        update = 1 / xp.sqrt(xp.maximum(var, f(eps1 * eps1))) * g
        denom = max(1.0, _norm(xp, update) / (math.sqrt(max(update.size, 1)) * d))
        a -= update * f(alpha / denom)
        p._version += 1
