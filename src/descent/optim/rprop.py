"""Rprop (Riedmiller & Braun, 1993, "A Direct Adaptive Method for Faster Backpropagation
Learning: The RPROP Algorithm"; PyTorch's variant without weight backtracking)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .optimizer import Optimizer, _Arrays, _check_range, _impl_options


class Rprop(Optimizer):
    r"""Rprop: each weight moves by its own step size, in the direction opposite to its gradient's
    sign; the step grows while the sign stays and shrinks when it flips.

    Matches `torch.optim.Rprop`. For each parameter θ with gradient g (η₋ < 1 < η₊, steps
    clamped to [Δmin, Δmax]; state "prev" = the previous g, "step_size" = Δ, first Δ = lr):

        g  ← -g                                          if maximize
        s  = sign(g · prev)
        Δ  ← clamp(Δ · (η₊ if s > 0, η₋ if s < 0, 1 if s = 0), Δmin, Δmax)
        g  ← 0 where s < 0                               (no step after a sign flip)
        θ  ← θ - sign(g) · Δ
        prev ← g

    Args:
        params: Parameters or parameter groups (dicts).
        lr: the first step size Δ of every weight.
        etas: (η₋, η₊), the factors that shrink and grow Δ; 0 < η₋ < 1 < η₊.
        step_sizes: (Δmin, Δmax), the bounds of Δ.
        capturable, foreach: PyTorch's kernel choices; accepted and recorded, no effect.
        maximize: ascend the objective instead of descending.
        differentiable: must be False.
    """

    #: PyTorch's order of the options in a group (`param_groups`, `state_dict()`)
    _group_keys = (
        "lr",
        "etas",
        "step_sizes",
        "foreach",
        "maximize",
        "differentiable",
        "capturable",
    )

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            etas=tuple(etas),
            step_sizes=tuple(step_sizes),
            maximize=maximize,
            **_impl_options("Rprop", foreach, None, capturable, differentiable, omit=("fused",)),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        _check_range("Rprop", group, "lr")
        etas = group["etas"]
        if len(etas) != 2 or not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Rprop: Invalid eta values: {etas[0]}, {etas[1]} (need 0 < eta- "
                             "< 1 < eta+)")  # fmt: skip
        if len(group["step_sizes"]) != 2:
            raise ValueError(f"Rprop: step_sizes must be (min, max), got {group['step_sizes']}")

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"prev": 0.0, "step_size": group["lr"]}  # PyTorch: full_like(grad, lr)

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        prev, step_size = a.state["prev"], a.state["step_size"]
        etaminus, etaplus = group["etas"]
        lo, hi = group["step_sizes"]
        if group["maximize"]:
            xp.negative(g, out=g)
        # The factor per weight, written as PyTorch does into sign(g · prev): > 0 -> η₊, then
        # < 0 -> η₋, then = 0 -> 1 (a NaN product stays NaN there too).
        xp.multiply(g, prev, out=tmp)
        xp.sign(tmp, out=tmp)
        flipped = tmp < 0
        tmp[tmp > 0] = etaplus
        tmp[flipped] = etaminus
        tmp[tmp == 0] = 1
        step_size *= tmp
        xp.clip(step_size, lo, hi, out=step_size)
        g[flipped] = 0  # after a sign change: no step now, and no sign to compare next time
        xp.sign(g, out=tmp)
        tmp *= step_size
        p -= tmp
        prev[...] = g
