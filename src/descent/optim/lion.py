"""Lion, "EvoLved Sign Momentum" (Chen et al., 2023, "Symbolic Discovery of Optimization
Algorithms", arXiv:2302.06675, Program 1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import backend
from .optimizer import (
    Optimizer,
    _add_scaled,
    _Arrays,
    _check_betas,
    _check_range,
    _impl_options,
    _lerp,
)


class Lion(Optimizer):
    r"""Lion: step by the SIGN of an interpolated momentum; every coordinate moves by ±γ.

    For each parameter θ with gradient g (learning rate γ, betas (β₁, β₂), weight decay λ),
    following the paper's Program 1:

        g  ← -g                                  if maximize
        c  ← β₁ m + (1 - β₁) g                   (computed as m + (1 - β₁)(g - m))
        θ  ← θ (1 - γ λ) - γ sign(c)             decoupled weight decay
        m  ← β₂ m + (1 - β₂) g                   state "exp_avg"

    Its updates are larger than Adam's (every coordinate moves by the full γ), so the paper
    uses a learning rate 3-10x smaller and a weight decay 3-10x larger than AdamW's.

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ.
        betas: (β₁, β₂): interpolation for the update and decay of the momentum.
        weight_decay: decoupled weight decay λ.
        maximize: ascend the objective instead of descending.
        foreach, fused, capturable: PyTorch's kernel choices; accepted and recorded, no effect
            (descent runs one rule over a flat buffer per group).
        differentiable: must be False (a differentiable step is not supported).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            weight_decay=weight_decay,
            maximize=maximize,
            **_impl_options("Lion", foreach, fused, capturable, differentiable),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "weight_decay"):
            _check_range("Lion", group, key)
        _check_betas("Lion", group)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"exp_avg": 0.0}

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        m = a.state["exp_avg"]
        lr, wd = group["lr"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        k = backend.fused("lion_update", p, g, m)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, m, lr=lr, beta1=beta1, beta2=beta2, weight_decay=wd,
              maximize=group["maximize"])  # fmt: skip
            return
        if group["maximize"]:
            xp.negative(g, out=g)
        if wd != 0:
            p *= 1 - lr * wd
        xp.subtract(g, m, out=tmp)
        tmp *= 1 - beta1
        tmp += m  # c = β₁ m + (1 - β₁) g
        xp.sign(tmp, out=tmp)
        _add_scaled(xp, p, -lr, tmp, tmp)
        _lerp(xp, m, g, 1 - beta2, tmp)
