"""Adamax, Adam's infinity-norm variant (Kingma & Ba, 2015, section 7.1)."""

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


class Adamax(Optimizer):
    r"""Adamax: Adam with the second moment replaced by a decaying maximum of |g|.

    Matches `torch.optim.Adamax`. For each parameter θ with gradient g at step t (learning
    rate γ, betas (β₁, β₂), weight decay λ):

        g  ← -g                                  if maximize
        g  ← g + λ θ
        m  ← m + (1 - β₁)(g - m)                 state "exp_avg"
        u  ← max(β₂ u, |g| + ε)                  state "exp_inf"
        θ  ← θ - γ / (1 - β₁ᵗ) · m / u

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ.
        betas: (β₁, β₂), each in [0, 1).
        eps: ε added to |g| (keeps u > 0).
        weight_decay: L2 penalty λ.
        foreach, capturable: PyTorch's kernel choices; accepted and recorded, no effect.
        maximize: ascend the objective instead of descending.
        differentiable: must be False (a differentiable step is not supported).
    """

    #: PyTorch's order of the options in a group (`param_groups`, `state_dict()`)
    _group_keys = (
        "lr",
        "betas",
        "eps",
        "weight_decay",
        "foreach",
        "maximize",
        "differentiable",
        "capturable",
    )

    def __init__(
        self,
        params: Iterable,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            **_impl_options("Adamax", foreach, None, capturable, differentiable, omit=("fused",)),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps", "weight_decay"):
            _check_range("Adamax", group, key)
        _check_betas("Adamax", group)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"exp_avg": 0.0, "exp_inf": 0.0}

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        m, u = a.state["exp_avg"], a.state["exp_inf"]
        beta1, beta2 = group["betas"]
        k = backend.fused("adamax_update", p, g, m, u)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, m, u, lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
              weight_decay=group["weight_decay"], maximize=group["maximize"],
              step=step)  # fmt: skip
            return
        if group["maximize"]:
            xp.negative(g, out=g)
        if group["weight_decay"] != 0:
            _add_scaled(xp, g, group["weight_decay"], p, tmp)
        _lerp(xp, m, g, 1 - beta1, tmp)
        u *= beta2
        xp.abs(g, out=tmp)
        tmp += group["eps"]
        xp.maximum(u, tmp, out=u)
        clr = group["lr"] / (1 - beta1**step)  # a Python float: no float64 arrays for float32
        xp.divide(m, u, out=tmp)
        _add_scaled(xp, p, -clr, tmp, tmp)
