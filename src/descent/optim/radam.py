"""RAdam (Liu et al., 2020, "On the Variance of the Adaptive Learning Rate and Beyond",
arXiv:1908.03265)."""

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


class RAdam(Optimizer):
    r"""RAdam: Adam with its adaptive step switched on only once its variance is tractable.

    Matches `torch.optim.RAdam`. For each parameter θ with gradient g at step t (learning
    rate γ, betas (β₁, β₂), weight decay λ):

        g   ← -g                                 if maximize
        g   ← g + λ θ          (or θ ← θ (1 - γ λ) with decoupled_weight_decay)
        m   ← m + (1 - β₁)(g - m)                state "exp_avg"
        v   ← β₂ v + (1 - β₂) g²                 state "exp_avg_sq"
        ρ∞  = 2 / (1 - β₂) - 1,   ρₜ = ρ∞ - 2 t β₂ᵗ / (1 - β₂ᵗ)
        m̂   = m / (1 - β₁ᵗ)
        if ρₜ > 5:  r = √((ρₜ - 4)(ρₜ - 2) ρ∞ / ((ρ∞ - 4)(ρ∞ - 2) ρₜ))
                    θ ← θ - γ m̂ · √(1 - β₂ᵗ) / (√v + ε) · r
        else:       θ ← θ - γ m̂                  (plain momentum SGD for the first steps)

    Args:
        params: Parameters or parameter groups (dicts).
        lr: learning rate γ.
        betas: (β₁, β₂), each in [0, 1).
        eps: ε added to the denominator.
        weight_decay: weight decay λ.
        decoupled_weight_decay: decay the parameter directly (as AdamW) instead of adding λθ.
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
        "maximize",
        "foreach",
        "capturable",
        "decoupled_weight_decay",
        "differentiable",
    )

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            **_impl_options("RAdam", foreach, None, capturable, differentiable, omit=("fused",)),
        )
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        for key in ("lr", "eps", "weight_decay"):
            _check_range("RAdam", group, key)
        _check_betas("RAdam", group)

    def _state_init(self, group: dict[str, Any]) -> dict[str, float]:
        return {"exp_avg": 0.0, "exp_avg_sq": 0.0}

    def _update(self, group: dict[str, Any], a: _Arrays, step: int) -> None:
        xp, p, g, tmp = a.xp, a.param, a.grad, a.tmp  # g is a private copy: overwrite it freely
        m, v = a.state["exp_avg"], a.state["exp_avg_sq"]
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        # Length of the approximated simple moving average (eq. 7 of the paper) and its limit.
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        rect = None
        if rho_t > 5.0:
            rect = (
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            ) ** 0.5  # PyTorch's ** 0.5 (not math.sqrt): the same rounding
        k = backend.fused("radam_update", p, g, m, v)
        if k is not None:  # NumPy float32/float64: this sequence in one numba pass, bitwise
            k(p, g, m, v, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd,
              decoupled=group["decoupled_weight_decay"], maximize=group["maximize"],
              step=step, rect=rect)  # fmt: skip
            return
        if group["maximize"]:
            xp.negative(g, out=g)
        if wd != 0:
            if group["decoupled_weight_decay"]:
                p *= 1 - lr * wd
            else:
                _add_scaled(xp, g, wd, p, tmp)
        _lerp(xp, m, g, 1 - beta1, tmp)
        v *= beta2
        xp.multiply(g, 1 - beta2, out=tmp)  # PyTorch's addcmul order: ((1 - β₂) g) g
        tmp *= g
        v += tmp
        update = xp.divide(m, bias_correction1, out=g)  # m̂; g is scratch from here on
        update *= lr
        if rect is not None:
            adaptive = xp.sqrt(v, out=tmp)
            adaptive += eps
            xp.divide(bias_correction2**0.5, adaptive, out=adaptive)
            update *= adaptive
            update *= rect
        p -= update
